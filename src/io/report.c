/* Watching training: a progress display per epoch (a bar redrawn in place on a terminal, plain
 * lines about every 10% otherwise, for logs and pipes), a CSV log of step and epoch metrics,
 * and a PNG of the epoch curves drawn by gnuplot when it is installed. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tensor/tensor.h"

/* A monotonic clock in seconds (only differences mean anything). */
static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- progress ----------------------------------------------------------------------------- */

#define BAR_WIDTH 24
#define REDRAW_SECONDS 0.1 /* a terminal bar is redrawn at most this often (and at the end) */

struct tg_progress {
    FILE *out;
    char *label;
    bool tty;
    int64_t total, done, items;
    double loss, accuracy;
    double start, last_draw;
    int next_tenth; /* line mode: the next multiple of 10% that prints a line */
};

tg_progress *tg_progress_new(FILE *out, const char *label, int64_t total) {
    if (!out || total < 1) {
        tg_set_last_error("progress_new: needs an output stream and total >= 1 (got %lld)",
                          (long long)total);
        return NULL;
    }
    tg_progress *p = calloc(1, sizeof *p);
    if (p) p->label = strdup(label ? label : "");
    if (!p || !p->label) {
        free(p);
        tg_set_last_error("progress_new: out of memory");
        return NULL;
    }
    p->out = out;
    p->tty = isatty(fileno(out));
    p->total = total;
    p->loss = p->accuracy = NAN;
    p->start = now_seconds();
    p->last_draw = -INFINITY;
    p->next_tenth = 1;
    tg_clear_last_error();
    return p;
}

/* Seconds as "m:ss", or "h:mm:ss" from an hour on. */
static void format_duration(char *buf, size_t size, double seconds) {
    long s = seconds > 0 && seconds < 1e9 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

/* "loss 0.2345  acc 93.12%  1520 items/s": the metrics known so far (NaN ones left out). */
static void format_stats(const tg_progress *p, char *buf, size_t size, double elapsed) {
    size_t n = 0;
    buf[0] = '\0';
    if (!isnan(p->loss)) n += (size_t)snprintf(buf + n, size - n, "  loss %.4f", p->loss);
    if (!isnan(p->accuracy) && n < size)
        n += (size_t)snprintf(buf + n, size - n, "  acc %.2f%%", 100.0 * p->accuracy);
    if (p->items > 0 && elapsed > 0 && n < size)
        snprintf(buf + n, size - n, "  %.0f items/s", (double)p->items / elapsed);
}

/* The bar, or in line mode the counts and percentage. */
static void format_position(const tg_progress *p, char *buf, size_t size) {
    int64_t done = p->done < p->total ? p->done : p->total;
    if (p->tty) {
        char bar[BAR_WIDTH + 1];
        int fill = (int)(BAR_WIDTH * done / p->total);
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
        bar[BAR_WIDTH] = '\0';
        snprintf(buf, size, "[%s] %lld/%lld", bar, (long long)p->done, (long long)p->total);
    } else {
        snprintf(buf, size, "%lld/%lld (%d%%)", (long long)p->done, (long long)p->total,
                 (int)(100 * done / p->total));
    }
}

/* One display of the current state: a redrawn terminal line, or a plain line. */
static void draw(tg_progress *p, double now, bool final, const char *summary) {
    double elapsed = now - p->start;
    char position[96], stats[128], time_part[48];
    format_position(p, position, sizeof position);
    format_stats(p, stats, sizeof stats, elapsed);
    char clock[24];
    if (final) {
        format_duration(clock, sizeof clock, elapsed);
        snprintf(time_part, sizeof time_part, "  time %s", clock);
    } else {
        int64_t left = p->total > p->done ? p->total - p->done : 0;
        format_duration(clock, sizeof clock, p->done > 0 ? elapsed / (double)p->done * (double)left
                                                        : 0.0);
        snprintf(time_part, sizeof time_part, "  ETA %s", clock);
    }
    const char *sep = final && summary && *summary ? "  " : "";
    const char *sum = final && summary ? summary : "";
    if (p->tty)
        fprintf(p->out, "\r%s %s%s%s%s%s\033[K%s", p->label, position, stats, time_part, sep,
                sum, final ? "\n" : "");
    else
        fprintf(p->out, "%s %s%s%s%s%s\n", p->label, position, stats, time_part, sep, sum);
    fflush(p->out);
    p->last_draw = now;
}

void tg_progress_update(tg_progress *p, int64_t done, double loss, double accuracy,
                        int64_t items) {
    if (!p) return;
    p->done = done;
    p->loss = loss;
    p->accuracy = accuracy;
    if (items > 0) p->items += items;
    double now = now_seconds();
    if (p->tty) {
        if (now - p->last_draw >= REDRAW_SECONDS || done >= p->total) draw(p, now, false, NULL);
        return;
    }
    /* Line mode: a line each time another tenth of the epoch is done; the end is left to
     * tg_progress_finish. */
    int64_t tenth = done >= p->total ? 10 : done * 10 / p->total;
    if (done < p->total && tenth >= p->next_tenth) {
        draw(p, now, false, NULL);
        p->next_tenth = (int)tenth + 1;
    }
}

void tg_progress_finish(tg_progress *p, const char *summary) {
    if (!p) return;
    draw(p, now_seconds(), true, summary);
    free(p->label);
    free(p);
}

/* ---- CSV log ------------------------------------------------------------------------------ */

#define CSV_HEADER "kind,epoch,step,loss,accuracy,lr,value"

struct tg_csv_log {
    FILE *fp;
    char *path;
};

tg_csv_log *tg_csv_log_open(const char *path) {
    if (!path) {
        tg_set_last_error("csv_log_open: path is NULL");
        return NULL;
    }
    tg_csv_log *log = calloc(1, sizeof *log);
    if (log) log->path = strdup(path);
    if (!log || !log->path) {
        if (log) free(log);
        tg_set_last_error("csv_log_open: out of memory");
        return NULL;
    }
    log->fp = fopen(path, "w");
    if (!log->fp || fprintf(log->fp, CSV_HEADER "\n") < 0 || fflush(log->fp) != 0) {
        tg_set_last_error("csv_log_open: \"%s\": %s", path, strerror(errno));
        if (log->fp) fclose(log->fp);
        free(log->path);
        free(log);
        return NULL;
    }
    tg_clear_last_error();
    return log;
}

/* A double for the CSV: "%.10g", NaN as an empty field. */
static void csv_number(char *buf, size_t size, double v) {
    if (isnan(v)) buf[0] = '\0';
    else snprintf(buf, size, "%.10g", v);
}

int tg_csv_log_row(tg_csv_log *log, const char *kind, int64_t epoch, int64_t step, double loss,
                   double accuracy, double lr, double value) {
    if (!log || !kind || (strcmp(kind, "step") != 0 && strcmp(kind, "epoch") != 0)) {
        tg_set_last_error("csv_log_row: needs a log and the kind \"step\" or \"epoch\" (got %s)",
                          kind ? kind : "NULL");
        return -1;
    }
    char l[32], a[32], r[32], v[32];
    csv_number(l, sizeof l, loss);
    csv_number(a, sizeof a, accuracy);
    csv_number(r, sizeof r, lr);
    csv_number(v, sizeof v, value);
    /* Flushed per row, so the log survives a crash or an interrupted run. */
    if (fprintf(log->fp, "%s,%lld,%lld,%s,%s,%s,%s\n", kind, (long long)epoch, (long long)step, l,
                a, r, v) < 0 || fflush(log->fp) != 0) {
        tg_set_last_error("csv_log_row: \"%s\": %s", log->path, strerror(errno));
        return -1;
    }
    tg_clear_last_error();
    return 0;
}

int tg_csv_log_close(tg_csv_log *log) {
    if (!log) return 0;
    int rc = fclose(log->fp) == 0 ? 0 : -1;
    if (rc) tg_set_last_error("csv_log_close: \"%s\": %s", log->path, strerror(errno));
    else tg_clear_last_error();
    free(log->path);
    free(log);
    return rc;
}

/* ---- plot --------------------------------------------------------------------------------- */

/* An executable regular file named prog in a folder of $PATH. */
static bool on_path(const char *prog) {
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *colon = strchr(path, ':');
        int n = (int)(colon ? (size_t)(colon - path) : strlen(path));
        char file[4096];
        struct stat st;
        if (snprintf(file, sizeof file, "%.*s/%s", n ? n : 1, n ? path : ".", prog) <
                (int)sizeof file &&
            stat(file, &st) == 0 && S_ISREG(st.st_mode) && access(file, X_OK) == 0)
            return true;
        path = colon ? colon + 1 : NULL;
    }
    return false;
}

/* The epoch curves of a log: one (epoch, y) series per column. */
typedef struct series {
    double *x, *y;
    int n, cap;
} series;

/* Appends the point (x, y); false when memory runs out. */
static bool series_add(series *s, double x, double y) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        double *nx = realloc(s->x, (size_t)cap * sizeof *nx);
        if (!nx) return false;
        s->x = nx;
        double *ny = realloc(s->y, (size_t)cap * sizeof *ny);
        if (!ny) return false;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
    return true;
}

/* Field `col` (from 0) of a CSV line without quoting, into buf. */
static bool csv_field(const char *line, int col, char *buf, size_t size) {
    for (int i = 0; i < col; i++) {
        line = strchr(line, ',');
        if (!line) return false;
        line++;
    }
    size_t n = strcspn(line, ",\r\n");
    if (n >= size) return false;
    memcpy(buf, line, n);
    buf[n] = '\0';
    return true;
}

enum { LOSS, ACCURACY, VALUE, N_SERIES };

/* Reads the epoch rows of a tg_csv_log file into curves[LOSS], [ACCURACY] and [VALUE]. */
static bool read_curves(const char *path, series curves[N_SERIES]) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
        tg_set_last_error("plot_csv: \"%s\": %s", path, strerror(errno));
        return false;
    }
    char line[1024];
    bool ok = fgets(line, sizeof line, fp) && strncmp(line, CSV_HEADER, strlen(CSV_HEADER)) == 0;
    if (!ok) tg_set_last_error("plot_csv: \"%s\" does not start with the header %s", path,
                               CSV_HEADER);
    static const int columns[N_SERIES] = {3, 4, 6};
    for (long row = 2; ok && fgets(line, sizeof line, fp); row++) {
        char kind[16], field[64], *end;
        if (!csv_field(line, 0, kind, sizeof kind) || strcmp(kind, "epoch") != 0) continue;
        ok = csv_field(line, 1, field, sizeof field);
        double epoch = ok ? strtod(field, &end) : NAN;
        ok = ok && *field && *end == '\0';
        for (int c = 0; ok && c < N_SERIES; c++) {
            ok = csv_field(line, columns[c], field, sizeof field);
            if (!ok || !*field) continue;
            double y = strtod(field, &end);
            ok = *end == '\0';
            if (ok && isfinite(y) && !series_add(&curves[c], epoch, y)) {
                fclose(fp);
                tg_set_last_error("plot_csv: out of memory");
                return false;
            }
        }
        if (!ok) tg_set_last_error("plot_csv: \"%s\": line %ld is not a log row", path, row);
    }
    fclose(fp);
    if (ok && curves[LOSS].n + curves[ACCURACY].n + curves[VALUE].n == 0) {
        tg_set_last_error("plot_csv: \"%s\" has no epoch rows with values to plot", path);
        ok = false;
    }
    return ok;
}

/* s as a gnuplot single-quoted string (a quote is doubled; control characters become
 * spaces). */
static void put_quoted(FILE *gp, const char *s) {
    fputc('\'', gp);
    for (; *s; s++) {
        if (*s == '\'') fputs("''", gp);
        else fputc((unsigned char)*s < 0x20 ? ' ' : *s, gp);
    }
    fputc('\'', gp);
}

/* The series as the gnuplot datablock $name of "x y" lines. */
static void put_datablock(FILE *gp, const char *name, const series *s) {
    fprintf(gp, "$%s << EOD\n", name);
    for (int i = 0; i < s->n; i++) fprintf(gp, "%.17g %.17g\n", s->x[i], s->y[i]);
    fprintf(gp, "EOD\n");
}

/* The gnuplot script: the curves as datablocks, then loss on top and accuracy / value below
 * (one panel when only one kind exists). */
static void write_script(FILE *gp, const series curves[N_SERIES], const char *png,
                         const char *title, const char *value_label) {
    static const char *const names[N_SERIES] = {"loss", "accuracy", "value"};
    for (int c = 0; c < N_SERIES; c++)
        if (curves[c].n) put_datablock(gp, names[c], &curves[c]);
    fprintf(gp, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
                "  set terminal pngcairo size 900,700\n"
                "} else {\n"
                "  set terminal png size 900,700\n"
                "}\n"
                "set termoption noenhanced\n"
                "set output ");
    put_quoted(gp, png);
    bool top = curves[LOSS].n > 0, bottom = curves[ACCURACY].n + curves[VALUE].n > 0;
    fprintf(gp, "\nset grid\nset xlabel 'epoch'\n");
    fprintf(gp, top && bottom ? "set multiplot layout 2,1 title " : "set title ");
    put_quoted(gp, title ? title : "");
    fprintf(gp, "\n");
    if (top) fprintf(gp, "set ylabel 'loss'\nplot $loss using 1:2 with linespoints title 'loss'\n");
    if (bottom) {
        fprintf(gp, "set ylabel 'accuracy'\nset key bottom right\nplot ");
        if (curves[ACCURACY].n)
            fprintf(gp, "$accuracy using 1:2 with linespoints title 'training accuracy'%s",
                    curves[VALUE].n ? ", " : "");
        if (curves[VALUE].n) {
            fprintf(gp, "$value using 1:2 with linespoints title ");
            put_quoted(gp, value_label ? value_label : "value");
        }
        fprintf(gp, "\n");
    }
    if (top && bottom) fprintf(gp, "unset multiplot\n");
    fprintf(gp, "set output\n");
}

int tg_plot_csv(const char *csv_path, const char *png_path, const char *title,
                const char *value_label) {
    if (!csv_path || !png_path) {
        tg_set_last_error("plot_csv: needs a CSV path and a PNG path");
        return -1;
    }
    if (!on_path("gnuplot")) {
        tg_set_last_error("plot_csv: gnuplot was not found on PATH, so no plot was made; the "
                          "CSV log \"%s\" is kept (install gnuplot to draw %s)", csv_path,
                          png_path);
        return -1;
    }
    series curves[N_SERIES] = {{0}};
    int rc = -1;
    if (read_curves(csv_path, curves)) {
        FILE *gp = popen("gnuplot", "w");
        if (!gp) {
            tg_set_last_error("plot_csv: cannot start gnuplot: %s", strerror(errno));
        } else {
            write_script(gp, curves, png_path, title, value_label);
            int status = pclose(gp);
            struct stat st;
            if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                tg_set_last_error("plot_csv: gnuplot failed (%s %d) drawing \"%s\"; the CSV "
                                  "log \"%s\" is kept", WIFEXITED(status) ? "exit status"
                                  : "wait status", WIFEXITED(status) ? WEXITSTATUS(status)
                                  : status, png_path, csv_path);
            else if (stat(png_path, &st) != 0 || st.st_size == 0)
                tg_set_last_error("plot_csv: gnuplot wrote no image to \"%s\"", png_path);
            else
                rc = 0;
        }
    }
    for (int c = 0; c < N_SERIES; c++) {
        free(curves[c].x);
        free(curves[c].y);
    }
    if (rc == 0) tg_clear_last_error();
    return rc;
}
