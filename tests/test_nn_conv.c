/* Tests of convolution, pooling and resampling (suite `nn`): every case of
 * tests/golden/conv.txt (written with PyTorch by cases_conv.py) in f64 and f32, values and
 * gradients of sum(out * R) w.r.t. the input and every parameter; first- and second-order
 * gradcheck of every functional op on small shapes; the layer objects (parameter names, shapes
 * and initialization, reprs, forward equal to the functional op); the error paths. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "tapegrad.h"
#include "testing.h"

static golden *fixtures;

static void load_fixtures(void) { fixtures = golden_must_load(GOLDEN_DIR "/conv.txt"); }

static void free_fixtures(void) { golden_free(fixtures); }

/* ---- one case: the op its name starts with, and its arguments -------------------------- */

typedef struct conv_case {
    const char *name;
    tg_tensor *x, *w, *b; /* persistent; w and b NULL where the op has none */
    tg_conv2d_opts conv;
    tg_pool2d_opts pool;
    int64_t out_h, out_w;
    double scale_h, scale_w;
    tg_upsample_mode mode;
    bool align_corners;
} conv_case;

static bool starts(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The op named by the case, applied to x, w, b. */
static tg_tensor *apply_op(tg_tape *tp, const conv_case *c, tg_tensor *x, tg_tensor *w,
                           tg_tensor *b) {
    const char *n = c->name;
    if (starts(n, "conv2d_")) return tg_conv2d(tp, x, w, b, &c->conv);
    if (starts(n, "conv_transpose2d_")) return tg_conv_transpose2d(tp, x, w, b, &c->conv);
    if (starts(n, "max_pool2d_")) return tg_max_pool2d(tp, x, &c->pool);
    if (starts(n, "avg_pool2d_")) return tg_avg_pool2d(tp, x, &c->pool);
    if (starts(n, "adaptive_")) return tg_adaptive_avg_pool2d(tp, x, c->out_h, c->out_w);
    if (starts(n, "global_")) return tg_global_avg_pool2d(tp, x);
    if (starts(n, "upsample_size_"))
        return tg_upsample2d(tp, x, c->out_h, c->out_w, c->mode, c->align_corners);
    if (starts(n, "upsample_scale_"))
        return tg_upsample2d_scale(tp, x, c->scale_h, c->scale_w, c->mode, c->align_corners);
    ck_abort_msg("case %s names no op", n);
    return NULL;
}

/* Reads case `name` in dtype (floats rounded from the stored f64). */
static conv_case case_load(const char *name, tg_dtype dtype) {
    const golden *g = fixtures;
#define NUM(key, fallback) golden_number(g, name, key, fallback)
    conv_case c = {
        .name = name,
        .x = golden_tensor(g, name, "x", dtype),
        .w = golden_tensor(g, name, "w", dtype),
        .b = golden_tensor(g, name, "b", dtype),
        .conv = {.stride_h = (int64_t)NUM("stride_h", 1), .stride_w = (int64_t)NUM("stride_w", 1),
                 .pad_h = (int64_t)NUM("pad_h", 0), .pad_w = (int64_t)NUM("pad_w", 0),
                 .dilation_h = (int64_t)NUM("dil_h", 1), .dilation_w = (int64_t)NUM("dil_w", 1),
                 .groups = (int64_t)NUM("groups", 1), .output_pad_h = (int64_t)NUM("opad_h", 0),
                 .output_pad_w = (int64_t)NUM("opad_w", 0)},
        .pool = {.kernel_h = (int64_t)NUM("kernel_h", 0), .kernel_w = (int64_t)NUM("kernel_w", 0),
                 .stride_h = (int64_t)NUM("stride_h", 0), .stride_w = (int64_t)NUM("stride_w", 0),
                 .pad_h = (int64_t)NUM("pad_h", 0), .pad_w = (int64_t)NUM("pad_w", 0),
                 .dilation_h = (int64_t)NUM("dil_h", 1), .dilation_w = (int64_t)NUM("dil_w", 1),
                 .ceil_mode = NUM("ceil_mode", 0) != 0,
                 .count_include_pad = NUM("count_include_pad", 1) != 0},
        .out_h = (int64_t)NUM("out_h", 0),
        .out_w = (int64_t)NUM("out_w", 0),
        .scale_h = NUM("scale_h", 0),
        .scale_w = NUM("scale_w", 0),
        .mode = NUM("bilinear", 0) != 0 ? TG_UPSAMPLE_BILINEAR : TG_UPSAMPLE_NEAREST,
        .align_corners = NUM("align_corners", 0) != 0,
    };
#undef NUM
    ck_assert_ptr_nonnull(c.x);
    return c;
}

static void case_free(conv_case *c) {
    tg_tensor_free(c->x);
    tg_tensor_free(c->w);
    tg_tensor_free(c->b);
}

/* Runs case `name` in dtype: the output and the gradients seeded with r, against PyTorch. */
static void check_case(const char *name, tg_dtype dtype, double rtol) {
    conv_case c = case_load(name, dtype);
    tg_tensor *params[3] = {c.x, c.w, c.b};
    const char *grads[3] = {"gx", "gw", "gb"};
    for (int i = 0; i < 3; i++)
        if (params[i]) ck_assert_int_eq(tg_set_requires_grad(params[i], true), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *y = apply_op(tp, &c, c.x, c.w, c.b);
    ck_assert_msg(y != NULL, "%s: %s", name, tg_tape_error(tp));
    ck_assert_int_eq(tg_tensor_dtype(y), dtype);
    GOLDEN_EXPECT(fixtures, name, "y", y, rtol);
    tg_tensor *seed = golden_tensor(fixtures, name, "r", dtype);
    ck_assert_msg(tg_backward(tp, y, seed) == 0, "%s: %s", name, tg_tape_error(tp));
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(params[i] != NULL, golden_has(fixtures, name, grads[i]));
        if (params[i]) GOLDEN_EXPECT(fixtures, name, grads[i], tg_tensor_grad(params[i]), rtol);
    }
    tg_tensor_free(seed);
    tg_tape_free(tp);
    case_free(&c);
}

START_TEST(test_golden_f64) {
    ck_assert_int_ge(golden_each_case(fixtures, TG_F64, check_case), 50);
}
END_TEST

START_TEST(test_golden_f32) { golden_each_case(fixtures, TG_F32, check_case); }
END_TEST

/* ---- gradcheck on small shapes ---------------------------------------------------------- */

static tg_tensor *case_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    const conv_case *c = ctx;
    return apply_op(tp, c, in[0], c->w ? in[1] : NULL, c->b ? in[2] : NULL);
}

/* A persistent f64 [n, c, h, w] tensor: normal values, or with distinct, the values 0.1 apart
 * in random order (max pooling without ties). */
static tg_tensor *input(tg_rng *rng, int64_t n, int64_t c, int64_t h, int64_t w, bool distinct) {
    tg_tensor *t = tg_randn(NULL, rng, TG_F64, 4, (int64_t[]){n, c, h, w}, 0.0, 1.0);
    ck_assert_ptr_nonnull(t);
    if (distinct) {
        double *v = tg_tensor_data_mut(t);
        int64_t k = tg_tensor_numel(t);
        for (int64_t i = 0; i < k; i++) v[i] = 0.1 * (double)i;
        for (int64_t i = k - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)tg_rng_below(rng, (uint64_t)i + 1);
            double s = v[i];
            v[i] = v[j];
            v[j] = s;
        }
    }
    return t;
}

/* Runs gradcheck and gradgradcheck of c w.r.t. x and its parameters. */
static void gradcheck_case(conv_case *c) {
    tg_tensor *in[3] = {c->x, c->w, c->b};
    int n = c->b ? 3 : c->w ? 2 : 1;
    for (int i = 0; i < n; i++) ck_assert_int_eq(tg_set_requires_grad(in[i], true), 0);
    tg_gradcheck_opts o = tg_gradcheck_defaults();
    tg_gradcheck_report r;
    int rc = tg_gradcheck(case_fn, c, n, in, &o, &r);
    ck_assert_msg(rc == 0, "gradcheck %s: %s", c->name, r.message);
    rc = tg_gradgradcheck(case_fn, c, n, in, &o, &r);
    ck_assert_msg(rc == 0, "gradgradcheck %s: %s", c->name, r.message);
    case_free(c);
}

START_TEST(test_gradcheck) {
    tg_rng *rng = tg_rng_new(7);
    tg_conv2d_opts co = tg_conv2d_defaults();
    co.stride_h = 2;
    co.pad_h = co.pad_w = 1;
    co.dilation_w = 2;
    co.groups = 2;
    gradcheck_case(&(conv_case){.name = "conv2d_groups", .x = input(rng, 2, 4, 5, 4, false),
                                .w = input(rng, 4, 2, 3, 2, false),
                                .b = tg_randn(NULL, rng, TG_F64, 1, (int64_t[]){4}, 0, 1),
                                .conv = co});
    gradcheck_case(&(conv_case){.name = "conv2d_plain", .x = input(rng, 1, 2, 4, 4, false),
                                .w = input(rng, 3, 2, 2, 2, false), .conv = tg_conv2d_defaults()});
    co = tg_conv2d_defaults();
    co.stride_h = co.groups = 2; /* few positions, many channels: the batch-merged layout */
    gradcheck_case(&(conv_case){.name = "conv2d_merged", .x = input(rng, 2, 4, 3, 4, false),
                                .w = input(rng, 16, 2, 2, 3, false),
                                .b = tg_randn(NULL, rng, TG_F64, 1, (int64_t[]){16}, 0, 1),
                                .conv = co});
    co.stride_w = 2;
    co.pad_h = co.output_pad_h = co.output_pad_w = 1;
    gradcheck_case(&(conv_case){.name = "conv_transpose2d_merged",
                                .x = input(rng, 2, 12, 1, 2, false),
                                .w = input(rng, 12, 2, 3, 3, false),
                                .b = tg_randn(NULL, rng, TG_F64, 1, (int64_t[]){4}, 0, 1),
                                .conv = co});
    gradcheck_case(&(conv_case){.name = "conv_transpose2d_groups",
                                .x = input(rng, 2, 4, 3, 2, false),
                                .w = input(rng, 4, 1, 3, 2, false),
                                .b = tg_randn(NULL, rng, TG_F64, 1, (int64_t[]){2}, 0, 1),
                                .conv = co});
    co = tg_conv2d_defaults();
    co.dilation_h = 2;
    co.output_pad_h = 1;
    gradcheck_case(&(conv_case){.name = "conv_transpose2d_dilated",
                                .x = input(rng, 1, 2, 3, 3, false),
                                .w = input(rng, 2, 2, 2, 2, false), .conv = co});

    tg_pool2d_opts po = tg_pool2d_defaults(3, 3);
    po.stride_h = po.stride_w = 2;
    po.pad_h = po.pad_w = 1;
    po.ceil_mode = true;
    gradcheck_case(&(conv_case){.name = "max_pool2d_ceil", .x = input(rng, 1, 2, 6, 5, true),
                                .pool = po});
    po = tg_pool2d_defaults(2, 2);
    po.stride_h = po.stride_w = 1;
    po.dilation_h = po.dilation_w = 2;
    gradcheck_case(&(conv_case){.name = "max_pool2d_dilated", .x = input(rng, 1, 1, 5, 6, true),
                                .pool = po});
    po = tg_pool2d_defaults(3, 2);
    po.stride_h = 2;
    po.pad_h = po.pad_w = 1;
    po.ceil_mode = true;
    po.count_include_pad = false;
    gradcheck_case(&(conv_case){.name = "avg_pool2d_exclude", .x = input(rng, 1, 2, 6, 5, false),
                                .pool = po});
    po.count_include_pad = true;
    gradcheck_case(&(conv_case){.name = "avg_pool2d_include", .x = input(rng, 1, 2, 6, 5, false),
                                .pool = po});
    gradcheck_case(&(conv_case){.name = "adaptive_3x4", .x = input(rng, 1, 2, 5, 7, false),
                                .out_h = 3, .out_w = 4});
    gradcheck_case(&(conv_case){.name = "global_mean", .x = input(rng, 2, 2, 3, 3, false)});
    gradcheck_case(&(conv_case){.name = "upsample_size_nearest",
                                .x = input(rng, 1, 2, 3, 3, false), .out_h = 5, .out_w = 7});
    gradcheck_case(&(conv_case){.name = "upsample_scale_nearest",
                                .x = input(rng, 1, 2, 3, 4, false), .scale_h = 1.5,
                                .scale_w = 0.75});
    for (int align = 0; align < 2; align++) {
        gradcheck_case(&(conv_case){.name = "upsample_size_bilinear",
                                    .x = input(rng, 1, 2, 3, 4, false), .out_h = 5, .out_w = 3,
                                    .mode = TG_UPSAMPLE_BILINEAR, .align_corners = align});
        gradcheck_case(&(conv_case){.name = "upsample_scale_bilinear",
                                    .x = input(rng, 1, 2, 3, 3, false), .scale_h = 2.0,
                                    .scale_w = 1.5, .mode = TG_UPSAMPLE_BILINEAR,
                                    .align_corners = align});
    }
    tg_rng_free(rng);
}
END_TEST

/* ---- layer objects ---------------------------------------------------------------------- */

/* The reprs of PyTorch 1.13 for the same modules (printed with python). */
START_TEST(test_repr) {
    tg_model *m = tg_model_new("Net");
    tg_rng *rng = tg_rng_new(1);
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.stride_h = o.stride_w = 2;
    ck_assert_ptr_nonnull(tg_conv2d_new(m, "conv1", 1, 16, 3, 3, &o, true, rng));
    o = tg_conv2d_defaults();
    o.stride_w = 2;
    o.pad_h = o.pad_w = 1;
    o.dilation_h = o.dilation_w = 2;
    o.groups = 2;
    ck_assert_ptr_nonnull(tg_conv2d_new(m, "conv2", 4, 8, 3, 5, &o, false, rng));
    o = tg_conv2d_defaults();
    o.stride_h = o.stride_w = 2;
    o.pad_h = o.pad_w = o.output_pad_h = o.output_pad_w = 1;
    o.groups = 2;
    ck_assert_ptr_nonnull(tg_conv_transpose2d_new(m, "up", 4, 8, 3, 3, &o, true, rng));
    ck_assert_ptr_nonnull(tg_conv_transpose2d_new(m, "up2", 4, 8, 3, 3, NULL, true, rng));
    tg_pool2d_opts p = tg_pool2d_defaults(3, 3);
    p.stride_h = p.stride_w = 2;
    ck_assert_ptr_nonnull(tg_max_pool2d_new(m, "pool", &p));
    p = tg_pool2d_defaults(3, 2);
    p.stride_h = 2;
    p.stride_w = 1;
    p.pad_h = 1;
    p.dilation_h = p.dilation_w = 2;
    p.ceil_mode = true;
    ck_assert_ptr_nonnull(tg_max_pool2d_new(m, "pool2", &p));
    p = tg_pool2d_defaults(3, 3);
    ck_assert_ptr_nonnull(tg_avg_pool2d_new(m, "avg", &p));
    p = tg_pool2d_defaults(3, 2);
    p.stride_h = 2;
    p.stride_w = 1;
    p.pad_h = 1;
    p.ceil_mode = true;
    p.count_include_pad = false;
    ck_assert_ptr_nonnull(tg_avg_pool2d_new(m, "avg2", &p));
    ck_assert_ptr_nonnull(tg_adaptive_avg_pool2d_new(m, "gap", 1, 1));
    ck_assert_ptr_nonnull(tg_adaptive_avg_pool2d_new(m, "ad", 3, 2));
    ck_assert_ptr_nonnull(tg_upsample2d_new(m, "ups", 2, 2, TG_UPSAMPLE_NEAREST, false));
    ck_assert_ptr_nonnull(tg_upsample2d_new(m, "ups2", 2, 3, TG_UPSAMPLE_BILINEAR, true));
    ck_assert_ptr_nonnull(tg_upsample2d_new(m, "ups3", 1.5, 1.5, TG_UPSAMPLE_BILINEAR, false));
    char *text = model_printed(m);
    const char *want =
        "Net(\n"
        "  (conv1): Conv2d(1, 16, kernel_size=(3, 3), stride=(2, 2))\n"
        "  (conv2): Conv2d(4, 8, kernel_size=(3, 5), stride=(1, 2), padding=(1, 1), "
        "dilation=(2, 2), groups=2, bias=False)\n"
        "  (up): ConvTranspose2d(4, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
        "output_padding=(1, 1), groups=2)\n"
        "  (up2): ConvTranspose2d(4, 8, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (pool): MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (pool2): MaxPool2d(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=2, "
        "ceil_mode=True)\n"
        "  (avg): AvgPool2d(kernel_size=3, stride=3, padding=0)\n"
        "  (avg2): AvgPool2d(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0))\n"
        "  (gap): AdaptiveAvgPool2d(output_size=(1, 1))\n"
        "  (ad): AdaptiveAvgPool2d(output_size=(3, 2))\n"
        "  (ups): Upsample(scale_factor=2.0, mode=nearest)\n"
        "  (ups2): Upsample(scale_factor=(2.0, 3.0), mode=bilinear)\n"
        "  (ups3): Upsample(scale_factor=1.5, mode=bilinear)\n"
        ")\n";
    ck_assert_str_eq(text, want);
    free(text);
    tg_rng_free(rng);
    tg_model_free(m);
}
END_TEST

/* t is a persistent f32 trainable parameter of the given shape, every element within
 * +-bound and not all of them near 0 (PyTorch's uniform default init). */
static void expect_param(const tg_tensor *t, int ndim, const int64_t *shape, double bound) {
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_tensor_dtype(t), TG_F32);
    ck_assert(tg_tensor_requires_grad(t));
    ck_assert_int_eq(tg_tensor_ndim(t), ndim);
    for (int d = 0; d < ndim; d++) ck_assert_int_eq(tg_tensor_dim(t, d), shape[d]);
    double largest = 0.0;
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) {
        double v = fabs(tg_tensor_get(t, i));
        ck_assert_msg(v <= bound, "element %lld: |%g| > %g", (long long)i, v, bound);
        largest = fmax(largest, v);
    }
    ck_assert_msg(largest > 0.5 * bound, "largest %g of bound %g", largest, bound);
}

/* PyTorch's layouts and state_dict names; weights kaiming_uniform(a = sqrt 5), i.e. within
 * 1/sqrt(fan_in) with fan_in = dim 1 * KH * KW, and biases within the same bound. */
START_TEST(test_parameters) {
    tg_model *m = tg_model_new(NULL);
    tg_rng *rng = tg_rng_new(3);
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.groups = 2;
    tg_layer *conv = tg_conv2d_new(m, "features.0", 4, 6, 3, 2, &o, true, rng);
    ck_assert_ptr_nonnull(conv);
    expect_param(tg_model_find(m, "features.0.weight"), 4, (int64_t[]){6, 2, 3, 2},
                 1 / sqrt(12.0));
    expect_param(tg_model_find(m, "features.0.bias"), 1, (int64_t[]){6}, 1 / sqrt(12.0));
    ck_assert_ptr_eq(tg_layer_get(conv, "weight"), tg_model_find(m, "features.0.weight"));
    tg_layer *up = tg_conv_transpose2d_new(m, "up", 4, 6, 3, 3, &o, true, rng);
    ck_assert_ptr_nonnull(up);
    expect_param(tg_layer_get(up, "weight"), 4, (int64_t[]){4, 3, 3, 3}, 1 / sqrt(27.0));
    expect_param(tg_layer_get(up, "bias"), 1, (int64_t[]){6}, 1 / sqrt(27.0));
    tg_layer *nb = tg_conv2d_new(m, "nobias", 3, 2, 1, 1, NULL, false, rng);
    ck_assert_ptr_nonnull(nb);
    ck_assert_ptr_null(tg_layer_get(nb, "bias"));
    ck_assert_int_eq(tg_model_num_entries(m), 5);
    ck_assert_int_eq(tg_model_num_parameters(m, false), 6 * 2 * 3 * 2 + 6 + 4 * 3 * 9 + 6 + 6);
    tg_rng_free(rng);
    tg_model_free(m);
}
END_TEST

/* Both tensors exist and hold the same values exactly. */
static void expect_same(const tg_tensor *a, const tg_tensor *b) {
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(tg_tensor_numel(a), tg_tensor_numel(b));
    ck_assert_int_eq(tg_tensor_ndim(a), tg_tensor_ndim(b));
    for (int d = 0; d < tg_tensor_ndim(a); d++)
        ck_assert_int_eq(tg_tensor_dim(a, d), tg_tensor_dim(b, d));
    for (int64_t i = 0; i < tg_tensor_numel(a); i++)
        ck_assert_double_eq(tg_tensor_get(a, i), tg_tensor_get(b, i));
}

/* tg_layer_forward applies the functional op with the layer's parameters and options; the
 * gradients reach the layer's parameters. */
START_TEST(test_layer_forward) {
    tg_model *m = tg_model_new(NULL);
    tg_rng *rng = tg_rng_new(5);
    tg_conv2d_opts co = tg_conv2d_defaults();
    co.stride_h = co.pad_w = 1;
    co.stride_w = co.dilation_h = co.groups = 2;
    tg_conv2d_opts to = tg_conv2d_defaults();
    to.stride_h = to.stride_w = 2;
    to.output_pad_w = 1;
    tg_pool2d_opts po = tg_pool2d_defaults(3, 3);
    po.stride_h = po.stride_w = 2;
    po.pad_h = po.pad_w = 1;
    po.ceil_mode = true;
    tg_layer *conv = tg_conv2d_new(m, "conv", 4, 6, 3, 3, &co, true, rng);
    tg_layer *up = tg_conv_transpose2d_new(m, "up", 4, 2, 2, 3, &to, false, rng);
    tg_layer *maxp = tg_max_pool2d_new(m, "max", &po);
    tg_layer *avgp = tg_avg_pool2d_new(m, "avg", &po);
    tg_layer *ad = tg_adaptive_avg_pool2d_new(m, "ad", 2, 3);
    tg_layer *ups = tg_upsample2d_new(m, "ups", 1.5, 2, TG_UPSAMPLE_BILINEAR, true);
    tg_layer *nn = tg_upsample2d_new(m, "nn", 2, 1.5, TG_UPSAMPLE_NEAREST, false);
    tg_tensor *x = tg_randn(NULL, rng, TG_F32, 4, (int64_t[]){2, 4, 7, 6}, 0, 1);
    tg_tape *tp = tg_tape_new();
    tg_tensor *w = tg_layer_get(conv, "weight"), *b = tg_layer_get(conv, "bias");
    expect_same(tg_layer_forward(tp, conv, x), tg_conv2d(tp, x, w, b, &co));
    expect_same(tg_layer_forward(tp, up, x),
                tg_conv_transpose2d(tp, x, tg_layer_get(up, "weight"), NULL, &to));
    expect_same(tg_layer_forward(tp, maxp, x), tg_max_pool2d(tp, x, &po));
    expect_same(tg_layer_forward(tp, avgp, x), tg_avg_pool2d(tp, x, &po));
    expect_same(tg_layer_forward(tp, ad, x), tg_adaptive_avg_pool2d(tp, x, 2, 3));
    expect_same(tg_layer_forward(tp, ups, x),
                tg_upsample2d_scale(tp, x, 1.5, 2, TG_UPSAMPLE_BILINEAR, true));
    expect_same(tg_layer_forward(tp, nn, x),
                tg_upsample2d_scale(tp, x, 2, 1.5, TG_UPSAMPLE_NEAREST, false));
    tg_tensor *y = tg_layer_forward(tp, conv, x);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y, NULL, 0, false), NULL), 0);
    ck_assert_ptr_nonnull(tg_tensor_grad(w));
    /* d sum / d b = the number of output positions per channel: N * OH * OW = 2 * 3 * 3 */
    ck_assert_int_eq(tg_tensor_numel(y), 6 * 18);
    for (int i = 0; i < 6; i++) ck_assert_double_eq(tg_tensor_get(tg_tensor_grad(b), i), 18.0);
    ck_assert_ptr_null(tg_tape_error(tp));
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_rng_free(rng);
    tg_model_free(m);
}
END_TEST

/* ---- defaults and behaviour the fixtures do not cover ----------------------------------- */

START_TEST(test_defaults) {
    tg_conv2d_opts c = tg_conv2d_defaults();
    ck_assert(c.stride_h == 1 && c.stride_w == 1 && c.pad_h == 0 && c.pad_w == 0 &&
              c.dilation_h == 1 && c.dilation_w == 1 && c.groups == 1 && c.output_pad_h == 0 &&
              c.output_pad_w == 0);
    tg_pool2d_opts p = tg_pool2d_defaults(3, 2);
    ck_assert(p.kernel_h == 3 && p.kernel_w == 2 && p.stride_h == 3 && p.stride_w == 2 &&
              p.pad_h == 0 && p.pad_w == 0 && p.dilation_h == 1 && p.dilation_w == 1 &&
              !p.ceil_mode && p.count_include_pad);
    /* opts NULL means the defaults */
    tg_rng *rng = tg_rng_new(11);
    tg_tensor *x = tg_randn(NULL, rng, TG_F64, 4, (int64_t[]){2, 3, 5, 4}, 0, 1);
    tg_tensor *w = tg_randn(NULL, rng, TG_F64, 4, (int64_t[]){2, 3, 2, 2}, 0, 1);
    tg_tensor *wt = tg_randn(NULL, rng, TG_F64, 4, (int64_t[]){3, 2, 2, 2}, 0, 1);
    tg_tape *tp = tg_tape_new();
    expect_same(tg_conv2d(tp, x, w, NULL, NULL), tg_conv2d(tp, x, w, NULL, &c));
    expect_same(tg_conv_transpose2d(tp, x, wt, NULL, NULL),
                tg_conv_transpose2d(tp, x, wt, NULL, &c));
    /* Output sizes: conv (5 - 2) + 1, transposed (5 - 1) + 2 */
    ck_assert_int_eq(tg_tensor_dim(tg_conv2d(tp, x, w, NULL, NULL), 2), 4);
    ck_assert_int_eq(tg_tensor_dim(tg_conv_transpose2d(tp, x, wt, NULL, NULL), 2), 6);
    ck_assert_ptr_null(tg_tape_error(tp));
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(wt);
    tg_rng_free(rng);
}
END_TEST

/* A transposed convolution is the adjoint of the convolution with the same weight:
 * <conv(x, w), y> = <x, conv_transpose(y, w)>, with groups, stride, padding and dilation. */
START_TEST(test_transpose_is_adjoint) {
    tg_rng *rng = tg_rng_new(13);
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.stride_h = 2;
    o.stride_w = 3;
    o.pad_h = 1;
    o.dilation_w = 2;
    o.groups = 3;
    tg_tensor *x = tg_randn(NULL, rng, TG_F64, 4, (int64_t[]){2, 6, 9, 11}, 0, 1);
    tg_tensor *w = tg_randn(NULL, rng, TG_F64, 4, (int64_t[]){9, 2, 3, 2}, 0, 1);
    tg_tape *tp = tg_tape_new();
    tg_tensor *cx = tg_conv2d(tp, x, w, NULL, &o);
    ck_assert_ptr_nonnull(cx);
    tg_tensor *y = tg_randn(tp, rng, TG_F64, 4, tg_tensor_shape(cx), 0, 1);
    /* conv_transpose's output size must be x's: the rows and columns the strided windows
     * skip at the end come back as output padding */
    o.output_pad_h = (9 + 2 * 1 - 1 * (3 - 1) - 1) % 2; /* (H + 2p - d(K-1) - 1) mod stride */
    o.output_pad_w = (11 + 2 * 0 - 2 * (2 - 1) - 1) % 3;
    tg_tensor *ty = tg_conv_transpose2d(tp, y, w, NULL, &o);
    ck_assert_ptr_nonnull(ty);
    ck_assert_int_eq(tg_tensor_numel(ty), tg_tensor_numel(x));
    double lhs = tg_tensor_item(tg_sum(tp, tg_mul(tp, cx, y), NULL, 0, false));
    double rhs = tg_tensor_item(tg_sum(tp, tg_mul(tp, x, ty), NULL, 0, false));
    ck_assert_double_eq_tol(lhs, rhs, 1e-10 * fabs(lhs));
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_rng_free(rng);
}
END_TEST

/* Max pooling sends the gradient of a tied window to its first maximum in (kh, kw) order, as
 * PyTorch does; the padding (-inf) never wins. */
START_TEST(test_max_pool_ties) {
    double v[16] = {1, 1, 2, 2, /**/ 1, 1, 2, 2, /**/ -3, -3, -5, -4, /**/ -3, -3, -4, -5};
    tg_tensor *x = tg_tensor_from(NULL, TG_F64, 4, (int64_t[]){1, 1, 4, 4}, v);
    ck_assert_int_eq(tg_set_requires_grad(x, true), 0);
    tg_tape *tp = tg_tape_new();
    tg_pool2d_opts o = tg_pool2d_defaults(2, 2);
    tg_tensor *y = tg_max_pool2d(tp, x, &o);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y, NULL, 0, false), NULL), 0);
    double want[16] = {1, 0, 1, 0, /**/ 0, 0, 0, 0, /**/ 1, 0, 0, 1, /**/ 0, 0, 0, 0};
    for (int i = 0; i < 16; i++) ck_assert_double_eq(tg_tensor_get(tg_tensor_grad(x), i), want[i]);
    tg_tensor_zero_grad(x);
    o.pad_h = o.pad_w = 1; /* every window has one real element or more */
    y = tg_max_pool2d(tp, x, &o);
    ck_assert_int_eq(tg_tensor_dim(y, 2), 3);
    for (int64_t i = 0; i < tg_tensor_numel(y); i++) ck_assert(isfinite(tg_tensor_get(y, i)));
    ck_assert_double_eq(tg_tensor_get(y, 0), 1.0);
    ck_assert_double_eq(tg_tensor_get(y, 8), -5.0);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* A dilated window can hold padding alone: its maximum is -inf (PyTorch's too) and it passes no
 * gradient. Kernel 2 with dilation 3 and padding 1 reads rows -1 and 2 of a 2-row input. */
START_TEST(test_max_pool_padding_alone) {
    double v[8] = {1, 2, 3, 4, /**/ 5, 6, 7, 8};
    tg_tensor *x = tg_tensor_from(NULL, TG_F64, 4, (int64_t[]){1, 1, 2, 4}, v);
    ck_assert_int_eq(tg_set_requires_grad(x, true), 0);
    tg_tape *tp = tg_tape_new();
    tg_pool2d_opts o = tg_pool2d_defaults(2, 2);
    o.stride_h = o.stride_w = 1;
    o.pad_h = o.pad_w = 1;
    o.dilation_h = o.dilation_w = 3;
    tg_tensor *y = tg_max_pool2d(tp, x, &o);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tensor_dim(y, 2), 1);
    ck_assert_int_eq(tg_tensor_dim(y, 3), 3);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(tg_tensor_get(y, i), -INFINITY);
    tg_tensor *finite = tg_clamp(tp, y, -10, 10);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, finite, NULL, 0, false), NULL), 0);
    for (int i = 0; i < 8; i++) ck_assert_double_eq(tg_tensor_get(tg_tensor_grad(x), i), 0.0);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* Each call fails with NULL and a message naming the op; a NULL input keeps the first error. */
START_TEST(test_errors) {
    tg_rng *rng = tg_rng_new(17);
    tg_tensor *x = tg_randn(NULL, rng, TG_F64, 4, (int64_t[]){2, 4, 5, 5}, 0, 1);
    tg_tensor *x3 = tg_randn(NULL, rng, TG_F64, 3, (int64_t[]){4, 5, 5}, 0, 1);
    tg_tensor *xf = tg_randn(NULL, rng, TG_F32, 4, (int64_t[]){2, 4, 5, 5}, 0, 1);
    tg_tensor *w = tg_randn(NULL, rng, TG_F64, 4, (int64_t[]){6, 2, 3, 3}, 0, 1);
    tg_tensor *wbig = tg_randn(NULL, rng, TG_F64, 4, (int64_t[]){6, 4, 7, 3}, 0, 1);
    tg_tensor *wt = tg_randn(NULL, rng, TG_F64, 4, (int64_t[]){4, 2, 3, 3}, 0, 1);
    tg_tensor *b5 = tg_randn(NULL, rng, TG_F64, 1, (int64_t[]){5}, 0, 1);
    tg_tape *tp = tg_tape_new();
    tg_conv2d_opts o = tg_conv2d_defaults();
    tg_conv2d_opts g2 = o;
    g2.groups = 2;

#define FAILS(call, ...)                                                                       \
    do {                                                                                      \
        tg_tape_reset(tp);                                                                    \
        ck_assert_ptr_null(call);                                                             \
        const char *words_[] = {__VA_ARGS__};                                                 \
        for (size_t k_ = 0; k_ < sizeof words_ / sizeof *words_; k_++)                        \
            CK_HAS(tg_tape_error(tp), words_[k_]);                                            \
    } while (0)

    FAILS(tg_conv2d(tp, x, w, NULL, &o), "conv2d", "[6, 2, 3, 3]", "4 input channels",
          "[2, 4, 5, 5]");
    FAILS(tg_conv2d(tp, x, w, b5, &g2), "conv2d: bias [5]", "[6]");
    g2.groups = 3;
    FAILS(tg_conv2d(tp, x, w, NULL, &g2), "conv2d", "not divisible by groups 3");
    g2.groups = 2;
    FAILS(tg_conv2d(tp, x3, w, NULL, &g2), "conv2d", "[4, 5, 5]");
    FAILS(tg_conv2d(tp, xf, w, NULL, &g2), "conv2d", "f32[2, 4, 5, 5]", "f64[6, 2, 3, 3]");
    FAILS(tg_conv2d(tp, x, wbig, NULL, &o), "conv2d", "smaller than the 7x3 kernel");
    o.stride_w = 0;
    FAILS(tg_conv2d(tp, x, w, NULL, &o), "conv2d", "stride 1x0");
    o = tg_conv2d_defaults();
    o.output_pad_h = 1;
    FAILS(tg_conv2d(tp, x, w, NULL, &o), "conv2d", "output padding", "conv_transpose2d only");
    FAILS(tg_conv_transpose2d(tp, x, wt, NULL, &o), "conv_transpose2d", "output padding 1x0",
          "stride 1x1", "dilation 1x1");
    FAILS(tg_conv_transpose2d(tp, x, w, NULL, NULL), "conv_transpose2d", "[6, 2, 3, 3]",
          "4 input channels");
    o.output_pad_h = 0;
    FAILS(tg_conv_transpose2d(tp, x, wt, b5, &o), "conv_transpose2d: bias [5]", "[2]");
    o.pad_h = 5;
    FAILS(tg_conv_transpose2d(tp, x, wt, NULL, &o), "conv_transpose2d", "no output position");
    FAILS(tg_conv2d(tp, NULL, w, NULL, NULL), "conv2d: x is NULL");
    FAILS(tg_conv_transpose2d(tp, x, NULL, NULL, NULL), "conv_transpose2d: weight is NULL");

    tg_pool2d_opts p = tg_pool2d_defaults(2, 2);
    p.pad_h = 2;
    FAILS(tg_max_pool2d(tp, x, &p), "max_pool2d", "half the kernel", "padding 2x0");
    FAILS(tg_avg_pool2d(tp, x, &p), "avg_pool2d", "half the kernel");
    p = tg_pool2d_defaults(6, 2);
    FAILS(tg_max_pool2d(tp, x, &p), "max_pool2d", "output size is too small", "[2, 4, 5, 5]");
    FAILS(tg_avg_pool2d(tp, x, &p), "avg_pool2d", "output size is too small");
    p = tg_pool2d_defaults(2, 2);
    p.dilation_w = 0;
    FAILS(tg_max_pool2d(tp, x, &p), "max_pool2d", "dilation 1x0");
    FAILS(tg_max_pool2d(tp, x, NULL), "max_pool2d: opts is NULL");
    FAILS(tg_avg_pool2d(tp, x3, &p), "avg_pool2d", "[4, 5, 5]");
    FAILS(tg_adaptive_avg_pool2d(tp, x, 0, 2), "adaptive_avg_pool2d", "0x2");
    FAILS(tg_global_avg_pool2d(tp, x3), "global_avg_pool2d", "[4, 5, 5]");
    FAILS(tg_upsample2d(tp, x, 3, 0, TG_UPSAMPLE_NEAREST, false), "upsample2d", "3x0");
    FAILS(tg_upsample2d(tp, x, 3, 3, (tg_upsample_mode)7, false), "upsample2d", "mode");
    FAILS(tg_upsample2d_scale(tp, x, -1, 2, TG_UPSAMPLE_BILINEAR, false), "upsample2d_scale",
          "-1, 2");
    FAILS(tg_upsample2d_scale(tp, x, 0.1, 2, TG_UPSAMPLE_BILINEAR, false), "upsample2d_scale",
          "0x10");
    FAILS(tg_upsample2d_scale(tp, x, 1e30, 2, TG_UPSAMPLE_NEAREST, false), "upsample2d_scale",
          "representable output size");
    FAILS(tg_upsample2d_scale(tp, x, NAN, 2, TG_UPSAMPLE_NEAREST, false), "upsample2d_scale",
          "nan, 2");
    FAILS(tg_upsample2d_scale(tp, x3, 2, 2, TG_UPSAMPLE_NEAREST, false), "upsample2d_scale",
          "[4, 5, 5]");

    /* A NULL input returns NULL and keeps the first error. */
    tg_tape_reset(tp);
    tg_tensor *bad = tg_reshape(tp, x, 1, (int64_t[]){7});
    ck_assert_ptr_null(tg_conv2d(tp, bad, w, NULL, NULL));
    ck_assert_ptr_null(tg_max_pool2d(tp, bad, &p));
    ck_assert_ptr_null(tg_upsample2d(tp, bad, 4, 4, TG_UPSAMPLE_BILINEAR, false));
    CK_HAS(tg_tape_error(tp), "reshape");
    /* No tape: the thread's last error. */
    ck_assert_ptr_null(tg_avg_pool2d(NULL, x, &p));
    CK_HAS(tg_last_error(), "avg_pool2d");
#undef FAILS

    tg_tape_free(tp);
    tg_tensor *all[] = {x, x3, xf, w, wbig, wt, b5};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tg_tensor_free(all[i]);
    tg_rng_free(rng);
}
END_TEST

/* Bad constructor arguments: NULL and tg_last_error naming the layer; nothing registered. */
START_TEST(test_constructor_errors) {
    tg_model *m = tg_model_new(NULL);
    tg_rng *rng = tg_rng_new(19);
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.groups = 2;
    ck_assert_ptr_null(tg_conv2d_new(m, "c", 3, 4, 3, 3, &o, true, rng));
    CK_HAS(tg_last_error(), "Conv2d(\"c\")");
    CK_HAS(tg_last_error(), "divisible by groups");
    ck_assert_ptr_null(tg_conv2d_new(m, "c", 4, 4, 0, 3, NULL, true, rng));
    CK_HAS(tg_last_error(), "kernel 0x3");
    ck_assert_ptr_null(tg_conv2d_new(m, "c", 4, 4, 3, 3, NULL, true, NULL));
    CK_HAS(tg_last_error(), "rng");
    o = tg_conv2d_defaults();
    o.output_pad_w = 1;
    ck_assert_ptr_null(tg_conv2d_new(m, "c", 4, 4, 3, 3, &o, true, rng));
    CK_HAS(tg_last_error(), "Conv2d(\"c\"): output padding");
    ck_assert_ptr_null(tg_conv_transpose2d_new(m, "t", 4, 4, 3, 3, &o, true, rng));
    CK_HAS(tg_last_error(), "ConvTranspose2d(\"t\"): output padding 0x1 must be smaller");
    o = tg_conv2d_defaults();
    o.dilation_h = -1;
    ck_assert_ptr_null(tg_conv_transpose2d_new(m, "t", 4, 4, 3, 3, &o, true, rng));
    CK_HAS(tg_last_error(), "dilation -1x1");
    tg_pool2d_opts p = tg_pool2d_defaults(3, 3);
    p.pad_w = 2;
    ck_assert_ptr_null(tg_max_pool2d_new(m, "p", &p));
    CK_HAS(tg_last_error(), "MaxPool2d(\"p\")");
    ck_assert_ptr_null(tg_avg_pool2d_new(m, "p", &p));
    CK_HAS(tg_last_error(), "AvgPool2d(\"p\")");
    ck_assert_ptr_null(tg_max_pool2d_new(m, "p", NULL));
    CK_HAS(tg_last_error(), "opts is NULL");
    ck_assert_ptr_null(tg_adaptive_avg_pool2d_new(m, "a", 2, -1));
    CK_HAS(tg_last_error(), "AdaptiveAvgPool2d(\"a\")");
    ck_assert_ptr_null(tg_upsample2d_new(m, "u", 0, 2, TG_UPSAMPLE_NEAREST, false));
    CK_HAS(tg_last_error(), "Upsample(\"u\")");
    ck_assert_ptr_null(tg_upsample2d_new(m, "u", NAN, 2, TG_UPSAMPLE_NEAREST, false));
    CK_HAS(tg_last_error(), "Upsample(\"u\")");
    ck_assert_ptr_null(tg_upsample2d_new(m, "u", 2, 2, (tg_upsample_mode)5, false));
    CK_HAS(tg_last_error(), "mode");
    /* a duplicate name is refused by the registry */
    ck_assert_ptr_null(tg_max_pool2d_new(m, "p", &(tg_pool2d_opts){0}));
    CK_HAS(tg_last_error(), "kernel 0x0");
    ck_assert_ptr_nonnull(tg_adaptive_avg_pool2d_new(m, "dup", 1, 1));
    ck_assert_ptr_null(tg_conv2d_new(m, "dup", 1, 1, 1, 1, NULL, true, rng));
    CK_HAS(tg_last_error(), "exists already");
    ck_assert_int_eq(tg_model_num_entries(m), 0);
    tg_rng_free(rng);
    tg_model_free(m);
}
END_TEST

static Suite *conv_suite(void) {
    Suite *s = suite_create("nn_conv");
    TCase *golden = tcase_create("golden");
    tcase_add_unchecked_fixture(golden, load_fixtures, free_fixtures);
    tcase_set_timeout(golden, 300);
    tcase_add_test(golden, test_golden_f64);
    tcase_add_test(golden, test_golden_f32);
    suite_add_tcase(s, golden);
    TCase *grad = tcase_create("gradcheck");
    tcase_set_timeout(grad, 300);
    tcase_add_test(grad, test_gradcheck);
    suite_add_tcase(s, grad);
    TCase *layers = tcase_create("layers");
    tcase_add_test(layers, test_repr);
    tcase_add_test(layers, test_parameters);
    tcase_add_test(layers, test_layer_forward);
    tcase_add_test(layers, test_constructor_errors);
    suite_add_tcase(s, layers);
    TCase *misc = tcase_create("behaviour");
    tcase_add_test(misc, test_defaults);
    tcase_add_test(misc, test_transpose_is_adjoint);
    tcase_add_test(misc, test_max_pool_ties);
    tcase_add_test(misc, test_max_pool_padding_alone);
    tcase_add_test(misc, test_errors);
    suite_add_tcase(s, misc);
    return s;
}

int main(void) {
    return run_suite(conv_suite(), CK_NORMAL);
}
