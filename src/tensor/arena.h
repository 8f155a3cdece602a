/* The tape's arena: a bump allocator over a list of chunks. Reset is O(1) and keeps the chunks;
 * a reset after growth folds the chunks into one, so a repeated step of the same shape makes no
 * system allocation from its second run on. */
#ifndef TG_ARENA_H
#define TG_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct tg_arena_chunk tg_arena_chunk;

typedef struct tg_arena {
    tg_arena_chunk *first, *cur;
    size_t reserved;      /* bytes of all chunks */
    size_t used;          /* bytes handed out (with alignment padding) since the last reset */
    size_t used_before;   /* `used` at the start of cur: what earlier chunks handed out */
    size_t peak;
    uint64_t system_allocs;
} tg_arena;

/* An empty arena (no chunk yet). */
void tg_arena_init(tg_arena *a);
void tg_arena_release(tg_arena *a);
/* size bytes aligned to `align` (a power of two <= 64); NULL when the system is out of memory. */
void *tg_arena_alloc(tg_arena *a, size_t size, size_t align);
void tg_arena_reset(tg_arena *a);

#endif
