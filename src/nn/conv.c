/* Convolution as "unfold, one GEMM, add bias", transposed convolution as "one GEMM, fold, add
 * bias", both with stride, padding, dilation and groups, and the Conv2d and ConvTranspose2d
 * layer objects.
 *
 * GEMM layout. unfold2d lays cols out batch inner, [G*CKg, N, L] (CKg = C/G*KH*KW inputs per
 * group, L = OH*OW positions per sample), so with the weights as [G, OCg, CKg] the product and
 * both of its gradients are one GEMM per group whose N*L side carries the whole batch: large,
 * well-shaped products even for small layers, and no per-sample weight-gradient partials. The
 * price is one permuting copy of the output [G, OCg, N, L] -> [N, G, OCg, L] forward, and of
 * its gradient backward (none for a batch of one). The transposed convolution runs the same
 * way with input and output exchanged: x is permuted to [G, Cg, N, H*W] and the GEMM's result
 * is already the batch-inner cols that fold2d takes. */
#include <stdio.h>

#include "nn/layer.h"
#include "tensor/tensor.h"

tg_conv2d_opts tg_conv2d_defaults(void) {
    return (tg_conv2d_opts){.stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
                            .groups = 1};
}

/* x reshaped to `shape` (same numel) and permuted by perm. A reshape instead of a copy when
 * the permutation keeps every axis longer than 1 in its order (a batch of one). */
static tg_tensor *view_permute(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape,
                               const int *perm) {
    x = tg_reshape(tp, x, ndim, shape);
    if (!x) return NULL;
    int64_t out[TG_MAX_DIMS];
    int last = -1;
    bool in_order = true;
    for (int d = 0; d < ndim; d++) {
        out[d] = shape[perm[d]];
        if (out[d] == 1) continue;
        in_order &= perm[d] > last;
        last = perm[d];
    }
    return in_order ? tg_reshape(tp, x, ndim, out) : tg_permute(tp, x, perm);
}

/* The options are valid for op (output padding only for the transposed convolution); else an
 * error naming op. */
static bool opts_valid(tg_tape *tp, const char *op, const tg_conv2d_opts *o, bool transposed) {
    if (o->stride_h < 1 || o->stride_w < 1 || o->pad_h < 0 || o->pad_w < 0 ||
        o->dilation_h < 1 || o->dilation_w < 1 || o->groups < 1 || o->output_pad_h < 0 ||
        o->output_pad_w < 0) {
        tg_fail(tp, "%s: needs stride, dilation, groups >= 1 and padding >= 0 (stride %lldx%lld, "
                    "padding %lldx%lld, dilation %lldx%lld, groups %lld, output padding "
                    "%lldx%lld)", op, (long long)o->stride_h, (long long)o->stride_w,
                (long long)o->pad_h, (long long)o->pad_w, (long long)o->dilation_h,
                (long long)o->dilation_w, (long long)o->groups, (long long)o->output_pad_h,
                (long long)o->output_pad_w);
        return false;
    }
    if (!transposed && (o->output_pad_h || o->output_pad_w)) {
        tg_fail(tp, "%s: output padding (%lldx%lld) applies to conv_transpose2d only", op,
                (long long)o->output_pad_h, (long long)o->output_pad_w);
        return false;
    }
    if (transposed && (o->output_pad_h >= (o->stride_h > o->dilation_h ? o->stride_h
                                                                        : o->dilation_h) ||
                       o->output_pad_w >= (o->stride_w > o->dilation_w ? o->stride_w
                                                                       : o->dilation_w))) {
        tg_fail(tp, "%s: output padding %lldx%lld must be smaller than either stride %lldx%lld "
                    "or dilation %lldx%lld", op, (long long)o->output_pad_h,
                (long long)o->output_pad_w, (long long)o->stride_h, (long long)o->stride_w,
                (long long)o->dilation_h, (long long)o->dilation_w);
        return false;
    }
    return true;
}

/* tp exists; x: [N, C, H, W] with C divisible by groups, w 4-D, b (when given) all of x's
 * float dtype; else an error naming op. */
static bool operands_valid(tg_tape *tp, const char *op, const tg_tensor *x, const tg_tensor *w,
                           const tg_tensor *b, int64_t groups) {
    if (!tp) {
        tg_fail(NULL, "%s: tape is NULL", op);
        return false;
    }
    if (!x || !w) {
        tg_fail(tp, "%s: %s is NULL", op, x ? "weight" : "x");
        return false;
    }
    if (x->ndim != 4 || w->ndim != 4 || !tg_is_float(x->dtype) || w->dtype != x->dtype ||
        (b && b->dtype != x->dtype)) {
        tg_fail(tp, "%s: needs x [N, C, H, W] and a 4-D weight (and bias) of one float dtype, "
                    "got x %s%s, weight %s%s, bias %s%s", op, tg_dtype_name(x->dtype),
                TG_SHAPE_STR(x), tg_dtype_name(w->dtype), TG_SHAPE_STR(w),
                b ? tg_dtype_name(b->dtype) : "none", b ? TG_SHAPE_STR(b) : "");
        return false;
    }
    if (x->shape[1] % groups != 0) {
        tg_fail(tp, "%s: x %s has %lld channels, not divisible by groups %lld", op,
                TG_SHAPE_STR(x), (long long)x->shape[1], (long long)groups);
        return false;
    }
    return true;
}

/* b is NULL or [oc]; else an error naming op. */
static bool bias_valid(tg_tape *tp, const char *op, const tg_tensor *b, int64_t oc) {
    if (b && (b->ndim != 1 || b->shape[0] != oc)) {
        tg_fail(tp, "%s: bias %s must be [%lld]", op, TG_SHAPE_STR(b), (long long)oc);
        return false;
    }
    return true;
}

/* y: [N, OC, OH, OW] plus b: [OC] (or y itself for b NULL). */
static tg_tensor *add_bias(tg_tape *tp, tg_tensor *y, tg_tensor *b) {
    if (!b || !y) return y;
    return tg_add(tp, y, tg_reshape(tp, b, 3, (int64_t[]){b->shape[0], 1, 1}));
}

/* x: [N, C, H, W], w: [OC, C/G, KH, KW] -> [N, OC, OH, OW]:
 * cols [G*CKg, N, L]; w [G, OCg, CKg] x cols [G, CKg, N*L] -> [G, OCg, N, L] ->
 * [N, G, OCg, L] = [N, OC, OH, OW] + b. */
tg_tensor *tg_conv2d(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b,
                     const tg_conv2d_opts *opts) {
    const tg_conv2d_opts o = opts ? *opts : tg_conv2d_defaults();
    if (!opts_valid(tp, "conv2d", &o, false) || !operands_valid(tp, "conv2d", x, w, b, o.groups))
        return NULL;
    const int64_t n = x->shape[0], c = x->shape[1], g = o.groups, oc = w->shape[0];
    const int64_t kh = w->shape[2], kw = w->shape[3];
    if (oc % g != 0 || w->shape[1] * g != c) {
        tg_fail(tp, "conv2d: weight %s needs %lld output channels divisible by groups %lld and "
                    "%lld input channels per group, x is %s", TG_SHAPE_STR(w), (long long)oc,
                (long long)g, (long long)(c / g), TG_SHAPE_STR(x));
        return NULL;
    }
    if (!bias_valid(tp, "conv2d", b, oc)) return NULL;
    const tg_window2d win = {kh, kw, o.stride_h, o.stride_w, o.pad_h, o.pad_w,
                             o.dilation_h, o.dilation_w, 0.0, true};
    const int64_t oh = tg_window2d_out(x->shape[2], kh, o.stride_h, o.pad_h, o.dilation_h);
    const int64_t ow = tg_window2d_out(x->shape[3], kw, o.stride_w, o.pad_w, o.dilation_w);
    if (oh < 1 || ow < 1) {
        tg_fail(tp, "conv2d: x %s padded by %lldx%lld is smaller than the %lldx%lld kernel of "
                    "weight %s dilated by %lldx%lld", TG_SHAPE_STR(x), (long long)o.pad_h,
                (long long)o.pad_w, (long long)kh, (long long)kw, TG_SHAPE_STR(w),
                (long long)o.dilation_h, (long long)o.dilation_w);
        return NULL;
    }
    const int64_t ckg = c / g * kh * kw, ocg = oc / g, l = oh * ow;

    tg_tensor *cols = tg_unfold2d(tp, x, &win); /* [G*CKg, N, L] */
    tg_tensor *wm = tg_reshape(tp, w, 3, (int64_t[]){g, ocg, ckg});
    tg_tensor *y = tg_matmul(tp, wm, tg_reshape(tp, cols, 3, (int64_t[]){g, ckg, n * l}));
    y = view_permute(tp, y, 4, (int64_t[]){g, ocg, n, l}, (int[]){2, 0, 1, 3});
    return add_bias(tp, tg_reshape(tp, y, 4, (int64_t[]){n, oc, oh, ow}), b);
}

/* How one axis of a transposed convolution's output comes out of fold2d: fold with padding
 * `pad` to `size` rows (a size with exactly `in` windows), keep `keep` rows from row `crop`,
 * then add zeros up to the output length `out`. */
typedef struct fold_axis {
    int64_t pad, size, crop, keep, out;
} fold_axis;

/* The fold of one axis. The uncropped result has full = (in-1) stride + dilation (kernel-1) + 1
 * rows; the output is its rows [pad, pad + out), rows past `full` being zeros. Folding with
 * the padding covers up to stride - 1 rows of the output padding; the rest lies past the
 * kernel's reach unless padding >= stride (output padding >= stride needs dilation > stride),
 * when it uncovers rows the padding cropped: then the fold is unpadded and cropped. keep < 1
 * means no output row is reached. */
static fold_axis fold_axis_of(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                              int64_t dilation, int64_t out_pad) {
    const int64_t full = (in - 1) * stride + dilation * (kernel - 1) + 1;
    fold_axis a = {.pad = pad, .out = full - 2 * pad + out_pad};
    if (out_pad < stride || pad < stride) {
        a.size = full - 2 * pad + (out_pad < stride ? out_pad : stride - 1);
        a.keep = a.size;
    } else {
        a.pad = 0;
        a.size = full;
        a.crop = pad;
        a.keep = full - pad < a.out ? full - pad : a.out;
    }
    return a;
}

/* x: [N, C, H, W], w: [C, OC/G, KH, KW] -> [N, OC, OH, OW]:
 * w^T [G, OCg*KK, Cg] x x as [G, Cg, N*H*W] -> cols [OC*KK, N, H*W] (batch inner); fold
 * (fold_axis_of: sliced when the output padding uncovers cropped rows, padded with zeros for
 * the output padding no window reaches) + b. */
tg_tensor *tg_conv_transpose2d(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b,
                               const tg_conv2d_opts *opts) {
    const tg_conv2d_opts o = opts ? *opts : tg_conv2d_defaults();
    if (!opts_valid(tp, "conv_transpose2d", &o, true) ||
        !operands_valid(tp, "conv_transpose2d", x, w, b, o.groups))
        return NULL;
    const int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
    const int64_t g = o.groups, cg = c / g, ocg = w->shape[1], oc = ocg * g;
    const int64_t kh = w->shape[2], kw = w->shape[3], kk = kh * kw;
    if (w->shape[0] != c) {
        tg_fail(tp, "conv_transpose2d: weight %s must have %lld input channels (dim 0), x is %s",
                TG_SHAPE_STR(w), (long long)c, TG_SHAPE_STR(x));
        return NULL;
    }
    if (!bias_valid(tp, "conv_transpose2d", b, oc)) return NULL;
    const fold_axis ah = fold_axis_of(h, kh, o.stride_h, o.pad_h, o.dilation_h, o.output_pad_h);
    const fold_axis aw = fold_axis_of(wd, kw, o.stride_w, o.pad_w, o.dilation_w, o.output_pad_w);
    if (ah.keep < 1 || aw.keep < 1) {
        tg_fail(tp, "conv_transpose2d: x %s with weight %s, stride %lldx%lld, padding %lldx%lld "
                    "and dilation %lldx%lld leaves no output position the kernel reaches "
                    "(output %lldx%lld)", TG_SHAPE_STR(x), TG_SHAPE_STR(w),
                (long long)o.stride_h, (long long)o.stride_w,
                (long long)o.pad_h, (long long)o.pad_w, (long long)o.dilation_h,
                (long long)o.dilation_w, (long long)ah.out, (long long)aw.out);
        return NULL;
    }
    const tg_window2d win = {kh, kw, o.stride_h, o.stride_w, ah.pad, aw.pad,
                             o.dilation_h, o.dilation_w, 0.0, true};

    const int64_t hw = h * wd;
    tg_tensor *wm = tg_reshape(tp, w, 3, (int64_t[]){g, cg, ocg * kk});
    tg_tensor *xm = view_permute(tp, x, 4, (int64_t[]){n, g, cg, hw}, (int[]){1, 2, 0, 3});
    tg_tensor *cols = tg_matmul_trans(tp, wm, true,
                                      tg_reshape(tp, xm, 3, (int64_t[]){g, cg, n * hw}), false);
    cols = tg_reshape(tp, cols, 3, (int64_t[]){oc * kk, n, hw}); /* batch inner */
    tg_tensor *y = tg_fold2d(tp, cols, ah.size, aw.size, &win);
    if (ah.keep < ah.size) y = tg_slice(tp, y, 2, ah.crop, ah.crop + ah.keep, 1);
    if (aw.keep < aw.size) y = tg_slice(tp, y, 3, aw.crop, aw.crop + aw.keep, 1);
    if (ah.keep < ah.out || aw.keep < aw.out)
        y = tg_pad(tp, y, (int64_t[]){0, 0, 0, 0, 0, ah.out - ah.keep, 0, aw.out - aw.keep},
                   0.0);
    return add_bias(tp, y, b);
}

/* ---- layer objects ---------------------------------------------------------------------- */

typedef struct conv_layer {
    tg_layer base;
    int64_t in, out, kh, kw;
    tg_conv2d_opts opts;
    tg_tensor *weight, *bias;
} conv_layer;

static tg_tensor *conv_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const conv_layer *l = (const conv_layer *)self;
    return tg_conv2d(tp, x, l->weight, l->bias, &l->opts);
}

static tg_tensor *conv_transpose_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const conv_layer *l = (const conv_layer *)self;
    return tg_conv_transpose2d(tp, x, l->weight, l->bias, &l->opts);
}

/* PyTorch's _ConvNd.extra_repr: channels, kernel_size and stride always, the rest only when
 * not the default. */
static void conv_describe(const tg_layer *self, char *buf, size_t size) {
    const conv_layer *l = (const conv_layer *)self;
    const tg_conv2d_opts *o = &l->opts;
    int len = snprintf(buf, size, "%lld, %lld, kernel_size=(%lld, %lld), stride=(%lld, %lld)",
                       (long long)l->in, (long long)l->out, (long long)l->kh, (long long)l->kw,
                       (long long)o->stride_h, (long long)o->stride_w);
    if (o->pad_h || o->pad_w)
        len += snprintf(buf + len, size - (size_t)len, ", padding=(%lld, %lld)",
                        (long long)o->pad_h, (long long)o->pad_w);
    if (o->dilation_h != 1 || o->dilation_w != 1)
        len += snprintf(buf + len, size - (size_t)len, ", dilation=(%lld, %lld)",
                        (long long)o->dilation_h, (long long)o->dilation_w);
    if (o->output_pad_h || o->output_pad_w)
        len += snprintf(buf + len, size - (size_t)len, ", output_padding=(%lld, %lld)",
                        (long long)o->output_pad_h, (long long)o->output_pad_w);
    if (o->groups != 1)
        len += snprintf(buf + len, size - (size_t)len, ", groups=%lld", (long long)o->groups);
    if (!l->bias) snprintf(buf + len, size - (size_t)len, ", bias=False");
}

static const tg_layer_type conv_type = {"Conv2d", conv_forward, conv_describe, NULL};
static const tg_layer_type conv_transpose_type = {"ConvTranspose2d", conv_transpose_forward,
                                                  conv_describe, NULL};

/* Checks the arguments, creates the layer and registers its weight ([out, in/groups, kh, kw],
 * or [in, out/groups, kh, kw] transposed) and bias [out], initialized as PyTorch's
 * _ConvNd.reset_parameters. */
static tg_layer *conv_new(tg_model *m, const char *name, const tg_layer_type *type,
                          int64_t in, int64_t out, int64_t kh, int64_t kw,
                          const tg_conv2d_opts *opts, bool bias, tg_rng *rng) {
    const tg_conv2d_opts o = opts ? *opts : tg_conv2d_defaults();
    const bool transposed = type == &conv_transpose_type;
    char who[160];
    snprintf(who, sizeof who, "%s(\"%s\")", type->name, name ? name : "");
    if (!opts_valid(NULL, who, &o, transposed)) return NULL; /* tg_fail(NULL) sets last error */
    if (in < 1 || out < 1 || kh < 1 || kw < 1 || in % o.groups || out % o.groups || !rng) {
        tg_set_last_error("%s: needs positive channels and kernel size, channels divisible by "
                          "groups and an rng (got %lld, %lld, kernel %lldx%lld, groups %lld)",
                          who, (long long)in, (long long)out, (long long)kh, (long long)kw,
                          (long long)o.groups);
        return NULL;
    }
    conv_layer *l = (conv_layer *)tg_layer_create(m, name, type, sizeof *l);
    if (!l) return NULL;
    l->in = in;
    l->out = out;
    l->kh = kh;
    l->kw = kw;
    l->opts = o;
    const int64_t wshape[4] = {transposed ? in : out, (transposed ? out : in) / o.groups, kh, kw};
    l->weight = tg_layer_add_param(&l->base, "weight", tg_zeros(NULL, TG_F32, 4, wshape));
    if (bias) l->bias = tg_layer_add_param(&l->base, "bias", tg_zeros(NULL, TG_F32, 1, &out));
    if (!l->weight || (bias && !l->bias) || tg_init_default_layer(l->weight, l->bias, rng) != 0)
        return NULL;
    return &l->base;
}

tg_layer *tg_conv2d_new(tg_model *m, const char *name, int64_t in_channels,
                        int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                        const tg_conv2d_opts *opts, bool bias, tg_rng *rng) {
    return conv_new(m, name, &conv_type, in_channels, out_channels, kernel_h, kernel_w, opts,
                    bias, rng);
}

tg_layer *tg_conv_transpose2d_new(tg_model *m, const char *name, int64_t in_channels,
                                  int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                                  const tg_conv2d_opts *opts, bool bias, tg_rng *rng) {
    return conv_new(m, name, &conv_transpose_type, in_channels, out_channels, kernel_h,
                    kernel_w, opts, bias, rng);
}
