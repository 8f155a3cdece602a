/* Sliding-window kernels: unfold2d (im2col) and its adjoint fold2d (col2im), over
 * x [N, C, H, W] <-> cols [N, C*KH*KW, OH*OW]. Each (n, c) plane is independent: one plane is
 * one call of a plane function, and large jobs spread planes over threads (small ones stay out
 * of OpenMP entirely: an `omp parallel if (false)` region still builds a team).
 *
 * Two ways through a plane. When the window has at most TABLE_MAX entries (KH*KW*OH*OW, the
 * small images of MNIST- and CIFAR-sized nets), a table of the input offset each entry reads
 * (-1 for padding) is built once per call, and a plane is one gather (unfold) or scatter-add
 * (fold) loop over it: the row loops below spend more on loop control than on copying when
 * rows are a few elements long. Larger windows go row by row, contiguous when the stride is
 * 1. */
#include <stdint.h>

#include "kernels/kernels.h"

enum { TABLE_MAX = 1 << 14 };

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

#define TABLE_PLANES(T)                                                                            static void unfold_table_##T(int64_t n, const int32_t *restrict table,                                                    const T *restrict plane, T *restrict rows, T pad) {                  for (int64_t j = 0; j < n; j++) rows[j] = table[j] >= 0 ? plane[table[j]] : pad;          }                                                                                             static void fold_table_##T(int64_t n, int64_t hw, const int32_t *restrict table,                                        const T *restrict rows, T *restrict plane) {                           for (int64_t i = 0; i < hw; i++) plane[i] = 0;                                                for (int64_t j = 0; j < n; j++)                                                                   if (table[j] >= 0) plane[table[j]] += rows[j];                                        }

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

/* plane [H, W] -> rows [KH*KW, OH*OW] of one (n, c). */
#define UNFOLD_PLANE(T)                                                                        \
    static void unfold_plane_##T(const tg_kwindow *w, const T *restrict plane,               \
                                 T *restrict rows, T pad) {                                   \
        const int64_t L = w->oh * w->ow;                                                      \
        for (int64_t ki = 0; ki < w->kh; ki++)                                                \
            for (int64_t kj = 0; kj < w->kw; kj++) {                                          \
                T *row = rows + (ki * w->kw + kj) * L;                                        \
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
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox + coff];        \
                    } else {                                                                  \
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * w->sw + coff]; \
                    }                                                                         \
                    for (int64_t ox = hi; ox < w->ow; ox++) dst[ox] = pad;                    \
                }                                                                             \
            }                                                                                 \
    }

/* rows [KH*KW, OH*OW] -> plane [H, W] (overwritten) of one (n, c), overlaps summed. */
#define FOLD_PLANE(T)                                                                          \
    static void fold_plane_##T(const tg_kwindow *w, const T *restrict rows,                  \
                               T *restrict plane) {                                           \
        const int64_t L = w->oh * w->ow;                                                      \
        for (int64_t i = 0; i < w->h * w->w; i++) plane[i] = 0;                               \
        for (int64_t ki = 0; ki < w->kh; ki++)                                                \
            for (int64_t kj = 0; kj < w->kw; kj++) {                                          \
                const T *row = rows + (ki * w->kw + kj) * L;                                  \
                int64_t lo, hi;                                                               \
                valid_cols(w, kj, &lo, &hi);                                                  \
                const int64_t coff = kj * w->dw - w->pw;                                      \
                for (int64_t oy = 0; oy < w->oh; oy++) {                                      \
                    const int64_t iy = oy * w->sh - w->ph + ki * w->dh;                       \
                    if (iy < 0 || iy >= w->h) continue;                                       \
                    const T *src = row + oy * w->ow;                                          \
                    T *dst = plane + iy * w->w; /* iw = ox * sw + coff */                     \
                    if (w->sw == 1) {                                                         \
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox + coff] += src[ox];       \
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

/* Runs CALL for every plane nc in [0, N*C), on threads when the job is large. */
#define FOR_PLANES(w, CALL)                                                                    \
    do {                                                                                      \
        const int64_t planes = (w)->n * (w)->c;                                               \
        if (planes > 1 && planes * (w)->kh * (w)->kw * (w)->oh * (w)->ow >= TG_PARALLEL_MIN) { \
            _Pragma("omp parallel for") for (int64_t nc = 0; nc < planes; nc++) CALL;         \
        } else {                                                                              \
            for (int64_t nc = 0; nc < planes; nc++) CALL;                                     \
        }                                                                                     \
    } while (0)

void tg_k_unfold2d(tg_dtype dt, const tg_kwindow *w, const void *x, void *cols,
                   double pad_value) {
    const int64_t hw = w->h * w->w, kl = w->kh * w->kw * w->oh * w->ow;
    if (kl <= TABLE_MAX && hw <= INT32_MAX) {
        int32_t table[kl];
        window_table(w, table);
        if (dt == TG_F32) {
            FOR_PLANES(w, unfold_table_float(kl, table, (const float *)x + nc * hw,
                                             (float *)cols + nc * kl, (float)pad_value));
        } else {
            FOR_PLANES(w, unfold_table_double(kl, table, (const double *)x + nc * hw,
                                              (double *)cols + nc * kl, pad_value));
        }
    } else if (dt == TG_F32) {
        FOR_PLANES(w, unfold_plane_float(w, (const float *)x + nc * hw, (float *)cols + nc * kl,
                                         (float)pad_value));
    } else {
        FOR_PLANES(w, unfold_plane_double(w, (const double *)x + nc * hw,
                                          (double *)cols + nc * kl, pad_value));
    }
}

void tg_k_fold2d(tg_dtype dt, const tg_kwindow *w, const void *cols, void *x) {
    const int64_t hw = w->h * w->w, kl = w->kh * w->kw * w->oh * w->ow;
    if (kl <= TABLE_MAX && hw <= INT32_MAX) {
        int32_t table[kl];
        window_table(w, table);
        if (dt == TG_F32) {
            FOR_PLANES(w, fold_table_float(kl, hw, table, (const float *)cols + nc * kl,
                                           (float *)x + nc * hw));
        } else {
            FOR_PLANES(w, fold_table_double(kl, hw, table, (const double *)cols + nc * kl,
                                            (double *)x + nc * hw));
        }
    } else if (dt == TG_F32) {
        FOR_PLANES(w, fold_plane_float(w, (const float *)cols + nc * kl, (float *)x + nc * hw));
    } else {
        FOR_PLANES(w, fold_plane_double(w, (const double *)cols + nc * kl, (double *)x + nc * hw));
    }
}
