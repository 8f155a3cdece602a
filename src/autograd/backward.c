/* The reverse pass: tg_backward (accumulate into leaves' grads) and tg_grad (return gradients,
 * optionally recording them for higher-order derivatives). One sweep over the tape from the
 * newest node to the oldest; each node with a gradient calls its op's VJP and hands the
 * results to its inputs. A value used several times receives the sum of its contributions. */
#include <stdlib.h>
#include <string.h>

#include "autograd/node.h"
#include "kernels/kernels.h"

typedef struct sweep {
    tg_tape *tp;
    const char *fn;          /* "backward" or "grad", for messages */
    tg_tensor **grads;       /* by node index: gradient of that node's output */
    int64_t n_nodes;         /* nodes that existed when the sweep began */
    int n_inputs;            /* tg_grad's inputs and their gradients, else 0 */
    tg_tensor *const *inputs;
    tg_tensor **input_grads;
} sweep;

/* A persistent or tape copy of g, for a leaf's own grad. */
static tg_tensor *leaf_grad_copy(tg_tape *tp, const tg_tensor *leaf, const tg_tensor *g) {
    tg_tensor *c = tg_tensor_alloc(leaf->tape ? tp : NULL, g->dtype, g->ndim, g->shape);
    if (!c) {
        if (!leaf->tape) tg_fail(tp, "backward: out of memory for a leaf's grad");
        return NULL;
    }
    memcpy(c->data, g->data, (size_t)g->numel * tg_dtype_size(g->dtype));
    return c;
}

/* Adds contribution g to what t has received. */
static bool accumulate(sweep *s, tg_tensor *t, tg_tensor *g) {
    tg_tape *tp = s->tp;
    tg_tensor **slot = NULL;
    if (t->node && t->tape == tp && t->node->index < s->n_nodes) {
        slot = &s->grads[t->node->index];
    } else if (s->n_inputs == 0) { /* tg_backward: a leaf's own grad */
        if (!t->grad) return (t->grad = leaf_grad_copy(tp, t, g)) != NULL;
        tg_k_accumulate(t->dtype, t->numel, t->grad->data, g->data);
        return true;
    } else {
        for (int i = 0; i < s->n_inputs && !slot; i++)
            if (s->inputs[i] == t) slot = &s->input_grads[i];
        if (!slot) return true; /* a leaf nobody asked about */
    }
    *slot = *slot ? tg_add(tp, *slot, g) : g;
    return *slot != NULL;
}

static bool versions_intact(tg_tape *tp, const char *fn, const tg_node *node) {
    for (int i = 0; i < node->n_in; i++) {
        const tg_node_input *in = &node->in[i];
        if (*in->t->version != in->version) {
            tg_fail(tp, "%s: input %d of %s (%s) was modified in place after %s used it "
                        "(version %u, saved at %u); its gradient would be wrong",
                    fn, i, node->op->name, tg_tensor_describe(in->t, (char[112]){0}, 112),
                    node->op->name, *in->t->version, in->version);
            return false;
        }
    }
    if (*node->out->version != node->out_version) {
        tg_fail(tp, "%s: the output of %s (%s) was modified in place after it was computed",
                fn, node->op->name, tg_tensor_describe(node->out, (char[112]){0}, 112));
        return false;
    }
    return true;
}

static bool sweep_nodes(sweep *s, tg_node *newest) {
    tg_tape *tp = s->tp;
    for (tg_node *node = newest; node; node = node->prev) {
        tg_tensor *g = s->grads[node->index];
        if (!g) continue;
        if (!versions_intact(tp, s->fn, node)) return false;
        bool need[node->n_in];
        tg_tensor *gin[node->n_in];
        for (int i = 0; i < node->n_in; i++) {
            need[i] = node->in[i].t->requires_grad;
            gin[i] = NULL;
        }
        node->op->vjp(tp, node, g, need, gin);
        if (tp->has_error) return false;
        for (int i = 0; i < node->n_in; i++) {
            if (!need[i]) continue;
            tg_tensor *in = node->in[i].t;
            if (!gin[i] || gin[i]->dtype != in->dtype ||
                !tg_shape_equal(gin[i]->ndim, gin[i]->shape, in->ndim, in->shape)) {
                tg_fail(tp, "%s: internal error: the VJP of %s gave %s for input %d of shape %s",
                        s->fn, node->op->name, tg_tensor_describe(gin[i], (char[112]){0}, 112),
                        i, TG_SHAPE_STR(in));
                return false;
            }
            if (!accumulate(s, in, gin[i])) return false;
        }
    }
    return true;
}

/* Shared by tg_backward and tg_grad: checks the arguments, seeds the outputs, sweeps. */
static int run(sweep *s, int n_outputs, tg_tensor *const *outputs, tg_tensor *const *seeds,
               bool create_graph) {
    tg_tape *tp = s->tp;
    const char *fn = s->fn;
    if (!tp) {
        tg_set_last_error("%s: tape is NULL", fn);
        return -1;
    }
    if (tp->has_error) return -1; /* the forward pass failed; its message stands */
    if (n_outputs < 1 || !outputs) {
        tg_fail(tp, "%s: no outputs given", fn);
        return -1;
    }
    s->n_nodes = tp->n_nodes;
    tg_node *newest = tp->last_node;
    s->grads = tg_arena_alloc(&tp->arena, (size_t)s->n_nodes * sizeof *s->grads + 1, 16);
    if (!s->grads) {
        tg_fail(tp, "%s: out of memory", fn);
        return -1;
    }
    memset(s->grads, 0, (size_t)s->n_nodes * sizeof *s->grads);
    bool was_enabled = tp->grad_enabled;
    tp->grad_enabled = create_graph;
    bool ok = true;
    for (int k = 0; k < n_outputs && ok; k++) {
        tg_tensor *y = outputs[k];
        tg_tensor *seed = seeds ? seeds[k] : NULL;
        if (!y) {
            tg_fail(tp, "%s: output %d is NULL", fn, k);
            ok = false;
        } else if (y->tape && (y->tape != tp || y->epoch != tp->epoch)) {
            tg_fail(tp, "%s: output %d belongs to another tape or to a step before "
                        "tg_tape_reset", fn, k);
            ok = false;
        } else if (!y->requires_grad) {
            tg_fail(tp, "%s: output %d (%s) does not require grad: no parameter leads to it",
                    fn, k, tg_tensor_describe(y, (char[112]){0}, 112));
            ok = false;
        } else if (seed && (seed->dtype != y->dtype ||
                            !tg_shape_equal(seed->ndim, seed->shape, y->ndim, y->shape))) {
            tg_fail(tp, "%s: seed %d is %s but output %d is %s", fn, k,
                    tg_tensor_describe(seed, (char[112]){0}, 112), k,
                    tg_tensor_describe(y, (char[112]){0}, 112));
            ok = false;
        } else {
            if (!seed) seed = tg_ones(tp, y->dtype, y->ndim, y->shape);
            ok = seed && accumulate(s, y, seed);
        }
    }
    ok = ok && sweep_nodes(s, newest);
    tp->grad_enabled = was_enabled;
    return ok ? 0 : -1;
}

int tg_backward(tg_tape *tp, tg_tensor *y, tg_tensor *seed) {
    sweep s = {.tp = tp, .fn = "backward"};
    return run(&s, 1, &y, seed ? &seed : NULL, false);
}

int tg_grad(tg_tape *tp, int n_outputs, tg_tensor *const *outputs, tg_tensor *const *seeds,
            int n_inputs, tg_tensor *const *inputs, bool create_graph, tg_tensor **grads) {
    if (tp && !tp->has_error && (n_inputs < 1 || !inputs || !grads)) {
        tg_fail(tp, "grad: needs at least one input and an array for the gradients");
        return -1;
    }
    for (int i = 0; tp && !tp->has_error && i < n_inputs; i++) {
        if (!inputs[i] || !tg_is_float(inputs[i]->dtype)) {
            tg_fail(tp, "grad: input %d is %s; inputs must be f32 or f64 tensors", i,
                    tg_tensor_describe(inputs[i], (char[112]){0}, 112));
            return -1;
        }
    }
    sweep s = {.tp = tp, .fn = "grad", .n_inputs = n_inputs, .inputs = inputs,
               .input_grads = grads};
    for (int i = 0; grads && i < n_inputs; i++) grads[i] = NULL;
    if (run(&s, n_outputs, outputs, seeds, create_graph) != 0) return -1;
    for (int i = 0; i < n_inputs; i++) {
        tg_tensor *x = inputs[i];
        if (x->node && x->tape == tp && x->node->index < s.n_nodes) grads[i] = s.grads[x->node->index];
        for (int j = 0; j < i && !grads[i]; j++)
            if (inputs[j] == x) grads[i] = grads[j]; /* a leaf listed twice: the sweep filled j */
        if (!grads[i]) grads[i] = tg_zeros_like(tp, x);
        /* A gradient that is the caller's own (persistent) seed is handed back as a tape copy,
         * so the results never alias the caller's tensors. */
        else if (grads[i]->tape != tp) grads[i] = tg_mul_scalar(tp, grads[i], 1.0);
        if (!grads[i]) return -1;
    }
    return 0;
}
