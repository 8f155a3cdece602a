/* Vectorizable float32 transcendentals: exp, log, log1p, tanh, sigmoid and erf as static inline,
 * branch-free functions that GCC turns into SIMD code inside `#pragma omp simd` loops, where
 * calls into libm (expf, tanhf, ...) would keep the loop scalar.
 *
 * Each function reduces its argument with integer operations on the float's bits, evaluates a
 * polynomial, and picks special results (NaN, infinities, zeros, saturation) with selects on
 * values already computed, never with an early return, so every lane runs the same code.
 * Bit casts go through memcpy; signed right shifts and unsigned-to-signed conversions assume
 * two's complement, as GCC and Clang define them. Only plain float operations are used, and
 * the project compiles with -std=c11, which leaves contraction into FMA off, so results are the
 * same with or without -march=native (contracted, as under -std=gnu11, a few bits change and
 * the bounds below still hold). The error-free sums (Fast2Sum, TwoSum) rely on the compiler not
 * reassociating float arithmetic: no -ffast-math. Every function is within 2 ulp
 * of the correctly rounded result over all floats (tests/test_vmath.c checks a dense sweep; the
 * exhaustive figures are in its header comment) and exact on special values.
 *
 * Polynomial coefficients are weighted minimax fits (Lawson iteration on Chebyshev nodes, each
 * coefficient rounded to float with the higher ones refitted); the interval and the bound of
 * each fit are given next to it. */
#ifndef TG_KERNELS_VMATH_H
#define TG_KERNELS_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The bits of x. */
static inline uint32_t vm_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* The float with bits u. */
static inline float vm_float(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* |x| with the sign of s (s's sign bit, also for zeros and NaN). */
static inline float vm_copysign(float x, float s) {
    return vm_float((vm_bits(x) & 0x7fffffffu) | (vm_bits(s) & 0x80000000u));
}

/* c ? a : b for values already computed, as a blend of their bits. A conditional expression
 * lets GCC sink the computation of the unused arm into a branch, and a branch holding float
 * arithmetic is if-converted for the vectorizer only with masked instructions (AVX-512), so
 * on other targets the loop would stay scalar. */
static inline uint32_t vm_select_bits(int c, uint32_t a, uint32_t b) {
    const uint32_t m = 0u - (uint32_t)(c != 0);
    return (a & m) | (b & ~m);
}

static inline float vm_select(int c, float a, float b) {
    return vm_float(vm_select_bits(c, vm_bits(a), vm_bits(b)));
}

/* 2^k for k in [-126, 127], built from the exponent bits. */
static inline float vm_pow2(int32_t k) { return vm_float((uint32_t)(k + 127) << 23); }

/* ln 2 split for Cody-Waite reduction: LN2_HI has 15 significant bits, so k * LN2_HI is exact
 * for |k| < 512; LN2_HI + LN2_LO is ln 2 within 6e-14. */
#define VM_LN2_HI 0x1.62e4p-1f
#define VM_LN2_LO 0x1.7f7d1cp-20f

/* x = k ln2 + r with |r| <= ln2/2 (plus a rounding), as k and q = e^r - 1. */
typedef struct {
    float q;
    int32_t k;
} vm_exp_parts;

/* The parts of e^x for x in [-110, 90] (callers clamp; NaN must not reach here). k comes from
 * rounding x log2(e) with the 1.5 * 2^23 trick; r = hi - lo stays split, so q = hi + (p - lo)
 * loses nothing to the subtraction. e^r = 1 + r + r^2 P(r), P fitted on |r| <= 0.347 with
 * |e^r - (1 + r + r^2 P(r))| / e^r < 2^-28.2. */
static inline vm_exp_parts vm_exp_reduce(float x) {
    const float shift = 0x1.8p23f;
    const float z = x * 0x1.715476p+0f + shift;
    const int32_t k = (int32_t)vm_bits(z) - (int32_t)vm_bits(shift);
    const float kf = z - shift;
    const float hi = x - kf * VM_LN2_HI;
    const float lo = kf * VM_LN2_LO;
    const float r = hi - lo;
    const float p = r * r *
                    (0x1.fffffcp-2f +
                     r * (0x1.555492p-3f +
                          r * (0x1.5558b8p-5f + r * (0x1.1239b2p-7f + r * 0x1.6a45d4p-10f))));
    return (vm_exp_parts){hi + (p - lo), k};
}

/* e^x. Overflows to +inf above 88.7228, underflows through the subnormals to +0 below
 * -103.97; exp(NaN) = NaN, exp(-inf) = +0. The scale 2^k is applied as two normal powers of two
 * so that a subnormal result is rounded once. */
static inline float tg_vexpf(float x) {
    const float xc = vm_select(x < 90.0f, vm_select(x > -110.0f, x, -110.0f), 90.0f);
    const vm_exp_parts e = vm_exp_reduce(xc);
    const int32_t k1 = e.k / 2, k2 = e.k - k1;
    const float y = (1.0f + e.q) * vm_pow2(k1) * vm_pow2(k2);
    const float nan = x + x;
    return vm_select(x == x, y, nan);
}

/* log(1 + f) for f = m - 1, m in [sqrt(2)/2, sqrt(2)), as f - f^2/2 + s (f^2/2 + R(s^2)) with
 * s = f / (2 + f); the caller adds k ln 2 and the correction c (a few ulp of f at most) in the
 * order that keeps the small terms together. R(z) = z (A1 + z (A2 + z A3)) fitted to
 * 2 (atanh(s)/s - 1) on z <= 0.02944 with error < 2^-30.2 relative to log(1 + f). */
static inline float vm_log_finish(float f, float kf, float c) {
    const float s = f / (2.0f + f);
    const float z = s * s;
    const float R = z * (0x1.55557ap-1f + z * (0x1.995ed4p-2f + z * 0x1.31e0d8p-2f));
    const float hfsq = 0.5f * f * f;
    return kf * VM_LN2_HI - ((hfsq - (s * (hfsq + R) + (kf * VM_LN2_LO + c))) - f);
}

/* u = 2^k m with m in [sqrt(2)/2, sqrt(2)), as k and f = m - 1. */
typedef struct {
    float f;
    int32_t k;
} vm_log_parts;

/* The parts of u given by its bits: those of a positive normal float, possibly with the
 * exponent field lowered below zero (the sign bit then set, which the arithmetic shift reads
 * as a negative exponent). Other lanes get garbage that the caller discards. */
static inline vm_log_parts vm_log_reduce(uint32_t bits) {
    const uint32_t ix = bits + (0x3f800000u - 0x3f3504f3u);
    const int32_t k = ((int32_t)ix >> 23) - 127;
    const float m = vm_float((ix & 0x007fffffu) + 0x3f3504f3u);
    return (vm_log_parts){m - 1.0f, k};
}

/* log(x): -inf at +-0, NaN below 0 and at NaN, +inf at +inf. A subnormal x is scaled by 2^23
 * and 23 taken off the exponent field of the product, so one select on the bits covers both
 * (a second select on the same condition would let GCC split the loop body into branches). */
static inline float tg_vlogf(float x) {
    const uint32_t scaled = vm_bits(x * 0x1p23f) - (23u << 23);
    const vm_log_parts l = vm_log_reduce(vm_select_bits(x < 0x1p-126f, scaled, vm_bits(x)));
    const float y = vm_log_finish(l.f, (float)l.k, 0.0f);
    const float twice = x + x;
    const float special = vm_select(x == 0, -INFINITY, vm_select(x < 0, NAN, twice));
    return vm_select((x > 0) & (x < INFINITY), y, special);
}

/* log(1 + x): -inf at -1, NaN below -1 and at NaN, +inf at +inf, +-0 kept. u = 1 + x is
 * reduced like log's argument, and the rounding error of that sum (exact by Fast2Sum) enters
 * as log(1 + c/u) ~ c/u. */
static inline float tg_vlog1pf(float x) {
    const float u = 1.0f + x;
    const float c_small = x - (u - 1.0f);
    const float c_large = 1.0f - (u - x);
    const float c = vm_select((x < 1.0f) & (x > -1.0f), c_small, c_large);
    const vm_log_parts l = vm_log_reduce(vm_bits(u));
    const float y = vm_log_finish(l.f, (float)l.k, c / u);
    const float twice = x + x;
    const float special = vm_select(x == -1.0f, -INFINITY, vm_select(x < -1.0f, NAN, twice));
    return vm_select((x > -1.0f) & (x < INFINITY) & (x != 0), y, special);
}

/* tanh(x), computed for a = |x| and given the sign of x, so tanh(-0) = -0; tanh(NaN) = NaN.
 * a < 0.75: a + a^3 T(a^2), T fitted to (tanh(a)/a - 1)/a^2 (error < 2^-29 relative to tanh).
 * Above: 1 - 2 / (e^2a + 1) with e^2a = 2^k (1 + q) and the sum formed as (2^k + 1) + 2^k q,
 * one rounding while 2^k + 1 is exact (k < 24; beyond, the quotient is below 2^-23 and its
 * error no longer shows); 2 / (e^2a + 1) <= 0.37 there, so its errors shrink in the
 * difference. a is clamped at 9.1, where the result is 1 in float. */
static inline float tg_vtanhf(float x) {
    const float a = vm_float(vm_bits(x) & 0x7fffffffu);
    const float s = a * a;
    const float T =
        -0x1.55554ap-2f +
        s * (0x1.110ddap-3f +
             s * (-0x1.b98108p-5f +
                  s * (0x1.5f9082p-6f + s * (-0x1.f662fep-8f + s * 0x1.c8975p-10f))));
    const float small = a + a * s * T;
    const float ac = vm_select(a < 9.1f, a, 9.1f);
    const vm_exp_parts e = vm_exp_reduce(ac + ac);
    const float t = vm_pow2(e.k);
    const float big = 1.0f - 2.0f / ((t + 1.0f) + t * e.q);
    return vm_copysign(vm_select(a >= 0.75f, big, small), x);
}

/* 1 / (1 + e^-x) without overflow. For a = |x| (clamped at 104, beyond which the results are
 * 0 and 1 in float) with e^a = 2^k (1 + q): sigmoid(-a) = 1 / D with D = 1 + 2^k + 2^k q,
 * summed as (1 + 2^k) + 2^k q while 1 + 2^k is exact (k < 24), else as (1 + 2^k q) + 2^k. The
 * last sum's rounding error d is kept (TwoSum) and removed after the division,
 * 1 / (D + d) ~ y - y^2 d with y = 1 / D, so only the division's rounding is left. From
 * k = 100 on the 1 no longer counts: the divisor is built with 2^100 and the quotient scaled by
 * 2^(100 - k) after it, which rounds subnormal results once. sigmoid(a) = 1 - sigmoid(-a), where
 * sigmoid(-a) <= 1/2 keeps the difference accurate. sigmoid(NaN) = NaN. */
static inline float tg_vsigmoidf(float x) {
    const float a = vm_float(vm_bits(x) & 0x7fffffffu);
    const float ac = vm_select(a < 104.0f, a, 104.0f);
    const vm_exp_parts e = vm_exp_reduce(ac);
    const int32_t kc = e.k < 100 ? e.k : 100;
    const float t = vm_pow2(kc);
    const float tq = t * e.q;
    const float s1 = 1.0f + vm_select(kc < 24, t, tq), s2 = vm_select(kc < 24, tq, t);
    const float D = s1 + s2;
    const float s2r = D - s1;
    const float d = (s1 - (D - s2r)) + (s2 - s2r);
    const float y = 1.0f / D;
    const float neg = (y - y * (y * d)) * vm_pow2(kc - e.k);
    const float pos = 1.0f - neg;
    const float nan = x + x;
    return vm_select(x == x, vm_select(x < 0, neg, pos), nan);
}

/* erf(x). |x| < 0.9: x + x E(x^2), E fitted to erf(x)/x - 1 (error < 2^-30 relative to erf).
 * Above: 1 - e^(-t^2 + Q(t - 2.5)) for t = min(|x|, 4) with the sign of x, Q fitted to
 * log(erfc(t)) + t^2 on [0.9, 4] (error < 2^-29 weighted by erfc(t)); erf is 1 in float from
 * 3.92 on. erf(+-0) = +-0, erf(NaN) = NaN. */
static inline float tg_verff(float x) {
    const float ax = vm_float(vm_bits(x) & 0x7fffffffu);
    const float s = x * x;
    const float E =
        0x1.06eba8p-3f +
        s * (-0x1.81274p-2f +
             s * (0x1.ce2d6p-4f +
                  s * (-0x1.b80062p-6f +
                       s * (0x1.543f2ap-8f + s * (-0x1.a583bcp-11f + s * 0x1.4d2864p-14f)))));
    const float small = x + x * E;
    const float t = vm_select(ax < 4.0f, ax, 4.0f);
    const float v = t - 2.5f;
    const float Q =
        -0x1.8e8bbp+0f +
        v * (-0x1.692856p-2f +
             v * (0x1.cbf7e4p-5f +
                  v * (-0x1.5c14f8p-7f +
                       v * (0x1.508e2cp-9f + v * (-0x1.9ac902p-14f + v * 0x1.9d7e46p-13f)))));
    const float big = vm_copysign(1.0f - tg_vexpf(Q - t * t), x);
    return vm_select(ax >= 0.9f, big, small);
}

#endif
