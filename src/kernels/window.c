/* Sliding-window kernels: unfold2d (im2col) and its adjoint fold2d (col2im), over
 * x [N, C, H, W] <-> cols [N, C*KH*KW, OH*OW]. Each (n, c) plane is independent, so planes are
 * spread over threads; the inner copy along a row is contiguous when the stride is 1. */
#include "kernels/kernels.h"

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

#define UNFOLD(T)                                                                             \
    do {                                                                                      \
        const T *px = x;                                                                      \
        T *pc = cols;                                                                         \
        const T pad = (T)pad_value;                                                           \
        const int64_t L = w->oh * w->ow, K = w->kh * w->kw;                                   \
        _Pragma("omp parallel for if (w->n * w->c * K * L >= TG_PARALLEL_MIN)")              \
        for (int64_t nc = 0; nc < w->n * w->c; nc++) {                                        \
            const T *plane = px + nc * w->h * w->w;                                           \
            T *rows = pc + nc * K * L; /* [n][c*K + k] is contiguous in nc */                 \
            for (int64_t ki = 0; ki < w->kh; ki++)                                            \
                for (int64_t kj = 0; kj < w->kw; kj++) {                                      \
                    T *row = rows + (ki * w->kw + kj) * L;                                    \
                    int64_t lo, hi;                                                           \
                    valid_cols(w, kj, &lo, &hi);                                              \
                    const int64_t coff = kj * w->dw - w->pw;                                  \
                    for (int64_t oy = 0; oy < w->oh; oy++) {                                  \
                        T *dst = row + oy * w->ow;                                            \
                        int64_t iy = oy * w->sh - w->ph + ki * w->dh;                         \
                        if (iy < 0 || iy >= w->h) {                                           \
                            for (int64_t ox = 0; ox < w->ow; ox++) dst[ox] = pad;             \
                            continue;                                                         \
                        }                                                                     \
                        const T *src = plane + iy * w->w; /* iw = ox * sw + coff */           \
                        for (int64_t ox = 0; ox < lo; ox++) dst[ox] = pad;                    \
                        if (w->sw == 1) {                                                     \
                            for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox + coff];    \
                        } else {                                                              \
                            for (int64_t ox = lo; ox < hi; ox++)                              \
                                dst[ox] = src[ox * w->sw + coff];                             \
                        }                                                                     \
                        for (int64_t ox = hi; ox < w->ow; ox++) dst[ox] = pad;                \
                    }                                                                         \
                }                                                                             \
        }                                                                                     \
    } while (0)

void tg_k_unfold2d(tg_dtype dt, const tg_kwindow *w, const void *x, void *cols,
                   double pad_value) {
    if (dt == TG_F32) UNFOLD(float);
    else UNFOLD(double);
}

#define FOLD(T)                                                                               \
    do {                                                                                      \
        T *px = x;                                                                            \
        const T *pc = cols;                                                                   \
        const int64_t L = w->oh * w->ow, K = w->kh * w->kw;                                   \
        _Pragma("omp parallel for if (w->n * w->c * K * L >= TG_PARALLEL_MIN)")              \
        for (int64_t nc = 0; nc < w->n * w->c; nc++) {                                        \
            T *plane = px + nc * w->h * w->w;                                                 \
            const T *rows = pc + nc * K * L;                                                  \
            for (int64_t i = 0; i < w->h * w->w; i++) plane[i] = 0;                           \
            for (int64_t ki = 0; ki < w->kh; ki++)                                            \
                for (int64_t kj = 0; kj < w->kw; kj++) {                                      \
                    const T *row = rows + (ki * w->kw + kj) * L;                              \
                    int64_t lo, hi;                                                           \
                    valid_cols(w, kj, &lo, &hi);                                              \
                    const int64_t coff = kj * w->dw - w->pw;                                  \
                    for (int64_t oy = 0; oy < w->oh; oy++) {                                  \
                        int64_t iy = oy * w->sh - w->ph + ki * w->dh;                         \
                        if (iy < 0 || iy >= w->h) continue;                                   \
                        const T *src = row + oy * w->ow;                                      \
                        T *dst = plane + iy * w->w; /* iw = ox * sw + coff */                 \
                        if (w->sw == 1) {                                                     \
                            for (int64_t ox = lo; ox < hi; ox++) dst[ox + coff] += src[ox];   \
                        } else {                                                              \
                            for (int64_t ox = lo; ox < hi; ox++)                              \
                                dst[ox * w->sw + coff] += src[ox];                            \
                        }                                                                     \
                    }                                                                         \
                }                                                                             \
        }                                                                                     \
    } while (0)

void tg_k_fold2d(tg_dtype dt, const tg_kwindow *w, const void *cols, void *x) {
    if (dt == TG_F32) FOLD(float);
    else FOLD(double);
}
