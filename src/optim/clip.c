/* Gradient utilities as torch.nn.utils and torch.renorm: clipping gradients by their global L2
 * norm or by value, and the max-norm constraint on a weight's rows. Squares are summed in double
 * (torch's CPU accumulation type); values torch holds in a tensor of the data's dtype (norms,
 * scale factors) are rounded to that dtype, so f32 scales as torch scales it. */
#include <math.h>

#include "tensor/tensor.h"

/* v rounded to dtype (identity for f64). One double operation on f32 values followed by this
 * rounding gives the f32 operation's exact result for +, *, / and sqrt. */
static double round_to(tg_dtype dtype, double v) { return dtype == TG_F32 ? (float)v : v; }

/* The sum of squares of t's elements [from, from + n). */
static double sum_squares(const tg_tensor *t, int64_t from, int64_t n) {
    double s = 0;
    if (t->dtype == TG_F32)
        for (int64_t i = from; i < from + n; i++) s += (double)((const float *)t->data)[i] *
                                                        ((const float *)t->data)[i];
    else
        for (int64_t i = from; i < from + n; i++) s += ((const double *)t->data)[i] *
                                                        ((const double *)t->data)[i];
    return s;
}

/* Multiplies t's elements [from, from + n) by f (a value of t's dtype) in t's dtype. */
static void scale(tg_tensor *t, int64_t from, int64_t n, double f) {
    if (t->dtype == TG_F32)
        for (int64_t i = from; i < from + n; i++) ((float *)t->data)[i] *= (float)f;
    else
        for (int64_t i = from; i < from + n; i++) ((double *)t->data)[i] *= f;
    tg_tensor_bump_version(t);
}

/* n >= 0 parameters, none NULL; reports under fn otherwise. */
static bool params_ok(const char *fn, int n, tg_tensor *const *params) {
    if (n < 0 || (n > 0 && !params)) {
        tg_set_last_error("%s: needs n >= 0 parameters, got %d", fn, n);
        return false;
    }
    for (int i = 0; i < n; i++)
        if (!params[i]) {
            tg_set_last_error("%s: parameter %d is NULL", fn, i);
            return false;
        }
    return true;
}

double tg_clip_grad_norm(int n, tg_tensor *const *params, double max_norm) {
    if (!params_ok("clip_grad_norm", n, params)) return NAN;
    if (!(max_norm >= 0)) {
        tg_set_last_error("clip_grad_norm: max_norm must be >= 0, got %g", max_norm);
        return NAN;
    }
    /* torch: the norm of the stacked per-gradient norms, in the promoted dtype. */
    double total_sq = 0;
    bool any = false;
    tg_dtype dtype = TG_F32;
    for (int i = 0; i < n; i++) {
        const tg_tensor *g = params[i]->grad;
        if (!g) continue;
        double norm = round_to(g->dtype, sqrt(sum_squares(g, 0, g->numel)));
        total_sq += norm * norm;
        any = true;
        if (g->dtype == TG_F64) dtype = TG_F64;
    }
    tg_clear_last_error();
    if (!any) return 0.0;
    double total = round_to(dtype, sqrt(total_sq));
    double coef = round_to(dtype, max_norm / round_to(dtype, total + 1e-6));
    if (!(coef >= 1)) /* torch multiplies by min(coef, 1); NaN propagates as there */
        for (int i = 0; i < n; i++) {
            tg_tensor *g = params[i]->grad;
            if (g) scale(g, 0, g->numel, round_to(g->dtype, coef));
        }
    return total;
}

int tg_clip_grad_value(int n, tg_tensor *const *params, double clip) {
    if (!params_ok("clip_grad_value", n, params)) return -1;
    if (!(clip >= 0)) {
        tg_set_last_error("clip_grad_value: clip must be >= 0, got %g", clip);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        tg_tensor *g = params[i]->grad;
        if (!g) continue;
        double hi = round_to(g->dtype, clip);
        for (int64_t k = 0; k < g->numel; k++) {
            double v = tg_tensor_get(g, k);
            double c = v < -hi ? -hi : v > hi ? hi : v; /* NaN stays NaN, as torch.clamp */
            if (g->dtype == TG_F32) ((float *)g->data)[k] = (float)c;
            else ((double *)g->data)[k] = c;
        }
        tg_tensor_bump_version(g);
    }
    tg_clear_last_error();
    return 0;
}

int tg_max_norm_rows(tg_tensor *weight, double max_norm) {
    if (!weight || !tg_is_float(weight->dtype) || weight->ndim < 1) {
        tg_set_last_error("max_norm_rows: needs an f32 or f64 tensor of rank >= 1");
        return -1;
    }
    if (!(max_norm >= 0)) {
        tg_set_last_error("max_norm_rows: max_norm must be >= 0, got %g", max_norm);
        return -1;
    }
    int64_t rows = weight->shape[0], cols = rows ? weight->numel / rows : 0;
    double limit = round_to(weight->dtype, max_norm), eps = round_to(weight->dtype, 1e-7);
    for (int64_t r = 0; r < rows; r++) {
        double norm = round_to(weight->dtype, sqrt(sum_squares(weight, r * cols, cols)));
        if (norm > limit) /* torch.renorm: maxnorm / (norm + 1e-7) */
            scale(weight, r * cols, cols,
                  round_to(weight->dtype, limit / round_to(weight->dtype, norm + eps)));
    }
    tg_clear_last_error();
    return 0;
}
