/* Finite-difference gradient checking in float64, as torch.autograd.gradcheck: the Jacobian
 * from tg_grad against central differences, entry by entry (or through random projections in
 * fast mode), with a report naming the worst entry. gradgradcheck applies the same check to
 * the function x -> d<v, f(x)>/dx built with create_graph. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/node.h"

tg_gradcheck_opts tg_gradcheck_defaults(void) {
    return (tg_gradcheck_opts){.eps = 1e-6, .atol = 1e-5, .rtol = 1e-3, .fast = false,
                               .fast_probes = 4, .seed = 0};
}

typedef struct checker {
    tg_fn fn;
    void *ctx;
    int n_inputs;
    tg_tensor *const *inputs;
    tg_gradcheck_opts o;
    tg_gradcheck_report *r;
    tg_tape *tp;     /* analytic pass */
    tg_tape *probe;  /* numeric evaluations, reset each time */
    double worst_error; /* |analytic - numeric| of the entry in the report */
} checker;

static int cannot(checker *c, const char *fmt, const char *detail) {
    c->r->passed = false;
    snprintf(c->r->message, sizeof c->r->message, fmt, detail ? detail : "");
    return -1;
}

/* f(inputs) evaluated on the probe tape into out (numel m); false with a message on failure. */
static bool evaluate(checker *c, double *out, int64_t m) {
    tg_tape_reset(c->probe);
    tg_tensor *y = c->fn(c->probe, c->inputs, c->ctx);
    if (!y || y->numel != m) {
        cannot(c, "the function failed when re-evaluated: %s",
               y ? "output size changed" : tg_tape_error(c->probe));
        return false;
    }
    memcpy(out, y->data, (size_t)m * sizeof *out);
    return true;
}

/* Records one comparison and keeps the worst: the failing entry with the largest excess over
 * the tolerance, or while none fails, the entry with the largest |analytic - numeric| (so a
 * passing report shows how close the check came, not an entry where both sides are 0). */
static void compare(checker *c, int input, int64_t in_index, int64_t out_index, double analytic,
                    double numeric) {
    double error = fabs(analytic - numeric);
    double excess = error - (c->o.atol + c->o.rtol * fabs(numeric));
    if (isnan(analytic) || isnan(numeric)) excess = error = INFINITY;
    bool failing = excess > 0, worst_failing = c->r->excess > 0;
    bool worse = c->r->input < 0 || (failing != worst_failing ? failing
                                     : failing ? excess > c->r->excess : error > c->worst_error);
    if (worse) {
        c->worst_error = error;
        c->r->excess = excess;
        c->r->input = input;
        c->r->in_index = in_index;
        c->r->out_index = out_index;
        c->r->analytic = analytic;
        c->r->numeric = numeric;
    }
}

/* Gradients of <seed, y> for every checked input (zeros when y has no history). */
static bool vjp(checker *c, tg_tensor *y, tg_tensor *seed, tg_tensor **grads) {
    int k = 0;
    tg_tensor *checked[c->n_inputs];
    for (int i = 0; i < c->n_inputs; i++)
        if (c->inputs[i]->requires_grad) checked[k++] = c->inputs[i];
    if (!y->requires_grad) {
        for (int i = 0; i < k; i++) grads[i] = tg_zeros_like(c->tp, checked[i]);
        return true;
    }
    if (tg_grad(c->tp, 1, &y, &seed, k, checked, false, grads) != 0) {
        cannot(c, "tg_grad failed: %s", tg_tape_error(c->tp));
        return false;
    }
    return true;
}

static int check_full(checker *c, tg_tensor *y) {
    const int64_t m = y->numel;
    double *plus = malloc((size_t)(m ? m : 1) * 2 * sizeof *plus), *minus = plus + m;
    tg_tensor **rows = calloc((size_t)(m ? m : 1) * (size_t)c->n_inputs, sizeof *rows);
    int status = 0;
    if (!plus || !rows) {
        status = cannot(c, "out of memory%s", NULL);
        goto done;
    }
    /* analytic: one reverse pass per output element gives one row of every input's Jacobian.
     * Each row gets its own one-hot seed: a gradient may be the seed tensor itself (an op whose
     * VJP passes g through), so a shared seed reset after the pass would zero that row. */
    for (int64_t j = 0; j < m && status == 0; j++) {
        tg_tensor *seed = tg_zeros(c->tp, TG_F64, y->ndim, y->shape);
        if (!seed) {
            status = cannot(c, "out of memory%s", NULL);
            break;
        }
        ((double *)seed->data)[j] = 1.0;
        if (!vjp(c, y, seed, rows + j * c->n_inputs)) status = -1;
    }
    /* numeric: one column per input element */
    for (int i = 0, k = 0; i < c->n_inputs && status == 0; i++) {
        tg_tensor *x = c->inputs[i];
        if (!x->requires_grad) continue;
        double *xd = x->data;
        for (int64_t e = 0; e < x->numel && status == 0; e++) {
            double saved = xd[e];
            xd[e] = saved + c->o.eps;
            bool ok = evaluate(c, plus, m);
            xd[e] = saved - c->o.eps;
            ok = ok && evaluate(c, minus, m);
            xd[e] = saved;
            if (!ok) {
                status = -1;
                break;
            }
            for (int64_t j = 0; j < m; j++) {
                double numeric = (plus[j] - minus[j]) / (2 * c->o.eps);
                double analytic = ((double *)rows[j * c->n_inputs + k]->data)[e];
                compare(c, i, e, j, analytic, numeric);
            }
        }
        k++;
    }
done:
    free(plus);
    free(rows);
    return status;
}

/* v^T J u for random u (one input at a time) and v, against the directional difference. */
static int check_fast(checker *c, tg_tensor *y) {
    const int64_t m = y->numel;
    tg_rng *rng = tg_rng_new(c->o.seed);
    double *plus = malloc((size_t)(m ? m : 1) * 2 * sizeof *plus), *minus = plus + m;
    int status = rng && plus ? 0 : cannot(c, "out of memory%s", NULL);
    for (int p = 0; p < c->o.fast_probes && status == 0; p++) {
        tg_tensor *v = tg_randn(c->tp, rng, TG_F64, y->ndim, y->shape, 0.0, 1.0);
        tg_tensor *grads[c->n_inputs];
        if (!v || !vjp(c, y, v, grads)) {
            status = -1;
            break;
        }
        for (int i = 0, k = 0; i < c->n_inputs && status == 0; i++) {
            tg_tensor *x = c->inputs[i];
            if (!x->requires_grad) continue;
            double *xd = x->data, *saved = malloc((size_t)(x->numel ? x->numel : 1) * sizeof *saved);
            tg_tensor *u = tg_randn(c->tp, rng, TG_F64, x->ndim, x->shape, 0.0, 1.0);
            if (!saved || !u) {
                free(saved);
                status = cannot(c, "out of memory%s", NULL);
                break;
            }
            const double *ud = u->data, *gd = grads[k]->data;
            double analytic = 0.0, numeric = 0.0;
            for (int64_t e = 0; e < x->numel; e++) analytic += gd[e] * ud[e];
            memcpy(saved, xd, (size_t)x->numel * sizeof *saved);
            for (int64_t e = 0; e < x->numel; e++) xd[e] = saved[e] + c->o.eps * ud[e];
            bool ok = evaluate(c, plus, m);
            for (int64_t e = 0; e < x->numel; e++) xd[e] = saved[e] - c->o.eps * ud[e];
            ok = ok && evaluate(c, minus, m);
            memcpy(xd, saved, (size_t)x->numel * sizeof *saved);
            free(saved);
            if (!ok) {
                status = -1;
                break;
            }
            const double *vd = v->data;
            for (int64_t j = 0; j < m; j++) numeric += vd[j] * (plus[j] - minus[j]) / (2 * c->o.eps);
            compare(c, i, -1, -1, analytic, numeric);
            k++;
        }
    }
    free(plus);
    tg_rng_free(rng);
    return status;
}

int tg_gradcheck(tg_fn fn, void *ctx, int n_inputs, tg_tensor *const *inputs,
                 const tg_gradcheck_opts *opts, tg_gradcheck_report *report) {
    tg_gradcheck_report scratch;
    checker c = {.fn = fn, .ctx = ctx, .n_inputs = n_inputs, .inputs = inputs,
                 .o = opts ? *opts : tg_gradcheck_defaults(), .r = report ? report : &scratch};
    *c.r = (tg_gradcheck_report){.input = -1, .in_index = -1, .out_index = -1,
                                 .excess = -INFINITY};
    if (!fn || n_inputs < 1 || !inputs) return cannot(&c, "gradcheck: no function or inputs%s", NULL);
    int checked = 0;
    for (int i = 0; i < n_inputs; i++) {
        const tg_tensor *x = inputs[i];
        if (!x || x->tape || (x->dtype != TG_F64 && x->requires_grad)) {
            snprintf(c.r->message, sizeof c.r->message,
                     "gradcheck: input %d must be a persistent tensor, f64 if it requires grad", i);
            return -1;
        }
        checked += x->requires_grad;
    }
    if (checked == 0) return cannot(&c, "gradcheck: no input requires grad%s", NULL);
    if (!(c.o.eps > 0)) return cannot(&c, "gradcheck: eps must be positive%s", NULL);
    c.tp = tg_tape_new();
    c.probe = tg_tape_new();
    int status = -1;
    tg_tensor *y = c.tp && c.probe ? fn(c.tp, inputs, ctx) : NULL;
    if (!c.tp || !c.probe) {
        cannot(&c, "gradcheck: out of memory%s", NULL);
    } else if (!y) {
        cannot(&c, "gradcheck: the function failed: %s", tg_tape_error(c.tp));
    } else if (y->dtype != TG_F64) {
        cannot(&c, "gradcheck: the output must be f64, got %s", tg_dtype_name(y->dtype));
    } else {
        status = c.o.fast ? check_fast(&c, y) : check_full(&c, y);
    }
    if (status == 0) {
        c.r->passed = c.r->excess <= 0;
        if (c.r->input < 0) {
            snprintf(c.r->message, sizeof c.r->message, "passed (no entries to compare)");
        } else {
            snprintf(c.r->message, sizeof c.r->message,
                     "%s: worst entry input %d index %lld output %lld: analytic %.10g numeric "
                     "%.10g (excess %.3g over atol %g + rtol %g)",
                     c.r->passed ? "passed" : "FAILED", c.r->input, (long long)c.r->in_index,
                     (long long)c.r->out_index, c.r->analytic, c.r->numeric, c.r->excess,
                     c.o.atol, c.o.rtol);
        }
        status = c.r->passed ? 0 : 1;
    }
    tg_tape_free(c.tp);
    tg_tape_free(c.probe);
    return status;
}

/* ---- second order ----------------------------------------------------------------------- */

typedef struct second {
    tg_fn fn;
    void *ctx;
    int n_inputs;
    tg_tensor *v; /* fixed output seed */
} second;

/* x -> concat over checked inputs of flatten(d<v, f(x)>/dx), recorded with create_graph. */
static tg_tensor *first_derivative(tg_tape *tp, tg_tensor *const *inputs, void *ctx) {
    const second *s = ctx;
    tg_tensor *y = s->fn(tp, inputs, s->ctx);
    if (!y) return NULL;
    tg_tensor *checked[s->n_inputs], *grads[s->n_inputs];
    int k = 0;
    for (int i = 0; i < s->n_inputs; i++)
        if (inputs[i]->requires_grad) checked[k++] = inputs[i];
    if (!y->requires_grad) {
        for (int i = 0; i < k; i++) grads[i] = tg_zeros_like(tp, checked[i]);
    } else if (tg_grad(tp, 1, &y, &s->v, k, checked, true, grads) != 0) {
        return NULL;
    }
    for (int i = 0; i < k; i++) grads[i] = tg_reshape(tp, grads[i], 1, (int64_t[]){-1});
    return tg_concat(tp, k, grads, 0);
}

int tg_gradgradcheck(tg_fn fn, void *ctx, int n_inputs, tg_tensor *const *inputs,
                     const tg_gradcheck_opts *opts, tg_gradcheck_report *report) {
    tg_gradcheck_report scratch;
    tg_gradcheck_report *r = report ? report : &scratch;
    tg_gradcheck_opts o = opts ? *opts : tg_gradcheck_defaults();
    *r = (tg_gradcheck_report){.input = -1, .in_index = -1, .out_index = -1};
    tg_tape *tp = fn && inputs && n_inputs > 0 ? tg_tape_new() : NULL;
    tg_tensor *y = tp ? fn(tp, inputs, ctx) : NULL;
    if (!y || !tg_is_float(y->dtype)) {
        snprintf(r->message, sizeof r->message, "gradgradcheck: the function failed: %s",
                 tp ? tg_tape_error(tp) : "no function, inputs or memory");
        tg_tape_free(tp);
        return -1;
    }
    tg_rng *rng = tg_rng_new(o.seed ^ 0x5eed);
    second s = {fn, ctx, n_inputs, rng ? tg_randn(NULL, rng, TG_F64, y->ndim, y->shape, 0, 1) : NULL};
    tg_rng_free(rng);
    tg_tape_free(tp);
    if (!s.v) {
        snprintf(r->message, sizeof r->message, "gradgradcheck: out of memory");
        return -1;
    }
    int status = tg_gradcheck(first_derivative, &s, n_inputs, inputs, &o, r);
    tg_tensor_free(s.v);
    return status;
}
