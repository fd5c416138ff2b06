/* msgpack.h - a streaming msgpack reader over one byte range (no writer here).
 *
 * Zero copy: strings and bin values come back as slices into the input, which must outlive
 * them. The only copies are strings repaired from invalid UTF-8, made in the reader's arena.
 *
 * Sticky error: the first failure records a reason and moves the cursor to the end, so every
 * later read returns zero or an empty slice without touching memory. Callers read a whole
 * record and check dds__mp_ok once at the end.
 *
 * Hostile input: every declared length is checked against the bytes left before it is
 * returned, so a caller may size an allocation from it: an array of n items needs at least n
 * bytes, a map of n entries at least 2n, a str/bin/ext of n bytes exactly n. The reader never
 * allocates except for repaired strings, never recurses, and bounds skip() nesting.
 *
 * Lenient readers follow the Go trace agent's decoders (pkg/proto/pbgo/trace/decoder_bytes.go),
 * which every tracer is tested against: see the comment above each. Single-threaded. */
#ifndef DDS_COMMON_MSGPACK_H
#define DDS_COMMON_MSGPACK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "common/slice.h"

/* skip() refuses containers nested deeper than this, the skipped value being the first level.
 * No tracer nests unknown fields more than a few levels; the bound keeps skip's state a fixed
 * array and makes absurd nesting fail fast. */
#define DDS__MP_MAX_DEPTH 64

typedef enum dds__mp_type {
    DDS__MP_NONE = 0, /* end of input, or the reader is in error */
    DDS__MP_NIL,
    DDS__MP_BOOL,
    DDS__MP_INT,      /* fixint, negative fixint, int8..int64 */
    DDS__MP_UINT,     /* uint8..uint64 */
    DDS__MP_FLOAT32,
    DDS__MP_FLOAT64,
    DDS__MP_STR,
    DDS__MP_BIN,
    DDS__MP_ARRAY,
    DDS__MP_MAP,
    DDS__MP_EXT,
    DDS__MP_INVALID,  /* 0xc1, never used by msgpack */
} dds__mp_type;

typedef struct dds__mp_reader {
    const uint8_t *p, *end, *start;
    dds__arena *arena;       /* repaired strings go here; NULL = invalid UTF-8 is an error */
    /* Label of the value about to be read ("meta value"), set by the caller before a read and
     * saved with the first error, so a decoder can say where it failed without checking
     * after every read. Static strings only. */
    const char *ctx;
    /* First failure: a predicate that follows the label ("is not a string", "is truncated").
     * NULL while the reader is fine. May point into caller storage set by dds__mp_fail. */
    const char *err;
    const char *err_ctx;     /* ctx at the first failure */
    size_t err_offset;       /* byte offset of the value that failed */
    int err_byte;            /* its type byte for type mismatches ("got float64"), else -1 */
} dds__mp_reader;

/* The reader borrows data (and arena): both must outlive every slice it returns. */
void dds__mp_reader_init(dds__mp_reader *r, const void *data, size_t len, dds__arena *arena);

static inline bool dds__mp_ok(const dds__mp_reader *r) { return r->err == NULL; }
static inline size_t dds__mp_left(const dds__mp_reader *r) { return (size_t)(r->end - r->p); }

/* Put the reader in error with reason (kept as a pointer: static or caller storage that
 * outlives the reader). A reader already in error keeps its first reason. */
void dds__mp_fail(dds__mp_reader *r, const char *reason);

/* Type of the next value without consuming it; DDS__MP_NONE at the end or in error. */
dds__mp_type dds__mp_peek(const dds__mp_reader *r);
/* Name of a type byte for messages: "float64", "uint32", "fixstr", ... */
const char *dds__mp_type_name(uint8_t type_byte);
/* Consumes a nil and returns true if the next value is nil; otherwise reads nothing. */
static inline bool dds__mp_try_nil(dds__mp_reader *r) {
    if (r->p < r->end && r->p[0] == 0xc0) {
        r->p++;
        return true;
    }
    return false;
}

/* Container headers: the item count, checked against the bytes left. A non-array (non-map)
 * is an error. The _or_nil forms take nil as an empty container: tracers send nil for an
 * empty meta or metrics, and the Go agent accepts it. */
uint32_t dds__mp_read_array_any(dds__mp_reader *r);
uint32_t dds__mp_read_map_any(dds__mp_reader *r);
/* fixarray / fixmap inline (the count still checked against the bytes left), the rest out of line. */
static inline uint32_t dds__mp_read_array(dds__mp_reader *r) {
    if (r->p < r->end && (r->p[0] & 0xf0) == 0x90 && (size_t)(r->p[0] & 0x0f) < (size_t)(r->end - r->p))
        return *r->p++ & 0x0f;
    return dds__mp_read_array_any(r);
}
static inline uint32_t dds__mp_read_map(dds__mp_reader *r) {
    if (r->p < r->end && (r->p[0] & 0xf0) == 0x80 && 2 * (size_t)(r->p[0] & 0x0f) < (size_t)(r->end - r->p))
        return *r->p++ & 0x0f;
    return dds__mp_read_map_any(r);
}
static inline uint32_t dds__mp_read_array_or_nil(dds__mp_reader *r) {
    return dds__mp_try_nil(r) ? 0 : dds__mp_read_array(r);
}
static inline uint32_t dds__mp_read_map_or_nil(dds__mp_reader *r) {
    return dds__mp_try_nil(r) ? 0 : dds__mp_read_map(r);
}

/* A string field as the Go agent's parseStringBytes reads it: str, bin or nil (nil = ""). A
 * valid UTF-8 value is a slice into the input; an invalid one is repaired into the arena, each
 * byte that does not start a valid sequence becoming U+FFFD (Go's repairUTF8 loops over
 * ReadRune, which yields one U+FFFD per such byte: "\xe2\x82A" -> "\uFFFD\uFFFDA"; this is not
 * strings.ToValidUTF8, which would collapse the run into one). */
dds__slice dds__mp_read_str_any(dds__mp_reader *r);

/* True when s[0..n) is all ASCII, n <= 32: a few overlapping word loads, no byte loop. */
static inline bool dds__mp_ascii_upto32(const uint8_t *s, size_t n) {
    const uint64_t hi = 0x8080808080808080ull;
    uint64_t a, b, c, d;
    if (n >= 16) {
        memcpy(&a, s, 8);
        memcpy(&b, s + 8, 8);
        memcpy(&c, s + n - 16, 8);
        memcpy(&d, s + n - 8, 8);
        return !((a | b | c | d) & hi);
    }
    if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        return !((a | b) & hi);
    }
    if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        return !((x | y) & 0x80808080u);
    }
    uint8_t o = 0;
    for (size_t i = 0; i < n; i++) o |= s[i];
    return o < 0x80;
}

/* Inlined into the decoders: most strings of a span are short ASCII fixstrs (keys, names,
 * ids), taken here without a call; everything else goes to dds__mp_read_str_any. */
static inline dds__slice dds__mp_read_str(dds__mp_reader *r) {
    if (r->p < r->end && (r->p[0] & 0xe0) == 0xa0) {
        size_t n = r->p[0] & 0x1f;
        const uint8_t *d = r->p + 1;
        if (n <= (size_t)(r->end - d) && dds__mp_ascii_upto32(d, n)) {
            r->p = d + n;
            return (dds__slice){(const char *)d, n};
        }
    }
    return dds__mp_read_str_any(r);
}
/* The bytes of a str, bin or nil, unchecked: map keys compared against known names
 * (msgp.ReadMapKeyZC takes str or bin) and raw meta_struct values. */
dds__slice dds__mp_read_bytes_any(dds__mp_reader *r);
static inline dds__slice dds__mp_read_bytes(dds__mp_reader *r) {
    if (r->p < r->end && (r->p[0] & 0xe0) == 0xa0) { /* fixstr: no call */
        size_t n = r->p[0] & 0x1f;
        const uint8_t *d = r->p + 1;
        if (n <= (size_t)(r->end - d)) {
            r->p = d + n;
            return (dds__slice){(const char *)d, n};
        }
    }
    return dds__mp_read_bytes_any(r);
}

/* Integers as the Go agent's parse*Bytes helpers read them: any int or uint encoding of any
 * width, nil = 0, and a value that does not fit the target type is an error. Floats are
 * refused, as Go does (msgp.NextType reports them as Float64Type, not IntType). */
uint64_t dds__mp_read_u64_any(dds__mp_reader *r);
int64_t dds__mp_read_i64_any(dds__mp_reader *r);

static inline uint64_t dds__mp_be64(const uint8_t *p) {
    return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) | ((uint64_t)p[3] << 32) |
           ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) | ((uint64_t)p[6] << 8) | (uint64_t)p[7];
}

/* Inlined fast paths for what tracers send nearly always (positive fixint, uint64, int64);
 * every other encoding, and every error, goes to the out-of-line reader. */
static inline uint64_t dds__mp_read_u64(dds__mp_reader *r) { /* a negative int is cast (old Java tracers send ids as int64) */
    if (r->p < r->end) {
        uint8_t b = r->p[0];
        if (b < 0x80) {
            r->p++;
            return b;
        }
        if ((b == 0xcf || b == 0xd3) && r->end - r->p >= 9) {
            uint64_t v = dds__mp_be64(r->p + 1);
            r->p += 9;
            return v;
        }
    }
    return dds__mp_read_u64_any(r);
}
static inline int64_t dds__mp_read_i64(dds__mp_reader *r) { /* a uint above INT64_MAX is an error */
    if (r->p < r->end) {
        uint8_t b = r->p[0];
        if (b < 0x80) {
            r->p++;
            return b;
        }
        if (r->end - r->p >= 9 && (b == 0xd3 || (b == 0xcf && !(r->p[1] & 0x80)))) {
            uint64_t v = dds__mp_be64(r->p + 1);
            r->p += 9;
            return (int64_t)v;
        }
    }
    return dds__mp_read_i64_any(r);
}
int32_t dds__mp_read_i32_any(dds__mp_reader *r);
uint32_t dds__mp_read_u32_any(dds__mp_reader *r);
static inline int32_t dds__mp_read_i32(dds__mp_reader *r) {
    if (r->p < r->end && r->p[0] < 0x80) return *r->p++;
    return dds__mp_read_i32_any(r);
}
static inline uint32_t dds__mp_read_u32(dds__mp_reader *r) { /* a negative value is an error */
    if (r->p < r->end && r->p[0] < 0x80) return *r->p++;
    return dds__mp_read_u32_any(r);
}
/* A float field (parseFloat64Bytes): int, uint, float64, nil = 0, and float32 too (Go refuses
 * float32; PROTOCOL.md accepts any float, and widening it loses nothing). */
double dds__mp_read_f64_any(dds__mp_reader *r);
static inline double dds__mp_read_f64(dds__mp_reader *r) {
    if (r->end - r->p >= 9 && r->p[0] == 0xcb) {
        uint64_t bits = dds__mp_be64(r->p + 1);
        double v;
        memcpy(&v, &bits, 8);
        r->p += 9;
        return v;
    }
    return dds__mp_read_f64_any(r);
}
/* true/false; nil = false. */
bool dds__mp_read_bool(dds__mp_reader *r);

/* Skip one value of any type, iteratively, nested at most DDS__MP_MAX_DEPTH levels. */
void dds__mp_skip(dds__mp_reader *r);

/* UTF-8 exactly as Go's utf8.Valid: no overlongs, no surrogates, nothing above U+10FFFF. */
bool dds__mp_utf8_valid(const uint8_t *s, size_t n);
/* Repair s into the arena as dds__mp_read_str does; false (and arena->oom) on allocation failure. */
bool dds__mp_utf8_repair(dds__arena *arena, const uint8_t *s, size_t n, dds__slice *out);
#endif
