/* Indexing kernels: gather / scatter-add along an axis and index_select / index_add of whole
 * slices. Indices are validated here, where they are read; an out-of-range index is reported
 * back by position, never followed. */
#include <string.h>

#include "kernels/iter.h"
#include "kernels/kernels.h"
#include "tensor/shape.h"

/* Walks idx's shape with operands idx (contiguous), x (x's strides, 0 along axis) and a
 * contiguous third operand; BODY sees ip (flat idx position), xo (x offset without the axis
 * term), po (third operand offset) and v (the index). */
#define WALK_INDEX(BODY)                                                                      \
    do {                                                                                      \
        int64_t st[3][TG_MAX_DIMS];                                                           \
        tg_contiguous_strides(ndim, ishape, st[0]);                                           \
        for (int d = 0; d < ndim; d++) st[1][d] = d == axis ? 0 : xstrides[d];                \
        tg_contiguous_strides(ndim, ishape, st[2]);                                           \
        tg_iter it;                                                                           \
        if (!tg_iter_init(&it, ndim, ishape, 3, st)) return -1;                               \
        do {                                                                                  \
            for (int64_t i = 0; i < it.inner; i++) {                                          \
                int64_t ip = it.off[0] + i * it.inner_stride[0];                              \
                int64_t xo = it.off[1] + i * it.inner_stride[1];                              \
                int64_t po = it.off[2] + i * it.inner_stride[2];                              \
                int64_t v = idx[ip];                                                          \
                if (v < 0 || v >= x_len) return ip;                                           \
                BODY;                                                                         \
            }                                                                                 \
        } while (tg_iter_next(&it));                                                          \
    } while (0)

int64_t tg_k_gather(tg_dtype dt, int ndim, const int64_t *ishape, int axis, int64_t x_len,
                    const int64_t *xstrides, const void *x, const int64_t *idx, void *out) {
    const int64_t sa = xstrides[axis];
    if (dt == TG_F32) {
        WALK_INDEX(((float *)out)[po] = ((const float *)x)[xo + v * sa]);
    } else {
        WALK_INDEX(((double *)out)[po] = ((const double *)x)[xo + v * sa]);
    }
    return -1;
}

int64_t tg_k_scatter_add(tg_dtype dt, int ndim, const int64_t *ishape, int axis, int64_t x_len,
                         const int64_t *ostrides, void *out, const int64_t *idx,
                         const void *src) {
    const int64_t *xstrides = ostrides;
    const int64_t sa = ostrides[axis];
    if (dt == TG_F32) {
        WALK_INDEX(((float *)out)[xo + v * sa] += ((const float *)src)[po]);
    } else {
        WALK_INDEX(((double *)out)[xo + v * sa] += ((const double *)src)[po]);
    }
    return -1;
}

int64_t tg_k_index_select(size_t elem_size, int64_t outer, int64_t x_len, int64_t inner,
                          const void *x, int64_t n_idx, const int64_t *idx, void *out) {
    for (int64_t j = 0; j < n_idx; j++)
        if (idx[j] < 0 || idx[j] >= x_len) return j;
    const size_t run = (size_t)inner * elem_size;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n_idx; j++)
            memcpy((char *)out + ((size_t)(o * n_idx + j)) * run,
                   (const char *)x + ((size_t)(o * x_len + idx[j])) * run, run);
    return -1;
}

#define INDEX_ADD(T)                                                                          \
    for (int64_t o = 0; o < outer; o++)                                                       \
        for (int64_t j = 0; j < n_idx; j++) {                                                 \
            T *restrict po = (T *)out + (o * x_len + idx[j]) * inner;                         \
            const T *restrict ps = (const T *)src + (o * n_idx + j) * inner;                  \
            for (int64_t i = 0; i < inner; i++) po[i] += ps[i];                               \
        }

int64_t tg_k_index_add(tg_dtype dt, int64_t outer, int64_t x_len, int64_t inner, void *out,
                       int64_t n_idx, const int64_t *idx, const void *src) {
    for (int64_t j = 0; j < n_idx; j++)
        if (idx[j] < 0 || idx[j] >= x_len) return j;
    if (dt == TG_F32) {
        INDEX_ADD(float)
    } else {
        INDEX_ADD(double)
    }
    return -1;
}
