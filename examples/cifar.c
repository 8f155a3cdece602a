/* cifar: the CIFAR-10 networks of seed 003 -- AlexNet-style (with local response norm and
 * dropout), VGG11, GoogLeNet (Inception modules), ResNet (residual blocks) and DenseNet (dense
 * blocks and transitions; these two with batch norm) -- trained with the notes' recipe: images
 * scaled to [0, 1], plain SGD on the mean cross-entropy with each net's batch size and learning
 * rate, a new order of whole batches every epoch. The nets are in cifar_models.c.
 *
 *   cifar --model resnet                     a generated CIFAR-shaped set (no download needed)
 *   cifar --model vgg11 --data DIR           CIFAR-10's binary files (data_batch_*.bin and
 *                                            test_batch.bin, from cifar-10-binary.tar.gz)
 *
 * The generated set has labels a net can learn (a colour and a stripe orientation per class,
 * under random stripe periods and phases and pixel noise), so the loss visibly falls within an
 * epoch or two. Prints the loss, the accuracies and the training speed in images/s after every
 * epoch. Exits 1 on an error and when the loss stops being finite. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <tapegrad.h>

#include "cifar_models.h"
#include "options.h"

enum { EVAL_BATCH = 100, GENERATED_TRAIN = 2000, GENERATED_TEST = 500 };

typedef struct options {
    cifar_model_kind model;
    const char *data_dir;   /* NULL: generate the data */
    int epochs;
    int64_t batch;          /* 0: the recipe's */
    double lr;              /* 0: the recipe's */
    int threads;            /* 0: the library's default */
    uint64_t seed;
    int64_t train_limit, test_limit;   /* > 0: that many images (generated: that many made) */
    const char *save_path;
    bool quiet;
} options;

/* n generated [3, 32, 32] images. Class c has colour c % 5 (one of five tints added to the
 * channels) and stripes along rows (c < 5) or columns (c >= 5), each image with its own stripe
 * period (4 to 8 pixels) and phase, plus Gaussian pixel noise; pixels are clamped to 0..255. */
static tg_dataset *generate(int64_t n, tg_rng *rng) {
    static const double tint[5][3] = {
        {1, -1, -1}, {-1, 1, -1}, {-1, -1, 1}, {1, 1, -1}, {-1, 1, 1},
    };
    const double pi = 3.14159265358979323846;
    uint8_t *pixels = malloc((size_t)n * 3 * 32 * 32);
    int64_t *labels = malloc((size_t)n * sizeof *labels);
    tg_dataset *ds = NULL;
    if (pixels && labels) {
        for (int64_t i = 0; i < n; i++) {
            int64_t c = (int64_t)tg_rng_below(rng, 10);
            double period = 4.0 + 4.0 * tg_rng_uniform(rng);
            double phase = 2.0 * pi * tg_rng_uniform(rng);
            uint8_t *img = pixels + i * 3 * 32 * 32;
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++) {
                        double along = c < 5 ? y : x;
                        double v = 128.0 + 40.0 * tint[c % 5][ch] +
                                   50.0 * sin(2.0 * pi * along / period + phase) +
                                   30.0 * tg_rng_normal(rng);
                        img[(ch * 32 + y) * 32 + x] = (uint8_t)fmin(fmax(v, 0.0), 255.0);
                    }
            labels[i] = c;
        }
        ds = tg_dataset_new(n, 3, 32, 32, 10, pixels, labels);
    }
    free(pixels);
    free(labels);
    return ds;
}

/* The indices 0 .. min(n, limit) - 1 (all n when limit is 0); *count gets their number. */
static int64_t *first(int64_t n, int64_t limit, int64_t *count) {
    *count = limit > 0 && limit < n ? limit : n;
    int64_t *idx = malloc((size_t)(*count > 0 ? *count : 1) * sizeof *idx);
    for (int64_t i = 0; idx && i < *count; i++) idx[i] = i;
    return idx;
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* Test accuracy in eval mode without recording, or -1 with the error printed. */
static double evaluate(tg_tape *tp, const cifar_net *net, tg_loader *test) {
    tg_model *m = cifar_net_model(net);
    tg_model_set_training(m, false);
    int64_t correct = 0, seen = 0;
    bool failed = false;
    tg_tensor *x, *y;
    tg_loader_start_epoch(test);
    tg_tape_set_grad_enabled(tp, false);
    while (tg_loader_next(test, tp, &x, &y)) {
        double acc = tg_accuracy(cifar_net_forward(tp, net, x), y);
        if (acc != acc) {
            failed = true;
            break;
        }
        int64_t b = tg_tensor_dim(y, 0);
        correct += (int64_t)(acc * (double)b + 0.5);
        seen += b;
        tg_tape_reset(tp);
        tg_tape_set_grad_enabled(tp, false);
    }
    const char *err = tg_tape_error(tp);
    if (!err && failed) err = tg_last_error();
    if (err) fprintf(stderr, "evaluation failed: %s\n", err);
    tg_tape_reset(tp);
    tg_model_set_training(m, true);
    return err || seen == 0 ? -1.0 : (double)correct / (double)seen;
}

/* The statistics of one training epoch. */
typedef struct epoch_stats {
    double loss, accuracy;   /* means over the epoch's images */
    int64_t images;
    double seconds;          /* training steps only */
} epoch_stats;

/* One epoch of SGD on the mean cross-entropy; false with the error printed (also when the
 * loss stops being finite). */
static bool train_epoch(tg_tape *tp, const cifar_net *net, tg_optim *sgd, tg_loader *train,
                        tg_progress *bar, epoch_stats *st) {
    double loss_sum = 0.0, correct = 0.0;
    int64_t steps = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tg_tensor *x, *y;
    const char *err = NULL;
    tg_loader_start_epoch(train);
    *st = (epoch_stats){0};
    while (tg_loader_next(train, tp, &x, &y)) {
        tg_tensor *logits = cifar_net_forward(tp, net, x);
        tg_tensor *loss = tg_cross_entropy(tp, logits, y, NULL);
        if (!loss || tg_backward(tp, loss, NULL) != 0) break;
        double l = tg_tensor_item(loss);
        if (!isfinite(l)) {
            err = "the loss is not finite (try a smaller --lr)";
            break;
        }
        if (tg_optim_step(sgd) != 0) {
            err = tg_last_error();
            break;
        }
        tg_optim_zero_grad(sgd);
        int64_t b = tg_tensor_dim(y, 0);
        loss_sum += l * (double)b;
        correct += tg_accuracy(logits, y) * (double)b;
        st->images += b;
        steps++;
        if (bar) tg_progress_update(bar, steps, loss_sum / (double)st->images,
                                    correct / (double)st->images, b);
        tg_tape_reset(tp);
    }
    if (!err) err = tg_tape_error(tp);
    if (!err && st->images == 0) err = "no batch was trained";
    if (err) {
        tg_progress_finish(bar, "failed");
        fprintf(stderr, "training failed: %s\n", err);
        return false;
    }
    tg_progress_finish(bar, NULL);
    st->seconds = seconds_since(&t0);
    st->loss = loss_sum / (double)st->images;
    st->accuracy = correct / (double)st->images;
    return true;
}

/* Everything main allocates, freed in one place. */
typedef struct run {
    tg_rng *rng;
    tg_dataset *train, *test;
    int64_t *train_idx, *test_idx;
    tg_loader *train_loader, *test_loader;
    cifar_net *net;
    tg_optim *sgd;
    tg_tape *tp;
} run;

static void run_free(run *r) {
    tg_tape_free(r->tp);
    tg_optim_free(r->sgd);
    cifar_net_free(r->net);
    tg_loader_free(r->train_loader);
    tg_loader_free(r->test_loader);
    free(r->train_idx);
    free(r->test_idx);
    tg_dataset_free(r->train);
    tg_dataset_free(r->test);
    tg_rng_free(r->rng);
}

/* Loads or generates the data, builds the net, the optimizer and the loaders; false with a
 * message printed. */
static bool run_init(run *r, const options *o, int64_t batch, double lr) {
    r->rng = tg_rng_new(o->seed);
    if (!r->rng) return false;
    if (o->data_dir) {
        r->train = tg_cifar10_load(o->data_dir, true);
        r->test = r->train ? tg_cifar10_load(o->data_dir, false) : NULL;
    } else {
        r->train = generate(o->train_limit > 0 ? o->train_limit : GENERATED_TRAIN, r->rng);
        r->test = r->train ? generate(o->test_limit > 0 ? o->test_limit : GENERATED_TEST, r->rng)
                           : NULL;
    }
    if (!r->train || !r->test) {
        fprintf(stderr, "cannot %s the data: %s\n", o->data_dir ? "load" : "generate",
                tg_last_error() ? tg_last_error() : "out of memory");
        return false;
    }
    int64_t n_train, n_test;
    r->train_idx = first(r->train->n, o->train_limit, &n_train);
    r->test_idx = first(r->test->n, o->test_limit, &n_test);
    r->net = cifar_net_new(o->model, r->rng);
    if (!r->train_idx || !r->test_idx || !r->net) {
        fprintf(stderr, "cannot build %s: %s\n", cifar_model_name(o->model),
                tg_last_error() ? tg_last_error() : "out of memory");
        return false;
    }
    tg_optim_opts so = tg_optim_defaults(TG_OPTIM_SGD);
    so.lr = lr;
    r->sgd = tg_optim_new(TG_OPTIM_SGD, &so);
    if (!r->sgd ||
        tg_optim_add_model(r->sgd, cifar_net_model(r->net), NULL, NULL, false, NULL) < 0) {
        fprintf(stderr, "cannot set up SGD: %s\n", tg_last_error());
        return false;
    }
    /* The notes' loop: a new permutation each epoch, whole batches only. */
    tg_transform tr = tg_transform_defaults();
    r->train_loader = tg_loader_new(r->train, batch, true, true, r->train_idx, n_train, &tr,
                                    r->rng);
    r->test_loader = tg_loader_new(r->test, EVAL_BATCH, false, false, r->test_idx, n_test, &tr,
                                   NULL);
    r->tp = tg_tape_new();
    if (!r->train_loader || !r->test_loader || !r->tp) {
        fprintf(stderr, "cannot set up the loaders: %s\n", tg_last_error());
        return false;
    }
    if (tg_loader_num_batches(r->train_loader) == 0) {
        fprintf(stderr, "cannot train: %lld training images make no batch of %lld\n",
                (long long)n_train, (long long)batch);
        return false;
    }
    return true;
}

int main(int argc, char **argv) {
    options o = {.model = CIFAR_ALEXNET, .epochs = 2, .seed = 1};
    const char *model_name = NULL;
    char data_help[128];
    snprintf(data_help, sizeof data_help,
             "CIFAR-10 binary files; without it a generated set of %d\ntraining and %d test images",
             GENERATED_TRAIN, GENERATED_TEST);
    const option_def table[] = {
        {"--model", OPT_STRING, &model_name, "NAME",
         "alexnet (default), vgg11, googlenet, resnet or densenet"},
        {"--data", OPT_STRING, &o.data_dir, "DIR", data_help},
        {"--epochs", OPT_INT, &o.epochs, "N", "epochs (default 2)"},
        {"--batch", OPT_INT64, &o.batch, "N", "batch size (default: the notes' for the model)"},
        {"--lr", OPT_DOUBLE, &o.lr, "X", "SGD learning rate (default: the notes' for the model)"},
        {"--threads", OPT_INT, &o.threads, "N", "threads for BLIS and the kernels"},
        {"--seed", OPT_U64, &o.seed, "N", "random seed (default 1)"},
        {"--train-limit", OPT_INT64, &o.train_limit, "N", "train on N images (generated: make N)"},
        {"--test-limit", OPT_INT64, &o.test_limit, "N", "test on N images (generated: make N)"},
        {"--save", OPT_STRING, &o.save_path, "FILE", "write the trained model (safetensors)"},
        {"--quiet", OPT_FLAG, &o.quiet, NULL, "epoch lines only, no progress bars"},
    };
    int parsed = options_parse(argc, argv, "cifar", table, sizeof table / sizeof table[0]);
    if (parsed != OPTIONS_RUN) return parsed;
    if (model_name && !cifar_model_parse(model_name, &o.model)) {
        fprintf(stderr, "cifar: unknown model \"%s\" (alexnet, vgg11, googlenet, resnet, "
                        "densenet)\n", model_name);
        return 2;
    }
    if (o.epochs < 1 || o.batch < 0 || o.lr < 0 || o.threads < 0 || o.train_limit < 0 ||
        o.test_limit < 0) {
        fprintf(stderr, "cifar: --epochs must be at least 1 and no number negative\n");
        return 2;
    }
    if (o.threads > 0) tg_set_num_threads(o.threads);
    cifar_recipe rc = cifar_recipe_for(o.model);
    int64_t batch = o.batch > 0 ? o.batch : rc.batch;
    double lr = o.lr > 0 ? o.lr : rc.lr;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run r = {0};
    if (!run_init(&r, &o, batch, lr)) {
        run_free(&r);
        return 1;
    }
    printf("%s: %lld parameters, SGD lr %g, batch %lld, %d epochs, %lld training and %lld test "
           "images (%s), %d threads\n",
           cifar_model_name(o.model),
           (long long)tg_model_num_parameters(cifar_net_model(r.net), false), lr,
           (long long)batch, o.epochs, (long long)tg_loader_num_examples(r.train_loader),
           (long long)tg_loader_num_examples(r.test_loader),
           o.data_dir ? o.data_dir : "generated", tg_get_num_threads());
    fflush(stdout);
    double acc = -1.0, images = 0.0, seconds = 0.0;
    for (int epoch = 0; epoch < o.epochs; epoch++) {
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, o.epochs);
        tg_progress *bar = o.quiet ? NULL
                                   : tg_progress_new(stdout, label,
                                                     tg_loader_num_batches(r.train_loader));
        epoch_stats st;
        if (!train_epoch(r.tp, r.net, r.sgd, r.train_loader, bar, &st)) {
            acc = -1.0;
            break;
        }
        images += (double)st.images;
        seconds += st.seconds;
        acc = evaluate(r.tp, r.net, r.test_loader);
        if (acc < 0) break;
        printf("epoch %d/%d  loss %.4f  train accuracy %.4f  test accuracy %.4f  %.1f images/s  "
               "(%.1f s)\n",
               epoch + 1, o.epochs, st.loss, st.accuracy, acc, (double)st.images / st.seconds,
               seconds_since(&t0));
        fflush(stdout);
    }
    if (acc >= 0 && o.save_path && tg_save_model(cifar_net_model(r.net), o.save_path) != 0) {
        fprintf(stderr, "cannot save the model: %s\n", tg_last_error());
        acc = -1.0;
    }
    if (acc >= 0)
        printf("final test accuracy: %.4f (%d epochs, %.1f images/s, %.1f s)\n", acc, o.epochs,
               images / seconds, seconds_since(&t0));
    run_free(&r);
    return acc >= 0 ? 0 : 1;
}
