/* Tests of normalization, dropout and embedding (suite `nn`): batch norm over several training
 * steps (outputs, gradients, running statistics) and in eval mode, layer norm, group norm, local
 * response norm and embedding against PyTorch (tests/golden/norm.txt, from cases_norm.py) in
 * f64 and f32; gradcheck and gradgradcheck of every functional op; dropout's statistics,
 * scaling, gradient and reproducibility; the layer objects (registration, reprs, the training
 * flag); and the error paths. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "tapegrad.h"
#include "testing.h"

static golden *G; /* norm.txt, loaded once by main */

/* ---- helpers ---------------------------------------------------------------------------- */

/* got matches value `key` of case cs within the tolerance of got's dtype. */
#define CK_GOLDEN(got, cs, key) GOLDEN_EXPECT_DTYPE(G, (cs), (key), (got))

/* Value `key` of case cs as a persistent tensor (see golden_leaf). */
static tg_tensor *load(const char *cs, const char *key, tg_dtype dt, bool requires_grad) {
    return golden_leaf(G, cs, key, dt, requires_grad);
}

static const char *tagged(char *buf, const char *key, const char *tag) {
    snprintf(buf, 32, "%s%s", key, tag);
    return buf;
}

/* Copies the values of src into the persistent tensor dst of the same shape and dtype. */
static void copy_into(tg_tensor *dst, const tg_tensor *src) {
    ck_assert_int_eq(tg_tensor_numel(dst), tg_tensor_numel(src));
    ck_assert_int_eq(tg_tensor_dtype(dst), tg_tensor_dtype(src));
    memcpy(tg_tensor_data_mut(dst), tg_tensor_data(src),
           (size_t)tg_tensor_numel(src) * tg_dtype_size(tg_tensor_dtype(src)));
}

/* Persistent f64 normal(0, scale) tensor for gradcheck, requiring grad. */
static tg_tensor *rand64(tg_rng *rng, int ndim, const int64_t *shape, double mean, double std) {
    tg_tensor *t = tg_randn(NULL, rng, TG_F64, ndim, shape, mean, std);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tg_set_requires_grad(t, true), 0);
    return t;
}

/* fn passes gradcheck and gradgradcheck at the default tolerances; frees the inputs. */
static void check_grads(tg_fn fn, void *ctx, int n, tg_tensor **in) {
    tg_gradcheck_opts opts = tg_gradcheck_defaults();
    tg_gradcheck_report rep;
    ck_assert_msg(tg_gradcheck(fn, ctx, n, in, &opts, &rep) == 0, "gradcheck: %s", rep.message);
    ck_assert_msg(tg_gradgradcheck(fn, ctx, n, in, &opts, &rep) == 0, "gradgradcheck: %s",
                  rep.message);
    for (int i = 0; i < n; i++) tg_tensor_free(in[i]);
}

static const tg_dtype DTYPES[2] = {TG_F64, TG_F32};

/* ---- batch norm against PyTorch --------------------------------------------------------- */

static const char *const BN_CASES[] = {"bn2d", "bn1d_2d", "bn1d_3d_noaffine"};

/* One forward of batch norm (through layer when not NULL, else the functional op with
 * rm/rv/w/b) on x<tag>, compared with y<tag>; then backward with seed R<tag> and the
 * gradients compared with gx<tag>, gw<tag>, gb<tag>. */
static void bn_step(tg_tape *tp, const char *cs, const char *tag, tg_dtype dt, tg_layer *layer,
                    tg_tensor *rm, tg_tensor *rv, tg_tensor *w, tg_tensor *b, bool training) {
    char k[32];
    tg_tensor *x = load(cs, tagged(k, "x", tag), dt, true);
    tg_tensor *r = load(cs, tagged(k, "R", tag), dt, false);
    tg_tensor_zero_grad(w);
    tg_tensor_zero_grad(b);
    tg_tensor *y = layer ? tg_layer_forward(tp, layer, x)
                         : tg_batch_norm(tp, x, rm, rv, w, b, training,
                                         golden_number(G, cs, "momentum", NAN),
                                         golden_number(G, cs, "eps", NAN));
    CK_TAPE_OK(tp);
    CK_GOLDEN(y, cs, tagged(k, "y", tag));
    ck_assert_int_eq(tg_backward(tp, y, r), 0);
    CK_GOLDEN(tg_tensor_grad(x), cs, tagged(k, "gx", tag));
    if (w) CK_GOLDEN(tg_tensor_grad(w), cs, tagged(k, "gw", tag));
    if (b) CK_GOLDEN(tg_tensor_grad(b), cs, tagged(k, "gb", tag));
    tg_tape_reset(tp);
    tg_tensor_free(x);
    tg_tensor_free(r);
}

/* The functional op over the case's training steps (running statistics after each) and the
 * final eval step; _i picks the case and the dtype. */
START_TEST(test_batch_norm_golden) {
    const char *cs = BN_CASES[_i / 2];
    tg_dtype dt = DTYPES[_i % 2];
    int steps = (int)golden_number(G, cs, "steps", 0);
    ck_assert_int_gt(steps, 0);
    tg_tensor *w = load(cs, "weight", dt, true), *b = load(cs, "bias", dt, true);
    ck_assert(golden_number(G, cs, "affine", -1) == (w != NULL));
    tg_tensor *x0 = load(cs, "x0", dt, false);
    int64_t c = tg_tensor_dim(x0, 1);
    tg_tensor_free(x0);
    tg_tensor *rm = tg_zeros(NULL, dt, 1, &c), *rv = tg_ones(NULL, dt, 1, &c);
    tg_tape *tp = tg_tape_new();
    for (int s = 0; s < steps; s++) {
        char tag[16], k[32];
        snprintf(tag, sizeof tag, "%d", s);
        uint32_t version = tg_tensor_version(rm);
        bn_step(tp, cs, tag, dt, NULL, rm, rv, w, b, true);
        ck_assert_uint_gt(tg_tensor_version(rm), version); /* written in place */
        CK_GOLDEN(rm, cs, tagged(k, "rm", tag));
        CK_GOLDEN(rv, cs, tagged(k, "rv", tag));
    }
    uint32_t version = tg_tensor_version(rm);
    bn_step(tp, cs, "e", dt, NULL, rm, rv, w, b, false);
    ck_assert_uint_eq(tg_tensor_version(rm), version); /* eval reads them only */
    tg_tape_free(tp);
    tg_tensor_free(rm);
    tg_tensor_free(rv);
    tg_tensor_free(w);
    tg_tensor_free(b);
}
END_TEST

/* The same sequences through BatchNorm1d/2d layer objects (f32 parameters): the layer reads
 * the model's training flag, counts the training forwards, updates its buffers. */
START_TEST(test_batch_norm_layer_golden) {
    const char *cs = BN_CASES[_i];
    bool affine = golden_number(G, cs, "affine", -1) != 0;
    int steps = (int)golden_number(G, cs, "steps", 0);
    tg_tensor *x0 = load(cs, "x0", TG_F32, false);
    int64_t c = tg_tensor_dim(x0, 1);
    bool two_d = tg_tensor_ndim(x0) == 4;
    tg_tensor_free(x0);
    tg_model *m = tg_model_new("Net");
    tg_layer *bn = (two_d ? tg_batch_norm2d_new : tg_batch_norm1d_new)(
        m, "bn", c, golden_number(G, cs, "eps", NAN), golden_number(G, cs, "momentum", NAN),
        affine, true);
    ck_assert_ptr_nonnull(bn);
    tg_tensor *w = tg_layer_get(bn, "weight"), *b = tg_layer_get(bn, "bias");
    ck_assert(affine == (w != NULL) && affine == (b != NULL));
    if (affine) {
        tg_tensor *gw = load(cs, "weight", TG_F32, false), *gb = load(cs, "bias", TG_F32, false);
        copy_into(w, gw);
        copy_into(b, gb);
        tg_tensor_free(gw);
        tg_tensor_free(gb);
    }
    tg_tensor *rm = tg_layer_get(bn, "running_mean"), *rv = tg_layer_get(bn, "running_var");
    tg_tensor *nbt = tg_layer_get(bn, "num_batches_tracked");
    tg_tape *tp = tg_tape_new();
    for (int s = 0; s < steps; s++) {
        char tag[16], k[32];
        snprintf(tag, sizeof tag, "%d", s);
        bn_step(tp, cs, tag, TG_F32, bn, NULL, NULL, w, b, true);
        CK_GOLDEN(rm, cs, tagged(k, "rm", tag));
        CK_GOLDEN(rv, cs, tagged(k, "rv", tag));
        ck_assert_int_eq((int)tg_tensor_item(nbt), s + 1);
    }
    ck_assert_int_eq((int)tg_tensor_item(nbt), (int)golden_number(G, cs, "nbt", -1));
    tg_model_set_training(m, false);
    bn_step(tp, cs, "e", TG_F32, bn, NULL, NULL, w, b, false);
    ck_assert_int_eq((int)tg_tensor_item(nbt), steps); /* eval does not count */
    tg_tape_free(tp);
    tg_model_free(m);
}
END_TEST

/* ---- layer norm, group norm, LRN, embedding against PyTorch ----------------------------- */

/* y = op(x, weight, bias) for case cs with the case's options. */
typedef tg_tensor *(*golden_op)(tg_tape *tp, const char *cs, tg_tensor *x, tg_tensor *w,
                                tg_tensor *b);

static tg_tensor *layer_norm_op(tg_tape *tp, const char *cs, tg_tensor *x, tg_tensor *w,
                                tg_tensor *b) {
    return tg_layer_norm(tp, x, (int)golden_number(G, cs, "n_dims", 0), w, b,
                         golden_number(G, cs, "eps", NAN));
}

static tg_tensor *group_norm_op(tg_tape *tp, const char *cs, tg_tensor *x, tg_tensor *w,
                                tg_tensor *b) {
    return tg_group_norm(tp, x, (int64_t)golden_number(G, cs, "groups", 0), w, b,
                         golden_number(G, cs, "eps", NAN));
}

static tg_tensor *lrn_op(tg_tape *tp, const char *cs, tg_tensor *x, tg_tensor *w, tg_tensor *b) {
    ck_assert(!w && !b);
    return tg_local_response_norm(tp, x, (int64_t)golden_number(G, cs, "size", 0),
                                  golden_number(G, cs, "alpha", NAN),
                                  golden_number(G, cs, "beta", NAN),
                                  golden_number(G, cs, "k", NAN));
}

static const struct {
    const char *name;
    golden_op op;
} NORM_CASES[] = {
    {"ln_1dim", layer_norm_op},     {"ln_2dims", layer_norm_op},
    {"ln_noaffine", layer_norm_op}, {"gn_3groups", group_norm_op},
    {"gn_1group_noaffine", group_norm_op}, {"gn_instance", group_norm_op},
    {"lrn_odd", lrn_op},            {"lrn_even", lrn_op},
    {"lrn_wide", lrn_op},           {"lrn_defaults", lrn_op},
};
enum { N_NORM_CASES = sizeof NORM_CASES / sizeof *NORM_CASES };

/* y, and the gradients of sum(y * R) for x, weight and bias, in f64 and f32. */
START_TEST(test_norm_golden) {
    const char *cs = NORM_CASES[_i / 2].name;
    tg_dtype dt = DTYPES[_i % 2];
    tg_tensor *x = load(cs, "x", dt, true), *r = load(cs, "R", dt, false);
    tg_tensor *w = load(cs, "weight", dt, true), *b = load(cs, "bias", dt, true);
    tg_tape *tp = tg_tape_new();
    tg_tensor *y = NORM_CASES[_i / 2].op(tp, cs, x, w, b);
    CK_TAPE_OK(tp);
    CK_GOLDEN(y, cs, "y");
    ck_assert_int_eq(tg_backward(tp, y, r), 0);
    CK_GOLDEN(tg_tensor_grad(x), cs, "gx");
    if (w) CK_GOLDEN(tg_tensor_grad(w), cs, "gw");
    if (b) CK_GOLDEN(tg_tensor_grad(b), cs, "gb");
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(r);
    tg_tensor_free(w);
    tg_tensor_free(b);
}
END_TEST

static const char *const EMB_CASES[] = {"emb_repeats", "emb_scalar"};

/* Rows of the weight, and its gradient accumulated over repeated indices. */
START_TEST(test_embedding_golden) {
    const char *cs = EMB_CASES[_i / 2];
    tg_dtype dt = DTYPES[_i % 2];
    tg_tensor *w = load(cs, "weight", dt, true), *idx = load(cs, "idx", dt, false);
    tg_tensor *r = load(cs, "R", dt, false);
    ck_assert_int_eq(tg_tensor_dtype(idx), TG_I64);
    tg_tape *tp = tg_tape_new();
    tg_tensor *y = tg_embedding(tp, w, idx);
    CK_TAPE_OK(tp);
    CK_GOLDEN(y, cs, "y");
    ck_assert_int_eq(tg_backward(tp, y, r), 0);
    CK_GOLDEN(tg_tensor_grad(w), cs, "gw");
    tg_tape_free(tp);
    tg_tensor_free(w);
    tg_tensor_free(idx);
    tg_tensor_free(r);
}
END_TEST

/* ---- gradcheck and gradgradcheck (f64) -------------------------------------------------- */

typedef struct norm_ctx {
    bool training;
    tg_tensor *rm, *rv; /* eval statistics */
    int64_t size;       /* LRN window, groups, or n_dims */
} norm_ctx;

static tg_tensor *bn_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    const norm_ctx *c = ctx;
    return tg_batch_norm(tp, in[0], c->training ? NULL : c->rm, c->training ? NULL : c->rv,
                         in[1], in[2], c->training, 0.1, 1e-5);
}

static tg_tensor *ln_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    return tg_layer_norm(tp, in[0], (int)((const norm_ctx *)ctx)->size, in[1], in[2], 1e-5);
}

static tg_tensor *gn_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    return tg_group_norm(tp, in[0], ((const norm_ctx *)ctx)->size, in[1], in[2], 1e-5);
}

static tg_tensor *lrn_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    return tg_local_response_norm(tp, in[0], ((const norm_ctx *)ctx)->size, 0.5, 0.75, 1.5);
}

START_TEST(test_gradcheck_batch_norm) {
    tg_rng *rng = tg_rng_new(11);
    const int64_t xs[3] = {3, 2, 2}, cs = 2;
    for (int training = 0; training < 2; training++) {
        norm_ctx ctx = {.training = training,
                        .rm = tg_randn(NULL, rng, TG_F64, 1, &cs, 0.0, 1.0),
                        .rv = tg_rand(NULL, rng, TG_F64, 1, &cs, 0.5, 2.0)};
        tg_tensor *in[3] = {rand64(rng, 3, xs, 0.0, 1.0), rand64(rng, 1, &cs, 1.0, 0.2),
                            rand64(rng, 1, &cs, 0.0, 1.0)};
        check_grads(bn_fn, &ctx, 3, in);
        tg_tensor_free(ctx.rm);
        tg_tensor_free(ctx.rv);
    }
    tg_rng_free(rng);
}
END_TEST

START_TEST(test_gradcheck_layer_and_group_norm) {
    tg_rng *rng = tg_rng_new(12);
    const int64_t xs[3] = {2, 2, 3};
    norm_ctx ln = {.size = 2}, gn = {.size = 2};
    tg_tensor *a[3] = {rand64(rng, 3, xs, 0.0, 1.0), rand64(rng, 2, xs + 1, 1.0, 0.2),
                       rand64(rng, 2, xs + 1, 0.0, 1.0)};
    check_grads(ln_fn, &ln, 3, a);
    const int64_t gs[3] = {2, 4, 2}, cs = 4;
    tg_tensor *g[3] = {rand64(rng, 3, gs, 0.0, 1.0), rand64(rng, 1, &cs, 1.0, 0.2),
                       rand64(rng, 1, &cs, 0.0, 1.0)};
    check_grads(gn_fn, &gn, 3, g);
    tg_rng_free(rng);
}
END_TEST

START_TEST(test_gradcheck_lrn) {
    tg_rng *rng = tg_rng_new(13);
    const int64_t xs[4] = {1, 5, 2, 1};
    for (int64_t size = 2; size <= 3; size++) { /* even and odd windows */
        norm_ctx ctx = {.size = size};
        tg_tensor *in[1] = {rand64(rng, 4, xs, 0.0, 1.0)};
        check_grads(lrn_fn, &ctx, 1, in);
    }
    tg_rng_free(rng);
}
END_TEST

typedef struct drop_ctx {
    double p;
    bool channels;
    tg_tensor *idx;
} drop_ctx;

/* The same mask at every call: the rng is recreated from a fixed seed. */
static tg_tensor *dropout_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    const drop_ctx *c = ctx;
    tg_rng *rng = tg_rng_new(99);
    tg_tensor *y = c->channels ? tg_dropout2d(tp, in[0], c->p, true, rng)
                               : tg_dropout(tp, in[0], c->p, true, rng);
    tg_rng_free(rng);
    return tg_square(tp, y); /* so that the second derivative is not zero */
}

static tg_tensor *embedding_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    return tg_square(tp, tg_embedding(tp, in[0], ((const drop_ctx *)ctx)->idx));
}

START_TEST(test_gradcheck_dropout_embedding) {
    tg_rng *rng = tg_rng_new(14);
    const int64_t xs[3] = {2, 3, 2};
    for (int channels = 0; channels < 2; channels++) {
        drop_ctx ctx = {.p = 0.4, .channels = channels};
        tg_tensor *in[1] = {rand64(rng, 3, xs, 0.0, 1.0)};
        check_grads(dropout_fn, &ctx, 1, in);
    }
    drop_ctx ctx = {.idx = tg_tensor_from(NULL, TG_I64, 2, (int64_t[]){2, 2},
                                          (int64_t[]){3, 0, 3, 1})};
    tg_tensor *in[1] = {rand64(rng, 2, (int64_t[]){4, 2}, 0.0, 1.0)};
    check_grads(embedding_fn, &ctx, 1, in);
    tg_tensor_free(ctx.idx);
    tg_rng_free(rng);
}
END_TEST

/* ---- dropout ---------------------------------------------------------------------------- */

/* Inverted dropout: about p of the values are zeroed, the rest scaled by exactly 1/(1-p), and
 * the gradient is exactly that mask; y = x * grad elementwise. In f64 and f32. */
START_TEST(test_dropout_mask_and_gradient) {
    tg_dtype dt = DTYPES[_i];
    const double p = 0.3;
    const int64_t shape[2] = {200, 100}, n = 20000;
    tg_rng *data_rng = tg_rng_new(1), *rng = tg_rng_new(2);
    tg_tensor *x = tg_randn(NULL, data_rng, dt, 2, shape, 0.0, 1.0);
    ck_assert_int_eq(tg_set_requires_grad(x, true), 0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *y = tg_dropout(tp, x, p, true, rng);
    CK_TAPE_OK(tp);
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    const tg_tensor *g = tg_tensor_grad(x);
    /* exactly 1/(1-p) in f64; that rounded to f32 in f32 */
    double scale = dt == TG_F64 ? 1.0 / (1.0 - p) : (double)(float)(1.0 / (1.0 - p));
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; i++) {
        double gi = tg_tensor_get(g, i), xi = tg_tensor_get(x, i), yi = tg_tensor_get(y, i);
        ck_assert_msg(gi == 0.0 || gi == scale, "grad %lld = %.17g is neither 0 nor 1/(1-p)",
                      (long long)i, gi);
        ck_assert_msg(yi == (dt == TG_F64 ? xi * gi : (double)((float)xi * (float)gi)),
                      "y %lld = %.17g is not x * mask = %.17g * %.17g", (long long)i, yi, xi, gi);
        zeros += gi == 0.0;
    }
    ck_assert_msg(fabs((double)zeros / (double)n - p) < 0.02, "dropped %lld of %lld",
                  (long long)zeros, (long long)n);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_rng_free(data_rng);
    tg_rng_free(rng);
}
END_TEST

/* Not training, or p = 0: the input itself; p = 1: zeros with a zero gradient. */
START_TEST(test_dropout_identity_and_extremes) {
    tg_rng *rng = tg_rng_new(3);
    tg_tensor *x = tg_randn(NULL, rng, TG_F64, 2, (int64_t[]){4, 5}, 0.0, 1.0);
    ck_assert_int_eq(tg_set_requires_grad(x, true), 0);
    tg_tape *tp = tg_tape_new();
    ck_assert_ptr_eq(tg_dropout(tp, x, 0.5, false, rng), x);
    ck_assert_ptr_eq(tg_dropout2d(tp, x, 0.5, false, rng), x);
    ck_assert_ptr_eq(tg_dropout(tp, x, 0.0, true, NULL), x);
    tg_tensor *y = tg_dropout(tp, x, 1.0, true, NULL);
    CK_TAPE_OK(tp);
    ck_assert_int_eq(tg_backward(tp, y, NULL), 0);
    for (int64_t i = 0; i < 20; i++) {
        ck_assert(tg_tensor_get(y, i) == 0.0);
        ck_assert(tg_tensor_get(tg_tensor_grad(x), i) == 0.0);
    }
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_rng_free(rng);
}
END_TEST

/* The mask is a function of the rng's stream: the same seed gives the same output, another
 * seed another one, and consecutive calls draw fresh masks. */
START_TEST(test_dropout_reproducible) {
    tg_tensor *x = tg_ones(NULL, TG_F32, 1, (int64_t[]){64});
    tg_rng *a = tg_rng_new(7), *b = tg_rng_new(7), *c = tg_rng_new(8);
    tg_tape *tp = tg_tape_new();
    tg_tensor *ya = tg_dropout(tp, x, 0.5, true, a), *yb = tg_dropout(tp, x, 0.5, true, b);
    tg_tensor *yc = tg_dropout(tp, x, 0.5, true, c), *ya2 = tg_dropout(tp, x, 0.5, true, a);
    CK_TAPE_OK(tp);
    ck_assert_mem_eq(tg_tensor_data(ya), tg_tensor_data(yb), 64 * sizeof(float));
    ck_assert(memcmp(tg_tensor_data(ya), tg_tensor_data(yc), 64 * sizeof(float)) != 0);
    ck_assert(memcmp(tg_tensor_data(ya), tg_tensor_data(ya2), 64 * sizeof(float)) != 0);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_rng_free(a);
    tg_rng_free(b);
    tg_rng_free(c);
}
END_TEST

/* dropout2d zeroes whole channels: every [n, c] plane is all 0 or all 1/(1-p), and about p
 * of the planes are zero. */
START_TEST(test_dropout2d_channels) {
    const double p = 0.25;
    const int64_t shape[4] = {50, 40, 2, 3}, planes = 2000, plane = 6;
    tg_tensor *x = tg_ones(NULL, TG_F64, 4, shape);
    tg_rng *rng = tg_rng_new(5);
    tg_tape *tp = tg_tape_new();
    tg_tensor *y = tg_dropout2d(tp, x, p, true, rng);
    CK_TAPE_OK(tp);
    int64_t zeros = 0;
    for (int64_t q = 0; q < planes; q++) {
        double v = tg_tensor_get(y, q * plane);
        ck_assert(v == 0.0 || v == 1.0 / (1.0 - p));
        for (int64_t j = 1; j < plane; j++) ck_assert(tg_tensor_get(y, q * plane + j) == v);
        zeros += v == 0.0;
    }
    ck_assert_msg(fabs((double)zeros / (double)planes - p) < 0.04, "dropped %lld of %lld planes",
                  (long long)zeros, (long long)planes);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_rng_free(rng);
}
END_TEST

/* The layers follow the model's training flag and print as PyTorch's modules. */
START_TEST(test_dropout_layers) {
    tg_rng *rng = tg_rng_new(4);
    tg_model *m = tg_model_new(NULL);
    tg_layer *d = tg_dropout_new(m, "drop", 0.5, rng);
    tg_layer *d2 = tg_dropout2d_new(m, "drop2", 0.25, rng);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(d2);
    ck_assert_int_eq(tg_model_num_entries(m), 0);
    tg_tensor *x = tg_ones(NULL, TG_F32, 4, (int64_t[]){2, 8, 2, 2});
    tg_tape *tp = tg_tape_new();
    tg_tensor *y = tg_layer_forward(tp, d, x), *y2 = tg_layer_forward(tp, d2, x);
    CK_TAPE_OK(tp);
    int zeros = 0, zeros2 = 0;
    for (int64_t i = 0; i < 64; i++) {
        zeros += tg_tensor_get(y, i) == 0.0;
        zeros2 += tg_tensor_get(y2, i) == 0.0;
    }
    ck_assert(zeros > 0 && zeros < 64 && zeros2 % 4 == 0);
    tg_model_set_training(m, false);
    ck_assert_ptr_eq(tg_layer_forward(tp, d, x), x);
    ck_assert_ptr_eq(tg_layer_forward(tp, d2, x), x);
    char *s = model_printed(m);
    CK_HAS(s, "(drop): Dropout(p=0.5, inplace=False)\n");
    CK_HAS(s, "(drop2): Dropout2d(p=0.25, inplace=False)\n");
    free(s);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* ---- layer objects ---------------------------------------------------------------------- */

/* BatchNorm registers PyTorch's state_dict keys in order, with the counter an i64 scalar. */
START_TEST(test_batch_norm_registration) {
    tg_model *m = tg_model_new("Net");
    ck_assert_ptr_nonnull(tg_batch_norm2d_new(m, "bn1", 16, 1e-5, 0.1, true, true));
    ck_assert_ptr_nonnull(tg_batch_norm1d_new(m, "bn2", 4, 1e-3, 0.2, false, false));
    ck_assert_ptr_nonnull(tg_batch_norm1d_new(m, "bn3", 3, 1e-5, 0.1, false, true));
    static const char *const names[] = {"bn1.weight", "bn1.bias", "bn1.running_mean",
                                        "bn1.running_var", "bn1.num_batches_tracked",
                                        "bn3.running_mean", "bn3.running_var",
                                        "bn3.num_batches_tracked"};
    static const double fill[] = {1, 0, 0, 1, 0, 0, 1, 0};
    ck_assert_int_eq(tg_model_num_entries(m), 8);
    for (int i = 0; i < 8; i++) {
        tg_model_entry e = tg_model_entry_at(m, i);
        ck_assert_str_eq(e.name, names[i]);
        ck_assert(e.is_buffer == (i >= 2));
        ck_assert(tg_tensor_requires_grad(e.tensor) == (i < 2));
        for (int64_t j = 0; j < tg_tensor_numel(e.tensor); j++)
            ck_assert(tg_tensor_get(e.tensor, j) == fill[i]);
    }
    tg_tensor *nbt = tg_model_find(m, "bn1.num_batches_tracked");
    ck_assert_int_eq(tg_tensor_dtype(nbt), TG_I64);
    ck_assert_int_eq(tg_tensor_ndim(nbt), 0);
    ck_assert_int_eq(tg_tensor_numel(tg_model_find(m, "bn1.weight")), 16);
    ck_assert_int_eq(tg_model_num_parameters(m, false), 32);
    char *s = model_printed(m);
    CK_HAS(s, "(bn1): BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, "
              "track_running_stats=True)\n");
    CK_HAS(s, "(bn2): BatchNorm1d(4, eps=0.001, momentum=0.2, affine=False, "
              "track_running_stats=False)\n");
    free(s);
    tg_model_free(m);
}
END_TEST

/* Without tracked statistics the layer normalizes with the batch statistics in eval mode too;
 * with them, a no-grad training forward still updates the buffers. */
START_TEST(test_batch_norm_layer_modes) {
    tg_rng *rng = tg_rng_new(21);
    tg_model *m = tg_model_new(NULL);
    tg_layer *plain = tg_batch_norm2d_new(m, "plain", 3, 1e-5, 0.1, true, false);
    tg_layer *tracked = tg_batch_norm2d_new(m, "tracked", 3, 1e-5, 0.1, true, true);
    tg_tensor *x = tg_randn(NULL, rng, TG_F32, 4, (int64_t[]){2, 3, 2, 2}, 1.0, 2.0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *batch = tg_batch_norm(tp, x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5);
    tg_model_set_training(m, false);
    tg_tensor *y = tg_layer_forward(tp, plain, x);
    CK_TAPE_OK(tp);
    for (int64_t i = 0; i < 24; i++)
        ck_assert_double_eq_tol(tg_tensor_get(y, i), tg_tensor_get(batch, i), 1e-6);
    tg_model_set_training(m, true);
    tg_tape_set_grad_enabled(tp, false);
    ck_assert_ptr_nonnull(tg_layer_forward(tp, tracked, x));
    ck_assert(tg_tensor_get(tg_layer_get(tracked, "running_mean"), 0) != 0.0);
    ck_assert_int_eq((int)tg_tensor_item(tg_layer_get(tracked, "num_batches_tracked")), 1);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* LayerNorm, GroupNorm, LocalResponseNorm and Embedding: parameters, reprs, forward equal to
 * the functional op. */
START_TEST(test_norm_layers) {
    tg_rng *rng = tg_rng_new(22);
    tg_model *m = tg_model_new("Net");
    tg_layer *ln1 = tg_layer_norm_new(m, "ln1", 1, (int64_t[]){8}, 1e-5, true);
    tg_layer *ln2 = tg_layer_norm_new(m, "ln2", 2, (int64_t[]){4, 8}, 1e-5, false);
    tg_layer *gn = tg_group_norm_new(m, "gn", 2, 8, 1e-5, true);
    tg_layer *lrn = tg_local_response_norm_new(m, "lrn", 5, 1e-4, 0.75, 1.0);
    tg_layer *emb = tg_embedding_new(m, "emb", 10, 3, rng);
    ck_assert(ln1 && ln2 && gn && lrn && emb);
    static const char *const names[] = {"ln1.weight", "ln1.bias", "gn.weight", "gn.bias",
                                        "emb.weight"};
    ck_assert_int_eq(tg_model_num_entries(m), 5);
    for (int i = 0; i < 5; i++) ck_assert_str_eq(tg_model_entry_at(m, i).name, names[i]);
    ck_assert(tg_tensor_get(tg_layer_get(ln1, "weight"), 7) == 1.0);
    ck_assert(tg_tensor_get(tg_layer_get(gn, "bias"), 7) == 0.0);
    char *s = model_printed(m);
    CK_HAS(s, "(ln1): LayerNorm((8,), eps=1e-05, elementwise_affine=True)\n");
    CK_HAS(s, "(ln2): LayerNorm((4, 8), eps=1e-05, elementwise_affine=False)\n");
    CK_HAS(s, "(gn): GroupNorm(2, 8, eps=1e-05, affine=True)\n");
    CK_HAS(s, "(lrn): LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=1.0)\n");
    CK_HAS(s, "(emb): Embedding(10, 3)\n");
    free(s);

    tg_tensor *x = tg_randn(NULL, rng, TG_F32, 3, (int64_t[]){2, 4, 8}, 0.0, 1.0);
    tg_tensor *x4 = tg_randn(NULL, rng, TG_F32, 4, (int64_t[]){2, 8, 3, 1}, 0.0, 1.0);
    tg_tensor *idx = tg_tensor_from(NULL, TG_I64, 1, (int64_t[]){3}, (int64_t[]){9, 0, 9});
    tg_tape *tp = tg_tape_new();
    tg_tensor *pairs[5][2] = {
        {tg_layer_forward(tp, ln1, x), tg_layer_norm(tp, x, 1, NULL, NULL, 1e-5)},
        {tg_layer_forward(tp, ln2, x), tg_layer_norm(tp, x, 2, NULL, NULL, 1e-5)},
        {tg_layer_forward(tp, gn, x4), tg_group_norm(tp, x4, 2, NULL, NULL, 1e-5)},
        {tg_layer_forward(tp, lrn, x4), tg_local_response_norm(tp, x4, 5, 1e-4, 0.75, 1.0)},
        {tg_layer_forward(tp, emb, idx),
         tg_index_select(tp, tg_layer_get(emb, "weight"), 0, idx)},
    };
    CK_TAPE_OK(tp);
    for (int p = 0; p < 5; p++) {
        ck_assert_int_eq(tg_tensor_numel(pairs[p][0]), tg_tensor_numel(pairs[p][1]));
        for (int64_t i = 0; i < tg_tensor_numel(pairs[p][0]); i++)
            ck_assert(tg_tensor_get(pairs[p][0], i) == tg_tensor_get(pairs[p][1], i));
    }
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(x4);
    tg_tensor_free(idx);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* Embedding's weight is normal(0, 1) as PyTorch's. */
START_TEST(test_embedding_init) {
    tg_rng *rng = tg_rng_new(23);
    tg_model *m = tg_model_new(NULL);
    tg_layer *emb = tg_embedding_new(m, "emb", 500, 8, rng);
    const tg_tensor *w = tg_layer_get(emb, "weight");
    ck_assert_int_eq(tg_tensor_dim(w, 0), 500);
    ck_assert_int_eq(tg_tensor_dim(w, 1), 8);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < 4000; i++) {
        double v = tg_tensor_get(w, i);
        sum += v;
        sq += v * v;
    }
    double mean = sum / 4000, var = sq / 4000 - mean * mean;
    ck_assert_msg(fabs(mean) < 0.06 && fabs(var - 1.0) < 0.1, "mean %g var %g", mean, var);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

START_TEST(test_functional_errors) {
    tg_tape *tp = tg_tape_new();
    int64_t c3 = 3, c4 = 4;
    tg_tensor *x = tg_ones(NULL, TG_F64, 3, (int64_t[]){2, 3, 4});
    tg_tensor *one = tg_ones(NULL, TG_F64, 2, (int64_t[]){1, 3});
    tg_tensor *v1 = tg_ones(NULL, TG_F64, 1, (int64_t[]){4});
    tg_tensor *r3 = tg_ones(NULL, TG_F64, 1, &c3), *r4 = tg_ones(NULL, TG_F64, 1, &c4);
    tg_tensor *r3f = tg_ones(NULL, TG_F32, 1, &c3);
    tg_tensor *ix = tg_zeros(NULL, TG_I64, 3, (int64_t[]){2, 3, 4});
    tg_tensor *w = tg_ones(NULL, TG_F64, 2, (int64_t[]){5, 2});
    tg_tensor *bad_idx = tg_tensor_from(NULL, TG_I64, 1, (int64_t[]){2}, (int64_t[]){1, 5});
    tg_tensor *neg_idx = tg_tensor_from(NULL, TG_I64, 1, (int64_t[]){1}, (int64_t[]){-1});
    tg_rng *rng = tg_rng_new(1);

    CK_FAILS(tp, tg_batch_norm(tp, v1, NULL, NULL, NULL, NULL, true, 0.1, 1e-5), "batch_norm");
    CK_FAILS(tp, tg_batch_norm(tp, ix, NULL, NULL, NULL, NULL, true, 0.1, 1e-5), "i64");
    CK_FAILS(tp, tg_batch_norm(tp, x, r4, r3, NULL, NULL, true, 0.1, 1e-5), "running_mean");
    CK_FAILS(tp, tg_batch_norm(tp, x, r3, NULL, NULL, NULL, true, 0.1, 1e-5), "together");
    CK_FAILS(tp, tg_batch_norm(tp, x, NULL, NULL, NULL, NULL, false, 0.1, 1e-5), "evaluation");
    CK_FAILS(tp, tg_batch_norm(tp, x, NULL, NULL, r3f, NULL, true, 0.1, 1e-5), "weight");
    CK_FAILS(tp, tg_batch_norm(tp, x, NULL, NULL, NULL, r4, true, 0.1, 1e-5), "bias");
    CK_FAILS(tp, tg_batch_norm(tp, one, NULL, NULL, NULL, NULL, true, 0.1, 1e-5),
             "more than one value per channel");
    tg_tensor *stale_m = tg_zeros(tp, TG_F64, 1, &c3), *stale_v = tg_ones(tp, TG_F64, 1, &c3);
    tg_tape_reset(tp); /* running statistics of an earlier step must not be written */
    CK_FAILS(tp, tg_batch_norm(tp, x, stale_m, stale_v, NULL, NULL, true, 0.1, 1e-5),
             "another tape");
    CK_FAILS(tp, tg_layer_norm(tp, x, 0, NULL, NULL, 1e-5), "n_dims");
    CK_FAILS(tp, tg_layer_norm(tp, x, 4, NULL, NULL, 1e-5), "n_dims");
    CK_FAILS(tp, tg_layer_norm(tp, x, 1, r3, NULL, 1e-5), "layer_norm: weight");
    CK_FAILS(tp, tg_layer_norm(tp, x, 2, NULL, v1, 1e-5), "layer_norm: bias");
    CK_FAILS(tp, tg_group_norm(tp, x, 2, NULL, NULL, 1e-5), "do not divide");
    CK_FAILS(tp, tg_group_norm(tp, x, 0, NULL, NULL, 1e-5), "group_norm");
    CK_FAILS(tp, tg_group_norm(tp, x, 3, r4, NULL, 1e-5), "group_norm: weight");
    CK_FAILS(tp, tg_local_response_norm(tp, one, 3, 1e-4, 0.75, 1.0), "local_response_norm");
    CK_FAILS(tp, tg_local_response_norm(tp, x, 0, 1e-4, 0.75, 1.0), "size");
    CK_FAILS(tp, tg_dropout(tp, x, 1.5, true, rng), "dropout: p");
    CK_FAILS(tp, tg_dropout(tp, x, -0.1, false, rng), "dropout: p");
    CK_FAILS(tp, tg_dropout(tp, x, 0.5, true, NULL), "rng");
    CK_FAILS(tp, tg_dropout(tp, ix, 0.5, true, rng), "dropout");
    CK_FAILS(tp, tg_dropout2d(tp, v1, 0.5, true, rng), "dropout2d");
    CK_FAILS(tp, tg_dropout2d(tp, x, NAN, true, rng), "dropout2d: p");
    CK_FAILS(tp, tg_embedding(tp, w, bad_idx), "embedding: index 5");
    CK_FAILS(tp, tg_embedding(tp, w, neg_idx), "embedding: index -1");
    CK_FAILS(tp, tg_embedding(tp, w, x), "embedding");
    CK_FAILS(tp, tg_embedding(tp, v1, bad_idx), "embedding");

    /* A NULL input reports itself once, and never replaces an earlier message. */
    CK_FAILS(tp, tg_layer_norm(tp, NULL, 1, NULL, NULL, 1e-5), "layer_norm: x is NULL");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_group_norm(tp, x, 2, NULL, NULL, 1e-5));
    ck_assert_ptr_null(tg_batch_norm(tp, NULL, NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    ck_assert_ptr_null(tg_dropout(tp, NULL, 0.5, true, rng));
    ck_assert_ptr_null(tg_embedding(tp, NULL, bad_idx));
    ck_assert_ptr_null(tg_local_response_norm(tp, NULL, 3, 1e-4, 0.75, 1.0));
    CK_HAS(tg_tape_error(tp), "group_norm");
    /* Without a tape: the thread's last error. */
    ck_assert_ptr_null(tg_batch_norm(NULL, x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
    CK_HAS(tg_last_error(), "batch_norm");
    ck_assert_ptr_null(tg_dropout(NULL, x, 0.5, true, rng));
    CK_HAS(tg_last_error(), "dropout");

    tg_tensor *ts[] = {x, one, v1, r3, r4, r3f, ix, w, bad_idx, neg_idx};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) tg_tensor_free(ts[i]);
    tg_rng_free(rng);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_layer_errors) {
    tg_rng *rng = tg_rng_new(1);
    tg_model *m = tg_model_new(NULL);
    ck_assert_ptr_null(tg_batch_norm2d_new(m, "a", 0, 1e-5, 0.1, true, true));
    CK_HAS(tg_last_error(), "BatchNorm2d");
    ck_assert_ptr_null(tg_batch_norm1d_new(m, "a", 3, -1.0, 0.1, true, true));
    CK_HAS(tg_last_error(), "BatchNorm1d");
    ck_assert_ptr_null(tg_batch_norm1d_new(m, "a", 3, 1e-5, 1.5, true, true));
    CK_HAS(tg_last_error(), "momentum");
    ck_assert_ptr_null(tg_layer_norm_new(m, "a", 0, (int64_t[]){1}, 1e-5, true));
    CK_HAS(tg_last_error(), "LayerNorm");
    ck_assert_ptr_null(tg_layer_norm_new(m, "a", 1, (int64_t[]){0}, 1e-5, true));
    CK_HAS(tg_last_error(), "LayerNorm");
    ck_assert_ptr_null(tg_group_norm_new(m, "a", 3, 8, 1e-5, true));
    CK_HAS(tg_last_error(), "divisible");
    ck_assert_ptr_null(tg_local_response_norm_new(m, "a", 0, 1e-4, 0.75, 1.0));
    CK_HAS(tg_last_error(), "LocalResponseNorm");
    ck_assert_ptr_null(tg_dropout_new(m, "a", 1.1, rng));
    CK_HAS(tg_last_error(), "Dropout");
    ck_assert_ptr_null(tg_dropout2d_new(m, "a", 0.5, NULL));
    CK_HAS(tg_last_error(), "Dropout2d");
    ck_assert_ptr_null(tg_embedding_new(m, "a", 0, 3, rng));
    CK_HAS(tg_last_error(), "Embedding");
    ck_assert_int_eq(tg_model_num_entries(m), 0);

    tg_layer *bn1 = tg_batch_norm1d_new(m, "bn1", 3, 1e-5, 0.1, true, true);
    tg_layer *bn2 = tg_batch_norm2d_new(m, "bn2", 3, 1e-5, 0.1, true, true);
    tg_layer *ln = tg_layer_norm_new(m, "ln", 2, (int64_t[]){3, 4}, 1e-5, false);
    tg_layer *gn = tg_group_norm_new(m, "gn", 1, 4, 1e-5, false);
    ck_assert(bn1 && bn2 && ln && gn);
    tg_tensor *x = tg_ones(NULL, TG_F32, 4, (int64_t[]){2, 3, 4, 1});
    tg_tensor *x64 = tg_ones(NULL, TG_F64, 3, (int64_t[]){2, 3, 4});
    tg_tape *tp = tg_tape_new();
    CK_FAILS(tp, tg_layer_forward(tp, bn1, x), "BatchNorm1d \"bn1\"");
    CK_FAILS(tp, tg_layer_forward(tp, bn2, x64), "BatchNorm2d \"bn2\"");
    CK_FAILS(tp, tg_layer_forward(tp, bn1, x64), "running_mean must be f64[3]");
    CK_FAILS(tp, tg_layer_forward(tp, ln, x), "LayerNorm \"ln\"");
    CK_FAILS(tp, tg_layer_forward(tp, gn, x), "GroupNorm \"gn\"");
    ck_assert_int_eq((int)tg_tensor_item(tg_layer_get(bn1, "num_batches_tracked")), 0);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(x64);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* ---- runner ----------------------------------------------------------------------------- */

/* Seconds per test: generous, for the sanitizer builds on a loaded machine. */
enum { TCASE_TIMEOUT = 60 };

static Suite *norm_suite(void) {
    Suite *s = suite_create("nn_norm");
    TCase *golden_tc = tcase_create("golden");
    tcase_set_timeout(golden_tc, TCASE_TIMEOUT);
    tcase_add_loop_test(golden_tc, test_batch_norm_golden, 0, 6);
    tcase_add_loop_test(golden_tc, test_batch_norm_layer_golden, 0, 3);
    tcase_add_loop_test(golden_tc, test_norm_golden, 0, 2 * N_NORM_CASES);
    tcase_add_loop_test(golden_tc, test_embedding_golden, 0, 4);
    suite_add_tcase(s, golden_tc);
    TCase *grad_tc = tcase_create("gradcheck");
    tcase_set_timeout(grad_tc, TCASE_TIMEOUT);
    tcase_add_test(grad_tc, test_gradcheck_batch_norm);
    tcase_add_test(grad_tc, test_gradcheck_layer_and_group_norm);
    tcase_add_test(grad_tc, test_gradcheck_lrn);
    tcase_add_test(grad_tc, test_gradcheck_dropout_embedding);
    suite_add_tcase(s, grad_tc);
    TCase *drop_tc = tcase_create("dropout");
    tcase_set_timeout(drop_tc, TCASE_TIMEOUT);
    tcase_add_loop_test(drop_tc, test_dropout_mask_and_gradient, 0, 2);
    tcase_add_test(drop_tc, test_dropout_identity_and_extremes);
    tcase_add_test(drop_tc, test_dropout_reproducible);
    tcase_add_test(drop_tc, test_dropout2d_channels);
    tcase_add_test(drop_tc, test_dropout_layers);
    suite_add_tcase(s, drop_tc);
    TCase *layer_tc = tcase_create("layers");
    tcase_set_timeout(layer_tc, TCASE_TIMEOUT);
    tcase_add_test(layer_tc, test_batch_norm_registration);
    tcase_add_test(layer_tc, test_batch_norm_layer_modes);
    tcase_add_test(layer_tc, test_norm_layers);
    tcase_add_test(layer_tc, test_embedding_init);
    suite_add_tcase(s, layer_tc);
    TCase *err_tc = tcase_create("errors");
    tcase_set_timeout(err_tc, TCASE_TIMEOUT);
    tcase_add_test(err_tc, test_functional_errors);
    tcase_add_test(err_tc, test_layer_errors);
    suite_add_tcase(s, err_tc);
    return s;
}

int main(void) {
    G = golden_load(GOLDEN_DIR "/norm.txt");
    if (!G) return 1;
    int rc = run_suite(norm_suite(), CK_ENV);
    golden_free(G);
    return rc;
}
