/* The IDX reader (MNIST's file format) and the careful file reading under every data reader.
 * Files are plain or gzip-compressed (told apart by the gzip magic bytes 1f 8b, inflated with
 * zlib), read in bounded chunks into buffers that grow with the bytes actually present, so a
 * size a header merely claims is never allocated. A gzip file must run to the end of its last
 * member (CRC and length checked), with nothing after it. An IDX file is a big-endian header --
 * two zero bytes, a type byte (0x08: unsigned bytes), the rank, then one 32-bit size per
 * dimension -- followed by exactly dims[0] * ... * dims[rank-1] bytes of row-major data. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/read.h"
#include "tensor/tensor.h"

enum {
    FIRST_BUFFER = 1 << 20, /* the first buffer for gzip data; it doubles up to the limit */
    PROBE_BYTES = 1 << 16,  /* how many trailing gzip bytes are counted before giving up */
    GZ_INPUT = 1 << 16,     /* compressed bytes read from the file at a time */
};
#define IDX_DEFAULT_MAX ((size_t)1 << 30)

/* An open file, plain or gzip, and how far it has been read. */
typedef struct stream {
    const char *path;
    FILE *fp;
    uint64_t size;       /* the file's size in bytes (from fstat) */
    uint64_t pos;        /* bytes consumed so far (decompressed ones for gzip) */
    bool gz;             /* inflating through zs */
    bool member_done;    /* zs reached the end of a gzip member (its trailer checked) */
    z_stream zs;
    unsigned char *in;   /* [GZ_INPUT] compressed input for zs */
} stream;

/* Opens path and peeks at its first two bytes to tell gzip from plain. Returns 0, or -1 with
 * the last error set (missing or unreadable file, not a regular file). */
static int stream_open(stream *s, const char *path) {
    *s = (stream){.path = path};
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        tg_set_last_error("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        tg_set_last_error("%s: cannot stat: %s", path, strerror(errno));
        fclose(fp);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        tg_set_last_error("%s: not a regular file", path);
        fclose(fp);
        return -1;
    }
    unsigned char magic[2];
    size_t got = fread(magic, 1, 2, fp);
    if (got < 2 && ferror(fp)) {
        tg_set_last_error("%s: read error: %s", path, strerror(errno));
        fclose(fp);
        return -1;
    }
    rewind(fp);
    s->fp = fp;
    s->size = (uint64_t)st.st_size;
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        s->in = malloc(GZ_INPUT);
        if (!s->in || inflateInit2(&s->zs, 16 + MAX_WBITS) != Z_OK) { /* gzip wrapper only */
            free(s->in);
            fclose(fp);
            tg_set_last_error("%s: out of memory for gzip decompression", path);
            return -1;
        }
        s->gz = true;
    }
    return 0;
}

/* Closes the file and releases the inflate state. */
static void stream_close(stream *s) {
    if (s->gz) inflateEnd(&s->zs);
    free(s->in);
    fclose(s->fp);
    *s = (stream){0};
}

/* "file" or "decompressed file", for messages about how many bytes s holds. */
static const char *stream_noun(const stream *s) {
    return s->gz ? "decompressed file" : "file";
}

/* Refills zs's input when it is empty; at the end of the file it stays empty. Returns 0, or
 * -1 with the last error set on a read error. */
static int gz_fill(stream *s) {
    if (s->zs.avail_in > 0) return 0;
    size_t r = fread(s->in, 1, GZ_INPUT, s->fp);
    if (r < GZ_INPUT && ferror(s->fp)) {
        tg_set_last_error("%s: read error: %s", s->path, strerror(errno));
        return -1;
    }
    s->zs.next_in = s->in;
    s->zs.avail_in = (uInt)r;
    return 0;
}

/* Inflates up to n bytes into buf (see stream_read). A member's end is followed by the end of
 * the file or by another member (as gzip(1) concatenates them); anything else is an error, as
 * is a file that ends inside a member, trailer included. */
static int64_t gz_read(stream *s, unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        if (gz_fill(s) != 0) return -1;
        if (s->member_done) {
            if (s->zs.avail_in == 0) break; /* the end of the file after a whole member */
            if (s->zs.next_in[0] != 0x1f) {
                tg_set_last_error("%s: junk after the end of the gzip stream (after %llu "
                                  "decompressed bytes)", s->path,
                                  (unsigned long long)(s->pos + got));
                return -1;
            }
            inflateReset(&s->zs);
            s->member_done = false;
        }
        if (s->zs.avail_in == 0) {
            tg_set_last_error("%s: truncated gzip stream: the compressed data end after %llu "
                              "decompressed bytes", s->path, (unsigned long long)(s->pos + got));
            return -1;
        }
        size_t want = n - got < UINT_MAX ? n - got : UINT_MAX;
        s->zs.next_out = buf + got;
        s->zs.avail_out = (uInt)want;
        int ret = inflate(&s->zs, Z_NO_FLUSH);
        got += want - s->zs.avail_out;
        if (ret == Z_STREAM_END) {
            s->member_done = true;
        } else if (ret != Z_OK) { /* data error, or no progress possible with input and room */
            tg_set_last_error("%s: corrupt gzip stream after %llu decompressed bytes: %s",
                              s->path, (unsigned long long)(s->pos + got),
                              s->zs.msg ? s->zs.msg : ret == Z_MEM_ERROR ? "out of memory"
                                                                         : "inflate failed");
            return -1;
        }
    }
    return (int64_t)got;
}

/* Reads up to n bytes into buf, fewer only at the end of the data. Returns the count, or -1
 * with the last error set: a read error, a corrupt gzip stream (bad header, bad block, CRC or
 * length mismatch, junk after it) or a gzip stream that ends before its trailer. */
static int64_t stream_read(stream *s, void *buf, size_t n) {
    int64_t got;
    if (s->gz) {
        got = gz_read(s, buf, n);
        if (got < 0) return -1;
    } else {
        size_t r = fread(buf, 1, n, s->fp);
        if (r < n && ferror(s->fp)) {
            tg_set_last_error("%s: read error: %s", s->path, strerror(errno));
            return -1;
        }
        got = (int64_t)r;
    }
    s->pos += (uint64_t)got;
    return got;
}

/* Reads the rest of s into a new buffer (*data, *len bytes; at least one byte allocated) when
 * it holds at most `limit` bytes. When more remain, *data is NULL and *extra counts the bytes
 * beyond the limit: exactly for a plain file (from its size, before anything is allocated), up
 * to PROBE_BYTES for gzip (*extra == PROBE_BYTES meaning "at least"). gzip data are read into a
 * buffer that doubles from FIRST_BUFFER, so memory follows the bytes actually present, never
 * the limit alone. Reading a gzip stream to its end also checks its CRC and length. Returns 0,
 * or -1 with the last error set. */
static int slurp(stream *s, size_t limit, uint8_t **data, size_t *len, uint64_t *extra) {
    *data = NULL;
    *len = 0;
    *extra = 0;
    size_t cap;
    if (!s->gz) {
        uint64_t rest = s->size > s->pos ? s->size - s->pos : 0;
        if (rest > limit) {
            *extra = rest - limit;
            return 0;
        }
        cap = (size_t)rest;
    } else {
        cap = limit < FIRST_BUFFER ? limit : FIRST_BUFFER;
    }
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) {
        tg_set_last_error("%s: out of memory for %zu bytes", s->path, cap);
        return -1;
    }
    size_t n = 0;
    for (;;) {
        int64_t got = stream_read(s, buf + n, cap - n);
        if (got < 0) {
            free(buf);
            return -1;
        }
        n += (size_t)got;
        if (n < cap || cap == limit || !s->gz) break; /* the end, the limit, or plain */
        size_t grown = cap > limit / 2 ? limit : 2 * cap;
        uint8_t *bigger = realloc(buf, grown);
        if (!bigger) {
            free(buf);
            tg_set_last_error("%s: out of memory for %zu bytes", s->path, grown);
            return -1;
        }
        buf = bigger;
        cap = grown;
    }
    if (s->gz && n == limit) { /* anything left? (the read also verifies the gzip trailer) */
        unsigned char probe[4096];
        uint64_t more = 0;
        int64_t got;
        do {
            got = stream_read(s, probe, sizeof probe);
            if (got < 0) {
                free(buf);
                return -1;
            }
            more += (uint64_t)got;
        } while (got == (int64_t)sizeof probe && more < PROBE_BYTES);
        if (more) {
            free(buf);
            *extra = more;
            return 0;
        }
    }
    *data = buf;
    *len = n;
    return 0;
}

int tg_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len) {
    *data = NULL;
    *len = 0;
    stream s;
    if (stream_open(&s, path) != 0) return -1;
    uint64_t extra;
    int rc = slurp(&s, max_bytes, data, len, &extra);
    if (rc == 0 && extra) {
        tg_set_last_error("%s: the %s holds more than the limit of %zu bytes", path,
                          stream_noun(&s), max_bytes);
        rc = -1;
    }
    stream_close(&s);
    return rc;
}

/* Parses and checks the header of the IDX file s, then reads its data into out. Returns 0, or
 * -1 with the last error set. */
static int read_idx(stream *s, size_t max_bytes, tg_idx *out) {
    const char *path = s->path;
    unsigned char head[16];
    int64_t got = stream_read(s, head, 4);
    if (got < 0) return -1;
    if (got < 4) {
        tg_set_last_error("%s: truncated: %s has %lld bytes, too few for an IDX magic number",
                          path, stream_noun(s), (long long)got);
        return -1;
    }
    if (head[0] || head[1]) {
        tg_set_last_error("%s: not an IDX file: magic number 0x%02x%02x%02x%02x does not start "
                          "with two zero bytes", path, head[0], head[1], head[2], head[3]);
        return -1;
    }
    if (head[2] != 0x08) {
        tg_set_last_error("%s: IDX data type 0x%02x is not supported (only 0x08, unsigned "
                          "bytes)", path, head[2]);
        return -1;
    }
    int rank = head[3];
    if (rank < 1 || rank > 4) {
        tg_set_last_error("%s: IDX rank %d is outside 1..4", path, rank);
        return -1;
    }
    got = stream_read(s, head, 4 * (size_t)rank);
    if (got < 0) return -1;
    if (got < 4 * rank) {
        tg_set_last_error("%s: truncated: an IDX header of rank %d needs %d bytes, %s has %lld",
                          path, rank, 4 + 4 * rank, stream_noun(s), (long long)(4 + got));
        return -1;
    }
    int64_t dims[4] = {0};
    for (int d = 0; d < rank; d++) {
        const unsigned char *b = head + 4 * d;
        dims[d] = (int64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
                            (uint32_t)b[3]);
    }
    char shape[96];
    tg_shape_str(shape, sizeof shape, rank, dims);
    uint64_t bytes = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] == 0) {
            tg_set_last_error("%s: dimension %d of the IDX dims %s is 0", path, d, shape);
            return -1;
        }
        if (bytes > UINT64_MAX / (uint64_t)dims[d]) {
            tg_set_last_error("%s: the IDX dims %s declare a size that overflows 64 bits", path,
                              shape);
            return -1;
        }
        bytes *= (uint64_t)dims[d];
    }
    if (bytes > max_bytes) {
        tg_set_last_error("%s: header declares dims %s = %llu bytes of data, more than the "
                          "limit of %zu bytes", path, shape, (unsigned long long)bytes,
                          max_bytes);
        return -1;
    }
    uint8_t *data;
    size_t len;
    uint64_t extra;
    if (slurp(s, (size_t)bytes, &data, &len, &extra) != 0) return -1;
    if (extra) {
        tg_set_last_error("%s: trailing data: %s%llu bytes after the %llu bytes the header "
                          "declares", path, s->gz && extra >= PROBE_BYTES ? "at least " : "",
                          (unsigned long long)extra, (unsigned long long)bytes);
        return -1;
    }
    if (len < bytes) {
        tg_set_last_error("%s: truncated: header declares %llu bytes of data, %s has %zu", path,
                          (unsigned long long)bytes, stream_noun(s), len);
        free(data);
        return -1;
    }
    out->ndim = rank;
    memcpy(out->dims, dims, sizeof dims);
    out->data = data;
    return 0;
}

int tg_idx_read(const char *path, size_t max_bytes, tg_idx *out) {
    if (!out || !path) {
        tg_set_last_error("idx_read: %s is NULL", out ? "path" : "out");
        return -1;
    }
    *out = (tg_idx){0};
    stream s;
    if (stream_open(&s, path) != 0) return -1;
    int rc = read_idx(&s, max_bytes ? max_bytes : IDX_DEFAULT_MAX, out);
    stream_close(&s);
    if (rc == 0) tg_clear_last_error();
    return rc;
}

void tg_idx_free(tg_idx *idx) {
    if (!idx) return;
    free(idx->data);
    *idx = (tg_idx){0};
}
