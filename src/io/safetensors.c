/* Safetensors files (format in src/io/safetensors.h): an atomic writer, and a reader that
 * trusts nothing in the file. The header is parsed by a strict recursive-descent parser for
 * exactly the JSON subset safetensors uses (an object of tensor entries and one optional
 * "__metadata__" object of strings), then every offset is checked against the data section
 * before any tensor is handed out. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "tensor/tensor.h"

/* The safetensors library refuses headers above 100 MB; so does this reader. */
#define MAX_HEADER_BYTES 100000000ull

typedef struct entry {
    tg_st_tensor t;
    uint64_t begin, end; /* data_offsets, relative to the data section */
} entry;

struct tg_st_file {
    entry *entries;
    int n, cap;
    const tg_st_tensor **by_name; /* the entries' tensors sorted by name */
    char **meta;         /* key, value, key, value, ... */
    int n_meta, cap_meta; /* pairs */
    unsigned char *buf;  /* the whole file */
};

/* Sets tg_last_error to "what: "path": <message>". */
static void file_error(const char *what, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void file_error(const char *what, const char *path, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tg_set_last_error("%s: \"%s\": %s", what, path, msg);
}

/* ---- byte order ------------------------------------------------------------------------- */

/* The host stores the low byte of a number first. */
static bool host_little_endian(void) {
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Copies n elements of `size` bytes, reversing each element's bytes on a big-endian host:
 * little-endian file order to host order and back. */
static void copy_le(void *dst, const void *src, size_t n, size_t size) {
    if (n == 0) return;
    if (host_little_endian()) {
        memcpy(dst, src, n * size);
        return;
    }
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < size; b++) d[i * size + b] = s[i * size + size - 1 - b];
}

void tg_st_copy_data(const tg_st_tensor *t, void *dst) {
    copy_le(dst, t->data, (size_t)t->numel, tg_dtype_size(t->dtype));
}

/* ---- dtypes and shapes -------------------------------------------------------------------- */

/* The safetensors name of a dtype: "F32", "F64" or "I64". */
static const char *st_dtype_name(tg_dtype dt) {
    switch (dt) {
    case TG_F32: return "F32";
    case TG_F64: return "F64";
    case TG_I64: return "I64";
    }
    return NULL;
}

/* The element count of shape, or -1 when it does not fit int64 together with `size`-byte
 * elements (so numel * size is representable too). */
static int64_t checked_numel(int ndim, const int64_t *shape, size_t size) {
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) return 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || numel > INT64_MAX / (int64_t)size / shape[i]) return -1;
        numel *= shape[i];
    }
    return numel;
}

/* ---- the header parser -------------------------------------------------------------------- */

typedef struct parser {
    const char *what, *path;
    const unsigned char *s; /* the header, len bytes, not NUL-terminated */
    size_t len, pos;
} parser;

/* Records "header byte <pos>: <message>" and returns false. */
static bool syntax_error(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool syntax_error(parser *p, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    file_error(p->what, p->path, "bad header JSON at header byte %zu: %s", p->pos, msg);
    return false;
}

/* The next byte, or -1 at the end of the header. */
static int peek(const parser *p) { return p->pos < p->len ? p->s[p->pos] : -1; }

/* Skips JSON whitespace (space, tab, newline, carriage return). */
static void skip_ws(parser *p) {
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

/* Skips whitespace and consumes c; `context` says what c does there, for the message. */
static bool expect(parser *p, char c, const char *context) {
    skip_ws(p);
    if (peek(p) != c) {
        if (peek(p) < 0)
            return syntax_error(p, "the header ends where '%c' %s should be", c, context);
        return syntax_error(p, "expected '%c' %s", c, context);
    }
    p->pos++;
    return true;
}

/* The value of a hex digit, or -1. */
static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at the current position as a code unit, or -1. */
static long read_hex4(parser *p) {
    if (p->len - p->pos < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p->s[p->pos + i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    p->pos += 4;
    return v;
}

/* Writes code point cp (<= 0x10FFFF) as UTF-8 into out; returns the byte count (1..4). */
static size_t put_utf8(char *out, unsigned long cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A JSON string (after whitespace) decoded into a new NUL-terminated buffer in *out. Control
 * characters, bad escapes, lone surrogates and \u0000 (which C strings cannot hold) are
 * errors. */
static bool parse_string(parser *p, char **out, const char *context) {
    skip_ws(p);
    if (peek(p) != '"') return syntax_error(p, "expected a string (%s)", context);
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return syntax_error(p, "a string (%s) is not closed", context);
    /* Decoding never lengthens: an escape of k bytes yields at most k bytes of UTF-8. */
    char *buf = malloc(end - start + 1);
    if (!buf) return syntax_error(p, "out of memory");
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = p->s[p->pos];
        if (c < 0x20) {
            free(buf);
            return syntax_error(p, "control character 0x%02x inside a string", c);
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        int e = p->s[p->pos++];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            buf[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        long cp = e == 'u' ? read_hex4(p) : -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate must be followed by a low one */
            long lo = -1;
            if (p->pos + 1 < end && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
                p->pos += 2;
                lo = read_hex4(p);
            }
            cp = lo >= 0xDC00 && lo <= 0xDFFF ? 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                                              : -1;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cp = -1;
        }
        if (cp <= 0 || p->pos > end) {
            free(buf);
            return syntax_error(p, cp == 0 ? "\\u0000 inside a string"
                                           : "bad escape sequence inside a string");
        }
        n += put_utf8(buf + n, (unsigned long)cp);
    }
    p->pos = end + 1;
    buf[n] = '\0';
    *out = buf;
    return true;
}

/* A non-negative JSON integer (no sign, fraction, exponent or leading zeros) up to INT64_MAX. */
static bool parse_uint(parser *p, int64_t *out, const char *context) {
    skip_ws(p);
    int c = peek(p);
    if (c < '0' || c > '9') return syntax_error(p, "expected a non-negative integer (%s)", context);
    if (c == '0' && p->pos + 1 < p->len && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
        return syntax_error(p, "a number with a leading zero (%s)", context);
    int64_t v = 0;
    while ((c = peek(p)) >= '0' && c <= '9') {
        if (v > (INT64_MAX - (c - '0')) / 10)
            return syntax_error(p, "a number too large for int64 (%s)", context);
        v = v * 10 + (c - '0');
        p->pos++;
    }
    if (c == '.' || c == 'e' || c == 'E')
        return syntax_error(p, "expected an integer, found a fraction or exponent (%s)", context);
    *out = v;
    return true;
}

/* '[' integers ']' with between min_n and max_n elements into out; *n gets the count. */
static bool parse_uint_array(parser *p, int64_t *out, int *n, int min_n, int max_n,
                             const char *context) {
    if (!expect(p, '[', context)) return false;
    *n = 0;
    skip_ws(p);
    if (peek(p) == ']') {
        p->pos++;
    } else {
        for (;;) {
            if (*n == max_n)
                return syntax_error(p, "%s has more than %d elements", context, max_n);
            if (!parse_uint(p, &out[(*n)++], context)) return false;
            skip_ws(p);
            if (peek(p) == ']') {
                p->pos++;
                break;
            }
            if (!expect(p, ',', "between array elements")) return false;
        }
    }
    if (*n < min_n) return syntax_error(p, "%s has %d elements, expected %d", context, *n, min_n);
    return true;
}

/* After an object member: consumes ',' (returns 1) or '}' (returns 0); -1 on anything else. */
static int member_separator(parser *p) {
    skip_ws(p);
    int c = peek(p);
    if (c == ',' || c == '}') {
        p->pos++;
        return c == ',';
    }
    syntax_error(p, c < 0 ? "the header ends inside an object" : "expected ',' or '}' after a "
                                                                 "member");
    return -1;
}

/* One tensor's entry: {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, each field
 * exactly once in any order, nothing else. */
static bool parse_tensor_info(parser *p, entry *e) {
    if (!expect(p, '{', "opening a tensor's entry")) return false;
    bool have_dtype = false, have_shape = false, have_offsets = false;
    skip_ws(p);
    if (peek(p) == '}') return syntax_error(p, "the entry of \"%s\" is empty", e->t.name);
    int more;
    do {
        char *key;
        if (!parse_string(p, &key, "a field name")) return false;
        bool ok = expect(p, ':', "after a field name");
        bool dup = false;
        if (ok && strcmp(key, "dtype") == 0) {
            dup = have_dtype;
            have_dtype = true;
            char *dt = NULL;
            ok = !dup && parse_string(p, &dt, "the dtype");
            if (ok && (strcmp(dt, "F32") == 0 || strcmp(dt, "F64") == 0 ||
                       strcmp(dt, "I64") == 0)) {
                e->t.dtype = dt[0] == 'I' ? TG_I64 : dt[1] == '3' ? TG_F32 : TG_F64;
            } else if (ok) {
                file_error(p->what, p->path, "\"%s\" has dtype \"%s\"; only F32, F64 and I64 "
                           "are supported", e->t.name, dt);
                ok = false;
            }
            free(dt);
        } else if (ok && strcmp(key, "shape") == 0) {
            dup = have_shape;
            have_shape = true;
            ok = !dup && parse_uint_array(p, e->t.shape, &e->t.ndim, 0, TG_MAX_DIMS, "the shape");
        } else if (ok && strcmp(key, "data_offsets") == 0) {
            dup = have_offsets;
            have_offsets = true;
            int64_t off[2];
            int n;
            ok = !dup && parse_uint_array(p, off, &n, 2, 2, "data_offsets");
            e->begin = ok ? (uint64_t)off[0] : 0;
            e->end = ok ? (uint64_t)off[1] : 0;
        } else if (ok) {
            syntax_error(p, "unknown field \"%s\" in the entry of \"%s\"", key, e->t.name);
            ok = false;
        }
        if (dup) syntax_error(p, "field \"%s\" twice in the entry of \"%s\"", key, e->t.name);
        free(key);
        if (!ok) return false;
    } while ((more = member_separator(p)) == 1);
    if (more < 0) return false;
    if (!have_dtype || !have_shape || !have_offsets)
        return syntax_error(p, "the entry of \"%s\" lacks \"%s\"", e->t.name,
                            !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return true;
}

/* Makes room in *items (of item_size bytes each) for index n; false when out of memory. */
static bool grow(void **items, int *cap, int n, size_t item_size) {
    if (n < *cap) return true;
    if (*cap > INT32_MAX / 2) return false;
    int c = *cap ? 2 * *cap : 16;
    void *q = realloc(*items, (size_t)c * item_size);
    if (!q) return false;
    *items = q;
    *cap = c;
    return true;
}

/* "__metadata__": an object of string values. */
static bool parse_metadata(parser *p, tg_st_file *f) {
    if (!expect(p, '{', "opening __metadata__")) return false;
    skip_ws(p);
    if (peek(p) == '}') {
        p->pos++;
        return true;
    }
    int more;
    do {
        if (!grow((void **)&f->meta, &f->cap_meta, 2 * f->n_meta + 1, sizeof(char *)))
            return syntax_error(p, "out of memory");
        char *key, *value;
        if (!parse_string(p, &key, "a metadata key")) return false;
        if (!expect(p, ':', "after a metadata key") ||
            !parse_string(p, &value, "a metadata value (metadata values are strings)")) {
            free(key);
            return false;
        }
        bool dup = tg_st_metadata(f, key) != NULL;
        f->meta[2 * f->n_meta] = key;
        f->meta[2 * f->n_meta + 1] = value;
        f->n_meta++;
        if (dup) return syntax_error(p, "metadata key \"%s\" twice", key);
    } while ((more = member_separator(p)) == 1);
    return more == 0;
}

/* The whole header: one object of tensor entries and at most one "__metadata__", followed
 * by nothing but whitespace. Entries go into f as they are parsed (f frees them on failure). */
static bool parse_header(parser *p, tg_st_file *f) {
    if (!expect(p, '{', "opening the header")) return false;
    skip_ws(p);
    bool have_meta = false;
    if (peek(p) == '}') {
        p->pos++;
    } else {
        int more;
        do {
            char *name;
            if (!parse_string(p, &name, "a tensor name")) return false;
            if (!expect(p, ':', "after a tensor name")) {
                free(name);
                return false;
            }
            if (strcmp(name, "__metadata__") == 0) {
                free(name);
                if (have_meta) return syntax_error(p, "__metadata__ twice");
                have_meta = true;
                if (!parse_metadata(p, f)) return false;
                continue;
            }
            if (!grow((void **)&f->entries, &f->cap, f->n, sizeof(entry))) {
                free(name);
                return syntax_error(p, "out of memory");
            }
            entry *e = &f->entries[f->n++];
            memset(e, 0, sizeof *e);
            e->t.name = name;
            if (!*name) return syntax_error(p, "a tensor with an empty name");
            if (!parse_tensor_info(p, e)) return false;
        } while ((more = member_separator(p)) == 1);
        if (more < 0) return false;
    }
    skip_ws(p);
    if (p->pos != p->len)
        return syntax_error(p, "unexpected bytes after the header's closing '}'");
    return true;
}

/* ---- validation of the parsed header ------------------------------------------------------ */

/* qsort order of entry pointers by (begin, end). */
static int by_offsets(const void *a, const void *b) {
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* qsort / bsearch order of tensor pointers by name. */
static int by_name(const void *a, const void *b) {
    return strcmp((*(const tg_st_tensor *const *)a)->name, (*(const tg_st_tensor *const *)b)->name);
}

/* The first name that appears twice in the sorted array, or NULL. */
static const char *duplicate_name(const tg_st_tensor *const *sorted, int n) {
    for (int i = 1; i < n; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) return sorted[i]->name;
    return NULL;
}

/* Shapes, sizes and offsets of every entry against the data section of data_size bytes. */
static bool validate(const char *what, const char *path, tg_st_file *f, uint64_t data_size) {
    char shape[96];
    for (int i = 0; i < f->n; i++) {
        entry *e = &f->entries[i];
        size_t size = tg_dtype_size(e->t.dtype);
        tg_shape_str(shape, sizeof shape, e->t.ndim, e->t.shape);
        e->t.numel = checked_numel(e->t.ndim, e->t.shape, size);
        if (e->t.numel < 0) {
            file_error(what, path, "\"%s\" has shape %s: too many elements", e->t.name, shape);
            return false;
        }
        uint64_t bytes = (uint64_t)e->t.numel * size;
        if (e->end < e->begin || e->end - e->begin != bytes) {
            file_error(what, path, "\"%s\" (%s %s) needs %llu bytes but its data_offsets "
                       "[%llu, %llu] %s", e->t.name, st_dtype_name(e->t.dtype), shape,
                       (unsigned long long)bytes, (unsigned long long)e->begin,
                       (unsigned long long)e->end,
                       e->end < e->begin ? "run backwards" : "span a different size");
            return false;
        }
        if (e->end > data_size) {
            file_error(what, path, "the data_offsets [%llu, %llu] of \"%s\" reach past the end "
                       "of the data section (%llu bytes)", (unsigned long long)e->begin,
                       (unsigned long long)e->end, e->t.name, (unsigned long long)data_size);
            return false;
        }
    }
    const entry **order = malloc((size_t)(f->n ? f->n : 1) * sizeof *order);
    f->by_name = malloc((size_t)(f->n ? f->n : 1) * sizeof *f->by_name);
    if (!order || !f->by_name) {
        free(order);
        file_error(what, path, "out of memory");
        return false;
    }
    for (int i = 0; i < f->n; i++) order[i] = &f->entries[i];
    qsort(order, (size_t)f->n, sizeof *order, by_offsets);
    uint64_t covered = 0;
    bool ok = true;
    for (int i = 0; ok && i < f->n; i++) {
        const entry *e = order[i];
        if (e->begin > covered)
            file_error(what, path, "bytes [%llu, %llu) of the data section belong to no tensor",
                       (unsigned long long)covered, (unsigned long long)e->begin);
        else if (e->begin < covered)
            file_error(what, path, "\"%s\" at data_offsets [%llu, %llu] overlaps \"%s\"",
                       e->t.name, (unsigned long long)e->begin, (unsigned long long)e->end,
                       order[i - 1]->t.name);
        ok = e->begin == covered;
        covered = e->end;
    }
    free(order);
    if (ok && covered != data_size) {
        file_error(what, path, "the data section has %llu bytes but the tensors cover %llu",
                   (unsigned long long)data_size, (unsigned long long)covered);
        ok = false;
    }
    if (!ok) return false;
    for (int i = 0; i < f->n; i++) f->by_name[i] = &f->entries[i].t;
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, by_name);
    const char *dup = duplicate_name(f->by_name, f->n);
    if (dup) file_error(what, path, "two tensors are named \"%s\"", dup);
    return !dup;
}

/* ---- reading ------------------------------------------------------------------------------ */

void tg_st_free(tg_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free((char *)f->entries[i].t.name);
    for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->entries);
    free(f->by_name);
    free(f->meta);
    free(f->buf);
    free(f);
}

/* The whole regular file at path into f->buf; its size into *size. */
static bool read_file(const char *what, const char *path, tg_st_file *f, uint64_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        file_error(what, path, "cannot open: %s", strerror(errno));
        return false;
    }
    struct stat st;
    bool ok = fstat(fileno(fp), &st) == 0;
    if (!ok) {
        file_error(what, path, "cannot stat: %s", strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        file_error(what, path, "not a regular file");
        ok = false;
    } else if (st.st_size < 8) {
        file_error(what, path, "the file has %lld bytes, fewer than the 8 of the header length",
                   (long long)st.st_size);
        ok = false;
    }
    if (ok) {
        *size = (uint64_t)st.st_size;
        f->buf = malloc((size_t)*size);
        if (!f->buf) {
            file_error(what, path, "out of memory for %llu bytes", (unsigned long long)*size);
            ok = false;
        } else if (fread(f->buf, 1, (size_t)*size, fp) != (size_t)*size) {
            file_error(what, path, "read failed: %s",
                       ferror(fp) ? strerror(errno) : "the file got shorter while reading");
            ok = false;
        }
    }
    fclose(fp);
    return ok;
}

tg_st_file *tg_st_read(const char *what, const char *path) {
    if (!path) {
        tg_set_last_error("%s: path is NULL", what);
        return NULL;
    }
    tg_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        file_error(what, path, "out of memory");
        return NULL;
    }
    uint64_t size = 0;
    if (!read_file(what, path, f, &size)) {
        tg_st_free(f);
        return NULL;
    }
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | f->buf[i];
    bool ok = false;
    if (header > size - 8)
        file_error(what, path, "the header length %llu exceeds the %llu bytes after it",
                   (unsigned long long)header, (unsigned long long)(size - 8));
    else if (header > MAX_HEADER_BYTES)
        file_error(what, path, "the header length %llu exceeds the limit of %llu bytes",
                   (unsigned long long)header, MAX_HEADER_BYTES);
    else if (header < 2)
        file_error(what, path, "the header length is %llu; the smallest header, {}, has 2",
                   (unsigned long long)header);
    else
        ok = true;
    if (ok) {
        parser p = {what, path, f->buf + 8, (size_t)header, 0};
        ok = parse_header(&p, f) && validate(what, path, f, size - 8 - header);
    }
    if (!ok) {
        tg_st_free(f);
        return NULL;
    }
    for (int i = 0; i < f->n; i++) f->entries[i].t.data = f->buf + 8 + header + f->entries[i].begin;
    tg_clear_last_error();
    return f;
}

int tg_st_count(const tg_st_file *f) { return f ? f->n : 0; }

const tg_st_tensor *tg_st_at(const tg_st_file *f, int i) {
    return f && i >= 0 && i < f->n ? &f->entries[i].t : NULL;
}

const tg_st_tensor *tg_st_find(const tg_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    const tg_st_tensor key = {.name = name}, *kp = &key;
    const tg_st_tensor **hit = bsearch(&kp, f->by_name, (size_t)f->n, sizeof kp, by_name);
    return hit ? *hit : NULL;
}

const char *tg_st_metadata(const tg_st_file *f, const char *key) {
    for (int i = 0; f && i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct text {
    char *s;
    size_t len, cap;
    bool oom;
} text;

/* Appends n bytes of s to t (kept NUL-terminated); sets t->oom instead on failure. */
static void put(text *t, const char *s, size_t n) {
    if (t->oom) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1) cap *= 2;
        char *q = realloc(t->s, cap);
        if (!q) {
            t->oom = true;
            return;
        }
        t->s = q;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void putf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a short printf-formatted piece (a number or a fixed key: under 128 bytes) to t. */
static void putf(text *t, const char *fmt, ...) {
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert(n >= 0 && (size_t)n < sizeof buf);
    put(t, buf, (size_t)n);
}

/* s as a JSON string: quotes, backslashes and control characters escaped. */
static void put_json_string(text *t, const char *s) {
    put(t, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(t, esc, 2);
        } else if (c < 0x20) {
            putf(t, "\\u%04x", c);
        } else {
            put(t, (const char *)&c, 1);
        }
    }
    put(t, "\"", 1);
}

/* Writes all n bytes, retrying short writes and EINTR; false with errno set otherwise. */
static bool write_all(int fd, const void *data, size_t n) {
    const unsigned char *b = data;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return false;
        }
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* numel elements of `size` bytes in little-endian order. */
static bool write_le(int fd, const void *data, int64_t numel, size_t size) {
    if (numel == 0) return true;
    if (host_little_endian()) return write_all(fd, data, (size_t)numel * size);
    unsigned char chunk[1 << 16];
    size_t per = sizeof chunk / size;
    for (size_t i = 0; i < (size_t)numel; i += per) {
        size_t k = (size_t)numel - i < per ? (size_t)numel - i : per;
        copy_le(chunk, (const unsigned char *)data + i * size, k, size);
        if (!write_all(fd, chunk, k * size)) return false;
    }
    return true;
}

/* The JSON header for the tensors (their offsets laid out in order), padded with spaces to a
 * multiple of 8 bytes as the safetensors library does. Returns false when a tensor is
 * malformed (message set) or memory runs out. */
static bool build_header(const char *what, const char *path, int n, const tg_st_tensor *ts,
                         int n_meta, const char *const *meta, text *h) {
    put(h, "{", 1);
    if (n_meta > 0) {
        put(h, "\"__metadata__\":{", 16);
        for (int i = 0; i < n_meta; i++) {
            if (i) put(h, ",", 1);
            put_json_string(h, meta[2 * i]);
            put(h, ":", 1);
            put_json_string(h, meta[2 * i + 1]);
        }
        put(h, "}", 1);
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const tg_st_tensor *t = &ts[i];
        const char *dt = t->name && *t->name && t->ndim >= 0 && t->ndim <= TG_MAX_DIMS
                             ? st_dtype_name(t->dtype) : NULL;
        if (!dt || strcmp(t->name, "__metadata__") == 0 ||
            checked_numel(t->ndim, t->shape, tg_dtype_size(t->dtype)) != t->numel ||
            (t->numel > 0 && !t->data)) {
            file_error(what, path, "tensor %d (\"%s\") has no valid name, dtype, shape or data",
                       i, t->name ? t->name : "(null)");
            return false;
        }
        uint64_t bytes = (uint64_t)t->numel * tg_dtype_size(t->dtype);
        put(h, n_meta > 0 || i > 0 ? "," : "", n_meta > 0 || i > 0);
        put_json_string(h, t->name);
        putf(h, ":{\"dtype\":\"%s\",\"shape\":[", dt);
        for (int d = 0; d < t->ndim; d++) putf(h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        putf(h, "],\"data_offsets\":[%llu,", (unsigned long long)offset);
        offset += bytes;
        putf(h, "%llu]}", (unsigned long long)offset);
    }
    put(h, "}", 1);
    while (h->len % 8) put(h, " ", 1);
    if (h->oom) file_error(what, path, "out of memory for the header");
    return !h->oom;
}

/* Names must be unique for the file to load back. */
static bool unique_names(const char *what, const char *path, int n, const tg_st_tensor *ts) {
    const tg_st_tensor **sorted = malloc((size_t)(n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        file_error(what, path, "out of memory");
        return false;
    }
    for (int i = 0; i < n; i++) sorted[i] = &ts[i];
    qsort(sorted, (size_t)n, sizeof *sorted, by_name);
    const char *dup = duplicate_name(sorted, n);
    if (dup) file_error(what, path, "two tensors are named \"%s\"", dup);
    free(sorted);
    return !dup;
}

/* fsyncs the folder holding path, so the rename itself is durable. Folders that cannot be
 * synced (EINVAL: the file system does not support it) are accepted. */
static bool sync_folder(const char *path) {
    const char *slash = strrchr(path, '/');
    int fd;
    if (!slash || slash == path) {
        fd = open(slash ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else {
        char *dir = strndup(path, (size_t)(slash - path));
        if (!dir) return false;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(dir);
    }
    if (fd < 0) return false;
    bool ok = fsync(fd) == 0 || errno == EINVAL;
    int saved = errno;
    close(fd);
    errno = saved;
    return ok;
}

int tg_st_write(const char *what, const char *path, int n, const tg_st_tensor *tensors,
                int n_meta, const char *const *meta) {
    if (!path || n < 0 || (n > 0 && !tensors) || n_meta < 0 || (n_meta > 0 && !meta)) {
        tg_set_last_error("%s: needs a path and valid tensors", what);
        return -1;
    }
    text h = {0};
    if (!build_header(what, path, n, tensors, n_meta, meta, &h) ||
        !unique_names(what, path, n, tensors)) {
        free(h.s);
        return -1;
    }
    static atomic_uint counter;
    size_t tmp_size = strlen(path) + 64;
    char *tmp = malloc(tmp_size);
    int fd = -1;
    for (int attempt = 0; tmp && fd < 0 && attempt < 100; attempt++) {
        snprintf(tmp, tmp_size, "%s.tmp.%ld.%u", path, (long)getpid(),
                 atomic_fetch_add(&counter, 1));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        file_error(what, path, "cannot create a temporary file beside it: %s",
                   tmp ? strerror(errno) : "out of memory");
        free(tmp);
        free(h.s);
        return -1;
    }
    unsigned char len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    const char *step = "writing";
    bool ok = write_all(fd, len_le, 8) && write_all(fd, h.s, h.len);
    for (int i = 0; ok && i < n; i++)
        ok = write_le(fd, tensors[i].data, tensors[i].numel, tg_dtype_size(tensors[i].dtype));
    if (ok && !(ok = fsync(fd) == 0)) step = "syncing";
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        step = "closing";
        saved = errno;
    }
    if (ok && !(ok = rename(tmp, path) == 0)) {
        step = "renaming the temporary file over";
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        file_error(what, path, "%s failed: %s (the file is unchanged)", step, strerror(saved));
    } else if (!sync_folder(path)) {
        file_error(what, path, "saved, but syncing its folder failed: %s", strerror(errno));
        ok = false;
    }
    free(tmp);
    free(h.s);
    if (ok) tg_clear_last_error();
    return ok ? 0 : -1;
}
