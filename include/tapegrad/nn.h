/* tapegrad neural-network layer: activations, layers, losses, initializers and the parameter
 * registry (the "model"), all composed from the primitives in tapegrad.h. Nothing here has a
 * hand-written backward pass; semantics, defaults and parameter layouts follow PyTorch 1.13.
 *
 * Every layer exists twice: as a functional op (tg_conv2d(tp, x, w, b, &opts)) that takes its
 * parameters as arguments, and as a layer object (tg_conv2d_new(model, "conv1", ...)) that owns
 * them in a model under PyTorch's state_dict names. Included by tapegrad.h. */
#ifndef TAPEGRAD_NN_H
#define TAPEGRAD_NN_H

#include <stdio.h>

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Activations (x of any shape unless stated)
 * ------------------------------------------------------------------------------------------- */

tg_tensor *tg_leaky_relu(tg_tape *tp, tg_tensor *x, double negative_slope);
tg_tensor *tg_elu(tg_tape *tp, tg_tensor *x, double alpha);
/* x * sigmoid(x), also called swish. */
tg_tensor *tg_silu(tg_tape *tp, tg_tensor *x);
/* Exact: x/2 (1 + erf(x/sqrt 2)); tanh_approx: x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))). */
tg_tensor *tg_gelu(tg_tape *tp, tg_tensor *x, bool tanh_approx);
/* log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch: 1, 20). */
tg_tensor *tg_softplus(tg_tape *tp, tg_tensor *x, double beta, double threshold);
/* Stable, through logsumexp along axis. */
tg_tensor *tg_softmax(tg_tape *tp, tg_tensor *x, int axis);
tg_tensor *tg_log_softmax(tg_tape *tp, tg_tensor *x, int axis);
/* log(sum(exp(x))) over axes (NULL / 0 = all), stable (the max is subtracted first). */
tg_tensor *tg_logsumexp(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, bool keepdim);

/* ---------------------------------------------------------------------------------------------
 * Linear, convolution, pooling, resampling (functional)
 * ------------------------------------------------------------------------------------------- */

/* x: [..., in], w: [out, in], b: [out] or NULL -> [..., out] (PyTorch's layout: y = x w^T + b). */
tg_tensor *tg_linear(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b);

typedef struct tg_conv2d_opts {
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dilation_h, dilation_w;
    int64_t groups;
    int64_t output_pad_h, output_pad_w; /* transposed convolution only */
} tg_conv2d_opts;
/* stride 1, padding 0, dilation 1, groups 1, output padding 0. */
tg_conv2d_opts tg_conv2d_defaults(void);

/* x: [N, C, H, W], w: [OC, C/groups, KH, KW], b: [OC] or NULL -> [N, OC, OH, OW]:
 * unfold, one batched GEMM per group, add bias, reshape. opts NULL = defaults. */
tg_tensor *tg_conv2d(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b,
                     const tg_conv2d_opts *opts);
/* x: [N, C, H, W], w: [C, OC/groups, KH, KW], b: [OC] or NULL -> [N, OC, OH, OW] with
 * OH = (H-1) stride - 2 pad + dilation (KH-1) + output_pad + 1: GEMM, then fold. */
tg_tensor *tg_conv_transpose2d(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b,
                               const tg_conv2d_opts *opts);

typedef struct tg_pool2d_opts {
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dilation_h, dilation_w; /* max pooling only */
    bool ceil_mode;
    bool count_include_pad;         /* average pooling only */
} tg_pool2d_opts;
/* PyTorch's defaults for a kh x kw window: stride = kernel, padding 0, dilation 1,
 * ceil_mode false, count_include_pad true. */
tg_pool2d_opts tg_pool2d_defaults(int64_t kernel_h, int64_t kernel_w);

/* x: [N, C, H, W] -> [N, C, OH, OW]. Padding reads -inf for max and 0 for average. */
tg_tensor *tg_max_pool2d(tg_tape *tp, tg_tensor *x, const tg_pool2d_opts *opts);
tg_tensor *tg_avg_pool2d(tg_tape *tp, tg_tensor *x, const tg_pool2d_opts *opts);
/* PyTorch's adaptive windows: [floor(i H / OH), ceil((i+1) H / OH)). */
tg_tensor *tg_adaptive_avg_pool2d(tg_tape *tp, tg_tensor *x, int64_t out_h, int64_t out_w);
/* Mean over H and W: [N, C, H, W] -> [N, C, 1, 1]. */
tg_tensor *tg_global_avg_pool2d(tg_tape *tp, tg_tensor *x);

typedef enum tg_upsample_mode { TG_UPSAMPLE_NEAREST, TG_UPSAMPLE_BILINEAR } tg_upsample_mode;
/* [N, C, H, W] -> [N, C, out_h, out_w], as F.interpolate(size=...). align_corners only
 * matters for bilinear. */
tg_tensor *tg_upsample2d(tg_tape *tp, tg_tensor *x, int64_t out_h, int64_t out_w,
                         tg_upsample_mode mode, bool align_corners);
/* As F.interpolate(scale_factor=...): out = floor(in * scale), and source positions use the
 * given scale, as PyTorch does. */
tg_tensor *tg_upsample2d_scale(tg_tape *tp, tg_tensor *x, double scale_h, double scale_w,
                               tg_upsample_mode mode, bool align_corners);

/* ---------------------------------------------------------------------------------------------
 * Normalization, dropout, embedding, recurrent cells (functional)
 * ------------------------------------------------------------------------------------------- */

/* x: [N, C, ...]. training: normalize with the batch mean and biased variance over all axes
 * but 1, and when running_mean/running_var are given update them in place:
 * r = (1 - momentum) r + momentum s, with the unbiased variance for running_var. Not
 * training: normalize with the running statistics. weight/bias: [C] or NULL. */
tg_tensor *tg_batch_norm(tg_tape *tp, tg_tensor *x, tg_tensor *running_mean,
                         tg_tensor *running_var, tg_tensor *weight, tg_tensor *bias,
                         bool training, double momentum, double eps);
/* Normalizes over the last n_dims dims; weight/bias have those dims' shape or are NULL. */
tg_tensor *tg_layer_norm(tg_tape *tp, tg_tensor *x, int n_dims, tg_tensor *weight,
                         tg_tensor *bias, double eps);
/* x: [N, C, ...] in `groups` groups of C/groups channels; weight/bias: [C] or NULL. */
tg_tensor *tg_group_norm(tg_tape *tp, tg_tensor *x, int64_t groups, tg_tensor *weight,
                         tg_tensor *bias, double eps);
/* PyTorch's LocalResponseNorm over channels of [N, C, ...]:
 * x / (k + alpha/size * sum of x^2 over the `size` neighbouring channels)^beta. */
tg_tensor *tg_local_response_norm(tg_tape *tp, tg_tensor *x, int64_t size, double alpha,
                                  double beta, double k);

/* Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p);
 * the identity when not training. dropout2d zeroes whole channels of [N, C, ...]. */
tg_tensor *tg_dropout(tg_tape *tp, tg_tensor *x, double p, bool training, tg_rng *rng);
tg_tensor *tg_dropout2d(tg_tape *tp, tg_tensor *x, double p, bool training, tg_rng *rng);
/* weight: [V, D], idx: int64 [...] -> [..., D]. */
tg_tensor *tg_embedding(tg_tape *tp, tg_tensor *weight, tg_tensor *idx);

/* PyTorch's LSTMCell: gates = x w_ih^T + b_ih + h w_hh^T + b_hh split as i, f, g, o;
 * c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c'). x: [N, I], h, c: [N, H],
 * w_ih: [4H, I], w_hh: [4H, H], biases [4H] or NULL. Returns h', stores c' in *c_out. */
tg_tensor *tg_lstm_cell(tg_tape *tp, tg_tensor *x, tg_tensor *h, tg_tensor *c,
                        tg_tensor *w_ih, tg_tensor *w_hh, tg_tensor *b_ih, tg_tensor *b_hh,
                        tg_tensor **c_out);
/* PyTorch's GRUCell (gate order r, z, n): n = tanh(x W_in + b_in + r (h W_hn + b_hn)),
 * h' = (1 - z) n + z h. w_ih: [3H, I], w_hh: [3H, H]. */
tg_tensor *tg_gru_cell(tg_tape *tp, tg_tensor *x, tg_tensor *h, tg_tensor *w_ih,
                       tg_tensor *w_hh, tg_tensor *b_ih, tg_tensor *b_hh);

/* ---------------------------------------------------------------------------------------------
 * Losses. Reductions scale exactly as PyTorch's.
 * ------------------------------------------------------------------------------------------- */

typedef enum tg_reduction {
    TG_REDUCTION_MEAN,
    TG_REDUCTION_SUM,
    TG_REDUCTION_NONE,
    TG_REDUCTION_BATCHMEAN, /* kl_div only: the sum divided by the batch size */
} tg_reduction;

typedef struct tg_cross_entropy_opts {
    tg_reduction reduction;
    int64_t ignore_index;   /* targets equal to it contribute nothing (class-index targets) */
    tg_tensor *weight;      /* [C] class weights or NULL */
    double label_smoothing; /* in [0, 1] */
} tg_cross_entropy_opts;
/* mean reduction, ignore_index -100, no weights, no smoothing. */
tg_cross_entropy_opts tg_cross_entropy_defaults(void);

/* logits: [N, C] or [N, C, d1, ...]; target: int64 class indices [N] / [N, d1, ...], or
 * float class probabilities with the logits' shape. opts NULL = defaults. */
tg_tensor *tg_cross_entropy(tg_tape *tp, tg_tensor *logits, tg_tensor *target,
                            const tg_cross_entropy_opts *opts);
/* log_probs: [N, C] or [N, C, d1, ...], target int64; label_smoothing must be 0. */
tg_tensor *tg_nll_loss(tg_tape *tp, tg_tensor *log_probs, tg_tensor *target,
                       const tg_cross_entropy_opts *opts);
/* p in [0, 1]: -(y log p + (1-y) log(1-p)) with each log clamped at -100; weight broadcasts
 * or is NULL. */
tg_tensor *tg_binary_cross_entropy(tg_tape *tp, tg_tensor *p, tg_tensor *y, tg_tensor *weight,
                                   tg_reduction reduction);
/* Stable in the logits x; pos_weight broadcasts over the last dim, or NULL. */
tg_tensor *tg_binary_cross_entropy_with_logits(tg_tape *tp, tg_tensor *x, tg_tensor *y,
                                               tg_tensor *weight, tg_tensor *pos_weight,
                                               tg_reduction reduction);
tg_tensor *tg_mse_loss(tg_tape *tp, tg_tensor *x, tg_tensor *y, tg_reduction reduction);
tg_tensor *tg_l1_loss(tg_tape *tp, tg_tensor *x, tg_tensor *y, tg_reduction reduction);
/* 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta. */
tg_tensor *tg_smooth_l1_loss(tg_tape *tp, tg_tensor *x, tg_tensor *y, double beta,
                             tg_reduction reduction);
/* 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta). */
tg_tensor *tg_huber_loss(tg_tape *tp, tg_tensor *x, tg_tensor *y, double delta,
                         tg_reduction reduction);
/* Multi-class hinge: x: [N, C], y: int64 [N]; sum over i != y of
 * max(0, margin - x[y] + x[i])^p (times weight[y]) / C. p is 1 or 2. */
tg_tensor *tg_multi_margin_loss(tg_tape *tp, tg_tensor *x, tg_tensor *y, int p, double margin,
                                tg_tensor *weight, tg_reduction reduction);
/* input: log-probabilities; target: probabilities (or log-probabilities with log_target):
 * target (log target - input) pointwise. */
tg_tensor *tg_kl_div(tg_tape *tp, tg_tensor *input, tg_tensor *target, bool log_target,
                     tg_reduction reduction);

/* ---------------------------------------------------------------------------------------------
 * Initializers: fill a persistent float tensor in place from the RNG (row-major order). fan_in
 * and fan_out are PyTorch's: dim 1 and dim 0 times the product of the dims after them.
 * Return 0, or -1 with tg_last_error.
 * ------------------------------------------------------------------------------------------- */

typedef enum tg_fan_mode { TG_FAN_IN, TG_FAN_OUT } tg_fan_mode;

/* torch.nn.init.calculate_gain: "linear", "conv2d", "sigmoid", "tanh", "relu",
 * "leaky_relu" (param = negative slope), "selu"; NaN for an unknown name. */
double tg_init_gain(const char *nonlinearity, double param);
int tg_init_constant(tg_tensor *t, double value);
int tg_init_uniform(tg_tensor *t, tg_rng *rng, double lo, double hi);
int tg_init_normal(tg_tensor *t, tg_rng *rng, double mean, double std);
int tg_init_xavier_uniform(tg_tensor *t, tg_rng *rng, double gain);
int tg_init_xavier_normal(tg_tensor *t, tg_rng *rng, double gain);
int tg_init_kaiming_uniform(tg_tensor *t, tg_rng *rng, double a, tg_fan_mode mode,
                            const char *nonlinearity);
int tg_init_kaiming_normal(tg_tensor *t, tg_rng *rng, double a, tg_fan_mode mode,
                           const char *nonlinearity);
/* PyTorch's default for Linear and Conv: weight kaiming_uniform(a = sqrt 5) and bias uniform
 * in +-1/sqrt(fan_in of weight). bias may be NULL. */
int tg_init_default_layer(tg_tensor *weight, tg_tensor *bias, tg_rng *rng);

/* ---------------------------------------------------------------------------------------------
 * The model: a registry of named parameters and buffers plus the tree of layers that own them.
 * Names are PyTorch's state_dict keys ("features.0.weight", "bn1.running_mean"); entries keep
 * registration order. The model owns every tensor and layer registered in it.
 * ------------------------------------------------------------------------------------------- */

typedef struct tg_model tg_model;
typedef struct tg_layer tg_layer;

typedef struct tg_model_entry {
    const char *name;
    tg_tensor *tensor;
    bool is_buffer;   /* running statistics and counters: saved, never trained */
} tg_model_entry;

/* type_name is what tg_model_print shows at the root ("Net"); NULL means "Model". */
tg_model *tg_model_new(const char *type_name);
void tg_model_free(tg_model *m);

/* Takes ownership of persistent tensor t under name. A parameter must be float and is marked
 * requires_grad. Returns t, or NULL (t is freed, tg_last_error says why) for a duplicate name,
 * a tape tensor or a NULL argument. */
tg_tensor *tg_model_add_param(tg_model *m, const char *name, tg_tensor *t);
tg_tensor *tg_model_add_buffer(tg_model *m, const char *name, tg_tensor *t);

int tg_model_num_entries(const tg_model *m);
tg_model_entry tg_model_entry_at(const tg_model *m, int i);
/* The tensor registered under name, or NULL. */
tg_tensor *tg_model_find(const tg_model *m, const char *name);
/* Elements in all parameters (only those that require grad, with trainable_only). */
int64_t tg_model_num_parameters(const tg_model *m, bool trainable_only);
void tg_model_zero_grad(tg_model *m);
/* Freezes (requires_grad false) or unfreezes the parameters whose names start with prefix
 * ("" = all) at a dot boundary; returns how many changed. */
int tg_model_set_frozen(tg_model *m, const char *prefix, bool frozen);
/* The flag dropout and batch norm layers read; new models are training. */
void tg_model_set_training(tg_model *m, bool training);
bool tg_model_is_training(const tg_model *m);
/* The layer tree in the style of PyTorch's repr:
 *   Net(
 *     (conv1): Conv2d(1, 16, kernel_size=(3, 3), stride=(2, 2))
 *     (fc): Linear(in_features=128, out_features=10, bias=True)
 *   ) */
void tg_model_print(const tg_model *m, FILE *out);

/* ---------------------------------------------------------------------------------------------
 * Layer objects. Each constructor registers the layer in m under `name` (its dotted path) and
 * its parameters as "<name>.weight" etc., initialized as PyTorch initializes them from rng.
 * A layer whose name extends another layer's name ("features.0" under "features") is its
 * child in the printed tree. Constructors return NULL with tg_last_error on bad arguments.
 * ------------------------------------------------------------------------------------------- */

/* Applies the layer; reads the model's training flag. */
tg_tensor *tg_layer_forward(tg_tape *tp, tg_layer *layer, tg_tensor *x);
const char *tg_layer_name(const tg_layer *layer);
/* The layer's parameter or buffer by local name ("weight", "running_mean"), or NULL. */
tg_tensor *tg_layer_get(const tg_layer *layer, const char *local_name);

tg_layer *tg_sequential_new(tg_model *m, const char *name);
/* Appends child to seq (forward applies the children in order). Returns 0 or -1. */
int tg_sequential_add(tg_layer *seq, tg_layer *child);

tg_layer *tg_linear_new(tg_model *m, const char *name, int64_t in_features,
                        int64_t out_features, bool bias, tg_rng *rng);
tg_layer *tg_conv2d_new(tg_model *m, const char *name, int64_t in_channels,
                        int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                        const tg_conv2d_opts *opts, bool bias, tg_rng *rng);
tg_layer *tg_conv_transpose2d_new(tg_model *m, const char *name, int64_t in_channels,
                                  int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                                  const tg_conv2d_opts *opts, bool bias, tg_rng *rng);
tg_layer *tg_max_pool2d_new(tg_model *m, const char *name, const tg_pool2d_opts *opts);
tg_layer *tg_avg_pool2d_new(tg_model *m, const char *name, const tg_pool2d_opts *opts);
tg_layer *tg_adaptive_avg_pool2d_new(tg_model *m, const char *name, int64_t out_h,
                                     int64_t out_w);
tg_layer *tg_upsample2d_new(tg_model *m, const char *name, double scale_h, double scale_w,
                            tg_upsample_mode mode, bool align_corners);
/* BatchNorm1d ([N, C] or [N, C, L]) and BatchNorm2d ([N, C, H, W]): weight, bias (affine),
 * running_mean, running_var, num_batches_tracked (track_running_stats). PyTorch defaults:
 * eps 1e-5, momentum 0.1, affine and track_running_stats true. */
tg_layer *tg_batch_norm1d_new(tg_model *m, const char *name, int64_t num_features, double eps,
                              double momentum, bool affine, bool track_running_stats);
tg_layer *tg_batch_norm2d_new(tg_model *m, const char *name, int64_t num_features, double eps,
                              double momentum, bool affine, bool track_running_stats);
/* normalized_shape: the last n_dims dims of the input. */
tg_layer *tg_layer_norm_new(tg_model *m, const char *name, int n_dims,
                            const int64_t *normalized_shape, double eps, bool affine);
tg_layer *tg_group_norm_new(tg_model *m, const char *name, int64_t groups, int64_t channels,
                            double eps, bool affine);
tg_layer *tg_local_response_norm_new(tg_model *m, const char *name, int64_t size, double alpha,
                                     double beta, double k);
/* rng is borrowed and drawn from at every training forward. */
tg_layer *tg_dropout_new(tg_model *m, const char *name, double p, tg_rng *rng);
tg_layer *tg_dropout2d_new(tg_model *m, const char *name, double p, tg_rng *rng);
/* Flattens dims start..end (inclusive; negative counts from the end), as nn.Flatten(1, -1). */
tg_layer *tg_flatten_new(tg_model *m, const char *name, int start_dim, int end_dim);
/* weight [num, dim] initialized normal(0, 1) as PyTorch; forward takes int64 indices. */
tg_layer *tg_embedding_new(tg_model *m, const char *name, int64_t num_embeddings,
                           int64_t embedding_dim, tg_rng *rng);

typedef enum tg_activation {
    TG_ACT_RELU,
    TG_ACT_LEAKY_RELU,  /* param: negative slope */
    TG_ACT_ELU,         /* param: alpha */
    TG_ACT_SIGMOID,
    TG_ACT_TANH,
    TG_ACT_SILU,
    TG_ACT_GELU,
    TG_ACT_GELU_TANH,
    TG_ACT_SOFTPLUS,    /* beta 1, threshold 20 */
    TG_ACT_SOFTMAX,     /* param: axis */
    TG_ACT_LOG_SOFTMAX, /* param: axis */
} tg_activation;
tg_layer *tg_activation_new(tg_model *m, const char *name, tg_activation kind, double param);

/* Recurrent cells: weight_ih, weight_hh, bias_ih, bias_hh, initialized uniform in
 * +-1/sqrt(hidden) as PyTorch. They are stepped with the functions below, not
 * tg_layer_forward (which reports an error for them). */
tg_layer *tg_lstm_cell_new(tg_model *m, const char *name, int64_t input_size,
                           int64_t hidden_size, bool bias, tg_rng *rng);
tg_layer *tg_gru_cell_new(tg_model *m, const char *name, int64_t input_size,
                          int64_t hidden_size, bool bias, tg_rng *rng);
/* One step: h, c: [N, H] (NULL = zeros). Returns h', stores c' in *c_out. */
tg_tensor *tg_lstm_cell_step(tg_tape *tp, tg_layer *cell, tg_tensor *x, tg_tensor *h,
                             tg_tensor *c, tg_tensor **c_out);
tg_tensor *tg_gru_cell_step(tg_tape *tp, tg_layer *cell, tg_tensor *x, tg_tensor *h);
/* Unrolls an LSTM or GRU cell over xs: [T, N, I] for any T >= 1 from h0 (and c0 for LSTM;
 * NULL = zeros): returns the hidden states [T, N, H]; *h_last (and *c_last) get the final
 * state when not NULL. The tape records a different graph for every T. */
tg_tensor *tg_rnn_unroll(tg_tape *tp, tg_layer *cell, tg_tensor *xs, tg_tensor *h0,
                         tg_tensor *c0, tg_tensor **h_last, tg_tensor **c_last);

#ifdef __cplusplus
}
#endif

#endif /* TAPEGRAD_NN_H */
