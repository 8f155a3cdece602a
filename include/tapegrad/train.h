/* tapegrad training stack: optimizers with parameter groups, gradient utilities, learning-rate
 * schedules and early stopping, checkpoints (safetensors), metrics, and progress/CSV/plot
 * reporting. Optimizers and schedules follow torch.optim (PyTorch 1.13) step for step.
 * Included by tapegrad.h. Functions return 0 on success and -1 with tg_last_error() on
 * failure unless stated. */
#ifndef TAPEGRAD_TRAIN_H
#define TAPEGRAD_TRAIN_H

#include <stdio.h>

#include "tapegrad.h"
#include "tapegrad/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Named state, for checkpoints: an optimizer's or a schedule's state as persistent tensors it
 * owns. Saving copies them out; loading copies values into them (shapes must match).
 * ------------------------------------------------------------------------------------------- */

typedef struct tg_state_entry {
    const char *name;   /* e.g. "state.3.exp_avg", "group.0.lr", "last_epoch" */
    tg_tensor *tensor;
} tg_state_entry;

/* ---------------------------------------------------------------------------------------------
 * Optimizers
 * ------------------------------------------------------------------------------------------- */

typedef enum tg_optim_kind {
    TG_OPTIM_SGD,
    TG_OPTIM_ADAM,
    TG_OPTIM_ADAMW,
    TG_OPTIM_RMSPROP,
    TG_OPTIM_ADAGRAD,
} tg_optim_kind;

typedef struct tg_optim_opts {
    double lr;
    double weight_decay;          /* L2 added to the gradient; AdamW: decoupled decay */
    double momentum, dampening;   /* SGD; RMSprop uses momentum */
    bool nesterov;                /* SGD */
    double beta1, beta2, eps;     /* Adam, AdamW (eps also RMSprop, Adagrad) */
    bool amsgrad;                 /* Adam, AdamW */
    double alpha;                 /* RMSprop smoothing */
    bool centered;                /* RMSprop */
    double lr_decay;              /* Adagrad */
    double initial_accumulator;   /* Adagrad */
} tg_optim_opts;

/* torch.optim's defaults for kind (SGD, whose lr PyTorch requires, gets 0.01): Adam lr 1e-3,
 * betas (0.9, 0.999), eps 1e-8; AdamW the same with weight_decay 1e-2; RMSprop lr 1e-2,
 * alpha 0.99, eps 1e-8; Adagrad lr 1e-2, eps 1e-10. */
tg_optim_opts tg_optim_defaults(tg_optim_kind kind);

typedef struct tg_optim tg_optim;

/* An optimizer with no parameters yet; opts (NULL = defaults) are what groups inherit. */
tg_optim *tg_optim_new(tg_optim_kind kind, const tg_optim_opts *opts);
void tg_optim_free(tg_optim *o);
/* Adds a parameter group of n persistent float tensors with its own options (NULL = the
 * optimizer's). The optimizer's state for them is created here (zeros; Adagrad's sums at
 * initial_accumulator). Returns the group index, or -1 (a tensor already in a group or twice
 * in this one, not persistent, not float; bad options). */
int tg_optim_add_group(tg_optim *o, int n, tg_tensor *const *params, const tg_optim_opts *opts);
/* Chooses which of a model's parameters go into a group. */
typedef bool (*tg_param_filter)(const char *name, const tg_tensor *param, void *ctx);
/* The common split: true for weights of rank >= 2 (decayed), false for biases and
 * normalization parameters (rank <= 1). */
bool tg_param_decays(const char *name, const tg_tensor *param, void *ctx);
/* Adds the model's trainable parameters accepted by filter (NULL = all) as one group;
 * returns its index or -1. Calling it twice, with tg_param_decays and its negation via
 * `exclude`, gives the decay / no-decay split. */
int tg_optim_add_model(tg_optim *o, tg_model *m, tg_param_filter filter, void *ctx,
                       bool exclude, const tg_optim_opts *opts);
int tg_optim_num_groups(const tg_optim *o);
double tg_optim_get_lr(const tg_optim *o, int group);
/* group -1 sets every group. */
void tg_optim_set_lr(tg_optim *o, int group, double lr);
/* One update of every parameter that has a gradient, as torch.optim's step(). */
int tg_optim_step(tg_optim *o);
/* Zeroes every parameter's gradient. */
void tg_optim_zero_grad(tg_optim *o);
/* The optimizer's state (step counts, moment buffers, each group's lr) for checkpoints;
 * returns the number of entries written to out (at most cap), or the total with out == NULL. */
int tg_optim_state(tg_optim *o, tg_state_entry *out, int cap);

/* Gradient utilities over n parameters (their grads; parameters without one are skipped). */
/* Scales all gradients so their global L2 norm is at most max_norm; returns the norm before
 * clipping (NaN on error), as torch.nn.utils.clip_grad_norm_. */
double tg_clip_grad_norm(int n, tg_tensor *const *params, double max_norm);
/* Clamps every gradient element into [-clip, clip]. */
int tg_clip_grad_value(int n, tg_tensor *const *params, double clip);
/* Max-norm constraint on a weight's rows (dim 0 slices): rows with L2 norm above max_norm are
 * rescaled to it, in place on the parameter values. */
int tg_max_norm_rows(tg_tensor *weight, double max_norm);

/* ---------------------------------------------------------------------------------------------
 * Learning-rate schedules. A schedule drives its optimizer's learning rates: each call to
 * tg_sched_step (once per epoch or per step, the caller's choice, as in PyTorch) advances it
 * and sets the lr of every group. The lr of group g after t steps matches the PyTorch
 * scheduler named beside each constructor.
 * ------------------------------------------------------------------------------------------- */

typedef struct tg_sched tg_sched;

/* StepLR: base_lr * gamma^floor(t / step_size). */
tg_sched *tg_sched_step_new(tg_optim *o, int64_t step_size, double gamma);
/* MultiStepLR: base_lr * gamma^(number of milestones <= t). */
tg_sched *tg_sched_multistep_new(tg_optim *o, int n, const int64_t *milestones, double gamma);
/* A table of absolute rates: from step milestones[i] on, lr = values[i] (the notes'
 * {5: 1e-3, 15: 1e-4, 18: 1e-5}); before the first milestone, the base lr. Other groups keep
 * their ratio to group 0 (values[i] * base_g / base_0). LambdaLR. */
tg_sched *tg_sched_table_new(tg_optim *o, int n, const int64_t *milestones,
                             const double *values);
/* ExponentialLR: base_lr * gamma^t. */
tg_sched *tg_sched_exponential_new(tg_optim *o, double gamma);
/* CosineAnnealingLR: eta_min + (base_lr - eta_min)(1 + cos(pi t / t_max)) / 2. */
tg_sched *tg_sched_cosine_new(tg_optim *o, int64_t t_max, double eta_min);
/* Inverse-time decay: base_lr / (1 + rate * t / decay_steps), t / decay_steps floored when
 * staircase. LambdaLR. */
tg_sched *tg_sched_inverse_time_new(tg_optim *o, double rate, int64_t decay_steps,
                                    bool staircase);
/* Linear warmup from start_factor * lr to lr over warmup_steps, then `after` (which may be
 * NULL; it is taken over and freed with the warmup, also when this fails) counted from the end
 * of the warmup: SequentialLR(LinearLR, after). */
tg_sched *tg_sched_warmup_new(tg_optim *o, int64_t warmup_steps, double start_factor,
                              tg_sched *after);
/* ReduceLROnPlateau (mode min or max, threshold_mode rel or abs), stepped with a metric. */
typedef struct tg_plateau_opts {
    bool maximize;        /* mode 'max' */
    double factor;        /* 0.1 */
    int64_t patience;     /* 10 */
    double threshold;     /* 1e-4 */
    bool threshold_abs;   /* threshold_mode 'abs' instead of 'rel' */
    int64_t cooldown;     /* 0 */
    double min_lr;        /* 0 */
    double eps;           /* 1e-8 */
} tg_plateau_opts;
tg_plateau_opts tg_plateau_defaults(void);
tg_sched *tg_sched_plateau_new(tg_optim *o, const tg_plateau_opts *opts);

void tg_sched_free(tg_sched *s);
/* Advances one step (plateau schedules need tg_sched_step_metric). */
int tg_sched_step(tg_sched *s);
/* Advances one step with a metric; schedules other than plateau ignore it. */
int tg_sched_step_metric(tg_sched *s, double metric);
/* The lr the schedule has set for group 0. */
double tg_sched_get_lr(const tg_sched *s);
int tg_sched_state(tg_sched *s, tg_state_entry *out, int cap);

/* Early stopping: stop after `patience` updates without an improvement larger than
 * min_delta (in the direction of maximize). */
typedef struct tg_early_stopping {
    int64_t patience;
    double min_delta;
    bool maximize;
    double best;
    int64_t bad_updates;
    int64_t best_update;   /* index of the best update, from 0 */
    int64_t updates;
} tg_early_stopping;
tg_early_stopping tg_early_stopping_init(int64_t patience, double min_delta, bool maximize);
/* Records a metric; true when training should stop. */
bool tg_early_stopping_update(tg_early_stopping *es, double metric);

/* ---------------------------------------------------------------------------------------------
 * Checkpoints (safetensors: an 8-byte little-endian header length, a JSON header of
 * name -> {dtype, shape, data_offsets}, then the raw little-endian data). Writes are atomic:
 * a temporary file in the same folder, fsync, rename.
 * ------------------------------------------------------------------------------------------- */

/* The model's parameters and buffers under their state_dict names; f32 as F32, f64 as F64,
 * i64 as I64. A PyTorch model of the same architecture loads the file with
 * load_state_dict(safetensors.torch.load_file(...)) and the reverse works too. */
int tg_save_model(const tg_model *m, const char *path);
/* Loads every entry of the model from path. Missing or unexpected names, and shape or dtype
 * differences, are an error listing every mismatch; the model is unchanged then. */
int tg_load_model(tg_model *m, const char *path);

/* Where training stands, saved beside the model and optimizer state. */
typedef struct tg_train_state {
    int64_t epoch;
    int64_t step;
    tg_rng *rng;   /* its state is saved and restored (NULL: none) */
} tg_train_state;
/* Model, optimizer (may be NULL), schedule (may be NULL) and train state in one file; keys
 * "model.<name>", "optim.<entry>", "sched.<entry>", "train.epoch", "train.step", "train.rng". */
int tg_save_checkpoint(const char *path, const tg_model *m, tg_optim *o, tg_sched *s,
                       const tg_train_state *ts);
/* Restores all of them; resuming gives bitwise the same run as not stopping. */
int tg_load_checkpoint(const char *path, tg_model *m, tg_optim *o, tg_sched *s,
                       tg_train_state *ts);

/* ---------------------------------------------------------------------------------------------
 * Metrics. logits: [N, C] (f32 or f64), labels: int64 [N].
 * ------------------------------------------------------------------------------------------- */

/* Fraction of rows whose argmax is the label (NaN on bad input, with tg_last_error). */
double tg_accuracy(const tg_tensor *logits, const tg_tensor *labels);
/* Fraction of rows whose label is among the k largest logits. */
double tg_topk_accuracy(const tg_tensor *logits, const tg_tensor *labels, int k);

typedef struct tg_confusion {
    int64_t num_classes;
    int64_t *counts;   /* [true class][predicted class], row-major */
} tg_confusion;
tg_confusion *tg_confusion_new(int64_t num_classes);
void tg_confusion_free(tg_confusion *cm);
/* Counts argmax(logits) against labels. */
int tg_confusion_add(tg_confusion *cm, const tg_tensor *logits, const tg_tensor *labels);
/* Per class (0 when the denominator is 0, as sklearn's zero_division=0). */
double tg_confusion_precision(const tg_confusion *cm, int64_t cls);
double tg_confusion_recall(const tg_confusion *cm, int64_t cls);
double tg_confusion_f1(const tg_confusion *cm, int64_t cls);
/* Unweighted means over classes. */
double tg_confusion_macro_precision(const tg_confusion *cm);
double tg_confusion_macro_recall(const tg_confusion *cm);
double tg_confusion_macro_f1(const tg_confusion *cm);
double tg_confusion_accuracy(const tg_confusion *cm);

/* ---------------------------------------------------------------------------------------------
 * Progress, logs and plots
 * ------------------------------------------------------------------------------------------- */

typedef struct tg_progress tg_progress;
/* A progress display for one epoch of `total` steps on out: a redrawn bar with loss, accuracy,
 * items/s and ETA when out is a terminal, plain lines about every 10% otherwise. */
tg_progress *tg_progress_new(FILE *out, const char *label, int64_t total);
/* Records step `done` (1..total): the running mean loss and accuracy over the epoch, and how
 * many items (images) this step processed. */
void tg_progress_update(tg_progress *p, int64_t done, double loss, double accuracy,
                        int64_t items);
/* Ends the display with a final line that appends `summary` (may be NULL); frees p. */
void tg_progress_finish(tg_progress *p, const char *summary);

typedef struct tg_csv_log tg_csv_log;
/* A CSV file with the columns kind,epoch,step,loss,accuracy,lr,value (kind "step" or
 * "epoch"; value is a free extra metric such as test accuracy, NaN written as empty). */
tg_csv_log *tg_csv_log_open(const char *path);
int tg_csv_log_row(tg_csv_log *log, const char *kind, int64_t epoch, int64_t step, double loss,
                   double accuracy, double lr, double value);
int tg_csv_log_close(tg_csv_log *log);
/* Renders the epoch rows of a CSV log (loss, accuracy, value against epoch) to a PNG with
 * gnuplot, the accuracy labelled "training accuracy" and the value curve value_label (NULL:
 * "value"). Without gnuplot on PATH returns -1 saying so; the CSV stays. */
int tg_plot_csv(const char *csv_path, const char *png_path, const char *title,
                const char *value_label);

#ifdef __cplusplus
}
#endif

#endif /* TAPEGRAD_TRAIN_H */
