/* tapegrad: a tape-based reverse-mode autograd library in C.
 *
 * Every tensor operation records a node on an explicit tape (tg_tape); tg_backward() walks the
 * tape in reverse and accumulates gradients. Above a small closed set of primitives (this header)
 * nothing has a hand-written backward pass.
 *
 * Two lifetimes:
 *   - persistent tensors (parameters, their grads, datasets) are created with tape == NULL, owned
 *     by the caller and released with tg_tensor_free();
 *   - tape tensors (everything a step computes) live in the tape's arena and are released all at
 *     once, in O(1), by tg_tape_reset() or tg_tape_free().
 *
 * Errors: an op given bad input returns NULL and records one message on its tape (the op's name,
 * the shapes, what was expected). An op given a NULL input returns NULL without overwriting the
 * first message, so a forward pass is checked once, at its end, with tg_tape_error(). Functions
 * that take no tape report through tg_last_error(). Nothing aborts or exits on a user mistake.
 *
 * Shapes in comments are written [N, C, H, W]; tensors are contiguous and row-major.
 */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TG_MAX_DIMS 8

typedef enum tg_dtype { TG_F32, TG_F64, TG_I64 } tg_dtype;

typedef struct tg_tensor tg_tensor;
typedef struct tg_tape tg_tape;
typedef struct tg_rng tg_rng;

/* ---------------------------------------------------------------------------------------------
 * Library-wide settings and errors
 * ------------------------------------------------------------------------------------------- */

/* The number of threads BLIS and the OpenMP kernels use. Defaults to OMP_NUM_THREADS when set,
 * else the number of cores. n < 1 is taken as 1. */
void tg_set_num_threads(int n);
int tg_get_num_threads(void);

/* The last error of a call that has no tape (persistent creation, RNG, files) on this thread,
 * or NULL when the last such call succeeded. */
const char *tg_last_error(void);

/* "f32", "f64" or "i64". */
const char *tg_dtype_name(tg_dtype dtype);
/* Size in bytes of one element. */
size_t tg_dtype_size(tg_dtype dtype);

/* ---------------------------------------------------------------------------------------------
 * Random numbers: xoshiro256** seeded through splitmix64. The same seed gives the same stream on
 * every machine and thread count; consumers draw sequentially.
 * ------------------------------------------------------------------------------------------- */

typedef struct tg_rng_state { uint64_t s[4]; double spare_normal; bool has_spare; } tg_rng_state;

tg_rng *tg_rng_new(uint64_t seed);
void tg_rng_free(tg_rng *rng);
uint64_t tg_rng_u64(tg_rng *rng);
double tg_rng_uniform(tg_rng *rng);             /* in [0, 1) with 53 random bits */
double tg_rng_normal(tg_rng *rng);              /* standard normal, Box-Muller */
uint64_t tg_rng_below(tg_rng *rng, uint64_t n); /* uniform in [0, n), unbiased; n > 0 */
/* The full state, for checkpoints: a restored generator continues the same stream. */
tg_rng_state tg_rng_get_state(const tg_rng *rng);
void tg_rng_set_state(tg_rng *rng, const tg_rng_state *state);

/* ---------------------------------------------------------------------------------------------
 * Tensors. Creation functions take `tp`: NULL makes a persistent tensor (free it with
 * tg_tensor_free), a tape makes a tensor in that tape's arena. Shapes have 0..TG_MAX_DIMS
 * dimensions, each >= 0; data are copied, never borrowed.
 * ------------------------------------------------------------------------------------------- */

tg_tensor *tg_tensor_from(tg_tape *tp, tg_dtype dtype, int ndim, const int64_t *shape,
                          const void *data);
tg_tensor *tg_zeros(tg_tape *tp, tg_dtype dtype, int ndim, const int64_t *shape);
tg_tensor *tg_ones(tg_tape *tp, tg_dtype dtype, int ndim, const int64_t *shape);
tg_tensor *tg_full(tg_tape *tp, tg_dtype dtype, int ndim, const int64_t *shape, double value);
/* 1-D [ceil((stop - start) / step)] holding start, start + step, ...; step != 0. */
tg_tensor *tg_arange(tg_tape *tp, tg_dtype dtype, double start, double stop, double step);
/* Uniform in [lo, hi) and normal(mean, std), drawn in row-major order from rng (f32 or f64). */
tg_tensor *tg_rand(tg_tape *tp, tg_rng *rng, tg_dtype dtype, int ndim, const int64_t *shape,
                   double lo, double hi);
tg_tensor *tg_randn(tg_tape *tp, tg_rng *rng, tg_dtype dtype, int ndim, const int64_t *shape,
                    double mean, double std);
/* 1 with probability p, else 0 (the dropout keep-mask), in x's dtype and shape; no gradient. */
tg_tensor *tg_bernoulli(tg_tape *tp, tg_rng *rng, tg_dtype dtype, int ndim, const int64_t *shape,
                        double p);
/* A persistent copy of any tensor's values (no grad, no history). */
tg_tensor *tg_tensor_clone(const tg_tensor *t);
/* Frees a persistent tensor and its grad. NULL and tape tensors are ignored (the arena owns the
 * latter). */
void tg_tensor_free(tg_tensor *t);

tg_dtype tg_tensor_dtype(const tg_tensor *t);
int tg_tensor_ndim(const tg_tensor *t);
const int64_t *tg_tensor_shape(const tg_tensor *t);
/* Size of dimension `axis`; negative axes count from the end. */
int64_t tg_tensor_dim(const tg_tensor *t, int axis);
int64_t tg_tensor_numel(const tg_tensor *t);
bool tg_tensor_is_persistent(const tg_tensor *t);
/* Read-only view of the elements (float, double or int64_t by dtype). */
const void *tg_tensor_data(const tg_tensor *t);
/* Writable view. It counts as a modification: a value saved for backward and written through
 * this pointer afterwards makes backward fail instead of giving a wrong gradient. */
void *tg_tensor_data_mut(tg_tensor *t);
/* Element `index` (row-major flat index) as a double. */
double tg_tensor_get(const tg_tensor *t, int64_t index);
/* The value of a one-element tensor as a double (NaN for a NULL or larger tensor). */
double tg_tensor_item(const tg_tensor *t);
/* The in-place modification counter shared by a tensor and its views. */
uint32_t tg_tensor_version(const tg_tensor *t);
/* Writes "f32[2, 3]" into buf (always NUL-terminated); returns buf. */
char *tg_tensor_describe(const tg_tensor *t, char *buf, size_t size);

/* Marks a float leaf as a parameter: backward accumulates into its grad. Returns 0, or -1 (with
 * tg_last_error) for an int64 tensor or a tensor computed by an op. */
int tg_set_requires_grad(tg_tensor *t, bool requires_grad);
bool tg_tensor_requires_grad(const tg_tensor *t);
/* The gradient accumulated by tg_backward: a persistent tensor for persistent leaves, a tape
 * tensor for tape leaves; NULL before the first backward reaches the leaf. */
tg_tensor *tg_tensor_grad(const tg_tensor *t);
/* Sets the leaf's accumulated gradient to zero (keeps its storage). */
void tg_tensor_zero_grad(tg_tensor *t);

/* ---------------------------------------------------------------------------------------------
 * The tape
 * ------------------------------------------------------------------------------------------- */

typedef struct tg_tape_stats {
    size_t bytes_reserved;    /* in chunks obtained from the system */
    size_t bytes_used;        /* handed out since the last reset */
    size_t peak_bytes_used;   /* the largest bytes_used seen since tg_tape_new */
    uint64_t system_allocs;   /* chunk allocations from the system since tg_tape_new */
    int64_t nodes;            /* nodes recorded since the last reset */
} tg_tape_stats;

/* NULL (with tg_last_error) when out of memory. */
tg_tape *tg_tape_new(void);
void tg_tape_free(tg_tape *tp);
/* Releases every tensor and node of the tape in O(1), keeps the memory for the next step, clears
 * the error and re-enables gradient recording. A tape that grew over several chunks folds them
 * into one, so a repeated step of the same shape never asks the system for memory again. */
void tg_tape_reset(tg_tape *tp);
/* The first error recorded since the last reset, or NULL. */
const char *tg_tape_error(const tg_tape *tp);
void tg_tape_clear_error(tg_tape *tp);
tg_tape_stats tg_tape_get_stats(const tg_tape *tp);
/* Turns recording on or off (evaluation runs without it); returns the previous setting. */
bool tg_tape_set_grad_enabled(tg_tape *tp, bool enabled);
bool tg_tape_grad_enabled(const tg_tape *tp);

/* Reverse pass from y. seed is dL/dy with y's shape; NULL means ones (y is usually a scalar
 * loss). Gradients accumulate (+=) into the grad of every leaf that requires grad. Returns 0, or
 * -1 with the message on the tape. */
int tg_backward(tg_tape *tp, tg_tensor *y, tg_tensor *seed);

/* Functional gradients: grads[i] = d(sum_k <seeds[k], outputs[k]>)/d inputs[i], as tape tensors
 * (zeros for an input the outputs do not depend on). seeds may be NULL (ones). With create_graph
 * the gradient computation is itself recorded, so grads can be differentiated again. Leaves'
 * own grads are not touched. Returns 0, or -1 with the message on the tape. */
int tg_grad(tg_tape *tp, int n_outputs, tg_tensor *const *outputs, tg_tensor *const *seeds,
            int n_inputs, tg_tensor *const *inputs, bool create_graph, tg_tensor **grads);

/* ---------------------------------------------------------------------------------------------
 * Primitives. Each takes the tape first, returns a tape tensor, or NULL with an error on the
 * tape. Float ops take f32 or f64 (all inputs the same dtype). Binary ops broadcast as NumPy.
 * Axes may be negative (counted from the end).
 * ------------------------------------------------------------------------------------------- */

/* Elementwise unary */
tg_tensor *tg_neg(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_exp(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_log(tg_tape *tp, tg_tensor *x);
/* log(1 + x), accurate for small x. */
tg_tensor *tg_log1p(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_sqrt(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_rsqrt(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_abs(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_square(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_tanh(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_sigmoid(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_relu(tg_tape *tp, tg_tensor *x);
/* The error function (exact GELU); gradient 2/sqrt(pi) exp(-x^2). */
tg_tensor *tg_erf(tg_tape *tp, tg_tensor *x);
/* -1, 0 or 1; no gradient. */
tg_tensor *tg_sign(tg_tape *tp, tg_tensor *x);
/* x^p for a scalar p. */
tg_tensor *tg_pow_scalar(tg_tape *tp, tg_tensor *x, double p);
/* min(max(x, lo), hi); gradient 1 for lo <= x <= hi, 0 outside. Use -INFINITY/INFINITY for an
 * open side. */
tg_tensor *tg_clamp(tg_tape *tp, tg_tensor *x, double lo, double hi);

/* Elementwise binary with broadcasting; maximum/minimum split the gradient evenly on ties, as
 * PyTorch does. */
tg_tensor *tg_add(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_sub(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_mul(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_div(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_maximum(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_minimum(tg_tape *tp, tg_tensor *a, tg_tensor *b);
/* Fused activation gradients, each one pass instead of the two or three primitives it
 * replaces (the VJPs of tanh, sigmoid and relu use them; differentiable again, with
 * broadcasting): g (1 - y^2) for y = tanh(x), g y (1 - y) for y = sigmoid(x), and g where
 * x > 0, else 0, for relu. */
tg_tensor *tg_tanh_backward(tg_tape *tp, tg_tensor *y, tg_tensor *g);
tg_tensor *tg_sigmoid_backward(tg_tape *tp, tg_tensor *y, tg_tensor *g);
tg_tensor *tg_relu_backward(tg_tape *tp, tg_tensor *x, tg_tensor *g);
/* Scalar forms: x + c, x - c, x * c, x / c, c - x, c / x. */
tg_tensor *tg_add_scalar(tg_tape *tp, tg_tensor *x, double c);
tg_tensor *tg_sub_scalar(tg_tape *tp, tg_tensor *x, double c);
tg_tensor *tg_mul_scalar(tg_tape *tp, tg_tensor *x, double c);
tg_tensor *tg_div_scalar(tg_tape *tp, tg_tensor *x, double c);
tg_tensor *tg_rsub_scalar(tg_tape *tp, double c, tg_tensor *x);
tg_tensor *tg_rdiv_scalar(tg_tape *tp, double c, tg_tensor *x);

/* Comparisons give masks of 1 and 0 in the inputs' dtype (so a mask multiplies directly); no
 * gradient. */
tg_tensor *tg_gt(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_ge(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_lt(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_le(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_eq(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_gt_scalar(tg_tape *tp, tg_tensor *a, double c);
tg_tensor *tg_ge_scalar(tg_tape *tp, tg_tensor *a, double c);
tg_tensor *tg_lt_scalar(tg_tape *tp, tg_tensor *a, double c);
tg_tensor *tg_le_scalar(tg_tape *tp, tg_tensor *a, double c);
tg_tensor *tg_eq_scalar(tg_tape *tp, tg_tensor *a, double c);
/* mask != 0 ? a : b, all three broadcast together; mask has a's dtype. */
tg_tensor *tg_where(tg_tape *tp, tg_tensor *mask, tg_tensor *a, tg_tensor *b);

/* Reductions over `axes` (naxes of them; axes == NULL or naxes == 0 means all). keepdim keeps
 * reduced axes with size 1. max/min send the gradient to the first extreme element of each
 * slice, as PyTorch's max(dim) does. */
tg_tensor *tg_sum(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, bool keepdim);
tg_tensor *tg_mean(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, bool keepdim);
tg_tensor *tg_max(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, bool keepdim);
tg_tensor *tg_min(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, bool keepdim);
/* Index (int64) of the first maximum along one axis; no gradient. */
tg_tensor *tg_argmax(tg_tape *tp, tg_tensor *x, int axis, bool keepdim);
/* Sums x down to `shape` (the reverse of broadcasting: x's shape must broadcast from shape). */
tg_tensor *tg_sum_to(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape);

/* Matrix product. a: [..., M, K], b: [..., K, N] -> [..., M, N]; leading (batch) dims broadcast;
 * 1-D operands are not promoted (use reshape). tg_matmul_trans transposes the last two dims of
 * a and/or b first, without a copy. f32 and f64 go through BLIS. */
tg_tensor *tg_matmul(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_matmul_trans(tg_tape *tp, tg_tensor *a, bool trans_a, tg_tensor *b, bool trans_b);

/* Shape ops. reshape accepts one -1 and shares storage (as do squeeze, unsqueeze and detach);
 * the others copy. */
tg_tensor *tg_reshape(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape);
tg_tensor *tg_permute(tg_tape *tp, tg_tensor *x, const int *perm);
tg_tensor *tg_transpose(tg_tape *tp, tg_tensor *x, int axis0, int axis1);
/* Broadcasts x to `shape` (size-1 dims stretch, new leading dims are added). */
tg_tensor *tg_expand(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape);
/* Removes axis (which must have size 1); inserts a size-1 axis at position axis (0..ndim). */
tg_tensor *tg_squeeze(tg_tape *tp, tg_tensor *x, int axis);
tg_tensor *tg_unsqueeze(tg_tape *tp, tg_tensor *x, int axis);
/* Elements start, start + step, ... < stop along axis (Python slicing with step > 0; start and
 * stop are clamped to [0, dim], negative ones count from the end). */
tg_tensor *tg_slice(tg_tape *tp, tg_tensor *x, int axis, int64_t start, int64_t stop,
                    int64_t step);
/* Joins n tensors along axis; all other dims must match. */
tg_tensor *tg_concat(tg_tape *tp, int n, tg_tensor *const *xs, int axis);
/* pads[2*i], pads[2*i+1]: elements added before and after dim i (>= 0), filled with value
 * (any double, -INFINITY included). */
tg_tensor *tg_pad(tg_tape *tp, tg_tensor *x, const int64_t *pads, double value);
/* Same values, no history, no gradient. */
tg_tensor *tg_detach(tg_tape *tp, tg_tensor *x);

/* Indexing with int64 indices. gather: out[..., i, ...] = x[..., idx[..., i, ...], ...] along
 * axis (idx has x's rank; out has idx's shape). scatter_add: x plus src added at idx along axis
 * (the VJP of gather). index_select: the entries idx (1-D) of x along axis; index_add: x plus src
 * added at entries idx along axis (its VJP). one_hot: [..., num_classes] in dtype, no gradient. */
tg_tensor *tg_gather(tg_tape *tp, tg_tensor *x, int axis, tg_tensor *idx);
tg_tensor *tg_scatter_add(tg_tape *tp, tg_tensor *x, int axis, tg_tensor *idx, tg_tensor *src);
tg_tensor *tg_index_select(tg_tape *tp, tg_tensor *x, int axis, tg_tensor *idx);
tg_tensor *tg_index_add(tg_tape *tp, tg_tensor *x, int axis, tg_tensor *idx, tg_tensor *src);
tg_tensor *tg_one_hot(tg_tape *tp, tg_tensor *idx, int64_t num_classes, tg_dtype dtype);

/* Sliding windows over [N, C, H, W] (im2col). */
typedef struct tg_window2d {
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;     /* >= 1 */
    int64_t pad_h, pad_w;           /* >= 0, on both sides */
    int64_t dilation_h, dilation_w; /* >= 1 */
    double pad_value;               /* what padded positions read as (0, or -INFINITY for max) */
    bool batch_inner;               /* cols [C*KH*KW, N, OH*OW]: the batch next to the positions,
                                       so one GEMM covers it (convolution); default [N, ...] */
} tg_window2d;
/* Output height or width: (in + 2*pad - dilation*(kernel-1) - 1) / stride + 1. */
int64_t tg_window2d_out(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                        int64_t dilation);
/* x: [N, C, H, W] -> cols: [N, C*KH*KW, OH*OW], row (c*KH + kh)*KW + kw; with
 * win->batch_inner, cols: [C*KH*KW, N, OH*OW]. */
tg_tensor *tg_unfold2d(tg_tape *tp, tg_tensor *x, const tg_window2d *win);
/* cols: [N, C*KH*KW, OH*OW] (or [C*KH*KW, N, OH*OW] with win->batch_inner) ->
 * [N, C, height, width], overlapping entries summed (col2im); padded positions are dropped.
 * The VJP of unfold2d and the other way round. */
tg_tensor *tg_fold2d(tg_tape *tp, tg_tensor *cols, int64_t height, int64_t width,
                     const tg_window2d *win);
/* x: [N, C, H, W] -> [N, C, OH, OW], each output the sum of its window's inputs (sum pooling;
 * padding adds nothing, so win->pad_value must be 0, and win->batch_inner false): what summing
 * unfold2d's window axis gives, in one pass without the cols. The VJP of window_spread2d. */
tg_tensor *tg_window_sum2d(tg_tape *tp, tg_tensor *x, const tg_window2d *win);
/* y: [N, C, OH, OW] -> [N, C, height, width], each position the sum of the outputs whose windows
 * hold it (padded positions dropped): fold2d of y repeated for every window entry. The VJP of
 * window_sum2d and the other way round. */
tg_tensor *tg_window_spread2d(tg_tape *tp, tg_tensor *y, int64_t height, int64_t width,
                              const tg_window2d *win);
/* x: [N, C, H, W] -> int64 [N, C, OH, OW]: where each window's first maximum lies (its first
 * NaN, if any), as the offset iy*W + ix in its [H, W] plane; padding is never chosen, and a
 * window that holds padding alone gets -1 (win->pad_value must be 0 or -INFINITY, and
 * win->batch_inner false). Not differentiable: max pooling gathers x at these offsets. */
tg_tensor *tg_window_argmax2d(tg_tape *tp, tg_tensor *x, const tg_window2d *win);

/* ---------------------------------------------------------------------------------------------
 * Finite-difference gradient checking (float64)
 * ------------------------------------------------------------------------------------------- */

/* The function under test: builds its output on tp from the inputs (persistent f64 tensors). */
typedef tg_tensor *(*tg_fn)(tg_tape *tp, tg_tensor *const *inputs, void *ctx);

typedef struct tg_gradcheck_opts {
    double eps;        /* central-difference step; default 1e-6 */
    double atol;       /* default 1e-5 */
    double rtol;       /* default 1e-3: |analytic - numeric| <= atol + rtol * |numeric| */
    bool fast;         /* compare random projections v^T J u instead of the full Jacobian */
    int fast_probes;   /* projections in fast mode; default 4 */
    uint64_t seed;     /* for the projections and gradgradcheck's output seeds */
} tg_gradcheck_opts;

/* The defaults above. */
tg_gradcheck_opts tg_gradcheck_defaults(void);

typedef struct tg_gradcheck_report {
    bool passed;
    int input;          /* the worst entry (the largest excess when the check fails, else the
                         * largest |analytic - numeric|): which input, */
    int64_t in_index;   /* flat index in that input (-1 in fast mode), */
    int64_t out_index;  /* flat index in the output (-1 in fast mode), */
    double analytic, numeric;
    double excess;      /* |analytic - numeric| - (atol + rtol |numeric|); <= 0 passes */
    char message[512];  /* one line: the worst entry, or why the check could not run */
} tg_gradcheck_report;

/* Compares tg_grad's Jacobian of fn with central differences, for every input that requires
 * grad. Inputs must be persistent f64 tensors; their values are restored afterwards. Returns 0
 * when the check passed, 1 when it ran and failed, -1 when it could not run (message in
 * report). report may be NULL. */
int tg_gradcheck(tg_fn fn, void *ctx, int n_inputs, tg_tensor *const *inputs,
                 const tg_gradcheck_opts *opts, tg_gradcheck_report *report);
/* Second order: gradcheck of x -> d<v, fn(x)>/dx computed with create_graph, for a random v. */
int tg_gradgradcheck(tg_fn fn, void *ctx, int n_inputs, tg_tensor *const *inputs,
                     const tg_gradcheck_opts *opts, tg_gradcheck_report *report);

#ifdef __cplusplus
}
#endif

#include "tapegrad/nn.h"
#include "tapegrad/train.h"
#include "tapegrad/data.h"

#endif /* TAPEGRAD_H */
