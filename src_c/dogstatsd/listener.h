/* listener.h - DogStatsD sockets: UDP (loopback by default) and an optional Unix datagram
 * socket, read in recvmmsg batches on the loop thread. */
#ifndef DDS_DOGSTATSD_LISTENER_H
#define DDS_DOGSTATSD_LISTENER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counter.h"
#include "datadog_serverless.h"
#include "log.h"

struct event_base;

/* One whole datagram (never a truncated one). buf is valid during the call only. */
typedef void (*dds__packet_fn)(void *user, const char *buf, size_t len);

typedef struct dds__listener_config {
    bool udp_enabled;
    bool non_local;            /* bind 0.0.0.0 instead of 127.0.0.1 */
    int32_t port;              /* 0 = any free port */
    const char *unix_path;     /* NULL = no Unix socket */
    uint32_t buffer_size;      /* bytes per datagram */
    uint32_t so_rcvbuf;        /* 0 = kernel default */
} dds__listener_config;

typedef struct dds__listener_counters {
    dds__counter packets, truncated, bytes, read_errors;
} dds__listener_counters;

typedef struct dds__listener dds__listener;

/* Bind now (on the caller's thread, so a taken port is reported by dds_start). NULL with err
 * filled (DDS_ERR_DOGSTATSD_START) on failure. */
dds__listener *dds__listener_new(const dds__listener_config *cfg, dds__packet_fn fn, void *user,
                                 dds__listener_counters *counters, const dds__logger *log, dds_error *err);
uint16_t dds__listener_port(const dds__listener *l);
/* Start reading on base (loop thread from now on). 0 or -1. */
int dds__listener_attach(dds__listener *l, struct event_base *base);
/* Read whatever the sockets already hold, until they are empty (bounded); returns datagrams read. */
size_t dds__listener_drain(dds__listener *l);
/* Stop reading and close the sockets (the Unix socket file is removed). Idempotent. */
void dds__listener_close(dds__listener *l);
void dds__listener_free(dds__listener *l);  /* closes if needed; accepts NULL */
#endif
