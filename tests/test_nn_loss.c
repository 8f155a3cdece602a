/* Tests of the losses (suite `nn`): every case of tests/golden/loss.txt (written with PyTorch by
 * cases_loss.py) in f64 and f32, values and gradients of sum(out * R) w.r.t. the input and,
 * where PyTorch differentiates it, the target; first- and second-order gradcheck of every
 * case; the error paths. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "tapegrad.h"
#include "testing.h"

static golden *fixtures;

static void load_fixtures(void) { fixtures = golden_must_load(GOLDEN_DIR "/loss.txt"); }

static void free_fixtures(void) { golden_free(fixtures); }

/* ---- one case: its arguments and the loss they select ----------------------------------- */

typedef struct loss_case {
    const char *name;
    tg_tensor *x, *target, *weight, *pos_weight; /* persistent; weight, pos_weight may be NULL */
    tg_reduction reduction;
    tg_cross_entropy_opts ce;
    double beta, delta, margin;
    int p;
    bool log_target;
} loss_case;

/* The loss named by the case's first path component, applied to x and target. */
static tg_tensor *apply_loss(tg_tape *tp, const loss_case *c, tg_tensor *x, tg_tensor *target) {
    const char *n = c->name;
#define IS(prefix) (strncmp(n, prefix "/", strlen(prefix) + 1) == 0)
    if (IS("cross_entropy")) return tg_cross_entropy(tp, x, target, &c->ce);
    if (IS("nll_loss")) return tg_nll_loss(tp, x, target, &c->ce);
    if (IS("binary_cross_entropy"))
        return tg_binary_cross_entropy(tp, x, target, c->weight, c->reduction);
    if (IS("bce_with_logits"))
        return tg_binary_cross_entropy_with_logits(tp, x, target, c->weight, c->pos_weight,
                                                   c->reduction);
    if (IS("mse_loss")) return tg_mse_loss(tp, x, target, c->reduction);
    if (IS("l1_loss")) return tg_l1_loss(tp, x, target, c->reduction);
    if (IS("smooth_l1_loss")) return tg_smooth_l1_loss(tp, x, target, c->beta, c->reduction);
    if (IS("huber_loss")) return tg_huber_loss(tp, x, target, c->delta, c->reduction);
    if (IS("multi_margin_loss"))
        return tg_multi_margin_loss(tp, x, target, c->p, c->margin, c->weight, c->reduction);
    if (IS("kl_div")) return tg_kl_div(tp, x, target, c->log_target, c->reduction);
#undef IS
    ck_abort_msg("case %s names no loss", n);
    return NULL;
}

/* Reads case `name` in dtype (floats rounded from the stored f64). */
static loss_case case_load(const char *name, tg_dtype dtype) {
    const golden *g = fixtures;
    loss_case c = {.name = name};
    c.x = golden_tensor(g, name, "x", dtype);
    c.target = golden_tensor(g, name, "target", dtype);
    c.weight = golden_tensor(g, name, "weight", dtype);
    c.pos_weight = golden_tensor(g, name, "pos_weight", dtype);
    ck_assert_ptr_nonnull(c.x);
    ck_assert_ptr_nonnull(c.target);
    c.reduction = (tg_reduction)golden_number(g, name, "reduction", -1);
    c.ce = tg_cross_entropy_defaults();
    c.ce.reduction = c.reduction;
    c.ce.weight = c.weight;
    c.ce.ignore_index = (int64_t)golden_number(g, name, "ignore_index", -100);
    c.ce.label_smoothing = golden_number(g, name, "label_smoothing", 0.0);
    c.beta = golden_number(g, name, "beta", NAN);
    c.delta = golden_number(g, name, "delta", NAN);
    c.margin = golden_number(g, name, "margin", NAN);
    c.p = (int)golden_number(g, name, "p", 0);
    c.log_target = golden_number(g, name, "log_target", 0) != 0;
    return c;
}

static void case_free(loss_case *c) {
    tg_tensor_free(c->x);
    tg_tensor_free(c->target);
    tg_tensor_free(c->weight);
    tg_tensor_free(c->pos_weight);
}

/* Runs case `name` in dtype: the output, and the gradients seeded with R, against PyTorch. */
static void check_case(const char *name, tg_dtype dtype, double rtol) {
    loss_case c = case_load(name, dtype);
    bool want_gx = golden_has(fixtures, name, "grad_x");
    bool want_gt = golden_has(fixtures, name, "grad_target");
    ck_assert_int_eq(tg_set_requires_grad(c.x, true), 0);
    if (want_gt) ck_assert_int_eq(tg_set_requires_grad(c.target, true), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *out = apply_loss(tp, &c, c.x, c.target);
    ck_assert_msg(out != NULL, "%s: %s", name, tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_dtype(out), dtype);
    GOLDEN_EXPECT(fixtures, name, "out", out, rtol);
    tg_tensor *seed = golden_tensor(fixtures, name, "R", dtype);
    ck_assert_msg(tg_backward(tp, out, seed) == 0, "%s: %s", name, tg_tape_error(tp));
    if (want_gx) GOLDEN_EXPECT(fixtures, name, "grad_x", tg_tensor_grad(c.x), rtol);
    if (want_gt) GOLDEN_EXPECT(fixtures, name, "grad_target", tg_tensor_grad(c.target), rtol);
    tg_tensor_free(seed);
    tg_tape_free(tp);
    case_free(&c);
}

START_TEST(test_golden_f64) {
    ck_assert_int_ge(golden_each_case(fixtures, TG_F64, check_case), 100);
}
END_TEST

START_TEST(test_golden_f32) { golden_each_case(fixtures, TG_F32, check_case); }
END_TEST

/* ---- gradcheck ---------------------------------------------------------------------------- */

static tg_tensor *case_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    return apply_loss(tp, ctx, in[0], in[1]);
}

/* First and second order, w.r.t. x and (where PyTorch differentiates it) the target, for every
 * case that has gradients (the fixtures keep inputs away from the kinks). */
START_TEST(test_gradcheck) {
    int checked = 0;
    for (int i = 0; golden_case_at(fixtures, i); i++) {
        const char *name = golden_case_at(fixtures, i);
        if (!golden_has(fixtures, name, "grad_x")) continue;
        loss_case c = case_load(name, TG_F64);
        ck_assert_int_eq(tg_set_requires_grad(c.x, true), 0);
        if (golden_has(fixtures, name, "grad_target"))
            ck_assert_int_eq(tg_set_requires_grad(c.target, true), 0);
        tg_tensor *in[2] = {c.x, c.target};
        tg_gradcheck_opts o = tg_gradcheck_defaults();
        tg_gradcheck_report r;
        int rc = tg_gradcheck(case_fn, &c, 2, in, &o, &r);
        ck_assert_msg(rc == 0, "gradcheck %s: %s", name, r.message);
        rc = tg_gradgradcheck(case_fn, &c, 2, in, &o, &r);
        ck_assert_msg(rc == 0, "gradgradcheck %s: %s", name, r.message);
        case_free(&c);
        checked++;
    }
    ck_assert_int_ge(checked, 100);
}
END_TEST

/* ---- behaviour the fixtures do not cover ---------------------------------------------------- */

static tg_tensor *vec(tg_dtype dtype, int64_t n, const double *v) {
    tg_tensor *t = tg_zeros(NULL, dtype, 1, &n);
    for (int64_t i = 0; i < n; i++) {
        if (dtype == TG_I64) ((int64_t *)tg_tensor_data_mut(t))[i] = (int64_t)v[i];
        else ((double *)tg_tensor_data_mut(t))[i] = v[i];
    }
    return t;
}

static tg_tensor *mat(int64_t r, int64_t c, const double *v) {
    return tg_tensor_from(NULL, TG_F64, 2, (int64_t[]){r, c}, v);
}

/* Saturated probabilities give finite (zero) gradients for the clamped log terms. */
START_TEST(test_bce_saturated_gradient) {
    tg_tensor *p = vec(TG_F64, 4, (double[]){0.0, 1.0, 0.0, 1.0});
    tg_tensor *y = vec(TG_F64, 4, (double[]){0.0, 1.0, 1.0, 0.0});
    ck_assert_int_eq(tg_set_requires_grad(p, true), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *loss = tg_binary_cross_entropy(tp, p, y, NULL, TG_REDUCTION_NONE);
    ck_assert_ptr_nonnull(loss);
    double want[4] = {0.0, 0.0, 100.0, 100.0};
    for (int i = 0; i < 4; i++) ck_assert_double_eq(tg_tensor_get(loss, i), want[i]);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, loss, NULL, 0, false), NULL), 0);
    /* p = 0, y = 0: d/dp -log(1 - p) = 1; p = 1, y = 1: d/dp -log p = -1; the clamped terms
     * (the last two elements) contribute 0, not NaN. */
    double grad[4] = {1.0, -1.0, 0.0, 0.0};
    for (int i = 0; i < 4; i++) ck_assert_double_eq(tg_tensor_get(tg_tensor_grad(p), i), grad[i]);
    tg_tape_free(tp);
    tg_tensor_free(p);
    tg_tensor_free(y);
}
END_TEST

/* Mean over nothing but ignored targets is 0/0 = NaN, as PyTorch; sum is 0. */
START_TEST(test_all_ignored) {
    tg_tensor *x = mat(2, 3, (double[]){1, 2, 3, 4, 5, 6});
    tg_tensor *t = vec(TG_I64, 2, (double[]){-100, -100});
    tg_tape *tp = tg_tape_new();
    ck_assert(isnan(tg_tensor_item(tg_cross_entropy(tp, x, t, NULL))));
    tg_cross_entropy_opts o = tg_cross_entropy_defaults();
    o.reduction = TG_REDUCTION_SUM;
    ck_assert_double_eq(tg_tensor_item(tg_cross_entropy(tp, x, t, &o)), 0.0);
    ck_assert_ptr_null(tg_tape_error(tp));
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(t);
}
END_TEST

/* cross_entropy(x) == nll_loss(log_softmax(x)); opts NULL means the defaults. */
START_TEST(test_cross_entropy_is_nll_of_log_softmax) {
    tg_cross_entropy_opts d = tg_cross_entropy_defaults();
    ck_assert_int_eq(d.reduction, TG_REDUCTION_MEAN);
    ck_assert_int_eq(d.ignore_index, -100);
    ck_assert_ptr_null(d.weight);
    ck_assert_double_eq(d.label_smoothing, 0.0);
    tg_tensor *x = mat(2, 3, (double[]){0.5, -1, 2, 3, 0.25, -2});
    tg_tensor *t = vec(TG_I64, 2, (double[]){2, 0});
    tg_tape *tp = tg_tape_new();
    double ce = tg_tensor_item(tg_cross_entropy(tp, x, t, NULL));
    double nll = tg_tensor_item(tg_nll_loss(tp, tg_log_softmax(tp, x, 1), t, NULL));
    ck_assert_double_eq_tol(ce, nll, 1e-15);
    ck_assert(ce > 0.0);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(t);
}
END_TEST

/* Each call fails with NULL and a message naming the loss; a second error keeps the first. */
START_TEST(test_errors) {
    tg_tensor *x = mat(2, 3, (double[]){1, 2, 3, 4, 5, 6});
    tg_tensor *x23b = mat(2, 3, (double[]){1, 2, 3, 4, 5, 6});
    tg_tensor *x32 = mat(3, 2, (double[]){1, 2, 3, 4, 5, 6});
    tg_tensor *p = mat(2, 3, (double[]){0.1, 0.2, 0.3, 0.4, 1.5, 0.6});
    tg_tensor *t = vec(TG_I64, 2, (double[]){2, 0});
    tg_tensor *t_bad = vec(TG_I64, 2, (double[]){3, 0});
    tg_tensor *t_neg = vec(TG_I64, 2, (double[]){-1, 0});
    tg_tensor *t3 = vec(TG_I64, 3, (double[]){0, 1, 0});
    tg_tensor *tf = vec(TG_F64, 2, (double[]){1, 0});
    tg_tensor *w2 = vec(TG_F64, 2, (double[]){1, 1});
    tg_tensor *x1 = vec(TG_F64, 3, (double[]){1, 2, 3});
    tg_tensor *x32f = tg_zeros(NULL, TG_F32, 2, (int64_t[]){2, 3});
    tg_tape *tp = tg_tape_new();
    tg_cross_entropy_opts o = tg_cross_entropy_defaults();

#define FAILS(call, ...)                                                                       \
    do {                                                                                      \
        tg_tape_reset(tp);                                                                    \
        ck_assert_ptr_null(call);                                                             \
        const char *words_[] = {__VA_ARGS__};                                                 \
        for (size_t k_ = 0; k_ < sizeof words_ / sizeof *words_; k_++)                        \
            CK_HAS(tg_tape_error(tp), words_[k_]);                                            \
    } while (0)

    FAILS(tg_cross_entropy(tp, x, t_bad, NULL), "cross_entropy", "target 3", "[2, 3]");
    FAILS(tg_cross_entropy(tp, x, t_neg, NULL), "cross_entropy", "target -1", "ignore_index -100");
    FAILS(tg_cross_entropy(tp, x, t3, NULL), "cross_entropy", "[3]", "[2, 3]");
    FAILS(tg_cross_entropy(tp, x, tf, NULL), "cross_entropy", "f64[2]", "[2, 3]");
    FAILS(tg_cross_entropy(tp, x, x32, NULL), "cross_entropy", "[3, 2]", "[2, 3]");
    FAILS(tg_cross_entropy(tp, x1, t, NULL), "cross_entropy", "[3]", "[N, C]");
    FAILS(tg_cross_entropy(tp, x32f, x, NULL), "cross_entropy", "f32[2, 3]", "f64[2, 3]");
    o.ignore_index = 1;
    FAILS(tg_cross_entropy(tp, x, x23b, &o), "cross_entropy", "ignore_index (1)");
    o = tg_cross_entropy_defaults();
    o.weight = w2;
    FAILS(tg_cross_entropy(tp, x, t, &o), "cross_entropy", "weight f64[2]", "[3]");
    o = tg_cross_entropy_defaults();
    o.label_smoothing = 1.5;
    FAILS(tg_cross_entropy(tp, x, t, &o), "cross_entropy", "label_smoothing", "1.5");
    FAILS(tg_nll_loss(tp, x, t, &o), "nll_loss", "label_smoothing");
    o.label_smoothing = 0.1;
    FAILS(tg_nll_loss(tp, x, t, &o), "nll_loss", "label_smoothing must be 0");
    o = tg_cross_entropy_defaults();
    o.reduction = TG_REDUCTION_BATCHMEAN;
    FAILS(tg_cross_entropy(tp, x, t, &o), "cross_entropy", "batchmean");
    FAILS(tg_nll_loss(tp, x, t, &o), "nll_loss", "batchmean");
    o.reduction = (tg_reduction)9;
    FAILS(tg_nll_loss(tp, x, t, &o), "nll_loss", "unknown reduction 9");

    FAILS(tg_binary_cross_entropy(tp, p, x, NULL, TG_REDUCTION_MEAN), "binary_cross_entropy",
          "element 4", "1.5");
    FAILS(tg_binary_cross_entropy(tp, x, x32, NULL, TG_REDUCTION_MEAN), "binary_cross_entropy",
          "[2, 3]", "[3, 2]");
    FAILS(tg_binary_cross_entropy(tp, x, x23b, w2, TG_REDUCTION_MEAN), "binary_cross_entropy",
          "weight f64[2]", "[2, 3]");
    FAILS(tg_binary_cross_entropy(tp, x, x23b, NULL, TG_REDUCTION_BATCHMEAN),
          "binary_cross_entropy", "batchmean");
    FAILS(tg_binary_cross_entropy_with_logits(tp, x, x23b, NULL, w2, TG_REDUCTION_SUM),
          "binary_cross_entropy_with_logits", "pos_weight f64[2]");
    FAILS(tg_binary_cross_entropy_with_logits(tp, x, t, NULL, NULL, TG_REDUCTION_SUM),
          "binary_cross_entropy_with_logits", "i64[2]");
    FAILS(tg_mse_loss(tp, x, x32, TG_REDUCTION_MEAN), "mse_loss", "[2, 3]", "[3, 2]");
    FAILS(tg_mse_loss(tp, x, x32f, TG_REDUCTION_MEAN), "mse_loss", "f32[2, 3]");
    FAILS(tg_mse_loss(tp, x, x23b, TG_REDUCTION_BATCHMEAN), "mse_loss", "batchmean");
    FAILS(tg_l1_loss(tp, x, x32, TG_REDUCTION_SUM), "l1_loss", "[3, 2]");
    FAILS(tg_smooth_l1_loss(tp, x, x23b, -1.0, TG_REDUCTION_SUM), "smooth_l1_loss", "beta");
    FAILS(tg_smooth_l1_loss(tp, x, x32, 1.0, TG_REDUCTION_SUM), "smooth_l1_loss", "[3, 2]");
    FAILS(tg_huber_loss(tp, x, x23b, 0.0, TG_REDUCTION_SUM), "huber_loss", "delta");
    FAILS(tg_huber_loss(tp, x, x32, 1.0, TG_REDUCTION_SUM), "huber_loss", "[3, 2]");
    FAILS(tg_multi_margin_loss(tp, x, t, 3, 1.0, NULL, TG_REDUCTION_MEAN), "multi_margin_loss",
          "p must be 1 or 2");
    FAILS(tg_multi_margin_loss(tp, x, t_bad, 1, 1.0, NULL, TG_REDUCTION_MEAN),
          "multi_margin_loss", "target 3");
    FAILS(tg_multi_margin_loss(tp, x, t_neg, 1, 1.0, NULL, TG_REDUCTION_MEAN),
          "multi_margin_loss", "target -1");
    FAILS(tg_multi_margin_loss(tp, x1, t, 1, 1.0, NULL, TG_REDUCTION_MEAN), "multi_margin_loss",
          "[N, C]");
    FAILS(tg_multi_margin_loss(tp, x, t, 1, 1.0, w2, TG_REDUCTION_MEAN), "multi_margin_loss",
          "weight");
    FAILS(tg_multi_margin_loss(tp, x, t, 1, 1.0, NULL, TG_REDUCTION_BATCHMEAN),
          "multi_margin_loss", "batchmean");
    FAILS(tg_kl_div(tp, x, x32, false, TG_REDUCTION_BATCHMEAN), "kl_div", "[2, 3]", "[3, 2]");

    /* A NULL input returns NULL and keeps the first error. */
    tg_tape_reset(tp);
    tg_tensor *bad = tg_add(tp, x, x32);
    ck_assert_ptr_null(tg_mse_loss(tp, bad, x, TG_REDUCTION_MEAN));
    ck_assert_ptr_null(tg_cross_entropy(tp, bad, t, NULL));
    CK_HAS(tg_tape_error(tp), "add");
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_kl_div(tp, NULL, x, false, TG_REDUCTION_SUM));
    CK_HAS(tg_tape_error(tp), "kl_div: input 0 is NULL");
    /* No tape: the thread's last error (and nothing is allocated that could leak). */
    ck_assert_ptr_null(tg_mse_loss(NULL, x, x32, TG_REDUCTION_MEAN));
    CK_HAS(tg_last_error(), "mse_loss: tape is NULL");
    ck_assert_ptr_null(tg_cross_entropy(NULL, x, t, NULL));
    CK_HAS(tg_last_error(), "cross_entropy: tape is NULL");
#undef FAILS

    tg_tape_free(tp);
    tg_tensor *all[] = {x, x23b, x32, p, t, t_bad, t_neg, t3, tf, w2, x1, x32f};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tg_tensor_free(all[i]);
}
END_TEST

static Suite *loss_suite(void) {
    Suite *s = suite_create("nn_loss");
    TCase *golden = tcase_create("golden");
    tcase_add_unchecked_fixture(golden, load_fixtures, free_fixtures);
    tcase_set_timeout(golden, 300);
    tcase_add_test(golden, test_golden_f64);
    tcase_add_test(golden, test_golden_f32);
    tcase_add_test(golden, test_gradcheck);
    suite_add_tcase(s, golden);
    TCase *misc = tcase_create("behaviour");
    tcase_add_test(misc, test_bce_saturated_gradient);
    tcase_add_test(misc, test_all_ignored);
    tcase_add_test(misc, test_cross_entropy_is_nll_of_log_softmax);
    tcase_add_test(misc, test_errors);
    suite_add_tcase(s, misc);
    return s;
}

int main(void) {
    return run_suite(loss_suite(), CK_NORMAL);
}
