/* The three MNIST networks of the source notes and their training recipes, shared by the
 * mnist, lenet5 and mytorch examples: building each net as layer objects under PyTorch's
 * state_dict names, and one training loop (progress display, test accuracy after every epoch,
 * checkpoints, CSV log and plot). Uses only the public API. */
#ifndef MNIST_COMMON_H
#define MNIST_COMMON_H

#include <tapegrad.h>

#include "options.h"

typedef enum net_kind { NET_SEED000, NET_LENET5, NET_MYTORCH } net_kind;

/* A recipe: the network and how the notes train it. */
typedef struct recipe {
    net_kind kind;
    const char *name;
    int64_t batch;
    int epochs;
    tg_optim_kind optimizer;
    double lr;
    tg_reduction loss_reduction;
    bool shuffle;
    int64_t train_first;   /* > 0: train on the first train_first training images and test
                            * on the rest of the training file (seed 001); else train on the
                            * training file, test on the official test set */
} recipe;

/* The recipe of a net as the notes give it. */
recipe recipe_for(net_kind kind);
/* "seed000", "lenet5", "mytorch" -> kind; false for an unknown name. */
bool net_kind_parse(const char *name, net_kind *kind);

/* Command-line settings shared by the examples. */
typedef struct run_options {
    const char *data_dir;   /* data/mnist by default */
    int epochs;             /* 0 = the recipe's */
    int64_t batch;          /* 0 = the recipe's */
    double lr;              /* 0 = the recipe's */
    int threads;            /* 0 = library default */
    uint64_t seed;
    const char *save_path, *resume_path, *log_path, *plot_path;
    int64_t train_limit, test_limit;   /* > 0: use only that many examples (quick runs) */
    bool quiet;             /* no progress bars, only epoch lines */
} run_options;

/* Parses --data --epochs --batch --lr --threads --seed --save --resume --log --plot
 * --train-limit --test-limit --quiet (and --model when model != NULL) into opts, which holds
 * the defaults on entry. Returns OPTIONS_RUN (options.h) to go on, 0 after --help (usage on
 * stdout), or 2 after a bad argument (message on stderr); on 0 or 2 the program should exit
 * with that status. */
int parse_run_options(int argc, char **argv, const char *program, run_options *opts,
                      net_kind *model);

/* Trains the recipe with opts, printing a progress bar per epoch and the test accuracy after
 * each; ends with "final test accuracy: 0.XXXX (E epochs, S s)". Returns the final test
 * accuracy, or a negative value on error (the message printed). */
double train_mnist(const recipe *r, const run_options *opts);

#endif
