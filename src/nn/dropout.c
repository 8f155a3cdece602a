/* Dropout (inverted: the kept values are scaled by 1/(1-p) while training, the identity at
 * evaluation) and channel dropout, both a multiplication by a Bernoulli mask that carries no
 * gradient; and embedding lookup, an index_select of the weight's rows. Their layer objects. */
#include <stdio.h>

#include "nn/layer.h"
#include "tensor/tensor.h"

/* The tape and t are not NULL; otherwise records "op: what is NULL" (on the tape, where it is
 * dropped when an earlier error stands, or as the last error without a tape). */
static bool present(tg_tape *tp, const char *op, const tg_tensor *t, const char *what) {
    if (!tp || !t) tg_fail(tp, "%s: %s is NULL", op, tp ? what : "the tape");
    return tp && t;
}

/* x * mask / (1 - p) with mask ~ Bernoulli(1 - p) of mask_shape (which broadcasts to x's);
 * x itself when not training or p == 0, x * 0 when p == 1 (as PyTorch). */
static tg_tensor *drop(tg_tape *tp, const char *op, tg_tensor *x, double p, bool training,
                       tg_rng *rng, int ndim, const int64_t *mask_shape) {
    if (!(p >= 0.0 && p <= 1.0)) {
        tg_fail(tp, "%s: p must be in [0, 1], got %g", op, p);
        return NULL;
    }
    if (!training || p == 0.0) return x;
    if (p == 1.0) return tg_mul_scalar(tp, x, 0.0);
    if (!rng) {
        tg_fail(tp, "%s: training with p = %g needs an rng", op, p);
        return NULL;
    }
    tg_tensor *keep = tg_bernoulli(tp, rng, x->dtype, ndim, mask_shape, 1.0 - p);
    return tg_mul(tp, x, tg_div_scalar(tp, keep, 1.0 - p));
}

/* One draw per element: the mask has x's shape. */
tg_tensor *tg_dropout(tg_tape *tp, tg_tensor *x, double p, bool training, tg_rng *rng) {
    if (!present(tp, "dropout", x, "x")) return NULL;
    if (!tg_is_float(x->dtype)) {
        tg_fail(tp, "dropout: x must be f32 or f64, got %s%s", tg_dtype_name(x->dtype),
                TG_SHAPE_STR(x));
        return NULL;
    }
    return drop(tp, "dropout", x, p, training, rng, x->ndim, x->shape);
}

/* The mask is [N, C, 1, ..., 1]: one draw per channel of each sample. */
tg_tensor *tg_dropout2d(tg_tape *tp, tg_tensor *x, double p, bool training, tg_rng *rng) {
    if (!present(tp, "dropout2d", x, "x")) return NULL;
    if (!tg_is_float(x->dtype) || x->ndim < 2) {
        tg_fail(tp, "dropout2d: x must be an f32 or f64 tensor [N, C, ...], got %s%s",
                tg_dtype_name(x->dtype), TG_SHAPE_STR(x));
        return NULL;
    }
    int64_t mask_shape[TG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) mask_shape[d] = d < 2 ? x->shape[d] : 1;
    return drop(tp, "dropout2d", x, p, training, rng, x->ndim, mask_shape);
}

/* weight: [V, D], idx: i64 [...] -> [..., D]: the rows idx of weight, so the gradient of a
 * row used several times accumulates (index_select's VJP is index_add). */
tg_tensor *tg_embedding(tg_tape *tp, tg_tensor *weight, tg_tensor *idx) {
    if (!present(tp, "embedding", weight, "weight") || !present(tp, "embedding", idx, "idx"))
        return NULL;
    if (!tg_is_float(weight->dtype) || weight->ndim != 2 || idx->dtype != TG_I64 ||
        idx->ndim >= TG_MAX_DIMS) {
        tg_fail(tp, "embedding: needs a float weight [V, D] and i64 indices of rank < %d, got "
                "weight %s%s and idx %s%s", TG_MAX_DIMS, tg_dtype_name(weight->dtype),
                TG_SHAPE_STR(weight), tg_dtype_name(idx->dtype), TG_SHAPE_STR(idx));
        return NULL;
    }
    tg_tensor *flat = tg_reshape(tp, idx, 1, &idx->numel); /* also checks idx's tape */
    if (!flat) return NULL;
    const int64_t *ids = tg_tensor_data(flat);
    for (int64_t i = 0; i < idx->numel; i++) {
        if (ids[i] < 0 || ids[i] >= weight->shape[0]) {
            tg_fail(tp, "embedding: index %lld at position %lld is out of range for weight %s",
                    (long long)ids[i], (long long)i, TG_SHAPE_STR(weight));
            return NULL;
        }
    }
    int64_t shape[TG_MAX_DIMS];
    for (int d = 0; d < idx->ndim; d++) shape[d] = idx->shape[d];
    shape[idx->ndim] = weight->shape[1];
    return tg_reshape(tp, tg_index_select(tp, weight, 0, flat), idx->ndim + 1, shape);
}

/* ---- Dropout / Dropout2d ---------------------------------------------------------------- */

typedef struct dropout_layer {
    tg_layer base;
    double p;
    tg_rng *rng; /* borrowed */
} dropout_layer;

static tg_tensor *dropout_layer_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const dropout_layer *l = (const dropout_layer *)self;
    return tg_dropout(tp, x, l->p, tg_model_is_training(self->model), l->rng);
}

static tg_tensor *dropout2d_layer_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const dropout_layer *l = (const dropout_layer *)self;
    return tg_dropout2d(tp, x, l->p, tg_model_is_training(self->model), l->rng);
}

static void dropout_layer_describe(const tg_layer *self, char *buf, size_t size) {
    char p[32];
    tg_format_float(p, sizeof p, ((const dropout_layer *)self)->p);
    snprintf(buf, size, "p=%s, inplace=False", p);
}

static const tg_layer_type dropout_type = {"Dropout", dropout_layer_forward,
                                           dropout_layer_describe, NULL};
static const tg_layer_type dropout2d_type = {"Dropout2d", dropout2d_layer_forward,
                                             dropout_layer_describe, NULL};

static tg_layer *dropout_new(tg_model *m, const char *name, const tg_layer_type *type, double p,
                             tg_rng *rng) {
    if (!(p >= 0.0 && p <= 1.0) || !rng) {
        tg_set_last_error("%s(\"%s\"): needs p in [0, 1] and an rng (got p = %g)", type->name,
                          name ? name : "", p);
        return NULL;
    }
    dropout_layer *l = (dropout_layer *)tg_layer_create(m, name, type, sizeof *l);
    if (!l) return NULL;
    l->p = p;
    l->rng = rng;
    return &l->base;
}

tg_layer *tg_dropout_new(tg_model *m, const char *name, double p, tg_rng *rng) {
    return dropout_new(m, name, &dropout_type, p, rng);
}

tg_layer *tg_dropout2d_new(tg_model *m, const char *name, double p, tg_rng *rng) {
    return dropout_new(m, name, &dropout2d_type, p, rng);
}

/* ---- Embedding -------------------------------------------------------------------------- */

typedef struct embedding_layer {
    tg_layer base;
    int64_t num, dim;
    tg_tensor *weight;
} embedding_layer;

static tg_tensor *embedding_layer_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    return tg_embedding(tp, ((embedding_layer *)self)->weight, x);
}

static void embedding_layer_describe(const tg_layer *self, char *buf, size_t size) {
    const embedding_layer *l = (const embedding_layer *)self;
    snprintf(buf, size, "%lld, %lld", (long long)l->num, (long long)l->dim);
}

static const tg_layer_type embedding_type = {"Embedding", embedding_layer_forward,
                                             embedding_layer_describe, NULL};

tg_layer *tg_embedding_new(tg_model *m, const char *name, int64_t num_embeddings,
                           int64_t embedding_dim, tg_rng *rng) {
    if (num_embeddings < 1 || embedding_dim < 1 || !rng) {
        tg_set_last_error("Embedding(\"%s\"): needs positive sizes and an rng (got %lld, %lld)",
                          name ? name : "", (long long)num_embeddings, (long long)embedding_dim);
        return NULL;
    }
    embedding_layer *l = (embedding_layer *)tg_layer_create(m, name, &embedding_type, sizeof *l);
    if (!l) return NULL;
    l->num = num_embeddings;
    l->dim = embedding_dim;
    l->weight = tg_layer_add_param(&l->base, "weight",
                                   tg_zeros(NULL, TG_F32, 2,
                                            (int64_t[]){num_embeddings, embedding_dim}));
    if (!l->weight || tg_init_normal(l->weight, rng, 0.0, 1.0) != 0) return NULL;
    return &l->base;
}
