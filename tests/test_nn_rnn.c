/* Tests of the recurrent cells (suite `nn`): LSTMCell and GRUCell single steps and unrolled
 * sequences against PyTorch (tests/golden/rnn.txt, from cases_rnn.py) -- outputs, final states
 * and gradients for the input, the initial states and every weight -- through the functional
 * cells in f64 and f32 and through the layer objects (step and tg_rnn_unroll) in f32;
 * gradcheck and gradgradcheck of both cells; the layers' parameters, initialization and repr;
 * zero initial states; sequences of several lengths; and the error paths. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "tapegrad.h"
#include "testing.h"

static golden *G; /* rnn.txt, loaded once by main */

/* ---- helpers ---------------------------------------------------------------------------- */

/* got matches value `key` of case cs within the tolerance of got's dtype. */
#define CK_GOLDEN(got, cs, key) GOLDEN_EXPECT_DTYPE(G, (cs), (key), (got))

/* Value `key` of case cs as a persistent tensor (see golden_leaf). */
static tg_tensor *load(const char *cs, const char *key, tg_dtype dt, bool requires_grad) {
    return golden_leaf(G, cs, key, dt, requires_grad);
}

/* a and b hold the same values (any shapes of equal size). */
static void expect_equal(const tg_tensor *a, const tg_tensor *b) {
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(tg_tensor_numel(a), tg_tensor_numel(b));
    for (int64_t i = 0; i < tg_tensor_numel(a); i++)
        ck_assert_msg(tg_tensor_get(a, i) == tg_tensor_get(b, i), "element %lld: %.17g != %.17g",
                      (long long)i, tg_tensor_get(a, i), tg_tensor_get(b, i));
}

/* ---- against PyTorch -------------------------------------------------------------------- */

static const char *const CASES[] = {"lstm_step",   "lstm_step_nobias", "gru_step",
                                    "gru_step_nobias", "lstm_unroll", "lstm_unroll_zero_state",
                                    "gru_unroll",  "gru_unroll_one_step"};
enum { N_CASES = sizeof CASES / sizeof *CASES };
static const char *const WEIGHTS[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};

/* How a golden case is run: the functional cells in f64 or f32, or the layer object in f32. */
enum { RUN_F64, RUN_F32, RUN_LAYER, N_RUNS };

/* One cell step with the functional ops (h, c NULL = zeros). */
static tg_tensor *functional_step(tg_tape *tp, bool lstm, tg_tensor *x, tg_tensor *h,
                                  tg_tensor *c, tg_tensor *const *w, tg_tensor **c_out) {
    int64_t hs[2] = {tg_tensor_dim(x, 0), tg_tensor_dim(w[1], 1)};
    if (!h) h = tg_zeros(tp, tg_tensor_dtype(x), 2, hs);
    if (lstm && !c) c = tg_zeros(tp, tg_tensor_dtype(x), 2, hs);
    return lstm ? tg_lstm_cell(tp, x, h, c, w[0], w[1], w[2], w[3], c_out)
                : tg_gru_cell(tp, x, h, w[0], w[1], w[2], w[3]);
}

/* The hidden states of the case's input (hs: [N, H] for a single step, [T, N, H] unrolled) and
 * the final cell state in *c_last, through the functional cells (layer NULL) or the layer. */
static tg_tensor *run_cell(tg_tape *tp, bool lstm, tg_layer *layer, tg_tensor *xs, tg_tensor *h0,
                           tg_tensor *c0, tg_tensor *const *w, tg_tensor **c_last) {
    if (tg_tensor_ndim(xs) == 2) {
        if (!layer) return functional_step(tp, lstm, xs, h0, c0, w, c_last);
        return lstm ? tg_lstm_cell_step(tp, layer, xs, h0, c0, c_last)
                    : tg_gru_cell_step(tp, layer, xs, h0);
    }
    if (layer) {
        tg_tensor *h_last = NULL;
        tg_tensor *hs = tg_rnn_unroll(tp, layer, xs, h0, c0, &h_last, c_last);
        int64_t t = tg_tensor_dim(xs, 0);
        expect_equal(h_last, tg_slice(tp, hs, 0, t - 1, t, 1));
        return hs;
    }
    int64_t steps = tg_tensor_dim(xs, 0);
    tg_tensor *h = h0, *c = c0, *outs[8];
    ck_assert_int_le(steps, 8);
    for (int64_t t = 0; t < steps; t++) {
        tg_tensor *x = tg_squeeze(tp, tg_slice(tp, xs, 0, t, t + 1, 1), 0);
        h = functional_step(tp, lstm, x, h, c, w, &c);
        outs[t] = tg_unsqueeze(tp, h, 0);
    }
    *c_last = c;
    return tg_concat(tp, (int)steps, outs, 0);
}

/* _i: case * N_RUNS + run. Loss sum(hs * R) (+ sum(c_last * Rc) for the LSTM). */
START_TEST(test_cells_golden) {
    const char *cs = CASES[_i / N_RUNS];
    int run = _i % N_RUNS;
    tg_dtype dt = run == RUN_F64 ? TG_F64 : TG_F32;
    bool lstm = strncmp(cs, "lstm", 4) == 0;
    tg_tensor *xs = load(cs, "xs", dt, true), *h0 = load(cs, "h0", dt, true);
    tg_tensor *c0 = load(cs, "c0", dt, true), *w[4];
    for (int k = 0; k < 4; k++) w[k] = load(cs, WEIGHTS[k], dt, run != RUN_LAYER);
    bool bias = golden_number(G, cs, "bias", -1) != 0;
    ck_assert(bias == (w[2] != NULL) && bias == (w[3] != NULL));
    tg_model *m = NULL;
    tg_layer *layer = NULL;
    if (run == RUN_LAYER) { /* the case's weights copied into a fresh layer */
        tg_rng *rng = tg_rng_new(1);
        m = tg_model_new(NULL);
        int64_t in = tg_tensor_dim(w[0], 1), hidden = tg_tensor_dim(w[1], 1);
        layer = (lstm ? tg_lstm_cell_new : tg_gru_cell_new)(m, "cell", in, hidden, bias, rng);
        ck_assert_ptr_nonnull(layer);
        tg_rng_free(rng);
        for (int k = 0; k < 4; k++) {
            tg_tensor *p = tg_layer_get(layer, WEIGHTS[k]);
            ck_assert((p != NULL) == (w[k] != NULL));
            if (!p) continue;
            memcpy(tg_tensor_data_mut(p), tg_tensor_data(w[k]),
                   (size_t)tg_tensor_numel(p) * sizeof(float));
            tg_tensor_free(w[k]);
            w[k] = p;
        }
    }
    tg_tape *tp = tg_tape_new();
    tg_tensor *c_last = NULL;
    tg_tensor *hs = run_cell(tp, lstm, layer, xs, h0, c0, w, &c_last);
    CK_TAPE_OK(tp);
    CK_GOLDEN(hs, cs, "hs");
    tg_tensor *r = load(cs, "R", dt, false), *rc = load(cs, "Rc", dt, false);
    tg_tensor *loss = tg_sum(tp, tg_mul(tp, hs, r), NULL, 0, false);
    if (lstm) {
        CK_GOLDEN(c_last, cs, "c_last");
        loss = tg_add(tp, loss, tg_sum(tp, tg_mul(tp, c_last, rc), NULL, 0, false));
    } else {
        ck_assert_ptr_null(c_last);
    }
    ck_assert_int_eq(tg_backward(tp, loss, NULL), 0);
    CK_GOLDEN(tg_tensor_grad(xs), cs, "g_xs");
    if (h0) CK_GOLDEN(tg_tensor_grad(h0), cs, "g_h0");
    if (c0) CK_GOLDEN(tg_tensor_grad(c0), cs, "g_c0");
    for (int k = 0; k < 4; k++) {
        char key[32];
        snprintf(key, sizeof key, "g_%s", WEIGHTS[k]);
        if (w[k]) CK_GOLDEN(tg_tensor_grad(w[k]), cs, key);
    }
    tg_tape_free(tp);
    tg_tensor *owned[] = {xs, h0, c0, r, rc};
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) tg_tensor_free(owned[i]);
    if (m) tg_model_free(m);
    else
        for (int k = 0; k < 4; k++) tg_tensor_free(w[k]);
}
END_TEST

/* ---- gradcheck and gradgradcheck (f64) -------------------------------------------------- */

/* h' + c' of an LSTM step; in: x, h, c, w_ih, w_hh, b_ih, b_hh. */
static tg_tensor *lstm_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    (void)ctx;
    tg_tensor *c = NULL;
    tg_tensor *h = tg_lstm_cell(tp, in[0], in[1], in[2], in[3], in[4], in[5], in[6], &c);
    return tg_add(tp, h, c);
}

/* h' of a GRU step; in: x, h, w_ih, w_hh, then b_ih, b_hh unless ctx is non-NULL (no bias). */
static tg_tensor *gru_fn(tg_tape *tp, tg_tensor *const *in, void *ctx) {
    bool bias = ctx == NULL;
    return tg_gru_cell(tp, in[0], in[1], in[2], in[3], bias ? in[4] : NULL, bias ? in[5] : NULL);
}

/* Persistent f64 tensors of the given shapes, normal(0, 0.7), requiring grad. */
static void random_inputs(tg_rng *rng, int n, const int64_t (*shapes)[2], tg_tensor **out) {
    for (int i = 0; i < n; i++) {
        int ndim = shapes[i][1] ? 2 : 1;
        out[i] = tg_randn(NULL, rng, TG_F64, ndim, shapes[i], 0.0, 0.7);
        ck_assert_int_eq(tg_set_requires_grad(out[i], true), 0);
    }
}

START_TEST(test_cells_gradcheck) {
    enum { N = 2, I = 3, H = 2 };
    tg_rng *rng = tg_rng_new(31);
    tg_gradcheck_opts opts = tg_gradcheck_defaults();
    tg_gradcheck_report rep;
    const int64_t lstm_shapes[7][2] = {{N, I}, {N, H}, {N, H}, {4 * H, I}, {4 * H, H},
                                       {4 * H, 0}, {4 * H, 0}};
    const int64_t gru_shapes[6][2] = {{N, I}, {N, H}, {3 * H, I}, {3 * H, H}, {3 * H, 0},
                                      {3 * H, 0}};
    tg_tensor *in[7];
    random_inputs(rng, 7, lstm_shapes, in);
    ck_assert_msg(tg_gradcheck(lstm_fn, NULL, 7, in, &opts, &rep) == 0, "%s", rep.message);
    ck_assert_msg(tg_gradgradcheck(lstm_fn, NULL, 7, in, &opts, &rep) == 0, "%s", rep.message);
    for (int i = 0; i < 7; i++) tg_tensor_free(in[i]);
    for (int bias = 1; bias >= 0; bias--) {
        int n = bias ? 6 : 4;
        void *ctx = bias ? NULL : &opts;
        random_inputs(rng, n, gru_shapes, in);
        ck_assert_msg(tg_gradcheck(gru_fn, ctx, n, in, &opts, &rep) == 0, "%s", rep.message);
        ck_assert_msg(tg_gradgradcheck(gru_fn, ctx, n, in, &opts, &rep) == 0, "%s", rep.message);
        for (int i = 0; i < n; i++) tg_tensor_free(in[i]);
    }
    tg_rng_free(rng);
}
END_TEST

/* ---- layer objects ---------------------------------------------------------------------- */

/* PyTorch's parameter names, order and shapes; uniform in +-1/sqrt(H) (bounds, mean, variance
 * of a large cell); reprs; tg_layer_forward refuses the cells. */
START_TEST(test_cell_layers) {
    enum { I = 32, H = 64 };
    tg_rng *rng = tg_rng_new(32);
    tg_model *m = tg_model_new("Net");
    tg_layer *lstm = tg_lstm_cell_new(m, "lstm", I, H, true, rng);
    tg_layer *gru = tg_gru_cell_new(m, "gru", 3, 5, false, rng);
    ck_assert(lstm && gru);
    static const char *const names[] = {"lstm.weight_ih", "lstm.weight_hh", "lstm.bias_ih",
                                        "lstm.bias_hh", "gru.weight_ih", "gru.weight_hh"};
    static const int64_t shapes[][2] = {{4 * H, I}, {4 * H, H}, {4 * H, 0}, {4 * H, 0},
                                        {15, 3}, {15, 5}};
    ck_assert_int_eq(tg_model_num_entries(m), 6);
    for (int i = 0; i < 6; i++) {
        tg_model_entry e = tg_model_entry_at(m, i);
        ck_assert_str_eq(e.name, names[i]);
        ck_assert(!e.is_buffer && tg_tensor_requires_grad(e.tensor));
        ck_assert_int_eq(tg_tensor_ndim(e.tensor), shapes[i][1] ? 2 : 1);
        ck_assert_int_eq(tg_tensor_dim(e.tensor, 0), shapes[i][0]);
        if (shapes[i][1]) ck_assert_int_eq(tg_tensor_dim(e.tensor, 1), shapes[i][1]);
    }
    const double bound = 1.0 / sqrt((double)H);
    for (int i = 0; i < 4; i++) {
        const tg_tensor *t = tg_model_entry_at(m, i).tensor;
        int64_t n = tg_tensor_numel(t);
        double sum = 0, sq = 0, top = 0;
        for (int64_t j = 0; j < n; j++) {
            double v = tg_tensor_get(t, j);
            ck_assert(fabs(v) <= bound);
            sum += v;
            sq += v * v;
            top = fmax(top, fabs(v));
        }
        double mean = sum / (double)n, var = sq / (double)n - mean * mean;
        ck_assert_msg(top > 0.9 * bound && fabs(mean) < 0.15 * bound &&
                          fabs(var / (bound * bound / 3.0) - 1.0) < 0.25,
                      "%s: mean %g var %g max %g", names[i], mean, var, top);
    }
    char *s = model_printed(m);
    CK_HAS(s, "(lstm): LSTMCell(32, 64)\n");
    CK_HAS(s, "(gru): GRUCell(3, 5, bias=False)\n");
    free(s);
    tg_tensor *x = tg_ones(NULL, TG_F32, 2, (int64_t[]){2, I});
    tg_tape *tp = tg_tape_new();
    CK_FAILS(tp, tg_layer_forward(tp, lstm, x), "LSTMCell \"lstm\"");
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* NULL states are zeros: the same values as explicit zero tensors. */
START_TEST(test_step_null_state) {
    tg_rng *rng = tg_rng_new(33);
    tg_model *m = tg_model_new(NULL);
    tg_layer *lstm = tg_lstm_cell_new(m, "lstm", 3, 4, true, rng);
    tg_layer *gru = tg_gru_cell_new(m, "gru", 3, 4, true, rng);
    tg_tensor *x = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){2, 3}, 0.0, 1.0);
    tg_tensor *z = tg_zeros(NULL, TG_F32, 2, (int64_t[]){2, 4});
    tg_tape *tp = tg_tape_new();
    tg_tensor *c1 = NULL, *c2 = NULL;
    tg_tensor *h1 = tg_lstm_cell_step(tp, lstm, x, NULL, NULL, &c1);
    tg_tensor *h2 = tg_lstm_cell_step(tp, lstm, x, z, z, &c2);
    tg_tensor *g1 = tg_gru_cell_step(tp, gru, x, NULL), *g2 = tg_gru_cell_step(tp, gru, x, z);
    CK_TAPE_OK(tp);
    expect_equal(h1, h2);
    expect_equal(c1, c2);
    expect_equal(g1, g2);
    ck_assert_int_eq(tg_tensor_dim(h1, 1), 4);
    ck_assert_ptr_nonnull(tg_lstm_cell_step(tp, lstm, x, NULL, NULL, NULL)); /* c' not wanted */
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(z);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* One layer unrolled over T = 1, 2, 5 on one tape (reset between): [T, N, H] outputs equal to
 * stepping by hand, a graph that grows with T, and gradients reaching every step's input. */
START_TEST(test_unroll_lengths) {
    tg_rng *rng = tg_rng_new(34);
    tg_model *m = tg_model_new(NULL);
    tg_layer *cells[2] = {tg_lstm_cell_new(m, "lstm", 3, 4, true, rng),
                          tg_gru_cell_new(m, "gru", 3, 4, true, rng)};
    tg_tape *tp = tg_tape_new();
    for (int k = 0; k < 2; k++) {
        int64_t prev_nodes = 0;
        for (int64_t steps = 1; steps <= 5; steps += steps == 1 ? 1 : 3) {
            tg_tensor *xs = tg_randn(NULL, rng, TG_F32, 3, (int64_t[]){steps, 2, 3}, 0.0, 1.0);
            ck_assert_int_eq(tg_set_requires_grad(xs, true), 0);
            tg_tensor *h_last = NULL, *c_last = NULL;
            tg_tensor *hs = tg_rnn_unroll(tp, cells[k], xs, NULL, NULL, &h_last, &c_last);
            CK_TAPE_OK(tp);
            ck_assert_int_eq(tg_tensor_ndim(hs), 3);
            ck_assert_int_eq(tg_tensor_dim(hs, 0), steps);
            ck_assert_int_eq(tg_tensor_dim(hs, 2), 4);
            ck_assert((c_last != NULL) == (k == 0));
            int64_t nodes = tg_tape_get_stats(tp).nodes;
            ck_assert_int_gt(nodes, prev_nodes);
            prev_nodes = nodes;
            tg_tensor *h = NULL, *c = NULL;
            for (int64_t t = 0; t < steps; t++) {
                tg_tensor *x = tg_squeeze(tp, tg_slice(tp, xs, 0, t, t + 1, 1), 0);
                h = k == 0 ? tg_lstm_cell_step(tp, cells[k], x, h, c, &c)
                           : tg_gru_cell_step(tp, cells[k], x, h);
                expect_equal(h, tg_slice(tp, hs, 0, t, t + 1, 1));
            }
            expect_equal(h, h_last);
            if (k == 0) expect_equal(c, c_last);
            ck_assert_int_eq(tg_backward(tp, hs, NULL), 0);
            const tg_tensor *g = tg_tensor_grad(xs);
            for (int64_t t = 0; t < steps; t++) ck_assert(tg_tensor_get(g, t * 6) != 0.0);
            tg_tape_reset(tp);
            tg_tensor_free(xs);
        }
    }
    tg_tape_free(tp);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

START_TEST(test_rnn_errors) {
    tg_rng *rng = tg_rng_new(35);
    tg_model *m = tg_model_new(NULL);
    ck_assert_ptr_null(tg_lstm_cell_new(m, "a", 0, 4, true, rng));
    CK_HAS(tg_last_error(), "LSTMCell");
    ck_assert_ptr_null(tg_gru_cell_new(m, "a", 3, 4, true, NULL));
    CK_HAS(tg_last_error(), "GRUCell");
    tg_layer *lstm = tg_lstm_cell_new(m, "lstm", 3, 4, true, rng);
    tg_layer *gru = tg_gru_cell_new(m, "gru", 3, 4, true, rng);
    tg_layer *fc = tg_linear_new(m, "fc", 3, 4, true, rng);
    ck_assert(lstm && gru && fc);

    tg_tensor *x = tg_ones(NULL, TG_F64, 2, (int64_t[]){2, 3});
    tg_tensor *h = tg_ones(NULL, TG_F64, 2, (int64_t[]){2, 4});
    tg_tensor *h5 = tg_ones(NULL, TG_F64, 2, (int64_t[]){2, 5});
    tg_tensor *w16 = tg_ones(NULL, TG_F64, 2, (int64_t[]){16, 3});
    tg_tensor *w10 = tg_ones(NULL, TG_F64, 2, (int64_t[]){10, 3});
    tg_tensor *whh = tg_ones(NULL, TG_F64, 2, (int64_t[]){16, 4});
    tg_tensor *w12 = tg_ones(NULL, TG_F64, 2, (int64_t[]){12, 3});
    tg_tensor *whh12 = tg_ones(NULL, TG_F64, 2, (int64_t[]){12, 4});
    tg_tensor *b5 = tg_ones(NULL, TG_F64, 1, (int64_t[]){5});
    tg_tensor *w16f = tg_ones(NULL, TG_F32, 2, (int64_t[]){16, 3});
    tg_tensor *x1 = tg_ones(NULL, TG_F64, 1, (int64_t[]){3});
    tg_tensor *xf = tg_ones(NULL, TG_F32, 2, (int64_t[]){2, 3});
    tg_tensor *xf5 = tg_ones(NULL, TG_F32, 2, (int64_t[]){2, 5});
    tg_tensor *xsf = tg_ones(NULL, TG_F32, 3, (int64_t[]){2, 2, 3});
    tg_tensor *xs0 = tg_ones(NULL, TG_F32, 3, (int64_t[]){0, 2, 3});
    tg_tensor *hf = tg_ones(NULL, TG_F32, 2, (int64_t[]){2, 4});
    tg_tape *tp = tg_tape_new();
    tg_tensor *c = NULL;

    CK_FAILS(tp, tg_lstm_cell(tp, x, h, h, w10, whh, NULL, NULL, &c), "w_ih must be [4*H, I]");
    ck_assert_ptr_null(c);
    CK_FAILS(tp, tg_lstm_cell(tp, x, h5, h, w16, whh, NULL, NULL, NULL), "lstm_cell: h must be");
    CK_FAILS(tp, tg_lstm_cell(tp, x, h, h5, w16, whh, NULL, NULL, NULL), "lstm_cell: c must be");
    CK_FAILS(tp, tg_lstm_cell(tp, x, h, h, w16f, whh, NULL, NULL, NULL), "w_ih must be f64");
    CK_FAILS(tp, tg_lstm_cell(tp, x, h, h, w16, w10, NULL, NULL, NULL), "w_hh must be");
    CK_FAILS(tp, tg_lstm_cell(tp, x1, h, h, w16, whh, NULL, NULL, NULL), "x must be");
    CK_FAILS(tp, tg_lstm_cell(tp, x, h, NULL, w16, whh, NULL, NULL, NULL), "lstm_cell: c is NULL");
    CK_FAILS(tp, tg_gru_cell(tp, x, h, w12, whh12, b5, NULL), "gru_cell: b_ih must be");
    CK_FAILS(tp, tg_gru_cell(tp, x, h, w12, whh12, NULL, b5), "gru_cell: b_hh must be");
    CK_FAILS(tp, tg_gru_cell(tp, x, h, w12, whh, NULL, NULL), "gru_cell: w_hh must be");
    CK_FAILS(tp, tg_lstm_cell_step(tp, gru, xf, NULL, NULL, &c), "type LSTMCell");
    CK_FAILS(tp, tg_gru_cell_step(tp, fc, xf, NULL), "type GRUCell");
    CK_FAILS(tp, tg_gru_cell_step(tp, gru, xf5, NULL), "x must be [N, 3]");
    CK_FAILS(tp, tg_lstm_cell_step(tp, lstm, xf, NULL, xf, NULL), "lstm_cell: c must be");
    CK_FAILS(tp, tg_gru_cell_step(tp, gru, x, NULL), "w_ih must be f64");
    CK_FAILS(tp, tg_rnn_unroll(tp, fc, xsf, NULL, NULL, NULL, NULL), "LSTMCell or GRUCell");
    CK_FAILS(tp, tg_rnn_unroll(tp, gru, xsf, NULL, hf, NULL, NULL), "c0");
    CK_FAILS(tp, tg_rnn_unroll(tp, lstm, xf, NULL, NULL, NULL, NULL), "xs must be [T, N, 3]");
    CK_FAILS(tp, tg_rnn_unroll(tp, lstm, xs0, NULL, NULL, NULL, NULL), "T >= 1");
    CK_FAILS(tp, tg_rnn_unroll(tp, lstm, xsf, h5, NULL, NULL, NULL), "h must be");
    CK_FAILS(tp, tg_rnn_unroll(tp, lstm, NULL, NULL, NULL, NULL, NULL), "xs is NULL");

    /* NULL inputs never replace the first message. */
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_lstm_cell(tp, x, h, h, w10, whh, NULL, NULL, NULL));
    ck_assert_ptr_null(tg_gru_cell(tp, NULL, h, w12, whh12, NULL, NULL));
    ck_assert_ptr_null(tg_lstm_cell_step(tp, lstm, NULL, NULL, NULL, NULL));
    CK_HAS(tg_tape_error(tp), "w_ih must be [4*H, I]");
    /* Without a tape: the thread's last error, and nothing allocated. */
    ck_assert_ptr_null(tg_lstm_cell_step(NULL, lstm, xf, NULL, NULL, NULL));
    CK_HAS(tg_last_error(), "lstm_cell_step");
    ck_assert_ptr_null(tg_rnn_unroll(NULL, gru, xsf, NULL, NULL, NULL, NULL));
    CK_HAS(tg_last_error(), "rnn_unroll");

    tg_tensor *ts[] = {x, h, h5, w16, w10, whh, w12, whh12, b5, w16f, x1, xf, xf5, xsf, xs0, hf};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) tg_tensor_free(ts[i]);
    tg_tape_free(tp);
    tg_model_free(m);
    tg_rng_free(rng);
}
END_TEST

/* ---- runner ----------------------------------------------------------------------------- */

/* Seconds per test: generous, for the sanitizer builds on a loaded machine. */
enum { TCASE_TIMEOUT = 60 };

static Suite *rnn_suite(void) {
    Suite *s = suite_create("nn_rnn");
    TCase *golden_tc = tcase_create("golden");
    tcase_set_timeout(golden_tc, TCASE_TIMEOUT);
    tcase_add_loop_test(golden_tc, test_cells_golden, 0, N_CASES * N_RUNS);
    suite_add_tcase(s, golden_tc);
    TCase *grad_tc = tcase_create("gradcheck");
    tcase_set_timeout(grad_tc, TCASE_TIMEOUT);
    tcase_add_test(grad_tc, test_cells_gradcheck);
    suite_add_tcase(s, grad_tc);
    TCase *layer_tc = tcase_create("layers");
    tcase_set_timeout(layer_tc, TCASE_TIMEOUT);
    tcase_add_test(layer_tc, test_cell_layers);
    tcase_add_test(layer_tc, test_step_null_state);
    tcase_add_test(layer_tc, test_unroll_lengths);
    suite_add_tcase(s, layer_tc);
    TCase *err_tc = tcase_create("errors");
    tcase_set_timeout(err_tc, TCASE_TIMEOUT);
    tcase_add_test(err_tc, test_rnn_errors);
    suite_add_tcase(s, err_tc);
    return s;
}

int main(void) {
    G = golden_load(GOLDEN_DIR "/rnn.txt");
    if (!G) return 1;
    int rc = run_suite(rnn_suite(), CK_ENV);
    golden_free(G);
    return rc;
}
