/* listener.c - DogStatsD sockets. In: datagrams from UDP and the optional Unix socket, through a
 * receive thread and its ring per socket (reader.c), or read here on the loop thread. Out: each
 * whole datagram handed to the packet callback on the loop thread, from the ring or a reused
 * batch buffer. Never parses a truncated datagram (MSG_TRUNC: counted and dropped), never
 * blocks the loop (but for the bounded drain of a flush or stop), never allocates per packet. */
#include "dogstatsd/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "dogstatsd/reader.h"
#include "error.h"

/* Datagrams per recvmmsg call, and calls per readiness event before yielding to the loop so
 * the trace receiver and timers keep running under a UDP flood; the same budget (in datagrams)
 * applies to one wake-up's worth of ring records. */
#define BATCH 32
#define MAX_BATCHES_PER_EVENT 64
#define RING_BUDGET (BATCH * MAX_BATCHES_PER_EVENT)
/* A flush or stop waits this long at most for the receive threads to empty their sockets (they
 * answer in microseconds unless the machine does not schedule them). */
#define DRAIN_TIMEOUT_MS 2000

typedef struct src {
    struct dds__listener *l;
    int idx;                 /* DDS__SOCK_UDP or DDS__SOCK_UNIX */
    int fd;
    struct event *ev;        /* the socket (inline) or wake_fd (threaded) */
    dds__reader *reader;     /* NULL: read inline */
    int wake_fd;
} src;

struct dds__listener {
    dds__listener_config cfg;
    char *unix_path;
    dds__packet_fn fn;
    void *user;
    dds__listener_counters *counters;
    const dds__logger *log;
    int udp_fd, unix_fd;
    uint16_t port;
    src srcs[2];
    /* Batch buffers reused for every inline read: BATCH * buffer_size bytes. */
    char *bufs;
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } ctl[BATCH];
    dds__ratelimit trunc_rl, drop_rl;
    uint64_t drops_logged;
};

static int set_rcvbuf(dds__listener *l, int fd) {
    int on = 1;
    /* Every datagram read then carries the socket's drop count: counted where it happens. */
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof(on));
    if (!l->cfg.so_rcvbuf) {
        /* Unset: ask for more than the kernel's default, without CAP_NET_ADMIN's override, and
         * accept whatever net.core.rmem_max leaves (the default's 212,992 bytes hold only a few
         * ms of one-metric datagrams, each costing ~1 KiB of kernel memory). */
        int v = (int)DDS__LISTENER_DEFAULT_RCVBUF;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
        return 0;
    }
    int v = (int)l->cfg.so_rcvbuf;
    /* SO_RCVBUFFORCE passes rmem_max when we have CAP_NET_ADMIN; fall back to the capped one. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) == 0) return 0;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) != 0) return -1;
    return 0;
}

static int bind_udp(dds__listener *l, dds_error *err) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return dds__error_set(err, DDS_ERR_DOGSTATSD_START, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)l->cfg.port)};
    sa.sin_addr.s_addr = htonl(l->cfg.non_local ? INADDR_ANY : INADDR_LOOPBACK);
    const char *host = l->cfg.non_local ? "0.0.0.0" : "127.0.0.1";
    if (set_rcvbuf(l, fd) != 0)
        dds__log_warn(l->log, "DogStatsD: could not set SO_RCVBUF to %u: %s", l->cfg.so_rcvbuf, strerror(errno));
    /* No SO_REUSEADDR: a second server on the same port must fail loudly, not share packets. */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return dds__error_set(err, DDS_ERR_DOGSTATSD_START, "cannot bind UDP %s:%d: %s", host, (int)l->cfg.port,
                              strerror(e));
    }
    socklen_t slen = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &slen);
    l->port = ntohs(sa.sin_port);
    l->udp_fd = fd;
    return 0;
}

static int bind_unix(dds__listener *l, dds_error *err) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(l->unix_path);
    if (n >= sizeof(sa.sun_path))
        return dds__error_set(err, DDS_ERR_DOGSTATSD_START, "Unix socket path too long: %s", l->unix_path);
    memcpy(sa.sun_path, l->unix_path, n + 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return dds__error_set(err, DDS_ERR_DOGSTATSD_START, "socket: %s", strerror(errno));
    set_rcvbuf(l, fd);
    struct stat st;
    if (lstat(l->unix_path, &st) == 0) {
        /* A leftover socket file of a dead process is replaced; a live one (someone answers a
         * connect) or any other kind of file is an error, never silently removed. */
        int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        bool live = S_ISSOCK(st.st_mode) && probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (probe >= 0) close(probe);
        if (!S_ISSOCK(st.st_mode) || live) {
            close(fd);
            return dds__error_set(err, DDS_ERR_DOGSTATSD_START, "cannot bind Unix socket %s: %s", l->unix_path,
                                  live ? "in use by another process" : "path exists and is not a socket");
        }
        unlink(l->unix_path);
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return dds__error_set(err, DDS_ERR_DOGSTATSD_START, "cannot bind Unix socket %s: %s", l->unix_path,
                              strerror(e));
    }
    l->unix_fd = fd;
    return 0;
}

dds__listener *dds__listener_new(const dds__listener_config *cfg, dds__packet_fn fn, void *user,
                                 dds__listener_counters *counters, const dds__logger *log, dds_error *err) {
    dds__listener *l = calloc(1, sizeof(*l));
    if (!l) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    l->cfg = *cfg;
    l->fn = fn;
    l->user = user;
    l->counters = counters;
    l->log = log;
    l->udp_fd = l->unix_fd = -1;
    for (int i = 0; i < 2; i++) l->srcs[i].fd = l->srcs[i].wake_fd = -1;
    l->trunc_rl.interval_ms = 10000;
    l->drop_rl.interval_ms = 10000;
    l->bufs = malloc((size_t)BATCH * cfg->buffer_size);
    if (!l->bufs || (cfg->unix_path && !(l->unix_path = strdup(cfg->unix_path)))) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    l->cfg.unix_path = l->unix_path;
    if (cfg->udp_enabled && bind_udp(l, err) != 0) goto fail;
    if (l->unix_path && bind_unix(l, err) != 0) goto fail;
    for (int i = 0; i < BATCH; i++) {
        l->iovs[i].iov_base = l->bufs + (size_t)i * cfg->buffer_size;
        l->iovs[i].iov_len = cfg->buffer_size;
        l->msgs[i].msg_hdr.msg_iov = &l->iovs[i];
        l->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return l;
fail:
    dds__listener_free(l);
    return NULL;
}

uint16_t dds__listener_port(const dds__listener *l) { return l ? l->port : 0; }

/* ---- loop thread: delivery and drop accounting ------------------------------------------------ */

static void log_drops(dds__listener *l) {
    const dds__listener_counters *c = l->counters;
    uint64_t q = dds__counter_get(&c->queue_dropped[0]) + dds__counter_get(&c->queue_dropped[1]);
    uint64_t k = dds__counter_get(&c->socket_dropped[0]) + dds__counter_get(&c->socket_dropped[1]);
    if (q + k <= l->drops_logged) return;
    uint64_t skipped = 0;
    if (!dds__ratelimit_allow(&l->drop_rl, dds__mono_ms(), &skipped)) return;
    dds__log_warn(l->log,
                  "DogStatsD: %llu datagram(s) dropped since the last message (totals: %llu with the receive "
                  "queue full, %llu by the kernel with the socket buffer full); the process did not read as fast "
                  "as clients sent: raise DD_DOGSTATSD_QUEUE_BYTES or DD_DOGSTATSD_SO_RCVBUF, or pack lines "
                  "into fewer datagrams",
                  (unsigned long long)(q + k - l->drops_logged), (unsigned long long)q, (unsigned long long)k);
    l->drops_logged = q + k;
}

static void deliver(dds__listener *l, const char *buf, size_t len, bool truncated) {
    /* Counted before dispatch, so a reader that sees a line's effect also sees its datagram. */
    dds__counter_add(&l->counters->packets, 1);
    dds__counter_add(&l->counters->bytes, len);
    if (!truncated) {
        l->fn(l->user, buf, len);
        return;
    }
    /* The kernel cut the datagram at buffer_size: its last line is incomplete and its first
     * lines may be fine, but which line was cut cannot be known reliably, so the whole datagram
     * is dropped rather than parsed as if whole. */
    dds__counter_add(&l->counters->truncated, 1);
    uint64_t skipped = 0;
    if (dds__ratelimit_allow(&l->trunc_rl, dds__mono_ms(), &skipped))
        dds__log_warn(l->log,
                      "DogStatsD: dropped a datagram larger than the %u-byte buffer (%llu more since the "
                      "last message); raise DD_DOGSTATSD_BUFFER_SIZE",
                      l->cfg.buffer_size, (unsigned long long)skipped);
}

/* ---- inline reading (no receive thread) -------------------------------------------------------- */

/* One recvmmsg batch; returns datagrams read, 0 when the socket is empty, -1 on error. */
static int read_batch(dds__listener *l, src *sc) {
    for (int i = 0; i < BATCH; i++) {
        struct msghdr *h = &l->msgs[i].msg_hdr;
        h->msg_name = NULL;
        h->msg_namelen = 0;
        h->msg_control = l->ctl[i].buf;
        h->msg_controllen = sizeof(l->ctl[i].buf);
        h->msg_flags = 0;
    }
    int n = recvmmsg(sc->fd, l->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
        dds__counter_add(&l->counters->read_errors, 1);
        return -1;
    }
    uint64_t kd = 0;
    for (int i = 0; i < n; i++) {
        uint64_t d = dds__sock_drops_cmsg(&l->msgs[i].msg_hdr);
        if (d > kd) kd = d;
        deliver(l, (const char *)l->iovs[i].iov_base, l->msgs[i].msg_len,
                (l->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0);
    }
    if (kd > dds__counter_get(&l->counters->socket_dropped[sc->idx]))
        dds__counter_set(&l->counters->socket_dropped[sc->idx], kd);
    return n;
}

static size_t read_fd(dds__listener *l, src *sc, int max_batches) {
    size_t total = 0;
    for (int b = 0; b < max_batches; b++) {
        int n = read_batch(l, sc);
        if (n <= 0) break;
        total += (size_t)n;
        if (n < BATCH) break;
    }
    log_drops(l);
    return total;
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    src *sc = arg;
    read_fd(sc->l, sc, MAX_BATCHES_PER_EVENT);
}

/* ---- threaded reading: consume the ring --------------------------------------------------------- */

/* Up to budget records; *more says whether the ring still held some at the end. */
static size_t consume(dds__listener *l, src *sc, size_t budget, bool *more) {
    dds__ring *ring = dds__reader_ring(sc->reader);
    size_t n = 0;
    const char *data;
    size_t len;
    uint32_t flags;
    while (n < budget && dds__ring_peek(ring, &data, &len, &flags)) {
        deliver(l, data, len, (flags & DDS__RING_TRUNCATED) != 0);
        dds__ring_release(ring);
        n++;
    }
    *more = n == budget || dds__ring_consumer_idle_check(ring);
    return n;
}

static void clear_wake(int fd) {
    uint64_t v;
    ssize_t got = read(fd, &v, sizeof(v));
    (void)got;
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    src *sc = arg;
    clear_wake((int)fd);
    bool more = false;
    consume(sc->l, sc, RING_BUDGET, &more);
    /* Still records after the budget: come back after the other events of this loop turn,
     * without waiting for a wake-up the reader only sends when the ring was empty. */
    if (more) event_active(sc->ev, EV_READ, 0);
    log_drops(sc->l);
}

static size_t consume_all(dds__listener *l, src *sc) {
    /* Every record takes at least 8 bytes: this many covers all the ring held when called. */
    size_t cap = dds__ring_capacity(dds__reader_ring(sc->reader)) / 8;
    bool more;
    return consume(l, sc, cap, &more);
}

/* ---- attach, drain, close ------------------------------------------------------------------------- */

static int attach_src(dds__listener *l, src *sc, struct event_base *base) {
    if (l->cfg.queue_bytes) {
        sc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        dds__reader_config rc = {
            .fd = sc->fd,
            .buffer_size = l->cfg.buffer_size,
            .queue_bytes = l->cfg.queue_bytes,
            .wake_fd = sc->wake_fd,
            .thread_name = sc->idx == DDS__SOCK_UDP ? "dds-dsd-udp" : "dds-dsd-unix",
            .queue_dropped = &l->counters->queue_dropped[sc->idx],
            .socket_dropped = &l->counters->socket_dropped[sc->idx],
        };
        if (sc->wake_fd >= 0) {
            sc->ev = event_new(base, sc->wake_fd, EV_READ | EV_PERSIST, on_wake, sc);
            if (sc->ev && event_add(sc->ev, NULL) == 0 && (sc->reader = dds__reader_start(&rc))) return 0;
        }
        /* No thread or no memory for the ring: this socket is read on the loop thread. */
        dds__log_warn(l->log, "DogStatsD: cannot start the receive thread of the %s socket (out of memory or "
                              "threads): reading it on the loop thread", sc->idx == DDS__SOCK_UDP ? "UDP" : "Unix");
        if (sc->ev) {
            event_free(sc->ev);
            sc->ev = NULL;
        }
        if (sc->wake_fd >= 0) close(sc->wake_fd);
        sc->wake_fd = -1;
    }
    sc->ev = event_new(base, sc->fd, EV_READ | EV_PERSIST, on_readable, sc);
    if (!sc->ev || event_add(sc->ev, NULL) != 0) return -1;
    return 0;
}

int dds__listener_attach(dds__listener *l, struct event_base *base) {
    l->srcs[DDS__SOCK_UDP].fd = l->udp_fd;
    l->srcs[DDS__SOCK_UNIX].fd = l->unix_fd;
    for (int i = 0; i < 2; i++) {
        src *sc = &l->srcs[i];
        sc->l = l;
        sc->idx = i;
        if (sc->fd >= 0 && attach_src(l, sc, base) != 0) return -1;
    }
    return 0;
}

/* Ask every receive thread to empty its socket (and exit, with stop), processing the rings
 * meanwhile so a full ring never drops what the request is for; then process what is left. */
static size_t drain(dds__listener *l, bool stop) {
    size_t total = 0;
    uint64_t ticket[2] = {0, 0};
    struct pollfd pf[2];
    int npf = 0;
    for (int i = 0; i < 2; i++) {
        src *sc = &l->srcs[i];
        if (sc->fd < 0) continue;
        if (!sc->reader) {
            total += read_fd(l, sc, DDS__READER_DRAIN_MAX_BATCHES);
            /* Drops after the last datagram read are in no control message yet. */
            uint64_t kd = dds__sock_drops_now(sc->fd);
            if (kd > dds__counter_get(&l->counters->socket_dropped[sc->idx]))
                dds__counter_set(&l->counters->socket_dropped[sc->idx], kd);
            continue;
        }
        ticket[i] = dds__reader_request(sc->reader, stop);
        pf[npf++] = (struct pollfd){.fd = sc->wake_fd, .events = POLLIN};
    }
    int64_t until = dds__mono_ms() + DRAIN_TIMEOUT_MS;
    while (npf) {
        bool all = true;
        for (int i = 0; i < 2; i++) {
            src *sc = &l->srcs[i];
            if (sc->fd < 0 || !sc->reader) continue;
            clear_wake(sc->wake_fd);
            bool answered = dds__reader_drained(sc->reader, ticket[i]);
            /* Read after the answer: every record the request is for was published before it. */
            total += consume_all(l, sc);
            all = all && answered;
        }
        if (all) break;
        if (dds__mono_ms() >= until) {
            dds__log_warn(l->log, "DogStatsD: a receive thread did not empty its socket within %d ms; %s without "
                                  "what it still holds", DRAIN_TIMEOUT_MS, stop ? "stopping" : "flushing");
            break;
        }
        poll(pf, (nfds_t)npf, 1);
    }
    log_drops(l);
    return total;
}

size_t dds__listener_drain(dds__listener *l) { return drain(l, false); }

size_t dds__listener_drain_and_close(dds__listener *l) {
    size_t total = drain(l, true);
    for (int i = 0; i < 2; i++) {
        src *sc = &l->srcs[i];
        if (!sc->reader) continue;
        /* The thread has answered its stop request (or the drain gave up): once joined nothing
         * writes the ring any more, and what it holds is the last of this socket. */
        dds__reader *rd = sc->reader;
        if (dds__reader_drained(rd, dds__reader_request(rd, true))) {
            total += consume_all(l, sc);
        }
    }
    dds__listener_close(l);
    return total;
}

void dds__listener_close(dds__listener *l) {
    if (!l) return;
    for (int i = 0; i < 2; i++) {
        src *sc = &l->srcs[i];
        if (sc->ev) {
            event_free(sc->ev);
            sc->ev = NULL;
        }
        if (sc->reader) {
            dds__reader_free(sc->reader);
            sc->reader = NULL;
        }
        if (sc->wake_fd >= 0) {
            close(sc->wake_fd);
            sc->wake_fd = -1;
        }
        sc->fd = -1;
    }
    if (l->udp_fd >= 0) { close(l->udp_fd); l->udp_fd = -1; }
    if (l->unix_fd >= 0) {
        close(l->unix_fd);
        l->unix_fd = -1;
        unlink(l->unix_path);
    }
}

void dds__listener_free(dds__listener *l) {
    if (!l) return;
    dds__listener_close(l);
    free(l->bufs);
    free(l->unix_path);
    free(l);
}
