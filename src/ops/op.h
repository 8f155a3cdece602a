/* What every primitive shares: argument checks that report on the tape, and the recording
 * call. A primitive reads
 *
 *   if (!tg_op_begin(tp, "mul", 2, in) || !tg_op_same_float(tp, "mul", 2, in)) return NULL;
 *   out = tg_tensor_alloc(...); kernel(...);
 *   return tg_record(tp, &mul_op, out, 2, in, NULL, 0) ? out : NULL;
 *
 * and its VJP, next to it, is written with primitives. */
#ifndef TG_OP_H
#define TG_OP_H

#include "autograd/node.h"
#include "kernels/kernels.h"

/* The tape exists and every input is a live tensor of it (or persistent). A NULL input returns
 * false quietly when the tape already holds an error (the first message stands). */
bool tg_op_begin(tg_tape *tp, const char *op, int n, tg_tensor *const *in);
/* Every input is f32 or f64 and all have the same dtype. */
bool tg_op_same_float(tg_tape *tp, const char *op, int n, tg_tensor *const *in);
/* Input `which` is an int64 index tensor. */
bool tg_op_index(tg_tape *tp, const char *op, const tg_tensor *idx, const char *which);
/* Normalizes axis for rank ndim, or records "op: axis A is out of range for shape S". */
bool tg_op_axis(tg_tape *tp, const char *op, int *axis, const tg_tensor *x, int ndim);

/* The broadcast shape of a and b into (*ndim, shape), or an error naming the op and shapes. */
bool tg_op_broadcast(tg_tape *tp, const char *op, const tg_tensor *a, const tg_tensor *b,
                     int *ndim, int64_t *shape);

#endif
