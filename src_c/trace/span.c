/* span.c - lookups in a decoded span. In: a span and a NUL-terminated key. Out: a pointer to
 * the value inside the span's own arrays (valid while the span is), or NULL. Never allocates. */
#include "trace/span.h"

#include <string.h>

/* The arrays keep duplicate keys in payload order. The Go agent decodes meta and metrics into
 * Go maps, where a later duplicate overwrites an earlier one, so the last match is the value
 * users see: search from the end. */

const dds__slice *dds__span_meta_get(const dds__span *s, const char *key) {
    size_t n = strlen(key);
    for (uint32_t i = s->nmeta; i-- > 0;) {
        const dds__kv *kv = &s->meta[i];
        if (kv->key.len == n && (n == 0 || memcmp(kv->key.ptr, key, n) == 0)) return &kv->value;
    }
    return NULL;
}

const double *dds__span_metric_get(const dds__span *s, const char *key) {
    size_t n = strlen(key);
    for (uint32_t i = s->nmetrics; i-- > 0;) {
        const dds__kvd *kv = &s->metrics[i];
        if (kv->key.len == n && (n == 0 || memcmp(kv->key.ptr, key, n) == 0)) return &kv->value;
    }
    return NULL;
}
