/* batch.c - in: validated log entries (JSON text) from the listener. Out: at each flush, payloads
 * of [e1,e2,...] for /api/v2/logs (zstd unless off, or the dry-run line). The queue never grows
 * past its bounds: what does not fit is dropped and counted, never blocks the loop. */
#include "logs/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/jsonw.h"
#include "transport/compress.h"

#define DEFAULT_MAX_QUEUED_BYTES (8u * 1024 * 1024)
#define PROTOCOL_HEADER "DD-PROTOCOL: agent-json\n"
#define PATH_LOGS "/api/v2/logs"

struct dds__logs_batcher {
    dds__logs_batch_config cfg;   /* url owned; extra_urls points to extra below */
    char *extra[DDS__LOGS_MAX_EXTRA_URLS];
    dds__logs_counters *c;
    dds__buf text;                /* queued entries, back to back */
    uint32_t *lens;               /* length of each queued entry */
    size_t n, cap;
    dds__ratelimit rl_drop;
};

dds__logs_batcher *dds__logs_batcher_new(const dds__logs_batch_config *cfg, dds__logs_counters *counters) {
    dds__logs_batcher *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->cfg = *cfg;
    b->cfg.url = cfg->url ? strdup(cfg->url) : NULL;
    b->cfg.extra_urls = (const char *const *)b->extra;
    if (b->cfg.n_extra > DDS__LOGS_MAX_EXTRA_URLS) b->cfg.n_extra = DDS__LOGS_MAX_EXTRA_URLS;
    bool ok = b->cfg.url != NULL;
    for (size_t i = 0; i < b->cfg.n_extra; i++)
        if (!(b->extra[i] = strdup(cfg->extra_urls[i]))) ok = false;
    if (!ok) {
        dds__logs_batcher_free(b);
        return NULL;
    }
    if (!b->cfg.max_queued_bytes) b->cfg.max_queued_bytes = DEFAULT_MAX_QUEUED_BYTES;
    if (!b->cfg.max_queued_entries) b->cfg.max_queued_entries = DDS__LOGS_MAX_QUEUED_ENTRIES;
    b->c = counters;
    dds__buf_init(&b->text);
    b->rl_drop.interval_ms = 10000;
    return b;
}

static void drop(dds__logs_batcher *b, size_t count, const char *why) {
    dds__counter_add(&b->c->entries_dropped, count);
    uint64_t skipped;
    if (!dds__ratelimit_allow(&b->rl_drop, dds__mono_ms(), &skipped)) return;
    if (count)
        dds__log_warn(b->cfg.log, "logs agent: dropped %zu entr%s (%s; %llu more drops since the last message)", count,
                      count == 1 ? "y" : "ies", why, (unsigned long long)skipped);
    else
        dds__log_warn(b->cfg.log, "logs agent: %s (%llu more drops since the last message)", why,
                      (unsigned long long)skipped);
}

bool dds__logs_batcher_add(dds__logs_batcher *b, const char *entry, size_t len) {
    if (len > DDS__LOGS_MAX_ENTRY_BYTES) {
        drop(b, 1, "an entry over 1 MiB");
        return false;
    }
    if (b->n >= b->cfg.max_queued_entries || len > b->cfg.max_queued_bytes - b->text.len) {
        drop(b, 1, "the queue is full until the next flush");
        return false;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        if (cap > b->cfg.max_queued_entries) cap = b->cfg.max_queued_entries;
        uint32_t *p = realloc(b->lens, cap * sizeof(*p));
        if (!p) {
            drop(b, 1, "out of memory");
            return false;
        }
        b->lens = p;
        b->cap = cap;
    }
    dds__buf_append(&b->text, entry, len);
    if (b->text.oom) {
        b->text.oom = false;  /* the append did nothing: the queue is as it was */
        drop(b, 1, "out of memory");
        return false;
    }
    b->lens[b->n++] = (uint32_t)len;
    dds__counter_add(&b->c->entries, 1);
    dds__counter_add(&b->c->bytes, len);
    return true;
}

static uint8_t *memdup(const void *src, size_t len) {
    uint8_t *p = malloc(len ? len : 1);
    if (p && len) memcpy(p, src, len);
    return p;
}

/* The dry-run line of one batch: the envelope naming where it would have gone, around it. */
static uint8_t *dry_run_line(const dds__buf *arr, const char *endpoint, size_t *len) {
    dds__buf line;
    dds__buf_init(&line);
    dds__jsonw w;
    dds__jsonw_init(&w, &line);
    dds__payload_dry_run_begin(&w, endpoint);
    dds__jsonw_raw(&w, (const char *)arr->data, arr->len);
    dds__jsonw_object_end(&w);
    if (!dds__jsonw_ok(&w)) {
        dds__buf_free(&line);
        return NULL;
    }
    uint8_t *body = dds__buf_steal(&line, len);
    /* One line per payload: a raw CR or LF in a validated entry can only be whitespace
     * between tokens (inside strings they are escaped), so a space reads the same. */
    for (size_t i = 0; i < *len; i++)
        if (body[i] == '\n' || body[i] == '\r') body[i] = ' ';
    return body;
}

/* The bodies of one batch, shared by its destinations: the array itself and, made at most
 * once, its zstd form. */
typedef struct bodies {
    const dds__buf *arr;
    uint8_t *z;
    size_t z_len;
    bool z_tried;
} bodies;

/* One payload of the batch for url. datadog: a Datadog intake (DD-PROTOCOL, compressed when
 * configured), otherwise an Observability Pipelines Worker (neither). NULL on allocation failure. */
static dds__payload *make_payload(dds__logs_batcher *b, bodies *bd, const char *url, const char *dry_endpoint,
                                  bool datadog, uint32_t count) {
    size_t len = 0;
    const char *encoding = NULL;
    uint8_t *body = NULL;
    if (b->cfg.dry_run) {
        body = dry_run_line(bd->arr, dry_endpoint, &len);
    } else {
        if (datadog && b->cfg.compress && !bd->z_tried) {
            bd->z_tried = true;
            if (dds__zstd_compress(bd->arr->data, bd->arr->len, b->cfg.compression_level, &bd->z, &bd->z_len) != 0)
                bd->z = NULL;  /* the Rust agent then sends the batch as it is, and so do we */
        }
        if (datadog && bd->z) {
            encoding = "zstd";
            len = bd->z_len;
            body = memdup(bd->z, len);
        } else {
            len = bd->arr->len;
            body = memdup(bd->arr->data, len);
        }
    }
    if (!body) return NULL;
    dds__payload *p = dds__payload_new(DDS__PK_LOGS, strdup(url), body, len, "application/json", encoding, count);
    if (!p || !datadog) return p;
    p->extra_headers = strdup(PROTOCOL_HEADER);
    if (!p->extra_headers) {
        dds__payload_free(p);
        return NULL;
    }
    return p;
}

dds__payload *dds__logs_batcher_take(dds__logs_batcher *b, dds__payload **extra) {
    dds__payload *head = NULL, **tail = &head;
    dds__payload **extra_tail[DDS__LOGS_MAX_EXTRA_URLS];
    for (size_t k = 0; k < b->cfg.n_extra; k++) {
        extra[k] = NULL;
        extra_tail[k] = &extra[k];
    }
    size_t off = 0;
    size_t i = 0;
    while (i < b->n) {
        dds__buf arr;
        dds__buf_init(&arr);
        uint32_t count = 0;
        dds__buf_putc(&arr, '[');
        /* An entry is at most 1 MiB, so each batch takes at least one. */
        while (i < b->n && count < DDS__LOGS_BATCH_MAX_ENTRIES &&
               arr.len + (count ? 1 : 0) + b->lens[i] + 1 <= DDS__LOGS_BATCH_MAX_BYTES) {
            if (count) dds__buf_putc(&arr, ',');
            dds__buf_append(&arr, b->text.data + off, b->lens[i]);
            off += b->lens[i];
            i++;
            count++;
        }
        dds__buf_putc(&arr, ']');
        if (arr.oom) {
            dds__buf_free(&arr);
            drop(b, count, "out of memory building a batch");
            continue;
        }
        bodies bd = {.arr = &arr};
        dds__payload *p = make_payload(b, &bd, b->cfg.url, PATH_LOGS, !b->cfg.opw, count);
        if (p) {
            dds__counter_add(&b->c->batches, 1);
            *tail = p;
            tail = &p->next;
        } else {
            drop(b, count, "out of memory building a batch");
        }
        for (size_t k = 0; k < b->cfg.n_extra; k++) {
            /* The dry-run line names the whole URL: host and port are what tells them apart. */
            dds__payload *x = make_payload(b, &bd, b->extra[k], b->extra[k], true, count);
            if (!x) {
                drop(b, 0, "out of memory building a batch for an additional endpoint");
                continue;
            }
            *extra_tail[k] = x;
            extra_tail[k] = &x->next;
        }
        free(bd.z);
        dds__buf_free(&arr);
    }
    /* The queue's memory goes back now: a burst should not pin its peak until the next one. */
    dds__buf_free(&b->text);
    free(b->lens);
    b->lens = NULL;
    b->n = b->cap = 0;
    return head;
}

size_t dds__logs_batcher_queued_entries(const dds__logs_batcher *b) { return b->n; }
size_t dds__logs_batcher_queued_bytes(const dds__logs_batcher *b) { return b->text.len; }

void dds__logs_batcher_free(dds__logs_batcher *b) {
    if (!b) return;
    if (b->n && b->c) dds__counter_add(&b->c->entries_dropped, b->n);
    dds__buf_free(&b->text);
    free(b->lens);
    free((char *)b->cfg.url);
    for (size_t i = 0; i < DDS__LOGS_MAX_EXTRA_URLS; i++) free(b->extra[i]);
    free(b);
}
