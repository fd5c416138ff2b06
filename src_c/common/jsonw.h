/* jsonw.h - JSON writer on a dds__buf. The writer places commas and colons itself; the caller
 * only says what comes next (key, value, begin/end). Output is always valid UTF-8 JSON: strings
 * are escaped and invalid UTF-8 is replaced by U+FFFD; NaN and +-Inf are written as null.
 * Errors are sticky: nesting deeper than DDS__JSONW_MAX_DEPTH or a misplaced call sets `err`,
 * the buffer's oom reports allocation failure; check dds__jsonw_ok once at the end.
 * Single-threaded. Borrows the buffer; owns nothing. */
#ifndef DDS_COMMON_JSONW_H
#define DDS_COMMON_JSONW_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define DDS__JSONW_MAX_DEPTH 64

typedef struct dds__jsonw {
    dds__buf *b;
    uint64_t has_items;   /* bit d: the container at depth d+1 already holds a value */
    uint64_t is_object;   /* bit d: the container at depth d+1 is an object */
    uint32_t depth;
    bool after_key;       /* a key was written: the next call must be a value */
    bool err;
} dds__jsonw;

void dds__jsonw_init(dds__jsonw *w, dds__buf *b);

void dds__jsonw_object_begin(dds__jsonw *w);
void dds__jsonw_object_end(dds__jsonw *w);
void dds__jsonw_array_begin(dds__jsonw *w);
void dds__jsonw_array_end(dds__jsonw *w);

/* Object keys (escaped like strings). */
void dds__jsonw_key(dds__jsonw *w, const char *k);
void dds__jsonw_keyn(dds__jsonw *w, const char *k, size_t n);

/* Values. s may be NULL when n == 0. */
void dds__jsonw_string(dds__jsonw *w, const char *s, size_t n);
void dds__jsonw_cstr(dds__jsonw *w, const char *s);
void dds__jsonw_int(dds__jsonw *w, int64_t v);
void dds__jsonw_uint(dds__jsonw *w, uint64_t v);
void dds__jsonw_double(dds__jsonw *w, double v);  /* shortest form that reads back exactly */
void dds__jsonw_bool(dds__jsonw *w, bool v);
void dds__jsonw_null(dds__jsonw *w);
/* One value already encoded as JSON (trusted: the caller produced it with this writer). */
void dds__jsonw_raw(dds__jsonw *w, const char *json, size_t n);

/* Escape s[0..n) as the inside of a JSON string (no quotes) onto b. */
void dds__jsonw_escape(dds__buf *b, const char *s, size_t n);

/* True when the document is complete (depth 0, no key waiting) and nothing failed. */
static inline bool dds__jsonw_ok(const dds__jsonw *w) {
    return !w->err && !w->b->oom && w->depth == 0 && !w->after_key;
}
#endif
