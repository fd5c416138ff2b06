/* test_listener.c - the DogStatsD sockets (dogstatsd/listener.c, reader.c) over real loopback
 * sockets, with an event_base on its own thread as the loop. The packet callback can block the
 * loop (a host's code keeping the loop thread off the CPU, made deterministic): datagrams that
 * fit the ring are all processed afterwards, while the same stall without a receive thread loses
 * datagrams in the kernel (counted exactly, SO_RXQ_OVFL/SO_MEMINFO: the control that shows this
 * test can fail); a ring too small counts its drops and processed + dropped == sent; a drain
 * right after the sends (what dds_flush does) and a stop process everything already sent, over
 * UDP and the Unix socket; truncated datagrams go through the ring as counted drops. */
#include "dogstatsd/listener.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "common/clock.h"
#include "test.h"

typedef struct rig {
    struct event_base *base;
    pthread_t th;
    dds__listener_counters c;
    dds__listener *l;
    dds__logger log;
    uint16_t port;
    int tx;                       /* sending socket */
    struct sockaddr_storage to;
    socklen_t to_len;
    /* loop thread */
    _Atomic uint64_t processed;   /* datagrams handed to the callback */
    _Atomic int stall_ms;         /* the next callback blocks this long (once) */
    _Atomic int stalled;          /* set while it blocks */
    _Atomic uint64_t bad;         /* datagrams whose content is not "m<seq>:1|c" */
} rig;

static void on_packet(void *user, const char *buf, size_t len) {
    rig *r = user;
    int ms = atomic_exchange(&r->stall_ms, 0);
    if (ms) {
        atomic_store(&r->stalled, 1);
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
        atomic_store(&r->stalled, 0);
    }
    if (len < 5 || buf[0] != 'm' || memcmp(buf + len - 4, ":1|c", 4) != 0) atomic_fetch_add(&r->bad, 1);
    atomic_fetch_add(&r->processed, 1);
}

static void *loop_main(void *arg) {
    event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void rig_start(rig *r, size_t queue_bytes, uint32_t so_rcvbuf, const char *unix_path, uint32_t buffer_size) {
    memset(r, 0, sizeof(*r));
    r->log.level = DDS_LOG_ERROR;
    r->base = event_base_new();
    dds__listener_config lc = {.udp_enabled = unix_path == NULL, .port = 0, .unix_path = unix_path,
                               .buffer_size = buffer_size, .so_rcvbuf = so_rcvbuf, .queue_bytes = queue_bytes};
    dds_error err = {0};
    r->l = dds__listener_new(&lc, on_packet, r, &r->c, &r->log, &err);
    if (!r->l) {
        fprintf(stderr, "listener: %s\n", err.message);
        abort();
    }
    if (dds__listener_attach(r->l, r->base) != 0) abort();
    r->port = dds__listener_port(r->l);
    if (unix_path) {
        struct sockaddr_un *su = (struct sockaddr_un *)&r->to;
        su->sun_family = AF_UNIX;
        snprintf(su->sun_path, sizeof(su->sun_path), "%s", unix_path);
        r->to_len = sizeof(*su);
        r->tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    } else {
        struct sockaddr_in *si = (struct sockaddr_in *)&r->to;
        si->sin_family = AF_INET;
        si->sin_port = htons(r->port);
        si->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        r->to_len = sizeof(*si);
        r->tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    pthread_create(&r->th, NULL, loop_main, r->base);
}

static void send_seq(rig *r, uint64_t seq) {
    char m[32];
    int n = snprintf(m, sizeof(m), "m%llu:1|c", (unsigned long long)seq);
    /* Unix: a blocking send waits for room (no loss); UDP never waits. */
    if (sendto(r->tx, m, (size_t)n, 0, (struct sockaddr *)&r->to, r->to_len) != n)
        CHECK_MSG(0, "sendto: %s", strerror(errno));
}

/* Run fn on the loop thread and wait for it (bounded by the loop's own bounds). */
typedef struct call {
    rig *r;
    size_t (*fn)(dds__listener *);
    _Atomic int done;
} call;

static void on_call(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    call *c = arg;
    c->fn(c->r->l);
    atomic_store(&c->done, 1);
}

static void on_loop(rig *r, size_t (*fn)(dds__listener *)) {
    call c = {.r = r, .fn = fn};
    struct timeval zero = {0, 0};
    event_base_once(r->base, -1, EV_TIMEOUT, on_call, &c, &zero);
    int64_t until = dds__mono_ms() + 20000;
    while (!atomic_load(&c.done) && dds__mono_ms() < until) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    CHECK_MSG(atomic_load(&c.done), "the loop did not run the call within 20 s");
}

static size_t close_fn(dds__listener *l) {
    dds__listener_close(l);
    return 0;
}

static void on_break(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void rig_stop(rig *r) {
    on_loop(r, close_fn);
    struct timeval zero = {0, 0};
    event_base_once(r->base, -1, EV_TIMEOUT, on_break, r->base, &zero);
    pthread_join(r->th, NULL);
    dds__listener_free(r->l);
    event_base_free(r->base);
    close(r->tx);
}

static uint64_t dropped(const rig *r) {
    return dds__counter_get(&r->c.queue_dropped[0]) + dds__counter_get(&r->c.queue_dropped[1]) +
           dds__counter_get(&r->c.socket_dropped[0]) + dds__counter_get(&r->c.socket_dropped[1]);
}

/* Block the loop for stall_ms on the next datagram, and send n more while it is blocked, in
 * bursts (a client at ~100k/s), all within the stall. Returns how many were sent in total. */
static uint64_t send_during_stall(rig *r, int stall_ms, uint64_t n) {
    atomic_store(&r->stall_ms, stall_ms);
    send_seq(r, 0);
    int64_t until = dds__mono_ms() + 5000;
    while (!atomic_load(&r->stalled) && dds__mono_ms() < until) sched_yield();
    CHECK(atomic_load(&r->stalled));
    int64_t t0 = dds__mono_ms();
    for (uint64_t i = 1; i <= n; i++) {
        send_seq(r, i);
        if (i % 100 == 0) {
            struct timespec ts = {0, 500000};
            nanosleep(&ts, NULL);
        }
    }
    int64_t took = dds__mono_ms() - t0;
    CHECK_MSG(took < stall_ms, "sending took %lld ms, longer than the %d ms stall", (long long)took, stall_ms);
    CHECK_MSG(atomic_load(&r->stalled), "the loop was no longer blocked when the last datagram was sent");
    return n + 1;
}

/* What is tested is the loop thread's stall, not how soon the receive thread gets a core: with
 * both cores busy that can take a few ms (Linux 6.18 here), longer than the kernel's default
 * buffer (212,992 bytes, ~200 such datagrams) lasts at this rate. So the socket gets 4 MiB
 * (SO_RCVBUF doubles what is asked; SO_RCVBUFFORCE passes rmem_max as root): ~4,000 datagrams,
 * a fifth of the burst, so the control test without a receive thread still loses most of it. */
#define TEST_RCVBUF (2u << 20)
#define STALL_MS 1500
#define STALL_N 20000

TEST(stalled_loop_loses_nothing_that_fits) {
    rig r;
    rig_start(&r, 4u << 20, TEST_RCVBUF, NULL, 8192);
    uint64_t sent = send_during_stall(&r, STALL_MS, STALL_N);
    on_loop(&r, dds__listener_drain);
    CHECK_EQ_INT(atomic_load(&r.processed), sent);
    CHECK_EQ_INT(dropped(&r), 0);
    CHECK_EQ_INT(atomic_load(&r.bad), 0);
    CHECK_EQ_INT(dds__counter_get(&r.c.packets), sent);
    rig_stop(&r);
}

TEST(control_without_thread_the_kernel_drops_and_counts) {
    /* The same stall with the loop reading the socket itself: most of the burst does not fit
     * the kernel buffer. The drops are the kernel's own count, and nothing is unaccounted for. */
    rig r;
    rig_start(&r, 0, TEST_RCVBUF, NULL, 8192);
    uint64_t sent = send_during_stall(&r, STALL_MS, STALL_N);
    on_loop(&r, dds__listener_drain);
    uint64_t got = atomic_load(&r.processed);
    CHECK_MSG(got < sent, "no loss without the receive thread (%llu of %llu): the stall test shows nothing",
              (unsigned long long)got, (unsigned long long)sent);
    CHECK_EQ_INT(dds__counter_get(&r.c.socket_dropped[0]), sent - got);
    CHECK_EQ_INT(dds__counter_get(&r.c.queue_dropped[0]), 0);
    rig_stop(&r);
}

TEST(ring_overflow_is_counted_exactly) {
    /* A ring of ~500 records: most of the burst is dropped at the ring, and processed + ring
     * drops + kernel drops == sent. */
    rig r;
    rig_start(&r, 2 * (8192 + 16), TEST_RCVBUF, NULL, 8192);
    uint64_t sent = send_during_stall(&r, STALL_MS, STALL_N);
    on_loop(&r, dds__listener_drain);
    uint64_t got = atomic_load(&r.processed);
    CHECK(dds__counter_get(&r.c.queue_dropped[0]) > 0);
    CHECK_EQ_INT(got + dropped(&r), sent);
    CHECK(got >= 400); /* the ring's worth was kept */
    rig_stop(&r);
}

TEST(drain_right_after_sending_processes_everything) {
    /* dds_flush's promise: what was sent before the call is processed by it. 300 rounds of a
     * few datagrams, each followed at once by a drain on the loop. */
    rig r;
    rig_start(&r, 4u << 20, 0, NULL, 8192);
    uint64_t sent = 0;
    for (int round = 0; round < 300; round++) {
        int k = 1 + round % 40;
        for (int i = 0; i < k; i++) send_seq(&r, sent++);
        on_loop(&r, dds__listener_drain);
        if (atomic_load(&r.processed) != sent) {
            CHECK_MSG(0, "round %d: %llu processed of %llu sent", round, (unsigned long long)atomic_load(&r.processed),
                      (unsigned long long)sent);
            break;
        }
    }
    CHECK_EQ_INT(dropped(&r), 0);
    rig_stop(&r);
}

TEST(stop_processes_the_socket_and_the_ring) {
    rig r;
    rig_start(&r, 4u << 20, TEST_RCVBUF, NULL, 8192);
    uint64_t sent = send_during_stall(&r, STALL_MS, STALL_N);
    /* Queued behind the stall: runs right after it, with most of the burst in the ring. */
    on_loop(&r, dds__listener_drain_and_close);
    CHECK_EQ_INT(atomic_load(&r.processed), sent);
    CHECK_EQ_INT(dropped(&r), 0);
    rig_stop(&r); /* close again: idempotent */
}

TEST(unix_socket_stall_and_stop) {
    char path[64];
    snprintf(path, sizeof(path), "/tmp/dds-test-listener-%d.sock", (int)getpid());
    rig r;
    rig_start(&r, 4u << 20, 0, path, 8192);
    uint64_t sent = send_during_stall(&r, STALL_MS, 5000);
    on_loop(&r, dds__listener_drain_and_close);
    CHECK_EQ_INT(atomic_load(&r.processed), sent);
    CHECK_EQ_INT(dropped(&r), 0);
    CHECK(access(path, F_OK) != 0); /* the socket file is removed */
    rig_stop(&r);
}

TEST(truncated_datagrams_through_the_ring) {
    rig r;
    rig_start(&r, 1u << 20, 0, NULL, 512);
    char big[600];
    memset(big, 'x', sizeof(big));
    CHECK(sendto(r.tx, big, sizeof(big), 0, (struct sockaddr *)&r.to, r.to_len) == (ssize_t)sizeof(big));
    send_seq(&r, 1);
    on_loop(&r, dds__listener_drain);
    CHECK_EQ_INT(dds__counter_get(&r.c.truncated), 1);
    CHECK_EQ_INT(dds__counter_get(&r.c.packets), 2);
    CHECK_EQ_INT(dds__counter_get(&r.c.bytes), 512 + 6); /* what was read of it, as before */
    CHECK_EQ_INT(atomic_load(&r.processed), 1); /* the truncated one never reaches the parser */
    CHECK_EQ_INT(atomic_load(&r.bad), 0);
    rig_stop(&r);
}

int main(void) {
    evthread_use_pthreads();
    RUN(stalled_loop_loses_nothing_that_fits);
    RUN(control_without_thread_the_kernel_drops_and_counts);
    RUN(ring_overflow_is_counted_exactly);
    RUN(drain_right_after_sending_processes_everything);
    RUN(stop_processes_the_socket_and_the_ring);
    RUN(unix_socket_stall_and_stop);
    RUN(truncated_datagrams_through_the_ring);
    return TEST_REPORT();
}
