/* mytorch: the net of seed 001's blog post ("mytorch", a torch-like framework in numpy),
 * trained as the post trains it: Conv 1->32 k3 s2 p1, MaxPool 3/2, conv_block (Conv 32->64 k3
 * s2 p1, BatchNorm2d, ReLU), AvgPool 3, Flatten, Linear 64->10 on images mapped to [-1, 1];
 * AdamW lr 0.01, batch 10, cross-entropy with reduction "sum", 30 epochs over the first 1,500
 * training images in order (a sequential sampler, no shuffling). It is tested, in eval mode,
 * on the rest of the training file, and the accuracy is printed beside the post's. */
#include <stdio.h>

#include "mnist_common.h"

/* What the post reports on images 1,500..59,999 of the full training set: its numpy framework
 * and the same net in PyTorch. */
#define POST_ACCURACY_NUMPY 0.924752
#define POST_ACCURACY_TORCH 0.915265

int main(int argc, char **argv) {
    run_options opts = {.seed = 1};
    int parsed = parse_run_options(argc, argv, "mytorch", &opts, NULL);
    if (parsed != OPTIONS_RUN) return parsed;
    recipe r = recipe_for(NET_MYTORCH);
    double acc = train_mnist(&r, &opts);
    if (acc < 0) return 1;
    printf("tapegrad %.4f   the post: %.4f (mytorch, numpy), %.4f (PyTorch)\n", acc,
           POST_ACCURACY_NUMPY, POST_ACCURACY_TORCH);
    return 0;
}
