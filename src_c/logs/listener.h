/* listener.h - the logs agent's HTTP server on the loop's event_base: POST /v1/input only
 * (PARITY.md 3), bodies up to 4 MiB enforced while reading, validated by logs/json.c and queued
 * in the batcher. Loop thread only, except dds__logs_listener_new (caller's thread, at start). */
#ifndef DDS_LOGS_LISTENER_H
#define DDS_LOGS_LISTENER_H
#include <stdbool.h>
#include <stdint.h>

#include "datadog_serverless.h"
#include "log.h"
#include "logs/batch.h"

struct event_base;

/* The Rust agent's limit for one request body; past it the answer is 413. */
#define DDS__LOGS_MAX_BODY_BYTES (4u * 1024 * 1024)

typedef struct dds__logs_listener_config {
    int32_t port;                 /* 0 = any free port */
    bool non_local;               /* bind 0.0.0.0 instead of 127.0.0.1 */
    uint32_t max_body_bytes;      /* 0 = DDS__LOGS_MAX_BODY_BYTES */
    const dds__logger *log;       /* not owned */
} dds__logs_listener_config;

typedef struct dds__logs_listener dds__logs_listener;

/* Bind now, so a taken port is a start error (DDS_ERR_LOGS_AGENT_START: "cannot bind TCP
 * 127.0.0.1:10517: Address already in use"). batcher and counters: not owned, outlive it. */
dds__logs_listener *dds__logs_listener_new(struct event_base *base, const dds__logs_listener_config *cfg,
                                           dds__logs_batcher *batcher, dds__logs_counters *counters, dds_error *err);
uint16_t dds__logs_listener_port(const dds__logs_listener *l);
/* Stop accepting connections; requests already being served finish. Idempotent. */
void dds__logs_listener_close(dds__logs_listener *l);
void dds__logs_listener_free(dds__logs_listener *l);  /* accepts NULL */
#endif
