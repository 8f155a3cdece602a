/* tapegrad-gradcheck: runs tg_gradcheck and tg_gradgradcheck on every differentiable primitive
 * over randomly drawn shapes (ranks 0..4, broadcasting, size-1 dims) and values, from a seeded
 * tg_rng, and prints one line per case and the total "N passed, M failed".
 *
 * The checks are a table (`checks` below): one entry per function with its name, a generator
 * that draws the inputs and parameters of a case, and the tg_fn that is checked. Generators keep
 * kinks out of the inputs (values away from 0 for relu and abs, no ties for max and maximum,
 * away from clamp's bounds, positive denominators), so the tolerances are gradcheck's defaults.
 * A new check (a layer, a loss) is a generator, a function and one more table row.
 *
 * Usage: tapegrad-gradcheck [--op NAME] [--seed N] [--cases K] [--fast] [--help]
 * Exit status: 0 when every case passed, 1 when one failed, 2 on a usage error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad.h>

#define MAX_INPUTS 4
/* Elements of a drawn input at most (windows allow up to twice that): the full check costs
 * numel(out) reverse passes and 2 numel(in) evaluations. */
#define MAX_NUMEL 24

/* ---- a case: inputs and parameters ------------------------------------------------------ */

/* One drawn case. Float inputs are persistent f64 tensors that require grad; index and mask
 * inputs are persistent and do not. The parameter fields are shared by all checks; each check
 * reads the ones its generator sets. */
typedef struct gc_case {
    int n_inputs;
    tg_tensor *in[MAX_INPUTS];
    bool ok;                   /* false when drawing an input failed (out of memory) */
    double c0, c1;             /* scalar operands, exponent, clamp bounds, pad value */
    int axis, axis2;           /* the axis of axis ops; transpose's second axis */
    int naxes;                 /* reductions: axes[0..naxes), 0 meaning all */
    int axes[TG_MAX_DIMS];
    bool keepdim;
    bool trans_a, trans_b;     /* matmul_trans */
    int perm[TG_MAX_DIMS];     /* permute */
    int ndim;                  /* target shape of reshape, expand, sum_to */
    int64_t shape[TG_MAX_DIMS];
    int64_t start, stop, step; /* slice */
    int64_t pads[2 * TG_MAX_DIMS];
    tg_window2d win;           /* unfold2d and fold2d */
    int64_t height, width;     /* fold2d's output size */
    char note[96];             /* the parameters, for the report line */
} gc_case;

/* One row of the table: `draw` fills a zeroed case from rng; `fn` is checked with the case as
 * its ctx. */
typedef struct gc_check {
    const char *name;
    void (*draw)(tg_rng *rng, gc_case *c);
    tg_fn fn;
} gc_check;

/* ---- drawing shapes --------------------------------------------------------------------- */

/* Uniform in [lo, hi] (integers) and [lo, hi) (reals). */
static int64_t draw_int(tg_rng *rng, int64_t lo, int64_t hi) {
    return lo + (int64_t)tg_rng_below(rng, (uint64_t)(hi - lo + 1));
}
static double draw_real(tg_rng *rng, double lo, double hi) {
    return lo + (hi - lo) * tg_rng_uniform(rng);
}

/* Fisher-Yates shuffle of v[0..n). */
static void shuffle_ints(tg_rng *rng, int *v, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)tg_rng_below(rng, (uint64_t)i + 1), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* A shape of rank min_rank..max_rank into shape; returns the rank. Dims are 1 about one time in
 * four, else 2..4, filled in random order and cut to 1 beyond `cap` elements in total. */
static int draw_shape(tg_rng *rng, int min_rank, int max_rank, int64_t cap, int64_t *shape) {
    int ndim = (int)draw_int(rng, min_rank, max_rank), order[TG_MAX_DIMS];
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) order[d] = d;
    shuffle_ints(rng, order, ndim);
    for (int i = 0; i < ndim; i++) {
        int64_t s = tg_rng_below(rng, 4) == 0 ? 1 : draw_int(rng, 2, 4);
        while (numel * s > cap) s--;
        shape[order[i]] = s;
        numel *= s;
    }
    return ndim;
}

/* A shape that broadcasts to full [ndim]: sometimes leading dims dropped, about a third of the
 * remaining dims set to 1. Returns its rank. */
static int broadcast_from(tg_rng *rng, int ndim, const int64_t *full, int64_t *shape) {
    int drop = tg_rng_below(rng, 3) == 0 ? (int)draw_int(rng, 0, ndim) : 0;
    for (int d = drop; d < ndim; d++) shape[d - drop] = tg_rng_below(rng, 3) == 0 ? 1 : full[d];
    return ndim - drop;
}

/* An axis of a rank-ndim tensor (ndim >= 1), negative (counted from the end) half the time. */
static int draw_axis(tg_rng *rng, int ndim) {
    int a = (int)tg_rng_below(rng, (uint64_t)ndim);
    return tg_rng_below(rng, 2) ? a - ndim : a;
}

/* The non-negative form of a possibly negative axis. */
static int axis_index(int axis, int ndim) { return axis < 0 ? axis + ndim : axis; }

/* ---- drawing inputs --------------------------------------------------------------------- */

/* How float input values are drawn. */
typedef enum value_kind {
    ANY,      /* uniform in [-1, 1) */
    AWAY,     /* |x| in [0.1, 1), either sign: away from the kink at 0 */
    POSITIVE, /* in [0.5, 2): logs, roots, denominators, pow bases */
} value_kind;

/* Appends t to the case's inputs (marks the case failed when t is NULL). */
static tg_tensor *push(gc_case *c, tg_tensor *t) {
    if (!t) c->ok = false;
    c->in[c->n_inputs++] = t;
    return t;
}

/* A persistent f64 input [shape] that requires grad, with values of the given kind. */
static tg_tensor *add_float(gc_case *c, tg_rng *rng, int ndim, const int64_t *shape,
                            value_kind kind) {
    tg_tensor *t = push(c, tg_zeros(NULL, TG_F64, ndim, shape));
    if (!t) return NULL;
    double *d = tg_tensor_data_mut(t);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) {
        if (kind == ANY) d[i] = draw_real(rng, -1.0, 1.0);
        else if (kind == POSITIVE) d[i] = draw_real(rng, 0.5, 2.0);
        else d[i] = draw_real(rng, 0.1, 1.0) * (tg_rng_below(rng, 2) ? 1.0 : -1.0);
    }
    tg_set_requires_grad(t, true);
    return t;
}

/* A persistent int64 index input [shape] with entries uniform in [0, bound). */
static tg_tensor *add_index(gc_case *c, tg_rng *rng, int ndim, const int64_t *shape,
                            int64_t bound) {
    tg_tensor *t = push(c, tg_zeros(NULL, TG_I64, ndim, shape));
    if (!t) return NULL;
    int64_t *d = tg_tensor_data_mut(t);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) d[i] = draw_int(rng, 0, bound - 1);
    return t;
}

/* Rewrites every float input's values with distinct points of a shuffled grid over [-1, 1]
 * (spacing >= 2/48, far above eps), so no two elements tie: max, min, maximum, minimum. */
static void make_distinct(gc_case *c, tg_rng *rng) {
    int64_t total = 0;
    for (int i = 0; i < c->n_inputs; i++)
        if (c->in[i] && tg_tensor_dtype(c->in[i]) == TG_F64) total += tg_tensor_numel(c->in[i]);
    int *grid = malloc((size_t)(total ? total : 1) * sizeof *grid);
    if (!grid) {
        c->ok = false;
        return;
    }
    for (int k = 0; k < total; k++) grid[k] = k;
    shuffle_ints(rng, grid, (int)total);
    for (int i = 0, k = 0; i < c->n_inputs; i++) {
        if (!c->in[i] || tg_tensor_dtype(c->in[i]) != TG_F64) continue;
        double *d = tg_tensor_data_mut(c->in[i]);
        for (int64_t e = 0; e < tg_tensor_numel(c->in[i]); e++, k++)
            d[e] = -1.0 + 2.0 * (grid[k] + 0.5) / (double)total;
    }
    free(grid);
}

/* "[1, -2]" for n ints into buf. */
static const char *ints_str(char *buf, size_t size, const int *v, int n) {
    size_t len = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? ", " : "", v[i]);
    if (len < size) snprintf(buf + len, size - len, "]");
    return buf;
}

/* "[2, -1]" for n int64s into buf. */
static const char *shape_str(char *buf, size_t size, const int64_t *v, int n) {
    size_t len = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", (long long)v[i]);
    if (len < size) snprintf(buf + len, size - len, "]");
    return buf;
}

/* ---- generators ------------------------------------------------------------------------- */

/* x [any rank 0..4] with values of one kind (the elementwise unary maps). */
static void unary_of(tg_rng *rng, gc_case *c, value_kind kind) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 0, 4, MAX_NUMEL, s);
    add_float(c, rng, n, s, kind);
}
static void draw_any(tg_rng *rng, gc_case *c) { unary_of(rng, c, ANY); }
static void draw_away(tg_rng *rng, gc_case *c) { unary_of(rng, c, AWAY); }
static void draw_positive(tg_rng *rng, gc_case *c) { unary_of(rng, c, POSITIVE); }

/* Positive bases, an exponent from a set with negative, fractional and integer powers. */
static void draw_pow(tg_rng *rng, gc_case *c) {
    static const double powers[] = {-1.5, -1.0, 0.5, 2.0, 2.5, 3.0};
    unary_of(rng, c, POSITIVE);
    c->c0 = powers[tg_rng_below(rng, sizeof powers / sizeof *powers)];
    snprintf(c->note, sizeof c->note, "p %g", c->c0);
}

/* Bounds lo < hi (sometimes one side open); x redrawn until >= 0.1 from both bounds. */
static void draw_clamp(tg_rng *rng, gc_case *c) {
    int open = (int)tg_rng_below(rng, 4); /* 0: lo open, 1: hi open, else both finite */
    c->c0 = open == 0 ? -INFINITY : draw_real(rng, -0.8, 0.0);
    c->c1 = open == 1 ? INFINITY : draw_real(rng, 0.1, 0.8);
    unary_of(rng, c, ANY);
    if (!c->ok) return;
    double *d = tg_tensor_data_mut(c->in[0]);
    for (int64_t i = 0; i < tg_tensor_numel(c->in[0]); i++)
        while (fabs(d[i] - c->c0) < 0.1 || fabs(d[i] - c->c1) < 0.1)
            d[i] = draw_real(rng, -1.0, 1.0);
    snprintf(c->note, sizeof c->note, "lo %g hi %g", c->c0, c->c1);
}

/* A scalar operand c with 0.5 <= |c| < 2 and x of one kind. */
static void scalar_of(tg_rng *rng, gc_case *c, value_kind kind) {
    unary_of(rng, c, kind);
    c->c0 = draw_real(rng, 0.5, 2.0) * (tg_rng_below(rng, 2) ? 1.0 : -1.0);
    snprintf(c->note, sizeof c->note, "c %.4g", c->c0);
}
static void draw_scalar(tg_rng *rng, gc_case *c) { scalar_of(rng, c, ANY); }
/* rdiv_scalar: c / x with x away from 0 */
static void draw_scalar_away(tg_rng *rng, gc_case *c) { scalar_of(rng, c, AWAY); }

/* a and b that broadcast together (each a reduced form of one drawn full shape). */
static void binary_of(tg_rng *rng, gc_case *c, value_kind kind_a, value_kind kind_b) {
    int64_t full[TG_MAX_DIMS], s[TG_MAX_DIMS];
    int nf = draw_shape(rng, 0, 4, MAX_NUMEL, full);
    int n = broadcast_from(rng, nf, full, s);
    add_float(c, rng, n, s, kind_a);
    n = broadcast_from(rng, nf, full, s);
    add_float(c, rng, n, s, kind_b);
}
static void draw_binary(tg_rng *rng, gc_case *c) { binary_of(rng, c, ANY, ANY); }
/* div: the denominator b positive */
static void draw_div(tg_rng *rng, gc_case *c) { binary_of(rng, c, ANY, POSITIVE); }
/* maximum, minimum: no ties anywhere between a and b */
static void draw_binary_distinct(tg_rng *rng, gc_case *c) {
    binary_of(rng, c, ANY, ANY);
    if (c->ok) make_distinct(c, rng);
}

/* where(mask, a, b): mask of 0/1 (no grad), a and b, all three broadcasting together. */
static void draw_where(tg_rng *rng, gc_case *c) {
    int64_t full[TG_MAX_DIMS], s[TG_MAX_DIMS];
    int nf = draw_shape(rng, 0, 4, MAX_NUMEL, full);
    int n = broadcast_from(rng, nf, full, s);
    tg_tensor *mask = push(c, tg_zeros(NULL, TG_F64, n, s));
    if (mask) {
        double *d = tg_tensor_data_mut(mask);
        for (int64_t i = 0; i < tg_tensor_numel(mask); i++) d[i] = (double)tg_rng_below(rng, 2);
    }
    n = broadcast_from(rng, nf, full, s);
    add_float(c, rng, n, s, ANY);
    n = broadcast_from(rng, nf, full, s);
    add_float(c, rng, n, s, ANY);
}

/* x [rank 0..4] and a random subset of its axes (none meaning all), keepdim either way. */
static void draw_reduce(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 0, 4, MAX_NUMEL, s);
    add_float(c, rng, n, s, ANY);
    for (int d = 0; d < n; d++)
        if (tg_rng_below(rng, 2)) c->axes[c->naxes++] = tg_rng_below(rng, 2) ? d - n : d;
    shuffle_ints(rng, c->axes, c->naxes);
    c->keepdim = tg_rng_below(rng, 2);
    char buf[48];
    snprintf(c->note, sizeof c->note, "axes %s%s",
             c->naxes ? ints_str(buf, sizeof buf, c->axes, c->naxes) : "all",
             c->keepdim ? " keepdim" : "");
}
/* max, min: distinct values, so each slice has one extreme */
static void draw_reduce_distinct(tg_rng *rng, gc_case *c) {
    draw_reduce(rng, c);
    if (c->ok) make_distinct(c, rng);
}

/* x [full] and a target shape that broadcasts to it. */
static void draw_sum_to(tg_rng *rng, gc_case *c) {
    int64_t full[TG_MAX_DIMS];
    int nf = draw_shape(rng, 0, 4, MAX_NUMEL, full);
    add_float(c, rng, nf, full, ANY);
    c->ndim = broadcast_from(rng, nf, full, c->shape);
    char buf[48];
    snprintf(c->note, sizeof c->note, "to %s", shape_str(buf, sizeof buf, c->shape, c->ndim));
}

/* a [..., M, K] and b [..., K, N] with broadcasting batch dims (0..2 of them), each stored
 * transposed when the flag is set (flags drawn only when `trans`). */
static void matmul_of(tg_rng *rng, gc_case *c, bool trans) {
    int64_t batch[TG_MAX_DIMS], s[TG_MAX_DIMS];
    int nb = draw_shape(rng, 0, 2, 4, batch);
    int64_t m = draw_int(rng, 1, 3), k = draw_int(rng, 1, 3), n = draw_int(rng, 1, 3);
    c->trans_a = trans && tg_rng_below(rng, 2);
    c->trans_b = trans && tg_rng_below(rng, 2);
    int r = broadcast_from(rng, nb, batch, s);
    s[r] = c->trans_a ? k : m;
    s[r + 1] = c->trans_a ? m : k;
    add_float(c, rng, r + 2, s, ANY);
    r = broadcast_from(rng, nb, batch, s);
    s[r] = c->trans_b ? n : k;
    s[r + 1] = c->trans_b ? k : n;
    add_float(c, rng, r + 2, s, ANY);
    if (trans)
        snprintf(c->note, sizeof c->note, "trans_a %d trans_b %d", c->trans_a, c->trans_b);
}
static void draw_matmul(tg_rng *rng, gc_case *c) { matmul_of(rng, c, false); }
static void draw_matmul_trans(tg_rng *rng, gc_case *c) { matmul_of(rng, c, true); }

/* x and a random factorization of its numel (rank 0..4), sometimes with one -1. */
static void draw_reshape(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 0, 4, MAX_NUMEL, s);
    tg_tensor *x = add_float(c, rng, n, s, ANY);
    if (!x) return;
    int64_t left = tg_tensor_numel(x);
    c->ndim = (int)draw_int(rng, left == 1 ? 0 : 1, 4);
    for (int d = 0; d < c->ndim - 1; d++) {
        int64_t f;
        do f = draw_int(rng, 1, left); while (left % f != 0);
        c->shape[d] = f;
        left /= f;
    }
    if (c->ndim > 0) c->shape[c->ndim - 1] = left;
    if (c->ndim > 0 && tg_rng_below(rng, 3) == 0)
        c->shape[tg_rng_below(rng, (uint64_t)c->ndim)] = -1;
    char buf[48];
    snprintf(c->note, sizeof c->note, "to %s", shape_str(buf, sizeof buf, c->shape, c->ndim));
}

/* x [rank 0..4] and a random permutation of its axes (some given negative). */
static void draw_permute(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 0, 4, MAX_NUMEL, s);
    add_float(c, rng, n, s, ANY);
    for (int d = 0; d < n; d++) c->perm[d] = d;
    shuffle_ints(rng, c->perm, n);
    for (int d = 0; d < n; d++)
        if (tg_rng_below(rng, 3) == 0) c->perm[d] -= n;
    char buf[48];
    snprintf(c->note, sizeof c->note, "perm %s", ints_str(buf, sizeof buf, c->perm, n));
}

/* x [rank 1..4] and two axes (possibly the same). */
static void draw_transpose(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 1, 4, MAX_NUMEL, s);
    add_float(c, rng, n, s, ANY);
    c->axis = draw_axis(rng, n);
    c->axis2 = draw_axis(rng, n);
    snprintf(c->note, sizeof c->note, "axes %d %d", c->axis, c->axis2);
}

/* A target shape and an x that broadcasts to it. */
static void draw_expand(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    c->ndim = draw_shape(rng, 0, 4, MAX_NUMEL, c->shape);
    int n = broadcast_from(rng, c->ndim, c->shape, s);
    add_float(c, rng, n, s, ANY);
    char buf[48];
    snprintf(c->note, sizeof c->note, "to %s", shape_str(buf, sizeof buf, c->shape, c->ndim));
}

/* x [rank 1..4] with a size-1 dim at the squeezed axis. */
static void draw_squeeze(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 0, 3, MAX_NUMEL, s);
    int at = (int)draw_int(rng, 0, n);
    memmove(s + at + 1, s + at, (size_t)(n - at) * sizeof *s);
    s[at] = 1;
    add_float(c, rng, n + 1, s, ANY);
    c->axis = tg_rng_below(rng, 2) ? at - (n + 1) : at;
    snprintf(c->note, sizeof c->note, "axis %d", c->axis);
}

/* x [rank 0..3] and a position 0..ndim (or its negative form). */
static void draw_unsqueeze(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 0, 3, MAX_NUMEL, s);
    add_float(c, rng, n, s, ANY);
    c->axis = draw_axis(rng, n + 1);
    snprintf(c->note, sizeof c->note, "axis %d", c->axis);
}

/* x [rank 1..4] and a non-empty slice of one axis: start and stop sometimes negative or past
 * the end, step 1..3. */
static void draw_slice(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 1, 4, MAX_NUMEL, s);
    c->axis = draw_axis(rng, n);
    int64_t dim = s[axis_index(c->axis, n)];
    add_float(c, rng, n, s, ANY);
    int64_t start = draw_int(rng, 0, dim - 1), stop = draw_int(rng, start + 1, dim);
    c->start = tg_rng_below(rng, 3) == 0 ? start - dim : start;
    c->stop = stop == dim && tg_rng_below(rng, 2) ? dim + 3
              : stop < dim && tg_rng_below(rng, 3) == 0 ? stop - dim : stop;
    c->step = draw_int(rng, 1, 3);
    snprintf(c->note, sizeof c->note, "axis %d %lld:%lld:%lld", c->axis, (long long)c->start,
             (long long)c->stop, (long long)c->step);
}

/* 1..3 tensors [rank 1..4] equal but for their length (1..3) along the joined axis. */
static void draw_concat(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 1, 4, MAX_NUMEL / 3, s), count = (int)draw_int(rng, 1, 3);
    c->axis = draw_axis(rng, n);
    for (int i = 0; i < count; i++) {
        s[axis_index(c->axis, n)] = draw_int(rng, 1, 3);
        add_float(c, rng, n, s, ANY);
    }
    snprintf(c->note, sizeof c->note, "axis %d", c->axis);
}

/* x [rank 0..4], 0..2 elements before and after each dim (often none), any fill value. */
static void draw_pad(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 0, 4, MAX_NUMEL, s);
    add_float(c, rng, n, s, ANY);
    for (int i = 0; i < 2 * n; i++) c->pads[i] = tg_rng_below(rng, 2) ? draw_int(rng, 1, 2) : 0;
    c->c0 = draw_real(rng, -2.0, 2.0);
    char buf[64];
    snprintf(c->note, sizeof c->note, "pads %s value %.3g",
             shape_str(buf, sizeof buf, c->pads, 2 * n), c->c0);
}

/* x [rank 1..4], an axis, and an index of x's rank: off the axis no larger than x, along it
 * 1..3 long, entries valid (repeats allowed). Inputs x, idx, then src [idx's shape] when
 * `with_src` (scatter_add). */
static void gather_of(tg_rng *rng, gc_case *c, bool with_src) {
    int64_t s[TG_MAX_DIMS], is[TG_MAX_DIMS];
    int n = draw_shape(rng, 1, 4, MAX_NUMEL, s);
    c->axis = draw_axis(rng, n);
    int a = axis_index(c->axis, n);
    for (int d = 0; d < n; d++) is[d] = d == a ? draw_int(rng, 1, 3) : draw_int(rng, 1, s[d]);
    add_float(c, rng, n, s, ANY);
    add_index(c, rng, n, is, s[a]);
    if (with_src) add_float(c, rng, n, is, ANY);
    snprintf(c->note, sizeof c->note, "axis %d", c->axis);
}
static void draw_gather(tg_rng *rng, gc_case *c) { gather_of(rng, c, false); }
static void draw_scatter_add(tg_rng *rng, gc_case *c) { gather_of(rng, c, true); }

/* x [rank 1..4], an axis and a 1-D index of 1..4 valid entries; then src (x's shape with the
 * axis as long as the index) when `with_src` (index_add). */
static void index_of(tg_rng *rng, gc_case *c, bool with_src) {
    int64_t s[TG_MAX_DIMS], len = draw_int(rng, 1, 4);
    int n = draw_shape(rng, 1, 4, MAX_NUMEL, s);
    c->axis = draw_axis(rng, n);
    int a = axis_index(c->axis, n);
    add_float(c, rng, n, s, ANY);
    add_index(c, rng, 1, &len, s[a]);
    s[a] = len;
    if (with_src) add_float(c, rng, n, s, ANY);
    snprintf(c->note, sizeof c->note, "axis %d", c->axis);
}
static void draw_index_select(tg_rng *rng, gc_case *c) { index_of(rng, c, false); }
static void draw_index_add(tg_rng *rng, gc_case *c) { index_of(rng, c, true); }

/* A window (kernel 1..3, stride 1..2, padding 0..1, dilation 1..2) and an [N, C, H, W] size
 * it fits, with N*C*H*W and the cols' numel at most `cap`; redrawn until both hold. */
static void draw_window(tg_rng *rng, gc_case *c, int64_t *nchw, int64_t cap) {
    tg_window2d *w = &c->win;
    int64_t oh, ow;
    do {
        *w = (tg_window2d){.kernel_h = draw_int(rng, 1, 3), .kernel_w = draw_int(rng, 1, 3),
                           .stride_h = draw_int(rng, 1, 2), .stride_w = draw_int(rng, 1, 2),
                           .pad_h = draw_int(rng, 0, 1), .pad_w = draw_int(rng, 0, 1),
                           .dilation_h = draw_int(rng, 1, 2), .dilation_w = draw_int(rng, 1, 2),
                           .pad_value = tg_rng_below(rng, 2) ? 0.0 : draw_real(rng, -1.0, 1.0)};
        nchw[0] = draw_int(rng, 1, 2);
        nchw[1] = draw_int(rng, 1, 2);
        nchw[2] = draw_int(rng, 1, 4);
        nchw[3] = draw_int(rng, 1, 4);
        oh = tg_window2d_out(nchw[2], w->kernel_h, w->stride_h, w->pad_h, w->dilation_h);
        ow = tg_window2d_out(nchw[3], w->kernel_w, w->stride_w, w->pad_w, w->dilation_w);
    } while (oh < 1 || ow < 1 || nchw[0] * nchw[1] * nchw[2] * nchw[3] > cap ||
             nchw[0] * nchw[1] * w->kernel_h * w->kernel_w * oh * ow > cap);
    snprintf(c->note, sizeof c->note, "k %lldx%lld s %lldx%lld p %lldx%lld d %lldx%lld",
             (long long)w->kernel_h, (long long)w->kernel_w, (long long)w->stride_h,
             (long long)w->stride_w, (long long)w->pad_h, (long long)w->pad_w,
             (long long)w->dilation_h, (long long)w->dilation_w);
}

/* unfold2d: x [N, C, H, W]. */
static void draw_unfold2d(tg_rng *rng, gc_case *c) {
    int64_t s[4];
    draw_window(rng, c, s, 48);
    add_float(c, rng, 4, s, ANY);
}

/* fold2d: cols [N, C*KH*KW, OH*OW] for an output [N, C, H, W]. */
static void draw_fold2d(tg_rng *rng, gc_case *c) {
    int64_t s[4];
    draw_window(rng, c, s, MAX_NUMEL + 12);
    const tg_window2d *w = &c->win;
    c->height = s[2];
    c->width = s[3];
    int64_t cols[3] = {
        s[0], s[1] * w->kernel_h * w->kernel_w,
        tg_window2d_out(s[2], w->kernel_h, w->stride_h, w->pad_h, w->dilation_h) *
            tg_window2d_out(s[3], w->kernel_w, w->stride_w, w->pad_w, w->dilation_w)};
    add_float(c, rng, 3, cols, ANY);
    size_t len = strlen(c->note);
    snprintf(c->note + len, sizeof c->note - len, " to %lldx%lld", (long long)c->height,
             (long long)c->width);
}

/* ---- the functions checked -------------------------------------------------------------- */

/* fn_<op> for ops of x alone, of (a, b), and of (x, c). */
#define UNARY(op)                                                                   \
    static tg_tensor *fn_##op(tg_tape *tp, tg_tensor *const *x, void *ctx) {         \
        (void)ctx;                                                                  \
        return tg_##op(tp, x[0]);                                                   \
    }
#define BINARY(op)                                                                  \
    static tg_tensor *fn_##op(tg_tape *tp, tg_tensor *const *x, void *ctx) {         \
        (void)ctx;                                                                  \
        return tg_##op(tp, x[0], x[1]);                                             \
    }
#define SCALAR(op)                                                                  \
    static tg_tensor *fn_##op(tg_tape *tp, tg_tensor *const *x, void *ctx) {         \
        return tg_##op(tp, x[0], ((const gc_case *)ctx)->c0);                       \
    }

UNARY(neg) UNARY(exp) UNARY(log) UNARY(log1p) UNARY(sqrt) UNARY(rsqrt) UNARY(abs) UNARY(square)
UNARY(tanh) UNARY(sigmoid) UNARY(relu) UNARY(erf)
BINARY(add) BINARY(sub) BINARY(mul) BINARY(div) BINARY(maximum) BINARY(minimum) BINARY(matmul)
SCALAR(pow_scalar) SCALAR(add_scalar) SCALAR(sub_scalar) SCALAR(mul_scalar) SCALAR(div_scalar)

#define CASE ((const gc_case *)ctx)
static tg_tensor *fn_clamp(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_clamp(tp, x[0], CASE->c0, CASE->c1);
}
static tg_tensor *fn_rsub_scalar(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_rsub_scalar(tp, CASE->c0, x[0]);
}
static tg_tensor *fn_rdiv_scalar(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_rdiv_scalar(tp, CASE->c0, x[0]);
}
static tg_tensor *fn_where(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    (void)ctx;
    return tg_where(tp, x[0], x[1], x[2]);
}
static tg_tensor *fn_sum(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_sum(tp, x[0], CASE->axes, CASE->naxes, CASE->keepdim);
}
static tg_tensor *fn_mean(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_mean(tp, x[0], CASE->axes, CASE->naxes, CASE->keepdim);
}
static tg_tensor *fn_max(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_max(tp, x[0], CASE->axes, CASE->naxes, CASE->keepdim);
}
static tg_tensor *fn_min(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_min(tp, x[0], CASE->axes, CASE->naxes, CASE->keepdim);
}
static tg_tensor *fn_sum_to(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_sum_to(tp, x[0], CASE->ndim, CASE->shape);
}
static tg_tensor *fn_matmul_trans(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_matmul_trans(tp, x[0], CASE->trans_a, x[1], CASE->trans_b);
}
static tg_tensor *fn_reshape(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_reshape(tp, x[0], CASE->ndim, CASE->shape);
}
static tg_tensor *fn_permute(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_permute(tp, x[0], CASE->perm);
}
static tg_tensor *fn_transpose(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_transpose(tp, x[0], CASE->axis, CASE->axis2);
}
static tg_tensor *fn_expand(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_expand(tp, x[0], CASE->ndim, CASE->shape);
}
static tg_tensor *fn_squeeze(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_squeeze(tp, x[0], CASE->axis);
}
static tg_tensor *fn_unsqueeze(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_unsqueeze(tp, x[0], CASE->axis);
}
static tg_tensor *fn_slice(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_slice(tp, x[0], CASE->axis, CASE->start, CASE->stop, CASE->step);
}
static tg_tensor *fn_concat(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_concat(tp, CASE->n_inputs, x, CASE->axis);
}
static tg_tensor *fn_pad(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_pad(tp, x[0], CASE->pads, CASE->c0);
}
static tg_tensor *fn_gather(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_gather(tp, x[0], CASE->axis, x[1]);
}
static tg_tensor *fn_scatter_add(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_scatter_add(tp, x[0], CASE->axis, x[1], x[2]);
}
static tg_tensor *fn_index_select(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_index_select(tp, x[0], CASE->axis, x[1]);
}
static tg_tensor *fn_index_add(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_index_add(tp, x[0], CASE->axis, x[1], x[2]);
}
static tg_tensor *fn_unfold2d(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_unfold2d(tp, x[0], &CASE->win);
}
static tg_tensor *fn_fold2d(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_fold2d(tp, x[0], CASE->height, CASE->width, &CASE->win);
}
#undef CASE

/* ---- the table: append new checks here -------------------------------------------------- */

static const gc_check checks[] = {
    /* elementwise unary */
    {"neg", draw_any, fn_neg},
    {"exp", draw_any, fn_exp},
    {"log", draw_positive, fn_log},
    {"log1p", draw_positive, fn_log1p},
    {"sqrt", draw_positive, fn_sqrt},
    {"rsqrt", draw_positive, fn_rsqrt},
    {"abs", draw_away, fn_abs},
    {"square", draw_any, fn_square},
    {"tanh", draw_any, fn_tanh},
    {"sigmoid", draw_any, fn_sigmoid},
    {"relu", draw_away, fn_relu},
    {"erf", draw_any, fn_erf},
    {"pow_scalar", draw_pow, fn_pow_scalar},
    {"clamp", draw_clamp, fn_clamp},
    /* elementwise binary, broadcasting */
    {"add", draw_binary, fn_add},
    {"sub", draw_binary, fn_sub},
    {"mul", draw_binary, fn_mul},
    {"div", draw_div, fn_div},
    {"maximum", draw_binary_distinct, fn_maximum},
    {"minimum", draw_binary_distinct, fn_minimum},
    /* scalar forms */
    {"add_scalar", draw_scalar, fn_add_scalar},
    {"sub_scalar", draw_scalar, fn_sub_scalar},
    {"mul_scalar", draw_scalar, fn_mul_scalar},
    {"div_scalar", draw_scalar, fn_div_scalar},
    {"rsub_scalar", draw_scalar, fn_rsub_scalar},
    {"rdiv_scalar", draw_scalar_away, fn_rdiv_scalar},
    {"where", draw_where, fn_where},
    /* reductions */
    {"sum", draw_reduce, fn_sum},
    {"mean", draw_reduce, fn_mean},
    {"max", draw_reduce_distinct, fn_max},
    {"min", draw_reduce_distinct, fn_min},
    {"sum_to", draw_sum_to, fn_sum_to},
    /* matrix products */
    {"matmul", draw_matmul, fn_matmul},
    {"matmul_trans", draw_matmul_trans, fn_matmul_trans},
    /* shape */
    {"reshape", draw_reshape, fn_reshape},
    {"permute", draw_permute, fn_permute},
    {"transpose", draw_transpose, fn_transpose},
    {"expand", draw_expand, fn_expand},
    {"squeeze", draw_squeeze, fn_squeeze},
    {"unsqueeze", draw_unsqueeze, fn_unsqueeze},
    {"slice", draw_slice, fn_slice},
    {"concat", draw_concat, fn_concat},
    {"pad", draw_pad, fn_pad},
    /* indexing */
    {"gather", draw_gather, fn_gather},
    {"scatter_add", draw_scatter_add, fn_scatter_add},
    {"index_select", draw_index_select, fn_index_select},
    {"index_add", draw_index_add, fn_index_add},
    /* sliding windows */
    {"unfold2d", draw_unfold2d, fn_unfold2d},
    {"fold2d", draw_fold2d, fn_fold2d},
};
#define N_CHECKS ((int)(sizeof checks / sizeof *checks))

/* ---- running ---------------------------------------------------------------------------- */

/* A check's own generator seed: the run's seed mixed with the name (FNV-1a), so `--op NAME`
 * draws the same cases as a full run with the same seed. */
static uint64_t check_seed(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return seed ^ h;
}

/* "ok", "FAILED" (ran and failed) or "ERROR" (could not run) for a gradcheck status. */
static const char *verdict(int status) {
    return status == 0 ? "ok" : status == 1 ? "FAILED" : "ERROR";
}

/* Draws and checks one case; prints its line. Returns true when both orders passed. */
static bool run_case(const gc_check *chk, tg_rng *rng, const tg_gradcheck_opts *base) {
    gc_case c = {.ok = true};
    chk->draw(rng, &c);
    char shapes[256] = "", desc[64];
    for (int i = 0; i < c.n_inputs; i++) {
        size_t len = strlen(shapes);
        snprintf(shapes + len, sizeof shapes - len, "%s%s", i ? ", " : "",
                 tg_tensor_describe(c.in[i], desc, sizeof desc));
    }
    if (c.note[0]) {
        size_t len = strlen(shapes);
        snprintf(shapes + len, sizeof shapes - len, " (%s)", c.note);
    }
    bool passed = false;
    if (!c.ok) {
        printf("%-13s %-58s ERROR drawing inputs: %s\n", chk->name, shapes, tg_last_error());
    } else {
        tg_gradcheck_opts o = *base;
        o.seed = tg_rng_u64(rng);
        tg_gradcheck_report r1, r2;
        int s1 = tg_gradcheck(chk->fn, &c, c.n_inputs, c.in, &o, &r1);
        int s2 = tg_gradgradcheck(chk->fn, &c, c.n_inputs, c.in, &o, &r2);
        passed = s1 == 0 && s2 == 0;
        printf("%-13s %-58s first %-6s second %s", chk->name, shapes, verdict(s1), verdict(s2));
        if (s1 != 0) printf("  first: %s", r1.message);
        if (s2 != 0) printf("  second: %s", r2.message);
        printf("\n");
    }
    for (int i = 0; i < c.n_inputs; i++) tg_tensor_free(c.in[i]);
    return passed;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: tapegrad-gradcheck [--op NAME] [--seed N] [--cases K] [--fast] [--help]\n"
            "Runs tg_gradcheck and tg_gradgradcheck (float64, eps 1e-6, atol 1e-5, rtol 1e-3) on\n"
            "every differentiable primitive over randomly drawn shapes and values.\n"
            "  --op NAME   only this check (see the list below)\n"
            "  --seed N    seed of the generator (default 0); a case is reproduced by its seed\n"
            "  --cases K   cases per check (default 3)\n"
            "  --fast      compare random projections v^T J u instead of full Jacobians\n"
            "  --help      this text\n"
            "Prints one line per case and ends with \"N passed, M failed\"; exits 0 when all\n"
            "passed, 1 when a case failed, 2 on a usage error.\n"
            "checks:");
    for (int i = 0; i < N_CHECKS; i++) fprintf(f, "%s%s", i % 10 ? " " : "\n  ", checks[i].name);
    fprintf(f, "\n");
}

/* Parses a non-negative decimal integer no larger than max; false on anything else. */
static bool parse_count(const char *s, uint64_t max, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv) {
    const char *only = NULL;
    uint64_t seed = 0, cases = 3;
    tg_gradcheck_opts opts = tg_gradcheck_defaults();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--fast") == 0) {
            opts.fast = true;
        } else if (strcmp(a, "--op") == 0 && v) {
            only = v;
            i++;
        } else if (strcmp(a, "--seed") == 0 && parse_count(v, UINT64_MAX, &seed)) {
            i++;
        } else if (strcmp(a, "--cases") == 0 && parse_count(v, 1000000, &cases) && cases > 0) {
            i++;
        } else {
            fprintf(stderr, "tapegrad-gradcheck: bad or incomplete option '%s'%s%s\n", a,
                    v ? " " : "", v ? v : "");
            usage(stderr);
            return 2;
        }
    }
    int selected = -1;
    for (int i = 0; only && i < N_CHECKS; i++)
        if (strcmp(only, checks[i].name) == 0) selected = i;
    if (only && selected < 0) {
        fprintf(stderr, "tapegrad-gradcheck: unknown op '%s'; valid names:", only);
        for (int i = 0; i < N_CHECKS; i++) fprintf(stderr, " %s", checks[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    int passed = 0, failed = 0;
    for (int i = 0; i < N_CHECKS; i++) {
        if (selected >= 0 && i != selected) continue;
        tg_rng *rng = tg_rng_new(check_seed(seed, checks[i].name));
        if (!rng) {
            fprintf(stderr, "tapegrad-gradcheck: %s\n", tg_last_error());
            return 1;
        }
        for (uint64_t k = 0; k < cases; k++) {
            if (run_case(&checks[i], rng, &opts)) passed++;
            else failed++;
        }
        tg_rng_free(rng);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
