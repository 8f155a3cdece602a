/* Golden fixtures for the test suites: reading the files tests/golden/make_fixtures.py writes
 * with PyTorch, and comparing tapegrad's results against them. See make_fixtures.py for the
 * format. */
#ifndef TG_TEST_GOLDEN_H
#define TG_TEST_GOLDEN_H

#include <stdbool.h>

#include "tapegrad.h"

typedef struct golden golden;

/* Loads a fixture file; NULL (with the reason on stderr) when missing or malformed. */
golden *golden_load(const char *path);
void golden_free(golden *g);
/* Every case name in file order, for loops over cases: NULL past the end. */
const char *golden_case_at(const golden *g, int i);
bool golden_has(const golden *g, const char *case_name, const char *key);
/* The value `key` of a case as a new persistent tensor: floats in dtype (f32 or f64, rounded
 * from the stored f64), integers as i64. NULL when absent. */
tg_tensor *golden_tensor(const golden *g, const char *case_name, const char *key, tg_dtype dtype);
/* A scalar value (f64 or i64) of a case; `fallback` when absent. */
double golden_number(const golden *g, const char *case_name, const char *key, double fallback);

/* true when got and want (any float dtypes) have the same shape and every element satisfies
 * |got - want| <= rtol * (|want| + max|want|): relative to the element, with the tensor's
 * largest magnitude as the floor for elements near zero. On failure writes the worst element
 * into why. */
bool golden_close(const tg_tensor *got, const tg_tensor *want, double rtol, char *why,
                  size_t why_size);

/* The tolerances the nn suites use: f64 1e-10; f32 1e-5 (about 100 f32 ulps of the largest
 * element: sums of a few hundred f32 products round that far). */
#define GOLDEN_RTOL_F64 1e-10
#define GOLDEN_RTOL_F32 1e-5

/* The directory holding the fixtures (set by meson as GOLDEN_DIR). */
#ifndef GOLDEN_DIR
#define GOLDEN_DIR "tests/golden"
#endif

#endif
