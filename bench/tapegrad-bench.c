/* tapegrad-bench: the speed and memory goals of the library, measured. Each workload is a named
 * entry of one table; `tapegrad-bench` runs them all, `tapegrad-bench NAME...` the ones named.
 * bench/pytorch_reference.py runs the same workloads (same names, models, batch sizes,
 * optimizers and timing rule) in PyTorch, and bench/compare.sh runs the two alternately and
 * prints both side by side.
 *
 * Output: a result line is `<result> tapegrad=<value> unit=<unit> better=<higher|lower>` and
 * more key=value details; any other line (no `tapegrad=` key) is detail only. Nothing here is a
 * test: goals are printed next to the numbers and the exit status only reports errors (bad
 * arguments, an op that failed).
 *
 * Timing rule (both sides): warm up, size a round so it takes a fixed time, time several rounds
 * and keep the fastest. Data are synthetic, in memory, from fixed seeds.
 *
 *   train_seed000  seed 000's CNN, batch 32, Adam: training images/s
 *   train_lenet5   LeNet-5 on 32x32, batch 64, SGD lr 0.1: training images/s
 *   train_mytorch  seed 001's net, batch 10, AdamW, cross-entropy sum: training images/s
 *   train_resnet   seed 003's small ResNet on 3x32x32, batch 16, SGD lr 0.01: training images/s
 *   conv2d         conv2d forward + backward at every conv layer shape of the four nets
 *   matmul         f32 tg_matmul, n = 64..2048, GFLOP/s, also against bli_sgemm directly
 *   batchnorm      batch norm (training) forward + backward at a few shapes
 *   cross_entropy  cross-entropy forward + backward at a few shapes
 *   overhead       recording cost per op on chains of 1-element f32 ops, forward + backward
 *   arena          arena bytes per step and system allocations after the first MLP step
 *   mnist          peak RSS and wall time of the mnist example (a child process) */
#include <blis.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tapegrad.h"

/* ---- counting allocator -------------------------------------------------------------------
 * Every allocation of the process (the library's, BLIS's and OpenMP's too: the dynamic linker
 * binds their malloc to these definitions) is counted here and forwarded to glibc, so the
 * training workloads can report the allocations a steady-state step makes. Left out under
 * AddressSanitizer, which replaces malloc itself. */
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#define COUNTS_MALLOCS 1
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static atomic_ullong n_allocs;

/* glibc's malloc, counted. */
void *malloc(size_t size) {
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

/* glibc's calloc, counted. */
void *calloc(size_t n, size_t size) {
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_calloc(n, size);
}

/* glibc's realloc, counted. */
void *realloc(void *p, size_t size) {
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_realloc(p, size);
}

/* glibc's aligned allocation, counted. */
void *aligned_alloc(size_t alignment, size_t size) {
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_memalign(alignment, size);
}

/* POSIX's contract (EINVAL for an alignment that is not a power of two multiple of
 * sizeof(void *), ENOMEM), on glibc's aligned allocation, counted. */
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    void *p = __libc_memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
#endif

/* Allocations so far (malloc, calloc, realloc, aligned), or -1 where they are not counted. */
static long long allocs_so_far(void) {
#ifdef COUNTS_MALLOCS
    return (long long)atomic_load(&n_allocs);
#else
    return -1;
#endif
}

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

/* Prints the tape's error (or tg_last_error when there is none) under the workload's name;
 * returns 1 for the caller to pass on as a failure. */
static int report_failure(const char *workload, tg_tape *tp, const char *what) {
    const char *msg = tp ? tg_tape_error(tp) : NULL;
    if (!msg) msg = tg_last_error();
    fprintf(stderr, "%s: %s failed: %s\n", workload, what, msg ? msg : "(no message)");
    return 1;
}

/* A persistent f32 tensor [shape] of normal(0, 1) values, optionally requiring grad. */
static tg_tensor *randn_param(tg_rng *rng, int ndim, const int64_t *shape, bool requires_grad) {
    tg_tensor *t = tg_randn(NULL, rng, TG_F32, ndim, shape, 0.0, 1.0);
    if (t && requires_grad && tg_set_requires_grad(t, true) != 0) {
        tg_tensor_free(t);
        return NULL;
    }
    return t;
}

/* A persistent int64 [n] of class labels uniform in [0, classes). */
static tg_tensor *random_labels(tg_rng *rng, int64_t n, int64_t classes) {
    int64_t *labels = malloc((size_t)n * sizeof *labels);
    if (!labels) return NULL;
    for (int64_t i = 0; i < n; i++) labels[i] = (int64_t)tg_rng_below(rng, (uint64_t)classes);
    tg_tensor *t = tg_tensor_from(NULL, TG_I64, 1, &n, labels);
    free(labels);
    return t;
}

/* "32x1x28x28" for a shape, into buf. */
static const char *shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, i ? "x%lld" : "%lld", (long long)shape[i]);
    return buf;
}

/* ---- timing ------------------------------------------------------------------------------- */

/* One call of the measured work; 0, or nonzero after printing why it failed. */
typedef int (*bench_fn)(void *ctx);

typedef struct timing {
    double round_ns; /* a round lasts about this long (at least one call) */
    int rounds;      /* rounds timed after the warm-up */
} timing;

static const timing train_timing = {250e6, 5}; /* training steps of 1 to 100 ms */
static const timing op_timing = {50e6, 5};     /* single ops of microseconds to milliseconds */

/* The fastest round's nanoseconds per call of fn: warm-up calls (at least three, for at least
 * half a round) size the rounds by the fastest of them, then t.rounds rounds run. Negative when
 * fn failed. */
static double time_best(bench_fn fn, void *ctx, timing t) {
    double start = now_ns(), fastest = INFINITY;
    for (int i = 0; i < 3 || now_ns() - start < t.round_ns / 2; i++) {
        double t0 = now_ns();
        if (fn(ctx) != 0) return -1;
        fastest = fmin(fastest, now_ns() - t0);
    }
    long calls = (long)fmax(1.0, fmin(t.round_ns / fmax(fastest, 1.0), 1e7));
    double best = INFINITY;
    for (int r = 0; r < t.rounds; r++) {
        double t0 = now_ns();
        for (long i = 0; i < calls; i++)
            if (fn(ctx) != 0) return -1;
        best = fmin(best, (now_ns() - t0) / (double)calls);
    }
    return best;
}

/* ---- the nets of the notes ---------------------------------------------------------------- */

enum { MAX_LAYERS = 16, RESNET_BLOCKS = 6 };

/* A residual block of seed 003: relu(conv2(relu(conv1(x))) + shortcut(x)), the shortcut a 1x1
 * convolution when the shape changes, else the identity (NULL). */
typedef struct res_block {
    tg_layer *conv1, *conv2, *shortcut;
} res_block;

/* A network: its model and either a list of layers applied in order, or (the ResNet) a stem
 * convolution, residual blocks, global average pooling and a linear classifier. */
typedef struct net {
    tg_model *model;
    tg_layer *layers[MAX_LAYERS]; /* sequential nets; the ResNet keeps stem and fc here */
    int n;
    res_block blocks[RESNET_BLOCKS];
    int n_blocks;                 /* 0 for the sequential nets */
    bool ok;                      /* false after any constructor failed */
} net;

/* Appends a layer, remembering a failure. */
static tg_layer *push(net *nt, tg_layer *layer) {
    if (!layer || nt->n == MAX_LAYERS) nt->ok = false;
    else nt->layers[nt->n++] = layer;
    return layer;
}

/* Conv options with square stride and padding. */
static tg_conv2d_opts conv_opts(int64_t stride, int64_t pad) {
    tg_conv2d_opts o = tg_conv2d_defaults();
    o.stride_h = o.stride_w = stride;
    o.pad_h = o.pad_w = pad;
    return o;
}

/* A k x k convolution layer with bias. */
static tg_layer *conv(net *nt, const char *name, int64_t in, int64_t out, int64_t k,
                      int64_t stride, int64_t pad, tg_rng *rng) {
    tg_conv2d_opts o = conv_opts(stride, pad);
    return tg_conv2d_new(nt->model, name, in, out, k, k, &o, true, rng);
}

/* seed 000 (as examples/mnist_common.c): Conv 1->16 k3 s2, ReLU, Conv 16->8 k3 s2, ReLU,
 * Conv 8->8 k3, ReLU, Flatten, Linear 128->64, ReLU, Dropout(0.5), Linear 64->10. [N,1,28,28] */
static void build_seed000(net *nt, tg_rng *rng) {
    tg_model *m = nt->model;
    push(nt, conv(nt, "backbone.0", 1, 16, 3, 2, 0, rng));
    push(nt, tg_activation_new(m, "backbone.1", TG_ACT_RELU, 0));
    push(nt, conv(nt, "backbone.2", 16, 8, 3, 2, 0, rng));
    push(nt, tg_activation_new(m, "backbone.3", TG_ACT_RELU, 0));
    push(nt, conv(nt, "backbone.4", 8, 8, 3, 1, 0, rng));
    push(nt, tg_activation_new(m, "backbone.5", TG_ACT_RELU, 0));
    push(nt, tg_flatten_new(m, "backbone.6", 1, -1));
    push(nt, tg_linear_new(m, "backbone.7", 128, 64, true, rng));
    push(nt, tg_activation_new(m, "backbone.8", TG_ACT_RELU, 0));
    push(nt, tg_dropout_new(m, "backbone.9", 0.5, rng));
    push(nt, tg_linear_new(m, "backbone.10", 64, 10, true, rng));
}

/* seed 003's LeNet-5: Conv 1->6 k5, tanh, AvgPool 2, Conv 6->16 k5, tanh, AvgPool 2, Flatten,
 * Linear 400->120, tanh, Linear 120->84, tanh, Linear 84->10. [N,1,32,32] */
static void build_lenet5(net *nt, tg_rng *rng) {
    tg_model *m = nt->model;
    tg_pool2d_opts pool = tg_pool2d_defaults(2, 2);
    push(nt, conv(nt, "conv1", 1, 6, 5, 1, 0, rng));
    push(nt, tg_activation_new(m, "tanh1", TG_ACT_TANH, 0));
    push(nt, tg_avg_pool2d_new(m, "pool1", &pool));
    push(nt, conv(nt, "conv2", 6, 16, 5, 1, 0, rng));
    push(nt, tg_activation_new(m, "tanh2", TG_ACT_TANH, 0));
    push(nt, tg_avg_pool2d_new(m, "pool2", &pool));
    push(nt, tg_flatten_new(m, "flatten", 1, -1));
    push(nt, tg_linear_new(m, "fc1", 400, 120, true, rng));
    push(nt, tg_activation_new(m, "tanh3", TG_ACT_TANH, 0));
    push(nt, tg_linear_new(m, "fc2", 120, 84, true, rng));
    push(nt, tg_activation_new(m, "tanh4", TG_ACT_TANH, 0));
    push(nt, tg_linear_new(m, "fc3", 84, 10, true, rng));
}

/* seed 001's net: Conv 1->32 k3 s2 p1, MaxPool 3/2, Conv 32->64 k3 s2 p1, BatchNorm2d, ReLU,
 * AvgPool 3, Flatten, Linear 64->10. [N,1,28,28] */
static void build_mytorch(net *nt, tg_rng *rng) {
    tg_model *m = nt->model;
    tg_pool2d_opts max = tg_pool2d_defaults(3, 3), avg = tg_pool2d_defaults(3, 3);
    max.stride_h = max.stride_w = 2;
    push(nt, conv(nt, "0", 1, 32, 3, 2, 1, rng));
    push(nt, tg_max_pool2d_new(m, "1", &max));
    push(nt, conv(nt, "2.conv", 32, 64, 3, 2, 1, rng));
    push(nt, tg_batch_norm2d_new(m, "2.bn", 64, 1e-5, 0.1, true, true));
    push(nt, tg_activation_new(m, "2.relu", TG_ACT_RELU, 0));
    push(nt, tg_avg_pool2d_new(m, "3", &avg));
    push(nt, tg_flatten_new(m, "4", 1, -1));
    push(nt, tg_linear_new(m, "5", 64, 10, true, rng));
}

/* seed 003's ResNet for CIFAR-10: stem Conv 3->16 k3 p1 (no activation), three stages of two
 * residual blocks (16->16 at 32x32, 16->32 stride 2, 32->64 stride 2; k3 p1, biases), global
 * average pooling, Linear 64->10. [N,3,32,32] */
static void build_resnet(net *nt, tg_rng *rng) {
    static const int64_t widths[] = {16, 16, 32, 64};
    push(nt, conv(nt, "stem", 3, 16, 3, 1, 1, rng));
    for (int stage = 0; stage < 3; stage++) {
        for (int i = 0; i < 2; i++) {
            int64_t in = i == 0 ? widths[stage] : widths[stage + 1], out = widths[stage + 1];
            int64_t stride = i == 0 && stage > 0 ? 2 : 1;
            char name[48];
            res_block *b = &nt->blocks[nt->n_blocks++];
            snprintf(name, sizeof name, "layer%d.%d.conv1", stage + 1, i);
            b->conv1 = conv(nt, name, in, out, 3, stride, 1, rng);
            snprintf(name, sizeof name, "layer%d.%d.conv2", stage + 1, i);
            b->conv2 = conv(nt, name, out, out, 3, 1, 1, rng);
            b->shortcut = NULL;
            if (stride != 1 || in != out) {
                snprintf(name, sizeof name, "layer%d.%d.shortcut", stage + 1, i);
                b->shortcut = conv(nt, name, in, out, 1, stride, 0, rng);
                if (!b->shortcut) nt->ok = false;
            }
            if (!b->conv1 || !b->conv2) nt->ok = false;
        }
    }
    push(nt, tg_linear_new(nt->model, "fc", 64, 10, true, rng));
}

/* The logits [N, 10] of nt for x on tp (NULL with the error on tp). */
static tg_tensor *net_forward(tg_tape *tp, const net *nt, tg_tensor *x) {
    if (nt->n_blocks == 0) {
        for (int i = 0; i < nt->n; i++) x = tg_layer_forward(tp, nt->layers[i], x);
        return x;
    }
    x = tg_layer_forward(tp, nt->layers[0], x);
    for (int i = 0; i < nt->n_blocks; i++) {
        const res_block *b = &nt->blocks[i];
        tg_tensor *y = tg_relu(tp, tg_layer_forward(tp, b->conv1, x));
        y = tg_layer_forward(tp, b->conv2, y);
        x = tg_relu(tp, tg_add(tp, y, b->shortcut ? tg_layer_forward(tp, b->shortcut, x) : x));
    }
    static const int spatial[] = {2, 3};
    return tg_layer_forward(tp, nt->layers[1], tg_mean(tp, x, spatial, 2, false));
}

/* ---- train_*: training throughput of the four nets ---------------------------------------- */

/* A net and how it is trained here: input [batch, channels, size, size], 10 classes. */
typedef struct train_spec {
    const char *name; /* the workload and its result line */
    void (*build)(net *nt, tg_rng *rng);
    int64_t batch, channels, size;
    tg_optim_kind optimizer;
    double lr;
    tg_reduction reduction;
} train_spec;

static const train_spec train_specs[] = {
    {"train_seed000", build_seed000, 32, 1, 28, TG_OPTIM_ADAM, 1e-2, TG_REDUCTION_MEAN},
    {"train_lenet5", build_lenet5, 64, 1, 32, TG_OPTIM_SGD, 0.1, TG_REDUCTION_MEAN},
    {"train_mytorch", build_mytorch, 10, 1, 28, TG_OPTIM_ADAMW, 1e-2, TG_REDUCTION_SUM},
    {"train_resnet", build_resnet, 16, 3, 32, TG_OPTIM_SGD, 1e-2, TG_REDUCTION_MEAN},
};

/* Distinct batches a training workload cycles through. On one batch repeated, the nets learn
 * it within a few hundred steps: the loss reaches 0, the gradients underflow to subnormal
 * floats, and the steps then time the CPU's slow path for subnormal arithmetic (seed000's
 * products 10x slower) instead of training. */
enum { TRAIN_BATCHES = 64 };

/* One net in training: its data, optimizer and tape. */
typedef struct train_ctx {
    const train_spec *spec;
    net nt;
    tg_tape *tp;
    tg_optim *optim;
    tg_tensor *x[TRAIN_BATCHES], *y[TRAIN_BATCHES]; /* [B, C, H, W] normal(0, 1); int64 [B] */
    tg_cross_entropy_opts ce;
    int64_t steps;
    double loss_first, loss_last;
    uint64_t arena_allocs_step1; /* the tape's system allocations after step 1 */
    long long allocs_step1;      /* the process's allocations after step 1 */
    size_t bytes_per_step;       /* arena bytes in use at the end of the latest step */
} train_ctx;

/* One training step: forward, cross-entropy, backward, optimizer step, zero_grad, tape reset.
 * Records the loss, the arena use and, after the first step, the allocation counters. */
static int train_step(void *p) {
    train_ctx *c = p;
    const int64_t b = c->steps % TRAIN_BATCHES;
    tg_tensor *loss =
        tg_cross_entropy(c->tp, net_forward(c->tp, &c->nt, c->x[b]), c->y[b], &c->ce);
    if (!loss || tg_backward(c->tp, loss, NULL) != 0 || tg_optim_step(c->optim) != 0)
        return report_failure(c->spec->name, c->tp, "training step");
    tg_optim_zero_grad(c->optim);
    c->loss_last = tg_tensor_item(loss);
    if (c->steps == 0) c->loss_first = c->loss_last;
    c->bytes_per_step = tg_tape_get_stats(c->tp).bytes_used;
    tg_tape_reset(c->tp);
    if (++c->steps == 1) {
        c->arena_allocs_step1 = tg_tape_get_stats(c->tp).system_allocs;
        c->allocs_step1 = allocs_so_far();
    }
    return 0;
}

/* Training images per second of the net in spec (arg), with the arena bytes per step and the
 * tape's and the process's allocations after the first step (goal 0). */
static int bench_train(const void *arg) {
    const train_spec *s = arg;
    train_ctx c = {.spec = s, .ce = tg_cross_entropy_defaults()};
    c.ce.reduction = s->reduction;
    tg_rng *rng = tg_rng_new(1);
    c.nt = (net){.model = tg_model_new("Net"), .ok = true};
    int status = 0;
    if (rng && c.nt.model) s->build(&c.nt, rng);
    tg_optim_opts oo = tg_optim_defaults(s->optimizer);
    oo.lr = s->lr;
    c.optim = tg_optim_new(s->optimizer, &oo);
    c.tp = tg_tape_new();
    bool data = rng != NULL;
    for (int b = 0; b < TRAIN_BATCHES && data; b++) {
        c.x[b] = randn_param(rng, 4, (int64_t[]){s->batch, s->channels, s->size, s->size}, false);
        c.y[b] = random_labels(rng, s->batch, 10);
        data = c.x[b] && c.y[b];
    }
    if (!data || !c.nt.ok || !c.optim || !c.tp ||
        tg_optim_add_model(c.optim, c.nt.model, NULL, NULL, false, NULL) < 0)
        status = report_failure(s->name, NULL, "setup");
    double ns = status ? -1 : time_best(train_step, &c, train_timing);
    if (ns < 0) status = 1;
    if (status == 0) {
        long long allocs = allocs_so_far();
        printf("%s tapegrad=%.1f unit=img/s better=higher batch=%lld step_ms=%.3f steps=%lld "
               "params=%lld arena_bytes_per_step=%zu arena_allocs_after_step1=%llu "
               "mallocs_after_step1=%lld loss_first=%.4f loss_last=%.4f\n",
               s->name, 1e9 * (double)s->batch / ns, (long long)s->batch, ns / 1e6,
               (long long)c.steps, (long long)tg_model_num_parameters(c.nt.model, false),
               c.bytes_per_step,
               (unsigned long long)(tg_tape_get_stats(c.tp).system_allocs - c.arena_allocs_step1),
               allocs < 0 ? -1 : allocs - c.allocs_step1, c.loss_first, c.loss_last);
        fflush(stdout);
    }
    for (int b = 0; b < TRAIN_BATCHES; b++) {
        tg_tensor_free(c.y[b]);
        tg_tensor_free(c.x[b]);
    }
    tg_tape_free(c.tp);
    tg_optim_free(c.optim);
    tg_model_free(c.nt.model);
    tg_rng_free(rng);
    return status;
}

/* ---- conv2d: forward + backward at the nets' layer shapes --------------------------------- */

/* A conv layer of one of the nets: x [n, c, h, w], weight [oc, c, k, k], bias [oc]. The first
 * layer of a net gets no input gradient (its input is the data), the others do, as in
 * training. */
typedef struct conv_shape {
    const char *layer; /* net.layer as named in the net; x and N stand for several */
    int64_t n, c, h, w, oc, k, stride, pad;
    bool input_grad;
} conv_shape;

static const conv_shape conv_shapes[] = {
    {"seed000.backbone.0", 32, 1, 28, 28, 16, 3, 2, 0, false},
    {"seed000.backbone.2", 32, 16, 13, 13, 8, 3, 2, 0, true},
    {"seed000.backbone.4", 32, 8, 6, 6, 8, 3, 1, 0, true},
    {"lenet5.conv1", 64, 1, 32, 32, 6, 5, 1, 0, false},
    {"lenet5.conv2", 64, 6, 14, 14, 16, 5, 1, 0, true},
    {"mytorch.0", 10, 1, 28, 28, 32, 3, 2, 1, false},
    {"mytorch.2.conv", 10, 32, 6, 6, 64, 3, 2, 1, true},
    {"resnet.stem", 16, 3, 32, 32, 16, 3, 1, 1, false},
    {"resnet.layer1.x.convN", 16, 16, 32, 32, 16, 3, 1, 1, true},
    {"resnet.layer2.0.conv1", 16, 16, 32, 32, 32, 3, 2, 1, true},
    {"resnet.layer2.0.shortcut", 16, 16, 32, 32, 32, 1, 2, 0, true},
    {"resnet.layer2.x.convN", 16, 32, 16, 16, 32, 3, 1, 1, true},
    {"resnet.layer3.0.conv1", 16, 32, 16, 16, 64, 3, 2, 1, true},
    {"resnet.layer3.0.shortcut", 16, 32, 16, 16, 64, 1, 2, 0, true},
    {"resnet.layer3.x.convN", 16, 64, 8, 8, 64, 3, 1, 1, true},
};

/* Persistent operands of a forward + backward benchmark: inputs, some requiring grad, a seed
 * for backward shaped as the output, and the tape. */
typedef struct op_ctx {
    tg_tape *tp;
    tg_tensor *in[5]; /* op-specific; in[grad_from .. n_grad) require grad */
    int n_in, grad_from, n_grad;
    tg_tensor *seed;  /* dL/dy, ones; NULL for a scalar output */
    tg_conv2d_opts conv;
    tg_cross_entropy_opts ce;
} op_ctx;

/* Frees what an op_ctx holds. */
static void op_ctx_free(op_ctx *c) {
    for (int i = 0; i < c->n_in; i++) tg_tensor_free(c->in[i]);
    tg_tensor_free(c->seed);
    tg_tape_free(c->tp);
}

/* Backward from y (seeded with c->seed), then zeroes the inputs' grads and resets the tape. */
static int backward_and_reset(op_ctx *c, tg_tensor *y, const char *workload) {
    if (!y || tg_backward(c->tp, y, c->seed) != 0)
        return report_failure(workload, c->tp, "forward + backward");
    for (int i = c->grad_from; i < c->n_grad; i++) tg_tensor_zero_grad(c->in[i]);
    tg_tape_reset(c->tp);
    return 0;
}

/* y = conv2d(x, w, b); backward to w, b and (when it requires grad) x. */
static int conv_step(void *p) {
    op_ctx *c = p;
    return backward_and_reset(c, tg_conv2d(c->tp, c->in[0], c->in[1], c->in[2], &c->conv),
                              "conv2d");
}

/* Microseconds per conv2d forward + backward (grads of weight, bias and, but for a net's first
 * layer, x) at every shape of conv_shapes. */
static int bench_conv2d(const void *arg) {
    (void)arg;
    tg_rng *rng = tg_rng_new(2);
    int status = rng ? 0 : report_failure("conv2d", NULL, "setup");
    for (size_t i = 0; i < sizeof conv_shapes / sizeof *conv_shapes && status == 0; i++) {
        const conv_shape *s = &conv_shapes[i];
        int64_t oh = tg_window2d_out(s->h, s->k, s->stride, s->pad, 1);
        int64_t ow = tg_window2d_out(s->w, s->k, s->stride, s->pad, 1);
        int64_t xs[4] = {s->n, s->c, s->h, s->w}, ys[4] = {s->n, s->oc, oh, ow};
        op_ctx c = {.tp = tg_tape_new(), .n_in = 3, .grad_from = s->input_grad ? 0 : 1,
                    .n_grad = 3, .conv = conv_opts(s->stride, s->pad)};
        c.in[0] = randn_param(rng, 4, xs, s->input_grad);
        c.in[1] = randn_param(rng, 4, (int64_t[]){s->oc, s->c, s->k, s->k}, true);
        c.in[2] = randn_param(rng, 1, &s->oc, true);
        c.seed = tg_ones(NULL, TG_F32, 4, ys);
        double ns = -1;
        if (!c.tp || !c.in[0] || !c.in[1] || !c.in[2] || !c.seed)
            status = report_failure("conv2d", NULL, "setup");
        else if ((ns = time_best(conv_step, &c, op_timing)) < 0)
            status = 1;
        if (status == 0) {
            char shape[64];
            double gemms = s->input_grad ? 3 : 2; /* forward, dw and dx: one GEMM each */
            printf("conv2d.%s tapegrad=%.1f unit=us better=lower x=%s oc=%lld k=%lld stride=%lld "
                   "pad=%lld input_grad=%d gflops=%.2f\n", s->layer, ns / 1e3,
                   shape_str(shape, sizeof shape, 4, xs), (long long)s->oc, (long long)s->k,
                   (long long)s->stride, (long long)s->pad, (int)s->input_grad,
                   gemms * 2.0 * (double)(s->n * s->oc * oh * ow * s->c * s->k * s->k) / ns);
            fflush(stdout);
        }
        op_ctx_free(&c);
    }
    tg_rng_free(rng);
    return status;
}

/* ---- batchnorm and cross_entropy: forward + backward at a few shapes ---------------------- */

static const int64_t bn_shapes[][4] = {{10, 64, 3, 3}, {16, 16, 32, 32}, {32, 64, 16, 16},
                                       {64, 128, 8, 8}};

/* y = batch_norm(x, running stats, weight, bias) in training mode; backward to x, weight and
 * bias (the running statistics are updated in place at every call, as in training). */
static int bn_step(void *p) {
    op_ctx *c = p;
    return backward_and_reset(c, tg_batch_norm(c->tp, c->in[0], c->in[3], c->in[4], c->in[1],
                                               c->in[2], true, 0.1, 1e-5), "batchnorm");
}

/* Microseconds per batch norm forward + backward at every shape of bn_shapes. */
static int bench_batchnorm(const void *arg) {
    (void)arg;
    tg_rng *rng = tg_rng_new(3);
    int status = rng ? 0 : report_failure("batchnorm", NULL, "setup");
    for (size_t i = 0; i < sizeof bn_shapes / sizeof *bn_shapes && status == 0; i++) {
        const int64_t *xs = bn_shapes[i];
        op_ctx c = {.tp = tg_tape_new(), .n_in = 5, .n_grad = 3};
        c.in[0] = randn_param(rng, 4, xs, true);
        c.in[1] = tg_ones(NULL, TG_F32, 1, &xs[1]);
        c.in[2] = tg_zeros(NULL, TG_F32, 1, &xs[1]);
        c.in[3] = tg_zeros(NULL, TG_F32, 1, &xs[1]);
        c.in[4] = tg_ones(NULL, TG_F32, 1, &xs[1]);
        c.seed = tg_ones(NULL, TG_F32, 4, xs);
        double ns = -1;
        if (!c.tp || !c.in[0] || !c.in[1] || !c.in[2] || !c.in[3] || !c.in[4] || !c.seed ||
            tg_set_requires_grad(c.in[1], true) != 0 || tg_set_requires_grad(c.in[2], true) != 0)
            status = report_failure("batchnorm", NULL, "setup");
        else if ((ns = time_best(bn_step, &c, op_timing)) < 0)
            status = 1;
        if (status == 0) {
            char shape[64];
            shape_str(shape, sizeof shape, 4, xs);
            printf("batchnorm.%s tapegrad=%.1f unit=us better=lower\n", shape, ns / 1e3);
            fflush(stdout);
        }
        op_ctx_free(&c);
    }
    tg_rng_free(rng);
    return status;
}

static const int64_t ce_shapes[][2] = {{10, 10}, {32, 10}, {64, 10}, {256, 100}, {1024, 1000}};

/* loss = cross_entropy(logits, labels), mean reduction; backward to the logits. */
static int ce_step(void *p) {
    op_ctx *c = p;
    return backward_and_reset(c, tg_cross_entropy(c->tp, c->in[0], c->in[1], &c->ce),
                              "cross_entropy");
}

/* Microseconds per cross-entropy forward + backward at every shape of ce_shapes. */
static int bench_cross_entropy(const void *arg) {
    (void)arg;
    tg_rng *rng = tg_rng_new(4);
    int status = rng ? 0 : report_failure("cross_entropy", NULL, "setup");
    for (size_t i = 0; i < sizeof ce_shapes / sizeof *ce_shapes && status == 0; i++) {
        const int64_t *xs = ce_shapes[i];
        op_ctx c = {.tp = tg_tape_new(), .n_in = 2, .n_grad = 1,
                    .ce = tg_cross_entropy_defaults()};
        c.in[0] = randn_param(rng, 2, xs, true);
        c.in[1] = random_labels(rng, xs[0], xs[1]);
        double ns = -1;
        if (!c.tp || !c.in[0] || !c.in[1])
            status = report_failure("cross_entropy", NULL, "setup");
        else if ((ns = time_best(ce_step, &c, op_timing)) < 0)
            status = 1;
        if (status == 0) {
            printf("cross_entropy.%lldx%lld tapegrad=%.1f unit=us better=lower\n",
                   (long long)xs[0], (long long)xs[1], ns / 1e3);
            fflush(stdout);
        }
        op_ctx_free(&c);
    }
    tg_rng_free(rng);
    return status;
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

/* The result line for the mixed chain (the one PyTorch runs too) against the goal of 200 ns
 * per op, forward plus backward, then a detail line per chain kind. */
static int bench_overhead(const void *arg) {
    (void)arg;
    tg_tape *tp = tg_tape_new();
    int64_t one = 1;
    tg_tensor *x = tg_full(NULL, TG_F32, 1, &one, 0.5);
    tg_tensor *c = tg_full(NULL, TG_F32, 1, &one, 0.9999);
    int status = 0;
    if (!tp || !x || !c || tg_set_requires_grad(x, true) != 0) {
        status = report_failure("overhead", NULL, "setup");
    }
    for (int kind = CHAIN_MIXED; kind <= CHAIN_MUL && status == 0; kind++) {
        chain_result r;
        status = run_chain(tp, (chain_kind)kind, x, c, &r);
        if (status) break;
        if (kind == CHAIN_MIXED)
            printf("overhead tapegrad=%.1f unit=ns/op better=lower ops=%d forward_ns=%.1f "
                   "backward_ns=%.1f goal<=200\n", r.fwd_ns + r.bwd_ns, CHAIN_LEN, r.fwd_ns,
                   r.bwd_ns);
        printf("overhead op=%s ops=%d ns_per_op=%.1f forward_ns=%.1f backward_ns=%.1f "
               "reset_ns=%.0f\n", chain_names[kind], CHAIN_LEN, r.fwd_ns + r.bwd_ns, r.fwd_ns,
               r.bwd_ns, r.reset_ns);
    }
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
#define MATMUL_BATCH_NS 40e6
#define MATMUL_BUDGET_NS 0.6e9
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
 * the best-of-rounds GFLOP/s of tapegrad (the result) and of BLIS, and as vs_blis the median
 * over rounds of tapegrad/BLIS speed within a round, which a noisy round cannot sway. */
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
    printf("matmul.%lld tapegrad=%.1f unit=GFLOP/s better=higher blis=%.1f vs_blis=%.3f "
           "best_vs_blis=%.3f rounds=%d calls_per_round=%d goal_vs_blis>=0.90\n", (long long)n,
           tg_gflops, blis_gflops, median(ratio, rounds), tg_gflops / blis_gflops, rounds,
           calls);
    fflush(stdout);
done:
    free(c);
    tg_tensor_free(b);
    tg_tensor_free(a);
    return status;
}

/* Every size of matmul_sizes on a tape that records (grad enabled) with inputs that do not
 * require grad: the pure forward path, the arena reused by a reset after each product. */
static int bench_matmul(const void *arg) {
    (void)arg;
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

/* MLP_STEPS steps of forward, backward, SGD and reset. The result is the arena use at the end
 * of a step (largest over the steps); system_allocs_after_step1 counts the arena's chunk
 * allocations after the first step and its reset (goal: 0). */
static int bench_arena(const void *arg) {
    (void)arg;
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
        printf("arena tapegrad=%zu unit=bytes/step better=lower system_allocs_after_step1=%llu "
               "steps=%d nodes=%lld bytes_reserved=%zu loss_first=%.4f loss_last=%.4f goal=0\n",
               bytes_per_step, (unsigned long long)(st.system_allocs - allocs_after_step1),
               MLP_STEPS, (long long)nodes, st.bytes_reserved, loss_first, loss_last);
        fflush(stdout);
    }
    for (int i = 0; i < 4; i++) tg_tensor_free(params[i]);
    tg_tensor_free(m.target);
    tg_tensor_free(m.x);
    tg_rng_free(rng);
    tg_tape_free(tp);
    return status;
}

/* ---- mnist: peak memory of the whole example ---------------------------------------------- */

/* Epochs of the mnist run: TAPEGRAD_BENCH_MNIST_EPOCHS, default 1 (peak memory is reached in
 * the first epoch: the data, the model, the optimizer state and the arena of a step are all
 * there by its end; the run's 20 epochs only repeat it). */
static int mnist_epochs(void) {
    const char *env = getenv("TAPEGRAD_BENCH_MNIST_EPOCHS");
    int n = env ? atoi(env) : 1;
    return n >= 1 ? n : 1;
}

/* Runs examples/mnist (seed 000's recipe on the bundled data, at this program's thread count)
 * as a child with its output discarded; prints its peak resident set (ru_maxrss from wait4)
 * and its wall time. MNIST_EXAMPLE and MNIST_DATA come from bench/meson.build. */
static int bench_mnist(const void *arg) {
    (void)arg;
    char threads[16], epochs[16];
    snprintf(threads, sizeof threads, "%d", tg_get_num_threads());
    snprintf(epochs, sizeof epochs, "%d", mnist_epochs());
    char *const child_argv[] = {"mnist", "--quiet", "--data", MNIST_DATA, "--epochs", epochs,
                                "--threads", threads, NULL};
    fflush(stdout);
    double t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(127);
        execv(MNIST_EXAMPLE, child_argv);
        _exit(127);
    }
    int wstatus = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &wstatus, 0, &ru) != pid) {
        fprintf(stderr, "mnist: cannot run %s: %s\n", MNIST_EXAMPLE, strerror(errno));
        return 1;
    }
    double seconds = (now_ns() - t0) / 1e9;
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        fprintf(stderr, "mnist: %s %s failed (status %d)\n", MNIST_EXAMPLE, MNIST_DATA, wstatus);
        return 1;
    }
    printf("mnist.peak_rss tapegrad=%.1f unit=MiB better=lower epochs=%s goal<=0.5x_pytorch\n",
           (double)ru.ru_maxrss / 1024.0, epochs);
    printf("mnist.seconds tapegrad=%.2f unit=s better=lower epochs=%s\n", seconds, epochs);
    fflush(stdout);
    return 0;
}

/* ---- the table and the command line -------------------------------------------------------- */

typedef struct workload {
    const char *name;
    const char *summary;
    int (*run)(const void *arg); /* 0, or nonzero after printing an error */
    const void *arg;
} workload;

static const workload workloads[] = {
    {"train_seed000", "seed 000's CNN, batch 32, Adam: training img/s", bench_train,
     &train_specs[0]},
    {"train_lenet5", "LeNet-5 32x32, batch 64, SGD: training img/s", bench_train,
     &train_specs[1]},
    {"train_mytorch", "seed 001's net, batch 10, AdamW, CE sum: training img/s", bench_train,
     &train_specs[2]},
    {"train_resnet", "seed 003's ResNet 3x32x32, batch 16, SGD: training img/s", bench_train,
     &train_specs[3]},
    {"conv2d", "conv2d forward + backward at the nets' layer shapes, us", bench_conv2d, NULL},
    {"matmul", "f32 tg_matmul GFLOP/s, n = 64..2048, and vs bli_sgemm; goal >= 0.90",
     bench_matmul, NULL},
    {"batchnorm", "batch norm (training) forward + backward, us", bench_batchnorm, NULL},
    {"cross_entropy", "cross-entropy forward + backward, us", bench_cross_entropy, NULL},
    {"overhead", "ns per op (forward + backward) on chains of 1-element f32 ops; goal <= 200",
     bench_overhead, NULL},
    {"arena", "arena bytes and system allocations of a repeated MLP training step; goal 0",
     bench_arena, NULL},
    {"mnist", "peak RSS and seconds of examples/mnist (TAPEGRAD_BENCH_MNIST_EPOCHS, default 1)",
     bench_mnist, NULL},
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
        fprintf(out, "  %-13s %s\n", workloads[i].name, workloads[i].summary);
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
        if (selected[i]->run(selected[i]->arg) != 0) status = 1;
    return status;
}
