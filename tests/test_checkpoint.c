/* Tests of model files and training checkpoints (suite `optim`): bitwise round trips of f32,
 * f64 and i64 entries; loading a file that does not match lists every mismatch and changes
 * nothing; corrupt files (every truncation, bad header lengths, malformed JSON, bad dtypes,
 * shapes and offsets, mutated bytes) are errors naming the file, never crashes; saving is
 * atomic (a write that fails midway under RLIMIT_FSIZE, or a rename that fails, leaves the old
 * file intact and no temporary file behind); and a training run resumed from a checkpoint
 * (Linear + dropout, Adam, a step schedule, the RNG) is bitwise identical to the run that
 * never stopped. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "tapegrad.h"
#include "testing.h"

/* ---- files and folders -------------------------------------------------------------------- */

static char dir[256]; /* a fresh folder per test, removed by teardown */

static void setup(void) {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/tg_checkpoint_XXXXXX", tmp);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Removes path and, for a folder, what it holds (one level of subfolders is enough here). */
static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char sub[512];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static void teardown(void) { remove_tree(dir); }

static const char *in_dir(char *buf, const char *name) {
    snprintf(buf, 512, "%s/%s", dir, name);
    return buf;
}

/* The number of entries of the test folder whose name contains `part`. */
static int count_files(const char *part) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static unsigned char *read_bytes(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    *size = (size_t)ftell(fp);
    rewind(fp);
    unsigned char *b = malloc(*size ? *size : 1);
    ck_assert_uint_eq(fread(b, 1, *size, fp), *size);
    fclose(fp);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(data, 1, size, fp), size);
    fclose(fp);
}

/* A safetensors file from its parts: the 8-byte length (header_len, or strlen(header) when
 * it is UINT64_MAX), the header text and data bytes. */
static void write_st(const char *path, uint64_t header_len, const char *header,
                     const void *data, size_t data_size) {
    size_t h = strlen(header);
    if (header_len == UINT64_MAX) header_len = h;
    unsigned char *b = malloc(8 + h + data_size);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(header_len >> (8 * i));
    memcpy(b + 8, header, h);
    if (data_size) memcpy(b + 8 + h, data, data_size);
    write_bytes(path, b, 8 + h + data_size);
    free(b);
}

/* ---- models ------------------------------------------------------------------------------- */

/* A model with every kind of entry: f32 Linear weights, batch norm with its i64
 * num_batches_tracked, an f64 matrix, an f64 scalar (shape []), an i64 buffer and an empty
 * f32 tensor, all filled from seed. */
static tg_model *mixed_model(uint64_t seed) {
    tg_rng *rng = tg_rng_new(seed);
    tg_model *m = tg_model_new("Mixed");
    ck_assert_ptr_nonnull(tg_linear_new(m, "fc", 4, 3, true, rng));
    tg_layer *bn = tg_batch_norm1d_new(m, "bn", 3, 1e-5, 0.1, true, true);
    ck_assert_ptr_nonnull(bn);
    tg_tensor *rm = tg_layer_get(bn, "running_mean");
    for (int i = 0; i < 3; i++) ((float *)tg_tensor_data_mut(rm))[i] = (float)tg_rng_normal(rng);
    *(int64_t *)tg_tensor_data_mut(tg_layer_get(bn, "num_batches_tracked")) =
        (int64_t)tg_rng_below(rng, 1000) + ((int64_t)1 << 40);
    ck_assert_ptr_nonnull(tg_model_add_param(
        m, "proj.weight", tg_randn(NULL, rng, TG_F64, 2, (int64_t[]){2, 5}, 0.0, 1.0)));
    ck_assert_ptr_nonnull(
        tg_model_add_param(m, "temperature", tg_randn(NULL, rng, TG_F64, 0, NULL, 1.0, 0.1)));
    tg_tensor *counts = tg_zeros(NULL, TG_I64, 1, (int64_t[]){4});
    for (int i = 0; i < 4; i++)
        ((int64_t *)tg_tensor_data_mut(counts))[i] =
            (int64_t)(tg_rng_u64(rng) >> 2) * (i % 2 ? -1 : 1);
    ck_assert_ptr_nonnull(tg_model_add_buffer(m, "counts", counts));
    ck_assert_ptr_nonnull(tg_model_add_buffer(m, "empty", tg_zeros(NULL, TG_F32, 2,
                                                                     (int64_t[]){0, 3})));
    tg_rng_free(rng);
    return m;
}

/* Every entry of a and b is bitwise equal (same names, dtypes, shapes and bytes). */
static void check_same_model(const tg_model *a, const tg_model *b) {
    ck_assert_int_eq(tg_model_num_entries(a), tg_model_num_entries(b));
    for (int i = 0; i < tg_model_num_entries(a); i++) {
        tg_model_entry x = tg_model_entry_at(a, i), y = tg_model_entry_at(b, i);
        ck_assert_str_eq(x.name, y.name);
        ck_assert_int_eq(tg_tensor_dtype(x.tensor), tg_tensor_dtype(y.tensor));
        ck_assert_int_eq(tg_tensor_numel(x.tensor), tg_tensor_numel(y.tensor));
        size_t bytes = (size_t)tg_tensor_numel(x.tensor) * tg_dtype_size(tg_tensor_dtype(x.tensor));
        ck_assert_msg(bytes == 0 || memcmp(tg_tensor_data(x.tensor), tg_tensor_data(y.tensor),
                                           bytes) == 0, "%s differs", x.name);
    }
}

/* The bytes of every entry of m, concatenated, and the sum of their versions. */
static unsigned char *snapshot(const tg_model *m, size_t *size, uint64_t *versions) {
    *size = 0;
    *versions = 0;
    for (int i = 0; i < tg_model_num_entries(m); i++) {
        tg_tensor *t = tg_model_entry_at(m, i).tensor;
        *size += (size_t)tg_tensor_numel(t) * tg_dtype_size(tg_tensor_dtype(t));
        *versions += tg_tensor_version(t);
    }
    unsigned char *b = malloc(*size ? *size : 1), *at = b;
    for (int i = 0; i < tg_model_num_entries(m); i++) {
        tg_tensor *t = tg_model_entry_at(m, i).tensor;
        size_t n = (size_t)tg_tensor_numel(t) * tg_dtype_size(tg_tensor_dtype(t));
        if (n) memcpy(at, tg_tensor_data(t), n);
        at += n;
    }
    return b;
}

/* ---- model files ---------------------------------------------------------------------------- */

START_TEST(test_model_round_trip) {
    char path[512];
    in_dir(path, "mixed.safetensors");
    tg_model *a = mixed_model(1), *b = mixed_model(2);
    ck_assert_msg(tg_save_model(a, path) == 0, "%s", tg_last_error());
    ck_assert_ptr_null(tg_last_error());
    size_t before_size;
    uint64_t before_versions;
    free(snapshot(b, &before_size, &before_versions));
    ck_assert_msg(tg_load_model(b, path) == 0, "%s", tg_last_error());
    check_same_model(a, b);
    /* Loading counts as a modification of every entry. */
    size_t after_size;
    uint64_t after_versions;
    free(snapshot(b, &after_size, &after_versions));
    ck_assert_uint_eq(after_versions, before_versions + (uint64_t)tg_model_num_entries(b));
    /* The header: registration order, the dtypes' safetensors names, PyTorch's metadata, a
     * length padded to 8 bytes. */
    size_t n;
    unsigned char *bytes = read_bytes(path, &n);
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | bytes[i];
    ck_assert_uint_eq(header % 8, 0);
    char *text = strndup((const char *)bytes + 8, (size_t)header);
    ck_assert_ptr_nonnull(strstr(text, "\"__metadata__\":{\"format\":\"pt\"}"));
    ck_assert_ptr_nonnull(
        strstr(text, "\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[]"));
    ck_assert_ptr_nonnull(strstr(text, "\"proj.weight\":{\"dtype\":\"F64\",\"shape\":[2,5]"));
    ck_assert_ptr_nonnull(strstr(text, "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,3]"));
    ck_assert(strstr(text, "fc.weight") < strstr(text, "fc.bias"));
    ck_assert(strstr(text, "fc.bias") < strstr(text, "bn.weight"));
    free(text);
    free(bytes);
    /* Saving over an existing file replaces it. */
    tg_model *c = mixed_model(3);
    ck_assert_int_eq(tg_save_model(c, path), 0);
    ck_assert_int_eq(tg_load_model(b, path), 0);
    check_same_model(b, c);
    ck_assert_int_eq(count_files(".tmp"), 0);
    tg_model_free(a);
    tg_model_free(b);
    tg_model_free(c);
}
END_TEST

START_TEST(test_model_names_with_escapes) {
    /* Names are JSON strings: quotes, backslashes, control characters and UTF-8 survive. */
    char path[512];
    in_dir(path, "names.safetensors");
    const char *names[] = {"a\"b", "back\\slash", "tab\there", "caf\xc3\xa9.weight", "x/y"};
    tg_model *m = tg_model_new(NULL), *m2 = tg_model_new(NULL);
    for (int i = 0; i < 5; i++) {
        ck_assert_ptr_nonnull(tg_model_add_param(m, names[i], tg_full(NULL, TG_F32, 1,
                                                                      (int64_t[]){2}, i + 0.5)));
        ck_assert_ptr_nonnull(tg_model_add_param(m2, names[i], tg_zeros(NULL, TG_F32, 1,
                                                                        (int64_t[]){2})));
    }
    ck_assert_int_eq(tg_save_model(m, path), 0);
    ck_assert_msg(tg_load_model(m2, path) == 0, "%s", tg_last_error());
    check_same_model(m, m2);
    tg_model_free(m);
    tg_model_free(m2);
    /* The reader decodes \u escapes, surrogate pairs included. */
    float v[4] = {1, 2, 3, 4};
    write_st(path, UINT64_MAX,
             "{\"\\u00e9\\ud83d\\ude00\\/\":{\"dtype\":\"F32\",\"shape\":[4],"
             "\"data_offsets\":[0,16]}}",
             v, sizeof v);
    tg_model *e = tg_model_new(NULL);
    tg_model_add_param(e, "\xc3\xa9\xf0\x9f\x98\x80/", tg_zeros(NULL, TG_F32, 1, (int64_t[]){4}));
    ck_assert_msg(tg_load_model(e, path) == 0, "%s", tg_last_error());
    ck_assert_double_eq(tg_tensor_get(tg_model_entry_at(e, 0).tensor, 3), 4.0);
    tg_model_free(e);
}
END_TEST

START_TEST(test_mismatches_listed) {
    char path[512];
    in_dir(path, "a.safetensors");
    tg_model *a = mixed_model(1);
    ck_assert_int_eq(tg_save_model(a, path), 0);
    /* b: fc.weight renamed, fc.bias reshaped, proj.weight retyped, temperature both, counts
     * dropped, an extra entry added. */
    tg_rng *rng = tg_rng_new(9);
    tg_model *b = tg_model_new("B");
    tg_model_add_param(b, "fc.w", tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){3, 4}, 0, 1));
    tg_model_add_param(b, "fc.bias", tg_randn(NULL, rng, TG_F32, 1, (int64_t[]){4}, 0, 1));
    tg_layer *bn = tg_batch_norm1d_new(b, "bn", 3, 1e-5, 0.1, true, true);
    ck_assert_ptr_nonnull(bn);
    tg_model_add_param(b, "proj.weight", tg_randn(NULL, rng, TG_F32, 2, (int64_t[]){2, 5}, 0, 1));
    tg_model_add_param(b, "temperature", tg_randn(NULL, rng, TG_F32, 1, (int64_t[]){1}, 0, 1));
    tg_model_add_buffer(b, "empty", tg_zeros(NULL, TG_F32, 2, (int64_t[]){0, 3}));
    tg_model_add_buffer(b, "extra", tg_zeros(NULL, TG_I64, 1, (int64_t[]){2}));
    size_t size;
    uint64_t versions;
    unsigned char *before = snapshot(b, &size, &versions);
    ck_assert_int_eq(tg_load_model(b, path), -1);
    const char *msg = tg_last_error();
    CK_HAS(msg, "load_model");
    CK_HAS(msg, path);
    CK_HAS(msg, "8 mismatches, nothing was loaded");
    CK_HAS(msg, "missing \"fc.w\" (f32 [3, 4])");
    CK_HAS(msg, "unexpected \"fc.weight\" (f32 [3, 4])");
    CK_HAS(msg, "shape of \"fc.bias\": file [3], expected [4]");
    CK_HAS(msg, "dtype of \"proj.weight\": file f64, expected f32");
    CK_HAS(msg, "dtype of \"temperature\": file f64, expected f32");
    CK_HAS(msg, "shape of \"temperature\": file [], expected [1]");
    CK_HAS(msg, "missing \"extra\" (i64 [2])");
    CK_HAS(msg, "unexpected \"counts\" (i64 [4])");
    /* Nothing changed: values and version counters. */
    size_t size2;
    uint64_t versions2;
    unsigned char *after = snapshot(b, &size2, &versions2);
    ck_assert_uint_eq(size, size2);
    ck_assert_uint_eq(versions, versions2);
    ck_assert_mem_eq(before, after, size);
    free(before);
    free(after);
    tg_model_free(b);
    tg_model_free(a);
    tg_rng_free(rng);
}
END_TEST

START_TEST(test_many_mismatches_fit) {
    /* A whole different architecture: each of the 200 mismatches is listed, or the message
     * says how many more there are. */
    char path[512];
    in_dir(path, "many.safetensors");
    tg_model *a = tg_model_new(NULL), *b = tg_model_new(NULL);
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "layer%d.weight", i);
        tg_model_add_param(a, name, tg_zeros(NULL, TG_F32, 1, (int64_t[]){1}));
        snprintf(name, sizeof name, "block%d.weight", i);
        tg_model_add_param(b, name, tg_zeros(NULL, TG_F32, 1, (int64_t[]){1}));
    }
    ck_assert_int_eq(tg_save_model(a, path), 0);
    ck_assert_int_eq(tg_load_model(b, path), -1);
    const char *msg = tg_last_error();
    CK_HAS(msg, "200 mismatches");
    CK_HAS(msg, "missing \"block0.weight\"");
    int listed = 0;
    for (const char *p = msg; (p = strstr(p, "issing \"")); p++) listed++;
    for (const char *p = msg; (p = strstr(p, "nexpected \"")); p++) listed++;
    const char *more = strstr(msg, "; and ");
    int dropped = more ? atoi(more + 6) : 0;
    ck_assert_int_gt(listed, 20);
    ck_assert_int_eq(listed + dropped, 200);
    tg_model_free(a);
    tg_model_free(b);
}
END_TEST

/* ---- corrupt files ------------------------------------------------------------------------ */

/* A small model of one f32 [2] parameter "a" (values 0, 0). */
static tg_model *model_a(void) {
    tg_model *m = tg_model_new(NULL);
    ck_assert_ptr_nonnull(tg_model_add_param(m, "a", tg_zeros(NULL, TG_F32, 1, (int64_t[]){2})));
    return m;
}

START_TEST(test_every_truncation) {
    char path[512], cut[512];
    in_dir(path, "full.safetensors");
    in_dir(cut, "cut.safetensors");
    tg_model *a = mixed_model(4), *b = mixed_model(5);
    ck_assert_int_eq(tg_save_model(a, path), 0);
    size_t n;
    unsigned char *bytes = read_bytes(path, &n);
    size_t size;
    uint64_t versions;
    unsigned char *before = snapshot(b, &size, &versions);
    for (size_t len = 0; len < n; len++) {
        write_bytes(cut, bytes, len);
        ck_assert_msg(tg_load_model(b, cut) == -1, "a file cut at %zu of %zu bytes loaded", len,
                      n);
        CK_HAS(tg_last_error(), cut);
    }
    unsigned char *after = snapshot(b, &size, &versions);
    ck_assert_mem_eq(before, after, size);
    /* One byte too many is an error too: the tensors must cover the data exactly. */
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, bytes, n);
    longer[n] = 0;
    write_bytes(cut, longer, n + 1);
    ck_assert_int_eq(tg_load_model(b, cut), -1);
    CK_HAS(tg_last_error(), "but the tensors cover");
    write_bytes(cut, bytes, n);
    ck_assert_int_eq(tg_load_model(b, cut), 0);
    check_same_model(a, b);
    free(longer);
    free(before);
    free(after);
    free(bytes);
    tg_model_free(a);
    tg_model_free(b);
}
END_TEST

typedef struct bad_header {
    uint64_t length; /* UINT64_MAX: the header's own length */
    const char *header;
    size_t data_bytes; /* zeros after the header */
    const char *expect;
} bad_header;

#define A_OK(offsets) "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" offsets "}}"

static const bad_header bad_headers[] = {
    {(uint64_t)1 << 63, "{}", 0, "header length 9223372036854775808 exceeds the 2 bytes"},
    {0, "", 8, "the smallest header, {}, has 2"},
    {1, "{", 8, "the smallest header"},
    {3, "{}", 0, "the header length 3 exceeds the 2 bytes after it"},
    {UINT64_MAX, "[]", 0, "expected '{' opening the header"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8,
     "the header ends inside an object"},
    {UINT64_MAX, A_OK("[0,8]") "x", 8, "unexpected bytes after the header's closing '}'"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
     "\"a\" has dtype \"F16\"; only F32, F64 and I64 are supported"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
     "expected a non-negative integer (the shape)"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8,
     "fraction or exponent"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8,
     "leading zero"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
                 "\"data_offsets\":[0,8]}}", 8, "too large for int64"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],"
                 "\"data_offsets\":[0,8]}}", 8, "the shape has more than 8 elements"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                 "\"data_offsets\":[0,8]}}", 8, "too many elements"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 16,
     "data_offsets has more than 2 elements"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8,
     "data_offsets has 1 elements, expected 2"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
     "unknown field \"x\" in the entry of \"a\""},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],"
                 "\"data_offsets\":[0,8]}}", 8, "field \"dtype\" twice"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "lacks \"data_offsets\""},
    {UINT64_MAX, "{\"a\":{}}", 0, "the entry of \"a\" is empty"},
    {UINT64_MAX, "{\"a\":[]}", 0, "expected '{' opening a tensor's entry"},
    {UINT64_MAX, "{\"a\" {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "expected ':' after a tensor name"},
    {UINT64_MAX, "{a:{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "expected a string (a tensor name)"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8,
     "expected a string (a tensor name)"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}", 8,
     "expected a non-negative integer"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]} "
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
     "expected ',' or '}' after a member"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
     "two tensors are named \"a\""},
    {UINT64_MAX, "{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "a tensor with an empty name"},
    {UINT64_MAX, "{\"a\\u0000\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "\\u0000 inside a string"},
    {UINT64_MAX, "{\"a\\q\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "bad escape sequence"},
    {UINT64_MAX, "{\"a\\ud800\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "bad escape sequence"},
    {UINT64_MAX, "{\"a\\udc00x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "bad escape sequence"},
    {UINT64_MAX, "{\"a\\u12\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "bad escape sequence"},
    {UINT64_MAX, "{\"a\n\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "control character 0x0a"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8,
     "the header ends inside an object"},
    {UINT64_MAX, "{\"abc", 0, "a string (a tensor name) is not closed"},
    {UINT64_MAX, "{\"abc\\", 0, "is not closed"},
    {UINT64_MAX, "{\"__metadata__\":{\"format\":1}," "\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                 "\"data_offsets\":[0,8]}}", 8, "metadata values are strings"},
    {UINT64_MAX, "{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0,
     "metadata key \"k\" twice"},
    {UINT64_MAX, "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ twice"},
    {UINT64_MAX, A_OK("[0,16]"), 16, "needs 8 bytes but its data_offsets [0, 16] span a "
                                    "different size"},
    {UINT64_MAX, A_OK("[8,0]"), 8, "run backwards"},
    {UINT64_MAX, A_OK("[8,16]"), 8, "reach past the end of the data section (8 bytes)"},
    {UINT64_MAX, A_OK("[18446744073709551608,18446744073709551616]"), 8, "too large for int64"},
    {UINT64_MAX, A_OK("[9223372036854775800,9223372036854775807]"), 8, "span a different size"},
    {UINT64_MAX, A_OK("[4,12]"), 12, "bytes [0, 4) of the data section belong to no tensor"},
    {UINT64_MAX, A_OK("[0,8]"), 12, "the data section has 12 bytes but the tensors cover 8"},
    {UINT64_MAX, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
     "\"b\" at data_offsets [4, 12] overlaps \"a\""},
    {UINT64_MAX, "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 20,
     "bytes [8, 12) of the data section belong to no tensor"},
};

START_TEST(test_bad_headers) {
    char path[512];
    in_dir(path, "bad.safetensors");
    tg_model *m = model_a();
    unsigned char zeros[32] = {0};
    for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
        const bad_header *c = &bad_headers[i];
        write_st(path, c->length, c->header, zeros, c->data_bytes);
        ck_assert_msg(tg_load_model(m, path) == -1, "case %zu loaded", i);
        const char *msg = tg_last_error();
        ck_assert_msg(msg && strstr(msg, path) && strstr(msg, c->expect),
                      "case %zu: expected \"%s\" in: %s", i, c->expect, msg ? msg : "(none)");
    }
    /* A NUL byte padding the header (the library pads with spaces). */
    const char nul_padded[] = A_OK("[0,8]") "\0";
    unsigned char b[8 + sizeof nul_padded + 8] = {sizeof nul_padded};
    memcpy(b + 8, nul_padded, sizeof nul_padded);
    write_bytes(path, b, sizeof b);
    ck_assert_int_eq(tg_load_model(m, path), -1);
    CK_HAS(tg_last_error(), "unexpected bytes after the header's closing '}'");
    /* The valid neighbours of those cases load: whitespace anywhere JSON allows it, padding
     * spaces after the header, members in any order, metadata anywhere. */
    const char *good[] = {
        A_OK("[0,8]"),
        " \t\r\n{ \"a\" : { \"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 8 ] , \"dtype\" : "
        "\"F32\" } }      ",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":"
        "{\"format\":\"pt\",\"note\":\"\\\"quoted\\\"\"}}",
        "{\"__metadata__\":{},\"a\":{\"data_offsets\":[0,8],\"dtype\":\"F32\",\"shape\":[2]}}",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        float v[2] = {1.5f, (float)i};
        write_st(path, UINT64_MAX, good[i], v, sizeof v);
        ck_assert_msg(tg_load_model(m, path) == 0, "good case %zu: %s", i, tg_last_error());
        ck_assert_double_eq(tg_tensor_get(tg_model_entry_at(m, 0).tensor, 1), (double)i);
    }
    /* Not a file, no file. */
    ck_assert_int_eq(tg_load_model(m, dir), -1);
    CK_HAS(tg_last_error(), "not a regular file");
    char missing[512];
    ck_assert_int_eq(tg_load_model(m, in_dir(missing, "missing.safetensors")), -1);
    CK_HAS(tg_last_error(), "cannot open: No such file or directory");
    /* An empty file of tensors is a valid file: for model_a it is one mismatch. */
    write_st(path, UINT64_MAX, "{}", NULL, 0);
    ck_assert_int_eq(tg_load_model(m, path), -1);
    CK_HAS(tg_last_error(), "1 mismatch, nothing was loaded: missing \"a\" (f32 [2])");
    tg_model *empty = tg_model_new(NULL);
    ck_assert_int_eq(tg_load_model(empty, path), 0);
    tg_model_free(empty);
    tg_model_free(m);
}
END_TEST

START_TEST(test_mutated_bytes) {
    /* Every byte of the header and length replaced by each of a few troublesome values: the
     * load succeeds or fails with a message, and never reads out of bounds (ASan watches). */
    char path[512], bad[512];
    in_dir(path, "m.safetensors");
    in_dir(bad, "mutated.safetensors");
    tg_model *a = mixed_model(6), *b = mixed_model(7);
    ck_assert_int_eq(tg_save_model(a, path), 0);
    size_t n;
    unsigned char *bytes = read_bytes(path, &n);
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | bytes[i];
    const unsigned char values[] = {0x00, 0xff, '"', '\\', '{', '}', '[', ']', ',', ':', '9', ' '};
    int loaded = 0, failed = 0;
    for (size_t pos = 0; pos < 8 + header; pos++) {
        for (size_t v = 0; v < sizeof values; v++) {
            if (bytes[pos] == values[v]) continue;
            unsigned char saved = bytes[pos];
            bytes[pos] = values[v];
            write_bytes(bad, bytes, n);
            bytes[pos] = saved;
            if (tg_load_model(b, bad) == 0) {
                loaded++;
            } else {
                failed++;
                CK_HAS(tg_last_error(), bad);
            }
        }
    }
    ck_assert_int_gt(failed, 0);
    ck_assert_int_gt(loaded, 0); /* e.g. a space for a space-equivalent, a changed digit */
    free(bytes);
    tg_model_free(a);
    tg_model_free(b);
}
END_TEST

/* ---- atomic saves ------------------------------------------------------------------------- */

START_TEST(test_atomic_failed_write) {
    /* The file size limit makes the write of the temporary file fail midway (EFBIG): the old
     * file stays as it was and the temporary file is removed. */
    char path[512];
    in_dir(path, "model.safetensors");
    tg_model *a = tg_model_new(NULL), *b = tg_model_new(NULL);
    tg_rng *rng = tg_rng_new(11);
    tg_model_add_param(a, "w", tg_randn(NULL, rng, TG_F64, 1, (int64_t[]){4096}, 0, 1));
    tg_model_add_param(b, "w", tg_randn(NULL, rng, TG_F64, 1, (int64_t[]){4096}, 0, 1));
    ck_assert_int_eq(tg_save_model(a, path), 0);
    size_t n;
    unsigned char *old = read_bytes(path, &n);
    ck_assert_uint_gt(n, 32768);

    struct rlimit saved_limit, limit;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved_limit), 0);
    limit = saved_limit;
    limit.rlim_cur = 16384; /* less than the file: the write stops halfway */
    void (*saved_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limit), 0);
    int rc = tg_save_model(b, path);
    char msg[4096];
    snprintf(msg, sizeof msg, "%s", tg_last_error() ? tg_last_error() : "(none)");
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved_limit), 0);
    signal(SIGXFSZ, saved_handler);

    ck_assert_int_eq(rc, -1);
    CK_HAS(msg, "writing failed: File too large (the file is unchanged)");
    CK_HAS(msg, path);
    size_t n2;
    unsigned char *now = read_bytes(path, &n2);
    ck_assert_uint_eq(n, n2);
    ck_assert_mem_eq(old, now, n);
    ck_assert_int_eq(count_files(".tmp"), 0);
    /* And the old file still loads as a. */
    ck_assert_int_eq(tg_load_model(b, path), 0);
    check_same_model(a, b);
    free(old);
    free(now);
    tg_model_free(a);
    tg_model_free(b);
    tg_rng_free(rng);
}
END_TEST

START_TEST(test_atomic_failed_rename) {
    /* The target is a folder that is not empty: the temporary file is written and synced,
     * then rename fails; the folder and its contents stay, the temporary file goes. */
    char target[512], inside[512];
    in_dir(target, "occupied");
    ck_assert_int_eq(mkdir(target, 0755), 0);
    in_dir(inside, "occupied/keep.txt");
    write_bytes(inside, "keep", 4);
    tg_model *m = model_a();
    ck_assert_int_eq(tg_save_model(m, target), -1);
    CK_HAS(tg_last_error(), "renaming the temporary file over failed");
    CK_HAS(tg_last_error(), target);
    ck_assert_int_eq(count_files(".tmp"), 0);
    size_t n;
    unsigned char *b = read_bytes(inside, &n);
    ck_assert_mem_eq(b, "keep", 4);
    free(b);
    /* A folder that does not exist: no temporary file can be made. */
    char nowhere[512];
    in_dir(nowhere, "no/such/folder/m.safetensors");
    ck_assert_int_eq(tg_save_model(m, nowhere), -1);
    CK_HAS(tg_last_error(), "cannot create a temporary file beside it: No such file");
    tg_model_free(m);
}
END_TEST

START_TEST(test_saved_file_mode) {
    /* The file is created like any other (0666 minus the umask), not 0600 like mkstemp's. */
    char path[512];
    in_dir(path, "mode.safetensors");
    mode_t mask = umask(022);
    tg_model *m = model_a();
    ck_assert_int_eq(tg_save_model(m, path), 0);
    umask(mask);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    /* A relative path (folder ".") works too. */
    char cwd[1024];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(dir), 0);
    ck_assert_int_eq(tg_save_model(m, "relative.safetensors"), 0);
    ck_assert_int_eq(tg_load_model(m, "relative.safetensors"), 0);
    ck_assert_int_eq(chdir(cwd), 0);
    tg_model_free(m);
}
END_TEST

/* ---- checkpoints -------------------------------------------------------------------------- */

enum { FEATURES = 6, HIDDEN = 8, CLASSES = 3, SAMPLES = 32, BATCH = 8 };

/* A run's objects: Linear -> ReLU -> Dropout -> Linear, Adam over all parameters, StepLR, and
 * the RNG that drives both the batches and the dropout masks. */
typedef struct run {
    tg_rng *rng;
    tg_model *m;
    tg_layer *fc1, *drop, *fc2;
    tg_optim *o;
    tg_sched *s;
    tg_tape *tp;
    tg_tensor *x, *y; /* the data set: [SAMPLES, FEATURES] f32, [SAMPLES] i64 */
} run;

static void run_init(run *r, uint64_t seed) {
    r->rng = tg_rng_new(seed);
    tg_rng *init = tg_rng_new(seed + 1000);
    r->m = tg_model_new("Net");
    r->fc1 = tg_linear_new(r->m, "fc1", FEATURES, HIDDEN, true, init);
    r->drop = tg_dropout_new(r->m, "drop", 0.25, r->rng);
    r->fc2 = tg_linear_new(r->m, "fc2", HIDDEN, CLASSES, true, init);
    ck_assert(r->fc1 && r->drop && r->fc2);
    tg_optim_opts opts = tg_optim_defaults(TG_OPTIM_ADAM);
    opts.lr = 0.05;
    opts.weight_decay = 1e-3;
    r->o = tg_optim_new(TG_OPTIM_ADAM, &opts);
    ck_assert_ptr_nonnull(r->o);
    ck_assert_int_ge(tg_optim_add_model(r->o, r->m, NULL, NULL, false, NULL), 0);
    r->s = tg_sched_step_new(r->o, 7, 0.5);
    ck_assert_ptr_nonnull(r->s);
    r->tp = tg_tape_new();
    /* The same data for every run. */
    tg_rng *data = tg_rng_new(77);
    r->x = tg_randn(NULL, data, TG_F32, 2, (int64_t[]){SAMPLES, FEATURES}, 0.0, 1.0);
    int64_t labels[SAMPLES];
    for (int i = 0; i < SAMPLES; i++) labels[i] = (int64_t)tg_rng_below(data, CLASSES);
    r->y = tg_tensor_from(NULL, TG_I64, 1, (int64_t[]){SAMPLES}, labels);
    tg_rng_free(data);
    tg_rng_free(init);
}

static void run_free(run *r) {
    tg_sched_free(r->s);
    tg_optim_free(r->o);
    tg_model_free(r->m);
    tg_rng_free(r->rng);
    tg_tape_free(r->tp);
    tg_tensor_free(r->x);
    tg_tensor_free(r->y);
}

/* One training step: a batch drawn with the run's RNG, forward with dropout, backward, Adam,
 * the schedule. */
static void train_step(run *r) {
    tg_tape_reset(r->tp);
    int64_t idx[BATCH];
    for (int i = 0; i < BATCH; i++) idx[i] = (int64_t)tg_rng_below(r->rng, SAMPLES);
    tg_tensor *pick = tg_tensor_from(r->tp, TG_I64, 1, (int64_t[]){BATCH}, idx);
    tg_tensor *xb = tg_index_select(r->tp, r->x, 0, pick);
    tg_tensor *yb = tg_index_select(r->tp, r->y, 0, pick);
    tg_tensor *h = tg_layer_forward(r->tp, r->drop,
                                    tg_relu(r->tp, tg_layer_forward(r->tp, r->fc1, xb)));
    tg_tensor *loss = tg_cross_entropy(r->tp, tg_layer_forward(r->tp, r->fc2, h), yb, NULL);
    ck_assert_msg(loss != NULL, "%s", tg_tape_error(r->tp));
    tg_optim_zero_grad(r->o);
    ck_assert_int_eq(tg_backward(r->tp, loss, NULL), 0);
    ck_assert_msg(tg_optim_step(r->o) == 0, "%s", tg_last_error());
    ck_assert_int_eq(tg_sched_step(r->s), 0);
}

/* The optimizer and schedule states of a and b are bitwise equal. */
static void check_same_state(tg_optim *oa, tg_sched *sa, tg_optim *ob, tg_sched *sb) {
    for (int which = 0; which < 2; which++) {
        int na = which ? tg_sched_state(sa, NULL, 0) : tg_optim_state(oa, NULL, 0);
        int nb = which ? tg_sched_state(sb, NULL, 0) : tg_optim_state(ob, NULL, 0);
        ck_assert_int_eq(na, nb);
        tg_state_entry *ea = malloc((size_t)(na ? na : 1) * sizeof *ea);
        tg_state_entry *eb = malloc((size_t)(nb ? nb : 1) * sizeof *eb);
        if (which) {
            tg_sched_state(sa, ea, na);
            tg_sched_state(sb, eb, nb);
        } else {
            tg_optim_state(oa, ea, na);
            tg_optim_state(ob, eb, nb);
        }
        for (int i = 0; i < na; i++) {
            ck_assert_str_eq(ea[i].name, eb[i].name);
            size_t bytes = (size_t)tg_tensor_numel(ea[i].tensor) *
                           tg_dtype_size(tg_tensor_dtype(ea[i].tensor));
            ck_assert_msg(memcmp(tg_tensor_data(ea[i].tensor), tg_tensor_data(eb[i].tensor),
                                 bytes) == 0, "state %s differs", ea[i].name);
        }
        free(ea);
        free(eb);
    }
}

START_TEST(test_resume_bitwise) {
    enum { K = 40 };
    char path[512];
    in_dir(path, "train.ckpt");
    /* The reference: 2K steps without stopping (and the normal draw run a makes at K). */
    run ref;
    run_init(&ref, 1);
    for (int i = 0; i < K; i++) train_step(&ref);
    tg_rng_normal(ref.rng);
    for (int i = K; i < 2 * K; i++) train_step(&ref);
    /* Run a: K steps, a checkpoint, K more (saving must not disturb anything). */
    run a;
    run_init(&a, 1);
    for (int i = 0; i < K; i++) train_step(&a);
    tg_rng_normal(a.rng); /* leaves a spare normal in the state, which must survive too */
    tg_train_state ts = {.epoch = 3, .step = K, .rng = a.rng};
    ck_assert_msg(tg_save_checkpoint(path, a.m, a.o, a.s, &ts) == 0, "%s", tg_last_error());
    for (int i = K; i < 2 * K; i++) train_step(&a);
    /* Run b: everything fresh and differently seeded, restored from the checkpoint. */
    run b;
    run_init(&b, 2);
    tg_train_state tb = {.epoch = 0, .step = 0, .rng = b.rng};
    ck_assert_msg(tg_load_checkpoint(path, b.m, b.o, b.s, &tb) == 0, "%s", tg_last_error());
    ck_assert_int_eq(tb.epoch, 3);
    ck_assert_int_eq(tb.step, K);
    ck_assert_double_eq(tg_sched_get_lr(b.s), 0.05 * pow(0.5, K / 7));
    for (int i = K; i < 2 * K; i++) train_step(&b);
    check_same_model(ref.m, a.m);
    check_same_model(a.m, b.m);
    check_same_state(a.o, a.s, b.o, b.s);
    ck_assert_uint_eq(tg_rng_u64(a.rng), tg_rng_u64(b.rng));
    /* The run did train: the parameters moved away from b's own initialization. */
    run fresh;
    run_init(&fresh, 2);
    ck_assert(memcmp(tg_tensor_data(tg_layer_get(fresh.fc1, "weight")),
                     tg_tensor_data(tg_layer_get(b.fc1, "weight")), 4 * FEATURES * HIDDEN) != 0);
    run_free(&fresh);
    run_free(&ref);
    run_free(&a);
    run_free(&b);
}
END_TEST

START_TEST(test_checkpoint_contents_and_mismatch) {
    char path[512];
    in_dir(path, "c.ckpt");
    run a;
    run_init(&a, 1);
    train_step(&a);
    tg_train_state ts = {.epoch = 1, .step = 1, .rng = a.rng};
    ck_assert_int_eq(tg_save_checkpoint(path, a.m, a.o, a.s, &ts), 0);
    /* The keys: model.*, optim.*, sched.*, train.*. */
    tg_st_file *f = tg_st_read("test", path);
    ck_assert_ptr_nonnull(f);
    int model = 0, optim = 0, sched = 0, train = 0;
    for (int i = 0; i < tg_st_count(f); i++) {
        const char *name = tg_st_at(f, i)->name;
        model += strncmp(name, "model.", 6) == 0;
        optim += strncmp(name, "optim.", 6) == 0;
        sched += strncmp(name, "sched.", 6) == 0;
        train += strncmp(name, "train.", 6) == 0;
    }
    ck_assert_int_eq(model, tg_model_num_entries(a.m));
    ck_assert_int_eq(optim, tg_optim_state(a.o, NULL, 0));
    ck_assert_int_eq(sched, tg_sched_state(a.s, NULL, 0));
    ck_assert_int_eq(train, 3);
    ck_assert_int_eq(model + optim + sched + train, tg_st_count(f));
    const tg_st_tensor *rng = tg_st_find(f, "train.rng");
    ck_assert_ptr_nonnull(rng);
    ck_assert_int_eq(rng->dtype, TG_I64);
    ck_assert_int_eq(rng->numel, 6);
    ck_assert_ptr_nonnull(tg_st_find(f, "model.fc1.weight"));
    tg_st_free(f);

    /* An SGD optimizer has other state: every difference is listed, nothing changes. */
    tg_optim *sgd = tg_optim_new(TG_OPTIM_SGD, NULL);
    tg_optim_opts momentum = tg_optim_defaults(TG_OPTIM_SGD);
    momentum.momentum = 0.9;
    ck_assert_int_ge(tg_optim_add_model(sgd, a.m, NULL, NULL, false, &momentum), 0);
    tg_train_state t2 = {.epoch = 9, .step = 9, .rng = a.rng};
    tg_rng_state before = tg_rng_get_state(a.rng);
    ck_assert_int_eq(tg_load_checkpoint(path, a.m, sgd, a.s, &t2), -1);
    CK_HAS(tg_last_error(), "load_checkpoint");
    CK_HAS(tg_last_error(), "nothing was loaded");
    CK_HAS(tg_last_error(), "unexpected \"optim.state.0.exp_avg\"");
    CK_HAS(tg_last_error(), "missing \"optim.state.0.momentum_buffer\"");
    ck_assert_int_eq(t2.epoch, 9);
    tg_rng_state after = tg_rng_get_state(a.rng);
    ck_assert_mem_eq(&before, &after, sizeof before);
    /* NULL objects are not restored: their entries are skipped. */
    tg_model *m2 = tg_model_new(NULL);
    tg_rng *r2 = tg_rng_new(5);
    tg_linear_new(m2, "fc1", FEATURES, HIDDEN, true, r2);
    tg_dropout_new(m2, "drop", 0.25, r2);
    tg_linear_new(m2, "fc2", HIDDEN, CLASSES, true, r2);
    ck_assert_msg(tg_load_checkpoint(path, m2, NULL, NULL, NULL) == 0, "%s", tg_last_error());
    check_same_model(a.m, m2);
    tg_train_state no_rng = {0};
    ck_assert_int_eq(tg_load_checkpoint(path, m2, NULL, NULL, &no_rng), 0);
    ck_assert_int_eq(no_rng.step, 1);
    /* A checkpoint without an optimizer, loaded with one, is missing its state. */
    ck_assert_int_eq(tg_save_checkpoint(path, a.m, NULL, NULL, NULL), 0);
    ck_assert_int_eq(tg_load_checkpoint(path, a.m, a.o, NULL, NULL), -1);
    CK_HAS(tg_last_error(), "missing \"optim.");
    ck_assert_int_eq(tg_load_checkpoint(path, a.m, NULL, NULL, &t2), -1);
    CK_HAS(tg_last_error(), "3 mismatches");
    CK_HAS(tg_last_error(), "missing \"train.epoch\" (i64 [])");
    CK_HAS(tg_last_error(), "missing \"train.rng\" (i64 [6])");
    tg_optim_free(sgd);
    tg_model_free(m2);
    tg_rng_free(r2);
    run_free(&a);
}
END_TEST

START_TEST(test_rng_state_round_trip) {
    /* The generator continues its stream after a restore, including a pending spare normal;
     * a flag other than 0 or 1 is rejected before anything is loaded. */
    char path[512];
    in_dir(path, "rng.ckpt");
    tg_model *m = model_a();
    tg_rng *r = tg_rng_new(42), *q = tg_rng_new(43);
    tg_rng_normal(r);
    tg_train_state ts = {.epoch = 7, .step = -1, .rng = r};
    ck_assert_int_eq(tg_save_checkpoint(path, m, NULL, NULL, &ts), 0);
    tg_train_state tq = {.rng = q};
    ck_assert_int_eq(tg_load_checkpoint(path, m, NULL, NULL, &tq), 0);
    ck_assert_int_eq(tq.epoch, 7);
    ck_assert_int_eq(tq.step, -1);
    for (int i = 0; i < 5; i++) {
        double x = tg_rng_normal(r), y = tg_rng_normal(q);
        ck_assert_mem_eq(&x, &y, sizeof x);
    }
    /* A forged flag of 2. */
    int64_t epoch = 1, step = 2, state[6] = {1, 2, 3, 4, 0, 2};
    float a[2] = {0};
    tg_st_tensor ts_[4] = {
        {"model.a", TG_F32, 1, {2}, 2, a},
        {"train.epoch", TG_I64, 0, {0}, 1, &epoch},
        {"train.step", TG_I64, 0, {0}, 1, &step},
        {"train.rng", TG_I64, 1, {6}, 6, state},
    };
    ck_assert_int_eq(tg_st_write("test", path, 4, ts_, 0, NULL), 0);
    tg_rng_state before = tg_rng_get_state(q);
    ck_assert_int_eq(tg_load_checkpoint(path, m, NULL, NULL, &tq), -1);
    CK_HAS(tg_last_error(), "spare flag is 2");
    tg_rng_state after = tg_rng_get_state(q);
    ck_assert_mem_eq(&before, &after, sizeof before);
    ck_assert_int_eq(tq.epoch, 7);
    tg_rng_free(r);
    tg_rng_free(q);
    tg_model_free(m);
}
END_TEST

START_TEST(test_bad_arguments) {
    tg_model *m = model_a();
    ck_assert_int_eq(tg_save_model(NULL, "x"), -1);
    CK_HAS(tg_last_error(), "save_model");
    ck_assert_int_eq(tg_save_model(m, NULL), -1);
    ck_assert_int_eq(tg_load_model(m, NULL), -1);
    ck_assert_int_eq(tg_save_checkpoint(NULL, m, NULL, NULL, NULL), -1);
    ck_assert_int_eq(tg_load_checkpoint("x", NULL, NULL, NULL, NULL), -1);
    CK_HAS(tg_last_error(), "load_checkpoint");
    tg_model_free(m);
}
END_TEST

static Suite *checkpoint_suite(void) {
    Suite *s = suite_create("checkpoint");
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup, teardown);
    tcase_set_timeout(files, 120);
    tcase_add_test(files, test_model_round_trip);
    tcase_add_test(files, test_model_names_with_escapes);
    tcase_add_test(files, test_mismatches_listed);
    tcase_add_test(files, test_many_mismatches_fit);
    tcase_add_test(files, test_every_truncation);
    tcase_add_test(files, test_bad_headers);
    tcase_add_test(files, test_mutated_bytes);
    tcase_add_test(files, test_atomic_failed_write);
    tcase_add_test(files, test_atomic_failed_rename);
    tcase_add_test(files, test_saved_file_mode);
    tcase_add_test(files, test_bad_arguments);
    suite_add_tcase(s, files);
    TCase *ckpt = tcase_create("checkpoints");
    tcase_add_checked_fixture(ckpt, setup, teardown);
    tcase_set_timeout(ckpt, 120);
    tcase_add_test(ckpt, test_resume_bitwise);
    tcase_add_test(ckpt, test_checkpoint_contents_and_mismatch);
    tcase_add_test(ckpt, test_rng_state_round_trip);
    suite_add_tcase(s, ckpt);
    return s;
}

int main(void) {
    return run_suite(checkpoint_suite(), CK_ENV);
}
