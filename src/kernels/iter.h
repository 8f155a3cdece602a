/* A strided N-d iterator over up to four operands, used by every kernel that walks shapes which
 * broadcast or reduce. Dimensions of size 1 are dropped and adjacent dimensions that are
 * contiguous for every operand are merged, so the innermost run is as long as possible; after
 * that each operand's innermost stride is 0 (broadcast) or 1 for contiguous inputs.
 *
 *   tg_iter it;
 *   if (tg_iter_init(&it, ndim, shape, nops, strides)) do {
 *       run over it.inner elements: operand k starts at it.off[k], steps it.inner_stride[k]
 *   } while (tg_iter_next(&it));
 *
 * Large jobs spread over threads with TG_ITER_FOR_EACH_RUN.
 */
#ifndef TG_ITER_H
#define TG_ITER_H

#include <omp.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "tapegrad.h"

enum { TG_ITER_MAX_OPS = 4 };

typedef struct tg_iter {
    int ndim;     /* collapsed rank, >= 1 */
    int nops;
    int64_t shape[TG_MAX_DIMS];
    int64_t stride[TG_ITER_MAX_OPS][TG_MAX_DIMS];
    int64_t idx[TG_MAX_DIMS];
    int64_t off[TG_ITER_MAX_OPS];
    int64_t inner;                          /* length of the innermost run */
    int64_t inner_stride[TG_ITER_MAX_OPS];
} tg_iter;

/* strides[k][d]: element stride of operand k along dim d of `shape`. Returns false when the
 * shape has no elements (nothing to iterate). */
static inline bool tg_iter_init(tg_iter *it, int ndim, const int64_t *shape, int nops,
                                const int64_t (*strides)[TG_MAX_DIMS]) {
    it->nops = nops;
    int n = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0) return false;
        if (shape[d] == 1) continue;
        bool merge = n > 0;
        for (int k = 0; k < nops && merge; k++)
            merge = it->stride[k][n - 1] == strides[k][d] * shape[d];
        if (merge) {
            it->shape[n - 1] *= shape[d];
            for (int k = 0; k < nops; k++) it->stride[k][n - 1] = strides[k][d];
        } else {
            it->shape[n] = shape[d];
            for (int k = 0; k < nops; k++) it->stride[k][n] = strides[k][d];
            n++;
        }
    }
    if (n == 0) { /* a single element */
        it->shape[0] = 1;
        for (int k = 0; k < nops; k++) it->stride[k][0] = 0;
        n = 1;
    }
    it->ndim = n;
    for (int d = 0; d < n; d++) it->idx[d] = 0;
    for (int k = 0; k < nops; k++) {
        it->off[k] = 0;
        it->inner_stride[k] = it->stride[k][n - 1];
    }
    it->inner = it->shape[n - 1];
    return true;
}

/* Advances to the next innermost run; false when done. */
static inline bool tg_iter_next(tg_iter *it) {
    for (int d = it->ndim - 2; d >= 0; d--) {
        if (++it->idx[d] < it->shape[d]) {
            for (int k = 0; k < it->nops; k++) it->off[k] += it->stride[k][d];
            return true;
        }
        it->idx[d] = 0;
        for (int k = 0; k < it->nops; k++) it->off[k] -= it->stride[k][d] * (it->shape[d] - 1);
    }
    return false;
}

/* The number of elements the iterator covers. */
static inline int64_t tg_iter_numel(const tg_iter *it) {
    int64_t n = 1;
    for (int d = 0; d < it->ndim; d++) n *= it->shape[d];
    return n;
}

/* Restricts a freshly initialized iterator to indices [from, to) of its dimension d. */
static inline void tg_iter_restrict(tg_iter *it, int d, int64_t from, int64_t to) {
    for (int k = 0; k < it->nops; k++) it->off[k] += from * it->stride[k][d];
    it->shape[d] = to - from;
    if (d == it->ndim - 1) it->inner = to - from;
}

/* The dimension a kernel splits over threads: one along which operand `out` advances, so each
 * thread's share writes outputs no other share does; the outermost such with at least
 * TG_ITER_SPLIT_MIN indices (long contiguous shares, runs left whole), else the longest; -1
 * when none is longer than 1 (a reduction to one value). */
enum { TG_ITER_SPLIT_MIN = 8 };
static inline int tg_iter_split_dim(const tg_iter *it, int out) {
    int longest = -1;
    for (int d = 0; d < it->ndim; d++) {
        if (it->stride[out][d] == 0 || it->shape[d] < 2) continue;
        if (it->shape[d] >= TG_ITER_SPLIT_MIN) return d;
        if (longest < 0 || it->shape[d] > it->shape[longest]) longest = d;
    }
    return longest;
}

/* Runs the statement, which reads the iterator `it` for one innermost run, over every run of
 * the initialized iterator `base`, which writes operand `out`.
 * From TG_PARALLEL_MIN elements each thread takes a contiguous share of the dimension
 * tg_iter_split_dim picks, and runs its share in the usual order: an output is written by one
 * thread only, in the same order as on one thread, so results do not depend on the count. */
#define TG_ITER_FOR_EACH_RUN(base, out, ...)                                                  \
    do {                                                                                      \
        const int split_ = tg_iter_split_dim(&(base), (out));                                 \
        if (split_ >= 0 && tg_iter_numel(&(base)) >= TG_PARALLEL_MIN &&                       \
            omp_get_max_threads() > 1) {                                                      \
            _Pragma("omp parallel")                                                           \
            {                                                                                 \
                const int64_t nt_ = omp_get_num_threads(), t_ = omp_get_thread_num();         \
                const int64_t len_ = (base).shape[split_];                                    \
                const int64_t from_ = len_ * t_ / nt_, to_ = len_ * (t_ + 1) / nt_;           \
                tg_iter it = (base);                                                          \
                tg_iter_restrict(&it, split_, from_, to_);                                    \
                if (to_ > from_) do { __VA_ARGS__; } while (tg_iter_next(&it));               \
            }                                                                                 \
        } else {                                                                              \
            tg_iter it = (base);                                                              \
            do { __VA_ARGS__; } while (tg_iter_next(&it));                                    \
        }                                                                                     \
    } while (0)

#endif
