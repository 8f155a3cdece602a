/* The smallest complete training loop: a linear map x[32, 784] -> [32, 10] fitted by SGD to
 * targets made by a hidden "true" map. It shows the shape of every tapegrad program: an
 * explicit tape, persistent parameters versus tape-owned intermediates, one error check after
 * the forward pass, tg_backward, a plain update loop over data and grad, and an O(1) reset.
 * Exits 1 unless the loss falls by a factor of 100. */
#include <stdio.h>
#include <stdlib.h>

#include "tapegrad.h"

enum { BATCH = 32, IN = 784, OUT = 10, STEPS = 200 };

/* w -= lr * grad, b -= lr * grad: the whole optimizer of this example. */
static void sgd_update(tg_tensor *w, tg_tensor *b, float lr) {
    tg_tensor *params[2] = {w, b};
    for (int p = 0; p < 2; p++) {
        float *data = tg_tensor_data_mut(params[p]);
        const float *grad = tg_tensor_data(tg_tensor_grad(params[p]));
        for (int64_t i = 0; i < tg_tensor_numel(params[p]); i++) data[i] -= lr * grad[i];
        tg_tensor_zero_grad(params[p]);
    }
}

int main(void) {
    tg_tape *tp = tg_tape_new();
    tg_rng *rng = tg_rng_new(42);
    /* persistent: the parameters, and the hidden map the data come from */
    tg_tensor *w = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){IN, OUT}, 0.0, 0.01);
    tg_tensor *b = tg_zeros(NULL, TG_F32, 1, (int64_t[]){OUT});
    tg_tensor *w_true = tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){IN, OUT}, 0.0, 0.05);
    tg_set_requires_grad(w, true);
    tg_set_requires_grad(b, true);

    double first = 0.0, last = 0.0;
    for (int step = 0; step < STEPS; step++) {
        /* a fresh batch on the tape: inputs in [-1, 1), targets from the hidden map plus 0.5 */
        tg_tensor *x = tg_rand(tp, rng, TG_F32, 2, (int64_t[]){BATCH, IN}, -1.0, 1.0);
        tg_tensor *target = tg_add_scalar(tp, tg_matmul(tp, x, w_true), 0.5);
        tg_tensor *logits = tg_add(tp, tg_matmul(tp, x, w), b); /* b broadcasts over the batch */
        tg_tensor *loss = tg_mean(tp, tg_square(tp, tg_sub(tp, logits, target)), NULL, 0, false);
        if (!loss) {
            fprintf(stderr, "%s\n", tg_tape_error(tp));
            return 1;
        }
        if (tg_backward(tp, loss, NULL) != 0) {
            fprintf(stderr, "%s\n", tg_tape_error(tp));
            return 1;
        }
        sgd_update(w, b, 0.5f);
        last = tg_tensor_item(loss);
        if (step == 0) first = last;
        if (step % 50 == 0 || step == STEPS - 1) printf("step %3d  loss %.6f\n", step, last);
        tg_tape_reset(tp); /* O(1): every intermediate of this step is released */
    }
    tg_tape_stats stats = tg_tape_get_stats(tp);
    printf("loss %.4f -> %.6f; arena %zu bytes in %llu system allocations\n", first, last,
           stats.bytes_reserved, (unsigned long long)stats.system_allocs);

    tg_tensor_free(w);
    tg_tensor_free(b);
    tg_tensor_free(w_true);
    tg_rng_free(rng);
    tg_tape_free(tp);
    return last < first / 100 ? 0 : 1;
}
