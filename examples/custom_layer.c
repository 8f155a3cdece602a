/* custom_layer: a layer the library does not have, written in the program from primitives,
 * proved correct with the gradient checkers, then trained.
 *
 * The layer is a gated feed-forward block as modern transformers use it:
 *   y = x + W_out (silu(x' W_gate^T + b_gate) * (x' W_value^T + b_value)) + b_out,
 *   x' = rms_norm(x) = x / sqrt(mean(x^2 over the last dim) + eps) * g
 * RMSNorm (no mean subtraction, no bias) and the swish-gated linear unit (SwiGLU) are each a
 * few primitive calls; nothing here writes a gradient, because the tape derives it. That is why
 * the derivation is worth checking: tg_gradcheck compares the tape's Jacobian with central
 * differences and tg_gradgradcheck does the same for the gradient itself (second order), in
 * f64, for both functions and the whole block, and the reports are printed. A variant with a
 * deliberately wrong gradient shows what a failure looks like.
 *
 * The block then sits between two library Linear layers in a classifier of the three-armed
 * spiral (2-D points, 3 classes, not linearly separable), trained with Adam on the whole set.
 * Its parameters live in the same model as the library layers' ("block.norm.weight", ...), so
 * the optimizer, checkpoints and tg_model_zero_grad treat them alike.
 * Exits 1 unless the checks come out as expected and the training accuracy reaches 0.95.
 *
 *   custom_layer [--steps N] [--lr X] [--hidden N] [--seed N] [--help]
 */
#include <math.h>
#include <stdio.h>

#include <tapegrad.h>

#include "options.h"

enum { CLASSES = 3, PER_CLASS = 100, WIDTH = 32 };

typedef struct options {
    int steps;
    double lr;
    int64_t hidden;
    uint64_t seed;
} options;

/* ---------------------------------------------------------------------------------------------
 * The layer, functional form: plain functions of tensors, any float dtype, any leading dims.
 * ------------------------------------------------------------------------------------------- */

/* RMSNorm over the last dim. x: [..., D], g: [D] -> [..., D]. */
static tg_tensor *rms_norm(tg_tape *tp, tg_tensor *x, tg_tensor *g, double eps) {
    int last = -1;
    tg_tensor *mean_sq = tg_mean(tp, tg_square(tp, x), &last, 1, true); /* [..., 1] */
    tg_tensor *inv_rms = tg_rsqrt(tp, tg_add_scalar(tp, mean_sq, eps));
    return tg_mul(tp, tg_mul(tp, x, inv_rms), g); /* both broadcast */
}

/* SwiGLU: silu(x W_gate^T + b_gate) * (x W_value^T + b_value), silu(a) = a sigmoid(a).
 * x: [N, D], weights [H, D] (PyTorch's Linear layout), biases [H] -> [N, H]. */
static tg_tensor *swiglu(tg_tape *tp, tg_tensor *x, tg_tensor *w_gate, tg_tensor *b_gate,
                         tg_tensor *w_value, tg_tensor *b_value) {
    tg_tensor *gate = tg_add(tp, tg_matmul_trans(tp, x, false, w_gate, true), b_gate);
    tg_tensor *value = tg_add(tp, tg_matmul_trans(tp, x, false, w_value, true), b_value);
    return tg_mul(tp, tg_mul(tp, gate, tg_sigmoid(tp, gate)), value);
}

/* ---------------------------------------------------------------------------------------------
 * The layer object: its parameters, registered in a model under "<name>.<part>".
 * ------------------------------------------------------------------------------------------- */

typedef struct glu_block {
    tg_tensor *norm;              /* g [D], ones */
    tg_tensor *w_gate, *b_gate;   /* [H, D], [H] */
    tg_tensor *w_value, *b_value; /* [H, D], [H] */
    tg_tensor *w_out, *b_out;     /* [D, H], [D] */
} glu_block;

#define RMS_EPS 1e-6

/* y = x + W_out swiglu(rms_norm(x)) + b_out. x: [N, D] -> [N, D]. */
static tg_tensor *glu_block_forward(tg_tape *tp, const glu_block *b, tg_tensor *x) {
    tg_tensor *h = swiglu(tp, rms_norm(tp, x, b->norm, RMS_EPS), b->w_gate, b->b_gate,
                          b->w_value, b->b_value);
    return tg_add(tp, x, tg_add(tp, tg_matmul_trans(tp, h, false, b->w_out, true), b->b_out));
}

/* Registers the parameter t as "<name>.<part>" in m (which then owns it); NULL on failure. */
static tg_tensor *add_param(tg_model *m, const char *name, const char *part, tg_tensor *t) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", name, part);
    return tg_model_add_param(m, full, t);
}

/* Makes a block of width dim and gated width hidden in m under name, f32, initialized as
 * PyTorch initializes Linear layers (RMSNorm's gain: ones). Returns false with tg_last_error. */
static bool glu_block_init(glu_block *b, tg_model *m, const char *name, int64_t dim,
                           int64_t hidden, tg_rng *rng) {
    int64_t in_shape[2] = {hidden, dim}, out_shape[2] = {dim, hidden};
    b->norm = add_param(m, name, "norm.weight", tg_ones(NULL, TG_F32, 1, &dim));
    b->w_gate = add_param(m, name, "gate.weight", tg_zeros(NULL, TG_F32, 2, in_shape));
    b->b_gate = add_param(m, name, "gate.bias", tg_zeros(NULL, TG_F32, 1, &hidden));
    b->w_value = add_param(m, name, "value.weight", tg_zeros(NULL, TG_F32, 2, in_shape));
    b->b_value = add_param(m, name, "value.bias", tg_zeros(NULL, TG_F32, 1, &hidden));
    b->w_out = add_param(m, name, "out.weight", tg_zeros(NULL, TG_F32, 2, out_shape));
    b->b_out = add_param(m, name, "out.bias", tg_zeros(NULL, TG_F32, 1, &dim));
    return b->norm && b->w_gate && b->b_gate && b->w_value && b->b_value && b->w_out &&
           b->b_out && tg_init_default_layer(b->w_gate, b->b_gate, rng) == 0 &&
           tg_init_default_layer(b->w_value, b->b_value, rng) == 0 &&
           tg_init_default_layer(b->w_out, b->b_out, rng) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Checking the gradients: each function as a tg_fn of persistent f64 inputs.
 * ------------------------------------------------------------------------------------------- */

/* inputs: x [N, D], g [D] */
static tg_tensor *rms_norm_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    return rms_norm(tp, in[0], in[1], RMS_EPS);
}

/* inputs: x, w_gate, b_gate, w_value, b_value */
static tg_tensor *swiglu_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    return swiglu(tp, in[0], in[1], in[2], in[3], in[4]);
}

/* inputs: x, then the block's seven parameters in struct order */
static tg_tensor *block_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    glu_block b = {in[1], in[2], in[3], in[4], in[5], in[6], in[7]};
    return glu_block_forward(tp, &b, in[0]);
}

/* A deliberate mistake, to watch the check catch one: rms_norm with 1/rms detached from the
 * tape, as if it were a constant. The values are right; the gradient misses a term. */
static tg_tensor *rms_norm_detached_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    int last = -1;
    tg_tensor *mean_sq = tg_mean(tp, tg_square(tp, in[0]), &last, 1, true);
    tg_tensor *inv_rms = tg_detach(tp, tg_rsqrt(tp, tg_add_scalar(tp, mean_sq, RMS_EPS)));
    return tg_mul(tp, tg_mul(tp, in[0], inv_rms), in[1]);
}

/* Runs both checks on fn with n random normal f64 inputs of the given shapes (each requiring
 * grad) and prints the reports. Returns 0 when both passed, 1 when one failed, -1 when a check
 * could not run. */
static int check(const char *label, tg_fn fn, int n, const int64_t shapes[][2],
                 const int *ndims, tg_rng *rng) {
    tg_tensor *inputs[8] = {0};
    bool made = true;
    for (int i = 0; i < n; i++) {
        inputs[i] = tg_randn(NULL, rng, TG_F64, ndims[i], shapes[i], 0.0, 1.0);
        made = made && inputs[i] && tg_set_requires_grad(inputs[i], true) == 0;
    }
    tg_gradcheck_opts opts = tg_gradcheck_defaults(); /* eps 1e-6, atol 1e-5, rtol 1e-3 */
    tg_gradcheck_report first = {0}, second = {0};
    int r1 = made ? tg_gradcheck(fn, NULL, n, inputs, &opts, &first) : -1;
    int r2 = made ? tg_gradgradcheck(fn, NULL, n, inputs, &opts, &second) : -1;
    printf("%s\n  gradcheck:     %s\n  gradgradcheck: %s\n", label,
           made ? first.message : tg_last_error(), made ? second.message : tg_last_error());
    for (int i = 0; i < n; i++) tg_tensor_free(inputs[i]);
    return r1 < 0 || r2 < 0 ? -1 : r1 || r2 ? 1 : 0;
}

/* Checks both functions and the whole block (which must pass) and the detached rms_norm
 * (which must fail); true when all four came out so. */
static bool check_all(tg_rng *rng) {
    enum { N = 3, D = 4, H = 5 };
    bool ok = check("rms_norm(x [3, 4], g [4])", rms_norm_fn, 2,
                    (const int64_t[][2]){{N, D}, {D}}, (const int[]){2, 1}, rng) == 0;
    ok = check("swiglu(x [3, 4], W_gate [5, 4], b_gate [5], W_value [5, 4], b_value [5])",
               swiglu_fn, 5, (const int64_t[][2]){{N, D}, {H, D}, {H}, {H, D}, {H}},
               (const int[]){2, 2, 1, 2, 1}, rng) == 0 && ok;
    ok = check("glu_block(x [3, 4]) with all seven parameters", block_fn, 8,
               (const int64_t[][2]){{N, D}, {D}, {H, D}, {H}, {H, D}, {H}, {D, H}, {D}},
               (const int[]){2, 1, 2, 1, 2, 1, 2, 1}, rng) == 0 && ok;
    ok = check("rms_norm with 1/rms detached (a wrong gradient, which the checks must catch)",
               rms_norm_detached_fn, 2, (const int64_t[][2]){{N, D}, {D}}, (const int[]){2, 1},
               rng) == 1 && ok;
    return ok;
}

/* ---------------------------------------------------------------------------------------------
 * Training: Linear(2, 32) -> glu_block(32, hidden) -> Linear(32, 3) on the spiral.
 * ------------------------------------------------------------------------------------------- */

/* PER_CLASS points of each of the three arms: radius r from 0 to 1, angle 4 (k + r) plus
 * noise. x: [3 * PER_CLASS, 2] and labels [3 * PER_CLASS], persistent. */
static void spiral(tg_rng *rng, tg_tensor **x, tg_tensor **y) {
    enum { N = CLASSES * PER_CLASS };
    float pts[N * 2];
    int64_t labels[N];
    for (int k = 0; k < CLASSES; k++)
        for (int i = 0; i < PER_CLASS; i++) {
            double r = (double)i / (PER_CLASS - 1);
            double angle = 4.0 * (k + r) + 0.2 * tg_rng_normal(rng);
            pts[(k * PER_CLASS + i) * 2] = (float)(r * sin(angle));
            pts[(k * PER_CLASS + i) * 2 + 1] = (float)(r * cos(angle));
            labels[k * PER_CLASS + i] = k;
        }
    *x = tg_tensor_from(NULL, TG_F32, 2, (int64_t[]){N, 2}, pts);
    *y = tg_tensor_from(NULL, TG_I64, 1, (int64_t[]){N}, labels);
}

typedef struct classifier {
    tg_model *model;
    tg_layer *embed, *head;  /* library layers */
    glu_block block;         /* ours */
} classifier;

static tg_tensor *classify(tg_tape *tp, const classifier *c, tg_tensor *x) {
    tg_tensor *h = tg_layer_forward(tp, c->embed, x);  /* [N, 32] */
    h = glu_block_forward(tp, &c->block, h);           /* [N, 32] */
    return tg_layer_forward(tp, c->head, h);           /* [N, 3] */
}

/* Trains on the spiral and returns the final training accuracy (negative on error). */
static double train(const options *o, tg_rng *rng) {
    classifier c = {.model = tg_model_new("SpiralNet")};
    tg_tensor *x = NULL, *y = NULL, *test_x = NULL, *test_y = NULL;
    spiral(rng, &x, &y);
    spiral(rng, &test_x, &test_y); /* the same arms, fresh noise */
    tg_optim_opts adam = tg_optim_defaults(TG_OPTIM_ADAM);
    adam.lr = o->lr;
    tg_optim *optim = tg_optim_new(TG_OPTIM_ADAM, &adam);
    tg_tape *tp = tg_tape_new();
    double acc = -1.0;
    bool built = c.model && (c.embed = tg_linear_new(c.model, "embed", 2, WIDTH, true, rng)) &&
                 glu_block_init(&c.block, c.model, "block", WIDTH, o->hidden, rng) &&
                 (c.head = tg_linear_new(c.model, "head", WIDTH, CLASSES, true, rng));
    if (!built || !x || !test_x || !optim || !tp ||
        tg_optim_add_model(optim, c.model, NULL, NULL, false, NULL) < 0) {
        fprintf(stderr, "custom_layer: setup failed: %s\n", tg_last_error());
        goto done;
    }
    printf("\nSpiralNet parameters (library layers and the custom block alike):\n");
    for (int i = 0; i < tg_model_num_entries(c.model); i++) {
        tg_model_entry e = tg_model_entry_at(c.model, i);
        char shape[64];
        printf("  %-20s %s\n", e.name, tg_tensor_describe(e.tensor, shape, sizeof shape));
    }
    for (int step = 0; step <= o->steps; step++) {
        tg_tape_reset(tp);
        tg_tensor *logits = classify(tp, &c, x);
        tg_tensor *loss = tg_cross_entropy(tp, logits, y, NULL);
        if (!loss) {
            fprintf(stderr, "custom_layer: forward failed: %s\n", tg_tape_error(tp));
            goto done;
        }
        acc = tg_accuracy(logits, y);
        if (step % 100 == 0 || step == o->steps)
            printf("step %4d  loss %.4f  train accuracy %.4f\n", step, tg_tensor_item(loss), acc);
        if (step == o->steps) break; /* the last pass only measures */
        tg_optim_zero_grad(optim);
        if (tg_backward(tp, loss, NULL) != 0 || tg_optim_step(optim) != 0) {
            fprintf(stderr, "custom_layer: training failed: %s\n", tg_tape_error(tp));
            acc = -1.0;
            goto done;
        }
    }
    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false);
    printf("accuracy on a fresh spiral: %.4f\n", tg_accuracy(classify(tp, &c, test_x), test_y));
done:
    tg_tape_free(tp);
    tg_optim_free(optim);
    tg_model_free(c.model);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(test_x);
    tg_tensor_free(test_y);
    return acc;
}

int main(int argc, char **argv) {
    options o = {.steps = 500, .lr = 1e-2, .hidden = 64, .seed = 1};
    const option_def table[] = {
        {"--steps", OPT_INT, &o.steps, "N", "full-batch Adam steps (default 500)"},
        {"--lr", OPT_DOUBLE, &o.lr, "X", "learning rate (default 0.01)"},
        {"--hidden", OPT_INT64, &o.hidden, "N", "width of the gated unit (default 64)"},
        {"--seed", OPT_U64, &o.seed, "N", "random seed (default 1)"},
    };
    int parsed = options_parse(argc, argv, "custom_layer", table, sizeof table / sizeof table[0]);
    if (parsed != OPTIONS_RUN) return parsed;
    if (o.steps < 1 || !(o.lr > 0) || o.hidden < 1) {
        fprintf(stderr, "custom_layer: --steps, --lr and --hidden must be positive\n");
        return 2;
    }
    tg_rng *rng = tg_rng_new(o.seed);
    if (!rng) return 1;
    bool checked = check_all(rng);
    printf("%s\n", checked ? "the gradient checks came out as expected"
                           : "a gradient check did NOT come out as expected");
    double acc = train(&o, rng);
    tg_rng_free(rng);
    return checked && acc >= 0.95 ? 0 : 1;
}
