/* Error reporting: the first error of a tape, and a per-thread last error for calls without a
 * tape. Messages name the op or file, the shapes involved and what was expected. */
#include <stdarg.h>
#include <stdio.h>

#include "tensor/tensor.h"

static _Thread_local char last_error[4096]; /* room for a checkpoint's list of mismatches */
static _Thread_local bool has_last_error;

const char *tg_last_error(void) {
    return has_last_error ? last_error : NULL;
}

void tg_clear_last_error(void) {
    has_last_error = false;
}

void tg_set_last_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    has_last_error = true;
}

void tg_fail(tg_tape *tp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (!tp) {
        vsnprintf(last_error, sizeof last_error, fmt, ap);
        has_last_error = true;
    } else if (!tp->has_error) {
        vsnprintf(tp->error, sizeof tp->error, fmt, ap);
        tp->has_error = true;
    }
    va_end(ap);
}

char *tg_shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}
