/* buf.c - growable byte buffer. In: bytes to append. Out: one contiguous owned block.
 * Never aborts on allocation failure: the sticky oom flag reports it. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dds__buf_init(dds__buf *b) { memset(b, 0, sizeof(*b)); }

void dds__buf_free(dds__buf *b) {
    free(b->data);
    dds__buf_init(b);
}

bool dds__buf_reserve(dds__buf *b, size_t extra) {
    if (b->oom) return false;
    if (extra <= b->cap - b->len) return true;
    if (extra > SIZE_MAX / 2 - b->len) goto fail;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) goto fail;
    b->data = p;
    b->cap = cap;
    return true;
fail:
    b->oom = true;
    return false;
}

void dds__buf_append(dds__buf *b, const void *p, size_t n) {
    if (n == 0 || !dds__buf_reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void dds__buf_putc(dds__buf *b, uint8_t c) {
    if (!dds__buf_reserve(b, 1)) return;
    b->data[b->len++] = c;
}

void dds__buf_puts(dds__buf *b, const char *s) { dds__buf_append(b, s, strlen(s)); }

void dds__buf_printf(dds__buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[128];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(small)) {
        dds__buf_append(b, small, (size_t)n);
        return;
    }
    if (!dds__buf_reserve(b, (size_t)n + 1)) return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

uint8_t *dds__buf_steal(dds__buf *b, size_t *len) {
    uint8_t *p = b->data;
    *len = b->len;
    dds__buf_init(b);
    return p;
}
