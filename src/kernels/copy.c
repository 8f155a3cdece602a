/* Layout kernels: strided copies (permute, expand, slice, pad, concat all reduce to one) and
 * fills. They move bytes, so one implementation serves every dtype. */
#include <string.h>

#include "kernels/iter.h"
#include "kernels/kernels.h"

#define COPY_RUN(T)                                                                           \
    do {                                                                                      \
        const T *ps = (const T *)src + it.off[0];                                             \
        T *pd = (T *)dst + it.off[1];                                                         \
        const int64_t is = it.inner_stride[0], id = it.inner_stride[1];                       \
        if (is == 1 && id == 1) {                                                             \
            memcpy(pd, ps, (size_t)it.inner * sizeof(T));                                     \
        } else if (is == 0 && id == 1) { /* a broadcast (expand): a fill GCC vectorizes */    \
            const T v = ps[0];                                                                \
            for (int64_t i = 0; i < it.inner; i++) pd[i] = v;                                 \
        } else {                                                                              \
            for (int64_t i = 0; i < it.inner; i++) pd[i * id] = ps[i * is];                   \
        }                                                                                     \
    } while (0)

void tg_k_strided_copy(size_t elem_size, int ndim, const int64_t *shape,
                       const int64_t *src_strides, const void *src,
                       const int64_t *dst_strides, void *dst) {
    int64_t strides[2][TG_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        strides[0][d] = src_strides[d];
        strides[1][d] = dst_strides[d];
    }
    tg_iter base;
    if (!tg_iter_init(&base, ndim, shape, 2, strides)) return;
    TG_ITER_FOR_EACH_RUN(base, 1, {
        if (elem_size == 4) COPY_RUN(uint32_t);
        else COPY_RUN(uint64_t);
    });
}

void tg_k_fill(tg_dtype dt, int64_t n, void *dst, double value) {
    switch (dt) {
    case TG_F32:
        for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = (float)value;
        break;
    case TG_F64:
        for (int64_t i = 0; i < n; i++) ((double *)dst)[i] = value;
        break;
    case TG_I64:
        for (int64_t i = 0; i < n; i++) ((int64_t *)dst)[i] = (int64_t)value;
        break;
    }
}
