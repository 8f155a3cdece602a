/* tapegrad-gradcheck: runs tg_gradcheck and tg_gradgradcheck on every differentiable primitive
 * and on every layer, activation and loss of tapegrad/nn.h (functional forms) over randomly
 * drawn shapes (ranks 0..4, broadcasting, size-1 dims), options and values, from a seeded
 * tg_rng, and prints one line per case and the total "N passed, M failed".
 *
 * The checks are a table (`checks` below): one entry per function with its name, a generator
 * that draws the inputs and parameters of a case, and the tg_fn that is checked. Generators keep
 * kinks out of the inputs (values away from 0 for relu and abs, no ties for max and maximum,
 * away from clamp's bounds, positive denominators, away from the switch points of softplus,
 * smooth L1, Huber and the hinge), so the tolerances are gradcheck's defaults. A new check (a
 * layer, a loss) is a generator, a function and one more table row.
 *
 * Usage: tapegrad-gradcheck [--op NAME] [--seed N] [--cases K] [--fast] [--help]
 * Exit status: 0 when every case passed, 1 when one failed, 2 on a usage error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tapegrad.h>

#define MAX_INPUTS 8
/* Elements of a drawn input at most (windows, convolutions and pooling allow up to twice that):
 * the full check costs numel(out) reverse passes and 2 numel(in) evaluations. */
#define MAX_NUMEL 24

/* ---- a case: inputs and parameters ------------------------------------------------------ */

/* One drawn case. Float inputs are persistent f64 tensors that require grad (unless drawn as
 * fixed: running statistics); index and mask inputs are persistent and do not. The inputs are
 * the op's tensor arguments in order, except that an optional argument left out (a NULL bias)
 * has no input and its bit set in `absent`. The parameter fields are shared by all checks;
 * each check reads the ones its generator sets. */
typedef struct gc_case {
    int index;                 /* which case of its check this is: generators cycle variants */
    int n_inputs;
    tg_tensor *in[MAX_INPUTS];
    int n_args;                /* tensor arguments of the op: inputs and absent ones */
    unsigned absent;           /* bit a set: argument a is NULL */
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
    tg_window2d win;           /* unfold2d, fold2d, window_sum2d and window_spread2d */
    int64_t height, width;     /* fold2d's, window_spread2d's, adaptive pooling's and
                                  upsampling's output size */
    double c2;                 /* a third scalar: local_response_norm's k */
    int64_t n0;                /* an integer option: groups, window size, the hinge's p */
    bool flag;                 /* a boolean option: tanh gelu, align_corners, training, ... */
    uint64_t seed;             /* dropout: the seed its mask is drawn from at every evaluation */
    tg_conv2d_opts conv;
    tg_pool2d_opts pool;
    tg_upsample_mode mode;
    tg_reduction reduction;
    tg_cross_entropy_opts ce;  /* its weight is an argument, set by the function */
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
    PROB,     /* in [0.05, 0.95): probabilities away from 0 and 1 */
} value_kind;

/* Appends t to the case's inputs as its next argument (marks the case failed when t is NULL). */
static tg_tensor *push(gc_case *c, tg_tensor *t) {
    if (!t) c->ok = false;
    c->in[c->n_inputs++] = t;
    c->n_args++;
    return t;
}

/* The op's next tensor argument is NULL (an optional one left out): no input for it. */
static void skip_arg(gc_case *c) { c->absent |= 1u << c->n_args++; }

/* A persistent f64 input [shape] that requires grad, with values of the given kind. */
static tg_tensor *add_float(gc_case *c, tg_rng *rng, int ndim, const int64_t *shape,
                            value_kind kind) {
    tg_tensor *t = push(c, tg_zeros(NULL, TG_F64, ndim, shape));
    if (!t) return NULL;
    double *d = tg_tensor_data_mut(t);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) {
        if (kind == ANY) d[i] = draw_real(rng, -1.0, 1.0);
        else if (kind == POSITIVE) d[i] = draw_real(rng, 0.5, 2.0);
        else if (kind == PROB) d[i] = draw_real(rng, 0.05, 0.95);
        else d[i] = draw_real(rng, 0.1, 1.0) * (tg_rng_below(rng, 2) ? 1.0 : -1.0);
    }
    tg_set_requires_grad(t, true);
    return t;
}

/* As add_float, but held fixed (no grad): batch norm's running statistics. */
static tg_tensor *add_fixed(gc_case *c, tg_rng *rng, int ndim, const int64_t *shape,
                            value_kind kind) {
    tg_tensor *t = add_float(c, rng, ndim, shape, kind);
    if (t) tg_set_requires_grad(t, false);
    return t;
}

/* add_float when `present`, else the argument is skipped (NULL). */
static void add_optional(gc_case *c, tg_rng *rng, bool present, int ndim, const int64_t *shape,
                         value_kind kind) {
    if (present) add_float(c, rng, ndim, shape, kind);
    else skip_arg(c);
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

/* relu_backward(x, g): x away from relu's kink at 0 */
static void draw_relu_backward(tg_rng *rng, gc_case *c) { binary_of(rng, c, AWAY, ANY); }

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
                           .pad_value = tg_rng_below(rng, 2) ? 0.0 : draw_real(rng, -1.0, 1.0),
                           .batch_inner = tg_rng_below(rng, 2)};
        nchw[0] = draw_int(rng, 1, 2);
        nchw[1] = draw_int(rng, 1, 2);
        nchw[2] = draw_int(rng, 1, 4);
        nchw[3] = draw_int(rng, 1, 4);
        oh = tg_window2d_out(nchw[2], w->kernel_h, w->stride_h, w->pad_h, w->dilation_h);
        ow = tg_window2d_out(nchw[3], w->kernel_w, w->stride_w, w->pad_w, w->dilation_w);
    } while (oh < 1 || ow < 1 || nchw[0] * nchw[1] * nchw[2] * nchw[3] > cap ||
             nchw[0] * nchw[1] * w->kernel_h * w->kernel_w * oh * ow > cap);
    snprintf(c->note, sizeof c->note, "k %lldx%lld s %lldx%lld p %lldx%lld d %lldx%lld%s",
             (long long)w->kernel_h, (long long)w->kernel_w, (long long)w->stride_h,
             (long long)w->stride_w, (long long)w->pad_h, (long long)w->pad_w,
             (long long)w->dilation_h, (long long)w->dilation_w,
             w->batch_inner ? " batch inner" : "");
}

/* unfold2d: x [N, C, H, W]. */
static void draw_unfold2d(tg_rng *rng, gc_case *c) {
    int64_t s[4];
    draw_window(rng, c, s, 48);
    add_float(c, rng, 4, s, ANY);
}

/* For the ops from windows back to an [N, C, H, W] output (fold2d, window_spread2d): sets the
 * output size to nchw's H and W, names it in the note, and gives the window counts OH, OW. */
static void output_size(gc_case *c, const int64_t *nchw, int64_t *oh, int64_t *ow) {
    const tg_window2d *w = &c->win;
    c->height = nchw[2];
    c->width = nchw[3];
    *oh = tg_window2d_out(c->height, w->kernel_h, w->stride_h, w->pad_h, w->dilation_h);
    *ow = tg_window2d_out(c->width, w->kernel_w, w->stride_w, w->pad_w, w->dilation_w);
    size_t len = strlen(c->note);
    snprintf(c->note + len, sizeof c->note - len, " to %lldx%lld", (long long)c->height,
             (long long)c->width);
}

/* fold2d: cols [N, C*KH*KW, OH*OW] (batch inner: [C*KH*KW, N, OH*OW]) for an output
 * [N, C, H, W]. */
static void draw_fold2d(tg_rng *rng, gc_case *c) {
    int64_t s[4], oh, ow;
    draw_window(rng, c, s, MAX_NUMEL + 12);
    output_size(c, s, &oh, &ow);
    const tg_window2d *w = &c->win;
    const int64_t rows = s[1] * w->kernel_h * w->kernel_w;
    int64_t cols[3] = {w->batch_inner ? rows : s[0], w->batch_inner ? s[0] : rows, oh * ow};
    add_float(c, rng, 3, cols, ANY);
}

/* A window for window_sum2d and window_spread2d: draw_window's, reading padding as 0 in the
 * [N, C, ...] layout. */
static void draw_plain_window(tg_rng *rng, gc_case *c, int64_t *nchw, int64_t cap) {
    draw_window(rng, c, nchw, cap);
    c->win.pad_value = 0.0;
    c->win.batch_inner = false;
    char *inner = strstr(c->note, " batch inner");
    if (inner) *inner = '\0';
}

/* window_sum2d: x [N, C, H, W]. */
static void draw_window_sum2d(tg_rng *rng, gc_case *c) {
    int64_t s[4];
    draw_plain_window(rng, c, s, 48);
    add_float(c, rng, 4, s, ANY);
}

/* window_spread2d: y [N, C, OH, OW] for an output [N, C, H, W]. */
static void draw_window_spread2d(tg_rng *rng, gc_case *c) {
    int64_t s[4], oh, ow;
    draw_plain_window(rng, c, s, 48);
    output_size(c, s, &oh, &ow);
    add_float(c, rng, 4, (int64_t[]){s[0], s[1], oh, ow}, ANY);
}

/* ---- generators: activations ------------------------------------------------------------ */

/* leaky_relu: x away from the kink at 0, a slope in [0.01, 1.5). */
static void draw_leaky_relu(tg_rng *rng, gc_case *c) {
    unary_of(rng, c, AWAY);
    c->c0 = draw_real(rng, 0.01, 1.5);
    snprintf(c->note, sizeof c->note, "slope %.3g", c->c0);
}

/* elu: x away from the kink at 0, alpha in [0.5, 2). */
static void draw_elu(tg_rng *rng, gc_case *c) {
    unary_of(rng, c, AWAY);
    c->c0 = draw_real(rng, 0.5, 2.0);
    snprintf(c->note, sizeof c->note, "alpha %.3g", c->c0);
}

/* gelu: any x; exact and tanh approximation by turns. */
static void draw_gelu(tg_rng *rng, gc_case *c) {
    unary_of(rng, c, ANY);
    c->flag = c->index % 2 == 1;
    snprintf(c->note, sizeof c->note, "%s", c->flag ? "tanh" : "exact");
}

/* softplus: beta and threshold in [0.5, 2), x in [-3, 3) so that beta x falls on both sides of
 * the threshold, but at least 0.1 from it (the two branches meet with a jump there). */
static void draw_softplus(tg_rng *rng, gc_case *c) {
    c->c0 = draw_real(rng, 0.5, 2.0);
    c->c1 = draw_real(rng, 0.5, 2.0);
    unary_of(rng, c, ANY);
    if (!c->ok) return;
    double *d = tg_tensor_data_mut(c->in[0]);
    for (int64_t i = 0; i < tg_tensor_numel(c->in[0]); i++)
        do d[i] = draw_real(rng, -3.0, 3.0); while (fabs(c->c0 * d[i] - c->c1) < 0.1);
    snprintf(c->note, sizeof c->note, "beta %.3g threshold %.3g", c->c0, c->c1);
}

/* softmax, log_softmax: x [rank 1..4] and an axis. */
static void draw_softmax(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 1, 4, MAX_NUMEL, s);
    add_float(c, rng, n, s, ANY);
    c->axis = draw_axis(rng, n);
    snprintf(c->note, sizeof c->note, "axis %d", c->axis);
}

/* ---- generators: linear, convolution, pooling, resampling ------------------------------- */

/* linear: x [batch (rank 0..2)..., in], w [out, in], b [out] (every other case none). */
static void draw_linear(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS], in = draw_int(rng, 1, 4), out = draw_int(rng, 1, 4);
    int nb = draw_shape(rng, 0, 2, 6, s);
    s[nb] = in;
    add_float(c, rng, nb + 1, s, ANY);
    add_float(c, rng, 2, (int64_t[]){out, in}, ANY);
    add_optional(c, rng, c->index % 2 == 0, 1, &out, ANY);
    snprintf(c->note, sizeof c->note, "%s", c->index % 2 == 0 ? "bias" : "no bias");
}

/* "g 2 s 1x2 p 0x1 d 2x1" and more for a convolution's options, into the note; then `extra`. */
static void conv_note(gc_case *c, const char *extra) {
    const tg_conv2d_opts *o = &c->conv;
    snprintf(c->note, sizeof c->note, "g %lld s %lldx%lld p %lldx%lld d %lldx%lld%s",
             (long long)o->groups, (long long)o->stride_h, (long long)o->stride_w,
             (long long)o->pad_h, (long long)o->pad_w, (long long)o->dilation_h,
             (long long)o->dilation_w, extra);
}

/* Random stride 1..2, padding 0..pad_max and dilation 1..2, and groups: 1..2 groups of 1..2
 * channels, or (depthwise) 2..3 groups of one channel. *cg gets the channels per group. */
static void draw_conv_opts(tg_rng *rng, gc_case *c, int64_t pad_max, bool depthwise,
                           int64_t *cg) {
    tg_conv2d_opts *o = &c->conv;
    *o = tg_conv2d_defaults();
    o->stride_h = draw_int(rng, 1, 2);
    o->stride_w = draw_int(rng, 1, 2);
    o->pad_h = draw_int(rng, 0, pad_max);
    o->pad_w = draw_int(rng, 0, pad_max);
    o->dilation_h = draw_int(rng, 1, 2);
    o->dilation_w = draw_int(rng, 1, 2);
    o->groups = depthwise ? draw_int(rng, 2, 3) : draw_int(rng, 1, 2);
    *cg = depthwise ? 1 : draw_int(rng, 1, 2);
}

/* conv2d: x [N, G*CG, H, W] (H, W 3..5), w [G*OCG, CG, KH, KW] (kernel 1..3), b [G*OCG] on
 * cases 0 and 2 (mod 3), depthwise on case 2; options from draw_conv_opts. Redrawn until the
 * output is non-empty and x, w and the output have at most 36 elements. */
static void draw_conv2d(tg_rng *rng, gc_case *c) {
    const bool depthwise = c->index % 3 == 2, bias = c->index % 3 != 1;
    const tg_conv2d_opts *o = &c->conv;
    int64_t n, cg, ocg, kh, kw, h, w, oh, ow;
    do {
        draw_conv_opts(rng, c, 2, depthwise, &cg);
        ocg = draw_int(rng, 1, 2);
        n = draw_int(rng, 1, 2);
        kh = draw_int(rng, 1, 3);
        kw = draw_int(rng, 1, 3);
        h = draw_int(rng, 3, 5);
        w = draw_int(rng, 3, 5);
        oh = tg_window2d_out(h, kh, o->stride_h, o->pad_h, o->dilation_h);
        ow = tg_window2d_out(w, kw, o->stride_w, o->pad_w, o->dilation_w);
    } while (oh < 1 || ow < 1 || n * o->groups * cg * h * w > 36 ||
             o->groups * ocg * cg * kh * kw > 36 || n * o->groups * ocg * oh * ow > 36);
    const int64_t oc = o->groups * ocg;
    add_float(c, rng, 4, (int64_t[]){n, o->groups * cg, h, w}, ANY);
    add_float(c, rng, 4, (int64_t[]){oc, cg, kh, kw}, ANY);
    add_optional(c, rng, bias, 1, &oc, ANY);
    conv_note(c, depthwise ? (bias ? " depthwise bias" : " depthwise") : (bias ? " bias" : ""));
}

/* The output length of a transposed convolution along one axis. */
static int64_t transposed_out(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                              int64_t dilation, int64_t out_pad) {
    return (in - 1) * stride - 2 * pad + dilation * (kernel - 1) + out_pad + 1;
}

/* conv_transpose2d: x [N, G*CG, H, W] (H, W 1..3), w [G*CG, OCG, KH, KW], b [G*OCG] as
 * conv2d's; output padding below max(stride, dilation). Redrawn until the output is non-empty
 * and x, w and the output have at most 36 elements. */
static void draw_conv_transpose2d(tg_rng *rng, gc_case *c) {
    const bool depthwise = c->index % 3 == 2, bias = c->index % 3 != 1;
    tg_conv2d_opts *o = &c->conv;
    int64_t n, cg, ocg, kh, kw, h, w, oh, ow;
    do {
        draw_conv_opts(rng, c, 1, depthwise, &cg);
        o->output_pad_h = draw_int(rng, 0, (o->stride_h > o->dilation_h ? o->stride_h
                                                                        : o->dilation_h) - 1);
        o->output_pad_w = draw_int(rng, 0, (o->stride_w > o->dilation_w ? o->stride_w
                                                                        : o->dilation_w) - 1);
        ocg = draw_int(rng, 1, 2);
        n = draw_int(rng, 1, 2);
        kh = draw_int(rng, 1, 3);
        kw = draw_int(rng, 1, 3);
        h = draw_int(rng, 1, 3);
        w = draw_int(rng, 1, 3);
        oh = transposed_out(h, kh, o->stride_h, o->pad_h, o->dilation_h, o->output_pad_h);
        ow = transposed_out(w, kw, o->stride_w, o->pad_w, o->dilation_w, o->output_pad_w);
    } while (oh < 1 || ow < 1 || n * o->groups * cg * h * w > 36 ||
             o->groups * cg * ocg * kh * kw > 36 || n * o->groups * ocg * oh * ow > 36);
    const int64_t oc = o->groups * ocg;
    add_float(c, rng, 4, (int64_t[]){n, o->groups * cg, h, w}, ANY);
    add_float(c, rng, 4, (int64_t[]){o->groups * cg, ocg, kh, kw}, ANY);
    add_optional(c, rng, bias, 1, &oc, ANY);
    char extra[48];
    snprintf(extra, sizeof extra, " op %lldx%lld%s%s", (long long)o->output_pad_h,
             (long long)o->output_pad_w, depthwise ? " depthwise" : "", bias ? " bias" : "");
    conv_note(c, extra);
}

/* PyTorch's pooling output length (docs/nn.md): floor or, with ceil_mode, ceiling of the
 * window count, less one when the last window would start past the input and left padding. */
static int64_t pool_out(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                        int64_t dilation, bool ceil_mode) {
    int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    if (span < 0) return 0;
    int64_t out = span / stride + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

/* Pooling: x [N 1..2, C 1..2, H 3..5, W 3..5] (at most 36 elements), kernel 1..3, stride the
 * kernel's (the default) or 1..2, padding up to half the kernel, ceil_mode either way; for max
 * pooling dilation 1..2 and distinct values (one maximum per window), for average pooling
 * count_include_pad either way. By turns, case 0 has padding, case 1 ceil_mode and case 2
 * dilation (max) or padding without count_include_pad (average). Redrawn until the output is
 * non-empty. */
static void pool_of(tg_rng *rng, gc_case *c, bool max) {
    tg_pool2d_opts *o = &c->pool;
    const int variant = c->index % 3;
    const bool padded = variant == 0 || (variant == 2 && !max);
    int64_t s[4], oh, ow;
    do {
        *o = tg_pool2d_defaults(draw_int(rng, padded ? 2 : 1, 3), draw_int(rng, 1, 3));
        if (tg_rng_below(rng, 2)) {
            o->stride_h = draw_int(rng, 1, 2);
            o->stride_w = draw_int(rng, 1, 2);
        }
        o->pad_h = draw_int(rng, padded ? 1 : 0, o->kernel_h / 2);
        o->pad_w = draw_int(rng, 0, o->kernel_w / 2);
        if (max) {
            o->dilation_h = draw_int(rng, variant == 2 ? 2 : 1, 2);
            o->dilation_w = draw_int(rng, 1, 2);
        }
        o->ceil_mode = variant == 1 || tg_rng_below(rng, 2);
        o->count_include_pad = !max && variant != 2 && tg_rng_below(rng, 2);
        s[0] = draw_int(rng, 1, 2);
        s[1] = draw_int(rng, 1, 2);
        s[2] = draw_int(rng, 3, 5);
        s[3] = draw_int(rng, 3, 5);
        oh = pool_out(s[2], o->kernel_h, o->stride_h, o->pad_h, o->dilation_h, o->ceil_mode);
        ow = pool_out(s[3], o->kernel_w, o->stride_w, o->pad_w, o->dilation_w, o->ceil_mode);
    } while (oh < 1 || ow < 1 || s[0] * s[1] * s[2] * s[3] > 36);
    add_float(c, rng, 4, s, ANY);
    if (max && c->ok) make_distinct(c, rng);
    snprintf(c->note, sizeof c->note, "k %lldx%lld s %lldx%lld p %lldx%lld",
             (long long)o->kernel_h, (long long)o->kernel_w, (long long)o->stride_h,
             (long long)o->stride_w, (long long)o->pad_h, (long long)o->pad_w);
    size_t len = strlen(c->note);
    if (max)
        len += (size_t)snprintf(c->note + len, sizeof c->note - len, " d %lldx%lld",
                                (long long)o->dilation_h, (long long)o->dilation_w);
    snprintf(c->note + len, sizeof c->note - len, "%s%s", o->ceil_mode ? " ceil" : "",
             o->count_include_pad ? " count_include_pad" : "");
}
static void draw_max_pool2d(tg_rng *rng, gc_case *c) { pool_of(rng, c, true); }
static void draw_avg_pool2d(tg_rng *rng, gc_case *c) { pool_of(rng, c, false); }

/* x [N 1..2, C 1..2, H, W] with H, W in lo..hi and at most 36 elements. */
static void add_image(tg_rng *rng, gc_case *c, int64_t lo, int64_t hi) {
    int64_t s[4];
    do {
        s[0] = draw_int(rng, 1, 2);
        s[1] = draw_int(rng, 1, 2);
        s[2] = draw_int(rng, lo, hi);
        s[3] = draw_int(rng, lo, hi);
    } while (s[0] * s[1] * s[2] * s[3] > 36);
    add_float(c, rng, 4, s, ANY);
}

/* adaptive_avg_pool2d: x with H, W 1..5 and an output size 1..5 (smaller or larger). */
static void draw_adaptive_avg_pool2d(tg_rng *rng, gc_case *c) {
    add_image(rng, c, 1, 5);
    c->height = draw_int(rng, 1, 5);
    c->width = draw_int(rng, 1, 5);
    snprintf(c->note, sizeof c->note, "to %lldx%lld", (long long)c->height, (long long)c->width);
}

/* global_avg_pool2d: x with H, W 1..5. */
static void draw_global_avg_pool2d(tg_rng *rng, gc_case *c) { add_image(rng, c, 1, 5); }

/* The upsampling mode by turns: nearest, bilinear, bilinear with align_corners. */
static const char *upsample_variant(gc_case *c) {
    c->mode = c->index % 3 == 0 ? TG_UPSAMPLE_NEAREST : TG_UPSAMPLE_BILINEAR;
    c->flag = c->index % 3 == 2;
    return c->index % 3 == 0 ? "nearest" : c->flag ? "bilinear align_corners" : "bilinear";
}

/* upsample2d: x with H, W 1..4 and an output size 1..6 (at most 36 elements). */
static void draw_upsample2d(tg_rng *rng, gc_case *c) {
    const char *variant = upsample_variant(c);
    add_image(rng, c, 1, 4);
    if (!c->ok) return;
    const int64_t *s = tg_tensor_shape(c->in[0]);
    do {
        c->height = draw_int(rng, 1, 6);
        c->width = draw_int(rng, 1, 6);
    } while (s[0] * s[1] * c->height * c->width > 36);
    snprintf(c->note, sizeof c->note, "to %lldx%lld %s", (long long)c->height,
             (long long)c->width, variant);
}

/* upsample2d_scale: x with H, W 2..4 and scale factors from a set of down- and up-scales
 * (floor(in * scale) >= 1; at most 36 output elements). */
static void draw_upsample2d_scale(tg_rng *rng, gc_case *c) {
    static const double scales[] = {0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0};
    const size_t count = sizeof scales / sizeof *scales;
    const char *variant = upsample_variant(c);
    add_image(rng, c, 2, 4);
    if (!c->ok) return;
    const int64_t *s = tg_tensor_shape(c->in[0]);
    do {
        c->c0 = scales[tg_rng_below(rng, count)];
        c->c1 = scales[tg_rng_below(rng, count)];
    } while (s[0] * s[1] * (int64_t)floor((double)s[2] * c->c0) *
                 (int64_t)floor((double)s[3] * c->c1) > 36);
    snprintf(c->note, sizeof c->note, "scale %gx%g %s", c->c0, c->c1, variant);
}

/* ---- generators: normalization, dropout, embedding, recurrent cells --------------------- */

/* [N, C, ...] of rank min_rank..4, dims 1..3 (C in min_c..max_c), at most MAX_NUMEL elements
 * and, when `several`, more than one element per channel. Returns the rank. */
static int draw_nc_shape(tg_rng *rng, int min_rank, int64_t min_c, int64_t max_c, bool several,
                         int64_t *s) {
    int n;
    int64_t numel;
    do {
        n = (int)draw_int(rng, min_rank, 4);
        numel = 1;
        for (int d = 0; d < n; d++) {
            s[d] = d == 1 ? draw_int(rng, min_c, max_c) : draw_int(rng, 1, 3);
            numel *= s[d];
        }
    } while (numel > MAX_NUMEL || (several && numel / s[1] < 2));
    return n;
}

/* batch_norm: x [N, C, ...] (rank 2..4); training on even cases, with persistent running
 * statistics (no grad; updated in place at every evaluation, which the output does not read)
 * two times in three; evaluation with given running statistics (var in [0.5, 2)); weight and
 * bias each present or not; momentum in [0.05, 0.5), eps 1e-5. */
static void draw_batch_norm(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    c->flag = c->index % 2 == 0;
    int n = draw_nc_shape(rng, 2, 1, 3, c->flag, s);
    bool running = !c->flag || tg_rng_below(rng, 3) != 0;
    bool weight = tg_rng_below(rng, 2), bias = tg_rng_below(rng, 2);
    add_float(c, rng, n, s, ANY);
    if (running) {
        add_fixed(c, rng, 1, &s[1], ANY);
        add_fixed(c, rng, 1, &s[1], POSITIVE);
    } else {
        skip_arg(c);
        skip_arg(c);
    }
    add_optional(c, rng, weight, 1, &s[1], ANY);
    add_optional(c, rng, bias, 1, &s[1], ANY);
    c->c0 = draw_real(rng, 0.05, 0.5);
    c->c1 = 1e-5;
    snprintf(c->note, sizeof c->note, "%s%s momentum %.3g%s%s",
             c->flag ? "training" : "eval", running ? " running" : "", c->c0,
             weight ? " weight" : "", bias ? " bias" : "");
}

/* layer_norm: x [rank 1..4], normalized over its last 1..ndim dims; weight and bias (those
 * dims' shape) each present or not; eps 1e-5. */
static void draw_layer_norm(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 1, 4, MAX_NUMEL, s);
    c->n0 = draw_int(rng, 1, n);
    bool weight = tg_rng_below(rng, 2), bias = tg_rng_below(rng, 2);
    add_float(c, rng, n, s, ANY);
    add_optional(c, rng, weight, (int)c->n0, s + n - c->n0, ANY);
    add_optional(c, rng, bias, (int)c->n0, s + n - c->n0, ANY);
    c->c0 = 1e-5;
    snprintf(c->note, sizeof c->note, "last %lld%s%s", (long long)c->n0,
             weight ? " weight" : "", bias ? " bias" : "");
}

/* group_norm: x [N, C 1..4, ...] (rank 2..4), groups a divisor of C, weight and bias each
 * present or not; eps 1e-5. */
static void draw_group_norm(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_nc_shape(rng, 2, 1, 4, false, s);
    do c->n0 = draw_int(rng, 1, s[1]); while (s[1] % c->n0 != 0);
    bool weight = tg_rng_below(rng, 2), bias = tg_rng_below(rng, 2);
    add_float(c, rng, n, s, ANY);
    add_optional(c, rng, weight, 1, &s[1], ANY);
    add_optional(c, rng, bias, 1, &s[1], ANY);
    c->c0 = 1e-5;
    snprintf(c->note, sizeof c->note, "groups %lld%s%s", (long long)c->n0,
             weight ? " weight" : "", bias ? " bias" : "");
}

/* local_response_norm: x [N, C 2..4, ...] (rank 3..4), window size 2..C+1, alpha in
 * [0.1, 1), beta in [0.5, 1), k in [1, 2). */
static void draw_local_response_norm(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_nc_shape(rng, 3, 2, 4, false, s);
    add_float(c, rng, n, s, ANY);
    c->n0 = draw_int(rng, 2, s[1] + 1);
    c->c0 = draw_real(rng, 0.1, 1.0);
    c->c1 = draw_real(rng, 0.5, 1.0);
    c->c2 = draw_real(rng, 1.0, 2.0);
    snprintf(c->note, sizeof c->note, "size %lld alpha %.3g beta %.3g k %.3g", (long long)c->n0,
             c->c0, c->c1, c->c2);
}

/* Dropout in training mode: x of rank min_rank..4, p in [0.2, 0.7) and the seed of the mask.
 * The function draws its mask from a new generator with that seed at every evaluation, so all
 * evaluations multiply by the same mask and the output is a deterministic function of x. */
static void dropout_of(tg_rng *rng, gc_case *c, int min_rank) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, min_rank, 4, MAX_NUMEL, s);
    add_float(c, rng, n, s, ANY);
    c->c0 = draw_real(rng, 0.2, 0.7);
    c->seed = tg_rng_u64(rng);
    snprintf(c->note, sizeof c->note, "p %.3g", c->c0);
}
static void draw_dropout(tg_rng *rng, gc_case *c) { dropout_of(rng, c, 0); }
static void draw_dropout2d(tg_rng *rng, gc_case *c) { dropout_of(rng, c, 2); }

/* embedding: weight [V 2..5, D 1..3] and int64 indices [rank 0..2] in [0, V), the last one a
 * repeat of the first (a row used twice accumulates its gradients). */
static void draw_embedding(tg_rng *rng, gc_case *c) {
    int64_t v = draw_int(rng, 2, 5), s[TG_MAX_DIMS];
    add_float(c, rng, 2, (int64_t[]){v, draw_int(rng, 1, 3)}, ANY);
    int n = draw_shape(rng, 0, 2, 6, s);
    tg_tensor *idx = add_index(c, rng, n, s, v);
    if (!idx) return;
    int64_t *d = tg_tensor_data_mut(idx);
    d[tg_tensor_numel(idx) - 1] = d[0];
}

/* A recurrent cell with `gates` gates (4: LSTM, 3: GRU): x [N, I] ([T, N, I] over `steps` > 0
 * steps), h [N, H], c [N, H] (LSTM), w_ih [gates H, I], w_hh [gates H, H], and b_ih, b_hh
 * [gates H]: both on even cases, each present or not on odd ones. N, I 1..2, H 1..2. */
static void cell_of(tg_rng *rng, gc_case *c, int gates, int64_t steps) {
    int64_t n = draw_int(rng, 1, 2), in = draw_int(rng, 1, 2), h = draw_int(rng, 1, 2);
    int64_t rows = gates * h;
    if (steps) add_float(c, rng, 3, (int64_t[]){steps, n, in}, ANY);
    else add_float(c, rng, 2, (int64_t[]){n, in}, ANY);
    add_float(c, rng, 2, (int64_t[]){n, h}, ANY);
    if (gates == 4) add_float(c, rng, 2, (int64_t[]){n, h}, ANY);
    add_float(c, rng, 2, (int64_t[]){rows, in}, ANY);
    add_float(c, rng, 2, (int64_t[]){rows, h}, ANY);
    bool b_ih = c->index % 2 == 0 || tg_rng_below(rng, 2);
    bool b_hh = c->index % 2 == 0 || tg_rng_below(rng, 2);
    add_optional(c, rng, b_ih, 1, &rows, ANY);
    add_optional(c, rng, b_hh, 1, &rows, ANY);
    snprintf(c->note, sizeof c->note, "%s%s", b_ih ? "b_ih" : "no b_ih",
             b_hh ? " b_hh" : " no b_hh");
}
static void draw_lstm_cell(tg_rng *rng, gc_case *c) { cell_of(rng, c, 4, 0); }
static void draw_gru_cell(tg_rng *rng, gc_case *c) { cell_of(rng, c, 3, 0); }
static void draw_lstm_unroll(tg_rng *rng, gc_case *c) { cell_of(rng, c, 4, draw_int(rng, 2, 3)); }
static void draw_gru_unroll(tg_rng *rng, gc_case *c) { cell_of(rng, c, 3, draw_int(rng, 2, 3)); }

/* ---- generators: losses ----------------------------------------------------------------- */

/* The reduction by turns: none, mean, sum (mean replaced by batchmean half the time when
 * `batchmean`: kl_div). Returns its name. */
static const char *draw_reduction(tg_rng *rng, gc_case *c, bool batchmean) {
    static const tg_reduction cycle[] = {TG_REDUCTION_NONE, TG_REDUCTION_MEAN, TG_REDUCTION_SUM};
    static const char *const names[] = {"none", "mean", "sum"};
    c->reduction = cycle[c->index % 3];
    if (batchmean && c->reduction == TG_REDUCTION_MEAN && tg_rng_below(rng, 2)) {
        c->reduction = TG_REDUCTION_BATCHMEAN;
        return "batchmean";
    }
    return names[c->index % 3];
}

/* Class-index losses (cross_entropy, nll_loss): input [N 1..3, C 2..4] or [N, C, d1 1..3],
 * int64 targets [N] / [N, d1]; on mean cases and half the others an ignore_index that is a
 * class, with the last target ignored and the first not (the mean never divides by zero);
 * class weights in [0.5, 2) (which get gradients too) or none; label smoothing 0 or in
 * [0.05, 0.3) when `smoothing`. */
static void class_loss_of(tg_rng *rng, gc_case *c, bool smoothing) {
    int64_t s[3], ts[2];
    int n = (int)draw_int(rng, 2, 3);
    do {
        s[0] = draw_int(rng, 1, 3);
        s[1] = draw_int(rng, 2, 4);
        s[2] = draw_int(rng, 1, 3);
    } while (s[0] * s[1] * (n == 3 ? s[2] : 1) > MAX_NUMEL);
    ts[0] = s[0];
    ts[1] = s[2];
    const char *reduction = draw_reduction(rng, c, false);
    bool weight = tg_rng_below(rng, 2);
    bool ignore = c->reduction == TG_REDUCTION_MEAN || tg_rng_below(rng, 2);
    c->ce = tg_cross_entropy_defaults();
    c->ce.reduction = c->reduction;
    if (smoothing && tg_rng_below(rng, 2)) c->ce.label_smoothing = draw_real(rng, 0.05, 0.3);
    add_float(c, rng, n, s, ANY);
    tg_tensor *target = add_index(c, rng, n - 1, ts, s[1]);
    add_optional(c, rng, weight, 1, &s[1], POSITIVE);
    if (target && ignore) {
        int64_t *t = tg_tensor_data_mut(target), last = tg_tensor_numel(target) - 1;
        c->ce.ignore_index = draw_int(rng, 0, s[1] - 1);
        if (t[0] == c->ce.ignore_index) t[0] = (t[0] + 1) % s[1];
        if (last > 0) t[last] = c->ce.ignore_index;
    }
    int len = snprintf(c->note, sizeof c->note, "%s%s ignore %lld", reduction,
                       weight ? " weight" : "", (long long)c->ce.ignore_index);
    if (smoothing)
        snprintf(c->note + len, sizeof c->note - (size_t)len, " smoothing %.3g",
                 c->ce.label_smoothing);
}
static void draw_cross_entropy(tg_rng *rng, gc_case *c) { class_loss_of(rng, c, true); }
static void draw_nll_loss(tg_rng *rng, gc_case *c) { class_loss_of(rng, c, false); }

/* cross_entropy with probability targets: logits and targets [N 1..3, C 2..4] or [N, C, d1],
 * targets in [0.05, 0.95) (they get gradients too), class weights or none, label smoothing 0
 * or in [0.05, 0.3). */
static void draw_cross_entropy_probs(tg_rng *rng, gc_case *c) {
    int64_t s[3];
    int n = (int)draw_int(rng, 2, 3);
    do {
        s[0] = draw_int(rng, 1, 3);
        s[1] = draw_int(rng, 2, 4);
        s[2] = draw_int(rng, 1, 3);
    } while (s[0] * s[1] * (n == 3 ? s[2] : 1) > MAX_NUMEL);
    const char *reduction = draw_reduction(rng, c, false);
    bool weight = tg_rng_below(rng, 2);
    c->ce = tg_cross_entropy_defaults();
    c->ce.reduction = c->reduction;
    if (tg_rng_below(rng, 2)) c->ce.label_smoothing = draw_real(rng, 0.05, 0.3);
    add_float(c, rng, n, s, ANY);
    add_float(c, rng, n, s, PROB);
    add_optional(c, rng, weight, 1, &s[1], POSITIVE);
    snprintf(c->note, sizeof c->note, "%s%s smoothing %.3g", reduction,
             weight ? " weight" : "", c->ce.label_smoothing);
}

/* binary_cross_entropy: p and y [rank 0..3] in [0.05, 0.95) (y gets gradients too), a weight
 * in [0.5, 2) that broadcasts to p, or none. */
static void draw_binary_cross_entropy(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS], ws[TG_MAX_DIMS];
    int n = draw_shape(rng, 0, 3, MAX_NUMEL, s), nw = broadcast_from(rng, n, s, ws);
    const char *reduction = draw_reduction(rng, c, false);
    bool weight = tg_rng_below(rng, 2);
    add_float(c, rng, n, s, PROB);
    add_float(c, rng, n, s, PROB);
    add_optional(c, rng, weight, nw, ws, POSITIVE);
    snprintf(c->note, sizeof c->note, "%s%s", reduction, weight ? " weight" : "");
}

/* binary_cross_entropy_with_logits: x [rank 0..3] in [-3, 3), y in [0.05, 0.95), a weight
 * that broadcasts to x and a pos_weight over the last dim ([last] or [1]), each in [0.5, 2) or
 * none; every input gets gradients. */
static void draw_binary_cross_entropy_with_logits(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS], ws[TG_MAX_DIMS], ps[1];
    int n = draw_shape(rng, 0, 3, MAX_NUMEL, s), nw = broadcast_from(rng, n, s, ws);
    ps[0] = n > 0 && tg_rng_below(rng, 2) ? s[n - 1] : 1;
    const char *reduction = draw_reduction(rng, c, false);
    bool weight = tg_rng_below(rng, 2), pos_weight = tg_rng_below(rng, 2);
    tg_tensor *x = add_float(c, rng, n, s, ANY);
    add_float(c, rng, n, s, PROB);
    add_optional(c, rng, weight, nw, ws, POSITIVE);
    add_optional(c, rng, pos_weight, n > 0 ? 1 : 0, ps, POSITIVE);
    if (x) {
        double *d = tg_tensor_data_mut(x);
        for (int64_t i = 0; i < tg_tensor_numel(x); i++) d[i] *= 3.0;
    }
    snprintf(c->note, sizeof c->note, "%s%s%s", reduction, weight ? " weight" : "",
             pos_weight ? " pos_weight" : "");
}

/* Regression losses: x and y [rank 0..4] (both get gradients), y redrawn until the
 * difference d = x - y is at least `gap` from each of the kinks: |d| = 0 (when `zero`) and
 * |d| = c->c0 (when positive). */
static void regression_of(tg_rng *rng, gc_case *c, bool zero, double gap) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 0, 4, MAX_NUMEL, s);
    tg_tensor *x = add_float(c, rng, n, s, ANY), *y = add_float(c, rng, n, s, ANY);
    if (!x || !y) return;
    const double *xd = tg_tensor_data(x);
    double *yd = tg_tensor_data_mut(y);
    for (int64_t i = 0; i < tg_tensor_numel(x); i++) {
        double d = xd[i] - yd[i];
        while ((zero && fabs(d) < gap) || (c->c0 > 0 && fabs(fabs(d) - c->c0) < gap)) {
            yd[i] = draw_real(rng, -1.0, 1.0);
            d = xd[i] - yd[i];
        }
    }
}
static void draw_mse_loss(tg_rng *rng, gc_case *c) {
    snprintf(c->note, sizeof c->note, "%s", draw_reduction(rng, c, false));
    regression_of(rng, c, false, 0.0);
}
/* l1: |x - y| >= 0.1 */
static void draw_l1_loss(tg_rng *rng, gc_case *c) {
    snprintf(c->note, sizeof c->note, "%s", draw_reduction(rng, c, false));
    regression_of(rng, c, true, 0.1);
}
/* smooth_l1: beta 0 (the L1 loss) a time in four, else in [0.3, 1); |d| at least 0.1 from beta
 * (and from 0 when beta is 0). */
static void draw_smooth_l1_loss(tg_rng *rng, gc_case *c) {
    const char *reduction = draw_reduction(rng, c, false);
    c->c0 = tg_rng_below(rng, 4) == 0 ? 0.0 : draw_real(rng, 0.3, 1.0);
    regression_of(rng, c, c->c0 == 0.0, 0.1);
    snprintf(c->note, sizeof c->note, "%s beta %.3g", reduction, c->c0);
}
/* huber: delta in [0.3, 1); |d| at least 0.1 from delta. */
static void draw_huber_loss(tg_rng *rng, gc_case *c) {
    const char *reduction = draw_reduction(rng, c, false);
    c->c0 = draw_real(rng, 0.3, 1.0);
    regression_of(rng, c, false, 0.1);
    snprintf(c->note, sizeof c->note, "%s delta %.3g", reduction, c->c0);
}

/* multi_margin_loss: x [N 1..3, C 2..4], int64 targets [N], p 1 and 2 by turns, margin in
 * [0.5, 1.5), class weights in [0.5, 2) or none; x's non-target entries redrawn until every
 * hinge argument margin - x[y] + x[i] is at least 0.1 from 0. */
static void draw_multi_margin_loss(tg_rng *rng, gc_case *c) {
    int64_t n = draw_int(rng, 1, 3), classes = draw_int(rng, 2, 4);
    const char *reduction = draw_reduction(rng, c, false);
    bool weight = tg_rng_below(rng, 2);
    c->n0 = 1 + c->index % 2;
    c->c0 = draw_real(rng, 0.5, 1.5);
    tg_tensor *x = add_float(c, rng, 2, (int64_t[]){n, classes}, ANY);
    tg_tensor *y = add_index(c, rng, 1, &n, classes);
    add_optional(c, rng, weight, 1, &classes, POSITIVE);
    if (x && y) {
        double *d = tg_tensor_data_mut(x);
        const int64_t *t = tg_tensor_data(y);
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < classes; k++)
                while (k != t[i] && fabs(c->c0 - d[i * classes + t[i]] + d[i * classes + k]) < 0.1)
                    d[i * classes + k] = draw_real(rng, -1.0, 1.0);
    }
    snprintf(c->note, sizeof c->note, "%s p %lld margin %.3g%s", reduction, (long long)c->n0,
             c->c0, weight ? " weight" : "");
}

/* kl_div: input [rank 0..4] any, target in [0.05, 0.95) or, with log_target (odd cases), any;
 * both get gradients. */
static void draw_kl_div(tg_rng *rng, gc_case *c) {
    int64_t s[TG_MAX_DIMS];
    int n = draw_shape(rng, 0, 4, MAX_NUMEL, s);
    const char *reduction = draw_reduction(rng, c, true);
    c->flag = c->index % 2 == 1;
    add_float(c, rng, n, s, ANY);
    add_float(c, rng, n, s, c->flag ? ANY : PROB);
    snprintf(c->note, sizeof c->note, "%s%s", reduction, c->flag ? " log_target" : "");
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
BINARY(tanh_backward) BINARY(sigmoid_backward) BINARY(relu_backward)
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
static tg_tensor *fn_window_sum2d(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_window_sum2d(tp, x[0], &CASE->win);
}
static tg_tensor *fn_window_spread2d(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    return tg_window_spread2d(tp, x[0], CASE->height, CASE->width, &CASE->win);
}

/* The op's tensor arguments in order into a[0..c->n_args): the inputs, NULL where absent. */
static void args_of(const gc_case *c, tg_tensor *const *x, tg_tensor **a) {
    for (int i = 0, k = 0; i < c->n_args; i++) a[i] = (c->absent >> i & 1) ? NULL : x[k++];
}

/* fn_<op> for the nn ops: `a` holds the arguments (args_of), CASE the parameters. */
#define NN_FN(op, call)                                                             \
    static tg_tensor *fn_##op(tg_tape *tp, tg_tensor *const *x, void *ctx) {         \
        tg_tensor *a[MAX_INPUTS];                                                   \
        args_of(CASE, x, a);                                                        \
        return call;                                                                \
    }

NN_FN(leaky_relu, tg_leaky_relu(tp, a[0], CASE->c0))
NN_FN(elu, tg_elu(tp, a[0], CASE->c0))
NN_FN(silu, tg_silu(tp, a[0]))
NN_FN(gelu, tg_gelu(tp, a[0], CASE->flag))
NN_FN(softplus, tg_softplus(tp, a[0], CASE->c0, CASE->c1))
NN_FN(softmax, tg_softmax(tp, a[0], CASE->axis))
NN_FN(log_softmax, tg_log_softmax(tp, a[0], CASE->axis))
NN_FN(logsumexp, tg_logsumexp(tp, a[0], CASE->axes, CASE->naxes, CASE->keepdim))
NN_FN(linear, tg_linear(tp, a[0], a[1], a[2]))
NN_FN(conv2d, tg_conv2d(tp, a[0], a[1], a[2], &CASE->conv))
NN_FN(conv_transpose2d, tg_conv_transpose2d(tp, a[0], a[1], a[2], &CASE->conv))
NN_FN(max_pool2d, tg_max_pool2d(tp, a[0], &CASE->pool))
NN_FN(avg_pool2d, tg_avg_pool2d(tp, a[0], &CASE->pool))
NN_FN(adaptive_avg_pool2d, tg_adaptive_avg_pool2d(tp, a[0], CASE->height, CASE->width))
NN_FN(global_avg_pool2d, tg_global_avg_pool2d(tp, a[0]))
NN_FN(upsample2d,
      tg_upsample2d(tp, a[0], CASE->height, CASE->width, CASE->mode, CASE->flag))
NN_FN(upsample2d_scale,
      tg_upsample2d_scale(tp, a[0], CASE->c0, CASE->c1, CASE->mode, CASE->flag))
NN_FN(batch_norm,
      tg_batch_norm(tp, a[0], a[1], a[2], a[3], a[4], CASE->flag, CASE->c0, CASE->c1))
NN_FN(layer_norm, tg_layer_norm(tp, a[0], (int)CASE->n0, a[1], a[2], CASE->c0))
NN_FN(group_norm, tg_group_norm(tp, a[0], CASE->n0, a[1], a[2], CASE->c0))
NN_FN(local_response_norm,
      tg_local_response_norm(tp, a[0], CASE->n0, CASE->c0, CASE->c1, CASE->c2))
NN_FN(embedding, tg_embedding(tp, a[0], a[1]))
NN_FN(gru_cell, tg_gru_cell(tp, a[0], a[1], a[2], a[3], a[4], a[5]))
NN_FN(binary_cross_entropy, tg_binary_cross_entropy(tp, a[0], a[1], a[2], CASE->reduction))
NN_FN(binary_cross_entropy_with_logits,
      tg_binary_cross_entropy_with_logits(tp, a[0], a[1], a[2], a[3], CASE->reduction))
NN_FN(mse_loss, tg_mse_loss(tp, a[0], a[1], CASE->reduction))
NN_FN(l1_loss, tg_l1_loss(tp, a[0], a[1], CASE->reduction))
NN_FN(smooth_l1_loss, tg_smooth_l1_loss(tp, a[0], a[1], CASE->c0, CASE->reduction))
NN_FN(huber_loss, tg_huber_loss(tp, a[0], a[1], CASE->c0, CASE->reduction))
NN_FN(multi_margin_loss, tg_multi_margin_loss(tp, a[0], a[1], (int)CASE->n0, CASE->c0, a[2],
                                              CASE->reduction))
NN_FN(kl_div, tg_kl_div(tp, a[0], a[1], CASE->flag, CASE->reduction))

/* Training-mode dropout with the mask drawn from a new generator seeded from the case, so every
 * evaluation draws the same mask (see dropout_of). */
static tg_tensor *dropout_with(tg_tape *tp, tg_tensor *x, const gc_case *c, bool channels) {
    tg_rng *rng = tg_rng_new(c->seed);
    if (!rng) return NULL;
    tg_tensor *y = channels ? tg_dropout2d(tp, x, c->c0, true, rng)
                            : tg_dropout(tp, x, c->c0, true, rng);
    tg_rng_free(rng);
    return y;
}
NN_FN(dropout, dropout_with(tp, a[0], CASE, false))
NN_FN(dropout2d, dropout_with(tp, a[0], CASE, true))

/* Cross entropy and nll with the case's options and the class weight argument a[2]. */
static tg_tensor *fn_cross_entropy(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    tg_tensor *a[MAX_INPUTS];
    args_of(CASE, x, a);
    tg_cross_entropy_opts o = CASE->ce;
    o.weight = a[2];
    return tg_cross_entropy(tp, a[0], a[1], &o);
}
static tg_tensor *fn_nll_loss(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    tg_tensor *a[MAX_INPUTS];
    args_of(CASE, x, a);
    tg_cross_entropy_opts o = CASE->ce;
    o.weight = a[2];
    return tg_nll_loss(tp, a[0], a[1], &o);
}

/* lstm_cell: both outputs, [h', c'] joined along axis 1 -> [N, 2H]. */
static tg_tensor *fn_lstm_cell(tg_tape *tp, tg_tensor *const *x, void *ctx) {
    tg_tensor *a[MAX_INPUTS], *c_next;
    args_of(CASE, x, a);
    tg_tensor *h_next = tg_lstm_cell(tp, a[0], a[1], a[2], a[3], a[4], a[5], a[6], &c_next);
    if (!h_next) return NULL;
    return tg_concat(tp, 2, (tg_tensor *[]){h_next, c_next}, 1);
}

#define MAX_STEPS 3

/* A cell unrolled over xs [T, N, I] as tg_rnn_unroll does (slice and squeeze each step's
 * input, step the functional cell, unsqueeze, one concat), from the initial states in the
 * arguments: the hidden states [T, N, H], with the final cell state appended for an LSTM
 * ([T + 1, N, H]). tg_rnn_unroll itself takes a cell layer, whose parameters are f32. */
static tg_tensor *unroll(tg_tape *tp, tg_tensor *const *x, const gc_case *c, bool lstm) {
    tg_tensor *a[MAX_INPUTS], *out[MAX_STEPS + 1];
    args_of(c, x, a);
    tg_tensor *xs = a[0], *h = a[1], *cell = lstm ? a[2] : NULL;
    tg_tensor *const *w = lstm ? a + 3 : a + 2; /* w_ih, w_hh, b_ih, b_hh */
    int steps = (int)tg_tensor_shape(xs)[0];
    for (int t = 0; t < steps; t++) {
        tg_tensor *xt = tg_squeeze(tp, tg_slice(tp, xs, 0, t, t + 1, 1), 0);
        if (lstm) h = tg_lstm_cell(tp, xt, h, cell, w[0], w[1], w[2], w[3], &cell);
        else h = tg_gru_cell(tp, xt, h, w[0], w[1], w[2], w[3]);
        out[t] = tg_unsqueeze(tp, h, 0);
    }
    if (lstm) out[steps++] = tg_unsqueeze(tp, cell, 0);
    return tg_concat(tp, steps, out, 0);
}
NN_FN(lstm_unroll, unroll(tp, x, CASE, true))
NN_FN(gru_unroll, unroll(tp, x, CASE, false))
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
    {"tanh_backward", draw_binary, fn_tanh_backward},
    {"sigmoid_backward", draw_binary, fn_sigmoid_backward},
    {"relu_backward", draw_relu_backward, fn_relu_backward},
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
    {"window_sum2d", draw_window_sum2d, fn_window_sum2d},
    {"window_spread2d", draw_window_spread2d, fn_window_spread2d},
    /* nn: activations */
    {"leaky_relu", draw_leaky_relu, fn_leaky_relu},
    {"elu", draw_elu, fn_elu},
    {"silu", draw_any, fn_silu},
    {"gelu", draw_gelu, fn_gelu},
    {"softplus", draw_softplus, fn_softplus},
    {"softmax", draw_softmax, fn_softmax},
    {"log_softmax", draw_softmax, fn_log_softmax},
    {"logsumexp", draw_reduce, fn_logsumexp},
    /* nn: linear, convolution, pooling, resampling */
    {"linear", draw_linear, fn_linear},
    {"conv2d", draw_conv2d, fn_conv2d},
    {"conv_transpose2d", draw_conv_transpose2d, fn_conv_transpose2d},
    {"max_pool2d", draw_max_pool2d, fn_max_pool2d},
    {"avg_pool2d", draw_avg_pool2d, fn_avg_pool2d},
    {"adaptive_avg_pool2d", draw_adaptive_avg_pool2d, fn_adaptive_avg_pool2d},
    {"global_avg_pool2d", draw_global_avg_pool2d, fn_global_avg_pool2d},
    {"upsample2d", draw_upsample2d, fn_upsample2d},
    {"upsample2d_scale", draw_upsample2d_scale, fn_upsample2d_scale},
    /* nn: normalization, dropout, embedding, recurrent cells */
    {"batch_norm", draw_batch_norm, fn_batch_norm},
    {"layer_norm", draw_layer_norm, fn_layer_norm},
    {"group_norm", draw_group_norm, fn_group_norm},
    {"local_response_norm", draw_local_response_norm, fn_local_response_norm},
    {"dropout", draw_dropout, fn_dropout},
    {"dropout2d", draw_dropout2d, fn_dropout2d},
    {"embedding", draw_embedding, fn_embedding},
    {"lstm_cell", draw_lstm_cell, fn_lstm_cell},
    {"gru_cell", draw_gru_cell, fn_gru_cell},
    {"lstm_unroll", draw_lstm_unroll, fn_lstm_unroll},
    {"gru_unroll", draw_gru_unroll, fn_gru_unroll},
    /* nn: losses */
    {"cross_entropy", draw_cross_entropy, fn_cross_entropy},
    {"cross_entropy_probs", draw_cross_entropy_probs, fn_cross_entropy},
    {"nll_loss", draw_nll_loss, fn_nll_loss},
    {"binary_cross_entropy", draw_binary_cross_entropy, fn_binary_cross_entropy},
    {"binary_cross_entropy_with_logits", draw_binary_cross_entropy_with_logits,
     fn_binary_cross_entropy_with_logits},
    {"mse_loss", draw_mse_loss, fn_mse_loss},
    {"l1_loss", draw_l1_loss, fn_l1_loss},
    {"smooth_l1_loss", draw_smooth_l1_loss, fn_smooth_l1_loss},
    {"huber_loss", draw_huber_loss, fn_huber_loss},
    {"multi_margin_loss", draw_multi_margin_loss, fn_multi_margin_loss},
    {"kl_div", draw_kl_div, fn_kl_div},
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

/* Draws and checks case `index` of chk; prints its line with the name in a column `width`
 * wide. Returns true when both orders passed. */
static bool run_case(const gc_check *chk, int index, int width, tg_rng *rng,
                     const tg_gradcheck_opts *base) {
    gc_case c = {.index = index, .ok = true};
    chk->draw(rng, &c);
    char shapes[384] = "", desc[64];
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
        printf("%-*s %-58s ERROR drawing inputs: %s\n", width, chk->name, shapes,
               tg_last_error());
    } else {
        tg_gradcheck_opts o = *base;
        o.seed = tg_rng_u64(rng);
        tg_gradcheck_report r1, r2;
        int s1 = tg_gradcheck(chk->fn, &c, c.n_inputs, c.in, &o, &r1);
        int s2 = tg_gradgradcheck(chk->fn, &c, c.n_inputs, c.in, &o, &r2);
        passed = s1 == 0 && s2 == 0;
        printf("%-*s %-58s first %-6s second %s", width, chk->name, shapes, verdict(s1),
               verdict(s2));
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
            "every differentiable primitive and every nn layer, activation and loss over\n"
            "randomly drawn shapes, options and values.\n"
            "  --op NAME   only this check (see the list below)\n"
            "  --seed N    seed of the generator (default 0); a case is reproduced by its seed\n"
            "  --cases K   cases per check (default 3)\n"
            "  --fast      compare random projections v^T J u instead of full Jacobians\n"
            "  --help      this text\n"
            "Prints one line per case and ends with \"N passed, M failed\"; exits 0 when all\n"
            "passed, 1 when a case failed, 2 on a usage error.\n"
            "checks:");
    size_t column = 80; /* forces a new line before the first name */
    for (int i = 0; i < N_CHECKS; i++) {
        size_t len = strlen(checks[i].name);
        if (column + 1 + len > 80) {
            fprintf(f, "\n ");
            column = 1;
        }
        fprintf(f, " %s", checks[i].name);
        column += 1 + len;
    }
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
    int passed = 0, failed = 0, width = 0;
    for (int i = 0; i < N_CHECKS; i++)
        if ((selected < 0 || i == selected) && (int)strlen(checks[i].name) > width)
            width = (int)strlen(checks[i].name);
    for (int i = 0; i < N_CHECKS; i++) {
        if (selected >= 0 && i != selected) continue;
        tg_rng *rng = tg_rng_new(check_seed(seed, checks[i].name));
        if (!rng) {
            fprintf(stderr, "tapegrad-gradcheck: %s\n", tg_last_error());
            return 1;
        }
        for (uint64_t k = 0; k < cases; k++) {
            if (run_case(&checks[i], (int)k, width, rng, &opts)) passed++;
            else failed++;
        }
        tg_rng_free(rng);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
