/* Sliding-window kernels: unfold2d (im2col) and its adjoint fold2d (col2im), over
 * x [N, C, H, W] <-> cols [N, C*KH*KW, OH*OW] or, batch inner, [C*KH*KW, N, OH*OW]. Each (n, c)
 * plane is independent: one plane is one call of a plane function, which writes (or reads) its
 * KH*KW rows of OH*OW entries at the layout's row stride, and large jobs spread planes over
 * threads (small ones stay out of OpenMP entirely: an `omp parallel if (false)` region still
 * builds a team).
 *
 * Two ways through a plane. When output rows are short (OW below UNFOLD_ROW_MIN or
 * FOLD_ROW_MIN: the small images deep in MNIST- and CIFAR-sized nets) and the window has at
 * most TABLE_MAX entries (KH*KW*OH*OW), a table of the input offset each entry reads (-1 for
 * padding) is built once per call, and a plane is one gather (unfold) or scatter-add (fold)
 * loop over it: row loops spend more on loop control than on copying when rows are a few
 * elements long. Otherwise the plane goes row by row, contiguous when the stride is 1 (2.4x
 * faster than the table on 32-wide rows, 1.4x slower on 8-wide ones), each row in masked
 * 16-wide chunks (RUNS). */
#include <stdint.h>

#include "kernels/kernels.h"

/* Output row lengths from which planes go row by row: the gather of unfold gains sooner than
 * the scatter-add of fold (measured on 8-, 10-, 13-, 14- and 32-wide rows). */
enum { TABLE_MAX = 1 << 14, UNFOLD_ROW_MIN = 10, FOLD_ROW_MIN = 12 };

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

UNFOLD_PLANE(float)
UNFOLD_PLANE(double)
FOLD_PLANE(float)
FOLD_PLANE(double)
TABLE_PLANES(float)
TABLE_PLANES(double)

/* Runs the statement for every plane nc in [0, N*C), on threads when the job is large. */
#define FOR_PLANES(w, ...)                                                                    \
    do {                                                                                      \
        const int64_t planes = (w)->n * (w)->c;                                               \
        if (planes > 1 && planes * (w)->kh * (w)->kw * (w)->oh * (w)->ow >= TG_PARALLEL_MIN) { \
            _Pragma("omp parallel for") for (int64_t nc = 0; nc < planes; nc++) __VA_ARGS__  \
        } else {                                                                              \
            for (int64_t nc = 0; nc < planes; nc++) __VA_ARGS__                              \
        }                                                                                     \
    } while (0)

/* Where the rows of plane nc = n*C + c start in cols, and the distance between its rows:
 * [N, C*KH*KW, L] or, batch inner, [C*KH*KW, N, L]. */
static void plane_rows(const tg_kwindow *w, int64_t nc, int64_t *start, int64_t *rs) {
    const int64_t kk = w->kh * w->kw, L = w->oh * w->ow;
    if (w->batch_inner) {
        *start = ((nc % w->c) * kk * w->n + nc / w->c) * L;
        *rs = w->n * L;
    } else {
        *start = nc * kk * L;
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

/* Runs CALL for every plane: CALL sees the offset `at` of plane nc in x, and `start` and
 * `rs` of its rows in cols. */
#define WINDOW_LOOP(...)                                                                       \
    FOR_PLANES(w, {                                                                            \
        int64_t start, rs;                                                                     \
        plane_rows(w, nc, &start, &rs);                                                        \
        const int64_t at = nc * w->h * w->w;                                                   \
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
