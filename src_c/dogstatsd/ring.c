/* ring.c - the SPSC datagram ring. In: datagrams copied by the receive thread. Out: records read
 * in place by the loop thread, in arrival order. Never allocates after dds__ring_new, never
 * blocks, never overwrites a record the consumer has not released: when full, push says so.
 * Positions are byte counts since creation (64 bits: no wrap in practice); offset = pos % cap.
 * Each side keeps a private copy of the other side's position and re-reads the shared one only
 * when the copy says "full" or "empty", so the two threads share a cache line once per batch
 * rather than once per datagram. */
#include "dogstatsd/ring.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HDR 8u
#define WRAP_MARK UINT32_MAX /* header len of the padding from a record that did not fit to the end */

struct dds__ring {
    char *buf;
    size_t cap;
    size_t max_len;
    /* producer */
    alignas(64) _Atomic uint64_t tail; /* published end */
    uint64_t wtail;                    /* end of what was pushed, published or not */
    uint64_t head_seen;
    /* consumer */
    alignas(64) _Atomic uint64_t head; /* released start */
    uint64_t rhead;                    /* start of the next record to peek */
    uint64_t next;                     /* end of the record peek returned */
    uint64_t tail_seen;
};

typedef struct hdr {
    uint32_t len;
    uint32_t flags;
} hdr;

size_t dds__ring_record_bytes(size_t len) { return HDR + ((len + 7) & ~(size_t)7); }

dds__ring *dds__ring_new(size_t capacity_bytes, size_t max_len) {
    size_t cap = capacity_bytes & ~(size_t)7;
    if (max_len >= WRAP_MARK || cap < 2 * dds__ring_record_bytes(max_len)) return NULL;
    dds__ring *r = aligned_alloc(64, (sizeof(*r) + 63) & ~(size_t)63);
    if (!r) return NULL;
    memset(r, 0, sizeof(*r));
    r->buf = malloc(cap);
    if (!r->buf) {
        free(r);
        return NULL;
    }
    r->cap = cap;
    r->max_len = max_len;
    return r;
}

void dds__ring_free(dds__ring *r) {
    if (!r) return;
    free(r->buf);
    free(r);
}

size_t dds__ring_capacity(const dds__ring *r) { return r->cap; }

bool dds__ring_push(dds__ring *r, const void *data, size_t len, uint32_t flags) {
    size_t stored = (flags & DDS__RING_TRUNCATED) ? 0 : len;
    if (len > r->max_len && !(flags & DDS__RING_TRUNCATED)) return false;
    size_t need = dds__ring_record_bytes(stored);
    size_t off = (size_t)(r->wtail % r->cap);
    size_t pad = r->cap - off < need ? r->cap - off : 0;
    if (r->cap - (size_t)(r->wtail - r->head_seen) < pad + need) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (r->cap - (size_t)(r->wtail - r->head_seen) < pad + need) return false;
    }
    if (pad) {
        /* off is a multiple of 8 below cap, so the marker's header always fits. */
        hdr mark = {.len = WRAP_MARK, .flags = 0};
        memcpy(r->buf + off, &mark, sizeof(mark));
        r->wtail += pad;
        off = 0;
    }
    hdr h = {.len = (uint32_t)len, .flags = flags};
    memcpy(r->buf + off, &h, sizeof(h));
    if (stored) memcpy(r->buf + off + HDR, data, stored);
    r->wtail += need;
    return true;
}

bool dds__ring_publish(dds__ring *r) {
    uint64_t old = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (r->wtail == old) return false;
    /* seq_cst store then load, against the consumer's seq_cst store of head then load of tail
     * (dds__ring_consumer_idle_check): one of the two sides sees the other's write. */
    atomic_store_explicit(&r->tail, r->wtail, memory_order_seq_cst);
    return atomic_load_explicit(&r->head, memory_order_seq_cst) == old;
}

bool dds__ring_peek(dds__ring *r, const char **data, size_t *len, uint32_t *flags) {
    if (r->rhead == r->tail_seen) {
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (r->rhead == r->tail_seen) return false;
    }
    size_t off = (size_t)(r->rhead % r->cap);
    hdr h;
    memcpy(&h, r->buf + off, sizeof(h));
    if (h.len == WRAP_MARK) {
        /* A marker is published together with the record after it: one is there. */
        r->rhead += r->cap - off;
        off = 0;
        memcpy(&h, r->buf, sizeof(h));
    }
    size_t stored = (h.flags & DDS__RING_TRUNCATED) ? 0 : h.len;
    *data = r->buf + off + HDR;
    *len = h.len;
    *flags = h.flags;
    r->next = r->rhead + dds__ring_record_bytes(stored);
    return true;
}

void dds__ring_release(dds__ring *r) {
    r->rhead = r->next;
    atomic_store_explicit(&r->head, r->rhead, memory_order_release);
}

bool dds__ring_consumer_idle_check(dds__ring *r) {
    atomic_store_explicit(&r->head, r->rhead, memory_order_seq_cst);
    r->tail_seen = atomic_load_explicit(&r->tail, memory_order_seq_cst);
    return r->tail_seen != r->rhead;
}

size_t dds__ring_used(const dds__ring *r) {
    dds__ring *m = (dds__ring *)r;
    uint64_t h = atomic_load_explicit(&m->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&m->tail, memory_order_relaxed);
    return t >= h ? (size_t)(t - h) : 0;
}
