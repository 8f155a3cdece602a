/* Tests of the activations, Linear, the initializers and the model registry (suite `nn`):
 * every case of tests/golden/activation.txt (written with PyTorch by cases_activation.py) in
 * f64 and f32 through the functional ops and the layer objects, values and gradients of
 * sum(out * R); first- and second-order gradcheck of every case; initializer distributions
 * with PyTorch's fans and gains; state_dict names, freezing, zero_grad and the printed tree of
 * a model built like a PyTorch one; the error paths. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "tapegrad.h"
#include "testing.h"

static golden *fixtures;

static void load_fixtures(void) { fixtures = golden_must_load(GOLDEN_DIR "/activation.txt"); }

static void free_fixtures(void) { golden_free(fixtures); }

static bool starts(const char *name, const char *prefix) {
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* got matches the fixture's `key` of case name within rtol. Infinite expected elements must
 * be matched exactly and are left out of the relative comparison. */
static void expect_golden(const char *name, const char *key, const tg_tensor *got, double rtol) {
    tg_tensor *want = golden_tensor(fixtures, name, key, TG_F64);
    ck_assert_msg(want != NULL, "%s: no %s in the fixture", name, key);
    ck_assert_msg(got != NULL, "%s %s: no result", name, key);
    tg_tensor *got64 = tg_tensor_clone(got);
    double *w = tg_tensor_data_mut(want);
    bool same_size = tg_tensor_numel(got) == tg_tensor_numel(want);
    for (int64_t i = 0; same_size && i < tg_tensor_numel(want); i++) {
        if (isfinite(w[i])) continue;
        double g = tg_tensor_get(got, i);
        ck_assert_msg(g == w[i], "%s %s element %lld: got %g, want %g", name, key, (long long)i, g,
                      w[i]);
        w[i] = 0.0;
        if (tg_tensor_dtype(got64) == TG_F32) ((float *)tg_tensor_data_mut(got64))[i] = 0.0f;
        else ((double *)tg_tensor_data_mut(got64))[i] = 0.0;
    }
    char why[256];
    bool ok = golden_close(got64, want, rtol, why, sizeof why);
    tg_tensor_free(want);
    tg_tensor_free(got64);
    ck_assert_msg(ok, "%s %s (%s): %s", name, key, tg_dtype_name(tg_tensor_dtype(got)), why);
}

/* ---- activations: one case and the op it names --------------------------------------------- */

typedef struct act_case {
    const char *name;
    tg_tensor *x;
    double slope, alpha, beta, threshold;
    int axis;
    int axes[TG_MAX_DIMS];
    int naxes;
    bool keepdim;
} act_case;

static act_case act_load(const char *name, tg_dtype dtype) {
    act_case c = {.name = name};
    c.x = golden_tensor(fixtures, name, "x", dtype);
    ck_assert_ptr_nonnull(c.x);
    c.slope = golden_number(fixtures, name, "negative_slope", NAN);
    c.alpha = golden_number(fixtures, name, "alpha", NAN);
    c.beta = golden_number(fixtures, name, "beta", NAN);
    c.threshold = golden_number(fixtures, name, "threshold", NAN);
    c.axis = (int)golden_number(fixtures, name, "axis", 0);
    c.keepdim = golden_number(fixtures, name, "keepdim", 0) != 0;
    tg_tensor *axes = golden_tensor(fixtures, name, "axes", TG_F64);
    if (axes) {
        c.naxes = (int)tg_tensor_numel(axes);
        for (int i = 0; i < c.naxes; i++) c.axes[i] = (int)tg_tensor_get(axes, i);
        tg_tensor_free(axes);
    }
    return c;
}

/* The functional op the case names, applied to x. */
static tg_tensor *apply_act(tg_tape *tp, const act_case *c, tg_tensor *x) {
    const char *n = c->name;
    if (starts(n, "relu/")) return tg_relu(tp, x);
    if (starts(n, "leaky_relu/")) return tg_leaky_relu(tp, x, c->slope);
    if (starts(n, "elu/")) return tg_elu(tp, x, c->alpha);
    if (starts(n, "sigmoid/")) return tg_sigmoid(tp, x);
    if (starts(n, "tanh/")) return tg_tanh(tp, x);
    if (starts(n, "silu/")) return tg_silu(tp, x);
    if (starts(n, "gelu/")) return tg_gelu(tp, x, strcmp(n, "gelu/tanh") == 0);
    if (starts(n, "softplus/")) return tg_softplus(tp, x, c->beta, c->threshold);
    if (starts(n, "softmax/")) return tg_softmax(tp, x, c->axis);
    if (starts(n, "log_softmax/")) return tg_log_softmax(tp, x, c->axis);
    if (starts(n, "logsumexp/")) return tg_logsumexp(tp, x, c->axes, c->naxes, c->keepdim);
    ck_abort_msg("case %s names no activation", n);
    return NULL;
}

/* The layer kind (and its param) equal to the case's op, or false when no layer has the case's
 * options (softplus with other than beta 1, threshold 20; logsumexp). */
static bool act_layer_kind(const act_case *c, tg_activation *kind, double *param) {
    static const struct {
        const char *prefix;
        tg_activation kind;
    } table[] = {
        {"relu/", TG_ACT_RELU},       {"leaky_relu/", TG_ACT_LEAKY_RELU},
        {"elu/", TG_ACT_ELU},         {"sigmoid/", TG_ACT_SIGMOID},
        {"tanh/", TG_ACT_TANH},       {"silu/", TG_ACT_SILU},
        {"gelu/exact", TG_ACT_GELU},  {"gelu/tanh", TG_ACT_GELU_TANH},
        {"softplus/default", TG_ACT_SOFTPLUS}, {"softmax/", TG_ACT_SOFTMAX},
        {"log_softmax/", TG_ACT_LOG_SOFTMAX},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        if (!starts(c->name, table[i].prefix)) continue;
        *kind = table[i].kind;
        *param = *kind == TG_ACT_LEAKY_RELU ? c->slope
                 : *kind == TG_ACT_ELU      ? c->alpha
                                            : (double)c->axis;
        return true;
    }
    return false;
}

/* The functional op in dtype: output and gradient seeded with R against PyTorch; then the
 * layer object of the same kind (when there is one) gives the same output. */
static void check_act(const char *name, tg_dtype dtype, double rtol) {
    act_case c = act_load(name, dtype);
    bool with_grad = golden_has(fixtures, name, "grad_x");
    ck_assert_int_eq(tg_set_requires_grad(c.x, true), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *out = apply_act(tp, &c, c.x);
    ck_assert_msg(out != NULL, "%s: %s", name, tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_dtype(out), dtype);
    expect_golden(name, "out", out, rtol);
    if (with_grad) {
        tg_tensor *seed = golden_tensor(fixtures, name, "R", dtype);
        ck_assert_msg(tg_backward(tp, out, seed) == 0, "%s: %s", name, tg_tape_error(tp));
        expect_golden(name, "grad_x", tg_tensor_grad(c.x), rtol);
        tg_tensor_free(seed);
    }
    tg_activation kind;
    double param;
    if (act_layer_kind(&c, &kind, &param)) {
        tg_model *m = tg_model_new(NULL);
        tg_layer *layer = tg_activation_new(m, "act", kind, param);
        ck_assert_ptr_nonnull(layer);
        expect_golden(name, "out", tg_layer_forward(tp, layer, c.x), rtol);
        tg_model_free(m);
    }
    tg_tape_free(tp);
    tg_tensor_free(c.x);
}

START_TEST(test_activations_f64) {
    int n = 0;
    for (const char *name; (name = golden_case_at(fixtures, n)); n++)
        if (!starts(name, "linear/")) check_act(name, TG_F64, GOLDEN_RTOL_F64);
    ck_assert_int_ge(n, 28);
}
END_TEST

START_TEST(test_activations_f32) {
    for (int i = 0; golden_case_at(fixtures, i); i++)
        if (!starts(golden_case_at(fixtures, i), "linear/"))
            check_act(golden_case_at(fixtures, i), TG_F32, GOLDEN_RTOL_F32);
}
END_TEST

static tg_tensor *act_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    return apply_act(tp, ctx, in[0]);
}

/* First and second order for every activation case with gradients (the fixtures keep inputs
 * away from the kinks). */
START_TEST(test_activations_gradcheck) {
    int checked = 0;
    for (int i = 0; golden_case_at(fixtures, i); i++) {
        const char *name = golden_case_at(fixtures, i);
        if (starts(name, "linear/") || !golden_has(fixtures, name, "grad_x")) continue;
        act_case c = act_load(name, TG_F64);
        ck_assert_int_eq(tg_set_requires_grad(c.x, true), 0);
        tg_gradcheck_opts o = tg_gradcheck_defaults();
        tg_gradcheck_report r;
        ck_assert_msg(tg_gradcheck(act_fn, &c, 1, &c.x, &o, &r) == 0, "gradcheck %s: %s", name,
                      r.message);
        ck_assert_msg(tg_gradgradcheck(act_fn, &c, 1, &c.x, &o, &r) == 0,
                      "gradgradcheck %s: %s", name, r.message);
        tg_tensor_free(c.x);
        checked++;
    }
    ck_assert_int_ge(checked, 27);
}
END_TEST

/* ---- Linear --------------------------------------------------------------------------------- */

static void check_linear(const char *name, tg_dtype dtype, double rtol) {
    tg_tensor *x = golden_tensor(fixtures, name, "x", dtype);
    tg_tensor *w = golden_tensor(fixtures, name, "weight", dtype);
    tg_tensor *b = golden_tensor(fixtures, name, "bias", dtype);
    tg_tensor *seed = golden_tensor(fixtures, name, "R", dtype);
    ck_assert_int_eq(tg_set_requires_grad(x, true), 0);
    ck_assert_int_eq(tg_set_requires_grad(w, true), 0);
    if (b) ck_assert_int_eq(tg_set_requires_grad(b, true), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *out = tg_linear(tp, x, w, b);
    ck_assert_msg(out != NULL, "%s: %s", name, tg_tape_error(tp));
    expect_golden(name, "out", out, rtol);
    ck_assert_int_eq(tg_backward(tp, out, seed), 0);
    expect_golden(name, "grad_x", tg_tensor_grad(x), rtol);
    expect_golden(name, "grad_weight", tg_tensor_grad(w), rtol);
    if (b) expect_golden(name, "grad_bias", tg_tensor_grad(b), rtol);
    tg_tape_free(tp);
    tg_tensor *all[] = {x, w, b, seed};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tg_tensor_free(all[i]);
}

START_TEST(test_linear_golden) {
    int n = 0;
    for (int i = 0; golden_case_at(fixtures, i); i++) {
        const char *name = golden_case_at(fixtures, i);
        if (!starts(name, "linear/")) continue;
        check_linear(name, TG_F64, GOLDEN_RTOL_F64);
        check_linear(name, TG_F32, GOLDEN_RTOL_F32);
        n++;
    }
    ck_assert_int_eq(n, 3);
}
END_TEST

/* The Linear layer object (f32 parameters) with the fixture's weights computes the same. */
START_TEST(test_linear_layer_golden) {
    const char *name = "linear/batched";
    tg_rng *rng = tg_rng_new(1);
    tg_model *m = tg_model_new(NULL);
    tg_layer *fc = tg_linear_new(m, "fc", 4, 5, true, rng);
    ck_assert_ptr_nonnull(fc);
    const char *keys[2] = {"weight", "bias"};
    for (int k = 0; k < 2; k++) {
        tg_tensor *want = golden_tensor(fixtures, name, keys[k], TG_F32);
        tg_tensor *param = tg_layer_get(fc, keys[k]);
        ck_assert_int_eq(tg_tensor_numel(param), tg_tensor_numel(want));
        memcpy(tg_tensor_data_mut(param), tg_tensor_data(want),
               (size_t)tg_tensor_numel(want) * sizeof(float));
        tg_tensor_free(want);
    }
    tg_tensor *x = golden_tensor(fixtures, name, "x", TG_F32);
    tg_tensor *seed = golden_tensor(fixtures, name, "R", TG_F32);
    tg_tape *tp = tg_tape_new();
    tg_tensor *out = tg_layer_forward(tp, fc, x);
    expect_golden(name, "out", out, GOLDEN_RTOL_F32);
    ck_assert_int_eq(tg_backward(tp, out, seed), 0);
    expect_golden(name, "grad_weight", tg_tensor_grad(tg_layer_get(fc, "weight")),
                  GOLDEN_RTOL_F32);
    expect_golden(name, "grad_bias", tg_tensor_grad(tg_layer_get(fc, "bias")), GOLDEN_RTOL_F32);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(seed);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

static tg_tensor *linear_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    return tg_linear(tp, in[0], in[1], in[2]);
}

START_TEST(test_linear_gradcheck) {
    tg_rng *rng = tg_rng_new(7);
    tg_tensor *in[3] = {tg_randn(NULL, rng, TG_F64, 3, (int64_t[]){2, 3, 4}, 0.0, 1.0),
                        tg_randn(NULL, rng, TG_F64, 2, (int64_t[]){5, 4}, 0.0, 1.0),
                        tg_randn(NULL, rng, TG_F64, 1, (int64_t[]){5}, 0.0, 1.0)};
    for (int i = 0; i < 3; i++) ck_assert_int_eq(tg_set_requires_grad(in[i], true), 0);
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    tg_gradcheck_report r;
    ck_assert_msg(tg_gradcheck(linear_fn, NULL, 3, in, &o, &r) == 0, "%s", r.message);
    ck_assert_msg(tg_gradgradcheck(linear_fn, NULL, 3, in, &o, &r) == 0, "%s", r.message);
    for (int i = 0; i < 3; i++) tg_tensor_free(in[i]);
    tg_rng_free(rng);
}
END_TEST

/* ---- errors of the functional ops and layer constructors ------------------------------------ */

START_TEST(test_activation_errors) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_ones(NULL, TG_F64, 2, (int64_t[]){2, 3});
    tg_tensor *idx = tg_zeros(NULL, TG_I64, 2, (int64_t[]){2, 3});
    tg_tensor *w = tg_ones(NULL, TG_F64, 2, (int64_t[]){4, 5});
    tg_tensor *b = tg_ones(NULL, TG_F64, 2, (int64_t[]){1, 4});

#define FAILS(call, ...)                                                                       \
    do {                                                                                      \
        tg_tape_reset(tp);                                                                    \
        ck_assert_ptr_null(call);                                                             \
        const char *words_[] = {__VA_ARGS__};                                                 \
        for (size_t k_ = 0; k_ < sizeof words_ / sizeof *words_; k_++)                        \
            CK_HAS(tg_tape_error(tp), words_[k_]);                                            \
    } while (0)

    FAILS(tg_leaky_relu(tp, idx, 0.1), "leaky_relu", "i64[2, 3]");
    FAILS(tg_elu(tp, idx, 1.0), "elu", "i64");
    FAILS(tg_silu(tp, idx), "silu", "i64");
    FAILS(tg_gelu(tp, idx, false), "gelu", "i64");
    FAILS(tg_softplus(tp, idx, 1.0, 20.0), "softplus", "i64");
    FAILS(tg_softmax(tp, x, 2), "softmax", "axis 2", "[2, 3]");
    FAILS(tg_log_softmax(tp, x, -3), "log_softmax", "axis -3");
    FAILS(tg_logsumexp(tp, x, (int[]){0, 5}, 2, false), "logsumexp", "axis 5");
    FAILS(tg_logsumexp(tp, idx, NULL, 0, false), "logsumexp", "i64");
    FAILS(tg_softmax(tp, NULL, 0), "softmax: x is NULL");
    FAILS(tg_linear(tp, x, w, NULL), "linear", "[2, 3]", "[4, 5]");
    FAILS(tg_linear(tp, tg_ones(tp, TG_F64, 1, (int64_t[]){5}), w, b), "linear", "bias f64[1, 4]");
    FAILS(tg_linear(tp, NULL, w, NULL), "linear: input 0 is NULL");

    /* A NULL from an earlier failure keeps the first message. */
    tg_tape_reset(tp);
    tg_tensor *bad = tg_add(tp, x, w);
    ck_assert_ptr_null(tg_gelu(tp, tg_softmax(tp, bad, 1), true));
    ck_assert_ptr_null(tg_linear(tp, bad, w, NULL));
    CK_HAS(tg_tape_error(tp), "add");
#undef FAILS
    /* No tape: the thread's last error, and nothing allocated that could leak. */
    ck_assert_ptr_null(tg_logsumexp(NULL, x, NULL, 0, false));
    CK_HAS(tg_last_error(), "logsumexp: tape is NULL");
    ck_assert_ptr_null(tg_softmax(NULL, x, 1));
    CK_HAS(tg_last_error(), "softmax: tape is NULL");

    tg_model *m = tg_model_new(NULL);
    ck_assert_ptr_null(tg_activation_new(m, "a", (tg_activation)42, 0.0));
    CK_HAS(tg_last_error(), "unknown activation 42");
    ck_assert_ptr_null(tg_activation_new(m, "", TG_ACT_RELU, 0.0));
    CK_HAS(tg_last_error(), "non-empty name");
    ck_assert_ptr_null(tg_activation_new(NULL, "a", TG_ACT_RELU, 0.0));
    CK_HAS(tg_last_error(), "ReLU");
    tg_rng *rng = tg_rng_new(1);
    ck_assert_ptr_null(tg_linear_new(m, "fc", 0, 3, true, rng));
    CK_HAS(tg_last_error(), "Linear(\"fc\")");
    ck_assert_ptr_null(tg_linear_new(m, "fc", 2, 3, true, NULL));
    CK_HAS(tg_last_error(), "rng");
    ck_assert_int_eq(tg_model_num_entries(m), 0);
    tg_rng_free(rng);
    tg_model_free(m);
    tg_tape_free(tp);
    tg_tensor *all[] = {x, idx, w, b};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tg_tensor_free(all[i]);
}
END_TEST

/* ---- initializers --------------------------------------------------------------------------- */

typedef struct stats {
    double mean, std, max_abs;
} stats;

static stats stats_of(const tg_tensor *t) {
    const int64_t n = tg_tensor_numel(t);
    double sum = 0.0, sq = 0.0, max_abs = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double v = tg_tensor_get(t, i);
        sum += v;
        sq += v * v;
        max_abs = fmax(max_abs, fabs(v));
    }
    double mean = sum / (double)n;
    return (stats){mean, sqrt(sq / (double)n - mean * mean), max_abs};
}

/* Uniform in +-bound: nothing outside, the edge reached, std bound/sqrt 3 within 2%, mean 0. */
static void expect_uniform(const tg_tensor *t, double bound) {
    stats s = stats_of(t);
    double n = (double)tg_tensor_numel(t);
    ck_assert_msg(s.max_abs <= bound * (1 + 1e-6) && s.max_abs > 0.99 * bound,
                  "max |w| %g for bound %g", s.max_abs, bound);
    ck_assert_msg(fabs(s.std / (bound / sqrt(3.0)) - 1.0) < 0.02, "std %g, want %g", s.std,
                  bound / sqrt(3.0));
    ck_assert_msg(fabs(s.mean) < 5.0 * bound / sqrt(3.0 * n), "mean %g", s.mean);
}

/* Normal(0, std): sample std within 2%, mean within 5 standard errors. */
static void expect_normal(const tg_tensor *t, double std) {
    stats s = stats_of(t);
    ck_assert_msg(fabs(s.std / std - 1.0) < 0.02, "std %g, want %g", s.std, std);
    ck_assert_msg(fabs(s.mean) < 5.0 * std / sqrt((double)tg_tensor_numel(t)), "mean %g", s.mean);
}

/* PyTorch's calculate_gain values (printed by torch 1.13). */
START_TEST(test_init_gain) {
    ck_assert_double_eq(tg_init_gain("linear", NAN), 1.0);
    ck_assert_double_eq(tg_init_gain("conv2d", NAN), 1.0);
    ck_assert_double_eq(tg_init_gain("conv_transpose2d", NAN), 1.0);
    ck_assert_double_eq(tg_init_gain("sigmoid", NAN), 1.0);
    ck_assert_double_eq_tol(tg_init_gain("tanh", NAN), 1.6666666666666667, 1e-15);
    ck_assert_double_eq_tol(tg_init_gain("relu", NAN), 1.4142135623730951, 1e-15);
    ck_assert_double_eq_tol(tg_init_gain("leaky_relu", NAN), 1.4141428569978354, 1e-15);
    ck_assert_double_eq_tol(tg_init_gain("leaky_relu", 0.2), 1.3867504905630728, 1e-15);
    ck_assert_double_eq_tol(tg_init_gain("leaky_relu", 0.0), 1.4142135623730951, 1e-15);
    ck_assert_double_eq(tg_init_gain("selu", NAN), 0.75);
    ck_assert(isnan(tg_init_gain("swish", NAN)));
    ck_assert(isnan(tg_init_gain(NULL, NAN)));
}
END_TEST

START_TEST(test_init_distributions) {
    tg_rng *rng = tg_rng_new(2024);
    /* Conv-shaped [128, 64, 3, 3]: fan_in 576, fan_out 1152. */
    const int64_t conv[4] = {128, 64, 3, 3};
    const double fan_in = 576.0, fan_out = 1152.0;
    tg_tensor *t = tg_zeros(NULL, TG_F32, 4, conv);
    ck_assert_int_eq(tg_init_kaiming_uniform(t, rng, 0.0, TG_FAN_IN, "leaky_relu"), 0);
    ck_assert_ptr_null(tg_last_error());
    expect_uniform(t, sqrt(2.0) * sqrt(3.0 / fan_in));
    ck_assert_int_eq(tg_init_kaiming_uniform(t, rng, 0.0, TG_FAN_OUT, "tanh"), 0);
    expect_uniform(t, 5.0 / 3.0 * sqrt(3.0 / fan_out));
    ck_assert_int_eq(tg_init_kaiming_normal(t, rng, 0.0, TG_FAN_OUT, "relu"), 0);
    expect_normal(t, sqrt(2.0 / fan_out));
    ck_assert_int_eq(tg_init_kaiming_normal(t, rng, 0.2, TG_FAN_IN, "leaky_relu"), 0);
    expect_normal(t, sqrt(2.0 / 1.04) / sqrt(fan_in));
    ck_assert_int_eq(tg_init_xavier_uniform(t, rng, 1.0), 0);
    expect_uniform(t, sqrt(6.0 / (fan_in + fan_out)));
    ck_assert_int_eq(tg_init_xavier_normal(t, rng, tg_init_gain("tanh", NAN)), 0);
    expect_normal(t, 5.0 / 3.0 * sqrt(2.0 / (fan_in + fan_out)));
    tg_tensor_free(t);

    /* Linear-shaped f64 [300, 200]: fan_in 200, fan_out 300. */
    t = tg_zeros(NULL, TG_F64, 2, (int64_t[]){300, 200});
    ck_assert_int_eq(tg_init_xavier_uniform(t, rng, 2.0), 0);
    expect_uniform(t, 2.0 * sqrt(6.0 / 500.0));
    ck_assert_int_eq(tg_init_normal(t, rng, 5.0, 0.5), 0);
    stats s = stats_of(t);
    ck_assert_msg(fabs(s.mean - 5.0) < 0.01 && fabs(s.std / 0.5 - 1.0) < 0.02, "normal %g %g",
                  s.mean, s.std);
    ck_assert_int_eq(tg_init_uniform(t, rng, 1.0, 3.0), 0);
    s = stats_of(t);
    ck_assert_msg(fabs(s.mean - 2.0) < 0.01 && fabs(s.std * sqrt(3.0) - 1.0) < 0.02,
                  "uniform %g %g", s.mean, s.std);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++)
        ck_assert(tg_tensor_get(t, i) >= 1.0 && tg_tensor_get(t, i) < 3.0);
    ck_assert_int_eq(tg_init_constant(t, -0.25), 0);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) ck_assert(tg_tensor_get(t, i) == -0.25);
    tg_tensor_free(t);
    tg_rng_free(rng);
}
END_TEST

/* PyTorch's Linear/Conv default: weight and bias uniform in +-1/sqrt(fan_in). */
START_TEST(test_init_default_layer) {
    tg_rng *rng = tg_rng_new(5);
    const int64_t shapes[2][4] = {{64, 100}, {32, 3, 5, 5}};
    const int ndims[2] = {2, 4};
    const double fan_in[2] = {100.0, 75.0};
    for (int k = 0; k < 2; k++) {
        tg_tensor *w = tg_zeros(NULL, TG_F32, ndims[k], shapes[k]);
        tg_tensor *b = tg_zeros(NULL, TG_F32, 1, shapes[k]);
        ck_assert_int_eq(tg_init_default_layer(w, b, rng), 0);
        expect_uniform(w, 1.0 / sqrt(fan_in[k]));
        stats s = stats_of(b);
        ck_assert(s.max_abs <= 1.0 / sqrt(fan_in[k]) && s.max_abs > 0.5 / sqrt(fan_in[k]));
        ck_assert_int_eq(tg_init_default_layer(w, NULL, rng), 0);
        tg_tensor_free(w);
        tg_tensor_free(b);
    }
    /* The same seed gives the same numbers. */
    tg_tensor *w1 = tg_zeros(NULL, TG_F64, 2, (int64_t[]){3, 4});
    tg_tensor *w2 = tg_zeros(NULL, TG_F64, 2, (int64_t[]){3, 4});
    tg_rng *r1 = tg_rng_new(9), *r2 = tg_rng_new(9);
    ck_assert_int_eq(tg_init_default_layer(w1, NULL, r1), 0);
    ck_assert_int_eq(tg_init_default_layer(w2, NULL, r2), 0);
    ck_assert(memcmp(tg_tensor_data(w1), tg_tensor_data(w2), 12 * sizeof(double)) == 0);
    ck_assert(tg_tensor_get(w1, 0) != tg_tensor_get(w1, 1));
    tg_rng_free(r1);
    tg_rng_free(r2);
    tg_tensor_free(w1);
    tg_tensor_free(w2);
    tg_rng_free(rng);
}
END_TEST

/* -1 with tg_last_error naming the initializer; the tensor is left as it was. */
START_TEST(test_init_errors) {
    tg_rng *rng = tg_rng_new(3);
    tg_tensor *v = tg_full(NULL, TG_F64, 1, (int64_t[]){8}, 7.0);
    tg_tensor *w = tg_zeros(NULL, TG_F64, 2, (int64_t[]){4, 8});
    tg_tensor *idx = tg_zeros(NULL, TG_I64, 2, (int64_t[]){4, 8});
    tg_tape *tp = tg_tape_new();
    tg_tensor *on_tape = tg_zeros(tp, TG_F64, 2, (int64_t[]){4, 8});

    ck_assert_int_eq(tg_init_xavier_uniform(v, rng, 1.0), -1);
    CK_HAS(tg_last_error(), "init_xavier_uniform");
    CK_HAS(tg_last_error(), "at least 2 dims, got [8]");
    ck_assert_int_eq(tg_init_xavier_normal(v, rng, 1.0), -1);
    CK_HAS(tg_last_error(), "init_xavier_normal");
    ck_assert_int_eq(tg_init_kaiming_uniform(v, rng, 0.0, TG_FAN_IN, "relu"), -1);
    CK_HAS(tg_last_error(), "init_kaiming_uniform");
    ck_assert_int_eq(tg_init_kaiming_normal(v, rng, 0.0, TG_FAN_OUT, "relu"), -1);
    CK_HAS(tg_last_error(), "init_kaiming_normal");
    ck_assert_int_eq(tg_init_default_layer(v, NULL, rng), -1);
    CK_HAS(tg_last_error(), "2 dims");
    for (int64_t i = 0; i < 8; i++) ck_assert(tg_tensor_get(v, i) == 7.0);

    ck_assert_int_eq(tg_init_kaiming_uniform(w, rng, 0.0, TG_FAN_IN, "swish"), -1);
    CK_HAS(tg_last_error(), "unknown nonlinearity \"swish\"");
    ck_assert_int_eq(tg_init_uniform(idx, rng, 0.0, 1.0), -1);
    CK_HAS(tg_last_error(), "init_uniform");
    ck_assert_int_eq(tg_init_constant(on_tape, 1.0), -1);
    CK_HAS(tg_last_error(), "persistent");
    ck_assert_int_eq(tg_init_normal(w, NULL, 0.0, 1.0), -1);
    CK_HAS(tg_last_error(), "rng");
    ck_assert_int_eq(tg_init_constant(NULL, 1.0), -1);
    /* A 1-D tensor is fine where no fans are needed; success clears the last error. */
    ck_assert_int_eq(tg_init_uniform(v, rng, -1.0, 1.0), 0);
    ck_assert_ptr_null(tg_last_error());

    tg_tape_free(tp);
    tg_tensor_free(v);
    tg_tensor_free(w);
    tg_tensor_free(idx);
    tg_rng_free(rng);
}
END_TEST

/* ---- the model registry --------------------------------------------------------------------- */

/* Built like this PyTorch module (see PYTORCH_REPR):
 *   class Net(nn.Module):
 *       def __init__(self):
 *           super().__init__()
 *           self.flatten = nn.Flatten()
 *           self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU(),
 *                                         nn.Linear(8, 6, bias=False), nn.LeakyReLU(0.2))
 *           self.fc = nn.Linear(6, 3)
 *           self.fc2 = nn.Linear(3, 2)
 *           self.acts = nn.Sequential(nn.ELU(), nn.Sigmoid(), nn.Tanh(), nn.SiLU(), nn.GELU(),
 *                                     nn.GELU(approximate='tanh'), nn.Softplus(),
 *                                     nn.LeakyReLU(), nn.ELU(alpha=0.5))
 *           self.out = nn.LogSoftmax(dim=-1)
 *           self.sm = nn.Softmax(dim=1)
 *           self.empty = nn.Sequential() */
typedef struct net {
    tg_model *m;
    tg_layer *flatten, *features, *fc, *fc2, *acts, *out;
} net;

static tg_layer *add_to(tg_layer *seq, tg_layer *child) {
    ck_assert_ptr_nonnull(child);
    ck_assert_int_eq(tg_sequential_add(seq, child), 0);
    return child;
}

static net net_new(tg_rng *rng) {
    net n = {.m = tg_model_new("Net")};
    ck_assert_ptr_nonnull(n.m);
    n.flatten = tg_flatten_new(n.m, "flatten", 1, -1);
    n.features = tg_sequential_new(n.m, "features");
    add_to(n.features, tg_linear_new(n.m, "features.0", 4, 8, true, rng));
    add_to(n.features, tg_activation_new(n.m, "features.1", TG_ACT_RELU, 0.0));
    add_to(n.features, tg_linear_new(n.m, "features.2", 8, 6, false, rng));
    add_to(n.features, tg_activation_new(n.m, "features.3", TG_ACT_LEAKY_RELU, 0.2));
    n.fc = tg_linear_new(n.m, "fc", 6, 3, true, rng);
    n.fc2 = tg_linear_new(n.m, "fc2", 3, 2, true, rng);
    n.acts = tg_sequential_new(n.m, "acts");
    const struct {
        tg_activation kind;
        double param;
    } acts[] = {{TG_ACT_ELU, 1.0},  {TG_ACT_SIGMOID, 0},   {TG_ACT_TANH, 0},
                {TG_ACT_SILU, 0},   {TG_ACT_GELU, 0},      {TG_ACT_GELU_TANH, 0},
                {TG_ACT_SOFTPLUS, 0}, {TG_ACT_LEAKY_RELU, 0.01}, {TG_ACT_ELU, 0.5}};
    for (int i = 0; i < 9; i++) {
        char name[16];
        snprintf(name, sizeof name, "acts.%d", i);
        add_to(n.acts, tg_activation_new(n.m, name, acts[i].kind, acts[i].param));
    }
    n.out = tg_activation_new(n.m, "out", TG_ACT_LOG_SOFTMAX, -1);
    ck_assert_ptr_nonnull(tg_activation_new(n.m, "sm", TG_ACT_SOFTMAX, 1));
    ck_assert_ptr_nonnull(tg_sequential_new(n.m, "empty"));
    ck_assert(n.flatten && n.features && n.fc && n.fc2 && n.acts && n.out);
    return n;
}

/* print(repr(Net())) in PyTorch 1.13. */
static const char PYTORCH_REPR[] =
    "Net(\n"
    "  (flatten): Flatten(start_dim=1, end_dim=-1)\n"
    "  (features): Sequential(\n"
    "    (0): Linear(in_features=4, out_features=8, bias=True)\n"
    "    (1): ReLU()\n"
    "    (2): Linear(in_features=8, out_features=6, bias=False)\n"
    "    (3): LeakyReLU(negative_slope=0.2)\n"
    "  )\n"
    "  (fc): Linear(in_features=6, out_features=3, bias=True)\n"
    "  (fc2): Linear(in_features=3, out_features=2, bias=True)\n"
    "  (acts): Sequential(\n"
    "    (0): ELU(alpha=1.0)\n"
    "    (1): Sigmoid()\n"
    "    (2): Tanh()\n"
    "    (3): SiLU()\n"
    "    (4): GELU(approximate='none')\n"
    "    (5): GELU(approximate='tanh')\n"
    "    (6): Softplus(beta=1, threshold=20)\n"
    "    (7): LeakyReLU(negative_slope=0.01)\n"
    "    (8): ELU(alpha=0.5)\n"
    "  )\n"
    "  (out): LogSoftmax(dim=-1)\n"
    "  (sm): Softmax(dim=1)\n"
    "  (empty): Sequential()\n"
    ")\n";

START_TEST(test_model_print) {
    tg_rng *rng = tg_rng_new(1);
    net n = net_new(rng);
    char *got = model_printed(n.m);
    ck_assert_str_eq(got, PYTORCH_REPR);
    free(got);
    tg_model_free(n.m);
    /* A module without children prints as "Net()"; the default root name is "Model". */
    tg_model *m = tg_model_new(NULL);
    got = model_printed(m);
    ck_assert_str_eq(got, "Model()\n");
    free(got);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* Names and order of list(Net().state_dict()), shapes, lookups, parameter counts. */
START_TEST(test_model_state_dict) {
    tg_rng *rng = tg_rng_new(1);
    net n = net_new(rng);
    static const char *const names[] = {"features.0.weight", "features.0.bias",
                                        "features.2.weight", "fc.weight", "fc.bias",
                                        "fc2.weight", "fc2.bias"};
    static const int64_t numel[] = {32, 8, 48, 18, 3, 6, 2};
    ck_assert_int_eq(tg_model_num_entries(n.m), 7);
    for (int i = 0; i < 7; i++) {
        tg_model_entry e = tg_model_entry_at(n.m, i);
        ck_assert_str_eq(e.name, names[i]);
        ck_assert(!e.is_buffer);
        ck_assert(tg_tensor_requires_grad(e.tensor));
        ck_assert_int_eq(tg_tensor_numel(e.tensor), numel[i]);
        ck_assert_ptr_eq(tg_model_find(n.m, names[i]), e.tensor);
    }
    ck_assert_ptr_null(tg_model_entry_at(n.m, 7).name);
    ck_assert_ptr_null(tg_model_entry_at(n.m, -1).tensor);
    ck_assert_int_eq(tg_tensor_dim(tg_model_find(n.m, "features.2.weight"), 0), 6);
    ck_assert_int_eq(tg_tensor_dim(tg_model_find(n.m, "features.2.weight"), 1), 8);
    ck_assert_ptr_null(tg_model_find(n.m, "features.2.bias"));
    ck_assert_ptr_null(tg_model_find(n.m, "fc"));
    ck_assert_ptr_null(tg_model_find(n.m, NULL));
    ck_assert_ptr_eq(tg_layer_get(n.fc, "bias"), tg_model_find(n.m, "fc.bias"));
    ck_assert_ptr_null(tg_layer_get(n.fc, "running_mean"));
    ck_assert_str_eq(tg_layer_name(n.fc2), "fc2");
    ck_assert_int_eq(tg_model_num_parameters(n.m, false), 117);
    ck_assert_int_eq(tg_model_num_parameters(n.m, true), 117);
    /* Linear's default init: |w| and |b| <= 1/sqrt(in_features). */
    stats s = stats_of(tg_model_find(n.m, "features.0.weight"));
    ck_assert(s.max_abs <= 0.5 && s.max_abs > 0.25);
    s = stats_of(tg_model_find(n.m, "fc.bias"));
    ck_assert(s.max_abs <= 1.0 / sqrt(6.0));
    /* A buffer is registered in order, not counted as a parameter, never trained. */
    tg_tensor *count = tg_model_add_buffer(n.m, "fc.num_calls", tg_zeros(NULL, TG_I64, 0, NULL));
    ck_assert_ptr_nonnull(count);
    ck_assert(tg_model_entry_at(n.m, 7).is_buffer);
    ck_assert(!tg_tensor_requires_grad(count));
    ck_assert_int_eq(tg_model_num_parameters(n.m, false), 117);
    ck_assert_int_eq(tg_model_set_frozen(n.m, "fc", true), 2);
    ck_assert(!tg_tensor_requires_grad(count));
    tg_model_free(n.m);
    tg_rng_free(rng);
}
END_TEST

/* Forward through the layer tree equals the functional composition; backward reaches every
 * trainable parameter; zero_grad zeroes; frozen parameters get no gradient. */
START_TEST(test_model_forward_backward) {
    tg_rng *rng = tg_rng_new(11);
    net n = net_new(rng);
    tg_tensor *x = tg_randn(NULL, rng, TG_F32, 3, (int64_t[]){2, 2, 2}, 0.0, 1.0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *h = tg_layer_forward(tp, n.flatten, x);
    h = tg_layer_forward(tp, n.features, h);
    h = tg_layer_forward(tp, n.fc, h);
    tg_tensor *y = tg_layer_forward(tp, n.out, tg_layer_forward(tp, n.fc2, h));
    ck_assert_msg(y != NULL, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_dim(y, 1), 2);
    /* By hand with the functional ops. */
    tg_tensor *z = tg_reshape(tp, x, 2, (int64_t[]){2, 4});
    z = tg_relu(tp, tg_linear(tp, z, tg_model_find(n.m, "features.0.weight"),
                              tg_model_find(n.m, "features.0.bias")));
    z = tg_leaky_relu(tp, tg_linear(tp, z, tg_model_find(n.m, "features.2.weight"), NULL), 0.2);
    z = tg_linear(tp, z, tg_model_find(n.m, "fc.weight"), tg_model_find(n.m, "fc.bias"));
    z = tg_linear(tp, z, tg_model_find(n.m, "fc2.weight"), tg_model_find(n.m, "fc2.bias"));
    z = tg_log_softmax(tp, z, -1);
    ck_assert_int_eq(tg_tensor_numel(z), 4);
    for (int i = 0; i < 4; i++) ck_assert(tg_tensor_get(y, i) == tg_tensor_get(z, i));

    /* The activation chain applies its nine children in order. */
    tg_tensor *a = tg_layer_forward(tp, n.acts, y), *b = y;
    b = tg_elu(tp, b, 1.0);
    b = tg_tanh(tp, tg_sigmoid(tp, b));
    b = tg_gelu(tp, tg_gelu(tp, tg_silu(tp, b), false), true);
    b = tg_elu(tp, tg_leaky_relu(tp, tg_softplus(tp, b, 1.0, 20.0), 0.01), 0.5);
    for (int i = 0; i < 4; i++) ck_assert(tg_tensor_get(a, i) == tg_tensor_get(b, i));

    ck_assert_int_eq(tg_model_set_frozen(n.m, "fc", true), 2);
    tg_tensor *loss = tg_sum(tp, y, (int[]){0}, 1, false);
    loss = tg_sum(tp, tg_mul(tp, loss, tg_arange(tp, TG_F32, 1.0, 3.0, 1.0)), NULL, 0, false);
    ck_assert_int_eq(tg_backward(tp, loss, NULL), 0);
    for (int i = 0; i < tg_model_num_entries(n.m); i++) {
        tg_model_entry e = tg_model_entry_at(n.m, i);
        bool frozen = strncmp(e.name, "fc.", 3) == 0;
        tg_tensor *g = tg_tensor_grad(e.tensor);
        ck_assert_msg(frozen ? g == NULL : g != NULL, "%s: grad %p", e.name, (void *)g);
        if (g) ck_assert_msg(stats_of(g).max_abs > 0.0, "%s: zero gradient", e.name);
    }
    tg_model_zero_grad(n.m);
    for (int i = 0; i < tg_model_num_entries(n.m); i++) {
        tg_tensor *g = tg_tensor_grad(tg_model_entry_at(n.m, i).tensor);
        if (g) ck_assert_double_eq(stats_of(g).max_abs, 0.0);
    }
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_model_free(n.m);
    tg_rng_free(rng);
}
END_TEST

/* Prefixes match at dot boundaries; the return value counts changes only. */
START_TEST(test_model_freeze) {
    tg_rng *rng = tg_rng_new(1);
    net n = net_new(rng);
    tg_model *m = n.m;
    ck_assert_int_eq(tg_model_set_frozen(m, "fc", true), 2); /* not fc2 */
    ck_assert(!tg_tensor_requires_grad(tg_model_find(m, "fc.weight")));
    ck_assert(tg_tensor_requires_grad(tg_model_find(m, "fc2.weight")));
    ck_assert_int_eq(tg_model_num_parameters(m, true), 117 - 21);
    ck_assert_int_eq(tg_model_num_parameters(m, false), 117);
    ck_assert_int_eq(tg_model_set_frozen(m, "fc", true), 0);
    ck_assert_int_eq(tg_model_set_frozen(m, "feat", true), 0);
    ck_assert_int_eq(tg_model_set_frozen(m, "features.0.weight", true), 1);
    ck_assert_int_eq(tg_model_set_frozen(m, "features", true), 2);
    ck_assert_int_eq(tg_model_num_parameters(m, true), 8);
    ck_assert_int_eq(tg_model_set_frozen(m, "features.0", false), 2);
    ck_assert_int_eq(tg_model_set_frozen(m, "", true), 4);
    ck_assert_int_eq(tg_model_num_parameters(m, true), 0);
    ck_assert_int_eq(tg_model_set_frozen(m, "", false), 7);
    ck_assert_int_eq(tg_model_set_frozen(m, NULL, true), 0);
    ck_assert_int_eq(tg_model_num_parameters(m, true), 117);

    ck_assert(tg_model_is_training(m));
    tg_model_set_training(m, false);
    ck_assert(!tg_model_is_training(m));
    tg_model_set_training(m, true);
    ck_assert(tg_model_is_training(m));
    ck_assert(!tg_model_is_training(NULL));
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* Rejected registrations free the tensor (ASan checks) and leave the model as it was. */
START_TEST(test_model_rejects) {
    tg_rng *rng = tg_rng_new(1);
    net n = net_new(rng);
    tg_model *m = n.m;
    tg_tape *tp = tg_tape_new();
    ck_assert_ptr_null(tg_model_add_param(m, "fc.weight", tg_zeros(NULL, TG_F32, 1, (int64_t[]){3})));
    CK_HAS(tg_last_error(), "model_add_param(\"fc.weight\"): the name is already registered");
    ck_assert_ptr_null(tg_model_add_buffer(m, "fc.bias", tg_zeros(NULL, TG_F32, 0, NULL)));
    CK_HAS(tg_last_error(), "already registered");
    ck_assert_ptr_null(tg_model_add_param(m, "steps", tg_zeros(NULL, TG_I64, 0, NULL)));
    CK_HAS(tg_last_error(), "f32 or f64");
    ck_assert_ptr_null(tg_model_add_param(m, "scratch", tg_zeros(tp, TG_F32, 0, NULL)));
    CK_HAS(tg_last_error(), "tape tensor");
    ck_assert_ptr_null(tg_model_add_param(m, "", tg_zeros(NULL, TG_F32, 0, NULL)));
    ck_assert_ptr_null(tg_model_add_param(m, "none", NULL));
    ck_assert_ptr_null(tg_model_add_param(NULL, "orphan", tg_zeros(NULL, TG_F32, 0, NULL)));
    ck_assert_ptr_null(tg_linear_new(m, "fc", 2, 2, true, rng));
    CK_HAS(tg_last_error(), "Linear(\"fc\"): a layer of that name exists already");
    ck_assert_ptr_null(tg_flatten_new(m, "features", 0, -1));
    CK_HAS(tg_last_error(), "Flatten");
    ck_assert_int_eq(tg_model_num_entries(m), 7);
    ck_assert_int_eq(tg_model_num_parameters(m, false), 117);
    ck_assert_int_eq(tg_sequential_add(n.fc, n.fc2), -1);
    CK_HAS(tg_last_error(), "sequential_add");
    ck_assert_int_eq(tg_sequential_add(n.features, n.features), -1);
    ck_assert_int_eq(tg_sequential_add(n.features, NULL), -1);
    /* A registered parameter is still accepted under a new name. */
    tg_tensor *extra = tg_model_add_param(m, "scale", tg_ones(NULL, TG_F64, 0, NULL));
    ck_assert_ptr_nonnull(extra);
    ck_assert(tg_tensor_requires_grad(extra));
    ck_assert_ptr_null(tg_last_error());
    char *got = model_printed(m);
    ck_assert_str_eq(got, PYTORCH_REPR); /* no layer was added */
    free(got);

    /* Forward errors: NULL layer, NULL tape, a Flatten that does not fit. */
    tg_tensor *x = tg_ones(tp, TG_F32, 1, (int64_t[]){4});
    ck_assert_ptr_null(tg_layer_forward(tp, NULL, x));
    CK_HAS(tg_tape_error(tp), "layer is NULL");
    ck_assert_ptr_null(tg_layer_forward(NULL, n.fc, x));
    CK_HAS(tg_last_error(), "tape is NULL");
    tg_tape_reset(tp);
    x = tg_ones(tp, TG_F32, 1, (int64_t[]){4});
    ck_assert_ptr_null(tg_layer_forward(tp, n.flatten, x));
    CK_HAS(tg_tape_error(tp), "Flatten \"flatten\": dims 1..-1 do not fit [4]");
    tg_tape_free(tp);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

static Suite *activation_suite(void) {
    Suite *s = suite_create("nn_activation");
    TCase *golden = tcase_create("golden");
    tcase_add_unchecked_fixture(golden, load_fixtures, free_fixtures);
    tcase_set_timeout(golden, 300);
    tcase_add_test(golden, test_activations_f64);
    tcase_add_test(golden, test_activations_f32);
    tcase_add_test(golden, test_activations_gradcheck);
    tcase_add_test(golden, test_linear_golden);
    tcase_add_test(golden, test_linear_layer_golden);
    suite_add_tcase(s, golden);
    TCase *other = tcase_create("other");
    tcase_set_timeout(other, 300);
    tcase_add_test(other, test_linear_gradcheck);
    tcase_add_test(other, test_activation_errors);
    tcase_add_test(other, test_init_gain);
    tcase_add_test(other, test_init_distributions);
    tcase_add_test(other, test_init_default_layer);
    tcase_add_test(other, test_init_errors);
    tcase_add_test(other, test_model_print);
    tcase_add_test(other, test_model_state_dict);
    tcase_add_test(other, test_model_forward_backward);
    tcase_add_test(other, test_model_freeze);
    tcase_add_test(other, test_model_rejects);
    suite_add_tcase(s, other);
    return s;
}

int main(void) {
    return run_suite(activation_suite(), CK_NORMAL);
}
