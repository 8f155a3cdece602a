/* Broadcasting binary primitives (arithmetic, maximum/minimum, comparisons, the fused activation
 * gradients) and where. Each VJP computes the gradient at the broadcast shape and sums it back to
 * the input's shape. */
#include "ops/op.h"

/* out = a op b, broadcast; recorded as `op` unless it has no VJP (comparisons). */
static tg_tensor *binary(tg_tape *tp, const tg_op *op, tg_kbinary k, tg_tensor *a, tg_tensor *b) {
    tg_tensor *in[2] = {a, b};
    if (!tg_op_begin(tp, op->name, 2, in) || !tg_op_same_float(tp, op->name, 2, in)) return NULL;
    int ndim;
    int64_t shape[TG_MAX_DIMS], sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    if (!tg_op_broadcast(tp, op->name, a, b, &ndim, shape)) return NULL;
    tg_tensor *out = tg_tensor_alloc(tp, a->dtype, ndim, shape);
    if (!out) return NULL;
    tg_broadcast_strides(a->ndim, a->shape, ndim, shape, sa);
    tg_broadcast_strides(b->ndim, b->shape, ndim, shape, sb);
    tg_k_binary(k, a->dtype, ndim, shape, sa, sb, a->data, b->data, out->data);
    if (!op->vjp) return out;
    return tg_record(tp, op, out, 2, in, NULL, 0) ? out : NULL;
}

#define A(node) TG_IN(node, 0)
#define B(node) TG_IN(node, 1)
#define TO_A(t) tg_sum_to(tp, (t), A(n)->ndim, A(n)->shape)
#define TO_B(t) tg_sum_to(tp, (t), B(n)->ndim, B(n)->shape)

static void add_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    if (need[0]) gin[0] = TO_A(g);
    if (need[1]) gin[1] = TO_B(g);
}
static void sub_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    if (need[0]) gin[0] = TO_A(g);
    if (need[1]) gin[1] = tg_neg(tp, TO_B(g));
}
static void mul_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    if (need[0]) gin[0] = TO_A(tg_mul(tp, g, B(n)));
    if (need[1]) gin[1] = TO_B(tg_mul(tp, g, A(n)));
}
/* d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -(1/b) (a/b) */
static void div_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    tg_tensor *g_over_b = tg_div(tp, g, B(n));
    if (need[0]) gin[0] = TO_A(g_over_b);
    if (need[1]) gin[1] = tg_neg(tp, TO_B(tg_mul(tp, g_over_b, n->out)));
}
/* The share of the gradient a receives: 1 where a wins, 1/2 on ties (PyTorch's rule). */
static void extremum_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need,
                         tg_tensor **gin, bool is_max) {
    tg_tensor *wins = is_max ? tg_gt(tp, A(n), B(n)) : tg_lt(tp, A(n), B(n));
    tg_tensor *share = tg_add(tp, wins, tg_mul_scalar(tp, tg_eq(tp, A(n), B(n)), 0.5));
    if (need[0]) gin[0] = TO_A(tg_mul(tp, g, share));
    if (need[1]) gin[1] = TO_B(tg_mul(tp, g, tg_rsub_scalar(tp, 1.0, share)));
}
static void maximum_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    extremum_vjp(tp, n, g, need, gin, true);
}
static void minimum_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    extremum_vjp(tp, n, g, need, gin, false);
}

/* tanh_backward(y, g) = g (1 - y^2): d/dy = -2 y g, d/dg = 1 - y^2. */
static void tanh_backward_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need,
                              tg_tensor **gin) {
    if (need[0]) gin[0] = TO_A(tg_mul(tp, g, tg_mul(tp, B(n), tg_mul_scalar(tp, A(n), -2.0))));
    if (need[1]) gin[1] = TO_B(tg_tanh_backward(tp, A(n), g));
}
/* sigmoid_backward(y, g) = g y (1 - y): d/dy = g (1 - 2 y), d/dg = y (1 - y). */
static void sigmoid_backward_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need,
                                 tg_tensor **gin) {
    if (need[0]) {
        tg_tensor *slope = tg_rsub_scalar(tp, 1.0, tg_mul_scalar(tp, A(n), 2.0)); /* 1 - 2y */
        gin[0] = TO_A(tg_mul(tp, g, tg_mul(tp, B(n), slope)));
    }
    if (need[1]) gin[1] = TO_B(tg_sigmoid_backward(tp, A(n), g));
}
/* relu_backward(x, g) = x > 0 ? g : 0: piecewise constant in x, d/dg = the same mask. */
static void relu_backward_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need,
                              tg_tensor **gin) {
    if (need[0]) gin[0] = tg_zeros_like(tp, A(n));
    if (need[1]) gin[1] = TO_B(tg_relu_backward(tp, A(n), g));
}

static const tg_op add_op = {"add", add_vjp}, sub_op = {"sub", sub_vjp}, mul_op = {"mul", mul_vjp},
    div_op = {"div", div_vjp}, maximum_op = {"maximum", maximum_vjp},
    minimum_op = {"minimum", minimum_vjp}, gt_op = {"gt", NULL}, ge_op = {"ge", NULL},
    lt_op = {"lt", NULL}, le_op = {"le", NULL}, eq_op = {"eq", NULL},
    tanh_backward_op = {"tanh_backward", tanh_backward_vjp},
    sigmoid_backward_op = {"sigmoid_backward", sigmoid_backward_vjp},
    relu_backward_op = {"relu_backward", relu_backward_vjp};

tg_tensor *tg_add(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &add_op, TG_B_ADD, a, b); }
tg_tensor *tg_sub(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &sub_op, TG_B_SUB, a, b); }
tg_tensor *tg_mul(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &mul_op, TG_B_MUL, a, b); }
tg_tensor *tg_div(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &div_op, TG_B_DIV, a, b); }
tg_tensor *tg_maximum(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &maximum_op, TG_B_MAX, a, b); }
tg_tensor *tg_minimum(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &minimum_op, TG_B_MIN, a, b); }
tg_tensor *tg_gt(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &gt_op, TG_B_GT, a, b); }
tg_tensor *tg_ge(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &ge_op, TG_B_GE, a, b); }
tg_tensor *tg_lt(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &lt_op, TG_B_LT, a, b); }
tg_tensor *tg_le(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &le_op, TG_B_LE, a, b); }
tg_tensor *tg_eq(tg_tape *tp, tg_tensor *a, tg_tensor *b) { return binary(tp, &eq_op, TG_B_EQ, a, b); }
tg_tensor *tg_tanh_backward(tg_tape *tp, tg_tensor *y, tg_tensor *g) {
    return binary(tp, &tanh_backward_op, TG_B_TANH_GRAD, y, g);
}
tg_tensor *tg_sigmoid_backward(tg_tape *tp, tg_tensor *y, tg_tensor *g) {
    return binary(tp, &sigmoid_backward_op, TG_B_SIGMOID_GRAD, y, g);
}
tg_tensor *tg_relu_backward(tg_tape *tp, tg_tensor *x, tg_tensor *g) {
    return binary(tp, &relu_backward_op, TG_B_RELU_GRAD, x, g);
}

/* where(mask, a, b): the gradient flows to a where mask is set and to b elsewhere; the mask
 * itself gets none. */
static void where_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    tg_tensor *mask = TG_IN(n, 0), *a = TG_IN(n, 1), *b = TG_IN(n, 2);
    tg_tensor *zero = tg_zeros(tp, g->dtype, 0, NULL);
    if (need[0]) gin[0] = tg_zeros_like(tp, mask);
    if (need[1]) gin[1] = tg_sum_to(tp, tg_where(tp, mask, g, zero), a->ndim, a->shape);
    if (need[2]) gin[2] = tg_sum_to(tp, tg_where(tp, mask, zero, g), b->ndim, b->shape);
}
static const tg_op where_op = {"where", where_vjp};

tg_tensor *tg_where(tg_tape *tp, tg_tensor *mask, tg_tensor *a, tg_tensor *b) {
    tg_tensor *in[3] = {mask, a, b};
    if (!tg_op_begin(tp, "where", 3, in) || !tg_op_same_float(tp, "where", 3, in)) return NULL;
    int nab, ndim;
    int64_t ab[TG_MAX_DIMS], shape[TG_MAX_DIMS];
    if (!tg_op_broadcast(tp, "where", a, b, &nab, ab)) return NULL;
    if (!tg_broadcast_shapes(mask->ndim, mask->shape, nab, ab, &ndim, shape)) {
        tg_fail(tp, "where: mask %s does not broadcast with a %s and b %s", TG_SHAPE_STR(mask),
                TG_SHAPE_STR(a), TG_SHAPE_STR(b));
        return NULL;
    }
    tg_tensor *out = tg_tensor_alloc(tp, a->dtype, ndim, shape);
    if (!out) return NULL;
    int64_t sm[TG_MAX_DIMS], sa[TG_MAX_DIMS], sb[TG_MAX_DIMS];
    tg_broadcast_strides(mask->ndim, mask->shape, ndim, shape, sm);
    tg_broadcast_strides(a->ndim, a->shape, ndim, shape, sa);
    tg_broadcast_strides(b->ndim, b->shape, ndim, shape, sb);
    tg_k_where(a->dtype, ndim, shape, sm, sa, sb, mask->data, a->data, b->data, out->data);
    return tg_record(tp, &where_op, out, 3, in, NULL, 0) ? out : NULL;
}
