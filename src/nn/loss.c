/* Losses composed from primitives, scaled exactly as PyTorch 1.13's: cross entropy (class
 * indices or probabilities, class weights, ignore_index, label smoothing) and nll_loss through
 * log_softmax and gather; binary cross entropy (on probabilities and, stably, on logits);
 * the regression losses; the multi-class hinge; KL divergence. Every loss validates its
 * arguments first and reports on the tape with its own name and the shapes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor/tensor.h"

/* ---- shared checks ---------------------------------------------------------------------- */

/* r is a reduction fn accepts (batchmean only where allowed). */
static bool reduction_ok(tg_tape *tp, const char *fn, tg_reduction r, bool batchmean_ok) {
    if ((unsigned)r > TG_REDUCTION_BATCHMEAN) {
        tg_fail(tp, "%s: unknown reduction %d", fn, (int)r);
        return false;
    }
    if (r == TG_REDUCTION_BATCHMEAN && !batchmean_ok) {
        tg_fail(tp, "%s: reduction 'batchmean' is only for kl_div; use mean, sum or none", fn);
        return false;
    }
    return true;
}

/* There is a tape (the thread's last error says so otherwise) and every one of the n inputs is
 * non-NULL (else the first error stands, or one naming fn). */
static bool present(tg_tape *tp, const char *fn, int n, tg_tensor *const *in) {
    if (!tp) {
        tg_set_last_error("%s: tape is NULL", fn);
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (!in[i]) {
            tg_fail(tp, "%s: input %d is NULL", fn, i);
            return false;
        }
    }
    return true;
}

static bool same_shape(const tg_tensor *a, const tg_tensor *b) {
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof(int64_t)) == 0;
}

/* x and y: float tensors of one dtype and one shape (PyTorch's losses warn and broadcast when
 * the shapes differ; here that is an error). */
static bool pair_ok(tg_tape *tp, const char *fn, const char *xname, const tg_tensor *x,
                    const char *yname, const tg_tensor *y) {
    if (!tg_is_float(x->dtype) || x->dtype != y->dtype || !same_shape(x, y)) {
        tg_fail(tp, "%s: %s %s%s and %s %s%s must be float tensors of the same dtype and shape",
                fn, xname, tg_dtype_name(x->dtype), TG_SHAPE_STR(x), yname,
                tg_dtype_name(y->dtype), TG_SHAPE_STR(y));
        return false;
    }
    return true;
}

/* w is NULL, or a tensor of x's dtype whose shape broadcasts to x's shape exactly. */
static bool broadcasts_to(tg_tape *tp, const char *fn, const char *wname, const tg_tensor *w,
                          const tg_tensor *x) {
    if (!w) return true;
    bool ok = w->dtype == x->dtype && w->ndim <= x->ndim;
    for (int d = 0; ok && d < w->ndim; d++) {
        int64_t wd = w->shape[w->ndim - 1 - d], xd = x->shape[x->ndim - 1 - d];
        ok = wd == xd || wd == 1;
    }
    if (!ok)
        tg_fail(tp, "%s: %s %s%s does not broadcast to the input %s%s", fn, wname,
                tg_dtype_name(w->dtype), TG_SHAPE_STR(w), tg_dtype_name(x->dtype),
                TG_SHAPE_STR(x));
    return ok;
}

/* NONE keeps loss; SUM sums every element; MEAN divides that sum by the element count;
 * BATCHMEAN divides it by dim 0 (the whole sum for a 0-d loss). */
static tg_tensor *reduce(tg_tape *tp, tg_tensor *loss, tg_reduction r) {
    if (!loss || r == TG_REDUCTION_NONE) return loss;
    if (r == TG_REDUCTION_MEAN) return tg_mean(tp, loss, NULL, 0, false);
    tg_tensor *total = tg_sum(tp, loss, NULL, 0, false);
    if (r == TG_REDUCTION_BATCHMEAN && loss->ndim > 0)
        return tg_div_scalar(tp, total, (double)loss->shape[0]);
    return total;
}

/* A scalar tape tensor of dtype holding v. */
static tg_tensor *scalar(tg_tape *tp, tg_dtype dtype, double v) {
    return tg_full(tp, dtype, 0, NULL, v);
}

/* ---- class-index targets ---------------------------------------------------------------- */

/* A class-index target of x: [N, C, d1, ...] prepared for gathering. */
typedef struct class_target {
    tg_tensor *idx;  /* int64 [N, 1, d1, ...]: the class, 0 where ignored */
    tg_tensor *keep; /* x's dtype [N, d1, ...]: 0 where ignored, else 1 */
} class_target;

/* x: float [N, C, d1, ...]; target: int64 [N, d1, ...] with every entry in [0, C) or equal to
 * *ignore_index (ignore_index NULL: no entry is ignored). Fills ct; false with an error naming
 * fn. */
static bool class_target_prepare(tg_tape *tp, const char *fn, const tg_tensor *x,
                                 const tg_tensor *target, const int64_t *ignore_index,
                                 class_target *ct) {
    bool fits = target->ndim == x->ndim - 1 && target->shape[0] == x->shape[0];
    for (int d = 1; fits && d < target->ndim; d++) fits = target->shape[d] == x->shape[d + 1];
    if (target->dtype != TG_I64 || !fits) {
        int64_t want[TG_MAX_DIMS];
        want[0] = x->shape[0];
        for (int d = 2; d < x->ndim; d++) want[d - 1] = x->shape[d];
        char wbuf[96];
        tg_fail(tp, "%s: class-index target must be i64%s for input %s, got %s%s", fn,
                tg_shape_str(wbuf, sizeof wbuf, x->ndim - 1, want), TG_SHAPE_STR(x),
                tg_dtype_name(target->dtype), TG_SHAPE_STR(target));
        return false;
    }
    const int64_t classes = x->shape[1];
    int64_t ishape[TG_MAX_DIMS];
    ishape[0] = x->shape[0];
    ishape[1] = 1;
    for (int d = 1; d < target->ndim; d++) ishape[d + 1] = target->shape[d];
    ct->idx = tg_zeros(tp, TG_I64, x->ndim, ishape);
    ct->keep = tg_zeros(tp, x->dtype, target->ndim, target->shape);
    if (!ct->idx || !ct->keep) return false;
    const int64_t *t = target->data;
    int64_t *idx = ct->idx->data;
    for (int64_t i = 0; i < target->numel; i++) {
        if (ignore_index && t[i] == *ignore_index) continue;
        if (t[i] < 0 || t[i] >= classes) {
            char ignored[48] = "";
            if (ignore_index)
                snprintf(ignored, sizeof ignored, " nor ignore_index %lld",
                         (long long)*ignore_index);
            tg_fail(tp, "%s: target %lld at position %lld is not a class of input %s (0..%lld)%s",
                    fn, (long long)t[i], (long long)i, TG_SHAPE_STR(x), (long long)(classes - 1),
                    ignored);
            return false;
        }
        idx[i] = t[i];
        if (x->dtype == TG_F32) ((float *)ct->keep->data)[i] = 1.0f;
        else ((double *)ct->keep->data)[i] = 1.0;
    }
    return true;
}

/* weight is NULL or [C] in x's dtype. */
static bool class_weight_ok(tg_tape *tp, const char *fn, const tg_tensor *weight,
                            const tg_tensor *x) {
    if (!weight || (weight->ndim == 1 && weight->shape[0] == x->shape[1] &&
                    weight->dtype == x->dtype))
        return true;
    tg_fail(tp, "%s: weight %s%s must be %s[%lld] (one per class of input %s)", fn,
            tg_dtype_name(weight->dtype), TG_SHAPE_STR(weight), tg_dtype_name(x->dtype),
            (long long)x->shape[1], TG_SHAPE_STR(x));
    return false;
}

/* weight [C] as [1, C, 1, ...] to broadcast against an input of rank ndim. */
static tg_tensor *class_axis_view(tg_tape *tp, tg_tensor *weight, int ndim) {
    int64_t shape[TG_MAX_DIMS];
    for (int d = 0; d < ndim; d++) shape[d] = 1;
    shape[1] = weight->shape[0];
    return tg_reshape(tp, weight, ndim, shape);
}

/* The weight of each target, [N, d1, ...]: weight[target] (or 1) where kept, 0 where ignored. */
static tg_tensor *target_weights(tg_tape *tp, const class_target *ct, tg_tensor *weight) {
    if (!weight) return ct->keep;
    tg_tensor *flat = tg_reshape(tp, ct->idx, 1, (int64_t[]){ct->idx->numel});
    tg_tensor *w = tg_index_select(tp, weight, 0, flat);
    return tg_mul(tp, tg_reshape(tp, w, ct->keep->ndim, ct->keep->shape), ct->keep);
}

/* -w[t] logp[t] per target, reduced; *denom gets sum of w[t] over the kept targets (what the
 * mean divides by). logp: [N, C, d1, ...]. */
static tg_tensor *nll_reduced(tg_tape *tp, tg_tensor *logp, const class_target *ct,
                              tg_tensor *wt, tg_reduction r, tg_tensor **denom) {
    tg_tensor *picked = tg_reshape(tp, tg_gather(tp, logp, 1, ct->idx), ct->keep->ndim,
                                   ct->keep->shape);
    tg_tensor *loss = tg_where(tp, ct->keep, tg_neg(tp, tg_mul(tp, picked, wt)),
                               scalar(tp, logp->dtype, 0.0));
    *denom = tg_sum(tp, wt, NULL, 0, false);
    if (r == TG_REDUCTION_MEAN) return tg_div(tp, tg_sum(tp, loss, NULL, 0, false), *denom);
    return reduce(tp, loss, r);
}

/* The checks nll_loss and cross_entropy share: logits/log-probs [N, C, ...] in f32 or f64,
 * options in range. */
static bool class_input_ok(tg_tape *tp, const char *fn, const tg_tensor *x,
                           const tg_cross_entropy_opts *o) {
    if (!tg_is_float(x->dtype) || x->ndim < 2) {
        tg_fail(tp, "%s: input must be f32 or f64 [N, C] or [N, C, d1, ...], got %s%s", fn,
                tg_dtype_name(x->dtype), TG_SHAPE_STR(x));
        return false;
    }
    if (!(o->label_smoothing >= 0.0 && o->label_smoothing <= 1.0)) {
        tg_fail(tp, "%s: label_smoothing must be in [0, 1], got %g", fn, o->label_smoothing);
        return false;
    }
    return reduction_ok(tp, fn, o->reduction, false) && class_weight_ok(tp, fn, o->weight, x);
}

/* ---- cross entropy and nll -------------------------------------------------------------- */

/* mean, ignore_index -100, no weights, no smoothing (PyTorch's defaults). */
tg_cross_entropy_opts tg_cross_entropy_defaults(void) {
    return (tg_cross_entropy_opts){.reduction = TG_REDUCTION_MEAN, .ignore_index = -100,
                                   .weight = NULL, .label_smoothing = 0.0};
}

/* log_probs: [N, C, d1, ...], target: int64 [N, d1, ...] -> -w[t] log_probs[t] per target,
 * reduced (the mean divides by the summed weights of the kept targets). */
tg_tensor *tg_nll_loss(tg_tape *tp, tg_tensor *log_probs, tg_tensor *target,
                       const tg_cross_entropy_opts *opts) {
    const tg_cross_entropy_opts o = opts ? *opts : tg_cross_entropy_defaults();
    class_target ct;
    tg_tensor *denom;
    if (!present(tp, "nll_loss", 2, (tg_tensor *[]){log_probs, target}) ||
        !class_input_ok(tp, "nll_loss", log_probs, &o))
        return NULL;
    if (o.label_smoothing != 0.0) {
        tg_fail(tp, "nll_loss: label_smoothing must be 0 (got %g); use cross_entropy",
                o.label_smoothing);
        return NULL;
    }
    if (!class_target_prepare(tp, "nll_loss", log_probs, target, &o.ignore_index, &ct))
        return NULL;
    return nll_reduced(tp, log_probs, &ct, target_weights(tp, &ct, o.weight), o.reduction,
                       &denom);
}

/* Class probabilities target [N, C, ...] (already label-smoothed): -sum_c w_c t_c logp_c per
 * position; mean divides by the number of positions, N d1 ... (PyTorch ignores the weights
 * there). */
static tg_tensor *soft_cross_entropy(tg_tape *tp, tg_tensor *logp, tg_tensor *target,
                                     tg_tensor *weight, tg_reduction r) {
    tg_tensor *prod = tg_mul(tp, logp, target);
    if (weight) prod = tg_mul(tp, prod, class_axis_view(tp, weight, logp->ndim));
    int axis = 1;
    tg_tensor *loss = tg_neg(tp, tg_sum(tp, prod, &axis, 1, false));
    if (r != TG_REDUCTION_MEAN) return reduce(tp, loss, r);
    return tg_div_scalar(tp, tg_sum(tp, loss, NULL, 0, false), (double)loss->numel);
}

/* logits: [N, C, d1, ...]; target: int64 class indices [N, d1, ...] or float probabilities
 * [N, C, d1, ...]. nll of log_softmax along axis 1, with PyTorch's label smoothing. */
tg_tensor *tg_cross_entropy(tg_tape *tp, tg_tensor *logits, tg_tensor *target,
                            const tg_cross_entropy_opts *opts) {
    const tg_cross_entropy_opts o = opts ? *opts : tg_cross_entropy_defaults();
    if (!present(tp, "cross_entropy", 2, (tg_tensor *[]){logits, target}) ||
        !class_input_ok(tp, "cross_entropy", logits, &o))
        return NULL;
    const double ls = o.label_smoothing, classes = (double)logits->shape[1];
    if (tg_is_float(target->dtype)) { /* class probabilities */
        if (!pair_ok(tp, "cross_entropy", "logits", logits, "probability target", target))
            return NULL;
        if (o.ignore_index >= 0) {
            tg_fail(tp, "cross_entropy: ignore_index (%lld) is not supported for probability "
                        "targets %s", (long long)o.ignore_index, TG_SHAPE_STR(target));
            return NULL;
        }
        tg_tensor *t = target;
        if (ls > 0.0) t = tg_add_scalar(tp, tg_mul_scalar(tp, target, 1.0 - ls), ls / classes);
        return soft_cross_entropy(tp, tg_log_softmax(tp, logits, 1), t, o.weight, o.reduction);
    }
    class_target ct;
    if (!class_target_prepare(tp, "cross_entropy", logits, target, &o.ignore_index, &ct))
        return NULL;
    tg_tensor *logp = tg_log_softmax(tp, logits, 1), *denom;
    tg_tensor *wt = target_weights(tp, &ct, o.weight);
    tg_tensor *nll = nll_reduced(tp, logp, &ct, wt, o.reduction, &denom);
    if (ls == 0.0) return nll;
    /* PyTorch: (1 - ls) nll + ls/C * smooth, smooth = -sum_c w_c logp_c at kept positions,
     * reduced like nll (the mean divides by the same sum of target weights). */
    tg_tensor *wlogp = o.weight ? tg_mul(tp, logp, class_axis_view(tp, o.weight, logp->ndim))
                                : logp;
    int axis = 1;
    tg_tensor *smooth = tg_where(tp, ct.keep, tg_neg(tp, tg_sum(tp, wlogp, &axis, 1, false)),
                                 scalar(tp, logits->dtype, 0.0));
    if (o.reduction == TG_REDUCTION_MEAN)
        smooth = tg_div(tp, tg_sum(tp, smooth, NULL, 0, false), denom);
    else
        smooth = reduce(tp, smooth, o.reduction);
    return tg_add(tp, tg_mul_scalar(tp, nll, 1.0 - ls), tg_mul_scalar(tp, smooth, ls / classes));
}

/* ---- binary cross entropy --------------------------------------------------------------- */

/* max(log q, -100) as PyTorch clamps it, with a zero (not NaN) gradient where q == 0. */
static tg_tensor *clamped_log(tg_tape *tp, tg_tensor *q) {
    tg_tensor *pos = tg_gt_scalar(tp, q, 0.0);
    tg_tensor *safe = tg_where(tp, pos, q, scalar(tp, q->dtype, 1.0));
    tg_tensor *logq = tg_clamp(tp, tg_log(tp, safe), -100.0, INFINITY);
    return tg_where(tp, pos, logq, scalar(tp, q->dtype, -100.0));
}

/* p, y: same shape, p in [0, 1]: -(y log p + (1 - y) log(1 - p)), logs clamped at -100, times
 * weight (broadcast), reduced. */
tg_tensor *tg_binary_cross_entropy(tg_tape *tp, tg_tensor *p, tg_tensor *y, tg_tensor *weight,
                                   tg_reduction reduction) {
    const char *fn = "binary_cross_entropy";
    if (!present(tp, fn, 2, (tg_tensor *[]){p, y}) || !pair_ok(tp, fn, "input", p, "target", y) ||
        !broadcasts_to(tp, fn, "weight", weight, p) || !reduction_ok(tp, fn, reduction, false))
        return NULL;
    for (int64_t i = 0; i < p->numel; i++) {
        double v = tg_tensor_get(p, i);
        if (!(v >= 0.0 && v <= 1.0)) {
            tg_fail(tp, "%s: input %s must hold probabilities in [0, 1]; element %lld is %g", fn,
                    TG_SHAPE_STR(p), (long long)i, v);
            return NULL;
        }
    }
    /* -(y log p + (1 - y) log(1 - p)) */
    tg_tensor *pos = tg_mul(tp, y, clamped_log(tp, p));
    tg_tensor *neg = tg_mul(tp, tg_rsub_scalar(tp, 1.0, y),
                            clamped_log(tp, tg_rsub_scalar(tp, 1.0, p)));
    tg_tensor *loss = tg_neg(tp, tg_add(tp, pos, neg));
    if (weight) loss = tg_mul(tp, loss, weight);
    return reduce(tp, loss, reduction);
}

/* x (logits), y: same shape; weight and pos_weight broadcast to it. Stable in x. */
tg_tensor *tg_binary_cross_entropy_with_logits(tg_tape *tp, tg_tensor *x, tg_tensor *y,
                                               tg_tensor *weight, tg_tensor *pos_weight,
                                               tg_reduction reduction) {
    const char *fn = "binary_cross_entropy_with_logits";
    if (!present(tp, fn, 2, (tg_tensor *[]){x, y}) || !pair_ok(tp, fn, "input", x, "target", y) ||
        !broadcasts_to(tp, fn, "weight", weight, x) ||
        !broadcasts_to(tp, fn, "pos_weight", pos_weight, x) ||
        !reduction_ok(tp, fn, reduction, false))
        return NULL;
    /* PyTorch's form: softplus(-x) = log(exp(-m) + exp(-x - m)) + m with m = max(-x, 0); the
     * value does not depend on m, so m is detached. */
    tg_tensor *m = tg_detach(tp, tg_clamp(tp, tg_neg(tp, x), 0.0, INFINITY));
    tg_tensor *sp = tg_add(tp, tg_log(tp, tg_add(tp, tg_exp(tp, tg_neg(tp, m)),
                                                 tg_exp(tp, tg_sub(tp, tg_neg(tp, x), m)))),
                           m);
    /* (1 - y) x + (1 + (pos_weight - 1) y) softplus(-x) */
    if (pos_weight)
        sp = tg_mul(tp, tg_add_scalar(tp, tg_mul(tp, tg_sub_scalar(tp, pos_weight, 1.0), y), 1.0),
                    sp);
    tg_tensor *loss = tg_add(tp, tg_mul(tp, tg_rsub_scalar(tp, 1.0, y), x), sp);
    if (weight) loss = tg_mul(tp, loss, weight);
    return reduce(tp, loss, reduction);
}

/* ---- regression losses ------------------------------------------------------------------ */

/* x - y after the checks every elementwise regression loss shares; NULL on error. */
static tg_tensor *difference(tg_tape *tp, const char *fn, tg_tensor *x, tg_tensor *y,
                             tg_reduction reduction) {
    if (!present(tp, fn, 2, (tg_tensor *[]){x, y}) || !pair_ok(tp, fn, "input", x, "target", y) ||
        !reduction_ok(tp, fn, reduction, false))
        return NULL;
    return tg_sub(tp, x, y);
}

/* (x - y)^2, reduced. */
tg_tensor *tg_mse_loss(tg_tape *tp, tg_tensor *x, tg_tensor *y, tg_reduction reduction) {
    tg_tensor *d = difference(tp, "mse_loss", x, y, reduction);
    return d ? reduce(tp, tg_square(tp, d), reduction) : NULL;
}

/* |x - y|, reduced. */
tg_tensor *tg_l1_loss(tg_tape *tp, tg_tensor *x, tg_tensor *y, tg_reduction reduction) {
    tg_tensor *d = difference(tp, "l1_loss", x, y, reduction);
    return d ? reduce(tp, tg_abs(tp, d), reduction) : NULL;
}

/* |d| < beta ? 0.5 d^2 / beta : |d| - 0.5 beta; beta == 0 is the L1 loss (as PyTorch). */
tg_tensor *tg_smooth_l1_loss(tg_tape *tp, tg_tensor *x, tg_tensor *y, double beta,
                             tg_reduction reduction) {
    if (!(beta >= 0.0)) {
        tg_fail(tp, "smooth_l1_loss: beta must be >= 0, got %g", beta);
        return NULL;
    }
    tg_tensor *d = difference(tp, "smooth_l1_loss", x, y, reduction);
    if (!d) return NULL;
    tg_tensor *ad = tg_abs(tp, d);
    if (beta == 0.0) return reduce(tp, ad, reduction);
    tg_tensor *loss = tg_where(tp, tg_lt_scalar(tp, ad, beta),
                               tg_mul_scalar(tp, tg_square(tp, d), 0.5 / beta),
                               tg_sub_scalar(tp, ad, 0.5 * beta));
    return reduce(tp, loss, reduction);
}

/* |d| < delta ? 0.5 d^2 : delta (|d| - 0.5 delta) */
tg_tensor *tg_huber_loss(tg_tape *tp, tg_tensor *x, tg_tensor *y, double delta,
                         tg_reduction reduction) {
    if (!(delta > 0.0)) {
        tg_fail(tp, "huber_loss: delta must be > 0, got %g", delta);
        return NULL;
    }
    tg_tensor *d = difference(tp, "huber_loss", x, y, reduction);
    if (!d) return NULL;
    tg_tensor *ad = tg_abs(tp, d);
    tg_tensor *loss = tg_where(tp, tg_lt_scalar(tp, ad, delta),
                               tg_mul_scalar(tp, tg_square(tp, d), 0.5),
                               tg_mul_scalar(tp, tg_sub_scalar(tp, ad, 0.5 * delta), delta));
    return reduce(tp, loss, reduction);
}

/* ---- multi-class hinge ------------------------------------------------------------------ */

/* x: [N, C], y: int64 [N]. Per sample: sum over i != y of max(0, margin - x[y] + x[i])^p,
 * times weight[y], divided by C -> [N], then reduced. */
tg_tensor *tg_multi_margin_loss(tg_tape *tp, tg_tensor *x, tg_tensor *y, int p, double margin,
                                tg_tensor *weight, tg_reduction reduction) {
    const char *fn = "multi_margin_loss";
    const tg_cross_entropy_opts o = {.reduction = reduction, .weight = weight};
    if (!present(tp, fn, 2, (tg_tensor *[]){x, y})) return NULL;
    if (x->ndim != 2) {
        tg_fail(tp, "%s: input must be [N, C], got %s", fn, TG_SHAPE_STR(x));
        return NULL;
    }
    if (p != 1 && p != 2) {
        tg_fail(tp, "%s: p must be 1 or 2, got %d", fn, p);
        return NULL;
    }
    class_target ct;
    if (!class_input_ok(tp, fn, x, &o) || !class_target_prepare(tp, fn, x, y, NULL, &ct))
        return NULL;
    const int64_t classes = x->shape[1];
    tg_tensor *xy = tg_gather(tp, x, 1, ct.idx); /* [N, 1] */
    tg_tensor *z = tg_relu(tp, tg_add(tp, tg_rsub_scalar(tp, margin, xy), x));
    if (p == 2) z = tg_square(tp, z);
    tg_tensor *others = tg_rsub_scalar(tp, 1.0, tg_one_hot(tp, y, classes, x->dtype));
    z = tg_mul(tp, z, others);
    if (weight) z = tg_mul(tp, z, tg_unsqueeze(tp, tg_index_select(tp, weight, 0, y), 1));
    int axis = 1;
    tg_tensor *loss = tg_div_scalar(tp, tg_sum(tp, z, &axis, 1, false), (double)classes);
    return reduce(tp, loss, reduction);
}

/* ---- KL divergence ---------------------------------------------------------------------- */

/* log_target: exp(t) (t - input); else t log t - t input with 0 log 0 = 0 (xlogy). */
tg_tensor *tg_kl_div(tg_tape *tp, tg_tensor *input, tg_tensor *target, bool log_target,
                     tg_reduction reduction) {
    const char *fn = "kl_div";
    if (!present(tp, fn, 2, (tg_tensor *[]){input, target}) ||
        !pair_ok(tp, fn, "input", input, "target", target) ||
        !reduction_ok(tp, fn, reduction, true))
        return NULL;
    tg_tensor *loss;
    if (log_target) {
        loss = tg_mul(tp, tg_exp(tp, target), tg_sub(tp, target, input));
    } else {
        tg_tensor *pos = tg_gt_scalar(tp, target, 0.0);
        tg_tensor *safe = tg_where(tp, pos, target, scalar(tp, target->dtype, 1.0));
        loss = tg_sub(tp, tg_mul(tp, target, tg_log(tp, safe)), tg_mul(tp, target, input));
    }
    return reduce(tp, loss, reduction);
}
