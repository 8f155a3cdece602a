/* Indexing primitives with int64 indices: gather / scatter_add along an axis (each the other's
 * VJP), index_select / index_add of whole slices (likewise), and one_hot. */
#include <string.h>

#include "ops/op.h"

typedef struct axis_params {
    int axis;
} axis_params;

#define AXIS(node) (TG_PARAMS(node, axis_params)->axis)

/* idx has x's rank and, off the axis, no dim larger than x's (PyTorch's gather rule). */
static bool index_fits(tg_tape *tp, const char *op, const tg_tensor *x, int axis,
                       const tg_tensor *idx) {
    bool fits = idx->ndim == x->ndim;
    for (int d = 0; fits && d < x->ndim; d++) fits = d == axis || idx->shape[d] <= x->shape[d];
    if (!fits)
        tg_fail(tp, "%s: index %s must have the rank of %s and no larger dims off axis %d", op,
                TG_SHAPE_STR(idx), TG_SHAPE_STR(x), axis);
    return fits;
}

static void bad_index(tg_tape *tp, const char *op, const tg_tensor *idx, int64_t pos,
                      const tg_tensor *x, int axis) {
    tg_fail(tp, "%s: index %lld at position %lld is out of range for axis %d of %s", op,
            (long long)((const int64_t *)idx->data)[pos], (long long)pos, axis, TG_SHAPE_STR(x));
}

/* ---- gather / scatter_add --------------------------------------------------------------- */

static void gather_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_scatter_add(tp, tg_zeros_like(tp, TG_IN(n, 0)), AXIS(n), TG_IN(n, 1), g);
}
static void scatter_add_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    if (need[0]) gin[0] = g;
    if (need[2]) gin[2] = tg_gather(tp, g, AXIS(n), TG_IN(n, 1));
}
static const tg_op gather_op = {"gather", gather_vjp},
                   scatter_add_op = {"scatter_add", scatter_add_vjp};

tg_tensor *tg_gather(tg_tape *tp, tg_tensor *x, int axis, tg_tensor *idx) {
    tg_tensor *in[2] = {x, idx};
    if (!tg_op_begin(tp, "gather", 2, in) || !tg_op_same_float(tp, "gather", 1, in) ||
        !tg_op_index(tp, "gather", idx, "index") || !tg_op_axis(tp, "gather", &axis, x, x->ndim) ||
        !index_fits(tp, "gather", x, axis, idx))
        return NULL;
    tg_tensor *out = tg_tensor_alloc(tp, x->dtype, idx->ndim, idx->shape);
    if (!out) return NULL;
    int64_t xs[TG_MAX_DIMS];
    tg_contiguous_strides(x->ndim, x->shape, xs);
    int64_t bad = tg_k_gather(x->dtype, x->ndim, idx->shape, axis, x->shape[axis], xs, x->data,
                              idx->data, out->data);
    if (bad >= 0) {
        bad_index(tp, "gather", idx, bad, x, axis);
        return NULL;
    }
    axis_params p = {axis};
    return tg_record(tp, &gather_op, out, 2, in, &p, sizeof p) ? out : NULL;
}

tg_tensor *tg_scatter_add(tg_tape *tp, tg_tensor *x, int axis, tg_tensor *idx, tg_tensor *src) {
    tg_tensor *in[3] = {x, idx, src};
    tg_tensor *floats[2] = {x, src};
    if (!tg_op_begin(tp, "scatter_add", 3, in) || !tg_op_same_float(tp, "scatter_add", 2, floats) ||
        !tg_op_index(tp, "scatter_add", idx, "index") ||
        !tg_op_axis(tp, "scatter_add", &axis, x, x->ndim) ||
        !index_fits(tp, "scatter_add", x, axis, idx))
        return NULL;
    if (!tg_shape_equal(src->ndim, src->shape, idx->ndim, idx->shape)) {
        tg_fail(tp, "scatter_add: src %s must have the index's shape %s", TG_SHAPE_STR(src),
                TG_SHAPE_STR(idx));
        return NULL;
    }
    tg_tensor *out = tg_tensor_alloc(tp, x->dtype, x->ndim, x->shape);
    if (!out) return NULL;
    memcpy(out->data, x->data, (size_t)x->numel * tg_dtype_size(x->dtype));
    int64_t os[TG_MAX_DIMS];
    tg_contiguous_strides(x->ndim, x->shape, os);
    int64_t bad = tg_k_scatter_add(x->dtype, x->ndim, idx->shape, axis, x->shape[axis], os,
                                   out->data, idx->data, src->data);
    if (bad >= 0) {
        bad_index(tp, "scatter_add", idx, bad, x, axis);
        return NULL;
    }
    axis_params p = {axis};
    return tg_record(tp, &scatter_add_op, out, 3, in, &p, sizeof p) ? out : NULL;
}

/* ---- index_select / index_add ----------------------------------------------------------- */

static void index_select_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_index_add(tp, tg_zeros_like(tp, TG_IN(n, 0)), AXIS(n), TG_IN(n, 1), g);
}
static void index_add_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    if (need[0]) gin[0] = g;
    if (need[2]) gin[2] = tg_index_select(tp, g, AXIS(n), TG_IN(n, 1));
}
static const tg_op index_select_op = {"index_select", index_select_vjp},
                   index_add_op = {"index_add", index_add_vjp};

/* [outer, len, inner] around axis. */
static void split_at(const tg_tensor *x, int axis, int64_t *outer, int64_t *inner) {
    *outer = *inner = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d < axis) *outer *= x->shape[d];
        if (d > axis) *inner *= x->shape[d];
    }
}

static bool index_1d(tg_tape *tp, const char *op, const tg_tensor *idx) {
    if (!tg_op_index(tp, op, idx, "index")) return false;
    if (idx->ndim != 1) {
        tg_fail(tp, "%s: index must be 1-D, got %s", op, TG_SHAPE_STR(idx));
        return false;
    }
    return true;
}

tg_tensor *tg_index_select(tg_tape *tp, tg_tensor *x, int axis, tg_tensor *idx) {
    tg_tensor *in[2] = {x, idx};
    if (!tg_op_begin(tp, "index_select", 2, in) || !index_1d(tp, "index_select", idx) ||
        !tg_op_axis(tp, "index_select", &axis, x, x->ndim))
        return NULL;
    int64_t shape[TG_MAX_DIMS], outer, inner;
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = idx->numel;
    tg_tensor *out = tg_tensor_alloc(tp, x->dtype, x->ndim, shape);
    if (!out) return NULL;
    split_at(x, axis, &outer, &inner);
    int64_t bad = tg_k_index_select(tg_dtype_size(x->dtype), outer, x->shape[axis], inner,
                                    x->data, idx->numel, idx->data, out->data);
    if (bad >= 0) {
        bad_index(tp, "index_select", idx, bad, x, axis);
        return NULL;
    }
    axis_params p = {axis};
    return tg_record(tp, &index_select_op, out, 2, in, &p, sizeof p) ? out : NULL;
}

tg_tensor *tg_index_add(tg_tape *tp, tg_tensor *x, int axis, tg_tensor *idx, tg_tensor *src) {
    tg_tensor *in[3] = {x, idx, src};
    tg_tensor *floats[2] = {x, src};
    if (!tg_op_begin(tp, "index_add", 3, in) || !tg_op_same_float(tp, "index_add", 2, floats) ||
        !index_1d(tp, "index_add", idx) || !tg_op_axis(tp, "index_add", &axis, x, x->ndim))
        return NULL;
    int64_t want[TG_MAX_DIMS], outer, inner;
    memcpy(want, x->shape, sizeof want);
    want[axis] = idx->numel;
    if (!tg_shape_equal(src->ndim, src->shape, x->ndim, want)) {
        tg_fail(tp, "index_add: src is %s but must be %s (x %s with axis %d of index length)",
                TG_SHAPE_STR(src), tg_shape_str((char[96]){0}, 96, x->ndim, want),
                TG_SHAPE_STR(x), axis);
        return NULL;
    }
    tg_tensor *out = tg_tensor_alloc(tp, x->dtype, x->ndim, x->shape);
    if (!out) return NULL;
    memcpy(out->data, x->data, (size_t)x->numel * tg_dtype_size(x->dtype));
    split_at(x, axis, &outer, &inner);
    int64_t bad = tg_k_index_add(x->dtype, outer, x->shape[axis], inner, out->data, idx->numel,
                                 idx->data, src->data);
    if (bad >= 0) {
        bad_index(tp, "index_add", idx, bad, x, axis);
        return NULL;
    }
    axis_params p = {axis};
    return tg_record(tp, &index_add_op, out, 3, in, &p, sizeof p) ? out : NULL;
}

/* ---- one_hot ---------------------------------------------------------------------------- */

tg_tensor *tg_one_hot(tg_tape *tp, tg_tensor *idx, int64_t num_classes, tg_dtype dtype) {
    if (!tg_op_begin(tp, "one_hot", 1, &idx) || !tg_op_index(tp, "one_hot", idx, "index"))
        return NULL;
    if (num_classes < 1 || idx->ndim == TG_MAX_DIMS) {
        tg_fail(tp, "one_hot: needs num_classes >= 1 (got %lld) and fewer than %d index dims "
                    "(index %s)", (long long)num_classes, TG_MAX_DIMS, TG_SHAPE_STR(idx));
        return NULL;
    }
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, idx->shape, (size_t)idx->ndim * sizeof *shape);
    shape[idx->ndim] = num_classes;
    tg_tensor *out = tg_zeros(tp, dtype, idx->ndim + 1, shape);
    if (!out) return NULL;
    const int64_t *ix = idx->data;
    for (int64_t i = 0; i < idx->numel; i++) {
        if (ix[i] < 0 || ix[i] >= num_classes) {
            tg_fail(tp, "one_hot: index %lld at position %lld of %s is outside [0, %lld)",
                    (long long)ix[i], (long long)i, TG_SHAPE_STR(idx), (long long)num_classes);
            return NULL;
        }
        if (dtype == TG_F32) ((float *)out->data)[i * num_classes + ix[i]] = 1.0f;
        else if (dtype == TG_F64) ((double *)out->data)[i * num_classes + ix[i]] = 1.0;
        else ((int64_t *)out->data)[i * num_classes + ix[i]] = 1;
    }
    return out;
}
