/* Bump allocator behind every tape: see arena.h for the contract. */
#include "tensor/arena.h"

#include <assert.h>
#include <stdlib.h>

struct tg_arena_chunk {
    tg_arena_chunk *next;
    size_t size;   /* usable bytes in data */
    size_t used;
    _Alignas(64) unsigned char data[];
};

enum { TG_ARENA_MIN_CHUNK = 1 << 20 };

static tg_arena_chunk *chunk_new(tg_arena *a, size_t size) {
    tg_arena_chunk *c = aligned_alloc(64, (sizeof(tg_arena_chunk) + size + 63) & ~(size_t)63);
    if (!c) return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    a->reserved += size;
    a->system_allocs++;
    return c;
}

void tg_arena_init(tg_arena *a) {
    *a = (tg_arena){0};
}

void tg_arena_release(tg_arena *a) {
    for (tg_arena_chunk *c = a->first, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    tg_arena_init(a);
}

/* Bytes needed in chunk c to place `size` bytes aligned to `align`, or SIZE_MAX if it cannot. */
static size_t fit(const tg_arena_chunk *c, size_t size, size_t align) {
    size_t start = (c->used + align - 1) & ~(align - 1);
    if (start > c->size || c->size - start < size) return SIZE_MAX;
    return start + size - c->used;
}

void *tg_arena_alloc(tg_arena *a, size_t size, size_t align) {
    assert(align && (align & (align - 1)) == 0 && align <= 64);
    tg_arena_chunk *c = a->cur;
    size_t need = c ? fit(c, size, align) : SIZE_MAX;
    /* After a reset that kept several chunks, later chunks are reused in order. */
    while (need == SIZE_MAX && c && c->next) {
        a->used_before += c->used;
        c = c->next;
        c->used = 0;
        need = fit(c, size, align);
    }
    if (need == SIZE_MAX) {
        size_t want = size + align;
        if (want < size) return NULL;
        size_t grow = c ? 2 * c->size : TG_ARENA_MIN_CHUNK;
        tg_arena_chunk *fresh = chunk_new(a, want > grow ? want : grow);
        if (!fresh) return NULL;
        if (c) {
            a->used_before += c->used;
            c->next = fresh;
        } else {
            a->first = fresh;
        }
        c = fresh;
        need = fit(c, size, align);
    }
    a->cur = c;
    void *p = c->data + c->used + (need - size);
    c->used += need;
    a->used = a->used_before + c->used;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void tg_arena_reset(tg_arena *a) {
    if (a->first && a->first->next) {
        /* Fold the chunks into one that holds everything the last step needed. On failure the
         * old chunks stay and are reused in order. */
        size_t old_reserved = a->reserved;
        a->reserved = 0;
        tg_arena_chunk *merged = chunk_new(a, old_reserved);
        if (merged) {
            for (tg_arena_chunk *c = a->first, *next; c; c = next) {
                next = c->next;
                free(c);
            }
            a->first = merged;
        } else {
            a->reserved = old_reserved;
        }
    }
    if (a->first) a->first->used = 0; /* later chunks are cleared as allocation reaches them */
    a->cur = a->first;
    a->used = 0;
    a->used_before = 0;
}
