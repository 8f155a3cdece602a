/* Reader and comparison for golden fixtures (see golden.h). Files are small: read whole, parse
 * into cases of named f64 or i64 arrays. */
#include "golden.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct value {
    char key[64];
    bool is_int;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel;
    double *data;
} value;

typedef struct fixture_case {
    char name[128];
    value *values;
    int n;
} fixture_case;

struct golden {
    fixture_case *cases;
    int n;
};

void golden_free(golden *g) {
    if (!g) return;
    for (int c = 0; c < g->n; c++) {
        for (int v = 0; v < g->cases[c].n; v++) free(g->cases[c].values[v].data);
        free(g->cases[c].values);
    }
    free(g->cases);
    free(g);
}

/* Parses "<key> <kind> <ndim> <dims> : <values>" into v; false when malformed. */
static bool parse_value(char *line, value *v) {
    char kind[8];
    int used = 0;
    if (sscanf(line, "%63s %7s %d%n", v->key, kind, &v->ndim, &used) != 3 || v->ndim < 0 ||
        v->ndim > TG_MAX_DIMS)
        return false;
    v->is_int = strcmp(kind, "i64") == 0;
    char *p = line + used, *end;
    v->numel = 1;
    for (int d = 0; d < v->ndim; d++) {
        v->shape[d] = strtoll(p, &end, 10);
        if (end == p || v->shape[d] < 0) return false;
        v->numel *= v->shape[d];
        p = end;
    }
    p = strchr(p, ':');
    if (!p) return false;
    p++;
    v->data = malloc((size_t)(v->numel ? v->numel : 1) * sizeof *v->data);
    if (!v->data) return false;
    for (int64_t i = 0; i < v->numel; i++) {
        v->data[i] = strtod(p, &end);
        if (end == p) return false;
        p = end;
    }
    return true;
}

golden *golden_load(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "golden_load: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    golden *g = calloc(1, sizeof *g);
    size_t cap = 0;
    char *line = NULL;
    ssize_t len;
    fixture_case *cur = NULL;
    bool ok = g != NULL;
    int lineno = 0;
    while (ok && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len && line[len - 1] == '\n') line[len - 1] = '\0';
        if (line[0] == '#' || line[0] == '\0') continue;
        if (strncmp(line, "case ", 5) == 0) {
            fixture_case *grown = realloc(g->cases, (size_t)(g->n + 1) * sizeof *grown);
            ok = grown != NULL;
            if (!ok) break;
            g->cases = grown;
            cur = &g->cases[g->n++];
            *cur = (fixture_case){0};
            snprintf(cur->name, sizeof cur->name, "%s", line + 5);
        } else if (strcmp(line, "end") == 0) {
            cur = NULL;
        } else if (cur) {
            value *grown = realloc(cur->values, (size_t)(cur->n + 1) * sizeof *grown);
            ok = grown != NULL;
            if (!ok) break;
            cur->values = grown;
            value *v = &cur->values[cur->n++];
            *v = (value){0};
            ok = parse_value(line, v);
        } else {
            ok = false;
        }
    }
    free(line);
    fclose(f);
    if (!ok) {
        fprintf(stderr, "golden_load: %s: malformed at line %d\n", path, lineno);
        golden_free(g);
        return NULL;
    }
    return g;
}

const char *golden_case_at(const golden *g, int i) {
    return (g && i >= 0 && i < g->n) ? g->cases[i].name : NULL;
}

static const value *find(const golden *g, const char *case_name, const char *key) {
    for (int c = 0; g && c < g->n; c++) {
        if (strcmp(g->cases[c].name, case_name) != 0) continue;
        for (int v = 0; v < g->cases[c].n; v++)
            if (strcmp(g->cases[c].values[v].key, key) == 0) return &g->cases[c].values[v];
    }
    return NULL;
}

bool golden_has(const golden *g, const char *case_name, const char *key) {
    return find(g, case_name, key) != NULL;
}

tg_tensor *golden_tensor(const golden *g, const char *case_name, const char *key,
                         tg_dtype dtype) {
    const value *v = find(g, case_name, key);
    if (!v) return NULL;
    tg_tensor *t = tg_zeros(NULL, v->is_int ? TG_I64 : dtype, v->ndim, v->shape);
    if (!t) return NULL;
    void *d = tg_tensor_data_mut(t);
    for (int64_t i = 0; i < v->numel; i++) {
        if (v->is_int) ((int64_t *)d)[i] = (int64_t)v->data[i];
        else if (dtype == TG_F32) ((float *)d)[i] = (float)v->data[i];
        else ((double *)d)[i] = v->data[i];
    }
    return t;
}

double golden_number(const golden *g, const char *case_name, const char *key, double fallback) {
    const value *v = find(g, case_name, key);
    return (v && v->numel == 1) ? v->data[0] : fallback;
}

bool golden_close(const tg_tensor *got, const tg_tensor *want, double rtol, char *why,
                  size_t why_size) {
    char a[96], b[96];
    if (!got || !want || tg_tensor_ndim(got) != tg_tensor_ndim(want) ||
        tg_tensor_numel(got) != tg_tensor_numel(want) ||
        memcmp(tg_tensor_shape(got), tg_tensor_shape(want),
               (size_t)tg_tensor_ndim(got) * sizeof(int64_t)) != 0) {
        snprintf(why, why_size, "shape: got %s, want %s", tg_tensor_describe(got, a, sizeof a),
                 tg_tensor_describe(want, b, sizeof b));
        return false;
    }
    int64_t n = tg_tensor_numel(want);
    double scale = 0.0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(tg_tensor_get(want, i)));
    for (int64_t i = 0; i < n; i++) {
        double x = tg_tensor_get(got, i), y = tg_tensor_get(want, i);
        if (!(fabs(x - y) <= rtol * (fabs(y) + scale))) {
            snprintf(why, why_size, "element %lld: got %.17g, want %.17g (rtol %g, scale %g)",
                     (long long)i, x, y, rtol, scale);
            return false;
        }
    }
    return true;
}
