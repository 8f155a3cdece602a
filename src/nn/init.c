/* Initializers, as torch.nn.init: fill a persistent float tensor in place from the RNG in
 * row-major order. Fans are PyTorch's: fan_in = dim 1, fan_out = dim 0, each times the
 * receptive field (the product of the dims after the first two). */
#include <math.h>
#include <string.h>

#include "tensor/tensor.h"

double tg_init_gain(const char *nonlinearity, double param) {
    static const char *const unit[] = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                                       "conv_transpose2d", "conv_transpose3d", "sigmoid"};
    if (!nonlinearity) return NAN;
    for (size_t i = 0; i < sizeof unit / sizeof *unit; i++)
        if (strcmp(nonlinearity, unit[i]) == 0) return 1.0;
    if (strcmp(nonlinearity, "tanh") == 0) return 5.0 / 3.0;
    if (strcmp(nonlinearity, "relu") == 0) return sqrt(2.0);
    if (strcmp(nonlinearity, "leaky_relu") == 0) {
        double slope = isnan(param) ? 0.01 : param;
        return sqrt(2.0 / (1.0 + slope * slope));
    }
    if (strcmp(nonlinearity, "selu") == 0) return 0.75;
    return NAN;
}

/* A persistent float tensor to fill, or false with tg_last_error naming fn. */
static bool fillable(const char *fn, const tg_tensor *t, const tg_rng *rng, bool needs_rng) {
    if (!t || t->tape || !tg_is_float(t->dtype) || (needs_rng && !rng)) {
        tg_set_last_error("%s: needs a persistent f32 or f64 tensor%s", fn,
                          needs_rng ? " and an rng" : "");
        return false;
    }
    tg_clear_last_error();
    return true;
}

/* fan_in and fan_out of a weight of rank >= 2. */
static bool fans(const char *fn, const tg_tensor *t, double *fan_in, double *fan_out) {
    if (t->ndim < 2) {
        tg_set_last_error("%s: fan in and fan out need at least 2 dims, got %s", fn,
                          TG_SHAPE_STR(t));
        return false;
    }
    double field = 1.0;
    for (int d = 2; d < t->ndim; d++) field *= (double)t->shape[d];
    *fan_in = (double)t->shape[1] * field;
    *fan_out = (double)t->shape[0] * field;
    return true;
}

static void put(tg_tensor *t, int64_t i, double v) {
    if (t->dtype == TG_F32) ((float *)t->data)[i] = (float)v;
    else ((double *)t->data)[i] = v;
}

int tg_init_constant(tg_tensor *t, double value) {
    if (!fillable("init_constant", t, NULL, false)) return -1;
    for (int64_t i = 0; i < t->numel; i++) put(t, i, value);
    tg_tensor_bump_version(t);
    return 0;
}

int tg_init_uniform(tg_tensor *t, tg_rng *rng, double lo, double hi) {
    if (!fillable("init_uniform", t, rng, true)) return -1;
    for (int64_t i = 0; i < t->numel; i++) put(t, i, lo + (hi - lo) * tg_rng_uniform(rng));
    tg_tensor_bump_version(t);
    return 0;
}

int tg_init_normal(tg_tensor *t, tg_rng *rng, double mean, double std) {
    if (!fillable("init_normal", t, rng, true)) return -1;
    for (int64_t i = 0; i < t->numel; i++) put(t, i, mean + std * tg_rng_normal(rng));
    tg_tensor_bump_version(t);
    return 0;
}

int tg_init_xavier_uniform(tg_tensor *t, tg_rng *rng, double gain) {
    double fi, fo;
    if (!fillable("init_xavier_uniform", t, rng, true) || !fans("init_xavier_uniform", t, &fi, &fo))
        return -1;
    double bound = sqrt(3.0) * gain * sqrt(2.0 / (fi + fo));
    return tg_init_uniform(t, rng, -bound, bound);
}

int tg_init_xavier_normal(tg_tensor *t, tg_rng *rng, double gain) {
    double fi, fo;
    if (!fillable("init_xavier_normal", t, rng, true) || !fans("init_xavier_normal", t, &fi, &fo))
        return -1;
    return tg_init_normal(t, rng, 0.0, gain * sqrt(2.0 / (fi + fo)));
}

/* gain / sqrt(fan) for kaiming init, or NaN (with tg_last_error) on bad arguments. */
static double kaiming_std(const char *fn, const tg_tensor *t, const tg_rng *rng, double a,
                          tg_fan_mode mode, const char *nonlinearity) {
    double fi, fo;
    if (!fillable(fn, t, rng, true) || !fans(fn, t, &fi, &fo)) return NAN;
    double gain = tg_init_gain(nonlinearity, a);
    double fan = mode == TG_FAN_OUT ? fo : fi;
    if (isnan(gain) || fan <= 0) {
        tg_set_last_error("%s: unknown nonlinearity \"%s\" or an empty weight %s", fn,
                          nonlinearity ? nonlinearity : "(null)", TG_SHAPE_STR(t));
        return NAN;
    }
    return gain / sqrt(fan);
}

int tg_init_kaiming_uniform(tg_tensor *t, tg_rng *rng, double a, tg_fan_mode mode,
                            const char *nonlinearity) {
    double std = kaiming_std("init_kaiming_uniform", t, rng, a, mode, nonlinearity);
    if (isnan(std)) return -1;
    return tg_init_uniform(t, rng, -sqrt(3.0) * std, sqrt(3.0) * std);
}

int tg_init_kaiming_normal(tg_tensor *t, tg_rng *rng, double a, tg_fan_mode mode,
                           const char *nonlinearity) {
    double std = kaiming_std("init_kaiming_normal", t, rng, a, mode, nonlinearity);
    if (isnan(std)) return -1;
    return tg_init_normal(t, rng, 0.0, std);
}

int tg_init_default_layer(tg_tensor *weight, tg_tensor *bias, tg_rng *rng) {
    double fi = 0.0, fo;
    if (tg_init_kaiming_uniform(weight, rng, sqrt(5.0), TG_FAN_IN, "leaky_relu") != 0) return -1;
    if (!bias) return 0;
    fans("init_default_layer", weight, &fi, &fo);
    double bound = fi > 0 ? 1.0 / sqrt(fi) : 0.0;
    return tg_init_uniform(bias, rng, -bound, bound);
}
