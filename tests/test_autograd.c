/* Tests of the tape engine (suite `core`): tg_backward and tg_grad on whole graphs (a linear
 * model against a hand-derived gradient, fan-out and accumulation, a million-node chain,
 * higher-order derivatives), the arena in steady state, no-grad mode and detach, version
 * counters, the error model, gradcheck itself and thread-count reproducibility. The values of
 * single primitives are tested in test_ops.c. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"
#include "testing.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* The tape holds no error (shows it when it does). */
/* A persistent f64 tensor of shape [n] (n > 0) or a scalar (n == 0) holding v. */
static tg_tensor *f64_new(int64_t n, const double *v, bool requires_grad) {
    tg_tensor *t = tg_tensor_from(NULL, TG_F64, n ? 1 : 0, &n, v);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_set_requires_grad(t, requires_grad), 0);
    return t;
}

/* Element i of t (any dtype) equals `want` within tol. */
static void expect_at(const tg_tensor *t, int64_t i, double want, double tol) {
    ck_assert_ptr_nonnull(t);
    double got = tg_tensor_get(t, i);
    ck_assert_msg(fabs(got - want) <= tol, "element %lld: got %.17g, want %.17g (tol %g)",
                  (long long)i, got, want, tol);
}

/* Every element of t equals want[i] within tol, and t has n elements. */
static void expect_all(const tg_tensor *t, int64_t n, const double *want, double tol) {
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++) expect_at(t, i, want[i], tol);
}

/* The sum of all elements: the usual scalar loss. */
static tg_tensor *total(tg_tape *tp, tg_tensor *x) { return tg_sum(tp, x, NULL, 0, false); }

/* ---- 1. the linear model of the README ------------------------------------------------ */

enum { LB = 32, LIN = 784, LOUT = 10 };

/* loss = mean((x w + b - target)^2), x: [32, 784], w: [784, 10], b: [10] broadcast. */
static tg_tensor *linear_loss(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b,
                              tg_tensor *target) {
    tg_tensor *pred = tg_add(tp, tg_matmul(tp, x, w), b);
    return tg_mean(tp, tg_square(tp, tg_sub(tp, pred, target)), NULL, 0, false);
}

typedef struct linear_data {
    tg_tensor *x, *target, *w, *b;
} linear_data;

/* Random data and parameters; w and b require grad. */
static linear_data linear_data_new(uint64_t seed) {
    tg_rng *rng = tg_rng_new(seed);
    linear_data d = {
        .x = tg_rand(NULL, rng, TG_F32, 2, (int64_t[]){LB, LIN}, -1.0, 1.0),
        .target = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){LB, LOUT}, 0.0, 1.0),
        .w = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){LIN, LOUT}, 0.0, 0.05),
        .b = tg_randn(NULL, rng, TG_F32, 1, (int64_t[]){LOUT}, 0.0, 0.1),
    };
    tg_rng_free(rng);
    ck_assert_ptr_nonnull(d.x);
    ck_assert_ptr_nonnull(d.target);
    ck_assert_int_eq(tg_set_requires_grad(d.w, true), 0);
    ck_assert_int_eq(tg_set_requires_grad(d.b, true), 0);
    return d;
}

/* Frees the four tensors (and w's and b's grads). */
static void linear_data_free(linear_data *d) {
    tg_tensor_free(d->x);
    tg_tensor_free(d->target);
    tg_tensor_free(d->w);
    tg_tensor_free(d->b);
}

/* The hand-derived gradient: r = 2 (x w + b - t) / (B * OUT), dw = x^T r, db = sum_rows r,
 * in double over the f32 data; returns the loss. gw: [784 * 10], gb: [10]. */
static double linear_reference(const linear_data *d, double *gw, double *gb) {
    const float *x = tg_tensor_data(d->x), *t = tg_tensor_data(d->target);
    const float *w = tg_tensor_data(d->w), *b = tg_tensor_data(d->b);
    static double r[LB][LOUT];
    double loss = 0.0;
    for (int i = 0; i < LB; i++) {
        for (int j = 0; j < LOUT; j++) {
            double p = b[j];
            for (int k = 0; k < LIN; k++) p += (double)x[i * LIN + k] * w[k * LOUT + j];
            double e = p - t[i * LOUT + j];
            loss += e * e / (LB * LOUT);
            r[i][j] = 2.0 * e / (LB * LOUT);
        }
    }
    for (int k = 0; k < LIN; k++)
        for (int j = 0; j < LOUT; j++) {
            double s = 0.0;
            for (int i = 0; i < LB; i++) s += (double)x[i * LIN + k] * r[i][j];
            gw[k * LOUT + j] = s;
        }
    for (int j = 0; j < LOUT; j++) {
        gb[j] = 0.0;
        for (int i = 0; i < LB; i++) gb[j] += r[i][j];
    }
    return loss;
}

/* The largest |v[i]| over n entries. */
static double max_abs(const double *v, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

START_TEST(test_linear_model_grads) {
    linear_data d = linear_data_new(11);
    tg_tape *tp = tg_tape_new();
    ck_assert_ptr_nonnull(tp);
    tg_tensor *loss = linear_loss(tp, d.x, d.w, d.b, d.target);
    CK_TAPE_OK(tp);
    ck_assert_int_eq(tg_tensor_ndim(loss), 0);
    ck_assert_ptr_null(tg_tensor_grad(d.w));
    ck_assert_int_eq(tg_backward(tp, loss, NULL), 0);

    static double gw[LIN * LOUT];
    double gb[LOUT];
    double want_loss = linear_reference(&d, gw, gb);
    expect_at(loss, 0, want_loss, 1e-5 * want_loss);

    tg_tensor *w_grad = tg_tensor_grad(d.w), *b_grad = tg_tensor_grad(d.b);
    ck_assert_ptr_nonnull(w_grad);
    ck_assert_ptr_nonnull(b_grad);
    ck_assert(tg_tensor_is_persistent(w_grad) && tg_tensor_is_persistent(b_grad));
    ck_assert_int_eq(tg_tensor_dtype(w_grad), TG_F32);
    ck_assert_int_eq(tg_tensor_ndim(w_grad), 2);
    ck_assert_int_eq(tg_tensor_dim(w_grad, 0), LIN);
    ck_assert_int_eq(tg_tensor_dim(w_grad, 1), LOUT);
    ck_assert_int_eq(tg_tensor_ndim(b_grad), 1);
    ck_assert_int_eq(tg_tensor_dim(b_grad, 0), LOUT);
    expect_all(w_grad, LIN * LOUT, gw, 1e-4 * max_abs(gw, LIN * LOUT));
    expect_all(b_grad, LOUT, gb, 1e-4 * max_abs(gb, LOUT));
    /* backward leaves the inputs that need no grad alone */
    ck_assert_ptr_null(tg_tensor_grad(d.x));
    ck_assert_ptr_null(tg_tensor_grad(d.target));

    tg_tape_free(tp);
    linear_data_free(&d);
}
END_TEST

START_TEST(test_linear_model_sgd) {
    enum { STEPS = 12 };
    linear_data d = linear_data_new(12);
    tg_tape *tp = tg_tape_new();
    tg_tensor *params[2] = {d.w, d.b};
    tg_tensor *grads[2] = {NULL, NULL};
    double losses[STEPS];
    for (int step = 0; step < STEPS; step++) {
        tg_tensor *loss = linear_loss(tp, d.x, d.w, d.b, d.target);
        CK_TAPE_OK(tp);
        ck_assert_int_eq(tg_backward(tp, loss, NULL), 0);
        losses[step] = tg_tensor_item(loss);
        for (int p = 0; p < 2; p++) {
            /* the grad is allocated by the first backward and reused afterwards */
            if (step == 0) grads[p] = tg_tensor_grad(params[p]);
            ck_assert_ptr_eq(tg_tensor_grad(params[p]), grads[p]);
            float *v = tg_tensor_data_mut(params[p]);
            const float *g = tg_tensor_data(grads[p]);
            for (int64_t i = 0; i < tg_tensor_numel(params[p]); i++) v[i] -= 0.1f * g[i];
            tg_tensor_zero_grad(params[p]);
        }
        tg_tape_reset(tp);
        ck_assert_int_eq(tg_tape_get_stats(tp).nodes, 0);
        ck_assert_int_eq(tg_tape_get_stats(tp).bytes_used, 0);
    }
    for (int step = 1; step < STEPS; step++)
        ck_assert_msg(losses[step] < losses[step - 1], "loss rose at step %d: %g -> %g", step,
                      losses[step - 1], losses[step]);
    ck_assert_msg(losses[STEPS - 1] < 0.5 * losses[0], "loss %g -> %g", losses[0],
                  losses[STEPS - 1]);
    tg_tape_free(tp);
    linear_data_free(&d);
}
END_TEST

/* ---- 2. accumulation ------------------------------------------------------------------- */

static const double XV[3] = {0.5, -2.0, 3.0};

/* y = sum(x * x + x) on tp. */
static tg_tensor *square_plus(tg_tape *tp, tg_tensor *x) {
    return total(tp, tg_add(tp, tg_mul(tp, x, x), x));
}

START_TEST(test_accumulate_reuse) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true);
    ck_assert_int_eq(tg_backward(tp, square_plus(tp, x), NULL), 0);
    /* x is used three times: twice by mul, once by add */
    expect_all(tg_tensor_grad(x), 3, (double[]){2.0, -3.0, 7.0}, 0.0);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_accumulate_diamond) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true);
    /* h = 3x; p = h^2 and q = 5h both use h; y = sum(p q) = sum(5 h^3), dy/dx = 405 x^2 */
    tg_tensor *h = tg_mul_scalar(tp, x, 3.0);
    tg_tensor *y = total(tp, tg_mul(tp, tg_square(tp, h), tg_mul_scalar(tp, h, 5.0)));
    CK_TAPE_OK(tp);
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    double want[3];
    for (int i = 0; i < 3; i++) want[i] = 405.0 * XV[i] * XV[i];
    expect_all(tg_tensor_grad(x), 3, want, 1e-12 * 405 * 9);

    /* four uses of one tanh, two of them through the same add: y = sum((t + t) + (t + t)) */
    tg_tape_reset(tp);
    tg_tensor_zero_grad(x);
    tg_tensor *t = tg_tanh(tp, x);
    tg_tensor *tt = tg_add(tp, t, t);
    y = total(tp, tg_add(tp, tt, tg_add(tp, t, t)));
    CK_TAPE_OK(tp);
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    for (int i = 0; i < 3; i++) want[i] = 4.0 * (1.0 - tanh(XV[i]) * tanh(XV[i]));
    expect_all(tg_tensor_grad(x), 3, want, 1e-14);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_accumulate_across_backwards) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true);
    const double once[3] = {2.0, -3.0, 7.0};
    double twice[3], thrice[3];
    for (int i = 0; i < 3; i++) twice[i] = 2 * once[i], thrice[i] = 3 * once[i];

    tg_tensor *y = square_plus(tp, x);
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    tg_tensor *g = tg_tensor_grad(x);
    ck_assert_ptr_nonnull(g);
    expect_all(g, 3, once, 0.0);
    /* the same graph again: the tape keeps it, the leaf's grad is added to */
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    expect_all(tg_tensor_grad(x), 3, twice, 0.0);
    /* a new step without zero_grad adds a third time, into the same storage */
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_backward(tp, square_plus(tp, x), NULL), 0);
    ck_assert_ptr_eq(tg_tensor_grad(x), g);
    expect_all(g, 3, thrice, 0.0);

    tg_tensor_zero_grad(x);
    ck_assert_ptr_eq(tg_tensor_grad(x), g);
    expect_all(g, 3, (double[]){0, 0, 0}, 0.0);
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_backward(tp, square_plus(tp, x), NULL), 0);
    expect_all(g, 3, once, 0.0);

    /* a seed scales the contribution: seed 2 on y adds 2 * dy/dx */
    tg_tensor_zero_grad(x);
    tg_tape_reset(tp);
    tg_tensor *seed = tg_full(tp, TG_F64, 0, NULL, 2.0);
    ck_assert_int_eq(tg_backward(tp, square_plus(tp, x), seed), 0);
    expect_all(g, 3, twice, 0.0);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_tape_leaf_grad) {
    /* a leaf created on the tape gets a tape grad, released by the reset */
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = tg_tensor_from(tp, TG_F64, 1, (int64_t[]){3}, XV);
    ck_assert_int_eq(tg_set_requires_grad(x, true), 0);
    ck_assert_int_eq(tg_backward(tp, square_plus(tp, x), NULL), 0);
    tg_tensor *g = tg_tensor_grad(x);
    ck_assert_ptr_nonnull(g);
    ck_assert(!tg_tensor_is_persistent(g));
    expect_all(g, 3, (double[]){2.0, -3.0, 7.0}, 0.0);
    tg_tape_free(tp);
}
END_TEST

/* ---- 3. a chain of a million nodes ---------------------------------------------------- */

START_TEST(test_million_op_chain) {
    enum { N = 1000000 };
    const double c = 1.0 + 1e-6, d = 0.25;
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(0, (double[]){0.5}, true);
    tg_tensor *y = x;
    /* y <- y * (-c) and y <- y + d, alternating: dy/dx = (-c)^(N/2) */
    double want_y = 0.5, want_g = 1.0;
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            y = tg_mul_scalar(tp, y, -c);
            want_y *= -c;
            want_g *= -c;
        } else {
            y = tg_add_scalar(tp, y, d);
            want_y += d;
        }
    }
    CK_TAPE_OK(tp);
    ck_assert_int_eq(tg_tape_get_stats(tp).nodes, N);
    expect_at(y, 0, want_y, 1e-12 * fabs(want_y));
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    expect_at(tg_tensor_grad(x), 0, want_g, 1e-12 * fabs(want_g));
    ck_assert(fabs(want_g - exp(0.5)) < 1e-6); /* (1 + 1e-6)^500000, the chain is not short */
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* ---- 4. steady state: no system allocation per step ----------------------------------- */

enum { SB = 128, SIN = 16, SH = 512, SOUT = 4, SSTEPS = 1000 };

/* One step of a two-layer MLP: loss = mean((relu(x w1 + b1) w2 - t)^2), backward, SGD. */
static void mlp_step(tg_tape *tp, tg_tensor *x, tg_tensor *t, tg_tensor *const *params) {
    tg_tensor *h = tg_relu(tp, tg_add(tp, tg_matmul(tp, x, params[0]), params[1]));
    tg_tensor *loss = tg_mean(tp, tg_square(tp, tg_sub(tp, tg_matmul(tp, h, params[2]), t)),
                              NULL, 0, false);
    CK_TAPE_OK(tp);
    ck_assert_int_eq(tg_backward(tp, loss, NULL), 0);
    for (int p = 0; p < 3; p++) {
        float *v = tg_tensor_data_mut(params[p]);
        const float *g = tg_tensor_data(tg_tensor_grad(params[p]));
        for (int64_t i = 0; i < tg_tensor_numel(params[p]); i++) v[i] -= 0.01f * g[i];
        tg_tensor_zero_grad(params[p]);
    }
}

START_TEST(test_steady_state_no_system_alloc) {
    /* one thread: the arena does not depend on it, and on a loaded machine 1000 steps of
     * small parallel regions spend their time waiting for each other */
    tg_set_num_threads(1);
    tg_rng *rng = tg_rng_new(3);
    tg_tensor *x = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){SB, SIN}, 0, 1);
    tg_tensor *t = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){SB, SOUT}, 0, 1);
    tg_tensor *params[3] = {
        tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){SIN, SH}, 0, 0.25),
        tg_zeros(NULL, TG_F32, 1, (int64_t[]){SH}),
        tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){SH, SOUT}, 0, 0.05),
    };
    for (int p = 0; p < 3; p++) ck_assert_int_eq(tg_set_requires_grad(params[p], true), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *grads[3];
    tg_tape_stats first = {0}, steady = {0};
    for (int step = 0; step < SSTEPS; step++) {
        mlp_step(tp, x, t, params);
        tg_tape_stats s = tg_tape_get_stats(tp);
        if (step == 0) {
            first = s;
            for (int p = 0; p < 3; p++) grads[p] = tg_tensor_grad(params[p]);
        }
        if (step == 1) steady = s;
        /* persistent grads are allocated by the first backward only */
        for (int p = 0; p < 3; p++) ck_assert_ptr_eq(tg_tensor_grad(params[p]), grads[p]);
        /* every step hands out the same bytes */
        ck_assert_uint_eq(s.bytes_used, first.bytes_used);
        ck_assert_int_eq(s.nodes, first.nodes);
        if (step >= 1) {
            ck_assert_uint_eq(s.system_allocs, steady.system_allocs);
            ck_assert_uint_eq(s.bytes_reserved, steady.bytes_reserved);
            ck_assert_uint_eq(s.peak_bytes_used, steady.peak_bytes_used);
            ck_assert_uint_eq(s.bytes_used, s.peak_bytes_used);
        }
        tg_tape_reset(tp);
        ck_assert_uint_eq(tg_tape_get_stats(tp).bytes_used, 0);
    }
    /* the step outgrew the first chunk, so the arena grew and folded its chunks: after that one
     * chunk holds the whole step */
    ck_assert_uint_gt(first.system_allocs, 1);
    ck_assert_uint_eq(steady.system_allocs, first.system_allocs + 1);
    ck_assert_uint_ge(steady.bytes_reserved, steady.bytes_used);
    ck_assert_uint_eq(steady.bytes_reserved, first.bytes_reserved);
    for (int p = 0; p < 3; p++) tg_tensor_free(params[p]);
    tg_tensor_free(x);
    tg_tensor_free(t);
    tg_rng_free(rng);
    tg_tape_free(tp);
}
END_TEST

/* ---- 5. tg_grad ------------------------------------------------------------------------ */

static const double WV[3] = {3.0, 4.0, -5.0};

START_TEST(test_grad_basic) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true), *w = f64_new(3, WV, true);
    tg_tensor *z = f64_new(2, (double[]){1.0, 2.0}, true);
    /* y = sum(x^2 w): dy/dx = 2 x w, dy/dw = x^2, z unused */
    tg_tensor *y = total(tp, tg_mul(tp, tg_mul(tp, x, x), w));
    CK_TAPE_OK(tp);
    tg_tensor *g[3];
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 3, (tg_tensor *[]){x, w, z}, false, g), 0);
    double gx[3], gw[3];
    for (int i = 0; i < 3; i++) gx[i] = 2 * XV[i] * WV[i], gw[i] = XV[i] * XV[i];
    expect_all(g[0], 3, gx, 0.0);
    expect_all(g[1], 3, gw, 0.0);
    expect_all(g[2], 2, (double[]){0, 0}, 0.0);
    for (int i = 0; i < 3; i++) {
        ck_assert(!tg_tensor_is_persistent(g[i]));
        ck_assert(!tg_tensor_requires_grad(g[i]));
        ck_assert_int_eq(tg_tensor_ndim(g[i]), 1);
    }
    ck_assert_ptr_null(tg_tensor_grad(x));
    ck_assert_ptr_null(tg_tensor_grad(w));
    ck_assert(tg_tape_grad_enabled(tp));

    /* after a backward, tg_grad leaves the accumulated grads as they are */
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    tg_tensor *xg = tg_tensor_grad(x);
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 2, (tg_tensor *[]){x, w}, false, g), 0);
    ck_assert_ptr_eq(tg_tensor_grad(x), xg);
    expect_all(xg, 3, gx, 0.0);
    expect_all(tg_tensor_grad(w), 3, gw, 0.0);
    ck_assert_ptr_null(tg_tensor_grad(z));

    /* the same input twice gets the gradient twice */
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 2, (tg_tensor *[]){x, x}, false, g), 0);
    expect_all(g[0], 3, gx, 0.0);
    expect_all(g[1], 3, gx, 0.0);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(z);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_grad_intermediate_and_seeds) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true), *w = f64_new(3, WV, true);
    /* h = 3x, y = sum(h^2): dy/dh = 2h = 6x, dy/dx = 18x */
    tg_tensor *h = tg_mul_scalar(tp, x, 3.0);
    tg_tensor *y = total(tp, tg_square(tp, h));
    tg_tensor *g[2];
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 2, (tg_tensor *[]){h, x}, false, g), 0);
    double want_h[3], want_x[3];
    for (int i = 0; i < 3; i++) want_h[i] = 6 * XV[i], want_x[i] = 18 * XV[i];
    expect_all(g[0], 3, want_h, 1e-13);
    expect_all(g[1], 3, want_x, 1e-13);
    /* the output itself as the input: the seed comes back */
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &y, false, g), 0);
    expect_at(g[0], 0, 1.0, 0.0);

    /* two outputs with seeds: y1 = x w ([3], seed s1), y2 = sum(x^2) (seed 0.5)
     * d/dx = s1 w + 0.5 * 2x, d/dw = s1 x */
    const double s1v[3] = {1.0, -2.0, 0.5};
    tg_tensor *y1 = tg_mul(tp, x, w), *y2 = total(tp, tg_square(tp, x));
    tg_tensor *seeds[2] = {tg_tensor_from(tp, TG_F64, 1, (int64_t[]){3}, s1v),
                           tg_full(tp, TG_F64, 0, NULL, 0.5)};
    CK_TAPE_OK(tp);
    ck_assert_int_eq(tg_grad(tp, 2, (tg_tensor *[]){y1, y2}, seeds, 2, (tg_tensor *[]){x, w},
                             false, g), 0);
    double want_w[3];
    for (int i = 0; i < 3; i++) want_x[i] = s1v[i] * WV[i] + XV[i], want_w[i] = s1v[i] * XV[i];
    expect_all(g[0], 3, want_x, 1e-14);
    expect_all(g[1], 3, want_w, 1e-14);
    /* seeds NULL means ones for every output */
    ck_assert_int_eq(tg_grad(tp, 2, (tg_tensor *[]){y1, y2}, NULL, 1, &x, false, g), 0);
    for (int i = 0; i < 3; i++) want_x[i] = WV[i] + 2 * XV[i];
    expect_all(g[0], 3, want_x, 1e-14);
    /* a persistent seed that add passes straight through comes back as a tape copy */
    tg_tensor *ps = f64_new(3, s1v, false);
    ck_assert_int_eq(tg_grad(tp, 1, (tg_tensor *[]){tg_add(tp, x, w)}, &ps, 1, &x, false, g), 0);
    ck_assert_ptr_ne(g[0], ps);
    ck_assert(!tg_tensor_is_persistent(g[0]));
    expect_all(g[0], 3, s1v, 0.0);
    ck_assert_ptr_null(tg_tensor_grad(x));
    tg_tensor_free(ps);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_grad_second_order_cube) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true);
    for (int form = 0; form < 2; form++) {
        /* y = sum(x^3), written as x*x*x and as pow_scalar */
        tg_tensor *y = form == 0 ? total(tp, tg_mul(tp, tg_mul(tp, x, x), x))
                                 : total(tp, tg_pow_scalar(tp, x, 3.0));
        tg_tensor *d1, *d2, *d3;
        ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &x, true, &d1), 0);
        ck_assert(tg_tensor_requires_grad(d1));
        ck_assert_int_eq(tg_grad(tp, 1, (tg_tensor *[]){total(tp, d1)}, NULL, 1, &x, true, &d2),
                         0);
        ck_assert_int_eq(tg_grad(tp, 1, (tg_tensor *[]){total(tp, d2)}, NULL, 1, &x, false, &d3),
                         0);
        double w1[3], w2[3];
        for (int i = 0; i < 3; i++) w1[i] = 3 * XV[i] * XV[i], w2[i] = 6 * XV[i];
        expect_all(d1, 3, w1, 1e-13);
        expect_all(d2, 3, w2, 1e-13);
        expect_all(d3, 3, (double[]){6, 6, 6}, 1e-13);
        ck_assert(!tg_tensor_requires_grad(d3));
        ck_assert_ptr_null(tg_tensor_grad(x));
    }
    /* without create_graph the gradient is a plain value: it cannot be differentiated */
    tg_tensor *y = total(tp, tg_pow_scalar(tp, x, 3.0)), *d1;
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &x, false, &d1), 0);
    ck_assert(!tg_tensor_requires_grad(d1));
    ck_assert_int_eq(tg_backward(tp, total(tp, d1), NULL), -1);
    CK_HAS(tg_tape_error(tp), "does not require grad");
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_grad_hessian_vector_product) {
    enum { N = 4 };
    const double m[N][N] = {{1, 2, 0, -1}, {0.5, 3, 1, 0}, {2, -1, 4, 1}, {0, 1, -2, 2}};
    double a[N * N], xv[N] = {0.3, -1.2, 0.7, 2.0}, vv[N] = {1.0, 0.5, -2.0, 0.25};
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) a[i * N + j] = m[i][j] + m[j][i]; /* symmetric */
    tg_tape *tp = tg_tape_new();
    tg_tensor *A = tg_tensor_from(NULL, TG_F64, 2, (int64_t[]){N, N}, a);
    tg_tensor *x = tg_tensor_from(NULL, TG_F64, 2, (int64_t[]){N, 1}, xv);
    ck_assert_int_eq(tg_set_requires_grad(x, true), 0);
    /* f = 0.5 x^T A x, grad = A x, Hessian A: H v = A v */
    tg_tensor *f = tg_mul_scalar(tp, total(tp, tg_mul(tp, x, tg_matmul(tp, A, x))), 0.5);
    tg_tensor *g, *hv;
    ck_assert_int_eq(tg_grad(tp, 1, &f, NULL, 1, &x, true, &g), 0);
    tg_tensor *v = tg_tensor_from(tp, TG_F64, 2, (int64_t[]){N, 1}, vv);
    ck_assert_int_eq(tg_grad(tp, 1, &g, &v, 1, &x, false, &hv), 0);
    double ax[N], av[N];
    for (int i = 0; i < N; i++) {
        ax[i] = av[i] = 0.0;
        for (int j = 0; j < N; j++) ax[i] += a[i * N + j] * xv[j], av[i] += a[i * N + j] * vv[j];
    }
    expect_all(g, N, ax, 1e-12);
    expect_all(hv, N, av, 1e-12);
    ck_assert_int_eq(tg_tensor_ndim(hv), 2);
    tg_tensor_free(A);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

enum { PB = 4, PIN = 3, POUT = 2 };

/* penalty(w) = ||d/dx sum(tanh(x w))||^2 for inputs {w [3, 2], x [4, 3]}: x is copied to a
 * tape leaf that requires grad, so only w is a checked input. */
static tg_tensor *grad_penalty(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    tg_tensor *x = tg_tensor_from(tp, TG_F64, 2, (int64_t[]){PB, PIN}, tg_tensor_data(in[1]));
    if (!x || tg_set_requires_grad(x, true) != 0) return NULL;
    tg_tensor *l = total(tp, tg_tanh(tp, tg_matmul(tp, x, in[0]))), *dx;
    if (!l || tg_grad(tp, 1, &l, NULL, 1, &x, true, &dx) != 0) return NULL;
    return total(tp, tg_square(tp, dx));
}

START_TEST(test_grad_gradient_penalty) {
    const double wv[PIN * POUT] = {0.4, -0.3, 0.8, 0.1, -0.6, 0.5};
    const double xv[PB * PIN] = {0.2, -1.0, 0.5, 1.5, 0.3, -0.7, -0.4, 0.9, 1.1, 0.6, -0.2, 0.0};
    tg_tensor *w = tg_tensor_from(NULL, TG_F64, 2, (int64_t[]){PIN, POUT}, wv);
    tg_tensor *x = tg_tensor_from(NULL, TG_F64, 2, (int64_t[]){PB, PIN}, xv);
    ck_assert_int_eq(tg_set_requires_grad(w, true), 0);
    tg_tensor *in[2] = {w, x};

    /* the value against the closed form dL/dx = (1 - tanh^2(x w)) w^T */
    double want = 0.0;
    for (int i = 0; i < PB; i++)
        for (int k = 0; k < PIN; k++) {
            double dx = 0.0;
            for (int j = 0; j < POUT; j++) {
                double z = 0.0;
                for (int q = 0; q < PIN; q++) z += xv[i * PIN + q] * wv[q * POUT + j];
                dx += (1 - tanh(z) * tanh(z)) * wv[k * POUT + j];
            }
            want += dx * dx;
        }
    tg_tape *tp = tg_tape_new();
    tg_tensor *p = grad_penalty(tp, in, NULL);
    CK_TAPE_OK(tp);
    expect_at(p, 0, want, 1e-13);

    /* backward through the recorded gradient gives what tg_grad gives */
    tg_tensor *gw;
    ck_assert_int_eq(tg_grad(tp, 1, &p, NULL, 1, &w, false, &gw), 0);
    ck_assert_int_eq(tg_backward(tp, p, NULL), 0);
    for (int i = 0; i < PIN * POUT; i++)
        expect_at(tg_tensor_grad(w), i, tg_tensor_get(gw, i), 1e-14);
    tg_tape_free(tp);

    /* and both against finite differences */
    tg_gradcheck_report rep;
    ck_assert_msg(tg_gradcheck(grad_penalty, NULL, 2, in, NULL, &rep) == 0, "%s", rep.message);
    ck_assert(rep.passed);
    ck_assert_int_eq(rep.input, 0); /* x does not require grad: only w is checked */
    tg_tensor_free(w);
    tg_tensor_free(x);
}
END_TEST

/* sum(tanh(a b)) for inputs {a [2, 3], b [3, 2]}. */
static tg_tensor *tanh_matmul(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    return total(tp, tg_tanh(tp, tg_matmul(tp, in[0], in[1])));
}

START_TEST(test_gradgradcheck_passes) {
    tg_rng *rng = tg_rng_new(5);
    tg_tensor *in[2] = {tg_randn(NULL, rng, TG_F64, 2, (int64_t[]){2, 3}, 0, 1),
                        tg_randn(NULL, rng, TG_F64, 2, (int64_t[]){3, 2}, 0, 1)};
    for (int i = 0; i < 2; i++) ck_assert_int_eq(tg_set_requires_grad(in[i], true), 0);
    tg_gradcheck_report rep;
    ck_assert_msg(tg_gradgradcheck(tanh_matmul, NULL, 2, in, NULL, &rep) == 0, "%s", rep.message);
    for (int i = 0; i < 2; i++) tg_tensor_free(in[i]);
    tg_rng_free(rng);
}
END_TEST

/* ---- 6. no-grad mode and detach -------------------------------------------------------- */

START_TEST(test_no_grad_mode) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true), *w = f64_new(3, WV, true);
    ck_assert(tg_tape_grad_enabled(tp));
    ck_assert(tg_tape_set_grad_enabled(tp, false));
    ck_assert(!tg_tape_grad_enabled(tp));
    tg_tensor *y = total(tp, tg_tanh(tp, tg_mul(tp, x, w)));
    CK_TAPE_OK(tp);
    ck_assert_int_eq(tg_tape_get_stats(tp).nodes, 0);
    ck_assert(!tg_tensor_requires_grad(y));
    double want = 0.0;
    for (int i = 0; i < 3; i++) want += tanh(XV[i] * WV[i]);
    expect_at(y, 0, want, 1e-14); /* values are computed all the same */
    ck_assert_int_eq(tg_backward(tp, y, NULL), -1);
    CK_HAS(tg_tape_error(tp), "backward");
    CK_HAS(tg_tape_error(tp), "does not require grad");
    ck_assert_ptr_null(tg_tensor_grad(x));
    /* the outputs of no-grad mode are leaves: they may be marked */
    ck_assert_int_eq(tg_set_requires_grad(y, true), 0);

    /* switching back records again; reset re-enables recording too */
    ck_assert(!tg_tape_set_grad_enabled(tp, true));
    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false);
    tg_tape_reset(tp);
    ck_assert(tg_tape_grad_enabled(tp));
    y = total(tp, tg_mul(tp, x, w));
    ck_assert(tg_tensor_requires_grad(y));
    ck_assert_int_gt(tg_tape_get_stats(tp).nodes, 0);
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    expect_all(tg_tensor_grad(x), 3, WV, 0.0);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_detach) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true);
    tg_tensor *dx = tg_detach(tp, x);
    ck_assert_ptr_nonnull(dx);
    ck_assert(!tg_tensor_requires_grad(dx));
    ck_assert_ptr_eq(tg_tensor_data(dx), tg_tensor_data(x)); /* shares storage */
    /* y = sum(detach(x) * x): the gradient flows through one factor only: dy/dx = x */
    ck_assert_int_eq(tg_backward(tp, total(tp, tg_mul(tp, dx, x)), NULL), 0);
    expect_all(tg_tensor_grad(x), 3, XV, 0.0);
    /* a graph that reaches x only through detach does not require grad */
    tg_tensor *h = tg_exp(tp, x);
    tg_tensor *y = total(tp, tg_square(tp, tg_detach(tp, h)));
    CK_TAPE_OK(tp);
    ck_assert(!tg_tensor_requires_grad(y));
    ck_assert_int_eq(tg_backward(tp, y, NULL), -1);
    CK_HAS(tg_tape_error(tp), "does not require grad");
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* ---- 7. version counters -------------------------------------------------------------- */

START_TEST(test_version_persistent_param) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, false), *w = f64_new(3, WV, true);
    tg_tensor *y = total(tp, tg_mul(tp, x, w));
    CK_TAPE_OK(tp);
    uint32_t v0 = tg_tensor_version(w);
    double *wd = tg_tensor_data_mut(w);
    ck_assert_uint_eq(tg_tensor_version(w), v0 + 1);
    wd[0] = 10.0;
    ck_assert_int_eq(tg_backward(tp, y, NULL), -1);
    const char *msg = tg_tape_error(tp);
    CK_HAS(msg, "mul");
    CK_HAS(msg, "modified in place");
    ck_assert_ptr_null(tg_tensor_grad(w));
    ck_assert(tg_tape_grad_enabled(tp)); /* a failed backward restores the recording mode */
    /* a fresh step after the change works */
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_backward(tp, total(tp, tg_mul(tp, x, w)), NULL), 0);
    expect_all(tg_tensor_grad(w), 3, XV, 0.0);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_version_tape_tensor) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true);
    /* h is saved by mul (as both factors) */
    tg_tensor *h = tg_mul_scalar(tp, x, 2.0);
    tg_tensor *y = total(tp, tg_mul(tp, h, h));
    CK_TAPE_OK(tp);
    ((double *)tg_tensor_data_mut(h))[1] = 0.0;
    ck_assert_int_eq(tg_backward(tp, y, NULL), -1);
    CK_HAS(tg_tape_error(tp), "mul");
    CK_HAS(tg_tape_error(tp), "modified in place");

    /* exp saves its output: a change to it is caught at exp even when no later op used it */
    tg_tape_reset(tp);
    tg_tensor *e = tg_exp(tp, x);
    tg_tensor_data_mut(e);
    ck_assert_int_eq(tg_backward(tp, e, tg_ones(tp, TG_F64, 1, (int64_t[]){3})), -1);
    CK_HAS(tg_tape_error(tp), "the output of exp");
    CK_HAS(tg_tape_error(tp), "modified in place");
    /* used by a later op, the change is reported at the first node that sees it */
    tg_tape_reset(tp);
    e = tg_exp(tp, x);
    y = total(tp, e);
    tg_tensor_data_mut(e);
    ck_assert_int_eq(tg_backward(tp, y, NULL), -1);
    CK_HAS(tg_tape_error(tp), "sum_to");
    CK_HAS(tg_tape_error(tp), "modified in place");
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_version_views_share_counter) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true);
    tg_tensor *h = tg_mul_scalar(tp, x, 2.0);
    tg_tensor *v = tg_reshape(tp, h, 2, (int64_t[]){3, 1});
    tg_tensor *y = total(tp, tg_mul(tp, h, h));
    CK_TAPE_OK(tp);
    ck_assert_ptr_eq(tg_tensor_data(v), tg_tensor_data(h));
    uint32_t before = tg_tensor_version(h);
    ck_assert_uint_eq(tg_tensor_version(v), before);
    tg_tensor_data_mut(v); /* writing through the view modifies the base */
    ck_assert_uint_eq(tg_tensor_version(h), before + 1);
    ck_assert_uint_eq(tg_tensor_version(v), before + 1);
    ck_assert_int_eq(tg_backward(tp, y, NULL), -1);
    CK_HAS(tg_tape_error(tp), "mul");
    CK_HAS(tg_tape_error(tp), "modified in place");

    /* and the other way round: a view of a persistent parameter sees the base's writes */
    tg_tape_reset(tp);
    tg_tensor *xv = tg_reshape(tp, x, 2, (int64_t[]){1, 3});
    tg_tensor *xvv = tg_squeeze(tp, tg_unsqueeze(tp, xv, 0), 0);
    y = total(tp, tg_mul(tp, xvv, xvv));
    CK_TAPE_OK(tp);
    uint32_t vx = tg_tensor_version(x);
    tg_tensor_data_mut(x);
    ck_assert_uint_eq(tg_tensor_version(xv), vx + 1);
    ck_assert_uint_eq(tg_tensor_version(xvv), vx + 1);
    ck_assert_int_eq(tg_backward(tp, y, NULL), -1);
    CK_HAS(tg_tape_error(tp), "modified in place");
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* ---- 8. the error model ---------------------------------------------------------------- */

START_TEST(test_error_backward_arguments) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *c = f64_new(3, XV, false), *x = f64_new(3, XV, true);
    /* no parameter leads to y */
    ck_assert_int_eq(tg_backward(tp, total(tp, tg_exp(tp, c)), NULL), -1);
    CK_HAS(tg_tape_error(tp), "does not require grad");
    /* NULL output on a clean tape */
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_backward(tp, NULL, NULL), -1);
    CK_HAS(tg_tape_error(tp), "output 0 is NULL");
    /* seed of the wrong shape, then of the wrong dtype */
    tg_tape_reset(tp);
    tg_tensor *y = tg_mul(tp, x, x);
    tg_tensor *seed = tg_ones(tp, TG_F64, 1, (int64_t[]){2});
    ck_assert_int_eq(tg_backward(tp, y, seed), -1);
    CK_HAS(tg_tape_error(tp), "seed 0 is f64[2] but output 0 is f64[3]");
    tg_tape_clear_error(tp);
    ck_assert_int_eq(tg_backward(tp, y, tg_ones(tp, TG_F32, 1, (int64_t[]){3})), -1);
    CK_HAS(tg_tape_error(tp), "seed 0 is f32[3]");
    ck_assert_ptr_null(tg_tensor_grad(x));
    /* tg_grad's own argument checks */
    tg_tape_clear_error(tp);
    tg_tensor *g[1];
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 0, (tg_tensor *[]){x}, false, g), -1);
    CK_HAS(tg_tape_error(tp), "at least one input");
    tg_tape_clear_error(tp);
    tg_tensor *idx = tg_tensor_from(tp, TG_I64, 1, (int64_t[]){1}, (int64_t[]){0});
    ck_assert_int_eq(tg_grad(tp, 1, &y, NULL, 1, &idx, false, g), -1);
    CK_HAS(tg_tape_error(tp), "input 0 is i64[1]");
    tg_tensor_free(c);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_error_stale_tensor) {
    tg_tape *tp = tg_tape_new(), *other = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true);
    tg_tensor *h = tg_exp(tp, x);
    tg_tensor *y = total(tp, h);
    CK_TAPE_OK(tp);
    /* the step's memory is kept (one chunk, so the stale headers stay readable) but its
     * tensors are dead: using them is an error, reported before anything is allocated */
    tg_tape_reset(tp);
    ck_assert_ptr_null(tg_mul(tp, h, x));
    CK_HAS(tg_tape_error(tp), "mul: input 0");
    CK_HAS(tg_tape_error(tp), "tg_tape_reset");
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_backward(tp, y, NULL), -1);
    CK_HAS(tg_tape_error(tp), "backward: output 0");
    CK_HAS(tg_tape_error(tp), "tg_tape_reset");
    ck_assert_ptr_null(tg_tensor_grad(x));
    /* a tensor of another tape */
    tg_tape_reset(tp);
    tg_tensor *o = tg_exp(other, x);
    ck_assert_ptr_null(tg_add(tp, x, o));
    CK_HAS(tg_tape_error(tp), "add: input 1");
    CK_HAS(tg_tape_error(tp), "another tape");
    CK_TAPE_OK(other);
    tg_tensor_free(x);
    tg_tape_free(tp);
    tg_tape_free(other);
}
END_TEST

START_TEST(test_error_null_tape) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true);
    tg_tensor *y = total(tp, tg_square(tp, x));
    CK_TAPE_OK(tp);
    /* each call replaces the thread's last error with its own */
    ck_assert_ptr_null(tg_add(NULL, x, x));
    CK_HAS(tg_last_error(), "add: tape is NULL");
    tg_tensor *g[1];
    ck_assert_int_eq(tg_grad(NULL, 1, &y, NULL, 1, &x, false, g), -1);
    CK_HAS(tg_last_error(), "grad: tape is NULL");
    ck_assert_int_eq(tg_backward(NULL, y, NULL), -1);
    CK_HAS(tg_last_error(), "backward: tape is NULL");
    ck_assert_int_eq(tg_grad(NULL, 1, &y, NULL, 1, &x, false, NULL), -1);
    CK_HAS(tg_last_error(), "grad: tape is NULL");
    /* the tape's own accessors take NULL without crashing */
    CK_HAS(tg_tape_error(NULL), "NULL");
    ck_assert_int_eq(tg_tape_get_stats(NULL).nodes, 0);
    ck_assert_uint_eq(tg_tape_get_stats(NULL).bytes_reserved, 0);
    ck_assert(!tg_tape_set_grad_enabled(NULL, true));
    ck_assert(!tg_tape_grad_enabled(NULL));
    tg_tape_reset(NULL);
    tg_tape_clear_error(NULL);
    tg_tape_free(NULL);
    CK_TAPE_OK(tp); /* nothing landed on the real tape */
    ck_assert_ptr_null(tg_tensor_grad(x));
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_error_failed_forward) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *x = f64_new(3, XV, true);
    tg_tensor *a = tg_ones(tp, TG_F64, 2, (int64_t[]){2, 3});
    tg_tensor *good = total(tp, tg_square(tp, x));
    /* a shape error in the middle; the rest of the forward pass runs on NULLs */
    tg_tensor *bad = tg_matmul(tp, a, a);
    ck_assert_ptr_null(bad);
    tg_tensor *y = tg_add(tp, total(tp, tg_exp(tp, bad)), good);
    ck_assert_ptr_null(y);
    const char *first = tg_tape_error(tp);
    CK_HAS(first, "matmul");
    CK_HAS(first, "[2, 3]");
    char saved[512];
    strncpy(saved, first, sizeof saved - 1);
    saved[sizeof saved - 1] = '\0';
    ck_assert_int_eq(tg_backward(tp, y, NULL), -1);
    ck_assert_str_eq(tg_tape_error(tp), saved);
    /* even a valid output is refused while the tape holds the error */
    ck_assert_int_eq(tg_backward(tp, good, NULL), -1);
    tg_tensor *g[1];
    ck_assert_int_eq(tg_grad(tp, 1, &good, NULL, 1, &x, false, g), -1);
    ck_assert_int_eq(tg_grad(tp, 1, &good, NULL, 1, &x, false, NULL), -1);
    ck_assert_str_eq(tg_tape_error(tp), saved);
    ck_assert_ptr_null(tg_tensor_grad(x));
    /* clearing the error lets the valid part through */
    tg_tape_clear_error(tp);
    ck_assert_int_eq(tg_backward(tp, good, NULL), 0);
    double want[3];
    for (int i = 0; i < 3; i++) want[i] = 2 * XV[i];
    expect_all(tg_tensor_grad(x), 3, want, 0.0);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_error_set_requires_grad) {
    tg_tape *tp = tg_tape_new();
    tg_tensor *i = tg_tensor_from(NULL, TG_I64, 1, (int64_t[]){2}, (int64_t[]){1, 2});
    ck_assert_int_eq(tg_set_requires_grad(i, true), -1);
    CK_HAS(tg_last_error(), "i64");
    ck_assert(!tg_tensor_requires_grad(i));
    tg_tensor *x = f64_new(3, XV, true);
    ck_assert_ptr_null(tg_last_error()); /* a successful call clears it */
    tg_tensor *h = tg_exp(tp, x);
    ck_assert_int_eq(tg_set_requires_grad(h, false), -1);
    CK_HAS(tg_last_error(), "computed by an op");
    ck_assert(tg_tensor_requires_grad(h));
    ck_assert_int_eq(tg_set_requires_grad(NULL, true), -1);
    ck_assert_ptr_nonnull(tg_last_error());
    CK_TAPE_OK(tp);
    tg_tensor_free(i);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* ---- 9. gradcheck itself --------------------------------------------------------------- */

/* f(a, x) = 2a + x * detach(x): correct in a, wrong in x (analytic x, true derivative 2x). */
static tg_tensor *wrong_grad(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    return tg_add(tp, tg_mul_scalar(tp, in[0], 2.0), tg_mul(tp, in[1], tg_detach(tp, in[1])));
}

/* f(a, x) = exp(a) * x^2 + a / x: smooth and correct. */
static tg_tensor *right_grad(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    return tg_add(tp, tg_mul(tp, tg_exp(tp, in[0]), tg_square(tp, in[1])),
                  tg_div(tp, in[0], in[1]));
}

/* Fails on a shape mismatch: [1, 3] x [1, 3]. */
static tg_tensor *broken(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    tg_tensor *row = tg_reshape(tp, in[0], 2, (int64_t[]){1, 3});
    return tg_matmul(tp, row, row);
}

/* A persistent input pair (a, x), both requiring grad, with awkward values. */
static void pair_new(tg_tensor **in) {
    in[0] = f64_new(3, (double[]){0.1, 1.0 / 3.0, -0.7}, true);
    in[1] = f64_new(3, (double[]){0.5, -2.0, 1.0 / 7.0}, true);
}

/* Runs gradcheck and checks that it leaves the inputs' bits alone; returns its status. */
static int gradcheck_restoring(tg_fn fn, tg_tensor **in, const tg_gradcheck_opts *o,
                               tg_gradcheck_report *rep) {
    double before[2][3];
    for (int i = 0; i < 2; i++) memcpy(before[i], tg_tensor_data(in[i]), sizeof before[i]);
    int status = tg_gradcheck(fn, NULL, 2, in, o, rep);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(memcmp(before[i], tg_tensor_data(in[i]), sizeof before[i]) == 0,
                      "gradcheck changed input %d", i);
    return status;
}

START_TEST(test_gradcheck_passes_and_restores) {
    tg_tensor *in[2];
    pair_new(in);
    tg_gradcheck_report rep;
    ck_assert_msg(gradcheck_restoring(right_grad, in, NULL, &rep) == 0, "%s", rep.message);
    ck_assert(rep.passed);
    ck_assert(rep.excess <= 0);
    CK_HAS(rep.message, "passed");
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    o.fast = true;
    ck_assert_msg(gradcheck_restoring(right_grad, in, &o, &rep) == 0, "%s", rep.message);
    ck_assert_int_eq(rep.in_index, -1);
    /* a NULL report is allowed */
    ck_assert_int_eq(tg_gradcheck(right_grad, NULL, 2, in, NULL, NULL), 0);
    ck_assert_ptr_null(tg_tensor_grad(in[0]));
    for (int i = 0; i < 2; i++) tg_tensor_free(in[i]);
}
END_TEST

START_TEST(test_gradcheck_catches_wrong_gradient) {
    tg_tensor *in[2];
    pair_new(in);
    tg_gradcheck_report rep;
    ck_assert_int_eq(gradcheck_restoring(wrong_grad, in, NULL, &rep), 1);
    ck_assert(!rep.passed);
    /* the worst entry is x[1] = -2 (error |x|), on the diagonal of the Jacobian */
    ck_assert_int_eq(rep.input, 1);
    ck_assert_int_eq(rep.in_index, 1);
    ck_assert_int_eq(rep.out_index, 1);
    ck_assert_double_eq_tol(rep.analytic, -2.0, 1e-12);
    ck_assert_double_eq_tol(rep.numeric, -4.0, 1e-6);
    CK_HAS(rep.message, "FAILED");
    CK_HAS(rep.message, "input 1 index 1");

    tg_gradcheck_opts o = tg_gradcheck_defaults();
    o.fast = true;
    ck_assert_int_eq(gradcheck_restoring(wrong_grad, in, &o, &rep), 1);
    ck_assert(!rep.passed);
    ck_assert_int_eq(rep.input, 1);
    ck_assert_int_eq(rep.in_index, -1);
    CK_HAS(rep.message, "FAILED");
    /* only a checked input can be blamed: with x frozen, the check passes */
    ck_assert_int_eq(tg_set_requires_grad(in[1], false), 0);
    ck_assert_int_eq(gradcheck_restoring(wrong_grad, in, NULL, &rep), 0);
    for (int i = 0; i < 2; i++) tg_tensor_free(in[i]);
}
END_TEST

START_TEST(test_gradcheck_bad_arguments) {
    tg_tensor *in[2];
    pair_new(in);
    tg_gradcheck_report rep;
    /* a tape tensor as input */
    tg_tape *tp = tg_tape_new();
    tg_tensor *on_tape[2] = {in[0], tg_tensor_from(tp, TG_F64, 1, (int64_t[]){3}, XV)};
    ck_assert_int_eq(tg_gradcheck(right_grad, NULL, 2, on_tape, NULL, &rep), -1);
    ck_assert(!rep.passed);
    CK_HAS(rep.message, "input 1 must be a persistent tensor");
    /* an f32 input that requires grad */
    tg_tensor *f = tg_tensor_from(NULL, TG_F32, 1, (int64_t[]){3}, (float[]){1, 2, 3});
    ck_assert_int_eq(tg_set_requires_grad(f, true), 0);
    ck_assert_int_eq(tg_gradcheck(right_grad, NULL, 2, (tg_tensor *[]){f, in[1]}, NULL, &rep),
                     -1);
    CK_HAS(rep.message, "input 0");
    CK_HAS(rep.message, "f64");
    /* nothing to check */
    for (int i = 0; i < 2; i++) ck_assert_int_eq(tg_set_requires_grad(in[i], false), 0);
    ck_assert_int_eq(tg_gradcheck(right_grad, NULL, 2, in, NULL, &rep), -1);
    CK_HAS(rep.message, "no input requires grad");
    ck_assert_int_eq(tg_gradcheck(NULL, NULL, 2, in, NULL, &rep), -1);
    ck_assert_int_eq(tg_gradcheck(right_grad, NULL, 0, in, NULL, &rep), -1);
    /* a function that fails: its own message comes back */
    ck_assert_int_eq(tg_set_requires_grad(in[0], true), 0);
    ck_assert_int_eq(tg_gradcheck(broken, NULL, 2, in, NULL, &rep), -1);
    CK_HAS(rep.message, "the function failed");
    CK_HAS(rep.message, "matmul: [1, 3] and [1, 3]");
    tg_tensor_free(f);
    for (int i = 0; i < 2; i++) tg_tensor_free(in[i]);
    tg_tape_free(tp);
}
END_TEST

/* ---- 10. threads ------------------------------------------------------------------------ */

enum { TM = 256, TK = 192, TN = 256 };

/* loss = sum(tanh(a b) * (a b)) with a: [256, 192], b: [192, 256] (f32, so the elementwise
 * kernels run in parallel); out receives the loss then a's and b's grads. */
static void thread_workload(float *out) {
    tg_rng *rng = tg_rng_new(99);
    tg_tensor *a = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){TM, TK}, 0, 0.1);
    tg_tensor *b = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){TK, TN}, 0, 0.1);
    ck_assert_int_eq(tg_set_requires_grad(a, true), 0);
    ck_assert_int_eq(tg_set_requires_grad(b, true), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *ab = tg_matmul(tp, a, b);
    tg_tensor *loss = total(tp, tg_mul(tp, tg_tanh(tp, ab), ab));
    CK_TAPE_OK(tp);
    ck_assert_int_eq(tg_backward(tp, loss, NULL), 0);
    out[0] = (float)tg_tensor_item(loss);
    memcpy(out + 1, tg_tensor_data(tg_tensor_grad(a)), TM * TK * sizeof(float));
    memcpy(out + 1 + TM * TK, tg_tensor_data(tg_tensor_grad(b)), TK * TN * sizeof(float));
    tg_tape_free(tp);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_rng_free(rng);
}

START_TEST(test_threads_repeatable) {
    const size_t n = 1 + TM * TK + TK * TN;
    float *r1 = malloc(n * sizeof *r1), *r2 = malloc(n * sizeof *r2), *r3 = malloc(n * sizeof *r3);
    ck_assert(r1 && r2 && r3);
    int was = tg_get_num_threads();
    tg_set_num_threads(1);
    ck_assert_int_eq(tg_get_num_threads(), 1);
    thread_workload(r1);
    thread_workload(r2);
    ck_assert_msg(memcmp(r1, r2, n * sizeof *r1) == 0, "one thread is not bitwise repeatable");
    tg_set_num_threads(2);
    ck_assert_int_eq(tg_get_num_threads(), 2);
    thread_workload(r3);
    double scale = 0.0;
    for (size_t i = 1; i < n; i++) scale = fmax(scale, fabs(r1[i]));
    ck_assert_msg(fabs(r1[0] - r3[0]) <= 1e-5 * fabs(r1[0]), "loss %g vs %g", r1[0], r3[0]);
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(fabs(r1[i] - r3[i]) <= 1e-5 * scale, "grad entry %zu: %g (1 thread) vs "
                      "%g (2 threads)", i - 1, r1[i], r3[i]);
    tg_set_num_threads(0);
    ck_assert_int_eq(tg_get_num_threads(), 1); /* n < 1 is taken as 1 */
    tg_set_num_threads(was);
    free(r1);
    free(r2);
    free(r3);
}
END_TEST

/* ---- the suite --------------------------------------------------------------------------- */

/* One test case per area, each with a timeout that fits its heaviest test under ASan. */
static Suite *autograd_suite(void) {
    Suite *s = suite_create("core");
    struct {
        const char *name;
        const TTest *tests[8];
        double timeout;
    } cases[] = {
        {"linear_model", {test_linear_model_grads, test_linear_model_sgd}, 30},
        {"accumulation",
         {test_accumulate_reuse, test_accumulate_diamond, test_accumulate_across_backwards,
          test_tape_leaf_grad},
         10},
        {"long_chain", {test_million_op_chain}, 240},
        {"steady_state", {test_steady_state_no_system_alloc}, 120},
        {"grad",
         {test_grad_basic, test_grad_intermediate_and_seeds, test_grad_second_order_cube,
          test_grad_hessian_vector_product, test_grad_gradient_penalty, test_gradgradcheck_passes},
         60},
        {"no_grad", {test_no_grad_mode, test_detach}, 10},
        {"versions",
         {test_version_persistent_param, test_version_tape_tensor,
          test_version_views_share_counter},
         10},
        {"errors",
         {test_error_backward_arguments, test_error_stale_tensor, test_error_null_tape,
          test_error_failed_forward, test_error_set_requires_grad},
         10},
        {"gradcheck",
         {test_gradcheck_passes_and_restores, test_gradcheck_catches_wrong_gradient,
          test_gradcheck_bad_arguments},
         30},
        {"threads", {test_threads_repeatable}, 60},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        TCase *tc = tcase_create(cases[c].name);
        tcase_set_timeout(tc, cases[c].timeout);
        for (int t = 0; t < 8 && cases[c].tests[t]; t++) tcase_add_test(tc, cases[c].tests[t]);
        suite_add_tcase(s, tc);
    }
    return s;
}

/* Runs the suite (CK_RUN_CASE picks one case); fails when any test fails. */
int main(void) {
    return run_suite(autograd_suite(), CK_ENV);
}
