/* arena.h - bump allocator for memory that dies all at once (one request's span records, one
 * flush's scratch). Allocation failure returns NULL and sets a sticky flag; never aborts.
 * Single-threaded. */
#ifndef DDS_COMMON_ARENA_H
#define DDS_COMMON_ARENA_H
#include <stdbool.h>
#include <stddef.h>

/* Blocks are linked newest first; the definition is public only so tests can check reuse. */
typedef struct dds__arena_block {
    struct dds__arena_block *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
} dds__arena_block;

typedef struct dds__arena {
    dds__arena_block *head;    /* current block */
    size_t block_size;         /* default size of new blocks (0 = 64 KiB) */
    size_t total;              /* bytes reserved in all blocks */
    size_t limit;              /* 0 = unlimited; past it allocations fail (bounds a hostile request) */
    bool oom;                  /* sticky */
} dds__arena;

void dds__arena_init(dds__arena *a, size_t block_size, size_t limit);
/* n bytes aligned to 8 (or 16 for n >= 16); NULL on failure. */
void *dds__arena_alloc(dds__arena *a, size_t n);
void *dds__arena_calloc(dds__arena *a, size_t count, size_t size);  /* overflow-checked, zeroed */
char *dds__arena_memdup(dds__arena *a, const void *p, size_t n);    /* copies n bytes (+ a NUL) */
/* Forget everything but keep the first block for reuse. */
void dds__arena_reset(dds__arena *a);
void dds__arena_free(dds__arena *a);
#endif
