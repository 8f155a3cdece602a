/* The model: a registry of named parameters and buffers in registration order, the layers that
 * own them, the training flag, freezing, and printing the layer tree as PyTorch's repr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layer.h"
#include "tensor/tensor.h"

typedef struct entry {
    char *name;
    tg_tensor *tensor;
    bool is_buffer;
} entry;

struct tg_model {
    char *type_name;
    bool training;
    entry *entries;
    int n_entries, cap_entries;
    tg_layer **layers;
    int n_layers, cap_layers;
};

static char *copy_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    return c ? memcpy(c, s, n) : NULL;
}

/* Grows *items (of item_size bytes each) so one more fits. */
static bool reserve(void **items, int *cap, int n, size_t item_size) {
    if (n < *cap) return true;
    int grown = *cap ? 2 * *cap : 16;
    void *p = realloc(*items, (size_t)grown * item_size);
    if (!p) return false;
    *items = p;
    *cap = grown;
    return true;
}

tg_model *tg_model_new(const char *type_name) {
    tg_model *m = calloc(1, sizeof *m);
    if (m) m->type_name = copy_string(type_name ? type_name : "Model");
    if (!m || !m->type_name) {
        free(m);
        tg_set_last_error("model_new: out of memory");
        return NULL;
    }
    m->training = true;
    tg_clear_last_error();
    return m;
}

void tg_model_free(tg_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_layers; i++) {
        tg_layer *l = m->layers[i];
        if (l->type->destroy) l->type->destroy(l);
        free(l->name);
        free(l);
    }
    for (int i = 0; i < m->n_entries; i++) {
        free(m->entries[i].name);
        tg_tensor_free(m->entries[i].tensor);
    }
    free(m->layers);
    free(m->entries);
    free(m->type_name);
    free(m);
}

static tg_tensor *add_entry(tg_model *m, const char *name, tg_tensor *t, bool is_buffer) {
    const char *fn = is_buffer ? "model_add_buffer" : "model_add_param";
    const char *why = NULL;
    if (!m || !name || !*name || !t) why = "needs a model, a non-empty name and a tensor";
    else if (t->tape) why = "the tensor is a tape tensor; the model owns persistent tensors only";
    else if (!is_buffer && !tg_is_float(t->dtype)) why = "a parameter must be f32 or f64";
    else if (tg_model_find(m, name)) why = "the name is already registered";
    else if (!reserve((void **)&m->entries, &m->cap_entries, m->n_entries, sizeof(entry)))
        why = "out of memory";
    char *copy = why ? NULL : copy_string(name);
    if (!why && !copy) why = "out of memory";
    if (why) {
        tg_set_last_error("%s(\"%s\"): %s", fn, name ? name : "(null)", why);
        tg_tensor_free(t);
        return NULL;
    }
    m->entries[m->n_entries++] = (entry){copy, t, is_buffer};
    if (!is_buffer) t->requires_grad = true;
    tg_clear_last_error();
    return t;
}

tg_tensor *tg_model_add_param(tg_model *m, const char *name, tg_tensor *t) {
    return add_entry(m, name, t, false);
}

tg_tensor *tg_model_add_buffer(tg_model *m, const char *name, tg_tensor *t) {
    return add_entry(m, name, t, true);
}

int tg_model_num_entries(const tg_model *m) { return m ? m->n_entries : 0; }

tg_model_entry tg_model_entry_at(const tg_model *m, int i) {
    if (!m || i < 0 || i >= m->n_entries) return (tg_model_entry){NULL, NULL, false};
    return (tg_model_entry){m->entries[i].name, m->entries[i].tensor, m->entries[i].is_buffer};
}

tg_tensor *tg_model_find(const tg_model *m, const char *name) {
    for (int i = 0; m && name && i < m->n_entries; i++)
        if (strcmp(m->entries[i].name, name) == 0) return m->entries[i].tensor;
    return NULL;
}

int64_t tg_model_num_parameters(const tg_model *m, bool trainable_only) {
    int64_t n = 0;
    for (int i = 0; m && i < m->n_entries; i++) {
        const entry *e = &m->entries[i];
        if (!e->is_buffer && (!trainable_only || e->tensor->requires_grad)) n += e->tensor->numel;
    }
    return n;
}

void tg_model_zero_grad(tg_model *m) {
    for (int i = 0; m && i < m->n_entries; i++) tg_tensor_zero_grad(m->entries[i].tensor);
}

/* name is prefix itself or starts with "prefix." ("" matches everything). */
static bool under(const char *name, const char *prefix) {
    size_t n = strlen(prefix);
    return n == 0 || (strncmp(name, prefix, n) == 0 && (name[n] == '\0' || name[n] == '.'));
}

int tg_model_set_frozen(tg_model *m, const char *prefix, bool frozen) {
    int changed = 0;
    for (int i = 0; m && prefix && i < m->n_entries; i++) {
        entry *e = &m->entries[i];
        if (e->is_buffer || !under(e->name, prefix) || e->tensor->requires_grad == !frozen)
            continue;
        e->tensor->requires_grad = !frozen;
        changed++;
    }
    return changed;
}

void tg_model_set_training(tg_model *m, bool training) {
    if (m) m->training = training;
}

bool tg_model_is_training(const tg_model *m) { return m && m->training; }

/* ---- layers ----------------------------------------------------------------------------- */

tg_layer *tg_layer_create(tg_model *m, const char *name, const tg_layer_type *type, size_t size) {
    const char *why = NULL;
    if (!m || !name || !*name) why = "needs a model and a non-empty name";
    for (int i = 0; !why && i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0) why = "a layer of that name exists already";
    if (!why && !reserve((void **)&m->layers, &m->cap_layers, m->n_layers, sizeof(tg_layer *)))
        why = "out of memory";
    tg_layer *l = why ? NULL : calloc(1, size);
    if (l) l->name = copy_string(name);
    if (!why && (!l || !l->name)) {
        free(l);
        why = "out of memory";
    }
    if (why) {
        tg_set_last_error("%s(\"%s\"): %s", type->name, name ? name : "(null)", why);
        return NULL;
    }
    l->type = type;
    l->model = m;
    m->layers[m->n_layers++] = l;
    tg_clear_last_error();
    return l;
}

static tg_tensor *add_local(tg_layer *l, const char *local, tg_tensor *t, bool is_buffer) {
    char name[256];
    if ((size_t)snprintf(name, sizeof name, "%s.%s", l->name, local) >= sizeof name) {
        tg_set_last_error("%s(\"%s\"): the name of %s is too long", l->type->name, l->name, local);
        tg_tensor_free(t);
        return NULL;
    }
    return add_entry(l->model, name, t, is_buffer);
}

tg_tensor *tg_layer_add_param(tg_layer *l, const char *local, tg_tensor *t) {
    return add_local(l, local, t, false);
}

tg_tensor *tg_layer_add_buffer(tg_layer *l, const char *local, tg_tensor *t) {
    return add_local(l, local, t, true);
}

tg_tensor *tg_layer_forward(tg_tape *tp, tg_layer *layer, tg_tensor *x) {
    if (!tp) {
        tg_set_last_error("layer_forward: tape is NULL");
        return NULL;
    }
    if (!layer) {
        tg_fail(tp, "layer_forward: layer is NULL");
        return NULL;
    }
    if (!layer->type->forward) {
        tg_fail(tp, "%s \"%s\": this layer is stepped with its own functions, not "
                    "tg_layer_forward", layer->type->name, layer->name);
        return NULL;
    }
    return layer->type->forward(tp, layer, x);
}

const char *tg_layer_name(const tg_layer *layer) { return layer ? layer->name : NULL; }

tg_tensor *tg_layer_get(const tg_layer *layer, const char *local_name) {
    if (!layer || !local_name) return NULL;
    char name[256];
    snprintf(name, sizeof name, "%s.%s", layer->name, local_name);
    return tg_model_find(layer->model, name);
}

void tg_format_pair(char *buf, size_t size, int64_t h, int64_t w, bool as_tuple) {
    if (h == w && !as_tuple) snprintf(buf, size, "%lld", (long long)h);
    else snprintf(buf, size, "(%lld, %lld)", (long long)h, (long long)w);
}

void tg_format_float(char *buf, size_t size, double v) {
    snprintf(buf, size, "%g", v);
    if (!strpbrk(buf, ".einf")) strncat(buf, ".0", size - strlen(buf) - 1);
}

/* ---- printing --------------------------------------------------------------------------- */

/* The registered layer whose name is the longest proper dotted prefix of l's, or -1. */
static int parent_of(const tg_model *m, int li) {
    const char *name = m->layers[li]->name;
    int best = -1;
    size_t best_len = 0;
    for (int j = 0; j < m->n_layers; j++) {
        const char *p = m->layers[j]->name;
        size_t n = strlen(p);
        if (j != li && n > best_len && strncmp(name, p, n) == 0 && name[n] == '.') {
            best = j;
            best_len = n;
        }
    }
    return best;
}

static void print_children(const tg_model *m, const int *parent, int of, int depth, FILE *out) {
    for (int i = 0; i < m->n_layers; i++) {
        if (parent[i] != of) continue;
        const tg_layer *l = m->layers[i];
        const char *local = of < 0 ? l->name : l->name + strlen(m->layers[of]->name) + 1;
        bool has_children = false;
        for (int j = 0; j < m->n_layers && !has_children; j++) has_children = parent[j] == i;
        fprintf(out, "%*s(%s): %s(", 2 * depth, "", local, l->type->name);
        if (has_children) {
            fprintf(out, "\n");
            print_children(m, parent, i, depth + 1, out);
            fprintf(out, "%*s)\n", 2 * depth, "");
        } else {
            char desc[256] = "";
            if (l->type->describe) l->type->describe(l, desc, sizeof desc);
            fprintf(out, "%s)\n", desc);
        }
    }
}

void tg_model_print(const tg_model *m, FILE *out) {
    if (!m || !out) return;
    int *parent = malloc((size_t)(m->n_layers ? m->n_layers : 1) * sizeof *parent);
    if (!parent) return;
    for (int i = 0; i < m->n_layers; i++) parent[i] = parent_of(m, i);
    if (m->n_layers == 0) { /* PyTorch prints a module without children as "Net()" */
        fprintf(out, "%s()\n", m->type_name);
    } else {
        fprintf(out, "%s(\n", m->type_name);
        print_children(m, parent, -1, 1, out);
        fprintf(out, ")\n");
    }
    free(parent);
}
