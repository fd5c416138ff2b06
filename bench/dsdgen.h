/* dsdgen.h - the realistic DogStatsD line mix of the benchmarks: counts : gauges : distributions
 * : sets : histograms = 208 : 66 : 72 : 9 : 1, names of 10 to 100 bytes, 2 to 50 tags per line,
 * a sample rate on one line in ten, a fixed set of contexts that repeat (steady state). The
 * sequence of lines is a pure function of the seed and the number of contexts, so every
 * benchmark that uses it with the same arguments sees the same lines.
 *
 *   dsdgen g;
 *   dsdgen_init(&g, 2000, DSDGEN_SEED);
 *   char line[DSDGEN_LINE_MAX];
 *   int n = dsdgen_line(&g, line, sizeof(line));   (n bytes, no newline)
 *   dsdgen_free(&g);
 *
 * Included by bench_*.c only. */
#ifndef DDS_BENCH_DSDGEN_H
#define DDS_BENCH_DSDGEN_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define DSDGEN_SEED 0x9E3779B97F4A7C15ull
#define DSDGEN_LINE_MAX 4096 /* a line is at most ~1400 bytes (100-byte name, 50 tags) */

typedef struct dsdgen {
    uint64_t rng;
    uint32_t contexts;
    /* 0: every context has a name of its own (the default mix). n: the contexts share n names
     * (context c takes the name, type and tag keys of template c % n, and a last tag "id:<c>"), as a
     * function's few metrics, each with many tag combinations, do. Set after dsdgen_init. */
    uint32_t shared_names;
    /* Context templates: type, name and tag count fixed per context. */
    char **names;
    const char **types;
    int *ntags;
} dsdgen;

/* xorshift64, the upper bits */
static inline uint32_t dsdgen_rnd(dsdgen *g) {
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (uint32_t)(g->rng >> 11);
}

static inline const char *dsdgen_pick_type(dsdgen *g) {
    uint32_t r = dsdgen_rnd(g) % 356; /* 208 + 66 + 72 + 9 + 1 */
    if (r < 208) return "c";
    if (r < 274) return "g";
    if (r < 346) return "d";
    if (r < 355) return "s";
    return "h";
}

/* Exits on out of memory (a benchmark has nothing better to do). */
static inline void dsdgen_init(dsdgen *g, uint32_t contexts, uint64_t seed) {
    g->rng = seed ? seed : DSDGEN_SEED;
    g->contexts = contexts ? contexts : 1;
    g->shared_names = 0;
    g->names = calloc(g->contexts, sizeof(char *));
    g->types = calloc(g->contexts, sizeof(char *));
    g->ntags = calloc(g->contexts, sizeof(int));
    if (!g->names || !g->types || !g->ntags) {
        fputs("dsdgen: out of memory\n", stderr);
        exit(1);
    }
    for (uint32_t i = 0; i < g->contexts; i++) {
        int len = 10 + (int)(dsdgen_rnd(g) % 91) - 8; /* the ".<ctx>" suffix adds a few bytes */
        if (len < 4) len = 4;
        g->names[i] = malloc((size_t)len + 1);
        if (!g->names[i]) {
            fputs("dsdgen: out of memory\n", stderr);
            exit(1);
        }
        for (int j = 0; j < len; j++) g->names[i][j] = "abcdefghijklmnopqrstuvwxyz_."[dsdgen_rnd(g) % 27];
        g->names[i][0] = 'm';
        g->names[i][len] = '\0';
        g->types[i] = dsdgen_pick_type(g);
        g->ntags[i] = 2 + (int)(dsdgen_rnd(g) % 49);
    }
}

static inline void dsdgen_free(dsdgen *g) {
    for (uint32_t i = 0; g->names && i < g->contexts; i++) free(g->names[i]);
    free(g->names);
    free(g->types);
    free(g->ntags);
    g->names = NULL;
    g->types = NULL;
    g->ntags = NULL;
}

/* One line of context ctx: "<name>.<ctx>:<value>|<type>[|@0.5]|#<tags>". Returns its length
 * (no newline); cap must be at least DSDGEN_LINE_MAX. */
static inline int dsdgen_make_line(dsdgen *g, char *out, size_t cap, uint32_t ctx, uint32_t value) {
    const uint32_t t_ = g->shared_names ? ctx % g->shared_names : ctx; /* name and type template */
    const char *type = g->types[t_];
    int n = snprintf(out, cap, "%s.%u:", g->names[t_], t_);
    if (type[0] == 's')
        n += snprintf(out + n, cap - (size_t)n, "user%u|s", value % 50);
    else
        n += snprintf(out + n, cap - (size_t)n, "%u.%u|%s", value % 1000, value % 10, type);
    if (dsdgen_rnd(g) % 10 == 0) n += snprintf(out + n, cap - (size_t)n, "|@0.5");
    n += snprintf(out + n, cap - (size_t)n, "|#");
    for (int t = 0; t < g->ntags[t_]; t++)
        n += snprintf(out + n, cap - (size_t)n, "%stag_key_%d:value_%u_%d", t ? "," : "", t, ctx % 7, t);
    if (g->shared_names) n += snprintf(out + n, cap - (size_t)n, ",id:%u", ctx);
    return n;
}

/* The next line of the sequence: a random context, a random value. */
static inline int dsdgen_line(dsdgen *g, char *out, size_t cap) {
    uint32_t ctx = dsdgen_rnd(g) % g->contexts;
    uint32_t value = dsdgen_rnd(g);
    return dsdgen_make_line(g, out, cap, ctx, value);
}

#endif
