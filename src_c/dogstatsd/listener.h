/* listener.h - DogStatsD sockets: UDP (loopback by default) and an optional Unix datagram
 * socket. Each socket is read by a receive thread of its own into a bounded ring that the loop
 * thread parses from (dogstatsd/reader.h), or, with queue_bytes 0, in recvmmsg batches on the
 * loop thread itself. */
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
    uint32_t so_rcvbuf;        /* 0 = ask for DDS__LISTENER_DEFAULT_RCVBUF, silently capped by the kernel */
    size_t queue_bytes;        /* ring per socket; 0 = no receive thread, read on the loop thread */
} dds__listener_config;

/* What an unset so_rcvbuf asks for: the kernel caps it at net.core.rmem_max (212,992 bytes by
 * default: then nothing changes), so it only helps where the host allows more. */
#define DDS__LISTENER_DEFAULT_RCVBUF (4u << 20)

enum { DDS__SOCK_UDP = 0, DDS__SOCK_UNIX = 1 };

typedef struct dds__listener_counters {
    /* Loop thread: datagrams taken out of the socket or the ring. */
    dds__counter packets, truncated, bytes, read_errors;
    /* Per socket, one writer each: its receive thread (or the loop thread without one). */
    dds__counter queue_dropped[2];  /* the receive ring was full */
    dds__counter socket_dropped[2]; /* the kernel's receive buffer was full (its own count) */
} dds__listener_counters;

typedef struct dds__listener dds__listener;

/* Bind now (on the caller's thread, so a taken port is reported by dds_start). NULL with err
 * filled (DDS_ERR_DOGSTATSD_START) on failure. */
dds__listener *dds__listener_new(const dds__listener_config *cfg, dds__packet_fn fn, void *user,
                                 dds__listener_counters *counters, const dds__logger *log, dds_error *err);
uint16_t dds__listener_port(const dds__listener *l);
/* Start reading on base (loop thread from now on). 0 or -1. */
int dds__listener_attach(dds__listener *l, struct event_base *base);
/* Loop thread: process whatever the sockets and the rings already hold, until the sockets are
 * empty (bounded: DDS__READER_DRAIN_MAX_BATCHES batches per socket, 2 s); returns datagrams
 * processed. */
size_t dds__listener_drain(dds__listener *l);
/* Loop thread: as dds__listener_drain, then stop the receive threads, process what their rings
 * still hold, and close the sockets. */
size_t dds__listener_drain_and_close(dds__listener *l);
/* Stop reading and close the sockets (the Unix socket file is removed); what a ring still holds
 * is discarded. Idempotent. */
void dds__listener_close(dds__listener *l);
void dds__listener_free(dds__listener *l);  /* closes if needed; accepts NULL */
#endif
