/* Tests of the data layer (suite `data`): the IDX reader on generated files, plain and gzipped,
 * read back exactly and rejected -- with a message naming the file and the problem -- at every
 * truncation length, with a bad magic, type, rank or dims, an oversized header, trailing bytes
 * or a corrupt gzip stream; MNIST from the bundled data/mnist and from generated pairs; CIFAR-10
 * from generated batch files; the loader's batching, shuffling, index lists and transforms; and
 * one-hot targets with label smoothing. Files are written to a fresh temporary folder per test. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "tapegrad.h"
#include "testing.h"

/* ---- a temporary folder per test ---------------------------------------------------------- */

static char tmpdir[512];

/* A fresh folder under $TMPDIR (or /tmp) into tmpdir. */
static void make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/tg_data_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Removes the folder and the files in it (the tests make no subfolders). */
static void remove_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

/* tmpdir/name in buf (1024 bytes). */
static const char *tmp_path(char *buf, const char *name) {
    snprintf(buf, 1024, "%s/%s", tmpdir, name);
    return buf;
}

/* Writes n bytes to path as they are. */
static void write_plain(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Writes n bytes to path gzip-compressed (one member, zlib's gzwrite). */
static void write_gz(const char *path, const void *bytes, size_t n) {
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_int_eq(gzwrite(f, bytes, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

/* The bytes of a file (malloc'd, *n of them). */
static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    uint8_t *buf = malloc((size_t)size + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* An IDX file image: the header (type, rank, dims) then `data_bytes` bytes of data (byte i is
 * (i * 7 + 3) % 256 unless data is given). Returns a malloc'd buffer of *n bytes. */
static uint8_t *make_idx(uint8_t type, int rank, const uint32_t *dims, const uint8_t *data,
                         size_t data_bytes, size_t *n) {
    size_t head = 4 + 4 * (size_t)rank;
    uint8_t *b = malloc(head + data_bytes + 1);
    b[0] = b[1] = 0;
    b[2] = type;
    b[3] = (uint8_t)rank;
    for (int d = 0; d < rank; d++) {
        b[4 + 4 * d] = (uint8_t)(dims[d] >> 24);
        b[5 + 4 * d] = (uint8_t)(dims[d] >> 16);
        b[6 + 4 * d] = (uint8_t)(dims[d] >> 8);
        b[7 + 4 * d] = (uint8_t)dims[d];
    }
    for (size_t i = 0; i < data_bytes; i++)
        b[head + i] = data ? data[i] : (uint8_t)((i * 7 + 3) % 256);
    *n = head + data_bytes;
    return b;
}

/* tg_idx_read fails on path with a message naming the file and containing `word`. */
static void expect_idx_error(const char *path, size_t max_bytes, const char *word) {
    tg_idx idx;
    ck_assert_msg(tg_idx_read(path, max_bytes, &idx) == -1, "%s was read", path);
    ck_assert_ptr_null(idx.data);
    CK_HAS(tg_last_error(), path);
    CK_HAS(tg_last_error(), word);
}

/* ---- IDX: reading back ------------------------------------------------------------------- */

/* Files of every rank, plain and gzipped, come back with their dims and bytes; a 3 MB file
 * crosses the gzip reader's buffer growth. */
START_TEST(test_idx_roundtrip) {
    static const uint32_t shapes[][4] = {{7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}, {3, 1000, 1000}};
    static const int ranks[] = {1, 2, 3, 4, 3};
    char path[1024];
    for (int s = 0; s < 5; s++) {
        size_t bytes = 1;
        for (int d = 0; d < ranks[s]; d++) bytes *= shapes[s][d];
        size_t n;
        uint8_t *file = make_idx(0x08, ranks[s], shapes[s], NULL, bytes, &n);
        for (int gz = 0; gz < 2; gz++) {
            tmp_path(path, gz ? "x.gz" : "x");
            if (gz) write_gz(path, file, n);
            else write_plain(path, file, n);
            tg_idx idx;
            ck_assert_msg(tg_idx_read(path, 0, &idx) == 0, "%s", tg_last_error());
            ck_assert_ptr_null(tg_last_error());
            ck_assert_int_eq(idx.ndim, ranks[s]);
            for (int d = 0; d < ranks[s]; d++) ck_assert_int_eq(idx.dims[d], shapes[s][d]);
            ck_assert_int_eq(memcmp(idx.data, file + n - bytes, bytes), 0);
            tg_idx_free(&idx);
            ck_assert_ptr_null(idx.data);
        }
        free(file);
    }
    /* Exactly at the limit is fine, one byte under it is not. */
    uint32_t dims[1] = {60};
    size_t n;
    uint8_t *file = make_idx(0x08, 1, dims, NULL, 60, &n);
    write_plain(tmp_path(path, "x"), file, n);
    tg_idx idx;
    ck_assert_int_eq(tg_idx_read(path, 60, &idx), 0);
    tg_idx_free(&idx);
    expect_idx_error(path, 59, "more than the limit of 59 bytes");
    free(file);
    tg_idx_free(NULL);
    ck_assert_int_eq(tg_idx_read(NULL, 0, &idx), -1);
    CK_HAS(tg_last_error(), "path is NULL");
    ck_assert_int_eq(tg_idx_read(path, 0, NULL), -1);
    CK_HAS(tg_last_error(), "out is NULL");
}
END_TEST

/* ---- IDX: truncated and corrupt files ---------------------------------------------------- */

/* Every proper prefix of a [3, 4, 5] file (76 bytes), written plain and gzipped, is an error
 * saying "truncated" and how much the file holds. */
START_TEST(test_idx_every_truncation) {
    uint32_t dims[3] = {3, 4, 5};
    size_t n;
    uint8_t *file = make_idx(0x08, 3, dims, NULL, 60, &n);
    ck_assert_uint_eq(n, 76);
    char path[1024], want[128];
    for (size_t len = 0; len < n; len++) {
        for (int gz = 0; gz < 2; gz++) {
            tmp_path(path, gz ? "cut.gz" : "cut");
            if (gz) write_gz(path, file, len);
            else write_plain(path, file, len);
            expect_idx_error(path, 0, "truncated");
            const char *noun = gz && len >= 2 ? "decompressed file" : "file";
            if (len < 4)
                snprintf(want, sizeof want, "%s has %zu bytes, too few for an IDX magic", noun,
                         len);
            else if (len < 16)
                snprintf(want, sizeof want, "header of rank 3 needs 16 bytes, %s has %zu", noun,
                         len);
            else
                snprintf(want, sizeof want, "truncated: header declares 60 bytes of data, %s "
                         "has %zu", noun, len - 16);
            /* An empty gzip member still starts with 1f 8b; shorter plain files do not. */
            if (!(gz && len < 2)) CK_HAS(tg_last_error(), want);
        }
    }
    free(file);
}
END_TEST

/* The gzip file of a whole, valid IDX file, cut at every length: an error every time (cut in
 * the deflate data, in the CRC or in the length trailer alike), never a crash. */
START_TEST(test_idx_every_gzip_cut) {
    uint32_t dims[2] = {20, 30};
    size_t n, gz_len;
    uint8_t *file = make_idx(0x08, 2, dims, NULL, 600, &n);
    char path[1024], cut[1024];
    write_gz(tmp_path(path, "whole.gz"), file, n);
    uint8_t *gz = slurp(path, &gz_len);
    tg_idx idx;
    ck_assert_int_eq(tg_idx_read(path, 0, &idx), 0);
    tg_idx_free(&idx);
    for (size_t len = 0; len < gz_len; len++) {
        write_plain(tmp_path(cut, "cut.gz"), gz, len);
        expect_idx_error(cut, 0, "truncated");
        if (len >= 2) CK_HAS(tg_last_error(), "truncated gzip stream");
    }
    free(gz);
    free(file);
    /* A file larger than zlib's internal buffers is decompressed straight into the reader's
     * buffer, which stops at the declared size: a damaged trailer after it must still count. */
    uint32_t big[2] = {600, 1000};
    file = make_idx(0x08, 2, big, NULL, 600000, &n);
    write_gz(path, file, n);
    gz = slurp(path, &gz_len);
    ck_assert_int_eq(tg_idx_read(path, 0, &idx), 0);
    tg_idx_free(&idx);
    for (size_t cut_by = 1; cut_by <= 8; cut_by++) {
        write_plain(cut, gz, gz_len - cut_by);
        expect_idx_error(cut, 0, "truncated gzip stream: the compressed data end after 600012");
    }
    gz[gz_len - 1] ^= 0x01; /* the length modulo 2^32 */
    write_plain(cut, gz, gz_len);
    expect_idx_error(cut, 0, "incorrect length check");
    free(gz);
    free(file);
}
END_TEST

/* Flipping any byte after the gzip header (deflate data, CRC, length) or the compression
 * method is caught: zlib's data or trailer checks, or the IDX checks when the damage decodes. */
START_TEST(test_idx_corrupt_gzip) {
    uint32_t dims[2] = {20, 30};
    size_t n, gz_len;
    uint8_t *file = make_idx(0x08, 2, dims, NULL, 600, &n);
    char path[1024];
    write_gz(tmp_path(path, "x.gz"), file, n);
    uint8_t *gz = slurp(path, &gz_len);
    int corrupt_messages = 0;
    for (size_t at = 2; at < gz_len; at++) {
        if (at >= 3 && at < 10) continue; /* flags, mtime, xfl, os: not checked by gzip */
        gz[at] ^= 0xff;
        write_plain(path, gz, gz_len);
        tg_idx idx;
        ck_assert_msg(tg_idx_read(path, 0, &idx) == -1, "flipped byte %zu was accepted", at);
        CK_HAS(tg_last_error(), path);
        corrupt_messages += strstr(tg_last_error(), "corrupt gzip stream") != NULL;
        gz[at] ^= 0xff;
    }
    ck_assert_int_gt(corrupt_messages, 0);
    /* The CRC alone (the first trailer byte). */
    gz[gz_len - 8] ^= 0x01;
    write_plain(path, gz, gz_len);
    expect_idx_error(path, 0, "incorrect data check");
    free(gz);
    free(file);
}
END_TEST

START_TEST(test_idx_bad_headers) {
    char path[1024];
    size_t n;
    uint32_t dims3[3] = {2, 3, 4};
    uint8_t *file = make_idx(0x08, 3, dims3, NULL, 24, &n);
    tmp_path(path, "bad");

    file[0] = 0x01; /* wrong magic */
    write_plain(path, file, n);
    expect_idx_error(path, 0, "not an IDX file: magic number 0x01000803");
    file[0] = 0x00;
    file[1] = 0x08;
    write_plain(path, file, n);
    expect_idx_error(path, 0, "does not start with two zero bytes");
    file[1] = 0x00;
    static const uint8_t bad_types[] = {0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x00, 0xff};
    for (size_t i = 0; i < sizeof bad_types; i++) {
        file[2] = bad_types[i];
        write_plain(path, file, n);
        char want[64];
        snprintf(want, sizeof want, "IDX data type 0x%02x is not supported", bad_types[i]);
        expect_idx_error(path, 0, want);
    }
    free(file);

    /* Ranks 0 and 5 (with enough bytes after them for a header of that rank). */
    uint32_t dims5[5] = {1, 1, 1, 1, 1};
    file = make_idx(0x08, 0, dims5, NULL, 8, &n);
    write_plain(path, file, n);
    expect_idx_error(path, 0, "IDX rank 0 is outside 1..4");
    free(file);
    file = make_idx(0x08, 5, dims5, NULL, 1, &n);
    write_plain(path, file, n);
    expect_idx_error(path, 0, "IDX rank 5 is outside 1..4");
    free(file);

    /* A zero dim anywhere. */
    for (int zero = 0; zero < 3; zero++) {
        uint32_t dims[3] = {2, 3, 4};
        dims[zero] = 0;
        file = make_idx(0x08, 3, dims, NULL, 0, &n);
        write_gz(path, file, n);
        char want[64];
        snprintf(want, sizeof want, "dimension %d of the IDX dims", zero);
        expect_idx_error(path, 0, want);
        free(file);
    }

    /* Dims whose product overflows 64 bits, whatever the limit. */
    uint32_t huge[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 2};
    file = make_idx(0x08, 4, huge, NULL, 16, &n);
    write_plain(path, file, n);
    expect_idx_error(path, SIZE_MAX, "overflows 64 bits");
    expect_idx_error(path, 0, "[4294967295, 4294967295, 4294967295, 2]");
    free(file);
    /* (2^32 - 1)^2 bytes fit in 64 bits: with no limit to speak of, such a header is found
     * truncated after reading (and allocating for) only the bytes present. */
    uint32_t big[2] = {0xffffffffu, 0xffffffffu};
    file = make_idx(0x08, 2, big, NULL, 16, &n);
    write_plain(path, file, n);
    expect_idx_error(path, SIZE_MAX, "truncated: header declares 18446744065119617025 bytes of "
                                     "data, file has 16");
    write_gz(path, file, n);
    expect_idx_error(path, SIZE_MAX, "decompressed file has 16");
    free(file);
}
END_TEST

/* A header declaring 2^31 items fails at once: over the default 1 GiB limit before anything is
 * read, and with a larger limit as truncated after reading only the bytes present (plain: the
 * file's size is known; gzip: the buffer grows with the data, 1 MiB at first). */
START_TEST(test_idx_huge_header) {
    char path[1024];
    uint32_t dims[1] = {0x80000000u};
    size_t n;
    uint8_t *file = make_idx(0x08, 1, dims, NULL, 10, &n);
    for (int gz = 0; gz < 2; gz++) {
        tmp_path(path, gz ? "huge.gz" : "huge");
        if (gz) write_gz(path, file, n);
        else write_plain(path, file, n);
        expect_idx_error(path, 0, "header declares dims [2147483648] = 2147483648 bytes of data, "
                                  "more than the limit of 1073741824 bytes");
        if (SIZE_MAX > 0xffffffffu) {
            expect_idx_error(path, (size_t)1 << 33,
                             gz ? "truncated: header declares 2147483648 bytes of data, "
                                  "decompressed file has 10"
                                : "truncated: header declares 2147483648 bytes of data, file "
                                  "has 10");
        }
    }
    free(file);
    /* A rank-3 MNIST-like header of 2^31 images of 1x1 with no data at all. */
    uint32_t images[3] = {0x80000000u, 1, 1};
    file = make_idx(0x08, 3, images, NULL, 0, &n);
    write_gz(tmp_path(path, "images.gz"), file, n);
    expect_idx_error(path, 0, "more than the limit");
    free(file);
}
END_TEST

START_TEST(test_idx_trailing_and_missing) {
    char path[1024];
    uint32_t dims[2] = {4, 5};
    size_t n;
    uint8_t *file = make_idx(0x08, 2, dims, NULL, 20 + 100000, &n);
    /* One extra byte, plain and gzipped. */
    write_plain(tmp_path(path, "t"), file, 12 + 20 + 1);
    expect_idx_error(path, 0, "trailing data: 1 bytes after the 20 bytes the header declares");
    write_gz(tmp_path(path, "t.gz"), file, 12 + 20 + 3);
    expect_idx_error(path, 0, "trailing data: 3 bytes after the 20 bytes");
    /* Many extra bytes: counted exactly in a plain file, up to 64 KiB in gzip. */
    write_plain(tmp_path(path, "t"), file, n);
    expect_idx_error(path, 0, "trailing data: 100000 bytes");
    write_gz(tmp_path(path, "t.gz"), file, n);
    expect_idx_error(path, 0, "trailing data: at least 65536 bytes");

    /* After the gzip stream: another member continues the data (as gzip(1) concatenates),
     * anything else is junk. */
    uint8_t *half1, *half2, *whole;
    size_t n1, n2;
    write_gz(tmp_path(path, "a.gz"), file, 12 + 7);
    half1 = slurp(path, &n1);
    write_gz(path, file + 12 + 7, 13);
    half2 = slurp(path, &n2);
    whole = malloc(n1 + n2 + 3);
    memcpy(whole, half1, n1);
    memcpy(whole + n1, half2, n2);
    write_plain(path, whole, n1 + n2);
    tg_idx idx;
    ck_assert_msg(tg_idx_read(path, 0, &idx) == 0, "%s", tg_last_error());
    ck_assert_int_eq(memcmp(idx.data, file + 12, 20), 0);
    tg_idx_free(&idx);
    write_plain(path, whole, n1 + 2); /* the second member cut short */
    expect_idx_error(path, 0, "truncated gzip stream: the compressed data end after 19");
    memcpy(whole + n1, "\0\0\0", 3);
    write_plain(path, whole, n1 + 3);
    expect_idx_error(path, 0, "junk after the end of the gzip stream (after 19 decompressed");
    free(half1);
    free(half2);
    free(whole);
    free(file);

    expect_idx_error(tmp_path(path, "no-such-file.gz"), 0, "cannot open: No such file");
    expect_idx_error(tmpdir, 0, "not a regular file");
}
END_TEST

/* ---- MNIST ------------------------------------------------------------------------------- */

/* The bundled data/mnist: 24,345 training images (the first of the official set) and the
 * official 10,000 test images, with their known labels and pixel sums. */
START_TEST(test_mnist_bundled) {
    tg_dataset *train = tg_mnist_load(MNIST_DIR, true);
    ck_assert_msg(train != NULL, "%s", tg_last_error());
    ck_assert_ptr_null(tg_last_error());
    ck_assert_int_eq(train->n, 24345);
    ck_assert_int_eq(train->channels, 1);
    ck_assert_int_eq(train->height, 28);
    ck_assert_int_eq(train->width, 28);
    ck_assert_int_eq(train->num_classes, 10);
    static const int64_t first[] = {5, 0, 4, 1, 9, 2, 1, 3, 1, 4};
    for (int i = 0; i < 10; i++) ck_assert_int_eq(train->labels[i], first[i]);
    int64_t hist[10] = {0};
    for (int64_t i = 0; i < train->n; i++) hist[train->labels[i]]++;
    for (int c = 0; c < 10; c++) /* about a tenth each */
        ck_assert_msg(hist[c] > 2000 && hist[c] < 2900, "class %d: %lld", c, (long long)hist[c]);
    int64_t sum0 = 0;
    for (int i = 0; i < 784; i++) sum0 += train->pixels[i];
    ck_assert_int_eq(sum0, 27525);

    tg_dataset *test = tg_mnist_load(MNIST_DIR, false);
    ck_assert_msg(test != NULL, "%s", tg_last_error());
    ck_assert_int_eq(test->n, 10000);
    ck_assert_int_eq(test->labels[0], 7);
    static const int64_t official[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    int64_t th[10] = {0};
    for (int64_t i = 0; i < test->n; i++) th[test->labels[i]]++;
    for (int c = 0; c < 10; c++) ck_assert_int_eq(th[c], official[c]);
    int64_t first_sum = 0, last_sum = 0, total = 0;
    for (int i = 0; i < 784; i++) {
        first_sum += test->pixels[i];
        last_sum += test->pixels[(size_t)9999 * 784 + i];
    }
    for (int64_t i = 0; i < test->n * 784; i++) total += test->pixels[i];
    ck_assert_int_eq(first_sum, 18454);
    ck_assert_int_eq(last_sum, 41833);
    double mean = (double)total / (10000.0 * 784.0); /* MNIST's well-known 0.1307 * 255 */
    ck_assert_double_eq_tol(mean, 33.791224489795916, 1e-9);

    /* A LeNet-style loader over the test set: 10 batches [1000, 1, 32, 32]. */
    tg_transform tf = tg_transform_defaults();
    tf.pad = 2;
    tg_loader *l = tg_loader_new(test, 1000, false, false, NULL, 0, &tf, NULL);
    ck_assert_ptr_nonnull(l);
    tg_tape *tp = tg_tape_new();
    tg_tensor *x, *y;
    int batches = 0;
    while (tg_loader_next(l, tp, &x, &y)) {
        ck_assert_int_eq(tg_tensor_dim(x, 0), 1000);
        ck_assert_int_eq(tg_tensor_dim(x, 2), 32);
        ck_assert_int_eq(tg_tensor_dim(x, 3), 32);
        if (batches == 0) ck_assert_int_eq(tg_tensor_get(y, 0), 7);
        batches++;
        tg_tape_reset(tp);
    }
    ck_assert_int_eq(batches, 10);
    ck_assert_ptr_null(tg_tape_error(tp));
    tg_tape_free(tp);
    tg_loader_free(l);
    tg_dataset_free(test);
    tg_dataset_free(train);
}
END_TEST

/* Writes an MNIST pair (images [n, rows, cols], labels [m] = i % 10 unless bad_label >= 0 is
 * put at index 1) in tmpdir under prefix, plain or gzipped. */
static void write_mnist(const char *prefix, uint32_t n, uint32_t rows, uint32_t cols, uint32_t m,
                        int bad_label, bool gz) {
    char name[64], path[1024];
    size_t len;
    uint32_t idims[3] = {n, rows, cols};
    uint8_t *img = make_idx(0x08, 3, idims, NULL, (size_t)n * rows * cols, &len);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
    if (gz) write_gz(tmp_path(path, name), img, len);
    else write_plain(tmp_path(path, name), img, len);
    free(img);
    uint8_t *labels = malloc(m);
    for (uint32_t i = 0; i < m; i++) labels[i] = (uint8_t)(i % 10);
    if (bad_label >= 0) labels[1] = (uint8_t)bad_label;
    uint8_t *lbl = make_idx(0x08, 1, &m, labels, m, &len);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
    if (gz) write_gz(tmp_path(path, name), lbl, len);
    else write_plain(tmp_path(path, name), lbl, len);
    free(lbl);
    free(labels);
}

START_TEST(test_mnist_generated) {
    /* Plain files are found when there is no .gz. */
    write_mnist("t10k", 12, 28, 28, 12, -1, false);
    tg_dataset *ds = tg_mnist_load(tmpdir, false);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_int_eq(ds->n, 12);
    ck_assert_int_eq(ds->labels[11], 1);
    ck_assert_int_eq(ds->pixels[5], (5 * 7 + 3) % 256);
    tg_dataset_free(ds);

    /* Counts that disagree. */
    write_mnist("train", 5, 28, 28, 4, -1, true);
    ck_assert_ptr_null(tg_mnist_load(tmpdir, true));
    CK_HAS(tg_last_error(), "train-images-idx3-ubyte.gz holds 5 images but");
    CK_HAS(tg_last_error(), "train-labels-idx1-ubyte.gz holds 4 labels");
    /* A label above 9. */
    write_mnist("train", 5, 28, 28, 5, 10, true);
    ck_assert_ptr_null(tg_mnist_load(tmpdir, true));
    CK_HAS(tg_last_error(), "label 10 at index 1 is not a digit 0..9");
    /* Images that are not 28x28. */
    write_mnist("train", 5, 28, 27, 5, -1, true);
    ck_assert_ptr_null(tg_mnist_load(tmpdir, true));
    CK_HAS(tg_last_error(), "must be [n, 28, 28], the file holds [5, 28, 27]");
    /* The .gz wins over a plain file of the same name (here a broken one). */
    write_mnist("train", 3, 28, 28, 3, -1, true);
    char path[1024];
    write_plain(tmp_path(path, "train-images-idx3-ubyte"), "\0\0\x08", 3);
    ds = tg_mnist_load(tmpdir, true);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_int_eq(ds->n, 3);
    tg_dataset_free(ds);
    /* A truncated image file is reported with its name. */
    unlink(tmp_path(path, "train-images-idx3-ubyte.gz"));
    ck_assert_ptr_null(tg_mnist_load(tmpdir, true));
    CK_HAS(tg_last_error(), "train-images-idx3-ubyte: truncated");
    /* Nothing there. */
    ck_assert_ptr_null(tg_mnist_load("/nonexistent-tapegrad-dir", false));
    CK_HAS(tg_last_error(), "neither t10k-images-idx3-ubyte.gz nor t10k-images-idx3-ubyte");
    ck_assert_ptr_null(tg_mnist_load(NULL, false));
    CK_HAS(tg_last_error(), "dir is NULL");
}
END_TEST

/* ---- CIFAR-10 ---------------------------------------------------------------------------- */

enum { CIFAR_REC = 3073 };

/* A batch file of n records; record r has label (first_label + r) % 10 and pixels p[i] =
 * (seed + r + i) % 256. */
static void write_cifar(const char *name, int n, int first_label, int seed, size_t extra) {
    size_t len = (size_t)n * CIFAR_REC + extra;
    uint8_t *b = calloc(len + 1, 1);
    for (int r = 0; r < n; r++) {
        b[(size_t)r * CIFAR_REC] = (uint8_t)((first_label + r) % 10);
        for (int i = 0; i < 3072; i++)
            b[(size_t)r * CIFAR_REC + 1 + i] = (uint8_t)((seed + r + i) % 256);
    }
    char path[1024];
    write_plain(tmp_path(path, name), b, len);
    free(b);
}

START_TEST(test_cifar) {
    /* Batches 1 and 3 present: their records in file order. */
    write_cifar("data_batch_1.bin", 2, 4, 10, 0);
    write_cifar("data_batch_3.bin", 3, 8, 50, 0);
    tg_dataset *ds = tg_cifar10_load(tmpdir, true);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_int_eq(ds->n, 5);
    ck_assert_int_eq(ds->channels, 3);
    ck_assert_int_eq(ds->height, 32);
    ck_assert_int_eq(ds->width, 32);
    static const int64_t labels[] = {4, 5, 8, 9, 0};
    for (int i = 0; i < 5; i++) ck_assert_int_eq(ds->labels[i], labels[i]);
    ck_assert_int_eq(ds->pixels[0], 10);
    ck_assert_int_eq(ds->pixels[3072 + 7], 10 + 1 + 7);
    ck_assert_int_eq(ds->pixels[2 * 3072 + 3071], (50 + 3071) % 256);
    ck_assert_int_eq(ds->pixels[4 * 3072 + 100], (50 + 2 + 100) % 256);
    tg_dataset_free(ds);

    char path[1024];
    /* No test batch. */
    ck_assert_ptr_null(tg_cifar10_load(tmpdir, false));
    CK_HAS(tg_last_error(), "test_batch.bin: cannot open");
    write_cifar("test_batch.bin", 4, 0, 0, 0);
    ds = tg_cifar10_load(tmpdir, false);
    ck_assert_msg(ds != NULL, "%s", tg_last_error());
    ck_assert_int_eq(ds->n, 4);
    tg_dataset_free(ds);
    /* Not a whole number of records. */
    write_cifar("test_batch.bin", 2, 0, 0, 5);
    ck_assert_ptr_null(tg_cifar10_load(tmpdir, false));
    CK_HAS(tg_last_error(), "test_batch.bin: 6151 bytes is not a whole");
    CK_HAS(tg_last_error(), "(2 records and 5 bytes over)");
    write_cifar("test_batch.bin", 0, 0, 0, 3072);
    ck_assert_ptr_null(tg_cifar10_load(tmpdir, false));
    CK_HAS(tg_last_error(), "3072 bytes is not a whole");
    write_cifar("test_batch.bin", 0, 0, 0, 0);
    ck_assert_ptr_null(tg_cifar10_load(tmpdir, false));
    CK_HAS(tg_last_error(), "0 bytes is not a whole, non-zero number");
    /* A label of 10 in the second record. */
    write_cifar("test_batch.bin", 3, 0, 0, 0);
    FILE *f = fopen(tmp_path(path, "test_batch.bin"), "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, CIFAR_REC, SEEK_SET);
    fputc(10, f);
    fclose(f);
    ck_assert_ptr_null(tg_cifar10_load(tmpdir, false));
    CK_HAS(tg_last_error(), "label 10 in record 1 is outside 0..9");
    /* A bad batch among good ones spoils the training set. */
    write_cifar("data_batch_2.bin", 1, 0, 0, 1);
    ck_assert_ptr_null(tg_cifar10_load(tmpdir, true));
    CK_HAS(tg_last_error(), "data_batch_2.bin: 3074 bytes");
    /* No training batch at all. */
    unlink(tmp_path(path, "data_batch_1.bin"));
    unlink(tmp_path(path, "data_batch_2.bin"));
    unlink(tmp_path(path, "data_batch_3.bin"));
    ck_assert_ptr_null(tg_cifar10_load(tmpdir, true));
    CK_HAS(tg_last_error(), "no CIFAR-10 training batch");
    ck_assert_ptr_null(tg_cifar10_load(NULL, true));
    CK_HAS(tg_last_error(), "dir is NULL");
}
END_TEST

/* ---- datasets ---------------------------------------------------------------------------- */

START_TEST(test_dataset_new) {
    uint8_t px[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++) px[i] = (uint8_t)i;
    int64_t lb[2] = {0, 4};
    tg_dataset *ds = tg_dataset_new(2, 3, 2, 2, 5, px, lb);
    ck_assert_ptr_nonnull(ds);
    px[0] = 99;
    lb[0] = 3;
    ck_assert_int_eq(ds->pixels[0], 0); /* copied */
    ck_assert_int_eq(ds->pixels[23], 23);
    ck_assert_int_eq(ds->labels[0], 0);
    ck_assert_int_eq(ds->labels[1], 4);
    tg_dataset_free(ds);
    tg_dataset_free(NULL);

    lb[1] = 5;
    ck_assert_ptr_null(tg_dataset_new(2, 3, 2, 2, 5, px, lb));
    CK_HAS(tg_last_error(), "label 5 of example 1 is outside 0..4");
    lb[1] = -1;
    ck_assert_ptr_null(tg_dataset_new(2, 3, 2, 2, 5, px, lb));
    CK_HAS(tg_last_error(), "label -1 of example 1");
    ck_assert_ptr_null(tg_dataset_new(2, 0, 2, 2, 5, px, lb));
    CK_HAS(tg_last_error(), "[2, 0, 2, 2]");
    ck_assert_ptr_null(tg_dataset_new(0, 3, 2, 2, 5, px, lb));
    CK_HAS(tg_last_error(), ">= 1");
    ck_assert_ptr_null(tg_dataset_new(2, 3, 2, 2, 0, px, lb));
    CK_HAS(tg_last_error(), "0 classes");
    ck_assert_ptr_null(tg_dataset_new(2, 3, 2, 2, 5, NULL, lb));
    CK_HAS(tg_last_error(), "pixels is NULL");
    ck_assert_ptr_null(tg_dataset_new(2, 3, 2, 2, 5, px, NULL));
    CK_HAS(tg_last_error(), "labels is NULL");
    ck_assert_ptr_null(tg_dataset_new(INT64_MAX / 2, 1 << 20, 1 << 20, 1, 5, px, lb));
    CK_HAS(tg_last_error(), "too many elements");
}
END_TEST

/* ---- loader ------------------------------------------------------------------------------ */

/* n examples of [1, 2, 3] whose pixels are (6e + i) % 256 and whose label is e (n classes),
 * so a batch's labels name its examples. */
static tg_dataset *numbered(int64_t n) {
    uint8_t *px = malloc((size_t)n * 6);
    int64_t *lb = malloc((size_t)n * sizeof *lb);
    for (int64_t e = 0; e < n; e++) {
        lb[e] = e;
        for (int i = 0; i < 6; i++) px[e * 6 + i] = (uint8_t)((6 * e + i) % 256);
    }
    tg_dataset *ds = tg_dataset_new(n, 1, 2, 3, n, px, lb);
    free(px);
    free(lb);
    ck_assert_ptr_nonnull(ds);
    return ds;
}

/* One epoch's labels (the example order) into seen; returns the count. Checks each batch's
 * size, shapes and that the pixels belong to the labelled example (scale 1). */
static int64_t run_epoch(tg_loader *l, const tg_dataset *ds, tg_tape *tp, int64_t batch,
                         int64_t *seen) {
    int64_t count = 0, batches = 0;
    tg_tensor *x, *y;
    while (tg_loader_next(l, tp, &x, &y)) {
        int64_t b = tg_tensor_dim(y, 0);
        ck_assert_int_le(b, batch);
        ck_assert_int_eq(tg_tensor_dtype(y), TG_I64);
        ck_assert_int_eq(tg_tensor_ndim(x), 4);
        ck_assert_int_eq(tg_tensor_dim(x, 0), b);
        for (int64_t i = 0; i < b; i++) {
            int64_t e = (int64_t)tg_tensor_get(y, i);
            for (int p = 0; p < 6; p++)
                ck_assert_double_eq(tg_tensor_get(x, i * 6 + p), ds->pixels[e * 6 + p]);
            seen[count++] = e;
        }
        batches++;
        tg_tape_reset(tp);
    }
    ck_assert_int_eq(batches, tg_loader_num_batches(l));
    ck_assert_int_eq(count, tg_loader_num_examples(l));
    return count;
}

/* The default transform with scale 1, so batch values are the pixel bytes. */
static tg_transform unscaled(void) {
    tg_transform tf = tg_transform_defaults();
    tf.scale = 1.0;
    return tf;
}

START_TEST(test_loader_batches) {
    tg_dataset *ds = numbered(10);
    tg_tape *tp = tg_tape_new();
    tg_transform tf = unscaled();
    int64_t seen[10];
    static const struct { int64_t batch; bool drop; int64_t batches, examples; } cases[] = {
        {3, false, 4, 10}, {3, true, 3, 9}, {10, false, 1, 10}, {10, true, 1, 10},
        {11, false, 1, 10}, {11, true, 0, 0}, {1, true, 10, 10}, {4, true, 2, 8},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        tg_loader *l = tg_loader_new(ds, cases[c].batch, false, cases[c].drop, NULL, 0, &tf,
                                     NULL);
        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(tg_loader_num_batches(l), cases[c].batches);
        ck_assert_int_eq(tg_loader_num_examples(l), cases[c].examples);
        for (int epoch = 0; epoch < 2; epoch++) { /* the next epoch starts by itself */
            int64_t n = run_epoch(l, ds, tp, cases[c].batch, seen);
            for (int64_t i = 0; i < n; i++) ck_assert_int_eq(seen[i], i); /* in order */
        }
        tg_loader_free(l);
    }
    /* The last short batch, and the default transform (f32, / 255). */
    tg_loader *l = tg_loader_new(ds, 4, false, false, NULL, 0, NULL, NULL);
    tg_tensor *x, *y;
    ck_assert(tg_loader_next(l, tp, &x, &y));
    ck_assert_int_eq(tg_tensor_dtype(x), TG_F32);
    ck_assert_float_eq_tol(tg_tensor_get(x, 6 + 5), 11.0 / 255.0, 1e-7);
    ck_assert(tg_loader_next(l, tp, &x, &y));
    ck_assert(tg_loader_next(l, tp, &x, &y));
    ck_assert_int_eq(tg_tensor_dim(x, 0), 2);
    ck_assert_int_eq(tg_tensor_get(y, 1), 9);
    ck_assert(!tg_loader_next(l, tp, &x, &y));
    ck_assert_ptr_null(x);
    /* An explicit start restarts the epoch. */
    ck_assert(tg_loader_next(l, tp, &x, &y));
    ck_assert_int_eq(tg_tensor_get(y, 0), 0);
    tg_loader_start_epoch(l);
    ck_assert(tg_loader_next(l, tp, &x, &y));
    ck_assert_int_eq(tg_tensor_get(y, 0), 0);
    /* Errors of next. */
    ck_assert(!tg_loader_next(l, NULL, &x, &y));
    CK_HAS(tg_last_error(), "loader_next: the tape is NULL");
    ck_assert(!tg_loader_next(NULL, tp, &x, &y));
    CK_HAS(tg_tape_error(tp), "loader_next: the loader is NULL");
    tg_loader_free(l);
    tg_loader_free(NULL);
    tg_tape_free(tp);
    tg_dataset_free(ds);
}
END_TEST

/* true when seen[0..n) holds each of want[0..n) exactly once (values below limit). */
static bool is_permutation(const int64_t *seen, const int64_t *want, int64_t n, int64_t limit) {
    int *count = calloc((size_t)limit, sizeof *count);
    for (int64_t i = 0; i < n; i++) count[want[i]]++;
    bool ok = true;
    for (int64_t i = 0; i < n; i++) ok = ok && --count[seen[i]] >= 0;
    free(count);
    return ok;
}

START_TEST(test_loader_shuffle) {
    enum { N = 100 };
    tg_dataset *ds = numbered(N);
    tg_tape *tp = tg_tape_new();
    tg_transform tf = unscaled();
    int64_t all[N], first[N], second[N], other[N];
    for (int i = 0; i < N; i++) all[i] = i;
    tg_rng *rng = tg_rng_new(7), *rng2 = tg_rng_new(7), *rng3 = tg_rng_new(8);
    tg_loader *a = tg_loader_new(ds, 7, true, false, NULL, 0, &tf, rng);
    tg_loader *b = tg_loader_new(ds, 7, true, false, NULL, 0, &tf, rng2);
    tg_loader *c = tg_loader_new(ds, 7, true, false, NULL, 0, &tf, rng3);
    ck_assert_int_eq(tg_loader_num_batches(a), 15);
    /* Every example exactly once per epoch, a new order each epoch. */
    ck_assert_int_eq(run_epoch(a, ds, tp, 7, first), N);
    ck_assert(is_permutation(first, all, N, N));
    ck_assert_int_ne(memcmp(first, all, sizeof all), 0);
    ck_assert_int_eq(run_epoch(a, ds, tp, 7, second), N);
    ck_assert(is_permutation(second, all, N, N));
    ck_assert_int_ne(memcmp(first, second, sizeof first), 0);
    /* The same seed gives the same orders, another seed others. */
    run_epoch(b, ds, tp, 7, other);
    ck_assert_int_eq(memcmp(first, other, sizeof first), 0);
    run_epoch(b, ds, tp, 7, other);
    ck_assert_int_eq(memcmp(second, other, sizeof second), 0);
    run_epoch(c, ds, tp, 7, other);
    ck_assert_int_ne(memcmp(first, other, sizeof first), 0);
    /* The order depends only on the rng's state at the epoch's start (a resumed run). */
    tg_rng_state st = tg_rng_get_state(rng);
    run_epoch(a, ds, tp, 7, first);
    tg_loader *resumed = tg_loader_new(ds, 7, true, false, NULL, 0, &tf, rng3);
    tg_rng_set_state(rng3, &st);
    run_epoch(resumed, ds, tp, 7, other);
    ck_assert_int_eq(memcmp(first, other, sizeof first), 0);
    /* drop_last with shuffling: 98 distinct examples, a different 2 left out over epochs. */
    tg_loader *d = tg_loader_new(ds, 7, true, true, NULL, 0, &tf, rng);
    bool dropped_differs = false;
    int64_t prev_missing = -1;
    for (int epoch = 0; epoch < 5; epoch++) {
        ck_assert_int_eq(run_epoch(d, ds, tp, 7, first), 98);
        int present[N] = {0};
        for (int i = 0; i < 98; i++) ck_assert_int_eq(present[first[i]]++, 0);
        int64_t missing = 0;
        for (int i = 0; i < N; i++) missing += present[i] ? 0 : i + 1;
        if (prev_missing >= 0 && missing != prev_missing) dropped_differs = true;
        prev_missing = missing;
    }
    ck_assert(dropped_differs);
    /* Uniform over permutations: 4 examples for 2,400 epochs give each of the 24 orders about
     * 100 times (a biased shuffle, e.g. one that never leaves an example in place, does not). */
    tg_dataset *four = numbered(4);
    tg_loader *u = tg_loader_new(four, 4, true, false, NULL, 0, &tf, rng);
    int perm_count[256] = {0};
    for (int epoch = 0; epoch < 2400; epoch++) {
        tg_tensor *x, *y;
        ck_assert(tg_loader_next(u, tp, &x, &y));
        int code = 0;
        for (int i = 0; i < 4; i++) code = code * 4 + (int)tg_tensor_get(y, i);
        perm_count[code]++;
        ck_assert(!tg_loader_next(u, tp, &x, &y));
        tg_tape_reset(tp);
    }
    int distinct = 0;
    for (int code = 0; code < 256; code++) {
        if (!perm_count[code]) continue;
        distinct++;
        ck_assert_msg(perm_count[code] > 55 && perm_count[code] < 145, "order %d drawn %d times",
                      code, perm_count[code]);
    }
    ck_assert_int_eq(distinct, 24);
    tg_loader_free(u);
    tg_dataset_free(four);
    tg_loader_free(a);
    tg_loader_free(b);
    tg_loader_free(c);
    tg_loader_free(d);
    tg_loader_free(resumed);
    tg_rng_free(rng);
    tg_rng_free(rng2);
    tg_rng_free(rng3);
    tg_tape_free(tp);
    tg_dataset_free(ds);
}
END_TEST

START_TEST(test_loader_indices) {
    enum { N = 2000, SPLIT = 1500 };
    tg_dataset *ds = numbered(N);
    tg_tape *tp = tg_tape_new();
    tg_transform tf = unscaled();
    int64_t *train = malloc(SPLIT * sizeof *train), *test = malloc((N - SPLIT) * sizeof *test);
    int64_t *seen = malloc(N * sizeof *seen);
    for (int i = 0; i < SPLIT; i++) train[i] = i;
    for (int i = SPLIT; i < N; i++) test[i - SPLIT] = i;
    tg_rng *rng = tg_rng_new(3);
    tg_loader *lt = tg_loader_new(ds, 32, true, false, train, SPLIT, &tf, rng);
    tg_loader *le = tg_loader_new(ds, 100, false, false, test, N - SPLIT, &tf, NULL);
    ck_assert_ptr_nonnull(lt);
    ck_assert_ptr_nonnull(le);
    for (int i = 0; i < SPLIT; i++) train[i] = -1; /* the loader keeps its own copy */
    ck_assert_int_eq(tg_loader_num_batches(lt), 47);
    ck_assert_int_eq(run_epoch(lt, ds, tp, 32, seen), SPLIT);
    for (int i = 0; i < SPLIT; i++) train[i] = i;
    ck_assert(is_permutation(seen, train, SPLIT, N)); /* only 0..1499, each once */
    ck_assert_int_eq(run_epoch(le, ds, tp, 100, seen), N - SPLIT);
    for (int i = 0; i < N - SPLIT; i++) ck_assert_int_eq(seen[i], SPLIT + i);
    tg_loader_free(lt);
    tg_loader_free(le);

    /* Repeated indices are allowed (oversampling). */
    int64_t rep[4] = {5, 5, 5, 1};
    tg_loader *lr = tg_loader_new(ds, 4, false, false, rep, 4, &tf, NULL);
    ck_assert_int_eq(run_epoch(lr, ds, tp, 4, seen), 4);
    ck_assert_int_eq(memcmp(seen, rep, sizeof rep), 0);
    tg_loader_free(lr);

    /* Validation. */
    int64_t bad[3] = {0, N, 1};
    ck_assert_ptr_null(tg_loader_new(ds, 4, false, false, bad, 3, &tf, NULL));
    CK_HAS(tg_last_error(), "index 2000 at position 1 is outside the dataset's 0..1999");
    bad[1] = -1;
    ck_assert_ptr_null(tg_loader_new(ds, 4, false, false, bad, 3, &tf, NULL));
    CK_HAS(tg_last_error(), "index -1 at position 1");
    ck_assert_ptr_null(tg_loader_new(ds, 4, false, false, bad, 0, &tf, NULL));
    CK_HAS(tg_last_error(), "needs n_indices >= 1");
    ck_assert_ptr_null(tg_loader_new(ds, 4, false, false, NULL, 5, &tf, NULL));
    CK_HAS(tg_last_error(), "indices is NULL but n_indices is 5");
    ck_assert_ptr_null(tg_loader_new(ds, 0, false, false, NULL, 0, &tf, NULL));
    CK_HAS(tg_last_error(), "batch must be >= 1");
    ck_assert_ptr_null(tg_loader_new(NULL, 4, false, false, NULL, 0, &tf, NULL));
    CK_HAS(tg_last_error(), "needs a dataset");
    ck_assert_ptr_null(tg_loader_new(ds, 4, true, false, NULL, 0, &tf, NULL));
    CK_HAS(tg_last_error(), "need an rng");
    tg_transform t2 = tf;
    t2.hflip = true;
    ck_assert_ptr_null(tg_loader_new(ds, 4, false, false, NULL, 0, &t2, NULL));
    CK_HAS(tg_last_error(), "need an rng");
    t2 = tf;
    t2.crop_pad = 2;
    ck_assert_ptr_null(tg_loader_new(ds, 4, false, false, NULL, 0, &t2, NULL));
    CK_HAS(tg_last_error(), "need an rng");
    t2 = tf;
    t2.dtype = TG_I64;
    ck_assert_ptr_null(tg_loader_new(ds, 4, false, false, NULL, 0, &t2, NULL));
    CK_HAS(tg_last_error(), "dtype must be f32 or f64, got i64");
    t2 = tf;
    t2.normalize = true;
    t2.std[0] = 0.0;
    ck_assert_ptr_null(tg_loader_new(ds, 4, false, false, NULL, 0, &t2, NULL));
    CK_HAS(tg_last_error(), "channel 0 needs a finite mean and a finite, non-zero std");
    t2 = tf;
    t2.pad = -1;
    ck_assert_ptr_null(tg_loader_new(ds, 4, false, false, NULL, 0, &t2, NULL));
    CK_HAS(tg_last_error(), "pad and crop_pad must be in");
    t2 = tf;
    t2.scale = NAN;
    ck_assert_ptr_null(tg_loader_new(ds, 4, false, false, NULL, 0, &t2, NULL));
    CK_HAS(tg_last_error(), "scale must be finite");
    tg_rng_free(rng);
    free(train);
    free(test);
    free(seen);
    tg_tape_free(tp);
    tg_dataset_free(ds);
}
END_TEST

/* Scale and per-channel normalize, f32 and f64, on a 3-channel dataset. */
START_TEST(test_transform_values) {
    enum { C = 3, H = 4, W = 5 };
    uint8_t px[2 * C * H * W];
    for (int i = 0; i < 2 * C * H * W; i++) px[i] = (uint8_t)(i * 37 % 256);
    int64_t lb[2] = {0, 1};
    tg_dataset *ds = tg_dataset_new(2, C, H, W, 2, px, lb);
    tg_tape *tp = tg_tape_new();
    tg_transform tf = tg_transform_defaults();
    tf.normalize = true;
    const double mean[C] = {0.49, 0.48, 0.45}, std[C] = {0.25, 0.24, 0.26};
    for (int c = 0; c < C; c++) {
        tf.mean[c] = mean[c];
        tf.std[c] = std[c];
    }
    for (int f64 = 0; f64 < 2; f64++) {
        tf.dtype = f64 ? TG_F64 : TG_F32;
        tg_loader *l = tg_loader_new(ds, 2, false, false, NULL, 0, &tf, NULL);
        tg_tensor *x, *y;
        ck_assert(tg_loader_next(l, tp, &x, &y));
        ck_assert_int_eq(tg_tensor_dtype(x), tf.dtype);
        for (int i = 0; i < 2 * C * H * W; i++) {
            int c = i / (H * W) % C;
            double want = (px[i] / 255.0 - mean[c]) / std[c];
            ck_assert_double_eq_tol(tg_tensor_get(x, i), want, f64 ? 1e-14 : 1e-6);
        }
        tg_loader_free(l);
        tg_tape_reset(tp);
    }
    /* Scale alone in f64: exactly pixel * scale. */
    tf = tg_transform_defaults();
    tf.dtype = TG_F64;
    tg_loader *l = tg_loader_new(ds, 2, false, false, NULL, 0, &tf, NULL);
    tg_tensor *x, *y;
    ck_assert(tg_loader_next(l, tp, &x, &y));
    for (int i = 0; i < 2 * C * H * W; i++)
        ck_assert_double_eq(tg_tensor_get(x, i), px[i] * (1.0 / 255.0));
    tg_loader_free(l);
    /* Normalize needs at most 4 channels. */
    uint8_t px5[5] = {0};
    int64_t lb5[1] = {0};
    tg_dataset *ds5 = tg_dataset_new(1, 5, 1, 1, 1, px5, lb5);
    tf.normalize = true;
    ck_assert_ptr_null(tg_loader_new(ds5, 1, false, false, NULL, 0, &tf, NULL));
    CK_HAS(tg_last_error(), "normalize takes at most 4 channels");
    tg_dataset_free(ds5);
    tg_tape_free(tp);
    tg_dataset_free(ds);
}
END_TEST

/* A 28x28 image padded by 2: 32x32 with the image at rows and columns 2..29, zeros around
 * (normalized like any zero pixel). */
START_TEST(test_transform_pad) {
    uint8_t px[28 * 28];
    for (int i = 0; i < 28 * 28; i++) px[i] = (uint8_t)(1 + i % 255);
    int64_t lb[1] = {0};
    tg_dataset *ds = tg_dataset_new(1, 1, 28, 28, 1, px, lb);
    tg_tape *tp = tg_tape_new();
    tg_transform tf = tg_transform_defaults();
    tf.pad = 2;
    tf.normalize = true;
    tf.mean[0] = 0.5;
    tf.std[0] = 0.5;
    tf.dtype = TG_F64;
    tg_loader *l = tg_loader_new(ds, 1, false, false, NULL, 0, &tf, NULL);
    tg_tensor *x, *y;
    ck_assert(tg_loader_next(l, tp, &x, &y));
    ck_assert_int_eq(tg_tensor_dim(x, 2), 32);
    ck_assert_int_eq(tg_tensor_dim(x, 3), 32);
    for (int r = 0; r < 32; r++) {
        for (int c = 0; c < 32; c++) {
            bool inside = r >= 2 && r < 30 && c >= 2 && c < 30;
            double v = inside ? px[(r - 2) * 28 + (c - 2)] : 0;
            ck_assert_double_eq_tol(tg_tensor_get(x, r * 32 + c), (v / 255.0 - 0.5) / 0.5,
                                    1e-14);
        }
    }
    ck_assert_double_eq_tol(tg_tensor_get(x, 0), -1.0, 1e-15);
    tg_loader_free(l);
    tg_tape_free(tp);
    tg_dataset_free(ds);
}
END_TEST

/* The (dy, dx) in 0..2k for which out (h x w) is the window at (dy, dx) of the image padded by
 * pad + k (pixel bytes, scale 1); false when there is none. */
static bool find_window(const tg_tensor *out, int64_t offset, const uint8_t *img, int h, int w,
                        int pad, int k, int *dy, int *dx) {
    int oh = h + 2 * pad, ow = w + 2 * pad;
    for (*dy = 0; *dy <= 2 * k; (*dy)++) {
        for (*dx = 0; *dx <= 2 * k; (*dx)++) {
            bool match = true;
            for (int r = 0; r < oh && match; r++) {
                for (int c = 0; c < ow && match; c++) {
                    int sr = r + *dy - k - pad, sc = c + *dx - k - pad;
                    double v = sr >= 0 && sr < h && sc >= 0 && sc < w ? img[sr * w + sc] : 0;
                    match = tg_tensor_get(out, offset + r * ow + c) == v;
                }
            }
            if (match) return true;
        }
    }
    return false;
}

/* Random crops keep the shape and are always a window of the padded image; over many draws
 * every offset from 0 to 2 * crop_pad appears in both directions. With pad as well, the crop
 * acts on the padded image. */
START_TEST(test_transform_crop) {
    enum { H = 6, W = 7, K = 3, COPIES = 300 };
    uint8_t px[H * W];
    for (int i = 0; i < H * W; i++) px[i] = (uint8_t)(10 + i); /* no zero inside the image */
    int64_t lb[1] = {0};
    tg_dataset *ds = tg_dataset_new(1, 1, H, W, 1, px, lb);
    int64_t *same = calloc(COPIES, sizeof *same); /* example 0, COPIES times */
    tg_tape *tp = tg_tape_new();
    tg_rng *rng = tg_rng_new(11);
    for (int pad = 0; pad <= 2; pad += 2) {
        tg_transform tf = unscaled();
        tf.crop_pad = K;
        tf.pad = pad;
        tg_loader *l = tg_loader_new(ds, COPIES, false, false, same, COPIES, &tf, rng);
        tg_tensor *x, *y;
        ck_assert(tg_loader_next(l, tp, &x, &y));
        ck_assert_int_eq(tg_tensor_dim(x, 0), COPIES);
        ck_assert_int_eq(tg_tensor_dim(x, 1), 1);
        ck_assert_int_eq(tg_tensor_dim(x, 2), H + 2 * pad);
        ck_assert_int_eq(tg_tensor_dim(x, 3), W + 2 * pad);
        int seen_dy[2 * K + 1] = {0}, seen_dx[2 * K + 1] = {0};
        for (int i = 0; i < COPIES; i++) {
            int dy, dx;
            ck_assert_msg(find_window(x, (int64_t)i * (H + 2 * pad) * (W + 2 * pad), px, H, W,
                                      pad, K, &dy, &dx),
                          "crop %d is no window of the padded image", i);
            seen_dy[dy]++;
            seen_dx[dx]++;
        }
        for (int o = 0; o <= 2 * K; o++) {
            ck_assert_int_gt(seen_dy[o], 0);
            ck_assert_int_gt(seen_dx[o], 0);
        }
        tg_loader_free(l);
        tg_tape_reset(tp);
    }
    tg_rng_free(rng);
    tg_tape_free(tp);
    free(same);
    tg_dataset_free(ds);
}
END_TEST

/* hflip gives the image or its mirror, each about half the time; with pad the mirror is of
 * the padded image. Same seed, same flips. */
START_TEST(test_transform_hflip) {
    enum { H = 3, W = 5, COPIES = 200 };
    uint8_t px[2 * H * W];
    for (int i = 0; i < 2 * H * W; i++) px[i] = (uint8_t)(1 + i);
    int64_t lb[1] = {0};
    tg_dataset *ds = tg_dataset_new(1, 2, H, W, 1, px, lb);
    int64_t *same = calloc(COPIES, sizeof *same);
    tg_tape *tp = tg_tape_new();
    tg_rng *rng = tg_rng_new(5);
    tg_transform tf = unscaled();
    tf.hflip = true;
    tf.pad = 1;
    tg_loader *l = tg_loader_new(ds, COPIES, false, false, same, COPIES, &tf, rng);
    tg_tensor *x, *y;
    ck_assert(tg_loader_next(l, tp, &x, &y));
    enum { OH = H + 2, OW = W + 2, PER = 2 * OH * OW };
    int flipped = 0;
    for (int i = 0; i < COPIES; i++) {
        bool is_plain = true, is_mirror = true;
        for (int c = 0; c < 2; c++) {
            for (int r = 0; r < OH; r++) {
                for (int q = 0; q < OW; q++) {
                    int sr = r - 1, sc = q - 1, mc = OW - 1 - q - 1;
                    double plain = sr >= 0 && sr < H && sc >= 0 && sc < W
                                       ? px[c * H * W + sr * W + sc] : 0;
                    double mirror = sr >= 0 && sr < H && mc >= 0 && mc < W
                                        ? px[c * H * W + sr * W + mc] : 0;
                    double got = tg_tensor_get(x, (int64_t)i * PER + (c * OH + r) * OW + q);
                    is_plain = is_plain && got == plain;
                    is_mirror = is_mirror && got == mirror;
                }
            }
        }
        ck_assert_msg(is_plain != is_mirror, "image %d is neither the original nor its mirror",
                      i);
        flipped += is_mirror;
    }
    ck_assert_int_gt(flipped, COPIES / 4);
    ck_assert_int_lt(flipped, 3 * COPIES / 4);
    /* Replaying the rng replays the flips. */
    tg_rng *again = tg_rng_new(5);
    tg_loader *l2 = tg_loader_new(ds, COPIES, false, false, same, COPIES, &tf, again);
    tg_tensor *x2, *y2;
    ck_assert(tg_loader_next(l2, tp, &x2, &y2));
    ck_assert_int_eq(memcmp(tg_tensor_data(x), tg_tensor_data(x2), COPIES * PER * sizeof(float)),
                     0);
    tg_loader_free(l2);
    tg_rng_free(again);
    tg_loader_free(l);
    tg_rng_free(rng);
    tg_tape_free(tp);
    free(same);
    tg_dataset_free(ds);
}
END_TEST

/* ---- one-hot with label smoothing -------------------------------------------------------- */

START_TEST(test_one_hot_smooth) {
    tg_tape *tp = tg_tape_new();
    int64_t lab[3] = {0, 2, 1}, shape[1] = {3};
    tg_tensor *labels = tg_tensor_from(tp, TG_I64, 1, shape, lab);
    for (int f64 = 0; f64 < 2; f64++) {
        tg_dtype dt = f64 ? TG_F64 : TG_F32;
        tg_tensor *t = tg_one_hot_smooth(tp, labels, 4, 0.1, dt);
        ck_assert_msg(t != NULL, "%s", tg_tape_error(tp));
        ck_assert_int_eq(tg_tensor_dtype(t), dt);
        ck_assert_int_eq(tg_tensor_dim(t, 0), 3);
        ck_assert_int_eq(tg_tensor_dim(t, 1), 4);
        double on = 1.0 - 0.1 + 0.1 / 4, off = 0.1 / 4;
        for (int i = 0; i < 3; i++) {
            double row = 0.0;
            for (int c = 0; c < 4; c++) {
                double want = c == lab[i] ? on : off;
                double got = tg_tensor_get(t, i * 4 + c);
                if (f64) ck_assert_double_eq(got, want);
                else ck_assert_double_eq(got, (double)(float)want);
                row += got;
            }
            ck_assert_double_eq_tol(row, 1.0, 1e-6);
        }
    }
    /* eps 0 is the plain one-hot; eps 1 is uniform. */
    tg_tensor *plain = tg_one_hot_smooth(tp, labels, 3, 0.0, TG_F64);
    tg_tensor *uniform = tg_one_hot_smooth(tp, labels, 3, 1.0, TG_F64);
    for (int i = 0; i < 9; i++) {
        ck_assert_double_eq(tg_tensor_get(plain, i), i % 3 == lab[i / 3] ? 1.0 : 0.0);
        ck_assert_double_eq(tg_tensor_get(uniform, i), 1.0 / 3.0);
    }
    ck_assert_ptr_null(tg_tape_error(tp));
    /* Errors. */
    ck_assert_ptr_null(tg_one_hot_smooth(tp, labels, 2, 0.1, TG_F32));
    CK_HAS(tg_tape_error(tp), "one_hot_smooth: label 2 at position 1 is outside 0..1");
    tg_tape_reset(tp);
    labels = tg_tensor_from(tp, TG_I64, 1, shape, lab);
    ck_assert_ptr_null(tg_one_hot_smooth(tp, labels, 3, -0.1, TG_F32));
    CK_HAS(tg_tape_error(tp), "and eps -0.1");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_one_hot_smooth(tp, labels, 3, NAN, TG_F32));
    CK_HAS(tg_tape_error(tp), "and eps nan");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_one_hot_smooth(tp, labels, 3, 0.1, TG_I64));
    CK_HAS(tg_tape_error(tp), "3 classes, i64 and eps 0.1");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_one_hot_smooth(tp, labels, 0, 0.1, TG_F32));
    CK_HAS(tg_tape_error(tp), "0 classes");
    tg_tape_clear_error(tp);
    tg_tensor *floats = tg_zeros(tp, TG_F32, 1, shape);
    ck_assert_ptr_null(tg_one_hot_smooth(tp, floats, 3, 0.1, TG_F32));
    CK_HAS(tg_tape_error(tp), "got labels f32[3]");
    tg_tape_clear_error(tp);
    ck_assert_ptr_null(tg_one_hot_smooth(tp, NULL, 3, 0.1, TG_F32));
    CK_HAS(tg_tape_error(tp), "one_hot_smooth: labels is NULL");
    tg_tape_reset(tp); /* labels now belong to an earlier step */
    ck_assert_ptr_null(tg_one_hot_smooth(tp, labels, 3, 0.1, TG_F32));
    CK_HAS(tg_tape_error(tp), "before tg_tape_reset");
    ck_assert_ptr_null(tg_one_hot_smooth(NULL, labels, 3, 0.1, TG_F32));
    CK_HAS(tg_last_error(), "one_hot_smooth: tape is NULL");
    /* Persistent labels work on any tape. */
    tg_tape_reset(tp);
    tg_tensor *kept = tg_tensor_from(NULL, TG_I64, 1, shape, lab);
    tg_tensor *t = tg_one_hot_smooth(tp, kept, 3, 0.3, TG_F64);
    ck_assert_msg(t != NULL, "%s", tg_tape_error(tp));
    ck_assert_double_eq_tol(tg_tensor_get(t, 0), 0.8, 1e-15);
    ck_assert_double_eq_tol(tg_tensor_get(t, 1), 0.1, 1e-15);
    tg_tensor_free(kept);
    tg_tape_free(tp);
}
END_TEST

static Suite *data_suite(void) {
    Suite *s = suite_create("data");
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(files, 120);
    tcase_add_test(files, test_idx_roundtrip);
    tcase_add_test(files, test_idx_every_truncation);
    tcase_add_test(files, test_idx_every_gzip_cut);
    tcase_add_test(files, test_idx_corrupt_gzip);
    tcase_add_test(files, test_idx_bad_headers);
    tcase_add_test(files, test_idx_huge_header);
    tcase_add_test(files, test_idx_trailing_and_missing);
    tcase_add_test(files, test_mnist_bundled);
    tcase_add_test(files, test_mnist_generated);
    tcase_add_test(files, test_cifar);
    suite_add_tcase(s, files);
    TCase *loader = tcase_create("loader");
    tcase_set_timeout(loader, 120);
    tcase_add_test(loader, test_dataset_new);
    tcase_add_test(loader, test_loader_batches);
    tcase_add_test(loader, test_loader_shuffle);
    tcase_add_test(loader, test_loader_indices);
    tcase_add_test(loader, test_transform_values);
    tcase_add_test(loader, test_transform_pad);
    tcase_add_test(loader, test_transform_crop);
    tcase_add_test(loader, test_transform_hflip);
    tcase_add_test(loader, test_one_hot_smooth);
    suite_add_tcase(s, loader);
    return s;
}

int main(void) {
    return run_suite(data_suite(), CK_NORMAL);
}
