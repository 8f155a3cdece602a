/* Sliding-window kernels: unfold2d (im2col) and its adjoint fold2d (col2im), over
 * x [N, C, H, W] <-> cols [N, C*KH*KW, OH*OW] or, batch inner, [C*KH*KW, N, OH*OW]; and window
 * sums x -> [N, C, OH, OW], whose adjoint is fold2d reading one row per plane for every window
 * entry (shared rows, row stride 0). Each (n, c) plane is independent: one plane is one call of
 * a plane function, which writes (or reads) its KH*KW rows of OH*OW entries at the layout's row
 * stride, and large jobs spread planes over threads (small ones stay out of OpenMP entirely: an
 * `omp parallel if (false)` region still builds a team).
 *
 * Ways through a plane. When output rows are short (OW below UNFOLD_ROW_MIN or FOLD_ROW_MIN:
 * the small images deep in MNIST- and CIFAR-sized nets) and the window has at most TABLE_MAX
 * entries (KH*KW*OH*OW), a table of the input offset each entry reads (-1 for padding) is
 * built once per call, and a plane is one gather (unfold) or scatter-add (fold) loop over it:
 * row loops spend more on loop control than on copying when rows are a few elements long.
 * Otherwise the plane goes row by row, contiguous when the stride is 1 (2.4x faster than the
 * table on 32-wide rows, 1.4x slower on 8-wide ones), each row in masked 16-wide chunks (RUNS).
 * With AVX-512, float planes go in 16-wide pieces instead where that measured faster, each
 * piece one expanding load per window column (a piece table, built once per call, holds the
 * lanes and where they read): unfold with stride 1 and rows of UNFOLD_ROW_MIN and more (at
 * LeNet-5's second convolution 1.5x), and fold with stride 1 or input rows of FOLD_ROW_MIN and
 * more, gathered so that each piece of an input row sums its window entries in a register and is
 * stored once (at LeNet-5's second convolution 2.5x, an 8x8 3x3 one 3.1x, a 32x32 one 1.1x,
 * stride 2 on 32x32 1.9x; the kernels alone).
 *
 * With AVX-512, float folds of windows that do not overlap (pooling with stride = kernel) are
 * one gather per 16 input positions from a table of the one entry each reads. Float window sums
 * and maxima keep each 16 outputs' running sum (or maximum and its offset) in registers: window
 * entries gathered from a window table for strided windows and short rows (maxima: whenever
 * the table fits), else piece by piece from the rows (expanding loads for stride 1, two loads
 * and a permutation for stride 2, gathers above). Elsewhere window sums and maxima unfold a
 * plane's entries into rows when its table fits and add or compare whole rows; else sums go
 * row by row and maxima walk output rows in blocks: contiguous, branch-free loops that GCC
 * vectorizes without AVX-512's masked gathers (with AVX2 only, against unfold followed by a
 * sum or max over the cols: LeNet-5's average pooling 1.4-1.8x, mytorch's 3x3 max pooling
 * 1.4x, larger max pooling 1.2-3x).
 *
 * In the batch-inner layout, planes are visited channel by channel (n fastest): consecutive
 * planes then touch adjacent pieces of the same KH*KW rows of cols, which the prefetchers
 * follow, where n-major order jumps between channels' rows (an 8x8 3x3 fold 1.8x). */
#include <stdint.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "kernels/kernels.h"

/* Output row lengths from which planes go row by row: the gather of unfold gains sooner than
 * the scatter-add of fold (measured on 8-, 10-, 13-, 14- and 32-wide rows). PIECES_MAX bounds
 * a piece table (16-wide pieces of a row times KW). */
enum { TABLE_MAX = 1 << 14, UNFOLD_ROW_MIN = 10, FOLD_ROW_MIN = 12, PIECES_MAX = 1 << 12 };

/* Outputs of a row that the portable window maxima keep running maxima for at once, and the
 * stack a plane's unfolded rows may take (use_rows). */
enum { ARGMAX_BLOCK = 64, ROWS_BYTES = 1 << 16 };

/* table[k*L + l] = the offset in a plane [H, W] that entry (k, l) of the window reads, or -1
 * where it reads padding. */
static void window_table(const tg_kwindow *w, int32_t *table) {
    const int64_t L = w->oh * w->ow;
    for (int64_t ki = 0; ki < w->kh; ki++)
        for (int64_t kj = 0; kj < w->kw; kj++)
            for (int64_t oy = 0; oy < w->oh; oy++)
                for (int64_t ox = 0; ox < w->ow; ox++) {
                    const int64_t iy = oy * w->sh - w->ph + ki * w->dh;
                    const int64_t ix = ox * w->sw - w->pw + kj * w->dw;
                    const bool inside = iy >= 0 && iy < w->h && ix >= 0 && ix < w->w;
                    table[(ki * w->kw + kj) * L + oy * w->ow + ox] =
                        inside ? (int32_t)(iy * w->w + ix) : -1;
                }
}

#define TABLE_PLANES(T)                                                                        \
    static void unfold_table_##T(int64_t kk, int64_t L, const int32_t *restrict table,       \
                                 const T *restrict plane, T *restrict rows, int64_t rs,      \
                                 T pad) {                                                     \
        for (int64_t k = 0; k < kk; k++) {                                                    \
            const int32_t *restrict t = table + k * L;                                        \
            T *restrict row = rows + k * rs;                                                  \
            _Pragma("omp simd") /* masked gathers */                                          \
            for (int64_t l = 0; l < L; l++) row[l] = t[l] >= 0 ? plane[t[l]] : pad;          \
        }                                                                                     \
    }                                                                                         \
    static void fold_table_##T(int64_t kk, int64_t L, int64_t hw,                             \
                               const int32_t *restrict table, const T *restrict rows,         \
                               int64_t rs, T *restrict plane) {                               \
        for (int64_t i = 0; i < hw; i++) plane[i] = 0;                                        \
        for (int64_t k = 0; k < kk; k++) {                                                    \
            const int32_t *restrict t = table + k * L;                                        \
            const T *restrict row = rows + k * rs;                                            \
            for (int64_t l = 0; l < L; l++)                                                   \
                if (t[l] >= 0) plane[t[l]] += row[l];                                         \
        }                                                                                     \
    }

/* The output columns ow in [lo, hi) read input columns inside [0, W) for kernel column kw. */
static void valid_cols(const tg_kwindow *w, int64_t kw, int64_t *lo, int64_t *hi) {
    int64_t off = kw * w->dw - w->pw; /* iw = ow * sw + off */
    int64_t a = off >= 0 ? 0 : (-off + w->sw - 1) / w->sw;
    int64_t b = w->w - off <= 0 ? 0 : (w->w - off + w->sw - 1) / w->sw;
    if (b > w->ow) b = w->ow;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

/* dst[i] = src[i] (copy_run) or dst[i] += src[i] (add_run) for i < n in chunks of 16 with a
 * bound check, which GCC turns into masked vector loads and stores: a 10-wide row costs one
 * masked operation, not a memcpy call or a vector loop plus a scalar remainder. */
#define RUNS(T)                                                                                \
    static inline void copy_run_##T(T *restrict dst, const T *restrict src, int64_t n) {     \
        for (int64_t at = 0; at < n; at += 16) {                                              \
            const int64_t m = n - at;                                                         \
            _Pragma("omp simd")                                                               \
            for (int64_t i = 0; i < 16; i++)                                                  \
                if (i < m) dst[at + i] = src[at + i];                                         \
        }                                                                                     \
    }                                                                                         \
    static inline void add_run_##T(T *restrict dst, const T *restrict src, int64_t n) {      \
        for (int64_t at = 0; at < n; at += 16) {                                              \
            const int64_t m = n - at;                                                         \
            _Pragma("omp simd")                                                               \
            for (int64_t i = 0; i < 16; i++)                                                  \
                if (i < m) dst[at + i] += src[at + i];                                        \
        }                                                                                     \
    }
RUNS(float)
RUNS(double)

/* plane [H, W] -> rows [KH*KW, OH*OW] of one (n, c). */
#define UNFOLD_PLANE(T)                                                                        \
    static void unfold_plane_##T(const tg_kwindow *w, const T *restrict plane,               \
                                 T *restrict rows, int64_t rs, T pad) {                       \
        for (int64_t ki = 0; ki < w->kh; ki++)                                                \
            for (int64_t kj = 0; kj < w->kw; kj++) {                                          \
                T *row = rows + (ki * w->kw + kj) * rs;                                        \
                int64_t lo, hi;                                                               \
                valid_cols(w, kj, &lo, &hi);                                                  \
                const int64_t coff = kj * w->dw - w->pw;                                      \
                for (int64_t oy = 0; oy < w->oh; oy++) {                                      \
                    T *dst = row + oy * w->ow;                                                \
                    const int64_t iy = oy * w->sh - w->ph + ki * w->dh;                       \
                    if (iy < 0 || iy >= w->h) {                                               \
                        for (int64_t ox = 0; ox < w->ow; ox++) dst[ox] = pad;                 \
                        continue;                                                             \
                    }                                                                         \
                    const T *src = plane + iy * w->w; /* iw = ox * sw + coff */               \
                    for (int64_t ox = 0; ox < lo; ox++) dst[ox] = pad;                        \
                    if (w->sw == 1) {                                                         \
                        copy_run_##T(dst + lo, src + lo + coff, hi - lo);                     \
                    } else {                                                                  \
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * w->sw + coff]; \
                    }                                                                         \
                    for (int64_t ox = hi; ox < w->ow; ox++) dst[ox] = pad;                    \
                }                                                                             \
            }                                                                                 \
    }

/* rows [KH*KW, OH*OW] -> plane [H, W] (overwritten) of one (n, c), overlaps summed. */
#define FOLD_PLANE(T)                                                                          \
    static void fold_plane_##T(const tg_kwindow *w, const T *restrict rows, int64_t rs,      \
                               T *restrict plane) {                                           \
        for (int64_t i = 0; i < w->h * w->w; i++) plane[i] = 0;                               \
        for (int64_t ki = 0; ki < w->kh; ki++)                                                \
            for (int64_t kj = 0; kj < w->kw; kj++) {                                          \
                const T *row = rows + (ki * w->kw + kj) * rs;                                  \
                int64_t lo, hi;                                                               \
                valid_cols(w, kj, &lo, &hi);                                                  \
                const int64_t coff = kj * w->dw - w->pw;                                      \
                for (int64_t oy = 0; oy < w->oh; oy++) {                                      \
                    const int64_t iy = oy * w->sh - w->ph + ki * w->dh;                       \
                    if (iy < 0 || iy >= w->h) continue;                                       \
                    const T *src = row + oy * w->ow;                                          \
                    T *dst = plane + iy * w->w; /* iw = ox * sw + coff */                     \
                    if (w->sw == 1) {                                                         \
                        add_run_##T(dst + lo + coff, src + lo, hi - lo);                      \
                    } else {                                                                  \
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox * w->sw + coff] += src[ox]; \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
    }

/* plane [H, W] -> out [OH, OW] of one (n, c): each output the sum of its window's inputs, in
 * (ki, kj) order, padding adding nothing. Each window entry adds to the outputs of a row whose
 * input column lies inside (valid_cols), read with the row's stride. */
#define SUM_PLANE(T)                                                                          \
    static void sum_plane_##T(const tg_kwindow *w, const T *restrict plane, T *restrict out) { \
        for (int64_t oy = 0; oy < w->oh; oy++) {                                              \
            T *dst = out + oy * w->ow;                                                        \
            for (int64_t ox = 0; ox < w->ow; ox++) dst[ox] = 0;                               \
            for (int64_t ki = 0; ki < w->kh; ki++) {                                          \
                const int64_t iy = oy * w->sh - w->ph + ki * w->dh;                           \
                if (iy < 0 || iy >= w->h) continue;                                           \
                const T *src = plane + iy * w->w;                                             \
                for (int64_t kj = 0; kj < w->kw; kj++) {                                      \
                    int64_t lo, hi;                                                           \
                    valid_cols(w, kj, &lo, &hi);                                              \
                    const int64_t coff = kj * w->dw - w->pw; /* iw = ox * sw + coff */        \
                    if (w->sw == 1) {                                                         \
                        add_run_##T(dst + lo, src + lo + coff, hi - lo);                      \
                    } else {                                                                  \
                        const int64_t sw = w->sw;                                             \
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox] += src[ox * sw + coff];  \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

/* plane [H, W] -> idx [OH, OW] of one (n, c): each window's first maximum or first NaN in
 * (ki, kj) order, as an offset in the plane; -1 where the window holds padding alone. Output
 * rows go in blocks of ARGMAX_BLOCK, each window entry compared with the block's running
 * maxima over the outputs whose input column lies in the row (valid_cols): no bounds test per
 * element, and branch-free selects, which GCC vectorizes. */
#define ARGMAX_PLANE(T)                                                                       \
    static void argmax_plane_##T(const tg_kwindow *w, const T *restrict plane,                \
                                 int64_t *restrict idx) {                                     \
        for (int64_t oy = 0; oy < w->oh; oy++)                                                \
            for (int64_t ox0 = 0; ox0 < w->ow; ox0 += ARGMAX_BLOCK) {                         \
                const int64_t n = w->ow - ox0 < ARGMAX_BLOCK ? w->ow - ox0 : ARGMAX_BLOCK;    \
                int64_t *restrict at = idx + oy * w->ow + ox0;                                \
                T best[ARGMAX_BLOCK];                                                         \
                for (int64_t i = 0; i < n; i++) {                                             \
                    at[i] = -1;                                                               \
                    best[i] = 0;                                                              \
                }                                                                             \
                for (int64_t ki = 0; ki < w->kh; ki++) {                                      \
                    const int64_t iy = oy * w->sh - w->ph + ki * w->dh;                       \
                    if (iy < 0 || iy >= w->h) continue;                                       \
                    const T *restrict src = plane + iy * w->w;                                \
                    for (int64_t kj = 0; kj < w->kw; kj++) {                                  \
                        int64_t lo, hi;                                                       \
                        valid_cols(w, kj, &lo, &hi);                                          \
                        lo = lo > ox0 ? lo - ox0 : 0;                                         \
                        hi = hi < ox0 + n ? hi - ox0 : n;                                     \
                        /* input column of output i: ix0 + i * sw */                          \
                        const int64_t ix0 = ox0 * w->sw - w->pw + kj * w->dw, sw = w->sw;     \
                        _Pragma("omp simd")                                                   \
                        for (int64_t i = lo; i < hi; i++) {                                   \
                            const T v = src[ix0 + i * sw], b = best[i];                       \
                            const bool take = at[i] < 0 || (b == b && (v > b || v != v));     \
                            best[i] = take ? v : b;                                           \
                            at[i] = take ? iy * w->w + ix0 + i * sw : at[i];                  \
                        }                                                                     \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
    }

/* plane [H, W] -> idx [OH*OW] of one (n, c), as argmax_plane, from a window table (-1 for
 * padding): the window entries unfolded into rows [KH*KW, OH*OW] of `scratch` (which has
 * (KH*KW + 1) * OH*OW elements; the last row holds the running maxima), then each row compared
 * with the running maxima in contiguous, branch-free passes, which GCC vectorizes. */
#define ARGMAX_ROWS(T)                                                                        \
    static void argmax_rows_##T(int64_t kk, int64_t L, const int32_t *restrict table,         \
                                const T *restrict plane, int64_t *restrict idx,               \
                                T *restrict scratch) {                                        \
        unfold_table_##T(kk, L, table, plane, scratch, L, 0);                                 \
        T *restrict best = scratch + kk * L;                                                  \
        for (int64_t l = 0; l < L; l++) {                                                     \
            idx[l] = -1;                                                                      \
            best[l] = 0;                                                                      \
        }                                                                                     \
        for (int64_t k = 0; k < kk; k++) {                                                    \
            const T *restrict row = scratch + k * L;                                          \
            const int32_t *restrict t = table + k * L;                                        \
            _Pragma("omp simd")                                                               \
            for (int64_t l = 0; l < L; l++) {                                                 \
                const T v = row[l], b = best[l];                                              \
                const bool take = t[l] >= 0 && (idx[l] < 0 || (b == b && (v > b || v != v))); \
                best[l] = take ? v : b;                                                       \
                idx[l] = take ? t[l] : idx[l];                                                \
            }                                                                                 \
        }                                                                                     \
    }

/* plane [H, W] -> out [OH*OW] of one (n, c), as sum_plane, from a window table: the window
 * entries unfolded into rows [KH*KW, OH*OW] of `scratch` (padding 0), then the rows added in
 * (ki, kj) order, contiguous loops that GCC vectorizes. */
#define SUM_ROWS(T)                                                                           \
    static void sum_rows_##T(int64_t kk, int64_t L, const int32_t *restrict table,            \
                             const T *restrict plane, T *restrict out, T *restrict scratch) { \
        unfold_table_##T(kk, L, table, plane, scratch, L, 0);                                 \
        for (int64_t l = 0; l < L; l++) out[l] = 0;                                           \
        for (int64_t k = 0; k < kk; k++) {                                                    \
            const T *restrict row = scratch + k * L;                                          \
            _Pragma("omp simd")                                                               \
            for (int64_t l = 0; l < L; l++) out[l] += row[l];                                 \
        }                                                                                     \
    }

#ifdef __AVX512F__
/* How window column kj meets a 16-wide piece of a row, for the AVX-512 plane functions: the
 * lanes that read a real element (padding and columns past the row's end excluded), and the
 * element the first of them reads; the others read the elements after it, so one expanding
 * load (consecutive elements into the set lanes) fetches them all. */
typedef struct piece {
    int64_t at;
    __mmask16 lanes;
} piece;

/* Pieces in a row of `width`. */
static inline int64_t pieces_in(int64_t width) {
    return (width + 15) / 16;
}

/* The lanes of piece p of a row of `width` that lie in the row: all 16 but in the last. */
static inline __mmask16 piece_lanes(int64_t width, int64_t p) {
    const int64_t left = width - 16 * p;
    return (__mmask16)(left >= 16 ? 0xffffu : (1u << left) - 1);
}

/* fold: table[p*KW + kj] for every 16-wide piece p of an input row (W) and every kj; lane i
 * of piece p (input column x = 16p + i) reads output column (x + pw - kj*dw) / sw where that
 * divides and lies in [0, OW). */
static void fold_pieces(const tg_kwindow *w, piece *table) {
    for (int64_t x0 = 0, p = 0; x0 < w->w; x0 += 16, p++)
        for (int64_t kj = 0; kj < w->kw; kj++) {
            const int64_t sx0 = x0 + w->pw - kj * w->dw;
            const int64_t ox = sx0 <= 0 ? 0 : (sx0 + w->sw - 1) / w->sw;
            uint32_t lanes = 0;
            for (int64_t i = ox * w->sw - sx0;
                 i < 16 && x0 + i < w->w && (sx0 + i) / w->sw < w->ow; i += w->sw)
                lanes |= 1u << i;
            table[p * w->kw + kj] = (piece){.at = lanes ? ox : 0, .lanes = (__mmask16)lanes};
        }
}

/* unfold and window sums: table[p*KW + kj] for every 16-wide piece p of an output row (OW) and
 * every kj; lane i of piece p (output column ox = 16p + i) reads input column
 * ox*sw - pw + kj*dw where that lies in [0, W), `at` being the first lane's. */
static void unfold_pieces(const tg_kwindow *w, piece *table) {
    for (int64_t ox0 = 0, p = 0; ox0 < w->ow; ox0 += 16, p++)
        for (int64_t kj = 0; kj < w->kw; kj++) {
            const int64_t ix0 = ox0 * w->sw - w->pw + kj * w->dw;
            uint32_t lanes = 0;
            for (int64_t i = 0; i < 16 && ox0 + i < w->ow; i++)
                if (ix0 + i * w->sw >= 0 && ix0 + i * w->sw < w->w) lanes |= 1u << i;
            table[p * w->kw + kj] = (piece){
                .at = lanes ? ix0 + __builtin_ctz(lanes) * w->sw : 0, .lanes = (__mmask16)lanes};
        }
}

/* plane [H, W] -> rows [KH*KW, OH*OW] of one (n, c) when the horizontal stride is 1: each
 * 16-wide piece of an output row is one expanding load from its input row (pad in the lanes
 * unfold_pieces leaves out) and one masked store, with no per-row bounds arithmetic. */
static void unfold_pieces_float(const tg_kwindow *w, const piece *table,
                                const float *restrict plane, float *restrict rows, int64_t rs,
                                float pad) {
    const int64_t pieces = pieces_in(w->ow);
    const __m512 pads = _mm512_set1_ps(pad);
    for (int64_t ki = 0; ki < w->kh; ki++)
        for (int64_t kj = 0; kj < w->kw; kj++) {
            float *row = rows + (ki * w->kw + kj) * rs;
            for (int64_t oy = 0; oy < w->oh; oy++) {
                const int64_t iy = oy * w->sh - w->ph + ki * w->dh;
                const bool inside = iy >= 0 && iy < w->h;
                const float *src = plane + (inside ? iy * w->w : 0);
                for (int64_t p = 0; p < pieces; p++) {
                    const piece *e = &table[p * w->kw + kj];
                    const __m512 v =
                        inside ? _mm512_mask_expandloadu_ps(pads, e->lanes, src + e->at) : pads;
                    _mm512_mask_storeu_ps(row + oy * w->ow + 16 * p, piece_lanes(w->ow, p), v);
                }
            }
        }
}

/* acc plus the elements of line that piece e's lanes read, in those lanes. */
static inline __m512 add_piece(__m512 acc, const piece *e, const float *line) {
    return _mm512_add_ps(acc, _mm512_maskz_expandloadu_ps(e->lanes, line + e->at));
}

/* rows [KH*KW, OH*OW] -> plane [H, W] (overwritten) of one (n, c), as a gather: each 16-wide
 * piece of an input row adds up, in a register, what every window entry contributes to it (one
 * expanding load of consecutive row elements into the lanes fold_pieces gives), and is stored
 * once; up to four pieces at a time, so four chains of additions run side by side. The
 * scatter-adds of fold_plane read back what they just stored at an overlapping offset, which
 * stalls store forwarding; the table path is scalar. */
static void fold_pieces_float(const tg_kwindow *w, const piece *table,
                              const float *restrict rows, int64_t rs, float *restrict plane) {
    const int64_t pieces = pieces_in(w->w);
    for (int64_t iy = 0; iy < w->h; iy++) {
        float *out = plane + iy * w->w;
        for (int64_t p0 = 0; p0 < pieces; p0 += 4) {
            const int64_t np = pieces - p0 < 4 ? pieces - p0 : 4;
            __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
            for (int64_t ki = 0; ki < w->kh; ki++) {
                const int64_t sy = iy + w->ph - ki * w->dh; /* oy * sh */
                if (sy < 0 || (w->sh != 1 && sy % w->sh != 0) || sy / w->sh >= w->oh) continue;
                const float *line = rows + ki * w->kw * rs + sy / w->sh * w->ow;
                for (int64_t kj = 0; kj < w->kw; kj++, line += rs) {
                    const piece *e = table + p0 * w->kw + kj; /* piece p0 + q: e[q * KW] */
                    acc0 = add_piece(acc0, &e[0], line);
                    if (np > 1) acc1 = add_piece(acc1, &e[w->kw], line);
                    if (np > 2) acc2 = add_piece(acc2, &e[2 * w->kw], line);
                    if (np > 3) acc3 = add_piece(acc3, &e[3 * w->kw], line);
                }
            }
            const __m512 accs[4] = {acc0, acc1, acc2, acc3};
            for (int64_t q = 0; q < np; q++)
                _mm512_mask_storeu_ps(out + 16 * (p0 + q), piece_lanes(w->w, p0 + q), accs[q]);
        }
    }
}

/* The elements of a row that piece e's lanes read with the row's stride, 0 in the other lanes:
 * lane i reads line[e->at + (i - first) * stride], first being e's lowest lane. An expanding
 * load for stride 1, two loads and a permutation for stride 2, else a gather with 32-bit
 * offsets. */
static inline __m512 strided_piece(const piece *e, const float *line, int64_t stride) {
    const float *row = line + e->at;
    if (stride == 1) return _mm512_maskz_expandloadu_ps(e->lanes, row);
    const int first = __builtin_ctz(e->lanes), count = __builtin_popcount(e->lanes);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i at = _mm512_mullo_epi32(_mm512_sub_epi32(lane, _mm512_set1_epi32(first)),
                                          _mm512_set1_epi32((int32_t)stride));
    if (stride == 2) { /* columns 0, 2, .., 2 (count - 1) of the 32 in two vectors */
        const uint32_t span = count >= 16 ? 0xffffffffu : (1u << (2 * count)) - 1;
        const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)(span & 0x5555u), row);
        const __m512 hi = _mm512_maskz_loadu_ps((__mmask16)((span >> 16) & 0x5555u), row + 16);
        return _mm512_maskz_permutex2var_ps(e->lanes, lo, at, hi);
    }
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), e->lanes, at, row, 4);
}

/* The elements of base at the 16 offsets from `offsets` (lanes `in`), 0 where an offset is -1:
 * one masked gather. *at gets the offsets, *real the lanes that have one. */
static inline __m512 gather_offsets(const int32_t *offsets, __mmask16 in, const float *base,
                                    __m512i *at, __mmask16 *real) {
    *at = _mm512_maskz_loadu_epi32(in, offsets);
    *real = _mm512_mask_cmpge_epi32_mask(in, *at, _mm512_setzero_si512());
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), *real, *at, base, 4);
}

/* fold of windows that do not overlap (each input position read by at most one window entry,
 * as in pooling with stride = kernel): owner[i] = the offset k*rs + l in a plane's rows of the
 * entry (k, l) that reads input position i, or -1. False when two entries read one position,
 * or an offset would not fit 32 bits. Takes KH*KW*OH*OW <= TABLE_MAX. */
static bool fold_owners(const tg_kwindow *w, int64_t rs, int32_t *owner) {
    const int64_t kk = w->kh * w->kw, L = w->oh * w->ow, hw = w->h * w->w;
    if ((kk - 1) * rs + L > INT32_MAX) return false;
    int32_t table[kk * L];
    window_table(w, table);
    for (int64_t i = 0; i < hw; i++) owner[i] = -1;
    for (int64_t k = 0; k < kk; k++)
        for (int64_t l = 0; l < L; l++) {
            const int32_t i = table[k * L + l];
            if (i < 0) continue;
            if (owner[i] >= 0) return false;
            owner[i] = (int32_t)(k * rs + l);
        }
    return true;
}

/* rows of one (n, c) -> plane [H, W] (overwritten) through fold_owners' table: each 16 input
 * positions are one masked gather (0 where no window reads) and one store. */
static void fold_owned_float(int64_t hw, const int32_t *restrict owner, const float *restrict rows,
                             float *restrict plane) {
    for (int64_t i0 = 0; i0 < hw; i0 += 16) {
        const __mmask16 in_plane = piece_lanes(hw - i0, 0);
        __m512i at;
        __mmask16 owned;
        _mm512_mask_storeu_ps(plane + i0, in_plane,
                              gather_offsets(owner + i0, in_plane, rows, &at, &owned));
    }
}

/* Runs BODY for each of the KH*KW entries of a window table (table[k*L + l] the plane offset
 * entry (k, l) reads, -1 for padding) for the 16 outputs from l0 (lanes in_row): BODY sees the
 * entry's elements `v` (gather_offsets: 0 for padding), their offsets `at` and the lanes `real`
 * that read one. */
#define FOR_TABLE_ENTRIES(kk, L, table, plane, l0, in_row, ...)                               \
    for (int64_t k = 0; k < (kk); k++) {                                                      \
        __m512i at;                                                                           \
        __mmask16 real;                                                                       \
        const __m512 v = gather_offsets((table) + k * (L) + (l0), (in_row), (plane), &at, &real); \
        __VA_ARGS__;                                                                          \
    }

/* plane [H, W] -> out [OH*OW] of one (n, c), as sum_plane, from a window table (table[k*L + l]
 * the plane offset entry (k, l) reads, -1 for padding): each 16 outputs add their KH*KW
 * entries in a register, one masked gather each, and are stored once. */
static void sum_table_float(int64_t kk, int64_t L, const int32_t *restrict table,
                            const float *restrict plane, float *restrict out) {
    for (int64_t l0 = 0; l0 < L; l0 += 16) {
        const __mmask16 in_row = piece_lanes(L - l0, 0);
        __m512 acc = _mm512_setzero_ps();
        FOR_TABLE_ENTRIES(kk, L, table, plane, l0, in_row, acc = _mm512_add_ps(acc, v));
        _mm512_mask_storeu_ps(out + l0, in_row, acc);
    }
}

/* dst[i] = at[i] widened to 64 bits, for the lanes in `lanes`. */
static inline void store_offsets(int64_t *dst, __mmask16 lanes, __m512i at) {
    _mm512_mask_storeu_epi64(dst, (__mmask8)lanes,
                             _mm512_cvtepi32_epi64(_mm512_castsi512_si256(at)));
    _mm512_mask_storeu_epi64(dst + 8, (__mmask8)(lanes >> 8),
                             _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(at, 1)));
}

/* The running maxima of 16 outputs: values, their offsets (-1 before the first), and the lanes
 * that have taken an element. */
typedef struct running_max {
    __m512 best;
    __m512i at;
    __mmask16 seen;
} running_max;

static inline running_max no_max(void) {
    return (running_max){_mm512_setzero_ps(), _mm512_set1_epi32(-1), 0};
}

/* m after the elements v (at offsets pos) in the lanes `real`: each taken where it is a lane's
 * first, or larger than its maximum, or NaN while the maximum is not (so the first maximum and
 * the first NaN stay). */
static inline void max_take(running_max *m, __m512 v, __m512i pos, __mmask16 real) {
    const __mmask16 better =
        _mm512_cmp_ps_mask(v, m->best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __mmask16 take =
        real & (~m->seen | (_mm512_cmp_ps_mask(m->best, m->best, _CMP_ORD_Q) & better));
    m->best = _mm512_mask_mov_ps(m->best, take, v);
    m->at = _mm512_mask_mov_epi32(m->at, take, pos);
    m->seen |= real;
}

/* plane [H, W] -> idx [OH*OW] of one (n, c), as argmax_plane, from a window table: each 16
 * outputs keep their running maximum and its offset in registers over the KH*KW entries (one
 * masked gather each) and are stored once. */
static void argmax_table_float(int64_t kk, int64_t L, const int32_t *restrict table,
                               const float *restrict plane, int64_t *restrict idx) {
    for (int64_t l0 = 0; l0 < L; l0 += 16) {
        const __mmask16 in_row = piece_lanes(L - l0, 0);
        running_max m = no_max();
        FOR_TABLE_ENTRIES(kk, L, table, plane, l0, in_row, max_take(&m, v, at, real));
        store_offsets(idx + l0, in_row, m.at);
    }
}

/* Runs BODY for every window entry (ki, kj) of output row oy and piece p that has lanes inside
 * the plane: BODY sees the piece `e` (from unfold_pieces' table), the input row `iy` and its
 * elements `line`. */
#define FOR_PIECE_ENTRIES(w, table, plane, oy, p, ...)                                        \
    for (int64_t ki = 0; ki < (w)->kh; ki++) {                                                \
        const int64_t iy = (oy) * (w)->sh - (w)->ph + ki * (w)->dh;                           \
        if (iy < 0 || iy >= (w)->h) continue;                                                 \
        const float *line = (plane) + iy * (w)->w;                                            \
        for (int64_t kj = 0; kj < (w)->kw; kj++) {                                            \
            const piece *e = &(table)[(p) * (w)->kw + kj];                                    \
            if (e->lanes) __VA_ARGS__;                                                        \
        }                                                                                     \
    }

/* plane [H, W] -> out [OH, OW] of one (n, c), as sum_plane: each 16-wide piece of an output row
 * adds its window's entries in a register (strided_piece, lanes and offsets from the table
 * unfold_pieces builds) and is stored once. */
static void sum_plane_pieces_float(const tg_kwindow *w, const piece *table,
                                   const float *restrict plane, float *restrict out) {
    const int64_t pieces = pieces_in(w->ow);
    for (int64_t oy = 0; oy < w->oh; oy++)
        for (int64_t p = 0; p < pieces; p++) {
            __m512 acc = _mm512_setzero_ps();
            FOR_PIECE_ENTRIES(w, table, plane, oy, p,
                              acc = _mm512_add_ps(acc, strided_piece(e, line, w->sw)));
            _mm512_mask_storeu_ps(out + oy * w->ow + 16 * p, piece_lanes(w->ow, p), acc);
        }
}

/* plane [H, W] -> idx [OH, OW] of one (n, c), as argmax_plane: each 16-wide piece of an output
 * row keeps its running maximum and offset in registers over the window's entries
 * (strided_piece, from the table unfold_pieces builds) and is stored once. Offsets are 32-bit:
 * planes below 2^31 elements. */
static void argmax_plane_pieces_float(const tg_kwindow *w, const piece *table,
                                      const float *restrict plane, int64_t *restrict idx) {
    const int64_t pieces = pieces_in(w->ow);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int32_t)w->sw));
    for (int64_t oy = 0; oy < w->oh; oy++)
        for (int64_t p = 0; p < pieces; p++) {
            running_max m = no_max();
            /* lane i of entry e reads offset iy*W + e->at + (i - first) * sw */
            FOR_PIECE_ENTRIES(w, table, plane, oy, p, {
                const int64_t first = __builtin_ctz(e->lanes);
                const __m512i pos = _mm512_add_epi32(
                    step, _mm512_set1_epi32((int32_t)(iy * w->w + e->at - first * w->sw)));
                max_take(&m, strided_piece(e, line, w->sw), pos, e->lanes);
            });
            store_offsets(idx + oy * w->ow + 16 * p, piece_lanes(w->ow, p), m.at);
        }
}
#endif

UNFOLD_PLANE(float)
UNFOLD_PLANE(double)
FOLD_PLANE(float)
FOLD_PLANE(double)
TABLE_PLANES(float)
TABLE_PLANES(double)
ARGMAX_ROWS(float)
ARGMAX_ROWS(double)
SUM_ROWS(float)
SUM_ROWS(double)
SUM_PLANE(float)
SUM_PLANE(double)
ARGMAX_PLANE(float)
ARGMAX_PLANE(double)

/* Runs the statement for every plane j in [0, N*C), on threads when the job is large. */
#define FOR_PLANES(w, ...)                                                                    \
    do {                                                                                      \
        const int64_t planes = (w)->n * (w)->c;                                               \
        if (planes > 1 && planes * (w)->kh * (w)->kw * (w)->oh * (w)->ow >= TG_PARALLEL_MIN) { \
            _Pragma("omp parallel for") for (int64_t j = 0; j < planes; j++) __VA_ARGS__    \
        } else {                                                                              \
            for (int64_t j = 0; j < planes; j++) __VA_ARGS__                                \
        }                                                                                     \
    } while (0)

/* The j-th plane visited: where it starts in x, where its rows start in cols and the distance
 * between its rows. Layout [N, C*KH*KW, L]: plane j is (n, c) = (j / C, j % C), rows
 * contiguous. Batch inner, [C*KH*KW, N, L]: plane j is (n, c) = (j % N, j / N), channel by
 * channel, its rows N*L apart. Shared rows, [N, C, L]: plane j is (j / C, j % C), its one row
 * read for every window entry (distance 0). */
static void plane_at(const tg_kwindow *w, int64_t j, int64_t *at, int64_t *start, int64_t *rs) {
    const int64_t kk = w->kh * w->kw, L = w->oh * w->ow;
    if (w->shared_rows) {
        *at = j * w->h * w->w;
        *start = j * L;
        *rs = 0;
    } else if (w->batch_inner) {
        const int64_t n = j % w->n, c = j / w->n;
        *at = (n * w->c + c) * w->h * w->w;
        *start = (c * kk * w->n + n) * L;
        *rs = w->n * L;
    } else {
        *at = j * w->h * w->w;
        *start = j * kk * L;
        *rs = L;
    }
}

/* Whether planes go through a window table rather than row by row: short output rows, where
 * the row loops cost more in control than in copying, and windows small enough for a table
 * on the stack. */
static bool use_table(const tg_kwindow *w, int64_t row_min) {
    return w->ow < row_min && w->kh * w->kw * w->oh * w->ow <= TABLE_MAX &&
           w->h * w->w <= INT32_MAX;
}

/* Whether the portable window sums and maxima unfold a plane into rows: its table fits, and
 * so do the rows, plus one for the running maxima, in ROWS_BYTES of each thread's stack. */
static bool use_rows(const tg_kwindow *w, size_t elem_size) {
    const int64_t L = w->oh * w->ow;
    return use_table(w, INT64_MAX) &&
           (size_t)((w->kh * w->kw + 1) * L) * elem_size <= ROWS_BYTES;
}

#ifdef __AVX512F__
/* Whether a piece table for rows of `width` and KW window columns fits on the stack. */
static bool pieces_fit(int64_t width, int64_t kw) {
    return pieces_in(width) * kw <= PIECES_MAX;
}
#endif

/* Runs CALL for every plane in plane_at's order: CALL sees the plane's offset `at` in x, and
 * `start` and `rs` of its rows in cols. */
#define WINDOW_LOOP(...)                                                                       \
    FOR_PLANES(w, {                                                                            \
        int64_t at, start, rs;                                                                 \
        plane_at(w, j, &at, &start, &rs);                                                      \
        __VA_ARGS__;                                                                           \
    })

void tg_k_unfold2d(tg_dtype dt, const tg_kwindow *w, const void *x, void *cols,
                   double pad_value) {
    const int64_t kk = w->kh * w->kw, L = w->oh * w->ow;
    if (use_table(w, UNFOLD_ROW_MIN)) {
        int32_t table[kk * L];
        window_table(w, table);
        if (dt == TG_F32) {
            WINDOW_LOOP(unfold_table_float(kk, L, table, (const float *)x + at,
                                           (float *)cols + start, rs, (float)pad_value));
        } else {
            WINDOW_LOOP(unfold_table_double(kk, L, table, (const double *)x + at,
                                            (double *)cols + start, rs, pad_value));
        }
#ifdef __AVX512F__
    } else if (dt == TG_F32 && w->sw == 1 && pieces_fit(w->ow, w->kw)) {
        piece table[pieces_in(w->ow) * w->kw];
        unfold_pieces(w, table);
        WINDOW_LOOP(unfold_pieces_float(w, table, (const float *)x + at, (float *)cols + start,
                                        rs, (float)pad_value));
#endif
    } else if (dt == TG_F32) {
        WINDOW_LOOP(unfold_plane_float(w, (const float *)x + at, (float *)cols + start, rs,
                                       (float)pad_value));
    } else {
        WINDOW_LOOP(unfold_plane_double(w, (const double *)x + at,
                                        (double *)cols + start, rs, pad_value));
    }
}

void tg_k_fold2d(tg_dtype dt, const tg_kwindow *w, const void *cols, void *x) {
    const int64_t kk = w->kh * w->kw, L = w->oh * w->ow, hw = w->h * w->w;
#ifdef __AVX512F__
    /* windows that do not overlap (tried where the stride is at least the kernel): a gather
     * per 16 positions (2x2 stride 2 on 28x28 planes 2x, on 10x10 2.8x, against the pieces
     * and table paths) */
    if (dt == TG_F32 && w->sh >= w->kh && w->sw >= w->kw && kk * L <= TABLE_MAX &&
        hw <= TABLE_MAX) {
        int64_t at0, start0, rs0;
        plane_at(w, 0, &at0, &start0, &rs0);
        int32_t owner[hw];
        if (fold_owners(w, rs0, owner)) {
            WINDOW_LOOP(fold_owned_float(hw, owner, (const float *)cols + start,
                                         (float *)x + at));
            return;
        }
    }
    /* strided folds of narrow planes: the table path is faster (a 6-wide plane 1.6x) */
    if (dt == TG_F32 && (w->sw == 1 || w->w >= FOLD_ROW_MIN) && pieces_fit(w->w, w->kw)) {
        piece table[pieces_in(w->w) * w->kw];
        fold_pieces(w, table);
        WINDOW_LOOP(fold_pieces_float(w, table, (const float *)cols + start, rs,
                                      (float *)x + at));
        return;
    }
#endif
    if (use_table(w, FOLD_ROW_MIN)) {
        int32_t table[kk * L];
        window_table(w, table);
        if (dt == TG_F32) {
            WINDOW_LOOP(fold_table_float(kk, L, hw, table, (const float *)cols + start, rs,
                                         (float *)x + at));
        } else {
            WINDOW_LOOP(fold_table_double(kk, L, hw, table, (const double *)cols + start,
                                          rs, (double *)x + at));
        }
    } else if (dt == TG_F32) {
        WINDOW_LOOP(fold_plane_float(w, (const float *)cols + start, rs, (float *)x + at));
    } else {
        WINDOW_LOOP(fold_plane_double(w, (const double *)cols + start, rs,
                                      (double *)x + at));
    }
}

void tg_k_window_sum2d(tg_dtype dt, const tg_kwindow *w, const void *x, void *y) {
    const int64_t hw = w->h * w->w, L = w->oh * w->ow;
#ifdef __AVX512F__
    /* strided windows gather faster from a table than piece by piece (2x2 stride 2 on 28x28
     * planes 1.4x, on 10x10 3.2x), stride 1 expands faster from rows of UNFOLD_ROW_MIN */
    if (dt == TG_F32 && use_table(w, w->sw > 1 ? INT64_MAX : UNFOLD_ROW_MIN)) {
        const int64_t kk = w->kh * w->kw;
        int32_t table[kk * L];
        window_table(w, table);
        FOR_PLANES(w, {
            sum_table_float(kk, L, table, (const float *)x + j * hw, (float *)y + j * L);
        });
        return;
    }
    if (dt == TG_F32 && pieces_fit(w->ow, w->kw)) {
        piece table[pieces_in(w->ow) * w->kw];
        unfold_pieces(w, table);
        FOR_PLANES(w, {
            sum_plane_pieces_float(w, table, (const float *)x + j * hw, (float *)y + j * L);
        });
        return;
    }
#endif
    if (use_rows(w, tg_dtype_size(dt))) {
        const int64_t kk = w->kh * w->kw;
        int32_t table[kk * L];
        window_table(w, table);
        if (dt == TG_F32) {
            FOR_PLANES(w, {
                float scratch[kk * L];
                sum_rows_float(kk, L, table, (const float *)x + j * hw, (float *)y + j * L,
                               scratch);
            });
        } else {
            FOR_PLANES(w, {
                double scratch[kk * L];
                sum_rows_double(kk, L, table, (const double *)x + j * hw, (double *)y + j * L,
                                scratch);
            });
        }
    } else if (dt == TG_F32) {
        FOR_PLANES(w, { sum_plane_float(w, (const float *)x + j * hw, (float *)y + j * L); });
    } else {
        FOR_PLANES(w, {
            sum_plane_double(w, (const double *)x + j * hw, (double *)y + j * L);
        });
    }
}

void tg_k_window_argmax2d(tg_dtype dt, const tg_kwindow *w, const void *x, int64_t *idx) {
    const int64_t hw = w->h * w->w, L = w->oh * w->ow;
#ifdef __AVX512F__
    if (dt == TG_F32 && use_table(w, INT64_MAX)) {
        const int64_t kk = w->kh * w->kw;
        int32_t table[kk * L];
        window_table(w, table);
        FOR_PLANES(w, {
            argmax_table_float(kk, L, table, (const float *)x + j * hw, idx + j * L);
        });
        return;
    }
    if (dt == TG_F32 && hw <= INT32_MAX && pieces_fit(w->ow, w->kw)) {
        piece table[pieces_in(w->ow) * w->kw];
        unfold_pieces(w, table);
        FOR_PLANES(w, {
            argmax_plane_pieces_float(w, table, (const float *)x + j * hw, idx + j * L);
        });
        return;
    }
#endif
    if (use_rows(w, tg_dtype_size(dt))) {
        const int64_t kk = w->kh * w->kw;
        int32_t table[kk * L];
        window_table(w, table);
        if (dt == TG_F32) {
            FOR_PLANES(w, {
                float scratch[(kk + 1) * L];
                argmax_rows_float(kk, L, table, (const float *)x + j * hw, idx + j * L,
                                  scratch);
            });
        } else {
            FOR_PLANES(w, {
                double scratch[(kk + 1) * L];
                argmax_rows_double(kk, L, table, (const double *)x + j * hw, idx + j * L,
                                   scratch);
            });
        }
    } else if (dt == TG_F32) {
        FOR_PLANES(w, { argmax_plane_float(w, (const float *)x + j * hw, idx + j * L); });
    } else {
        FOR_PLANES(w, { argmax_plane_double(w, (const double *)x + j * hw, idx + j * L); });
    }
}
