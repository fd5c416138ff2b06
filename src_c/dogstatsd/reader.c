/* reader.c - the receive thread of one DogStatsD socket. In: datagrams (recvmmsg batches of 32
 * into its own buffers). Out: records in the ring, a wake-up of the loop when the ring goes from
 * empty to non-empty. It never parses, never allocates after start, and never blocks anywhere
 * but in poll() on the socket and its control eventfd; a full ring drops the datagram and counts
 * it here (the loop logs the count at a bounded rate). */
#include "dogstatsd/reader.h"

#include <errno.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
/* Between two looks at the request ticket while the socket never empties (a flood). */
#define CHECK_EVERY_BATCHES 64
/* The loop is woken at most this long after the ring went non-empty, or at once when it holds
 * SIGNAL_BYTES: waking it for every few datagrams (a paced client sends a batch every ms or
 * less) cost as much CPU again as the parsing (measured: 2.4 -> 3.7 CPU s per million
 * one-metric datagrams at 100k/s). Metrics are aggregated in 10 s buckets: 1 ms is nothing, and
 * flush and stop do not wait for it (they consume the ring themselves). */
#define SIGNAL_DELAY_NS 1000000
#define SIGNAL_BYTES (256u * 1024)
/* A client's batch (sendmmsg, or a burst of sends) arrives one datagram at a time: a thread that
 * goes back to poll() as soon as the socket is empty is woken again for each of the next few.
 * After a pass that read something it naps this long first, and reads the rest in one pass
 * (the socket fills by ~10 datagrams in that time at 200k/s; its default holds ~200). */
#define NAP_NS 50000

struct dds__reader {
    dds__reader_config cfg;
    dds__ring *ring;
    int ctl_fd; /* eventfd: the loop wakes the thread for a request */
    pthread_t th;
    bool started;
    /* Tickets: a request count shifted left once, its low bit set when it asks the thread to
     * exit: one atomic word, so the thread never sees "stop" without the ticket that asks it. */
    _Atomic uint64_t req;  /* last ticket asked for (loop writes) */
    _Atomic uint64_t ack;  /* last ticket answered (thread writes) */
    /* thread only */
    uint64_t kernel_drops;
    bool owe_wake;            /* the loop may be idle and has records to read: wake it by owe_at */
    int64_t owe_at_ns;
    size_t signal_bytes;
    char *bufs;
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } ctl[BATCH];
};

uint64_t dds__sock_drops_cmsg(const struct msghdr *h) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)h); c; c = CMSG_NXTHDR((struct msghdr *)h, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            uint32_t v;
            memcpy(&v, CMSG_DATA(c), sizeof(v));
            return v;
        }
    return 0;
}

uint64_t dds__sock_drops_now(int fd) {
    uint32_t mi[SK_MEMINFO_VARS];
    socklen_t len = sizeof(mi);
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mi, &len) != 0 || len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
        return 0;
    return mi[SK_MEMINFO_DROPS];
}

static void note_kernel_drops(dds__reader *r, uint64_t v) {
    /* Both sources give the socket's total since it was created, which is ours. */
    if (v > r->kernel_drops) {
        r->kernel_drops = v;
        dds__counter_set(r->cfg.socket_dropped, v);
    }
}

static void wake(int fd) {
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof(one));
    (void)n; /* EAGAIN only when the counter is near 2^64: the loop is awake then anyway */
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* After a publish: wake the loop now, or owe it a wake-up by a deadline. */
static void settle_wake(dds__reader *r, bool went_non_empty) {
    if (went_non_empty && !r->owe_wake) {
        r->owe_wake = true;
        r->owe_at_ns = mono_ns() + SIGNAL_DELAY_NS;
    }
    if (r->owe_wake && (dds__ring_used(r->ring) >= r->signal_bytes || mono_ns() >= r->owe_at_ns)) {
        r->owe_wake = false;
        wake(r->cfg.wake_fd);
    }
}

/* One recvmmsg batch into the ring. Returns datagrams read, 0 when the socket was empty, -1 on
 * an error other than "empty". */
static int read_batch(dds__reader *r) {
    for (int i = 0; i < BATCH; i++) {
        struct msghdr *h = &r->msgs[i].msg_hdr;
        h->msg_name = NULL;
        h->msg_namelen = 0;
        h->msg_control = r->ctl[i].buf;
        h->msg_controllen = sizeof(r->ctl[i].buf);
        h->msg_flags = 0;
    }
    int n = recvmmsg(r->cfg.fd, r->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    uint64_t dropped = 0, kd = 0;
    for (int i = 0; i < n; i++) {
        const struct msghdr *h = &r->msgs[i].msg_hdr;
        uint64_t d = dds__sock_drops_cmsg(h);
        if (d > kd) kd = d;
        size_t len = r->msgs[i].msg_len;
        bool ok = (h->msg_flags & MSG_TRUNC) ? dds__ring_push(r->ring, NULL, len, DDS__RING_TRUNCATED)
                                             : dds__ring_push(r->ring, r->iovs[i].iov_base, len, 0);
        if (!ok) dropped++;
    }
    if (dropped) dds__counter_add(r->cfg.queue_dropped, dropped);
    note_kernel_drops(r, kd);
    settle_wake(r, dds__ring_publish(r->ring));
    return n;
}

static void *reader_main(void *arg) {
    dds__reader *r = arg;
    uint64_t answered = 0;
    bool napped = false;
    for (;;) {
        uint64_t want = atomic_load_explicit(&r->req, memory_order_acquire);
        bool stopping = want & 1;
        bool empty = false, restart = false;
        size_t got = 0;
        for (size_t batches = 0; !empty && batches < DDS__READER_DRAIN_MAX_BATCHES;) {
            int n = read_batch(r);
            if (n < 0) {
                /* ENOMEM and the like: nothing to do but let it pass without spinning. */
                struct timespec ms = {0, 1000000};
                nanosleep(&ms, NULL);
                break;
            }
            empty = n < BATCH;
            got += (size_t)n;
            batches++;
            if (batches % CHECK_EVERY_BATCHES == 0 &&
                atomic_load_explicit(&r->req, memory_order_acquire) != want) {
                restart = true; /* answer the newer request with a pass of its own */
                break;
            }
        }
        if (want != answered && !restart) {
            /* The socket was read until empty (or the bound) after the request was made: all it
             * held then is in the ring now. Drops the kernel made meanwhile are counted first.
             * A pass cut short by a newer request answers nothing: the next pass answers both. */
            note_kernel_drops(r, dds__sock_drops_now(r->cfg.fd));
            answered = want;
            atomic_store_explicit(&r->ack, want, memory_order_release);
            r->owe_wake = false; /* this wake-up also pays what was owed */
            wake(r->cfg.wake_fd);
        }
        if (stopping) return NULL;
        if (restart || !empty) continue;
        if (got && !napped) {
            struct timespec nap = {0, NAP_NS};
            nanosleep(&nap, NULL);
            napped = true;
            continue;
        }
        napped = false;
        struct pollfd p[2] = {{.fd = r->cfg.fd, .events = POLLIN}, {.fd = r->ctl_fd, .events = POLLIN}};
        struct timespec ts, *tmo = NULL;
        if (r->owe_wake) {
            int64_t left = r->owe_at_ns - mono_ns();
            if (left < 0) left = 0;
            ts.tv_sec = (time_t)(left / 1000000000);
            ts.tv_nsec = (long)(left % 1000000000);
            tmo = &ts;
        }
        int pr = ppoll(p, 2, tmo, NULL);
        if (pr == 0) settle_wake(r, false); /* the deadline: pay the wake-up */
        if (pr > 0 && (p[1].revents & POLLIN)) {
            uint64_t v;
            ssize_t rd = read(r->ctl_fd, &v, sizeof(v));
            (void)rd;
        }
    }
}

dds__reader *dds__reader_start(const dds__reader_config *cfg) {
    dds__reader *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->cfg = *cfg;
    r->signal_bytes = cfg->queue_bytes / 4 < SIGNAL_BYTES ? cfg->queue_bytes / 4 : SIGNAL_BYTES;
    r->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->ring = dds__ring_new(cfg->queue_bytes, cfg->buffer_size);
    r->bufs = malloc((size_t)BATCH * cfg->buffer_size);
    if (r->ctl_fd < 0 || !r->ring || !r->bufs) goto fail;
    for (int i = 0; i < BATCH; i++) {
        r->iovs[i].iov_base = r->bufs + (size_t)i * cfg->buffer_size;
        r->iovs[i].iov_len = cfg->buffer_size;
        r->msgs[i].msg_hdr.msg_iov = &r->iovs[i];
        r->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&r->th, NULL, reader_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) goto fail;
    r->started = true;
    if (cfg->thread_name) pthread_setname_np(r->th, cfg->thread_name);
    return r;
fail:
    if (r->ctl_fd >= 0) close(r->ctl_fd);
    dds__ring_free(r->ring);
    free(r->bufs);
    free(r);
    return NULL;
}

dds__ring *dds__reader_ring(dds__reader *r) { return r->ring; }

uint64_t dds__reader_request(dds__reader *r, bool stop) {
    uint64_t prev = atomic_load_explicit(&r->req, memory_order_relaxed);
    if (prev & 1) return prev; /* already asked to exit: that ticket answers this too */
    uint64_t t = (((prev >> 1) + 1) << 1) | (stop ? 1u : 0u);
    atomic_store_explicit(&r->req, t, memory_order_release);
    wake(r->ctl_fd);
    return t;
}

bool dds__reader_drained(const dds__reader *r, uint64_t ticket) {
    return atomic_load_explicit(&((dds__reader *)r)->ack, memory_order_acquire) >= ticket;
}

void dds__reader_free(dds__reader *r) {
    if (!r) return;
    if (r->started) {
        dds__reader_request(r, true);
        pthread_join(r->th, NULL);
    }
    close(r->ctl_fd);
    dds__ring_free(r->ring);
    free(r->bufs);
    free(r);
}
