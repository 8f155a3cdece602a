/* Tensors in both lifetimes: allocation (arena or malloc), creation from data, constants and the
 * RNG, accessors, and the leaf-gradient bookkeeping the tape fills in. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/tensor.h"

const char *tg_dtype_name(tg_dtype dtype) {
    switch (dtype) {
    case TG_F32: return "f32";
    case TG_F64: return "f64";
    case TG_I64: return "i64";
    }
    return "?";
}

size_t tg_dtype_size(tg_dtype dtype) {
    return dtype == TG_F32 ? 4 : 8;
}

static bool dtype_valid(tg_dtype dtype) {
    return dtype == TG_F32 || dtype == TG_F64 || dtype == TG_I64;
}

enum { TG_HEADER_BYTES = (sizeof(tg_tensor) + 63) & ~63 };

tg_tensor *tg_tensor_alloc(tg_tape *tp, tg_dtype dtype, int ndim, const int64_t *shape) {
    int64_t numel = tg_shape_numel(ndim, shape);
    size_t bytes = (size_t)numel * tg_dtype_size(dtype);
    tg_tensor *t;
    void *data;
    if (tp) {
        unsigned char *p = tg_arena_alloc(&tp->arena, TG_HEADER_BYTES + bytes, 64);
        if (!p) {
            tg_fail(tp, "out of memory: tape arena could not grow by %zu bytes", bytes);
            return NULL;
        }
        t = (tg_tensor *)p;
        data = p + TG_HEADER_BYTES;
    } else {
        t = malloc(sizeof *t);
        size_t capacity = bytes ? (bytes + 63) & ~(size_t)63 : 64; /* aligned_alloc's rule */
        data = aligned_alloc(64, capacity);
        if (!t || !data) {
            free(t);
            free(data);
            tg_set_last_error("out of memory: cannot allocate a tensor of %zu bytes", bytes);
            return NULL;
        }
    }
    t->dtype = dtype;
    t->ndim = ndim;
    t->requires_grad = false;
    t->numel = numel;
    if (ndim > 0) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape); /* rank 0: may be NULL */
    t->data = data;
    t->own_version = 0;
    t->version = &t->own_version;
    t->epoch = tp ? tp->epoch : 0;
    t->tape = tp;
    t->node = NULL;
    t->grad = NULL;
    return t;
}

tg_tensor *tg_tensor_view(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape) {
    tg_tensor *t = tg_arena_alloc(&tp->arena, sizeof *t, 16);
    if (!t) {
        tg_fail(tp, "out of memory: tape arena could not grow");
        return NULL;
    }
    *t = *x;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->version = x->version;
    t->epoch = tp->epoch;
    t->tape = tp;
    t->node = NULL;
    t->grad = NULL;
    t->requires_grad = false;
    return t;
}

tg_tensor *tg_zeros_like(tg_tape *tp, const tg_tensor *x) {
    tg_tensor *t = tg_tensor_alloc(tp, x->dtype, x->ndim, x->shape);
    if (t) memset(t->data, 0, (size_t)t->numel * tg_dtype_size(t->dtype));
    return t;
}

/* Validates a creation request; reports under `fn` on the tape or as the last error. */
static bool creation_ok(tg_tape *tp, const char *fn, tg_dtype dtype, int ndim,
                        const int64_t *shape, bool float_only) {
    char why[160];
    if (!dtype_valid(dtype)) {
        tg_fail(tp, "%s: unknown dtype %d", fn, (int)dtype);
        return false;
    }
    if (float_only && !tg_is_float(dtype)) {
        tg_fail(tp, "%s: dtype must be f32 or f64, got %s", fn, tg_dtype_name(dtype));
        return false;
    }
    if (!tg_shape_valid(ndim, shape, why, sizeof why)) {
        tg_fail(tp, "%s: %s", fn, why);
        return false;
    }
    if (!tp) tg_clear_last_error();
    return true;
}

static void store(tg_tensor *t, int64_t i, double v) {
    switch (t->dtype) {
    case TG_F32: ((float *)t->data)[i] = (float)v; break;
    case TG_F64: ((double *)t->data)[i] = v; break;
    case TG_I64: ((int64_t *)t->data)[i] = (int64_t)v; break;
    }
}

tg_tensor *tg_tensor_from(tg_tape *tp, tg_dtype dtype, int ndim, const int64_t *shape,
                          const void *data) {
    if (!creation_ok(tp, "tensor_from", dtype, ndim, shape, false)) return NULL;
    if (!data && tg_shape_numel(ndim, shape) > 0) {
        tg_fail(tp, "tensor_from: data is NULL for shape %s",
                tg_shape_str((char[96]){0}, 96, ndim, shape));
        return NULL;
    }
    tg_tensor *t = tg_tensor_alloc(tp, dtype, ndim, shape);
    if (t && t->numel) memcpy(t->data, data, (size_t)t->numel * tg_dtype_size(dtype));
    return t;
}

tg_tensor *tg_full(tg_tape *tp, tg_dtype dtype, int ndim, const int64_t *shape, double value) {
    if (!creation_ok(tp, "full", dtype, ndim, shape, false)) return NULL;
    tg_tensor *t = tg_tensor_alloc(tp, dtype, ndim, shape);
    if (!t) return NULL;
    if (value == 0.0 && !signbit(value)) {
        memset(t->data, 0, (size_t)t->numel * tg_dtype_size(dtype));
    } else {
        for (int64_t i = 0; i < t->numel; i++) store(t, i, value);
    }
    return t;
}

tg_tensor *tg_zeros(tg_tape *tp, tg_dtype dtype, int ndim, const int64_t *shape) {
    return tg_full(tp, dtype, ndim, shape, 0.0);
}

tg_tensor *tg_ones(tg_tape *tp, tg_dtype dtype, int ndim, const int64_t *shape) {
    return tg_full(tp, dtype, ndim, shape, 1.0);
}

tg_tensor *tg_arange(tg_tape *tp, tg_dtype dtype, double start, double stop, double step) {
    if (!isfinite(start) || !isfinite(stop) || !isfinite(step) || step == 0.0) {
        tg_fail(tp, "arange: start, stop and step must be finite and step non-zero "
                    "(got %g, %g, %g)", start, stop, step);
        return NULL;
    }
    double count = ceil((stop - start) / step);
    if (count < 0) {
        tg_fail(tp, "arange: step %g moves away from stop (start %g, stop %g)", step, start,
                stop);
        return NULL;
    }
    int64_t n = (int64_t)count;
    if (!creation_ok(tp, "arange", dtype, 1, &n, false)) return NULL;
    tg_tensor *t = tg_tensor_alloc(tp, dtype, 1, &n);
    if (!t) return NULL;
    for (int64_t i = 0; i < n; i++) store(t, i, start + (double)i * step);
    return t;
}

tg_tensor *tg_rand(tg_tape *tp, tg_rng *rng, tg_dtype dtype, int ndim, const int64_t *shape,
                   double lo, double hi) {
    if (!creation_ok(tp, "rand", dtype, ndim, shape, true)) return NULL;
    if (!rng) {
        tg_fail(tp, "rand: rng is NULL");
        return NULL;
    }
    tg_tensor *t = tg_tensor_alloc(tp, dtype, ndim, shape);
    if (!t) return NULL;
    for (int64_t i = 0; i < t->numel; i++) store(t, i, lo + (hi - lo) * tg_rng_uniform(rng));
    return t;
}

tg_tensor *tg_randn(tg_tape *tp, tg_rng *rng, tg_dtype dtype, int ndim, const int64_t *shape,
                    double mean, double std) {
    if (!creation_ok(tp, "randn", dtype, ndim, shape, true)) return NULL;
    if (!rng) {
        tg_fail(tp, "randn: rng is NULL");
        return NULL;
    }
    tg_tensor *t = tg_tensor_alloc(tp, dtype, ndim, shape);
    if (!t) return NULL;
    for (int64_t i = 0; i < t->numel; i++) store(t, i, mean + std * tg_rng_normal(rng));
    return t;
}

tg_tensor *tg_bernoulli(tg_tape *tp, tg_rng *rng, tg_dtype dtype, int ndim, const int64_t *shape,
                        double p) {
    if (!creation_ok(tp, "bernoulli", dtype, ndim, shape, true)) return NULL;
    if (!rng || !(p >= 0.0 && p <= 1.0)) {
        tg_fail(tp, "bernoulli: needs an rng and 0 <= p <= 1 (got p = %g)", p);
        return NULL;
    }
    tg_tensor *t = tg_tensor_alloc(tp, dtype, ndim, shape);
    if (!t) return NULL;
    for (int64_t i = 0; i < t->numel; i++) store(t, i, tg_rng_uniform(rng) < p ? 1.0 : 0.0);
    return t;
}

tg_tensor *tg_tensor_clone(const tg_tensor *t) {
    if (!t) {
        tg_set_last_error("tensor_clone: tensor is NULL");
        return NULL;
    }
    tg_clear_last_error();
    tg_tensor *c = tg_tensor_alloc(NULL, t->dtype, t->ndim, t->shape);
    if (c && c->numel) memcpy(c->data, t->data, (size_t)c->numel * tg_dtype_size(c->dtype));
    return c;
}

void tg_tensor_free(tg_tensor *t) {
    if (!t || t->tape) return;
    tg_tensor_free(t->grad);
    free(t->data);
    free(t);
}

tg_dtype tg_tensor_dtype(const tg_tensor *t) { return t->dtype; }
int tg_tensor_ndim(const tg_tensor *t) { return t->ndim; }
const int64_t *tg_tensor_shape(const tg_tensor *t) { return t->shape; }
int64_t tg_tensor_numel(const tg_tensor *t) { return t->numel; }
bool tg_tensor_is_persistent(const tg_tensor *t) { return t->tape == NULL; }
const void *tg_tensor_data(const tg_tensor *t) { return t->data; }
uint32_t tg_tensor_version(const tg_tensor *t) { return *t->version; }
bool tg_tensor_requires_grad(const tg_tensor *t) { return t && t->requires_grad; }
tg_tensor *tg_tensor_grad(const tg_tensor *t) { return t ? t->grad : NULL; }

int64_t tg_tensor_dim(const tg_tensor *t, int axis) {
    int a = tg_normalize_axis(axis, t->ndim);
    return a < 0 ? -1 : t->shape[a];
}

void *tg_tensor_data_mut(tg_tensor *t) {
    tg_tensor_bump_version(t);
    return t->data;
}

double tg_tensor_get(const tg_tensor *t, int64_t i) {
    if (!t || i < 0 || i >= t->numel) return NAN;
    switch (t->dtype) {
    case TG_F32: return ((const float *)t->data)[i];
    case TG_F64: return ((const double *)t->data)[i];
    case TG_I64: return (double)((const int64_t *)t->data)[i];
    }
    return NAN;
}

double tg_tensor_item(const tg_tensor *t) {
    return (t && t->numel == 1) ? tg_tensor_get(t, 0) : NAN;
}

char *tg_tensor_describe(const tg_tensor *t, char *buf, size_t size) {
    if (!t) {
        snprintf(buf, size, "NULL");
        return buf;
    }
    char shape[96];
    snprintf(buf, size, "%s%s", tg_dtype_name(t->dtype),
             tg_shape_str(shape, sizeof shape, t->ndim, t->shape));
    return buf;
}

int tg_set_requires_grad(tg_tensor *t, bool requires_grad) {
    if (!t) {
        tg_set_last_error("set_requires_grad: tensor is NULL");
        return -1;
    }
    if (requires_grad && !tg_is_float(t->dtype)) {
        tg_set_last_error("set_requires_grad: only f32 and f64 tensors can require grad, got %s",
                          tg_dtype_name(t->dtype));
        return -1;
    }
    if (t->node) {
        tg_set_last_error("set_requires_grad: the tensor was computed by an op; only leaves "
                          "(created tensors) can be marked, use tg_detach first");
        return -1;
    }
    tg_clear_last_error();
    t->requires_grad = requires_grad;
    return 0;
}

void tg_tensor_zero_grad(tg_tensor *t) {
    if (t && t->grad) memset(t->grad->data, 0, (size_t)t->grad->numel * tg_dtype_size(t->dtype));
}
