/* Recurrent cells composed from primitives: PyTorch's LSTMCell and GRUCell (two linear maps,
 * gate slices, sigmoid and tanh), their layer objects, one step through a layer, and the
 * unrolling of a cell over a sequence [T, N, I], which records T steps on the tape. */
#include <math.h>
#include <stdalign.h>
#include <stdio.h>

#include "nn/layer.h"
#include "tensor/tensor.h"

/* The tape and t are not NULL; otherwise records "op: what is NULL" (on the tape, where it is
 * dropped when an earlier error stands, or as the last error without a tape). */
static bool present(tg_tape *tp, const char *op, const tg_tensor *t, const char *what) {
    if (!tp || !t) tg_fail(tp, "%s: %s is NULL", op, tp ? what : "the tape");
    return tp && t;
}

/* t (named what) is a tensor of x's dtype with shape [d0] (ndim 1) or [d0, d1] (ndim 2). */
static bool has_shape(tg_tape *tp, const char *op, const tg_tensor *t, const char *what,
                      const tg_tensor *x, int ndim, int64_t d0, int64_t d1) {
    bool ok = t->dtype == x->dtype && t->ndim == ndim && t->shape[0] == d0 &&
              (ndim == 1 || t->shape[1] == d1);
    if (!ok) {
        char want[64];
        if (ndim == 1) snprintf(want, sizeof want, "[%lld]", (long long)d0);
        else snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
        tg_fail(tp, "%s: %s must be %s%s (x is %s%s), got %s%s", op, what,
                tg_dtype_name(x->dtype), want, tg_dtype_name(x->dtype), TG_SHAPE_STR(x),
                tg_dtype_name(t->dtype), TG_SHAPE_STR(t));
    }
    return ok;
}

/* Checks the arguments of a cell with `gates` gates and returns the hidden size H, or -1 with
 * the error recorded. x: [N, I], h (and c when given): [N, H], w_ih: [gates H, I],
 * w_hh: [gates H, H], biases [gates H] or NULL. */
static int64_t cell_hidden(tg_tape *tp, const char *op, int gates, const tg_tensor *x,
                           const tg_tensor *h, const tg_tensor *c, const tg_tensor *w_ih,
                           const tg_tensor *w_hh, const tg_tensor *b_ih, const tg_tensor *b_hh) {
    if (!tg_is_float(x->dtype) || x->ndim != 2) {
        tg_fail(tp, "%s: x must be an f32 or f64 tensor [N, I], got %s%s", op,
                tg_dtype_name(x->dtype), TG_SHAPE_STR(x));
        return -1;
    }
    if (w_ih->ndim != 2 || w_ih->shape[0] % gates != 0) {
        tg_fail(tp, "%s: w_ih must be [%d*H, I], got %s", op, gates, TG_SHAPE_STR(w_ih));
        return -1;
    }
    int64_t n = x->shape[0], in = x->shape[1], hidden = w_ih->shape[0] / gates;
    bool ok = has_shape(tp, op, w_ih, "w_ih", x, 2, gates * hidden, in) &&
              has_shape(tp, op, w_hh, "w_hh", x, 2, gates * hidden, hidden) &&
              has_shape(tp, op, h, "h", x, 2, n, hidden) &&
              (!c || has_shape(tp, op, c, "c", x, 2, n, hidden)) &&
              (!b_ih || has_shape(tp, op, b_ih, "b_ih", x, 1, gates * hidden, 0)) &&
              (!b_hh || has_shape(tp, op, b_hh, "b_hh", x, 1, gates * hidden, 0));
    return ok ? hidden : -1;
}

/* Gate k ([N, H]) of gates [N, G*H]. */
static tg_tensor *gate(tg_tape *tp, tg_tensor *gates, int k, int64_t hidden) {
    return tg_slice(tp, gates, 1, k * hidden, (k + 1) * hidden, 1);
}

/* gates [N, 4H] = two linear maps summed, sliced as i, f, g, o; c' = sigmoid(f) c +
 * sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c'). */
tg_tensor *tg_lstm_cell(tg_tape *tp, tg_tensor *x, tg_tensor *h, tg_tensor *c,
                        tg_tensor *w_ih, tg_tensor *w_hh, tg_tensor *b_ih, tg_tensor *b_hh,
                        tg_tensor **c_out) {
    const char *op = "lstm_cell";
    if (c_out) *c_out = NULL;
    if (!present(tp, op, x, "x") || !present(tp, op, h, "h") || !present(tp, op, c, "c") ||
        !present(tp, op, w_ih, "w_ih") || !present(tp, op, w_hh, "w_hh"))
        return NULL;
    int64_t hidden = cell_hidden(tp, op, 4, x, h, c, w_ih, w_hh, b_ih, b_hh);
    if (hidden < 0) return NULL;
    tg_tensor *gates = tg_add(tp, tg_linear(tp, x, w_ih, b_ih), tg_linear(tp, h, w_hh, b_hh));
    tg_tensor *i = tg_sigmoid(tp, gate(tp, gates, 0, hidden));
    tg_tensor *f = tg_sigmoid(tp, gate(tp, gates, 1, hidden));
    tg_tensor *g = tg_tanh(tp, gate(tp, gates, 2, hidden));
    tg_tensor *o = tg_sigmoid(tp, gate(tp, gates, 3, hidden));
    tg_tensor *c_next = tg_add(tp, tg_mul(tp, f, c), tg_mul(tp, i, g));
    tg_tensor *h_next = tg_mul(tp, o, tg_tanh(tp, c_next));
    if (!h_next) return NULL;
    if (c_out) *c_out = c_next;
    return h_next;
}

/* r, z from the summed projections; n = tanh(x W_in + b_in + r (h W_hn + b_hn));
 * h' = n + z (h - n), which is (1 - z) n + z h. */
tg_tensor *tg_gru_cell(tg_tape *tp, tg_tensor *x, tg_tensor *h, tg_tensor *w_ih,
                       tg_tensor *w_hh, tg_tensor *b_ih, tg_tensor *b_hh) {
    const char *op = "gru_cell";
    if (!present(tp, op, x, "x") || !present(tp, op, h, "h") || !present(tp, op, w_ih, "w_ih") ||
        !present(tp, op, w_hh, "w_hh"))
        return NULL;
    int64_t hidden = cell_hidden(tp, op, 3, x, h, NULL, w_ih, w_hh, b_ih, b_hh);
    if (hidden < 0) return NULL;
    tg_tensor *gi = tg_linear(tp, x, w_ih, b_ih), *gh = tg_linear(tp, h, w_hh, b_hh);
    tg_tensor *r = tg_sigmoid(tp, tg_add(tp, gate(tp, gi, 0, hidden), gate(tp, gh, 0, hidden)));
    tg_tensor *z = tg_sigmoid(tp, tg_add(tp, gate(tp, gi, 1, hidden), gate(tp, gh, 1, hidden)));
    tg_tensor *n = tg_tanh(tp, tg_add(tp, gate(tp, gi, 2, hidden),
                                      tg_mul(tp, r, gate(tp, gh, 2, hidden))));
    return tg_add(tp, n, tg_mul(tp, z, tg_sub(tp, h, n)));
}

/* ---- layer objects ---------------------------------------------------------------------- */

typedef struct cell_layer {
    tg_layer base;
    int64_t in, hidden;
    tg_tensor *w_ih, *w_hh, *b_ih, *b_hh;
} cell_layer;

static void cell_describe(const tg_layer *self, char *buf, size_t size) {
    const cell_layer *l = (const cell_layer *)self;
    snprintf(buf, size, "%lld, %lld%s", (long long)l->in, (long long)l->hidden,
             l->b_ih ? "" : ", bias=False");
}

/* Stepped with tg_lstm_cell_step / tg_gru_cell_step / tg_rnn_unroll, so no forward. */
static const tg_layer_type lstm_cell_type = {"LSTMCell", NULL, cell_describe, NULL};
static const tg_layer_type gru_cell_type = {"GRUCell", NULL, cell_describe, NULL};

/* weight_ih [G H, I], weight_hh [G H, H], bias_ih, bias_hh [G H], registered and then
 * initialized in that order, uniform in +-1/sqrt(H) as PyTorch's RNNCellBase. */
static tg_layer *cell_new(tg_model *m, const char *name, const tg_layer_type *type, int gates,
                          int64_t input_size, int64_t hidden_size, bool bias, tg_rng *rng) {
    if (input_size < 1 || hidden_size < 1 || !rng) {
        tg_set_last_error("%s(\"%s\"): needs positive sizes and an rng (got %lld, %lld)",
                          type->name, name ? name : "", (long long)input_size,
                          (long long)hidden_size);
        return NULL;
    }
    cell_layer *l = (cell_layer *)tg_layer_create(m, name, type, sizeof *l);
    if (!l) return NULL;
    l->in = input_size;
    l->hidden = hidden_size;
    int64_t rows = gates * hidden_size;
    l->w_ih = tg_layer_add_param(&l->base, "weight_ih",
                                 tg_zeros(NULL, TG_F32, 2, (int64_t[]){rows, input_size}));
    l->w_hh = tg_layer_add_param(&l->base, "weight_hh",
                                 tg_zeros(NULL, TG_F32, 2, (int64_t[]){rows, hidden_size}));
    if (!l->w_ih || !l->w_hh) return NULL;
    if (bias) {
        l->b_ih = tg_layer_add_param(&l->base, "bias_ih", tg_zeros(NULL, TG_F32, 1, &rows));
        l->b_hh = tg_layer_add_param(&l->base, "bias_hh", tg_zeros(NULL, TG_F32, 1, &rows));
        if (!l->b_ih || !l->b_hh) return NULL;
    }
    double bound = 1.0 / sqrt((double)hidden_size);
    tg_tensor *params[4] = {l->w_ih, l->w_hh, l->b_ih, l->b_hh};
    for (int i = 0; i < (bias ? 4 : 2); i++)
        if (tg_init_uniform(params[i], rng, -bound, bound) != 0) return NULL;
    return &l->base;
}

tg_layer *tg_lstm_cell_new(tg_model *m, const char *name, int64_t input_size,
                           int64_t hidden_size, bool bias, tg_rng *rng) {
    return cell_new(m, name, &lstm_cell_type, 4, input_size, hidden_size, bias, rng);
}

tg_layer *tg_gru_cell_new(tg_model *m, const char *name, int64_t input_size,
                          int64_t hidden_size, bool bias, tg_rng *rng) {
    return cell_new(m, name, &gru_cell_type, 3, input_size, hidden_size, bias, rng);
}

/* cell is a layer of `type` and x is [N, input_size]; otherwise records why, naming op. */
static bool step_args(tg_tape *tp, const char *op, const tg_layer *cell,
                      const tg_layer_type *type, const tg_tensor *x) {
    if (!cell || cell->type != type) {
        tg_fail(tp, "%s: cell must be a layer of type %s, got %s", op, type->name,
                cell ? cell->type->name : "NULL");
        return false;
    }
    if (!present(tp, op, x, "x")) return false;
    if (x->ndim != 2 || x->shape[1] != ((const cell_layer *)cell)->in) {
        tg_fail(tp, "%s: x must be [N, %lld] for %s \"%s\", got %s", op,
                (long long)((const cell_layer *)cell)->in, type->name, cell->name,
                TG_SHAPE_STR(x));
        return false;
    }
    return true;
}

/* t, or zeros [N, H] in x's dtype when t is NULL. */
static tg_tensor *or_zeros(tg_tape *tp, tg_tensor *t, const tg_tensor *x, int64_t hidden) {
    return t ? t : tg_zeros(tp, x->dtype, 2, (int64_t[]){x->shape[0], hidden});
}

/* The functional cells with the layer's parameters; NULL states are zeros [N, H]. */
tg_tensor *tg_lstm_cell_step(tg_tape *tp, tg_layer *cell, tg_tensor *x, tg_tensor *h,
                             tg_tensor *c, tg_tensor **c_out) {
    if (c_out) *c_out = NULL;
    if (!step_args(tp, "lstm_cell_step", cell, &lstm_cell_type, x)) return NULL;
    const cell_layer *l = (const cell_layer *)cell;
    return tg_lstm_cell(tp, x, or_zeros(tp, h, x, l->hidden), or_zeros(tp, c, x, l->hidden),
                        l->w_ih, l->w_hh, l->b_ih, l->b_hh, c_out);
}

tg_tensor *tg_gru_cell_step(tg_tape *tp, tg_layer *cell, tg_tensor *x, tg_tensor *h) {
    if (!step_args(tp, "gru_cell_step", cell, &gru_cell_type, x)) return NULL;
    const cell_layer *l = (const cell_layer *)cell;
    return tg_gru_cell(tp, x, or_zeros(tp, h, x, l->hidden), l->w_ih, l->w_hh, l->b_ih, l->b_hh);
}

/* Steps the cell over xs[0..T-1] (slices [N, I]) and joins the hidden states, each unsqueezed
 * to [1, N, H], with one concat. The array of step outputs lives in the tape's arena. */
tg_tensor *tg_rnn_unroll(tg_tape *tp, tg_layer *cell, tg_tensor *xs, tg_tensor *h0,
                         tg_tensor *c0, tg_tensor **h_last, tg_tensor **c_last) {
    const char *op = "rnn_unroll";
    if (h_last) *h_last = NULL;
    if (c_last) *c_last = NULL;
    if (!tp) {
        tg_set_last_error("%s: tape is NULL", op);
        return NULL;
    }
    bool lstm = cell && cell->type == &lstm_cell_type;
    if (!cell || (!lstm && cell->type != &gru_cell_type)) {
        tg_fail(tp, "%s: cell must be an LSTMCell or GRUCell layer, got %s", op,
                cell ? cell->type->name : "NULL");
        return NULL;
    }
    if (!present(tp, op, xs, "xs")) return NULL;
    int64_t in = ((const cell_layer *)cell)->in;
    if (xs->ndim != 3 || xs->shape[0] < 1 || xs->shape[2] != in) {
        tg_fail(tp, "%s: xs must be [T, N, %lld] with T >= 1 for %s \"%s\", got %s", op,
                (long long)in, cell->type->name, cell->name, TG_SHAPE_STR(xs));
        return NULL;
    }
    if (!lstm && c0) {
        tg_fail(tp, "%s: a GRUCell has no cell state, but c0 was given", op);
        return NULL;
    }
    int64_t steps = xs->shape[0];
    tg_tensor **hs = tg_arena_alloc(&tp->arena, (size_t)steps * sizeof *hs, alignof(tg_tensor *));
    if (!hs) {
        tg_fail(tp, "%s: out of memory for %lld steps", op, (long long)steps);
        return NULL;
    }
    tg_tensor *h = h0, *c = c0;
    for (int64_t t = 0; t < steps; t++) {
        tg_tensor *x = tg_squeeze(tp, tg_slice(tp, xs, 0, t, t + 1, 1), 0);
        if (lstm) h = tg_lstm_cell_step(tp, cell, x, h, c, &c);
        else h = tg_gru_cell_step(tp, cell, x, h);
        if (!h) return NULL;
        hs[t] = tg_unsqueeze(tp, h, 0);
    }
    tg_tensor *out = tg_concat(tp, (int)steps, hs, 0);
    if (!out) return NULL;
    if (h_last) *h_last = h;
    if (c_last) *c_last = c;
    return out;
}
