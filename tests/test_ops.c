/* Tests of every primitive in include/tapegrad.h (suite "core", run as `meson test ops`).
 *
 * For each differentiable primitive: forward values on small fixed inputs against numbers worked
 * out by hand (the transcendental ones once, offline, with NumPy), then on inputs built away
 * from every kink (grid values, see `grid`) a first- and second-order gradcheck in f64, the f32
 * path against the f64 one, and the shape of every input's gradient. Then the errors every kind
 * of bad input must produce (NULL, with the op's name and the shapes on the tape), and the ops
 * without a gradient: comparisons, sign, argmax, one_hot, creation, random tensors, detach. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "testing.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------------- */

/* DIMS(2, 3) expands to the two arguments `ndim, shape`; VALS(1, 2, ...) to `count, values`. */
#define DIMS(...)                                                                             \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}
#define VALS(...)                                                                             \
    (int64_t)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)), (const double[]){__VA_ARGS__}

enum { MAX_IN = 4 };

/* A tensor of dtype dt on tp (persistent when tp is NULL) holding the n values v converted to
 * dt; n must equal the shape's element count. */
static tg_tensor *lit(tg_tape *tp, tg_dtype dt, int ndim, const int64_t *shape, int64_t n,
                      const double *v) {
    tg_tensor *t = tg_zeros(tp, dt, ndim, shape);
    ck_assert_msg(t != NULL, "lit: %s", tp ? tg_tape_error(tp) : tg_last_error());
    ck_assert_int_eq(tg_tensor_numel(t), n);
    void *d = tg_tensor_data_mut(t);
    for (int64_t i = 0; i < n; i++) {
        if (dt == TG_F32) ((float *)d)[i] = (float)v[i];
        else if (dt == TG_F64) ((double *)d)[i] = v[i];
        else ((int64_t *)d)[i] = (int64_t)v[i];
    }
    return t;
}
#define F64(tp, ...) lit(tp, TG_F64, __VA_ARGS__)
#define F32(tp, ...) lit(tp, TG_F32, __VA_ARGS__)
#define I64(tp, ...) lit(tp, TG_I64, __VA_ARGS__)

/* A persistent f64 leaf that requires grad, with values exactly representable in f32 (so the
 * f32 path sees the same inputs). */
static tg_tensor *leaf(int ndim, const int64_t *shape, int64_t n, const double *v) {
    tg_tensor *t = lit(NULL, TG_F64, ndim, shape, n, v);
    double *d = tg_tensor_data_mut(t);
    for (int64_t i = 0; i < n; i++) d[i] = (float)d[i];
    ck_assert_int_eq(tg_set_requires_grad(t, true), 0);
    return t;
}

/* A persistent f64 leaf that requires grad holding lo, lo + step, ..., lo + (numel-1) step
 * (rounded to f32) in a shuffled order. The values are distinct and lie on a known grid, so a
 * test keeps them away from a kink (0 for relu, clamp bounds, ties) by its choice of lo and
 * step, not by luck. Each call shuffles differently, deterministically. */
static tg_tensor *grid(int ndim, const int64_t *shape, double lo, double step) {
    static uint64_t calls;
    tg_tensor *t = tg_zeros(NULL, TG_F64, ndim, shape);
    ck_assert_msg(t != NULL, "grid: %s", tg_last_error());
    int64_t n = tg_tensor_numel(t);
    double *d = tg_tensor_data_mut(t);
    for (int64_t i = 0; i < n; i++) d[i] = (float)(lo + (double)i * step);
    tg_rng *rng = tg_rng_new(1000 + calls++);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)tg_rng_below(rng, (uint64_t)i + 1);
        double tmp = d[i];
        d[i] = d[j];
        d[j] = tmp;
    }
    tg_rng_free(rng);
    ck_assert_int_eq(tg_set_requires_grad(t, true), 0);
    return t;
}

/* Asserts t has the shape and (within a relative tolerance fitting its dtype; exactly for i64)
 * the values given; infinities must match exactly. */
static void expect_at(const char *file, int line, tg_tape *tp, const tg_tensor *t, int ndim,
                      const int64_t *shape, int64_t n, const double *v) {
    ck_assert_msg(t != NULL, "%s:%d: op failed: %s", file, line,
                  tp ? tg_tape_error(tp) : tg_last_error());
    char got[128];
    tg_tensor_describe(t, got, sizeof got);
    ck_assert_msg(tg_tensor_ndim(t) == ndim, "%s:%d: got %s, want rank %d", file, line, got, ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_msg(tg_tensor_shape(t)[d] == shape[d], "%s:%d: got %s, dim %d should be %lld",
                      file, line, got, d, (long long)shape[d]);
    ck_assert_msg(tg_tensor_numel(t) == n, "%s:%d: %s has %lld elements, %lld values expected",
                  file, line, got, (long long)tg_tensor_numel(t), (long long)n);
    tg_dtype dt = tg_tensor_dtype(t);
    double rtol = dt == TG_F64 ? 1e-12 : dt == TG_F32 ? 1e-6 : 0.0;
    for (int64_t i = 0; i < n; i++) {
        double g = tg_tensor_get(t, i);
        bool ok = isinf(v[i]) ? g == v[i] : fabs(g - v[i]) <= rtol * fmax(fabs(v[i]), 1e-3);
        ck_assert_msg(ok, "%s:%d: %s element %lld is %.17g, expected %.17g", file, line, got,
                      (long long)i, g, v[i]);
    }
}
#define EXPECT(tp, t, ...) expect_at(__FILE__, __LINE__, (tp), (t), __VA_ARGS__)
/* For a 0-d result. */
#define EXPECT0(tp, t, value)                                                                 \
    expect_at(__FILE__, __LINE__, (tp), (t), 0, NULL, 1, (double[]){value})

/* Asserts that expr gave NULL and that the tape's error names every needle (op name, shapes);
 * then clears the error for the next case. */
static void expect_fail_at(const char *file, int line, tg_tape *tp, const tg_tensor *result,
                           const char *expr, const char *const *needles) {
    ck_assert_msg(result == NULL, "%s:%d: %s should fail", file, line, expr);
    const char *msg = tg_tape_error(tp);
    ck_assert_msg(msg != NULL, "%s:%d: %s failed without an error on the tape", file, line, expr);
    for (int i = 0; needles[i]; i++)
        ck_assert_msg(strstr(msg, needles[i]) != NULL, "%s:%d: %s: message \"%s\" lacks \"%s\"",
                      file, line, expr, msg, needles[i]);
    tg_tape_clear_error(tp);
}
#define EXPECT_FAIL(tp, expr, ...)                                                            \
    expect_fail_at(__FILE__, __LINE__, (tp), (expr), #expr,                                   \
                   (const char *const[]){__VA_ARGS__, NULL})

/* A persistent f32 copy of x (i64 tensors are copied unchanged), requiring grad when x does. */
static tg_tensor *to_f32(const tg_tensor *x) {
    if (tg_tensor_dtype(x) != TG_F64) return tg_tensor_clone(x);
    int64_t n = tg_tensor_numel(x);
    float *buf = malloc((size_t)(n ? n : 1) * sizeof *buf);
    ck_assert(buf != NULL);
    for (int64_t i = 0; i < n; i++) buf[i] = (float)tg_tensor_get(x, i);
    tg_tensor *t = tg_tensor_from(NULL, TG_F32, tg_tensor_ndim(x), tg_tensor_shape(x), buf);
    free(buf);
    ck_assert(t != NULL);
    if (tg_tensor_requires_grad(x)) ck_assert_int_eq(tg_set_requires_grad(t, true), 0);
    return t;
}

/* Asserts got (f32) matches want (f64) in shape and, element by element, within
 * 1e-5 |want| + 1e-6 max|want| (the second term covers values that cancel to near zero). */
static void expect_close(const char *file, int line, const char *what, const tg_tensor *got,
                         const tg_tensor *want) {
    char g[128], w[128];
    tg_tensor_describe(got, g, sizeof g);
    tg_tensor_describe(want, w, sizeof w);
    bool same = tg_tensor_ndim(got) == tg_tensor_ndim(want);
    for (int d = 0; same && d < tg_tensor_ndim(got); d++)
        same = tg_tensor_shape(got)[d] == tg_tensor_shape(want)[d];
    ck_assert_msg(same, "%s:%d: %s: f32 gives %s, f64 gives %s", file, line, what, g, w);
    double scale = 0.0;
    for (int64_t i = 0; i < tg_tensor_numel(want); i++)
        scale = fmax(scale, fabs(tg_tensor_get(want, i)));
    for (int64_t i = 0; i < tg_tensor_numel(want); i++) {
        double a = tg_tensor_get(got, i), b = tg_tensor_get(want, i);
        ck_assert_msg(fabs(a - b) <= 1e-5 * fabs(b) + 1e-6 * scale,
                      "%s:%d: %s element %lld: f32 %.9g, f64 %.17g", file, line, what,
                      (long long)i, a, b);
    }
}

/* A fixed output seed with t's shape in dtype dt: multiples of 1/4 in [-1.25, 1.25]. */
static tg_tensor *seed_like(tg_tape *tp, const tg_tensor *t, tg_dtype dt) {
    tg_tensor *s = tg_zeros(tp, dt, tg_tensor_ndim(t), tg_tensor_shape(t));
    ck_assert(s != NULL);
    void *d = tg_tensor_data_mut(s);
    for (int64_t i = 0; i < tg_tensor_numel(s); i++) {
        double v = (double)((i * 7) % 11 - 5) * 0.25;
        if (dt == TG_F32) ((float *)d)[i] = (float)v;
        else ((double *)d)[i] = v;
    }
    return s;
}

/* Runs fn on the f64 inputs and on f32 copies: the outputs agree, and so do the gradients of a
 * fixed seed, each of which has its input's shape and dtype. */
static void f32_agrees(const char *file, int line, tg_fn fn, void *ctx, int n,
                       tg_tensor *const *in) {
    tg_tensor *in32[MAX_IN], *x64[MAX_IN], *x32[MAX_IN], *g64[MAX_IN], *g32[MAX_IN];
    int k = 0;
    for (int i = 0; i < n; i++) {
        in32[i] = to_f32(in[i]);
        if (tg_tensor_requires_grad(in[i])) {
            x64[k] = in[i];
            x32[k++] = in32[i];
        }
    }
    tg_tape *tp = tg_tape_new();
    ck_assert(tp != NULL);
    tg_tensor *y64 = fn(tp, in, ctx), *y32 = fn(tp, in32, ctx);
    ck_assert_msg(y64 && y32, "%s:%d: forward failed: %s", file, line, tg_tape_error(tp));
    ck_assert_msg(tg_tensor_dtype(y64) == TG_F64 && tg_tensor_dtype(y32) == TG_F32,
                  "%s:%d: output dtypes %s and %s", file, line,
                  tg_dtype_name(tg_tensor_dtype(y64)), tg_dtype_name(tg_tensor_dtype(y32)));
    expect_close(file, line, "forward", y32, y64);
    tg_tensor *s64 = seed_like(tp, y64, TG_F64), *s32 = seed_like(tp, y32, TG_F32);
    ck_assert_msg(tg_grad(tp, 1, &y64, &s64, k, x64, false, g64) == 0, "%s:%d: grad f64: %s",
                  file, line, tg_tape_error(tp));
    ck_assert_msg(tg_grad(tp, 1, &y32, &s32, k, x32, false, g32) == 0, "%s:%d: grad f32: %s",
                  file, line, tg_tape_error(tp));
    for (int j = 0; j < k; j++) {
        char gs[128], xs[128];
        tg_tensor_describe(g64[j], gs, sizeof gs);
        tg_tensor_describe(x64[j], xs, sizeof xs);
        ck_assert_msg(strcmp(gs, xs) == 0, "%s:%d: gradient %s for input %s", file, line, gs, xs);
        tg_tensor_describe(g32[j], gs, sizeof gs);
        tg_tensor_describe(x32[j], xs, sizeof xs);
        ck_assert_msg(strcmp(gs, xs) == 0, "%s:%d: gradient %s for input %s", file, line, gs, xs);
        expect_close(file, line, "gradient", g32[j], g64[j]);
    }
    tg_tape_free(tp);
    for (int i = 0; i < n; i++) tg_tensor_free(in32[i]);
}

/* fn followed by square: its second derivative runs through the VJP of fn's VJP, which the
 * second derivative of a linear fn alone never reaches. */
typedef struct squared {
    tg_fn fn;
    void *ctx;
} squared;

static tg_tensor *square_of(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    const squared *s = ctx;
    return tg_square(tp, s->fn(tp, x, s->ctx));
}

/* The checks every differentiable case gets: gradcheck and gradgradcheck of fn (and
 * gradgradcheck of square(fn)) in f64 with the default tolerances, then f32_agrees. Frees the
 * inputs. */
static void check_op_at(const char *file, int line, tg_fn fn, void *ctx, int n, tg_tensor **in) {
    ck_assert(n <= MAX_IN);
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    tg_gradcheck_report r;
    int rc = tg_gradcheck(fn, ctx, n, in, &o, &r);
    ck_assert_msg(rc == 0, "%s:%d: gradcheck returned %d: %s", file, line, rc, r.message);
    rc = tg_gradgradcheck(fn, ctx, n, in, &o, &r);
    ck_assert_msg(rc == 0, "%s:%d: gradgradcheck returned %d: %s", file, line, rc, r.message);
    squared s = {fn, ctx};
    rc = tg_gradgradcheck(square_of, &s, n, in, &o, &r);
    ck_assert_msg(rc == 0, "%s:%d: gradgradcheck of the square returned %d: %s", file, line, rc,
                  r.message);
    f32_agrees(file, line, fn, ctx, n, in);
    for (int i = 0; i < n; i++) tg_tensor_free(in[i]);
}
#define CHECK_OP(fn, ctx, ...)                                                                \
    check_op_at(__FILE__, __LINE__, (fn), (ctx),                                              \
                (int)(sizeof((tg_tensor *[]){__VA_ARGS__}) / sizeof(tg_tensor *)),            \
                (tg_tensor *[]){__VA_ARGS__})

/* Everything a case may need besides its inputs. */
typedef struct args {
    double c0, c1;
    int axes[TG_MAX_DIMS], naxes;
    bool keepdim;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int perm[TG_MAX_DIMS];
    int axis, axis1, n;
    int64_t start, stop, step;
    bool ta, tb;
    int64_t pads[2 * TG_MAX_DIMS];
    tg_window2d win;
    int64_t h, w;
    tg_tensor *idx;
} args;

/* A pointer to an args literal; the parentheses keep its commas inside one macro argument. */
#define ARGS(...) (&(args){__VA_ARGS__})

/* The functions under test, each a tg_fn of inputs x and an args ctx. */
#define FN(name, expr)                                                                        \
    static tg_tensor *name(tg_tape *tp, tg_tensor *const *x, void *ctx) {                     \
        const args *a = ctx;                                                                  \
        (void)a;                                                                              \
        return (expr);                                                                        \
    }

FN(f_neg, tg_neg(tp, x[0]))
FN(f_exp, tg_exp(tp, x[0]))
FN(f_log, tg_log(tp, x[0]))
FN(f_sqrt, tg_sqrt(tp, x[0]))
FN(f_rsqrt, tg_rsqrt(tp, x[0]))
FN(f_abs, tg_abs(tp, x[0]))
FN(f_square, tg_square(tp, x[0]))
FN(f_tanh, tg_tanh(tp, x[0]))
FN(f_sigmoid, tg_sigmoid(tp, x[0]))
FN(f_relu, tg_relu(tp, x[0]))
FN(f_pow, tg_pow_scalar(tp, x[0], a->c0))
FN(f_clamp, tg_clamp(tp, x[0], a->c0, a->c1))
FN(f_add, tg_add(tp, x[0], x[1]))
FN(f_sub, tg_sub(tp, x[0], x[1]))
FN(f_mul, tg_mul(tp, x[0], x[1]))
FN(f_div, tg_div(tp, x[0], x[1]))
FN(f_maximum, tg_maximum(tp, x[0], x[1]))
FN(f_tanh_backward, tg_tanh_backward(tp, x[0], x[1]))
FN(f_sigmoid_backward, tg_sigmoid_backward(tp, x[0], x[1]))
FN(f_relu_backward, tg_relu_backward(tp, x[0], x[1]))
FN(f_minimum, tg_minimum(tp, x[0], x[1]))
FN(f_add_s, tg_add_scalar(tp, x[0], a->c0))
FN(f_sub_s, tg_sub_scalar(tp, x[0], a->c0))
FN(f_mul_s, tg_mul_scalar(tp, x[0], a->c0))
FN(f_div_s, tg_div_scalar(tp, x[0], a->c0))
FN(f_rsub_s, tg_rsub_scalar(tp, a->c0, x[0]))
FN(f_rdiv_s, tg_rdiv_scalar(tp, a->c0, x[0]))
FN(f_where, tg_where(tp, x[0], x[1], x[2]))
FN(f_sum, tg_sum(tp, x[0], a->naxes ? a->axes : NULL, a->naxes, a->keepdim))
FN(f_mean, tg_mean(tp, x[0], a->naxes ? a->axes : NULL, a->naxes, a->keepdim))
FN(f_max, tg_max(tp, x[0], a->naxes ? a->axes : NULL, a->naxes, a->keepdim))
FN(f_min, tg_min(tp, x[0], a->naxes ? a->axes : NULL, a->naxes, a->keepdim))
FN(f_sum_to, tg_sum_to(tp, x[0], a->ndim, a->shape))
FN(f_matmul, tg_matmul(tp, x[0], x[1]))
FN(f_matmul_trans, tg_matmul_trans(tp, x[0], a->ta, x[1], a->tb))
FN(f_reshape, tg_reshape(tp, x[0], a->ndim, a->shape))
FN(f_permute, tg_permute(tp, x[0], a->perm))
FN(f_transpose, tg_transpose(tp, x[0], a->axis, a->axis1))
FN(f_expand, tg_expand(tp, x[0], a->ndim, a->shape))
FN(f_squeeze, tg_squeeze(tp, x[0], a->axis))
FN(f_unsqueeze, tg_unsqueeze(tp, x[0], a->axis))
FN(f_slice, tg_slice(tp, x[0], a->axis, a->start, a->stop, a->step))
FN(f_concat, tg_concat(tp, a->n, x, a->axis))
FN(f_pad, tg_pad(tp, x[0], a->pads, a->c0))
/* -INFINITY padding under a max that never selects it (max pooling's pattern) */
FN(f_pad_max, tg_max(tp, tg_pad(tp, x[0], a->pads, -INFINITY), a->axes, a->naxes, false))
FN(f_gather, tg_gather(tp, x[0], a->axis, a->idx))
FN(f_scatter_add, tg_scatter_add(tp, x[0], a->axis, a->idx, x[1]))
FN(f_index_select, tg_index_select(tp, x[0], a->axis, a->idx))
FN(f_index_add, tg_index_add(tp, x[0], a->axis, a->idx, x[1]))
FN(f_unfold, tg_unfold2d(tp, x[0], &a->win))
FN(f_fold, tg_fold2d(tp, x[0], a->h, a->w, &a->win))
FN(f_window_sum, tg_window_sum2d(tp, x[0], &a->win))
FN(f_window_spread, tg_window_spread2d(tp, x[0], a->h, a->w, &a->win))
/* max over each window of a [N, 1, H, W] input (max pooling with -INFINITY padding) */
FN(f_pool, tg_max(tp, tg_unfold2d(tp, x[0], &a->win), (int[]){1}, 1, false))

/* A window with the given kernel, stride, padding and dilation (height, width) and pad value. */
static tg_window2d window(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                          int64_t dh, int64_t dw, double pad_value) {
    return (tg_window2d){kh, kw, sh, sw, ph, pw, dh, dw, pad_value, false};
}

/* A window over an H x W plane, for the tests that run one check over many. */
typedef struct window_case {
    int64_t h, w;
    tg_window2d win;
} window_case;

/* ---------------------------------------------------------------------------------------------
 * Elementwise unary
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_unary_forward) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = F64(tp, DIMS(4), VALS(-1.5, -0.5, 0.25, 2.0));
    tg_tensor *p = F64(tp, DIMS(2, 2), VALS(0.25, 1.0, 4.0, 9.0));
    EXPECT(tp, tg_neg(tp, x), DIMS(4), VALS(1.5, 0.5, -0.25, -2.0));
    EXPECT(tp, tg_exp(tp, x), DIMS(4),
           VALS(0.22313016014842982, 0.6065306597126334, 1.2840254166877414, 7.38905609893065));
    EXPECT(tp, tg_abs(tp, x), DIMS(4), VALS(1.5, 0.5, 0.25, 2.0));
    EXPECT(tp, tg_square(tp, x), DIMS(4), VALS(2.25, 0.25, 0.0625, 4.0));
    EXPECT(tp, tg_tanh(tp, x), DIMS(4),
           VALS(-0.9051482536448665, -0.46211715726000974, 0.24491866240370913,
                0.9640275800758169));
    EXPECT(tp, tg_sigmoid(tp, x), DIMS(4),
           VALS(0.18242552380635632, 0.3775406687981454, 0.5621765008857981,
                0.8807970779778825));
    EXPECT(tp, tg_relu(tp, x), DIMS(4), VALS(0.0, 0.0, 0.25, 2.0));
    EXPECT(tp, tg_pow_scalar(tp, x, 3.0), DIMS(4), VALS(-3.375, -0.125, 0.015625, 8.0));
    EXPECT(tp, tg_clamp(tp, x, -1.0, 1.0), DIMS(4), VALS(-1.0, -0.5, 0.25, 1.0));
    EXPECT(tp, tg_clamp(tp, x, -INFINITY, 0.0), DIMS(4), VALS(-1.5, -0.5, 0.0, 0.0));
    EXPECT(tp, tg_clamp(tp, x, 0.0, INFINITY), DIMS(4), VALS(0.0, 0.0, 0.25, 2.0));
    EXPECT(tp, tg_log(tp, p), DIMS(2, 2),
           VALS(-1.3862943611198906, 0.0, 1.3862943611198906, 2.197224577336219));
    EXPECT(tp, tg_sqrt(tp, p), DIMS(2, 2), VALS(0.5, 1.0, 2.0, 3.0));
    EXPECT(tp, tg_rsqrt(tp, p), DIMS(2, 2), VALS(2.0, 1.0, 0.5, 1.0 / 3.0));
    EXPECT(tp, tg_pow_scalar(tp, p, -1.5), DIMS(2, 2), VALS(8.0, 1.0, 0.125, 1.0 / 27.0));
    EXPECT(tp, tg_pow_scalar(tp, p, 0.5), DIMS(2, 2), VALS(0.5, 1.0, 2.0, 3.0));
    EXPECT(tp, tg_add_scalar(tp, x, 2.0), DIMS(4), VALS(0.5, 1.5, 2.25, 4.0));
    EXPECT(tp, tg_sub_scalar(tp, x, 2.0), DIMS(4), VALS(-3.5, -2.5, -1.75, 0.0));
    EXPECT(tp, tg_mul_scalar(tp, x, 3.0), DIMS(4), VALS(-4.5, -1.5, 0.75, 6.0));
    EXPECT(tp, tg_div_scalar(tp, x, 4.0), DIMS(4), VALS(-0.375, -0.125, 0.0625, 0.5));
    EXPECT(tp, tg_rsub_scalar(tp, 1.0, x), DIMS(4), VALS(2.5, 1.5, 0.75, -1.0));
    EXPECT(tp, tg_rdiv_scalar(tp, 2.0, p), DIMS(2, 2), VALS(8.0, 2.0, 0.5, 2.0 / 9.0));
    /* 0-d and f32 */
    EXPECT0(tp, tg_exp(tp, F64(tp, 0, NULL, VALS(0.0))), 1.0);
    EXPECT(tp, tg_sqrt(tp, F32(tp, DIMS(2), VALS(4.0, 0.25))), DIMS(2), VALS(2.0, 0.5));
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_unary_grad) {
    CHECK_OP(f_neg, NULL, grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_exp, NULL, grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_log, NULL, grid(DIMS(3, 4), 0.3, 0.15));
    CHECK_OP(f_sqrt, NULL, grid(DIMS(3, 4), 0.3, 0.15));
    CHECK_OP(f_rsqrt, NULL, grid(DIMS(3, 4), 0.3, 0.15));
    /* abs and relu: the grid -1.1, -0.9, ... stays 0.1 away from the kink at 0 */
    CHECK_OP(f_abs, NULL, grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_relu, NULL, grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_square, NULL, grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_tanh, NULL, grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_sigmoid, NULL, grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_exp, NULL, grid(0, NULL, 0.3, 0.0));
}
END_TEST

START_TEST(test_pow_clamp_grad) {
    CHECK_OP(f_pow, ARGS(.c0 = 3.0), grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_pow, ARGS(.c0 = 2.0), grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_pow, ARGS(.c0 = -1.5), grid(DIMS(3, 4), 0.4, 0.1));
    CHECK_OP(f_pow, ARGS(.c0 = 0.5), grid(DIMS(3, 4), 0.4, 0.1));
    CHECK_OP(f_pow, ARGS(.c0 = 0.0), grid(DIMS(3, 4), -1.1, 0.2));
    /* bounds -0.6 and 0.4 sit halfway between grid values -1.1 + 0.2 k */
    CHECK_OP(f_clamp, ARGS(.c0 = -0.6, .c1 = 0.4), grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_clamp, ARGS(.c0 = -INFINITY, .c1 = 0.4), grid(DIMS(3, 4), -1.1, 0.2));
    CHECK_OP(f_clamp, ARGS(.c0 = -0.6, .c1 = INFINITY), grid(DIMS(3, 4), -1.1, 0.2));
}
END_TEST

START_TEST(test_scalar_forms_grad) {
    CHECK_OP(f_add_s, ARGS(.c0 = 1.5), grid(DIMS(2, 3), -1.1, 0.3));
    CHECK_OP(f_sub_s, ARGS(.c0 = -0.75), grid(DIMS(2, 3), -1.1, 0.3));
    CHECK_OP(f_mul_s, ARGS(.c0 = -2.5), grid(DIMS(2, 3), -1.1, 0.3));
    CHECK_OP(f_div_s, ARGS(.c0 = 0.4), grid(DIMS(2, 3), -1.1, 0.3));
    CHECK_OP(f_rsub_s, ARGS(.c0 = 2.0), grid(DIMS(2, 3), -1.1, 0.3));
    CHECK_OP(f_rdiv_s, ARGS(.c0 = -1.5), grid(DIMS(2, 3), 0.5, 0.25));
    CHECK_OP(f_rdiv_s, ARGS(.c0 = 3.0), grid(DIMS(2, 3), -2.0, 0.25));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Elementwise binary and where
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_binary_forward) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = F64(tp, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *b = F64(tp, DIMS(3), VALS(1.5, -1, 4));
    EXPECT(tp, tg_add(tp, a, b), DIMS(2, 3), VALS(2.5, 1, 7, 5.5, 4, 10));
    EXPECT(tp, tg_sub(tp, a, b), DIMS(2, 3), VALS(-0.5, 3, -1, 2.5, 6, 2));
    EXPECT(tp, tg_sub(tp, b, a), DIMS(2, 3), VALS(0.5, -3, 1, -2.5, -6, -2));
    EXPECT(tp, tg_mul(tp, a, b), DIMS(2, 3), VALS(1.5, -2, 12, 6, -5, 24));
    EXPECT(tp, tg_div(tp, a, b), DIMS(2, 3), VALS(1 / 1.5, -2, 0.75, 4 / 1.5, -5, 1.5));
    EXPECT(tp, tg_maximum(tp, a, b), DIMS(2, 3), VALS(1.5, 2, 4, 4, 5, 6));
    EXPECT(tp, tg_minimum(tp, a, b), DIMS(2, 3), VALS(1, -1, 3, 1.5, -1, 4));
    /* fused activation gradients, b as the incoming gradient: b (1 - a^2), b a (1 - a), and
     * b where a - 2 > 0 (none at 0, as PyTorch's threshold_backward) */
    EXPECT(tp, tg_tanh_backward(tp, a, b), DIMS(2, 3), VALS(0, 3, -32, -22.5, 24, -140));
    EXPECT(tp, tg_sigmoid_backward(tp, a, b), DIMS(2, 3), VALS(0, 2, -24, -18, 20, -120));
    EXPECT(tp, tg_relu_backward(tp, tg_sub_scalar(tp, a, 2.0), b), DIMS(2, 3),
           VALS(0, 0, 4, 1.5, -1, 4));
    /* size-1 dims on both sides: [2, 1] with [3] -> [2, 3]; a 0-d operand */
    tg_tensor *col = F64(tp, DIMS(2, 1), VALS(1, 2));
    tg_tensor *row = F64(tp, DIMS(1, 3), VALS(10, 20, 30));
    EXPECT(tp, tg_add(tp, col, row), DIMS(2, 3), VALS(11, 21, 31, 12, 22, 32));
    EXPECT(tp, tg_mul(tp, F64(tp, 0, NULL, VALS(-2)), col), DIMS(2, 1), VALS(-2, -4));
    /* where: mask [2, 1], a [2, 3], b [3] */
    tg_tensor *mask = F64(tp, DIMS(2, 1), VALS(1, 0));
    tg_tensor *c = F64(tp, DIMS(3), VALS(-1, -2, -3));
    EXPECT(tp, tg_where(tp, mask, a, c), DIMS(2, 3), VALS(1, 2, 3, -1, -2, -3));
    EXPECT(tp, tg_where(tp, F64(tp, DIMS(3), VALS(0, 2, -1)), a, c), DIMS(2, 3),
           VALS(-1, 2, 3, -1, 5, 6));
    tg_tape_free(tp);
}
END_TEST

/* The four broadcasting patterns every binary op is checked on. */
typedef struct pair {
    int na, nb;
    int64_t sa[3], sb[3];
} pair;
static const pair pairs[] = {
    {2, 2, {2, 3}, {2, 3}},       /* same shape */
    {2, 1, {2, 3}, {3}},          /* different ranks */
    {3, 2, {2, 1, 3}, {4, 1}},    /* size-1 dims stretched on both sides -> [2, 4, 3] */
    {0, 2, {0}, {2, 3}},          /* 0-d with a matrix */
};

START_TEST(test_binary_grad) {
    const pair *p = &pairs[_i];
    CHECK_OP(f_add, NULL, grid(p->na, p->sa, -1.1, 0.3), grid(p->nb, p->sb, -0.9, 0.2));
    CHECK_OP(f_sub, NULL, grid(p->na, p->sa, -1.1, 0.3), grid(p->nb, p->sb, -0.9, 0.2));
    CHECK_OP(f_sub, NULL, grid(p->nb, p->sb, -1.1, 0.3), grid(p->na, p->sa, -0.9, 0.2));
    CHECK_OP(f_mul, NULL, grid(p->na, p->sa, -1.1, 0.3), grid(p->nb, p->sb, -0.9, 0.2));
    CHECK_OP(f_mul, NULL, grid(p->nb, p->sb, -1.1, 0.3), grid(p->na, p->sa, -0.9, 0.2));
    CHECK_OP(f_div, NULL, grid(p->na, p->sa, -1.1, 0.3), grid(p->nb, p->sb, 0.5, 0.25));
    CHECK_OP(f_div, NULL, grid(p->nb, p->sb, -1.1, 0.3), grid(p->na, p->sa, -2.0, 0.25));
    /* a on -1.1 + 0.5 k, b on -0.85 + 0.5 k: every pair differs by at least 0.25, no ties */
    CHECK_OP(f_maximum, NULL, grid(p->na, p->sa, -1.1, 0.5), grid(p->nb, p->sb, -0.85, 0.5));
    CHECK_OP(f_maximum, NULL, grid(p->nb, p->sb, -1.1, 0.5), grid(p->na, p->sa, -0.85, 0.5));
    CHECK_OP(f_minimum, NULL, grid(p->na, p->sa, -1.1, 0.5), grid(p->nb, p->sb, -0.85, 0.5));
    CHECK_OP(f_minimum, NULL, grid(p->nb, p->sb, -1.1, 0.5), grid(p->na, p->sa, -0.85, 0.5));
    CHECK_OP(f_tanh_backward, NULL, grid(p->na, p->sa, -1.1, 0.3), grid(p->nb, p->sb, -0.9, 0.2));
    CHECK_OP(f_sigmoid_backward, NULL, grid(p->nb, p->sb, -1.1, 0.3),
             grid(p->na, p->sa, -0.9, 0.2));
    /* x on -1.1 + 0.3 k stays at least 0.1 from relu's kink */
    CHECK_OP(f_relu_backward, NULL, grid(p->na, p->sa, -1.1, 0.3), grid(p->nb, p->sb, -0.9, 0.2));
}
END_TEST

START_TEST(test_where_grad) {
    tg_tensor *mask = F64(NULL, DIMS(3, 1), VALS(1, 0, 1));
    CHECK_OP(f_where, NULL, tg_tensor_clone(mask), grid(DIMS(3, 4), -1.1, 0.2),
             grid(DIMS(4), 0.3, 0.2));
    /* the mask broadcasts against both; a is 0-d */
    tg_tensor *m2 = F64(NULL, DIMS(2, 1, 3), VALS(0, 1, 1, 1, 0, 0));
    CHECK_OP(f_where, NULL, m2, grid(0, NULL, 0.7, 0.0), grid(DIMS(2, 1), -0.5, 0.3));
    tg_tensor_free(mask);
}
END_TEST

/* Gradients of broadcast inputs are summed back to the inputs' shapes (tg_backward into
 * persistent leaves). */
START_TEST(test_broadcast_vjp_shapes) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = leaf(DIMS(2, 1, 3), VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *b = leaf(DIMS(4, 1), VALS(1, 2, 3, 4));
    tg_tensor *c = leaf(0, NULL, VALS(2));
    /* y = sum(a * b * c): dy/da = c sum(b) = 20 each; dy/db = c sum(a) = 42; dy/dc = sum_ij a b */
    tg_tensor *y = tg_sum(tp, tg_mul(tp, tg_mul(tp, a, b), c), NULL, 0, false);
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    EXPECT(tp, tg_tensor_grad(a), DIMS(2, 1, 3), VALS(20, 20, 20, 20, 20, 20));
    EXPECT(tp, tg_tensor_grad(b), DIMS(4, 1), VALS(42, 42, 42, 42));
    EXPECT0(tp, tg_tensor_grad(c), 210);
    ck_assert(tg_tensor_is_persistent(tg_tensor_grad(a)));
    /* the same for div and maximum, with tg_grad */
    tg_tensor *ins[2] = {a, b}, *g[2];
    tg_tensor *z = tg_sum(tp, tg_div(tp, a, b), NULL, 0, false);
    ck_assert_int_eq(tg_grad(tp, 1, &z, NULL, 2, ins, false, g), 0);
    double hb = 1.0 + 1.0 / 2 + 1.0 / 3 + 1.0 / 4;
    EXPECT(tp, g[0], DIMS(2, 1, 3), VALS(hb, hb, hb, hb, hb, hb));
    EXPECT(tp, g[1], DIMS(4, 1), VALS(-21.0, -21.0 / 4, -21.0 / 9, -21.0 / 16));
    tg_tape_free(tp);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(c);
}
END_TEST

/* Asserts a and b hold the same shape and identical elements (NaN matching NaN). */
static void expect_identical(const tg_tensor *a, const tg_tensor *b, const char *what) {
    ck_assert_msg(a && b, "%s: missing result", what);
    ck_assert_int_eq(tg_tensor_ndim(a), tg_tensor_ndim(b));
    for (int d = 0; d < tg_tensor_ndim(a); d++)
        ck_assert_int_eq(tg_tensor_shape(a)[d], tg_tensor_shape(b)[d]);
    for (int64_t i = 0; i < tg_tensor_numel(a); i++)
        ck_assert_msg(tg_tensor_get(a, i) == tg_tensor_get(b, i) ||
                          (isnan(tg_tensor_get(a, i)) && isnan(tg_tensor_get(b, i))),
                      "%s: element %lld: %g vs %g", what, (long long)i, tg_tensor_get(a, i),
                      tg_tensor_get(b, i));
}

/* max, min and argmax along contiguous rows (a vectorized reduction, then a scan) agree with
 * the same reduction along a strided axis (a sweep keeping the first extreme): ties, -0 against
 * +0 and NaNs (the first NaN wins) planted in rows of 1 to 100 entries, in both dtypes. */
START_TEST(test_extreme_rows_match_columns) {
    tg_rng *rng = tg_rng_new(9);
    const int64_t lens[] = {1, 3, 16, 17, 37, 100};
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        for (int f32 = 0; f32 < 2; f32++) {
            tg_tape *tp = tg_tape_new();
            const int64_t rows = 12, len = lens[li];
            tg_tensor *x = tg_randn(tp, rng, f32 ? TG_F32 : TG_F64, DIMS(rows, len), 0, 1);
            void *d = tg_tensor_data_mut(x);
            for (int64_t r = 0; r < rows; r++) { /* plant: r%4 0 ties, 1 zeros, 2 NaNs, 3 none */
                const int64_t a = len > 1 ? 1 : 0, b = len - 1;
                const double v[4][2] = {{9, 9}, {-0.0, 0.0}, {NAN, NAN}, {0, 0}};
                for (int k = 0; k < 2 && r % 4 != 3; k++) {
                    const int64_t at = r * len + (k ? b : a);
                    if (f32) ((float *)d)[at] = (float)v[r % 4][k];
                    else ((double *)d)[at] = v[r % 4][k];
                }
                if (r % 4 == 1) /* only zeros and negatives: the zeros are the maximum */
                    for (int64_t i = 0; i < len; i++) {
                        const double e = tg_tensor_get(x, r * len + i);
                        const double neg = e > 0 ? -e : e;
                        if (f32) ((float *)d)[r * len + i] = (float)neg;
                        else ((double *)d)[r * len + i] = neg;
                    }
            }
            tg_tensor *xt = tg_transpose(tp, x, 0, 1); /* [len, rows]: the strided sweep */
            expect_identical(tg_max(tp, x, (int[]){1}, 1, false),
                             tg_max(tp, xt, (int[]){0}, 1, false), "max");
            expect_identical(tg_min(tp, x, (int[]){1}, 1, false),
                             tg_min(tp, xt, (int[]){0}, 1, false), "min");
            expect_identical(tg_argmax(tp, x, 1, false), tg_argmax(tp, xt, 0, false), "argmax");
            tg_tensor *m = tg_max(tp, x, (int[]){1}, 1, false);
            for (int64_t r = 0; r < rows; r++) { /* the signs of planted zeros survive */
                const double v = tg_tensor_get(m, r);
                if (r % 4 == 1) ck_assert_msg(v == 0 && (len == 1 || signbit(v)), "row %lld: %g",
                                              (long long)r, v);
                if (r % 4 == 2) ck_assert(isnan(v));
            }
            ck_assert_ptr_null(tg_tape_error(tp));
            tg_tape_free(tp);
        }
    }
    tg_rng_free(rng);
}
END_TEST

/* Documented conventions at kinks and ties (gradcheck stays away from these points). */
START_TEST(test_tie_rules) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = leaf(DIMS(3), VALS(1, 2, 3)), *b = leaf(DIMS(3), VALS(1, 5, 0));
    tg_tensor *ins[2] = {a, b}, *g[2];
    tg_tensor *y = tg_sum(tp, tg_maximum(tp, a, b), NULL, 0, false);
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 2, ins, false, g), 0);
    EXPECT(tp, g[0], DIMS(3), VALS(0.5, 0, 1));
    EXPECT(tp, g[1], DIMS(3), VALS(0.5, 1, 0));
    y = tg_sum(tp, tg_minimum(tp, a, b), NULL, 0, false);
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 2, ins, false, g), 0);
    EXPECT(tp, g[0], DIMS(3), VALS(0.5, 1, 0));
    EXPECT(tp, g[1], DIMS(3), VALS(0.5, 0, 1));
    /* max/min send the gradient to the first extreme element */
    tg_tensor *m = leaf(DIMS(2, 3), VALS(3, 1, 3, 0, 0, -1));
    y = tg_max(tp, m, (int[]){1}, 1, false);
    EXPECT(tp, y, DIMS(2), VALS(3, 0));
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &m, false, g), 0);
    EXPECT(tp, g[0], DIMS(2, 3), VALS(1, 0, 0, 1, 0, 0));
    y = tg_min(tp, m, NULL, 0, false);
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &m, false, g), 0);
    EXPECT(tp, g[0], DIMS(2, 3), VALS(0, 0, 0, 0, 0, 1));
    y = tg_max(tp, m, NULL, 0, false);
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &m, false, g), 0);
    EXPECT(tp, g[0], DIMS(2, 3), VALS(1, 0, 0, 0, 0, 0));
    /* relu and abs have gradient 0 at 0; clamp passes it at the bounds */
    tg_tensor *k = leaf(DIMS(3), VALS(-1, 0, 1));
    y = tg_sum(tp, tg_relu(tp, k), NULL, 0, false);
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &k, false, g), 0);
    EXPECT(tp, g[0], DIMS(3), VALS(0, 0, 1));
    y = tg_sum(tp, tg_abs(tp, k), NULL, 0, false);
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &k, false, g), 0);
    EXPECT(tp, g[0], DIMS(3), VALS(-1, 0, 1));
    y = tg_sum(tp, tg_clamp(tp, k, -1, 0), NULL, 0, false);
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &k, false, g), 0);
    EXPECT(tp, g[0], DIMS(3), VALS(1, 1, 0));
    tg_tape_free(tp);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(m);
    tg_tensor_free(k);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Reductions
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_reduce_forward) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = F64(tp, DIMS(2, 3), VALS(1, 5, 2, 4, 3, 6));
    EXPECT(tp, tg_sum(tp, x, (int[]){0}, 1, false), DIMS(3), VALS(5, 8, 8));
    EXPECT(tp, tg_sum(tp, x, (int[]){-1}, 1, false), DIMS(2), VALS(8, 13));
    EXPECT(tp, tg_sum(tp, x, (int[]){1}, 1, true), DIMS(2, 1), VALS(8, 13));
    EXPECT0(tp, tg_sum(tp, x, NULL, 0, false), 21);
    EXPECT(tp, tg_sum(tp, x, NULL, 0, true), DIMS(1, 1), VALS(21));
    EXPECT(tp, tg_sum(tp, x, (int[]){0, 1}, 2, false), 0, NULL, VALS(21));
    EXPECT(tp, tg_mean(tp, x, (int[]){1}, 1, false), DIMS(2), VALS(8.0 / 3, 13.0 / 3));
    EXPECT0(tp, tg_mean(tp, x, NULL, 0, false), 3.5);
    EXPECT(tp, tg_mean(tp, x, (int[]){0}, 1, true), DIMS(1, 3), VALS(2.5, 4, 4));
    EXPECT(tp, tg_max(tp, x, (int[]){1}, 1, false), DIMS(2), VALS(5, 6));
    EXPECT(tp, tg_max(tp, x, (int[]){0}, 1, true), DIMS(1, 3), VALS(4, 5, 6));
    EXPECT0(tp, tg_max(tp, x, NULL, 0, false), 6);
    EXPECT(tp, tg_min(tp, x, (int[]){-1}, 1, false), DIMS(2), VALS(1, 3));
    EXPECT(tp, tg_min(tp, x, NULL, 0, true), DIMS(1, 1), VALS(1));
    /* several axes of [2, 2, 3] holding 0..11 */
    tg_tensor *y = tg_reshape(tp, tg_arange(tp, TG_F64, 0, 12, 1), DIMS(2, 2, 3));
    EXPECT(tp, tg_sum(tp, y, (int[]){0, 2}, 2, false), DIMS(2), VALS(24, 42));
    EXPECT(tp, tg_sum(tp, y, (int[]){2, 0}, 2, true), DIMS(1, 2, 1), VALS(24, 42));
    EXPECT(tp, tg_mean(tp, y, (int[]){0, 1}, 2, false), DIMS(3), VALS(4.5, 5.5, 6.5));
    EXPECT(tp, tg_max(tp, y, (int[]){0, 2}, 2, false), DIMS(2), VALS(8, 11));
    EXPECT(tp, tg_max(tp, y, (int[]){0, 2}, 2, true), DIMS(1, 2, 1), VALS(8, 11));
    EXPECT(tp, tg_min(tp, y, (int[]){-1, 0}, 2, false), DIMS(2), VALS(0, 3));
    EXPECT(tp, tg_min(tp, y, (int[]){1, 2}, 2, true), DIMS(2, 1, 1), VALS(0, 6));
    /* sum_to: the reverse of broadcasting */
    EXPECT(tp, tg_sum_to(tp, x, DIMS(1, 3)), DIMS(1, 3), VALS(5, 8, 8));
    EXPECT(tp, tg_sum_to(tp, x, DIMS(3)), DIMS(3), VALS(5, 8, 8));
    EXPECT(tp, tg_sum_to(tp, x, DIMS(2, 1)), DIMS(2, 1), VALS(8, 13));
    EXPECT0(tp, tg_sum_to(tp, x, 0, NULL), 21);
    EXPECT(tp, tg_sum_to(tp, y, DIMS(2, 1, 1)), DIMS(2, 1, 1), VALS(15, 51));
    /* argmax: the first maximum, int64 */
    tg_tensor *t = F64(tp, DIMS(2, 3), VALS(1, 5, 5, 7, 3, 7));
    tg_tensor *am = tg_argmax(tp, t, 1, false);
    ck_assert_int_eq(tg_tensor_dtype(am), TG_I64);
    EXPECT(tp, am, DIMS(2), VALS(1, 0));
    EXPECT(tp, tg_argmax(tp, t, -1, true), DIMS(2, 1), VALS(1, 0));
    EXPECT(tp, tg_argmax(tp, t, 0, false), DIMS(3), VALS(1, 0, 1));
    EXPECT(tp, tg_argmax(tp, F32(tp, DIMS(4), VALS(-3, -1, -2, -1)), 0, false), 0, NULL,
           VALS(1));
    tg_tape_free(tp);
}
END_TEST

/* The axis configurations every reduction is checked on, over [2, 3, 4]. */
typedef struct reduction {
    int axes[3], naxes;
    bool keepdim;
} reduction;
static const reduction reductions[] = {
    {{1}, 1, false},       /* one axis */
    {{-1}, 1, true},       /* one negative axis, keepdim */
    {{0, 2}, 2, false},    /* several axes */
    {{2, 0}, 2, true},     /* several axes, keepdim */
    {{0}, 0, false},       /* all */
    {{0}, 0, true},        /* all, keepdim */
    {{0, 1, 2}, 3, false}, /* all, named */
};

START_TEST(test_reduce_grad) {
    const reduction *r = &reductions[_i];
    args a = {.naxes = r->naxes, .keepdim = r->keepdim};
    memcpy(a.axes, r->axes, sizeof r->axes);
    CHECK_OP(f_sum, &a, grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_mean, &a, grid(DIMS(2, 3, 4), -1.1, 0.1));
    /* distinct grid values: no ties for max or min */
    CHECK_OP(f_max, &a, grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_min, &a, grid(DIMS(2, 3, 4), -1.1, 0.1));
}
END_TEST

START_TEST(test_sum_to_grad) {
    CHECK_OP(f_sum_to, ARGS(.ndim = 2, .shape = {3, 1}), grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_sum_to, ARGS(.ndim = 2, .shape = {1, 4}), grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_sum_to, ARGS(.ndim = 3, .shape = {2, 1, 4}), grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_sum_to, ARGS(.ndim = 1, .shape = {4}), grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_sum_to, ARGS(.ndim = 0), grid(DIMS(2, 3, 4), -1.1, 0.1));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Matrix products
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_matmul_forward) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = F64(tp, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *b = F64(tp, DIMS(3, 2), VALS(7, 8, 9, 10, 11, 12));
    tg_tensor *at = F64(tp, DIMS(3, 2), VALS(1, 4, 2, 5, 3, 6)); /* a stored transposed */
    tg_tensor *bt = F64(tp, DIMS(2, 3), VALS(7, 9, 11, 8, 10, 12));
    EXPECT(tp, tg_matmul(tp, a, b), DIMS(2, 2), VALS(58, 64, 139, 154));
    EXPECT(tp, tg_matmul_trans(tp, a, false, b, false), DIMS(2, 2), VALS(58, 64, 139, 154));
    EXPECT(tp, tg_matmul_trans(tp, at, true, b, false), DIMS(2, 2), VALS(58, 64, 139, 154));
    EXPECT(tp, tg_matmul_trans(tp, a, false, bt, true), DIMS(2, 2), VALS(58, 64, 139, 154));
    EXPECT(tp, tg_matmul_trans(tp, at, true, bt, true), DIMS(2, 2), VALS(58, 64, 139, 154));
    EXPECT(tp, tg_matmul(tp, b, a), DIMS(3, 3),
           VALS(39, 54, 69, 49, 68, 87, 59, 82, 105));
    /* batched with a shared right operand: [2, 1, 2] x [2, 1] -> [2, 1, 1] */
    tg_tensor *p = F64(tp, DIMS(2, 1, 2), VALS(1, 2, 3, 4));
    EXPECT(tp, tg_matmul(tp, p, F64(tp, DIMS(2, 1), VALS(5, 6))), DIMS(2, 1, 1), VALS(17, 39));
    /* broadcast batch dims: [2, 1, 1, 2] x [3, 2, 1] -> [2, 3, 1, 1] */
    tg_tensor *q = F64(tp, DIMS(2, 1, 1, 2), VALS(1, 2, 3, 4));
    tg_tensor *r = F64(tp, DIMS(3, 2, 1), VALS(1, 0, 0, 1, 1, 1));
    EXPECT(tp, tg_matmul(tp, q, r), DIMS(2, 3, 1, 1), VALS(1, 2, 3, 3, 4, 7));
    /* outer product of a column and a row, and the f32 path */
    EXPECT(tp, tg_matmul(tp, F32(tp, DIMS(2, 1), VALS(1, 2)), F32(tp, DIMS(1, 3), VALS(3, 4, 5))),
           DIMS(2, 3), VALS(3, 4, 5, 6, 8, 10));
    tg_tape_free(tp);
}
END_TEST

/* Products large enough for BLIS's blocking and threads, every transpose flag, both dtypes,
 * against a plain triple loop. */
START_TEST(test_matmul_large) {
    enum { M = 37, K = 29, N = 23 };
    tg_tape *tp = tg_tape_new();
    tg_rng *rng = tg_rng_new(5);
    tg_tensor *a = tg_randn(tp, rng, TG_F64, DIMS(3, M, K), 0, 1);
    tg_tensor *b = tg_randn(tp, rng, TG_F64, DIMS(K, N), 0, 1);
    const double *ad = tg_tensor_data(a), *bd = tg_tensor_data(b);
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype dtype = dt ? TG_F32 : TG_F64;
        tg_tensor *a_in = a, *b_in = b;
        if (dtype == TG_F32) {
            a_in = tg_zeros(tp, TG_F32, DIMS(3, M, K));
            b_in = tg_zeros(tp, TG_F32, DIMS(K, N));
            float *af = tg_tensor_data_mut(a_in), *bf = tg_tensor_data_mut(b_in);
            for (int64_t i = 0; i < 3 * M * K; i++) af[i] = (float)ad[i];
            for (int64_t i = 0; i < K * N; i++) bf[i] = (float)bd[i];
        }
        for (int flags = 0; flags < 4; flags++) {
            bool ta = flags & 1, tb = flags & 2;
            tg_tensor *c = tg_matmul_trans(tp, ta ? tg_transpose(tp, a_in, 1, 2) : a_in, ta,
                                           tb ? tg_transpose(tp, b_in, 0, 1) : b_in, tb);
            ck_assert_msg(c != NULL, "%s", tg_tape_error(tp));
            ck_assert(tg_tensor_ndim(c) == 3 && tg_tensor_shape(c)[1] == M &&
                      tg_tensor_shape(c)[2] == N);
            for (int64_t s = 0; s < 3; s++)
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double ref = 0, mag = 0;
                        for (int64_t k = 0; k < K; k++) {
                            double av = ad[(s * M + i) * K + k], bv = bd[k * N + j];
                            if (dtype == TG_F32) av = (float)av, bv = (float)bv;
                            ref += av * bv;
                            mag += fabs(av * bv);
                        }
                        double got = tg_tensor_get(c, (s * M + i) * N + j);
                        ck_assert_msg(fabs(got - ref) <= (dtype == TG_F32 ? 4e-6 : 1e-14) * mag,
                                      "%s flags %d [%lld, %lld, %lld]: %.17g vs %.17g",
                                      tg_dtype_name(dtype), flags, (long long)s, (long long)i,
                                      (long long)j, got, ref);
                    }
        }
    }
    tg_rng_free(rng);
    tg_tape_free(tp);
}
END_TEST

/* Shapes (as stored) for the matmul cases: a [.., M, K] or [.., K, M] when transposed. */
typedef struct mm {
    int na, nb;
    int64_t a[4], b[4]; /* untransposed: last two dims M, K and K, N */
} mm;
static const mm mms[] = {
    {2, 2, {3, 4}, {4, 2}},             /* 2-D */
    {3, 3, {2, 3, 4}, {2, 4, 2}},       /* batched */
    {4, 3, {2, 1, 2, 3}, {3, 3, 2}},    /* broadcast batch dims */
    {3, 2, {2, 3, 4}, {4, 2}},          /* shared right operand */
    {2, 3, {3, 4}, {2, 4, 2}},          /* shared left operand */
    {2, 2, {1, 3}, {3, 1}},             /* a row times a column */
    {2, 2, {3, 1}, {1, 2}},             /* outer product */
};

/* shape with its last two dims swapped when t is set */
static void stored(int n, const int64_t *s, bool t, int64_t *out) {
    memcpy(out, s, (size_t)n * sizeof *s);
    if (t) {
        out[n - 2] = s[n - 1];
        out[n - 1] = s[n - 2];
    }
}

/* Runs single-threaded: on operands this small, two BLIS threads only add synchronisation (on
 * a busy machine it multiplies the run time many times); test_matmul_large covers threads. */
START_TEST(test_matmul_grad) {
    const mm *c = &mms[_i];
    int threads = tg_get_num_threads();
    tg_set_num_threads(1);
    CHECK_OP(f_matmul, NULL, grid(c->na, c->a, -1.1, 0.1), grid(c->nb, c->b, -0.8, 0.15));
    for (int flags = 0; flags < 4; flags++) {
        args a = {.ta = flags & 1, .tb = flags & 2};
        int64_t sa[4], sb[4];
        stored(c->na, c->a, a.ta, sa);
        stored(c->nb, c->b, a.tb, sb);
        CHECK_OP(f_matmul_trans, &a, grid(c->na, sa, -1.1, 0.1), grid(c->nb, sb, -0.8, 0.15));
    }
    tg_set_num_threads(threads);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Shape primitives
 * ------------------------------------------------------------------------------------------- */

/* Kernels that spread their work over threads from TG_PARALLEL_MIN (2^18) elements, each
 * thread a share of one dimension the output advances along: a broadcast product (split
 * along the batch), a contiguous addition (its one run cut in pieces), where and a permuting
 * copy, on 2^19 elements with two threads, against the index arithmetic and bit-identical to
 * one thread; and sums over batch norm's axes 0, 2, 3 (split along the channels), over rows
 * and over all but the leading axis, bit-identical to one thread and against f64 sums. */
START_TEST(test_threaded_elementwise) {
    const int threads = tg_get_num_threads();
    tg_rng *rng = tg_rng_new(5);
    tg_tensor *x = tg_randn(NULL, rng, TG_F32, DIMS(64, 32, 16, 16), 0, 1);
    tg_tensor *y = tg_randn(NULL, rng, TG_F32, DIMS(64, 32, 16, 16), 0, 1);
    tg_tensor *s = tg_randn(NULL, rng, TG_F32, DIMS(1, 32, 1, 1), 0, 1);
    tg_tensor *results[2][7];
    tg_tape *tapes[2];
    for (int run = 0; run < 2; run++) {
        tg_set_num_threads(run == 0 ? 2 : 1);
        tg_tape *tp = tapes[run] = tg_tape_new();
        results[run][0] = tg_mul(tp, x, s);
        results[run][1] = tg_add(tp, x, y);
        results[run][2] = tg_where(tp, tg_gt(tp, x, y), x, s);
        results[run][3] = tg_permute(tp, x, (int[]){1, 0, 3, 2});
        results[run][4] = tg_sum(tp, x, (int[]){0, 2, 3}, 3, false);
        results[run][5] = tg_sum(tp, x, (int[]){3}, 1, false);
        results[run][6] = tg_sum(tp, x, (int[]){1, 2, 3}, 3, false);
        ck_assert_ptr_null(tg_tape_error(tp));
    }
    double per_channel[32] = {0}, per_sample[64] = {0};
    const int64_t n = tg_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        const int64_t c = i / 256 % 32, b = i / (32 * 256), h = i / 16 % 16, w = i % 16;
        const double xi = tg_tensor_get(x, i), yi = tg_tensor_get(y, i), sc = tg_tensor_get(s, c);
        ck_assert(tg_tensor_get(results[0][0], i) == (double)(float)(xi * sc));
        ck_assert(tg_tensor_get(results[0][1], i) == (double)(float)(xi + yi));
        ck_assert(tg_tensor_get(results[0][2], i) == (xi > yi ? xi : sc));
        const int64_t at = ((c * 64 + b) * 16 + w) * 16 + h; /* [C, N, W, H] */
        ck_assert(tg_tensor_get(results[0][3], at) == xi);
        per_channel[c] += xi;
        per_sample[b] += xi;
    }
    for (int c = 0; c < 32; c++)
        ck_assert(fabs(tg_tensor_get(results[0][4], c) - per_channel[c]) < 1e-2);
    for (int b = 0; b < 64; b++)
        ck_assert(fabs(tg_tensor_get(results[0][6], b) - per_sample[b]) < 1e-2);
    for (int64_t r = 0; r < n / 16; r++) {
        double row = 0;
        for (int w = 0; w < 16; w++) row += tg_tensor_get(x, r * 16 + w);
        ck_assert(fabs(tg_tensor_get(results[0][5], r) - row) < 1e-4);
    }
    for (int k = 0; k < 7; k++) expect_identical(results[0][k], results[1][k], "two threads");
    for (int run = 0; run < 2; run++) tg_tape_free(tapes[run]);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(s);
    tg_rng_free(rng);
    tg_set_num_threads(threads);
}
END_TEST

START_TEST(test_shape_forward) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = F64(tp, DIMS(2, 3), VALS(0, 1, 2, 3, 4, 5));
    EXPECT(tp, tg_reshape(tp, x, DIMS(3, -1)), DIMS(3, 2), VALS(0, 1, 2, 3, 4, 5));
    EXPECT(tp, tg_reshape(tp, x, DIMS(6)), DIMS(6), VALS(0, 1, 2, 3, 4, 5));
    EXPECT(tp, tg_transpose(tp, x, 0, 1), DIMS(3, 2), VALS(0, 3, 1, 4, 2, 5));
    EXPECT(tp, tg_transpose(tp, x, -1, -2), DIMS(3, 2), VALS(0, 3, 1, 4, 2, 5));
    tg_tensor *x3 = tg_reshape(tp, tg_arange(tp, TG_F64, 0, 24, 1), DIMS(2, 3, 4));
    EXPECT(tp, tg_permute(tp, x3, (int[]){2, 0, 1}), DIMS(4, 2, 3),
           VALS(0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15,
                19, 23));
    EXPECT(tp, tg_permute(tp, x3, (int[]){-1, 0, 1}), DIMS(4, 2, 3),
           VALS(0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15,
                19, 23));
    EXPECT(tp, tg_expand(tp, F64(tp, DIMS(3, 1), VALS(1, 2, 3)), DIMS(2, 3, 2)), DIMS(2, 3, 2),
           VALS(1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3));
    EXPECT(tp, tg_expand(tp, F64(tp, 0, NULL, VALS(7)), DIMS(2, 2)), DIMS(2, 2),
           VALS(7, 7, 7, 7));
    tg_tensor *s = F64(tp, DIMS(2, 1, 3), VALS(0, 1, 2, 3, 4, 5));
    EXPECT(tp, tg_squeeze(tp, s, 1), DIMS(2, 3), VALS(0, 1, 2, 3, 4, 5));
    EXPECT(tp, tg_squeeze(tp, s, -2), DIMS(2, 3), VALS(0, 1, 2, 3, 4, 5));
    EXPECT(tp, tg_unsqueeze(tp, x, 0), DIMS(1, 2, 3), VALS(0, 1, 2, 3, 4, 5));
    EXPECT(tp, tg_unsqueeze(tp, x, 2), DIMS(2, 3, 1), VALS(0, 1, 2, 3, 4, 5));
    EXPECT(tp, tg_unsqueeze(tp, x, -1), DIMS(2, 3, 1), VALS(0, 1, 2, 3, 4, 5));
    EXPECT(tp, tg_unsqueeze(tp, x, -2), DIMS(2, 1, 3), VALS(0, 1, 2, 3, 4, 5));
    /* slice of 0..6 */
    tg_tensor *v = tg_arange(tp, TG_F64, 0, 7, 1);
    EXPECT(tp, tg_slice(tp, v, 0, 1, 5, 1), DIMS(4), VALS(1, 2, 3, 4));
    EXPECT(tp, tg_slice(tp, v, 0, -5, 7, 2), DIMS(3), VALS(2, 4, 6));
    EXPECT(tp, tg_slice(tp, v, 0, 0, 100, 3), DIMS(3), VALS(0, 3, 6));
    EXPECT(tp, tg_slice(tp, v, -1, -100, -4, 1), DIMS(3), VALS(0, 1, 2));
    EXPECT(tp, tg_slice(tp, v, 0, 1, -1, 2), DIMS(3), VALS(1, 3, 5));
    EXPECT(tp, tg_slice(tp, v, 0, 5, 2, 1), 1, (const int64_t[]){0}, 0, NULL);
    EXPECT(tp, tg_slice(tp, x, -1, 1, 3, 1), DIMS(2, 2), VALS(1, 2, 4, 5));
    EXPECT(tp, tg_slice(tp, x, 0, 1, 2, 1), DIMS(1, 3), VALS(3, 4, 5));
    /* concat */
    tg_tensor *c1 = F64(tp, DIMS(2, 1), VALS(1, 2)), *c2 = F64(tp, DIMS(2, 2), VALS(3, 4, 5, 6));
    EXPECT(tp, tg_concat(tp, 2, (tg_tensor *[]){c1, c2}, 1), DIMS(2, 3), VALS(1, 3, 4, 2, 5, 6));
    EXPECT(tp, tg_concat(tp, 2, (tg_tensor *[]){c1, c2}, -1), DIMS(2, 3), VALS(1, 3, 4, 2, 5, 6));
    tg_tensor *r1 = F64(tp, DIMS(1, 2), VALS(1, 2));
    EXPECT(tp, tg_concat(tp, 3, (tg_tensor *[]){r1, c2, r1}, 0), DIMS(4, 2),
           VALS(1, 2, 3, 4, 5, 6, 1, 2));
    /* pad: one row before dim 0, two columns after dim 1 */
    tg_tensor *p = F64(tp, DIMS(2, 2), VALS(1, 2, 3, 4));
    EXPECT(tp, tg_pad(tp, p, (int64_t[]){1, 0, 0, 2}, 9), DIMS(3, 4),
           VALS(9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9));
    const double ninf = -INFINITY;
    EXPECT(tp, tg_pad(tp, p, (int64_t[]){0, 1, 1, 0}, ninf), DIMS(3, 3),
           VALS(ninf, 1, 2, ninf, 3, 4, ninf, ninf, ninf));
    EXPECT(tp, tg_pad(tp, F32(tp, DIMS(2), VALS(1, 2)), (int64_t[]){2, 1}, ninf), DIMS(5),
           VALS(ninf, ninf, 1, 2, ninf));
    /* -INFINITY padding: the gradient of the interior is the seed, with nothing non-finite */
    tg_tensor *l = leaf(DIMS(2, 2), VALS(1, 2, 3, 4)), *g;
    tg_tensor *padded = tg_pad(tp, l, (int64_t[]){1, 1, 1, 1}, ninf);
    tg_tensor *seed = tg_full(tp, TG_F64, DIMS(4, 4), 2.0);
    ck_assert_int_eq(tg_grad(tp, 1, &padded, &seed, 1, &l, false, &g), 0);
    EXPECT(tp, g, DIMS(2, 2), VALS(2, 2, 2, 2));
    tg_tensor_free(l);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_reshape_permute_grad) {
    CHECK_OP(f_reshape, ARGS(.ndim = 2, .shape = {4, -1}), grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_reshape, ARGS(.ndim = 1, .shape = {24}), grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_reshape, ARGS(.ndim = 0), grid(DIMS(1, 1), -1.1, 0.1));
    CHECK_OP(f_permute, ARGS(.perm = {2, 0, 1}), grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_permute, ARGS(.perm = {-2, -1, -3}), grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_transpose, ARGS(.axis = 0, .axis1 = 2), grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_transpose, ARGS(.axis = -1, .axis1 = -2), grid(DIMS(2, 3, 4), -1.1, 0.1));
    CHECK_OP(f_expand, ARGS(.ndim = 3, .shape = {2, 3, 4}), grid(DIMS(3, 1), -1.1, 0.3));
    CHECK_OP(f_expand, ARGS(.ndim = 2, .shape = {2, 3}), grid(DIMS(1), -1.1, 0.3));
    CHECK_OP(f_expand, ARGS(.ndim = 2, .shape = {2, 2}), grid(0, NULL, 0.5, 0.0));
    CHECK_OP(f_squeeze, ARGS(.axis = 1), grid(DIMS(2, 1, 3), -1.1, 0.3));
    CHECK_OP(f_squeeze, ARGS(.axis = -1), grid(DIMS(2, 3, 1), -1.1, 0.3));
    CHECK_OP(f_unsqueeze, ARGS(.axis = 0), grid(DIMS(2, 3), -1.1, 0.3));
    CHECK_OP(f_unsqueeze, ARGS(.axis = 2), grid(DIMS(2, 3), -1.1, 0.3));
    CHECK_OP(f_unsqueeze, ARGS(.axis = -2), grid(DIMS(2, 3), -1.1, 0.3));
}
END_TEST

START_TEST(test_slice_concat_pad_grad) {
    CHECK_OP(f_slice, ARGS(.axis = 1, .start = 1, .stop = 5, .step = 1),
             grid(DIMS(3, 7), -1.1, 0.1));
    CHECK_OP(f_slice, ARGS(.axis = 1, .start = -5, .stop = 7, .step = 2),
             grid(DIMS(3, 7), -1.1, 0.1));
    CHECK_OP(f_slice, ARGS(.axis = -1, .start = 0, .stop = 100, .step = 3),
             grid(DIMS(3, 7), -1.1, 0.1));
    CHECK_OP(f_slice, ARGS(.axis = 0, .start = -2, .stop = 3, .step = 1),
             grid(DIMS(3, 7), -1.1, 0.1));
    CHECK_OP(f_slice, ARGS(.axis = -1, .start = -100, .stop = -2, .step = 2),
             grid(DIMS(3, 7), -1.1, 0.1));
    CHECK_OP(f_slice, ARGS(.axis = 1, .start = 1, .stop = 4, .step = 2),
             grid(DIMS(2, 5, 2), -1.1, 0.1));
    CHECK_OP(f_concat, ARGS(.n = 3, .axis = 1), grid(DIMS(2, 1, 3), -1.1, 0.1),
             grid(DIMS(2, 2, 3), -0.5, 0.1), grid(DIMS(2, 3, 3), 0.2, 0.1));
    CHECK_OP(f_concat, ARGS(.n = 2, .axis = -1), grid(DIMS(2, 2), -1.1, 0.1),
             grid(DIMS(2, 3), -0.5, 0.1));
    CHECK_OP(f_concat, ARGS(.n = 2, .axis = 0), grid(DIMS(1, 3), -1.1, 0.1),
             grid(DIMS(2, 3), -0.5, 0.1));
    CHECK_OP(f_concat, ARGS(.n = 1, .axis = 0), grid(DIMS(2, 3), -1.1, 0.1));
    CHECK_OP(f_pad, ARGS(.pads = {1, 0, 2, 1}, .c0 = 0.5), grid(DIMS(2, 3), -1.1, 0.1));
    CHECK_OP(f_pad, ARGS(.pads = {0, 1, 1, 1, 2, 0}), grid(DIMS(2, 2, 3), -1.1, 0.1));
    /* -INFINITY padding under a max over the padded axis: every row keeps finite values */
    CHECK_OP(f_pad_max, ARGS(.pads = {0, 0, 1, 2}, .axes = {1}, .naxes = 1),
             grid(DIMS(3, 4), -1.1, 0.1));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Indexing
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_index_forward) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = F64(tp, DIMS(2, 3), VALS(10, 11, 12, 20, 21, 22));
    EXPECT(tp, tg_gather(tp, x, 1, I64(tp, DIMS(2, 2), VALS(2, 0, 1, 1))), DIMS(2, 2),
           VALS(12, 10, 21, 21));
    EXPECT(tp, tg_gather(tp, x, 0, I64(tp, DIMS(1, 3), VALS(1, 0, 1))), DIMS(1, 3),
           VALS(20, 11, 22));
    EXPECT(tp, tg_gather(tp, x, -1, I64(tp, DIMS(1, 1), VALS(2))), DIMS(1, 1), VALS(12));
    tg_tensor *ones = tg_ones(tp, TG_F64, DIMS(2, 3));
    EXPECT(tp, tg_scatter_add(tp, ones, 1, I64(tp, DIMS(2, 2), VALS(0, 0, 2, 1)),
                              F64(tp, DIMS(2, 2), VALS(1, 2, 3, 4))),
           DIMS(2, 3), VALS(4, 1, 1, 1, 5, 4));
    EXPECT(tp, tg_scatter_add(tp, ones, 0, I64(tp, DIMS(1, 2), VALS(1, 1)),
                              F64(tp, DIMS(1, 2), VALS(5, 6))),
           DIMS(2, 3), VALS(1, 1, 1, 6, 7, 1));
    tg_tensor *y = F64(tp, DIMS(3, 2), VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *i3 = I64(tp, DIMS(3), VALS(2, 0, 2));
    EXPECT(tp, tg_index_select(tp, y, 0, i3), DIMS(3, 2), VALS(5, 6, 1, 2, 5, 6));
    EXPECT(tp, tg_index_select(tp, y, -1, I64(tp, DIMS(1), VALS(1))), DIMS(3, 1), VALS(2, 4, 6));
    EXPECT(tp, tg_index_add(tp, tg_zeros(tp, TG_F64, DIMS(3, 2)), 0, i3, y), DIMS(3, 2),
           VALS(3, 4, 0, 0, 6, 8));
    EXPECT(tp, tg_index_add(tp, y, 1, I64(tp, DIMS(2), VALS(0, 0)),
                            F64(tp, DIMS(3, 2), VALS(1, 1, 2, 2, 3, 3))),
           DIMS(3, 2), VALS(3, 2, 7, 4, 11, 6));
    /* an index_select of an int64 tensor */
    EXPECT(tp, tg_index_select(tp, I64(tp, DIMS(3), VALS(7, 8, 9)), 0, i3), DIMS(3),
           VALS(9, 7, 9));
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_index_grad) {
    tg_tensor *i1 = I64(NULL, DIMS(3, 2), VALS(0, 3, 1, 1, 2, 0)); /* repeats accumulate */
    tg_tensor *i0 = I64(NULL, DIMS(2, 3), VALS(2, 0, 1, 1, 1, 0)); /* smaller than x off axis */
    tg_tensor *s0 = I64(NULL, DIMS(2, 4), VALS(0, 2, 1, 0, 2, 2, 0, 1));
    tg_tensor *sel = I64(NULL, DIMS(3), VALS(2, 0, 2));
    tg_tensor *sel1 = I64(NULL, DIMS(4), VALS(1, 1, 0, 2));
    tg_tensor *add1 = I64(NULL, DIMS(2), VALS(2, 0));
    CHECK_OP(f_gather, ARGS(.axis = 1, .idx = i1), grid(DIMS(3, 4), -1.1, 0.1));
    CHECK_OP(f_gather, ARGS(.axis = -1, .idx = i1), grid(DIMS(3, 4), -1.1, 0.1));
    CHECK_OP(f_gather, ARGS(.axis = 0, .idx = i0), grid(DIMS(3, 4), -1.1, 0.1));
    CHECK_OP(f_scatter_add, ARGS(.axis = 0, .idx = s0), grid(DIMS(3, 4), -1.1, 0.1),
             grid(DIMS(2, 4), -0.5, 0.1));
    CHECK_OP(f_scatter_add, ARGS(.axis = -1, .idx = i1), grid(DIMS(3, 4), -1.1, 0.1),
             grid(DIMS(3, 2), -0.5, 0.1));
    CHECK_OP(f_index_select, ARGS(.axis = 0, .idx = sel), grid(DIMS(4, 3), -1.1, 0.1));
    CHECK_OP(f_index_select, ARGS(.axis = 1, .idx = sel1), grid(DIMS(4, 3), -1.1, 0.1));
    CHECK_OP(f_index_add, ARGS(.axis = 0, .idx = sel), grid(DIMS(4, 3), -1.1, 0.1),
             grid(DIMS(3, 3), -0.5, 0.1));
    CHECK_OP(f_index_add, ARGS(.axis = -1, .idx = add1), grid(DIMS(4, 3), -1.1, 0.1),
             grid(DIMS(4, 2), -0.5, 0.1));
    tg_tensor_free(i1);
    tg_tensor_free(i0);
    tg_tensor_free(s0);
    tg_tensor_free(sel);
    tg_tensor_free(sel1);
    tg_tensor_free(add1);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Sliding windows
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_window_forward) {
    ck_assert_int_eq(tg_window2d_out(3, 2, 1, 0, 1), 2);
    ck_assert_int_eq(tg_window2d_out(3, 2, 2, 1, 1), 2);
    ck_assert_int_eq(tg_window2d_out(4, 2, 1, 0, 2), 2);
    ck_assert_int_eq(tg_window2d_out(5, 3, 2, 1, 1), 3);
    ck_assert_int_eq(tg_window2d_out(2, 3, 1, 0, 1), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_reshape(tp, tg_arange(tp, TG_F64, 1, 10, 1), DIMS(1, 1, 3, 3));
    tg_window2d k2 = window(2, 2, 1, 1, 0, 0, 1, 1, 0.0);
    EXPECT(tp, tg_unfold2d(tp, x, &k2), DIMS(1, 4, 4),
           VALS(1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9));
    const double p = -INFINITY;
    tg_window2d pooled = window(2, 2, 2, 2, 1, 1, 1, 1, p);
    EXPECT(tp, tg_unfold2d(tp, x, &pooled), DIMS(1, 4, 4),
           VALS(p, p, p, 5, p, p, 4, 6, p, 2, p, 8, 1, 3, 7, 9));
    /* non-square input, kernel and dilation: [1, 1, 2, 4], kernel 1x2, dilation 1x2 */
    tg_tensor *r = tg_reshape(tp, tg_arange(tp, TG_F64, 1, 9, 1), DIMS(1, 1, 2, 4));
    tg_window2d dil = window(1, 2, 1, 1, 0, 0, 1, 2, 0.0);
    EXPECT(tp, tg_unfold2d(tp, r, &dil), DIMS(1, 2, 4), VALS(1, 2, 5, 6, 3, 4, 7, 8));
    /* dilation along the height: [1, 1, 3, 2], kernel 2x1, dilation 2x1 reads rows 0 and 2 */
    tg_tensor *tall = tg_reshape(tp, tg_arange(tp, TG_F64, 1, 7, 1), DIMS(1, 1, 3, 2));
    tg_window2d dil_h = window(2, 1, 1, 1, 0, 0, 2, 1, 0.0);
    EXPECT(tp, tg_unfold2d(tp, tall, &dil_h), DIMS(1, 2, 2), VALS(1, 2, 5, 6));
    EXPECT(tp, tg_fold2d(tp, tg_ones(tp, TG_F64, DIMS(1, 2, 2)), 3, 2, &dil_h), DIMS(1, 1, 3, 2),
           VALS(1, 1, 0, 0, 1, 1));
    /* two channels: rows are (c*KH + kh)*KW + kw */
    tg_tensor *two = tg_reshape(tp, tg_arange(tp, TG_F64, 1, 9, 1), DIMS(1, 2, 2, 2));
    tg_window2d k12 = window(1, 2, 1, 1, 0, 0, 1, 1, 0.0);
    EXPECT(tp, tg_unfold2d(tp, two, &k12), DIMS(1, 4, 2), VALS(1, 3, 2, 4, 5, 7, 6, 8));
    /* fold2d sums overlaps */
    EXPECT(tp, tg_fold2d(tp, tg_ones(tp, TG_F64, DIMS(1, 4, 4)), 3, 3, &k2), DIMS(1, 1, 3, 3),
           VALS(1, 2, 1, 2, 4, 2, 1, 2, 1));
    tg_tensor *cols = tg_reshape(tp, tg_arange(tp, TG_F64, 1, 17, 1), DIMS(1, 4, 4));
    EXPECT(tp, tg_fold2d(tp, cols, 3, 3, &k2), DIMS(1, 1, 3, 3),
           VALS(1, 7, 6, 12, 34, 22, 11, 27, 16));
    /* with stride equal to the kernel every position is covered once: fold undoes unfold, and
     * padded positions are dropped */
    tg_window2d tiles = window(2, 2, 2, 2, 1, 1, 1, 1, 0.0);
    EXPECT(tp, tg_fold2d(tp, tg_unfold2d(tp, x, &tiles), 3, 3, &tiles), DIMS(1, 1, 3, 3),
           VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    /* f32 */
    tg_tensor *x32 = F32(tp, DIMS(1, 1, 2, 2), VALS(1, 2, 3, 4));
    tg_window2d k1 = window(1, 1, 1, 1, 1, 0, 1, 1, 0.5);
    EXPECT(tp, tg_unfold2d(tp, x32, &k1), DIMS(1, 1, 8), VALS(0.5, 0.5, 1, 2, 3, 4, 0.5, 0.5));
    tg_tape_free(tp);
}
END_TEST

/* window_sum2d is unfold2d summed over the window axis, window_spread2d fold2d of its input
 * repeated for every window entry; each is the other's adjoint: <sum(x), y> = <x, spread(y)>. */
START_TEST(test_window_sums) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_reshape(tp, tg_arange(tp, TG_F64, 1, 10, 1), DIMS(1, 1, 3, 3));
    tg_window2d k2 = window(2, 2, 1, 1, 0, 0, 1, 1, 0.0);
    EXPECT(tp, tg_window_sum2d(tp, x, &k2), DIMS(1, 1, 2, 2), VALS(12, 16, 24, 28));
    /* padding adds nothing: 2x2 windows, stride 2, padding 1 */
    tg_window2d pooled = window(2, 2, 2, 2, 1, 1, 1, 1, 0.0);
    EXPECT(tp, tg_window_sum2d(tp, x, &pooled), DIMS(1, 1, 2, 2), VALS(1, 5, 11, 28));
    /* each position gets the sum of the windows holding it; 3x3 with windows of 2x2 */
    tg_tensor *y = tg_reshape(tp, tg_arange(tp, TG_F64, 1, 5, 1), DIMS(1, 1, 2, 2));
    EXPECT(tp, tg_window_spread2d(tp, y, 3, 3, &k2), DIMS(1, 1, 3, 3),
           VALS(1, 3, 2, 4, 10, 6, 3, 7, 4));
    EXPECT(tp, tg_window_spread2d(tp, y, 3, 3, &pooled), DIMS(1, 1, 3, 3),
           VALS(1, 2, 2, 3, 4, 4, 3, 4, 4));
    tg_tape_free(tp);

    const window_case cases[] = {
        {5, 7, window(3, 2, 1, 2, 1, 0, 1, 1, 0.0)},
        {9, 8, window(2, 3, 3, 1, 0, 2, 2, 1, 0.0)},
        {6, 6, window(2, 2, 2, 2, 0, 0, 1, 1, 0.0)},
        {4, 11, window(1, 4, 1, 3, 0, 2, 1, 2, 0.0)},
    };
    tg_rng *rng = tg_rng_new(13);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tp = tg_tape_new();
        const tg_window2d *win = &cases[i].win;
        tg_tensor *xs = tg_randn(tp, rng, TG_F64, DIMS(2, 3, cases[i].h, cases[i].w), 0, 1);
        tg_tensor *cols = tg_unfold2d(tp, xs, win);
        const int64_t *cs = tg_tensor_shape(cols), kk = win->kernel_h * win->kernel_w;
        tg_tensor *want = tg_sum(tp, tg_reshape(tp, cols, DIMS(2, 3, kk, cs[2])), (int[]){2}, 1,
                                 false);
        tg_tensor *sums = tg_window_sum2d(tp, xs, win);
        expect_close(__FILE__, __LINE__, "window_sum2d",
                     tg_reshape(tp, sums, DIMS(2, 3, cs[2])), want);
        tg_tensor *ys = tg_randn(tp, rng, TG_F64, 4, tg_tensor_shape(sums), 0, 1);
        tg_tensor *spread = tg_window_spread2d(tp, ys, cases[i].h, cases[i].w, win);
        tg_tensor *repeated = tg_expand(
            tp, tg_reshape(tp, ys, DIMS(2, 3, 1, cs[2])), DIMS(2, 3, kk, cs[2]));
        expect_close(__FILE__, __LINE__, "window_spread2d", spread,
                     tg_fold2d(tp, tg_reshape(tp, repeated, DIMS(2, 3 * kk, cs[2])),
                               cases[i].h, cases[i].w, win));
        double lhs = tg_tensor_get(tg_sum(tp, tg_mul(tp, sums, ys), NULL, 0, false), 0);
        double rhs = tg_tensor_get(tg_sum(tp, tg_mul(tp, xs, spread), NULL, 0, false), 0);
        ck_assert_msg(fabs(lhs - rhs) <= 1e-12 * fabs(lhs), "case %zu: <sum(x), y> = %.17g, "
                      "<x, spread(y)> = %.17g", i, lhs, rhs);
        tg_tape_free(tp);
    }
    tg_rng_free(rng);
}
END_TEST

/* window_argmax2d gives the offset of each window's first maximum (its first NaN, if any) in
 * the plane; padding is never chosen, and a window of padding alone gets -1. */
START_TEST(test_window_argmax) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = F64(tp, DIMS(1, 1, 3, 3), VALS(1, 5, 2, 5, 3, NAN, 4, 0, 6));
    tg_window2d k2 = window(2, 2, 1, 1, 0, 0, 1, 1, 0.0);
    EXPECT(tp, tg_window_argmax2d(tp, x, &k2), DIMS(1, 1, 2, 2), VALS(1, 5, 3, 5));
    tg_tensor *neg = F64(tp, DIMS(1, 1, 2, 2), VALS(-1, -2, -3, -4));
    tg_window2d padded = window(2, 2, 2, 2, 1, 1, 1, 1, 0.0);
    EXPECT(tp, tg_window_argmax2d(tp, neg, &padded), DIMS(1, 1, 2, 2), VALS(0, 1, 2, 3));
    tg_window2d outside = window(2, 2, 1, 1, 1, 1, 3, 3, -INFINITY); /* reads rows -1 and 2 */
    EXPECT(tp, tg_window_argmax2d(tp, neg, &outside), DIMS(1, 1, 1, 1), VALS(-1));
    tg_tape_free(tp);

    /* float takes the same offsets through every path (tables, pieces of stride 1, 2 and 3),
     * on small integers with many ties, a few NaN and runs of -inf */
    const window_case cases[] = {
        {3, 3, window(2, 2, 1, 1, 0, 0, 1, 1, 0.0)},
        {10, 12, window(3, 3, 2, 2, 1, 1, 1, 1, 0.0)},
        {20, 100, window(3, 3, 1, 1, 1, 1, 1, 1, 0.0)},
        {40, 300, window(3, 3, 2, 2, 1, 1, 1, 1, 0.0)},
        {64, 200, window(3, 3, 2, 3, 1, 1, 1, 1, 0.0)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tp = tg_tape_new();
        const int64_t n = cases[i].h * cases[i].w;
        tg_tensor *x64 = tg_zeros(tp, TG_F64, DIMS(1, 1, cases[i].h, cases[i].w));
        double *v = tg_tensor_data_mut(x64);
        for (int64_t k = 0; k < n; k++)
            v[k] = k % 97 == 5 || k % 97 == 6 ? NAN
                   : k % 31 < 3                 ? -INFINITY
                                                : (double)(k * 7 % 5);
        tg_tensor *x32 = to_f32(x64);
        expect_identical(tg_window_argmax2d(tp, x32, &cases[i].win),
                         tg_window_argmax2d(tp, x64, &cases[i].win), "window_argmax2d f32");
        tg_tensor_free(x32);
        tg_tape_free(tp);
    }
}
END_TEST

/* The batch-inner layout [C*KH*KW, N, L] is the standard [N, C*KH*KW, L] with the first two
 * axes swapped, for unfold and fold, in both dtypes, on windows with short output rows (the
 * table path) and long ones (the row path), strided, padded and dilated. */
START_TEST(test_window_batch_inner) {
    const window_case cases[] = {
        {6, 6, window(3, 3, 1, 1, 0, 0, 1, 1, 0.0)},
        {13, 13, window(3, 3, 2, 2, 0, 0, 1, 1, 0.0)},
        {32, 32, window(3, 3, 1, 1, 1, 1, 1, 1, 0.0)},
        {20, 33, window(5, 3, 2, 1, 2, 1, 1, 2, -1.5)},
        {17, 40, window(2, 4, 1, 3, 1, 0, 2, 1, 0.25)},
    };
    tg_rng *rng = tg_rng_new(11);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int f32 = 0; f32 < 2; f32++) {
            tg_tape *tp = tg_tape_new();
            const tg_dtype dt = f32 ? TG_F32 : TG_F64;
            tg_window2d std_win = cases[i].win, inner = cases[i].win;
            inner.batch_inner = true;
            tg_tensor *x = tg_randn(tp, rng, dt, DIMS(3, 2, cases[i].h, cases[i].w), 0, 1);
            tg_tensor *cols = tg_unfold2d(tp, x, &std_win);
            tg_tensor *cols_inner = tg_unfold2d(tp, x, &inner);
            expect_identical(tg_permute(tp, cols, (int[]){1, 0, 2}),
                             cols_inner, "unfold2d batch inner");
            tg_tensor *g = tg_randn(tp, rng, dt, 3, tg_tensor_shape(cols), 0, 1);
            tg_tensor *g_inner = tg_permute(tp, g, (int[]){1, 0, 2});
            expect_identical(tg_fold2d(tp, g, cases[i].h, cases[i].w, &std_win),
                             tg_fold2d(tp, g_inner, cases[i].h, cases[i].w, &inner),
                             "fold2d batch inner");
            ck_assert_ptr_null(tg_tape_error(tp));
            EXPECT_FAIL(tp, tg_fold2d(tp, g, cases[i].h, cases[i].w, &inner), "fold2d",
                        "batch inner");
            tg_tape_free(tp);
        }
    }
    tg_rng_free(rng);
}
END_TEST

/* Float unfold and fold agree with double on the same values, over windows that take every
 * float path of the kernels (tables, rows, 16-wide pieces: rows narrower than a piece, one
 * piece, several and a partial one, stride 1 to 3 either way, padding wider than a stride,
 * dilation; windows that tile), in both layouts: unfold copies exactly, fold sums within
 * rounding; so do window sums and their spreads, and window maxima are the same values, where
 * the padding reads 0. */
START_TEST(test_window_f32_paths) {
    const window_case cases[] = {
        {14, 14, window(5, 5, 1, 1, 0, 0, 1, 1, 0.0)},   /* LeNet-5's second convolution */
        {8, 8, window(3, 3, 1, 1, 1, 1, 1, 1, 0.0)},
        {10, 16, window(3, 3, 1, 1, 1, 1, 1, 1, 0.0)},   /* one full piece */
        {9, 17, window(3, 2, 2, 1, 2, 1, 1, 3, 0.5)},    /* a piece and one more column */
        {7, 40, window(2, 5, 1, 1, 1, 2, 2, 1, -2.0)},   /* three pieces, the last partial */
        {12, 70, window(3, 3, 1, 1, 1, 1, 1, 1, 0.0)},   /* more than four pieces */
        {13, 13, window(3, 3, 2, 2, 0, 0, 1, 1, 0.0)},   /* strided fold of a 13-wide row */
        {11, 33, window(3, 3, 2, 2, 1, 1, 1, 1, 0.0)},
        {6, 28, window(2, 3, 2, 3, 0, 1, 1, 2, 0.0)},
        {5, 6, window(3, 3, 2, 2, 1, 1, 1, 1, 0.0)},     /* narrow strided: the table path */
        {28, 28, window(2, 2, 2, 2, 0, 0, 1, 1, 0.0)},   /* pooling */
        {10, 10, window(2, 2, 2, 2, 0, 0, 1, 1, 0.0)},
        {40, 300, window(3, 3, 2, 2, 1, 1, 1, 1, 0.0)},  /* pieces, not tables, of stride 2 */
        {64, 200, window(3, 3, 2, 3, 1, 1, 1, 1, 0.0)},  /* and of stride 3 */
        {20, 100, window(3, 3, 1, 1, 1, 1, 1, 1, 0.0)},  /* window maxima in pieces */
    };
    tg_rng *rng = tg_rng_new(12);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int inner = 0; inner < 2; inner++) {
            tg_tape *tp = tg_tape_new();
            tg_window2d win = cases[i].win;
            win.batch_inner = inner;
            tg_tensor *x64 = tg_randn(tp, rng, TG_F64, DIMS(3, 2, cases[i].h, cases[i].w), 0, 1);
            tg_tensor *x32 = to_f32(x64);
            tg_tensor *cols64 = tg_unfold2d(tp, x64, &win), *cols32 = tg_unfold2d(tp, x32, &win);
            ck_assert_msg(cols64 && cols32, "case %zu: %s", i, tg_tape_error(tp));
            for (int64_t k = 0; k < tg_tensor_numel(cols64); k++)
                ck_assert_msg((float)tg_tensor_get(cols64, k) == (float)tg_tensor_get(cols32, k),
                              "case %zu, batch inner %d: unfold element %lld", i, inner,
                              (long long)k);
            tg_tensor *g64 = tg_randn(tp, rng, TG_F64, 3, tg_tensor_shape(cols64), 0, 1);
            tg_tensor *g32 = to_f32(g64);
            expect_close(__FILE__, __LINE__, "fold2d",
                         tg_fold2d(tp, g32, cases[i].h, cases[i].w, &win),
                         tg_fold2d(tp, g64, cases[i].h, cases[i].w, &win));
            if (!inner && win.pad_value == 0.0) {
                tg_tensor *sums64 = tg_window_sum2d(tp, x64, &win);
                expect_close(__FILE__, __LINE__, "window_sum2d", tg_window_sum2d(tp, x32, &win),
                             sums64);
                tg_tensor *y64 = tg_randn(tp, rng, TG_F64, 4, tg_tensor_shape(sums64), 0, 1);
                tg_tensor *y32 = to_f32(y64);
                expect_close(__FILE__, __LINE__, "window_spread2d",
                             tg_window_spread2d(tp, y32, cases[i].h, cases[i].w, &win),
                             tg_window_spread2d(tp, y64, cases[i].h, cases[i].w, &win));
                tg_tensor_free(y32);
                /* the maxima found in f32 are those of f64 (offsets may differ on ties that
                 * rounding to float made) */
                tg_tensor *at64 = tg_window_argmax2d(tp, x64, &win);
                tg_tensor *at32 = tg_window_argmax2d(tp, x32, &win);
                const int64_t plane = cases[i].h * cases[i].w, outs = tg_tensor_numel(at64),
                              per_plane = outs / 6;
                for (int64_t o = 0; o < outs; o++) {
                    const int64_t a64 = (int64_t)tg_tensor_get(at64, o);
                    const int64_t a32 = (int64_t)tg_tensor_get(at32, o);
                    const int64_t base = o / per_plane * plane;
                    ck_assert_msg(a64 >= 0 && a32 >= 0 &&
                                      (float)tg_tensor_get(x64, base + a64) ==
                                          (float)tg_tensor_get(x32, base + a32),
                                  "case %zu: window_argmax2d output %lld: f64 offset %lld, f32 "
                                  "offset %lld", i, (long long)o, (long long)a64,
                                  (long long)a32);
                }
            }
            tg_tensor_free(x32);
            tg_tensor_free(g32);
            tg_tape_free(tp);
        }
    tg_rng_free(rng);
}
END_TEST

START_TEST(test_window_grad) {
    /* square stride-1 window on a non-square input */
    args a1 = {.win = window(2, 3, 1, 1, 0, 0, 1, 1, 0.0), .h = 4, .w = 5};
    /* stride 2x1, padding 1x2, dilation 1x2, padding read as 1.5 */
    args a2 = {.win = window(3, 2, 2, 1, 1, 2, 1, 2, 1.5), .h = 4, .w = 3};
    /* dilation 2x1, stride 1x2, padding 0x1 */
    args a3 = {.win = window(2, 2, 1, 2, 0, 1, 2, 1, 0.0), .h = 5, .w = 4};
    /* stride larger than the kernel: some positions in no window */
    args a4 = {.win = window(1, 1, 2, 2, 0, 0, 1, 1, 0.0), .h = 3, .w = 3};
    CHECK_OP(f_unfold, &a1, grid(DIMS(1, 2, 4, 5), -1.1, 0.05));
    CHECK_OP(f_unfold, &a2, grid(DIMS(2, 1, 4, 3), -1.1, 0.05));
    CHECK_OP(f_unfold, &a3, grid(DIMS(1, 1, 5, 4), -1.1, 0.05));
    CHECK_OP(f_unfold, &a4, grid(DIMS(1, 1, 3, 3), -1.1, 0.05));
    /* cols [N, C*KH*KW, OH*OW] for the same windows */
    CHECK_OP(f_fold, &a1, grid(DIMS(1, 12, 9), -1.1, 0.02));
    CHECK_OP(f_fold, &a2, grid(DIMS(2, 6, 10), -1.1, 0.02));
    CHECK_OP(f_fold, &a3, grid(DIMS(1, 4, 9), -1.1, 0.02));
    CHECK_OP(f_fold, &a4, grid(DIMS(1, 1, 4), -1.1, 0.02));
    /* window sums and their adjoint, padded, strided and dilated, and windows that tile */
    args s1 = {.win = window(2, 3, 2, 1, 1, 1, 1, 2, 0.0), .h = 4, .w = 5};
    args s2 = {.win = window(2, 2, 2, 2, 0, 0, 1, 1, 0.0), .h = 4, .w = 4};
    CHECK_OP(f_window_sum, &s1, grid(DIMS(2, 1, 4, 5), -1.1, 0.05));
    CHECK_OP(f_window_sum, &s2, grid(DIMS(1, 2, 4, 4), -1.1, 0.05));
    CHECK_OP(f_window_spread, &s1, grid(DIMS(2, 1, 3, 3), -1.1, 0.1));
    CHECK_OP(f_window_spread, &s2, grid(DIMS(1, 2, 2, 2), -1.1, 0.1));
    /* max pooling with -INFINITY padding: each window holds at least one real value */
    args pool = {.win = window(2, 2, 2, 2, 1, 1, 1, 1, -INFINITY)};
    CHECK_OP(f_pool, &pool, grid(DIMS(1, 1, 3, 4), -1.1, 0.1));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Bad inputs
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_errors_shapes) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = F64(tp, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *b = F64(tp, DIMS(4), VALS(1, 2, 3, 4));
    tg_tensor *m = F64(tp, DIMS(4, 2), VALS(1, 2, 3, 4, 5, 6, 7, 8));
    /* shapes that do not broadcast */
    EXPECT_FAIL(tp, tg_add(tp, a, b), "add", "[2, 3]", "[4]");
    EXPECT_FAIL(tp, tg_sub(tp, b, a), "sub", "[2, 3]", "[4]");
    EXPECT_FAIL(tp, tg_maximum(tp, a, m), "maximum", "[2, 3]", "[4, 2]");
    EXPECT_FAIL(tp, tg_gt(tp, a, b), "gt", "[2, 3]", "[4]");
    EXPECT_FAIL(tp, tg_where(tp, b, a, a), "where", "[4]", "[2, 3]");
    EXPECT_FAIL(tp, tg_where(tp, a, a, b), "where", "[2, 3]", "[4]");
    EXPECT_FAIL(tp, tg_expand(tp, a, DIMS(2, 4)), "expand", "[2, 3]", "[2, 4]");
    EXPECT_FAIL(tp, tg_expand(tp, a, DIMS(3)), "expand", "[2, 3]", "[3]");
    EXPECT_FAIL(tp, tg_sum_to(tp, a, DIMS(4)), "sum_to", "[2, 3]", "[4]");
    EXPECT_FAIL(tp, tg_sum_to(tp, a, DIMS(1, 2, 3)), "sum_to", "[2, 3]", "[1, 2, 3]");
    /* matmul: inner sizes, ranks, batch dims */
    EXPECT_FAIL(tp, tg_matmul(tp, a, m), "matmul", "[2, 3]", "[4, 2]");
    EXPECT_FAIL(tp, tg_matmul_trans(tp, a, false, m, true), "matmul", "[2, 3]", "[4, 2]^T");
    EXPECT_FAIL(tp, tg_matmul(tp, b, m), "matmul", "[4]", "[4, 2]");
    tg_tensor *b1 = tg_zeros(tp, TG_F64, DIMS(2, 2, 3)), *b2 = tg_zeros(tp, TG_F64, DIMS(3, 3, 2));
    EXPECT_FAIL(tp, tg_matmul(tp, b1, b2), "matmul", "[2, 2, 3]", "[3, 3, 2]");
    /* reshape to the wrong element count, or with two -1 */
    EXPECT_FAIL(tp, tg_reshape(tp, a, DIMS(4, 2)), "reshape", "[2, 3]", "[4, 2]");
    EXPECT_FAIL(tp, tg_reshape(tp, a, DIMS(-1, -1)), "reshape", "[2, 3]", "[-1, -1]");
    EXPECT_FAIL(tp, tg_reshape(tp, a, DIMS(-2, -3)), "reshape", "[2, 3]");
    /* permute: not a permutation */
    EXPECT_FAIL(tp, tg_permute(tp, a, (int[]){0, 0}), "permute", "[2, 3]");
    EXPECT_FAIL(tp, tg_permute(tp, a, (int[]){0, 2}), "permute", "[2, 3]");
    /* squeeze of a dim that is not 1 */
    EXPECT_FAIL(tp, tg_squeeze(tp, a, 1), "squeeze", "[2, 3]");
    /* slice step 0 and negative */
    EXPECT_FAIL(tp, tg_slice(tp, a, 1, 0, 3, 0), "slice", "[2, 3]");
    EXPECT_FAIL(tp, tg_slice(tp, a, 1, 3, 0, -1), "slice", "[2, 3]");
    /* negative padding */
    EXPECT_FAIL(tp, tg_pad(tp, a, (int64_t[]){0, 0, -1, 1}, 0), "pad", "[2, 3]");
    /* concat: other dims differ */
    EXPECT_FAIL(tp, tg_concat(tp, 2, (tg_tensor *[]){a, m}, 0), "concat", "[2, 3]", "[4, 2]");
    EXPECT_FAIL(tp, tg_concat(tp, 2, (tg_tensor *[]){a, b}, 0), "concat", "[2, 3]", "[4]");
    /* clamp with lo > hi */
    EXPECT_FAIL(tp, tg_clamp(tp, a, 1.0, -1.0), "clamp", "[2, 3]");
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_errors_axes) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = F64(tp, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    EXPECT_FAIL(tp, tg_sum(tp, a, (int[]){2}, 1, false), "sum", "[2, 3]");
    EXPECT_FAIL(tp, tg_mean(tp, a, (int[]){-3}, 1, false), "mean", "[2, 3]");
    EXPECT_FAIL(tp, tg_max(tp, a, (int[]){0, 5}, 2, true), "max", "[2, 3]");
    EXPECT_FAIL(tp, tg_min(tp, a, (int[]){1, -1}, 2, false), "min", "[2, 3]"); /* repeated */
    EXPECT_FAIL(tp, tg_sum(tp, a, (int[]){0, 1, 0}, 3, false), "sum", "[2, 3]");
    EXPECT_FAIL(tp, tg_argmax(tp, a, 2, false), "argmax", "[2, 3]");
    EXPECT_FAIL(tp, tg_squeeze(tp, a, -3), "squeeze", "[2, 3]");
    EXPECT_FAIL(tp, tg_unsqueeze(tp, a, 3), "unsqueeze", "[2, 3]");
    EXPECT_FAIL(tp, tg_unsqueeze(tp, a, -4), "unsqueeze", "[2, 3]");
    EXPECT_FAIL(tp, tg_transpose(tp, a, 0, 2), "transpose", "[2, 3]");
    EXPECT_FAIL(tp, tg_slice(tp, a, 2, 0, 1, 1), "slice", "[2, 3]");
    EXPECT_FAIL(tp, tg_concat(tp, 1, &a, 2), "concat", "[2, 3]");
    tg_tensor *i = I64(tp, DIMS(2, 3), VALS(0, 0, 0, 0, 0, 0));
    EXPECT_FAIL(tp, tg_gather(tp, a, 2, i), "gather", "[2, 3]");
    EXPECT_FAIL(tp, tg_scatter_add(tp, a, -3, i, a), "scatter_add", "[2, 3]");
    tg_tensor *j = I64(tp, DIMS(1), VALS(0));
    EXPECT_FAIL(tp, tg_index_select(tp, a, 2, j), "index_select", "[2, 3]");
    EXPECT_FAIL(tp, tg_index_add(tp, a, -3, j, a), "index_add", "[2, 3]");
    /* empty axes cannot be reduced by max / argmax */
    tg_tensor *e = tg_zeros(tp, TG_F64, DIMS(2, 0));
    EXPECT_FAIL(tp, tg_max(tp, e, (int[]){1}, 1, false), "max", "[2, 0]");
    EXPECT_FAIL(tp, tg_argmax(tp, e, 1, false), "argmax", "[2, 0]");
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_errors_dtypes) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *f = F32(tp, DIMS(2), VALS(1, 2)), *d = F64(tp, DIMS(2), VALS(1, 2));
    tg_tensor *i = I64(tp, DIMS(3), VALS(0, 1, 2));
    /* f32 with f64 */
    EXPECT_FAIL(tp, tg_mul(tp, f, d), "mul", "f32", "f64", "[2]");
    EXPECT_FAIL(tp, tg_add(tp, d, f), "add", "f32", "f64", "[2]");
    EXPECT_FAIL(tp, tg_where(tp, d, f, f), "where", "f32", "f64", "[2]");
    EXPECT_FAIL(tp, tg_concat(tp, 2, (tg_tensor *[]){f, d}, 0), "concat", "f32", "f64", "[2]");
    tg_tensor *mf = tg_zeros(tp, TG_F32, DIMS(2, 2)), *md = tg_zeros(tp, TG_F64, DIMS(2, 2));
    EXPECT_FAIL(tp, tg_matmul(tp, mf, md), "matmul", "[2, 2]");
    EXPECT_FAIL(tp, tg_scatter_add(tp, mf, 0, I64(tp, DIMS(1, 2), VALS(0, 1)),
                                   tg_zeros(tp, TG_F64, DIMS(1, 2))),
                "scatter_add", "f32[2, 2]", "f64[1, 2]");
    /* int64 where a float is needed */
    EXPECT_FAIL(tp, tg_exp(tp, i), "exp", "i64", "[3]");
    EXPECT_FAIL(tp, tg_add_scalar(tp, i, 1), "add_scalar", "i64", "[3]");
    EXPECT_FAIL(tp, tg_sum(tp, i, NULL, 0, false), "sum", "i64", "[3]");
    EXPECT_FAIL(tp, tg_max(tp, i, NULL, 0, false), "max", "i64", "[3]");
    EXPECT_FAIL(tp, tg_argmax(tp, i, 0, false), "argmax", "i64", "[3]");
    EXPECT_FAIL(tp, tg_add(tp, i, i), "add", "i64", "[3]");
    EXPECT_FAIL(tp, tg_eq_scalar(tp, i, 1), "eq_scalar", "i64", "[3]");
    EXPECT_FAIL(tp, tg_pad(tp, i, (int64_t[]){1, 1}, 0), "pad", "i64", "[3]");
    tg_tensor *i4 = tg_zeros(tp, TG_I64, DIMS(1, 1, 3, 3));
    tg_window2d win = window(2, 2, 1, 1, 0, 0, 1, 1, 0.0);
    EXPECT_FAIL(tp, tg_unfold2d(tp, i4, &win), "unfold2d", "i64", "[1, 1, 3, 3]");
    EXPECT_FAIL(tp, tg_gather(tp, I64(tp, DIMS(2), VALS(5, 6)), 0, I64(tp, DIMS(1), VALS(0))),
                "gather", "i64", "[2]");
    /* indices must be int64 */
    EXPECT_FAIL(tp, tg_gather(tp, d, 0, d), "gather", "f64", "[2]");
    EXPECT_FAIL(tp, tg_index_select(tp, d, 0, f), "index_select", "f32", "[2]");
    EXPECT_FAIL(tp, tg_one_hot(tp, d, 3, TG_F64), "one_hot", "f64", "[2]");
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_errors_indices_windows) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = F64(tp, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    /* out-of-range indices, high and negative */
    EXPECT_FAIL(tp, tg_gather(tp, x, 1, I64(tp, DIMS(2, 1), VALS(0, 3))), "gather", "[2, 3]");
    EXPECT_FAIL(tp, tg_gather(tp, x, 0, I64(tp, DIMS(1, 3), VALS(0, -1, 0))), "gather",
                "[2, 3]");
    EXPECT_FAIL(tp, tg_scatter_add(tp, x, 0, I64(tp, DIMS(1, 1), VALS(2)),
                                   F64(tp, DIMS(1, 1), VALS(1))),
                "scatter_add", "[2, 3]");
    EXPECT_FAIL(tp, tg_index_select(tp, x, 1, I64(tp, DIMS(2), VALS(0, 3))), "index_select",
                "[2, 3]");
    EXPECT_FAIL(tp, tg_index_select(tp, x, 0, I64(tp, DIMS(1), VALS(-1))), "index_select",
                "[2, 3]");
    EXPECT_FAIL(tp, tg_index_add(tp, x, 0, I64(tp, DIMS(1), VALS(2)), F64(tp, DIMS(1, 3),
                                                                          VALS(1, 1, 1))),
                "index_add", "[2, 3]");
    EXPECT_FAIL(tp, tg_one_hot(tp, I64(tp, DIMS(3), VALS(0, 3, 1)), 3, TG_F32), "one_hot", "[3]");
    EXPECT_FAIL(tp, tg_one_hot(tp, I64(tp, DIMS(2, 1), VALS(-1, 0)), 3, TG_F32), "one_hot",
                "[2, 1]");
    EXPECT_FAIL(tp, tg_one_hot(tp, I64(tp, DIMS(2), VALS(0, 0)), 0, TG_F32), "one_hot", "[2]");
    /* index shapes */
    EXPECT_FAIL(tp, tg_gather(tp, x, 1, I64(tp, DIMS(3), VALS(0, 0, 0))), "gather", "[3]",
                "[2, 3]");
    EXPECT_FAIL(tp, tg_gather(tp, x, 1, I64(tp, DIMS(3, 1), VALS(0, 0, 0))), "gather", "[3, 1]",
                "[2, 3]");
    EXPECT_FAIL(tp, tg_scatter_add(tp, x, 1, I64(tp, DIMS(2, 1), VALS(0, 0)),
                                   F64(tp, DIMS(2, 2), VALS(1, 1, 1, 1))),
                "scatter_add", "[2, 1]", "[2, 2]");
    EXPECT_FAIL(tp, tg_index_select(tp, x, 1, I64(tp, DIMS(1, 1), VALS(0))), "index_select",
                "[1, 1]");
    EXPECT_FAIL(tp, tg_index_add(tp, x, 1, I64(tp, DIMS(2), VALS(0, 1)), x), "index_add",
                "[2, 3]", "[2, 2]");
    /* bad window parameters */
    tg_tensor *img = tg_zeros(tp, TG_F64, DIMS(1, 2, 3, 3));
    const tg_window2d bad[] = {
        window(2, 2, 0, 1, 0, 0, 1, 1, 0.0),  /* stride 0 */
        window(2, 2, 1, 1, -1, 0, 1, 1, 0.0), /* negative padding */
        window(2, 2, 1, 1, 0, 0, 1, 0, 0.0),  /* dilation 0 */
        window(0, 2, 1, 1, 0, 0, 1, 1, 0.0),  /* kernel 0 */
        window(4, 2, 1, 1, 0, 0, 1, 1, 0.0),  /* kernel larger than the input */
        window(2, 2, 1, 1, 0, 0, 3, 1, 0.0),  /* dilated kernel larger than the input */
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        EXPECT_FAIL(tp, tg_unfold2d(tp, img, &bad[k]), "unfold2d", "[1, 2, 3, 3]");
    EXPECT_FAIL(tp, tg_unfold2d(tp, img, NULL), "unfold2d", "[1, 2, 3, 3]");
    EXPECT_FAIL(tp, tg_unfold2d(tp, x, &bad[0]), "unfold2d", "[2, 3]");
    tg_tensor *cols = tg_zeros(tp, TG_F64, DIMS(1, 8, 4));
    tg_window2d k2 = window(2, 2, 1, 1, 0, 0, 1, 1, 0.0);
    EXPECT_FAIL(tp, tg_fold2d(tp, cols, 4, 4, &k2), "fold2d", "[1, 8, 4]"); /* 9 positions */
    EXPECT_FAIL(tp, tg_fold2d(tp, cols, 3, 3, &bad[0]), "fold2d", "[1, 8, 4]");
    EXPECT_FAIL(tp, tg_fold2d(tp, tg_zeros(tp, TG_F64, DIMS(1, 6, 4)), 3, 3, &k2), "fold2d",
                "[1, 6, 4]");
    EXPECT_FAIL(tp, tg_fold2d(tp, cols, 0, 3, &k2), "fold2d", "[1, 8, 4]");
    EXPECT_FAIL(tp, tg_fold2d(tp, x, 3, 3, &k2), "fold2d", "[2, 3]");
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        EXPECT_FAIL(tp, tg_window_sum2d(tp, img, &bad[k]), "window_sum2d", "[1, 2, 3, 3]");
    EXPECT_FAIL(tp, tg_window_sum2d(tp, img, NULL), "window_sum2d", "[1, 2, 3, 3]");
    EXPECT_FAIL(tp, tg_window_sum2d(tp, x, &k2), "window_sum2d", "[2, 3]");
    tg_window2d neg_inf = window(2, 2, 1, 1, 0, 0, 1, 1, -INFINITY), inner = k2;
    inner.batch_inner = true;
    EXPECT_FAIL(tp, tg_window_sum2d(tp, img, &neg_inf), "window_sum2d", "pad_value", "-inf");
    EXPECT_FAIL(tp, tg_window_sum2d(tp, img, &inner), "window_sum2d", "batch_inner");
    tg_tensor *sums = tg_zeros(tp, TG_F64, DIMS(1, 2, 2, 2));
    EXPECT_FAIL(tp, tg_window_spread2d(tp, sums, 4, 4, &k2), "window_spread2d", "[1, 2, 2, 2]",
                "3x3");
    EXPECT_FAIL(tp, tg_window_spread2d(tp, sums, 3, 3, &bad[0]), "window_spread2d",
                "[1, 2, 2, 2]");
    EXPECT_FAIL(tp, tg_window_spread2d(tp, sums, 3, 3, &neg_inf), "window_spread2d",
                "pad_value");
    EXPECT_FAIL(tp, tg_window_spread2d(tp, sums, 0, 3, &k2), "window_spread2d", "0x3");
    EXPECT_FAIL(tp, tg_window_spread2d(tp, x, 3, 3, &k2), "window_spread2d", "[2, 3]");
    EXPECT_FAIL(tp, tg_window_spread2d(tp, sums, 3, 3, NULL), "window_spread2d",
                "[1, 2, 2, 2]");
    EXPECT_FAIL(tp, tg_window_argmax2d(tp, img, &bad[1]), "window_argmax2d", "[1, 2, 3, 3]");
    EXPECT_FAIL(tp, tg_window_argmax2d(tp, img, NULL), "window_argmax2d", "[1, 2, 3, 3]");
    EXPECT_FAIL(tp, tg_window_argmax2d(tp, x, &k2), "window_argmax2d", "[2, 3]");
    EXPECT_FAIL(tp, tg_window_argmax2d(tp, img, &inner), "window_argmax2d", "batch_inner");
    tg_window2d one = window(2, 2, 1, 1, 0, 0, 1, 1, 1.0);
    EXPECT_FAIL(tp, tg_window_argmax2d(tp, img, &one), "window_argmax2d", "pad_value", "-inf");
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_errors_null_and_stale) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = F64(NULL, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    /* a NULL input on a clean tape fails with the op's name */
    ck_assert(tg_exp(tp, NULL) == NULL);
    ck_assert(tg_tape_error(tp) && strstr(tg_tape_error(tp), "exp"));
    tg_tape_reset(tp);
    /* after a first error, NULL inputs (and later bad calls) keep its message */
    ck_assert(tg_add(tp, x, F64(tp, DIMS(4), VALS(1, 2, 3, 4))) == NULL);
    char first[512];
    snprintf(first, sizeof first, "%s", tg_tape_error(tp));
    ck_assert(strstr(first, "add") && strstr(first, "[2, 3]") && strstr(first, "[4]"));
    ck_assert(tg_mul(tp, NULL, x) == NULL);
    ck_assert(tg_exp(tp, tg_add(tp, x, NULL)) == NULL);
    ck_assert(tg_matmul(tp, x, NULL) == NULL);
    ck_assert(tg_sum(tp, NULL, NULL, 0, false) == NULL);
    ck_assert(tg_concat(tp, 2, (tg_tensor *[]){x, NULL}, 0) == NULL);
    ck_assert(tg_where(tp, NULL, x, x) == NULL);
    ck_assert(tg_gather(tp, x, 0, NULL) == NULL);
    ck_assert(tg_unfold2d(tp, NULL, &(tg_window2d){1, 1, 1, 1, 0, 0, 1, 1, 0, false}) == NULL);
    ck_assert(tg_clamp(tp, NULL, 1, 0) == NULL);
    ck_assert(tg_reshape(tp, x, DIMS(7)) == NULL);
    ck_assert_str_eq(tg_tape_error(tp), first);
    /* without a tape the error goes to tg_last_error */
    ck_assert(tg_exp(NULL, x) == NULL);
    ck_assert(tg_last_error() && strstr(tg_last_error(), "exp"));
    tg_tape_reset(tp);
    ck_assert(tg_tape_error(tp) == NULL);
    /* tensors from a step before tg_tape_reset are refused */
    tg_tensor *a = F64(tp, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *b = tg_exp(tp, a);
    tg_tape_reset(tp);
    EXPECT_FAIL(tp, tg_exp(tp, b), "exp", "[2, 3]", "tg_tape_reset");
    EXPECT_FAIL(tp, tg_add(tp, x, b), "add", "[2, 3]", "tg_tape_reset");
    /* also once the new step has allocated in the place of the old one */
    tg_tensor *c = F64(tp, DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    EXPECT_FAIL(tp, tg_mul(tp, c, b), "mul", "[2, 3]", "tg_tape_reset");
    EXPECT_FAIL(tp, tg_reshape(tp, b, DIMS(6)), "reshape", "[2, 3]", "tg_tape_reset");
    /* and tensors of another tape */
    tg_tape *other = tg_tape_new();
    tg_tensor *o = F64(other, DIMS(3), VALS(1, 2, 3));
    EXPECT_FAIL(tp, tg_neg(tp, o), "neg", "[3]", "another tape");
    tg_tape_free(other);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_errors_creation) {
    /* creation without a tape reports through tg_last_error */
    tg_rng *rng = tg_rng_new(1);
    ck_assert(tg_arange(NULL, TG_F64, 0, 1, 0) == NULL);
    ck_assert(strstr(tg_last_error(), "arange"));
    ck_assert(tg_arange(NULL, TG_F64, 0, 5, -1) == NULL);
    ck_assert(strstr(tg_last_error(), "arange"));
    ck_assert(tg_zeros(NULL, TG_F64, DIMS(2, -1)) == NULL);
    ck_assert(strstr(tg_last_error(), "negative"));
    ck_assert(tg_full(NULL, TG_F64, TG_MAX_DIMS + 1, (int64_t[TG_MAX_DIMS + 1]){1}, 0) == NULL);
    ck_assert(strstr(tg_last_error(), "rank"));
    ck_assert(tg_rand(NULL, rng, TG_I64, DIMS(2), 0, 1) == NULL);
    ck_assert(strstr(tg_last_error(), "rand") && strstr(tg_last_error(), "i64"));
    ck_assert(tg_randn(NULL, NULL, TG_F64, DIMS(2), 0, 1) == NULL);
    ck_assert(strstr(tg_last_error(), "randn"));
    ck_assert(tg_bernoulli(NULL, rng, TG_F64, DIMS(2), 1.5) == NULL);
    ck_assert(strstr(tg_last_error(), "bernoulli"));
    ck_assert(tg_tensor_from(NULL, TG_F64, DIMS(2), NULL) == NULL);
    ck_assert(strstr(tg_last_error(), "tensor_from"));
    /* a success clears it */
    tg_tensor *ok = tg_zeros(NULL, TG_F64, DIMS(2));
    ck_assert(ok != NULL && tg_last_error() == NULL);
    /* with a tape, on the tape */
    tg_tape *tp = tg_tape_new();
    EXPECT_FAIL(tp, tg_bernoulli(tp, rng, TG_F32, DIMS(2), -0.1), "bernoulli");
    EXPECT_FAIL(tp, tg_ones(tp, TG_F32, DIMS(-3)), "negative");
    /* requires_grad only on float leaves */
    tg_tensor *idx = I64(NULL, DIMS(2), VALS(0, 1));
    ck_assert_int_eq(tg_set_requires_grad(idx, true), -1);
    ck_assert(strstr(tg_last_error(), "i64"));
    tg_tensor *l = leaf(DIMS(2), VALS(1, 2));
    tg_tensor *y = tg_exp(tp, l);
    ck_assert_int_eq(tg_set_requires_grad(y, false), -1);
    ck_assert(tg_last_error() != NULL);
    tg_tape_free(tp);
    tg_tensor_free(ok);
    tg_tensor_free(idx);
    tg_tensor_free(l);
    tg_rng_free(rng);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Ops without a gradient
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_comparisons) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *a = leaf(DIMS(2, 3), VALS(1, 2, 3, 4, 5, 6));
    tg_tensor *b = F64(tp, DIMS(3), VALS(2, 2, 5));
    EXPECT(tp, tg_gt(tp, a, b), DIMS(2, 3), VALS(0, 0, 0, 1, 1, 1));
    EXPECT(tp, tg_ge(tp, a, b), DIMS(2, 3), VALS(0, 1, 0, 1, 1, 1));
    EXPECT(tp, tg_lt(tp, a, b), DIMS(2, 3), VALS(1, 0, 1, 0, 0, 0));
    EXPECT(tp, tg_le(tp, a, b), DIMS(2, 3), VALS(1, 1, 1, 0, 0, 0));
    EXPECT(tp, tg_eq(tp, a, b), DIMS(2, 3), VALS(0, 1, 0, 0, 0, 0));
    EXPECT(tp, tg_gt(tp, b, a), DIMS(2, 3), VALS(1, 0, 1, 0, 0, 0));
    EXPECT(tp, tg_gt_scalar(tp, a, 3), DIMS(2, 3), VALS(0, 0, 0, 1, 1, 1));
    EXPECT(tp, tg_ge_scalar(tp, a, 3), DIMS(2, 3), VALS(0, 0, 1, 1, 1, 1));
    EXPECT(tp, tg_lt_scalar(tp, a, 3), DIMS(2, 3), VALS(1, 1, 0, 0, 0, 0));
    EXPECT(tp, tg_le_scalar(tp, a, 3), DIMS(2, 3), VALS(1, 1, 1, 0, 0, 0));
    EXPECT(tp, tg_eq_scalar(tp, a, 3), DIMS(2, 3), VALS(0, 0, 1, 0, 0, 0));
    /* masks in the inputs' dtype, without history even when the inputs require grad */
    tg_tensor *mask = tg_gt_scalar(tp, a, 3);
    ck_assert_int_eq(tg_tensor_dtype(mask), TG_F64);
    ck_assert(!tg_tensor_requires_grad(mask));
    ck_assert(!tg_tensor_requires_grad(tg_eq(tp, a, a)));
    tg_tensor *f = F32(tp, DIMS(3), VALS(-1, 0, 1));
    tg_tensor *fm = tg_le(tp, f, F32(tp, 0, NULL, VALS(0)));
    ck_assert_int_eq(tg_tensor_dtype(fm), TG_F32);
    EXPECT(tp, fm, DIMS(3), VALS(1, 1, 0));
    /* a mask multiplies directly: d sum(a * mask) / da = mask */
    tg_tensor *g;
    tg_tensor *y = tg_sum(tp, tg_mul(tp, a, mask), NULL, 0, false);
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &a, false, &g), 0);
    EXPECT(tp, g, DIMS(2, 3), VALS(0, 0, 0, 1, 1, 1));
    /* sign */
    tg_tensor *s = tg_sign(tp, a);
    ck_assert(!tg_tensor_requires_grad(s));
    EXPECT(tp, tg_sign(tp, F64(tp, DIMS(4), VALS(-2.5, 0, 3, -0.0))), DIMS(4), VALS(-1, 0, 1, 0));
    EXPECT(tp, tg_sign(tp, f), DIMS(3), VALS(-1, 0, 1));
    /* argmax has no history either */
    ck_assert(!tg_tensor_requires_grad(tg_argmax(tp, a, 1, false)));
    tg_tape_free(tp);
    tg_tensor_free(a);
}
END_TEST

START_TEST(test_one_hot) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *idx = I64(tp, DIMS(3), VALS(2, 0, 1));
    tg_tensor *h = tg_one_hot(tp, idx, 3, TG_F32);
    ck_assert_int_eq(tg_tensor_dtype(h), TG_F32);
    EXPECT(tp, h, DIMS(3, 3), VALS(0, 0, 1, 1, 0, 0, 0, 1, 0));
    EXPECT(tp, tg_one_hot(tp, idx, 4, TG_F64), DIMS(3, 4),
           VALS(0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0));
    tg_tensor *h2 = tg_one_hot(tp, I64(tp, DIMS(2, 2), VALS(1, 1, 0, 1)), 2, TG_I64);
    ck_assert_int_eq(tg_tensor_dtype(h2), TG_I64);
    EXPECT(tp, h2, DIMS(2, 2, 2), VALS(0, 1, 0, 1, 1, 0, 0, 1));
    EXPECT(tp, tg_one_hot(tp, I64(tp, 0, NULL, VALS(1)), 2, TG_F64), DIMS(2), VALS(0, 1));
    ck_assert(!tg_tensor_requires_grad(h));
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_creation) {
    tg_tape *tp = tg_tape_new();
    EXPECT(tp, tg_arange(tp, TG_F64, 0, 5, 1), DIMS(5), VALS(0, 1, 2, 3, 4));
    EXPECT(tp, tg_arange(tp, TG_F32, 1, 2, 0.25), DIMS(4), VALS(1, 1.25, 1.5, 1.75));
    EXPECT(tp, tg_arange(tp, TG_F64, 5, 0, -2), DIMS(3), VALS(5, 3, 1));
    EXPECT(tp, tg_arange(tp, TG_F64, 0, 1, 0.3), DIMS(4), VALS(0, 0.3, 0.6, 0.3 * 3));
    tg_tensor *ai = tg_arange(tp, TG_I64, -2, 2, 1);
    ck_assert_int_eq(tg_tensor_dtype(ai), TG_I64);
    EXPECT(tp, ai, DIMS(4), VALS(-2, -1, 0, 1));
    EXPECT(tp, tg_arange(tp, TG_F64, 3, 3, 1), 1, (const int64_t[]){0}, 0, NULL);
    EXPECT(tp, tg_full(tp, TG_F64, DIMS(2, 2), 2.5), DIMS(2, 2), VALS(2.5, 2.5, 2.5, 2.5));
    EXPECT(tp, tg_full(tp, TG_F32, DIMS(3), -0.5), DIMS(3), VALS(-0.5, -0.5, -0.5));
    EXPECT(tp, tg_full(tp, TG_I64, DIMS(2), 7), DIMS(2), VALS(7, 7));
    EXPECT0(tp, tg_full(tp, TG_F64, 0, NULL, 3), 3);
    EXPECT(tp, tg_zeros(tp, TG_F32, DIMS(2, 1)), DIMS(2, 1), VALS(0, 0));
    EXPECT(tp, tg_ones(tp, TG_I64, DIMS(1, 3)), DIMS(1, 3), VALS(1, 1, 1));
    EXPECT(tp, tg_zeros(tp, TG_F64, DIMS(0, 3)), DIMS(0, 3), 0, NULL);
    tg_tensor *t = tg_tensor_from(tp, TG_F32, DIMS(2), (float[]){1.5f, -2});
    EXPECT(tp, t, DIMS(2), VALS(1.5, -2));
    ck_assert(!tg_tensor_is_persistent(t));
    /* persistent variants */
    tg_tensor *p = tg_ones(NULL, TG_F64, DIMS(2, 2));
    ck_assert(tg_tensor_is_persistent(p));
    EXPECT(NULL, p, DIMS(2, 2), VALS(1, 1, 1, 1));
    tg_tensor *q = tg_arange(NULL, TG_F32, 0, 3, 1);
    EXPECT(NULL, q, DIMS(3), VALS(0, 1, 2));
    tg_tensor_free(p);
    tg_tensor_free(q);
    tg_tape_free(tp);
}
END_TEST

enum { BIG = 100000 };

START_TEST(test_random) {
    tg_rng *r1 = tg_rng_new(42), *r2 = tg_rng_new(42), *r3 = tg_rng_new(43);
    /* randn: reproducible for a seed, different for another, right moments */
    tg_tensor *n1 = tg_randn(NULL, r1, TG_F64, DIMS(BIG), 2.0, 3.0);
    tg_tensor *n2 = tg_randn(NULL, r2, TG_F64, DIMS(BIG), 2.0, 3.0);
    tg_tensor *n3 = tg_randn(NULL, r3, TG_F64, DIMS(BIG), 2.0, 3.0);
    ck_assert(memcmp(tg_tensor_data(n1), tg_tensor_data(n2), BIG * sizeof(double)) == 0);
    ck_assert(memcmp(tg_tensor_data(n1), tg_tensor_data(n3), BIG * sizeof(double)) != 0);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < BIG; i++) sum += tg_tensor_get(n1, i);
    double mean = sum / BIG;
    for (int64_t i = 0; i < BIG; i++) sq += pow(tg_tensor_get(n1, i) - mean, 2);
    double sd = sqrt(sq / (BIG - 1));
    /* standard errors: 3 / sqrt(1e5) ~ 0.0095 for the mean, ~ 0.0067 for the std */
    ck_assert_msg(fabs(mean - 2.0) < 0.05, "randn mean %g", mean);
    ck_assert_msg(fabs(sd - 3.0) < 0.05, "randn std %g", sd);
    /* f32 randn on a tape: the same draws, rounded */
    tg_rng *r4 = tg_rng_new(42);
    tg_tape *tp = tg_tape_new();
    tg_tensor *n4 = tg_randn(tp, r4, TG_F32, DIMS(4, 5), 2.0, 3.0);
    ck_assert_int_eq(tg_tensor_dtype(n4), TG_F32);
    for (int64_t i = 0; i < 20; i++)
        ck_assert(tg_tensor_get(n4, i) == (double)(float)tg_tensor_get(n1, i));
    /* rand: in [lo, hi), reproducible, mean in the middle */
    tg_rng_free(r1);
    tg_rng_free(r2);
    r1 = tg_rng_new(7);
    r2 = tg_rng_new(7);
    tg_tensor *u1 = tg_rand(NULL, r1, TG_F64, DIMS(BIG), -1.0, 3.0);
    tg_tensor *u2 = tg_rand(NULL, r2, TG_F64, DIMS(BIG), -1.0, 3.0);
    ck_assert(memcmp(tg_tensor_data(u1), tg_tensor_data(u2), BIG * sizeof(double)) == 0);
    double lo = INFINITY, hi = -INFINITY;
    sum = 0;
    for (int64_t i = 0; i < BIG; i++) {
        double v = tg_tensor_get(u1, i);
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        sum += v;
    }
    ck_assert(lo >= -1.0 && hi < 3.0 && lo < -0.99 && hi > 2.99);
    ck_assert_msg(fabs(sum / BIG - 1.0) < 0.02, "rand mean %g", sum / BIG);
    /* bernoulli: 0/1 values, frequency p, reproducible */
    tg_tensor *b1 = tg_bernoulli(NULL, r1, TG_F64, DIMS(BIG), 0.3);
    tg_tensor *b2 = tg_bernoulli(NULL, r2, TG_F64, DIMS(BIG), 0.3);
    ck_assert(memcmp(tg_tensor_data(b1), tg_tensor_data(b2), BIG * sizeof(double)) == 0);
    int64_t ones = 0;
    for (int64_t i = 0; i < BIG; i++) {
        double v = tg_tensor_get(b1, i);
        ck_assert(v == 0.0 || v == 1.0);
        ones += v == 1.0;
    }
    /* standard error sqrt(0.21 / 1e5) ~ 0.0015 */
    ck_assert_msg(fabs((double)ones / BIG - 0.3) < 0.01, "bernoulli frequency %g",
                  (double)ones / BIG);
    tg_tensor *b3 = tg_bernoulli(tp, r3, TG_F32, DIMS(50), 0.0);
    tg_tensor *b4 = tg_bernoulli(tp, r3, TG_F32, DIMS(50), 1.0);
    ck_assert_int_eq(tg_tensor_dtype(b3), TG_F32);
    for (int64_t i = 0; i < 50; i++)
        ck_assert(tg_tensor_get(b3, i) == 0.0 && tg_tensor_get(b4, i) == 1.0);
    ck_assert(!tg_tensor_requires_grad(b3));
    /* a generator restored from a saved state continues the same stream */
    tg_rng_state st = tg_rng_get_state(r3);
    double first = tg_rng_normal(r3);
    tg_rng_set_state(r3, &st);
    ck_assert(tg_rng_normal(r3) == first);
    tg_tape_free(tp);
    tg_tensor_free(n1);
    tg_tensor_free(n2);
    tg_tensor_free(n3);
    tg_tensor_free(u1);
    tg_tensor_free(u2);
    tg_tensor_free(b1);
    tg_tensor_free(b2);
    tg_rng_free(r1);
    tg_rng_free(r2);
    tg_rng_free(r3);
    tg_rng_free(r4);
}
END_TEST

START_TEST(test_detach) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = leaf(DIMS(3), VALS(1, -2, 3));
    tg_tensor *d = tg_detach(tp, x);
    EXPECT(tp, d, DIMS(3), VALS(1, -2, 3));
    ck_assert(!tg_tensor_requires_grad(d));
    ck_assert(tg_tensor_data(d) == tg_tensor_data(x)); /* shares storage */
    /* y = sum(detach(x) * x): the gradient is detach(x), not 2x */
    tg_tensor *y = tg_sum(tp, tg_mul(tp, d, x), NULL, 0, false);
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    EXPECT(tp, tg_tensor_grad(x), DIMS(3), VALS(1, -2, 3));
    /* nothing flows through a detached intermediate */
    tg_tensor *z = tg_detach(tp, tg_exp(tp, x));
    ck_assert(!tg_tensor_requires_grad(z));
    tg_tensor *w = tg_sum(tp, tg_add(tp, z, x), NULL, 0, false), *g;
    ck_assert_int_eq(tg_grad(tp, 1, &w, NULL, 1, &x, false, &g), 0);
    EXPECT(tp, g, DIMS(3), VALS(1, 1, 1));
    /* a fully detached result has no gradient to ask for */
    tg_tensor *v = tg_sum(tp, z, NULL, 0, false);
    ck_assert(!tg_tensor_requires_grad(v));
    ck_assert_int_eq(tg_backward(tp, v, NULL), -1);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Suite
 * ------------------------------------------------------------------------------------------- */

static TCase *tcase(const char *name) {
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 120);
    return tc;
}

static Suite *core_suite(void) {
    Suite *s = suite_create("core");
    TCase *tc = tcase("unary");
    tcase_add_test(tc, test_unary_forward);
    tcase_add_test(tc, test_unary_grad);
    tcase_add_test(tc, test_pow_clamp_grad);
    tcase_add_test(tc, test_scalar_forms_grad);
    suite_add_tcase(s, tc);
    tc = tcase("binary");
    tcase_add_test(tc, test_binary_forward);
    tcase_add_loop_test(tc, test_binary_grad, 0, (int)(sizeof pairs / sizeof *pairs));
    tcase_add_test(tc, test_where_grad);
    tcase_add_test(tc, test_broadcast_vjp_shapes);
    tcase_add_test(tc, test_tie_rules);
    suite_add_tcase(s, tc);
    tc = tcase("reduce");
    tcase_add_test(tc, test_reduce_forward);
    tcase_add_loop_test(tc, test_reduce_grad, 0, (int)(sizeof reductions / sizeof *reductions));
    tcase_add_test(tc, test_sum_to_grad);
    suite_add_tcase(s, tc);
    tc = tcase("matmul");
    tcase_add_test(tc, test_matmul_forward);
    tcase_add_test(tc, test_matmul_large);
    tcase_add_loop_test(tc, test_matmul_grad, 0, (int)(sizeof mms / sizeof *mms));
    suite_add_tcase(s, tc);
    tc = tcase("shape");
    tcase_add_test(tc, test_shape_forward);
    tcase_add_test(tc, test_threaded_elementwise);
    tcase_add_test(tc, test_extreme_rows_match_columns);
    tcase_add_test(tc, test_reshape_permute_grad);
    tcase_add_test(tc, test_slice_concat_pad_grad);
    suite_add_tcase(s, tc);
    tc = tcase("index");
    tcase_add_test(tc, test_index_forward);
    tcase_add_test(tc, test_index_grad);
    suite_add_tcase(s, tc);
    tc = tcase("window");
    tcase_add_test(tc, test_window_forward);
    tcase_add_test(tc, test_window_grad);
    tcase_add_test(tc, test_window_sums);
    tcase_add_test(tc, test_window_argmax);
    tcase_add_test(tc, test_window_batch_inner);
    tcase_add_test(tc, test_window_f32_paths);
    suite_add_tcase(s, tc);
    tc = tcase("errors");
    tcase_add_test(tc, test_errors_shapes);
    tcase_add_test(tc, test_errors_axes);
    tcase_add_test(tc, test_errors_dtypes);
    tcase_add_test(tc, test_errors_indices_windows);
    tcase_add_test(tc, test_errors_null_and_stale);
    tcase_add_test(tc, test_errors_creation);
    suite_add_tcase(s, tc);
    tc = tcase("nograd");
    tcase_add_test(tc, test_comparisons);
    tcase_add_test(tc, test_one_hot);
    tcase_add_test(tc, test_creation);
    tcase_add_test(tc, test_random);
    tcase_add_test(tc, test_detach);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return run_suite(core_suite(), CK_NORMAL);
}
