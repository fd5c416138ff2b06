/* utf8.h - one UTF-8 code point at a time, with Go's rules (utf8.DecodeRune): no overlong forms,
 * no surrogates, nothing past U+10FFFF. Shared by the span normalizer (trace/process.c) and the
 * SQL tokenizer (trace/obfuscate_sql.c), which both follow the Go Agent byte for byte. */
#ifndef DDS_COMMON_UTF8_H
#define DDS_COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The code point at p[0..n) (n >= 1) into *cp and its width, or 0 for an ill-formed sequence
 * (*cp untouched). Go's DecodeRune returns U+FFFD with width 1 there; callers that want that
 * map 0 to it. */
static inline size_t dds__utf8_decode(const uint8_t *p, size_t n, uint32_t *cp) {
    uint8_t c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < need || p[1] < lo || p[1] > hi) return 0;
    v = (v << 6) | (p[1] & 0x3F);
    for (size_t i = 2; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    *cp = v;
    return need;
}

/* Bytes the code point takes in UTF-8 (cp <= U+10FFFF). */
static inline size_t dds__utf8_len(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

/* Writes cp (<= U+10FFFF) at p (room for 4 bytes) and returns its width. */
static inline size_t dds__utf8_encode(uint8_t *p, uint32_t cp) {
    size_t w = dds__utf8_len(cp);
    switch (w) {
    case 1: p[0] = (uint8_t)cp; break;
    case 2:
        p[0] = (uint8_t)(0xC0 | (cp >> 6));
        p[1] = (uint8_t)(0x80 | (cp & 0x3F));
        break;
    case 3:
        p[0] = (uint8_t)(0xE0 | (cp >> 12));
        p[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        p[2] = (uint8_t)(0x80 | (cp & 0x3F));
        break;
    default:
        p[0] = (uint8_t)(0xF0 | (cp >> 18));
        p[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        p[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        p[3] = (uint8_t)(0x80 | (cp & 0x3F));
        break;
    }
    return w;
}

#endif
