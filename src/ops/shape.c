/* Shape primitives: reshape (a view), permute and expand (copies), slice and its adjoint
 * unslice, concat, constant pad, detach. squeeze, unsqueeze and transpose are reshape and
 * permute. Each VJP is the inverse movement of the gradient. */
#include <string.h>

#include "ops/op.h"

/* ---- reshape ---------------------------------------------------------------------------- */

static void reshape_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_reshape(tp, g, TG_IN(n, 0)->ndim, TG_IN(n, 0)->shape);
}
static const tg_op reshape_op = {"reshape", reshape_vjp};

tg_tensor *tg_reshape(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape) {
    if (!tg_op_begin(tp, "reshape", 1, &x)) return NULL;
    if (ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && !shape)) {
        tg_fail(tp, "reshape: rank %d is outside 0..%d (or shape is NULL)", ndim, TG_MAX_DIMS);
        return NULL;
    }
    int64_t s[TG_MAX_DIMS], known = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        s[d] = shape[d];
        if (s[d] == -1 && infer < 0) {
            infer = d;
        } else if (s[d] < 0) {
            tg_fail(tp, "reshape: cannot view %s as %s: bad size %lld at dim %d (one -1 at most)",
                    TG_SHAPE_STR(x), tg_shape_str((char[96]){0}, 96, ndim, shape),
                    (long long)s[d], d);
            return NULL;
        } else {
            known *= s[d];
        }
    }
    if (infer >= 0) s[infer] = known ? x->numel / known : 0;
    if (tg_shape_numel(ndim, s) != x->numel) {
        tg_fail(tp, "reshape: cannot view %s (%lld elements) as %s", TG_SHAPE_STR(x),
                (long long)x->numel, tg_shape_str((char[96]){0}, 96, ndim, shape));
        return NULL;
    }
    if (tg_shape_equal(ndim, s, x->ndim, x->shape)) return x;
    tg_tensor *out = tg_tensor_view(tp, x, ndim, s);
    if (!out) return NULL;
    return tg_record(tp, &reshape_op, out, 1, &x, NULL, 0) ? out : NULL;
}

tg_tensor *tg_squeeze(tg_tape *tp, tg_tensor *x, int axis) {
    if (!tg_op_begin(tp, "squeeze", 1, &x) || !tg_op_axis(tp, "squeeze", &axis, x, x->ndim))
        return NULL;
    if (x->shape[axis] != 1) {
        tg_fail(tp, "squeeze: axis %d of %s has size %lld, not 1", axis, TG_SHAPE_STR(x),
                (long long)x->shape[axis]);
        return NULL;
    }
    int64_t s[TG_MAX_DIMS];
    for (int d = 0, j = 0; d < x->ndim; d++)
        if (d != axis) s[j++] = x->shape[d];
    return tg_reshape(tp, x, x->ndim - 1, s);
}

tg_tensor *tg_unsqueeze(tg_tape *tp, tg_tensor *x, int axis) {
    if (!tg_op_begin(tp, "unsqueeze", 1, &x)) return NULL;
    if (x->ndim == TG_MAX_DIMS) {
        tg_fail(tp, "unsqueeze: %s already has %d dims", TG_SHAPE_STR(x), TG_MAX_DIMS);
        return NULL;
    }
    if (!tg_op_axis(tp, "unsqueeze", &axis, x, x->ndim + 1)) return NULL;
    int64_t s[TG_MAX_DIMS];
    for (int d = 0, j = 0; d <= x->ndim; d++) s[d] = d == axis ? 1 : x->shape[j++];
    return tg_reshape(tp, x, x->ndim + 1, s);
}

tg_tensor *tg_detach(tg_tape *tp, tg_tensor *x) {
    if (!tg_op_begin(tp, "detach", 1, &x)) return NULL;
    return tg_tensor_view(tp, x, x->ndim, x->shape);
}

/* ---- permute ---------------------------------------------------------------------------- */

typedef struct perm_params {
    int perm[TG_MAX_DIMS];
} perm_params;

static void permute_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    const int *perm = TG_PARAMS(n, perm_params)->perm;
    int inverse[TG_MAX_DIMS];
    for (int d = 0; d < g->ndim; d++) inverse[perm[d]] = d;
    gin[0] = tg_permute(tp, g, inverse);
}
static const tg_op permute_op = {"permute", permute_vjp};

tg_tensor *tg_permute(tg_tape *tp, tg_tensor *x, const int *perm) {
    if (!tg_op_begin(tp, "permute", 1, &x)) return NULL;
    perm_params p;
    bool seen[TG_MAX_DIMS] = {false}, identity = true;
    int64_t shape[TG_MAX_DIMS], xs[TG_MAX_DIMS], src[TG_MAX_DIMS], dst[TG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        int a = perm ? tg_normalize_axis(perm[d], x->ndim) : -1;
        if (a < 0 || seen[a]) {
            tg_fail(tp, "permute: the axes given are not a permutation of the %d dims of %s",
                    x->ndim, TG_SHAPE_STR(x));
            return NULL;
        }
        seen[a] = true;
        p.perm[d] = a;
        identity &= a == d;
    }
    if (identity) return x;
    tg_contiguous_strides(x->ndim, x->shape, xs);
    for (int d = 0; d < x->ndim; d++) {
        shape[d] = x->shape[p.perm[d]];
        src[d] = xs[p.perm[d]];
    }
    tg_tensor *out = tg_tensor_alloc(tp, x->dtype, x->ndim, shape);
    if (!out) return NULL;
    tg_contiguous_strides(x->ndim, shape, dst);
    tg_k_strided_copy(tg_dtype_size(x->dtype), x->ndim, shape, src, x->data, dst, out->data);
    return tg_record(tp, &permute_op, out, 1, &x, &p, sizeof p) ? out : NULL;
}

tg_tensor *tg_transpose(tg_tape *tp, tg_tensor *x, int axis0, int axis1) {
    if (!tg_op_begin(tp, "transpose", 1, &x) || !tg_op_axis(tp, "transpose", &axis0, x, x->ndim) ||
        !tg_op_axis(tp, "transpose", &axis1, x, x->ndim))
        return NULL;
    int perm[TG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) perm[d] = d;
    perm[axis0] = axis1;
    perm[axis1] = axis0;
    return tg_permute(tp, x, perm);
}

/* ---- expand ----------------------------------------------------------------------------- */

static void expand_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_sum_to(tp, g, TG_IN(n, 0)->ndim, TG_IN(n, 0)->shape);
}
static const tg_op expand_op = {"expand", expand_vjp};

tg_tensor *tg_expand(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape) {
    if (!tg_op_begin(tp, "expand", 1, &x)) return NULL;
    char why[160];
    if (!tg_shape_valid(ndim, shape, why, sizeof why)) {
        tg_fail(tp, "expand: %s", why);
        return NULL;
    }
    if (!tg_shape_broadcasts_to(x->ndim, x->shape, ndim, shape)) {
        tg_fail(tp, "expand: %s cannot be broadcast to %s", TG_SHAPE_STR(x),
                tg_shape_str((char[96]){0}, 96, ndim, shape));
        return NULL;
    }
    if (tg_shape_equal(ndim, shape, x->ndim, x->shape)) return x;
    tg_tensor *out = tg_tensor_alloc(tp, x->dtype, ndim, shape);
    if (!out) return NULL;
    int64_t src[TG_MAX_DIMS], dst[TG_MAX_DIMS];
    tg_broadcast_strides(x->ndim, x->shape, ndim, shape, src);
    tg_contiguous_strides(ndim, shape, dst);
    tg_k_strided_copy(tg_dtype_size(x->dtype), ndim, shape, src, x->data, dst, out->data);
    return tg_record(tp, &expand_op, out, 1, &x, NULL, 0) ? out : NULL;
}

/* ---- slice and unslice ------------------------------------------------------------------ */

typedef struct slice_params {
    int axis;
    int64_t start, step;
    int64_t full;   /* unslice: the length of the axis being restored */
} slice_params;

/* The strides of t with the axis stride multiplied by step, and the element offset of start. */
static int64_t stepped_strides(const tg_tensor *t, int axis, int64_t start, int64_t step,
                               int64_t *strides) {
    tg_contiguous_strides(t->ndim, t->shape, strides);
    int64_t offset = start * strides[axis];
    strides[axis] *= step;
    return offset;
}

static tg_tensor *unslice(tg_tape *tp, tg_tensor *g, int axis, int64_t start, int64_t step,
                          int64_t full);

static void slice_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    const slice_params *p = TG_PARAMS(n, slice_params);
    gin[0] = unslice(tp, g, p->axis, p->start, p->step, TG_IN(n, 0)->shape[p->axis]);
}
static void unslice_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    const slice_params *p = TG_PARAMS(n, slice_params);
    int64_t len = TG_IN(n, 0)->shape[p->axis];
    gin[0] = tg_slice(tp, g, p->axis, p->start, p->start + len * p->step, p->step);
}
static const tg_op slice_op = {"slice", slice_vjp}, unslice_op = {"unslice", unslice_vjp};

tg_tensor *tg_slice(tg_tape *tp, tg_tensor *x, int axis, int64_t start, int64_t stop,
                    int64_t step) {
    if (!tg_op_begin(tp, "slice", 1, &x) || !tg_op_axis(tp, "slice", &axis, x, x->ndim))
        return NULL;
    if (step < 1) {
        tg_fail(tp, "slice: step must be >= 1, got %lld (axis %d of %s)", (long long)step, axis,
                TG_SHAPE_STR(x));
        return NULL;
    }
    const int64_t dim = x->shape[axis];
    if (start < 0) start += dim;
    if (stop < 0) stop += dim;
    start = start < 0 ? 0 : start > dim ? dim : start;
    stop = stop < start ? start : stop > dim ? dim : stop;
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = (stop - start + step - 1) / step;
    if (shape[axis] == dim) return x;
    tg_tensor *out = tg_tensor_alloc(tp, x->dtype, x->ndim, shape);
    if (!out) return NULL;
    int64_t src[TG_MAX_DIMS], dst[TG_MAX_DIMS];
    int64_t offset = stepped_strides(x, axis, start, step, src);
    tg_contiguous_strides(x->ndim, shape, dst);
    size_t es = tg_dtype_size(x->dtype);
    tg_k_strided_copy(es, x->ndim, shape, src, (const char *)x->data + offset * (int64_t)es, dst,
                      out->data);
    slice_params p = {axis, start, step, dim};
    return tg_record(tp, &slice_op, out, 1, &x, &p, sizeof p) ? out : NULL;
}

/* Zeros with axis of length `full`, and g at positions start, start + step, ... (slice's VJP). */
static tg_tensor *unslice(tg_tape *tp, tg_tensor *g, int axis, int64_t start, int64_t step,
                          int64_t full) {
    if (!g) return NULL;
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, g->shape, sizeof shape);
    shape[axis] = full;
    tg_tensor *out = tg_zeros(tp, g->dtype, g->ndim, shape);
    if (!out) return NULL;
    int64_t src[TG_MAX_DIMS], dst[TG_MAX_DIMS];
    tg_contiguous_strides(g->ndim, g->shape, src);
    int64_t offset = stepped_strides(out, axis, start, step, dst);
    size_t es = tg_dtype_size(g->dtype);
    tg_k_strided_copy(es, g->ndim, g->shape, src, g->data, dst,
                      (char *)out->data + offset * (int64_t)es);
    slice_params p = {axis, start, step, full};
    return tg_record(tp, &unslice_op, out, 1, &g, &p, sizeof p) ? out : NULL;
}

/* ---- concat ----------------------------------------------------------------------------- */

typedef struct concat_params {
    int axis;
} concat_params;

static void concat_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    int axis = TG_PARAMS(n, concat_params)->axis;
    int64_t offset = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = TG_IN(n, i)->shape[axis];
        if (need[i]) gin[i] = tg_slice(tp, g, axis, offset, offset + len, 1);
        offset += len;
    }
}
static const tg_op concat_op = {"concat", concat_vjp};

tg_tensor *tg_concat(tg_tape *tp, int n, tg_tensor *const *xs, int axis) {
    if (tp && (n < 1 || !xs)) {
        tg_fail(tp, "concat: needs at least one tensor");
        return NULL;
    }
    if (!tg_op_begin(tp, "concat", n, xs) || !tg_op_same_float(tp, "concat", n, xs)) return NULL;
    const tg_tensor *x0 = xs[0];
    if (!tg_op_axis(tp, "concat", &axis, x0, x0->ndim)) return NULL;
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[axis] = 0;
    for (int i = 0; i < n; i++) {
        bool fits = xs[i]->ndim == x0->ndim;
        for (int d = 0; fits && d < x0->ndim; d++)
            fits = d == axis || xs[i]->shape[d] == x0->shape[d];
        if (!fits) {
            tg_fail(tp, "concat: input %d %s does not match input 0 %s outside axis %d", i,
                    TG_SHAPE_STR(xs[i]), TG_SHAPE_STR(x0), axis);
            return NULL;
        }
        shape[axis] += xs[i]->shape[axis];
    }
    tg_tensor *out = tg_tensor_alloc(tp, x0->dtype, x0->ndim, shape);
    if (!out) return NULL;
    int64_t dst[TG_MAX_DIMS], offset = 0;
    size_t es = tg_dtype_size(x0->dtype);
    tg_contiguous_strides(out->ndim, shape, dst);
    for (int i = 0; i < n; i++) {
        int64_t src[TG_MAX_DIMS];
        tg_contiguous_strides(xs[i]->ndim, xs[i]->shape, src);
        tg_k_strided_copy(es, out->ndim, xs[i]->shape, src, xs[i]->data, dst,
                          (char *)out->data + offset * dst[axis] * (int64_t)es);
        offset += xs[i]->shape[axis];
    }
    concat_params p = {axis};
    return tg_record(tp, &concat_op, out, n, xs, &p, sizeof p) ? out : NULL;
}

/* ---- pad -------------------------------------------------------------------------------- */

typedef struct pad_params {
    int64_t pads[2 * TG_MAX_DIMS];
} pad_params;

/* The gradient of the interior: slice every padded axis back to the input's extent. */
static void pad_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    const int64_t *pads = TG_PARAMS(n, pad_params)->pads;
    const tg_tensor *x = TG_IN(n, 0);
    for (int d = 0; d < x->ndim && g; d++)
        if (pads[2 * d] || pads[2 * d + 1])
            g = tg_slice(tp, g, d, pads[2 * d], pads[2 * d] + x->shape[d], 1);
    gin[0] = g;
}
static const tg_op pad_op = {"pad", pad_vjp};

tg_tensor *tg_pad(tg_tape *tp, tg_tensor *x, const int64_t *pads, double value) {
    if (!tg_op_begin(tp, "pad", 1, &x) || !tg_op_same_float(tp, "pad", 1, &x)) return NULL;
    if (!pads && x->ndim > 0) {
        tg_fail(tp, "pad: pads is NULL for %s", TG_SHAPE_STR(x));
        return NULL;
    }
    pad_params p = {{0}};
    int64_t shape[TG_MAX_DIMS], offset = 0, xs[TG_MAX_DIMS], dst[TG_MAX_DIMS];
    bool any = false;
    for (int d = 0; d < x->ndim; d++) {
        if (pads[2 * d] < 0 || pads[2 * d + 1] < 0) {
            tg_fail(tp, "pad: padding of dim %d of %s is negative (%lld, %lld)", d,
                    TG_SHAPE_STR(x), (long long)pads[2 * d], (long long)pads[2 * d + 1]);
            return NULL;
        }
        p.pads[2 * d] = pads[2 * d];
        p.pads[2 * d + 1] = pads[2 * d + 1];
        shape[d] = x->shape[d] + pads[2 * d] + pads[2 * d + 1];
        any |= pads[2 * d] || pads[2 * d + 1];
    }
    if (!any) return x;
    char why[160];
    if (!tg_shape_valid(x->ndim, shape, why, sizeof why)) {
        tg_fail(tp, "pad: %s", why);
        return NULL;
    }
    tg_tensor *out = tg_tensor_alloc(tp, x->dtype, x->ndim, shape);
    if (!out) return NULL;
    tg_k_fill(x->dtype, out->numel, out->data, value);
    tg_contiguous_strides(x->ndim, x->shape, xs);
    tg_contiguous_strides(x->ndim, shape, dst);
    for (int d = 0; d < x->ndim; d++) offset += pads[2 * d] * dst[d];
    size_t es = tg_dtype_size(x->dtype);
    tg_k_strided_copy(es, x->ndim, x->shape, xs, x->data, dst,
                      (char *)out->data + offset * (int64_t)es);
    return tg_record(tp, &pad_op, out, 1, &x, &p, sizeof p) ? out : NULL;
}
