/* Shape arithmetic shared by every layer: validation, broadcasting, strides, axes. */
#include <stdio.h>

#include "tensor/shape.h"
#include "tensor/tensor.h"

int64_t tg_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

bool tg_shape_equal(int ndim_a, const int64_t *a, int ndim_b, const int64_t *b) {
    if (ndim_a != ndim_b) return false;
    for (int i = 0; i < ndim_a; i++)
        if (a[i] != b[i]) return false;
    return true;
}

bool tg_shape_valid(int ndim, const int64_t *shape, char *err, size_t err_size) {
    if (ndim < 0 || ndim > TG_MAX_DIMS) {
        snprintf(err, err_size, "rank %d is outside 0..%d", ndim, TG_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && !shape) {
        snprintf(err, err_size, "shape is NULL for rank %d", ndim);
        return false;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            snprintf(err, err_size, "dim %d is negative (%lld)", i, (long long)shape[i]);
            return false;
        }
        if (shape[i] && n > INT64_MAX / 16 / shape[i]) {
            snprintf(err, err_size, "shape %s has too many elements",
                     tg_shape_str((char[96]){0}, 96, ndim, shape));
            return false;
        }
        n *= shape[i];
    }
    return true;
}

bool tg_broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                         int64_t *out) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1) return false;
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return true;
}

bool tg_shape_broadcasts_to(int nfrom, const int64_t *from, int nto, const int64_t *to) {
    int n;
    int64_t b[TG_MAX_DIMS];
    return nfrom <= nto && tg_broadcast_shapes(nfrom, from, nto, to, &n, b) &&
           tg_shape_equal(n, b, nto, to);
}

void tg_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i];
    }
}

void tg_broadcast_strides(int ndim, const int64_t *shape, int out_ndim, const int64_t *out_shape,
                          int64_t *strides) {
    int64_t own[TG_MAX_DIMS];
    tg_contiguous_strides(ndim, shape, own);
    for (int i = 0; i < out_ndim; i++) {
        int j = i - (out_ndim - ndim);
        strides[i] = (j < 0 || (shape[j] == 1 && out_shape[i] != 1)) ? 0 : own[j];
    }
}

int tg_normalize_axis(int axis, int ndim) {
    if (axis < 0) axis += ndim;
    return (axis < 0 || axis >= ndim) ? -1 : axis;
}
