/* Activations composed from primitives, the stable softmax family built on logsumexp, and the
 * activation layer objects. Where a branch of a piecewise function could overflow (exp of a
 * large input), its input is clamped first so the unused branch cannot turn a zero gradient
 * into NaN. */
#include <math.h>
#include <stdio.h>

#include "nn/layer.h"
#include "tensor/tensor.h"

/* There is a tape and x is an f32 or f64 tensor; else an error naming fn (a NULL x keeps the
 * first error). */
static bool float_input(tg_tape *tp, const char *fn, const tg_tensor *x) {
    if (!tp) {
        tg_set_last_error("%s: tape is NULL", fn);
        return false;
    }
    if (x && tg_is_float(x->dtype)) return true;
    if (x)
        tg_fail(tp, "%s: x must be f32 or f64, got %s%s", fn, tg_dtype_name(x->dtype),
                TG_SHAPE_STR(x));
    else
        tg_fail(tp, "%s: x is NULL", fn);
    return false;
}

/* Each of the naxes axes is in [-ndim, ndim) for x; else an error naming fn. */
static bool axes_ok(tg_tape *tp, const char *fn, const tg_tensor *x, const int *axes,
                    int naxes) {
    for (int i = 0; axes && i < naxes; i++) {
        if (tg_normalize_axis(axes[i], x->ndim) < 0) {
            tg_fail(tp, "%s: axis %d is out of range for x %s", fn, axes[i], TG_SHAPE_STR(x));
            return false;
        }
    }
    return true;
}

tg_tensor *tg_leaky_relu(tg_tape *tp, tg_tensor *x, double negative_slope) {
    if (!float_input(tp, "leaky_relu", x)) return NULL;
    return tg_where(tp, tg_gt_scalar(tp, x, 0.0), x, tg_mul_scalar(tp, x, negative_slope));
}

/* x > 0 ? x : alpha (exp(x) - 1) */
tg_tensor *tg_elu(tg_tape *tp, tg_tensor *x, double alpha) {
    if (!float_input(tp, "elu", x)) return NULL;
    tg_tensor *neg = tg_sub_scalar(tp, tg_exp(tp, tg_clamp(tp, x, -INFINITY, 0.0)), 1.0);
    return tg_where(tp, tg_gt_scalar(tp, x, 0.0), x, tg_mul_scalar(tp, neg, alpha));
}

tg_tensor *tg_silu(tg_tape *tp, tg_tensor *x) {
    if (!float_input(tp, "silu", x)) return NULL;
    return tg_mul(tp, x, tg_sigmoid(tp, x));
}

tg_tensor *tg_gelu(tg_tape *tp, tg_tensor *x, bool tanh_approx) {
    if (!float_input(tp, "gelu", x)) return NULL;
    tg_tensor *inner;
    if (tanh_approx) { /* sqrt(2/pi) (x + 0.044715 x^3) */
        tg_tensor *cubic = tg_add(tp, x, tg_mul_scalar(tp, tg_pow_scalar(tp, x, 3.0), 0.044715));
        inner = tg_tanh(tp, tg_mul_scalar(tp, cubic, 0.7978845608028654));
    } else {
        inner = tg_erf(tp, tg_mul_scalar(tp, x, 0.7071067811865476)); /* x / sqrt 2 */
    }
    return tg_mul(tp, tg_mul_scalar(tp, x, 0.5), tg_add_scalar(tp, inner, 1.0));
}

/* beta x > threshold ? x : log1p(exp(beta x)) / beta */
tg_tensor *tg_softplus(tg_tape *tp, tg_tensor *x, double beta, double threshold) {
    if (!float_input(tp, "softplus", x)) return NULL;
    tg_tensor *bx = tg_mul_scalar(tp, x, beta);
    tg_tensor *smooth = tg_div_scalar(
        tp, tg_log1p(tp, tg_exp(tp, tg_clamp(tp, bx, -INFINITY, threshold))), beta);
    return tg_where(tp, tg_gt_scalar(tp, bx, threshold), x, smooth);
}

/* m + log(sum(exp(x - m))) with m the detached max (0 where it is infinite, so an all -inf
 * slice gives -inf rather than NaN). */
tg_tensor *tg_logsumexp(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, bool keepdim) {
    if (!float_input(tp, "logsumexp", x) || !axes_ok(tp, "logsumexp", x, axes, naxes))
        return NULL;
    tg_tensor *m = tg_detach(tp, tg_max(tp, x, axes, naxes, true));
    tg_tensor *finite = tg_lt_scalar(tp, tg_abs(tp, m), INFINITY);
    m = tg_where(tp, finite, m, tg_zeros(tp, x->dtype, 0, NULL));
    tg_tensor *lse = tg_add(tp, tg_log(tp, tg_sum(tp, tg_exp(tp, tg_sub(tp, x, m)), axes, naxes,
                                                 true)), m);
    if (keepdim || !lse) return lse;
    return tg_sum(tp, lse, axes, naxes, false); /* drops the size-1 reduced axes */
}

tg_tensor *tg_log_softmax(tg_tape *tp, tg_tensor *x, int axis) {
    if (!float_input(tp, "log_softmax", x) || !axes_ok(tp, "log_softmax", x, &axis, 1))
        return NULL;
    return tg_sub(tp, x, tg_logsumexp(tp, x, &axis, 1, true));
}

tg_tensor *tg_softmax(tg_tape *tp, tg_tensor *x, int axis) {
    if (!float_input(tp, "softmax", x) || !axes_ok(tp, "softmax", x, &axis, 1)) return NULL;
    return tg_exp(tp, tg_log_softmax(tp, x, axis));
}

/* ---- layer objects ---------------------------------------------------------------------- */

typedef struct activation_layer {
    tg_layer base;
    tg_activation kind;
    double param;
} activation_layer;

static tg_tensor *activation_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const activation_layer *a = (const activation_layer *)self;
    switch (a->kind) {
    case TG_ACT_RELU: return tg_relu(tp, x);
    case TG_ACT_LEAKY_RELU: return tg_leaky_relu(tp, x, a->param);
    case TG_ACT_ELU: return tg_elu(tp, x, a->param);
    case TG_ACT_SIGMOID: return tg_sigmoid(tp, x);
    case TG_ACT_TANH: return tg_tanh(tp, x);
    case TG_ACT_SILU: return tg_silu(tp, x);
    case TG_ACT_GELU: return tg_gelu(tp, x, false);
    case TG_ACT_GELU_TANH: return tg_gelu(tp, x, true);
    case TG_ACT_SOFTPLUS: return tg_softplus(tp, x, 1.0, 20.0);
    case TG_ACT_SOFTMAX: return tg_softmax(tp, x, (int)a->param);
    case TG_ACT_LOG_SOFTMAX: return tg_log_softmax(tp, x, (int)a->param);
    }
    return NULL;
}

static void activation_describe(const tg_layer *self, char *buf, size_t size) {
    const activation_layer *a = (const activation_layer *)self;
    char num[32];
    tg_format_float(num, sizeof num, a->param);
    switch (a->kind) {
    case TG_ACT_LEAKY_RELU: snprintf(buf, size, "negative_slope=%s", num); break;
    case TG_ACT_ELU: snprintf(buf, size, "alpha=%s", num); break;
    case TG_ACT_GELU: snprintf(buf, size, "approximate='none'"); break;
    case TG_ACT_GELU_TANH: snprintf(buf, size, "approximate='tanh'"); break;
    case TG_ACT_SOFTPLUS: snprintf(buf, size, "beta=1, threshold=20"); break;
    case TG_ACT_SOFTMAX:
    case TG_ACT_LOG_SOFTMAX: snprintf(buf, size, "dim=%d", (int)a->param); break;
    default: buf[0] = '\0';
    }
}

#define ACTIVATION_TYPE(var, pyname) \
    static const tg_layer_type var = {pyname, activation_forward, activation_describe, NULL}
ACTIVATION_TYPE(relu_type, "ReLU");
ACTIVATION_TYPE(leaky_relu_type, "LeakyReLU");
ACTIVATION_TYPE(elu_type, "ELU");
ACTIVATION_TYPE(sigmoid_type, "Sigmoid");
ACTIVATION_TYPE(tanh_type, "Tanh");
ACTIVATION_TYPE(silu_type, "SiLU");
ACTIVATION_TYPE(gelu_type, "GELU");
ACTIVATION_TYPE(softplus_type, "Softplus");
ACTIVATION_TYPE(softmax_type, "Softmax");
ACTIVATION_TYPE(log_softmax_type, "LogSoftmax");

tg_layer *tg_activation_new(tg_model *m, const char *name, tg_activation kind, double param) {
    static const tg_layer_type *const types[] = {
        [TG_ACT_RELU] = &relu_type, [TG_ACT_LEAKY_RELU] = &leaky_relu_type,
        [TG_ACT_ELU] = &elu_type, [TG_ACT_SIGMOID] = &sigmoid_type, [TG_ACT_TANH] = &tanh_type,
        [TG_ACT_SILU] = &silu_type, [TG_ACT_GELU] = &gelu_type, [TG_ACT_GELU_TANH] = &gelu_type,
        [TG_ACT_SOFTPLUS] = &softplus_type, [TG_ACT_SOFTMAX] = &softmax_type,
        [TG_ACT_LOG_SOFTMAX] = &log_softmax_type,
    };
    if ((unsigned)kind > TG_ACT_LOG_SOFTMAX) {
        tg_set_last_error("activation_new(\"%s\"): unknown activation %d", name ? name : "",
                          (int)kind);
        return NULL;
    }
    activation_layer *a =
        (activation_layer *)tg_layer_create(m, name, types[kind], sizeof(activation_layer));
    if (!a) return NULL;
    a->kind = kind;
    a->param = param;
    return &a->base;
}
