/* payload.c - one request body and its metadata. In: url and body from a serializer (ownership
 * taken). Out: a dds__payload for the intake. Never leaks what it was given, even when its own
 * allocation fails. */
#include "transport/payload.h"

#include "common/jsonw.h"

#include <stdlib.h>

dds__payload *dds__payload_new(dds__payload_kind kind, char *url, uint8_t *body, size_t body_len,
                               const char *content_type, const char *content_encoding, uint32_t items) {
    /* A NULL url is a failed strdup upstream: fail here so callers need one check, not two. */
    if (!url || (!body && body_len > 0)) goto fail;
    dds__payload *p = calloc(1, sizeof(*p));
    if (!p) goto fail;
    p->kind = kind;
    p->url = url;
    p->body = body;
    p->body_len = body_len;
    p->content_type = content_type;
    p->content_encoding = content_encoding;
    p->items = items;
    return p;
fail:
    free(url);
    free(body);
    return NULL;
}

void dds__payload_free(dds__payload *p) {
    if (!p) return;
    if (p->on_done) {
        dds__payload_done_fn fn = p->on_done;
        p->on_done = NULL;  /* once, even if the callback frees something that frees us */
        fn(p->done_user, 0, NULL, 0);
    }
    free(p->url);
    free(p->body);
    free(p->extra_headers);
    free(p);
}

const char *dds__payload_kind_name(dds__payload_kind kind) {
    switch (kind) {
    case DDS__PK_SERIES: return "series";
    case DDS__PK_SKETCHES: return "sketches";
    case DDS__PK_SERVICE_CHECKS: return "service_checks";
    case DDS__PK_EVENTS: return "events";
    case DDS__PK_TRACES: return "traces";
    case DDS__PK_STATS: return "stats";
    case DDS__PK_PROXY: return "proxy";
    case DDS__PK_LOGS: return "logs";
    }
    return "unknown";
}

void dds__payload_dry_run_begin(struct dds__jsonw *w, const char *endpoint) {
    dds__jsonw_object_begin(w);
    dds__jsonw_key(w, "dry_run");
    dds__jsonw_bool(w, true);
    dds__jsonw_key(w, "endpoint");
    dds__jsonw_cstr(w, endpoint);
    dds__jsonw_key(w, "payload");
}
