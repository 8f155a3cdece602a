/* Classification metrics over logits [N, C] and int64 labels [N]: accuracy, top-k accuracy
 * and a confusion matrix with per-class and macro precision, recall and F1 (sklearn's
 * definitions, zero_division = 0). Ordering follows PyTorch: argmax takes the first maximum,
 * top-k takes the first k indices of a stable descending sort, and NaN counts as larger than
 * every number (as torch.max and torch.topk treat it). */
#include <math.h>
#include <stdlib.h>

#include "tensor/tensor.h"

/* Logit j of row i as a double. */
static double logit(const tg_tensor *x, int64_t i, int64_t j) {
    int64_t k = i * x->shape[1] + j;
    return x->dtype == TG_F32 ? ((const float *)x->data)[k] : ((const double *)x->data)[k];
}

/* a ranks above b: greater, or NaN against a number. */
static bool ranks_above(double a, double b) { return a > b || (isnan(a) && !isnan(b)); }

/* logits [N, C] float with C >= 1, labels int64 [N] in [0, C) (num_classes: the C required,
 * or 0 for any). Sets tg_last_error naming fn and returns false otherwise. */
static bool check_inputs(const char *fn, const tg_tensor *logits, const tg_tensor *labels,
                         int64_t num_classes) {
    if (!logits || !labels) {
        tg_set_last_error("%s: logits and labels must not be NULL", fn);
        return false;
    }
    if (!tg_is_float(logits->dtype) || logits->ndim != 2 || logits->shape[1] < 1 ||
        labels->dtype != TG_I64 || labels->ndim != 1 || labels->shape[0] != logits->shape[0]) {
        tg_set_last_error("%s: logits %s%s and labels %s%s do not fit logits: [N, C] float "
                          "with C >= 1, labels: int64 [N]", fn, tg_dtype_name(logits->dtype),
                          TG_SHAPE_STR(logits), tg_dtype_name(labels->dtype),
                          TG_SHAPE_STR(labels));
        return false;
    }
    if (num_classes && logits->shape[1] != num_classes) {
        tg_set_last_error("%s: logits %s have %lld classes, the matrix %lld", fn,
                          TG_SHAPE_STR(logits), (long long)logits->shape[1],
                          (long long)num_classes);
        return false;
    }
    const int64_t *y = labels->data;
    for (int64_t i = 0; i < labels->numel; i++) {
        if (y[i] < 0 || y[i] >= logits->shape[1]) {
            tg_set_last_error("%s: label %lld of row %lld is outside [0, %lld)", fn,
                              (long long)y[i], (long long)i, (long long)logits->shape[1]);
            return false;
        }
    }
    return true;
}

/* The first index of the largest logit of row i. */
static int64_t row_argmax(const tg_tensor *x, int64_t i) {
    int64_t best = 0;
    for (int64_t j = 1; j < x->shape[1]; j++)
        if (ranks_above(logit(x, i, j), logit(x, i, best))) best = j;
    return best;
}

double tg_accuracy(const tg_tensor *logits, const tg_tensor *labels) {
    return tg_topk_accuracy(logits, labels, 1);
}

double tg_topk_accuracy(const tg_tensor *logits, const tg_tensor *labels, int k) {
    if (!check_inputs(k == 1 ? "accuracy" : "topk_accuracy", logits, labels, 0)) return NAN;
    int64_t n = logits->shape[0], c = logits->shape[1];
    if (k < 1 || k > c) {
        tg_set_last_error("topk_accuracy: k = %d is outside [1, %lld]", k, (long long)c);
        return NAN;
    }
    if (n == 0) {
        tg_set_last_error("%s: no rows", k == 1 ? "accuracy" : "topk_accuracy");
        return NAN;
    }
    const int64_t *y = labels->data;
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        /* The label's place in a stable descending sort: the logits ranking above it, and the
         * equal ones before it. */
        double v = logit(logits, i, y[i]);
        int64_t ahead = 0;
        for (int64_t j = 0; j < c && ahead < k; j++) {
            double w = logit(logits, i, j);
            bool tie = w == v || (isnan(w) && isnan(v));
            ahead += ranks_above(w, v) || (tie && j < y[i]);
        }
        correct += ahead < k;
    }
    tg_clear_last_error();
    return (double)correct / (double)n;
}

/* ---- confusion matrix --------------------------------------------------------------------- */

tg_confusion *tg_confusion_new(int64_t num_classes) {
    if (num_classes < 1 || num_classes > (int64_t)1 << 20) {
        tg_set_last_error("confusion_new: num_classes = %lld is outside [1, 2^20]",
                          (long long)num_classes);
        return NULL;
    }
    tg_confusion *cm = malloc(sizeof *cm);
    int64_t *counts = calloc((size_t)(num_classes * num_classes), sizeof *counts);
    if (!cm || !counts) {
        free(cm);
        free(counts);
        tg_set_last_error("confusion_new: out of memory for %lld classes",
                          (long long)num_classes);
        return NULL;
    }
    cm->num_classes = num_classes;
    cm->counts = counts;
    tg_clear_last_error();
    return cm;
}

void tg_confusion_free(tg_confusion *cm) {
    if (!cm) return;
    free(cm->counts);
    free(cm);
}

int tg_confusion_add(tg_confusion *cm, const tg_tensor *logits, const tg_tensor *labels) {
    if (!cm) {
        tg_set_last_error("confusion_add: the matrix is NULL");
        return -1;
    }
    if (!check_inputs("confusion_add", logits, labels, cm->num_classes)) return -1;
    const int64_t *y = labels->data;
    for (int64_t i = 0; i < logits->shape[0]; i++)
        cm->counts[y[i] * cm->num_classes + row_argmax(logits, i)]++;
    tg_clear_last_error();
    return 0;
}

/* The true positives, predictions (column sum) and occurrences (row sum) of class c. */
static void class_counts(const tg_confusion *cm, int64_t c, int64_t *tp, int64_t *predicted,
                         int64_t *actual) {
    int64_t k = cm->num_classes;
    *tp = cm->counts[c * k + c];
    *predicted = *actual = 0;
    for (int64_t j = 0; j < k; j++) {
        *predicted += cm->counts[j * k + c];
        *actual += cm->counts[c * k + j];
    }
}

/* cm exists and cls is one of its classes; sets tg_last_error naming fn otherwise. */
static bool check_class(const char *fn, const tg_confusion *cm, int64_t cls) {
    if (!cm || cls < 0 || cls >= cm->num_classes) {
        tg_set_last_error("%s: class %lld is outside [0, %lld)", fn, (long long)cls,
                          (long long)(cm ? cm->num_classes : 0));
        return false;
    }
    return true;
}

static double ratio(int64_t num, int64_t den) { return den ? (double)num / (double)den : 0.0; }

double tg_confusion_precision(const tg_confusion *cm, int64_t cls) {
    if (!check_class("confusion_precision", cm, cls)) return NAN;
    int64_t tp, predicted, actual;
    class_counts(cm, cls, &tp, &predicted, &actual);
    return ratio(tp, predicted);
}

double tg_confusion_recall(const tg_confusion *cm, int64_t cls) {
    if (!check_class("confusion_recall", cm, cls)) return NAN;
    int64_t tp, predicted, actual;
    class_counts(cm, cls, &tp, &predicted, &actual);
    return ratio(tp, actual);
}

/* 2 tp / (2 tp + fp + fn), which is the harmonic mean of precision and recall where both are
 * defined and sklearn's value (0) where one is not. */
double tg_confusion_f1(const tg_confusion *cm, int64_t cls) {
    if (!check_class("confusion_f1", cm, cls)) return NAN;
    int64_t tp, predicted, actual;
    class_counts(cm, cls, &tp, &predicted, &actual);
    return ratio(2 * tp, predicted + actual);
}

typedef double (*class_metric)(const tg_confusion *, int64_t);

/* The mean of metric over the classes that occur among the labels or the predictions, as
 * sklearn's average='macro' without an explicit label list; NaN for an empty matrix. */
static double macro(const char *fn, const tg_confusion *cm, class_metric metric) {
    if (!cm) {
        tg_set_last_error("%s: the matrix is NULL", fn);
        return NAN;
    }
    double sum = 0.0;
    int64_t classes = 0;
    for (int64_t c = 0; c < cm->num_classes; c++) {
        int64_t tp, predicted, actual;
        class_counts(cm, c, &tp, &predicted, &actual);
        if (predicted == 0 && actual == 0) continue;
        sum += metric(cm, c);
        classes++;
    }
    if (classes == 0) {
        tg_set_last_error("%s: the matrix is empty", fn);
        return NAN;
    }
    return sum / (double)classes;
}

double tg_confusion_macro_precision(const tg_confusion *cm) {
    return macro("confusion_macro_precision", cm, tg_confusion_precision);
}

double tg_confusion_macro_recall(const tg_confusion *cm) {
    return macro("confusion_macro_recall", cm, tg_confusion_recall);
}

double tg_confusion_macro_f1(const tg_confusion *cm) {
    return macro("confusion_macro_f1", cm, tg_confusion_f1);
}

double tg_confusion_accuracy(const tg_confusion *cm) {
    if (!cm) {
        tg_set_last_error("confusion_accuracy: the matrix is NULL");
        return NAN;
    }
    int64_t k = cm->num_classes, total = 0, diagonal = 0;
    for (int64_t i = 0; i < k; i++) {
        diagonal += cm->counts[i * k + i];
        for (int64_t j = 0; j < k; j++) total += cm->counts[i * k + j];
    }
    if (total == 0) {
        tg_set_last_error("confusion_accuracy: the matrix is empty");
        return NAN;
    }
    return (double)diagonal / (double)total;
}
