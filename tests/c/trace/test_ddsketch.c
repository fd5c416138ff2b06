/* test_ddsketch.c - the trace-stats DDSketch: its mapping against the libm formula of
 * libdd-ddsketch, relative accuracy, the zero bin, the 2048-bin low-collapsing store, and the
 * protobuf it writes (decoded here field by field). */
#include <float.h>

#include "test.h"
#include "trace/ddsketch.h"

/* ---- a small protobuf reader for DDSketch ------------------------------------------------------ */

typedef struct decoded {
    double gamma, index_offset, zero_count;
    int32_t offset;
    uint32_t nbins;
    double bins[DDS__DDSKETCH_MAX_BINS + 1];
    bool has_negative, ok;
} decoded;

typedef struct rd { const uint8_t *p, *end; bool err; } rd;
static uint64_t varint(rd *r) {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->end) { r->err = true; return 0; }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) return v;
    }
    r->err = true;
    return 0;
}
static double f64(rd *r) {
    if (r->end - r->p < 8) { r->err = true; return 0; }
    double d;
    memcpy(&d, r->p, 8);
    r->p += 8;
    return d;
}

static bool decode(const uint8_t *p, size_t n, decoded *d) {
    memset(d, 0, sizeof(*d));
    rd r = {p, p + n, false};
    while (r.p < r.end && !r.err) {
        uint64_t tag = varint(&r);
        unsigned field = (unsigned)(tag >> 3), wt = (unsigned)(tag & 7);
        if (wt == 1 && field == 4) { d->zero_count = f64(&r); continue; }
        if (wt != 2) return false;
        uint64_t len = varint(&r);
        if ((uint64_t)(r.end - r.p) < len) return false;
        rd sub = {r.p, r.p + len, false};
        r.p += len;
        while (sub.p < sub.end && !sub.err) {
            uint64_t t2 = varint(&sub);
            unsigned f2 = (unsigned)(t2 >> 3), w2 = (unsigned)(t2 & 7);
            if (field == 1 && w2 == 1) {
                double v = f64(&sub);
                if (f2 == 1) d->gamma = v;
                else if (f2 == 2) d->index_offset = v;
            } else if (field == 2 && f2 == 2 && w2 == 2) {
                uint64_t l = varint(&sub);
                if (l % 8 || (uint64_t)(sub.end - sub.p) < l) return false;
                for (uint64_t i = 0; i < l / 8; i++) d->bins[d->nbins++] = f64(&sub);
            } else if (field == 2 && f2 == 3 && w2 == 0) {
                uint32_t z = (uint32_t)varint(&sub);
                d->offset = (int32_t)((z >> 1) ^ (0u - (z & 1)));
            } else {
                return false;
            }
        }
        if (field == 3) d->has_negative = true;
    }
    d->ok = !r.err;
    return d->ok;
}

static double count_of(const decoded *d) {
    double c = d->zero_count;
    for (uint32_t i = 0; i < d->nbins; i++) c += d->bins[i];
    return c;
}

/* ---- tests ------------------------------------------------------------------------------------ */

TEST(test_mapping_matches_libdd_formula) {
    double gamma = (1.0 + 0.007751937984496124) / (1.0 - 0.007751937984496124);
    CHECK(gamma == 1.015625);
    double multiplier = 1.0 / log(gamma);
    double offset = (1.0 - floor(log(1e-9) / log(gamma))) + 0.5;
    CHECK(offset == 1338.5);
    const double values[] = {1e-30, 1e-9, 0.1, 1, 2, 10, 25, 999, 1000, 1001, 12345.678, 1e6, 3.3e9, 1e12, 1e300};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        double v = values[i];
        CHECK_EQ_INT(dds__ddsketch_index(v), (int32_t)floor(log(v) * multiplier + offset));
        double back = dds__ddsketch_value(dds__ddsketch_index(v));
        CHECK_MSG(fabs(back / v - 1) < 0.01, "value(index(%g)) = %g", v, back);
    }
}

TEST(test_add_counts_and_zero_bin) {
    dds__ddsketch s;
    dds__ddsketch_init(&s);
    const double pts[] = {0.0, 1e-5, 0.1, 2.0, 10.0, 25.0, 10000.0};
    for (size_t i = 0; i < 7; i++)
        for (size_t k = 0; k <= i; k++) CHECK_EQ_INT(dds__ddsketch_add(&s, pts[i]), 0);
    CHECK_EQ_INT(dds__ddsketch_count(&s), 28);
    CHECK_EQ_INT(s.zero_count, 1);
    CHECK_EQ_INT(dds__ddsketch_add(&s, DBL_MIN), 0);  /* below the smallest indexable value */
    CHECK_EQ_INT(s.zero_count, 2);
    CHECK_EQ_INT(dds__ddsketch_add(&s, -1), -1);
    CHECK_EQ_INT(dds__ddsketch_add(&s, NAN), -1);
    CHECK_EQ_INT(dds__ddsketch_add(&s, INFINITY), -1);
    CHECK_EQ_INT(dds__ddsketch_count(&s), 29);
    /* each value's bin holds exactly its count */
    for (size_t i = 1; i < 7; i++)
        CHECK_EQ_INT(s.bins[dds__ddsketch_index(pts[i]) - s.offset], i + 1);
    dds__ddsketch_free(&s);
}

TEST(test_encode_decodes_with_counts) {
    dds__ddsketch s;
    dds__ddsketch_init(&s);
    for (int i = 1; i <= 100; i++) dds__ddsketch_add(&s, i * 1000.0);
    dds__ddsketch_add(&s, 0);
    dds__buf b;
    dds__buf_init(&b);
    dds__ddsketch_encode(&s, &b);
    CHECK(!b.oom);
    decoded *d = calloc(1, sizeof(*d));
    CHECK(decode(b.data, b.len, d));
    CHECK(d->gamma == 1.015625 && d->index_offset == 1338.5);
    CHECK(d->has_negative);
    CHECK(d->zero_count == 1);
    CHECK(count_of(d) == 101);
    CHECK_EQ_INT(d->offset, dds__ddsketch_index(1000.0));
    CHECK_EQ_INT(d->nbins, dds__ddsketch_index(100000.0) - dds__ddsketch_index(1000.0) + 1);
    /* empty sketch: the mapping and two empty stores */
    dds__ddsketch e;
    dds__ddsketch_init(&e);
    dds__buf_reset(&b);
    dds__ddsketch_encode(&e, &b);
    CHECK(decode(b.data, b.len, d));
    CHECK(count_of(d) == 0 && d->nbins == 0 && d->gamma == 1.015625);
    free(d);
    dds__buf_free(&b);
    dds__ddsketch_free(&s);
}

TEST(test_store_collapses_lowest_bins) {
    dds__ddsketch s;
    dds__ddsketch_init(&s);
    /* from 1 ns up by one index at a time, well past 2048 indexes */
    int32_t first = dds__ddsketch_index(1.0);
    for (int32_t i = 0; i < 3000; i++) CHECK_EQ_INT(dds__ddsketch_add(&s, dds__ddsketch_value(first + i)), 0);
    CHECK_EQ_INT(s.nbins, DDS__DDSKETCH_MAX_BINS);
    CHECK_EQ_INT(dds__ddsketch_count(&s), 3000);
    CHECK_EQ_INT(s.offset + (int32_t)s.nbins - 1, first + 2999);
    CHECK_EQ_INT(s.bins[0], 3000 - 2047);  /* the collapsed mass */
    /* a value far below the run goes to its lowest bin */
    dds__ddsketch_add(&s, 1e-6);
    CHECK_EQ_INT(s.bins[0], 3000 - 2047 + 1);
    CHECK_EQ_INT(s.nbins, DDS__DDSKETCH_MAX_BINS);
    dds__ddsketch_free(&s);
    /* a jump of more than the bin limit upwards keeps only the top, with the old mass at its bottom */
    dds__ddsketch_init(&s);
    dds__ddsketch_add(&s, 1.0);
    dds__ddsketch_add(&s, 2.0);
    dds__ddsketch_add(&s, 1e30);
    CHECK_EQ_INT(s.nbins, DDS__DDSKETCH_MAX_BINS);
    CHECK_EQ_INT(s.bins[0], 2);
    CHECK_EQ_INT(s.bins[s.nbins - 1], 1);
    CHECK_EQ_INT(dds__ddsketch_count(&s), 3);
    /* downwards within the bound: the run grows at the bottom */
    dds__ddsketch_free(&s);
    dds__ddsketch_init(&s);
    dds__ddsketch_add(&s, 1000.0);
    dds__ddsketch_add(&s, 10.0);
    CHECK_EQ_INT(s.offset, dds__ddsketch_index(10.0));
    CHECK_EQ_INT(s.bins[0], 1);
    CHECK_EQ_INT(s.bins[s.nbins - 1], 1);
    dds__ddsketch_free(&s);
}

TEST(test_bounded_add_stops_growing) {
    dds__ddsketch s;
    dds__ddsketch_init(&s);
    CHECK_EQ_INT(dds__ddsketch_add_bounded(&s, 1000.0, 0), 0);  /* an empty sketch takes its first bin */
    uint32_t cap = s.cap;
    CHECK(cap >= 1);
    for (int i = 0; i < 500; i++) CHECK_EQ_INT(dds__ddsketch_add_bounded(&s, 1000.0 * (1 + i), cap), 0);
    CHECK_EQ_INT(s.cap, cap);  /* no allocation */
    CHECK(s.nbins <= cap);
    CHECK_EQ_INT(dds__ddsketch_count(&s), 501);
    CHECK_EQ_INT(s.offset + (int32_t)s.nbins - 1, dds__ddsketch_index(500000.0));  /* the top kept */
    dds__ddsketch_free(&s);
}

int main(void) {
    RUN(test_mapping_matches_libdd_formula);
    RUN(test_add_counts_and_zero_bin);
    RUN(test_encode_decodes_with_counts);
    RUN(test_store_collapses_lowest_bins);
    RUN(test_bounded_add_stops_growing);
    return TEST_REPORT();
}
