/* mlp_search: hyperparameter search as in the course notes (seed 004, section 4.5). The model
 * is their two-layer classifier, Linear(784, hidden) -> ReLU -> Linear(hidden, 10), trained
 * with Adam on the cross-entropy plus the L2 penalty reg * sum(W^2) over both weight matrices
 * (the notes' "reg": it adds 2 reg W to each weight's gradient, which the tape derives here).
 *
 * Two searches run over the same MNIST subsets (training images, a validation split from the
 * rest of the training file, and official test images):
 *   - grid search: every pair of lr in {1e-2, 1e-3, 1e-4} and reg in {1e-4, 1e-3}, hidden 100;
 *   - random search: lr and reg drawn log-uniformly from [1e-4, 1e-2] and [1e-6, 1e-2], hidden
 *     uniformly from 32..256.
 * Each trial trains for at most --epochs epochs with early stopping (tg_early_stopping) on the
 * validation loss and keeps the parameters of its best epoch. As the notes' findBestConfig, the
 * best trial is the one with the lowest validation loss; its test accuracy is printed last.
 * Exits 1 unless that model's test accuracy exceeds 0.5 (chance is 0.1).
 *
 *   mlp_search [--epochs N] [--patience N] [--trials N] [--batch N] [--seed N] [--data DIR]
 *              [--train-limit N] [--val-limit N] [--test-limit N] [--help]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tapegrad.h>

#include "options.h"

enum { N_LAYERS = 4, EVAL_BATCH = 1000 };

typedef struct options {
    int epochs, patience, trials;
    int64_t batch;
    uint64_t seed;
    const char *data_dir;
    int64_t train_limit, val_limit, test_limit;
} options;

/* One point of the search space. */
typedef struct config {
    double lr;
    int64_t hidden;
    double reg;
} config;

/* What a trial achieved at its best epoch. */
typedef struct result {
    double val_loss, val_acc;
    int epochs_run, best_epoch;  /* best_epoch counts from 1 */
    bool stopped_early;
    double seconds;
} result;

/* The classifier: its parameters in a model and its layers in order. */
typedef struct net {
    tg_model *model;
    tg_layer *layers[N_LAYERS];
    tg_tensor *w1, *w2;  /* the weights the L2 penalty covers */
} net;

/* Flatten -> fc1 -> ReLU -> fc2; false when a layer could not be made. */
static bool net_init(net *nt, int64_t hidden, tg_rng *rng) {
    tg_model *m = nt->model = tg_model_new("ClassificationNet");
    if (!m) return false;
    nt->layers[0] = tg_flatten_new(m, "flatten", 1, -1);
    nt->layers[1] = tg_linear_new(m, "fc1", 28 * 28, hidden, true, rng);
    nt->layers[2] = tg_activation_new(m, "relu", TG_ACT_RELU, 0);
    nt->layers[3] = tg_linear_new(m, "fc2", hidden, 10, true, rng);
    nt->w1 = tg_model_find(m, "fc1.weight");
    nt->w2 = tg_model_find(m, "fc2.weight");
    return nt->layers[0] && nt->layers[1] && nt->layers[2] && nt->layers[3];
}

static tg_tensor *net_forward(tg_tape *tp, const net *nt, tg_tensor *x) {
    for (int i = 0; i < N_LAYERS; i++) x = tg_layer_forward(tp, nt->layers[i], x);
    return x;
}

/* Copies of every parameter, to go back to the best epoch after early stopping. */
typedef struct snapshot {
    int n;
    tg_tensor **copies;
} snapshot;

/* Replaces the copies in s with the model's current values; false when out of memory. */
static bool snapshot_take(snapshot *s, const tg_model *m) {
    int n = tg_model_num_entries(m);
    if (!s->copies && !(s->copies = calloc((size_t)n, sizeof *s->copies))) return false;
    s->n = n;
    for (int i = 0; i < n; i++) {
        tg_tensor_free(s->copies[i]);
        s->copies[i] = tg_tensor_clone(tg_model_entry_at(m, i).tensor);
        if (!s->copies[i]) return false;
    }
    return true;
}

/* Writes the copies back into the model. */
static void snapshot_restore(const snapshot *s, tg_model *m) {
    for (int i = 0; i < s->n; i++) {
        tg_tensor *t = tg_model_entry_at(m, i).tensor;
        memcpy(tg_tensor_data_mut(t), tg_tensor_data(s->copies[i]),
               (size_t)tg_tensor_numel(t) * tg_dtype_size(tg_tensor_dtype(t)));
    }
}

static void snapshot_free(snapshot *s) {
    for (int i = 0; i < s->n; i++) tg_tensor_free(s->copies[i]);
    free(s->copies);
    *s = (snapshot){0};
}

/* Mean cross-entropy and accuracy over every batch of loader, without recording. Returns
 * false (message printed) on error. */
static bool evaluate(tg_tape *tp, const net *nt, tg_loader *loader, double *loss,
                     double *acc) {
    double loss_sum = 0.0, correct = 0.0;
    int64_t seen = 0;
    tg_tensor *x, *y;
    tg_loader_start_epoch(loader);
    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false);
    while (tg_loader_next(loader, tp, &x, &y)) {
        tg_tensor *logits = net_forward(tp, nt, x);
        tg_tensor *ce = tg_cross_entropy(tp, logits, y, NULL);
        if (!ce) break;
        int64_t b = tg_tensor_dim(y, 0);
        loss_sum += tg_tensor_item(ce) * (double)b;
        correct += tg_accuracy(logits, y) * (double)b;
        seen += b;
        tg_tape_reset(tp);
        tg_tape_set_grad_enabled(tp, false);
    }
    const char *err = tg_tape_error(tp);
    if (err) fprintf(stderr, "mlp_search: evaluation failed: %s\n", err);
    tg_tape_reset(tp);
    *loss = loss_sum / (double)(seen ? seen : 1);
    *acc = correct / (double)(seen ? seen : 1);
    return !err && seen > 0;
}

/* One epoch of Adam on cross-entropy + reg * (|W1|^2 + |W2|^2); false (message printed) on
 * error. */
static bool train_epoch(tg_tape *tp, const net *nt, tg_optim *optim, tg_loader *loader,
                        double reg) {
    tg_tensor *x, *y;
    tg_loader_start_epoch(loader);
    while (tg_loader_next(loader, tp, &x, &y)) {
        tg_tensor *ce = tg_cross_entropy(tp, net_forward(tp, nt, x), y, NULL);
        tg_tensor *l2 = tg_add(tp, tg_sum(tp, tg_square(tp, nt->w1), NULL, 0, false),
                               tg_sum(tp, tg_square(tp, nt->w2), NULL, 0, false));
        tg_tensor *loss = tg_add(tp, ce, tg_mul_scalar(tp, l2, reg));
        tg_optim_zero_grad(optim);
        if (!loss || tg_backward(tp, loss, NULL) != 0 || tg_optim_step(optim) != 0) {
            fprintf(stderr, "mlp_search: training failed: %s\n",
                    tg_tape_error(tp) ? tg_tape_error(tp) : tg_last_error());
            return false;
        }
        tg_tape_reset(tp);
    }
    const char *err = tg_tape_error(tp); /* the loader stops early on an error too */
    if (err) fprintf(stderr, "mlp_search: loading a batch failed: %s\n", err);
    tg_tape_reset(tp);
    return !err;
}

/* The loaders of one search: training (shuffled), validation and test. */
typedef struct data {
    tg_loader *train, *val, *test;
} data;

/* Trains a fresh net with cfg, early-stopping on the validation loss, and leaves it at its
 * best epoch in *out (the caller frees out->model); a trial that never reaches a finite
 * validation loss gets an infinite one. Returns false (message printed) on error. */
static bool run_trial(const config *cfg, const options *o, const data *d, tg_tape *tp,
                      tg_rng *rng, net *out, result *res) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *out = (net){0};
    *res = (result){0};
    tg_optim_opts adam = tg_optim_defaults(TG_OPTIM_ADAM);
    adam.lr = cfg->lr;
    tg_optim *optim = tg_optim_new(TG_OPTIM_ADAM, &adam);
    snapshot best = {0};
    bool ok = net_init(out, cfg->hidden, rng) && optim &&
              tg_optim_add_model(optim, out->model, NULL, NULL, false, NULL) >= 0;
    if (!ok) fprintf(stderr, "mlp_search: cannot build the trial: %s\n", tg_last_error());
    tg_early_stopping es = tg_early_stopping_init(o->patience, 0.0, false);
    for (int epoch = 0; ok && epoch < o->epochs; epoch++) {
        double val_loss, val_acc;
        ok = train_epoch(tp, out, optim, d->train, cfg->reg) &&
             evaluate(tp, out, d->val, &val_loss, &val_acc);
        if (!ok) break;
        res->epochs_run = epoch + 1;
        bool stop = tg_early_stopping_update(&es, val_loss);
        if (es.best_update == epoch) { /* a new best: remember it */
            res->val_loss = val_loss;
            res->val_acc = val_acc;
            res->best_epoch = epoch + 1;
            ok = snapshot_take(&best, out->model);
        }
        if (stop) {
            res->stopped_early = epoch + 1 < o->epochs;
            break;
        }
    }
    if (ok && best.n > 0) snapshot_restore(&best, out->model);
    if (res->best_epoch == 0) res->val_loss = INFINITY; /* diverged: never a finite loss */
    snapshot_free(&best);
    tg_optim_free(optim);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return ok;
}

/* A uniform draw of log10 between log10(lo) and log10(hi), as the notes' 'log' mode. */
static double log_uniform(tg_rng *rng, double lo, double hi) {
    return pow(10.0, log10(lo) + (log10(hi) - log10(lo)) * tg_rng_uniform(rng));
}

/* [from, from + n) as an index list. */
static int64_t *index_range(int64_t from, int64_t n) {
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    for (int64_t i = 0; idx && i < n; i++) idx[i] = from + i;
    return idx;
}

int main(int argc, char **argv) {
    options o = {.epochs = 15, .patience = 3, .trials = 6, .batch = 50, .seed = 1,
                 .data_dir = "data/mnist", .train_limit = 5000, .val_limit = 1000,
                 .test_limit = 10000};
    const option_def table[] = {
        {"--epochs", OPT_INT, &o.epochs, "N", "most epochs per trial (default 15)"},
        {"--patience", OPT_INT, &o.patience, "N",
         "stop after N epochs without a better validation loss\n(default 3)"},
        {"--trials", OPT_INT, &o.trials, "N", "random-search trials (default 6)"},
        {"--batch", OPT_INT64, &o.batch, "N", "batch size (default 50)"},
        {"--seed", OPT_U64, &o.seed, "N", "random seed (default 1)"},
        {"--data", OPT_STRING, &o.data_dir, "DIR", "MNIST folder (default data/mnist)"},
        {"--train-limit", OPT_INT64, &o.train_limit, "N",
         "training images, the first of the training file (default 5000)"},
        {"--val-limit", OPT_INT64, &o.val_limit, "N",
         "validation images, the ones after them (default 1000)"},
        {"--test-limit", OPT_INT64, &o.test_limit, "N", "official test images (default 10000)"},
    };
    int parsed = options_parse(argc, argv, "mlp_search", table, sizeof table / sizeof table[0]);
    if (parsed != OPTIONS_RUN) return parsed;
    if (o.epochs < 1 || o.patience < 0 || o.trials < 0 || o.batch < 1 || o.train_limit < 1 ||
        o.val_limit < 1 || o.test_limit < 1) {
        fprintf(stderr, "mlp_search: counts must be positive (--patience, --trials >= 0)\n");
        return 2;
    }

    tg_dataset *train_ds = tg_mnist_load(o.data_dir, true);
    tg_dataset *test_ds = tg_mnist_load(o.data_dir, false);
    if (!train_ds || !test_ds) {
        fprintf(stderr, "mlp_search: cannot load MNIST: %s\n", tg_last_error());
        tg_dataset_free(train_ds);
        tg_dataset_free(test_ds);
        return 1;
    }
    if (o.train_limit + o.val_limit > train_ds->n) {
        fprintf(stderr, "mlp_search: the training file has only %lld images\n",
                (long long)train_ds->n);
        tg_dataset_free(train_ds);
        tg_dataset_free(test_ds);
        return 2;
    }
    if (o.test_limit > test_ds->n) o.test_limit = test_ds->n;
    tg_rng *rng = tg_rng_new(o.seed);
    int64_t *train_idx = index_range(0, o.train_limit);
    int64_t *val_idx = index_range(o.train_limit, o.val_limit);
    int64_t *test_idx = index_range(0, o.test_limit);
    data d = {
        tg_loader_new(train_ds, o.batch, true, false, train_idx, o.train_limit, NULL, rng),
        tg_loader_new(train_ds, EVAL_BATCH, false, false, val_idx, o.val_limit, NULL, NULL),
        tg_loader_new(test_ds, EVAL_BATCH, false, false, test_idx, o.test_limit, NULL, NULL),
    };
    tg_tape *tp = tg_tape_new();
    if (!rng || !d.train || !d.val || !d.test || !tp) {
        fprintf(stderr, "mlp_search: setup failed: %s\n", tg_last_error());
        return 1;
    }

    /* the grid first, then the random draws */
    static const double grid_lr[] = {1e-2, 1e-3, 1e-4}, grid_reg[] = {1e-4, 1e-3};
    enum { GRID = 6 };
    int n_trials = GRID + o.trials;
    config *configs = malloc((size_t)n_trials * sizeof *configs);
    if (!configs) return 1;
    for (int i = 0; i < GRID; i++) configs[i] = (config){grid_lr[i / 2], 100, grid_reg[i % 2]};
    for (int i = GRID; i < n_trials; i++)
        configs[i] = (config){log_uniform(rng, 1e-4, 1e-2), 32 + (int64_t)tg_rng_below(rng, 225),
                              log_uniform(rng, 1e-6, 1e-2)};

    printf("two-layer classifier on %lld training / %lld validation / %lld test images; at most "
           "%d epochs per trial, patience %d\n\n", (long long)o.train_limit,
           (long long)o.val_limit, (long long)o.test_limit, o.epochs, o.patience);
    printf("trial  search       lr  hidden       reg  epochs  best  val loss  val acc  time\n");
    net best_net = {0};
    config best_cfg = {0};
    result best_res = {0};
    int best_trial = -1;
    for (int i = 0; i < n_trials; i++) {
        net trial_net;
        result r;
        if (!run_trial(&configs[i], &o, &d, tp, rng, &trial_net, &r)) return 1;
        printf("%5d  %-6s  %8.2e  %6lld  %8.2e  %3d%-3s  %4d  %8.4f  %7.4f  %4.1fs\n", i + 1,
               i < GRID ? "grid" : "random", configs[i].lr, (long long)configs[i].hidden,
               configs[i].reg, r.epochs_run, r.stopped_early ? " es" : "", r.best_epoch,
               r.val_loss, r.val_acc, r.seconds);
        fflush(stdout);
        if (best_trial < 0 || r.val_loss < best_res.val_loss) {
            tg_model_free(best_net.model);
            best_net = trial_net;
            best_cfg = configs[i];
            best_res = r;
            best_trial = i;
        } else {
            tg_model_free(trial_net.model);
        }
    }

    double test_loss, test_acc;
    if (!evaluate(tp, &best_net, d.test, &test_loss, &test_acc)) return 1;
    printf("\n(es: stopped early; best: the epoch whose parameters were kept)\n");
    printf("best: trial %d (%s search), lr %.2e, hidden %lld, reg %.2e: validation loss %.4f, "
           "accuracy %.4f\n", best_trial + 1, best_trial < GRID ? "grid" : "random", best_cfg.lr,
           (long long)best_cfg.hidden, best_cfg.reg, best_res.val_loss, best_res.val_acc);
    printf("test accuracy of the best model: %.4f (test loss %.4f)\n", test_acc, test_loss);

    tg_model_free(best_net.model);
    free(configs);
    tg_tape_free(tp);
    tg_loader_free(d.train);
    tg_loader_free(d.val);
    tg_loader_free(d.test);
    free(train_idx);
    free(val_idx);
    free(test_idx);
    tg_rng_free(rng);
    tg_dataset_free(train_ds);
    tg_dataset_free(test_ds);
    return test_acc > 0.5 ? 0 : 1;
}
