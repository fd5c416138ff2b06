/* arena.c - bump allocator. In: allocation requests for memory with one lifetime. Out: aligned
 * blocks released all at once by reset/free. Never aborts; a request past `limit` fails so a
 * hostile body cannot make one request take unbounded memory. */
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void dds__arena_init(dds__arena *a, size_t block_size, size_t limit) {
    memset(a, 0, sizeof(*a));
    a->block_size = block_size ? block_size : 64 * 1024;
    a->limit = limit;
}

static dds__arena_block *new_block(dds__arena *a, size_t need) {
    size_t cap = need > a->block_size ? need : a->block_size;
    if (cap > SIZE_MAX - sizeof(dds__arena_block)) return NULL;
    if (a->limit && a->total + cap > a->limit) {
        if (a->total + need > a->limit) return NULL;
        cap = need; /* close to the limit: take only what is asked */
    }
    dds__arena_block *b = malloc(sizeof(*b) + cap);
    if (!b) return NULL;
    b->cap = cap;
    b->used = 0;
    b->next = a->head;
    a->head = b;
    a->total += cap;
    return b;
}

void *dds__arena_alloc(dds__arena *a, size_t n) {
    if (a->oom) return NULL;
    size_t align = n >= 16 ? 16 : 8;
    if (n == 0) n = 1;
    dds__arena_block *b = a->head;
    size_t off = 0;
    if (b) {
        off = (b->used + align - 1) & ~(align - 1);
        if (off > b->cap || n > b->cap - off) b = NULL;
    }
    if (!b) {
        if (n > SIZE_MAX - 16 || !(b = new_block(a, n + 16))) {
            a->oom = true;
            return NULL;
        }
        off = 0;
    }
    b->used = off + n;
    return b->data + off;
}

void *dds__arena_calloc(dds__arena *a, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) {
        a->oom = true;
        return NULL;
    }
    void *p = dds__arena_alloc(a, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

char *dds__arena_memdup(dds__arena *a, const void *p, size_t n) {
    if (n == SIZE_MAX) return NULL;
    char *d = dds__arena_alloc(a, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

void dds__arena_reset(dds__arena *a) {
    /* Keep the oldest block (the one of the default size, most likely) for the next request. */
    dds__arena_block *b = a->head, *keep = NULL;
    while (b) {
        dds__arena_block *next = b->next;
        if (!next && b->cap == a->block_size) keep = b;
        else free(b);
        b = next;
    }
    a->head = keep;
    a->total = keep ? keep->cap : 0;
    if (keep) keep->used = 0;
    a->oom = false;
}

void dds__arena_free(dds__arena *a) {
    dds__arena_block *b = a->head;
    while (b) {
        dds__arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
    a->oom = false;
}
