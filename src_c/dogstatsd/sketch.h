/* sketch.h - the Datadog Agent's DDSketch flavour (PROTOCOL.md section 2, "Distribution sketch").
 * gamma = 1 + 2/128, min indexable 1e-9, bias 1338, int16 keys (+-32767 = +-Inf), uint16 bin
 * counts (overflow spills into more bins of the same key), at most 4096 bins. Single-threaded. */
#ifndef DDS_DOGSTATSD_SKETCH_H
#define DDS_DOGSTATSD_SKETCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DDS__SKETCH_MAX_BINS 4096

typedef struct dds__sketch {
    /* Sorted sparse bins, read through dds__sketch_bins (which settles any buffered inserts). */
    int16_t *keys;
    uint16_t *counts;
    uint32_t nbins, cap;
    /* Internal insert buffer (implementation detail; may be unused). */
    int16_t *pending;
    uint32_t npending, pending_cap;
    /* Exact summary */
    int64_t count;
    double min, max, sum;
    /* Added: weights parallel to pending (same capacity). */
    uint32_t *pending_n;
    /* Added: running average, updated incrementally as the Go agent does (not sum/count, which
     * can differ in the last bits); this is what a Dogsketch's avg carries. */
    double avg;
} dds__sketch;

void dds__sketch_init(dds__sketch *s);
void dds__sketch_free(dds__sketch *s);     /* back to the init state */
int dds__sketch_key(double v);             /* key of one value, per PROTOCOL.md */
/* Insert v with weight n (n >= 1). Returns 0, or -1 on allocation failure (the sample is lost,
 * the sketch stays valid). */
int dds__sketch_insert(dds__sketch *s, double v, uint32_t n);
/* Settle pending inserts and expose the bins (ascending keys, counts parallel). Valid until
 * the next insert or free. */
void dds__sketch_bins(dds__sketch *s, const int16_t **keys, const uint16_t **counts, size_t *nbins);
/* Lower-bound value of a key (for tests and quantile estimates). */
double dds__sketch_key_value(int key);
/* Quantile estimate from the bins, q in [0,1]. */
double dds__sketch_quantile(dds__sketch *s, double q);

/* Added: back to the empty state but keep the allocated arrays, so a sketch reused for the next
 * bucket does not allocate again. */
void dds__sketch_reset(dds__sketch *s);
/* Added: insert one DogStatsD sample with its sample rate, exactly as the Go agent's sketch does:
 * a rate outside (0,1] counts as 1; otherwise the bins and count get trunc(1/rate) while the sum
 * gets v * (1/rate) untruncated. Returns 0, or -1 on allocation failure (sample lost). */
int dds__sketch_insert_rate(dds__sketch *s, double v, double rate);
#endif
