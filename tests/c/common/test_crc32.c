/* test_crc32.c - dds__crc32 gives zlib's crc32() value: every length from 0 to 600 at every
 * alignment within 16 bytes, a large input in one piece and in random pieces (chaining), from
 * non-zero starting values. */
#include <zlib.h>

#include "common/crc32.h"
#include "test.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint8_t rnd8(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint8_t)(rng >> 24);
}

TEST(every_length_and_alignment) {
    static uint8_t buf[640];
    for (size_t i = 0; i < sizeof(buf); i++) buf[i] = rnd8();
    for (size_t off = 0; off < 16; off++)
        for (size_t n = 0; n + off <= 616; n++) {
            uint32_t start = (uint32_t)(n * 2654435761u);
            uint32_t want = (uint32_t)crc32(start, buf + off, (uInt)n);
            uint32_t got = dds__crc32(start, buf + off, n);
            CHECK_MSG(got == want, "offset %zu length %zu: %08x, zlib %08x", off, n, got, want);
        }
}

TEST(large_and_chained) {
    size_t n = (3u << 20) + 77;
    uint8_t *buf = malloc(n);
    CHECK(buf != NULL);
    if (!buf) return;
    for (size_t i = 0; i < n; i++) buf[i] = rnd8();
    uint32_t want = (uint32_t)crc32(0, buf, (uInt)n);
    CHECK_EQ_INT(dds__crc32(0, buf, n), want);
    uint32_t c = 0;
    for (size_t i = 0; i < n;) {
        size_t k = (size_t)rnd8() * (rnd8() % 64 + 1);
        if (k > n - i) k = n - i;
        c = dds__crc32(c, buf + i, k);
        i += k;
    }
    CHECK_EQ_INT(c, want);
    /* All zeros and all ones: no lane may cancel another. */
    memset(buf, 0, n);
    CHECK_EQ_INT(dds__crc32(0, buf, n), (uint32_t)crc32(0, buf, (uInt)n));
    memset(buf, 0xff, n);
    CHECK_EQ_INT(dds__crc32(0, buf, n), (uint32_t)crc32(0, buf, (uInt)n));
    free(buf);
}

int main(void) {
    RUN(every_length_and_alignment);
    RUN(large_and_chained);
    return TEST_REPORT();
}
