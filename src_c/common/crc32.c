/* crc32.c - gzip's CRC-32 by folding. In: bytes. Out: zlib's crc32() of them.
 *
 * The reflected CRC of a message M is the remainder of M(x) * x^32 modulo
 * P(x) = x^32 + 0x04C11DB7, bit order reversed. A 128-bit block X followed by D bits of
 * message is congruent to (X_lo * x^(D+32) + X_hi * x^(D-32)) mod P as far as the remainder
 * goes, so the running state folds into the block D bits ahead: two carry-less multiplies by
 * constants and an XOR, no reduction until the end. The constants are x^k mod P, bits reversed
 * and shifted left once (a carry-less product of reversed operands comes out one bit low):
 * k = 544 and 480 fold four parallel lanes 512 bits ahead, k = 160 and 96 one lane 128 bits
 * ahead. The last 16-byte state and the tail (under 16 bytes) go through zlib's crc32, which
 * ends the division. zlib's pre- and post-inversion: the inverted running value is XORed into
 * the first four bytes, and what is left is the CRC of the state from an all-ones register. */
#include "common/crc32.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <zlib.h>

/* zlib takes an unsigned int length: pieces, for inputs past 4 GiB. */
static uint32_t crc_zlib(uint32_t crc, const uint8_t *p, size_t n) {
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

#define K544 UINT64_C(0x154442bd4)
#define K480 UINT64_C(0x1c6e41596)
#define K160 UINT64_C(0x1751997d0)
#define K96 UINT64_C(0x0ccaa009e)

__attribute__((target("pclmul,sse2"))) static inline __m128i fold(__m128i x, __m128i k, __m128i next) {
    __m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
    __m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
    return _mm_xor_si128(_mm_xor_si128(lo, hi), next);
}

/* n >= 64. */
__attribute__((target("pclmul,sse2"))) static uint32_t crc_fold(uint32_t crc, const uint8_t *p, size_t n) {
    __m128i x0 = _mm_loadu_si128((const __m128i *)p), x1 = _mm_loadu_si128((const __m128i *)(p + 16)),
            x2 = _mm_loadu_si128((const __m128i *)(p + 32)), x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)~crc));
    p += 64;
    n -= 64;
    const __m128i k4 = _mm_set_epi64x((long long)K480, (long long)K544);
    while (n >= 64) {
        x0 = fold(x0, k4, _mm_loadu_si128((const __m128i *)p));
        x1 = fold(x1, k4, _mm_loadu_si128((const __m128i *)(p + 16)));
        x2 = fold(x2, k4, _mm_loadu_si128((const __m128i *)(p + 32)));
        x3 = fold(x3, k4, _mm_loadu_si128((const __m128i *)(p + 48)));
        p += 64;
        n -= 64;
    }
    const __m128i k1 = _mm_set_epi64x((long long)K96, (long long)K160);
    __m128i x = fold(fold(fold(x0, k1, x1), k1, x2), k1, x3);
    while (n >= 16) {
        x = fold(x, k1, _mm_loadu_si128((const __m128i *)p));
        p += 16;
        n -= 16;
    }
    uint8_t last[32];
    _mm_storeu_si128((__m128i *)last, x);
    if (n) memcpy(last + 16, p, n);
    return (uint32_t)crc32(0xFFFFFFFFul, last, (uInt)(16 + n));
}

/* 1: PCLMULQDQ, 0: none, -1: not checked yet. */
static atomic_int have_pclmul = -1;

static bool pclmul(void) {
    int h = atomic_load_explicit(&have_pclmul, memory_order_relaxed);
    if (h < 0) {
        unsigned a, b, c, d;
        h = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_PCLMUL) && (d & bit_SSE2);
        atomic_store_explicit(&have_pclmul, h, memory_order_relaxed);
    }
    return h == 1;
}

uint32_t dds__crc32(uint32_t crc, const uint8_t *p, size_t n) {
    if (n >= 64 && pclmul()) return crc_fold(crc, p, n);
    return crc_zlib(crc, p, n);
}
#else
uint32_t dds__crc32(uint32_t crc, const uint8_t *p, size_t n) { return crc_zlib(crc, p, n); }
#endif
