/* Reduction kernels: sums over any set of dims (through the strided iterator, with the output
 * broadcast along reduced dims) and max/min with arg-index along one axis. */
#include <string.h>

#include "kernels/iter.h"
#include "kernels/kernels.h"
#include "tensor/shape.h"

/* Reduced innermost run (output stride 0): accumulate the run in A (in vector lanes, then
 * combined), add once. Otherwise the output advances with the input and the run is added
 * elementwise. */
#define SUM_RUN(T, A)                                                                         \
    do {                                                                                      \
        const T *restrict px = (const T *)x + it.off[0];                                      \
        T *restrict po = (T *)out + it.off[1];                                                \
        if (it.inner_stride[1] == 0) {                                                        \
            A acc = 0;                                                                        \
            _Pragma("omp simd reduction(+ : acc)")                                            \
            for (int64_t i = 0; i < it.inner; i++) acc += px[i];                              \
            *po += (T)acc;                                                                    \
        } else {                                                                              \
            for (int64_t i = 0; i < it.inner; i++) po[i] += px[i];                            \
        }                                                                                     \
    } while (0)

/* Each output is summed by one thread (the kernels' threading keeps outputs apart), so the
 * result does not depend on the thread count. */
void tg_k_sum(tg_dtype dt, int ndim, const int64_t *shape, const int64_t *out_strides,
              const void *x, void *out, int64_t out_numel) {
    memset(out, 0, (size_t)out_numel * tg_dtype_size(dt));
    int64_t strides[2][TG_MAX_DIMS];
    tg_contiguous_strides(ndim, shape, strides[0]);
    for (int d = 0; d < ndim; d++) strides[1][d] = out_strides[d];
    tg_iter base;
    if (!tg_iter_init(&base, ndim, shape, 2, strides)) return;
    TG_ITER_FOR_EACH_RUN(base, 1, {
        if (dt == TG_F32) SUM_RUN(float, double);
        else SUM_RUN(double, double);
    });
}

/* Sweeps len rows of `inner` entries, keeping per entry the best value so far and its row:
 * the loop over entries is innermost, contiguous and branch-free. A NaN, once kept, stays (the
 * first NaN wins, as in PyTorch). */
#define MAX_AXIS(T)                                                                           \
    do {                                                                                      \
        const T *px = x;                                                                      \
        for (int64_t o = 0; o < outer; o++) {                                                 \
            const T *restrict block = px + o * len * inner;                                   \
            T *restrict best = (T *)out_val + o * inner;                                      \
            int64_t *restrict arg = out_idx + o * inner;                                      \
            for (int64_t j = 0; j < inner; j++) {                                             \
                best[j] = block[j];                                                           \
                arg[j] = 0;                                                                   \
            }                                                                                 \
            for (int64_t i = 1; i < len; i++) {                                               \
                const T *restrict row = block + i * inner;                                    \
                for (int64_t j = 0; j < inner; j++) {                                         \
                    const T v = row[j], b = best[j];                                          \
                    const bool take = b == b && ((is_min ? v < b : v > b) || v != v);         \
                    best[j] = take ? v : b;                                                   \
                    arg[j] = take ? i : arg[j];                                               \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* The same along contiguous rows (inner 1, as a softmax's max over classes): a vectorized
 * reduction to the extreme value and whether the row has a NaN, then a scan for the first
 * entry equal to it (or the first NaN). The value stored is that entry, so -0 and +0 keep
 * their first-occurrence order as in MAX_AXIS. */
#define MAX_ROWS(T)                                                                           \
    do {                                                                                      \
        const T *px = x;                                                                      \
        for (int64_t o = 0; o < outer; o++) {                                                 \
            const T *restrict row = px + o * len;                                             \
            T m = row[0];                                                                     \
            int nan = 0;                                                                      \
            if (is_min) {                                                                     \
                _Pragma("omp simd reduction(min : m) reduction(| : nan)")                     \
                for (int64_t i = 0; i < len; i++) {                                           \
                    m = row[i] < m ? row[i] : m;                                              \
                    nan |= row[i] != row[i];                                                  \
                }                                                                             \
            } else {                                                                          \
                _Pragma("omp simd reduction(max : m) reduction(| : nan)")                     \
                for (int64_t i = 0; i < len; i++) {                                           \
                    m = row[i] > m ? row[i] : m;                                              \
                    nan |= row[i] != row[i];                                                  \
                }                                                                             \
            }                                                                                 \
            int64_t at = 0;                                                                   \
            while (nan ? row[at] == row[at] : row[at] != m) at++;                             \
            ((T *)out_val)[o] = row[at];                                                      \
            out_idx[o] = at;                                                                  \
        }                                                                                     \
    } while (0)

void tg_k_max_axis(tg_dtype dt, bool is_min, int64_t outer, int64_t len, int64_t inner,
                   const void *x, void *out_val, int64_t *out_idx) {
    if (inner == 1) {
        if (dt == TG_F32) MAX_ROWS(float);
        else MAX_ROWS(double);
    } else if (dt == TG_F32) {
        MAX_AXIS(float);
    } else {
        MAX_AXIS(double);
    }
}
