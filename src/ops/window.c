/* Sliding-window primitives: unfold2d (im2col) and fold2d (col2im), each the other's VJP;
 * window_sum2d and window_spread2d, likewise; and window_argmax2d, which has no gradient. Laid
 * out [C*KH*KW, N, OH*OW] (batch inner), cols make a convolution one GEMM against the weights
 * viewed as [OC, C*KH*KW] for the whole batch. window_sum2d is unfold2d followed by a sum over
 * the window axis in one pass, without writing the KH*KW times larger cols (average pooling;
 * its backward, the fold of the gradient repeated for every window entry, is
 * window_spread2d); window_argmax2d finds each window's maximum the same way, for max pooling
 * to gather. */
#include <math.h>

#include "ops/op.h"

int64_t tg_window2d_out(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                        int64_t dilation) {
    int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
}

typedef struct window_params {
    tg_window2d win;
} window_params;

/* Validates win against a [N, C, H, W] input and fills the kernel's description; messages
 * name the op's input `in`. */
static bool describe(tg_tape *tp, const char *op, const tg_tensor *in, const tg_window2d *win,
                     int64_t n, int64_t c, int64_t h, int64_t w, tg_kwindow *k) {
    if (!win) {
        tg_fail(tp, "%s: window is NULL (input %s)", op, TG_SHAPE_STR(in));
        return false;
    }
    if (win->kernel_h < 1 || win->kernel_w < 1 || win->stride_h < 1 || win->stride_w < 1 ||
        win->pad_h < 0 || win->pad_w < 0 || win->dilation_h < 1 || win->dilation_w < 1) {
        tg_fail(tp, "%s: window needs kernel, stride, dilation >= 1 and padding >= 0 (input %s, "
                    "kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld, dilation %lldx%lld)",
                op, TG_SHAPE_STR(in), (long long)win->kernel_h, (long long)win->kernel_w,
                (long long)win->stride_h, (long long)win->stride_w, (long long)win->pad_h,
                (long long)win->pad_w, (long long)win->dilation_h, (long long)win->dilation_w);
        return false;
    }
    *k = (tg_kwindow){
        .n = n, .c = c, .h = h, .w = w,
        .kh = win->kernel_h, .kw = win->kernel_w, .sh = win->stride_h, .sw = win->stride_w,
        .ph = win->pad_h, .pw = win->pad_w, .dh = win->dilation_h, .dw = win->dilation_w,
        .oh = tg_window2d_out(h, win->kernel_h, win->stride_h, win->pad_h, win->dilation_h),
        .ow = tg_window2d_out(w, win->kernel_w, win->stride_w, win->pad_w, win->dilation_w),
        .batch_inner = win->batch_inner,
    };
    if (k->oh < 1 || k->ow < 1) {
        tg_fail(tp, "%s: a %lldx%lld input padded by %lldx%lld is smaller than the dilated "
                    "%lldx%lld kernel (input %s)", op, (long long)h, (long long)w,
                (long long)win->pad_h, (long long)win->pad_w, (long long)win->kernel_h,
                (long long)win->kernel_w, TG_SHAPE_STR(in));
        return false;
    }
    return true;
}

static void unfold2d_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    const tg_tensor *x = TG_IN(n, 0);
    gin[0] = tg_fold2d(tp, g, x->shape[2], x->shape[3], &TG_PARAMS(n, window_params)->win);
}
static void fold2d_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    tg_window2d win = TG_PARAMS(n, window_params)->win;
    win.pad_value = 0.0;
    gin[0] = tg_unfold2d(tp, g, &win);
}
static const tg_op unfold2d_op = {"unfold2d", unfold2d_vjp}, fold2d_op = {"fold2d", fold2d_vjp};

tg_tensor *tg_unfold2d(tg_tape *tp, tg_tensor *x, const tg_window2d *win) {
    if (!tg_op_begin(tp, "unfold2d", 1, &x) || !tg_op_same_float(tp, "unfold2d", 1, &x)) return NULL;
    if (x->ndim != 4) {
        tg_fail(tp, "unfold2d: input must be [N, C, H, W], got %s", TG_SHAPE_STR(x));
        return NULL;
    }
    tg_kwindow k;
    if (!describe(tp, "unfold2d", x, win, x->shape[0], x->shape[1], x->shape[2], x->shape[3],
                  &k))
        return NULL;
    const int64_t rows = k.c * k.kh * k.kw;
    int64_t shape[3] = {win->batch_inner ? rows : k.n, win->batch_inner ? k.n : rows,
                        k.oh * k.ow};
    tg_tensor *cols = tg_tensor_alloc(tp, x->dtype, 3, shape);
    if (!cols) return NULL;
    tg_k_unfold2d(x->dtype, &k, x->data, cols->data, win->pad_value);
    window_params p = {*win};
    return tg_record(tp, &unfold2d_op, cols, 1, &x, &p, sizeof p) ? cols : NULL;
}

tg_tensor *tg_fold2d(tg_tape *tp, tg_tensor *cols, int64_t height, int64_t width,
                     const tg_window2d *win) {
    if (!tg_op_begin(tp, "fold2d", 1, &cols) || !tg_op_same_float(tp, "fold2d", 1, &cols))
        return NULL;
    const int rows_axis = win && win->batch_inner ? 0 : 1;
    if (cols->ndim != 3 || !win || win->kernel_h < 1 || win->kernel_w < 1 || height < 1 ||
        width < 1 || cols->shape[rows_axis] % (win->kernel_h * win->kernel_w) != 0) {
        tg_fail(tp, "fold2d: cols %s must be %s for a valid window and a positive output size "
                    "(got %lldx%lld)", TG_SHAPE_STR(cols),
                rows_axis ? "[N, C*KH*KW, OH*OW]" : "[C*KH*KW, N, OH*OW] (batch inner)",
                (long long)height, (long long)width);
        return NULL;
    }
    tg_kwindow k;
    int64_t c = cols->shape[rows_axis] / (win->kernel_h * win->kernel_w);
    if (!describe(tp, "fold2d", cols, win, cols->shape[1 - rows_axis], c, height, width, &k))
        return NULL;
    if (k.oh * k.ow != cols->shape[2]) {
        tg_fail(tp, "fold2d: cols %s has %lld positions but a %lldx%lld output with this window "
                    "has %lldx%lld", TG_SHAPE_STR(cols), (long long)cols->shape[2],
                (long long)height, (long long)width, (long long)k.oh, (long long)k.ow);
        return NULL;
    }
    int64_t shape[4] = {k.n, c, height, width};
    tg_tensor *x = tg_tensor_alloc(tp, cols->dtype, 4, shape);
    if (!x) return NULL;
    tg_k_fold2d(cols->dtype, &k, cols->data, x->data);
    window_params p = {*win};
    return tg_record(tp, &fold2d_op, x, 1, &cols, &p, sizeof p) ? x : NULL;
}

static void window_sum2d_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need,
                             tg_tensor **gin) {
    (void)need;
    const tg_tensor *x = TG_IN(n, 0);
    gin[0] = tg_window_spread2d(tp, g, x->shape[2], x->shape[3],
                                &TG_PARAMS(n, window_params)->win);
}
static void window_spread2d_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need,
                                tg_tensor **gin) {
    (void)need;
    gin[0] = tg_window_sum2d(tp, g, &TG_PARAMS(n, window_params)->win);
}
static const tg_op window_sum2d_op = {"window_sum2d", window_sum2d_vjp},
                   window_spread2d_op = {"window_spread2d", window_spread2d_vjp};

/* win has the [N, C, ...] layout (window sums and maxima have no cols) and a pad value of 0,
 * or also -inf where `max_pad` (padding is never a window's maximum); else an error naming op
 * and its input `in`. */
static bool plain_window(tg_tape *tp, const char *op, const tg_tensor *in, const tg_window2d *win,
                         bool max_pad) {
    if (win && (!(win->pad_value == 0.0 || (max_pad && win->pad_value == -INFINITY)) ||
                win->batch_inner)) {
        tg_fail(tp, "%s: padding %s and there are no cols to lay out: pad_value must be 0%s and "
                    "batch_inner false (got %g, %s; input %s)", op,
                max_pad ? "is never a maximum" : "adds nothing to a window sum",
                max_pad ? " or -inf" : "", win->pad_value, win->batch_inner ? "true" : "false",
                TG_SHAPE_STR(in));
        return false;
    }
    return true;
}

/* The checks of window_sum2d and window_argmax2d (op): x a float [N, C, H, W] of the tape and
 * win a plain_window that fits it, described into k; else an error naming op. */
static bool windows_of(tg_tape *tp, const char *op, tg_tensor *x, const tg_window2d *win,
                       bool max_pad, tg_kwindow *k) {
    if (!tg_op_begin(tp, op, 1, &x) || !tg_op_same_float(tp, op, 1, &x)) return false;
    if (x->ndim != 4) {
        tg_fail(tp, "%s: input must be [N, C, H, W], got %s", op, TG_SHAPE_STR(x));
        return false;
    }
    return plain_window(tp, op, x, win, max_pad) &&
           describe(tp, op, x, win, x->shape[0], x->shape[1], x->shape[2], x->shape[3], k);
}

tg_tensor *tg_window_sum2d(tg_tape *tp, tg_tensor *x, const tg_window2d *win) {
    tg_kwindow k;
    if (!windows_of(tp, "window_sum2d", x, win, false, &k)) return NULL;
    tg_tensor *y = tg_tensor_alloc(tp, x->dtype, 4, (int64_t[]){k.n, k.c, k.oh, k.ow});
    if (!y) return NULL;
    tg_k_window_sum2d(x->dtype, &k, x->data, y->data);
    window_params p = {*win};
    return tg_record(tp, &window_sum2d_op, y, 1, &x, &p, sizeof p) ? y : NULL;
}

tg_tensor *tg_window_spread2d(tg_tape *tp, tg_tensor *y, int64_t height, int64_t width,
                              const tg_window2d *win) {
    if (!tg_op_begin(tp, "window_spread2d", 1, &y) ||
        !tg_op_same_float(tp, "window_spread2d", 1, &y))
        return NULL;
    if (y->ndim != 4 || height < 1 || width < 1) {
        tg_fail(tp, "window_spread2d: needs y [N, C, OH, OW] and a positive output size, got y "
                    "%s to %lldx%lld", TG_SHAPE_STR(y), (long long)height, (long long)width);
        return NULL;
    }
    tg_kwindow k;
    if (!plain_window(tp, "window_spread2d", y, win, false) ||
        !describe(tp, "window_spread2d", y, win, y->shape[0], y->shape[1], height, width, &k))
        return NULL;
    if (k.oh != y->shape[2] || k.ow != y->shape[3]) {
        tg_fail(tp, "window_spread2d: y %s does not match the %lldx%lld windows of a %lldx%lld "
                    "output", TG_SHAPE_STR(y), (long long)k.oh, (long long)k.ow,
                (long long)height, (long long)width);
        return NULL;
    }
    k.shared_rows = true;
    tg_tensor *x = tg_tensor_alloc(tp, y->dtype, 4, (int64_t[]){k.n, k.c, height, width});
    if (!x) return NULL;
    tg_k_fold2d(y->dtype, &k, y->data, x->data);
    window_params p = {*win};
    return tg_record(tp, &window_spread2d_op, x, 1, &y, &p, sizeof p) ? x : NULL;
}

tg_tensor *tg_window_argmax2d(tg_tape *tp, tg_tensor *x, const tg_window2d *win) {
    tg_kwindow k;
    if (!windows_of(tp, "window_argmax2d", x, win, true, &k)) return NULL;
    tg_tensor *idx = tg_tensor_alloc(tp, TG_I64, 4, (int64_t[]){k.n, k.c, k.oh, k.ow});
    if (!idx) return NULL;
    tg_k_window_argmax2d(x->dtype, &k, x->data, idx->data);
    return idx;
}
