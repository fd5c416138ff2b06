/* buf.h - growable byte buffer with a sticky out-of-memory flag.
 * Appends after a failed allocation are no-ops; check `oom` once at the end. Single-threaded. */
#ifndef DDS_COMMON_BUF_H
#define DDS_COMMON_BUF_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dds__buf {
    uint8_t *data;  /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    bool oom;       /* sticky: set by the first failed allocation */
} dds__buf;

void dds__buf_init(dds__buf *b);
void dds__buf_free(dds__buf *b);                       /* frees data, back to the init state */
bool dds__buf_reserve(dds__buf *b, size_t extra);      /* room for `extra` more bytes; false (and oom) on failure */
void dds__buf_append(dds__buf *b, const void *p, size_t n);
void dds__buf_putc(dds__buf *b, uint8_t c);
void dds__buf_puts(dds__buf *b, const char *s);        /* NUL-terminated, without the NUL */
void dds__buf_printf(dds__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void dds__buf_reset(dds__buf *b) { b->len = 0; b->oom = false; }
/* Hand the bytes over: returns data (caller frees with free()), *len set; b is back to init. */
uint8_t *dds__buf_steal(dds__buf *b, size_t *len);
#endif
