/* test_ring.c - the SPSC datagram ring (dogstatsd/ring.c): order and content, full, wrap-around
 * with records of every size, the truncated flag, the size bound, and a producer and a consumer
 * on two threads (a million records, variable sizes, checked one by one) using the wake-up
 * protocol the listener uses: the consumer sleeps on an eventfd only after the idle check, the
 * producer writes it only when publish says the consumer may be idle. A lost wake-up shows as a
 * poll timeout. Run under TSan by scripts/check-memory. */
#include "dogstatsd/ring.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include "test.h"

static bool pop(dds__ring *r, char *out, size_t *len, uint32_t *flags) {
    const char *d;
    if (!dds__ring_peek(r, &d, len, flags)) return false;
    if (!(*flags & DDS__RING_TRUNCATED)) memcpy(out, d, *len);
    dds__ring_release(r);
    return true;
}

TEST(rejects_too_small) {
    CHECK(dds__ring_new(2 * dds__ring_record_bytes(8192) - 8, 8192) == NULL);
    dds__ring *r = dds__ring_new(2 * dds__ring_record_bytes(8192), 8192);
    CHECK(r != NULL);
    dds__ring_free(r);
    dds__ring_free(NULL);
}

TEST(order_content_and_wake_signal) {
    dds__ring *r = dds__ring_new(4096, 512);
    char out[512];
    size_t len;
    uint32_t fl;
    CHECK(!dds__ring_publish(r));            /* nothing pushed: nothing to wake for */
    CHECK(dds__ring_push(r, "a:1|c", 5, 0));
    CHECK(dds__ring_push(r, "bb:2|g", 6, 0));
    CHECK(!dds__ring_peek(r, &(const char *){0}, &len, &fl)); /* not published yet */
    CHECK(dds__ring_publish(r));             /* empty -> non-empty: wake */
    CHECK(dds__ring_push(r, "", 0, 0));      /* an empty datagram is a record too */
    CHECK(!dds__ring_publish(r));            /* the consumer has not consumed: no wake */
    CHECK(pop(r, out, &len, &fl) && len == 5 && memcmp(out, "a:1|c", 5) == 0 && fl == 0);
    CHECK(pop(r, out, &len, &fl) && len == 6 && memcmp(out, "bb:2|g", 6) == 0);
    CHECK(pop(r, out, &len, &fl) && len == 0);
    CHECK(!pop(r, out, &len, &fl));
    CHECK(!dds__ring_consumer_idle_check(r));
    CHECK_EQ_INT(dds__ring_used(r), 0);
    CHECK(dds__ring_push(r, "c", 1, 0));
    CHECK(dds__ring_publish(r));             /* consumed everything: wake again */
    CHECK(dds__ring_consumer_idle_check(r)); /* records arrived: do not sleep */
    dds__ring_free(r);
}

TEST(full_then_room_again) {
    size_t cap = 1024;
    dds__ring *r = dds__ring_new(cap, 100);
    char rec[100];
    memset(rec, 'x', sizeof(rec));
    size_t n = 0;
    while (dds__ring_push(r, rec, 40, 0)) n++;
    CHECK_EQ_INT(n, cap / dds__ring_record_bytes(40)); /* 48 bytes each: 21 fit, 1008 bytes */
    CHECK(!dds__ring_push(r, rec, 9, 0));               /* 16 bytes left, 24 needed */
    dds__ring_publish(r);
    size_t len;
    uint32_t fl;
    char out[100];
    CHECK(pop(r, out, &len, &fl));
    /* One record released: one more of the same size fits (at the start, after a wrap marker). */
    CHECK(dds__ring_push(r, rec, 40, 0));
    CHECK(!dds__ring_push(r, rec, 40, 0));
    dds__ring_publish(r);
    size_t got = 0;
    while (pop(r, out, &len, &fl)) got++;
    CHECK_EQ_INT(got, n);
    CHECK(!dds__ring_push(r, rec, 101, 0)); /* past max_len: refused, never truncated silently */
    dds__ring_free(r);
}

TEST(full_exact_fit) {
    /* The loop above leaves 16 bytes: a record of 1..8 bytes takes exactly that. */
    dds__ring *r = dds__ring_new(1024, 100);
    char rec[100] = {0};
    for (int i = 0; i < 21; i++) CHECK(dds__ring_push(r, rec, 40, 0));
    CHECK(dds__ring_push(r, "12345678", 8, 0));
    CHECK(!dds__ring_push(r, "", 0, 0));
    CHECK_EQ_INT(dds__ring_used(r), 0); /* nothing published */
    dds__ring_publish(r);
    CHECK_EQ_INT(dds__ring_used(r), 1024);
    dds__ring_free(r);
}

TEST(wrap_around_every_size) {
    /* Sizes cycle through 0..max so every end-of-ring remainder happens; records are checked
     * byte for byte, and the consumer lags the producer by a varying amount. */
    enum { MAX = 300 };
    dds__ring *r = dds__ring_new(3000, MAX);
    char rec[MAX], out[MAX];
    uint64_t pushed = 0, popped = 0, refused = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(pushed * 7 % (MAX + 1));
        for (size_t i = 0; i < len; i++) rec[i] = (char)(pushed + i);
        if (dds__ring_push(r, rec, len, 0)) {
            pushed++;
        } else {
            refused++;
        }
        dds__ring_publish(r);
        int take = (round / 50) % 2 == 0 ? 0 : 3; /* phases: lagging (fills up), catching up */
        for (int t = 0; t < take; t++) {
            size_t l;
            uint32_t fl;
            if (!pop(r, out, &l, &fl)) break;
            size_t want = (size_t)(popped * 7 % (MAX + 1));
            CHECK_EQ_INT(l, want);
            for (size_t i = 0; i < l; i++)
                if (out[i] != (char)(popped + i)) {
                    CHECK_MSG(0, "record %llu byte %zu differs", (unsigned long long)popped, i);
                    break;
                }
            popped++;
        }
    }
    size_t l;
    uint32_t fl;
    while (pop(r, out, &l, &fl)) popped++;
    CHECK_EQ_INT(popped, pushed);
    CHECK(refused > 0);                        /* the ring was full at times: the test covered it */
    CHECK(pushed * 160 > 10 * 3000);           /* and wrapped many times over */
    dds__ring_free(r);
}

TEST(truncated_records_keep_length_only) {
    dds__ring *r = dds__ring_new(256, 64);
    CHECK(dds__ring_push(r, NULL, 70000, DDS__RING_TRUNCATED)); /* longer than max_len: fine */
    CHECK(dds__ring_push(r, "ok", 2, 0));
    dds__ring_publish(r);
    CHECK_EQ_INT(dds__ring_used(r), 8 + 16);
    char out[64];
    size_t len;
    uint32_t fl;
    CHECK(pop(r, out, &len, &fl) && len == 70000 && (fl & DDS__RING_TRUNCATED));
    CHECK(pop(r, out, &len, &fl) && len == 2 && fl == 0 && memcmp(out, "ok", 2) == 0);
    dds__ring_free(r);
}

/* ---- two threads ------------------------------------------------------------------------------- */

enum { N_RECORDS = 1000000, TMAX = 200 };

typedef struct pc {
    dds__ring *r;
    int wake;
    uint64_t full_waits;
} pc;

static void fill(char *b, uint64_t seq, size_t len) {
    for (size_t i = 0; i < len; i++) b[i] = (char)(seq * 31 + i);
}

static void *producer(void *arg) {
    pc *p = arg;
    char rec[TMAX];
    for (uint64_t seq = 0; seq < N_RECORDS; seq++) {
        size_t len = (size_t)((seq * 13) % TMAX);
        fill(rec, seq, len);
        while (!dds__ring_push(p->r, rec, len, 0)) {
            /* Full: publish what is pushed so the consumer can free room, then let it run. */
            if (dds__ring_publish(p->r)) {
                uint64_t one = 1;
                CHECK(write(p->wake, &one, 8) == 8);
            }
            p->full_waits++;
            sched_yield();
        }
        if (seq % 16 == 15 || seq == N_RECORDS - 1) {
            if (dds__ring_publish(p->r)) {
                uint64_t one = 1;
                CHECK(write(p->wake, &one, 8) == 8);
            }
        }
    }
    return NULL;
}

TEST(concurrent_producer_consumer) {
    pc p = {.r = dds__ring_new(64 * 1024, TMAX), .wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    pthread_t th;
    pthread_create(&th, NULL, producer, &p);
    uint64_t seq = 0, sleeps = 0, timeouts = 0;
    char want[TMAX];
    while (seq < N_RECORDS) {
        const char *d;
        size_t len;
        uint32_t fl;
        if (dds__ring_peek(p.r, &d, &len, &fl)) {
            size_t wl = (size_t)((seq * 13) % TMAX);
            fill(want, seq, wl);
            if (len != wl || memcmp(d, want, wl) != 0) {
                CHECK_MSG(0, "record %llu: length %zu, want %zu, or content differs", (unsigned long long)seq, len, wl);
                break;
            }
            dds__ring_release(p.r);
            seq++;
            continue;
        }
        if (dds__ring_consumer_idle_check(p.r)) continue;
        /* Idle: sleep until woken. A missed wake-up would wait for the timeout. */
        struct pollfd pf = {.fd = p.wake, .events = POLLIN};
        sleeps++;
        if (poll(&pf, 1, 2000) == 0) {
            timeouts++;
            if (dds__ring_used(p.r)) {
                CHECK_MSG(0, "lost wake-up: %zu bytes published while the consumer slept", dds__ring_used(p.r));
                break;
            }
        }
        uint64_t v;
        ssize_t got = read(p.wake, &v, 8);
        (void)got;
    }
    pthread_join(th, NULL);
    CHECK_EQ_INT(seq, N_RECORDS);
    CHECK_EQ_INT(dds__ring_used(p.r), 0);
    fprintf(stderr, "  %llu records, consumer slept %llu times (%llu timeouts), producer found it full %llu times\n",
            (unsigned long long)seq, (unsigned long long)sleeps, (unsigned long long)timeouts,
            (unsigned long long)p.full_waits);
    close(p.wake);
    dds__ring_free(p.r);
}

int main(void) {
    RUN(rejects_too_small);
    RUN(order_content_and_wake_signal);
    RUN(full_then_room_again);
    RUN(full_exact_fit);
    RUN(wrap_around_every_size);
    RUN(truncated_records_keep_length_only);
    RUN(concurrent_producer_consumer);
    return TEST_REPORT();
}
