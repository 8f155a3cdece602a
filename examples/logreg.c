/* logreg: logistic regression as the course notes (seed 004, section 2) build it: the model
 * y = sigmoid(X w + b), the binary cross-entropy loss, and full-batch gradient descent (lr 0.5,
 * 400 steps) from weights drawn as 0.001 * normal.
 *
 * By default the data are generated: two Gaussian clouds in the plane with identity covariance,
 * one per class, so the best possible classifier is linear and its (Bayes) accuracy is known in
 * closed form; the trained model should come close to it. With --data DIR it separates the
 * digits 0 and 1 of MNIST instead (784 pixel features scaled to [0, 1]).
 *
 * Prints the loss and training accuracy every 50 steps, then the test accuracy. Exits 1 unless
 * the test accuracy is within 0.03 of the Bayes accuracy (generated data) or above 0.98 (MNIST).
 *
 *   logreg [--steps N] [--lr X] [--seed N] [--data DIR] [--train-limit N] [--help]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <tapegrad.h>

#include "options.h"

enum { N_TRAIN = 400, N_TEST = 10000 };

typedef struct options {
    int steps;
    double lr;
    uint64_t seed;
    const char *data_dir;   /* NULL: generated data */
    int64_t train_limit;    /* > 0: at most that many MNIST training images */
} options;

/* A labelled set: features x [n, d] and labels y [n, 1] (0 or 1), both persistent f32. */
typedef struct split {
    tg_tensor *x, *y;
} split;

static void split_free(split *s) {
    tg_tensor_free(s->x);
    tg_tensor_free(s->y);
}

/* The means of the two generated classes; the covariance is the identity. */
static const double MEAN[2][2] = {{-0.5, 0.0}, {1.5, 1.0}};

/* n points, each class with probability 1/2, drawn from that class's Gaussian. */
static split generate(int64_t n, tg_rng *rng) {
    float *x = malloc((size_t)n * 2 * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    split s = {0};
    if (x && y) {
        for (int64_t i = 0; i < n; i++) {
            int c = (int)tg_rng_below(rng, 2);
            y[i] = (float)c;
            for (int j = 0; j < 2; j++) x[i * 2 + j] = (float)(MEAN[c][j] + tg_rng_normal(rng));
        }
        s.x = tg_tensor_from(NULL, TG_F32, 2, (int64_t[]){n, 2}, x);
        s.y = tg_tensor_from(NULL, TG_F32, 2, (int64_t[]){n, 1}, y);
    }
    free(x);
    free(y);
    return s;
}

/* The accuracy of the best classifier for the generated data: the boundary is the plane halfway
 * between the means, at distance |mean1 - mean0| / 2 from each, so it is Phi(that distance). */
static double bayes_accuracy(void) {
    double dx = MEAN[1][0] - MEAN[0][0], dy = MEAN[1][1] - MEAN[0][1];
    return 0.5 * erfc(-sqrt(dx * dx + dy * dy) / 2.0 / sqrt(2.0));
}

/* The images of digits 0 and 1 in ds (at most limit of them when limit > 0), pixels / 255 as
 * features and the digit as label. */
static split mnist_zero_one(const tg_dataset *ds, int64_t limit) {
    int64_t d = ds->channels * ds->height * ds->width, n = 0;
    for (int64_t i = 0; i < ds->n; i++) n += ds->labels[i] <= 1;
    if (limit > 0 && n > limit) n = limit;
    float *x = malloc((size_t)(n * d) * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    split s = {0};
    if (x && y && n > 0) {
        int64_t k = 0;
        for (int64_t i = 0; i < ds->n && k < n; i++) {
            if (ds->labels[i] > 1) continue;
            for (int64_t j = 0; j < d; j++) x[k * d + j] = (float)ds->pixels[i * d + j] / 255.0f;
            y[k++] = (float)ds->labels[i];
        }
        s.x = tg_tensor_from(NULL, TG_F32, 2, (int64_t[]){n, d}, x);
        s.y = tg_tensor_from(NULL, TG_F32, 2, (int64_t[]){n, 1}, y);
    }
    free(x);
    free(y);
    return s;
}

/* The model's probabilities sigmoid(x w + b): [n, 1]. */
static tg_tensor *predict(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b) {
    return tg_sigmoid(tp, tg_add(tp, tg_matmul(tp, x, w), b));
}

/* The fraction of rows where p > 0.5 agrees with the label y (both [n, 1]). */
static double accuracy(const tg_tensor *p, const tg_tensor *y) {
    const float *pd = tg_tensor_data(p), *yd = tg_tensor_data(y);
    int64_t n = tg_tensor_numel(y), correct = 0;
    for (int64_t i = 0; i < n; i++) correct += (pd[i] > 0.5f) == (yd[i] > 0.5f);
    return (double)correct / (double)n;
}

int main(int argc, char **argv) {
    options o = {.steps = 400, .lr = 0.5, .seed = 1};
    const option_def table[] = {
        {"--steps", OPT_INT, &o.steps, "N", "gradient-descent steps (default 400)"},
        {"--lr", OPT_DOUBLE, &o.lr, "X", "learning rate (default 0.5)"},
        {"--seed", OPT_U64, &o.seed, "N", "random seed (default 1)"},
        {"--data", OPT_STRING, &o.data_dir, "DIR",
         "MNIST 0 versus 1 from DIR instead of generated points"},
        {"--train-limit", OPT_INT64, &o.train_limit, "N",
         "with --data: use at most N training images"},
    };
    int parsed = options_parse(argc, argv, "logreg", table, sizeof table / sizeof table[0]);
    if (parsed != OPTIONS_RUN) return parsed;
    if (o.steps < 1 || !(o.lr > 0) || o.train_limit < 0) {
        fprintf(stderr, "logreg: --steps and --lr must be positive\n");
        return 2;
    }

    tg_rng *rng = tg_rng_new(o.seed);
    split train, test;
    if (o.data_dir) {
        tg_dataset *train_ds = tg_mnist_load(o.data_dir, true);
        tg_dataset *test_ds = tg_mnist_load(o.data_dir, false);
        if (!train_ds || !test_ds) {
            fprintf(stderr, "logreg: cannot load MNIST: %s\n", tg_last_error());
            tg_dataset_free(train_ds);
            tg_dataset_free(test_ds);
            tg_rng_free(rng);
            return 1;
        }
        train = mnist_zero_one(train_ds, o.train_limit);
        test = mnist_zero_one(test_ds, 0);
        tg_dataset_free(train_ds);
        tg_dataset_free(test_ds);
    } else {
        train = generate(N_TRAIN, rng);
        test = generate(N_TEST, rng);
    }
    if (!train.x || !test.x) {
        fprintf(stderr, "logreg: cannot make the data: %s\n", tg_last_error());
        return 1;
    }
    int64_t d = tg_tensor_dim(train.x, 1);
    printf("logistic regression: %lld features, %lld training and %lld test examples (%s)\n",
           (long long)d, (long long)tg_tensor_dim(train.x, 0), (long long)tg_tensor_dim(test.x, 0),
           o.data_dir ? "MNIST 0 vs 1" : "two Gaussian clouds");

    /* the parameters: w [d, 1] ~ 0.001 * normal as in the notes, b [1] = 0 */
    tg_tensor *w = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){d, 1}, 0.0, 0.001);
    tg_tensor *b = tg_zeros(NULL, TG_F32, 1, (int64_t[]){1});
    tg_set_requires_grad(w, true);
    tg_set_requires_grad(b, true);
    tg_optim_opts sgd = tg_optim_defaults(TG_OPTIM_SGD);
    sgd.lr = o.lr;
    tg_optim *optim = tg_optim_new(TG_OPTIM_SGD, &sgd);
    tg_tape *tp = tg_tape_new();
    if (!w || !b || !optim || !tp ||
        tg_optim_add_group(optim, 2, (tg_tensor *[]){w, b}, NULL) < 0) {
        fprintf(stderr, "logreg: setup failed: %s\n", tg_last_error());
        return 1;
    }

    for (int step = 0; step < o.steps; step++) {
        tg_tape_reset(tp);
        tg_tensor *p = predict(tp, train.x, w, b);
        tg_tensor *loss = tg_binary_cross_entropy(tp, p, train.y, NULL, TG_REDUCTION_MEAN);
        if (!loss) {
            fprintf(stderr, "logreg: forward failed: %s\n", tg_tape_error(tp));
            return 1;
        }
        if (step % 50 == 0 || step == o.steps - 1)
            printf("step %3d  loss %.4f  train accuracy %.4f\n", step, tg_tensor_item(loss),
                   accuracy(p, train.y));
        tg_optim_zero_grad(optim);
        if (tg_backward(tp, loss, NULL) != 0 || tg_optim_step(optim) != 0) {
            fprintf(stderr, "logreg: training failed: %s\n", tg_tape_error(tp));
            return 1;
        }
    }

    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false); /* evaluation records nothing */
    tg_tensor *test_p = predict(tp, test.x, w, b);
    if (!test_p) {
        fprintf(stderr, "logreg: evaluation failed: %s\n", tg_tape_error(tp));
        return 1;
    }
    double test_acc = accuracy(test_p, test.y);
    bool ok;
    if (o.data_dir) {
        printf("test accuracy %.4f\n", test_acc);
        ok = test_acc > 0.98;
    } else {
        /* the true log-odds of class 1 are (m1 - m0) . x - (|m1|^2 - |m0|^2) / 2 */
        const float *wd = tg_tensor_data(w);
        double bw[2], bb = 0.0, bayes = bayes_accuracy();
        for (int j = 0; j < 2; j++) {
            bw[j] = MEAN[1][j] - MEAN[0][j];
            bb -= (MEAN[1][j] * MEAN[1][j] - MEAN[0][j] * MEAN[0][j]) / 2.0;
        }
        printf("learned w = (%.3f, %.3f), b = %.3f; the true log-odds have w = (%.3f, %.3f), "
               "b = %.3f\n", wd[0], wd[1], tg_tensor_item(b), bw[0], bw[1], bb);
        printf("test accuracy %.4f (the expected accuracy of the Bayes-optimal classifier: %.4f)\n",
               test_acc, bayes);
        ok = test_acc > bayes - 0.03;
    }

    tg_tape_free(tp);
    tg_optim_free(optim);
    tg_tensor_free(w);
    tg_tensor_free(b);
    split_free(&train);
    split_free(&test);
    tg_rng_free(rng);
    return ok ? 0 : 1;
}
