/* bench_trace_decode.c - trace payload decoding throughput (MB/s of body, spans/s) on one
 * core, for v0.4 and v0.5 bodies of traces of 10, 100 and 1000 spans. Spans look like a web
 * service's: 64-bit random ids, ~10 meta entries of real sizes (http.url, http.useragent,
 * runtime-id, ...), 3 metrics; child spans are database calls. The v0.4 body uses the smallest
 * encodings (as Python's encoder does); the v0.5 body shares strings through its table.
 *
 * Usage: bench_trace_decode [rounds=7] [ms_per_round=300]
 * Each body holds about 1000 spans and is decoded again and again, the arena reset between
 * decodes as the agent does. The arena's first block (the one reset keeps) holds a whole
 * decode, so rounds measure decoding, not malloc and page faults: with a block smaller than
 * the decode, every request maps fresh memory and throughput drops by a quarter or more.
 * Prints the median round per case, and the arena bytes used per body byte (the agent sizes
 * its arena limit from the body limit). Compare ratios, not absolutes (shared machine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "trace/decode.h"

#include "tracegen.h"

/* ---- measurement ---------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t arena_used(const dds__arena *a) {
    size_t used = 0;
    for (const dds__arena_block *b = a->head; b; b = b->next) used += b->used;
    return used;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    double round_s = (argc > 2 ? atof(argv[2]) : 300) / 1000.0;
    if (rounds < 1 || rounds > 101) rounds = 7;
    static const int sizes[] = {10, 100, 1000};
    static const dds__trace_format fmts[] = {DDS__TRACE_V04, DDS__TRACE_V05};
    printf("%-5s %12s %10s %11s %14s %12s\n", "fmt", "spans/trace", "body KB", "MB/s", "spans/s", "arena/body");
    for (size_t f = 0; f < 2; f++) {
        for (size_t z = 0; z < 3; z++) {
            int per = sizes[z], ntraces = 1000 / per;
            wbuf w = {0};
            if (fmts[f] == DDS__TRACE_V04) build_v04(&w, per, ntraces);
            else build_v05(&w, per, ntraces);
            dds__arena arena;
            dds__arena_init(&arena, 8u << 20, 0);
            dds__tracer_payload tp;
            char err[160];
            if (dds__trace_decode(fmts[f], w.b, w.n, &arena, &tp, err, sizeof(err)) != 0) {
                fprintf(stderr, "decode failed: %s\n", err);
                return 1;
            }
            double amplification = (double)arena_used(&arena) / (double)w.n;
            double mbps[101], sps[101];
            for (int r = -1; r < rounds; r++) { /* round -1 warms caches and the CPU clock */
                long iters = 0;
                double t0 = now_s(), t;
                do {
                    for (int k = 0; k < 16; k++) {
                        dds__arena_reset(&arena);
                        if (dds__trace_decode(fmts[f], w.b, w.n, &arena, &tp, err, sizeof(err)) != 0) return 1;
                    }
                    iters += 16;
                    t = now_s() - t0;
                } while (t < round_s);
                if (r < 0) continue;
                mbps[r] = (double)w.n * (double)iters / t / 1e6;
                sps[r] = 1000.0 * (double)iters / t;
            }
            qsort(mbps, (size_t)rounds, sizeof(double), cmp_dbl);
            qsort(sps, (size_t)rounds, sizeof(double), cmp_dbl);
            printf("%-5s %12d %10.1f %11.0f %14.0f %12.2f\n", fmts[f] == DDS__TRACE_V04 ? "v0.4" : "v0.5", per,
                   (double)w.n / 1024.0, mbps[rounds / 2], sps[rounds / 2], amplification);
            dds__arena_free(&arena);
            free(w.b);
        }
    }
    return 0;
}
