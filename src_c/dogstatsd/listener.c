/* listener.c - DogStatsD sockets. In: datagrams from UDP and the optional Unix socket. Out: each
 * whole datagram handed to the packet callback from a reused batch buffer. Never parses a
 * truncated datagram (MSG_TRUNC: counted and dropped), never blocks, never allocates per packet. */
#include "dogstatsd/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "error.h"

/* Datagrams per recvmmsg call, and calls per readiness event before yielding to the loop so
 * the trace receiver and timers keep running under a UDP flood. */
#define BATCH 32
#define MAX_BATCHES_PER_EVENT 64

struct dds__listener {
    dds__listener_config cfg;
    char *unix_path;
    dds__packet_fn fn;
    void *user;
    dds__listener_counters *counters;
    const dds__logger *log;
    int udp_fd, unix_fd;
    uint16_t port;
    struct event *udp_ev, *unix_ev;
    /* Batch buffers reused for every read: BATCH * buffer_size bytes. */
    char *bufs;
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    dds__ratelimit trunc_rl;
};

static int set_rcvbuf(dds__listener *l, int fd) {
    if (!l->cfg.so_rcvbuf) return 0;
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
    l->trunc_rl.interval_ms = 10000;
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

/* One recvmmsg batch; returns datagrams read, 0 when the socket is empty, -1 on error. */
static int read_batch(dds__listener *l, int fd) {
    for (int i = 0; i < BATCH; i++) {
        l->msgs[i].msg_hdr.msg_name = NULL;
        l->msgs[i].msg_hdr.msg_namelen = 0;
        l->msgs[i].msg_hdr.msg_control = NULL;
        l->msgs[i].msg_hdr.msg_controllen = 0;
        l->msgs[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(fd, l->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
        dds__counter_add(&l->counters->read_errors, 1);
        return -1;
    }
    uint64_t truncated = 0;
    /* Counted before dispatch, so a reader that sees a line's effect also sees its datagram. */
    dds__counter_add(&l->counters->packets, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        size_t len = l->msgs[i].msg_len;
        dds__counter_add(&l->counters->bytes, len);
        if (l->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
            /* The kernel cut the datagram at buffer_size: its last line is incomplete and its
             * first lines may be fine, but which line was cut cannot be known reliably, so the
             * whole datagram is dropped rather than parsed as if whole. */
            truncated++;
            continue;
        }
        l->fn(l->user, (const char *)l->iovs[i].iov_base, len);
    }
    if (truncated) {
        dds__counter_add(&l->counters->truncated, truncated);
        uint64_t skipped = 0;
        if (dds__ratelimit_allow(&l->trunc_rl, dds__mono_ms(), &skipped))
            dds__log_warn(l->log,
                          "DogStatsD: dropped a datagram larger than the %u-byte buffer (%llu more since the "
                          "last message); raise DD_DOGSTATSD_BUFFER_SIZE",
                          l->cfg.buffer_size, (unsigned long long)skipped);
    }
    return n;
}

static size_t read_fd(dds__listener *l, int fd, int max_batches) {
    size_t total = 0;
    for (int b = 0; b < max_batches; b++) {
        int n = read_batch(l, fd);
        if (n <= 0) break;
        total += (size_t)n;
        if (n < BATCH) break;
    }
    return total;
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    read_fd(arg, (int)fd, MAX_BATCHES_PER_EVENT);
}

int dds__listener_attach(dds__listener *l, struct event_base *base) {
    if (l->udp_fd >= 0) {
        l->udp_ev = event_new(base, l->udp_fd, EV_READ | EV_PERSIST, on_readable, l);
        if (!l->udp_ev || event_add(l->udp_ev, NULL) != 0) return -1;
    }
    if (l->unix_fd >= 0) {
        l->unix_ev = event_new(base, l->unix_fd, EV_READ | EV_PERSIST, on_readable, l);
        if (!l->unix_ev || event_add(l->unix_ev, NULL) != 0) return -1;
    }
    return 0;
}

size_t dds__listener_drain(dds__listener *l) {
    /* Bounded: at a sustained flood the socket never empties, and stop must still finish. */
    size_t total = 0;
    if (l->udp_fd >= 0) total += read_fd(l, l->udp_fd, 4096);
    if (l->unix_fd >= 0) total += read_fd(l, l->unix_fd, 4096);
    return total;
}

void dds__listener_close(dds__listener *l) {
    if (!l) return;
    if (l->udp_ev) { event_free(l->udp_ev); l->udp_ev = NULL; }
    if (l->unix_ev) { event_free(l->unix_ev); l->unix_ev = NULL; }
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
