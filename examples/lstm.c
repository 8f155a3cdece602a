/* lstm: an LSTM learns to add two numbers digit by digit (the notes' LSTM, seed 004, RNN
 * section, on a task whose answer needs memory: the carry).
 *
 * The numbers a and b have L digits each (leading zeros allowed) and are fed least significant
 * digit first: at step t the input is one-hot(a_t) next to one-hot(b_t) [N, 20], and the
 * network answers digit t of a + b (10 classes) from the LSTMCell's hidden state through a
 * Linear layer. One more step with both digits 0 yields the final carry, so a sequence has
 * T = L + 1 steps. L is drawn anew for every batch (1..--max-digits), and the C loop below runs
 * the cell T times, so the tape records a graph of a different size at every step: nothing is
 * padded or masked (the progress lines show the node count of the last batch's graph).
 *
 * Prints the loss and the digit and whole-sum accuracy as they rise, then the whole-sum accuracy
 * for every length up to 8 digits beyond the longest trained one. Exits 1 unless the digit
 * accuracy of the final evaluation at the trained lengths reaches 0.9.
 *
 *   lstm [--steps N] [--batch N] [--hidden N] [--lr X] [--max-digits N] [--seed N] [--help]
 */
#include <stdio.h>
#include <stdlib.h>

#include <tapegrad.h>

#include "options.h"

enum { DIGITS = 10, INPUTS = 2 * DIGITS, MAX_STEPS = 64, EVAL_PAIRS = 500, BEYOND = 8 };

typedef struct options {
    int steps, max_digits;
    int64_t batch, hidden;
    double lr;
    uint64_t seed;
} options;

/* A batch of n additions of L-digit numbers, T = L + 1 steps, least significant digit first:
 * inputs [T][n][20] (one-hot a_t, one-hot b_t) and targets [T][n] (digit t of the sum). */
typedef struct batch {
    int64_t n;
    int steps;
    float *inputs;
    int64_t *targets;
} batch;

static bool batch_make(batch *b, int64_t n, int digits, tg_rng *rng) {
    b->n = n;
    b->steps = digits + 1;
    b->inputs = calloc((size_t)(b->steps * n * INPUTS), sizeof *b->inputs);
    b->targets = malloc((size_t)(b->steps * n) * sizeof *b->targets);
    if (!b->inputs || !b->targets) return false;
    for (int64_t i = 0; i < n; i++) {
        int carry = 0;
        for (int t = 0; t < b->steps; t++) {
            int da = t < digits ? (int)tg_rng_below(rng, DIGITS) : 0;
            int db = t < digits ? (int)tg_rng_below(rng, DIGITS) : 0;
            float *x = &b->inputs[(t * n + i) * INPUTS];
            x[da] = 1.0f;
            x[DIGITS + db] = 1.0f;
            b->targets[t * n + i] = (da + db + carry) % DIGITS;
            carry = (da + db + carry) / DIGITS;
        }
    }
    return true;
}

static void batch_free(batch *b) {
    free(b->inputs);
    free(b->targets);
}

/* The network: an LSTMCell and the Linear layer reading each step's hidden state. */
typedef struct net {
    tg_model *model;
    tg_layer *cell, *out;
} net;

/* Runs the cell over the batch's T steps and returns the logits of every step stacked as
 * [T * n, 10] (step-major, like the targets). The loop length is the data's: each call records
 * its own graph. */
static tg_tensor *forward(tg_tape *tp, const net *nt, const batch *b) {
    tg_tensor *logits[MAX_STEPS];
    tg_tensor *h = NULL, *c = NULL; /* NULL states are zeros */
    for (int t = 0; t < b->steps; t++) {
        tg_tensor *x = tg_tensor_from(tp, TG_F32, 2, (int64_t[]){b->n, INPUTS},
                                      &b->inputs[t * b->n * INPUTS]);
        h = tg_lstm_cell_step(tp, nt->cell, x, h, c, &c);
        logits[t] = tg_layer_forward(tp, nt->out, h);
    }
    return tg_concat(tp, b->steps, logits, 0);
}

/* Counts, over logits [T * n, 10] against the batch's targets, the correct digits and the
 * rows whose every digit (the whole sum) is correct. */
static void score(const tg_tensor *logits, const batch *b, int64_t *digits_ok, int64_t *sums_ok) {
    const float *l = tg_tensor_data(logits);
    *digits_ok = *sums_ok = 0;
    for (int64_t i = 0; i < b->n; i++) {
        bool all = true;
        for (int t = 0; t < b->steps; t++) {
            const float *row = &l[(t * b->n + i) * DIGITS];
            int best = 0;
            for (int k = 1; k < DIGITS; k++)
                if (row[k] > row[best]) best = k;
            bool ok = best == b->targets[t * b->n + i];
            *digits_ok += ok;
            all = all && ok;
        }
        *sums_ok += all;
    }
}

/* Digit and whole-sum accuracy on EVAL_PAIRS fresh additions of `digits`-digit numbers,
 * without recording; false (message printed) on error. */
static bool evaluate(tg_tape *tp, const net *nt, int digits, tg_rng *rng, double *digit_acc,
                     double *sum_acc) {
    batch b = {0};
    bool ok = batch_make(&b, EVAL_PAIRS, digits, rng);
    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false);
    tg_tensor *logits = ok ? forward(tp, nt, &b) : NULL;
    if (logits) {
        int64_t digits_ok, sums_ok;
        score(logits, &b, &digits_ok, &sums_ok);
        *digit_acc = (double)digits_ok / (double)(b.n * b.steps);
        *sum_acc = (double)sums_ok / (double)b.n;
    } else {
        fprintf(stderr, "lstm: evaluation failed: %s\n",
                tg_tape_error(tp) ? tg_tape_error(tp) : "out of memory");
    }
    tg_tape_reset(tp);
    batch_free(&b);
    return logits != NULL;
}

int main(int argc, char **argv) {
    options o = {.steps = 1500, .batch = 32, .hidden = 32, .lr = 1e-2, .max_digits = 8,
                 .seed = 1};
    const option_def table[] = {
        {"--steps", OPT_INT, &o.steps, "N", "training batches (default 1500)"},
        {"--batch", OPT_INT64, &o.batch, "N", "pairs of numbers per batch (default 32)"},
        {"--hidden", OPT_INT64, &o.hidden, "N", "LSTM hidden size (default 32)"},
        {"--lr", OPT_DOUBLE, &o.lr, "X", "Adam learning rate (default 0.01)"},
        {"--max-digits", OPT_INT, &o.max_digits, "N", "longest numbers trained on (default 8)"},
        {"--seed", OPT_U64, &o.seed, "N", "random seed (default 1)"},
    };
    int parsed = options_parse(argc, argv, "lstm", table, sizeof table / sizeof table[0]);
    if (parsed != OPTIONS_RUN) return parsed;
    if (o.steps < 1 || o.batch < 1 || o.hidden < 1 || !(o.lr > 0) || o.max_digits < 1 ||
        o.max_digits + BEYOND + 1 > MAX_STEPS) {
        fprintf(stderr, "lstm: numbers must be positive, --max-digits at most %d\n",
                MAX_STEPS - BEYOND - 1);
        return 2;
    }

    tg_rng *rng = tg_rng_new(o.seed);
    net nt = {.model = tg_model_new("Adder")};
    if (nt.model) {
        nt.cell = tg_lstm_cell_new(nt.model, "lstm", INPUTS, o.hidden, true, rng);
        nt.out = tg_linear_new(nt.model, "out", o.hidden, DIGITS, true, rng);
    }
    tg_optim_opts adam = tg_optim_defaults(TG_OPTIM_ADAM);
    adam.lr = o.lr;
    tg_optim *optim = tg_optim_new(TG_OPTIM_ADAM, &adam);
    tg_tape *tp = tg_tape_new();
    if (!rng || !nt.cell || !nt.out || !optim || !tp ||
        tg_optim_add_model(optim, nt.model, NULL, NULL, false, NULL) < 0) {
        fprintf(stderr, "lstm: setup failed: %s\n", tg_last_error());
        return 1;
    }
    /* the parameters, for gradient clipping */
    int n_params = tg_model_num_entries(nt.model);
    tg_tensor **params = malloc((size_t)n_params * sizeof *params);
    if (!params) return 1;
    for (int i = 0; i < n_params; i++) params[i] = tg_model_entry_at(nt.model, i).tensor;
    tg_model_print(nt.model, stdout);
    printf("adding numbers of 1..%d digits, least significant first; %d batches of %lld\n",
           o.max_digits, o.steps, (long long)o.batch);

    int64_t digits_ok = 0, sums_ok = 0, digits_seen = 0, sums_seen = 0;
    double loss_sum = 0.0;
    for (int step = 1; step <= o.steps; step++) {
        batch b = {0};
        int digits = 1 + (int)tg_rng_below(rng, (uint64_t)o.max_digits);
        if (!batch_make(&b, o.batch, digits, rng)) {
            fprintf(stderr, "lstm: out of memory\n");
            return 1;
        }
        tg_tape_reset(tp);
        tg_tensor *logits = forward(tp, &nt, &b);
        tg_tensor *targets = tg_tensor_from(tp, TG_I64, 1, (int64_t[]){b.steps * b.n}, b.targets);
        tg_tensor *loss = tg_cross_entropy(tp, logits, targets, NULL);
        tg_optim_zero_grad(optim);
        if (!loss || tg_backward(tp, loss, NULL) != 0) {
            fprintf(stderr, "lstm: training failed: %s\n", tg_tape_error(tp));
            return 1;
        }
        tg_clip_grad_norm(n_params, params, 1.0); /* recurrent nets can have gradient spikes */
        if (tg_optim_step(optim) != 0) {
            fprintf(stderr, "lstm: optimizer step failed: %s\n", tg_last_error());
            return 1;
        }

        int64_t d_ok, s_ok;
        score(logits, &b, &d_ok, &s_ok);
        digits_ok += d_ok;
        sums_ok += s_ok;
        digits_seen += b.n * b.steps;
        sums_seen += b.n;
        loss_sum += tg_tensor_item(loss);
        if (step % 100 == 0 || step == o.steps) {
            int64_t window = step % 100 == 0 ? 100 : step % 100;
            printf("step %4d  loss %.4f  digit accuracy %.4f  sum accuracy %.4f  (last batch: "
                   "%d digits, %lld tape nodes)\n", step, loss_sum / (double)window,
                   (double)digits_ok / (double)digits_seen, (double)sums_ok / (double)sums_seen,
                   digits, (long long)tg_tape_get_stats(tp).nodes);
            fflush(stdout);
            digits_ok = sums_ok = digits_seen = sums_seen = 0;
            loss_sum = 0.0;
        }
        batch_free(&b);
    }

    printf("\nwhole-sum accuracy on %d fresh additions per length (trained on 1..%d digits):\n",
           EVAL_PAIRS, o.max_digits);
    double trained_digits = 0.0;
    for (int digits = 1; digits <= o.max_digits + BEYOND; digits++) {
        double digit_acc, sum_acc;
        if (!evaluate(tp, &nt, digits, rng, &digit_acc, &sum_acc)) return 1;
        printf("  length %2d: %.4f  (digits right: %.4f)%s\n", digits, sum_acc, digit_acc,
               digits > o.max_digits ? "  longer than any trained" : "");
        if (digits <= o.max_digits) trained_digits += digit_acc / o.max_digits;
    }
    printf("digit accuracy at the trained lengths: %.4f\n", trained_digits);

    free(params);
    tg_tape_free(tp);
    tg_optim_free(optim);
    tg_model_free(nt.model);
    tg_rng_free(rng);
    return trained_digits >= 0.9 ? 0 : 1;
}
