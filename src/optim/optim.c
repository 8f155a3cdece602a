/* Optimizers as torch.optim in PyTorch 1.13 (the single-tensor algorithms, foreach=False): SGD,
 * Adam, AdamW, RMSprop and Adagrad over parameter groups that each have their own options.
 *
 * Every state tensor is persistent, owned by the optimizer and created when its group is added:
 * per parameter (numbered by global position in add order) "state.<i>.step" (f64 scalar) and
 * the kind's buffers under torch's state_dict names, and per group "group.<g>.lr" (f64 scalar).
 * The step reads and writes only these tensors, so loading values into them (a checkpoint)
 * resumes exactly.
 *
 * Updates run in the parameter's dtype one torch operation at a time, with the Python scalars
 * (lr, betas, ...) rounded to that dtype as torch's CPU kernels convert them; bias corrections
 * and step sizes are computed in double as torch computes them in Python.
 *
 * One departure, on x86: updates treat subnormal numbers as zero (MXCSR flush-to-zero and
 * denormals-are-zero while tg_optim_step runs, as torch.set_flush_denormal(True) does for all
 * of PyTorch). A moment whose parameter stops getting gradient (a dead ReLU unit) decays
 * geometrically and is subnormal after ~800 Adam steps; the CPU's subnormal path then made
 * seed 000's Adam step 14x slower (7.5 to 105 us), the mnist example 3-5% slower. Flushed,
 * such a moment becomes 0 where PyTorch keeps a value below 1.2e-38, whose updates vanish
 * beside any normal parameter. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "tensor/tensor.h"

enum { MAX_BUFFERS = 3 };

/* One parameter and its state. buf[k] is the kind's k-th buffer (see buffer_names), NULL when
 * the group's options do not use it. */
typedef struct slot {
    tg_tensor *param;              /* borrowed */
    tg_tensor *step;               /* f64 []: updates applied so far */
    tg_tensor *buf[MAX_BUFFERS];   /* the param's dtype and shape */
} slot;

typedef struct group {
    tg_optim_opts opts;
    int first, n;                  /* its parameters: slots[first .. first + n) */
    tg_tensor *lr;                 /* f64 [] */
} group;

struct tg_optim {
    tg_optim_kind kind;
    tg_optim_opts defaults;
    group *groups;
    int n_groups, cap_groups;
    slot *slots;
    int n_slots, cap_slots;
    tg_state_entry *entries;       /* names are owned; so are the tensors */
    int n_entries, cap_entries;
};

/* The PyTorch class name of kind, for messages. */
static const char *kind_name(tg_optim_kind kind) {
    switch (kind) {
    case TG_OPTIM_SGD: return "SGD";
    case TG_OPTIM_ADAM: return "Adam";
    case TG_OPTIM_ADAMW: return "AdamW";
    case TG_OPTIM_RMSPROP: return "RMSprop";
    case TG_OPTIM_ADAGRAD: return "Adagrad";
    }
    return "?";
}

tg_optim_opts tg_optim_defaults(tg_optim_kind kind) {
    tg_optim_opts o = {
        .lr = 1e-2, .weight_decay = 0, .momentum = 0, .dampening = 0, .nesterov = false,
        .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .amsgrad = false, .alpha = 0.99,
        .centered = false, .lr_decay = 0, .initial_accumulator = 0,
    };
    if (kind == TG_OPTIM_ADAM || kind == TG_OPTIM_ADAMW) o.lr = 1e-3;
    if (kind == TG_OPTIM_ADAMW) o.weight_decay = 1e-2;
    if (kind == TG_OPTIM_ADAGRAD) o.eps = 1e-10;
    return o;
}

/* Checks the options kind uses as torch.optim's constructors do (NaN fails every check); on
 * failure writes the reason into why. */
static bool opts_valid(tg_optim_kind kind, const tg_optim_opts *o, char *why, size_t size) {
#define REQUIRE(cond, ...)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            snprintf(why, size, __VA_ARGS__);                                                 \
            return false;                                                                     \
        }                                                                                     \
    } while (0)
    REQUIRE(o->lr >= 0, "invalid learning rate %g (needs lr >= 0)", o->lr);
    REQUIRE(o->weight_decay >= 0, "invalid weight_decay %g (needs >= 0)", o->weight_decay);
    switch (kind) {
    case TG_OPTIM_SGD:
        REQUIRE(o->momentum >= 0, "invalid momentum %g (needs >= 0)", o->momentum);
        REQUIRE(isfinite(o->dampening), "invalid dampening %g", o->dampening);
        REQUIRE(!o->nesterov || (o->momentum > 0 && o->dampening == 0),
                "nesterov momentum requires a momentum and zero dampening");
        break;
    case TG_OPTIM_ADAM:
    case TG_OPTIM_ADAMW:
        REQUIRE(o->eps >= 0, "invalid eps %g (needs >= 0)", o->eps);
        REQUIRE(o->beta1 >= 0 && o->beta1 < 1, "invalid beta1 %g (needs 0 <= beta1 < 1)",
                o->beta1);
        REQUIRE(o->beta2 >= 0 && o->beta2 < 1, "invalid beta2 %g (needs 0 <= beta2 < 1)",
                o->beta2);
        break;
    case TG_OPTIM_RMSPROP:
        REQUIRE(o->eps >= 0, "invalid eps %g (needs >= 0)", o->eps);
        REQUIRE(o->momentum >= 0, "invalid momentum %g (needs >= 0)", o->momentum);
        REQUIRE(o->alpha >= 0, "invalid alpha %g (needs >= 0)", o->alpha);
        break;
    case TG_OPTIM_ADAGRAD:
        REQUIRE(o->eps >= 0, "invalid eps %g (needs >= 0)", o->eps);
        REQUIRE(o->lr_decay >= 0, "invalid lr_decay %g (needs >= 0)", o->lr_decay);
        REQUIRE(o->initial_accumulator >= 0, "invalid initial_accumulator %g (needs >= 0)",
                o->initial_accumulator);
        break;
    default: REQUIRE(false, "unknown optimizer kind %d", (int)kind);
    }
    return true;
#undef REQUIRE
}

/* The torch state_dict names of the kind's buffers under options o, in torch's order; NULL for
 * a buffer the options do not use. */
static void buffer_names(tg_optim_kind kind, const tg_optim_opts *o,
                         const char *names[MAX_BUFFERS]) {
    for (int k = 0; k < MAX_BUFFERS; k++) names[k] = NULL;
    switch (kind) {
    case TG_OPTIM_SGD:
        if (o->momentum != 0) names[0] = "momentum_buffer";
        break;
    case TG_OPTIM_ADAM:
    case TG_OPTIM_ADAMW:
        names[0] = "exp_avg";
        names[1] = "exp_avg_sq";
        if (o->amsgrad) names[2] = "max_exp_avg_sq";
        break;
    case TG_OPTIM_RMSPROP:
        names[0] = "square_avg";
        if (o->momentum > 0) names[1] = "momentum_buffer";
        if (o->centered) names[2] = "grad_avg";
        break;
    case TG_OPTIM_ADAGRAD: names[0] = "sum"; break;
    }
}

tg_optim *tg_optim_new(tg_optim_kind kind, const tg_optim_opts *opts) {
    tg_optim_opts o = opts ? *opts : tg_optim_defaults(kind);
    char why[160];
    if (!opts_valid(kind, &o, why, sizeof why)) {
        tg_set_last_error("optim_new(%s): %s", kind_name(kind), why);
        return NULL;
    }
    tg_optim *opt = calloc(1, sizeof *opt);
    if (!opt) {
        tg_set_last_error("optim_new: out of memory");
        return NULL;
    }
    opt->kind = kind;
    opt->defaults = o;
    tg_clear_last_error();
    return opt;
}

void tg_optim_free(tg_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n_entries; i++) {
        free((char *)o->entries[i].name);
        tg_tensor_free(o->entries[i].tensor);
    }
    free(o->entries);
    free(o->slots);
    free(o->groups);
    free(o);
}

/* Grows *items (of item_size bytes each, *cap of them) so that `need` fit. */
static bool reserve(void **items, int *cap, int need, size_t item_size) {
    if (need <= *cap) return true;
    int grown = *cap ? *cap : 8;
    while (grown < need) grown *= 2;
    void *p = realloc(*items, (size_t)grown * item_size);
    if (!p) return false;
    *items = p;
    *cap = grown;
    return true;
}

/* Registers t under a printf-formatted name (the optimizer owns both from here on, also on
 * failure, when t is freed). Returns t, or NULL when out of memory. */
static tg_tensor *add_entry(tg_optim *o, tg_tensor *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tg_tensor *add_entry(tg_optim *o, tg_tensor *t, const char *fmt, ...) {
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    char *copy = malloc(strlen(name) + 1);
    if (!t || !copy ||
        !reserve((void **)&o->entries, &o->cap_entries, o->n_entries + 1, sizeof *o->entries)) {
        free(copy);
        tg_tensor_free(t);
        return NULL;
    }
    strcpy(copy, name);
    o->entries[o->n_entries++] = (tg_state_entry){copy, t};
    return t;
}

/* Why params[i] cannot join a new group (NULL if it can). */
static const char *param_problem(const tg_optim *o, int n, tg_tensor *const *params, int i,
                                 char *why, size_t size) {
    const tg_tensor *p = params[i];
    if (!p) return "is NULL";
    if (p->tape) return "is a tape tensor (parameters must be persistent)";
    if (!tg_is_float(p->dtype)) {
        snprintf(why, size, "has dtype %s (parameters must be f32 or f64)",
                 tg_dtype_name(p->dtype));
        return why;
    }
    for (int g = 0; g < o->n_groups; g++)
        for (int k = 0; k < o->groups[g].n; k++)
            if (o->slots[o->groups[g].first + k].param == p) {
                snprintf(why, size, "is already in group %d", g);
                return why;
            }
    for (int j = 0; j < i && j < n; j++)
        if (params[j] == p) {
            snprintf(why, size, "appears twice in the group (also as parameter %d)", j);
            return why;
        }
    return NULL;
}

/* Creates the state of params[i] as slot number `index`; false when out of memory. */
static bool add_slot(tg_optim *o, const tg_optim_opts *opts, tg_tensor *p, int index) {
    slot *s = &o->slots[index];
    *s = (slot){.param = p};
    s->step = add_entry(o, tg_zeros(NULL, TG_F64, 0, NULL), "state.%d.step", index);
    if (!s->step) return false;
    const char *names[MAX_BUFFERS];
    buffer_names(o->kind, opts, names);
    for (int k = 0; k < MAX_BUFFERS; k++) {
        if (!names[k]) continue;
        double init = o->kind == TG_OPTIM_ADAGRAD ? opts->initial_accumulator : 0.0;
        s->buf[k] = add_entry(o, tg_full(NULL, p->dtype, p->ndim, p->shape, init),
                              "state.%d.%s", index, names[k]);
        if (!s->buf[k]) return false;
    }
    return true;
}

int tg_optim_add_group(tg_optim *o, int n, tg_tensor *const *params,
                       const tg_optim_opts *opts) {
    if (!o || n < 0 || (n > 0 && !params)) {
        tg_set_last_error("optim_add_group: needs an optimizer and n >= 0 parameters");
        return -1;
    }
    tg_optim_opts go = opts ? *opts : o->defaults;
    char why[160];
    if (!opts_valid(o->kind, &go, why, sizeof why)) {
        tg_set_last_error("optim_add_group(%s): %s", kind_name(o->kind), why);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *problem = param_problem(o, n, params, i, why, sizeof why);
        if (problem) {
            tg_set_last_error("optim_add_group: parameter %d %s", i, problem);
            return -1;
        }
    }
    int n_entries = o->n_entries, n_slots = o->n_slots;
    bool ok = reserve((void **)&o->groups, &o->cap_groups, o->n_groups + 1, sizeof *o->groups) &&
              reserve((void **)&o->slots, &o->cap_slots, o->n_slots + n, sizeof *o->slots);
    group *g = ok ? &o->groups[o->n_groups] : NULL;
    if (ok) {
        *g = (group){.opts = go, .first = o->n_slots, .n = n};
        g->lr = add_entry(o, tg_full(NULL, TG_F64, 0, NULL, go.lr), "group.%d.lr", o->n_groups);
        ok = g->lr != NULL;
    }
    for (int i = 0; ok && i < n; i++) ok = add_slot(o, &go, params[i], n_slots + i);
    if (!ok) { /* undo: drop every entry this call made */
        for (int i = n_entries; i < o->n_entries; i++) {
            free((char *)o->entries[i].name);
            tg_tensor_free(o->entries[i].tensor);
        }
        o->n_entries = n_entries;
        tg_set_last_error("optim_add_group: out of memory");
        return -1;
    }
    o->n_slots += n;
    tg_clear_last_error();
    return o->n_groups++;
}

bool tg_param_decays(const char *name, const tg_tensor *param, void *ctx) {
    (void)name;
    (void)ctx;
    return param && param->ndim >= 2;
}

int tg_optim_add_model(tg_optim *o, tg_model *m, tg_param_filter filter, void *ctx,
                       bool exclude, const tg_optim_opts *opts) {
    if (!o || !m) {
        tg_set_last_error("optim_add_model: needs an optimizer and a model");
        return -1;
    }
    int total = tg_model_num_entries(m), n = 0;
    tg_tensor **chosen = malloc((size_t)(total ? total : 1) * sizeof *chosen);
    if (!chosen) {
        tg_set_last_error("optim_add_model: out of memory");
        return -1;
    }
    for (int i = 0; i < total; i++) {
        tg_model_entry e = tg_model_entry_at(m, i);
        if (e.is_buffer || !e.tensor->requires_grad) continue;
        bool accepted = filter ? filter(e.name, e.tensor, ctx) : true;
        if (accepted != exclude) chosen[n++] = e.tensor;
    }
    int g = tg_optim_add_group(o, n, chosen, opts);
    free(chosen);
    return g;
}

int tg_optim_num_groups(const tg_optim *o) { return o ? o->n_groups : 0; }

double tg_optim_get_lr(const tg_optim *o, int group) {
    if (!o || group < 0 || group >= o->n_groups) {
        tg_set_last_error("optim_get_lr: no group %d", group);
        return NAN;
    }
    return *(const double *)o->groups[group].lr->data;
}

void tg_optim_set_lr(tg_optim *o, int group, double lr) {
    if (!o || group < -1 || group >= o->n_groups || !(lr >= 0)) {
        tg_set_last_error("optim_set_lr: needs group -1 .. %d and lr >= 0, got group %d, lr %g",
                          o ? o->n_groups - 1 : -1, group, lr);
        return;
    }
    for (int g = 0; g < o->n_groups; g++)
        if (group == -1 || g == group) *(double *)o->groups[g].lr->data = lr;
    tg_clear_last_error();
}

/* ---- the updates -------------------------------------------------------------------------
 * One torch.optim update of n elements of type T. Each statement is one torch operation on
 * tensors of T (add with alpha: a + alpha * b; addcmul: a + value * b * c; addcdiv:
 * a + value * b / c), so f32 rounds exactly where torch does. Scalars become T as torch converts
 * them; step sizes and bias corrections are double, as in torch's Python code. */

#define DEFINE_UPDATES(T, SFX, SQRT)                                                           \
    /* SGD: buf is the momentum buffer, first is true on the parameter's first update (the   \
     * buffer starts as a copy of the gradient). */                                           \
    static void sgd_##SFX(int64_t n, T *restrict p, const T *restrict g, T *restrict buf,     \
                          bool first, const tg_optim_opts *o, double lr) {                    \
        const T wd = (T)o->weight_decay, mom = (T)o->momentum;                                \
        const T keep = (T)(1 - o->dampening), neg_lr = (T)-lr;                                \
        for (int64_t i = 0; i < n; i++) {                                                     \
            T d = g[i];                                                                       \
            if (o->weight_decay != 0) d = d + wd * p[i];                                      \
            if (o->momentum != 0) {                                                           \
                if (first) {                                                                  \
                    buf[i] = d;                                                               \
                } else {                                                                      \
                    buf[i] = buf[i] * mom;                                                    \
                    buf[i] = buf[i] + keep * d;                                               \
                }                                                                             \
                d = o->nesterov ? d + mom * buf[i] : buf[i];                                  \
            }                                                                                 \
            p[i] = p[i] + neg_lr * d;                                                         \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    /* Adam (decoupled: AdamW's param *= 1 - lr wd instead of L2 on the gradient): m, v the   \
     * moments, vmax the amsgrad maximum, step the count including this update. */            \
    static void adam_##SFX(int64_t n, T *restrict p, const T *restrict g, T *restrict m,      \
                           T *restrict v, T *restrict vmax, const tg_optim_opts *o,           \
                           double lr, double step, bool decoupled) {                          \
        const double bias_correction1 = 1 - pow(o->beta1, step);                              \
        const double bias_correction2 = 1 - pow(o->beta2, step);                              \
        const T neg_step_size = (T)-(lr / bias_correction1);                                  \
        const T bc2_sqrt = (T)sqrt(bias_correction2), eps = (T)o->eps;                        \
        const T b1 = (T)o->beta1, b2 = (T)o->beta2;                                           \
        const T k1 = (T)(1 - o->beta1), k2 = (T)(1 - o->beta2);                               \
        const T wd = (T)o->weight_decay, shrink = (T)(1 - lr * o->weight_decay);              \
        for (int64_t i = 0; i < n; i++) {                                                     \
            T d = g[i];                                                                       \
            if (decoupled) p[i] = p[i] * shrink;                                              \
            else if (o->weight_decay != 0) d = d + wd * p[i];                                 \
            m[i] = m[i] * b1;                                                                 \
            m[i] = m[i] + k1 * d;                                                             \
            v[i] = v[i] * b2;                                                                 \
            v[i] = v[i] + k2 * d * d;                                                         \
            T second = v[i];                                                                  \
            if (o->amsgrad) {                                                                 \
                vmax[i] = vmax[i] >= v[i] ? vmax[i] : v[i];                                   \
                second = vmax[i];                                                             \
            }                                                                                 \
            T denom = SQRT(second) / bc2_sqrt;                                                \
            denom = denom + eps;                                                              \
            p[i] = p[i] + neg_step_size * m[i] / denom;                                       \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    /* RMSprop: sq the square average, buf the momentum buffer, avg_g the centered mean. */   \
    static void rmsprop_##SFX(int64_t n, T *restrict p, const T *restrict g,                  \
                              T *restrict sq, T *restrict buf, T *restrict avg_g,             \
                              const tg_optim_opts *o, double lr) {                            \
        const T wd = (T)o->weight_decay, a = (T)o->alpha, k = (T)(1 - o->alpha);              \
        const T eps = (T)o->eps, mom = (T)o->momentum, neg_lr = (T)-lr, neg_one = (T)-1;      \
        for (int64_t i = 0; i < n; i++) {                                                     \
            T d = g[i];                                                                       \
            if (o->weight_decay != 0) d = d + wd * p[i];                                      \
            sq[i] = sq[i] * a;                                                                \
            sq[i] = sq[i] + k * d * d;                                                        \
            T avg;                                                                            \
            if (o->centered) {                                                                \
                avg_g[i] = avg_g[i] * a;                                                      \
                avg_g[i] = avg_g[i] + k * d;                                                  \
                avg = SQRT(sq[i] + neg_one * avg_g[i] * avg_g[i]);                            \
            } else {                                                                          \
                avg = SQRT(sq[i]);                                                            \
            }                                                                                 \
            avg = avg + eps;                                                                  \
            if (o->momentum > 0) {                                                            \
                buf[i] = buf[i] * mom;                                                        \
                buf[i] = buf[i] + d / avg;                                                    \
                p[i] = p[i] + neg_lr * buf[i];                                                \
            } else {                                                                          \
                p[i] = p[i] + neg_lr * d / avg;                                               \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    /* Adagrad: sum the accumulated squares, step the count including this update. */         \
    static void adagrad_##SFX(int64_t n, T *restrict p, const T *restrict g,                  \
                              T *restrict sum, const tg_optim_opts *o, double lr,             \
                              double step) {                                                  \
        const double clr = lr / (1 + (step - 1) * o->lr_decay);                               \
        const T wd = (T)o->weight_decay, eps = (T)o->eps, neg_clr = (T)-clr;                  \
        for (int64_t i = 0; i < n; i++) {                                                     \
            T d = g[i];                                                                       \
            if (o->weight_decay != 0) d = d + wd * p[i];                                      \
            sum[i] = sum[i] + d * d;                                                          \
            T std = SQRT(sum[i]) + eps;                                                       \
            p[i] = p[i] + neg_clr * d / std;                                                  \
        }                                                                                     \
    }

DEFINE_UPDATES(float, f32, sqrtf)
DEFINE_UPDATES(double, f64, sqrt)

/* The buffer data pointers of slot s as type T (NULL where absent). */
#define BUF(s, k, T) ((s)->buf[k] ? (T *)(s)->buf[k]->data : NULL)

/* The body of update() for element type T: kind's rule on slot s. */
#define UPDATE(T, SFX)                                                                         \
    do {                                                                                      \
        T *p = (T *)s->param->data;                                                           \
        const T *gr = (const T *)s->param->grad->data;                                        \
        int64_t n = s->param->numel;                                                          \
        switch (kind) {                                                                       \
        case TG_OPTIM_SGD: sgd_##SFX(n, p, gr, BUF(s, 0, T), step == 1, o, lr); break;        \
        case TG_OPTIM_ADAM:                                                                   \
        case TG_OPTIM_ADAMW:                                                                  \
            adam_##SFX(n, p, gr, BUF(s, 0, T), BUF(s, 1, T), BUF(s, 2, T), o, lr, step,       \
                       kind == TG_OPTIM_ADAMW);                                               \
            break;                                                                            \
        case TG_OPTIM_RMSPROP:                                                                \
            rmsprop_##SFX(n, p, gr, BUF(s, 0, T), BUF(s, 1, T), BUF(s, 2, T), o, lr);         \
            break;                                                                            \
        case TG_OPTIM_ADAGRAD: adagrad_##SFX(n, p, gr, BUF(s, 0, T), o, lr, step); break;     \
        }                                                                                     \
    } while (0)

/* One update of slot s (whose parameter has a gradient) with group options o at rate lr:
 * counts the step, applies kind's rule in the parameter's dtype, bumps its version. */
static void update(tg_optim_kind kind, slot *s, const tg_optim_opts *o, double lr) {
    double step = ++*(double *)s->step->data;
    if (s->param->dtype == TG_F32) UPDATE(float, f32);
    else UPDATE(double, f64);
    tg_tensor_bump_version(s->param);
}

#if defined(__SSE__)
/* MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6). */
enum { FLUSH_SUBNORMALS = 0x8040 };
#endif

int tg_optim_step(tg_optim *o) {
    if (!o) {
        tg_set_last_error("optim_step: optimizer is NULL");
        return -1;
    }
    for (int i = 0; i < o->n_slots; i++) { /* check everything before changing anything */
        const tg_tensor *p = o->slots[i].param, *gr = p->grad;
        if (gr && (gr->dtype != p->dtype || gr->numel != p->numel)) {
            tg_set_last_error("optim_step: parameter %d is %s%s but its gradient is %s%s", i,
                              tg_dtype_name(p->dtype), TG_SHAPE_STR(p), tg_dtype_name(gr->dtype),
                              TG_SHAPE_STR(gr));
            return -1;
        }
    }
#if defined(__SSE__)
    const unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | FLUSH_SUBNORMALS);
#endif
    for (int gi = 0; gi < o->n_groups; gi++) {
        const group *g = &o->groups[gi];
        double lr = *(const double *)g->lr->data;
        for (int k = 0; k < g->n; k++) {
            slot *s = &o->slots[g->first + k];
            if (s->param->grad) update(o->kind, s, &g->opts, lr);
        }
    }
#if defined(__SSE__)
    _mm_setcsr(csr);
#endif
    tg_clear_last_error();
    return 0;
}

void tg_optim_zero_grad(tg_optim *o) {
    for (int i = 0; o && i < o->n_slots; i++) tg_tensor_zero_grad(o->slots[i].param);
}

int tg_optim_state(tg_optim *o, tg_state_entry *out, int cap) {
    if (!o) return 0;
    if (!out) return o->n_entries;
    int n = cap < o->n_entries ? (cap > 0 ? cap : 0) : o->n_entries;
    memcpy(out, o->entries, (size_t)n * sizeof *out);
    return n;
}
