/* Node records on the tape and the recording interface primitives use. A node holds the op
 * (name and VJP), the inputs with the version each had when it was used, the output, and the
 * op's parameters copied into the arena. Nodes are chained newest-to-oldest through `prev`;
 * creation order is a topological order, so backward is one reverse sweep with no recursion. */
#ifndef TG_NODE_H
#define TG_NODE_H

#include "tensor/tensor.h"

typedef struct tg_node tg_node;

/* Vector-Jacobian product: given gout (the gradient of the output, out's shape), sets gin[i]
 * to the gradient of input i, with input i's shape, for every i with need[i]. It is written
 * with primitives on tp, so when the tape is recording (create_graph) the VJP is itself
 * differentiable. A NULL gin[i] for a needed input means an error was recorded on tp. */
typedef void (*tg_vjp_fn)(tg_tape *tp, const tg_node *node, tg_tensor *gout, const bool *need,
                          tg_tensor **gin);

typedef struct tg_op {
    const char *name;
    tg_vjp_fn vjp;
} tg_op;

typedef struct tg_node_input {
    tg_tensor *t;
    uint32_t version;
} tg_node_input;

struct tg_node {
    const tg_op *op;
    tg_node *prev;
    tg_tensor *out;
    uint32_t out_version;
    int64_t index;       /* position on the tape since the last reset, from 0 */
    const void *params;  /* op-specific parameters, or NULL */
    int n_in;
    tg_node_input in[];
};

/* Input i of a node, and its parameters cast to the op's struct. */
#define TG_IN(node, i) ((node)->in[i].t)
#define TG_PARAMS(node, type) ((const type *)(node)->params)

/* Records a node making `out` from the n inputs when the tape is recording and an input
 * requires grad (otherwise does nothing): out becomes a non-leaf that requires grad. params
 * (size bytes, may be 0) are copied. Returns false, with an error on tp, when out of memory. */
bool tg_record(tg_tape *tp, const tg_op *op, tg_tensor *out, int n, tg_tensor *const *in,
               const void *params, size_t size);

#endif
