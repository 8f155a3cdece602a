/* Kernels: plain loops and BLIS calls over raw buffers. No tape and no tensor structs here;
 * callers pass dtypes, shapes and strides (in elements). Every kernel supports f32 and f64;
 * the copy kernels are dtype-agnostic (element size). */
#ifndef TG_KERNELS_H
#define TG_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tapegrad.h"

/* Elements below which loops stay single-threaded, and multiply-adds below which a matrix
 * product does. Threads pay off only on work far larger than a thread team's start-up, and
 * on a machine busy with other work a team of spinning threads stalls whenever one of them is
 * descheduled (BLIS's barriers spin): small nets train faster and far more predictably with
 * their small products on one thread. Measured on 2 cores: 2^18 and 2^22 trained LeNet-5 (tanh
 * maps from 300k elements, GEMMs from 3M multiply-adds) 1.3x faster on two threads than 2^20
 * and 2^24 did and left seed 000's CNN (all its work below them) as fast; loops from 2^17
 * slowed it by 15%. From 2^21 rather than 2^22 multiply-adds a 128^3 product runs on two
 * threads as fast as BLIS called directly (1.9x one thread), the four nets unchanged. */
enum { TG_PARALLEL_MIN = 1 << 18, TG_GEMM_PARALLEL_MIN = 1 << 21 };

/* ---- elementwise ------------------------------------------------------------------------ */

/* y = f(x) elementwise over n elements; c0, c1 are the op's scalars where it has any. */
typedef enum tg_kunary {
    TG_U_NEG, TG_U_EXP, TG_U_LOG, TG_U_SQRT, TG_U_RSQRT, TG_U_ABS, TG_U_SQUARE, TG_U_TANH,
    TG_U_SIGMOID, TG_U_RELU, TG_U_SIGN, TG_U_LOG1P, TG_U_ERF,
    TG_U_POW,      /* x^c0 */
    TG_U_CLAMP,    /* min(max(x, c0), c1) */
    TG_U_ADD_S, TG_U_SUB_S, TG_U_MUL_S, TG_U_DIV_S, /* x op c0 */
    TG_U_RSUB_S, TG_U_RDIV_S,                       /* c0 op x */
    TG_U_GT_S, TG_U_GE_S, TG_U_LT_S, TG_U_LE_S, TG_U_EQ_S, /* x cmp c0 -> 1 or 0 */
} tg_kunary;

void tg_k_unary(tg_kunary op, tg_dtype dt, int64_t n, const void *x, void *y, double c0,
                double c1);

typedef enum tg_kbinary {
    TG_B_ADD, TG_B_SUB, TG_B_MUL, TG_B_DIV, TG_B_MAX, TG_B_MIN,
    TG_B_GT, TG_B_GE, TG_B_LT, TG_B_LE, TG_B_EQ,
    TG_B_TANH_GRAD,    /* b (1 - a^2), a = tanh's output */
    TG_B_SIGMOID_GRAD, /* b a (1 - a), a = sigmoid's output */
    TG_B_RELU_GRAD,    /* a > 0 ? b : 0, a = relu's input */
} tg_kbinary;

/* out[i] = a[i] op b[i] over `shape` (contiguous out); sa, sb: element strides of a and b
 * along each dim of shape (0 where broadcast). */
void tg_k_binary(tg_kbinary op, tg_dtype dt, int ndim, const int64_t *shape, const int64_t *sa,
                 const int64_t *sb, const void *a, const void *b, void *out);
/* out = mask != 0 ? a : b, with strides as tg_k_binary. */
void tg_k_where(tg_dtype dt, int ndim, const int64_t *shape, const int64_t *sm,
                const int64_t *sa, const int64_t *sb, const void *mask, const void *a,
                const void *b, void *out);
/* acc[i] += x[i] over n elements (in-place accumulation of gradients). */
void tg_k_accumulate(tg_dtype dt, int64_t n, void *acc, const void *x);

/* ---- reductions ------------------------------------------------------------------------- */

/* out = sum of x over the dims where out_strides is 0: x is contiguous with `shape`,
 * out_strides addresses out (numel out_numel) along each dim of shape. f32 sums of runs are
 * accumulated in double. */
void tg_k_sum(tg_dtype dt, int ndim, const int64_t *shape, const int64_t *out_strides,
              const void *x, void *out, int64_t out_numel);
/* x viewed as [outer, len, inner]: the max (or min) over len into out_val [outer, inner] and
 * the index of its first occurrence into out_idx (NaN counts as the maximum, as in PyTorch).
 * len >= 1. */
void tg_k_max_axis(tg_dtype dt, bool is_min, int64_t outer, int64_t len, int64_t inner,
                   const void *x, void *out_val, int64_t *out_idx);

/* ---- copies ----------------------------------------------------------------------------- */

/* dst[dst_strides . i] = src[src_strides . i] for every index i of shape. */
void tg_k_strided_copy(size_t elem_size, int ndim, const int64_t *shape,
                       const int64_t *src_strides, const void *src,
                       const int64_t *dst_strides, void *dst);
/* n elements of dst set to value (converted to dt). */
void tg_k_fill(tg_dtype dt, int64_t n, void *dst, double value);

/* ---- matrix product --------------------------------------------------------------------- */

/* C[m, n] = alpha * op(A) op(B) + beta * C, all row-major contiguous. op(A) is [m, k]: A is
 * stored [m, k], or [k, m] when trans_a. Likewise B: [k, n], or [n, k] when trans_b.
 * scratch: NULL, or room for m*n elements, which the product uses when tg_k_gemm_swaps. */
void tg_k_gemm(tg_dtype dt, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
               double alpha, const void *a, const void *b, double beta, void *c, void *scratch);
/* Whether tg_k_gemm, given scratch, computes C^T = op(B)^T op(A)^T there and transposes it into
 * C: for A [m, k] times B stored [n, k] with m < n, which BLIS runs faster with the operands
 * swapped (convolution weight gradients: m output channels, n inputs per window). */
bool tg_k_gemm_swaps(bool trans_a, bool trans_b, int64_t m, int64_t n, double beta);

/* ---- indexing --------------------------------------------------------------------------- */

/* gather along axis: idx has shape `ishape` (rank ndim), x has xstrides (element strides of x
 * over ndim dims) and extent x_len along axis. out[p] = x[p with coordinate axis := idx[p]].
 * Returns -1, or the position of the first index outside [0, x_len) (nothing then written
 * past it is defined). */
int64_t tg_k_gather(tg_dtype dt, int ndim, const int64_t *ishape, int axis, int64_t x_len,
                    const int64_t *xstrides, const void *x, const int64_t *idx, void *out);
/* The adjoint: out[p with axis := idx[p]] += src[p]; out already holds the base. Same return. */
int64_t tg_k_scatter_add(tg_dtype dt, int ndim, const int64_t *ishape, int axis, int64_t x_len,
                         const int64_t *ostrides, void *out, const int64_t *idx,
                         const void *src);
/* [outer, x_len, inner] -> [outer, n_idx, inner] taking entries idx along the middle axis.
 * Returns -1 or the position in idx of the first out-of-range index. */
int64_t tg_k_index_select(size_t elem_size, int64_t outer, int64_t x_len, int64_t inner,
                          const void *x, int64_t n_idx, const int64_t *idx, void *out);
/* out[:, idx[j], :] += src[:, j, :]; out already holds the base. Same return. */
int64_t tg_k_index_add(tg_dtype dt, int64_t outer, int64_t x_len, int64_t inner, void *out,
                       int64_t n_idx, const int64_t *idx, const void *src);

/* ---- sliding windows -------------------------------------------------------------------- */

typedef struct tg_kwindow {
    int64_t n, c, h, w;        /* input [N, C, H, W] */
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
    int64_t oh, ow;            /* output spatial size */
    bool batch_inner;          /* cols [C*KH*KW, N, OH*OW] instead of [N, C*KH*KW, OH*OW] */
    bool shared_rows;          /* fold only: cols [N, C, OH*OW], one row per plane that every
                                  window entry reads (window_spread2d) */
} tg_kwindow;

/* x [N, C, H, W] -> cols [N, C*KH*KW, OH*OW] (or [C*KH*KW, N, OH*OW], w->batch_inner);
 * padded positions read pad_value. */
void tg_k_unfold2d(tg_dtype dt, const tg_kwindow *w, const void *x, void *cols,
                   double pad_value);
/* cols [N, C*KH*KW, OH*OW] (or [C*KH*KW, N, OH*OW]) -> x [N, C, H, W] (overwritten),
 * overlaps summed. */
void tg_k_fold2d(tg_dtype dt, const tg_kwindow *w, const void *cols, void *x);
/* x [N, C, H, W] -> y [N, C, OH, OW]: each output the sum of its window's inputs, padding
 * adding nothing (w->batch_inner and w->shared_rows unused). Its adjoint is tg_k_fold2d with
 * w->shared_rows. */
void tg_k_window_sum2d(tg_dtype dt, const tg_kwindow *w, const void *x, void *y);
/* x [N, C, H, W] -> idx [N, C, OH, OW]: where each window's first maximum (or first NaN) lies,
 * as the offset iy*W + ix in its plane; padding is never chosen, and a window of padding alone
 * gets -1 (w->batch_inner and w->shared_rows unused). */
void tg_k_window_argmax2d(tg_dtype dt, const tg_kwindow *w, const void *x, int64_t *idx);

#endif
