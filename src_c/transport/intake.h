/* intake.h - sends payloads to the Datadog intake with libcurl's multi interface driven by the
 * instance's event_base (never blocks the loop). Retry policy of PROTOCOL.md section 3: 2xx ok;
 * 400/403/413 dropped; network errors, 408, 429, 5xx retried with exponential backoff + jitter
 * (100 ms doubling, capped) in a bounded retry queue (oldest dropped past the bound). A TLS
 * certificate that fails verification is dropped at once, like a 403: it fails the same way on
 * every attempt. Loop thread only. */
#ifndef DDS_TRANSPORT_INTAKE_H
#define DDS_TRANSPORT_INTAKE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counter.h"
#include "log.h"
#include "transport/payload.h"

struct event_base;

typedef struct dds__intake_config {
    const char *api_key;             /* copied; sent as DD-API-KEY; never logged */
    const char *https_proxy;         /* NULL: libcurl's own environment handling */
    bool tls_verify;
    /* With tls_verify, the CA certificates of every https request (and of an https proxy), as
     * transport/cacerts.c found them: a PEM bundle (ca_file) or a directory of PEM files (ca_dir),
     * at most one set, copied. Both NULL means none were found: every https request then fails
     * as an untrusted certificate does; libcurl's compiled-in default is never used either. */
    const char *ca_file;
    const char *ca_dir;
    uint32_t request_timeout_ms;
    size_t retry_queue_max_bytes;
    /* Bytes of payloads waiting for their first attempt (while every request slot is busy: an
     * intake that accepts and answers slowly). Past it the oldest waiting payloads are dropped;
     * a single payload over it is still taken when nothing else waits. 0 = 32 MiB. */
    size_t queue_max_bytes;
    uint32_t max_in_flight;          /* concurrent requests; 0 = 8 */
    const char *user_agent;          /* copied */
    bool dry_run;                    /* write each body + '\n' to dry_run_fd instead of sending */
    bool dry_run_summary;            /* with dry_run: write one summary line per payload instead
                                        (endpoint, kind, items, bytes), never its contents */
    int dry_run_fd;
    const dds__logger *log;          /* not owned, outlives the intake */
    /* Called on the loop thread for problems the user must hear of (key rejected, payload
     * dropped): message valid during the call. May be NULL. */
    void (*on_error)(void *user, dds__payload_kind kind, const char *message);
    void *user;
} dds__intake_config;

/* Several intakes may share one set of counters (same loop thread): queue_bytes is then their
 * sum, each intake adding and taking back its own bytes. */
typedef struct dds__intake_counters {
    dds__counter sent, retried, dropped, bytes_sent, series_sent, sketches_sent, dry_run;
    dds__counter queue_bytes;                    /* gauge: bytes waiting for a first attempt */
    dds__counter queue_dropped[DDS__PK_KINDS];   /* dropped because the queue was full, by kind;
                                                    also counted in dropped */
} dds__intake_counters;

typedef struct dds__intake dds__intake;

dds__intake *dds__intake_new(struct event_base *base, const dds__intake_config *cfg,
                             dds__intake_counters *counters);
/* Takes ownership of exactly one payload (p->next must be NULL). Loop thread only. */
void dds__intake_submit(dds__intake *in, dds__payload *p);
/* Make every payload waiting out a retry backoff due now (explicit flush and stop: the caller
 * has a deadline). Loop thread. */
void dds__intake_retry_now(dds__intake *in);
/* Payloads not finished yet: queued, in flight, or waiting for a retry. */
size_t dds__intake_pending(const dds__intake *in);
/* cb runs on the loop thread whenever pending drops to 0 (after a submit was made). */
void dds__intake_set_drained_cb(dds__intake *in, void (*cb)(void *user), void *user);
/* Give up on everything pending (counted as dropped, on_done called); returns how many. */
size_t dds__intake_abandon(dds__intake *in);
void dds__intake_free(dds__intake *in);  /* abandons what is left; accepts NULL */

/* Re-entrancy: a payload's on_done, cfg->on_error and the drained callback run on the loop thread
 * from inside the intake. They may call submit, pending and abandon, never dds__intake_free.
 * Nothing finishes inside dds__intake_submit: payloads (dry run included) are dispatched from the
 * loop, so on_done never runs before submit returns. */
#endif
