/* test_compress.c - zstd and gzip round trips through the reference decoders. */
#include "transport/compress.h"

#include <zlib.h>
#include <zstd.h>

#include "test.h"

static uint8_t *sample(size_t n, int kind) {
    uint8_t *p = malloc(n ? n : 1);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        if (kind == 0) {
            p[i] = (uint8_t)("metric.name:1|c|#env:prod,service:api\n"[i % 39]);
        } else {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            p[i] = (uint8_t)x;
        }
    }
    return p;
}

static const size_t sizes[] = {0, 1, 100, 65536, 1 << 20};

TEST(zstd_round_trip) {
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (int kind = 0; kind < 2; kind++) {
            for (int level = 0; level <= 3; level += 3) {
                size_t n = sizes[si];
                uint8_t *in = sample(n, kind), *out = NULL;
                size_t out_len = 0;
                CHECK_EQ_INT(dds__zstd_compress(in, n, level, &out, &out_len), 0);
                CHECK(out != NULL);
                unsigned long long framed = ZSTD_getFrameContentSize(out, out_len);
                CHECK(framed == n);  /* one-shot frames carry their size: decoders can preallocate */
                uint8_t *back = malloc(n ? n : 1);
                size_t r = ZSTD_decompress(back, n ? n : 1, out, out_len);
                CHECK(!ZSTD_isError(r));
                CHECK_EQ_INT(r, n);
                CHECK(n == 0 || memcmp(back, in, n) == 0);
                if (kind == 0 && n >= 65536) CHECK(out_len < n / 10);
                free(back);
                free(out);
                free(in);
            }
        }
    }
}

static int gunzip(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len) {
    z_stream zs = {0};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) return -1;  /* gzip wrapper only */
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = inflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    inflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : -1;
}

TEST(gzip_round_trip) {
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (int kind = 0; kind < 2; kind++) {
            for (int level = 0; level <= 9; level += 9) {
                size_t n = sizes[si];
                uint8_t *in = sample(n, kind), *out = NULL;
                size_t out_len = 0;
                CHECK_EQ_INT(dds__gzip_compress(in, n, level, &out, &out_len), 0);
                CHECK(out_len >= 18 && out[0] == 0x1f && out[1] == 0x8b);  /* gzip magic */
                uint8_t *back = malloc(n + 1);
                size_t back_len = 0;
                CHECK_EQ_INT(gunzip(out, out_len, back, n + 1, &back_len), 0);
                CHECK_EQ_INT(back_len, n);
                CHECK(n == 0 || memcmp(back, in, n) == 0);
                if (kind == 0 && n >= 65536) CHECK(out_len < n / 10);
                free(back);
                free(out);
                free(in);
            }
        }
    }
}

TEST(out_of_range_levels_are_clamped) {
    const uint8_t in[] = "hello hello hello hello";
    uint8_t *out = NULL;
    size_t out_len = 0;
    CHECK_EQ_INT(dds__gzip_compress(in, sizeof(in), 42, &out, &out_len), 0);
    free(out);
    out = NULL;
    CHECK_EQ_INT(dds__zstd_compress(in, sizeof(in), 1000, &out, &out_len), 0);
    uint8_t back[sizeof(in)];
    CHECK_EQ_INT(ZSTD_decompress(back, sizeof(back), out, out_len), sizeof(in));
    free(out);
}

int main(void) {
    RUN(zstd_round_trip);
    RUN(gzip_round_trip);
    RUN(out_of_range_levels_are_clamped);
    return TEST_REPORT();
}
