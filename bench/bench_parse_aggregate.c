/* bench_parse_aggregate.c - ns per DogStatsD metric line through packet split + parse +
 * aggregate, on one core, over a realistic mix: counts : gauges : distributions : sets :
 * histograms = 208 : 66 : 72 : 9 : 1, 2 to 50 tags per line, names 10 to 100 bytes, several
 * lines per datagram. Contexts repeat (steady state), as they do in a real function.
 *
 * Usage: bench_parse_aggregate [lines_per_round=2000000] [contexts=2000] [rounds=5] [corpus_lines=8000]
 * The corpus of datagrams is replayed round after round. The default (8000 lines, ~5 MB) stays
 * in cache, as a datagram just copied in by recvmmsg is; a corpus of 200000 lines (~120 MB)
 * streams from DRAM instead and measures memory bandwidth as much as parsing.
 * Prints one line per round and the median. Compare ratios, not absolutes (shared machine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "dogstatsd/aggregate.h"
#include "dogstatsd/parse.h"

#define LINES_PER_BUCKET 1000000

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static const char *pick_type(void) {
    uint32_t r = rnd() % 356; /* 208 + 66 + 72 + 9 + 1 */
    if (r < 208) return "c";
    if (r < 274) return "g";
    if (r < 346) return "d";
    if (r < 355) return "s";
    return "h";
}

/* One line of a context: name of 10-100 bytes, 2-50 tags, a value. */
static int make_line(char *out, size_t cap, uint32_t ctx, const char *type, const char *name_base,
                     int ntags, uint32_t value) {
    int n = snprintf(out, cap, "%s.%u:", name_base, ctx);
    if (type[0] == 's')
        n += snprintf(out + n, cap - (size_t)n, "user%u|s", value % 50);
    else
        n += snprintf(out + n, cap - (size_t)n, "%u.%u|%s", value % 1000, value % 10, type);
    if (rnd() % 10 == 0) n += snprintf(out + n, cap - (size_t)n, "|@0.5");
    n += snprintf(out + n, cap - (size_t)n, "|#");
    for (int t = 0; t < ntags; t++)
        n += snprintf(out + n, cap - (size_t)n, "%stag_key_%d:value_%u_%d", t ? "," : "", t, ctx % 7, t);
    return n;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void sink_series(void *u, const dds__series *s) { (*(size_t *)u) += s->npoints; }
static void sink_sketch(void *u, const dds__sketch_series *s) { (*(size_t *)u) += s->npoints; }

int main(int argc, char **argv) {
    size_t lines_per_round = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
    uint32_t contexts = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 2000;
    int rounds = argc > 3 ? atoi(argv[3]) : 5;

    /* Context templates: type, name and tag count fixed per context. */
    char **names = calloc(contexts, sizeof(char *));
    const char **types = calloc(contexts, sizeof(char *));
    int *ntags = calloc(contexts, sizeof(int));
    for (uint32_t i = 0; i < contexts; i++) {
        int len = 10 + (int)(rnd() % 91) - 8; /* the ".<ctx>" suffix adds a few bytes */
        if (len < 4) len = 4;
        names[i] = malloc((size_t)len + 1);
        for (int j = 0; j < len; j++) names[i][j] = "abcdefghijklmnopqrstuvwxyz_."[rnd() % 27];
        names[i][0] = 'm';
        names[i][len] = '\0';
        types[i] = pick_type();
        ntags[i] = 2 + (int)(rnd() % 49);
    }
    /* A corpus of datagrams (up to 8 KiB each), replayed every round. */
    size_t corpus_lines = argc > 4 ? strtoul(argv[4], NULL, 10) : 8000;
    size_t cap = corpus_lines * 1200;
    char *corpus = malloc(cap);
    size_t *pkt_off = malloc(sizeof(size_t) * corpus_lines), *pkt_len = malloc(sizeof(size_t) * corpus_lines);
    size_t npkts = 0, used = 0, total_lines = 0;
    char line[4096];
    while (total_lines < corpus_lines) {
        size_t start = used;
        while (total_lines < corpus_lines) {
            uint32_t ctx = rnd() % contexts;
            int n = make_line(line, sizeof(line), ctx, types[ctx], names[ctx], ntags[ctx], rnd());
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

    printf("# bench_parse_aggregate: %zu lines/round, %u contexts, avg line %.0f bytes, corpus %zu lines in %zu datagrams (%.1f MB)\n",
           lines_per_round, contexts, avg_line, total_lines, npkts, (double)used / 1e6);
    double *ns = calloc((size_t)rounds, sizeof(double));
    int64_t fake_now = dds__wall_s();
    for (int r = 0; r < rounds; r++) {
        size_t done = 0, errors = 0, p = 0, last_flush = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        while (done < lines_per_round) {
            const char *cur = corpus + pkt_off[p], *end = cur + pkt_len[p];
            dds__slice l;
            while (dds__packet_next_line(&cur, end, &l)) {
                dds__metric m;
                size_t nv = 0;
                if (dds__parse_metric(l.ptr, l.len, &m, vals, 8192 / 2 + 1, &nv) == DDS__PARSE_OK)
                    dds__agg_add(agg, &m, vals, nv, fake_now);
                else
                    errors++;
                done++;
            }
            if (++p == npkts) p = 0;
            if (done - last_flush >= LINES_PER_BUCKET) {
                /* A 10 s bucket at 100k lines/s: flush it as the timer would. */
                last_flush = done;
                fake_now += 10;
                dds__agg_flush(agg, fake_now, false, &sink);
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double el = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
        ns[r] = el / (double)done;
        printf("round %d: %.1f ns/line (%.2f M lines/s), %zu parse errors\n", r + 1, ns[r], 1e3 / ns[r], errors);
    }
    qsort(ns, (size_t)rounds, sizeof(double), cmp_dbl);
    printf("median: %.1f ns/line over %d rounds (target <= 150)\n", ns[rounds / 2], rounds);
    dds__agg_flush(agg, fake_now + 20, true, &sink);
    dds__agg_free(agg);
    return 0;
}
