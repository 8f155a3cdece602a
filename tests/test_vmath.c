/* Tests of src/kernels/vmath.h, the vectorizable float32 exp, log, log1p, tanh, sigmoid and erf
 * (suite `core`, run as `meson test vmath`).
 *
 * Each function runs in an `omp simd` loop, as in the kernels, over every 997th float bit
 * pattern (all signs, binades, subnormals, infinities and NaNs) and over every float of a few
 * windows around its thresholds and branch points (every few floats in the wider ones). The
 * reference is libm in double, whose error is far below float precision. Every result must be
 * within 2 ulp of the exact value (the ulp of the correctly rounded result), a NaN exactly
 * where the reference is NaN, an infinity or a zero exactly where the correctly rounded
 * reference is one. Then the special values one by one, bit for bit (NaN by class), and the
 * elementwise kernel: its float results are vmath's for every op on both of its paths (plain
 * simd loop and OpenMP), its double results still libm's.
 *
 * With TG_VMATH_EXHAUSTIVE set in the environment, the sweep takes every float (2^32 of them,
 * about a minute per function; the windows are then left out) and prints each function's
 * maximum error. Measured that way (GCC 12, -O3 -march=native, Zen 4; built for plain x86-64
 * or for AVX2 the functions give the same bits):
 *
 *   function   max error (ulp)   at x              results more than 1 ulp off
 *   exp        0.890             0x1.2067a6p+2     0
 *   log        0.840             0x1.69cf3ep+0     0
 *   log1p      0.865             0x1.a1d53ap-2     0
 *   tanh       1.053             0x1.8613ap-1      1458
 *   sigmoid    1.356             -0x1.2641a8p+4    169007
 *   erf        1.288             0x1.d196d6p-1     6312
 *
 * and no result is more than 1 ulp away from the correctly rounded one. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/vmath.h"
#include "testing.h"

enum { BLOCK = 4096, STRIDE = 997 };

/* y[i] = f(x[i]) for i < n in a simd loop, for each function under test. */
#define SIMD_MAP(name, f)                                                                      \
    static void name(int n, const float *restrict x, float *restrict y) {                      \
        _Pragma("omp simd") for (int i = 0; i < n; i++) y[i] = f(x[i]);                        \
    }
SIMD_MAP(map_exp, tg_vexpf)
SIMD_MAP(map_log, tg_vlogf)
SIMD_MAP(map_log1p, tg_vlog1pf)
SIMD_MAP(map_tanh, tg_vtanhf)
SIMD_MAP(map_sigmoid, tg_vsigmoidf)
SIMD_MAP(map_erf, tg_verff)

static double sigmoid_ref(double x) { return 1 / (1 + exp(-x)); }

/* A run of floats to check: from lo up to hi (both finite), every step-th float. */
typedef struct {
    float lo, hi;
    int step;
} window;

/* A special input and its exact result. */
typedef struct {
    float x, want;
} special;

typedef struct {
    const char *name;
    void (*map)(int n, const float *restrict x, float *restrict y);
    float (*one)(float);
    double (*ref)(double);
    tg_kunary op;
    const window *windows;
    int nwindows;
    const special *specials;
    int nspecials;
} vfunc;

/* LIST(type, a, b, ...) expands to a static array of the values and their count. */
#define LIST(type, ...)                                                                        \
    (const type[]){__VA_ARGS__}, (int)(sizeof((const type[]){__VA_ARGS__}) / sizeof(type))

/* Windows cover the branch points, the ends of the polynomial ranges and the overflow,
 * underflow and saturation thresholds; specials give zero signs, infinities, NaN and exact
 * thresholds (NaN wants any NaN). */
static const vfunc funcs[] = {
    {"exp", map_exp, tg_vexpf, exp, TG_U_EXP,
     LIST(window, {-104.5f, -86.0f, 13}, {88.0f, 89.0f, 1}, {0.34f, 0.35f, 3}, {-0.35f, -0.34f, 3}),
     LIST(special, {0.0f, 1.0f}, {-0.0f, 1.0f}, {INFINITY, INFINITY}, {-INFINITY, 0.0f},
          {NAN, NAN}, {0x1.62e42ep+6f, 0x1.ffff08p+127f}, {0x1.62e430p+6f, INFINITY},
          {FLT_MAX, INFINITY}, {-0x1.9fe368p+6f, 0x1p-149f}, {-0x1.9fe36ap+6f, 0.0f},
          {-FLT_MAX, 0.0f})},
    {"log", map_log, tg_vlogf, log, TG_U_LOG,
     LIST(window, {0.0f, 0x1p-124f, 97}, {0.5f, 2.0f, 97}, {0x1p127f, FLT_MAX, 97}),
     LIST(special, {0.0f, -INFINITY}, {-0.0f, -INFINITY}, {1.0f, 0.0f}, {INFINITY, INFINITY},
          {-INFINITY, NAN}, {-1.0f, NAN}, {-0x1p-149f, NAN}, {NAN, NAN})},
    {"log1p", map_log1p, tg_vlog1pf, log1p, TG_U_LOG1P,
     LIST(window, {-1.0f, -0.99f, 1}, {-0.3f, -0.29f, 3}, {0.41f, 0.42f, 3}, {0.99f, 1.01f, 3}),
     LIST(special, {0.0f, 0.0f}, {-0.0f, -0.0f}, {0x1p-149f, 0x1p-149f},
          {-0x1p-149f, -0x1p-149f}, {-1.0f, -INFINITY}, {-2.0f, NAN}, {-INFINITY, NAN},
          {INFINITY, INFINITY}, {FLT_MAX, 0x1.62e43p+6f}, {NAN, NAN})},
    {"tanh", map_tanh, tg_vtanhf, tanh, TG_U_TANH,
     LIST(window, {0.7f, 0.8f, 11}, {8.0f, 9.5f, 11}),
     LIST(special, {0.0f, 0.0f}, {-0.0f, -0.0f}, {0x1p-149f, 0x1p-149f},
          {-0x1p-149f, -0x1p-149f}, {9.1f, 1.0f}, {-9.1f, -1.0f}, {INFINITY, 1.0f},
          {-INFINITY, -1.0f}, {NAN, NAN})},
    {"sigmoid", map_sigmoid, tg_vsigmoidf, sigmoid_ref, TG_U_SIGMOID,
     LIST(window, {-104.5f, -86.0f, 13}, {-17.5f, -16.0f, 5}, {-0.36f, -0.33f, 7},
          {15.0f, 18.0f, 13}),
     LIST(special, {0.0f, 0.5f}, {-0.0f, 0.5f}, {INFINITY, 1.0f}, {-INFINITY, 0.0f}, {NAN, NAN},
          {-0x1.9fe368p+6f, 0x1p-149f}, {-0x1.9fe36ap+6f, 0.0f}, {20.0f, 1.0f})},
    {"erf", map_erf, tg_verff, erf, TG_U_ERF,
     LIST(window, {0.85f, 0.95f, 11}, {3.8f, 4.1f, 7}),
     LIST(special, {0.0f, 0.0f}, {-0.0f, -0.0f}, {4.0f, 1.0f}, {-4.0f, -1.0f},
          {INFINITY, 1.0f}, {-INFINITY, -1.0f}, {NAN, NAN})},
};
enum { NFUNCS = (int)(sizeof funcs / sizeof funcs[0]) };

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* What a sweep found: the largest error and where, how many results were more than 1 ulp
 * off, and the largest distance in floats from the correctly rounded result. */
typedef struct {
    double err;
    float x, got;
    double want;
    int64_t over1, dist;
} worst;

/* Floats in order as integers (-0 and +0 both 0) and back. */
static int64_t ordered(float f) {
    const uint32_t u = to_bits(f);
    return u >> 31 ? -(int64_t)(u & 0x7fffffffu) : (int64_t)u;
}

static float from_ordered(int64_t i) {
    return i < 0 ? from_bits((uint32_t)-i | 0x80000000u) : from_bits((uint32_t)i);
}

/* Error of got against the exact value want, in ulps of the correctly rounded result; +inf
 * when got is NaN, an infinity or a zero where the reference is not (or the other way round). */
static double ulp_error(float got, double want) {
    const float rounded = (float)want;
    if (isnan(rounded) || isnan(got)) return isnan(rounded) && isnan(got) ? 0 : INFINITY;
    if (isinf(rounded) || isinf(got)) return rounded == got ? 0 : INFINITY;
    if ((rounded == 0) != (got == 0)) return INFINITY;
    const double ulp = fabsf(rounded) < FLT_MIN ? 0x1p-149 : ldexp(1.0, ilogb(rounded) - 23);
    return fabs((double)got - want) / ulp;
}

/* Checks f on the n inputs x, folding the results into w. */
static void check_block(const vfunc *f, int n, const float *x, worst *w) {
    float y[BLOCK];
    f->map(n, x, y);
    for (int i = 0; i < n; i++) {
        const double want = f->ref((double)x[i]);
        const double err = ulp_error(y[i], want);
        if (err > 1) w->over1++;
        if (isfinite(err) && !isnan(y[i])) {
            const int64_t d = llabs(ordered(y[i]) - ordered((float)want));
            if (d > w->dist) w->dist = d;
        }
        if (!(err <= w->err)) {
            w->err = err;
            w->x = x[i];
            w->got = y[i];
            w->want = want;
        }
    }
}

/* Checks f on every stride-th bit pattern. */
static void sweep_bits(const vfunc *f, uint64_t stride, worst *w) {
    float x[BLOCK];
    int n = 0;
    for (uint64_t u = 0; u <= UINT32_MAX; u += stride) {
        x[n++] = from_bits((uint32_t)u);
        if (n == BLOCK) {
            check_block(f, n, x, w);
            n = 0;
        }
    }
    check_block(f, n, x, w);
}

/* Checks f on every step-th float of the window. */
static void sweep_window(const vfunc *f, window win, worst *w) {
    float x[BLOCK];
    int n = 0;
    for (int64_t i = ordered(win.lo); i <= ordered(win.hi); i += win.step) {
        x[n++] = from_ordered(i);
        if (n == BLOCK) {
            check_block(f, n, x, w);
            n = 0;
        }
    }
    check_block(f, n, x, w);
}

START_TEST(test_accuracy) {
    const vfunc *f = &funcs[_i];
    const bool exhaustive = getenv("TG_VMATH_EXHAUSTIVE") != NULL;
    worst w = {0, 0, 0, 0, 0, 0};
    sweep_bits(f, exhaustive ? 1 : STRIDE, &w);
    for (int k = 0; k < f->nwindows && !exhaustive; k++) sweep_window(f, f->windows[k], &w);
    if (exhaustive)
        printf("%-8s max %.3f ulp at %a; %lld results more than 1 ulp off; at most %lld ulp from "
               "the correctly rounded result\n",
               f->name, w.err, w.x, (long long)w.over1, (long long)w.dist);
    ck_assert_msg(w.err <= 2.0, "%s(%a) = %a, want %a: %.3f ulp", f->name, w.x, w.got,
                  (float)w.want, w.err);
}
END_TEST

START_TEST(test_specials) {
    const vfunc *f = &funcs[_i];
    for (int k = 0; k < f->nspecials; k++) {
        const special s = f->specials[k];
        float in = s.x, got;
        f->map(1, &in, &got);
        if (isnan(s.want)) {
            ck_assert_msg(isnan(got), "%s(%a) = %a, want NaN", f->name, s.x, got);
        } else {
            ck_assert_msg(to_bits(got) == to_bits(s.want), "%s(%a) = %a, want %a", f->name, s.x,
                          got, s.want);
        }
        ck_assert_msg(to_bits(f->one(s.x)) == to_bits(got) || (isnan(got) && isnan(f->one(s.x))),
                      "%s(%a): the scalar call differs from the simd loop", f->name, s.x);
    }
}
END_TEST

/* The elementwise kernel on n floats spread over [-12, 12) (log and log1p get NaN below their
 * domains) against vmath bit for bit, and on the same values as doubles against libm. (A
 * passing ck_assert costs a write to Check's log, so elements are compared with plain ifs.) */
static void check_kernel(const vfunc *f, int64_t n) {
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    double *xd = malloc((size_t)n * sizeof *xd), *yd = malloc((size_t)n * sizeof *yd);
    ck_assert(x && y && xd && yd);
    for (int64_t i = 0; i < n; i++) {
        x[i] = -12.0f + 24.0f * (float)i / (float)n;
        xd[i] = x[i];
    }
    tg_k_unary(f->op, TG_F32, n, x, y, 0, 0);
    tg_k_unary(f->op, TG_F64, n, xd, yd, 0, 0);
    for (int64_t i = 0; i < n; i++) {
        const float want = f->one(x[i]);
        if (to_bits(y[i]) != to_bits(want) && !(isnan(y[i]) && isnan(want)))
            ck_abort_msg("%s kernel, n = %lld: f32 at %a gives %a, vmath %a", f->name,
                         (long long)n, x[i], y[i], want);
        const double wantd = f->ref(xd[i]);
        if (yd[i] != wantd && !(isnan(yd[i]) && isnan(wantd)))
            ck_abort_msg("%s kernel, n = %lld: f64 at %a gives %a, libm %a", f->name,
                         (long long)n, xd[i], yd[i], wantd);
    }
    free(x);
    free(y);
    free(xd);
    free(yd);
}

START_TEST(test_kernel) {
    check_kernel(&funcs[_i], 1000);
    check_kernel(&funcs[_i], TG_PARALLEL_MIN);
}
END_TEST

static Suite *vmath_suite(void) {
    Suite *s = suite_create("vmath");
    TCase *tc = tcase_create("vmath");
    tcase_set_timeout(tc, getenv("TG_VMATH_EXHAUSTIVE") ? 3600 : 120);
    tcase_add_loop_test(tc, test_specials, 0, NFUNCS);
    tcase_add_loop_test(tc, test_accuracy, 0, NFUNCS);
    tcase_add_loop_test(tc, test_kernel, 0, NFUNCS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return run_suite(vmath_suite(), CK_ENV);
}
