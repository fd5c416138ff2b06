/* hash.h - fast 64-bit non-cryptographic hash for in-memory tables (contexts, tags, set members).
 * Not for anything an attacker can exploit beyond slowing a table down: every table that uses it
 * verifies a hit against the stored bytes. Pure functions, no state, any thread. */
#ifndef DDS_COMMON_HASH_H
#define DDS_COMMON_HASH_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Odd 64-bit constants with balanced bits (digits of pi and e, golden ratio). */
#define DDS__HASH_K0 0x243f6a8885a308d3ull
#define DDS__HASH_K1 0x9e3779b97f4a7c15ull
#define DDS__HASH_K2 0xb7e151628aed2a6bull
#define DDS__HASH_K3 0x13198a2e03707345ull

static inline uint64_t dds__hash_rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline uint64_t dds__hash_rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* 64x64 -> 128 multiply folded to 64 bits: one instruction on x86-64 and arm64, and every input
 * bit reaches every output bit. */
static inline uint64_t dds__hash_fold(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Final avalanche so that the low bits (used as the table index) depend on the whole input. */
static inline uint64_t dds__hash_finish(uint64_t h, uint64_t len) {
    return dds__hash_fold(h ^ DDS__HASH_K1, len ^ DDS__HASH_K3 ^ (h >> 29));
}

/* Hash n bytes with a seed (chain calls by passing the previous result as the seed). */
static inline uint64_t dds__hash64(const void *data, size_t n, uint64_t seed) {
    const uint8_t *p = (const uint8_t *)data;
    uint64_t h = seed ^ DDS__HASH_K0;
    if (n <= 16) {
        uint64_t a = 0, b = 0;
        if (n >= 8) {
            /* Two overlapping loads cover 8..16 bytes without a loop. */
            a = dds__hash_rd64(p);
            b = dds__hash_rd64(p + n - 8);
        } else if (n >= 4) {
            a = dds__hash_rd32(p);
            b = dds__hash_rd32(p + n - 4);
        } else if (n > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
        }
        return dds__hash_finish(dds__hash_fold(a ^ DDS__HASH_K1, b ^ h), n);
    }
    /* Four independent lanes keep the multiplier busy on long tag lists; each lane takes 16 bytes
     * per round, so one round eats 64 bytes. */
    uint64_t l0 = h, l1 = h ^ DDS__HASH_K1, l2 = h ^ DDS__HASH_K2, l3 = h ^ DDS__HASH_K3;
    size_t left = n;
    while (left > 64) {
        l0 = dds__hash_fold(dds__hash_rd64(p) ^ DDS__HASH_K1, dds__hash_rd64(p + 8) ^ l0);
        l1 = dds__hash_fold(dds__hash_rd64(p + 16) ^ DDS__HASH_K2, dds__hash_rd64(p + 24) ^ l1);
        l2 = dds__hash_fold(dds__hash_rd64(p + 32) ^ DDS__HASH_K3, dds__hash_rd64(p + 40) ^ l2);
        l3 = dds__hash_fold(dds__hash_rd64(p + 48) ^ DDS__HASH_K0, dds__hash_rd64(p + 56) ^ l3);
        p += 64;
        left -= 64;
    }
    h = dds__hash_fold(l0 ^ DDS__HASH_K2, l1) + dds__hash_fold(l2 ^ DDS__HASH_K3, l3);
    while (left > 16) {
        h = dds__hash_fold(dds__hash_rd64(p) ^ DDS__HASH_K1, dds__hash_rd64(p + 8) ^ h);
        p += 16;
        left -= 16;
    }
    /* The last 16 bytes, read backwards from the end (overlapping what was already mixed). */
    const uint8_t *e = p + left - 16;
    h = dds__hash_fold(dds__hash_rd64(e) ^ DDS__HASH_K2, dds__hash_rd64(e + 8) ^ h);
    return dds__hash_finish(h, n);
}
#endif
