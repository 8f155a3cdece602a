/* The in-memory image dataset ([n, C, H, W] bytes and int64 labels) and the readers that fill
 * it: MNIST, a pair of IDX files, and CIFAR-10, binary batches of (1 label + 3,072 pixel)-byte
 * records. Every file goes through the checked readers of idx.c; here the contents are checked
 * against what the dataset needs (shapes, counts, label ranges). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/read.h"
#include "tensor/tensor.h"

enum {
    MNIST_SIDE = 28,
    CIFAR_PIXELS = 3 * 32 * 32,
    CIFAR_RECORD = 1 + CIFAR_PIXELS,
    PATH_BYTES = 4096,
};
#define CIFAR_MAX_FILE ((size_t)1 << 30)

/* A dataset that takes ownership of pixels [n, C, H, W] and labels [n] (already checked). On
 * failure both are freed and NULL is returned with the last error set. */
static tg_dataset *dataset_adopt(int64_t n, int64_t channels, int64_t height, int64_t width,
                                 int64_t num_classes, uint8_t *pixels, int64_t *labels) {
    tg_dataset *ds = malloc(sizeof *ds);
    if (!ds) {
        free(pixels);
        free(labels);
        tg_set_last_error("dataset: out of memory");
        return NULL;
    }
    *ds = (tg_dataset){.n = n, .channels = channels, .height = height, .width = width,
                       .num_classes = num_classes, .pixels = pixels, .labels = labels};
    tg_clear_last_error();
    return ds;
}

tg_dataset *tg_dataset_new(int64_t n, int64_t channels, int64_t height, int64_t width,
                           int64_t num_classes, const uint8_t *pixels, const int64_t *labels) {
    int64_t shape[4] = {n, channels, height, width};
    char why[160];
    if (n < 1 || channels < 1 || height < 1 || width < 1 || num_classes < 1) {
        tg_set_last_error("dataset_new: needs n, channels, height, width and num_classes >= 1, "
                          "got images %s and %lld classes",
                          tg_shape_str((char[96]){0}, 96, 4, shape), (long long)num_classes);
        return NULL;
    }
    if (!tg_shape_valid(4, shape, why, sizeof why)) {
        tg_set_last_error("dataset_new: %s", why);
        return NULL;
    }
    if (!pixels || !labels) {
        tg_set_last_error("dataset_new: %s is NULL", pixels ? "labels" : "pixels");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= num_classes) {
            tg_set_last_error("dataset_new: label %lld of example %lld is outside 0..%lld",
                              (long long)labels[i], (long long)i, (long long)(num_classes - 1));
            return NULL;
        }
    }
    size_t bytes = (size_t)tg_shape_numel(4, shape);
    uint8_t *px = malloc(bytes);
    int64_t *lb = malloc((size_t)n * sizeof *lb);
    if (!px || !lb) {
        free(px);
        free(lb);
        tg_set_last_error("dataset_new: out of memory for %zu pixel bytes", bytes);
        return NULL;
    }
    memcpy(px, pixels, bytes);
    memcpy(lb, labels, (size_t)n * sizeof *lb);
    return dataset_adopt(n, channels, height, width, num_classes, px, lb);
}

void tg_dataset_free(tg_dataset *ds) {
    if (!ds) return;
    free(ds->pixels);
    free(ds->labels);
    free(ds);
}

/* dir/name into buf; false with the last error set when it does not fit. */
static bool join(char *buf, const char *dir, const char *name) {
    int n = snprintf(buf, PATH_BYTES, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_BYTES) {
        tg_set_last_error("%s: path too long", dir);
        return false;
    }
    return true;
}

/* The file exists (or at least is not reported missing: a file that cannot be inspected is
 * handed to the reader, which names the problem). */
static bool present(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 || errno != ENOENT;
}

/* dir/name.gz when present, else dir/name when present, into path; false with the last error
 * set when neither is. */
static bool find_mnist_file(const char *dir, const char *name, char *path) {
    char gz[64];
    snprintf(gz, sizeof gz, "%s.gz", name);
    if (!join(path, dir, gz)) return false;
    if (present(path)) return true;
    if (!join(path, dir, name)) return false;
    if (present(path)) return true;
    tg_set_last_error("%s: neither %s nor %s is there", dir, gz, name);
    return false;
}

tg_dataset *tg_mnist_load(const char *dir, bool train) {
    if (!dir) {
        tg_set_last_error("mnist_load: dir is NULL");
        return NULL;
    }
    const char *prefix = train ? "train" : "t10k";
    char img_name[48], lbl_name[48];
    snprintf(img_name, sizeof img_name, "%s-images-idx3-ubyte", prefix);
    snprintf(lbl_name, sizeof lbl_name, "%s-labels-idx1-ubyte", prefix);
    char img_path[PATH_BYTES], lbl_path[PATH_BYTES];
    if (!find_mnist_file(dir, img_name, img_path) || !find_mnist_file(dir, lbl_name, lbl_path))
        return NULL;

    tg_idx images, labels = {0};
    if (tg_idx_read(img_path, 0, &images) != 0 || tg_idx_read(lbl_path, 0, &labels) != 0) {
        tg_idx_free(&images);
        return NULL;
    }
    tg_dataset *ds = NULL;
    int64_t *lb = NULL;
    if (images.ndim != 3 || images.dims[1] != MNIST_SIDE || images.dims[2] != MNIST_SIDE) {
        tg_set_last_error("%s: MNIST images must be [n, 28, 28], the file holds %s", img_path,
                          tg_shape_str((char[96]){0}, 96, images.ndim, images.dims));
    } else if (labels.ndim != 1) {
        tg_set_last_error("%s: MNIST labels must be [n], the file holds %s", lbl_path,
                          tg_shape_str((char[96]){0}, 96, labels.ndim, labels.dims));
    } else if (labels.dims[0] != images.dims[0]) {
        tg_set_last_error("%s holds %lld images but %s holds %lld labels", img_path,
                          (long long)images.dims[0], lbl_path, (long long)labels.dims[0]);
    } else if (!(lb = malloc((size_t)labels.dims[0] * sizeof *lb))) {
        tg_set_last_error("%s: out of memory", lbl_path);
    } else {
        int64_t n = labels.dims[0], bad = -1;
        for (int64_t i = 0; i < n && bad < 0; i++) {
            if (labels.data[i] > 9) bad = i;
            lb[i] = labels.data[i];
        }
        if (bad >= 0) {
            tg_set_last_error("%s: label %u at index %lld is not a digit 0..9", lbl_path,
                              labels.data[bad], (long long)bad);
            free(lb);
        } else {
            ds = dataset_adopt(n, 1, MNIST_SIDE, MNIST_SIDE, 10, images.data, lb);
            images.data = NULL; /* adopted (or freed by dataset_adopt) */
        }
    }
    tg_idx_free(&images);
    tg_idx_free(&labels);
    return ds;
}

/* Appends the records of the CIFAR-10 batch file at path to pixels [*n, 3, 32, 32] and labels
 * [*n] (both grown with realloc). Returns 0, or -1 with the last error set. */
static int cifar_append(const char *path, uint8_t **pixels, int64_t **labels, int64_t *n) {
    uint8_t *buf;
    size_t len;
    if (tg_read_file(path, CIFAR_MAX_FILE, &buf, &len) != 0) return -1;
    int rc = -1;
    int64_t m = (int64_t)(len / CIFAR_RECORD);
    if (len == 0 || len % CIFAR_RECORD) {
        tg_set_last_error("%s: %zu bytes is not a whole, non-zero number of %d-byte CIFAR-10 "
                          "records (%lld records and %zu bytes over)", path, len, CIFAR_RECORD,
                          (long long)m, len % CIFAR_RECORD);
        goto done;
    }
    for (int64_t r = 0; r < m; r++) {
        if (buf[r * CIFAR_RECORD] > 9) {
            tg_set_last_error("%s: label %u in record %lld is outside 0..9", path,
                              buf[r * CIFAR_RECORD], (long long)r);
            goto done;
        }
    }
    uint8_t *px = realloc(*pixels, (size_t)(*n + m) * CIFAR_PIXELS);
    if (px) *pixels = px;
    int64_t *lb = px ? realloc(*labels, (size_t)(*n + m) * sizeof *lb) : NULL;
    if (lb) *labels = lb;
    if (!px || !lb) {
        tg_set_last_error("%s: out of memory for %lld images", path, (long long)(*n + m));
        goto done;
    }
    for (int64_t r = 0; r < m; r++) {
        const uint8_t *rec = buf + r * CIFAR_RECORD;
        lb[*n + r] = rec[0];
        memcpy(px + (size_t)(*n + r) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
    }
    *n += m;
    rc = 0;
done:
    free(buf);
    return rc;
}

tg_dataset *tg_cifar10_load(const char *dir, bool train) {
    if (!dir) {
        tg_set_last_error("cifar10_load: dir is NULL");
        return NULL;
    }
    uint8_t *pixels = NULL;
    int64_t *labels = NULL, n = 0;
    char path[PATH_BYTES];
    int files = 0;
    bool ok = true;
    if (train) {
        for (int i = 1; i <= 5 && ok; i++) {
            char name[32];
            snprintf(name, sizeof name, "data_batch_%d.bin", i);
            ok = join(path, dir, name);
            if (ok && present(path)) {
                ok = cifar_append(path, &pixels, &labels, &n) == 0;
                files++;
            }
        }
        if (ok && files == 0) {
            tg_set_last_error("%s: no CIFAR-10 training batch (data_batch_1.bin .. "
                              "data_batch_5.bin) is there", dir);
            ok = false;
        }
    } else {
        ok = join(path, dir, "test_batch.bin") && cifar_append(path, &pixels, &labels, &n) == 0;
    }
    if (!ok) {
        free(pixels);
        free(labels);
        return NULL;
    }
    return dataset_adopt(n, 3, 32, 32, 10, pixels, labels);
}
