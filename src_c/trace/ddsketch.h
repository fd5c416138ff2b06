/* ddsketch.h - the DDSketch of trace stats (OkSummary and ErrorSummary of a ClientGroupedStats):
 * the libdd-ddsketch flavour the Rust agent sends. Logarithmic mapping with relative accuracy
 * 1/129 (gamma = 1 + 2/128), index offset 1338.5 (the backend's 1e-9 minimum), a dense store of
 * at most 2048 contiguous bins that collapses its lowest bins, a zero bin for values below the
 * smallest indexable one. Not the DogStatsD sketch (dogstatsd/sketch.c): another index rounding,
 * another store and another wire message. Single-threaded. */
#ifndef DDS_TRACE_DDSKETCH_H
#define DDS_TRACE_DDSKETCH_H
#include <stdint.h>

#include "common/buf.h"

#define DDS__DDSKETCH_MAX_BINS 2048

typedef struct dds__ddsketch {
    uint32_t *bins;       /* counts of indexes offset .. offset + nbins - 1; owned */
    int32_t offset;
    uint32_t nbins, cap;
    uint64_t zero_count;  /* values below the smallest indexable value (0 ns durations) */
} dds__ddsketch;

void dds__ddsketch_init(dds__ddsketch *s);
void dds__ddsketch_free(dds__ddsketch *s);  /* back to the init state */
/* Index of v (v >= the smallest indexable value). */
int32_t dds__ddsketch_index(double v);
/* The value the backend reads for an index (within the relative accuracy of every value of it). */
double dds__ddsketch_value(int32_t index);
/* Add one value >= 0 (a span duration in ns). Returns 0, or -1 when the bins cannot grow (the
 * value is lost, the sketch stays valid) or v is negative or not finite. */
int dds__ddsketch_add(dds__ddsketch *s, double v);
/* The same with a smaller bin limit (1..DDS__DDSKETCH_MAX_BINS): the store collapses its lowest
 * bins at max_bins instead. For a caller out of memory budget: max_bins = the current cap adds
 * without allocating (but for the first bin of an empty sketch). */
int dds__ddsketch_add_bounded(dds__ddsketch *s, double v, uint32_t max_bins);
/* Values added (bins and zero bin). */
uint64_t dds__ddsketch_count(const dds__ddsketch *s);
/* Append the protobuf DDSketch {mapping, positiveValues, negativeValues, zeroCount} as prost
 * writes it (proto3 defaults left out, the empty negative store present). */
void dds__ddsketch_encode(const dds__ddsketch *s, dds__buf *out);
#endif
