/* autoencoder: the MNIST autoencoder of the course notes (seed 004, section 6.4). The encoder
 * Linear(784, hidden) -> LeakyReLU -> Linear(hidden, 20) squeezes an image into a 20-number
 * code, the decoder Linear(20, hidden) -> LeakyReLU -> Linear(hidden, 784) rebuilds it, and
 * the loss is the mean squared error between input and output pixels (in [0, 1]): no labels.
 *
 * It is also the complete training loop in one file: layer objects in a model, a shuffling
 * loader, Adam, a cosine learning-rate schedule stepped per epoch, a progress display,
 * checkpoints (--save after every epoch, --resume to continue) and evaluation without
 * recording. At the end it prints the test MSE next to that of always answering the mean
 * training image, and writes a grid of test digits as a binary PGM: rows of originals, each
 * followed by a row of their reconstructions. Exits 1 unless the test MSE is below half the
 * baseline.
 *
 *   autoencoder [--epochs N] [--batch N] [--lr X] [--hidden N] [--seed N] [--data DIR]
 *               [--train-limit N] [--test-limit N] [--save PATH] [--resume PATH]
 *               [--out PATH] [--quiet] [--help]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad.h>

#include "options.h"

enum { SIDE = 28, PIXELS = SIDE * SIDE, LATENT = 20, EVAL_BATCH = 1000 };
enum { GRID_COLS = 10, GRID_PAIRS = 3, GAP = 2, ZOOM = 2 };

typedef struct options {
    int epochs;
    int64_t batch, hidden;
    double lr;
    uint64_t seed;
    const char *data_dir, *save_path, *resume_path, *out;
    int64_t train_limit, test_limit;
    bool quiet;
} options;

/* The model and its two halves. */
typedef struct autoencoder {
    tg_model *model;
    tg_layer *encoder, *decoder;
} autoencoder;

/* Two Sequentials, "encoder" and "decoder", whose parameters get the state_dict keys
 * "encoder.0.weight", "encoder.0.bias", ... Returns false when a layer could not be made. */
static bool build(autoencoder *ae, int64_t hidden, tg_rng *rng) {
    tg_model *m = ae->model = tg_model_new("Autoencoder");
    if (!m) return false;
    ae->encoder = tg_sequential_new(m, "encoder");
    tg_layer *enc[] = {
        tg_linear_new(m, "encoder.0", PIXELS, hidden, true, rng),
        tg_activation_new(m, "encoder.1", TG_ACT_LEAKY_RELU, 0.01),
        tg_linear_new(m, "encoder.2", hidden, LATENT, true, rng),
    };
    ae->decoder = tg_sequential_new(m, "decoder");
    tg_layer *dec[] = {
        tg_linear_new(m, "decoder.0", LATENT, hidden, true, rng),
        tg_activation_new(m, "decoder.1", TG_ACT_LEAKY_RELU, 0.01),
        tg_linear_new(m, "decoder.2", hidden, PIXELS, true, rng),
    };
    for (int i = 0; i < 3; i++)
        if (!ae->encoder || !ae->decoder || tg_sequential_add(ae->encoder, enc[i]) != 0 ||
            tg_sequential_add(ae->decoder, dec[i]) != 0)
            return false;
    return true;
}

/* Images [B, 1, 28, 28] -> the rows the network sees, [B, 784] (a view). */
static tg_tensor *flatten(tg_tape *tp, tg_tensor *images) {
    return tg_reshape(tp, images, 2, (int64_t[]){-1, PIXELS});
}

/* Flattened images [B, 784] -> codes [B, 20] -> reconstructions [B, 784]. */
static tg_tensor *reconstruct(tg_tape *tp, const autoencoder *ae, tg_tensor *flat) {
    tg_tensor *code = tg_layer_forward(tp, ae->encoder, flat);
    return tg_layer_forward(tp, ae->decoder, code);
}

/* Mean squared error over the whole loader, without recording; negative on error. */
static double evaluate(tg_tape *tp, const autoencoder *ae, tg_loader *loader) {
    double sum = 0.0;
    int64_t seen = 0;
    tg_tensor *x, *y;
    tg_loader_start_epoch(loader);
    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false);
    while (tg_loader_next(loader, tp, &x, &y)) {
        tg_tensor *flat = flatten(tp, x);
        tg_tensor *mse = tg_mse_loss(tp, reconstruct(tp, ae, flat), flat, TG_REDUCTION_SUM);
        if (!mse) break;
        sum += tg_tensor_item(mse);
        seen += tg_tensor_numel(flat);
        tg_tape_reset(tp);
        tg_tape_set_grad_enabled(tp, false);
    }
    const char *err = tg_tape_error(tp);
    if (err) fprintf(stderr, "autoencoder: evaluation failed: %s\n", err);
    tg_tape_reset(tp);
    return err || seen == 0 ? -1.0 : sum / (double)seen;
}

/* The MSE of answering every test image with the mean training image: what the model must
 * beat. Both index lists select images of their datasets. */
static double mean_image_mse(const tg_dataset *train, const int64_t *train_idx, int64_t n_train,
                             const tg_dataset *test, const int64_t *test_idx, int64_t n_test) {
    double mean[PIXELS] = {0}, sum = 0.0;
    for (int64_t i = 0; i < n_train; i++)
        for (int p = 0; p < PIXELS; p++)
            mean[p] += train->pixels[train_idx[i] * PIXELS + p] / 255.0 / (double)n_train;
    for (int64_t i = 0; i < n_test; i++)
        for (int p = 0; p < PIXELS; p++) {
            double d = test->pixels[test_idx[i] * PIXELS + p] / 255.0 - mean[p];
            sum += d * d;
        }
    return sum / (double)(n_test * PIXELS);
}

/* Writes the first GRID_COLS * GRID_PAIRS test images and their reconstructions as a grey PGM
 * (P5): GRID_PAIRS pairs of rows, originals above reconstructions, each digit ZOOM times
 * larger and GAP pixels apart. Returns 0, or -1 with a message printed. */
static int write_grid(const char *path, tg_tape *tp, const autoencoder *ae,
                      const tg_dataset *test) {
    enum { N = GRID_COLS * GRID_PAIRS, CELL = SIDE * ZOOM + GAP };
    enum { W = GRID_COLS * CELL + GAP, H = 2 * GRID_PAIRS * CELL + GAP };
    static uint8_t canvas[H * W];
    float images[N * PIXELS];
    for (int i = 0; i < N * PIXELS; i++) images[i] = test->pixels[i] / 255.0f;
    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false);
    tg_tensor *flat = tg_tensor_from(tp, TG_F32, 2, (int64_t[]){N, PIXELS}, images);
    tg_tensor *out = reconstruct(tp, ae, flat);
    if (!out) {
        fprintf(stderr, "autoencoder: reconstruction failed: %s\n", tg_tape_error(tp));
        tg_tape_reset(tp);
        return -1;
    }
    const float *rec = tg_tensor_data(out);
    memset(canvas, 64, sizeof canvas); /* dark grey between the digits */
    for (int i = 0; i < N; i++)
        for (int pass = 0; pass < 2; pass++) {
            const float *src = pass == 0 ? &images[i * PIXELS] : &rec[i * PIXELS];
            int top = GAP + (2 * (i / GRID_COLS) + pass) * CELL;
            int left = GAP + (i % GRID_COLS) * CELL;
            for (int y = 0; y < SIDE * ZOOM; y++)
                for (int x = 0; x < SIDE * ZOOM; x++) {
                    float v = fminf(fmaxf(src[(y / ZOOM) * SIDE + x / ZOOM], 0.0f), 1.0f);
                    canvas[(top + y) * W + left + x] = (uint8_t)(v * 255.0f + 0.5f);
                }
        }
    tg_tape_reset(tp);
    FILE *f = fopen(path, "wb");
    bool ok = f && fprintf(f, "P5\n%d %d\n255\n", W, H) > 0 &&
              fwrite(canvas, 1, sizeof canvas, f) == sizeof canvas;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) perror(path);
    return ok ? 0 : -1;
}

/* [0, n) as an index list. */
static int64_t *first_n(int64_t n) {
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    for (int64_t i = 0; idx && i < n; i++) idx[i] = i;
    return idx;
}

int main(int argc, char **argv) {
    options o = {.epochs = 10, .batch = 64, .lr = 1e-3, .hidden = 256, .seed = 1,
                 .data_dir = "data/mnist", .out = "autoencoder.pgm"};
    const option_def table[] = {
        {"--epochs", OPT_INT, &o.epochs, "N", "epochs (default 10)"},
        {"--batch", OPT_INT64, &o.batch, "N", "batch size (default 64)"},
        {"--lr", OPT_DOUBLE, &o.lr, "X", "initial learning rate of Adam (default 0.001)"},
        {"--hidden", OPT_INT64, &o.hidden, "N",
         "hidden width of encoder and decoder (default 256)"},
        {"--seed", OPT_U64, &o.seed, "N", "random seed (default 1)"},
        {"--data", OPT_STRING, &o.data_dir, "DIR", "MNIST folder (default data/mnist)"},
        {"--train-limit", OPT_INT64, &o.train_limit, "N",
         "use only the first N training images (default: all)"},
        {"--test-limit", OPT_INT64, &o.test_limit, "N",
         "use only the first N test images (default: all)"},
        {"--save", OPT_STRING, &o.save_path, "PATH", "write a checkpoint after every epoch"},
        {"--resume", OPT_STRING, &o.resume_path, "PATH", "continue from a checkpoint"},
        {"--out", OPT_STRING, &o.out, "PATH",
         "originals and reconstructions (default autoencoder.pgm)"},
        {"--quiet", OPT_FLAG, &o.quiet, NULL, "epoch lines only, no progress display"},
    };
    int parsed = options_parse(argc, argv, "autoencoder", table, sizeof table / sizeof table[0]);
    if (parsed != OPTIONS_RUN) return parsed;
    if (o.epochs < 1 || o.batch < 1 || !(o.lr > 0) || o.hidden < 1 || o.train_limit < 0 ||
        (o.test_limit != 0 && o.test_limit < GRID_COLS * GRID_PAIRS)) {
        fprintf(stderr, "autoencoder: numbers must be positive (--test-limit at least %d)\n",
                GRID_COLS * GRID_PAIRS);
        return 2;
    }

    /* data: the training images (shuffled every epoch) and the test images, or the first
     * train_limit and test_limit of them */
    tg_dataset *train = tg_mnist_load(o.data_dir, true), *test = tg_mnist_load(o.data_dir, false);
    if (!train || !test) {
        fprintf(stderr, "autoencoder: cannot load MNIST: %s\n", tg_last_error());
        tg_dataset_free(train);
        tg_dataset_free(test);
        return 1;
    }
    if (o.train_limit == 0 || o.train_limit > train->n) o.train_limit = train->n;
    if (o.test_limit == 0 || o.test_limit > test->n) o.test_limit = test->n;
    int64_t *train_idx = first_n(o.train_limit), *test_idx = first_n(o.test_limit);
    tg_rng *rng = tg_rng_new(o.seed);
    tg_loader *train_loader = tg_loader_new(train, o.batch, true, false, train_idx,
                                            o.train_limit, NULL, rng);
    tg_loader *test_loader = tg_loader_new(test, EVAL_BATCH, false, false, test_idx,
                                           o.test_limit, NULL, NULL);

    /* model, optimizer, schedule, tape */
    autoencoder ae = {0};
    bool built = rng && build(&ae, o.hidden, rng);
    tg_optim_opts adam = tg_optim_defaults(TG_OPTIM_ADAM);
    adam.lr = o.lr;
    tg_optim *optim = tg_optim_new(TG_OPTIM_ADAM, &adam);
    built = built && optim && tg_optim_add_model(optim, ae.model, NULL, NULL, false, NULL) >= 0;
    tg_sched *sched = built ? tg_sched_cosine_new(optim, o.epochs, 0.0) : NULL; /* per epoch */
    tg_tape *tp = tg_tape_new();
    if (!train_loader || !test_loader || !built || !sched || !tp) {
        fprintf(stderr, "autoencoder: setup failed: %s\n", tg_last_error());
        return 1;
    }
    tg_train_state ts = {.epoch = 0, .step = 0, .rng = rng};
    if (o.resume_path) {
        if (tg_load_checkpoint(o.resume_path, ae.model, optim, sched, &ts) != 0) {
            fprintf(stderr, "autoencoder: cannot resume: %s\n", tg_last_error());
            return 1;
        }
        printf("resumed from %s after epoch %lld\n", o.resume_path, (long long)ts.epoch);
    }
    tg_model_print(ae.model, stdout);
    printf("%lld parameters; %lld training and %lld test images\n",
           (long long)tg_model_num_parameters(ae.model, true), (long long)o.train_limit,
           (long long)o.test_limit);

    for (int epoch = (int)ts.epoch; epoch < o.epochs; epoch++) {
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, o.epochs);
        tg_progress *bar =
            o.quiet ? NULL : tg_progress_new(stdout, label, tg_loader_num_batches(train_loader));
        double lr = tg_optim_get_lr(optim, 0), loss_sum = 0.0;
        int64_t done = 0;
        tg_tensor *x, *y;
        tg_loader_start_epoch(train_loader); /* a new shuffle */
        while (tg_loader_next(train_loader, tp, &x, &y)) {
            tg_tensor *flat = flatten(tp, x); /* input and target */
            tg_tensor *loss = tg_mse_loss(tp, reconstruct(tp, &ae, flat), flat, TG_REDUCTION_MEAN);
            tg_optim_zero_grad(optim);
            if (!loss || tg_backward(tp, loss, NULL) != 0 || tg_optim_step(optim) != 0) {
                fprintf(stderr, "autoencoder: training failed: %s\n",
                        tg_tape_error(tp) ? tg_tape_error(tp) : tg_last_error());
                return 1;
            }
            loss_sum += tg_tensor_item(loss);
            ts.step++;
            done++;
            if (bar) /* running mean loss; no accuracy for an autoencoder */
                tg_progress_update(bar, done, loss_sum / (double)done, NAN, tg_tensor_dim(x, 0));
            tg_tape_reset(tp); /* the step's tensors are released here */
        }
        if (tg_tape_error(tp)) { /* the loader stops early on an error too */
            fprintf(stderr, "autoencoder: loading a batch failed: %s\n", tg_tape_error(tp));
            return 1;
        }
        if (bar) tg_progress_finish(bar, NULL);
        tg_sched_step(sched);
        double test_mse = evaluate(tp, &ae, test_loader);
        if (test_mse < 0) return 1;
        printf("epoch %d/%d  lr %.2e  train loss %.5f  test MSE %.5f\n", epoch + 1, o.epochs, lr,
               loss_sum / (double)(done ? done : 1), test_mse);
        fflush(stdout);
        ts.epoch = epoch + 1;
        if (o.save_path && tg_save_checkpoint(o.save_path, ae.model, optim, sched, &ts) != 0) {
            fprintf(stderr, "autoencoder: cannot save: %s\n", tg_last_error());
            return 1;
        }
    }

    double test_mse = evaluate(tp, &ae, test_loader);
    double baseline = mean_image_mse(train, train_idx, o.train_limit, test, test_idx,
                                     o.test_limit);
    printf("test MSE %.5f (the mean training image scores %.5f)\n", test_mse, baseline);
    int status = test_mse >= 0 && test_mse < 0.5 * baseline ? 0 : 1;
    if (write_grid(o.out, tp, &ae, test) != 0) {
        status = 1;
    } else {
        printf("wrote %s (rows of test digits, each above its reconstruction)\n", o.out);
    }

    tg_tape_free(tp);
    tg_sched_free(sched);
    tg_optim_free(optim);
    tg_model_free(ae.model);
    tg_loader_free(train_loader);
    tg_loader_free(test_loader);
    tg_rng_free(rng);
    free(train_idx);
    free(test_idx);
    tg_dataset_free(train);
    tg_dataset_free(test);
    return status;
}
