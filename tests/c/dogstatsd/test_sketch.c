/* test_sketch.c - DDSketch keys, bins, spill, collapse and summary (PROTOCOL.md section 2). */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "dogstatsd/sketch.h"
#include "test.h"

#define GAMMA (1.0 + 2.0 / 128.0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double rng_unit(void) { return (double)(rng() >> 11) / 9007199254740992.0; }

/* Bins of one key must be: remainder (< 65535) first, then full bins; total as expected. */
static int check_canonical(const int16_t *k, const uint16_t *n, size_t nb) {
    for (size_t i = 0; i < nb;) {
        size_t j = i;
        while (j < nb && k[j] == k[i]) j++;
        for (size_t x = i + 1; x < j; x++)
            if (n[x] != 65535) return 0;
        if (j - i > 1 && n[i] == 0) return 0;
        if (j < nb && k[j] <= k[i]) return 0;
        i = j;
    }
    return 1;
}

TEST(keys_match_protocol_checks) {
    CHECK_EQ_INT(dds__sketch_key(1), 1338);
    CHECK_EQ_INT(dds__sketch_key(2), 1383);
    CHECK_EQ_INT(dds__sketch_key(10), 1487);
    CHECK_EQ_INT(dds__sketch_key(100), 1635);
    CHECK_EQ_INT(dds__sketch_key(0.5), 1293);
    CHECK_EQ_INT(dds__sketch_key(-3), -1409);
    CHECK_EQ_INT(dds__sketch_key(3), 1409);
}

TEST(keys_zero_and_tiny) {
    double norm_min = pow(GAMMA, 1 - 1338); /* smallest value with key 1 */
    CHECK_EQ_INT(dds__sketch_key(0), 0);
    CHECK_EQ_INT(dds__sketch_key(-0.0), 0);
    CHECK_EQ_INT(dds__sketch_key(1e-10), 0);
    CHECK_EQ_INT(dds__sketch_key(-1e-10), 0);
    CHECK_EQ_INT(dds__sketch_key(DBL_MIN), 0);
    CHECK_EQ_INT(dds__sketch_key(5e-324), 0);
    CHECK_EQ_INT(dds__sketch_key(1e-9), 1);
    CHECK_EQ_INT(dds__sketch_key(-1e-9), -1);
    CHECK_EQ_INT(dds__sketch_key(norm_min), 1);
    CHECK_EQ_INT(dds__sketch_key(nextafter(norm_min, 0)), 0);
    CHECK_EQ_INT(dds__sketch_key(NAN), 0);
    /* The constant ln(gamma) of the implementation is libm's log1p(2/128). */
    CHECK_EQ_INT(dds__sketch_key(exp(log1p(2.0 / 128.0) * 100.0)), 1438);
}

TEST(keys_inf_and_huge) {
    CHECK_EQ_INT(dds__sketch_key(INFINITY), 32767);
    CHECK_EQ_INT(dds__sketch_key(-INFINITY), -32767);
    CHECK_EQ_INT(dds__sketch_key(DBL_MAX), 32767);
    CHECK_EQ_INT(dds__sketch_key(-DBL_MAX), -32767);
    /* Go agent: a key past 32766 becomes +Inf, even for a finite value. */
    CHECK_EQ_INT(dds__sketch_key(1e300), 32767);
    double top = dds__sketch_key_value(32766);
    CHECK(isfinite(top) && top > 1e210 && top < 1e212);
    CHECK_EQ_INT(dds__sketch_key(top), 32766);
    CHECK_EQ_INT(dds__sketch_key(-top), -32766);
    CHECK(isinf(dds__sketch_key_value(32767)) && dds__sketch_key_value(32767) > 0);
    CHECK(isinf(dds__sketch_key_value(-32767)) && dds__sketch_key_value(-32767) < 0);
    CHECK_EQ_DBL(dds__sketch_key_value(0), 0, 0);
}

TEST(key_value_round_trips) {
    int bad = 0;
    for (int k = 1; k <= 32766; k++) {
        if (dds__sketch_key(dds__sketch_key_value(k)) != k) bad++;
        if (dds__sketch_key(dds__sketch_key_value(-k)) != -k) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_DBL(dds__sketch_key_value(1338), 1.0, 0);
    CHECK_EQ_DBL(dds__sketch_key_value(1338 + 44), pow(GAMMA, 44), 0);
}

TEST(count_spills_into_bins_of_the_same_key) {
    dds__sketch s;
    dds__sketch_init(&s);
    CHECK_EQ_INT(dds__sketch_insert(&s, 1.0, 70000), 0);
    const int16_t *k;
    const uint16_t *n;
    size_t nb;
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 2);
    /* Go agent order (appendSafe): the remainder first, then the full bins. */
    CHECK_EQ_INT(k[0], 1338);
    CHECK_EQ_INT(k[1], 1338);
    CHECK_EQ_INT(n[0], 4465);
    CHECK_EQ_INT(n[1], 65535);
    CHECK_EQ_INT(s.count, 70000);
    CHECK_EQ_DBL(s.sum, 70000.0, 0);

    /* Growing a spilled key keeps one remainder bin in front. */
    CHECK_EQ_INT(dds__sketch_insert(&s, 1.0, 61070), 0); /* total 131070 = 2 x 65535 */
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 2);
    CHECK_EQ_INT(n[0], 65535);
    CHECK_EQ_INT(n[1], 65535);
    CHECK_EQ_INT(dds__sketch_insert(&s, 1.0, 1), 0);
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 3);
    CHECK_EQ_INT(n[0], 1);
    CHECK_EQ_INT(n[1], 65535);
    CHECK_EQ_INT(n[2], 65535);
    /* A neighbour key is ordered around the spilled run. */
    CHECK_EQ_INT(dds__sketch_insert(&s, 2.0, 1), 0);
    CHECK_EQ_INT(dds__sketch_insert(&s, 0.5, 1), 0);
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 5);
    CHECK_EQ_INT(k[0], 1293);
    CHECK_EQ_INT(k[4], 1383);
    CHECK(check_canonical(k, n, nb));
    dds__sketch_free(&s);
}

TEST(fast_path_one_at_a_time_reaches_the_same_bins) {
    dds__sketch s;
    dds__sketch_init(&s);
    for (int i = 0; i < 65535 + 10; i++) dds__sketch_insert(&s, 10.0, 1);
    const int16_t *k;
    const uint16_t *n;
    size_t nb;
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 2);
    CHECK_EQ_INT(n[0], 10);
    CHECK_EQ_INT(n[1], 65535);
    CHECK_EQ_INT(s.count, 65545);
    dds__sketch_free(&s);
}

TEST(collapse_past_4096_bins) {
    dds__sketch s;
    dds__sketch_init(&s);
    /* 5000 distinct keys, inserted in a shuffled order (exercises the pending sort). */
    enum { N = 5000, BASE = 100 };
    int order[N];
    for (int i = 0; i < N; i++) order[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(rng() % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < N; i++) dds__sketch_insert(&s, dds__sketch_key_value(BASE + order[i]), 1);
    const int16_t *k;
    const uint16_t *n;
    size_t nb;
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, DDS__SKETCH_MAX_BINS);
    /* The 904 lowest keys went into the lowest kept one. */
    CHECK_EQ_INT(k[0], BASE + (N - DDS__SKETCH_MAX_BINS));
    CHECK_EQ_INT(n[0], N - DDS__SKETCH_MAX_BINS + 1);
    CHECK_EQ_INT(k[nb - 1], BASE + N - 1);
    uint64_t total = 0;
    for (size_t i = 0; i < nb; i++) total += n[i];
    CHECK_EQ_INT(total, N);
    CHECK_EQ_INT(s.count, N);
    CHECK(check_canonical(k, n, nb));
    /* Exact summary survives the collapse. */
    CHECK_EQ_DBL(s.min, dds__sketch_key_value(BASE), 0);
    CHECK_EQ_DBL(s.max, dds__sketch_key_value(BASE + N - 1), 0);
    dds__sketch_free(&s);
}

TEST(collapse_with_spill) {
    dds__sketch s;
    dds__sketch_init(&s);
    /* The lowest key is heavy: its mass spills in the kept key. */
    dds__sketch_insert(&s, dds__sketch_key_value(10), 100000);
    for (int i = 0; i < DDS__SKETCH_MAX_BINS; i++) dds__sketch_insert(&s, dds__sketch_key_value(20 + i), 1);
    const int16_t *k;
    const uint16_t *n;
    size_t nb;
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK(nb <= DDS__SKETCH_MAX_BINS);
    CHECK(check_canonical(k, n, nb));
    uint64_t total = 0;
    for (size_t i = 0; i < nb; i++) total += n[i];
    CHECK_EQ_INT(total, 100000 + DDS__SKETCH_MAX_BINS);
    CHECK(k[0] > 10);
    dds__sketch_free(&s);
}

TEST(weighted_inserts_and_summary) {
    dds__sketch s;
    dds__sketch_init(&s);
    dds__sketch_insert(&s, 4.0, 3);
    dds__sketch_insert(&s, -2.0, 1);
    dds__sketch_insert(&s, 10.0, 2);
    CHECK_EQ_INT(s.count, 6);
    CHECK_EQ_DBL(s.sum, 12.0 - 2.0 + 20.0, 0);
    CHECK_EQ_DBL(s.min, -2.0, 0);
    CHECK_EQ_DBL(s.max, 10.0, 0);
    CHECK_EQ_DBL(s.avg, 30.0 / 6.0, 1e-12);
    const int16_t *k;
    const uint16_t *n;
    size_t nb;
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 3);
    CHECK_EQ_INT(k[0], -dds__sketch_key(2.0));
    CHECK_EQ_INT(n[0], 1);
    CHECK_EQ_INT(k[1], dds__sketch_key(4.0));
    CHECK_EQ_INT(n[1], 3);
    CHECK_EQ_INT(n[2], 2);
    /* Weight 0 is a no-op. */
    dds__sketch_insert(&s, 1000.0, 0);
    CHECK_EQ_INT(s.count, 6);
    dds__sketch_free(&s);
}

TEST(sample_rate_like_the_go_agent) {
    dds__sketch s;
    dds__sketch_init(&s);
    /* rate 0.3: bins and count get trunc(1/0.3) = 3, the sum gets v / 0.3. */
    dds__sketch_insert_rate(&s, 2.0, 0.3);
    CHECK_EQ_INT(s.count, 3);
    CHECK_EQ_DBL(s.sum, (1 / 0.3) * 2.0, 0);
    CHECK_EQ_DBL(s.avg, 2.0, 0);
    const int16_t *k;
    const uint16_t *n;
    size_t nb;
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 1);
    CHECK_EQ_INT(n[0], 3);
    /* Out of (0,1]: weight 1. */
    dds__sketch_reset(&s);
    dds__sketch_insert_rate(&s, 1.0, 0);
    dds__sketch_insert_rate(&s, 1.0, 2);
    dds__sketch_insert_rate(&s, 1.0, -1);
    dds__sketch_insert_rate(&s, 1.0, NAN);
    dds__sketch_insert_rate(&s, 1.0, 1);
    CHECK_EQ_INT(s.count, 5);
    CHECK_EQ_DBL(s.sum, 5.0, 0);
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 1);
    CHECK_EQ_INT(n[0], 5);
    dds__sketch_free(&s);
}

TEST(zero_tiny_and_inf_values_in_bins) {
    dds__sketch s;
    dds__sketch_init(&s);
    dds__sketch_insert(&s, 0.0, 1);
    dds__sketch_insert(&s, 1e-12, 1);
    dds__sketch_insert(&s, -1e-12, 1);
    dds__sketch_insert(&s, INFINITY, 1);
    dds__sketch_insert(&s, -INFINITY, 1);
    dds__sketch_insert(&s, 1e300, 1);
    const int16_t *k;
    const uint16_t *n;
    size_t nb;
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 3);
    CHECK_EQ_INT(k[0], -32767);
    CHECK_EQ_INT(n[0], 1);
    CHECK_EQ_INT(k[1], 0);
    CHECK_EQ_INT(n[1], 3);
    CHECK_EQ_INT(k[2], 32767);
    CHECK_EQ_INT(n[2], 2);
    dds__sketch_free(&s);
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

TEST(quantiles_within_relative_accuracy) {
    enum { N = 20000 };
    double *ref = malloc(N * sizeof(double));
    dds__sketch s;
    dds__sketch_init(&s);
    for (int i = 0; i < N; i++) {
        /* Log-uniform over 1e-3 .. 1e6, a quarter of them negative. */
        double v = exp(log(1e-3) + rng_unit() * (log(1e6) - log(1e-3)));
        if (rng() % 4 == 0) v = -v;
        ref[i] = v;
        dds__sketch_insert(&s, v, 1);
    }
    qsort(ref, N, sizeof(double), cmp_dbl);
    int bad = 0;
    double worst = 0;
    for (int qi = 1; qi < 100; qi++) {
        double q = qi / 100.0;
        double want = ref[(size_t)rint(q * (N - 1))];
        double got = dds__sketch_quantile(&s, q);
        double rel = fabs(got - want) / fabs(want);
        if (rel > worst) worst = rel;
        if (rel > 1.0 / 128 + 1e-12) bad++;
    }
    CHECK_MSG(bad == 0, "%d quantiles off, worst relative error %g", bad, worst);
    CHECK_EQ_DBL(dds__sketch_quantile(&s, 0), ref[0], 0);
    CHECK_EQ_DBL(dds__sketch_quantile(&s, 1), ref[N - 1], 0);
    CHECK_EQ_INT(s.count, N);
    dds__sketch_free(&s);
    free(ref);
    dds__sketch_init(&s);
    CHECK_EQ_DBL(dds__sketch_quantile(&s, 0.5), 0, 0);
    dds__sketch_free(&s);
}

TEST(random_inserts_match_a_reference) {
    /* Per-key totals against a plain array, through fast path, pending and spills. */
    enum { KEYS = 300, OPS = 200000 };
    static uint64_t want[2 * KEYS + 1];
    memset(want, 0, sizeof(want));
    dds__sketch s;
    dds__sketch_init(&s);
    for (int i = 0; i < OPS; i++) {
        int key = (int)(rng() % (2 * KEYS + 1)) - KEYS; /* -300..300 around 1338 */
        uint32_t w = (rng() % 64 == 0) ? (uint32_t)(rng() % 20000) + 1 : 1; /* stays under 4096 bins */
        int kk = key == 0 ? 0 : (key > 0 ? 1338 + key : -(1338 - key));
        dds__sketch_insert(&s, dds__sketch_key_value(kk), w);
        want[key + KEYS] += w;
        if (i % 50000 == 0) {
            const int16_t *k;
            const uint16_t *n;
            size_t nb;
            dds__sketch_bins(&s, &k, &n, &nb); /* settle midway too */
        }
    }
    const int16_t *k;
    const uint16_t *n;
    size_t nb;
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK(check_canonical(k, n, nb));
    static uint64_t got[2 * KEYS + 1];
    memset(got, 0, sizeof(got));
    int stray = 0;
    for (size_t i = 0; i < nb; i++) {
        int kk = k[i];
        int key = kk == 0 ? 0 : (kk > 0 ? kk - 1338 : -(-kk - 1338));
        if (key < -KEYS || key > KEYS) stray++;
        else got[key + KEYS] += n[i];
    }
    CHECK_EQ_INT(stray, 0);
    int diff = 0;
    uint64_t total = 0;
    for (int i = 0; i < 2 * KEYS + 1; i++) {
        if (got[i] != want[i]) diff++;
        total += want[i];
    }
    CHECK_EQ_INT(diff, 0);
    CHECK_EQ_INT((int64_t)total, s.count);
    dds__sketch_free(&s);
}

TEST(reset_keeps_capacity_and_free_is_idempotent) {
    dds__sketch s;
    dds__sketch_init(&s);
    for (int i = 0; i < 1000; i++) dds__sketch_insert(&s, i + 1.0, 1);
    const int16_t *k;
    const uint16_t *n;
    size_t nb;
    dds__sketch_bins(&s, &k, &n, &nb);
    uint32_t cap = s.cap;
    dds__sketch_reset(&s);
    CHECK_EQ_INT(s.count, 0);
    CHECK_EQ_INT(s.cap, cap);
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 0);
    dds__sketch_insert(&s, 7.0, 1);
    dds__sketch_bins(&s, &k, &n, &nb);
    CHECK_EQ_INT(nb, 1);
    CHECK_EQ_DBL(s.min, 7.0, 0);
    CHECK_EQ_DBL(s.avg, 7.0, 0);
    dds__sketch_free(&s);
    dds__sketch_free(&s);
    CHECK(s.keys == NULL && s.nbins == 0);
}

int main(void) {
    RUN(keys_match_protocol_checks);
    RUN(keys_zero_and_tiny);
    RUN(keys_inf_and_huge);
    RUN(key_value_round_trips);
    RUN(count_spills_into_bins_of_the_same_key);
    RUN(fast_path_one_at_a_time_reaches_the_same_bins);
    RUN(collapse_past_4096_bins);
    RUN(collapse_with_spill);
    RUN(weighted_inserts_and_summary);
    RUN(sample_rate_like_the_go_agent);
    RUN(zero_tiny_and_inf_values_in_bins);
    RUN(quantiles_within_relative_accuracy);
    RUN(random_inserts_match_a_reference);
    RUN(reset_keeps_capacity_and_free_is_idempotent);
    return TEST_REPORT();
}
