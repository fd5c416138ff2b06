/* msgpack.c - streaming msgpack reader. In: one byte range (a request body). Out: scalars, and
 * slices into that range (strings repaired from invalid UTF-8 are the only copies, made in the
 * arena). Never reads past the end, never trusts a declared length, never recurses. */
#include "common/msgpack.h"

#include <string.h>

static const char empty[1] = "";

#define R_TRUNCATED "is truncated"
#define R_PAST_END "declares a length past the end of the body"
#define R_TOO_MANY "declares more items than the bytes left can hold"

/* ---- byte helpers --------------------------------------------------------------------------- */

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}
static inline uint64_t be64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* ---- errors --------------------------------------------------------------------------------- */

void dds__mp_reader_init(dds__mp_reader *r, const void *data, size_t len, dds__arena *arena) {
    memset(r, 0, sizeof(*r));
    r->start = r->p = data ? (const uint8_t *)data : (const uint8_t *)empty;
    r->end = r->p + len;
    r->arena = arena;
    r->err_byte = -1;
}

/* Moving the cursor to the end is what makes the error sticky at no cost: every read needs at
 * least one byte, so every later read fails its first bounds check and returns zero. */
static void fail_at(dds__mp_reader *r, const char *reason, int type_byte) {
    if (r->err) return;
    r->err = reason;
    r->err_ctx = r->ctx;
    r->err_offset = (size_t)(r->p - r->start);
    r->err_byte = type_byte;
    r->p = r->end;
}

void dds__mp_fail(dds__mp_reader *r, const char *reason) { fail_at(r, reason, -1); }

static void fail(dds__mp_reader *r, const char *reason) { fail_at(r, reason, -1); }
static void fail_type(dds__mp_reader *r, const char *reason) { fail_at(r, reason, r->p[0]); }

/* ---- types ---------------------------------------------------------------------------------- */

static dds__mp_type type_of(uint8_t b) {
    if (b <= 0x7f || b >= 0xe0) return DDS__MP_INT;
    if (b <= 0x8f) return DDS__MP_MAP;
    if (b <= 0x9f) return DDS__MP_ARRAY;
    if (b <= 0xbf) return DDS__MP_STR;
    switch (b) {
    case 0xc0: return DDS__MP_NIL;
    case 0xc2: case 0xc3: return DDS__MP_BOOL;
    case 0xc4: case 0xc5: case 0xc6: return DDS__MP_BIN;
    case 0xc7: case 0xc8: case 0xc9: return DDS__MP_EXT;
    case 0xca: return DDS__MP_FLOAT32;
    case 0xcb: return DDS__MP_FLOAT64;
    case 0xcc: case 0xcd: case 0xce: case 0xcf: return DDS__MP_UINT;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: return DDS__MP_INT;
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return DDS__MP_EXT;
    case 0xd9: case 0xda: case 0xdb: return DDS__MP_STR;
    case 0xdc: case 0xdd: return DDS__MP_ARRAY;
    case 0xde: case 0xdf: return DDS__MP_MAP;
    default: return DDS__MP_INVALID; /* 0xc1 */
    }
}

const char *dds__mp_type_name(uint8_t b) {
    static const char *const names[] = {
        [0xc0] = "nil", [0xc1] = "reserved byte 0xc1", [0xc2] = "false", [0xc3] = "true",
        [0xc4] = "bin8", [0xc5] = "bin16", [0xc6] = "bin32", [0xc7] = "ext8", [0xc8] = "ext16",
        [0xc9] = "ext32", [0xca] = "float32", [0xcb] = "float64", [0xcc] = "uint8",
        [0xcd] = "uint16", [0xce] = "uint32", [0xcf] = "uint64", [0xd0] = "int8", [0xd1] = "int16",
        [0xd2] = "int32", [0xd3] = "int64", [0xd4] = "fixext1", [0xd5] = "fixext2",
        [0xd6] = "fixext4", [0xd7] = "fixext8", [0xd8] = "fixext16", [0xd9] = "str8",
        [0xda] = "str16", [0xdb] = "str32", [0xdc] = "array16", [0xdd] = "array32",
        [0xde] = "map16", [0xdf] = "map32",
    };
    if (b <= 0x7f) return "positive fixint";
    if (b <= 0x8f) return "fixmap";
    if (b <= 0x9f) return "fixarray";
    if (b <= 0xbf) return "fixstr";
    if (b >= 0xe0) return "negative fixint";
    return names[b];
}

dds__mp_type dds__mp_peek(const dds__mp_reader *r) {
    return r->p < r->end ? type_of(r->p[0]) : DDS__MP_NONE;
}

/* ---- containers ----------------------------------------------------------------------------- */

/* Header of an array (per_item 1) or a map (per_item 2): count of items, each needing at
 * least one byte, checked before anyone sizes an allocation with it. */
static uint32_t container(dds__mp_reader *r, uint8_t fix_tag, uint8_t tag16, unsigned per_item,
                          const char *not_it) {
    size_t left = (size_t)(r->end - r->p);
    if (left == 0) {
        fail(r, R_TRUNCATED);
        return 0;
    }
    uint8_t b = r->p[0];
    uint32_t n;
    size_t hdr;
    if ((b & 0xf0) == fix_tag) {
        n = b & 0x0f;
        hdr = 1;
    } else if (b == tag16) {
        if (left < 3) goto truncated;
        n = be16(r->p + 1);
        hdr = 3;
    } else if (b == tag16 + 1) {
        if (left < 5) goto truncated;
        n = be32(r->p + 1);
        hdr = 5;
    } else {
        fail_type(r, not_it);
        return 0;
    }
    if ((uint64_t)n * per_item > left - hdr) {
        fail(r, R_TOO_MANY);
        return 0;
    }
    r->p += hdr;
    return n;
truncated:
    fail(r, R_TRUNCATED);
    return 0;
}

uint32_t dds__mp_read_array_any(dds__mp_reader *r) { return container(r, 0x90, 0xdc, 1, "is not an array"); }
uint32_t dds__mp_read_map_any(dds__mp_reader *r) { return container(r, 0x80, 0xde, 2, "is not a map"); }

/* ---- strings -------------------------------------------------------------------------------- */

/* Data and length of a str, bin or nil; false (reader in error) otherwise. */
static inline bool str_or_bin(dds__mp_reader *r, const uint8_t **data, size_t *len) {
    size_t left = (size_t)(r->end - r->p);
    if (left == 0) {
        fail(r, R_TRUNCATED);
        return false;
    }
    const uint8_t *p = r->p;
    uint8_t b = p[0];
    size_t n, hdr;
    if ((b & 0xe0) == 0xa0) {
        n = b & 0x1f;
        hdr = 1;
    } else {
        switch (b) {
        case 0xd9: case 0xc4:
            if (left < 2) goto truncated;
            n = p[1];
            hdr = 2;
            break;
        case 0xda: case 0xc5:
            if (left < 3) goto truncated;
            n = be16(p + 1);
            hdr = 3;
            break;
        case 0xdb: case 0xc6:
            if (left < 5) goto truncated;
            n = be32(p + 1);
            hdr = 5;
            break;
        case 0xc0:
            r->p++;
            *data = (const uint8_t *)empty;
            *len = 0;
            return true;
        default:
            fail_type(r, "is not a string");
            return false;
        }
    }
    if (n > left - hdr) {
        fail(r, R_PAST_END);
        return false;
    }
    *data = p + hdr;
    *len = n;
    r->p = p + hdr + n;
    return true;
truncated:
    fail(r, R_TRUNCATED);
    return false;
}

dds__slice dds__mp_read_bytes_any(dds__mp_reader *r) {
    const uint8_t *d;
    size_t n;
    if (!str_or_bin(r, &d, &n)) return (dds__slice){empty, 0};
    return (dds__slice){(const char *)d, n};
}

dds__slice dds__mp_read_str_any(dds__mp_reader *r) {
    const uint8_t *d;
    size_t n;
    if (!str_or_bin(r, &d, &n)) return (dds__slice){empty, 0};
    if (dds__mp_utf8_valid(d, n)) return (dds__slice){(const char *)d, n};
    dds__slice out;
    if (!r->arena) {
        r->p = d; /* report the offset of the string's bytes */
        fail(r, "is not valid UTF-8");
    } else if (!dds__mp_utf8_repair(r->arena, d, n, &out)) {
        fail(r, "exceeds the memory limit");
    } else {
        return out;
    }
    return (dds__slice){empty, 0};
}

/* ---- UTF-8 ---------------------------------------------------------------------------------- */

/* Length of the well-formed sequence at s (s[0] >= 0x80, n >= 1), or 0. The ranges are
 * Unicode's table 3-7, which is what Go's utf8.DecodeRune accepts; anything else, including
 * a sequence cut short by the end, is invalid at its first byte. */
static inline size_t utf8_seq(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0xc2) return 0;
    if (c < 0xe0) return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c < 0xf0) {
        if (n < 3) return 0;
        uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c < 0xf5) {
        if (n < 4) return 0;
        uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

#define HIGH_BITS 0x8080808080808080ull

bool dds__mp_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    for (;;) {
        /* Nearly every byte in a span is ASCII: test 16 of them per step. */
        while (n - i >= 16) {
            uint64_t a, b;
            memcpy(&a, s + i, 8);
            memcpy(&b, s + i + 8, 8);
            if ((a | b) & HIGH_BITS) break;
            i += 16;
        }
        if (n - i >= 8) {
            uint64_t a;
            memcpy(&a, s + i, 8);
            if (!(a & HIGH_BITS)) i += 8;
        }
        while (i < n && s[i] < 0x80) i++;
        if (i == n) return true;
        size_t k = utf8_seq(s + i, n - i);
        if (!k) return false;
        i += k;
    }
}

bool dds__mp_utf8_repair(dds__arena *arena, const uint8_t *s, size_t n, dds__slice *out) {
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        size_t k = s[i] < 0x80 ? 1 : utf8_seq(s + i, n - i);
        len += k ? k : 3;
        i += k ? k : 1;
    }
    char *d = dds__arena_alloc(arena, len);
    if (!d) return false;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = s[i] < 0x80 ? 1 : utf8_seq(s + i, n - i);
        if (k) {
            memcpy(d + o, s + i, k);
            o += k;
            i += k;
        } else {
            d[o++] = (char)0xef; /* U+FFFD */
            d[o++] = (char)0xbf;
            d[o++] = (char)0xbd;
            i++;
        }
    }
    *out = (dds__slice){d, len};
    return true;
}

/* ---- numbers -------------------------------------------------------------------------------- */

/* Any int or uint encoding, or nil (0). *neg tells a negative value, whose two's complement
 * bits are in *v. */
static inline bool read_int(dds__mp_reader *r, uint64_t *v, bool *neg) {
    size_t left = (size_t)(r->end - r->p);
    if (left == 0) {
        fail(r, R_TRUNCATED);
        return false;
    }
    const uint8_t *p = r->p;
    uint8_t b = p[0];
    if (b <= 0x7f) {
        *v = b;
        *neg = false;
        r->p++;
        return true;
    }
    if (b >= 0xe0) {
        *v = (uint64_t)(int64_t)(int8_t)b;
        *neg = true;
        r->p++;
        return true;
    }
    size_t need;
    int64_t sv;
    switch (b) {
    case 0xc0: *v = 0; *neg = false; r->p++; return true;
    case 0xcc: need = 2; break;
    case 0xcd: need = 3; break;
    case 0xce: need = 5; break;
    case 0xcf: need = 9; break;
    case 0xd0: need = 2; break;
    case 0xd1: need = 3; break;
    case 0xd2: need = 5; break;
    case 0xd3: need = 9; break;
    default:
        fail_type(r, "is not an integer");
        return false;
    }
    if (left < need) {
        fail(r, R_TRUNCATED);
        return false;
    }
    switch (b) {
    case 0xcc: *v = p[1]; *neg = false; break;
    case 0xcd: *v = be16(p + 1); *neg = false; break;
    case 0xce: *v = be32(p + 1); *neg = false; break;
    case 0xcf: *v = be64(p + 1); *neg = false; break;
    default:
        sv = b == 0xd0 ? (int8_t)p[1] : b == 0xd1 ? (int16_t)be16(p + 1)
           : b == 0xd2 ? (int32_t)be32(p + 1) : (int64_t)be64(p + 1);
        *v = (uint64_t)sv;
        *neg = sv < 0;
        break;
    }
    r->p += need;
    return true;
}

uint64_t dds__mp_read_u64_any(dds__mp_reader *r) {
    uint64_t v;
    bool neg;
    return read_int(r, &v, &neg) ? v : 0;
}

int64_t dds__mp_read_i64_any(dds__mp_reader *r) {
    const uint8_t *at = r->p;
    uint64_t v;
    bool neg;
    if (!read_int(r, &v, &neg)) return 0;
    if (!neg && v > (uint64_t)INT64_MAX) {
        r->p = at;
        fail(r, "overflows int64");
        return 0;
    }
    return (int64_t)v;
}

int32_t dds__mp_read_i32_any(dds__mp_reader *r) {
    const uint8_t *at = r->p;
    uint64_t v;
    bool neg;
    if (!read_int(r, &v, &neg)) return 0;
    if (neg ? (int64_t)v < INT32_MIN : v > INT32_MAX) {
        r->p = at;
        fail(r, "overflows int32");
        return 0;
    }
    return (int32_t)(int64_t)v;
}

uint32_t dds__mp_read_u32_any(dds__mp_reader *r) {
    const uint8_t *at = r->p;
    uint64_t v;
    bool neg;
    if (!read_int(r, &v, &neg)) return 0;
    if (neg || v > UINT32_MAX) {
        r->p = at;
        fail(r, neg ? "is negative" : "overflows uint32");
        return 0;
    }
    return (uint32_t)v;
}

double dds__mp_read_f64_any(dds__mp_reader *r) {
    size_t left = (size_t)(r->end - r->p);
    if (left == 0) goto truncated;
    uint8_t b = r->p[0];
    if (b == 0xcb) {
        if (left < 9) goto truncated;
        uint64_t bits = be64(r->p + 1);
        double d;
        memcpy(&d, &bits, 8);
        r->p += 9;
        return d;
    }
    if (b == 0xca) {
        if (left < 5) goto truncated;
        uint32_t bits = be32(r->p + 1);
        float f;
        memcpy(&f, &bits, 4);
        r->p += 5;
        return (double)f;
    }
    dds__mp_type t = type_of(b);
    if (t != DDS__MP_INT && t != DDS__MP_UINT && t != DDS__MP_NIL) {
        fail_type(r, "is not a number");
        return 0;
    }
    uint64_t v;
    bool neg;
    if (!read_int(r, &v, &neg)) return 0;
    return neg ? (double)(int64_t)v : (double)v;
truncated:
    fail(r, R_TRUNCATED);
    return 0;
}

bool dds__mp_read_bool(dds__mp_reader *r) {
    if (r->p == r->end) {
        fail(r, R_TRUNCATED);
        return false;
    }
    uint8_t b = r->p[0];
    if (b == 0xc2 || b == 0xc3 || b == 0xc0) {
        r->p++;
        return b == 0xc3;
    }
    fail_type(r, "is not a boolean");
    return false;
}

/* ---- skip ----------------------------------------------------------------------------------- */

void dds__mp_skip(dds__mp_reader *r) {
    uint64_t outer[DDS__MP_MAX_DEPTH]; /* values still to skip in each enclosing container */
    int depth = 0;
    uint64_t todo = 1;
    for (;;) {
        while (todo == 0) {
            if (depth == 0) return;
            todo = outer[--depth];
        }
        size_t left = (size_t)(r->end - r->p);
        if (left == 0) {
            fail(r, R_TRUNCATED);
            return;
        }
        const uint8_t *p = r->p;
        uint8_t b = p[0];
        uint64_t size = 1, items = 0; /* bytes of this value's own encoding; children to follow */
        size_t hdr = 1;               /* bytes needed to read the length */
        todo--;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            size = 1;
        } else if (b <= 0x8f) {
            items = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            items = b & 0x0f;
        } else if (b <= 0xbf) {
            size = 1 + (uint64_t)(b & 0x1f);
        } else {
            switch (b) {
            case 0xc4: case 0xd9: hdr = 2; break;
            case 0xc5: case 0xda: hdr = 3; break;
            case 0xc6: case 0xdb: hdr = 5; break;
            case 0xc7: hdr = 2; break;
            case 0xc8: hdr = 3; break;
            case 0xc9: hdr = 5; break;
            case 0xca: size = 5; break;
            case 0xcb: size = 9; break;
            case 0xcc: case 0xd0: size = 2; break;
            case 0xcd: case 0xd1: size = 3; break;
            case 0xce: case 0xd2: size = 5; break;
            case 0xcf: case 0xd3: size = 9; break;
            case 0xd4: size = 3; break;
            case 0xd5: size = 4; break;
            case 0xd6: size = 6; break;
            case 0xd7: size = 10; break;
            case 0xd8: size = 18; break;
            case 0xdc: case 0xde: hdr = 3; break;
            case 0xdd: case 0xdf: hdr = 5; break;
            default:
                fail_type(r, "is not msgpack");
                return;
            }
            if (left < hdr) {
                fail(r, R_TRUNCATED);
                return;
            }
            uint64_t n = hdr == 2 ? p[1] : hdr == 3 ? be16(p + 1) : hdr == 5 ? be32(p + 1) : 0;
            switch (b) {
            case 0xc4: case 0xc5: case 0xc6: case 0xd9: case 0xda: case 0xdb:
                size = hdr + n;
                break;
            case 0xc7: case 0xc8: case 0xc9:
                size = hdr + 1 + n; /* + the ext type byte */
                break;
            case 0xdc: case 0xdd:
                size = hdr;
                items = n;
                break;
            case 0xde: case 0xdf:
                size = hdr;
                items = 2 * n;
                break;
            default:
                break;
            }
        }
        if (size > left) {
            fail(r, R_PAST_END);
            return;
        }
        if (items > left - size) {
            fail(r, R_TOO_MANY);
            return;
        }
        r->p = p + size;
        if (items) {
            if (depth == DDS__MP_MAX_DEPTH) {
                r->p = p;
                fail(r, "nests deeper than 64 levels");
                return;
            }
            outer[depth++] = todo;
            todo = items;
        }
    }
}
