/* bench_trace_decode.c - trace payload decoding throughput (MB/s of body, spans/s) on one
 * core, for v0.4, v0.5 and v0.7 bodies of traces of 10, 100 and 1000 spans. Spans look like a
 * web service's: 64-bit random ids, ~10 meta entries of real sizes (http.url, http.useragent,
 * runtime-id, ...), 3 metrics; child spans are database calls. The v0.4 body uses the smallest
 * encodings (as Python's encoder does); the v0.5 body shares strings through its table; the v0.7
 * body is a TracerPayload with one chunk per trace, its spans the same maps as v0.4.
 *
 * Usage: bench_trace_decode [rounds=7] [ms_per_round=300] [--json] [--dump DIR] [--formats v04,v05,v07]
 * Each body holds about 1000 spans and is decoded again and again, the arena reset between
 * decodes as the agent does. The arena's first block (the one reset keeps) holds a whole
 * decode, so rounds measure decoding, not malloc and page faults: with a block smaller than
 * the decode, every request maps fresh memory and throughput drops by a quarter or more.
 * Prints the median round per case, and the arena bytes used per body byte (the agent sizes
 * its arena limit from the body limit). Compare ratios, not absolutes (shared machine).
 *   --dump DIR  writes each body decoded to DIR/<fmt>_<spans per trace>.msgpack (v04_10.msgpack,
 *               ...) before timing it: the exact bytes, for a peer decoder (bench/traces.py).
 *   --json      one JSON object per body instead of the table: format, spans_per_trace, traces,
 *               spans, bytes, file, mb_s and spans_s (medians), mb_s_rounds (every round),
 *               arena_per_byte. */
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

static const char *fmt_name(dds__trace_format f) {
    return f == DDS__TRACE_V04 ? "v0.4" : f == DDS__TRACE_V05 ? "v0.5" : "v0.7";
}
static const char *fmt_tag(dds__trace_format f) {
    return f == DDS__TRACE_V04 ? "v04" : f == DDS__TRACE_V05 ? "v05" : "v07";
}

static int usage(void) {
    fprintf(stderr, "usage: bench_trace_decode [rounds=7] [ms_per_round=300] [--json] [--dump DIR] "
                    "[--formats v04,v05,v07]\n");
    return 2;
}

int main(int argc, char **argv) {
    int rounds = 7, npos = 0;
    double round_s = 0.3;
    bool json = false;
    const char *dump = NULL, *formats = "v04,v05,v07";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc) dump = argv[++i];
        else if (strcmp(argv[i], "--formats") == 0 && i + 1 < argc) formats = argv[++i];
        else if (argv[i][0] == '-') return usage();
        else if (npos == 0) rounds = atoi(argv[i]), npos++;
        else if (npos == 1) round_s = atof(argv[i]) / 1000.0, npos++;
        else return usage();
    }
    if (rounds < 1 || rounds > 101) rounds = 7;
    if (!(round_s > 0 && round_s <= 10)) round_s = 0.3;
    static const int sizes[] = {10, 100, 1000};
    static const dds__trace_format fmts[] = {DDS__TRACE_V04, DDS__TRACE_V05, DDS__TRACE_V07};
    if (!json)
        printf("%-5s %12s %10s %11s %14s %12s\n", "fmt", "spans/trace", "body KB", "MB/s", "spans/s", "arena/body");
    for (size_t f = 0; f < 3; f++) {
        if (!strstr(formats, fmt_tag(fmts[f]))) continue;
        for (size_t z = 0; z < 3; z++) {
            int per = sizes[z], ntraces = 1000 / per;
            wbuf w = {0};
            if (fmts[f] == DDS__TRACE_V04) build_v04(&w, per, ntraces);
            else if (fmts[f] == DDS__TRACE_V05) build_v05(&w, per, ntraces);
            else build_v07(&w, per, ntraces);
            char file[64];
            snprintf(file, sizeof(file), "%s_%d.msgpack", fmt_tag(fmts[f]), per);
            if (dump) {
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", dump, file);
                FILE *fp = fopen(path, "wb");
                if (!fp || fwrite(w.b, 1, w.n, fp) != w.n || fclose(fp) != 0) {
                    perror(path);
                    return 1;
                }
            }
            dds__arena arena;
            dds__arena_init(&arena, 8u << 20, 0);
            dds__tracer_payload tp;
            char err[160];
            if (dds__trace_decode(fmts[f], w.b, w.n, &arena, &tp, err, sizeof(err)) != 0) {
                fprintf(stderr, "decode failed: %s\n", err);
                return 1;
            }
            size_t nspans = 0;
            for (size_t c = 0; c < tp.nchunks; c++) nspans += tp.chunks[c].nspans;
            if (nspans != (size_t)(per * ntraces)) {
                fprintf(stderr, "%s: decoded %zu spans, expected %d\n", file, nspans, per * ntraces);
                return 1;
            }
            double amplification = (double)arena_used(&arena) / (double)w.n;
            double mbps[101], sps[101], mbps_by_round[101];
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
                mbps[r] = mbps_by_round[r] = (double)w.n * (double)iters / t / 1e6;
                sps[r] = (double)nspans * (double)iters / t;
            }
            qsort(mbps, (size_t)rounds, sizeof(double), cmp_dbl);
            qsort(sps, (size_t)rounds, sizeof(double), cmp_dbl);
            if (json) {
                printf("{\"format\":\"%s\",\"spans_per_trace\":%d,\"traces\":%d,\"spans\":%zu,\"bytes\":%zu,"
                       "\"file\":\"%s\",\"mb_s\":%.1f,\"spans_s\":%.0f,\"arena_per_byte\":%.3f,\"mb_s_rounds\":[",
                       fmt_name(fmts[f]), per, ntraces, nspans, w.n, file, mbps[rounds / 2], sps[rounds / 2],
                       amplification);
                for (int r = 0; r < rounds; r++) printf("%s%.1f", r ? "," : "", mbps_by_round[r]);
                printf("]}\n");
            } else {
                printf("%-5s %12d %10.1f %11.0f %14.0f %12.2f\n", fmt_name(fmts[f]), per, (double)w.n / 1024.0,
                       mbps[rounds / 2], sps[rounds / 2], amplification);
            }
            fflush(stdout);
            dds__arena_free(&arena);
            free(w.b);
        }
    }
    return 0;
}
