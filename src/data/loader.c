/* The batch loader: walks a dataset (all of it or an index list) in batches, in order or in a
 * fresh Fisher-Yates shuffle per epoch, and forms each batch on the tape, applying the
 * transforms per image on the way: zero padding, a random crop, a random horizontal flip, then
 * the per-channel affine map (scale, normalize) through a 256-entry table. Also one-hot targets
 * with label smoothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/tensor.h"

enum { MAX_PAD = 1 << 16 };

struct tg_loader {
    const tg_dataset *ds;  /* borrowed: must outlive the loader */
    tg_rng *rng;           /* borrowed; NULL when nothing is random */
    int64_t batch;
    bool shuffle, drop_last;
    int64_t n;             /* examples listed */
    int64_t *indices;      /* [n] the examples as given (0..ds->n-1 without a list) */
    int64_t *order;        /* [n] this epoch's order */
    int64_t pos;           /* next position in order */
    bool in_epoch;
    tg_transform tf;
    int64_t out_h, out_w;  /* height and width after padding */
    double *lut;           /* [C, 256]: the value a pixel byte becomes in each channel */
};

tg_transform tg_transform_defaults(void) {
    tg_transform t = {.dtype = TG_F32, .scale = 1.0 / 255.0};
    for (int c = 0; c < 4; c++) t.std[c] = 1.0;
    return t;
}

/* The transform is usable for images of `channels` channels; else the last error is set. */
static bool transform_ok(const tg_transform *tf, int64_t channels) {
    if (tf->dtype != TG_F32 && tf->dtype != TG_F64) {
        tg_set_last_error("loader_new: the transform's dtype must be f32 or f64, got %s",
                          tg_dtype_name(tf->dtype));
        return false;
    }
    if (!isfinite(tf->scale)) {
        tg_set_last_error("loader_new: the transform's scale must be finite, got %g", tf->scale);
        return false;
    }
    if (tf->pad < 0 || tf->pad > MAX_PAD || tf->crop_pad < 0 || tf->crop_pad > MAX_PAD) {
        tg_set_last_error("loader_new: pad and crop_pad must be in 0..%d, got %lld and %lld",
                          MAX_PAD, (long long)tf->pad, (long long)tf->crop_pad);
        return false;
    }
    if (!tf->normalize) return true;
    if (channels > 4) {
        tg_set_last_error("loader_new: normalize takes at most 4 channels, the dataset has %lld",
                          (long long)channels);
        return false;
    }
    for (int64_t c = 0; c < channels; c++) {
        if (!isfinite(tf->mean[c]) || !isfinite(tf->std[c]) || tf->std[c] == 0.0) {
            tg_set_last_error("loader_new: channel %lld needs a finite mean and a finite, "
                              "non-zero std, got %g and %g", (long long)c, tf->mean[c],
                              tf->std[c]);
            return false;
        }
    }
    return true;
}

/* Checks everything tg_loader_new is given; sets the last error and returns false when a
 * check fails. */
static bool loader_args_ok(const tg_dataset *ds, int64_t batch, bool shuffle,
                           const int64_t *indices, int64_t n_indices, const tg_transform *tf,
                           const tg_rng *rng) {
    if (!ds || !ds->pixels || !ds->labels || ds->n < 1 || ds->channels < 1 || ds->height < 1 ||
        ds->width < 1) {
        tg_set_last_error("loader_new: needs a dataset with pixels, labels and n, channels, "
                          "height, width >= 1");
        return false;
    }
    if (batch < 1) {
        tg_set_last_error("loader_new: batch must be >= 1, got %lld", (long long)batch);
        return false;
    }
    if (!indices && n_indices != 0) {
        tg_set_last_error("loader_new: indices is NULL but n_indices is %lld (pass 0 for the "
                          "whole dataset)", (long long)n_indices);
        return false;
    }
    if (indices && n_indices < 1) {
        tg_set_last_error("loader_new: an index list needs n_indices >= 1, got %lld",
                          (long long)n_indices);
        return false;
    }
    for (int64_t i = 0; indices && i < n_indices; i++) {
        if (indices[i] < 0 || indices[i] >= ds->n) {
            tg_set_last_error("loader_new: index %lld at position %lld is outside the dataset's "
                              "0..%lld", (long long)indices[i], (long long)i,
                              (long long)(ds->n - 1));
            return false;
        }
    }
    if (!transform_ok(tf, ds->channels)) return false;
    if (!rng && (shuffle || tf->crop_pad > 0 || tf->hflip)) {
        tg_set_last_error("loader_new: shuffling, random crops and random flips need an rng");
        return false;
    }
    int64_t n = indices ? n_indices : ds->n;
    int64_t shape[4] = {batch < n ? batch : n, ds->channels, ds->height + 2 * tf->pad,
                        ds->width + 2 * tf->pad};
    char why[160];
    if (!tg_shape_valid(4, shape, why, sizeof why)) {
        tg_set_last_error("loader_new: batches would be too large: %s", why);
        return false;
    }
    return true;
}

tg_loader *tg_loader_new(const tg_dataset *ds, int64_t batch, bool shuffle, bool drop_last,
                         const int64_t *indices, int64_t n_indices, const tg_transform *transform,
                         tg_rng *rng) {
    tg_transform tf = transform ? *transform : tg_transform_defaults();
    if (!loader_args_ok(ds, batch, shuffle, indices, n_indices, &tf, rng)) return NULL;
    int64_t n = indices ? n_indices : ds->n;
    tg_loader *l = calloc(1, sizeof *l);
    if (l) {
        l->indices = malloc((size_t)n * sizeof *l->indices);
        l->order = malloc((size_t)n * sizeof *l->order);
        l->lut = malloc((size_t)ds->channels * 256 * sizeof *l->lut);
    }
    if (!l || !l->indices || !l->order || !l->lut) {
        tg_loader_free(l);
        tg_set_last_error("loader_new: out of memory for %lld indices", (long long)n);
        return NULL;
    }
    l->ds = ds;
    l->rng = rng;
    l->batch = batch;
    l->shuffle = shuffle;
    l->drop_last = drop_last;
    l->n = n;
    for (int64_t i = 0; i < n; i++) l->indices[i] = indices ? indices[i] : i;
    l->tf = tf;
    l->out_h = ds->height + 2 * tf.pad;
    l->out_w = ds->width + 2 * tf.pad;
    for (int64_t c = 0; c < ds->channels; c++) {
        for (int v = 0; v < 256; v++) {
            double x = v * tf.scale;
            l->lut[c * 256 + v] = tf.normalize ? (x - tf.mean[c]) / tf.std[c] : x;
        }
    }
    tg_clear_last_error();
    return l;
}

void tg_loader_free(tg_loader *l) {
    if (!l) return;
    free(l->indices);
    free(l->order);
    free(l->lut);
    free(l);
}

int64_t tg_loader_num_examples(const tg_loader *l) {
    if (!l) return 0;
    return l->drop_last ? l->n / l->batch * l->batch : l->n;
}

int64_t tg_loader_num_batches(const tg_loader *l) {
    if (!l) return 0;
    return l->drop_last ? l->n / l->batch : (l->n + l->batch - 1) / l->batch;
}

/* The order is drawn afresh from the index list (not from the previous epoch's order), so it
 * depends only on the rng's state: a run resumed from a checkpoint shuffles identically. */
void tg_loader_start_epoch(tg_loader *l) {
    if (!l) return;
    memcpy(l->order, l->indices, (size_t)l->n * sizeof *l->order);
    if (l->shuffle) {
        for (int64_t i = l->n - 1; i > 0; i--) {
            int64_t j = (int64_t)tg_rng_below(l->rng, (uint64_t)i + 1);
            int64_t t = l->order[i];
            l->order[i] = l->order[j];
            l->order[j] = t;
        }
    }
    l->pos = 0;
    l->in_epoch = true;
}

/* Writes example `e` transformed into out (f32 or f64 [C, H', W'], starting at element
 * `offset`). Random draws, in this order: the crop's row offset, its column offset (each
 * uniform in 0..2*crop_pad), then the flip (tg_rng_below(rng, 2) == 1 flips). Output pixel
 * (y, x) reads input pixel (y + dy - crop_pad - pad, x' + dx - crop_pad - pad), x' = x or the
 * mirrored W' - 1 - x; positions outside the image read as a zero byte. */
static void transform_image(tg_loader *l, int64_t e, void *out, int64_t offset) {
    const tg_dataset *ds = l->ds;
    const tg_transform *tf = &l->tf;
    int64_t h = ds->height, w = ds->width, oh = l->out_h, ow = l->out_w;
    int64_t dy = 0, dx = 0;
    if (tf->crop_pad > 0) {
        dy = (int64_t)tg_rng_below(l->rng, 2 * (uint64_t)tf->crop_pad + 1);
        dx = (int64_t)tg_rng_below(l->rng, 2 * (uint64_t)tf->crop_pad + 1);
    }
    bool flip = tf->hflip && tg_rng_below(l->rng, 2) == 1;
    int64_t shift_y = dy - tf->crop_pad - tf->pad, shift_x = dx - tf->crop_pad - tf->pad;
    const uint8_t *src = ds->pixels + e * ds->channels * h * w;
    float *o32 = tf->dtype == TG_F32 ? (float *)out + offset : NULL;
    double *o64 = tf->dtype == TG_F64 ? (double *)out + offset : NULL;
    for (int64_t c = 0; c < ds->channels; c++) {
        const double *lut = l->lut + c * 256;
        const uint8_t *plane = src + c * h * w;
        for (int64_t y = 0; y < oh; y++) {
            int64_t sy = y + shift_y;
            bool row_in = sy >= 0 && sy < h;
            for (int64_t x = 0; x < ow; x++) {
                int64_t sx = (flip ? ow - 1 - x : x) + shift_x;
                double v = lut[row_in && sx >= 0 && sx < w ? plane[sy * w + sx] : 0];
                int64_t i = (c * oh + y) * ow + x;
                if (o32) o32[i] = (float)v;
                else o64[i] = v;
            }
        }
    }
}

bool tg_loader_next(tg_loader *l, tg_tape *tp, tg_tensor **x, tg_tensor **y) {
    if (x) *x = NULL;
    if (y) *y = NULL;
    if (!l || !tp || !x || !y) {
        tg_fail(tp, "loader_next: %s is NULL", !l ? "the loader" : !tp ? "the tape" : "x or y");
        return false;
    }
    if (!l->in_epoch) tg_loader_start_epoch(l);
    int64_t end = tg_loader_num_examples(l);
    if (l->pos >= end) {
        l->in_epoch = false;
        return false;
    }
    const tg_dataset *ds = l->ds;
    int64_t b = end - l->pos < l->batch ? end - l->pos : l->batch;
    int64_t xshape[4] = {b, ds->channels, l->out_h, l->out_w};
    tg_tensor *xt = tg_tensor_alloc(tp, l->tf.dtype, 4, xshape);
    tg_tensor *yt = xt ? tg_tensor_alloc(tp, TG_I64, 1, &b) : NULL;
    if (!yt) return false; /* out of memory, recorded on the tape */
    int64_t per_image = ds->channels * l->out_h * l->out_w;
    int64_t *labels = yt->data;
    for (int64_t i = 0; i < b; i++) {
        int64_t e = l->order[l->pos + i];
        transform_image(l, e, xt->data, i * per_image);
        labels[i] = ds->labels[e];
    }
    l->pos += b;
    *x = xt;
    *y = yt;
    return true;
}

/* labels: i64 [N] -> [N, C] filled with eps/C, then 1 - eps + eps/C at each label (both
 * computed in double). A plain fill rather than tg_one_hot, so every message names this
 * function. */
tg_tensor *tg_one_hot_smooth(tg_tape *tp, tg_tensor *labels, int64_t num_classes, double eps,
                             tg_dtype dtype) {
    if (!tp) {
        tg_set_last_error("one_hot_smooth: tape is NULL");
        return NULL;
    }
    if (!labels) {
        tg_fail(tp, "one_hot_smooth: labels is NULL");
        return NULL;
    }
    if (labels->tape && (labels->tape != tp || labels->epoch != tp->epoch)) {
        tg_fail(tp, "one_hot_smooth: labels %s belong to another tape or to a step before "
                "tg_tape_reset", TG_SHAPE_STR(labels));
        return NULL;
    }
    if (labels->dtype != TG_I64 || labels->ndim != 1 || num_classes < 1 || !tg_is_float(dtype) ||
        !(eps >= 0.0 && eps <= 1.0)) {
        tg_fail(tp, "one_hot_smooth: needs i64 labels [N], num_classes >= 1, an f32 or f64 "
                "dtype and eps in [0, 1], got labels %s%s, %lld classes, %s and eps %g",
                tg_dtype_name(labels->dtype), TG_SHAPE_STR(labels), (long long)num_classes,
                tg_dtype_name(dtype), eps);
        return NULL;
    }
    const int64_t *lab = labels->data;
    int64_t n = labels->shape[0];
    for (int64_t i = 0; i < n; i++) {
        if (lab[i] < 0 || lab[i] >= num_classes) {
            tg_fail(tp, "one_hot_smooth: label %lld at position %lld is outside 0..%lld",
                    (long long)lab[i], (long long)i, (long long)(num_classes - 1));
            return NULL;
        }
    }
    double off = eps / (double)num_classes, on = 1.0 - eps + off;
    int64_t shape[2] = {n, num_classes};
    tg_tensor *out = tg_full(tp, dtype, 2, shape, off);
    if (!out) return NULL;
    for (int64_t i = 0; i < n; i++) {
        if (dtype == TG_F32) ((float *)out->data)[i * num_classes + lab[i]] = (float)on;
        else ((double *)out->data)[i * num_classes + lab[i]] = on;
    }
    return out;
}
