/* Elementwise kernels: unary maps with scalar parameters, broadcasting binary maps, where, and
 * gradient accumulation. Types come from macros instantiated for float and double; <tgmath.h>
 * picks expf or exp by argument type, and the float transcendentals go to vmath.h instead. */
#include <tgmath.h>

#include "kernels/iter.h"
#include "kernels/kernels.h"
#include "kernels/vmath.h"
#include "tensor/shape.h"

/* exp, log, log1p, tanh, sigmoid and erf of v: vmath.h's branch-free versions for float (within
 * 2 ulp), which GCC vectorizes in the simd loops below where libm calls would keep them scalar;
 * libm for double, where gradchecks run. */
#define V_EXP(v) _Generic((v), float: tg_vexpf(v), default: exp(v))
#define V_LOG(v) _Generic((v), float: tg_vlogf(v), default: log(v))
#define V_LOG1P(v) _Generic((v), float: tg_vlog1pf(v), default: log1p(v))
#define V_TANH(v) _Generic((v), float: tg_vtanhf(v), default: tanh(v))
#define V_SIGMOID(v) _Generic((v), float: tg_vsigmoidf(v), default: 1 / (1 + exp(-(v))))
#define V_ERF(v) _Generic((v), float: tg_verff(v), default: erf(v))

/* Loops below TG_PARALLEL_MIN stay out of OpenMP altogether: a parallel region whose `if`
 * clause is false still sets up (and allocates) a team, which costs more than a small loop. */
#define MAP_LOOP(T, EXPR)                                                                     \
    do {                                                                                      \
        const T *restrict xs = x;                                                             \
        T *restrict ys = y;                                                                   \
        const T k0 = (T)c0, k1 = (T)c1;                                                       \
        (void)k0;                                                                             \
        (void)k1;                                                                             \
        if (n >= TG_PARALLEL_MIN) {                                                           \
            _Pragma("omp parallel for simd")                                                  \
            for (int64_t i = 0; i < n; i++) {                                                 \
                const T v = xs[i];                                                            \
                ys[i] = (EXPR);                                                               \
            }                                                                                 \
        } else {                                                                              \
            _Pragma("omp simd")                                                               \
            for (int64_t i = 0; i < n; i++) {                                                 \
                const T v = xs[i];                                                            \
                ys[i] = (EXPR);                                                               \
            }                                                                                 \
        }                                                                                     \
    } while (0)

#define UNARY_SWITCH(T)                                                                       \
    switch (op) {                                                                             \
    case TG_U_NEG: MAP_LOOP(T, -v); break;                                                    \
    case TG_U_EXP: MAP_LOOP(T, V_EXP(v)); break;                                              \
    case TG_U_LOG: MAP_LOOP(T, V_LOG(v)); break;                                              \
    case TG_U_SQRT: MAP_LOOP(T, sqrt(v)); break;                                              \
    case TG_U_RSQRT: MAP_LOOP(T, (T)1 / sqrt(v)); break;                                      \
    case TG_U_ABS: MAP_LOOP(T, fabs(v)); break;                                               \
    case TG_U_SQUARE: MAP_LOOP(T, v * v); break;                                              \
    case TG_U_TANH: MAP_LOOP(T, V_TANH(v)); break;                                            \
    case TG_U_SIGMOID: MAP_LOOP(T, V_SIGMOID(v)); break;                                      \
    case TG_U_RELU: MAP_LOOP(T, v < 0 ? (T)0 : v); break;                                     \
    case TG_U_SIGN: MAP_LOOP(T, (T)((v > 0) - (v < 0))); break;                               \
    case TG_U_LOG1P: MAP_LOOP(T, V_LOG1P(v)); break;                                          \
    case TG_U_ERF: MAP_LOOP(T, V_ERF(v)); break;                                              \
    case TG_U_POW: MAP_LOOP(T, pow(v, k0)); break;                                            \
    case TG_U_CLAMP: MAP_LOOP(T, v < k0 ? k0 : (v > k1 ? k1 : v)); break;                     \
    case TG_U_ADD_S: MAP_LOOP(T, v + k0); break;                                              \
    case TG_U_SUB_S: MAP_LOOP(T, v - k0); break;                                              \
    case TG_U_MUL_S: MAP_LOOP(T, v * k0); break;                                              \
    case TG_U_DIV_S: MAP_LOOP(T, v / k0); break;                                              \
    case TG_U_RSUB_S: MAP_LOOP(T, k0 - v); break;                                             \
    case TG_U_RDIV_S: MAP_LOOP(T, k0 / v); break;                                             \
    case TG_U_GT_S: MAP_LOOP(T, (T)(v > k0)); break;                                          \
    case TG_U_GE_S: MAP_LOOP(T, (T)(v >= k0)); break;                                         \
    case TG_U_LT_S: MAP_LOOP(T, (T)(v < k0)); break;                                          \
    case TG_U_LE_S: MAP_LOOP(T, (T)(v <= k0)); break;                                         \
    case TG_U_EQ_S: MAP_LOOP(T, (T)(v == k0)); break;                                         \
    }

void tg_k_unary(tg_kunary op, tg_dtype dt, int64_t n, const void *x, void *y, double c0,
                double c1) {
    if (dt == TG_F32) {
        UNARY_SWITCH(float)
    } else {
        UNARY_SWITCH(double)
    }
}

/* One innermost run of a binary op, specialised on which operand is broadcast (stride 0). */
#define BIN_RUN(T, EXPR)                                                                      \
    do {                                                                                      \
        const T *restrict pa = (const T *)a + it.off[1];                                      \
        const T *restrict pb = (const T *)b + it.off[2];                                      \
        T *restrict po = (T *)out + it.off[0];                                                \
        const int64_t m = it.inner, ia = it.inner_stride[1], ib = it.inner_stride[2];         \
        if (ia == 1 && ib == 1) {                                                             \
            for (int64_t i = 0; i < m; i++) { const T u = pa[i], v = pb[i]; po[i] = (EXPR); } \
        } else if (ia == 0 && ib == 1) {                                                      \
            const T u = pa[0];                                                                \
            for (int64_t i = 0; i < m; i++) { const T v = pb[i]; po[i] = (EXPR); }            \
        } else if (ia == 1 && ib == 0) {                                                      \
            const T v = pb[0];                                                                \
            for (int64_t i = 0; i < m; i++) { const T u = pa[i]; po[i] = (EXPR); }            \
        } else {                                                                              \
            for (int64_t i = 0; i < m; i++) {                                                 \
                const T u = pa[i * ia], v = pb[i * ib];                                       \
                po[i] = (EXPR);                                                               \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* NaN propagates through maximum and minimum, as in PyTorch. */
#define BINARY_SWITCH(T)                                                                      \
    switch (op) {                                                                             \
    case TG_B_ADD: BIN_RUN(T, u + v); break;                                                  \
    case TG_B_SUB: BIN_RUN(T, u - v); break;                                                  \
    case TG_B_MUL: BIN_RUN(T, u * v); break;                                                  \
    case TG_B_DIV: BIN_RUN(T, u / v); break;                                                  \
    case TG_B_MAX: BIN_RUN(T, (u > v || u != u) ? u : v); break;                              \
    case TG_B_MIN: BIN_RUN(T, (u < v || u != u) ? u : v); break;                              \
    case TG_B_GT: BIN_RUN(T, (T)(u > v)); break;                                              \
    case TG_B_GE: BIN_RUN(T, (T)(u >= v)); break;                                             \
    case TG_B_LT: BIN_RUN(T, (T)(u < v)); break;                                              \
    case TG_B_LE: BIN_RUN(T, (T)(u <= v)); break;                                             \
    case TG_B_EQ: BIN_RUN(T, (T)(u == v)); break;                                             \
    case TG_B_TANH_GRAD: BIN_RUN(T, v * ((T)1 - u * u)); break;                               \
    case TG_B_SIGMOID_GRAD: BIN_RUN(T, v * (u * ((T)1 - u))); break;                          \
    case TG_B_RELU_GRAD: BIN_RUN(T, u > 0 ? v : (T)0); break;                                 \
    }

void tg_k_binary(tg_kbinary op, tg_dtype dt, int ndim, const int64_t *shape, const int64_t *sa,
                 const int64_t *sb, const void *a, const void *b, void *out) {
    int64_t strides[3][TG_MAX_DIMS];
    tg_contiguous_strides(ndim, shape, strides[0]);
    for (int d = 0; d < ndim; d++) {
        strides[1][d] = sa[d];
        strides[2][d] = sb[d];
    }
    tg_iter base;
    if (!tg_iter_init(&base, ndim, shape, 3, strides)) return;
    TG_ITER_FOR_EACH_RUN(base, 0, {
        if (dt == TG_F32) {
            BINARY_SWITCH(float)
        } else {
            BINARY_SWITCH(double)
        }
    });
}

#define WHERE_RUN(T)                                                                          \
    do {                                                                                      \
        const T *pm = (const T *)mask + it.off[1], *pa = (const T *)a + it.off[2];            \
        const T *pb = (const T *)b + it.off[3];                                               \
        T *po = (T *)out + it.off[0];                                                         \
        const int64_t im = it.inner_stride[1], ia = it.inner_stride[2];                       \
        const int64_t ib = it.inner_stride[3];                                                \
        for (int64_t i = 0; i < it.inner; i++) po[i] = pm[i * im] != 0 ? pa[i * ia] : pb[i * ib]; \
    } while (0)

void tg_k_where(tg_dtype dt, int ndim, const int64_t *shape, const int64_t *sm,
                const int64_t *sa, const int64_t *sb, const void *mask, const void *a,
                const void *b, void *out) {
    int64_t strides[4][TG_MAX_DIMS];
    tg_contiguous_strides(ndim, shape, strides[0]);
    for (int d = 0; d < ndim; d++) {
        strides[1][d] = sm[d];
        strides[2][d] = sa[d];
        strides[3][d] = sb[d];
    }
    tg_iter base;
    if (!tg_iter_init(&base, ndim, shape, 4, strides)) return;
    TG_ITER_FOR_EACH_RUN(base, 0, {
        if (dt == TG_F32) WHERE_RUN(float);
        else WHERE_RUN(double);
    });
}

#define ACC_LOOP(T)                                                                           \
    do {                                                                                      \
        T *restrict pa = acc;                                                                 \
        const T *restrict px = x;                                                             \
        if (n >= TG_PARALLEL_MIN) {                                                           \
            _Pragma("omp parallel for simd")                                                  \
            for (int64_t i = 0; i < n; i++) pa[i] += px[i];                                   \
        } else {                                                                              \
            _Pragma("omp simd")                                                               \
            for (int64_t i = 0; i < n; i++) pa[i] += px[i];                                   \
        }                                                                                     \
    } while (0)

void tg_k_accumulate(tg_dtype dt, int64_t n, void *acc, const void *x) {
    if (dt == TG_F32) ACC_LOOP(float);
    else ACC_LOOP(double);
}
