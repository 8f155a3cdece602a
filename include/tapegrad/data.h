/* tapegrad data: readers for MNIST (IDX, gzip or plain) and CIFAR-10 (binary version), an
 * in-memory image dataset, a batch loader with shuffling and index lists, and the transforms
 * applied as batches are formed. Included by tapegrad.h. Readers never trust a file: every
 * size is checked against the header and the bytes actually present, and a bad file is an
 * error naming the file and the problem (return -1 with tg_last_error()), never a crash, an
 * out-of-bounds read or a huge allocation. */
#ifndef TAPEGRAD_DATA_H
#define TAPEGRAD_DATA_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------------------------- */

/* The contents of an IDX file of unsigned bytes (type 0x08): dims and row-major data. */
typedef struct tg_idx {
    int ndim;
    int64_t dims[4];
    uint8_t *data;  /* dims[0] * ... bytes, malloc'd */
} tg_idx;

/* Reads an IDX file, gzip-compressed (detected by its magic bytes) or plain. Checks the magic
 * (type 0x08, rank 1..4), that the dims are non-zero and their product fits max_bytes, and
 * that the file holds exactly as many bytes as the header declares (a truncated file and
 * trailing bytes are errors). max_bytes 0 means 1 GiB. */
int tg_idx_read(const char *path, size_t max_bytes, tg_idx *out);
void tg_idx_free(tg_idx *idx);

/* ---------------------------------------------------------------------------------------------
 * An in-memory dataset of n images [C, H, W] of bytes and their int64 labels.
 * ------------------------------------------------------------------------------------------- */

typedef struct tg_dataset {
    int64_t n, channels, height, width;
    int64_t num_classes;
    uint8_t *pixels;   /* [n, C, H, W] */
    int64_t *labels;   /* [n], each in [0, num_classes) */
} tg_dataset;

/* A dataset copied from caller buffers (labels are checked against num_classes). */
tg_dataset *tg_dataset_new(int64_t n, int64_t channels, int64_t height, int64_t width,
                           int64_t num_classes, const uint8_t *pixels, const int64_t *labels);
void tg_dataset_free(tg_dataset *ds);

/* MNIST from a folder holding train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]
 * (train = true) or the t10k- files: [n, 1, 28, 28], 10 classes. Image and label counts must
 * agree and labels be 0..9. */
tg_dataset *tg_mnist_load(const char *dir, bool train);
/* CIFAR-10 binary version: records of 1 label byte and 3,072 pixel bytes ([3, 32, 32]). With
 * train = true, data_batch_1.bin .. data_batch_5.bin in dir (those present, at least one),
 * else test_batch.bin. A file that is not a whole number of records, or a label above 9, is
 * an error. */
tg_dataset *tg_cifar10_load(const char *dir, bool train);

/* ---------------------------------------------------------------------------------------------
 * Transforms, applied per image as a batch is formed (in this order): pad with zeros, random
 * crop back to the padded-away size, random horizontal flip, scale, normalize per channel.
 * ------------------------------------------------------------------------------------------- */

typedef struct tg_transform {
    tg_dtype dtype;         /* f32 or f64 batches */
    double scale;           /* pixel * scale (1/255 for [0, 1]) */
    int64_t pad;            /* zero padding on every side (LeNet: 2, 28 -> 32) */
    int64_t crop_pad;       /* random crop: pad by crop_pad, crop back to the original size */
    bool hflip;             /* flip left-right with probability 1/2 */
    bool normalize;         /* (x - mean[c]) / std[c] after scaling */
    double mean[4], std[4]; /* per channel, for normalize */
} tg_transform;
/* f32, scale 1/255, nothing else. */
tg_transform tg_transform_defaults(void);

/* ---------------------------------------------------------------------------------------------
 * Loader
 * ------------------------------------------------------------------------------------------- */

typedef struct tg_loader tg_loader;

/* Batches of `batch` examples from ds: all of it, or the n_indices examples listed in indices
 * (copied; e.g. 0..1499 for training and the rest for testing). shuffle draws a new order from
 * rng at each epoch (rng borrowed; required for shuffle and random transforms). drop_last skips
 * a final short batch. transform NULL = tg_transform_defaults(). */
tg_loader *tg_loader_new(const tg_dataset *ds, int64_t batch, bool shuffle, bool drop_last,
                         const int64_t *indices, int64_t n_indices, const tg_transform *transform,
                         tg_rng *rng);
void tg_loader_free(tg_loader *l);
/* Batches per epoch. */
int64_t tg_loader_num_batches(const tg_loader *l);
/* Examples per epoch (after drop_last). */
int64_t tg_loader_num_examples(const tg_loader *l);
/* Starts an epoch (shuffles when asked). Called implicitly before the first batch. */
void tg_loader_start_epoch(tg_loader *l);
/* The next batch of the epoch on tp: *x [B, C, H', W'] in the transform's dtype, *y int64 [B].
 * Returns false at the end of the epoch (then start a new one) or on error (tape error). */
bool tg_loader_next(tg_loader *l, tg_tape *tp, tg_tensor **x, tg_tensor **y);

/* One-hot targets with label smoothing, as the notes' loader makes them: 1 - eps + eps/C for
 * the label, eps/C elsewhere. labels: int64 [N] -> [N, C] in dtype, on tp. */
tg_tensor *tg_one_hot_smooth(tg_tape *tp, tg_tensor *labels, int64_t num_classes, double eps,
                             tg_dtype dtype);

#ifdef __cplusplus
}
#endif

#endif /* TAPEGRAD_DATA_H */
