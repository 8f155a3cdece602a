/* Learning-rate schedules as torch.optim.lr_scheduler (PyTorch 1.13) and early stopping.
 *
 * A schedule records each group's lr at construction as its base lr (torch's initial_lr) and
 * takes its initial step there, as torch's constructors do. Stepping uses torch's recursive
 * ("chainable") get_lr formulas, which read the optimizer's current lr, so the rates equal
 * torch's to the last bit rather than a closed form's. The state (last_epoch, base lrs, the
 * plateau counters) lives in persistent tensors that tg_sched_state hands to checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/tensor.h"

typedef enum sched_kind {
    SCHED_STEP,
    SCHED_MULTISTEP,
    SCHED_TABLE,
    SCHED_EXPONENTIAL,
    SCHED_COSINE,
    SCHED_INVERSE_TIME,
    SCHED_WARMUP,
    SCHED_PLATEAU,
} sched_kind;

enum { MAX_ENTRIES = 16 };

struct tg_sched {
    sched_kind kind;
    tg_optim *o;
    int n_groups;
    /* options */
    int64_t step_size;          /* step */
    double gamma;               /* step, multistep, exponential */
    int n_milestones;           /* multistep (sorted, repeats kept), table (increasing) */
    int64_t *milestones;
    double *values;             /* table */
    int64_t t_max;              /* cosine */
    double eta_min;             /* cosine */
    double rate;                /* inverse time */
    int64_t decay_steps;        /* inverse time */
    bool staircase;             /* inverse time */
    int64_t warmup;             /* warmup: its length, */
    double start_factor;        /* the first step's factor, */
    tg_sched *after;            /* and the schedule that follows (owned; may be NULL) */
    tg_plateau_opts plateau;
    /* state */
    tg_tensor *last_epoch;      /* i64 [] */
    tg_tensor *base_lrs;        /* f64 [n_groups] (all kinds but plateau) */
    tg_tensor *best;            /* plateau: f64 [] */
    tg_tensor *num_bad_epochs;  /* plateau: i64 [] */
    tg_tensor *cooldown_counter;/* plateau: i64 [] */
    tg_state_entry entries[MAX_ENTRIES]; /* names owned */
    int n_entries;
};

/* The elements of an i64 / f64 state tensor. */
static int64_t *i64_of(tg_tensor *t) { return (int64_t *)t->data; }
static double *f64_of(tg_tensor *t) { return (double *)t->data; }

void tg_sched_free(tg_sched *s) {
    if (!s) return;
    for (int i = 0; i < s->n_entries; i++) free((char *)s->entries[i].name);
    tg_tensor_free(s->last_epoch);
    tg_tensor_free(s->base_lrs);
    tg_tensor_free(s->best);
    tg_tensor_free(s->num_bad_epochs);
    tg_tensor_free(s->cooldown_counter);
    tg_sched_free(s->after);
    free(s->milestones);
    free(s->values);
    free(s);
}

/* Adds state entry `prefix name` for t; false when out of memory. */
static bool add_entry(tg_sched *s, const char *prefix, const char *name, tg_tensor *t) {
    size_t n = strlen(prefix) + strlen(name) + 1;
    char *copy = malloc(n);
    if (!copy || s->n_entries == MAX_ENTRIES) {
        free(copy);
        return false;
    }
    snprintf(copy, n, "%s%s", prefix, name);
    s->entries[s->n_entries++] = (tg_state_entry){copy, t};
    return true;
}

/* A schedule of `kind` on o with its state tensors (base lrs = the groups' current lrs,
 * last_epoch = -1), or NULL with the error reported under fn. */
static tg_sched *sched_create(const char *fn, sched_kind kind, tg_optim *o) {
    if (!o || tg_optim_num_groups(o) < 1) {
        tg_set_last_error("%s: needs an optimizer with at least one parameter group", fn);
        return NULL;
    }
    tg_sched *s = calloc(1, sizeof *s);
    if (!s) {
        tg_set_last_error("%s: out of memory", fn);
        return NULL;
    }
    s->kind = kind;
    s->o = o;
    s->n_groups = tg_optim_num_groups(o);
    int64_t g = s->n_groups;
    s->last_epoch = tg_full(NULL, TG_I64, 0, NULL, -1);
    bool ok = s->last_epoch && add_entry(s, "", "last_epoch", s->last_epoch);
    if (ok && kind == SCHED_PLATEAU) {
        s->best = tg_zeros(NULL, TG_F64, 0, NULL);
        s->num_bad_epochs = tg_zeros(NULL, TG_I64, 0, NULL);
        s->cooldown_counter = tg_zeros(NULL, TG_I64, 0, NULL);
        ok = s->best && s->num_bad_epochs && s->cooldown_counter &&
             add_entry(s, "", "best", s->best) &&
             add_entry(s, "", "num_bad_epochs", s->num_bad_epochs) &&
             add_entry(s, "", "cooldown_counter", s->cooldown_counter);
    } else if (ok) {
        s->base_lrs = tg_zeros(NULL, TG_F64, 1, &g);
        ok = s->base_lrs && add_entry(s, "", "base_lrs", s->base_lrs);
        for (int i = 0; ok && i < s->n_groups; i++) f64_of(s->base_lrs)[i] = tg_optim_get_lr(o, i);
    }
    if (!ok) {
        tg_sched_free(s);
        tg_set_last_error("%s: out of memory", fn);
        return NULL;
    }
    return s;
}

/* ---- the rates ---------------------------------------------------------------------------- */

static double base_lr(tg_sched *s, int g) { return f64_of(s->base_lrs)[g]; }

/* Python's a % m for m > 0 (never negative). */
static int64_t py_mod(int64_t a, int64_t m) { return ((a % m) + m) % m; }

/* How many of the (sorted) milestones are <= e, or == e with exact. */
static int count_milestones(const tg_sched *s, int64_t e, bool exact) {
    int c = 0;
    for (int i = 0; i < s->n_milestones; i++)
        c += exact ? s->milestones[i] == e : s->milestones[i] <= e;
    return c;
}

/* The LambdaLR kinds' rate of group g at epoch e: base_lr * lambda(e). */
static double lambda_lr(tg_sched *s, int g, int64_t e) {
    if (s->kind == SCHED_TABLE) {
        int passed = count_milestones(s, e, false);
        if (passed == 0) return base_lr(s, g);
        /* one lambda for all groups: group 0 follows the table, the others keep their ratio */
        double b0 = base_lr(s, 0);
        return s->values[passed - 1] * (b0 > 0 ? base_lr(s, g) / b0 : 1.0);
    }
    double q = s->staircase ? (double)(e / s->decay_steps) : (double)e / (double)s->decay_steps;
    return base_lr(s, g) * (1.0 / (1.0 + s->rate * q));
}

/* torch's get_lr for group g at epoch e (the epoch just reached), from its current rate. */
static double chained_lr(tg_sched *s, int g, int64_t e) {
    double lr = tg_optim_get_lr(s->o, g);
    switch (s->kind) {
    case SCHED_STEP: return (e == 0 || e % s->step_size != 0) ? lr : lr * s->gamma;
    case SCHED_MULTISTEP: {
        int c = count_milestones(s, e, true);
        return c == 0 ? lr : lr * pow(s->gamma, c);
    }
    case SCHED_EXPONENTIAL: return e == 0 ? lr : lr * s->gamma;
    case SCHED_COSINE: {
        double t = (double)s->t_max, eta = s->eta_min;
        if (e == 0) return lr;
        if (py_mod(e - 1 - s->t_max, 2 * s->t_max) == 0)
            return lr + (base_lr(s, g) - eta) * (1 - cos(M_PI / t)) / 2;
        return (1 + cos(M_PI * (double)e / t)) / (1 + cos(M_PI * (double)(e - 1) / t)) *
                   (lr - eta) + eta;
    }
    case SCHED_TABLE:
    case SCHED_INVERSE_TIME: return lambda_lr(s, g, e);
    case SCHED_WARMUP: /* LinearLR(start_factor, 1.0, warmup) */
        if (e == 0) return lr * s->start_factor;
        if (e > s->warmup) return lr;
        return lr * (1. + (1.0 - s->start_factor) /
                              ((double)s->warmup * s->start_factor +
                               (double)(e - 1) * (1.0 - s->start_factor)));
    default: return lr; /* plateau schedules change rates in plateau_step only */
    }
}

/* torch's rate for group g when a SequentialLR restarts the schedule at epoch 0: the closed
 * form where the scheduler has one (StepLR, ExponentialLR: base * gamma^0; CosineAnnealingLR:
 * eta_min + (base - eta_min) (1 + cos 0) / 2, whose factor is exactly 1), else get_lr. */
static double restart_lr(tg_sched *s, int g) {
    double b = base_lr(s, g);
    switch (s->kind) {
    case SCHED_STEP:
    case SCHED_EXPONENTIAL: return b;
    case SCHED_MULTISTEP: return b * pow(s->gamma, count_milestones(s, 0, false));
    case SCHED_COSINE: return s->eta_min + (b - s->eta_min);
    default: return lambda_lr(s, g, 0);
    }
}

/* Advances a non-plateau schedule by one epoch and sets every group's rate. */
static void advance(tg_sched *s) {
    int64_t e = ++*i64_of(s->last_epoch);
    if (s->kind == SCHED_WARMUP && s->after && e >= s->warmup) {
        tg_sched *a = s->after;
        if (e == s->warmup) { /* SequentialLR: after.step(0) */
            *i64_of(a->last_epoch) = 0;
            for (int g = 0; g < a->n_groups; g++) tg_optim_set_lr(a->o, g, restart_lr(a, g));
        } else {
            advance(a);
        }
        return;
    }
    for (int g = 0; g < s->n_groups; g++) tg_optim_set_lr(s->o, g, chained_lr(s, g, e));
}

/* ---- constructors ------------------------------------------------------------------------- */

/* Finishes construction: the initial step (last_epoch 0) as torch's constructors take it. */
static tg_sched *start(tg_sched *s) {
    advance(s);
    tg_clear_last_error();
    return s;
}

tg_sched *tg_sched_step_new(tg_optim *o, int64_t step_size, double gamma) {
    if (step_size < 1 || !(gamma >= 0) || isinf(gamma)) {
        tg_set_last_error("sched_step_new: needs step_size >= 1 and a finite gamma >= 0, got %lld "
                          "and %g", (long long)step_size, gamma);
        return NULL;
    }
    tg_sched *s = sched_create("sched_step_new", SCHED_STEP, o);
    if (!s) return NULL;
    s->step_size = step_size;
    s->gamma = gamma;
    return start(s);
}

/* qsort order of int64_t values. */
static int compare_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Copies n milestones (and values) into s; false when out of memory. */
static bool copy_milestones(tg_sched *s, int n, const int64_t *milestones, const double *values) {
    s->n_milestones = n;
    s->milestones = malloc((size_t)(n ? n : 1) * sizeof *s->milestones);
    if (values) s->values = malloc((size_t)(n ? n : 1) * sizeof *s->values);
    if (!s->milestones || (values && !s->values)) return false;
    if (n) memcpy(s->milestones, milestones, (size_t)n * sizeof *milestones);
    if (values && n) memcpy(s->values, values, (size_t)n * sizeof *values);
    return true;
}

tg_sched *tg_sched_multistep_new(tg_optim *o, int n, const int64_t *milestones, double gamma) {
    const char *fn = "sched_multistep_new";
    bool ok = n >= 0 && (n == 0 || milestones) && gamma >= 0 && !isinf(gamma);
    for (int i = 0; ok && i < n; i++) ok = milestones[i] >= 0;
    if (!ok) {
        tg_set_last_error("%s: needs n >= 0 milestones >= 0 and a finite gamma >= 0", fn);
        return NULL;
    }
    tg_sched *s = sched_create(fn, SCHED_MULTISTEP, o);
    if (!s) return NULL;
    if (!copy_milestones(s, n, milestones, NULL)) {
        tg_sched_free(s);
        tg_set_last_error("%s: out of memory", fn);
        return NULL;
    }
    qsort(s->milestones, (size_t)n, sizeof *s->milestones, compare_i64);
    s->gamma = gamma;
    return start(s);
}

tg_sched *tg_sched_table_new(tg_optim *o, int n, const int64_t *milestones,
                             const double *values) {
    const char *fn = "sched_table_new";
    if (n < 0 || (n > 0 && (!milestones || !values))) {
        tg_set_last_error("%s: needs n >= 0 milestones and values", fn);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (milestones[i] < 0 || (i > 0 && milestones[i] <= milestones[i - 1]) ||
            !(values[i] >= 0) || isinf(values[i])) {
            tg_set_last_error("%s: milestones must be >= 0 and increasing and values finite and "
                              ">= 0 (entry %d: %lld -> %g)", fn, i, (long long)milestones[i],
                              values[i]);
            return NULL;
        }
    tg_sched *s = sched_create(fn, SCHED_TABLE, o);
    if (!s) return NULL;
    if (!copy_milestones(s, n, milestones, values)) {
        tg_sched_free(s);
        tg_set_last_error("%s: out of memory", fn);
        return NULL;
    }
    return start(s);
}

tg_sched *tg_sched_exponential_new(tg_optim *o, double gamma) {
    if (!(gamma >= 0) || isinf(gamma)) {
        tg_set_last_error("sched_exponential_new: needs a finite gamma >= 0, got %g", gamma);
        return NULL;
    }
    tg_sched *s = sched_create("sched_exponential_new", SCHED_EXPONENTIAL, o);
    if (!s) return NULL;
    s->gamma = gamma;
    return start(s);
}

tg_sched *tg_sched_cosine_new(tg_optim *o, int64_t t_max, double eta_min) {
    if (t_max < 1 || !(eta_min >= 0) || isinf(eta_min)) {
        tg_set_last_error("sched_cosine_new: needs t_max >= 1 and a finite eta_min >= 0, got %lld "
                          "and %g", (long long)t_max, eta_min);
        return NULL;
    }
    tg_sched *s = sched_create("sched_cosine_new", SCHED_COSINE, o);
    if (!s) return NULL;
    s->t_max = t_max;
    s->eta_min = eta_min;
    return start(s);
}

tg_sched *tg_sched_inverse_time_new(tg_optim *o, double rate, int64_t decay_steps,
                                    bool staircase) {
    if (!(rate >= 0) || isinf(rate) || decay_steps < 1) {
        tg_set_last_error("sched_inverse_time_new: needs a finite rate >= 0 and decay_steps >= 1, "
                          "got %g and %lld", rate, (long long)decay_steps);
        return NULL;
    }
    tg_sched *s = sched_create("sched_inverse_time_new", SCHED_INVERSE_TIME, o);
    if (!s) return NULL;
    s->rate = rate;
    s->decay_steps = decay_steps;
    s->staircase = staircase;
    return start(s);
}

tg_sched *tg_sched_warmup_new(tg_optim *o, int64_t warmup_steps, double start_factor,
                              tg_sched *after) {
    const char *fn = "sched_warmup_new", *why = NULL;
    if (warmup_steps < 1 || !(start_factor > 0 && start_factor <= 1))
        why = "needs warmup_steps >= 1 and 0 < start_factor <= 1";
    else if (after && after->o != o) why = "`after` drives a different optimizer";
    else if (after && (after->kind == SCHED_WARMUP || after->kind == SCHED_PLATEAU))
        why = "`after` must be a step, multistep, table, exponential, cosine or inverse-time "
              "schedule";
    else if (after && after->n_groups != tg_optim_num_groups(o))
        why = "the optimizer gained parameter groups after `after` was made";
    tg_sched *s = why ? NULL : sched_create(fn, SCHED_WARMUP, o);
    if (why) tg_set_last_error("%s: %s", fn, why);
    if (!s) {
        tg_sched_free(after); /* taken over, also on failure */
        return NULL;
    }
    s->warmup = warmup_steps;
    s->start_factor = start_factor;
    s->after = after;
    if (after) {
        /* SequentialLR: rates back to the base lrs torch calls initial_lr (after's own), and
         * after's initial step undone; it restarts at epoch 0 when the warmup ends. */
        memcpy(s->base_lrs->data, after->base_lrs->data, (size_t)s->n_groups * sizeof(double));
        for (int g = 0; g < s->n_groups; g++) tg_optim_set_lr(o, g, base_lr(s, g));
        *i64_of(after->last_epoch) = -1;
        for (int i = 0; i < after->n_entries; i++)
            if (!add_entry(s, "after.", after->entries[i].name, after->entries[i].tensor)) {
                tg_sched_free(s);
                tg_set_last_error("%s: out of memory", fn);
                return NULL;
            }
    }
    return start(s);
}

tg_plateau_opts tg_plateau_defaults(void) {
    return (tg_plateau_opts){.maximize = false, .factor = 0.1, .patience = 10, .threshold = 1e-4,
                             .threshold_abs = false, .cooldown = 0, .min_lr = 0, .eps = 1e-8};
}

tg_sched *tg_sched_plateau_new(tg_optim *o, const tg_plateau_opts *opts) {
    tg_plateau_opts p = opts ? *opts : tg_plateau_defaults();
    if (!(p.factor >= 0 && p.factor < 1) || p.patience < 0 || !(p.threshold >= 0) ||
        p.cooldown < 0 || !(p.min_lr >= 0) || !(p.eps >= 0)) {
        tg_set_last_error("sched_plateau_new: needs 0 <= factor < 1 and patience, threshold, "
                          "cooldown, min_lr, eps >= 0");
        return NULL;
    }
    tg_sched *s = sched_create("sched_plateau_new", SCHED_PLATEAU, o);
    if (!s) return NULL;
    s->plateau = p;
    *i64_of(s->last_epoch) = 0;
    *f64_of(s->best) = p.maximize ? -INFINITY : INFINITY; /* torch's mode_worse */
    tg_clear_last_error();
    return s;
}

/* ---- stepping ----------------------------------------------------------------------------- */

/* ReduceLROnPlateau.is_better. */
static bool plateau_better(const tg_plateau_opts *p, double a, double best) {
    if (!p->maximize) return p->threshold_abs ? a < best - p->threshold
                                              : a < best * (1. - p->threshold);
    return p->threshold_abs ? a > best + p->threshold : a > best * (p->threshold + 1.);
}

/* ReduceLROnPlateau.step(metric). */
static void plateau_step(tg_sched *s, double metric) {
    const tg_plateau_opts *p = &s->plateau;
    int64_t *bad = i64_of(s->num_bad_epochs), *cooldown = i64_of(s->cooldown_counter);
    ++*i64_of(s->last_epoch);
    if (plateau_better(p, metric, *f64_of(s->best))) {
        *f64_of(s->best) = metric;
        *bad = 0;
    } else {
        ++*bad;
    }
    if (*cooldown > 0) { /* bad epochs in cooldown do not count */
        --*cooldown;
        *bad = 0;
    }
    if (*bad > p->patience) {
        for (int g = 0; g < s->n_groups; g++) {
            double old_lr = tg_optim_get_lr(s->o, g), reduced = old_lr * p->factor;
            double new_lr = p->min_lr > reduced ? p->min_lr : reduced; /* Python's max */
            if (old_lr - new_lr > p->eps) tg_optim_set_lr(s->o, g, new_lr);
        }
        *cooldown = p->cooldown;
        *bad = 0;
    }
}

int tg_sched_step(tg_sched *s) {
    if (!s || s->kind == SCHED_PLATEAU) {
        tg_set_last_error("sched_step: %s", s ? "a plateau schedule is stepped with "
                                                "tg_sched_step_metric" : "schedule is NULL");
        return -1;
    }
    advance(s);
    tg_clear_last_error();
    return 0;
}

int tg_sched_step_metric(tg_sched *s, double metric) {
    if (!s) {
        tg_set_last_error("sched_step_metric: schedule is NULL");
        return -1;
    }
    if (s->kind == SCHED_PLATEAU) plateau_step(s, metric);
    else advance(s);
    tg_clear_last_error();
    return 0;
}

double tg_sched_get_lr(const tg_sched *s) { return s ? tg_optim_get_lr(s->o, 0) : NAN; }

int tg_sched_state(tg_sched *s, tg_state_entry *out, int cap) {
    if (!s) return 0;
    if (!out) return s->n_entries;
    int n = cap < s->n_entries ? (cap > 0 ? cap : 0) : s->n_entries;
    memcpy(out, s->entries, (size_t)n * sizeof *out);
    return n;
}

/* ---- early stopping ----------------------------------------------------------------------- */

tg_early_stopping tg_early_stopping_init(int64_t patience, double min_delta, bool maximize) {
    return (tg_early_stopping){.patience = patience, .min_delta = min_delta,
                               .maximize = maximize, .best = maximize ? -INFINITY : INFINITY,
                               .bad_updates = 0, .best_update = -1, .updates = 0};
}

bool tg_early_stopping_update(tg_early_stopping *es, double metric) {
    if (!es) return false;
    bool improved = es->maximize ? metric > es->best + es->min_delta
                                 : metric < es->best - es->min_delta;
    if (improved) {
        es->best = metric;
        es->best_update = es->updates;
        es->bad_updates = 0;
    } else {
        es->bad_updates++;
    }
    es->updates++;
    return !improved && es->bad_updates >= es->patience;
}
