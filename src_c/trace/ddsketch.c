/* ddsketch.c - the trace-stats DDSketch. In: span durations (ns). Out: the protobuf DDSketch the
 * stats intake decodes. Memory is bounded by the 2048-bin store: values far below the kept range
 * collapse into its lowest bin, as libdd-ddsketch does. Never aborts: a bin array that cannot
 * grow loses the value and says so. */
#include "trace/ddsketch.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/pbw.h"

/* Relative accuracy 1/129 makes gamma = (1 + 1/129) / (1 - 1/129) = 130/128, exact in binary. */
#define GAMMA 1.015625
/* 1 / ln(gamma), the value libdd-ddsketch computes at run time (the test checks it against libm). */
static const double MULTIPLIER = 0x1.01fead4ea6e2bp+6;
/* (1 - floor(ln(1e-9) / ln(gamma))) + 0.5: the backend's sketches start at 1e-9. */
#define INDEX_OFFSET 1338.5
/* Below it an index would leave int32 (or its value underflow): such values count as zero. */
#define MIN_INDEXABLE (DBL_MIN * GAMMA)

/* DDSketch, IndexMapping and Store field numbers (sketches-go ddsketch.proto). */
enum { SK_MAPPING = 1, SK_POSITIVE = 2, SK_NEGATIVE = 3, SK_ZERO_COUNT = 4 };
enum { MAP_GAMMA = 1, MAP_INDEX_OFFSET = 2 };
enum { ST_CONTIGUOUS_COUNTS = 2, ST_CONTIGUOUS_OFFSET = 3 };

void dds__ddsketch_init(dds__ddsketch *s) { memset(s, 0, sizeof(*s)); }

void dds__ddsketch_free(dds__ddsketch *s) {
    free(s->bins);
    dds__ddsketch_init(s);
}

int32_t dds__ddsketch_index(double v) { return (int32_t)floor(log(v) * MULTIPLIER + INDEX_OFFSET); }

double dds__ddsketch_value(int32_t index) {
    double relative_accuracy = 1.0 - 2.0 / (1.0 + GAMMA);
    return exp(((double)index - INDEX_OFFSET) / MULTIPLIER) * (1.0 + relative_accuracy);
}

uint64_t dds__ddsketch_count(const dds__ddsketch *s) {
    uint64_t n = s->zero_count;
    for (uint32_t i = 0; i < s->nbins; i++) n += s->bins[i];
    return n;
}

static int reserve(dds__ddsketch *s, uint32_t need) {
    if (need <= s->cap) return 0;
    uint32_t cap = s->cap ? s->cap : 8;
    while (cap < need) cap *= 2;
    if (cap > DDS__DDSKETCH_MAX_BINS) cap = DDS__DDSKETCH_MAX_BINS;
    uint32_t *b = realloc(s->bins, cap * sizeof(*b));
    if (!b) return -1;
    s->bins = b;
    s->cap = cap;
    return 0;
}

/* The bin of index, made to exist: the store keeps one run of at most MAX_BINS contiguous
 * indexes. An index below the run extends it downwards as far as the bound allows (past it, the
 * lowest bin takes the value); one above drops the lowest bins into the new lowest. NULL when the
 * array cannot grow (nothing changed then). */
static uint32_t *bin_for(dds__ddsketch *s, int32_t index, int64_t max) {
    if (s->nbins == 0) {
        if (reserve(s, 1) < 0) return NULL;
        s->offset = index;
        s->bins[0] = 0;
        s->nbins = 1;
        return &s->bins[0];
    }
    int64_t lo = s->offset, hi = lo + s->nbins - 1;
    if (index < lo) {
        int64_t extra = lo - index;
        if (extra > max - s->nbins) extra = max - s->nbins;
        if (extra > 0) {
            if (reserve(s, s->nbins + (uint32_t)extra) < 0) return NULL;
            memmove(s->bins + extra, s->bins, s->nbins * sizeof(*s->bins));
            memset(s->bins, 0, (size_t)extra * sizeof(*s->bins));
            s->nbins += (uint32_t)extra;
            s->offset -= (int32_t)extra;
        }
        return &s->bins[0];
    }
    if (index > hi) {
        int64_t range = (int64_t)index - lo + 1;
        int64_t drop = range > max ? range - max : 0;
        int64_t new_lo = lo + drop;
        if (reserve(s, (uint32_t)(index - new_lo + 1)) < 0) return NULL;
        if (drop > 0) {
            uint64_t mass = 0;
            uint32_t gone = drop < s->nbins ? (uint32_t)drop : s->nbins;
            for (uint32_t i = 0; i < gone; i++) mass += s->bins[i];
            memmove(s->bins, s->bins + gone, (s->nbins - gone) * sizeof(*s->bins));
            s->nbins -= gone;
            if (s->nbins == 0) {
                s->bins[0] = 0;
                s->nbins = 1;
            }
            uint64_t first = s->bins[0] + mass;
            s->bins[0] = first > UINT32_MAX ? UINT32_MAX : (uint32_t)first;
            s->offset = (int32_t)new_lo;
        }
        uint32_t want = (uint32_t)(index - s->offset + 1);
        memset(s->bins + s->nbins, 0, (want - s->nbins) * sizeof(*s->bins));
        s->nbins = want;
        return &s->bins[want - 1];
    }
    return &s->bins[index - lo];
}

int dds__ddsketch_add(dds__ddsketch *s, double v) { return dds__ddsketch_add_bounded(s, v, DDS__DDSKETCH_MAX_BINS); }

int dds__ddsketch_add_bounded(dds__ddsketch *s, double v, uint32_t max_bins) {
    if (max_bins < 1) max_bins = 1;
    if (max_bins > DDS__DDSKETCH_MAX_BINS) max_bins = DDS__DDSKETCH_MAX_BINS;
    if (!(v >= 0) || isinf(v)) return -1;
    if (v < MIN_INDEXABLE) {
        s->zero_count++;
        return 0;
    }
    /* Never below what is held: a smaller limit only stops growth. */
    uint32_t *bin = bin_for(s, dds__ddsketch_index(v), max_bins > s->nbins ? max_bins : s->nbins);
    if (!bin) return -1;
    if (*bin < UINT32_MAX) (*bin)++;
    return 0;
}

void dds__ddsketch_encode(const dds__ddsketch *s, dds__buf *out) {
    size_t m = dds__pbw_begin(out, SK_MAPPING);
    dds__pbw_double(out, MAP_GAMMA, GAMMA);
    dds__pbw_double(out, MAP_INDEX_OFFSET, INDEX_OFFSET);
    /* interpolation NONE (0) is the proto3 default: left out */
    dds__pbw_end(out, m);
    m = dds__pbw_begin(out, SK_POSITIVE);
    if (s->nbins) {
        size_t p = dds__pbw_begin(out, ST_CONTIGUOUS_COUNTS);
        for (uint32_t i = 0; i < s->nbins; i++) dds__pbw_raw_double(out, (double)s->bins[i]);
        dds__pbw_end(out, p);
        if (s->offset != 0) dds__pbw_sint32(out, ST_CONTIGUOUS_OFFSET, s->offset);
    }
    dds__pbw_end(out, m);
    m = dds__pbw_begin(out, SK_NEGATIVE);
    dds__pbw_end(out, m);
    if (s->zero_count) dds__pbw_double(out, SK_ZERO_COUNT, (double)s->zero_count);
}
