/* Pooling and resampling of [N, C, H, W] composed from primitives, with their layer objects:
 * max pooling as a gather at each window's maximum, average pooling as window sums divided by
 * the window sizes; adaptive average pooling and bilinear upsampling as two GEMMs with constant
 * matrices (rows of averaging or interpolation weights, one per output row and column); nearest
 * upsampling as index_select along H and then W. Output sizes and source positions follow
 * PyTorch 1.13. */
#include <math.h>
#include <stdio.h>

#include "nn/layer.h"
#include "tensor/tensor.h"

tg_pool2d_opts tg_pool2d_defaults(int64_t kernel_h, int64_t kernel_w) {
    return (tg_pool2d_opts){.kernel_h = kernel_h, .kernel_w = kernel_w, .stride_h = kernel_h,
                            .stride_w = kernel_w, .dilation_h = 1, .dilation_w = 1,
                            .count_include_pad = true};
}

/* tp exists and x is a [N, C, H, W] float tensor; else an error naming op. */
static bool input_valid(tg_tape *tp, const char *op, const tg_tensor *x) {
    if (!tp) {
        tg_fail(NULL, "%s: tape is NULL", op);
        return false;
    }
    if (!x) {
        tg_fail(tp, "%s: x is NULL", op);
        return false;
    }
    if (x->ndim != 4 || !tg_is_float(x->dtype)) {
        tg_fail(tp, "%s: x must be a float [N, C, H, W], got %s%s", op, tg_dtype_name(x->dtype),
                TG_SHAPE_STR(x));
        return false;
    }
    return true;
}

/* A constant [rows, cols] matrix on tp in dtype, zero-filled, with its elements in *data
 * (float or double by dtype). */
static tg_tensor *constant_matrix(tg_tape *tp, tg_dtype dtype, int64_t rows, int64_t cols,
                                  void **data) {
    tg_tensor *m = tg_zeros(tp, dtype, 2, (int64_t[]){rows, cols});
    *data = m ? tg_tensor_data_mut(m) : NULL;
    return m;
}

/* m[i, j] += v for a matrix made by constant_matrix. */
static void matrix_add(tg_tensor *m, void *data, int64_t i, int64_t j, double v) {
    int64_t at = i * m->shape[1] + j;
    if (m->dtype == TG_F32) ((float *)data)[at] += (float)v;
    else ((double *)data)[at] += v;
}

/* ---- max and average pooling ------------------------------------------------------------- */

/* Where the windows of one pooling call lie. */
typedef struct pool_geometry {
    tg_window2d win;          /* for unfold2d, padding included */
    int64_t out_h, out_w;
    int64_t extra_h, extra_w; /* rows and columns ceil_mode adds after the bottom/right padding */
} pool_geometry;

/* PyTorch's pooling_output_shape: floor or ceil of the window count, where in ceil mode the
 * last window must start inside the input or the left padding. */
static int64_t pool_out(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation,
                        bool ceil_mode) {
    int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    if (span < 0) return 0;
    int64_t out = span / stride + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

/* opts are valid as PyTorch checks them: kernel, stride (and, for max pooling, dilation) >= 1,
 * padding between 0 and half the kernel; else an error naming op (tp NULL: tg_last_error). */
static bool pool_opts_valid(tg_tape *tp, const char *op, const tg_pool2d_opts *o, bool dilated) {
    if (!o) {
        tg_fail(tp, "%s: opts is NULL", op);
        return false;
    }
    const int64_t dh = dilated ? o->dilation_h : 1, dw = dilated ? o->dilation_w : 1;
    if (o->kernel_h < 1 || o->kernel_w < 1 || o->stride_h < 1 || o->stride_w < 1 ||
        o->pad_h < 0 || o->pad_w < 0 || dh < 1 || dw < 1 || 2 * o->pad_h > o->kernel_h ||
        2 * o->pad_w > o->kernel_w) {
        tg_fail(tp, "%s: needs kernel, stride, dilation >= 1 and padding between 0 and half the "
                    "kernel (kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld, dilation "
                    "%lldx%lld)", op, (long long)o->kernel_h, (long long)o->kernel_w,
                (long long)o->stride_h, (long long)o->stride_w, (long long)o->pad_h,
                (long long)o->pad_w, (long long)dh, (long long)dw);
        return false;
    }
    return true;
}

/* Validates x and opts and fills g; max pooling uses the dilation, average pooling a dilation
 * of 1 (its opts' dilation is ignored). */
static bool pool_geometry_of(tg_tape *tp, const char *op, const tg_tensor *x,
                             const tg_pool2d_opts *o, bool dilated, pool_geometry *g) {
    if (!input_valid(tp, op, x) || !pool_opts_valid(tp, op, o, dilated)) return false;
    const int64_t dh = dilated ? o->dilation_h : 1, dw = dilated ? o->dilation_w : 1;
    const int64_t h = x->shape[2], w = x->shape[3];
    g->win = (tg_window2d){o->kernel_h, o->kernel_w, o->stride_h, o->stride_w,
                           o->pad_h, o->pad_w, dh, dw, 0.0, false};
    g->out_h = pool_out(h, o->kernel_h, o->stride_h, o->pad_h, dh, o->ceil_mode);
    g->out_w = pool_out(w, o->kernel_w, o->stride_w, o->pad_w, dw, o->ceil_mode);
    if (g->out_h < 1 || g->out_w < 1) {
        tg_fail(tp, "%s: x %s gives an output of %lldx%lld with kernel %lldx%lld, padding "
                    "%lldx%lld, dilation %lldx%lld (output size is too small)", op,
                TG_SHAPE_STR(x), (long long)g->out_h, (long long)g->out_w,
                (long long)o->kernel_h, (long long)o->kernel_w, (long long)o->pad_h,
                (long long)o->pad_w, (long long)dh, (long long)dw);
        return false;
    }
    /* The last window ends at (out-1)*stride + dilation*(kernel-1) of the padded input. */
    int64_t need_h = (g->out_h - 1) * o->stride_h + dh * (o->kernel_h - 1) + 1;
    int64_t need_w = (g->out_w - 1) * o->stride_w + dw * (o->kernel_w - 1) + 1;
    g->extra_h = need_h > h + 2 * o->pad_h ? need_h - h - 2 * o->pad_h : 0;
    g->extra_w = need_w > w + 2 * o->pad_w ? need_w - w - 2 * o->pad_w : 0;
    return true;
}

/* x with ceil_mode's extra rows and columns after the bottom and right (reading value), or x
 * itself when there are none. */
static tg_tensor *ceil_room(tg_tape *tp, tg_tensor *x, const pool_geometry *g, double value) {
    if (!g->extra_h && !g->extra_w) return x;
    return tg_pad(tp, x, (int64_t[]){0, 0, 0, 0, 0, g->extra_h, 0, g->extra_w}, value);
}

/* Whether every window along one axis of `in` positions (output count `out`) reaches at least
 * one of them, rather than padding alone (possible only with dilation). */
static bool windows_reach(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad,
                          int64_t dilation) {
    for (int64_t o = 0; o < out; o++) {
        bool reached = false;
        for (int64_t k = 0; k < kernel && !reached; k++) {
            const int64_t at = o * stride - pad + k * dilation;
            reached = at >= 0 && at < in;
        }
        if (!reached) return false;
    }
    return true;
}

/* x: [N, C, H, W] -> window_argmax2d -> gather x at those offsets -> [N, C, OH, OW]. The
 * gradient goes to the first maximum of each window in (kh, kw) order (its first NaN, if any),
 * as PyTorch's. ceil_mode's extra room is padded with -inf, and so is the padding when some
 * window would hold padding alone (window_argmax2d has no offset for it): its value is -inf. */
tg_tensor *tg_max_pool2d(tg_tape *tp, tg_tensor *x, const tg_pool2d_opts *opts) {
    pool_geometry g;
    if (!pool_geometry_of(tp, "max_pool2d", x, opts, true, &g)) return NULL;
    tg_tensor *xp = ceil_room(tp, x, &g, -INFINITY);
    if (!xp) return NULL;
    tg_window2d win = g.win;
    if (!windows_reach(xp->shape[2], g.out_h, win.kernel_h, win.stride_h, win.pad_h,
                       win.dilation_h) ||
        !windows_reach(xp->shape[3], g.out_w, win.kernel_w, win.stride_w, win.pad_w,
                       win.dilation_w)) {
        xp = tg_pad(tp, xp, (int64_t[]){0, 0, 0, 0, win.pad_h, win.pad_h, win.pad_w, win.pad_w},
                    -INFINITY);
        win.pad_h = win.pad_w = 0;
        if (!xp) return NULL;
    }
    const int64_t n = x->shape[0], c = x->shape[1], l = g.out_h * g.out_w;
    tg_tensor *at = tg_window_argmax2d(tp, xp, &win);
    tg_tensor *flat = tg_reshape(tp, xp, 3, (int64_t[]){n, c, xp->shape[2] * xp->shape[3]});
    tg_tensor *m = tg_gather(tp, flat, 2, tg_reshape(tp, at, 3, (int64_t[]){n, c, l}));
    return tg_reshape(tp, m, 4, (int64_t[]){n, c, g.out_h, g.out_w});
}

/* The divisor of average pooling for output index i along one axis, as PyTorch's avg_pool2d:
 * the window clipped to the padded input (count_include_pad) or to the input itself. */
static double avg_divisor(int64_t i, int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                          bool count_include_pad) {
    int64_t start = i * stride - pad, end = start + kernel;
    if (end > in + pad) end = in + pad;
    if (!count_include_pad) {
        if (start < 0) start = 0;
        if (end > in) end = in;
    }
    return (double)(end - start);
}

/* The divisor of average pooling at output (i, j) of x. */
static double avg_size(const tg_tensor *x, const tg_pool2d_opts *o, int64_t i, int64_t j) {
    return avg_divisor(i, x->shape[2], o->kernel_h, o->stride_h, o->pad_h, o->count_include_pad) *
           avg_divisor(j, x->shape[3], o->kernel_w, o->stride_w, o->pad_w, o->count_include_pad);
}

/* x: [N, C, H, W] -> window sums [N, C, OH, OW] (padding adds nothing), divided by the window
 * size, or by a constant [OH, OW] of the sizes where windows are clipped. */
tg_tensor *tg_avg_pool2d(tg_tape *tp, tg_tensor *x, const tg_pool2d_opts *opts) {
    pool_geometry g;
    if (!pool_geometry_of(tp, "avg_pool2d", x, opts, false, &g)) return NULL;
    const double whole = (double)(opts->kernel_h * opts->kernel_w);
    bool uniform = true;
    for (int64_t i = 0; i < g.out_h; i++)
        for (int64_t j = 0; j < g.out_w; j++) uniform &= avg_size(x, opts, i, j) == whole;
    tg_tensor *s = tg_window_sum2d(tp, ceil_room(tp, x, &g, 0.0), &g.win);
    if (uniform) return tg_div_scalar(tp, s, whole);
    void *d;
    tg_tensor *div = constant_matrix(tp, x->dtype, g.out_h, g.out_w, &d);
    for (int64_t i = 0; div && i < g.out_h; i++)
        for (int64_t j = 0; j < g.out_w; j++) matrix_add(div, d, i, j, avg_size(x, opts, i, j));
    return tg_div(tp, s, div);
}

/* x: [N, C, H, W] -> mean over H and W -> [N, C, 1, 1]. */
tg_tensor *tg_global_avg_pool2d(tg_tape *tp, tg_tensor *x) {
    if (!input_valid(tp, "global_avg_pool2d", x)) return NULL;
    return tg_mean(tp, x, (int[]){2, 3}, 2, true);
}

/* ---- separable resampling: out = P_h x P_w^T --------------------------------------------- */

/* x: [N, C, H, W], ph: [OH, H], pw: [OW, W] -> [N, C, OH, OW] = ph x pw^T per channel, as two
 * single GEMMs over the whole batch: [N*C*H, W] x pw^T -> [N*C*H, OW], transpose to
 * [N*C*OW, H], x ph^T -> [N*C*OW, OH], transpose back. */
static tg_tensor *resample(tg_tape *tp, tg_tensor *x, tg_tensor *ph, tg_tensor *pw) {
    if (!x || !ph || !pw) return NULL;
    const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], w = x->shape[3];
    const int64_t oh = ph->shape[0], ow = pw->shape[0];
    tg_tensor *t = tg_matmul_trans(tp, tg_reshape(tp, x, 2, (int64_t[]){n * c * h, w}), false,
                                   pw, true);
    t = tg_transpose(tp, tg_reshape(tp, t, 3, (int64_t[]){n * c, h, ow}), 1, 2);
    t = tg_matmul_trans(tp, tg_reshape(tp, t, 2, (int64_t[]){n * c * ow, h}), false, ph, true);
    t = tg_transpose(tp, tg_reshape(tp, t, 3, (int64_t[]){n * c, ow, oh}), 1, 2);
    return tg_reshape(tp, t, 4, (int64_t[]){n, c, oh, ow});
}

/* [out, in] averaging matrix of adaptive pooling: row i is 1/len over PyTorch's window
 * [floor(i*in/out), ceil((i+1)*in/out)). */
static tg_tensor *adaptive_matrix(tg_tape *tp, tg_dtype dtype, int64_t in, int64_t out) {
    void *data;
    tg_tensor *m = constant_matrix(tp, dtype, out, in, &data);
    for (int64_t i = 0; m && i < out; i++) {
        int64_t start = i * in / out, end = ((i + 1) * in + out - 1) / out;
        for (int64_t j = start; j < end; j++)
            matrix_add(m, data, i, j, 1.0 / (double)(end - start));
    }
    return m;
}

/* x: [N, C, H, W] -> P_h x P_w^T with the averaging matrices of adaptive_matrix. */
tg_tensor *tg_adaptive_avg_pool2d(tg_tape *tp, tg_tensor *x, int64_t out_h, int64_t out_w) {
    if (!input_valid(tp, "adaptive_avg_pool2d", x)) return NULL;
    if (out_h < 1 || out_w < 1) {
        tg_fail(tp, "adaptive_avg_pool2d: output size %lldx%lld must be positive (x is %s)",
                (long long)out_h, (long long)out_w, TG_SHAPE_STR(x));
        return NULL;
    }
    return resample(tp, x, adaptive_matrix(tp, x->dtype, x->shape[2], out_h),
                    adaptive_matrix(tp, x->dtype, x->shape[3], out_w));
}

/* ---- upsampling ------------------------------------------------------------------------- */

/* PyTorch's nearest_idx: the source of output index i, in single precision as PyTorch computes
 * it. scale <= 0 means "from the sizes" (in/out), else the given scale factor is used. */
static int64_t nearest_source(int64_t i, int64_t in, int64_t out, double scale) {
    if (out == in) return i;
    if (out == 2 * in) return i >> 1;
    float s = scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
    int64_t src = (int64_t)floorf((float)i * s);
    return src < in - 1 ? src : in - 1;
}

/* x: [N, C, H, W] -> index_select rows, then columns (an axis of unchanged size is left). */
static tg_tensor *upsample_nearest(tg_tape *tp, tg_tensor *x, int64_t out_h, int64_t out_w,
                                   double scale_h, double scale_w) {
    const int64_t out[2] = {out_h, out_w};
    const double scale[2] = {scale_h, scale_w};
    for (int a = 0; a < 2 && x; a++) {
        const int64_t in = x->shape[2 + a];
        if (out[a] == in) continue;
        tg_tensor *idx = tg_zeros(tp, TG_I64, 1, &out[a]);
        if (!idx) return NULL;
        int64_t *v = tg_tensor_data_mut(idx);
        for (int64_t i = 0; i < out[a]; i++) v[i] = nearest_source(i, in, out[a], scale[a]);
        x = tg_index_select(tp, x, 2 + a, idx);
    }
    return x;
}

/* [out, in] matrix of bilinear weights along one axis, from PyTorch's
 * area_pixel_compute_source_index (clamped at 0 without align_corners): output i reads
 * (1 - l) at floor(src) and l at the next index (the same one at the end). scale as in
 * nearest_source. */
static tg_tensor *bilinear_matrix(tg_tape *tp, tg_dtype dtype, int64_t in, int64_t out,
                                  bool align_corners, double scale) {
    double step;
    if (align_corners) step = out > 1 ? (double)(in - 1) / (double)(out - 1) : 0.0;
    else step = scale > 0 ? 1.0 / scale : (double)in / (double)out;
    void *data;
    tg_tensor *m = constant_matrix(tp, dtype, out, in, &data);
    for (int64_t i = 0; m && i < out; i++) {
        double src = align_corners ? step * (double)i : step * ((double)i + 0.5) - 0.5;
        if (src < 0) src = 0;
        int64_t i0 = (int64_t)src, i1 = i0 < in - 1 ? i0 + 1 : i0;
        double l1 = src - (double)i0;
        matrix_add(m, data, i, i0, 1.0 - l1);
        matrix_add(m, data, i, i1, l1);
    }
    return m;
}

/* The shared body of tg_upsample2d and tg_upsample2d_scale; scale_* <= 0 means none given. */
static tg_tensor *upsample(tg_tape *tp, const char *op, tg_tensor *x, int64_t out_h,
                           int64_t out_w, double scale_h, double scale_w, tg_upsample_mode mode,
                           bool align_corners) {
    if (out_h < 1 || out_w < 1 || (mode != TG_UPSAMPLE_NEAREST && mode != TG_UPSAMPLE_BILINEAR)) {
        tg_fail(tp, "%s: output size %lldx%lld must be positive and the mode nearest or "
                    "bilinear (x is %s)", op, (long long)out_h, (long long)out_w,
                TG_SHAPE_STR(x));
        return NULL;
    }
    if (mode == TG_UPSAMPLE_NEAREST) return upsample_nearest(tp, x, out_h, out_w, scale_h, scale_w);
    return resample(tp, x,
                    bilinear_matrix(tp, x->dtype, x->shape[2], out_h, align_corners, scale_h),
                    bilinear_matrix(tp, x->dtype, x->shape[3], out_w, align_corners, scale_w));
}

/* x: [N, C, H, W] -> [N, C, out_h, out_w]; source positions from the sizes. */
tg_tensor *tg_upsample2d(tg_tape *tp, tg_tensor *x, int64_t out_h, int64_t out_w,
                         tg_upsample_mode mode, bool align_corners) {
    if (!input_valid(tp, "upsample2d", x)) return NULL;
    return upsample(tp, "upsample2d", x, out_h, out_w, 0.0, 0.0, mode, align_corners);
}

/* x: [N, C, H, W] -> [N, C, floor(H scale_h), floor(W scale_w)]; source positions from the
 * scale factors (align_corners: from the sizes, as PyTorch). */
tg_tensor *tg_upsample2d_scale(tg_tape *tp, tg_tensor *x, double scale_h, double scale_w,
                               tg_upsample_mode mode, bool align_corners) {
    if (!input_valid(tp, "upsample2d_scale", x)) return NULL;
    const double out_h = floor((double)x->shape[2] * scale_h);
    const double out_w = floor((double)x->shape[3] * scale_w);
    if (!(scale_h > 0 && scale_w > 0 && out_h < 0x1p62 && out_w < 0x1p62)) {
        tg_fail(tp, "upsample2d_scale: scale factors %g, %g must be positive and give a "
                    "representable output size (x is %s)", scale_h, scale_w, TG_SHAPE_STR(x));
        return NULL;
    }
    return upsample(tp, "upsample2d_scale", x, (int64_t)out_h, (int64_t)out_w, scale_h, scale_w,
                    mode, align_corners);
}

/* ---- layer objects ---------------------------------------------------------------------- */

typedef struct pool_layer {
    tg_layer base;
    tg_pool2d_opts opts;
} pool_layer;

static tg_tensor *max_pool_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    return tg_max_pool2d(tp, x, &((const pool_layer *)self)->opts);
}

static tg_tensor *avg_pool_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    return tg_avg_pool2d(tp, x, &((const pool_layer *)self)->opts);
}

/* kernel_size, stride and padding as PyTorch prints them (an int when h == w). */
static int pool_describe_common(const pool_layer *p, char *buf, size_t size) {
    char k[48], s[48], pad[48];
    tg_format_pair(k, sizeof k, p->opts.kernel_h, p->opts.kernel_w, false);
    tg_format_pair(s, sizeof s, p->opts.stride_h, p->opts.stride_w, false);
    tg_format_pair(pad, sizeof pad, p->opts.pad_h, p->opts.pad_w, false);
    return snprintf(buf, size, "kernel_size=%s, stride=%s, padding=%s", k, s, pad);
}

static void max_pool_describe(const tg_layer *self, char *buf, size_t size) {
    const pool_layer *p = (const pool_layer *)self;
    int len = pool_describe_common(p, buf, size);
    char d[48];
    tg_format_pair(d, sizeof d, p->opts.dilation_h, p->opts.dilation_w, false);
    snprintf(buf + len, size - (size_t)len, ", dilation=%s, ceil_mode=%s", d,
             p->opts.ceil_mode ? "True" : "False");
}

static void avg_pool_describe(const tg_layer *self, char *buf, size_t size) {
    pool_describe_common((const pool_layer *)self, buf, size);
}

static const tg_layer_type max_pool_type = {"MaxPool2d", max_pool_forward, max_pool_describe,
                                            NULL};
static const tg_layer_type avg_pool_type = {"AvgPool2d", avg_pool_forward, avg_pool_describe,
                                            NULL};

/* Checks opts as the functional op does and creates the layer. */
static tg_layer *pool_new(tg_model *m, const char *name, const tg_layer_type *type,
                          const tg_pool2d_opts *opts) {
    char who[160];
    snprintf(who, sizeof who, "%s(\"%s\")", type->name, name ? name : "");
    if (!pool_opts_valid(NULL, who, opts, type == &max_pool_type)) return NULL;
    pool_layer *p = (pool_layer *)tg_layer_create(m, name, type, sizeof *p);
    if (!p) return NULL;
    p->opts = *opts;
    return &p->base;
}

tg_layer *tg_max_pool2d_new(tg_model *m, const char *name, const tg_pool2d_opts *opts) {
    return pool_new(m, name, &max_pool_type, opts);
}

tg_layer *tg_avg_pool2d_new(tg_model *m, const char *name, const tg_pool2d_opts *opts) {
    return pool_new(m, name, &avg_pool_type, opts);
}

typedef struct adaptive_layer {
    tg_layer base;
    int64_t out_h, out_w;
} adaptive_layer;

static tg_tensor *adaptive_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const adaptive_layer *a = (const adaptive_layer *)self;
    return tg_adaptive_avg_pool2d(tp, x, a->out_h, a->out_w);
}

static void adaptive_describe(const tg_layer *self, char *buf, size_t size) {
    const adaptive_layer *a = (const adaptive_layer *)self;
    snprintf(buf, size, "output_size=(%lld, %lld)", (long long)a->out_h, (long long)a->out_w);
}

static const tg_layer_type adaptive_type = {"AdaptiveAvgPool2d", adaptive_forward,
                                            adaptive_describe, NULL};

tg_layer *tg_adaptive_avg_pool2d_new(tg_model *m, const char *name, int64_t out_h,
                                     int64_t out_w) {
    if (out_h < 1 || out_w < 1) {
        tg_set_last_error("AdaptiveAvgPool2d(\"%s\"): output size %lldx%lld must be positive",
                          name ? name : "", (long long)out_h, (long long)out_w);
        return NULL;
    }
    adaptive_layer *a = (adaptive_layer *)tg_layer_create(m, name, &adaptive_type, sizeof *a);
    if (!a) return NULL;
    a->out_h = out_h;
    a->out_w = out_w;
    return &a->base;
}

typedef struct upsample_layer {
    tg_layer base;
    double scale_h, scale_w;
    tg_upsample_mode mode;
    bool align_corners;
} upsample_layer;

static tg_tensor *upsample_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const upsample_layer *u = (const upsample_layer *)self;
    return tg_upsample2d_scale(tp, x, u->scale_h, u->scale_w, u->mode, u->align_corners);
}

/* PyTorch's Upsample.extra_repr: "scale_factor=2.0, mode=nearest" (a tuple when the factors
 * differ); align_corners is not shown. */
static void upsample_describe(const tg_layer *self, char *buf, size_t size) {
    const upsample_layer *u = (const upsample_layer *)self;
    char sh[40], sw[40];
    tg_format_float(sh, sizeof sh, u->scale_h);
    tg_format_float(sw, sizeof sw, u->scale_w);
    const char *mode = u->mode == TG_UPSAMPLE_NEAREST ? "nearest" : "bilinear";
    if (u->scale_h == u->scale_w) snprintf(buf, size, "scale_factor=%s, mode=%s", sh, mode);
    else snprintf(buf, size, "scale_factor=(%s, %s), mode=%s", sh, sw, mode);
}

static const tg_layer_type upsample_type = {"Upsample", upsample_forward, upsample_describe,
                                            NULL};

tg_layer *tg_upsample2d_new(tg_model *m, const char *name, double scale_h, double scale_w,
                            tg_upsample_mode mode, bool align_corners) {
    if (!(scale_h > 0 && scale_w > 0 && isfinite(scale_h) && isfinite(scale_w)) ||
        (mode != TG_UPSAMPLE_NEAREST && mode != TG_UPSAMPLE_BILINEAR)) {
        tg_set_last_error("Upsample(\"%s\"): needs positive finite scale factors (got %g, %g) "
                          "and the mode nearest or bilinear", name ? name : "", scale_h, scale_w);
        return NULL;
    }
    upsample_layer *u = (upsample_layer *)tg_layer_create(m, name, &upsample_type, sizeof *u);
    if (!u) return NULL;
    u->scale_h = scale_h;
    u->scale_w = scale_w;
    u->mode = mode;
    u->align_corners = align_corners;
    return &u->base;
}
