/* Command-line options for the example programs: each program declares its options as a table
 * of {name, kind, where to store the value, value name, help} and options_parse reads argv into
 * it and writes the usage text from it. All options are "--name VALUE" pairs except flags;
 * --help is always there. Not part of the library. */
#ifndef EXAMPLES_OPTIONS_H
#define EXAMPLES_OPTIONS_H

#include <stddef.h>

/* What an option's value is, and so what its value pointer points at. */
typedef enum option_kind {
    OPT_INT,      /* int *: a decimal integer that fits an int */
    OPT_INT64,    /* int64_t *: a decimal integer */
    OPT_U64,      /* uint64_t *: a non-negative decimal integer (seeds) */
    OPT_DOUBLE,   /* double *: a number as strtod reads it */
    OPT_STRING,   /* const char **: the argument itself (points into argv) */
    OPT_FLAG      /* bool *: set to true; the option takes no value */
} option_kind;

/* One option. name includes the dashes ("--steps"); arg names the value in the usage text ("N",
 * "X", "DIR"; NULL for a flag); help may run over several lines separated by '\n', which the
 * usage text indents under the first. */
typedef struct option_def {
    const char *name;
    option_kind kind;
    void *value;
    const char *arg;
    const char *help;
} option_def;

/* options_parse's result when the program should go on and run. */
enum { OPTIONS_RUN = -1 };

/* Reads argv[1..argc-1] into the n options of table, whose values hold the defaults on entry.
 * Returns OPTIONS_RUN when every argument was read; 0 after --help, having printed the usage
 * text ("usage: PROGRAM [options]" and one entry per option, then --help) to stdout; 2 after an
 * unknown option (message and usage text on stderr), an option without its value, or a value
 * that is not a number of the option's kind (message on stderr). On 0 or 2 the program should
 * exit with that status; some values may have been written already. */
int options_parse(int argc, char **argv, const char *program, const option_def *table, size_t n);

#endif
