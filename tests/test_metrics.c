/* Tests of metrics and reporting (suite `data`): accuracy and top-k accuracy (ties and NaN in
 * PyTorch's order), the confusion matrix with per-class and macro precision / recall / F1
 * against hand-computed values (sklearn's definitions), the progress display as plain lines
 * (a file) and as a redrawn bar (a pseudo-terminal), the CSV log, and the gnuplot PNG. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tapegrad.h"
#include "testing.h"

static tg_tensor *logits_f64(int64_t n, int64_t c, const double *v) {
    tg_tensor *t = tg_tensor_from(NULL, TG_F64, 2, (int64_t[]){n, c}, v);
    ck_assert_ptr_nonnull(t);
    return t;
}

static tg_tensor *labels_i64(int64_t n, const int64_t *v) {
    tg_tensor *t = tg_tensor_from(NULL, TG_I64, 1, &n, v);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* A temporary file name under the test's own folder. */
static void temp_path(char *buf, size_t size, const char *name) {
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(buf, size, "%s/tg_metrics_%ld_%s", dir, (long)getpid(), name);
}

/* The whole of a file (or stream from its start) as a NUL-terminated string. */
static char *slurp(FILE *fp) {
    ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    rewind(fp);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq((long)fread(s, 1, (size_t)n, fp), n);
    s[n] = '\0';
    return s;
}

static char *slurp_path(const char *path) {
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    char *s = slurp(fp);
    fclose(fp);
    return s;
}

/* ---- accuracy and top-k ------------------------------------------------------------------- */

START_TEST(test_accuracy_values) {
    /* argmax per row: 2, 0, 1, 1; labels 2, 0, 0, 1 -> 3 of 4. */
    const double v[] = {0.1, 0.2, 0.7, 3.0, -1.0, 2.0, 0.0, 5.0, 4.0, -2.0, 1.0, 0.5};
    tg_tensor *x = logits_f64(4, 3, v);
    tg_tensor *y = labels_i64(4, (int64_t[]){2, 0, 0, 1});
    ck_assert_double_eq(tg_accuracy(x, y), 0.75);
    ck_assert_ptr_null(tg_last_error());
    /* The same in f32. */
    float vf[12];
    for (int i = 0; i < 12; i++) vf[i] = (float)v[i];
    tg_tensor *xf = tg_tensor_from(NULL, TG_F32, 2, (int64_t[]){4, 3}, vf);
    ck_assert_double_eq(tg_accuracy(xf, y), 0.75);
    ck_assert_double_eq(tg_topk_accuracy(xf, y, 2), 0.75); /* row 2: label 0 is third */
    ck_assert_double_eq(tg_topk_accuracy(xf, y, 3), 1.0);
    tg_tensor_free(x);
    tg_tensor_free(xf);
    tg_tensor_free(y);
}
END_TEST

START_TEST(test_accuracy_ties_and_nan) {
    /* torch.argmax: the first maximum; NaN counts as the maximum. */
    const double v[] = {1.0, 1.0, 0.0, /* tie of 0 and 1 -> 0 */
                        0.0, NAN, 9.0, /* NaN wins -> 1 */
                        NAN, NAN, 1.0};/* first NaN -> 0 */
    tg_tensor *x = logits_f64(3, 3, v);
    tg_tensor *first = labels_i64(3, (int64_t[]){0, 1, 0});
    tg_tensor *second = labels_i64(3, (int64_t[]){1, 2, 1});
    ck_assert_double_eq(tg_accuracy(x, first), 1.0);
    ck_assert_double_eq(tg_accuracy(x, second), 0.0);
    /* Top-2: row 0 {0, 1}, row 1 {1, 2}, row 2 {0, 1}. */
    ck_assert_double_eq(tg_topk_accuracy(x, second, 2), 1.0);
    tg_tensor_free(x);
    tg_tensor_free(first);
    tg_tensor_free(second);
}
END_TEST

START_TEST(test_topk_stable_order) {
    /* A stable descending sort of {0.1, 0.5, 0.5, 0.2} is 1, 2, 3, 0. */
    const double row[] = {0.1, 0.5, 0.5, 0.2};
    tg_tensor *x = logits_f64(1, 4, row);
    const int64_t label[4] = {0, 1, 2, 3};
    const int place[4] = {4, 1, 2, 3}; /* the smallest k that contains each label */
    for (int l = 0; l < 4; l++) {
        tg_tensor *y = labels_i64(1, &label[l]);
        for (int k = 1; k <= 4; k++)
            ck_assert_msg(tg_topk_accuracy(x, y, k) == (k >= place[l] ? 1.0 : 0.0),
                          "label %d, k %d", l, k);
        tg_tensor_free(y);
    }
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_topk_against_accuracy) {
    /* Random logits with repeated values: top-1 is accuracy, top-C is 1, top-k grows with k. */
    tg_rng *rng = tg_rng_new(5);
    enum { N = 200, C = 7 };
    double v[N * C];
    int64_t y[N];
    for (int i = 0; i < N * C; i++) v[i] = (double)tg_rng_below(rng, 4);
    for (int i = 0; i < N; i++) y[i] = (int64_t)tg_rng_below(rng, C);
    tg_tensor *x = logits_f64(N, C, v), *t = labels_i64(N, y);
    double acc = tg_accuracy(x, t);
    ck_assert_double_eq(tg_topk_accuracy(x, t, 1), acc);
    double last = acc;
    for (int k = 2; k <= C; k++) {
        double a = tg_topk_accuracy(x, t, k);
        ck_assert(a >= last);
        last = a;
    }
    ck_assert_double_eq(last, 1.0);
    /* Brute force: count the rows where fewer than k entries precede the label in a stable
     * descending order. */
    for (int k = 1; k <= C; k++) {
        int correct = 0;
        for (int i = 0; i < N; i++) {
            int ahead = 0;
            for (int j = 0; j < C; j++) {
                double w = v[i * C + j], l = v[i * C + y[i]];
                ahead += w > l || (w == l && j < y[i]);
            }
            correct += ahead < k;
        }
        ck_assert_double_eq(tg_topk_accuracy(x, t, k), (double)correct / N);
    }
    tg_tensor_free(x);
    tg_tensor_free(t);
    tg_rng_free(rng);
}
END_TEST

START_TEST(test_accuracy_errors) {
    tg_tensor *x = logits_f64(2, 3, (double[]){0, 1, 2, 3, 4, 5});
    tg_tensor *y = labels_i64(2, (int64_t[]){0, 3});
    ck_assert(isnan(tg_accuracy(x, y)));
    CK_HAS(tg_last_error(), "label 3 of row 1 is outside [0, 3)");
    tg_tensor *short_y = labels_i64(1, (int64_t[]){0});
    ck_assert(isnan(tg_accuracy(x, short_y)));
    CK_HAS(tg_last_error(), "labels i64[1]");
    tg_tensor *good = labels_i64(2, (int64_t[]){0, 2});
    ck_assert(isnan(tg_topk_accuracy(x, good, 0)));
    CK_HAS(tg_last_error(), "k = 0 is outside [1, 3]");
    ck_assert(isnan(tg_topk_accuracy(x, good, 4)));
    ck_assert(isnan(tg_accuracy(good, good)));
    CK_HAS(tg_last_error(), "logits i64[2]");
    ck_assert(isnan(tg_accuracy(NULL, good)));
    CK_HAS(tg_last_error(), "must not be NULL");
    tg_tensor *empty = tg_zeros(NULL, TG_F64, 2, (int64_t[]){0, 3});
    tg_tensor *none = tg_zeros(NULL, TG_I64, 1, (int64_t[]){0});
    ck_assert(isnan(tg_accuracy(empty, none)));
    CK_HAS(tg_last_error(), "no rows");
    ck_assert_double_eq(tg_accuracy(x, good), 0.5);
    ck_assert_ptr_null(tg_last_error());
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(short_y);
    tg_tensor_free(good);
    tg_tensor_free(empty);
    tg_tensor_free(none);
}
END_TEST

/* ---- confusion matrix --------------------------------------------------------------------- */

/* Logits whose argmax is pred[i] (a one-hot row scaled by 2 minus 1). */
static tg_tensor *one_hot_logits(int64_t n, int64_t c, const int64_t *pred) {
    double *v = malloc((size_t)(n * c) * sizeof *v);
    for (int64_t i = 0; i < n * c; i++) v[i] = (i % c == pred[i / c]) ? 1.0 : -1.0;
    tg_tensor *t = logits_f64(n, c, v);
    free(v);
    return t;
}

START_TEST(test_confusion_values) {
    /* 5 classes; class 3 is predicted once but never true, class 4 never occurs.
     *            pred: 0 1 2 3 4
     *   true 0:        2 2 0 0 0
     *   true 1:        0 1 1 1 0
     *   true 2:        1 0 3 0 0
     * precision  2/3, 1/3, 3/4, 0, (0); recall 2/4, 1/3, 3/4, 0, (0);
     * F1 = 2tp / (2tp + fp + fn): 4/7, 2/6, 6/8, 0, (0). The macro means are over the four
     * classes that occur (sklearn's average='macro' without a label list). */
    const int64_t truth[11] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2};
    const int64_t pred[11] = {0, 1, 1, 0, 1, 2, 3, 2, 2, 0, 2};
    tg_confusion *cm = tg_confusion_new(5);
    ck_assert_ptr_nonnull(cm);
    /* Two batches accumulate. */
    tg_tensor *x1 = one_hot_logits(6, 5, pred), *y1 = labels_i64(6, truth);
    tg_tensor *x2 = one_hot_logits(5, 5, pred + 6), *y2 = labels_i64(5, truth + 6);
    ck_assert_int_eq(tg_confusion_add(cm, x1, y1), 0);
    ck_assert_int_eq(tg_confusion_add(cm, x2, y2), 0);
    const int64_t want[25] = {2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0,
                              0, 0, 0, 0, 0};
    for (int i = 0; i < 25; i++) ck_assert_int_eq(cm->counts[i], want[i]);
    const double precision[5] = {2.0 / 3, 1.0 / 3, 3.0 / 4, 0, 0};
    const double recall[5] = {2.0 / 4, 1.0 / 3, 3.0 / 4, 0, 0};
    const double f1[5] = {4.0 / 7, 2.0 / 6, 6.0 / 8, 0, 0};
    for (int c = 0; c < 5; c++) {
        ck_assert_double_eq_tol(tg_confusion_precision(cm, c), precision[c], 1e-15);
        ck_assert_double_eq_tol(tg_confusion_recall(cm, c), recall[c], 1e-15);
        ck_assert_double_eq_tol(tg_confusion_f1(cm, c), f1[c], 1e-15);
        /* F1 is the harmonic mean wherever both are positive. */
        double p = precision[c], r = recall[c];
        if (p > 0 && r > 0) ck_assert_double_eq_tol(f1[c], 2 * p * r / (p + r), 1e-15);
    }
    ck_assert_double_eq_tol(tg_confusion_macro_precision(cm), (2.0 / 3 + 1.0 / 3 + 0.75) / 4,
                            1e-15);
    ck_assert_double_eq_tol(tg_confusion_macro_recall(cm), (0.5 + 1.0 / 3 + 0.75) / 4, 1e-15);
    ck_assert_double_eq_tol(tg_confusion_macro_f1(cm), (4.0 / 7 + 1.0 / 3 + 0.75) / 4, 1e-15);
    ck_assert_double_eq_tol(tg_confusion_accuracy(cm), 6.0 / 11, 1e-15);
    /* The matrix's accuracy is tg_accuracy over the same rows. */
    ck_assert_double_eq_tol(tg_accuracy(x1, y1) * 6 + tg_accuracy(x2, y2) * 5, 6.0, 1e-12);
    tg_tensor_free(x1);
    tg_tensor_free(y1);
    tg_tensor_free(x2);
    tg_tensor_free(y2);
    tg_confusion_free(cm);
}
END_TEST

START_TEST(test_confusion_errors) {
    ck_assert_ptr_null(tg_confusion_new(0));
    CK_HAS(tg_last_error(), "num_classes = 0");
    tg_confusion *cm = tg_confusion_new(3);
    ck_assert(isnan(tg_confusion_accuracy(cm)));
    CK_HAS(tg_last_error(), "empty");
    ck_assert(isnan(tg_confusion_macro_f1(cm)));
    /* A failed add changes nothing, even when the bad label comes late in the batch. */
    tg_tensor *x = one_hot_logits(3, 3, (int64_t[]){0, 1, 2});
    tg_tensor *bad = labels_i64(3, (int64_t[]){0, 1, 7});
    ck_assert_int_eq(tg_confusion_add(cm, x, bad), -1);
    CK_HAS(tg_last_error(), "label 7 of row 2");
    for (int i = 0; i < 9; i++) ck_assert_int_eq(cm->counts[i], 0);
    tg_tensor *wide = one_hot_logits(3, 4, (int64_t[]){0, 1, 2});
    tg_tensor *good = labels_i64(3, (int64_t[]){0, 1, 2});
    ck_assert_int_eq(tg_confusion_add(cm, wide, good), -1);
    CK_HAS(tg_last_error(), "4 classes, the matrix 3");
    ck_assert_int_eq(tg_confusion_add(cm, x, good), 0);
    ck_assert_double_eq(tg_confusion_accuracy(cm), 1.0);
    ck_assert(isnan(tg_confusion_precision(cm, 3)));
    CK_HAS(tg_last_error(), "class 3 is outside [0, 3)");
    ck_assert(isnan(tg_confusion_recall(cm, -1)));
    ck_assert(isnan(tg_confusion_f1(NULL, 0)));
    ck_assert_int_eq(tg_confusion_add(NULL, x, good), -1);
    tg_tensor_free(x);
    tg_tensor_free(bad);
    tg_tensor_free(wide);
    tg_tensor_free(good);
    tg_confusion_free(cm);
}
END_TEST

/* ---- progress ----------------------------------------------------------------------------- */

/* Checks one plain progress line: "<label> d/t (p%)  loss L  acc A%  R items/s  ETA m:ss". */
static void check_line(const char *line, const char *label, long done, long total) {
    char want[64];
    snprintf(want, sizeof want, "%s %ld/%ld (%ld%%)  loss ", label, done, total,
             100 * done / total);
    ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "line \"%s\" does not start with "
                  "\"%s\"", line, want);
    double loss, acc, rate;
    int m, s;
    ck_assert_msg(sscanf(line + strlen(want), "%lf  acc %lf%%  %lf items/s  ETA %d:%d", &loss,
                         &acc, &rate, &m, &s) == 5, "line \"%s\"", line);
    ck_assert_double_eq_tol(loss, 1.0 / (double)done, 1e-4);
    ck_assert_double_eq_tol(acc, 50.0 + (double)done, 1e-2);
    ck_assert(rate > 0 && m >= 0 && s >= 0 && s < 60);
}

START_TEST(test_progress_lines) {
    FILE *fp = tmpfile();
    ck_assert_ptr_nonnull(fp);
    tg_progress *p = tg_progress_new(fp, "epoch 3", 20);
    ck_assert_ptr_nonnull(p);
    for (int i = 1; i <= 20; i++) tg_progress_update(p, i, 1.0 / i, (50.0 + i) / 100.0, 32);
    tg_progress_finish(p, "test acc 91.00%");
    char *text = slurp(fp);
    fclose(fp);
    /* A line at every 10% before the end (steps 2, 4, ..., 18), then the final line. */
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lines++;
        ck_assert_msg(!strchr(line, '\r') && !strchr(line, '\033'), "terminal codes in a file");
        if (lines <= 9) {
            check_line(line, "epoch 3", 2 * lines, 20);
        } else {
            const char *start = "epoch 3 20/20 (100%)  loss 0.0500  acc 70.00%  ";
            ck_assert_msg(strncmp(line, start, strlen(start)) == 0, "final line \"%s\"", line);
            ck_assert_msg(strstr(line, " items/s  time 0:0"), "final line \"%s\"", line);
            size_t n = strlen(line), k = strlen("  test acc 91.00%");
            ck_assert(n > k && strcmp(line + n - k, "  test acc 91.00%") == 0);
        }
    }
    ck_assert_int_eq(lines, 10);
    free(text);
}
END_TEST

START_TEST(test_progress_short_epoch) {
    /* Fewer steps than tenths: every step but the last prints; NaN metrics are left out. */
    FILE *fp = tmpfile();
    tg_progress *p = tg_progress_new(fp, "eval", 3);
    for (int i = 1; i <= 3; i++) tg_progress_update(p, i, 0.5, NAN, 0);
    tg_progress_finish(p, NULL);
    char *text = slurp(fp);
    fclose(fp);
    const char *lines[3] = {"eval 1/3 (33%)  loss 0.5000  ETA ",
                            "eval 2/3 (66%)  loss 0.5000  ETA ",
                            "eval 3/3 (100%)  loss 0.5000  time "};
    char *at = text;
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(strncmp(at, lines[i], strlen(lines[i])) == 0, "line %d of \"%s\"", i, text);
        at = strchr(at, '\n');
        ck_assert_ptr_nonnull(at);
        at++;
    }
    ck_assert_str_eq(at, "");
    free(text);
    ck_assert_ptr_null(tg_progress_new(stdout, "x", 0));
    CK_HAS(tg_last_error(), "total >= 1");
    tg_progress_update(NULL, 1, 0, 0, 0); /* NULL is ignored */
    tg_progress_finish(NULL, NULL);
}
END_TEST

START_TEST(test_progress_terminal) {
    /* On a terminal (a pseudo-terminal here) the bar is redrawn in place with \r and cleared
     * to the end of the line; only the final line ends with a newline. */
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) {
        fprintf(stderr, "no pseudo-terminal (%s): the terminal bar is not tested\n",
                strerror(errno));
        return;
    }
    ck_assert_int_eq(grantpt(master), 0);
    ck_assert_int_eq(unlockpt(master), 0);
    FILE *term = fopen(ptsname(master), "w");
    ck_assert_ptr_nonnull(term);
    tg_progress *p = tg_progress_new(term, "train", 4);
    tg_progress_update(p, 1, 2.0, 0.25, 10);
    tg_progress_update(p, 4, 1.0, 0.5, 10); /* the last step always redraws */
    tg_progress_finish(p, "done");
    fclose(term);
    char buf[4096];
    size_t n = 0;
    struct pollfd pfd = {master, POLLIN, 0};
    while (n < sizeof buf - 1 && poll(&pfd, 1, 200) > 0) {
        ssize_t r = read(master, buf + n, sizeof buf - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(master);
    CK_HAS(buf, "\rtrain [======>                 ] 1/4  loss 2.0000  acc 25.00%  ");
    CK_HAS(buf, "\rtrain [========================] 4/4  loss 1.0000  acc 50.00%  ");
    CK_HAS(buf, "\033[K");
    CK_HAS(buf, "  done\033[K\r\n"); /* the terminal turns \n into \r\n */
    ck_assert_msg(strstr(buf, "\n") == strrchr(buf, '\n'), "one newline only: %s", buf);
}
END_TEST

/* ---- CSV and plot ------------------------------------------------------------------------- */

START_TEST(test_csv_log) {
    char path[256];
    temp_path(path, sizeof path, "log.csv");
    tg_csv_log *log = tg_csv_log_open(path);
    ck_assert_ptr_nonnull(log);
    ck_assert_int_eq(tg_csv_log_row(log, "step", 0, 1, 2.5, 0.125, 0.1, NAN), 0);
    ck_assert_int_eq(tg_csv_log_row(log, "step", 0, 2, 1.0 / 3, NAN, 1e-3, NAN), 0);
    ck_assert_int_eq(tg_csv_log_row(log, "epoch", 0, 2, 0.75, 0.5, 1e-3, 0.96875), 0);
    ck_assert_int_eq(tg_csv_log_row(log, "batch", 0, 2, 0, 0, 0, 0), -1);
    CK_HAS(tg_last_error(), "\"step\" or \"epoch\"");
    /* Rows are flushed as they are written. */
    char *partial = slurp_path(path);
    ck_assert_ptr_nonnull(strstr(partial, "epoch,0,2,"));
    free(partial);
    ck_assert_int_eq(tg_csv_log_close(log), 0);
    char *text = slurp_path(path);
    ck_assert_str_eq(text, "kind,epoch,step,loss,accuracy,lr,value\n"
                           "step,0,1,2.5,0.125,0.1,\n"
                           "step,0,2,0.3333333333,,0.001,\n"
                           "epoch,0,2,0.75,0.5,0.001,0.96875\n");
    free(text);
    unlink(path);
    ck_assert_ptr_null(tg_csv_log_open("/nonexistent-folder/log.csv"));
    CK_HAS(tg_last_error(), "\"/nonexistent-folder/log.csv\"");
}
END_TEST

/* A log of 6 epochs (each with step rows before it) at path. */
static void write_log(const char *path, bool with_value) {
    tg_csv_log *log = tg_csv_log_open(path);
    ck_assert_ptr_nonnull(log);
    for (int e = 0; e < 6; e++) {
        for (int s = 0; s < 3; s++)
            tg_csv_log_row(log, "step", e, 3 * e + s, 2.0 / (1 + e + s), 0.5, 0.01, NAN);
        tg_csv_log_row(log, "epoch", e, 3 * e + 2, 2.0 / (1 + e), 0.5 + 0.07 * e, 0.01,
                       with_value ? 0.45 + 0.07 * e : NAN);
    }
    ck_assert_int_eq(tg_csv_log_close(log), 0);
}

static bool gnuplot_installed(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

START_TEST(test_plot_png) {
    char csv[256], png[256];
    temp_path(csv, sizeof csv, "plot.csv");
    temp_path(png, sizeof png, "plot.png");
    write_log(csv, true);
    if (!gnuplot_installed()) {
        ck_assert_int_eq(tg_plot_csv(csv, png, "run", NULL), -1);
        CK_HAS(tg_last_error(), "gnuplot was not found on PATH");
        unlink(csv);
        return;
    }
    for (int with_value = 1; with_value >= 0; with_value--) {
        write_log(csv, with_value);
        unlink(png);
        ck_assert_msg(tg_plot_csv(csv, png, "it's a \"test\"_run", "held-out 'accuracy'") == 0,
                      "plot: %s", tg_last_error());
        FILE *fp = fopen(png, "rb");
        ck_assert_ptr_nonnull(fp);
        unsigned char sig[8];
        ck_assert_int_eq((int)fread(sig, 1, 8, fp), 8);
        fclose(fp);
        ck_assert_mem_eq(sig, "\x89PNG\r\n\x1a\n", 8);
    }
    unlink(png);
    /* A log without epoch rows has nothing to plot. */
    tg_csv_log *log = tg_csv_log_open(csv);
    tg_csv_log_row(log, "step", 0, 1, 1.0, 0.5, 0.1, NAN);
    tg_csv_log_close(log);
    ck_assert_int_eq(tg_plot_csv(csv, png, NULL, NULL), -1);
    CK_HAS(tg_last_error(), "no epoch rows");
    unlink(csv);
    ck_assert_int_eq(tg_plot_csv(csv, png, NULL, NULL), -1);
    CK_HAS(tg_last_error(), "No such file");
}
END_TEST

START_TEST(test_plot_without_gnuplot) {
    /* With no gnuplot on PATH the plot is refused with a clear message and the CSV stays. */
    char csv[256], png[256];
    temp_path(csv, sizeof csv, "nognuplot.csv");
    temp_path(png, sizeof png, "nognuplot.png");
    write_log(csv, true);
    char *saved = strdup(getenv("PATH") ? getenv("PATH") : "");
    setenv("PATH", "/nonexistent-bin", 1);
    int rc = tg_plot_csv(csv, png, "run", NULL);
    setenv("PATH", saved, 1);
    free(saved);
    ck_assert_int_eq(rc, -1);
    CK_HAS(tg_last_error(), "gnuplot was not found on PATH");
    CK_HAS(tg_last_error(), csv);
    ck_assert_int_eq(access(png, F_OK), -1);
    char *text = slurp_path(csv);
    ck_assert_ptr_nonnull(strstr(text, "epoch,5,17,"));
    free(text);
    unlink(csv);
}
END_TEST

static Suite *metrics_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, test_accuracy_values);
    tcase_add_test(tc, test_accuracy_ties_and_nan);
    tcase_add_test(tc, test_topk_stable_order);
    tcase_add_test(tc, test_topk_against_accuracy);
    tcase_add_test(tc, test_accuracy_errors);
    tcase_add_test(tc, test_confusion_values);
    tcase_add_test(tc, test_confusion_errors);
    suite_add_tcase(s, tc);
    TCase *rep = tcase_create("report");
    tcase_set_timeout(rep, 60);
    tcase_add_test(rep, test_progress_lines);
    tcase_add_test(rep, test_progress_short_epoch);
    tcase_add_test(rep, test_progress_terminal);
    tcase_add_test(rep, test_csv_log);
    tcase_add_test(rep, test_plot_png);
    tcase_add_test(rep, test_plot_without_gnuplot);
    suite_add_tcase(s, rep);
    return s;
}

int main(void) {
    return run_suite(metrics_suite(), CK_ENV);
}
