/* Careful whole-file reading shared by the data readers (src/data/idx.c implements it, the
 * CIFAR-10 reader in dataset.c uses it): gzip or plain, never trusting sizes the file claims. */
#ifndef TG_DATA_READ_H
#define TG_DATA_READ_H

#include <stddef.h>
#include <stdint.h>

/* Reads the whole file at path, gzip-compressed (by its magic bytes 1f 8b) or plain, into a
 * malloc'd buffer (*data, *len bytes; *data is never NULL on success). A file holding more than
 * max_bytes bytes (after decompression) is an error found before that much is allocated; so are
 * a missing or unreadable file, a directory, and a corrupt or truncated gzip stream. Returns 0,
 * or -1 with tg_last_error() naming the file and the problem. */
int tg_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len);

#endif
