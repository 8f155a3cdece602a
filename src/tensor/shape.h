/* Shape arithmetic shared by every layer (kernels included): validation, broadcasting, strides
 * and axes. Shapes are int64 arrays of rank 0..TG_MAX_DIMS. */
#ifndef TG_SHAPE_H
#define TG_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tapegrad.h"

int64_t tg_shape_numel(int ndim, const int64_t *shape);
bool tg_shape_equal(int ndim_a, const int64_t *a, int ndim_b, const int64_t *b);
/* Validates ndim and dims (>= 0, numel without overflow); on failure writes why into err. */
bool tg_shape_valid(int ndim, const int64_t *shape, char *err, size_t err_size);
/* NumPy broadcast of two shapes into out (rank max(na, nb)); false when they do not broadcast. */
bool tg_broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                         int64_t *out);
/* Whether `from` broadcasts to exactly `to` (rank nfrom <= nto; size-1 dims stretch, missing
 * leading dims are added): the shapes tg_expand accepts and tg_sum_to reverses. */
bool tg_shape_broadcasts_to(int nfrom, const int64_t *from, int nto, const int64_t *to);
/* Row-major element strides of a contiguous shape. */
void tg_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
/* Strides for reading `shape` (rank ndim) broadcast to out_shape (rank out_ndim >= ndim):
 * right-aligned, 0 where broadcast or missing. */
void tg_broadcast_strides(int ndim, const int64_t *shape, int out_ndim, const int64_t *out_shape,
                          int64_t *strides);
/* Normalizes a possibly negative axis against ndim; -1 when out of range. */
int tg_normalize_axis(int axis, int ndim);

#endif
