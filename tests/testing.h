/* Helpers shared by the Check test programs in tests/: assertions on error messages and tapes,
 * comparisons against the PyTorch golden fixtures (golden.h), the printed model tree, and
 * running a suite. Header-only (static inline): a helper a program does not call is not
 * compiled into it, so only the programs that call the golden helpers need golden_dep. */
#ifndef TG_TEST_TESTING_H
#define TG_TEST_TESTING_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "tapegrad.h"

/* Asserts that msg is set and contains `word`. */
#define CK_HAS(msg, word)                                                                      \
    do {                                                                                      \
        const char *m_ = (msg);                                                               \
        ck_assert_msg(m_ && strstr(m_, word), "expected \"%s\" in the message: %s", word,     \
                      m_ ? m_ : "(none)");                                                    \
    } while (0)

/* Asserts that expr gives NULL and that the message it leaves on the tape tp (cleared first)
 * contains `word`. */
#define CK_FAILS(tp, expr, word)                                                               \
    do {                                                                                      \
        tg_tape_clear_error(tp);                                                              \
        ck_assert_ptr_null(expr);                                                             \
        CK_HAS(tg_tape_error(tp), word);                                                      \
    } while (0)

/* Asserts that the tape tp has recorded no error. */
#define CK_TAPE_OK(tp) ck_assert_msg(tg_tape_error(tp) == NULL, "tape error: %s", tg_tape_error(tp))

/* Asserts that got is a tensor matching value `key` of case cs in the fixtures g within rtol
 * (golden_close's rule); the message names the caller's line, the case, the key and got's
 * dtype. Use through GOLDEN_EXPECT. */
static inline void golden_expect_at(const golden *g, const char *cs, const char *key,
                                    const tg_tensor *got, double rtol, int line) {
    ck_assert_msg(got != NULL, "line %d: %s/%s: no tensor to compare", line, cs, key);
    tg_tensor *want = golden_tensor(g, cs, key, TG_F64);
    ck_assert_msg(want != NULL, "line %d: case %s has no %s", line, cs, key);
    char why[256];
    bool ok = golden_close(got, want, rtol, why, sizeof why);
    tg_tensor_free(want);
    ck_assert_msg(ok, "line %d: %s/%s (%s): %s", line, cs, key,
                  tg_dtype_name(tg_tensor_dtype(got)), why);
}
#define GOLDEN_EXPECT(g, cs, key, got, rtol)                                                  \
    golden_expect_at((g), (cs), (key), (got), (rtol), __LINE__)

/* golden_expect_at with the tolerance of got's dtype: GOLDEN_RTOL_F64 for f64, GOLDEN_RTOL_F32
 * otherwise. Use through GOLDEN_EXPECT_DTYPE. */
static inline void golden_expect_dtype_at(const golden *g, const char *cs, const char *key,
                                          const tg_tensor *got, int line) {
    bool f64 = got && tg_tensor_dtype(got) == TG_F64;
    golden_expect_at(g, cs, key, got, f64 ? GOLDEN_RTOL_F64 : GOLDEN_RTOL_F32, line);
}
#define GOLDEN_EXPECT_DTYPE(g, cs, key, got)                                                  \
    golden_expect_dtype_at((g), (cs), (key), (got), __LINE__)

/* Value `key` of case cs in the fixtures g as a new persistent tensor (floats in dt, indices
 * as i64), requiring grad when requires_grad; NULL when the case has no such key. */
static inline tg_tensor *golden_leaf(const golden *g, const char *cs, const char *key, tg_dtype dt,
                                     bool requires_grad) {
    tg_tensor *t = golden_tensor(g, cs, key, dt);
    if (t && requires_grad) ck_assert_int_eq(tg_set_requires_grad(t, true), 0);
    return t;
}

/* Loads the fixture file at path, asserting that it loaded; for unchecked fixtures. */
static inline golden *golden_must_load(const char *path) {
    golden *g = golden_load(path);
    ck_assert_msg(g != NULL, "cannot load the fixtures %s", path);
    return g;
}

/* Calls check(name, dtype, rtol) for every case of g in file order, with the dtype's golden
 * tolerance (dtype f64 or f32); returns the number of cases. */
static inline int golden_each_case(const golden *g, tg_dtype dtype,
                                   void (*check)(const char *name, tg_dtype dtype, double rtol)) {
    double rtol = dtype == TG_F64 ? GOLDEN_RTOL_F64 : GOLDEN_RTOL_F32;
    int n = 0;
    for (const char *name; (name = golden_case_at(g, n)); n++) check(name, dtype, rtol);
    return n;
}

/* What tg_model_print writes for m, as a malloc'ed string the caller frees. */
static inline char *model_printed(const tg_model *m) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    tg_model_print(m, f);
    fclose(f);
    return buf;
}

/* Runs every test of suite s with the given output mode (CK_ENV lets CK_RUN_CASE and
 * CK_VERBOSITY choose) and frees the runner: EXIT_SUCCESS when no test failed, else
 * EXIT_FAILURE. */
static inline int run_suite(Suite *s, enum print_output mode) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, mode);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
