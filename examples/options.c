/* The example programs' table-driven command-line parser and usage text (see options.h). */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const option_def help_option = {"--help", OPT_FLAG, NULL, NULL, "this text"};

/* The width of "--name ARG" for o. */
static size_t label_width(const option_def *o) {
    return strlen(o->name) + (o->arg ? 1 + strlen(o->arg) : 0);
}

/* Prints one usage entry: "  --name ARG", padded to column, then the help text with its
 * continuation lines indented to the same column. */
static void print_entry(FILE *f, const option_def *o, size_t column) {
    fprintf(f, "  %s%s%s%*s", o->name, o->arg ? " " : "", o->arg ? o->arg : "",
            (int)(column - label_width(o)), "");
    for (const char *line = o->help; *line;) {
        size_t len = strcspn(line, "\n");
        fprintf(f, "%.*s\n", (int)len, line);
        line += len;
        if (*line == '\n' && *++line) fprintf(f, "  %*s", (int)column, "");
    }
}

/* Prints the usage text of the n options of table, then --help, to f. */
static void usage(FILE *f, const char *program, const option_def *table, size_t n) {
    size_t column = label_width(&help_option);
    for (size_t k = 0; k < n; k++)
        if (label_width(&table[k]) > column) column = label_width(&table[k]);
    column += 2;
    fprintf(f, "usage: %s [options]\n", program);
    for (size_t k = 0; k < n; k++) print_entry(f, &table[k], column);
    print_entry(f, &help_option, column);
}

/* Stores text as the value of o (which takes a value). Returns false when text is not a
 * number of o's kind (empty, trailing characters, out of range, or negative for OPT_U64). */
static bool store(const option_def *o, const char *text) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case OPT_INT: {
        long v = strtol(text, &end, 10);
        if (v < INT_MIN || v > INT_MAX) return false;
        *(int *)o->value = (int)v;
        break;
    }
    case OPT_INT64:
        *(int64_t *)o->value = strtoll(text, &end, 10);
        break;
    case OPT_U64:
        if (strchr(text, '-')) return false;
        *(uint64_t *)o->value = strtoull(text, &end, 10);
        break;
    case OPT_DOUBLE:
        *(double *)o->value = strtod(text, &end);
        break;
    case OPT_STRING:
        *(const char **)o->value = text;
        return true;
    case OPT_FLAG:
        return false;
    }
    return errno != ERANGE && end != text && *end == '\0';
}

int options_parse(int argc, char **argv, const char *program, const option_def *table, size_t n) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, help_option.name) == 0) {
            usage(stdout, program, table, n);
            return 0;
        }
        const option_def *o = NULL;
        for (size_t k = 0; k < n && !o; k++)
            if (strcmp(a, table[k].name) == 0) o = &table[k];
        if (!o) {
            fprintf(stderr, "%s: unknown option %s\n", program, a);
            usage(stderr, program, table, n);
            return 2;
        }
        if (o->kind == OPT_FLAG) {
            *(bool *)o->value = true;
            continue;
        }
        if (i + 1 == argc) {
            fprintf(stderr, "%s: %s needs a value\n", program, a);
            return 2;
        }
        const char *v = argv[++i];
        if (!store(o, v)) {
            fprintf(stderr, "%s: %s needs a number, got \"%s\"\n", program, a, v);
            return 2;
        }
    }
    return OPTIONS_RUN;
}
