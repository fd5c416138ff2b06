/* reader.h - the receive thread of one DogStatsD socket: it only moves datagrams from the
 * socket into a bounded ring (dogstatsd/ring.h) and wakes the loop thread, which parses them.
 * A thread that only copies bytes needs little CPU, so the scheduler runs it promptly even
 * when the host's own code keeps every core busy; the kernel's receive buffer (a few ms of
 * traffic) then no longer has to cover the loop thread's waits for a core, the ring does. */
#ifndef DDS_DOGSTATSD_READER_H
#define DDS_DOGSTATSD_READER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counter.h"
#include "dogstatsd/ring.h"

typedef struct dds__reader dds__reader;

typedef struct dds__reader_config {
    int fd;                  /* nonblocking datagram socket; stays owned by the caller */
    uint32_t buffer_size;    /* bytes per datagram read */
    size_t queue_bytes;      /* the ring's capacity */
    int wake_fd;             /* eventfd the loop watches: written when the ring goes non-empty,
                                when a drain request is answered and when the thread exits */
    const char *thread_name; /* at most 15 bytes */
    /* Written by the reader thread only (one writer each). */
    dds__counter *queue_dropped;  /* datagrams dropped because the ring was full */
    dds__counter *socket_dropped; /* the kernel's drop count of the socket (SO_RXQ_OVFL, SO_MEMINFO) */
} dds__reader_config;

/* Allocate the ring and start the thread (with every signal blocked). NULL on failure (out of
 * memory, no thread): the caller reads the socket itself then. */
dds__reader *dds__reader_start(const dds__reader_config *cfg);
/* The ring the loop thread consumes (the reader is its only producer). */
dds__ring *dds__reader_ring(dds__reader *r);
/* Loop thread: ask the thread to read everything the socket holds now into the ring; returns a
 * ticket for dds__reader_drained. With stop, the thread exits after that read. */
uint64_t dds__reader_request(dds__reader *r, bool stop);
/* Loop thread: the request with this ticket was answered: every datagram the socket held when it
 * was made is in the ring or counted as dropped (at most DDS__READER_DRAIN_MAX_BATCHES batches
 * of 32 are read for it, so a sustained flood cannot hold a flush or stop forever). */
bool dds__reader_drained(const dds__reader *r, uint64_t ticket);
/* Stop the thread if it still runs (bounded by nothing: call after a stop request was answered,
 * or accept the wait of one poll wake-up), join it and free the ring. Accepts NULL. */
void dds__reader_free(dds__reader *r);

#define DDS__READER_DRAIN_MAX_BATCHES 4096

struct msghdr;
/* The socket's drop count carried by a received datagram's SO_RXQ_OVFL control message (0 when
 * none), and read now with SO_MEMINFO (0 when unavailable). Shared with the listener's inline
 * read path. */
uint64_t dds__sock_drops_cmsg(const struct msghdr *h);
uint64_t dds__sock_drops_now(int fd);
#endif
