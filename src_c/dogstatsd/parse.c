/* parse.c - DogStatsD lines (PROTOCOL.md section 1). In: a packet or one line as (pointer, length),
 * never NUL-terminated. Out: records whose slices point into that same buffer.
 * Never reads a byte past the length, never allocates, never logs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strtod_l, newlocale */
#endif
#include "dogstatsd/parse.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytescan.h"

/* ---- small helpers ------------------------------------------------------------------------ */

/* First c in [p, end), or end. Never calls memchr with an empty range, so a one-past-the-end
 * pointer (a line ending in '|') is never handed to it. */
static inline const char *find(const char *p, const char *end, char c) {
    if (p >= end) return end;
    const char *hit = memchr(p, c, (size_t)(end - p));
    return hit ? hit : end;
}

static inline dds__slice span(const char *p, const char *end) {
    return (dds__slice){p, (size_t)(end - p)};
}

static inline bool is_digit(char c) { return (unsigned)((unsigned char)c - '0') < 10; }

static inline bool has_prefix(const char *p, size_t n, const char *prefix, size_t plen) {
    return n >= plen && memcmp(p, prefix, plen) == 0;
}

/* Exact, case-sensitive match of a slice against a string literal. */
#define SLICE_IS(s, lit) ((s).len == sizeof(lit) - 1 && memcmp((s).ptr, lit, sizeof(lit) - 1) == 0)

/* ---- numbers ------------------------------------------------------------------------------ */

/* strtod follows LC_NUMERIC, and an embedder may well run under a locale whose decimal
 * separator is ','. One "C" locale object for the process, made on first use. */
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

/* Longest number handed to strtod. "%.17g" needs at most 24 bytes; anything longer than this
 * comes from no real client and is rejected rather than copied somewhere bigger. */
enum { NUM_MAX_LEN = 127 };

static bool ascii_ieq(const char *p, size_t n, const char *lower) {
    size_t i = 0;
    for (; i < n && lower[i]; i++)
        if ((p[i] | 0x20) != lower[i]) return false;
    return i == n && lower[i] == '\0';
}

/* Everything the fast path does not take: long mantissas, large exponents, inf/nan, garbage. The
 * accepted language is the Go agent's strconv.ParseFloat minus hex floats and '_' digit
 * separators (no client sends those): [+-] then a decimal float, "inf", "infinity" or "nan"
 * (any case). The charset check keeps strtod away from what it would accept beyond that
 * (leading blanks, hex, "nan(...)"). */
static bool parse_double_slow(const char *p, size_t n, double *out) {
    size_t i = (p[0] == '+' || p[0] == '-') ? 1 : 0;
    if (i < n && ((p[i] | 0x20) == 'i' || (p[i] | 0x20) == 'n')) {
        double v;
        if (ascii_ieq(p + i, n - i, "inf") || ascii_ieq(p + i, n - i, "infinity")) v = INFINITY;
        else if (ascii_ieq(p + i, n - i, "nan")) v = NAN;
        else return false;
        *out = p[0] == '-' ? -v : v;
        return true;
    }
    if (n > NUM_MAX_LEN) return false;
    char buf[NUM_MAX_LEN + 1];
    for (size_t k = 0; k < n; k++) {
        char c = p[k];
        if (!is_digit(c) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-') return false;
        buf[k] = c;
    }
    buf[n] = '\0';

    pthread_once(&c_locale_once, c_locale_init);
    int saved_errno = errno;
    char *stop;
    /* newlocale("C") cannot fail on glibc; if it ever did, the global locale is all we have. */
    double v = c_locale ? strtod_l(buf, &stop, c_locale) : strtod(buf, &stop);
    /* ERANGE is not an error here: an overflow becomes +-Inf, which the aggregator drops and
     * counts like a sent "inf"; an underflow is the nearest double, as with any other value. */
    errno = saved_errno;
    if (stop != buf + n) return false;
    *out = v;
    return true;
}

/* 10^0..10^22 are exact doubles; beyond, 10^k is rounded and one operation is no longer exact. */
static const double pow10_exact[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};
enum { POW10_EXACT_MAX = 22 };

/* c - '0', unsigned: below 10 exactly when is_digit(c), and then the digit's value. */
static inline unsigned digit_value(char c) { return (unsigned)((unsigned char)c - '0'); }

/* The digits of a plain decimal, "[digits][.digits]", from p: *mant is their value (it wraps past
 * 19 digits, and decimal_exact refuses those), *nint and *nfrac count the digits before and after
 * the '.'. Returns the first byte after them. */
static inline const char *decimal_digits(const char *p, const char *end, uint64_t *mant,
                                         size_t *nint, size_t *nfrac) {
    const char *start = p;
    uint64_t m = 0;
    for (unsigned d; p < end && (d = digit_value(*p)) < 10; p++) m = m * 10 + d;
    *nint = (size_t)(p - start);
    *nfrac = 0;
    if (p < end && *p == '.') {
        const char *frac = ++p;
        for (unsigned d; p < end && (d = digit_value(*p)) < 10; p++) m = m * 10 + d;
        *nfrac = (size_t)(p - frac);
    }
    *mant = m;
    return p;
}

/* The one exact-decimal rule, for the value m * 10^(exp10 - nfrac) with m the nint + nfrac digits
 * (mant). m of 1..19 digits fits a uint64 and its conversion is correctly rounded; with m <= 2^53
 * and a scale within +-22 both m and 10^scale are exact doubles, so one IEEE multiply or divide
 * is correctly rounded too. Either way the result is exactly strtod's. false: not this case, and
 * *out untouched. */
static inline bool decimal_exact(uint64_t mant, size_t nint, size_t nfrac, int exp10, bool neg,
                                 double *out) {
    if (nint + nfrac == 0 || nint + nfrac > 19) return false;
    /* nfrac <= 19 now; as a uint32_t the compiler knows it too, so scale <= exp10 (with exp10 a
     * constant 0, the multiply and the positive bound are dropped). */
    int64_t scale = (int64_t)exp10 - (uint32_t)nfrac;
    double v;
    if (scale == 0) v = (double)mant;
    else if (mant > (UINT64_C(1) << 53) || scale < -POW10_EXACT_MAX || scale > POW10_EXACT_MAX)
        return false;
    else if (scale > 0) v = (double)mant * pow10_exact[scale];
    else v = (double)mant / pow10_exact[-scale];
    *out = neg ? -v : v;
    return true;
}

/* Hot path: nearly every value is "42", "3.25" or "1.5e-3": its digits, an optional exponent of
 * at most three digits, then decimal_exact. Anything else goes to strtod. */
static bool parse_double(const char *p, size_t n, double *out) {
    if (n == 0) return false;
    const char *end = p + n;
    bool neg = false;
    const char *q = p;
    if (*q == '-' || *q == '+') neg = *q++ == '-';
    uint64_t mant;
    size_t nint, nfrac;
    q = decimal_digits(q, end, &mant, &nint, &nfrac);
    int exp10 = 0;
    if (q < end && (*q | 0x20) == 'e') {
        const char *k = q + 1, *first;
        bool exp_neg = false;
        if (k < end && (*k == '-' || *k == '+')) exp_neg = *k++ == '-';
        /* Three exponent digits cover every exact case; longer ones are strtod's. */
        for (first = k; k < end && is_digit(*k) && k - first < 3; k++)
            exp10 = exp10 * 10 + (*k - '0');
        if (k == first) return parse_double_slow(p, n, out);
        if (exp_neg) exp10 = -exp10;
        q = k;
    }
    if (q != end || !decimal_exact(mant, nint, nfrac, exp10, neg, out))
        return parse_double_slow(p, n, out);
    return true;
}

/* Unix seconds of `T` and `d:`: base-10, >= 1, fits int64. A leading '+' is taken because the
 * Go agent's strconv.ParseInt takes it; '-' could only give a value < 1. */
static bool parse_unix_ts(const char *p, size_t n, int64_t *out) {
    size_t i = (n > 0 && p[0] == '+') ? 1 : 0;
    if (i == n) return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (!is_digit(p[i])) return false;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (v < 1) return false;
    *out = (int64_t)v;
    return true;
}

/* ---- packets and lines -------------------------------------------------------------------- */

dds__line_kind dds__line_kind_of(dds__slice line) {
    if (has_prefix(line.ptr, line.len, "_e{", 3)) return DDS__LINE_EVENT;
    if (has_prefix(line.ptr, line.len, "_sc|", 4)) return DDS__LINE_SERVICE_CHECK;
    return DDS__LINE_METRIC;
}

/* A slice cannot tell "nothing left" from "one empty tag left", so a trailing ',' ("a,") yields
 * "a" alone rather than "a" and "": the aggregator drops empty tags anyway, and this is what
 * makes `#` alone yield nothing. Leading and inner empty tags are returned. */
bool dds__tags_next(dds__slice *rest, dds__slice *tag) {
    if (rest->len == 0) return false;
    const char *end = rest->ptr + rest->len;
    const char *comma = find(rest->ptr, end, ',');
    *tag = span(rest->ptr, comma);
    *rest = comma < end ? span(comma + 1, end) : span(end, end);
    return true;
}

/* ---- metrics ------------------------------------------------------------------------------ */

static bool parse_mtype(const char *p, size_t n, dds__mtype *t) {
    if (n == 1) {
        switch (p[0]) {
        case 'c': *t = DDS__MT_COUNT; return true;
        case 'g': *t = DDS__MT_GAUGE; return true;
        case 'h': *t = DDS__MT_HISTOGRAM; return true;
        case 'd': *t = DDS__MT_DISTRIBUTION; return true;
        case 's': *t = DDS__MT_SET; return true;
        default: return false;
        }
    }
    if (n == 2 && p[0] == 'm' && p[1] == 's') {
        *t = DDS__MT_TIMING;
        return true;
    }
    return false;
}

/* DogStatsD 1.1 packing: "1::2" is two samples (empty items skipped), one bad item rejects the
 * line. A value made only of separators ("::") holds no sample at all: rejected as an empty
 * value rather than accepted as a line that does nothing (the Go agent accepts it silently). */
static int parse_values(const char *p, const char *end, double *vals, size_t cap, size_t *nvals) {
    size_t count = 0;
    while (p < end) {
        /* Items are a few bytes: a plain loop beats a memchr call per item. */
        const char *item_end = p;
        while (item_end < end && *item_end != ':') item_end++;
        if (item_end > p) {
            double v;
            if (!parse_double(p, (size_t)(item_end - p), &v)) return DDS__PARSE_ERR_VALUE;
            if (count == cap) return DDS__PARSE_ERR_TOO_MANY_VALUES;
            vals[count++] = v;
        }
        p = item_end + (item_end < end);
    }
    if (count == 0) return DDS__PARSE_ERR_VALUE;
    *nvals = count;
    return DDS__PARSE_OK;
}

/* The optional fields, from the '|' at f: any order, a later duplicate overwrites an earlier one.
 * With tags_open, stops at a tag field and leaves the rest of the line to dds__parse_metric_close
 * (see dds__parse_metric_open). Inlined into both callers: the open one drops its NULL checks. */
static inline __attribute__((always_inline)) int parse_fields(dds__metric *out, const char *f,
                                                              const char *end, bool *tags_open) {
    while (f < end) {
        f++; /* the '|' */
        if (tags_open && f < end && f[0] == '#') {
            out->tags = span(f + 1, end);
            *tags_open = true;
            return DDS__PARSE_OK;
        }
        const char *f_end = find(f, end, '|');
        size_t n = (size_t)(f_end - f);
        if (n > 0) {
            switch (f[0]) {
            case '@':
                /* The range is the aggregator's business; only a non-number rejects. */
                if (!parse_double(f + 1, n - 1, &out->sample_rate)) return DDS__PARSE_ERR_SAMPLE_RATE;
                break;
            case '#': out->tags = span(f + 1, f_end); break;
            case 'T':
                if (!parse_unix_ts(f + 1, n - 1, &out->timestamp)) return DDS__PARSE_ERR_TIMESTAMP;
                break;
            default:
                /* `c:` container id, `e:` external data, `card:` cardinality: origin detection we
                 * do not do in a function. Never reject because of them, nor of unknown fields. */
                break;
            }
        }
        f = f_end;
    }
    return DDS__PARSE_OK;
}

/* First ':' or '|' in [p, end), or end (16 bytes per step: common/bytescan.h). */
static inline const char *find_colon_or_bar(const char *p, const char *end) { return dds__find2(p, end, ':', '|'); }

/* The usual head, "name:value|", with one plain decimal value ([+-], at most 19 digits, at most
 * one '.'): the name found in one pass for ':' or '|', the value parsed as it is scanned, with
 * parse_double's own decimal_digits and decimal_exact, so the same double. q: the first ':' or '|'
 * (find_colon_or_bar). false: anything else (packed values, exponents, a '|' in the name,
 * errors...), left to the general path. */
static inline bool head_fast(const char *line, const char *end, const char *q, const char **colon, const char **bar,
                             double *value) {
    if (q == end || *q != ':' || q == line) return false;
    const char *p = q + 1;
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+')) neg = *p++ == '-';
    uint64_t mant;
    size_t nint, nfrac;
    p = decimal_digits(p, end, &mant, &nint, &nfrac);
    if (p == end || *p != '|' || !decimal_exact(mant, nint, nfrac, 0, neg, value)) return false;
    *colon = q;
    *bar = p;
    return true;
}

int dds__parse_metric_open(const char *line, size_t len, dds__metric *out, double *vals, size_t cap,
                           size_t *nvals, bool *tags_open) {
    return dds__parse_metric_open_at(line, len, find_colon_or_bar(line, line + len), out, vals, cap, nvals, tags_open);
}

int dds__parse_metric_open_at(const char *line, size_t len, const char *first, dds__metric *out, double *vals,
                              size_t cap, size_t *nvals, bool *tags_open) {
    *nvals = 0;
    if (tags_open) *tags_open = false;
    if (len == 0) return DDS__PARSE_ERR_NAME;
    const char *end = line + len;
    const char *bar, *colon;
    double value = 0;
    bool one_value = head_fast(line, end, first, &colon, &bar, &value);
    if (!one_value) {
        /* Name and value come before the first '|' (as in the Go agent), so "a|c:1" has no ':'. */
        bar = find(line, end, '|');
        colon = find(line, bar, ':');
        if (colon == bar || colon == line) return DDS__PARSE_ERR_NAME;
    }
    out->name = span(line, colon);
    out->raw_value = span(colon + 1, bar);
    if (out->raw_value.len == 0) return DDS__PARSE_ERR_VALUE;
    if (bar == end) return DDS__PARSE_ERR_TYPE;

    /* Every type is one or two bytes: look for its end there instead of scanning for a '|' (a
     * longer or empty one is rejected either way). */
    const char *type = bar + 1, *type_end;
    if (type + 1 >= end || type[1] == '|') type_end = type + (type < end);
    else if (type + 2 >= end || type[2] == '|') type_end = type + 2;
    else return DDS__PARSE_ERR_TYPE;
    if (!parse_mtype(type, (size_t)(type_end - type), &out->type)) return DDS__PARSE_ERR_TYPE;
    out->sample_rate = 1.0;
    out->tags = (dds__slice){NULL, 0};
    out->timestamp = 0;

    int st = DDS__PARSE_OK;
    /* Sets keep the raw member, colons included ("u:a:b|s" is member "a:b"). */
    if (out->type != DDS__MT_SET) {
        if (one_value && cap > 0) {
            vals[0] = value;
            *nvals = 1;
        } else if ((st = parse_values(out->raw_value.ptr, bar, vals, cap, nvals)) != DDS__PARSE_OK) {
            goto fail;
        }
    }
    st = parse_fields(out, type_end, end, tags_open);
    if (st != DDS__PARSE_OK) goto fail;
    return DDS__PARSE_OK;

fail:
    *nvals = 0;
    return st;
}

int dds__parse_metric(const char *line, size_t len, dds__metric *out, double *vals, size_t cap,
                      size_t *nvals) {
    return dds__parse_metric_open(line, len, out, vals, cap, nvals, NULL);
}

int dds__parse_metric_close(dds__metric *out, size_t *nvals) {
    /* out->tags starts after "|#" and runs to the end of the line: parse again from that '|'. */
    const char *end = out->tags.ptr + out->tags.len;
    int st = parse_fields(out, out->tags.ptr - 2, end, NULL);
    if (st != DDS__PARSE_OK) *nvals = 0;
    return st;
}

/* ---- events ------------------------------------------------------------------------------- */

/* One header length: decimal digits up to `term`, overflow-checked. Advances *i past `term`. */
static bool parse_len(const char *line, size_t len, size_t *i, char term, uint64_t *out) {
    size_t k = *i;
    uint64_t v = 0;
    for (; k < len && is_digit(line[k]); k++) {
        unsigned d = (unsigned)(line[k] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (k == *i || k >= len || line[k] != term) return false;
    *i = k + 1;
    *out = v;
    return true;
}

/* Title and text lengths only make sense if the title ends on the '|' separator and the text on
 * the end of the line or on the '|' of the first optional field. */
static bool lengths_land(const char *body, size_t n, size_t title_bytes, size_t text_bytes) {
    if (title_bytes >= n || body[title_bytes] != '|') return false;
    size_t text_room = n - title_bytes - 1;
    if (text_bytes > text_room) return false;
    return text_bytes == text_room || body[title_bytes + 1 + text_bytes] == '|';
}

/* Bytes of UTF-8 text that hold `units` UTF-16 code units, or false when the text ends first or
 * the count stops inside a surrogate pair (a 4-byte sequence is two units). Bytes that do not
 * start a valid sequence count as one unit each, like the U+FFFD they would decode to. */
static bool utf16_units_to_bytes(const char *p, size_t n, uint64_t units, size_t *bytes) {
    size_t i = 0;
    while (units > 0) {
        if (i >= n) return false;
        unsigned char b = (unsigned char)p[i];
        size_t seq = b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF8 ? 4 : 1;
        uint64_t u = seq == 4 ? 2 : 1;
        if (seq > n - i || u > units) return false;
        i += seq;
        units -= u;
    }
    *bytes = i;
    return true;
}

/* Where the title and the text end, given the header's lengths. Bytes first (the protocol);
 * then, because hot-shots (npm) counts UTF-16 code units and so sends lengths that are too
 * small for non-ASCII text, the same lengths read as UTF-16 units (PROTOCOL.md section 1). */
static bool split_event_body(const char *body, size_t n, uint64_t title_len, uint64_t text_len,
                             size_t *title_bytes, size_t *text_bytes) {
    if (title_len < n && text_len < n &&
        lengths_land(body, n, (size_t)title_len, (size_t)text_len)) {
        *title_bytes = (size_t)title_len;
        *text_bytes = (size_t)text_len;
        return true;
    }
    size_t tb, xb;
    if (!utf16_units_to_bytes(body, n, title_len, &tb) || tb >= n) return false;
    if (!utf16_units_to_bytes(body + tb + 1, n - tb - 1, text_len, &xb)) return false;
    if (!lengths_land(body, n, tb, xb)) return false;
    *title_bytes = tb;
    *text_bytes = xb;
    return true;
}

int dds__parse_event(const char *line, size_t len, dds__event *out) {
    if (!has_prefix(line, len, "_e{", 3)) return DDS__PARSE_ERR_EVENT;
    size_t i = 3;
    uint64_t title_len, text_len;
    if (!parse_len(line, len, &i, ',', &title_len) || !parse_len(line, len, &i, '}', &text_len))
        return DDS__PARSE_ERR_EVENT;
    if (i >= len || line[i] != ':' || title_len == 0) return DDS__PARSE_ERR_EVENT;
    i++;

    const char *body = line + i, *end = line + len;
    size_t title_bytes, text_bytes;
    if (!split_event_body(body, len - i, title_len, text_len, &title_bytes, &text_bytes))
        return DDS__PARSE_ERR_EVENT;

    *out = (dds__event){
        .title = {body, title_bytes},
        .text = {body + title_bytes + 1, text_bytes},
        .priority = DDS__PRIO_NORMAL,
        .alert_type = DDS__ALERT_INFO,
    };
    /* A bad optional field is skipped and the event kept; a later valid duplicate wins. */
    for (const char *f = body + title_bytes + 1 + text_bytes; f < end;) {
        f++; /* the '|' */
        const char *f_end = find(f, end, '|');
        size_t n = (size_t)(f_end - f);
        if (n >= 1 && f[0] == '#') {
            out->tags = span(f + 1, f_end);
        } else if (n >= 2 && f[1] == ':') {
            dds__slice v = span(f + 2, f_end);
            switch (f[0]) {
            case 'd': {
                int64_t ts;
                if (parse_unix_ts(v.ptr, v.len, &ts)) out->timestamp = ts;
                break;
            }
            case 'h': out->hostname = v; break;
            case 'k': out->aggregation_key = v; break;
            case 's': out->source_type_name = v; break;
            case 'p':
                if (SLICE_IS(v, "normal")) out->priority = DDS__PRIO_NORMAL;
                else if (SLICE_IS(v, "low")) out->priority = DDS__PRIO_LOW;
                break;
            case 't':
                if (SLICE_IS(v, "info")) out->alert_type = DDS__ALERT_INFO;
                else if (SLICE_IS(v, "error")) out->alert_type = DDS__ALERT_ERROR;
                else if (SLICE_IS(v, "warning")) out->alert_type = DDS__ALERT_WARNING;
                else if (SLICE_IS(v, "success")) out->alert_type = DDS__ALERT_SUCCESS;
                break;
            default: break;
            }
        }
        f = f_end;
    }
    return DDS__PARSE_OK;
}

/* ---- service checks ----------------------------------------------------------------------- */

int dds__parse_service_check(const char *line, size_t len, dds__service_check *out) {
    if (!has_prefix(line, len, "_sc|", 4)) return DDS__PARSE_ERR_SERVICE_CHECK;
    const char *end = line + len;
    const char *name = line + 4;
    const char *name_end = find(name, end, '|');
    if (name_end == name || name_end == end) return DDS__PARSE_ERR_SERVICE_CHECK;
    const char *status = name_end + 1;
    const char *status_end = find(status, end, '|');
    /* Exactly one digit 0-3: "00", "4", "-1", "" are all rejected. */
    if (status_end - status != 1 || status[0] < '0' || status[0] > '3')
        return DDS__PARSE_ERR_SERVICE_CHECK;

    *out = (dds__service_check){.name = span(name, name_end), .status = status[0] - '0'};
    for (const char *f = status_end; f < end;) {
        f++; /* the '|' */
        /* `m:` ends at the next '|' like every other field (PROTOCOL.md). */
        const char *f_end = find(f, end, '|');
        size_t n = (size_t)(f_end - f);
        if (n >= 1 && f[0] == '#') {
            out->tags = span(f + 1, f_end);
        } else if (n >= 2 && f[1] == ':') {
            dds__slice v = span(f + 2, f_end);
            switch (f[0]) {
            case 'd': {
                int64_t ts; /* a bad d: is ignored, not a reason to reject */
                if (parse_unix_ts(v.ptr, v.len, &ts)) out->timestamp = ts;
                break;
            }
            case 'h': out->hostname = v; break;
            case 'm': out->message = v; break;
            default: break;
            }
        }
        f = f_end;
    }
    return DDS__PARSE_OK;
}

/* ---- small public helpers ----------------------------------------------------------------- */

/* dst may be src itself: writes never overtake reads. */
size_t dds__unescape_newlines(char *dst, const char *src, size_t len) {
    size_t in = 0, outn = 0;
    while (in < len) {
        const char *bs = find(src + in, src + len, '\\');
        size_t chunk = (size_t)(bs - (src + in));
        memmove(dst + outn, src + in, chunk);
        outn += chunk;
        in += chunk;
        if (in == len) break;
        if (in + 1 < len && src[in + 1] == 'n') {
            dst[outn++] = '\n';
            in += 2;
        } else {
            dst[outn++] = '\\';
            in++;
        }
    }
    return outn;
}

const char *dds__parse_status_text(int status) {
    switch (status) {
    case DDS__PARSE_OK: return "ok";
    case DDS__PARSE_ERR_NAME: return "bad metric name";
    case DDS__PARSE_ERR_VALUE: return "bad metric value";
    case DDS__PARSE_ERR_TYPE: return "bad metric type";
    case DDS__PARSE_ERR_SAMPLE_RATE: return "bad sample rate";
    case DDS__PARSE_ERR_TIMESTAMP: return "bad timestamp";
    case DDS__PARSE_ERR_EVENT: return "malformed event";
    case DDS__PARSE_ERR_SERVICE_CHECK: return "malformed service check";
    case DDS__PARSE_ERR_TOO_MANY_VALUES: return "too many packed values";
    default: return "unknown parse status";
    }
}

const char *dds__mtype_name(dds__mtype t) {
    switch (t) {
    case DDS__MT_COUNT: return "c";
    case DDS__MT_GAUGE: return "g";
    case DDS__MT_HISTOGRAM: return "h";
    case DDS__MT_TIMING: return "ms";
    case DDS__MT_DISTRIBUTION: return "d";
    case DDS__MT_SET: return "s";
    }
    return "?";
}
