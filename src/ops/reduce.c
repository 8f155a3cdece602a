/* Reductions. Two primitives: sum_to (sum down to a shape that broadcasts back; VJP expand)
 * and max_axis (max or min along one axis with keepdim, remembering the arg-index; VJP a
 * scatter-add of the gradient to that index). sum, mean, max and min over any set of axes are
 * compositions of those with reshape and permute. */
#include <string.h>

#include "ops/op.h"

/* ---- sum_to ----------------------------------------------------------------------------- */

static void sum_to_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_expand(tp, g, TG_IN(n, 0)->ndim, TG_IN(n, 0)->shape);
}
static const tg_op sum_to_op = {"sum_to", sum_to_vjp};

tg_tensor *tg_sum_to(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape) {
    if (!tg_op_begin(tp, "sum_to", 1, &x) || !tg_op_same_float(tp, "sum_to", 1, &x)) return NULL;
    char why[160];
    if (!tg_shape_valid(ndim, shape, why, sizeof why)) {
        tg_fail(tp, "sum_to: %s", why);
        return NULL;
    }
    if (!tg_shape_broadcasts_to(ndim, shape, x->ndim, x->shape)) {
        tg_fail(tp, "sum_to: %s does not broadcast to the input's shape %s",
                tg_shape_str((char[96]){0}, 96, ndim, shape), TG_SHAPE_STR(x));
        return NULL;
    }
    if (tg_shape_equal(ndim, shape, x->ndim, x->shape)) return x;
    tg_tensor *out = tg_tensor_alloc(tp, x->dtype, ndim, shape);
    if (!out) return NULL;
    int64_t out_strides[TG_MAX_DIMS];
    tg_broadcast_strides(ndim, shape, x->ndim, x->shape, out_strides);
    tg_k_sum(x->dtype, x->ndim, x->shape, out_strides, x->data, out->data, out->numel);
    return tg_record(tp, &sum_to_op, out, 1, &x, NULL, 0) ? out : NULL;
}

/* ---- axes ------------------------------------------------------------------------------- */

/* Marks the reduced axes (all when naxes == 0) and fills keep (x's shape with reduced dims 1)
 * and out (keep, or keep without the reduced dims). Returns false with an error on tp. */
static bool reduced_shapes(tg_tape *tp, const char *op, const tg_tensor *x, const int *axes,
                           int naxes, bool keepdim, bool *reduced, int64_t *keep, int *out_ndim,
                           int64_t *out) {
    for (int d = 0; d < x->ndim; d++) reduced[d] = !axes || naxes == 0;
    if (naxes < 0 || naxes > x->ndim) {
        tg_fail(tp, "%s: %d axes given for shape %s", op, naxes, TG_SHAPE_STR(x));
        return false;
    }
    for (int i = 0; axes && i < naxes; i++) {
        int a = tg_normalize_axis(axes[i], x->ndim);
        if (a < 0 || reduced[a]) {
            tg_fail(tp, "%s: axis %d is %s for shape %s", op, axes[i],
                    a < 0 ? "out of range" : "repeated", TG_SHAPE_STR(x));
            return false;
        }
        reduced[a] = true;
    }
    *out_ndim = 0;
    for (int d = 0; d < x->ndim; d++) {
        keep[d] = reduced[d] ? 1 : x->shape[d];
        if (keepdim || !reduced[d]) out[(*out_ndim)++] = keep[d];
    }
    return true;
}

tg_tensor *tg_sum(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, bool keepdim) {
    if (!tg_op_begin(tp, "sum", 1, &x) || !tg_op_same_float(tp, "sum", 1, &x)) return NULL;
    bool reduced[TG_MAX_DIMS];
    int64_t keep[TG_MAX_DIMS], out[TG_MAX_DIMS];
    int out_ndim;
    if (!reduced_shapes(tp, "sum", x, axes, naxes, keepdim, reduced, keep, &out_ndim, out))
        return NULL;
    return tg_reshape(tp, tg_sum_to(tp, x, x->ndim, keep), out_ndim, out);
}

tg_tensor *tg_mean(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, bool keepdim) {
    if (!tg_op_begin(tp, "mean", 1, &x) || !tg_op_same_float(tp, "mean", 1, &x)) return NULL;
    bool reduced[TG_MAX_DIMS];
    int64_t keep[TG_MAX_DIMS], out[TG_MAX_DIMS];
    int out_ndim;
    if (!reduced_shapes(tp, "mean", x, axes, naxes, keepdim, reduced, keep, &out_ndim, out))
        return NULL;
    int64_t count = 1;
    for (int d = 0; d < x->ndim; d++) count *= reduced[d] ? x->shape[d] : 1;
    tg_tensor *s = tg_reshape(tp, tg_sum_to(tp, x, x->ndim, keep), out_ndim, out);
    return tg_div_scalar(tp, s, (double)count); /* an empty mean is NaN, as in PyTorch */
}

/* ---- max_axis --------------------------------------------------------------------------- */

typedef struct max_params {
    int axis;
    tg_tensor *idx; /* [.., 1, ..]: where each slice's extreme is */
} max_params;

static void max_axis_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    const max_params *p = TG_PARAMS(n, max_params);
    gin[0] = tg_scatter_add(tp, tg_zeros_like(tp, TG_IN(n, 0)), p->axis, p->idx, g);
}
static const tg_op max_axis_op = {"max", max_axis_vjp}, min_axis_op = {"min", max_axis_vjp};

/* Extreme along one (normalized) axis with keepdim. */
static tg_tensor *max_axis(tg_tape *tp, const tg_op *op, tg_tensor *x, int axis) {
    if (x->shape[axis] == 0) {
        tg_fail(tp, "%s: cannot reduce the empty axis %d of shape %s", op->name, axis,
                TG_SHAPE_STR(x));
        return NULL;
    }
    int64_t keep[TG_MAX_DIMS], outer = 1, inner = 1;
    for (int d = 0; d < x->ndim; d++) {
        keep[d] = d == axis ? 1 : x->shape[d];
        if (d < axis) outer *= x->shape[d];
        if (d > axis) inner *= x->shape[d];
    }
    tg_tensor *idx = tg_tensor_alloc(tp, TG_I64, x->ndim, keep);
    tg_tensor *out = idx ? tg_tensor_alloc(tp, x->dtype, x->ndim, keep) : NULL;
    if (!out) return NULL;
    tg_k_max_axis(x->dtype, op == &min_axis_op, outer, x->shape[axis], inner, x->data, out->data,
                  idx->data);
    max_params p = {axis, idx};
    return tg_record(tp, op, out, 1, &x, &p, sizeof p) ? out : NULL;
}

/* max or min over axes: one axis directly; several are moved to the back and merged first. */
static tg_tensor *extreme(tg_tape *tp, const tg_op *op, tg_tensor *x, const int *axes, int naxes,
                          bool keepdim) {
    if (!tg_op_begin(tp, op->name, 1, &x) || !tg_op_same_float(tp, op->name, 1, &x)) return NULL;
    bool reduced[TG_MAX_DIMS];
    int64_t keep[TG_MAX_DIMS], out[TG_MAX_DIMS];
    int out_ndim, nred = 0;
    if (!reduced_shapes(tp, op->name, x, axes, naxes, keepdim, reduced, keep, &out_ndim, out))
        return NULL;
    if (x->ndim == 0) return x;
    int perm[TG_MAX_DIMS], np = 0, first = -1;
    for (int d = 0; d < x->ndim; d++)
        if (!reduced[d]) perm[np++] = d;
    for (int d = 0; d < x->ndim; d++)
        if (reduced[d]) {
            perm[np++] = d;
            nred++;
            if (first < 0) first = d;
        }
    tg_tensor *m;
    if (nred == 1) {
        m = max_axis(tp, op, x, first);
    } else {
        int64_t merged[TG_MAX_DIMS];
        int nm = 0;
        int64_t r = 1;
        for (int d = 0; d < x->ndim; d++) {
            if (reduced[d]) r *= x->shape[d];
            else merged[nm++] = x->shape[d];
        }
        merged[nm++] = r;
        tg_tensor *moved = tg_reshape(tp, tg_permute(tp, x, perm), nm, merged);
        m = moved ? max_axis(tp, op, moved, nm - 1) : NULL;
    }
    return tg_reshape(tp, m, out_ndim, out);
}

tg_tensor *tg_max(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, bool keepdim) {
    return extreme(tp, &max_axis_op, x, axes, naxes, keepdim);
}

tg_tensor *tg_min(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, bool keepdim) {
    return extreme(tp, &min_axis_op, x, axes, naxes, keepdim);
}

tg_tensor *tg_argmax(tg_tape *tp, tg_tensor *x, int axis, bool keepdim) {
    if (!tg_op_begin(tp, "argmax", 1, &x) || !tg_op_same_float(tp, "argmax", 1, &x) ||
        !tg_op_axis(tp, "argmax", &axis, x, x->ndim))
        return NULL;
    if (x->shape[axis] == 0) {
        tg_fail(tp, "argmax: cannot reduce the empty axis %d of shape %s", axis, TG_SHAPE_STR(x));
        return NULL;
    }
    int64_t keep[TG_MAX_DIMS], out[TG_MAX_DIMS], outer = 1, inner = 1;
    int nout = 0;
    for (int d = 0; d < x->ndim; d++) {
        keep[d] = d == axis ? 1 : x->shape[d];
        if (d < axis) outer *= x->shape[d];
        if (d > axis) inner *= x->shape[d];
        if (keepdim || d != axis) out[nout++] = keep[d];
    }
    tg_tensor *idx = tg_tensor_alloc(tp, TG_I64, nout, out);
    tg_tensor *val = tg_tensor_alloc(tp, x->dtype, nout, out); /* the kernel's running maxima */
    if (!idx || !val) return NULL;
    tg_k_max_axis(x->dtype, false, outer, x->shape[axis], inner, x->data, val->data, idx->data);
    return idx;
}
