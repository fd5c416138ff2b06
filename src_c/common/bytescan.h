/* bytescan.h - where given bytes are in 16 bytes at once: a mask with DDS__SCAN_BITS bits per
 * byte, byte i at bits [i * DDS__SCAN_BITS, (i + 1) * DDS__SCAN_BITS), so the first hit is byte
 * ctz(mask) / DDS__SCAN_BITS. SSE2 (every x86-64) gives one bit a byte by movemask; NEON (every
 * little-endian arm64) four, by narrowing the compare's 16-bit lanes; anything else one, byte by
 * byte. The 16 bytes at p must be readable. */
#ifndef DDS_COMMON_BYTESCAN_H
#define DDS_COMMON_BYTESCAN_H
#include <stdint.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define DDS__SCAN_BITS 1
static inline __m128i dds__scan_load(const char *p) { return _mm_loadu_si128((const __m128i *)(const void *)p); }
static inline uint64_t dds__scan16_1(const char *p, char a) {
    return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(dds__scan_load(p), _mm_set1_epi8(a)));
}
static inline uint64_t dds__scan16_2(const char *p, char a, char b) {
    const __m128i x = dds__scan_load(p);
    return (uint32_t)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(a)), _mm_cmpeq_epi8(x, _mm_set1_epi8(b))));
}
#elif defined(__aarch64__) && defined(__ARM_NEON) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <arm_neon.h>
#define DDS__SCAN_BITS 4
static inline uint64_t dds__scan_mask(uint8x16_t hit) {
    return vget_lane_u64(vreinterpret_u64_u8(vshrn_n_u16(vreinterpretq_u16_u8(hit), 4)), 0);
}
static inline uint64_t dds__scan16_1(const char *p, char a) {
    return dds__scan_mask(vceqq_u8(vld1q_u8((const uint8_t *)p), vdupq_n_u8((uint8_t)a)));
}
static inline uint64_t dds__scan16_2(const char *p, char a, char b) {
    const uint8x16_t x = vld1q_u8((const uint8_t *)p);
    return dds__scan_mask(vorrq_u8(vceqq_u8(x, vdupq_n_u8((uint8_t)a)), vceqq_u8(x, vdupq_n_u8((uint8_t)b))));
}
#else
#define DDS__SCAN_BITS 1
static inline uint64_t dds__scan16_1(const char *p, char a) {
    uint64_t m = 0;
    for (int i = 0; i < 16; i++) m |= (uint64_t)(p[i] == a) << i;
    return m;
}
static inline uint64_t dds__scan16_2(const char *p, char a, char b) {
    uint64_t m = 0;
    for (int i = 0; i < 16; i++) m |= (uint64_t)(p[i] == a || p[i] == b) << i;
    return m;
}
#endif

/* First a or b in [p, end), or end. */
static inline const char *dds__find2(const char *p, const char *end, char a, char b) {
    for (; end - p >= 16; p += 16) {
        uint64_t hit = dds__scan16_2(p, a, b);
        if (hit) return p + __builtin_ctzll(hit) / DDS__SCAN_BITS;
    }
    while (p < end && *p != a && *p != b) p++;
    return p;
}

#endif
