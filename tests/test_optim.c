/* Tests of the optimizers, gradient utilities, learning-rate schedules and early stopping (suite
 * `optim`). Golden: 20 training steps of a small network with every optimizer and option,
 * parameter groups and frozen parameters (tests/golden/optim.txt), the gradient utilities
 * (optim.txt "clip/..."), and the lr of two groups at every step of every schedule
 * (tests/golden/sched.txt), all written with PyTorch 1.13. Then state, resuming from copied
 * state, zero_grad, skipped parameters and the error paths. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "golden.h"
#include "tapegrad.h"
#include "testing.h"

enum { STEPS = 20, N_PARAMS = 4, N_VALUES = 23 };

static golden *optim_fx, *sched_fx;
/* Case names of optim.txt by family, for the loop tests. */
static const char *train_cases[64], *clip_cases[16];
static int n_train, n_clip, n_sched;

/* ---- the network of the fixtures: Linear(4, 3) -> tanh -> Linear(3, 2), mse -------------- */

typedef struct net {
    tg_model *m;
    tg_tensor *p[N_PARAMS]; /* fc1.weight [3, 4], fc1.bias [3], fc2.weight [2, 3], fc2.bias [2] */
    tg_tensor *x, *y;       /* [5, 4], [5, 2] */
    tg_tape *tp;
} net;

static const char *const PARAM_NAMES[N_PARAMS] = {"fc1.weight", "fc1.bias", "fc2.weight",
                                                  "fc2.bias"};

/* The fixtures' network in dtype, registered in a model under PyTorch's names. */
static net net_new(tg_dtype dtype) {
    static const char *const keys[N_PARAMS] = {"w1", "b1", "w2", "b2"};
    net n = {.m = tg_model_new("Net"), .tp = tg_tape_new()};
    for (int i = 0; i < N_PARAMS; i++) {
        n.p[i] = tg_model_add_param(n.m, PARAM_NAMES[i], golden_tensor(optim_fx, "model", keys[i],
                                                                       dtype));
        ck_assert_ptr_nonnull(n.p[i]);
    }
    n.x = golden_tensor(optim_fx, "model", "x", dtype);
    n.y = golden_tensor(optim_fx, "model", "y", dtype);
    return n;
}

/* Frees the model (with its parameters), data and tape. */
static void net_free(net *n) {
    tg_model_free(n->m);
    tg_tensor_free(n->x);
    tg_tensor_free(n->y);
    tg_tape_free(n->tp);
}

/* Forward and backward of mse(fc2(tanh(fc1(x))), y): accumulates the parameters' grads. */
static void net_backward(net *n) {
    tg_tape *tp = n->tp;
    tg_tape_reset(tp);
    tg_tensor *h = tg_tanh(tp, tg_linear(tp, n->x, n->p[0], n->p[1]));
    tg_tensor *loss = tg_mse_loss(tp, tg_linear(tp, h, n->p[2], n->p[3]), n->y,
                                  TG_REDUCTION_MEAN);
    ck_assert_msg(loss != NULL, "%s", tg_tape_error(tp));
    ck_assert_msg(tg_backward(tp, loss, NULL) == 0, "%s", tg_tape_error(tp));
}

/* zero_grad, forward, backward, step. */
static void train_step(net *n, tg_optim *o) {
    tg_optim_zero_grad(o);
    net_backward(n);
    ck_assert_msg(tg_optim_step(o) == 0, "%s", tg_last_error());
}

/* All parameter values in order, as double. */
static void net_values(const net *n, double out[N_VALUES]) {
    int k = 0;
    for (int i = 0; i < N_PARAMS; i++)
        for (int64_t j = 0; j < tg_tensor_numel(n->p[i]); j++) out[k++] = tg_tensor_get(n->p[i], j);
    ck_assert_int_eq(k, N_VALUES);
}

/* |got - want| <= rtol (|want| + max|want|) for every element (golden_close's rule). */
static void expect_close(const char *what, int step, int n, const double *got,
                         const double *want, double rtol) {
    double scale = 0;
    for (int i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= rtol * (fabs(want[i]) + scale),
                      "%s step %d element %d: got %.17g, want %.17g", what, step, i, got[i],
                      want[i]);
}

/* ---- optimizer options from a case --------------------------------------------------------- */

/* Group g's options of case `name`: the kind's defaults overridden by the keys present. */
static tg_optim_opts case_opts(const char *name, tg_optim_kind kind, int g) {
    tg_optim_opts o = tg_optim_defaults(kind);
    char key[64];
#define OPT(field)                                                                             \
    do {                                                                                      \
        snprintf(key, sizeof key, "g%d." #field, g);                                          \
        o.field = golden_number(optim_fx, name, key, (double)o.field);                        \
    } while (0)
    OPT(lr);
    OPT(weight_decay);
    OPT(momentum);
    OPT(dampening);
    OPT(beta1);
    OPT(beta2);
    OPT(eps);
    OPT(alpha);
    OPT(lr_decay);
    OPT(initial_accumulator);
#undef OPT
    snprintf(key, sizeof key, "g%d.nesterov", g);
    o.nesterov = golden_number(optim_fx, name, key, 0) != 0;
    snprintf(key, sizeof key, "g%d.amsgrad", g);
    o.amsgrad = golden_number(optim_fx, name, key, 0) != 0;
    snprintf(key, sizeof key, "g%d.centered", g);
    o.centered = golden_number(optim_fx, name, key, 0) != 0;
    return o;
}

/* The optimizer of case `name` over n's parameters, groups as the case says. */
static tg_optim *case_optim(const char *name, net *n) {
    tg_optim_kind kind = (tg_optim_kind)golden_number(optim_fx, name, "kind", -1);
    tg_optim *o = tg_optim_new(kind, NULL);
    ck_assert_msg(o != NULL, "%s: %s", name, tg_last_error());
    int groups = (int)golden_number(optim_fx, name, "groups", 0);
    bool split = golden_number(optim_fx, name, "split", 0) != 0;
    for (int g = 0; g < groups; g++) {
        tg_optim_opts opts = case_opts(name, kind, g);
        int got;
        if (split) { /* group 0: the weights (decay), group 1: the biases */
            got = tg_optim_add_model(o, n->m, tg_param_decays, NULL, g == 1, &opts);
        } else {
            char key[32];
            snprintf(key, sizeof key, "g%d.params", g);
            tg_tensor *idx = golden_tensor(optim_fx, name, key, TG_I64);
            ck_assert_ptr_nonnull(idx);
            tg_tensor *ps[N_PARAMS];
            int np = (int)tg_tensor_numel(idx);
            for (int i = 0; i < np; i++) ps[i] = n->p[(int)tg_tensor_get(idx, i)];
            tg_tensor_free(idx);
            got = tg_optim_add_group(o, np, ps, &opts);
        }
        ck_assert_msg(got == g, "%s group %d: %s", name, g, tg_last_error());
    }
    return o;
}

/* Every parameter after every one of 20 steps equals PyTorch's (f64 1e-10; f32 runs are
 * whole-f32 in both libraries and agree to float rounding). */
START_TEST(test_train_golden) {
    const char *name = train_cases[_i];
    tg_dtype dtype = golden_number(optim_fx, name, "dtype", 0) != 0 ? TG_F32 : TG_F64;
    net n = net_new(dtype);
    tg_tensor *frozen = golden_tensor(optim_fx, name, "frozen", TG_I64);
    for (int64_t i = 0; frozen && i < tg_tensor_numel(frozen); i++)
        ck_assert_int_eq(tg_set_requires_grad(n.p[(int)tg_tensor_get(frozen, i)], false), 0);
    tg_optim *o = case_optim(name, &n);
    tg_tensor *traj = golden_tensor(optim_fx, name, "traj", TG_F64);
    ck_assert_ptr_nonnull(traj);
    ck_assert_int_eq(tg_tensor_dim(traj, 0), STEPS);
    const double *want = tg_tensor_data(traj);
    double got[N_VALUES];
    for (int step = 0; step < STEPS; step++) {
        train_step(&n, o);
        net_values(&n, got);
        expect_close(name, step, N_VALUES, got, want + step * N_VALUES,
                     dtype == TG_F64 ? GOLDEN_RTOL_F64 : GOLDEN_RTOL_F32);
    }
    for (int64_t i = 0; frozen && i < tg_tensor_numel(frozen); i++)
        ck_assert_ptr_null(tg_tensor_grad(n.p[(int)tg_tensor_get(frozen, i)]));
    tg_tensor_free(frozen);
    tg_tensor_free(traj);
    tg_optim_free(o);
    net_free(&n);
}
END_TEST

/* ---- gradient utilities against torch.nn.utils and torch.renorm ----------------------------- */

/* A parameter of `key`'s shape whose grad holds the case's values (via backward of sum(p * g)). */
static tg_tensor *param_with_grad(const char *name, const char *key, tg_dtype dtype) {
    tg_tensor *g = golden_tensor(optim_fx, name, key, dtype);
    ck_assert_ptr_nonnull(g);
    tg_tensor *p = tg_zeros(NULL, dtype, tg_tensor_ndim(g), tg_tensor_shape(g));
    ck_assert_int_eq(tg_set_requires_grad(p, true), 0);
    tg_tape *tp = tg_tape_new();
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_mul(tp, p, g), NULL, 0, false), NULL), 0);
    tg_tape_free(tp);
    tg_tensor_free(g);
    return p;
}

/* got equals `key` of case `name` within rtol (golden_close). */
static void expect_tensor(const char *name, const char *key, const tg_tensor *got,
                          double rtol) {
    tg_tensor *want = golden_tensor(optim_fx, name, key, TG_F64);
    ck_assert_msg(want != NULL, "%s: no %s", name, key);
    char why[256];
    bool ok = golden_close(got, want, rtol, why, sizeof why);
    tg_tensor_free(want);
    ck_assert_msg(ok, "%s %s (%s): %s", name, key, tg_dtype_name(tg_tensor_dtype(got)), why);
}

START_TEST(test_clip_golden) {
    const char *name = clip_cases[_i];
    for (int d = 0; d < 2; d++) {
        tg_dtype dtype = d ? TG_F32 : TG_F64;
        double rtol = d ? GOLDEN_RTOL_F32 : 1e-14;
        if (golden_has(optim_fx, name, "w")) { /* max-norm on the rows */
            tg_tensor *w = golden_tensor(optim_fx, name, "w", dtype);
            uint32_t version = tg_tensor_version(w);
            ck_assert_int_eq(tg_max_norm_rows(w, golden_number(optim_fx, name, "max_norm", 0)), 0);
            ck_assert_uint_gt(tg_tensor_version(w), version);
            expect_tensor(name, "out", w, rtol);
            tg_tensor_free(w);
            continue;
        }
        tg_tensor *ps[4] = {param_with_grad(name, "g1", dtype),
                            param_with_grad(name, "g2", dtype),
                            tg_zeros(NULL, dtype, 1, (int64_t[]){3}), /* no grad: skipped */
                            param_with_grad(name, "g3", dtype)};
        if (golden_has(optim_fx, name, "clip")) {
            double clip = golden_number(optim_fx, name, "clip", 0);
            ck_assert_int_eq(tg_clip_grad_value(4, ps, clip), 0);
        } else {
            double total = tg_clip_grad_norm(4, ps, golden_number(optim_fx, name, "max_norm", 0));
            double want = golden_number(optim_fx, name, "total_norm", NAN);
            ck_assert_double_eq_tol(total, want, rtol * want);
        }
        expect_tensor(name, "out1", tg_tensor_grad(ps[0]), rtol);
        expect_tensor(name, "out2", tg_tensor_grad(ps[1]), rtol);
        expect_tensor(name, "out3", tg_tensor_grad(ps[3]), rtol);
        ck_assert_ptr_null(tg_tensor_grad(ps[2]));
        for (int i = 0; i < 4; i++) tg_tensor_free(ps[i]);
    }
}
END_TEST

/* ---- schedules against torch.optim.lr_scheduler -------------------------------------------- */

/* An SGD optimizer with one f64 parameter per group, group g starting at lr base[g]. */
static tg_optim *two_groups(const double base[2], tg_tensor *params[2]) {
    tg_optim *o = tg_optim_new(TG_OPTIM_SGD, NULL);
    for (int g = 0; g < 2; g++) {
        params[g] = tg_zeros(NULL, TG_F64, 1, (int64_t[]){1});
        tg_optim_opts opts = tg_optim_defaults(TG_OPTIM_SGD);
        opts.lr = base[g];
        ck_assert_int_eq(tg_optim_add_group(o, 1, &params[g], &opts), g);
    }
    return o;
}

/* Case `name`'s schedule of kind (the case's or, for a warmup, its `after`) on o. */
static tg_sched *case_sched(const char *name, int kind, tg_optim *o) {
    const golden *f = sched_fx;
#define NUM(key) golden_number(f, name, key, NAN)
    switch (kind) {
    case 0: return tg_sched_step_new(o, (int64_t)NUM("step_size"), NUM("gamma"));
    case 1:
    case 2: {
        tg_tensor *m = golden_tensor(f, name, "milestones", TG_I64);
        tg_tensor *v = golden_tensor(f, name, "values", TG_F64);
        int n = (int)tg_tensor_numel(m);
        tg_sched *s = kind == 1
                          ? tg_sched_multistep_new(o, n, tg_tensor_data(m), NUM("gamma"))
                          : tg_sched_table_new(o, n, tg_tensor_data(m), tg_tensor_data(v));
        tg_tensor_free(m);
        tg_tensor_free(v);
        return s;
    }
    case 3: return tg_sched_exponential_new(o, NUM("gamma"));
    case 4: return tg_sched_cosine_new(o, (int64_t)NUM("t_max"), NUM("eta_min"));
    case 5:
        return tg_sched_inverse_time_new(o, NUM("rate"), (int64_t)NUM("decay_steps"),
                                         NUM("staircase") != 0);
    case 6: {
        int after = (int)NUM("after");
        return tg_sched_warmup_new(o, (int64_t)NUM("warmup"), NUM("start_factor"),
                                   after < 0 ? NULL : case_sched(name, after, o));
    }
    case 7: {
        tg_plateau_opts p = tg_plateau_defaults();
        p.maximize = golden_number(f, name, "maximize", 0) != 0;
        p.factor = golden_number(f, name, "factor", p.factor);
        p.patience = (int64_t)golden_number(f, name, "patience", (double)p.patience);
        p.threshold = golden_number(f, name, "threshold", p.threshold);
        p.threshold_abs = golden_number(f, name, "threshold_abs", 0) != 0;
        p.cooldown = (int64_t)golden_number(f, name, "cooldown", (double)p.cooldown);
        p.min_lr = golden_number(f, name, "min_lr", p.min_lr);
        p.eps = golden_number(f, name, "eps", p.eps);
        return tg_sched_plateau_new(o, &p);
    }
    }
#undef NUM
    ck_abort_msg("%s: unknown schedule kind %d", name, kind);
    return NULL;
}

/* Both groups' lr after construction and after each step equal PyTorch's to 1e-12 relative. */
START_TEST(test_sched_golden) {
    const char *name = golden_case_at(sched_fx, _i);
    tg_tensor *base = golden_tensor(sched_fx, name, "base", TG_F64);
    tg_tensor *lr = golden_tensor(sched_fx, name, "lr", TG_F64);
    tg_tensor *metrics = golden_tensor(sched_fx, name, "metrics", TG_F64);
    tg_tensor *params[2];
    tg_optim *o = two_groups(tg_tensor_data(base), params);
    int kind = (int)golden_number(sched_fx, name, "kind", -1);
    tg_sched *s = case_sched(name, kind, o);
    ck_assert_msg(s != NULL, "%s: %s", name, tg_last_error());
    int64_t steps = tg_tensor_dim(lr, 0) - 1;
    for (int64_t t = 0; t <= steps; t++) {
        if (t > 0) {
            int rc = metrics ? tg_sched_step_metric(s, tg_tensor_get(metrics, t - 1))
                             : tg_sched_step(s);
            ck_assert_msg(rc == 0, "%s: %s", name, tg_last_error());
        }
        for (int g = 0; g < 2; g++) {
            double want = tg_tensor_get(lr, 2 * t + g), got = tg_optim_get_lr(o, g);
            ck_assert_msg(fabs(got - want) <= 1e-12 * fabs(want),
                          "%s step %lld group %d: lr %.17g, want %.17g", name, (long long)t, g,
                          got, want);
        }
        ck_assert_double_eq(tg_sched_get_lr(s), tg_optim_get_lr(o, 0));
    }
    tg_sched_free(s);
    tg_optim_free(o);
    for (int g = 0; g < 2; g++) tg_tensor_free(params[g]);
    tg_tensor_free(base);
    tg_tensor_free(lr);
    tg_tensor_free(metrics);
}
END_TEST

/* ---- optimizer behaviour ------------------------------------------------------------------- */

START_TEST(test_defaults) {
    tg_optim_opts s = tg_optim_defaults(TG_OPTIM_SGD), a = tg_optim_defaults(TG_OPTIM_ADAM);
    tg_optim_opts w = tg_optim_defaults(TG_OPTIM_ADAMW), r = tg_optim_defaults(TG_OPTIM_RMSPROP);
    tg_optim_opts g = tg_optim_defaults(TG_OPTIM_ADAGRAD);
    ck_assert_double_eq(s.lr, 1e-2);
    ck_assert_double_eq(s.momentum, 0);
    ck_assert_double_eq(s.dampening, 0);
    ck_assert(!s.nesterov);
    ck_assert_double_eq(s.weight_decay, 0);
    ck_assert_double_eq(a.lr, 1e-3);
    ck_assert_double_eq(a.beta1, 0.9);
    ck_assert_double_eq(a.beta2, 0.999);
    ck_assert_double_eq(a.eps, 1e-8);
    ck_assert_double_eq(a.weight_decay, 0);
    ck_assert(!a.amsgrad);
    ck_assert_double_eq(w.lr, 1e-3);
    ck_assert_double_eq(w.weight_decay, 1e-2);
    ck_assert_double_eq(r.lr, 1e-2);
    ck_assert_double_eq(r.alpha, 0.99);
    ck_assert_double_eq(r.eps, 1e-8);
    ck_assert(!r.centered);
    ck_assert_double_eq(g.lr, 1e-2);
    ck_assert_double_eq(g.eps, 1e-10);
    ck_assert_double_eq(g.lr_decay, 0);
    ck_assert_double_eq(g.initial_accumulator, 0);
    tg_plateau_opts p = tg_plateau_defaults();
    ck_assert(!p.maximize && !p.threshold_abs);
    ck_assert_double_eq(p.factor, 0.1);
    ck_assert_int_eq(p.patience, 10);
    ck_assert_double_eq(p.threshold, 1e-4);
    ck_assert_int_eq(p.cooldown, 0);
    ck_assert_double_eq(p.min_lr, 0);
    ck_assert_double_eq(p.eps, 1e-8);
}
END_TEST

/* zero_grad keeps the gradients' storage and zeroes it. */
START_TEST(test_zero_grad) {
    net n = net_new(TG_F64);
    tg_optim *o = tg_optim_new(TG_OPTIM_SGD, NULL);
    ck_assert_int_eq(tg_optim_add_model(o, n.m, NULL, NULL, false, NULL), 0);
    net_backward(&n);
    for (int i = 0; i < N_PARAMS; i++) ck_assert(tg_tensor_get(tg_tensor_grad(n.p[i]), 0) != 0);
    tg_tensor *g0 = tg_tensor_grad(n.p[0]);
    tg_optim_zero_grad(o);
    ck_assert_ptr_eq(tg_tensor_grad(n.p[0]), g0);
    for (int i = 0; i < N_PARAMS; i++)
        for (int64_t j = 0; j < tg_tensor_numel(n.p[i]); j++)
            ck_assert_double_eq(tg_tensor_get(tg_tensor_grad(n.p[i]), j), 0);
    tg_optim_free(o);
    net_free(&n);
}
END_TEST

/* A parameter without a gradient is left alone: value, version and state (even with weight
 * decay); the others are updated and their versions bumped. */
START_TEST(test_skips_params_without_grad) {
    net n = net_new(TG_F64);
    tg_tensor *extra = tg_tensor_from(NULL, TG_F64, 1, (int64_t[]){2}, (double[]){1.5, -2});
    tg_optim_opts opts = tg_optim_defaults(TG_OPTIM_ADAMW);
    opts.weight_decay = 0.5;
    tg_optim *o = tg_optim_new(TG_OPTIM_ADAMW, &opts);
    tg_tensor *ps[5] = {n.p[0], n.p[1], extra, n.p[2], n.p[3]};
    ck_assert_int_eq(tg_optim_add_group(o, 5, ps, NULL), 0);
    uint32_t v_extra = tg_tensor_version(extra), v_w1 = tg_tensor_version(n.p[0]);
    double w1 = tg_tensor_get(n.p[0], 0);
    train_step(&n, o);
    train_step(&n, o);
    ck_assert_double_eq(tg_tensor_get(extra, 0), 1.5);
    ck_assert_double_eq(tg_tensor_get(extra, 1), -2);
    ck_assert_uint_eq(tg_tensor_version(extra), v_extra);
    ck_assert_uint_gt(tg_tensor_version(n.p[0]), v_w1);
    ck_assert(tg_tensor_get(n.p[0], 0) != w1);
    tg_state_entry e[64];
    int count = tg_optim_state(o, e, 64);
    for (int i = 0; i < count; i++) {
        const char *name = e[i].name;
        if (strcmp(name, "state.2.step") == 0) ck_assert_double_eq(tg_tensor_item(e[i].tensor), 0);
        if (strcmp(name, "state.0.step") == 0) ck_assert_double_eq(tg_tensor_item(e[i].tensor), 2);
        if (strcmp(name, "state.2.exp_avg") == 0)
            ck_assert_double_eq(tg_tensor_get(e[i].tensor, 0), 0);
    }
    tg_optim_free(o);
    tg_tensor_free(extra);
    net_free(&n);
}
END_TEST

#if defined(__SSE__)
/* A parameter whose gradient is 1 once and 0 after: Adam's first moment 0.1 * 0.9^t falls
 * below FLT_MIN after ~810 steps and is flushed to exactly 0 there (IEEE arithmetic would
 * keep a subnormal until ~950 steps); the parameter is where PyTorch leaves it, and the
 * caller's floating-point mode is restored. */
START_TEST(test_subnormal_moments_flushed) {
    tg_tensor *p = tg_tensor_from(NULL, TG_F32, 1, (int64_t[]){1}, (float[]){0.5f});
    ck_assert_int_eq(tg_set_requires_grad(p, true), 0);
    tg_optim *o = tg_optim_new(TG_OPTIM_ADAM, NULL);
    ck_assert_int_eq(tg_optim_add_group(o, 1, &p, NULL), 0);
    tg_tape *tp = tg_tape_new();
    const unsigned int csr = _mm_getcsr();
    for (int t = 0; t < 880; t++) {
        ck_assert_int_eq(tg_backward(tp, tg_mul_scalar(tp, p, t == 0 ? 1.0 : 0.0), NULL), 0);
        ck_assert_int_eq(tg_optim_step(o), 0);
        tg_optim_zero_grad(o);
        tg_tape_reset(tp);
    }
    ck_assert_uint_eq(_mm_getcsr(), csr);
    tg_state_entry e[8];
    int count = tg_optim_state(o, e, 8);
    bool found = false;
    for (int i = 0; i < count; i++)
        if (strcmp(e[i].name, "state.0.exp_avg") == 0) {
            ck_assert_float_eq(tg_tensor_get(e[i].tensor, 0), 0.0f);
            found = true;
        }
    ck_assert(found);
    /* torch.optim.Adam (PyTorch 1.13, float32) ends at this value both with and without
     * torch.set_flush_denormal(True); its exp_avg is 6.0e-42 without. */
    ck_assert_float_eq(tg_tensor_get(p, 0), 0.49399471282958984f);
    tg_tape_free(tp);
    tg_optim_free(o);
    tg_tensor_free(p);
}
END_TEST
#endif

/* The names of o's state entries joined by spaces. */
static void state_names(tg_optim *o, char *buf, size_t size) {
    tg_state_entry e[64];
    int n = tg_optim_state(o, e, 64);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        strncat(buf, e[i].name, size - strlen(buf) - 1);
        strncat(buf, " ", size - strlen(buf) - 1);
    }
}

/* Every state tensor exists right after add_group, under torch's state_dict names; with
 * out == NULL the count, with a small cap a prefix; group.<g>.lr is where the lr lives. */
START_TEST(test_state_entries) {
    net n = net_new(TG_F32);
    tg_optim_opts opts = tg_optim_defaults(TG_OPTIM_ADAM);
    opts.amsgrad = true;
    tg_optim *o = tg_optim_new(TG_OPTIM_ADAM, NULL);
    ck_assert_int_eq(tg_optim_add_group(o, 1, &n.p[2], &opts), 0);
    ck_assert_int_eq(tg_optim_add_group(o, 1, &n.p[3], NULL), 1);
    char names[1024];
    state_names(o, names, sizeof names);
    ck_assert_str_eq(names, "group.0.lr state.0.step state.0.exp_avg state.0.exp_avg_sq "
                            "state.0.max_exp_avg_sq group.1.lr state.1.step state.1.exp_avg "
                            "state.1.exp_avg_sq ");
    ck_assert_int_eq(tg_optim_state(o, NULL, 0), 9);
    tg_state_entry e[9];
    ck_assert_int_eq(tg_optim_state(o, e, 2), 2);
    ck_assert_int_eq(tg_tensor_ndim(e[1].tensor), 0);
    ck_assert_int_eq(tg_tensor_dtype(e[1].tensor), TG_F64);
    ck_assert_int_eq(tg_optim_state(o, e, 9), 9);
    ck_assert_int_eq(tg_tensor_dtype(e[2].tensor), TG_F32);
    ck_assert_int_eq(tg_tensor_dim(e[2].tensor, 0), 2);
    ck_assert_int_eq(tg_tensor_dim(e[2].tensor, 1), 3);
    /* the lr tensor is the lr */
    ((double *)tg_tensor_data_mut(e[5].tensor))[0] = 0.25;
    ck_assert_double_eq(tg_optim_get_lr(o, 1), 0.25);
    tg_optim_set_lr(o, -1, 0.125);
    ck_assert_double_eq(tg_optim_get_lr(o, 0), 0.125);
    ck_assert_double_eq(tg_tensor_item(e[5].tensor), 0.125);
    tg_optim_set_lr(o, 0, 0.5);
    ck_assert_double_eq(tg_optim_get_lr(o, 0), 0.5);
    ck_assert_double_eq(tg_optim_get_lr(o, 1), 0.125);
    tg_optim_free(o);

    const struct { tg_optim_kind kind; const char *want; } kinds[] = {
        {TG_OPTIM_SGD, "group.0.lr state.0.step state.0.momentum_buffer "},
        {TG_OPTIM_RMSPROP, "group.0.lr state.0.step state.0.square_avg state.0.momentum_buffer "
                           "state.0.grad_avg "},
        {TG_OPTIM_ADAGRAD, "group.0.lr state.0.step state.0.sum "},
    };
    for (int k = 0; k < 3; k++) {
        tg_optim_opts ko = tg_optim_defaults(kinds[k].kind);
        ko.momentum = 0.5;
        ko.centered = true;
        ko.initial_accumulator = 0.75;
        o = tg_optim_new(kinds[k].kind, &ko);
        ck_assert_int_eq(tg_optim_add_group(o, 1, &n.p[1], NULL), 0);
        state_names(o, names, sizeof names);
        ck_assert_str_eq(names, kinds[k].want);
        if (kinds[k].kind == TG_OPTIM_ADAGRAD) { /* the accumulator starts at its value */
            tg_optim_state(o, e, 3);
            ck_assert_double_eq(tg_tensor_get(e[2].tensor, 2), 0.75);
        }
        tg_optim_free(o);
    }
    net_free(&n);
}
END_TEST

/* The decay / no-decay split with tg_param_decays: weights (rank 2) in one group, biases in
 * the other; frozen parameters and buffers in neither. */
START_TEST(test_add_model_split) {
    net n = net_new(TG_F64);
    ck_assert_ptr_nonnull(tg_model_add_buffer(n.m, "running", tg_zeros(NULL, TG_F64, 2,
                                                                       (int64_t[]){2, 2})));
    ck_assert_int_eq(tg_model_set_frozen(n.m, "fc2.bias", true), 1);
    tg_optim *o = tg_optim_new(TG_OPTIM_ADAGRAD, NULL);
    ck_assert_int_eq(tg_optim_add_model(o, n.m, tg_param_decays, NULL, false, NULL), 0);
    ck_assert_int_eq(tg_optim_add_model(o, n.m, tg_param_decays, NULL, true, NULL), 1);
    ck_assert_int_eq(tg_optim_num_groups(o), 2);
    tg_state_entry e[16];
    ck_assert_int_eq(tg_optim_state(o, e, 16), 8);
    /* group 0: fc1.weight [3, 4], fc2.weight [2, 3]; group 1: fc1.bias [3] */
    ck_assert_str_eq(e[2].name, "state.0.sum");
    ck_assert_int_eq(tg_tensor_dim(e[2].tensor, 1), 4);
    ck_assert_str_eq(e[4].name, "state.1.sum");
    ck_assert_int_eq(tg_tensor_dim(e[4].tensor, 1), 3);
    ck_assert_str_eq(e[5].name, "group.1.lr");
    ck_assert_str_eq(e[7].name, "state.2.sum");
    ck_assert_int_eq(tg_tensor_ndim(e[7].tensor), 1);
    ck_assert_int_eq(tg_tensor_dim(e[7].tensor, 0), 3);
    /* everything is taken now: adding the model again fails on the first parameter */
    ck_assert_int_eq(tg_optim_add_model(o, n.m, NULL, NULL, false, NULL), -1);
    CK_HAS(tg_last_error(), "already in group 0");
    ck_assert(tg_param_decays("w", n.p[0], NULL));
    ck_assert(!tg_param_decays("b", n.p[1], NULL));
    tg_optim_free(o);
    net_free(&n);
}
END_TEST

/* Options that use every buffer of each kind. */
static tg_optim_opts resume_opts(tg_optim_kind kind) {
    tg_optim_opts o = tg_optim_defaults(kind);
    o.lr = kind == TG_OPTIM_SGD || kind == TG_OPTIM_ADAGRAD ? 0.05 : 0.01;
    o.momentum = 0.9;
    o.amsgrad = true;
    o.centered = true;
    o.lr_decay = 0.1;
    o.weight_decay = 0.01;
    return o;
}

/* Copying every state tensor into a fresh optimizer (a checkpoint round trip) and going on
 * gives bitwise the parameters of an uninterrupted run, for every kind. */
START_TEST(test_resume_from_state) {
    for (tg_optim_kind kind = TG_OPTIM_SGD; kind <= TG_OPTIM_ADAGRAD; kind++) {
        tg_optim_opts opts = resume_opts(kind);
        net a = net_new(TG_F32), b = net_new(TG_F32), c = net_new(TG_F32);
        tg_optim *oa = tg_optim_new(kind, &opts), *ob = tg_optim_new(kind, &opts);
        tg_optim *oc = tg_optim_new(kind, &opts);
        ck_assert_int_eq(tg_optim_add_model(oa, a.m, NULL, NULL, false, NULL), 0);
        ck_assert_int_eq(tg_optim_add_model(ob, b.m, NULL, NULL, false, NULL), 0);
        ck_assert_int_eq(tg_optim_add_model(oc, c.m, NULL, NULL, false, NULL), 0);
        for (int s = 0; s < 12; s++) train_step(&a, oa);
        for (int s = 0; s < 6; s++) train_step(&b, ob);
        tg_state_entry eb[32], ec[32];
        int n = tg_optim_state(ob, eb, 32);
        ck_assert_int_eq(tg_optim_state(oc, ec, 32), n);
        for (int i = 0; i < n; i++) {
            ck_assert_str_eq(eb[i].name, ec[i].name);
            size_t bytes = (size_t)tg_tensor_numel(eb[i].tensor) *
                           tg_dtype_size(tg_tensor_dtype(eb[i].tensor));
            memcpy(tg_tensor_data_mut(ec[i].tensor), tg_tensor_data(eb[i].tensor), bytes);
        }
        for (int i = 0; i < N_PARAMS; i++)
            memcpy(tg_tensor_data_mut(c.p[i]), tg_tensor_data(b.p[i]),
                   (size_t)tg_tensor_numel(b.p[i]) * sizeof(float));
        for (int s = 0; s < 6; s++) train_step(&c, oc);
        for (int i = 0; i < N_PARAMS; i++)
            ck_assert_msg(memcmp(tg_tensor_data(a.p[i]), tg_tensor_data(c.p[i]),
                                 (size_t)tg_tensor_numel(a.p[i]) * sizeof(float)) == 0,
                          "kind %d parameter %d differs after resuming", (int)kind, i);
        tg_optim_free(oa);
        tg_optim_free(ob);
        tg_optim_free(oc);
        net_free(&a);
        net_free(&b);
        net_free(&c);
    }
}
END_TEST

/* new(kind, opts) fails with NULL and a message for each bad option. */
static void expect_bad_opts(tg_optim_kind kind, tg_optim_opts o, const char *word) {
    ck_assert_ptr_null(tg_optim_new(kind, &o));
    CK_HAS(tg_last_error(), word);
}

START_TEST(test_optim_errors) {
    for (tg_optim_kind kind = TG_OPTIM_SGD; kind <= TG_OPTIM_ADAGRAD; kind++) {
        tg_optim_opts o = tg_optim_defaults(kind);
        o.lr = -0.1;
        expect_bad_opts(kind, o, "learning rate");
        o.lr = NAN;
        expect_bad_opts(kind, o, "learning rate");
        o = tg_optim_defaults(kind);
        o.weight_decay = -1;
        expect_bad_opts(kind, o, "weight_decay");
    }
    tg_optim_opts o = tg_optim_defaults(TG_OPTIM_SGD);
    o.nesterov = true;
    expect_bad_opts(TG_OPTIM_SGD, o, "nesterov");
    o.momentum = 0.9;
    o.dampening = 0.1;
    expect_bad_opts(TG_OPTIM_SGD, o, "nesterov");
    o = tg_optim_defaults(TG_OPTIM_SGD);
    o.momentum = -0.5;
    expect_bad_opts(TG_OPTIM_SGD, o, "momentum");
    for (tg_optim_kind kind = TG_OPTIM_ADAM; kind <= TG_OPTIM_ADAMW; kind++) {
        o = tg_optim_defaults(kind);
        o.beta1 = 1.0;
        expect_bad_opts(kind, o, "beta1");
        o = tg_optim_defaults(kind);
        o.beta2 = -0.1;
        expect_bad_opts(kind, o, "beta2");
        o = tg_optim_defaults(kind);
        o.eps = -1e-8;
        expect_bad_opts(kind, o, "eps");
    }
    o = tg_optim_defaults(TG_OPTIM_RMSPROP);
    o.alpha = -0.9;
    expect_bad_opts(TG_OPTIM_RMSPROP, o, "alpha");
    o = tg_optim_defaults(TG_OPTIM_ADAGRAD);
    o.lr_decay = -1;
    expect_bad_opts(TG_OPTIM_ADAGRAD, o, "lr_decay");
    o = tg_optim_defaults(TG_OPTIM_ADAGRAD);
    o.initial_accumulator = -1;
    expect_bad_opts(TG_OPTIM_ADAGRAD, o, "initial_accumulator");
    ck_assert_ptr_null(tg_optim_new((tg_optim_kind)42, NULL));
    CK_HAS(tg_last_error(), "unknown");

    /* groups: a parameter in two groups, twice in one, a tape tensor, an integer tensor */
    net n = net_new(TG_F64);
    tg_optim *opt = tg_optim_new(TG_OPTIM_ADAM, NULL);
    ck_assert_int_eq(tg_optim_add_group(opt, 2, n.p, NULL), 0);
    ck_assert_int_eq(tg_optim_add_group(opt, 1, &n.p[1], NULL), -1);
    CK_HAS(tg_last_error(), "already in group 0");
    tg_tensor *twice[2] = {n.p[2], n.p[2]};
    ck_assert_int_eq(tg_optim_add_group(opt, 2, twice, NULL), -1);
    CK_HAS(tg_last_error(), "twice");
    tg_tape *tp = tg_tape_new();
    tg_tensor *on_tape = tg_zeros(tp, TG_F64, 1, (int64_t[]){2});
    ck_assert_int_eq(tg_optim_add_group(opt, 1, &on_tape, NULL), -1);
    CK_HAS(tg_last_error(), "persistent");
    tg_tensor *ints = tg_zeros(NULL, TG_I64, 1, (int64_t[]){2});
    ck_assert_int_eq(tg_optim_add_group(opt, 1, &ints, NULL), -1);
    CK_HAS(tg_last_error(), "f32 or f64");
    tg_tensor *none = NULL;
    ck_assert_int_eq(tg_optim_add_group(opt, 1, &none, NULL), -1);
    CK_HAS(tg_last_error(), "NULL");
    tg_optim_opts bad = tg_optim_defaults(TG_OPTIM_ADAM);
    bad.beta2 = 1.5;
    ck_assert_int_eq(tg_optim_add_group(opt, 1, &n.p[2], &bad), -1);
    CK_HAS(tg_last_error(), "beta2");
    ck_assert_int_eq(tg_optim_add_group(opt, -1, NULL, NULL), -1);
    ck_assert_int_eq(tg_optim_add_group(NULL, 1, &n.p[2], NULL), -1);
    ck_assert_int_eq(tg_optim_add_model(opt, NULL, NULL, NULL, false, NULL), -1);
    /* failed calls changed nothing; an empty group is fine */
    ck_assert_int_eq(tg_optim_num_groups(opt), 1);
    ck_assert_int_eq(tg_optim_state(opt, NULL, 0), 7);
    ck_assert_int_eq(tg_optim_add_group(opt, 0, NULL, NULL), 1);
    ck_assert_int_eq(tg_optim_add_group(opt, 2, &n.p[2], NULL), 2);
    /* lr accessors */
    ck_assert(isnan(tg_optim_get_lr(opt, 3)));
    CK_HAS(tg_last_error(), "no group 3");
    tg_optim_set_lr(opt, 0, -1);
    CK_HAS(tg_last_error(), "lr >= 0");
    tg_optim_set_lr(opt, 7, 0.1);
    CK_HAS(tg_last_error(), "group");
    ck_assert_double_eq(tg_optim_get_lr(opt, 0), 1e-3);
    ck_assert_int_eq(tg_optim_step(NULL), -1);
    CK_HAS(tg_last_error(), "NULL");
    tg_optim_free(opt);
    tg_optim_free(NULL);
    tg_tensor_free(ints);
    tg_tape_free(tp);
    net_free(&n);
}
END_TEST

/* ---- gradient utilities: edge cases ---------------------------------------------------------- */

START_TEST(test_clip_edges) {
    tg_tensor *p = tg_zeros(NULL, TG_F64, 1, (int64_t[]){3});
    ck_assert_double_eq(tg_clip_grad_norm(1, &p, 1.0), 0.0); /* no gradients: norm 0 */
    ck_assert_double_eq(tg_clip_grad_norm(0, NULL, 1.0), 0.0);
    ck_assert(isnan(tg_clip_grad_norm(1, &p, -1.0)));
    CK_HAS(tg_last_error(), "max_norm");
    ck_assert(isnan(tg_clip_grad_norm(-1, NULL, 1.0)));
    tg_tensor *none = NULL;
    ck_assert(isnan(tg_clip_grad_norm(1, &none, 1.0)));
    CK_HAS(tg_last_error(), "NULL");
    ck_assert_int_eq(tg_clip_grad_value(1, &p, NAN), -1);
    CK_HAS(tg_last_error(), "clip");
    ck_assert_int_eq(tg_clip_grad_value(1, &p, 0.5), 0);
    /* a 3-4-5 gradient: norm 5 clipped to 1 (up to torch's 1e-6) */
    ck_assert_int_eq(tg_set_requires_grad(p, true), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *g = tg_tensor_from(tp, TG_F64, 1, (int64_t[]){3}, (double[]){3, 0, -4});
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_mul(tp, p, g), NULL, 0, false), NULL), 0);
    ck_assert_double_eq(tg_clip_grad_norm(1, &p, 1.0), 5.0);
    ck_assert_double_eq_tol(tg_tensor_get(tg_tensor_grad(p), 0), 0.6, 1e-6);
    ck_assert_double_eq_tol(tg_tensor_get(tg_tensor_grad(p), 2), -0.8, 1e-6);
    ck_assert_double_eq_tol(tg_clip_grad_norm(1, &p, 1.0), 1.0, 1e-6);
    ck_assert_double_eq_tol(tg_tensor_get(tg_tensor_grad(p), 0), 0.6, 1e-6);
    tg_tape_free(tp);
    tg_tensor *scalar = tg_zeros(NULL, TG_F64, 0, NULL);
    ck_assert_int_eq(tg_max_norm_rows(scalar, 1.0), -1);
    CK_HAS(tg_last_error(), "rank >= 1");
    tg_tensor *ints = tg_zeros(NULL, TG_I64, 2, (int64_t[]){2, 2});
    ck_assert_int_eq(tg_max_norm_rows(ints, 1.0), -1);
    ck_assert_int_eq(tg_max_norm_rows(p, -2.0), -1);
    CK_HAS(tg_last_error(), "max_norm");
    ck_assert_int_eq(tg_max_norm_rows(NULL, 1.0), -1);
    tg_tensor_free(scalar);
    tg_tensor_free(ints);
    tg_tensor_free(p);
}
END_TEST

/* ---- schedules: behaviour and errors -------------------------------------------------------- */

/* The names of s's state entries joined by spaces. */
static void sched_names(tg_sched *s, char *buf, size_t size) {
    tg_state_entry e[16];
    int n = tg_sched_state(s, e, 16);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        strncat(buf, e[i].name, size - strlen(buf) - 1);
        strncat(buf, " ", size - strlen(buf) - 1);
    }
}

/* The constructor of variant v (0..3): warmup + cosine, plateau, multistep, table. */
static tg_sched *resume_sched(int v, tg_optim *o) {
    tg_plateau_opts p = tg_plateau_defaults();
    p.patience = 1;
    p.cooldown = 1;
    p.factor = 0.5;
    switch (v) {
    case 0: return tg_sched_warmup_new(o, 4, 0.1, tg_sched_cosine_new(o, 9, 1e-4));
    case 1: return tg_sched_plateau_new(o, &p);
    case 2: return tg_sched_multistep_new(o, 2, (int64_t[]){3, 8}, 0.5);
    default: return tg_sched_table_new(o, 2, (int64_t[]){2, 9}, (double[]){0.5, 0.05});
    }
}

/* Copying optimizer and schedule state into fresh ones mid-run continues bitwise as the
 * uninterrupted run. */
START_TEST(test_sched_resume) {
    static const double base[2] = {1.0, 0.3};
    static const double metrics[16] = {5, 4, 4, 4, 4, 3, 3.5, 3, 3, 3, 2, 2, 2, 2, 2, 2};
    for (int v = 0; v < 4; v++) {
        tg_tensor *pa[2], *pb[2], *pc[2];
        tg_optim *oa = two_groups(base, pa), *ob = two_groups(base, pb), *oc = two_groups(base, pc);
        tg_sched *sa = resume_sched(v, oa), *sb = resume_sched(v, ob), *sc = resume_sched(v, oc);
        for (int t = 0; t < 16; t++) ck_assert_int_eq(tg_sched_step_metric(sa, metrics[t]), 0);
        for (int t = 0; t < 7; t++) ck_assert_int_eq(tg_sched_step_metric(sb, metrics[t]), 0);
        tg_state_entry eb[16], ec[16];
        int n = tg_sched_state(sb, eb, 16);
        ck_assert_int_eq(tg_sched_state(sc, ec, 16), n);
        for (int i = 0; i < n; i++) {
            ck_assert_str_eq(eb[i].name, ec[i].name);
            memcpy(tg_tensor_data_mut(ec[i].tensor), tg_tensor_data(eb[i].tensor),
                   (size_t)tg_tensor_numel(eb[i].tensor) * 8);
        }
        for (int g = 0; g < 2; g++) tg_optim_set_lr(oc, g, tg_optim_get_lr(ob, g));
        for (int t = 7; t < 16; t++) ck_assert_int_eq(tg_sched_step_metric(sc, metrics[t]), 0);
        for (int g = 0; g < 2; g++)
            ck_assert_msg(tg_optim_get_lr(oa, g) == tg_optim_get_lr(oc, g),
                          "variant %d group %d: %.17g vs %.17g", v, g, tg_optim_get_lr(oa, g),
                          tg_optim_get_lr(oc, g));
        ck_assert(tg_optim_get_lr(oa, 0) < 1.0);
        tg_sched_free(sa);
        tg_sched_free(sb);
        tg_sched_free(sc);
        tg_optim_free(oa);
        tg_optim_free(ob);
        tg_optim_free(oc);
        for (int g = 0; g < 2; g++) {
            tg_tensor_free(pa[g]);
            tg_tensor_free(pb[g]);
            tg_tensor_free(pc[g]);
        }
    }
}
END_TEST

START_TEST(test_sched_state_names) {
    static const double base[2] = {0.1, 0.2};
    tg_tensor *ps[2];
    tg_optim *o = two_groups(base, ps);
    char names[512];
    tg_sched *s = tg_sched_warmup_new(o, 3, 0.5, tg_sched_step_new(o, 2, 0.5));
    ck_assert_ptr_nonnull(s);
    sched_names(s, names, sizeof names);
    ck_assert_str_eq(names, "last_epoch base_lrs after.last_epoch after.base_lrs ");
    ck_assert_int_eq(tg_sched_state(s, NULL, 0), 4);
    tg_state_entry e[4];
    ck_assert_int_eq(tg_sched_state(s, e, 4), 4);
    ck_assert_int_eq(tg_tensor_dtype(e[0].tensor), TG_I64);
    ck_assert_int_eq(tg_tensor_dim(e[1].tensor, 0), 2);
    ck_assert_double_eq(tg_tensor_get(e[1].tensor, 1), 0.2);
    tg_sched_free(s);
    s = tg_sched_plateau_new(o, NULL);
    sched_names(s, names, sizeof names);
    ck_assert_str_eq(names, "last_epoch best num_bad_epochs cooldown_counter ");
    tg_sched_free(s);
    tg_optim_free(o);
    for (int g = 0; g < 2; g++) tg_tensor_free(ps[g]);
}
END_TEST

START_TEST(test_sched_errors) {
    static const double base[2] = {0.1, 0.2};
    tg_tensor *ps[2], *qs[2];
    tg_optim *o = two_groups(base, ps), *other = two_groups(base, qs);
    tg_optim *empty = tg_optim_new(TG_OPTIM_SGD, NULL);
    ck_assert_ptr_null(tg_sched_step_new(empty, 2, 0.5));
    CK_HAS(tg_last_error(), "parameter group");
    ck_assert_ptr_null(tg_sched_step_new(NULL, 2, 0.5));
    ck_assert_ptr_null(tg_sched_step_new(o, 0, 0.5));
    CK_HAS(tg_last_error(), "step_size");
    ck_assert_ptr_null(tg_sched_step_new(o, 2, -0.5));
    ck_assert_ptr_null(tg_sched_multistep_new(o, 1, (int64_t[]){-3}, 0.5));
    CK_HAS(tg_last_error(), "milestones");
    ck_assert_ptr_null(tg_sched_multistep_new(o, 1, NULL, 0.5));
    ck_assert_ptr_null(tg_sched_table_new(o, 2, (int64_t[]){5, 5}, (double[]){1e-3, 1e-4}));
    CK_HAS(tg_last_error(), "increasing");
    ck_assert_ptr_null(tg_sched_table_new(o, 1, (int64_t[]){5}, (double[]){-1e-3}));
    ck_assert_ptr_null(tg_sched_exponential_new(o, NAN));
    CK_HAS(tg_last_error(), "gamma");
    ck_assert_ptr_null(tg_sched_cosine_new(o, 0, 0.0));
    CK_HAS(tg_last_error(), "t_max");
    ck_assert_ptr_null(tg_sched_cosine_new(o, 10, -1.0));
    ck_assert_ptr_null(tg_sched_inverse_time_new(o, 0.5, 0, false));
    CK_HAS(tg_last_error(), "decay_steps");
    ck_assert_ptr_null(tg_sched_warmup_new(o, 0, 0.5, NULL));
    CK_HAS(tg_last_error(), "warmup_steps");
    ck_assert_ptr_null(tg_sched_warmup_new(o, 5, 0.0, NULL));
    ck_assert_ptr_null(tg_sched_warmup_new(o, 5, 1.5, NULL));
    /* `after` is taken over also on failure (the leak checker of the sanitizer run sees it) */
    ck_assert_ptr_null(tg_sched_warmup_new(o, 5, 0.5, tg_sched_step_new(other, 2, 0.5)));
    CK_HAS(tg_last_error(), "different optimizer");
    ck_assert_ptr_null(tg_sched_warmup_new(o, 5, 0.5, tg_sched_plateau_new(o, NULL)));
    CK_HAS(tg_last_error(), "`after` must be");
    ck_assert_ptr_null(tg_sched_warmup_new(o, 5, 0.5, tg_sched_warmup_new(o, 2, 0.5, NULL)));
    tg_plateau_opts p = tg_plateau_defaults();
    p.factor = 1.0;
    ck_assert_ptr_null(tg_sched_plateau_new(o, &p));
    CK_HAS(tg_last_error(), "factor");
    p = tg_plateau_defaults();
    p.patience = -1;
    ck_assert_ptr_null(tg_sched_plateau_new(o, &p));
    /* a plateau schedule needs a metric; the others accept one and ignore it */
    tg_sched *s = tg_sched_plateau_new(o, NULL);
    ck_assert_int_eq(tg_sched_step(s), -1);
    CK_HAS(tg_last_error(), "tg_sched_step_metric");
    tg_sched_free(s);
    tg_optim_set_lr(o, 0, 0.1); /* the warmups made above have set the rates */
    s = tg_sched_exponential_new(o, 0.5);
    ck_assert_int_eq(tg_sched_step_metric(s, 123.0), 0);
    ck_assert_double_eq(tg_sched_get_lr(s), 0.05);
    tg_sched_free(s);
    ck_assert_int_eq(tg_sched_step(NULL), -1);
    ck_assert_int_eq(tg_sched_step_metric(NULL, 1.0), -1);
    ck_assert(isnan(tg_sched_get_lr(NULL)));
    tg_sched_free(NULL);
    tg_optim_free(empty);
    tg_optim_free(o);
    tg_optim_free(other);
    for (int g = 0; g < 2; g++) {
        tg_tensor_free(ps[g]);
        tg_tensor_free(qs[g]);
    }
}
END_TEST

/* The notes' table {5: 1e-3, 15: 1e-4, 18: 1e-5} gives exactly those rates to group 0. */
START_TEST(test_table_exact) {
    static const double base[2] = {0.01, 0.02};
    tg_tensor *ps[2];
    tg_optim *o = two_groups(base, ps);
    tg_sched *s = tg_sched_table_new(o, 3, (int64_t[]){5, 15, 18}, (double[]){1e-3, 1e-4, 1e-5});
    for (int t = 0; t < 25; t++) {
        double want = t < 5 ? 0.01 : t < 15 ? 1e-3 : t < 18 ? 1e-4 : 1e-5;
        ck_assert_double_eq(tg_sched_get_lr(s), want);
        ck_assert_double_eq_tol(tg_optim_get_lr(o, 1), 2 * want, 1e-18);
        ck_assert_int_eq(tg_sched_step(s), 0);
    }
    tg_sched_free(s);
    tg_optim_free(o);
    for (int g = 0; g < 2; g++) tg_tensor_free(ps[g]);
}
END_TEST

/* ---- early stopping ------------------------------------------------------------------------- */

START_TEST(test_early_stopping) {
    tg_early_stopping es = tg_early_stopping_init(2, 0.01, false);
    ck_assert(isinf(es.best) && es.best > 0);
    ck_assert_int_eq(es.best_update, -1);
    /* 1.0 best; 0.995 is not better by more than 0.01; 0.9 is; then two bad updates stop */
    ck_assert(!tg_early_stopping_update(&es, 1.0));
    ck_assert(!tg_early_stopping_update(&es, 0.995));
    ck_assert_int_eq(es.bad_updates, 1);
    ck_assert(!tg_early_stopping_update(&es, 0.9));
    ck_assert_int_eq(es.bad_updates, 0);
    ck_assert_int_eq(es.best_update, 2);
    ck_assert(!tg_early_stopping_update(&es, 0.95));
    ck_assert(tg_early_stopping_update(&es, NAN));
    ck_assert_double_eq(es.best, 0.9);
    ck_assert_int_eq(es.updates, 5);

    es = tg_early_stopping_init(1, 0.0, true);
    ck_assert(!tg_early_stopping_update(&es, 0.5));
    ck_assert(!tg_early_stopping_update(&es, 0.6));
    ck_assert(tg_early_stopping_update(&es, 0.6)); /* equal is no improvement */
    ck_assert_int_eq(es.best_update, 1);

    es = tg_early_stopping_init(0, 0.0, false); /* patience 0: stop at the first bad update */
    ck_assert(!tg_early_stopping_update(&es, 3.0));
    ck_assert(!tg_early_stopping_update(&es, 2.0));
    ck_assert(tg_early_stopping_update(&es, 2.5));
    ck_assert(!tg_early_stopping_update(NULL, 1.0));
}
END_TEST

static Suite *optim_suite(void) {
    Suite *s = suite_create("optim");
    TCase *golden = tcase_create("golden");
    tcase_set_timeout(golden, 120);
    tcase_add_loop_test(golden, test_train_golden, 0, n_train);
    tcase_add_loop_test(golden, test_clip_golden, 0, n_clip);
    tcase_add_loop_test(golden, test_sched_golden, 0, n_sched);
    suite_add_tcase(s, golden);
    TCase *optim = tcase_create("optimizers");
    tcase_add_test(optim, test_defaults);
    tcase_add_test(optim, test_zero_grad);
    tcase_add_test(optim, test_skips_params_without_grad);
#if defined(__SSE__)
    tcase_add_test(optim, test_subnormal_moments_flushed);
#endif
    tcase_add_test(optim, test_state_entries);
    tcase_add_test(optim, test_add_model_split);
    tcase_add_test(optim, test_resume_from_state);
    tcase_add_test(optim, test_optim_errors);
    tcase_add_test(optim, test_clip_edges);
    suite_add_tcase(s, optim);
    TCase *sched = tcase_create("schedules");
    tcase_add_test(sched, test_sched_resume);
    tcase_add_test(sched, test_sched_state_names);
    tcase_add_test(sched, test_sched_errors);
    tcase_add_test(sched, test_table_exact);
    tcase_add_test(sched, test_early_stopping);
    suite_add_tcase(s, sched);
    return s;
}

int main(void) {
    optim_fx = golden_load(GOLDEN_DIR "/optim.txt");
    sched_fx = golden_load(GOLDEN_DIR "/sched.txt");
    if (!optim_fx || !sched_fx) return EXIT_FAILURE;
    for (const char *name; (name = golden_case_at(optim_fx, n_train + n_clip + 1));) {
        if (strncmp(name, "clip/", 5) == 0) clip_cases[n_clip++] = name;
        else train_cases[n_train++] = name;
        if (n_train == 64 || n_clip == 16) return EXIT_FAILURE;
    }
    while (golden_case_at(sched_fx, n_sched)) n_sched++;
    int rc = run_suite(optim_suite(), CK_NORMAL);
    golden_free(optim_fx);
    golden_free(sched_fx);
    return rc;
}
