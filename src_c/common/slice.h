/* slice.h - a borrowed (pointer, length) view of bytes. Never owns; never NUL-terminated. */
#ifndef DDS_COMMON_SLICE_H
#define DDS_COMMON_SLICE_H
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct dds__slice {
    const char *ptr;
    size_t len;
} dds__slice;

#define DDS__SLICE_LIT(s) ((dds__slice){(s), sizeof(s) - 1})

static inline dds__slice dds__slice_make(const char *p, size_t n) { return (dds__slice){p, n}; }
static inline dds__slice dds__slice_cstr(const char *s) { return (dds__slice){s, s ? strlen(s) : 0}; }
static inline bool dds__slice_eq(dds__slice a, dds__slice b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
static inline bool dds__slice_has_prefix(dds__slice s, const char *prefix, size_t n) {
    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}
#endif
