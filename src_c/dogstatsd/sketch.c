/* sketch.c - the Datadog Agent's DDSketch flavour (PROTOCOL.md section 2, "Distribution sketch").
 * In: values with integer weights. Out: sorted sparse (int16 key, uint16 count) bins, exact summary.
 * Never allocates per insert once warmed: an insert either bumps an existing bin or goes to a
 * fixed-size pending buffer that is settled in one sorted merge. */
#include "dogstatsd/sketch.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GAMMA (1.0 + 2.0 / 128.0)
#define BIAS 1338
#define KEY_INF 32767            /* +-32767 stand for +-Inf */
#define KEY_MAX (KEY_INF - 1)    /* largest finite key */
#define BIN_MAX 65535u           /* uint16 bin width */
#define PENDING_CAP 256u         /* a pending index fits in 8 bits (see settle) */

/* log1p(2/128) and gamma^(1 - bias) as exact binary constants (the tests check them against libm).
 * NORM_MIN is the Go agent's "norm.min": the smallest value whose key is 1. It sits just below the
 * configured minimum 1e-9 because the bias comes from floor(ln(1e-9) / ln_gamma). */
static const double LN_GAMMA = 0x1.fc0a8b0fc03e4p-7;
static const double NORM_MIN = 0x1.1147942601311p-30;

/* Cap on the mass of one key: the Go sketch's MaxCount (bin limit x uint16). It bounds the number
 * of spill bins one key can need (and so memory) whatever sample rates a client sends. */
#define KEY_TOTAL_MAX ((uint64_t)DDS__SKETCH_MAX_BINS * BIN_MAX)

void dds__sketch_init(dds__sketch *s) { memset(s, 0, sizeof(*s)); }

void dds__sketch_free(dds__sketch *s) {
    free(s->keys);
    free(s->counts);
    free(s->pending);
    free(s->pending_n);
    dds__sketch_init(s);
}

void dds__sketch_reset(dds__sketch *s) {
    s->nbins = 0;
    s->npending = 0;
    s->count = 0;
    s->min = s->max = s->sum = s->avg = 0;
}

int dds__sketch_key(double v) {
    if (v < 0) return -dds__sketch_key(-v);
    if (!(v >= NORM_MIN)) return 0; /* zero, below the minimum (and NaN, which callers drop) */
    /* rint rounds half to even in the default rounding mode, like Go's math.RoundToEven: that
     * keeps key(key_value(k)) == k. */
    double l = rint(log(v) / LN_GAMMA);
    /* The Go agent maps every key past the largest finite one to +Inf (finite values above about
     * 1e211 included), not to the largest finite key. */
    if (l > (double)(KEY_MAX - BIAS)) return KEY_INF;
    int k = (int)l + BIAS;
    return k < 1 ? 1 : k;
}

double dds__sketch_key_value(int key) {
    if (key < 0) return -dds__sketch_key_value(-key);
    if (key >= KEY_INF) return INFINITY;
    if (key == 0) return 0;
    return pow(GAMMA, (double)(key - BIAS));
}

static uint32_t group_entries(uint64_t total) {
    return (uint32_t)(total / BIN_MAX + (total % BIN_MAX != 0));
}

/* Write the bins of one key at keys[at..): the remainder first, then the full bins, the order the
 * Go agent uses when a count spills (appendSafe). Returns the index after the run. */
static uint32_t put_group(int16_t *keys, uint16_t *counts, uint32_t at, int16_t k, uint64_t total) {
    uint64_t rem = total % BIN_MAX, full = total / BIN_MAX;
    if (rem) {
        keys[at] = k;
        counts[at++] = (uint16_t)rem;
    }
    for (uint64_t i = 0; i < full; i++) {
        keys[at] = k;
        counts[at++] = (uint16_t)BIN_MAX;
    }
    return at;
}

static int reserve_bins(dds__sketch *s, uint32_t need) {
    if (need <= s->cap) return 0;
    uint32_t cap = s->cap ? s->cap : 16;
    while (cap < need) cap *= 2;
    int16_t *k = realloc(s->keys, cap * sizeof(*k));
    if (!k) return -1;
    s->keys = k;
    uint16_t *c = realloc(s->counts, cap * sizeof(*c));
    if (!c) return -1; /* keys is merely larger than cap says: still consistent */
    s->counts = c;
    s->cap = cap;
    return 0;
}

/* More than DDS__SKETCH_MAX_BINS bins: the lowest keys collapse into the lowest kept key, as the
 * Go agent's trimLeft does (it works bin by bin, we work key by key: the two differ only when a
 * sketch spans more than 4096 keys, a range of about 1e27, and a collapsed key also spills). */
static void trim(dds__sketch *s) {
    if (s->nbins <= DDS__SKETCH_MAX_BINS) return;
    uint32_t i = 0, j = 0;
    uint64_t mass = 0, total = 0;
    int16_t k = 0;
    for (;;) {
        k = s->keys[i];
        total = 0;
        for (j = i; j < s->nbins && s->keys[j] == k; j++) total += s->counts[j];
        if (j == s->nbins) break; /* one key left: nothing lower to collapse */
        uint64_t merged = total + mass < KEY_TOTAL_MAX ? total + mass : KEY_TOTAL_MAX;
        if ((s->nbins - j) + group_entries(merged) <= DDS__SKETCH_MAX_BINS) break;
        mass += total;
        i = j;
    }
    total = total + mass < KEY_TOTAL_MAX ? total + mass : KEY_TOTAL_MAX;
    uint32_t e = group_entries(total), rest = s->nbins - j;
    /* e <= j: the collapsed mass needs no more bins than the bins it came from. */
    assert(e <= j);
    memmove(s->keys + e, s->keys + j, rest * sizeof(*s->keys));
    memmove(s->counts + e, s->counts + j, rest * sizeof(*s->counts));
    put_group(s->keys, s->counts, 0, k, total);
    s->nbins = e + rest;
}

/* Merge the pending (key, weight) pairs into the bins. Returns 0, or -1 when the bins cannot grow
 * (pending is then kept as it was). */
static int settle(dds__sketch *s) {
    uint32_t n = s->npending;
    if (n == 0) return 0;
    assert(n <= PENDING_CAP);

    /* LSD radix sort of (key + 32768) << 8 | index on the two key bytes: cheaper than a
     * comparison sort for 256 elements, and stable. */
    uint32_t a[PENDING_CAP], b[PENDING_CAP];
    for (uint32_t i = 0; i < n; i++) a[i] = ((uint32_t)(s->pending[i] + 32768) << 8) | i;
    for (int shift = 8; shift <= 16; shift += 8) {
        uint32_t cnt[257] = {0};
        for (uint32_t i = 0; i < n; i++) cnt[((a[i] >> shift) & 0xff) + 1]++;
        for (int d = 0; d < 256; d++) cnt[d + 1] += cnt[d];
        for (uint32_t i = 0; i < n; i++) b[cnt[(a[i] >> shift) & 0xff]++] = a[i];
        memcpy(a, b, n * sizeof(*a));
    }
    int16_t dk[PENDING_CAP];
    uint64_t dn[PENDING_CAP];
    uint32_t nd = 0;
    for (uint32_t i = 0; i < n; i++) {
        int16_t k = (int16_t)((int32_t)(a[i] >> 8) - 32768);
        uint64_t w = s->pending_n[a[i] & 0xff];
        if (nd && dk[nd - 1] == k) {
            dn[nd - 1] += w;
        } else {
            dk[nd] = k;
            dn[nd++] = w;
        }
    }

    /* Pass 1: how many bins after the merge (a key's bins only ever grow in number). */
    uint64_t out = 0;
    uint32_t i = 0, j = 0;
    while (i < s->nbins || j < nd) {
        uint64_t t = 0;
        if (j == nd || (i < s->nbins && s->keys[i] < dk[j])) {
            int16_t k = s->keys[i];
            while (i < s->nbins && s->keys[i] == k) t += s->counts[i++];
        } else {
            int16_t k = dk[j];
            t = dn[j++];
            while (i < s->nbins && s->keys[i] == k) t += s->counts[i++];
        }
        out += group_entries(t < KEY_TOTAL_MAX ? t : KEY_TOTAL_MAX);
    }
    if (out > UINT32_MAX / 2 || reserve_bins(s, (uint32_t)out) < 0) return -1;

    /* Pass 2, from the back: the write position never passes the unread bins, so the merge
     * happens in place without a second array. */
    int64_t ri = (int64_t)s->nbins - 1, rj = (int64_t)nd - 1;
    uint32_t w = (uint32_t)out;
    while (ri >= 0 || rj >= 0) {
        if (rj < 0 && (uint32_t)(ri + 1) == w) break; /* the rest is already in place */
        int16_t k;
        uint64_t t = 0;
        if (rj < 0 || (ri >= 0 && s->keys[ri] > dk[rj])) {
            k = s->keys[ri];
        } else {
            k = dk[rj];
            t = dn[rj--];
        }
        while (ri >= 0 && s->keys[ri] == k) t += s->counts[ri--];
        if (t > KEY_TOTAL_MAX) t = KEY_TOTAL_MAX;
        w -= group_entries(t);
        put_group(s->keys, s->counts, w, k, t);
    }
    s->nbins = (uint32_t)out;
    s->npending = 0;
    trim(s);
    return 0;
}

static int push_pending(dds__sketch *s, int16_t k, uint32_t n) {
    if (!s->pending) {
        s->pending = malloc(PENDING_CAP * sizeof(*s->pending));
        s->pending_n = malloc(PENDING_CAP * sizeof(*s->pending_n));
        if (!s->pending || !s->pending_n) {
            free(s->pending);
            free(s->pending_n);
            s->pending = NULL;
            s->pending_n = NULL;
            return -1;
        }
        s->pending_cap = PENDING_CAP;
    }
    if (s->npending == s->pending_cap && settle(s) < 0) return -1;
    s->pending[s->npending] = k;
    s->pending_n[s->npending++] = n;
    return 0;
}

static int add_key(dds__sketch *s, int16_t k, uint32_t n) {
    /* Fast path: the key already has a bin with room. Adding to the run's first bin (the
     * remainder) keeps the run in its canonical order. */
    uint32_t lo = 0, hi = s->nbins;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->keys[mid] < k) lo = mid + 1;
        else hi = mid;
    }
    if (lo < s->nbins && s->keys[lo] == k && (uint32_t)s->counts[lo] + n <= BIN_MAX) {
        s->counts[lo] = (uint16_t)(s->counts[lo] + n);
        return 0;
    }
    return push_pending(s, k, n);
}

/* The Go agent's summary: Insert for weight 1, Merge of {n, n*v} otherwise; avg is running. */
static void summary_add(dds__sketch *s, double v, uint32_t n, double sum_weight) {
    if (s->count == 0) {
        s->min = s->max = s->avg = v;
        s->count = n;
        s->sum = sum_weight * v;
        return;
    }
    if (v < s->min) s->min = v;
    if (v > s->max) s->max = v;
    s->count += n;
    s->sum += sum_weight * v;
    s->avg = s->avg + (v - s->avg) * (double)n / (double)s->count;
}

int dds__sketch_insert(dds__sketch *s, double v, uint32_t n) {
    if (n == 0) return 0;
    if (add_key(s, (int16_t)dds__sketch_key(v), n) < 0) return -1;
    summary_add(s, v, n, (double)n);
    return 0;
}

int dds__sketch_insert_rate(dds__sketch *s, double v, double rate) {
    if (!(rate > 0 && rate <= 1)) rate = 1;
    if (rate == 1) return dds__sketch_insert(s, v, 1);
    double weight = 1 / rate;
    /* Rates below 1/UINT32_MAX are nonsense; clamping keeps the count and the bins in step. */
    uint32_t n = weight >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)weight;
    if (add_key(s, (int16_t)dds__sketch_key(v), n) < 0) return -1;
    summary_add(s, v, n, weight);
    return 0;
}

void dds__sketch_bins(dds__sketch *s, const int16_t **keys, const uint16_t **counts, size_t *nbins) {
    (void)settle(s); /* on failure the settled bins are still a valid (smaller) sketch */
    *keys = s->keys;
    *counts = s->counts;
    *nbins = s->nbins;
}

/* The representative value of the bin holding the rank: with round-half-even keys it is within a
 * factor gamma^(1/2) of every value of the bin, i.e. the sketch's relative accuracy (1/128).
 * (The Go agent interpolates inside the bin instead; its quantiles never go on the wire.) */
double dds__sketch_quantile(dds__sketch *s, double q) {
    (void)settle(s);
    if (s->count == 0 || s->nbins == 0) return 0;
    if (q <= 0) return s->min;
    if (q >= 1) return s->max;
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->nbins; i++) total += s->counts[i];
    double want = rint(q * (double)(total - 1));
    double seen = 0;
    for (uint32_t i = 0; i < s->nbins; i++) {
        seen += s->counts[i];
        if (seen <= want) continue;
        double v = dds__sketch_key_value(s->keys[i]);
        if (v < s->min) v = s->min;
        if (v > s->max) v = s->max;
        return v;
    }
    return s->max;
}
