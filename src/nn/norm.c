/* Normalization composed from primitives: batch norm (batch statistics with PyTorch's
 * running-average update, or the running statistics), layer norm, group norm and local response
 * norm, and their layer objects. The batch statistics are ordinary values on the tape (mean,
 * sub, square, mean, add eps, rsqrt), so the gradient flows through them to every order. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/layer.h"
#include "tensor/tensor.h"

/* The tape and t are not NULL; otherwise records "op: what is NULL" (on the tape, where it is
 * dropped when an earlier error stands, or as the last error without a tape). */
static bool present(tg_tape *tp, const char *op, const tg_tensor *t, const char *what) {
    if (!tp || !t) tg_fail(tp, "%s: %s is NULL", op, tp ? what : "the tape");
    return tp && t;
}

/* x is f32 or f64 with at least min_rank dims. */
static bool float_input(tg_tape *tp, const char *op, const tg_tensor *x, int min_rank,
                        const char *layout) {
    if (!tg_is_float(x->dtype) || x->ndim < min_rank) {
        tg_fail(tp, "%s: x must be an f32 or f64 tensor %s, got %s%s", op, layout,
                tg_dtype_name(x->dtype), TG_SHAPE_STR(x));
        return false;
    }
    return true;
}

/* t is NULL or a [c] tensor of x's dtype. */
static bool per_channel(tg_tape *tp, const char *op, const tg_tensor *t, const char *what,
                        int64_t c, const tg_tensor *x) {
    if (t && (t->ndim != 1 || t->shape[0] != c || t->dtype != x->dtype)) {
        tg_fail(tp, "%s: %s must be %s[%lld] for x %s%s, got %s%s", op, what,
                tg_dtype_name(x->dtype), (long long)c, tg_dtype_name(x->dtype), TG_SHAPE_STR(x),
                tg_dtype_name(t->dtype), TG_SHAPE_STR(t));
        return false;
    }
    return true;
}

/* t is persistent or a tensor of tp's current step: safe to write in place. */
static bool live(const tg_tape *tp, const tg_tensor *t) {
    return !t->tape || (t->tape == tp && t->epoch == tp->epoch);
}

/* (x - mean) * (scale / sqrt(var + eps)) with the mean and the biased variance over axes (kept
 * as size-1 dims); scale (NULL: 1) has the statistics' shape, so folding it in costs a product
 * of statistics, not a pass over x (batch norm's weight: a [1, C, 1, ...] view). *mean_out and
 * *var_out receive the statistics when not NULL. */
static tg_tensor *standardize(tg_tape *tp, tg_tensor *x, const int *axes, int naxes, double eps,
                              tg_tensor *scale, tg_tensor **mean_out, tg_tensor **var_out) {
    tg_tensor *mean = tg_mean(tp, x, axes, naxes, true);
    tg_tensor *centered = tg_sub(tp, x, mean);
    tg_tensor *var = tg_mean(tp, tg_square(tp, centered), axes, naxes, true);
    if (mean_out) *mean_out = mean;
    if (var_out) *var_out = var;
    tg_tensor *factor = tg_rsqrt(tp, tg_add_scalar(tp, var, eps));
    return tg_mul(tp, centered, scale ? tg_mul(tp, factor, scale) : factor);
}

/* [C] viewed as [1, C, 1, ..., 1] of rank ndim, to broadcast over [N, C, ...]; NULL stays NULL. */
static tg_tensor *channel_view(tg_tape *tp, tg_tensor *t, int ndim) {
    if (!t) return NULL;
    int64_t shape[TG_MAX_DIMS];
    for (int d = 0; d < ndim; d++) shape[d] = d == 1 ? t->shape[0] : 1;
    return tg_reshape(tp, t, ndim, shape);
}

/* y * weight + bias, either of which may be NULL (skipped). */
static tg_tensor *affine(tg_tape *tp, tg_tensor *y, tg_tensor *weight, tg_tensor *bias) {
    if (weight) y = tg_mul(tp, y, weight);
    return bias ? tg_add(tp, y, bias) : y;
}

/* r = (1 - momentum) r + momentum * scale * s, elementwise over the [C] tensor r from the
 * [1, C, 1, ...] batch statistic s. Written in place (the version counter moves). */
static void update_running(tg_tensor *r, const tg_tensor *s, double momentum, double scale) {
    void *data = tg_tensor_data_mut(r);
    for (int64_t c = 0; c < r->numel; c++) {
        double v = (1.0 - momentum) * tg_tensor_get(r, c) + momentum * scale * tg_tensor_get(s, c);
        if (r->dtype == TG_F32) ((float *)data)[c] = (float)v;
        else ((double *)data)[c] = v;
    }
}

/* x: [N, C, ...] -> same shape. Training: standardized with the batch statistics over every
 * axis but 1 (which then update running_mean/var in place, when given); evaluation: with the
 * running statistics. Then weight and bias per channel. */
tg_tensor *tg_batch_norm(tg_tape *tp, tg_tensor *x, tg_tensor *running_mean,
                         tg_tensor *running_var, tg_tensor *weight, tg_tensor *bias,
                         bool training, double momentum, double eps) {
    const char *op = "batch_norm";
    if (!present(tp, op, x, "x") || !float_input(tp, op, x, 2, "[N, C, ...]")) return NULL;
    int64_t c = x->shape[1];
    if (!per_channel(tp, op, running_mean, "running_mean", c, x) ||
        !per_channel(tp, op, running_var, "running_var", c, x) ||
        !per_channel(tp, op, weight, "weight", c, x) || !per_channel(tp, op, bias, "bias", c, x))
        return NULL;
    if (!running_mean != !running_var) {
        tg_fail(tp, "%s: running_mean and running_var go together (one of them is NULL)", op);
        return NULL;
    }
    if (running_mean && (!live(tp, running_mean) || !live(tp, running_var))) {
        tg_fail(tp, "%s: running_mean/running_var belong to another tape or to a step before "
                    "tg_tape_reset", op);
        return NULL;
    }
    int nd = x->ndim;
    tg_tensor *y;
    if (training) {
        int64_t count = c ? x->numel / c : 0;
        if (count < 2) {
            tg_fail(tp, "%s: training needs more than one value per channel, x is %s", op,
                    TG_SHAPE_STR(x));
            return NULL;
        }
        int axes[TG_MAX_DIMS], naxes = 0;
        for (int d = 0; d < nd; d++)
            if (d != 1) axes[naxes++] = d;
        tg_tensor *mean, *var;
        y = standardize(tp, x, axes, naxes, eps, channel_view(tp, weight, nd), &mean, &var);
        if (y && running_mean) {
            update_running(running_mean, mean, momentum, 1.0);
            update_running(running_var, var, momentum, (double)count / (double)(count - 1));
        }
    } else {
        if (!running_mean) {
            tg_fail(tp, "%s: evaluation mode needs running_mean and running_var", op);
            return NULL;
        }
        tg_tensor *factor =
            tg_rsqrt(tp, tg_add_scalar(tp, channel_view(tp, running_var, nd), eps));
        if (weight) factor = tg_mul(tp, factor, channel_view(tp, weight, nd));
        y = tg_mul(tp, tg_sub(tp, x, channel_view(tp, running_mean, nd)), factor);
    }
    return affine(tp, y, NULL, channel_view(tp, bias, nd)); /* the weight is in y already */
}

/* Standardized over the last n_dims axes, then weight and bias of those axes' shape. */
tg_tensor *tg_layer_norm(tg_tape *tp, tg_tensor *x, int n_dims, tg_tensor *weight,
                         tg_tensor *bias, double eps) {
    const char *op = "layer_norm";
    if (!present(tp, op, x, "x") || !float_input(tp, op, x, 1, "[..., normalized dims]"))
        return NULL;
    if (n_dims < 1 || n_dims > x->ndim) {
        tg_fail(tp, "%s: n_dims must be in 1..%d for x %s, got %d", op, x->ndim, TG_SHAPE_STR(x),
                n_dims);
        return NULL;
    }
    const int64_t *norm_shape = x->shape + x->ndim - n_dims;
    tg_tensor *params[2] = {weight, bias};
    for (int i = 0; i < 2; i++) {
        const tg_tensor *p = params[i];
        if (p && (p->ndim != n_dims || p->dtype != x->dtype ||
                  memcmp(p->shape, norm_shape, (size_t)n_dims * sizeof *norm_shape) != 0)) {
            tg_fail(tp, "%s: %s %s%s must have the shape of the last %d dims of x %s%s", op,
                    i ? "bias" : "weight", tg_dtype_name(p->dtype), TG_SHAPE_STR(p), n_dims,
                    tg_dtype_name(x->dtype), TG_SHAPE_STR(x));
            return NULL;
        }
    }
    int axes[TG_MAX_DIMS];
    for (int i = 0; i < n_dims; i++) axes[i] = x->ndim - n_dims + i;
    return affine(tp, standardize(tp, x, axes, n_dims, eps, NULL, NULL, NULL), weight, bias);
}

/* x: [N, C, ...] viewed as [N, groups, C/groups * ...], standardized along the last axis. */
tg_tensor *tg_group_norm(tg_tape *tp, tg_tensor *x, int64_t groups, tg_tensor *weight,
                         tg_tensor *bias, double eps) {
    const char *op = "group_norm";
    if (!present(tp, op, x, "x") || !float_input(tp, op, x, 2, "[N, C, ...]")) return NULL;
    int64_t n = x->shape[0], c = x->shape[1];
    if (groups < 1 || c % groups != 0) {
        tg_fail(tp, "%s: %lld groups do not divide the %lld channels of x %s", op,
                (long long)groups, (long long)c, TG_SHAPE_STR(x));
        return NULL;
    }
    if (!per_channel(tp, op, weight, "weight", c, x) || !per_channel(tp, op, bias, "bias", c, x))
        return NULL;
    int64_t per_group = c / groups;
    for (int d = 2; d < x->ndim; d++) per_group *= x->shape[d];
    int axis = 2;
    tg_tensor *grouped = tg_reshape(tp, x, 3, (int64_t[]){n, groups, per_group});
    tg_tensor *y = tg_reshape(tp, standardize(tp, grouped, &axis, 1, eps, NULL, NULL, NULL),
                              x->ndim, x->shape);
    return affine(tp, y, channel_view(tp, weight, x->ndim), channel_view(tp, bias, x->ndim));
}

/* As PyTorch: div = the average of x^2 over a window of `size` channels (size/2 before,
 * (size-1)/2 after, zeros outside), y = x / (k + alpha div)^beta. The window sums are those
 * of x^2 viewed as a one-channel image [N, 1, C, rest] under a (size x 1) kernel padded by
 * (size-1)/2 on both sides of C, after one zero channel in front for an even size. */
tg_tensor *tg_local_response_norm(tg_tape *tp, tg_tensor *x, int64_t size, double alpha,
                                  double beta, double k) {
    const char *op = "local_response_norm";
    if (!present(tp, op, x, "x") || !float_input(tp, op, x, 3, "[N, C, d1, ...]")) return NULL;
    if (size < 1) {
        tg_fail(tp, "%s: size must be >= 1, got %lld", op, (long long)size);
        return NULL;
    }
    if (x->numel == 0) return x;
    int64_t n = x->shape[0], c = x->shape[1], rest = x->numel / (n * c);
    tg_tensor *sq = tg_reshape(tp, tg_square(tp, x), 4, (int64_t[]){n, 1, c, rest});
    if (size % 2 == 0) sq = tg_pad(tp, sq, (int64_t[]){0, 0, 0, 0, 1, 0, 0, 0}, 0.0);
    tg_window2d win = {.kernel_h = size, .kernel_w = 1, .stride_h = 1, .stride_w = 1,
                       .pad_h = (size - 1) / 2, .dilation_h = 1, .dilation_w = 1};
    tg_tensor *div = tg_div_scalar(tp, tg_window_sum2d(tp, sq, &win), (double)size);
    div = tg_pow_scalar(tp, tg_add_scalar(tp, tg_mul_scalar(tp, div, alpha), k), beta);
    return tg_div(tp, x, tg_reshape(tp, div, x->ndim, x->shape));
}

/* ---- layer objects ---------------------------------------------------------------------- */

/* A new persistent f32 tensor of `shape` filled with value, or NULL with tg_last_error. */
static tg_tensor *filled(int ndim, const int64_t *shape, double value) {
    return tg_full(NULL, TG_F32, ndim, shape, value);
}

/* ---- BatchNorm1d / BatchNorm2d ---------------------------------------------------------- */

typedef struct batch_norm_layer {
    tg_layer base;
    int64_t features;
    double eps, momentum;
    bool two_d, affine, track; /* two_d: BatchNorm2d, else BatchNorm1d */
    tg_tensor *weight, *bias, *running_mean, *running_var, *num_batches_tracked;
} batch_norm_layer;

static tg_tensor *batch_norm_layer_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    batch_norm_layer *l = (batch_norm_layer *)self;
    if (!present(tp, self->type->name, x, "x")) return NULL;
    bool two_d = l->two_d;
    bool rank_ok = two_d ? x->ndim == 4 : (x->ndim == 2 || x->ndim == 3);
    if (!rank_ok || x->shape[1] != l->features) {
        tg_fail(tp, "%s \"%s\": x must be %s with C = %lld, got %s", self->type->name,
                self->name, two_d ? "[N, C, H, W]" : "[N, C] or [N, C, L]",
                (long long)l->features, TG_SHAPE_STR(x));
        return NULL;
    }
    bool training = tg_model_is_training(self->model);
    /* Batch statistics when training or when none are tracked; running ones otherwise. */
    tg_tensor *y = tg_batch_norm(tp, x, l->running_mean, l->running_var, l->weight, l->bias,
                                 training || !l->track, l->momentum, l->eps);
    if (y && training && l->track) (*(int64_t *)tg_tensor_data_mut(l->num_batches_tracked))++;
    return y;
}

static void batch_norm_layer_describe(const tg_layer *self, char *buf, size_t size) {
    const batch_norm_layer *l = (const batch_norm_layer *)self;
    char eps[32], momentum[32];
    tg_format_float(eps, sizeof eps, l->eps);
    tg_format_float(momentum, sizeof momentum, l->momentum);
    snprintf(buf, size, "%lld, eps=%s, momentum=%s, affine=%s, track_running_stats=%s",
             (long long)l->features, eps, momentum, l->affine ? "True" : "False",
             l->track ? "True" : "False");
}

static const tg_layer_type batch_norm1d_type = {"BatchNorm1d", batch_norm_layer_forward,
                                                batch_norm_layer_describe, NULL};
static const tg_layer_type batch_norm2d_type = {"BatchNorm2d", batch_norm_layer_forward,
                                                batch_norm_layer_describe, NULL};

/* Registers weight, bias, running_mean, running_var, num_batches_tracked in PyTorch's order. */
static tg_layer *batch_norm_new(tg_model *m, const char *name, const tg_layer_type *type,
                                int64_t features, double eps, double momentum, bool affine,
                                bool track) {
    if (features < 1 || !(eps >= 0.0) || !(momentum >= 0.0 && momentum <= 1.0)) {
        tg_set_last_error("%s(\"%s\"): needs num_features >= 1, eps >= 0 and momentum in "
                          "[0, 1] (got %lld, %g, %g)", type->name, name ? name : "",
                          (long long)features, eps, momentum);
        return NULL;
    }
    batch_norm_layer *l = (batch_norm_layer *)tg_layer_create(m, name, type, sizeof *l);
    if (!l) return NULL;
    l->features = features;
    l->two_d = type == &batch_norm2d_type;
    l->eps = eps;
    l->momentum = momentum;
    l->affine = affine;
    l->track = track;
    if (affine) {
        l->weight = tg_layer_add_param(&l->base, "weight", filled(1, &features, 1.0));
        l->bias = tg_layer_add_param(&l->base, "bias", filled(1, &features, 0.0));
        if (!l->weight || !l->bias) return NULL;
    }
    if (track) {
        l->running_mean = tg_layer_add_buffer(&l->base, "running_mean", filled(1, &features, 0.0));
        l->running_var = tg_layer_add_buffer(&l->base, "running_var", filled(1, &features, 1.0));
        l->num_batches_tracked = tg_layer_add_buffer(&l->base, "num_batches_tracked",
                                                     tg_zeros(NULL, TG_I64, 0, NULL));
        if (!l->running_mean || !l->running_var || !l->num_batches_tracked) return NULL;
    }
    return &l->base;
}

tg_layer *tg_batch_norm1d_new(tg_model *m, const char *name, int64_t num_features, double eps,
                              double momentum, bool affine, bool track_running_stats) {
    return batch_norm_new(m, name, &batch_norm1d_type, num_features, eps, momentum, affine,
                          track_running_stats);
}

tg_layer *tg_batch_norm2d_new(tg_model *m, const char *name, int64_t num_features, double eps,
                              double momentum, bool affine, bool track_running_stats) {
    return batch_norm_new(m, name, &batch_norm2d_type, num_features, eps, momentum, affine,
                          track_running_stats);
}

/* ---- LayerNorm -------------------------------------------------------------------------- */

typedef struct layer_norm_layer {
    tg_layer base;
    int n_dims;
    int64_t shape[TG_MAX_DIMS];
    double eps;
    tg_tensor *weight, *bias;
} layer_norm_layer;

static tg_tensor *layer_norm_layer_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const layer_norm_layer *l = (const layer_norm_layer *)self;
    if (!present(tp, "LayerNorm", x, "x")) return NULL;
    if (x->ndim < l->n_dims || memcmp(x->shape + x->ndim - l->n_dims, l->shape,
                                      (size_t)l->n_dims * sizeof *l->shape) != 0) {
        char want[96];
        tg_shape_str(want, sizeof want, l->n_dims, l->shape);
        tg_fail(tp, "LayerNorm \"%s\": x must end in the dims %s, got %s", self->name, want,
                TG_SHAPE_STR(x));
        return NULL;
    }
    return tg_layer_norm(tp, x, l->n_dims, l->weight, l->bias, l->eps);
}

/* "(8,), eps=1e-05, elementwise_affine=True": the shape as a Python tuple. */
static void layer_norm_layer_describe(const tg_layer *self, char *buf, size_t size) {
    const layer_norm_layer *l = (const layer_norm_layer *)self;
    char tuple[160] = "(", eps[32];
    for (int d = 0; d < l->n_dims; d++) {
        size_t used = strlen(tuple);
        snprintf(tuple + used, sizeof tuple - used, d ? ", %lld" : "%lld", (long long)l->shape[d]);
    }
    strcat(tuple, l->n_dims == 1 ? ",)" : ")");
    tg_format_float(eps, sizeof eps, l->eps);
    snprintf(buf, size, "%s, eps=%s, elementwise_affine=%s", tuple, eps,
             l->weight ? "True" : "False");
}

static const tg_layer_type layer_norm_type = {"LayerNorm", layer_norm_layer_forward,
                                              layer_norm_layer_describe, NULL};

tg_layer *tg_layer_norm_new(tg_model *m, const char *name, int n_dims,
                            const int64_t *normalized_shape, double eps, bool affine) {
    bool ok = n_dims >= 1 && n_dims <= TG_MAX_DIMS && normalized_shape && eps >= 0.0;
    for (int d = 0; ok && d < n_dims; d++) ok = normalized_shape[d] >= 1;
    if (!ok) {
        tg_set_last_error("LayerNorm(\"%s\"): needs 1..%d positive dims in normalized_shape "
                          "and eps >= 0 (got n_dims %d, eps %g)", name ? name : "", TG_MAX_DIMS,
                          n_dims, eps);
        return NULL;
    }
    layer_norm_layer *l = (layer_norm_layer *)tg_layer_create(m, name, &layer_norm_type, sizeof *l);
    if (!l) return NULL;
    l->n_dims = n_dims;
    memcpy(l->shape, normalized_shape, (size_t)n_dims * sizeof *l->shape);
    l->eps = eps;
    if (affine) {
        l->weight = tg_layer_add_param(&l->base, "weight", filled(n_dims, l->shape, 1.0));
        l->bias = tg_layer_add_param(&l->base, "bias", filled(n_dims, l->shape, 0.0));
        if (!l->weight || !l->bias) return NULL;
    }
    return &l->base;
}

/* ---- GroupNorm -------------------------------------------------------------------------- */

typedef struct group_norm_layer {
    tg_layer base;
    int64_t groups, channels;
    double eps;
    tg_tensor *weight, *bias;
} group_norm_layer;

static tg_tensor *group_norm_layer_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const group_norm_layer *l = (const group_norm_layer *)self;
    if (!present(tp, "GroupNorm", x, "x")) return NULL;
    if (x->ndim < 2 || x->shape[1] != l->channels) {
        tg_fail(tp, "GroupNorm \"%s\": x must be [N, %lld, ...], got %s", self->name,
                (long long)l->channels, TG_SHAPE_STR(x));
        return NULL;
    }
    return tg_group_norm(tp, x, l->groups, l->weight, l->bias, l->eps);
}

static void group_norm_layer_describe(const tg_layer *self, char *buf, size_t size) {
    const group_norm_layer *l = (const group_norm_layer *)self;
    char eps[32];
    tg_format_float(eps, sizeof eps, l->eps);
    snprintf(buf, size, "%lld, %lld, eps=%s, affine=%s", (long long)l->groups,
             (long long)l->channels, eps, l->weight ? "True" : "False");
}

static const tg_layer_type group_norm_type = {"GroupNorm", group_norm_layer_forward,
                                              group_norm_layer_describe, NULL};

tg_layer *tg_group_norm_new(tg_model *m, const char *name, int64_t groups, int64_t channels,
                            double eps, bool affine) {
    if (groups < 1 || channels < 1 || channels % groups != 0 || !(eps >= 0.0)) {
        tg_set_last_error("GroupNorm(\"%s\"): num_channels (%lld) must be divisible by "
                          "num_groups (%lld), both positive, and eps >= 0 (got %g)",
                          name ? name : "", (long long)channels, (long long)groups, eps);
        return NULL;
    }
    group_norm_layer *l = (group_norm_layer *)tg_layer_create(m, name, &group_norm_type, sizeof *l);
    if (!l) return NULL;
    l->groups = groups;
    l->channels = channels;
    l->eps = eps;
    if (affine) {
        l->weight = tg_layer_add_param(&l->base, "weight", filled(1, &channels, 1.0));
        l->bias = tg_layer_add_param(&l->base, "bias", filled(1, &channels, 0.0));
        if (!l->weight || !l->bias) return NULL;
    }
    return &l->base;
}

/* ---- LocalResponseNorm ------------------------------------------------------------------ */

typedef struct lrn_layer {
    tg_layer base;
    int64_t size;
    double alpha, beta, k;
} lrn_layer;

static tg_tensor *lrn_layer_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const lrn_layer *l = (const lrn_layer *)self;
    return tg_local_response_norm(tp, x, l->size, l->alpha, l->beta, l->k);
}

static void lrn_layer_describe(const tg_layer *self, char *buf, size_t size) {
    const lrn_layer *l = (const lrn_layer *)self;
    char alpha[32], beta[32], k[32];
    tg_format_float(alpha, sizeof alpha, l->alpha);
    tg_format_float(beta, sizeof beta, l->beta);
    tg_format_float(k, sizeof k, l->k);
    snprintf(buf, size, "%lld, alpha=%s, beta=%s, k=%s", (long long)l->size, alpha, beta, k);
}

static const tg_layer_type lrn_type = {"LocalResponseNorm", lrn_layer_forward,
                                       lrn_layer_describe, NULL};

tg_layer *tg_local_response_norm_new(tg_model *m, const char *name, int64_t size, double alpha,
                                     double beta, double k) {
    if (size < 1 || !isfinite(alpha) || !isfinite(beta) || !isfinite(k)) {
        tg_set_last_error("LocalResponseNorm(\"%s\"): needs size >= 1 and finite alpha, beta, "
                          "k (got %lld, %g, %g, %g)", name ? name : "", (long long)size, alpha,
                          beta, k);
        return NULL;
    }
    lrn_layer *l = (lrn_layer *)tg_layer_create(m, name, &lrn_type, sizeof *l);
    if (!l) return NULL;
    l->size = size;
    l->alpha = alpha;
    l->beta = beta;
    l->k = k;
    return &l->base;
}
