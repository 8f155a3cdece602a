/* The tape: creation, reset, errors, statistics, grad mode, and recording of nodes. */
#include <stdlib.h>
#include <string.h>

#include "autograd/node.h"

tg_tape *tg_tape_new(void) {
    tg_get_num_threads(); /* settles the thread count for BLIS and OpenMP */
    tg_tape *tp = calloc(1, sizeof *tp);
    if (!tp) {
        tg_set_last_error("tape_new: out of memory");
        return NULL;
    }
    tg_arena_init(&tp->arena);
    tp->epoch = 1;
    tp->grad_enabled = true;
    tg_clear_last_error();
    return tp;
}

void tg_tape_free(tg_tape *tp) {
    if (!tp) return;
    tg_arena_release(&tp->arena);
    free(tp);
}

void tg_tape_reset(tg_tape *tp) {
    if (!tp) return;
    tg_arena_reset(&tp->arena);
    tp->epoch++;
    tp->last_node = NULL;
    tp->n_nodes = 0;
    tp->grad_enabled = true;
    tp->has_error = false;
}

const char *tg_tape_error(const tg_tape *tp) {
    if (!tp) return "tape is NULL";
    return tp->has_error ? tp->error : NULL;
}

void tg_tape_clear_error(tg_tape *tp) {
    if (tp) tp->has_error = false;
}

tg_tape_stats tg_tape_get_stats(const tg_tape *tp) {
    if (!tp) return (tg_tape_stats){0};
    return (tg_tape_stats){
        .bytes_reserved = tp->arena.reserved,
        .bytes_used = tp->arena.used,
        .peak_bytes_used = tp->arena.peak,
        .system_allocs = tp->arena.system_allocs,
        .nodes = tp->n_nodes,
    };
}

bool tg_tape_set_grad_enabled(tg_tape *tp, bool enabled) {
    if (!tp) return false;
    bool was = tp->grad_enabled;
    tp->grad_enabled = enabled;
    return was;
}

bool tg_tape_grad_enabled(const tg_tape *tp) { return tp && tp->grad_enabled; }

bool tg_record(tg_tape *tp, const tg_op *op, tg_tensor *out, int n, tg_tensor *const *in,
               const void *params, size_t size) {
    if (!tp->grad_enabled) return true;
    bool any = false;
    for (int i = 0; i < n; i++) any |= in[i]->requires_grad;
    if (!any) return true;
    size_t head = sizeof(tg_node) + (size_t)n * sizeof(tg_node_input);
    head = (head + 15) & ~(size_t)15;
    unsigned char *mem = tg_arena_alloc(&tp->arena, head + size, 16);
    if (!mem) {
        tg_fail(tp, "%s: out of memory recording the node", op->name);
        return false;
    }
    tg_node *node = (tg_node *)mem;
    node->op = op;
    node->prev = tp->last_node;
    node->out = out;
    node->out_version = *out->version;
    node->index = tp->n_nodes++;
    node->n_in = n;
    for (int i = 0; i < n; i++) node->in[i] = (tg_node_input){in[i], *in[i]->version};
    node->params = size ? memcpy(mem + head, params, size) : NULL;
    tp->last_node = node;
    out->node = node;
    out->requires_grad = true;
    return true;
}
