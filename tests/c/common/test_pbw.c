/* test_pbw.c - protobuf writer: exact bytes against hand-computed wire encodings. */
#include "common/pbw.h"

#include "test.h"

/* Compare buffer contents with an expected byte string; prints both on mismatch. */
#define CHECK_BYTES(buf, ...)                                                                  \
    do {                                                                                       \
        static const uint8_t _want[] = {__VA_ARGS__};                                          \
        check_bytes(&(buf), _want, sizeof(_want), __LINE__);                                   \
    } while (0)

static void check_bytes(const dds__buf *b, const uint8_t *want, size_t n, int line) {
    if (b->oom || b->len != n || memcmp(b->data, want, n) != 0) {
        TEST_FAIL_AT("line %d: bytes differ (oom=%d, len %zu, want %zu)", line, b->oom, b->len, n);
        fprintf(stderr, "    got: ");
        for (size_t i = 0; i < b->len; i++) fprintf(stderr, "%02x ", b->data[i]);
        fprintf(stderr, "\n    want:");
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %02x", want[i]);
        fputc('\n', stderr);
    }
}

TEST(varint_edges) {
    dds__buf b;
    dds__buf_init(&b);
    dds__pbw_varint(&b, 0);
    CHECK_BYTES(b, 0x00);
    dds__buf_reset(&b);
    dds__pbw_varint(&b, 127);
    CHECK_BYTES(b, 0x7f);
    dds__buf_reset(&b);
    dds__pbw_varint(&b, 128);
    CHECK_BYTES(b, 0x80, 0x01);
    dds__buf_reset(&b);
    dds__pbw_varint(&b, 300);
    CHECK_BYTES(b, 0xac, 0x02);
    dds__buf_reset(&b);
    dds__pbw_varint(&b, 16384);
    CHECK_BYTES(b, 0x80, 0x80, 0x01);
    dds__buf_reset(&b);
    dds__pbw_varint(&b, UINT64_C(1) << 63);
    CHECK_BYTES(b, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01);
    dds__buf_reset(&b);
    dds__pbw_varint(&b, UINT64_MAX);
    CHECK_BYTES(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    CHECK_EQ_INT(dds__pbw_varint_size(0), 1);
    CHECK_EQ_INT(dds__pbw_varint_size(127), 1);
    CHECK_EQ_INT(dds__pbw_varint_size(128), 2);
    CHECK_EQ_INT(dds__pbw_varint_size(UINT64_MAX), 10);
    dds__buf_free(&b);
}

TEST(integer_fields) {
    dds__buf b;
    dds__buf_init(&b);
    dds__pbw_int64(&b, 1, -1);  /* negative int64: ten-byte two's complement varint */
    CHECK_BYTES(b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    dds__buf_reset(&b);
    dds__pbw_int64(&b, 2, INT64_MIN);
    CHECK_BYTES(b, 0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01);
    dds__buf_reset(&b);
    dds__pbw_int64(&b, 8, 10);
    CHECK_BYTES(b, 0x40, 0x0a);
    dds__buf_reset(&b);
    dds__pbw_uint64(&b, 5, 3);
    CHECK_BYTES(b, 0x28, 0x03);
    dds__buf_reset(&b);
    dds__pbw_uint64(&b, 16, 1);  /* field 16: the tag itself takes two bytes */
    CHECK_BYTES(b, 0x80, 0x01, 0x01);
    dds__buf_reset(&b);
    dds__pbw_uint64(&b, 536870911, 0);  /* largest field number */
    CHECK_BYTES(b, 0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00);
    dds__buf_free(&b);
}

TEST(zigzag) {
    CHECK_EQ_INT(dds__pbw_zigzag32(0), 0);
    CHECK_EQ_INT(dds__pbw_zigzag32(-1), 1);
    CHECK_EQ_INT(dds__pbw_zigzag32(1), 2);
    CHECK_EQ_INT(dds__pbw_zigzag32(-2), 3);
    CHECK_EQ_INT(dds__pbw_zigzag32(2147483647), 4294967294u);
    CHECK_EQ_INT(dds__pbw_zigzag32(INT32_MIN), 4294967295u);
    CHECK(dds__pbw_zigzag64(INT64_MIN) == UINT64_MAX);
    CHECK(dds__pbw_zigzag64(-1) == 1);
    dds__buf b;
    dds__buf_init(&b);
    dds__pbw_sint32(&b, 7, -1);
    CHECK_BYTES(b, 0x38, 0x01);
    dds__buf_reset(&b);
    dds__pbw_sint32(&b, 7, 1);
    CHECK_BYTES(b, 0x38, 0x02);
    dds__buf_reset(&b);
    dds__pbw_sint32(&b, 7, INT32_MIN);
    CHECK_BYTES(b, 0x38, 0xff, 0xff, 0xff, 0xff, 0x0f);
    dds__buf_reset(&b);
    dds__pbw_sint64(&b, 1, -3);
    CHECK_BYTES(b, 0x08, 0x05);
    dds__buf_free(&b);
}

TEST(fixed_and_doubles) {
    dds__buf b;
    dds__buf_init(&b);
    dds__pbw_double(&b, 1, 1.0);
    CHECK_BYTES(b, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f);
    dds__buf_reset(&b);
    dds__pbw_double(&b, 3, -2.5);
    CHECK_BYTES(b, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xc0);
    dds__buf_reset(&b);
    dds__pbw_double(&b, 1, 0.1);  /* 0x3FB999999999999A */
    CHECK_BYTES(b, 0x09, 0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f);
    dds__buf_reset(&b);
    dds__pbw_float(&b, 2, 1.0f);
    CHECK_BYTES(b, 0x15, 0x00, 0x00, 0x80, 0x3f);
    dds__buf_reset(&b);
    dds__pbw_fixed32(&b, 1, 0x01020304u);
    CHECK_BYTES(b, 0x0d, 0x04, 0x03, 0x02, 0x01);
    dds__buf_reset(&b);
    dds__pbw_fixed64(&b, 1, UINT64_C(0x0102030405060708));
    CHECK_BYTES(b, 0x09, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01);
    dds__buf_free(&b);
}

TEST(strings) {
    dds__buf b;
    dds__buf_init(&b);
    dds__pbw_bytes(&b, 2, "hi", 2);
    CHECK_BYTES(b, 0x12, 0x02, 'h', 'i');
    dds__buf_reset(&b);
    dds__pbw_bytes(&b, 3, NULL, 0);
    CHECK_BYTES(b, 0x1a, 0x00);
    dds__buf_reset(&b);
    char big[200];
    memset(big, 'x', sizeof(big));
    dds__pbw_bytes(&b, 1, big, sizeof(big));
    CHECK_EQ_INT(b.len, 3 + 200);
    CHECK(b.data[0] == 0x0a && b.data[1] == 0xc8 && b.data[2] == 0x01);
    dds__buf_free(&b);
}

TEST(nested_short) {
    dds__buf b;
    dds__buf_init(&b);
    size_t m = dds__pbw_begin(&b, 1);
    dds__pbw_uint64(&b, 1, 150);
    dds__pbw_end(&b, m);
    CHECK_BYTES(b, 0x0a, 0x03, 0x08, 0x96, 0x01);
    dds__buf_reset(&b);
    m = dds__pbw_begin(&b, 4);  /* empty message: still written, length 0 */
    dds__pbw_end(&b, m);
    CHECK_BYTES(b, 0x22, 0x00);
    dds__buf_reset(&b);
    /* MetricSeries-like: resources{type:"host",name:"h"}, metric "m", point{value 1, ts 10} */
    size_t s = dds__pbw_begin(&b, 1);
    size_t r = dds__pbw_begin(&b, 1);
    dds__pbw_bytes(&b, 1, "host", 4);
    dds__pbw_bytes(&b, 2, "h", 1);
    dds__pbw_end(&b, r);
    dds__pbw_bytes(&b, 2, "m", 1);
    size_t p = dds__pbw_begin(&b, 4);
    dds__pbw_double(&b, 1, 1.0);
    dds__pbw_int64(&b, 2, 10);
    dds__pbw_end(&b, p);
    dds__pbw_end(&b, s);
    CHECK_BYTES(b, 0x0a, 0x1b,
                0x0a, 0x09, 0x0a, 0x04, 'h', 'o', 's', 't', 0x12, 0x01, 'h',
                0x12, 0x01, 'm',
                0x22, 0x0b, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f, 0x10, 0x0a);
    dds__buf_free(&b);
}

/* Read a varint at *p (test-only reader). */
static uint64_t rd_varint(const uint8_t **p, const uint8_t *end) {
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return v;
    }
    return UINT64_MAX;
}

/* Nested lengths that cross the 1-, 2- and 3-byte varint boundaries, two levels deep, so the
 * inner body is moved twice: every length and every body byte must come out intact. */
TEST(nested_lengths_move_body) {
    static const size_t sizes[] = {0, 1, 125, 126, 127, 128, 129, 16380, 16381, 16382, 16383, 16384, 70000};
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        size_t n = sizes[si];
        char *payload = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++) payload[i] = (char)(i * 7 + si);
        dds__buf b;
        dds__buf_init(&b);
        dds__pbw_uint64(&b, 9, 1);  /* something before, to make the mark non-zero */
        size_t outer = dds__pbw_begin(&b, 1);
        size_t inner = dds__pbw_begin(&b, 2);
        dds__pbw_bytes(&b, 3, payload, n);
        dds__pbw_end(&b, inner);
        dds__pbw_uint64(&b, 4, 7);  /* a field after the inner message */
        dds__pbw_end(&b, outer);
        CHECK(!b.oom);
        const uint8_t *p = b.data, *end = b.data + b.len;
        CHECK(rd_varint(&p, end) == (9 << 3 | 0) && rd_varint(&p, end) == 1);
        CHECK(rd_varint(&p, end) == (1 << 3 | 2));
        uint64_t olen = rd_varint(&p, end);
        CHECK_EQ_INT(olen, (uint64_t)(end - p));
        CHECK(rd_varint(&p, end) == (2 << 3 | 2));
        uint64_t ilen = rd_varint(&p, end);
        const uint8_t *iend = p + ilen;
        CHECK(rd_varint(&p, end) == (3 << 3 | 2));
        uint64_t slen = rd_varint(&p, end);
        CHECK_EQ_INT(slen, n);
        CHECK((uint64_t)(iend - p) == slen);
        CHECK(n == 0 || memcmp(p, payload, n) == 0);
        p += slen;
        CHECK(p == iend);
        CHECK(rd_varint(&p, end) == (4 << 3 | 0) && rd_varint(&p, end) == 7);
        CHECK(p == end);
        /* canonical: the length prefix is minimal */
        CHECK_EQ_INT(b.len, 2 + 1 + dds__pbw_varint_size(olen) + olen);
        dds__buf_free(&b);
        free(payload);
    }
}

TEST(packed) {
    dds__buf b;
    dds__buf_init(&b);
    const int32_t k[] = {0, -1, 1, 64, -65};
    dds__pbw_packed_sint32(&b, 7, k, 5);  /* zigzag 0,1,2,128,129 */
    CHECK_BYTES(b, 0x3a, 0x07, 0x00, 0x01, 0x02, 0x80, 0x01, 0x81, 0x01);
    dds__buf_reset(&b);
    const uint32_t n[] = {1, 300};
    dds__pbw_packed_uint32(&b, 8, n, 2);
    CHECK_BYTES(b, 0x42, 0x03, 0x01, 0xac, 0x02);
    dds__buf_reset(&b);
    dds__pbw_packed_uint32(&b, 8, n, 0);  /* empty: nothing at all */
    CHECK_EQ_INT(b.len, 0);
    const int64_t i64[] = {-1, 1};
    dds__pbw_packed_int64(&b, 1, i64, 2);
    CHECK_BYTES(b, 0x0a, 0x0b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01);
    dds__buf_reset(&b);
    const double d[] = {1.0, -2.5};
    dds__pbw_packed_double(&b, 2, d, 2);
    CHECK_BYTES(b, 0x12, 0x10, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0x04, 0xc0);
    dds__buf_reset(&b);
    /* the begin/end form gives the same bytes as the array form */
    size_t m = dds__pbw_begin(&b, 7);
    for (int i = 0; i < 5; i++) dds__pbw_varint(&b, dds__pbw_zigzag32(k[i]));
    dds__pbw_end(&b, m);
    CHECK_BYTES(b, 0x3a, 0x07, 0x00, 0x01, 0x02, 0x80, 0x01, 0x81, 0x01);
    dds__buf_free(&b);
}

TEST(oom_is_sticky_and_safe) {
    dds__buf b;
    dds__buf_init(&b);
    b.oom = true;  /* as after a failed allocation: nothing may be written, nothing may crash */
    size_t m = dds__pbw_begin(&b, 1);
    dds__pbw_uint64(&b, 1, 5);
    dds__pbw_bytes(&b, 2, "abc", 3);
    const uint32_t n[] = {1, 2};
    dds__pbw_packed_uint32(&b, 8, n, 2);
    dds__pbw_end(&b, m);
    CHECK(b.oom);
    CHECK_EQ_INT(b.len, 0);
    CHECK(b.data == NULL);
    dds__buf_free(&b);
}

int main(void) {
    RUN(varint_edges);
    RUN(integer_fields);
    RUN(zigzag);
    RUN(fixed_and_doubles);
    RUN(strings);
    RUN(nested_short);
    RUN(nested_lengths_move_body);
    RUN(packed);
    RUN(oom_is_sticky_and_safe);
    return TEST_REPORT();
}
