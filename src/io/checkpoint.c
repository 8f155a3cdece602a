/* Model files and training checkpoints as safetensors (src/io/safetensors.c does the format).
 * A model file holds the model's parameters and buffers under their state_dict names; a
 * checkpoint adds the optimizer's and the schedule's state, the epoch, the step and the RNG.
 * Loading checks every name, shape and dtype against the file before it writes anything, so a
 * mismatching file leaves everything unchanged and the error lists every mismatch. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "tensor/tensor.h"

/* One tensor the caller's objects keep in a file: its key, and the values saved from and
 * loaded into. */
typedef struct slot {
    char *name;
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel;
    void *data;
    tg_tensor *tensor; /* the owner whose version counter a load bumps, or NULL */
} slot;

typedef struct slots {
    slot *s;
    int n, cap;
    bool oom;
} slots;

/* A new zeroed slot keyed prefix + name; NULL (and ss->oom set) when memory runs out. */
static slot *add_slot(slots *ss, const char *prefix, const char *name) {
    if (ss->oom) return NULL;
    if (ss->n == ss->cap) {
        int cap = ss->cap ? 2 * ss->cap : 32;
        slot *q = realloc(ss->s, (size_t)cap * sizeof *q);
        if (!q) {
            ss->oom = true;
            return NULL;
        }
        ss->s = q;
        ss->cap = cap;
    }
    size_t n = strlen(prefix) + strlen(name) + 1;
    char *key = malloc(n);
    if (!key) {
        ss->oom = true;
        return NULL;
    }
    snprintf(key, n, "%s%s", prefix, name);
    slot *s = &ss->s[ss->n++];
    memset(s, 0, sizeof *s);
    s->name = key;
    return s;
}

/* A persistent tensor's values under prefix + name. */
static void add_tensor(slots *ss, const char *prefix, const char *name, tg_tensor *t) {
    slot *s = add_slot(ss, prefix, name);
    if (!s) return;
    s->dtype = t->dtype;
    s->ndim = t->ndim;
    memcpy(s->shape, t->shape, sizeof s->shape);
    s->numel = t->numel;
    s->data = t->data;
    s->tensor = t;
}

/* n int64 values (a scalar, shape [], when n is 0). */
static void add_i64(slots *ss, const char *name, int64_t *values, int64_t n) {
    slot *s = add_slot(ss, "", name);
    if (!s) return;
    s->dtype = TG_I64;
    s->ndim = n > 0;
    s->shape[0] = n;
    s->numel = n > 0 ? n : 1;
    s->data = values;
}

/* Frees the keys and the array (not the values: they belong to the caller's objects). */
static void free_slots(slots *ss) {
    for (int i = 0; i < ss->n; i++) free(ss->s[i].name);
    free(ss->s);
}

/* The model's entries under "<prefix><name>". */
static void add_model(slots *ss, const char *prefix, const tg_model *m) {
    for (int i = 0; i < tg_model_num_entries(m); i++) {
        tg_model_entry e = tg_model_entry_at(m, i);
        add_tensor(ss, prefix, e.name, e.tensor);
    }
}

/* n entries of an optimizer's or schedule's state under prefix + their names. */
static bool add_state(slots *ss, const char *prefix, int n, const tg_state_entry *entries) {
    for (int i = 0; i < n; i++) {
        if (!entries[i].name || !entries[i].tensor || entries[i].tensor->tape) {
            tg_set_last_error("%sstate entry %d has no name or no persistent tensor", prefix, i);
            return false;
        }
        add_tensor(ss, prefix, entries[i].name, entries[i].tensor);
    }
    return true;
}

/* ---- saving ------------------------------------------------------------------------------- */

/* Writes the slots to path atomically, with PyTorch's {"format": "pt"} metadata. */
static int save_slots(const char *what, const char *path, const slots *ss) {
    if (ss->oom) {
        tg_set_last_error("%s: \"%s\": out of memory", what, path ? path : "(null)");
        return -1;
    }
    tg_st_tensor *ts = malloc((size_t)(ss->n ? ss->n : 1) * sizeof *ts);
    if (!ts) {
        tg_set_last_error("%s: \"%s\": out of memory", what, path ? path : "(null)");
        return -1;
    }
    for (int i = 0; i < ss->n; i++) {
        const slot *s = &ss->s[i];
        ts[i] = (tg_st_tensor){s->name, s->dtype, s->ndim, {0}, s->numel, s->data};
        memcpy(ts[i].shape, s->shape, sizeof s->shape);
    }
    static const char *const meta[] = {"format", "pt"};
    int rc = tg_st_write(what, path, ss->n, ts, 1, meta);
    free(ts);
    return rc;
}

int tg_save_model(const tg_model *m, const char *path) {
    if (!m || !path) {
        tg_set_last_error("save_model: needs a model and a path");
        return -1;
    }
    slots ss = {0};
    add_model(&ss, "", m);
    int rc = save_slots("save_model", path, &ss);
    free_slots(&ss);
    return rc;
}

/* The RNG state as 6 int64: the 4 state words, the bits of the spare normal, the flag. */
static void rng_to_i64(const tg_rng_state *st, int64_t out[6]) {
    memcpy(out, st->s, 4 * sizeof(int64_t));
    memcpy(&out[4], &st->spare_normal, sizeof(int64_t));
    out[5] = st->has_spare;
}

/* The inverse of rng_to_i64. */
static tg_rng_state rng_from_i64(const int64_t in[6]) {
    tg_rng_state st;
    memcpy(st.s, in, 4 * sizeof(int64_t));
    memcpy(&st.spare_normal, &in[4], sizeof(int64_t));
    st.has_spare = in[5] != 0;
    return st;
}

/* Where the checkpoint's values sit while saving or loading. */
typedef struct train_values {
    int64_t epoch, step, rng[6];
} train_values;

/* Every slot of a checkpoint of the given objects (NULL ones contribute nothing). The state
 * entry arrays are allocated into *optim_entries and *sched_entries. */
static bool checkpoint_slots(slots *ss, const tg_model *m, tg_optim *o, tg_sched *s,
                             bool train, bool rng, train_values *tv,
                             tg_state_entry **optim_entries, tg_state_entry **sched_entries) {
    add_model(ss, "model.", m);
    if (o) {
        int n = tg_optim_state(o, NULL, 0);
        if (n < 0) return false;
        *optim_entries = malloc((size_t)(n > 0 ? n : 1) * sizeof **optim_entries);
        if (!*optim_entries) ss->oom = true;
        else if (!add_state(ss, "optim.", tg_optim_state(o, *optim_entries, n), *optim_entries))
            return false;
    }
    if (s) {
        int n = tg_sched_state(s, NULL, 0);
        if (n < 0) return false;
        *sched_entries = malloc((size_t)(n > 0 ? n : 1) * sizeof **sched_entries);
        if (!*sched_entries) ss->oom = true;
        else if (!add_state(ss, "sched.", tg_sched_state(s, *sched_entries, n), *sched_entries))
            return false;
    }
    if (train) {
        add_i64(ss, "train.epoch", &tv->epoch, 0);
        add_i64(ss, "train.step", &tv->step, 0);
        if (rng) add_i64(ss, "train.rng", tv->rng, 6);
    }
    return true;
}

int tg_save_checkpoint(const char *path, const tg_model *m, tg_optim *o, tg_sched *s,
                       const tg_train_state *ts) {
    if (!m || !path) {
        tg_set_last_error("save_checkpoint: needs a model and a path");
        return -1;
    }
    train_values tv = {0};
    if (ts) {
        tv.epoch = ts->epoch;
        tv.step = ts->step;
        if (ts->rng) {
            tg_rng_state st = tg_rng_get_state(ts->rng);
            rng_to_i64(&st, tv.rng);
        }
    }
    slots ss = {0};
    tg_state_entry *oe = NULL, *se = NULL;
    int rc = -1;
    if (checkpoint_slots(&ss, m, o, s, ts != NULL, ts && ts->rng, &tv, &oe, &se))
        rc = save_slots("save_checkpoint", path, &ss);
    free_slots(&ss);
    free(oe);
    free(se);
    return rc;
}

/* ---- loading ------------------------------------------------------------------------------ */

/* The list of mismatches, in as much of the error message as there is room for. */
typedef struct report {
    char text[3500];
    size_t len;
    int count, dropped;
} report;

static void add_mismatch(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_mismatch(report *r, const char *fmt, ...) {
    char item[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item, sizeof item, fmt, ap);
    va_end(ap);
    r->count++;
    size_t n = strlen(item);
    if (r->len + n + 3 > sizeof r->text - 40) { /* keep room for "; and N more" */
        r->dropped++;
        return;
    }
    r->len += (size_t)snprintf(r->text + r->len, sizeof r->text - r->len, "%s%s",
                               r->len ? "; " : "", item);
}

/* qsort / bsearch order of an array of key strings. */
static int by_slot_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* name starts with one of the n prefixes. */
static bool has_prefix(const char *name, const char *const *prefixes, int n) {
    for (int i = 0; i < n; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

/* Reads path and checks it holds exactly the slots (file entries under an `ignored` prefix
 * aside): every slot present with its dtype and shape, no other entry. Returns the file, or
 * NULL with the error (every mismatch listed). */
static tg_st_file *open_matching(const char *what, const char *path, const slots *ss,
                                 const char *const *ignored, int n_ignored) {
    if (ss->oom) {
        tg_set_last_error("%s: \"%s\": out of memory", what, path ? path : "(null)");
        return NULL;
    }
    tg_st_file *f = tg_st_read(what, path);
    const char **names = f ? malloc((size_t)(ss->n ? ss->n : 1) * sizeof *names) : NULL;
    if (!names) {
        if (f) tg_set_last_error("%s: \"%s\": out of memory", what, path);
        tg_st_free(f);
        return NULL;
    }
    report r = {.len = 0};
    char file_shape[96], want_shape[96];
    for (int i = 0; i < ss->n; i++) {
        const slot *s = &ss->s[i];
        names[i] = s->name;
        const tg_st_tensor *t = tg_st_find(f, s->name);
        tg_shape_str(want_shape, sizeof want_shape, s->ndim, s->shape);
        if (!t) {
            add_mismatch(&r, "missing \"%s\" (%s %s)", s->name, tg_dtype_name(s->dtype),
                         want_shape);
            continue;
        }
        tg_shape_str(file_shape, sizeof file_shape, t->ndim, t->shape);
        if (t->dtype != s->dtype)
            add_mismatch(&r, "dtype of \"%s\": file %s, expected %s", s->name,
                         tg_dtype_name(t->dtype), tg_dtype_name(s->dtype));
        if (strcmp(file_shape, want_shape) != 0)
            add_mismatch(&r, "shape of \"%s\": file %s, expected %s", s->name, file_shape,
                         want_shape);
    }
    qsort(names, (size_t)ss->n, sizeof *names, by_slot_name);
    for (int i = 0; i < tg_st_count(f); i++) {
        const tg_st_tensor *t = tg_st_at(f, i);
        if (has_prefix(t->name, ignored, n_ignored) ||
            bsearch(&t->name, names, (size_t)ss->n, sizeof *names, by_slot_name))
            continue;
        tg_shape_str(file_shape, sizeof file_shape, t->ndim, t->shape);
        add_mismatch(&r, "unexpected \"%s\" (%s %s)", t->name, tg_dtype_name(t->dtype),
                     file_shape);
    }
    free(names);
    if (r.count == 0) return f;
    if (r.dropped)
        snprintf(r.text + r.len, sizeof r.text - r.len, "; and %d more", r.dropped);
    tg_set_last_error("%s: \"%s\": %d mismatch%s, nothing was loaded: %s", what, path, r.count,
                      r.count == 1 ? "" : "es", r.text);
    tg_st_free(f);
    return NULL;
}

/* Copies every slot's values out of the (matching) file. */
static void copy_slots(const slots *ss, const tg_st_file *f) {
    for (int i = 0; i < ss->n; i++) {
        const slot *s = &ss->s[i];
        tg_st_copy_data(tg_st_find(f, s->name), s->data);
        if (s->tensor) tg_tensor_bump_version(s->tensor);
    }
}

int tg_load_model(tg_model *m, const char *path) {
    if (!m || !path) {
        tg_set_last_error("load_model: needs a model and a path");
        return -1;
    }
    slots ss = {0};
    add_model(&ss, "", m);
    tg_st_file *f = open_matching("load_model", path, &ss, NULL, 0);
    bool ok = f != NULL;
    if (ok) {
        copy_slots(&ss, f);
        tg_clear_last_error();
    }
    tg_st_free(f);
    free_slots(&ss);
    return ok ? 0 : -1;
}

int tg_load_checkpoint(const char *path, tg_model *m, tg_optim *o, tg_sched *s,
                       tg_train_state *ts) {
    if (!m || !path) {
        tg_set_last_error("load_checkpoint: needs a model and a path");
        return -1;
    }
    /* A NULL object is not restored: its entries in the file are skipped. */
    const char *ignored[3];
    int n_ignored = 0;
    if (!o) ignored[n_ignored++] = "optim.";
    if (!s) ignored[n_ignored++] = "sched.";
    if (!ts) ignored[n_ignored++] = "train.";
    else if (!ts->rng) ignored[n_ignored++] = "train.rng";
    train_values tv = {0};
    slots ss = {0};
    tg_state_entry *oe = NULL, *se = NULL;
    tg_st_file *f = NULL;
    if (checkpoint_slots(&ss, m, o, s, ts != NULL, ts && ts->rng, &tv, &oe, &se))
        f = open_matching("load_checkpoint", path, &ss, ignored, n_ignored);
    const tg_st_tensor *rng = f ? tg_st_find(f, "train.rng") : NULL;
    if (rng && ts && ts->rng) { /* the one value with constraints: the spare flag */
        int64_t v[6];
        tg_st_copy_data(rng, v);
        if (v[5] != 0 && v[5] != 1) {
            tg_set_last_error("load_checkpoint: \"%s\": train.rng's spare flag is %lld, not 0 "
                              "or 1; nothing was loaded", path, (long long)v[5]);
            tg_st_free(f);
            f = NULL;
        }
    }
    bool ok = f != NULL;
    if (ok) {
        copy_slots(&ss, f);
        if (ts) {
            ts->epoch = tv.epoch;
            ts->step = tv.step;
            if (ts->rng) {
                tg_rng_state st = rng_from_i64(tv.rng);
                tg_rng_set_state(ts->rng, &st);
            }
        }
        tg_clear_last_error();
    }
    tg_st_free(f);
    free_slots(&ss);
    free(oe);
    free(se);
    return ok ? 0 : -1;
}
