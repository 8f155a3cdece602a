/* Argument checking shared by the primitives; every message names the op and the shapes. */
#include "ops/op.h"

bool tg_op_begin(tg_tape *tp, const char *op, int n, tg_tensor *const *in) {
    if (!tp) {
        tg_set_last_error("%s: tape is NULL", op);
        return false;
    }
    for (int i = 0; i < n; i++) {
        const tg_tensor *t = in[i];
        if (!t) {
            tg_fail(tp, "%s: input %d is NULL", op, i);
            return false;
        }
        if (t->tape && (t->tape != tp || t->epoch != tp->epoch)) {
            tg_fail(tp, "%s: input %d (%s) belongs to another tape or to a step before "
                        "tg_tape_reset", op, i, TG_SHAPE_STR(t));
            return false;
        }
    }
    return true;
}

bool tg_op_same_float(tg_tape *tp, const char *op, int n, tg_tensor *const *in) {
    for (int i = 0; i < n; i++) {
        if (!tg_is_float(in[i]->dtype)) {
            tg_fail(tp, "%s: input %d is %s%s; this op needs f32 or f64", op, i,
                    tg_dtype_name(in[i]->dtype), TG_SHAPE_STR(in[i]));
            return false;
        }
        if (in[i]->dtype != in[0]->dtype) {
            tg_fail(tp, "%s: dtype mismatch: input 0 is %s%s, input %d is %s%s", op,
                    tg_dtype_name(in[0]->dtype), TG_SHAPE_STR(in[0]), i,
                    tg_dtype_name(in[i]->dtype), TG_SHAPE_STR(in[i]));
            return false;
        }
    }
    return true;
}

bool tg_op_index(tg_tape *tp, const char *op, const tg_tensor *idx, const char *which) {
    if (idx->dtype != TG_I64) {
        tg_fail(tp, "%s: %s must be i64, got %s%s", op, which, tg_dtype_name(idx->dtype),
                TG_SHAPE_STR(idx));
        return false;
    }
    return true;
}

bool tg_op_axis(tg_tape *tp, const char *op, int *axis, const tg_tensor *x, int ndim) {
    int a = tg_normalize_axis(*axis, ndim);
    if (a < 0) {
        tg_fail(tp, "%s: axis %d is out of range for shape %s", op, *axis, TG_SHAPE_STR(x));
        return false;
    }
    *axis = a;
    return true;
}

bool tg_op_broadcast(tg_tape *tp, const char *op, const tg_tensor *a, const tg_tensor *b,
                     int *ndim, int64_t *shape) {
    if (!tg_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, ndim, shape)) {
        tg_fail(tp, "%s: shapes %s and %s do not broadcast", op, TG_SHAPE_STR(a),
                TG_SHAPE_STR(b));
        return false;
    }
    return true;
}
