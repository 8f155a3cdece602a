/* Elementwise unary primitives and the scalar forms of the binary ops: each forward is one
 * kernel call, each VJP a few primitives on the saved input x or output y. */
#include "ops/op.h"

typedef struct scalars {
    double c0, c1;
} scalars;

/* y = k(x) with scalars c0, c1, recorded as `op`. */
static tg_tensor *map(tg_tape *tp, const tg_op *op, tg_kunary k, tg_tensor *x, double c0,
                      double c1) {
    if (!tg_op_begin(tp, op->name, 1, &x) || !tg_op_same_float(tp, op->name, 1, &x)) return NULL;
    tg_tensor *y = tg_tensor_alloc(tp, x->dtype, x->ndim, x->shape);
    if (!y) return NULL;
    tg_k_unary(k, x->dtype, x->numel, x->data, y->data, c0, c1);
    if (!op->vjp) return y; /* sign and comparisons have no gradient */
    scalars p = {c0, c1};
    return tg_record(tp, op, y, 1, &x, &p, sizeof p) ? y : NULL;
}

#define X(node) TG_IN(node, 0)
#define Y(node) ((node)->out)
#define C0(node) (TG_PARAMS(node, scalars)->c0)
#define C1(node) (TG_PARAMS(node, scalars)->c1)

static void neg_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)n, (void)need;
    gin[0] = tg_neg(tp, g);
}
/* d exp(x) = exp(x) = y */
static void exp_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_mul(tp, g, Y(n));
}
static void log_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_div(tp, g, X(n));
}
/* d log(1 + x) = 1 / (1 + x) */
static void log1p_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_div(tp, g, tg_add_scalar(tp, X(n), 1.0));
}
/* d erf(x) = 2/sqrt(pi) exp(-x^2) */
static void erf_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    tg_tensor *bell = tg_exp(tp, tg_neg(tp, tg_square(tp, X(n))));
    gin[0] = tg_mul(tp, g, tg_mul_scalar(tp, bell, 1.1283791670955126)); /* 2/sqrt(pi) */
}
/* d sqrt(x) = 1 / (2 y) */
static void sqrt_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_div(tp, g, tg_mul_scalar(tp, Y(n), 2.0));
}
/* d x^(-1/2) = -1/2 x^(-3/2) = -0.5 y / x */
static void rsqrt_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_mul(tp, g, tg_mul_scalar(tp, tg_div(tp, Y(n), X(n)), -0.5));
}
static void abs_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_mul(tp, g, tg_sign(tp, X(n)));
}
static void square_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_mul(tp, g, tg_mul_scalar(tp, X(n), 2.0));
}
/* d tanh = 1 - y^2, d sigmoid = y (1 - y), d relu = [x > 0]: one fused pass each */
static void tanh_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_tanh_backward(tp, Y(n), g);
}
static void sigmoid_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_sigmoid_backward(tp, Y(n), g);
}
static void relu_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_relu_backward(tp, X(n), g);
}
/* d x^p = p x^(p-1); exactly zero for p = 0 (as PyTorch), even at x = 0 */
static void pow_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    double p = C0(n);
    gin[0] = p == 0.0 ? tg_mul_scalar(tp, g, 0.0)
                      : tg_mul(tp, g, tg_mul_scalar(tp, tg_pow_scalar(tp, X(n), p - 1.0), p));
}
/* gradient passes where lo <= x <= hi */
static void clamp_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    tg_tensor *inside = tg_mul(tp, tg_ge_scalar(tp, X(n), C0(n)), tg_le_scalar(tp, X(n), C1(n)));
    gin[0] = tg_mul(tp, g, inside);
}
static void pass_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)tp, (void)n, (void)need;
    gin[0] = g;
}
static void mul_s_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_mul_scalar(tp, g, C0(n));
}
static void div_s_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_div_scalar(tp, g, C0(n));
}
/* d (c / x) = -c / x^2 = -y / x */
static void rdiv_s_vjp(tg_tape *tp, const tg_node *n, tg_tensor *g, const bool *need, tg_tensor **gin) {
    (void)need;
    gin[0] = tg_neg(tp, tg_div(tp, tg_mul(tp, g, Y(n)), X(n)));
}

static const tg_op neg_op = {"neg", neg_vjp}, exp_op = {"exp", exp_vjp}, log_op = {"log", log_vjp},
    log1p_op = {"log1p", log1p_vjp}, erf_op = {"erf", erf_vjp},
    sqrt_op = {"sqrt", sqrt_vjp}, rsqrt_op = {"rsqrt", rsqrt_vjp}, abs_op = {"abs", abs_vjp},
    square_op = {"square", square_vjp}, tanh_op = {"tanh", tanh_vjp},
    sigmoid_op = {"sigmoid", sigmoid_vjp}, relu_op = {"relu", relu_vjp},
    sign_op = {"sign", NULL}, pow_op = {"pow_scalar", pow_vjp}, clamp_op = {"clamp", clamp_vjp},
    add_s_op = {"add_scalar", pass_vjp}, sub_s_op = {"sub_scalar", pass_vjp},
    mul_s_op = {"mul_scalar", mul_s_vjp}, div_s_op = {"div_scalar", div_s_vjp},
    rsub_s_op = {"rsub_scalar", neg_vjp}, rdiv_s_op = {"rdiv_scalar", rdiv_s_vjp},
    gt_s_op = {"gt_scalar", NULL}, ge_s_op = {"ge_scalar", NULL}, lt_s_op = {"lt_scalar", NULL},
    le_s_op = {"le_scalar", NULL}, eq_s_op = {"eq_scalar", NULL};

tg_tensor *tg_neg(tg_tape *tp, tg_tensor *x) { return map(tp, &neg_op, TG_U_NEG, x, 0, 0); }
tg_tensor *tg_exp(tg_tape *tp, tg_tensor *x) { return map(tp, &exp_op, TG_U_EXP, x, 0, 0); }
tg_tensor *tg_log(tg_tape *tp, tg_tensor *x) { return map(tp, &log_op, TG_U_LOG, x, 0, 0); }
tg_tensor *tg_log1p(tg_tape *tp, tg_tensor *x) { return map(tp, &log1p_op, TG_U_LOG1P, x, 0, 0); }
tg_tensor *tg_erf(tg_tape *tp, tg_tensor *x) { return map(tp, &erf_op, TG_U_ERF, x, 0, 0); }
tg_tensor *tg_sqrt(tg_tape *tp, tg_tensor *x) { return map(tp, &sqrt_op, TG_U_SQRT, x, 0, 0); }
tg_tensor *tg_rsqrt(tg_tape *tp, tg_tensor *x) { return map(tp, &rsqrt_op, TG_U_RSQRT, x, 0, 0); }
tg_tensor *tg_abs(tg_tape *tp, tg_tensor *x) { return map(tp, &abs_op, TG_U_ABS, x, 0, 0); }
tg_tensor *tg_square(tg_tape *tp, tg_tensor *x) { return map(tp, &square_op, TG_U_SQUARE, x, 0, 0); }
tg_tensor *tg_tanh(tg_tape *tp, tg_tensor *x) { return map(tp, &tanh_op, TG_U_TANH, x, 0, 0); }
tg_tensor *tg_sigmoid(tg_tape *tp, tg_tensor *x) { return map(tp, &sigmoid_op, TG_U_SIGMOID, x, 0, 0); }
tg_tensor *tg_relu(tg_tape *tp, tg_tensor *x) { return map(tp, &relu_op, TG_U_RELU, x, 0, 0); }
tg_tensor *tg_sign(tg_tape *tp, tg_tensor *x) { return map(tp, &sign_op, TG_U_SIGN, x, 0, 0); }
tg_tensor *tg_pow_scalar(tg_tape *tp, tg_tensor *x, double p) { return map(tp, &pow_op, TG_U_POW, x, p, 0); }
tg_tensor *tg_add_scalar(tg_tape *tp, tg_tensor *x, double c) { return map(tp, &add_s_op, TG_U_ADD_S, x, c, 0); }
tg_tensor *tg_sub_scalar(tg_tape *tp, tg_tensor *x, double c) { return map(tp, &sub_s_op, TG_U_SUB_S, x, c, 0); }
tg_tensor *tg_mul_scalar(tg_tape *tp, tg_tensor *x, double c) { return map(tp, &mul_s_op, TG_U_MUL_S, x, c, 0); }
tg_tensor *tg_div_scalar(tg_tape *tp, tg_tensor *x, double c) { return map(tp, &div_s_op, TG_U_DIV_S, x, c, 0); }
tg_tensor *tg_rsub_scalar(tg_tape *tp, double c, tg_tensor *x) { return map(tp, &rsub_s_op, TG_U_RSUB_S, x, c, 0); }
tg_tensor *tg_rdiv_scalar(tg_tape *tp, double c, tg_tensor *x) { return map(tp, &rdiv_s_op, TG_U_RDIV_S, x, c, 0); }
tg_tensor *tg_gt_scalar(tg_tape *tp, tg_tensor *a, double c) { return map(tp, &gt_s_op, TG_U_GT_S, a, c, 0); }
tg_tensor *tg_ge_scalar(tg_tape *tp, tg_tensor *a, double c) { return map(tp, &ge_s_op, TG_U_GE_S, a, c, 0); }
tg_tensor *tg_lt_scalar(tg_tape *tp, tg_tensor *a, double c) { return map(tp, &lt_s_op, TG_U_LT_S, a, c, 0); }
tg_tensor *tg_le_scalar(tg_tape *tp, tg_tensor *a, double c) { return map(tp, &le_s_op, TG_U_LE_S, a, c, 0); }
tg_tensor *tg_eq_scalar(tg_tape *tp, tg_tensor *a, double c) { return map(tp, &eq_s_op, TG_U_EQ_S, a, c, 0); }

tg_tensor *tg_clamp(tg_tape *tp, tg_tensor *x, double lo, double hi) {
    if (tp && x && !(lo <= hi)) {
        tg_fail(tp, "clamp: lo (%g) must not exceed hi (%g) for %s", lo, hi, TG_SHAPE_STR(x));
        return NULL;
    }
    return map(tp, &clamp_op, TG_U_CLAMP, x, lo, hi);
}
