/* jsonw.c - JSON writer. In: keys and values from the caller, any bytes as strings. Out: valid
 * JSON appended to a dds__buf. Never emits invalid UTF-8, NaN or Inf, and never writes buffer
 * memory once the buffer is in oom. */
#include "common/jsonw.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dds__jsonw_init(dds__jsonw *w, dds__buf *b) {
    memset(w, 0, sizeof(*w));
    w->b = b;
}

static bool level_is_object(const dds__jsonw *w) { return (w->is_object >> (w->depth - 1)) & 1u; }

/* Separator before a value; false when the value must not be written. */
static bool value_prefix(dds__jsonw *w) {
    if (w->err) return false;
    if (w->after_key) {
        w->after_key = false;
        return true;
    }
    if (w->depth == 0) return true;
    if (level_is_object(w)) {  /* a value inside an object needs its key first */
        w->err = true;
        return false;
    }
    uint64_t bit = UINT64_C(1) << (w->depth - 1);
    if (w->has_items & bit) dds__buf_putc(w->b, ',');
    w->has_items |= bit;
    return true;
}

static void open_container(dds__jsonw *w, bool object) {
    if (!value_prefix(w)) return;
    if (w->depth >= DDS__JSONW_MAX_DEPTH) {
        w->err = true;
        return;
    }
    uint64_t bit = UINT64_C(1) << w->depth;
    w->depth++;
    w->has_items &= ~bit;
    if (object) w->is_object |= bit;
    else w->is_object &= ~bit;
    dds__buf_putc(w->b, object ? '{' : '[');
}

static void close_container(dds__jsonw *w, bool object) {
    if (w->err) return;
    if (w->depth == 0 || w->after_key || level_is_object(w) != object) {
        w->err = true;
        return;
    }
    w->depth--;
    dds__buf_putc(w->b, object ? '}' : ']');
}

void dds__jsonw_object_begin(dds__jsonw *w) { open_container(w, true); }
void dds__jsonw_object_end(dds__jsonw *w) { close_container(w, true); }
void dds__jsonw_array_begin(dds__jsonw *w) { open_container(w, false); }
void dds__jsonw_array_end(dds__jsonw *w) { close_container(w, false); }

/* Length of the well-formed UTF-8 sequence at p (2..4), or 0 with *skip set to the length of
 * its maximal ill-formed prefix (at least 1): one U+FFFD per such prefix, the replacement
 * practice of the Unicode standard (and of Python's and browsers' decoders). */
static size_t utf8_seq(const uint8_t *p, size_t avail, size_t *skip) {
    uint8_t c = p[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;  /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;       /* overlong */
        else if (c == 0xED) hi = 0x9F;  /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;       /* overlong */
        else if (c == 0xF4) hi = 0x8F;  /* above U+10FFFF */
    } else {
        *skip = 1;
        return 0;
    }
    size_t i = 1;
    if (avail > 1 && p[1] >= lo && p[1] <= hi) {
        i = 2;
        while (i < need && i < avail && (p[i] & 0xC0) == 0x80) i++;
    }
    if (i == need) return need;
    *skip = i;
    return 0;
}

void dds__jsonw_escape(dds__buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    if (n == 0) return;  /* s may be NULL */
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    while (p < end) {
        const uint8_t *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        dds__buf_append(b, run, (size_t)(p - run));
        if (p == end) break;
        uint8_t c = *p;
        if (c < 0x80) {
            char e[6] = {'\\', 0, 0, 0, 0, 0};
            size_t elen = 2;
            switch (c) {
            case '"': e[1] = '"'; break;
            case '\\': e[1] = '\\'; break;
            case '\n': e[1] = 'n'; break;
            case '\r': e[1] = 'r'; break;
            case '\t': e[1] = 't'; break;
            case '\b': e[1] = 'b'; break;
            case '\f': e[1] = 'f'; break;
            default:
                e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15];
                elen = 6;
            }
            dds__buf_append(b, e, elen);
            p++;
            continue;
        }
        size_t skip = 0, len = utf8_seq(p, (size_t)(end - p), &skip);
        if (len) {
            dds__buf_append(b, p, len);
            p += len;
        } else {
            dds__buf_append(b, "\xEF\xBF\xBD", 3);
            p += skip;
        }
    }
}

static void put_string(dds__buf *b, const char *s, size_t n) {
    dds__buf_putc(b, '"');
    dds__jsonw_escape(b, s, n);
    dds__buf_putc(b, '"');
}

void dds__jsonw_keyn(dds__jsonw *w, const char *k, size_t n) {
    if (w->err) return;
    if (w->depth == 0 || w->after_key || !level_is_object(w)) {
        w->err = true;
        return;
    }
    uint64_t bit = UINT64_C(1) << (w->depth - 1);
    if (w->has_items & bit) dds__buf_putc(w->b, ',');
    w->has_items |= bit;
    put_string(w->b, k, n);
    dds__buf_putc(w->b, ':');
    w->after_key = true;
}

void dds__jsonw_key(dds__jsonw *w, const char *k) { dds__jsonw_keyn(w, k, strlen(k)); }

void dds__jsonw_string(dds__jsonw *w, const char *s, size_t n) {
    if (value_prefix(w)) put_string(w->b, s, n);
}

void dds__jsonw_cstr(dds__jsonw *w, const char *s) { dds__jsonw_string(w, s, s ? strlen(s) : 0); }

void dds__jsonw_int(dds__jsonw *w, int64_t v) {
    if (value_prefix(w)) dds__buf_printf(w->b, "%" PRId64, v);
}

void dds__jsonw_uint(dds__jsonw *w, uint64_t v) {
    if (value_prefix(w)) dds__buf_printf(w->b, "%" PRIu64, v);
}

void dds__jsonw_double(dds__jsonw *w, double v) {
    if (!isfinite(v)) {  /* JSON has no NaN/Inf: null is what JSON.stringify writes too */
        dds__jsonw_null(w);
        return;
    }
    if (!value_prefix(w)) return;
    /* Fewest significant digits (15, 16 or 17) that read back to the same double: 15 digits
     * print every value typed in decimal as typed (0.1, not 0.10000000000000001); 17 always
     * round-trips. */
    char tmp[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v) break;
    }
    if (n <= 0 || (size_t)n >= sizeof(tmp)) {
        w->err = true;
        return;
    }
    /* %g switches to an exponent once it exceeds the precision: 4277834443099750 would come
     * out as 4.27783444309975e+15. An integer below 1e17 is shorter written out, and exact. */
    if (fabs(v) < 1e17 && v == trunc(v) && memchr(tmp, 'e', (size_t)n)) {
        char alt[40];
        int m = snprintf(alt, sizeof(alt), "%.0f", v);
        if (m > 0 && m < n) {
            memcpy(tmp, alt, (size_t)m);
            n = m;
        }
    }
    /* An embedding program may have set a locale whose decimal point is ','. */
    for (int i = 0; i < n; i++)
        if (tmp[i] == ',') tmp[i] = '.';
    dds__buf_append(w->b, tmp, (size_t)n);
}

void dds__jsonw_bool(dds__jsonw *w, bool v) {
    if (value_prefix(w)) dds__buf_puts(w->b, v ? "true" : "false");
}

void dds__jsonw_null(dds__jsonw *w) {
    if (value_prefix(w)) dds__buf_puts(w->b, "null");
}

void dds__jsonw_raw(dds__jsonw *w, const char *json, size_t n) {
    if (value_prefix(w)) dds__buf_append(w->b, json, n);
}
