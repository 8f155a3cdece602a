/* tapegrad-bench: the speed and memory goals of the library, measured. Each workload is a named
 * entry of one table; `tapegrad-bench` runs them all, `tapegrad-bench NAME...` the ones named.
 * Every result is one line of key=value pairs starting with the workload's name, so runs can be
 * compared with grep and diff. Nothing here is a test: goals are printed next to the numbers,
 * and the exit status only reports errors (bad arguments, an op that failed).
 *
 *   overhead  recording cost per op on chains of 1-element f32 ops, forward plus backward
 *   matmul    f32 tg_matmul against bli_sgemm on the same buffers, square sizes
 *   arena     arena bytes per step and system allocations after the first step of an MLP step
 */
#include <blis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* Monotonic time in nanoseconds. */
static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Sorts v[0..n) ascending in place (n is small). */
static void sort_doubles(double *v, int n) {
    for (int i = 1; i < n; i++) {
        double x = v[i];
        int j = i;
        for (; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
        v[j] = x;
    }
}

/* The median of v[0..n), n >= 1; reorders v. */
static double median(double *v, int n) {
    sort_doubles(v, n);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Prints the tape's error (or `what` when there is none) under the workload's name; returns 1
 * for the caller to pass on as a failure. */
static int report_failure(const char *workload, tg_tape *tp, const char *what) {
    const char *msg = tp ? tg_tape_error(tp) : NULL;
    if (!msg) msg = tg_last_error();
    fprintf(stderr, "%s: %s failed: %s\n", workload, what, msg ? msg : "(no message)");
    return 1;
}

/* ---- overhead: per-op cost of recording and differentiating tiny ops ---------------------- */

enum { CHAIN_LEN = 100000, CHAIN_REPS = 5 };

typedef enum chain_kind { CHAIN_MIXED, CHAIN_MUL_S, CHAIN_ADD_S, CHAIN_TANH, CHAIN_MUL } chain_kind;

static const char *const chain_names[] = {"mixed", "mul_scalar", "add_scalar", "tanh", "mul"};

/* Op i of a chain of `kind` applied to y. `c` is a constant [1] tensor for the binary form.
 * The mixed chain cycles mul_scalar, add_scalar, tanh; its values stay bounded. */
static tg_tensor *chain_op(tg_tape *tp, chain_kind kind, int i, tg_tensor *y, tg_tensor *c) {
    switch (kind) {
    case CHAIN_MIXED:
        switch (i % 3) {
        case 0: return tg_mul_scalar(tp, y, 0.9);
        case 1: return tg_add_scalar(tp, y, 0.1);
        default: return tg_tanh(tp, y);
        }
    case CHAIN_MUL_S: return tg_mul_scalar(tp, y, 0.9999);
    case CHAIN_ADD_S: return tg_add_scalar(tp, y, 1e-6);
    case CHAIN_TANH: return tg_tanh(tp, y);
    case CHAIN_MUL: return tg_mul(tp, y, c);
    }
    return NULL;
}

typedef struct chain_result {
    double fwd_ns, bwd_ns, reset_ns; /* per op, from the fastest repetition */
} chain_result;

/* Builds a chain of CHAIN_LEN ops of `kind` from the leaf x, runs backward and resets the
 * tape, CHAIN_REPS times after one warm-up; keeps the repetition with the smallest forward +
 * backward time. Returns 0, or 1 after printing an error. */
static int run_chain(tg_tape *tp, chain_kind kind, tg_tensor *x, tg_tensor *c, chain_result *out) {
    double best = INFINITY;
    for (int rep = 0; rep <= CHAIN_REPS; rep++) {
        tg_tensor_zero_grad(x);
        double t0 = now_ns();
        tg_tensor *y = x;
        for (int i = 0; i < CHAIN_LEN; i++) y = chain_op(tp, kind, i, y, c);
        double t1 = now_ns();
        if (!y) return report_failure("overhead", tp, "forward");
        if (tg_backward(tp, y, NULL) != 0) return report_failure("overhead", tp, "backward");
        double t2 = now_ns();
        tg_tape_reset(tp);
        double t3 = now_ns();
        double g = tg_tensor_item(tg_tensor_grad(x));
        if (!isfinite(g)) {
            fprintf(stderr, "overhead: chain %s gave the non-finite gradient %g\n",
                    chain_names[kind], g);
            return 1;
        }
        if (rep > 0 && t2 - t0 < best) { /* rep 0 warms the arena up */
            best = t2 - t0;
            out->fwd_ns = (t1 - t0) / CHAIN_LEN;
            out->bwd_ns = (t2 - t1) / CHAIN_LEN;
            out->reset_ns = t3 - t2;
        }
    }
    return 0;
}

/* Prints one line per chain kind, then the summary line for the mixed chain against the goal
 * of 200 ns per op (forward plus backward). */
static int bench_overhead(void) {
    tg_tape *tp = tg_tape_new();
    int64_t one = 1;
    tg_tensor *x = tg_full(NULL, TG_F32, 1, &one, 0.5);
    tg_tensor *c = tg_full(NULL, TG_F32, 1, &one, 0.9999);
    int status = 0;
    if (!tp || !x || !c || tg_set_requires_grad(x, true) != 0) {
        status = report_failure("overhead", NULL, "setup");
    }
    double mixed = 0;
    for (int kind = CHAIN_MIXED; kind <= CHAIN_MUL && status == 0; kind++) {
        chain_result r;
        status = run_chain(tp, (chain_kind)kind, x, c, &r);
        if (status) break;
        printf("overhead op=%s ops=%d ns_per_op=%.1f forward_ns=%.1f backward_ns=%.1f "
               "reset_ns=%.0f\n", chain_names[kind], CHAIN_LEN, r.fwd_ns + r.bwd_ns, r.fwd_ns,
               r.bwd_ns, r.reset_ns);
        if (kind == CHAIN_MIXED) mixed = r.fwd_ns + r.bwd_ns;
    }
    if (status == 0) printf("overhead ns_per_op=%.1f goal<=200\n", mixed);
    fflush(stdout);
    tg_tensor_free(c);
    tg_tensor_free(x);
    tg_tape_free(tp);
    return status;
}

/* ---- matmul: tg_matmul against BLIS on the same operands --------------------------------- */

/* Rounds per size: at least MIN, then more while the size has used less than MATMUL_BUDGET_NS,
 * up to MAX; one batch of calls on one side takes about MATMUL_BATCH_NS. */
enum { MATMUL_MIN_ROUNDS = 5, MATMUL_MAX_ROUNDS = 15 };
#define MATMUL_BATCH_NS 50e6
#define MATMUL_BUDGET_NS 1.5e9
static const int64_t matmul_sizes[] = {64, 128, 256, 512, 1024, 2048};

/* C [n, n] = A [n, n] B [n, n] directly through BLIS, the way tg_k_gemm describes row-major
 * operands. */
static void blis_matmul(int64_t n, const float *a, const float *b, float *c) {
    float one = 1.0f, zero = 0.0f;
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, n, n, n, &one, (float *)a, n, 1, (float *)b,
              n, 1, &zero, c, n, 1);
}

/* Runs `calls` products on one side (tapegrad through a tape reset each call, or BLIS) and
 * returns the nanoseconds per call, or a negative value when tg_matmul failed. */
static double time_matmul_side(bool tapegrad, int calls, tg_tape *tp, tg_tensor *a,
                               tg_tensor *b, float *c) {
    int64_t n = tg_tensor_dim(a, 0);
    double t0 = now_ns();
    for (int i = 0; i < calls; i++) {
        if (tapegrad) {
            tg_tensor *y = tg_matmul(tp, a, b);
            tg_tape_reset(tp);
            if (!y) return -1;
        } else {
            blis_matmul(n, tg_tensor_data(a), tg_tensor_data(b), c);
        }
    }
    return (now_ns() - t0) / calls;
}

/* The largest |x - y| over n floats. */
static double max_abs_diff(int64_t n, const float *x, const float *y) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i] - (double)y[i]));
    return m;
}

/* One square size: checks that both sides agree, warms up, then several rounds, each timing a
 * batch of calls on both sides in alternating order so that machine noise hits both. Prints
 * the best-of-rounds GFLOP/s of each side and their quotient (best_ratio), and as `ratio` the
 * median over rounds of tapegrad/BLIS speed within a round, which a noisy round cannot sway. */
static int bench_matmul_size(tg_tape *tp, tg_rng *rng, int64_t n) {
    int64_t shape[2] = {n, n};
    tg_tensor *a = tg_rand(NULL, rng, TG_F32, 2, shape, -1.0, 1.0);
    tg_tensor *b = tg_rand(NULL, rng, TG_F32, 2, shape, -1.0, 1.0);
    float *c = aligned_alloc(64, (size_t)(n * n) * sizeof(float));
    int status = 0;
    if (!a || !b || !c) {
        status = report_failure("matmul", NULL, "allocating the operands");
        goto done;
    }
    /* Same result on both sides, from the tape's output before it is reset. */
    tg_tensor *y = tg_matmul(tp, a, b);
    if (!y) {
        status = report_failure("matmul", tp, "tg_matmul");
        goto done;
    }
    blis_matmul(n, tg_tensor_data(a), tg_tensor_data(b), c);
    double diff = max_abs_diff(n * n, tg_tensor_data(y), c);
    tg_tape_reset(tp);
    if (diff > 1e-3 * (double)n) {
        fprintf(stderr, "matmul: n=%lld: tg_matmul and bli_sgemm differ by %g\n", (long long)n,
                diff);
        status = 1;
        goto done;
    }
    /* Warm-up; the fastest of a few single calls sizes the batches (one is enough for a size
     * whose single call already takes a batch's time). */
    time_matmul_side(true, 1, tp, a, b, c);
    time_matmul_side(false, 1, tp, a, b, c);
    double per_call = INFINITY;
    for (int i = 0; i < 3 && (i == 0 || per_call < MATMUL_BATCH_NS / 2); i++)
        per_call = fmin(per_call, fmax(time_matmul_side(true, 1, tp, a, b, c),
                                       time_matmul_side(false, 1, tp, a, b, c)));
    int calls = (int)fmin(fmax(MATMUL_BATCH_NS / per_call, 1.0), 100000.0);
    time_matmul_side(true, calls, tp, a, b, c);
    time_matmul_side(false, calls, tp, a, b, c);

    double tg_ns[MATMUL_MAX_ROUNDS], blis_ns[MATMUL_MAX_ROUNDS], ratio[MATMUL_MAX_ROUNDS];
    double start = now_ns();
    int rounds = 0;
    for (int r = 0; r < MATMUL_MAX_ROUNDS &&
                    (r < MATMUL_MIN_ROUNDS || now_ns() - start < MATMUL_BUDGET_NS); r++) {
        bool tg_first = r % 2 == 0;
        double first = time_matmul_side(tg_first, calls, tp, a, b, c);
        double second = time_matmul_side(!tg_first, calls, tp, a, b, c);
        tg_ns[r] = tg_first ? first : second;
        blis_ns[r] = tg_first ? second : first;
        if (tg_ns[r] < 0) {
            status = report_failure("matmul", tp, "tg_matmul");
            goto done;
        }
        ratio[r] = blis_ns[r] / tg_ns[r];
        rounds = r + 1;
    }
    double flops = 2.0 * (double)n * (double)n * (double)n;
    sort_doubles(tg_ns, rounds);
    sort_doubles(blis_ns, rounds);
    double tg_gflops = flops / tg_ns[0], blis_gflops = flops / blis_ns[0];
    printf("matmul n=%lld tapegrad_gflops=%.1f blis_gflops=%.1f ratio=%.3f best_ratio=%.3f "
           "rounds=%d calls_per_round=%d goal>=0.90\n", (long long)n, tg_gflops, blis_gflops,
           median(ratio, rounds), tg_gflops / blis_gflops, rounds, calls);
    fflush(stdout);
done:
    free(c);
    tg_tensor_free(b);
    tg_tensor_free(a);
    return status;
}

/* Every size of matmul_sizes on a tape that records (grad enabled) with inputs that do not
 * require grad: the pure forward path, the arena reused by a reset after each product. */
static int bench_matmul(void) {
    tg_tape *tp = tg_tape_new();
    tg_rng *rng = tg_rng_new(42);
    int status = 0;
    if (!tp || !rng) status = report_failure("matmul", NULL, "setup");
    printf("matmul threads=%d blis_threads=%d blis_version=%s blis_arch=%s\n",
           tg_get_num_threads(), (int)bli_thread_get_num_threads(), bli_info_get_version_str(),
           bli_arch_string(bli_arch_query_id()));
    for (size_t i = 0; i < sizeof matmul_sizes / sizeof *matmul_sizes && status == 0; i++)
        status = bench_matmul_size(tp, rng, matmul_sizes[i]);
    tg_rng_free(rng);
    tg_tape_free(tp);
    return status;
}

/* ---- arena: memory of a repeated training step -------------------------------------------- */

enum { MLP_BATCH = 64, MLP_IN = 32, MLP_HIDDEN = 64, MLP_OUT = 10, MLP_STEPS = 20 };

typedef struct mlp {
    tg_tensor *x, *target;        /* [B, IN], [B, OUT] */
    tg_tensor *w1, *b1, *w2, *b2; /* [IN, H], [H], [H, OUT], [OUT] */
} mlp;

/* loss = mean((relu(x w1 + b1) w2 + b2 - target)^2) on tp; NULL with an error on tp. */
static tg_tensor *mlp_loss(tg_tape *tp, const mlp *m) {
    tg_tensor *h = tg_relu(tp, tg_add(tp, tg_matmul(tp, m->x, m->w1), m->b1));
    tg_tensor *o = tg_add(tp, tg_matmul(tp, h, m->w2), m->b2);
    return tg_mean(tp, tg_square(tp, tg_sub(tp, o, m->target)), NULL, 0, false);
}

/* p -= lr * grad(p), then zeroes the grad. */
static void sgd_update(tg_tensor *p, float lr) {
    float *w = tg_tensor_data_mut(p);
    const float *g = tg_tensor_data(tg_tensor_grad(p));
    for (int64_t i = 0; i < tg_tensor_numel(p); i++) w[i] -= lr * g[i];
    tg_tensor_zero_grad(p);
}

/* MLP_STEPS steps of forward, backward, SGD and reset. bytes_per_step is the arena use at the
 * end of a step (largest over the steps); system_allocs_after_step1 counts the arena's chunk
 * allocations after the first step and its reset (goal: 0). */
static int bench_arena(void) {
    tg_tape *tp = tg_tape_new();
    tg_rng *rng = tg_rng_new(7);
    mlp m = {0};
    int status = 0;
    if (tp && rng) {
        m.x = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){MLP_BATCH, MLP_IN}, 0.0, 1.0);
        m.target = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){MLP_BATCH, MLP_OUT}, 0.0, 1.0);
        m.w1 = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){MLP_IN, MLP_HIDDEN}, 0.0, 0.2);
        m.b1 = tg_zeros(NULL, TG_F32, 1, (int64_t[]){MLP_HIDDEN});
        m.w2 = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){MLP_HIDDEN, MLP_OUT}, 0.0, 0.2);
        m.b2 = tg_zeros(NULL, TG_F32, 1, (int64_t[]){MLP_OUT});
    }
    tg_tensor *params[4] = {m.w1, m.b1, m.w2, m.b2};
    if (!tp || !rng || !m.x || !m.target || !m.w1 || !m.b1 || !m.w2 || !m.b2)
        status = report_failure("arena", NULL, "setup");
    for (int i = 0; i < 4 && status == 0; i++)
        if (tg_set_requires_grad(params[i], true) != 0) status = report_failure("arena", NULL, "setup");

    size_t bytes_per_step = 0;
    uint64_t allocs_after_step1 = 0;
    int64_t nodes = 0;
    double loss_first = 0, loss_last = 0;
    for (int step = 0; step < MLP_STEPS && status == 0; step++) {
        tg_tensor *loss = mlp_loss(tp, &m);
        if (!loss) {
            status = report_failure("arena", tp, "forward");
            break;
        }
        loss_last = tg_tensor_item(loss);
        if (step == 0) loss_first = loss_last;
        if (tg_backward(tp, loss, NULL) != 0) {
            status = report_failure("arena", tp, "backward");
            break;
        }
        tg_tape_stats st = tg_tape_get_stats(tp);
        if (st.bytes_used > bytes_per_step) bytes_per_step = st.bytes_used;
        nodes = st.nodes;
        for (int i = 0; i < 4; i++) sgd_update(params[i], 0.05f);
        tg_tape_reset(tp);
        if (step == 0) allocs_after_step1 = tg_tape_get_stats(tp).system_allocs;
    }
    if (status == 0) {
        tg_tape_stats st = tg_tape_get_stats(tp);
        printf("arena bytes_per_step=%zu system_allocs_after_step1=%llu steps=%d nodes=%lld "
               "bytes_reserved=%zu loss_first=%.4f loss_last=%.4f goal=0\n", bytes_per_step,
               (unsigned long long)(st.system_allocs - allocs_after_step1), MLP_STEPS,
               (long long)nodes, st.bytes_reserved, loss_first, loss_last);
        fflush(stdout);
    }
    for (int i = 0; i < 4; i++) tg_tensor_free(params[i]);
    tg_tensor_free(m.target);
    tg_tensor_free(m.x);
    tg_rng_free(rng);
    tg_tape_free(tp);
    return status;
}

/* ---- the table and the command line -------------------------------------------------------- */

typedef struct workload {
    const char *name;
    const char *summary;
    int (*run)(void); /* 0, or nonzero after printing an error */
} workload;

static const workload workloads[] = {
    {"overhead", "ns per op (forward + backward) on chains of 1-element f32 ops; goal <= 200",
     bench_overhead},
    {"matmul", "f32 tg_matmul vs bli_sgemm GFLOP/s, n = 64..2048; goal ratio >= 0.90",
     bench_matmul},
    {"arena", "arena bytes and system allocations of a repeated MLP training step; goal 0",
     bench_arena},
};
enum { N_WORKLOADS = sizeof workloads / sizeof *workloads };

/* The usage text, on `out`. */
static void usage(FILE *out) {
    fprintf(out, "usage: tapegrad-bench [--threads N] [NAME...]\n"
                 "Runs the named workloads (all when none is named) and prints one key=value\n"
                 "line per result.\n\n"
                 "  --threads N  threads for BLIS and the OpenMP kernels (default: "
                 "OMP_NUM_THREADS or the core count)\n"
                 "  --help       this text\n\nworkloads:\n");
    for (int i = 0; i < N_WORKLOADS; i++)
        fprintf(out, "  %-9s %s\n", workloads[i].name, workloads[i].summary);
}

/* The workload called name, or NULL. */
static const workload *find_workload(const char *name) {
    for (int i = 0; i < N_WORKLOADS; i++)
        if (strcmp(workloads[i].name, name) == 0) return &workloads[i];
    return NULL;
}

/* Parses the command line, then runs the selected workloads in the order given (the table's
 * order when none is given). Exit status: 0, 1 when a workload failed, 2 for bad usage. */
int main(int argc, char **argv) {
    const workload *selected[64];
    int n_selected = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(arg, "--threads") == 0 || strncmp(arg, "--threads=", 10) == 0) {
            const char *v = arg[9] == '=' ? arg + 10 : (i + 1 < argc ? argv[++i] : NULL);
            char *end = NULL;
            long n = v ? strtol(v, &end, 10) : 0;
            if (!v || *end != '\0' || n < 1 || n > 1024) {
                fprintf(stderr, "tapegrad-bench: --threads needs a count from 1 to 1024\n");
                return 2;
            }
            tg_set_num_threads((int)n);
            continue;
        }
        const workload *w = find_workload(arg);
        if (!w) {
            fprintf(stderr, "tapegrad-bench: unknown workload or option '%s'\n\n", arg);
            usage(stderr);
            return 2;
        }
        if (n_selected == (int)(sizeof selected / sizeof *selected)) {
            fprintf(stderr, "tapegrad-bench: too many workloads named\n");
            return 2;
        }
        selected[n_selected++] = w;
    }
    if (n_selected == 0)
        for (int i = 0; i < N_WORKLOADS; i++) selected[n_selected++] = &workloads[i];
    printf("tapegrad-bench threads=%d\n", tg_get_num_threads());
    int status = 0;
    for (int i = 0; i < n_selected; i++)
        if (selected[i]->run() != 0) status = 1;
    return status;
}
