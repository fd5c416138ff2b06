/* bench_parse_aggregate.c - ns per DogStatsD metric line through packet split + parse +
 * aggregate, on one core, over a realistic mix: counts : gauges : distributions : sets :
 * histograms = 208 : 66 : 72 : 9 : 1, 2 to 50 tags per line, names 10 to 100 bytes, several
 * lines per datagram (the line generator of dsdgen.h). Contexts repeat (steady state), as they
 * do in a real function.
 *
 * Usage: bench_parse_aggregate [lines_per_round=2000000] [contexts=2000] [rounds=5] [corpus_lines=8000]
 *                              [shared_names=0]
 * The corpus of datagrams is replayed round after round. The default (8000 lines, ~5 MB) stays
 * in cache, as a datagram just copied in by recvmmsg is; a corpus of 200000 lines (~120 MB)
 * streams from DRAM instead and measures memory bandwidth as much as parsing. shared_names n > 0:
 * the contexts share n names (dsdgen.h), each name with contexts/n tag combinations (fixed tag
 * keys, varying values): a few tag-list lengths per name, each shared by many contexts.
 * Prints one line per round and the median. Compare ratios, not absolutes (shared machine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "dogstatsd/aggregate.h"
#include "dogstatsd/parse.h"
#include "dsdgen.h"

#define LINES_PER_BUCKET 1000000

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void sink_series(void *u, const dds__series *s) { (*(size_t *)u) += s->npoints; }
static void sink_sketch(void *u, const dds__sketch_series *s) { (*(size_t *)u) += s->npoints; }
static void count_other(void *u, dds__slice line, int status) { (*(size_t *)u)++; }

int main(int argc, char **argv) {
    size_t lines_per_round = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
    uint32_t contexts = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 2000;
    int rounds = argc > 3 ? atoi(argv[3]) : 5;

    /* Context templates (type, name and tag count fixed per context): dsdgen.h. */
    dsdgen gen;
    dsdgen_init(&gen, contexts, DSDGEN_SEED);
    gen.shared_names = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 10) : 0;
    /* A corpus of datagrams (up to 8 KiB each), replayed every round. */
    size_t corpus_lines = argc > 4 ? strtoul(argv[4], NULL, 10) : 8000;
    size_t cap = corpus_lines * 1200;
    char *corpus = malloc(cap);
    size_t *pkt_off = malloc(sizeof(size_t) * corpus_lines), *pkt_len = malloc(sizeof(size_t) * corpus_lines);
    size_t npkts = 0, used = 0, total_lines = 0;
    char line[DSDGEN_LINE_MAX];
    while (total_lines < corpus_lines) {
        size_t start = used;
        while (total_lines < corpus_lines) {
            int n = dsdgen_line(&gen, line, sizeof(line));
            if (used - start + (size_t)n + 1 > 8192) break;
            memcpy(corpus + used, line, (size_t)n);
            used += (size_t)n;
            corpus[used++] = '\n';
            total_lines++;
        }
        pkt_off[npkts] = start;
        pkt_len[npkts] = used - start;
        npkts++;
    }
    double avg_line = (double)used / (double)total_lines;

    dds__agg_counters counters;
    memset(&counters, 0, sizeof(counters));
    dds__agg_config ac;
    memset(&ac, 0, sizeof(ac));
    ac.histogram_aggregates = DDS__HAGG_DEFAULT;
    ac.percentiles[0] = 0.95;
    ac.n_percentiles = 1;
    ac.counter_expiry_s = 300;
    ac.context_expiry_s = 20; /* as server.c */
    ac.client_telemetry = true;
    dds__agg *agg = dds__agg_new(&ac, &counters);
    double *vals = malloc(sizeof(double) * (8192 / 2 + 1));
    size_t emitted = 0;
    dds__agg_sink sink = {.user = &emitted, .series = sink_series, .sketch = sink_sketch};

    printf("# bench_parse_aggregate: %zu lines/round, %u contexts, %s names, avg line %.0f bytes, corpus %zu lines in %zu "
           "datagrams (%.1f MB)\n",
           lines_per_round, contexts, gen.shared_names ? "shared" : "unique", avg_line, total_lines, npkts, (double)used / 1e6);
    double *ns = calloc((size_t)rounds, sizeof(double));
    int64_t fake_now = dds__wall_s();
    for (int r = 0; r < rounds; r++) {
        size_t done = 0, errors = 0, p = 0, last_flush = 0, flushes = 0;
        double flush_ns = 0; /* included in the round's time, also shown apart */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (done < lines_per_round) {
            const char *cur = corpus + pkt_off[p], *end = cur + pkt_len[p];
            /* As server.c's dds__dsd_process does. */
            size_t n0 = errors;
            done += dds__agg_add_packet(agg, cur, (size_t)(end - cur), vals, 8192 / 2 + 1, fake_now, count_other, &errors);
            done += errors - n0;
            if (++p == npkts) p = 0;
            if (done - last_flush >= LINES_PER_BUCKET) {
                /* A 10 s bucket at 100k lines/s: flush it as the timer would. */
                last_flush = done;
                fake_now += 10;
                struct timespec f0, f1;
                clock_gettime(CLOCK_MONOTONIC, &f0);
                dds__agg_flush(agg, fake_now, false, &sink);
                clock_gettime(CLOCK_MONOTONIC, &f1);
                flush_ns += (double)(f1.tv_sec - f0.tv_sec) * 1e9 + (double)(f1.tv_nsec - f0.tv_nsec);
                flushes++;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double el = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        ns[r] = el / (double)done;
        printf("round %d: %.1f ns/line (%.2f M lines/s), %zu parse errors, %zu flushes of %.2f ms on average (%u live contexts)\n",
               r + 1, ns[r], 1e3 / ns[r], errors, flushes, flushes ? flush_ns / 1e6 / (double)flushes : 0.0,
               (unsigned)counters.contexts);
    }
    qsort(ns, (size_t)rounds, sizeof(double), cmp_dbl);
    printf("median: %.1f ns/line over %d rounds (target <= 150)\n", ns[rounds / 2], rounds);
    dds__agg_flush(agg, fake_now + 20, true, &sink);
    dds__agg_free(agg);
    dsdgen_free(&gen);
    return 0;
}
