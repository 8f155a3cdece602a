/* Linear (x w^T + b as one GEMM with a transpose flag), and the structural layers: Sequential
 * and Flatten. */
#include <stdio.h>
#include <stdlib.h>

#include "nn/layer.h"
#include "tensor/tensor.h"

/* x: [..., in], w: [out, in], b: [out] or NULL -> [..., out]; a 1-D x is taken as [1, in]. */
tg_tensor *tg_linear(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b) {
    if (!x || !w) {
        tg_fail(tp, "linear: input %d is NULL", x ? 1 : 0);
        return NULL;
    }
    bool fits = tg_is_float(x->dtype) && x->ndim >= 1 && w->ndim == 2 && w->dtype == x->dtype &&
                x->shape[x->ndim - 1] == w->shape[1];
    if (fits && b) fits = b->ndim == 1 && b->shape[0] == w->shape[0] && b->dtype == x->dtype;
    if (!fits) {
        tg_fail(tp, "linear: x %s%s, weight %s%s and bias %s%s do not fit x: [..., in], "
                    "weight: [out, in], bias: [out] of one float dtype",
                tg_dtype_name(x->dtype), TG_SHAPE_STR(x), tg_dtype_name(w->dtype),
                TG_SHAPE_STR(w), b ? tg_dtype_name(b->dtype) : "", b ? TG_SHAPE_STR(b) : "none");
        return NULL;
    }
    if (x->ndim == 1) {
        tg_tensor *row = tg_reshape(tp, x, 2, (int64_t[]){1, x->shape[0]});
        return tg_reshape(tp, tg_linear(tp, row, w, b), 1, &w->shape[0]);
    }
    tg_tensor *y = tg_matmul_trans(tp, x, false, w, true);
    return b ? tg_add(tp, y, b) : y;
}

/* ---- Linear ----------------------------------------------------------------------------- */

typedef struct linear_layer {
    tg_layer base;
    int64_t in, out;
    tg_tensor *weight, *bias;
} linear_layer;

static tg_tensor *linear_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const linear_layer *l = (const linear_layer *)self;
    return tg_linear(tp, x, l->weight, l->bias);
}

static void linear_describe(const tg_layer *self, char *buf, size_t size) {
    const linear_layer *l = (const linear_layer *)self;
    snprintf(buf, size, "in_features=%lld, out_features=%lld, bias=%s", (long long)l->in,
             (long long)l->out, l->bias ? "True" : "False");
}

static const tg_layer_type linear_type = {"Linear", linear_forward, linear_describe, NULL};

tg_layer *tg_linear_new(tg_model *m, const char *name, int64_t in_features,
                        int64_t out_features, bool bias, tg_rng *rng) {
    if (in_features < 1 || out_features < 1 || !rng) {
        tg_set_last_error("Linear(\"%s\"): needs positive sizes and an rng (got %lld, %lld)",
                          name ? name : "", (long long)in_features, (long long)out_features);
        return NULL;
    }
    linear_layer *l = (linear_layer *)tg_layer_create(m, name, &linear_type, sizeof *l);
    if (!l) return NULL;
    l->in = in_features;
    l->out = out_features;
    l->weight = tg_layer_add_param(&l->base, "weight",
                                   tg_zeros(NULL, TG_F32, 2, (int64_t[]){out_features, in_features}));
    if (bias)
        l->bias = tg_layer_add_param(&l->base, "bias", tg_zeros(NULL, TG_F32, 1, &out_features));
    if (!l->weight || (bias && !l->bias) || tg_init_default_layer(l->weight, l->bias, rng) != 0)
        return NULL;
    return &l->base;
}

/* ---- Sequential ------------------------------------------------------------------------- */

typedef struct sequential_layer {
    tg_layer base;
    tg_layer **children;
    int n, cap;
} sequential_layer;

static tg_tensor *sequential_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const sequential_layer *s = (const sequential_layer *)self;
    for (int i = 0; i < s->n; i++) x = tg_layer_forward(tp, s->children[i], x);
    return x;
}

static void sequential_destroy(tg_layer *self) {
    free(((sequential_layer *)self)->children);
}

static const tg_layer_type sequential_type = {"Sequential", sequential_forward, NULL,
                                              sequential_destroy};

tg_layer *tg_sequential_new(tg_model *m, const char *name) {
    return tg_layer_create(m, name, &sequential_type, sizeof(sequential_layer));
}

int tg_sequential_add(tg_layer *seq, tg_layer *child) {
    if (!seq || !child || seq->type != &sequential_type || child == seq) {
        tg_set_last_error("sequential_add: needs a Sequential and another layer");
        return -1;
    }
    sequential_layer *s = (sequential_layer *)seq;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        tg_layer **p = realloc(s->children, (size_t)cap * sizeof *p);
        if (!p) {
            tg_set_last_error("sequential_add: out of memory");
            return -1;
        }
        s->children = p;
        s->cap = cap;
    }
    s->children[s->n++] = child;
    return 0;
}

/* ---- Flatten ---------------------------------------------------------------------------- */

typedef struct flatten_layer {
    tg_layer base;
    int start, end;
} flatten_layer;

static tg_tensor *flatten_forward(tg_tape *tp, tg_layer *self, tg_tensor *x) {
    const flatten_layer *f = (const flatten_layer *)self;
    if (!x) return NULL;
    int nd = x->ndim;
    int s = f->start < 0 ? f->start + nd : f->start, e = f->end < 0 ? f->end + nd : f->end;
    if (s < 0 || e >= nd || s > e) {
        tg_fail(tp, "Flatten \"%s\": dims %d..%d do not fit %s", self->name, f->start, f->end,
                TG_SHAPE_STR(x));
        return NULL;
    }
    const int64_t *shape = x->shape;
    int64_t out[TG_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < nd; d++) {
        if (d <= s || d > e) out[n++] = shape[d];
        else out[n - 1] *= shape[d];
    }
    return tg_reshape(tp, x, n, out);
}

static void flatten_describe(const tg_layer *self, char *buf, size_t size) {
    const flatten_layer *f = (const flatten_layer *)self;
    snprintf(buf, size, "start_dim=%d, end_dim=%d", f->start, f->end);
}

static const tg_layer_type flatten_type = {"Flatten", flatten_forward, flatten_describe, NULL};

tg_layer *tg_flatten_new(tg_model *m, const char *name, int start_dim, int end_dim) {
    flatten_layer *f = (flatten_layer *)tg_layer_create(m, name, &flatten_type, sizeof *f);
    if (!f) return NULL;
    f->start = start_dim;
    f->end = end_dim;
    return &f->base;
}
