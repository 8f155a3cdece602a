/* Internal safetensors reader and writer, shared by the checkpoint functions. The format: an
 * 8-byte little-endian header length N, N bytes of JSON
 *   {"<name>": {"dtype": "F32"|"F64"|"I64", "shape": [...], "data_offsets": [begin, end]},
 *    ..., "__metadata__": {"<key>": "<value>", ...}}
 * (the metadata optional), then the data section: every tensor's little-endian bytes at its
 * offsets, which tile the section exactly. */
#ifndef TG_IO_SAFETENSORS_H
#define TG_IO_SAFETENSORS_H

#include "tapegrad.h"

/* One tensor of a file. For writing, data holds numel elements in host order (may be NULL
 * when numel is 0). In a file read back, data points at the tensor's little-endian bytes in
 * the file buffer (possibly unaligned): copy them out with tg_st_copy_data. */
typedef struct tg_st_tensor {
    const char *name;
    tg_dtype dtype;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel;
    const void *data;
} tg_st_tensor;

/* A file read and validated by tg_st_read. */
typedef struct tg_st_file tg_st_file;

/* Writes n tensors (in the given order) and n_meta metadata pairs (meta[2i] the key,
 * meta[2i+1] the value; n_meta 0 writes no "__metadata__") to path atomically: a temporary
 * file beside it, fsync, rename over path, fsync of the folder. On failure path keeps its old
 * contents, the temporary file is removed, and -1 is returned with tg_last_error naming
 * `what` (the calling function, for the message) and path. */
int tg_st_write(const char *what, const char *path, int n, const tg_st_tensor *tensors,
                int n_meta, const char *const *meta);

/* Reads path and validates it completely (header length against the file size, the JSON
 * grammar of the subset above, dtypes, shapes, offsets within the data section, tiling it
 * without gaps or overlaps, sizes equal to numel times the dtype size, unique names). NULL
 * with tg_last_error naming `what`, the file and the problem otherwise. */
tg_st_file *tg_st_read(const char *what, const char *path);
void tg_st_free(tg_st_file *f);

/* The tensors in header order. */
int tg_st_count(const tg_st_file *f);
const tg_st_tensor *tg_st_at(const tg_st_file *f, int i);
/* The tensor named name, or NULL. */
const tg_st_tensor *tg_st_find(const tg_st_file *f, const char *name);
/* The metadata value of key, or NULL. */
const char *tg_st_metadata(const tg_st_file *f, const char *key);

/* Copies t's data (from a file read by tg_st_read) to dst as numel host-order elements. */
void tg_st_copy_data(const tg_st_tensor *t, void *dst);

#endif
