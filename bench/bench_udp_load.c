/* bench_udp_load.c - DogStatsD load generator for the ingest benchmark (bench/ingest.py): sends
 * the realistic line mix of dsdgen.h as UDP datagrams to 127.0.0.1:<port> with sendmmsg, at a
 * target rate or as fast as it can, for a bounded time. The datagrams are generated before the
 * clock starts; the timed loop only sends (and sleeps, when paced).
 *
 * Usage: bench_udp_load --port N [--rate METRICS_PER_S (0 = as fast as possible)]
 *          [--duration S (default 3, at most 60)] [--mpd N (metrics per datagram, default 1) |
 *          --pack full (as many lines as fit 8192 bytes)] [--contexts 2000] [--corpus N
 *          (datagrams generated, replayed in a loop; default: ~16 MB of them)] [--batch N (max
 *          datagrams per sendmmsg, default 64)] [--seed N] [--counters NAME (every line is
 *          NAME.c<i>:1|c, i cycling over the contexts: the sum of what reaches an intake is the
 *          number of lines it kept, for end-to-end loss)]
 *
 * Lines of one datagram are separated by '\n' (no trailing newline). A paced run sends a batch
 * when the clock says the metrics sent so far are due (absolute sleeps, so no drift); a batch
 * holds at most ~64 KiB and, when paced, ~0.5 ms worth of the rate, so a receiver sees no
 * burst larger than a default socket buffer could take.
 *
 * Prints one JSON line on stdout at the end: {"datagrams":..,"metrics":..,"bytes":..,
 * "elapsed_s":..,"send_errors":..,"eagain":..,"enobufs":..,"econnrefused":..,"other_errors":..,
 * "target_rate":..,"metrics_per_s":..,"avg_mpd":..,"avg_datagram_bytes":..}.
 * A datagram whose send failed is not counted as sent (it is counted as an error and skipped). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dsdgen.h"

#define DGRAM_MAX 8192
#define MAX_BATCH 64
#define MAX_DURATION_S 60.0

typedef struct dgram {
    uint32_t off, len, lines;
} dgram;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_until(double t) {
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void usage(void) {
    fputs("usage: bench_udp_load --port N [--rate M/s] [--duration S] [--mpd N | --pack full] "
          "[--contexts N] [--corpus N] [--batch N] [--seed N] [--counters NAME]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv) {
    int port = 0;
    double rate = 0, duration = 3;
    int mpd = 1, pack_full = 0, batch_max = MAX_BATCH;
    uint32_t contexts = 2000;
    size_t corpus = 0;
    uint64_t seed = DSDGEN_SEED;
    const char *counters = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--rate")) rate = strtod(v, NULL);
        else if (!strcmp(a, "--duration")) duration = strtod(v, NULL);
        else if (!strcmp(a, "--mpd")) mpd = atoi(v);
        else if (!strcmp(a, "--pack")) {
            if (strcmp(v, "full") != 0) usage();
            pack_full = 1;
        } else if (!strcmp(a, "--contexts")) contexts = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--corpus")) corpus = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--batch")) batch_max = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--counters")) counters = v;
        else usage();
        i++;
    }
    if (port <= 0 || port > 65535 || rate < 0 || !(duration > 0) || mpd < 1 || contexts < 1 || batch_max < 1)
        usage();
    if (duration > MAX_DURATION_S) duration = MAX_DURATION_S;
    if (batch_max > MAX_BATCH) batch_max = MAX_BATCH;

    /* ---- generate the datagrams ---- */
    dsdgen gen;
    dsdgen_init(&gen, contexts, seed);
    const size_t corpus_bytes = 16u << 20; /* ~16 MB: far more distinct datagrams than a socket holds */
    size_t cap = corpus ? corpus * (size_t)DGRAM_MAX : corpus_bytes + DGRAM_MAX;
    size_t ndg_cap = corpus ? corpus : corpus_bytes / 256;
    char *buf = malloc(cap);
    dgram *dg = malloc(ndg_cap * sizeof(dgram));
    if (!buf || !dg) {
        fputs("bench_udp_load: out of memory\n", stderr);
        return 1;
    }
    size_t ndg = 0, used = 0;
    char line[DSDGEN_LINE_MAX];
    uint64_t counter_i = 0;
#define NEXT_LINE()                                                                                       \
    (counters ? snprintf(line, sizeof(line), "%s.c%llu:1|c", counters, (unsigned long long)(counter_i++ % contexts)) \
              : dsdgen_line(&gen, line, sizeof(line)))
    int pending = NEXT_LINE(); /* a line that did not fit starts the next datagram */
    for (;;) {
        if (corpus ? ndg >= corpus : (used >= corpus_bytes || ndg >= ndg_cap)) break;
        size_t start = used;
        uint32_t lines = 0;
        for (;;) {
            size_t need = (size_t)pending + (lines ? 1 : 0);
            if (used - start + need > DGRAM_MAX) break;
            if (lines) buf[used++] = '\n';
            memcpy(buf + used, line, (size_t)pending);
            used += (size_t)pending;
            lines++;
            pending = NEXT_LINE();
            if (!pack_full && lines == (uint32_t)mpd) break;
        }
        dg[ndg].off = (uint32_t)start;
        dg[ndg].len = (uint32_t)(used - start);
        dg[ndg].lines = lines;
        ndg++;
    }
    dsdgen_free(&gen);
    uint64_t corpus_lines = 0;
    for (size_t i = 0; i < ndg; i++) corpus_lines += dg[i].lines;
    double avg_mpd = (double)corpus_lines / (double)ndg, avg_len = (double)used / (double)ndg;

    /* Batch size: at most ~64 KiB per call; when paced, at most ~0.5 ms worth of the rate. */
    int batch = batch_max;
    int by_bytes = (int)(65536.0 / avg_len);
    if (by_bytes < 1) by_bytes = 1;
    if (batch > by_bytes) batch = by_bytes;
    if (rate > 0) {
        int by_rate = (int)(rate / avg_mpd / 2000.0);
        if (by_rate < 1) by_rate = 1;
        if (batch > by_rate) batch = by_rate;
    }

    /* ---- socket ---- */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("connect");
        return 1;
    }
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iovs[MAX_BATCH];
    memset(msgs, 0, sizeof(msgs));

    /* ---- send ---- */
    uint64_t sent_dg = 0, sent_metrics = 0, sent_bytes = 0;
    uint64_t e_again = 0, e_nobufs = 0, e_refused = 0, e_other = 0;
    size_t next = 0;
    double t0 = mono_s(), t_end = t0 + duration, now = t0;
    uint64_t offered_metrics = 0; /* what the pacing clock has let through (sent or failed) */
    while (now < t_end) {
        if (rate > 0) {
            double due = t0 + (double)offered_metrics / rate;
            if (due > now) {
                if (due >= t_end) break;
                sleep_until(due);
            }
        }
        int n = 0;
        size_t first = next;
        for (; n < batch; n++) {
            iovs[n].iov_base = buf + dg[next].off;
            iovs[n].iov_len = dg[next].len;
            msgs[n].msg_hdr.msg_iov = &iovs[n];
            msgs[n].msg_hdr.msg_iovlen = 1;
            if (++next == ndg) next = 0;
        }
        int done = 0;
        size_t at = first;
        while (done < n) {
            int r = sendmmsg(fd, msgs + done, (unsigned)(n - done), 0);
            if (r > 0) {
                for (int k = 0; k < r; k++) {
                    sent_dg++;
                    sent_metrics += dg[at].lines;
                    sent_bytes += dg[at].len;
                    offered_metrics += dg[at].lines;
                    if (++at == ndg) at = 0;
                }
                done += r;
                continue;
            }
            int e = r < 0 ? errno : EIO;
            if (e == EINTR) continue;
            if (e == EAGAIN || e == EWOULDBLOCK) e_again++;
            else if (e == ENOBUFS) e_nobufs++;
            else if (e == ECONNREFUSED) e_refused++;
            else e_other++;
            offered_metrics += dg[at].lines; /* the failed datagram is skipped, not retried */
            if (++at == ndg) at = 0;
            done++;
        }
        now = mono_s();
    }
    double elapsed = now - t0;
    close(fd);
    uint64_t errors = e_again + e_nobufs + e_refused + e_other;
    printf("{\"datagrams\":%llu,\"metrics\":%llu,\"bytes\":%llu,\"elapsed_s\":%.6f,\"send_errors\":%llu,"
           "\"eagain\":%llu,\"enobufs\":%llu,\"econnrefused\":%llu,\"other_errors\":%llu,\"target_rate\":%.0f,"
           "\"metrics_per_s\":%.1f,\"avg_mpd\":%.3f,\"avg_datagram_bytes\":%.1f,\"batch\":%d,\"corpus_datagrams\":%zu}\n",
           (unsigned long long)sent_dg, (unsigned long long)sent_metrics, (unsigned long long)sent_bytes, elapsed,
           (unsigned long long)errors, (unsigned long long)e_again, (unsigned long long)e_nobufs,
           (unsigned long long)e_refused, (unsigned long long)e_other, rate,
           elapsed > 0 ? (double)sent_metrics / elapsed : 0.0, avg_mpd, avg_len, batch, ndg);
    free(buf);
    free(dg);
    return 0;
}
