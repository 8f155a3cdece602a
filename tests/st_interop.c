/* Helper of tests/safetensors_interop.py: a small fixed model (Linear 5->8, BatchNorm1d(8),
 * ReLU, Linear 8->3, as the script's PyTorch Net) that either writes its seeded weights to a
 * safetensors file or loads them from one, then prints a fixed input and the eval-mode logits
 * as JSON on stdout.
 *   st_interop write PATH   save the seeded model to PATH
 *   st_interop read PATH    load PATH into a differently seeded model */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

enum { N = 4, IN = 5, HIDDEN = 8, OUT = 3 };

typedef struct net {
    tg_model *m;
    tg_layer *fc1, *bn, *fc2;
} net;

/* Fills a persistent float tensor with rng values in [lo, hi). */
static void fill(tg_tensor *t, tg_rng *rng, double lo, double hi) {
    float *v = tg_tensor_data_mut(t);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++)
        v[i] = (float)(lo + (hi - lo) * tg_rng_uniform(rng));
}

/* The model with PyTorch's initialization from seed, and non-trivial batch-norm affine
 * parameters and running statistics (so the file carries all of them). */
static bool build(net *n, uint64_t seed) {
    tg_rng *rng = tg_rng_new(seed);
    n->m = tg_model_new("Net");
    n->fc1 = tg_linear_new(n->m, "fc1", IN, HIDDEN, true, rng);
    n->bn = tg_batch_norm1d_new(n->m, "bn", HIDDEN, 1e-5, 0.1, true, true);
    n->fc2 = tg_linear_new(n->m, "fc2", HIDDEN, OUT, true, rng);
    bool ok = n->fc1 && n->bn && n->fc2;
    if (ok) {
        fill(tg_layer_get(n->bn, "weight"), rng, 0.5, 1.5);
        fill(tg_layer_get(n->bn, "bias"), rng, -0.5, 0.5);
        fill(tg_layer_get(n->bn, "running_mean"), rng, -1.0, 1.0);
        fill(tg_layer_get(n->bn, "running_var"), rng, 0.5, 2.0);
        *(int64_t *)tg_tensor_data_mut(tg_layer_get(n->bn, "num_batches_tracked")) = 7;
        tg_model_set_training(n->m, false);
    }
    tg_rng_free(rng);
    return ok;
}

static void print_matrix(const char *key, const float *v, int rows, int cols) {
    printf("\"%s\": [", key);
    for (int i = 0; i < rows; i++) {
        printf(i ? ", [" : "[");
        for (int j = 0; j < cols; j++) printf(j ? ", %.9g" : "%.9g", (double)v[i * cols + j]);
        printf("]");
    }
    printf("]");
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "read") != 0)) {
        fprintf(stderr, "usage: %s write|read PATH\n", argv[0]);
        return 2;
    }
    bool writing = strcmp(argv[1], "write") == 0;
    net n;
    if (!build(&n, writing ? 1234 : 4321)) {
        fprintf(stderr, "building the model: %s\n", tg_last_error());
        return 1;
    }
    int rc = writing ? tg_save_model(n.m, argv[2]) : tg_load_model(n.m, argv[2]);
    if (rc != 0) {
        fprintf(stderr, "%s\n", tg_last_error());
        tg_model_free(n.m);
        return 1;
    }
    tg_rng *rng = tg_rng_new(99);
    tg_tensor *x = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){N, IN}, 0.0, 1.0);
    tg_tape *tp = tg_tape_new();
    tg_tensor *h = tg_relu(tp, tg_layer_forward(tp, n.bn, tg_layer_forward(tp, n.fc1, x)));
    tg_tensor *y = tg_layer_forward(tp, n.fc2, h);
    if (!y) {
        fprintf(stderr, "forward: %s\n", tg_tape_error(tp));
        return 1;
    }
    printf("{");
    print_matrix("input", tg_tensor_data(x), N, IN);
    printf(", ");
    print_matrix("logits", tg_tensor_data(y), N, OUT);
    printf(", \"num_batches_tracked\": %lld}\n",
           (long long)tg_tensor_get(tg_layer_get(n.bn, "num_batches_tracked"), 0));
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_rng_free(rng);
    tg_model_free(n.m);
    return 0;
}
