/* batch.h - the logs agent's queue of accepted entries and its serializer: entries wait here
 * between flushes, then leave as JSON arrays of at most 1000 entries and 5 MiB (PARITY.md 3),
 * zstd-compressed unless told otherwise, as payloads for the intake. Loop thread only. */
#ifndef DDS_LOGS_BATCH_H
#define DDS_LOGS_BATCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counter.h"
#include "log.h"
#include "transport/payload.h"

/* The intake's own limits for one /api/v2/logs request (the Rust agent's constants.rs). */
#define DDS__LOGS_BATCH_MAX_ENTRIES 1000
#define DDS__LOGS_BATCH_MAX_BYTES (5u * 1024 * 1024)  /* uncompressed, brackets and commas included */
/* The intake refuses a larger entry; the Rust agent drops it too (MAX_LOG_BYTES). */
#define DDS__LOGS_MAX_ENTRY_BYTES (1u * 1024 * 1024)
/* Entries alike in count: at 100000 the index costs under 1 MiB, and tiny entries cannot make
 * the queue's bookkeeping outgrow its byte bound. */
#define DDS__LOGS_MAX_QUEUED_ENTRIES 100000u

typedef struct dds__logs_counters {
    dds__counter requests;         /* POST /v1/input answered 200 */
    dds__counter rejected;         /* answered 4xx by us (400, 404, 405) */
    dds__counter entries;          /* accepted into the queue */
    dds__counter entries_dropped;  /* too large, queue full, out of memory */
    dds__counter bytes;            /* bytes of the entries accepted */
    dds__counter batches;          /* payloads made */
} dds__logs_counters;

/* Every batch also goes to each of these Datadog intakes (DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS). */
#define DDS__LOGS_MAX_EXTRA_URLS 8

typedef struct dds__logs_batch_config {
    const char *url;               /* full URL of the main destination; copied */
    bool opw;                      /* the main destination is an Observability Pipelines Worker:
                                      never compressed, no DD-PROTOCOL header */
    const char *const *extra_urls; /* more Datadog intakes (full URLs, copied), each sent every
                                      batch with DD-PROTOCOL and compressed as `compress` says */
    size_t n_extra;                /* at most DDS__LOGS_MAX_EXTRA_URLS */
    bool compress;                 /* zstd (Datadog intakes only) */
    int compression_level;
    bool dry_run;                  /* payload bodies are the dry-run JSON line instead */
    size_t max_queued_bytes;       /* 0 = 8 MiB */
    size_t max_queued_entries;     /* 0 = DDS__LOGS_MAX_QUEUED_ENTRIES */
    const dds__logger *log;        /* not owned, outlives the batcher */
} dds__logs_batch_config;

typedef struct dds__logs_batcher dds__logs_batcher;

/* NULL on allocation failure. counters: not owned, outlive the batcher. */
dds__logs_batcher *dds__logs_batcher_new(const dds__logs_batch_config *cfg, dds__logs_counters *counters);
/* Copy one validated entry into the queue. Returns true when queued; false when dropped (over
 * DDS__LOGS_MAX_ENTRY_BYTES, the queue full, out of memory): counted, and logged at a bounded rate. */
bool dds__logs_batcher_add(dds__logs_batcher *b, const char *entry, size_t len);
/* Everything queued, as a list of payloads for the main destination linked by ->next (NULL when
 * nothing is queued); the queue is then empty. extra (NULL when n_extra is 0) receives n_extra
 * lists, extra[i] for extra_urls[i], with the same batches. The caller owns every list. A batch
 * that cannot be built (out of memory) has its entries counted as dropped; a copy for an extra
 * URL that cannot be built is logged at a bounded rate. */
dds__payload *dds__logs_batcher_take(dds__logs_batcher *b, dds__payload **extra);
size_t dds__logs_batcher_queued_entries(const dds__logs_batcher *b);
size_t dds__logs_batcher_queued_bytes(const dds__logs_batcher *b);
void dds__logs_batcher_free(dds__logs_batcher *b);  /* queued entries are dropped; accepts NULL */
#endif
