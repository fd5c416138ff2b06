/* json.c - in: a POST /v1/input body as it came off the socket (hostile until proven otherwise).
 * Out: the entry count or one short reason, and each entry as a slice of the body. Never reads
 * past the end, never recurses (nesting lives in a byte stack bounded by MAX_DEPTH), never
 * allocates; the first error is sticky and every later step is a no-op. */
#include "logs/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct rd {
    const uint8_t *p, *start, *end;
    char *why;
    bool err;
} rd;

static void failf(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(rd *r, const char *fmt, ...) {
    if (r->err) return;
    r->err = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, DDS__LOGS_JSON_WHY_MAX, fmt, ap);
    va_end(ap);
}

/* A syntax error, located. */
static void bad(rd *r, const char *what) { failf(r, "invalid JSON: %s at byte %zu", what, (size_t)(r->p - r->start)); }

static int peek(const rd *r) { return (!r->err && r->p < r->end) ? *r->p : -1; }

static void ws(rd *r) {
    while (!r->err && r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static bool eat(rd *r, int c) {
    if (peek(r) != c) return false;
    r->p++;
    return true;
}

static void literal(rd *r, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) {
        bad(r, "expected a value");
        return;
    }
    r->p += n;
}

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "\uXXXX" at r->p (the backslash): its code unit, or -1 (error set). */
static long u_escape(rd *r) {
    if (r->end - r->p < 6 || r->p[1] != 'u') {
        bad(r, "bad \\u escape");
        return -1;
    }
    long v = 0;
    for (int i = 2; i < 6; i++) {
        int h = hexval(r->p[i]);
        if (h < 0) {
            bad(r, "bad \\u escape");
            return -1;
        }
        v = v * 16 + h;
    }
    r->p += 6;
    return v;
}

/* One UTF-8 sequence starting with a byte >= 0x80 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF). */
static void utf8_seq(rd *r) {
    uint8_t c = *r->p;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) need = 2, lo = 0xA0;
    else if (c == 0xED) need = 2, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) need = 2;
    else if (c == 0xF0) need = 3, lo = 0x90;
    else if (c == 0xF4) need = 3, hi = 0x8F;
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else {
        bad(r, "invalid UTF-8");
        return;
    }
    if ((size_t)(r->end - r->p) <= need) {
        bad(r, "invalid UTF-8");
        return;
    }
    if (r->p[1] < lo || r->p[1] > hi) {
        bad(r, "invalid UTF-8");
        return;
    }
    for (size_t i = 2; i <= need; i++)
        if (r->p[i] < 0x80 || r->p[i] > 0xBF) {
            bad(r, "invalid UTF-8");
            return;
        }
    r->p += need + 1;
}

/* A string; r->p is at its opening quote. */
static void string(rd *r) {
    r->p++;
    while (!r->err) {
        if (r->p >= r->end) {
            bad(r, "unterminated string");
            return;
        }
        uint8_t c = *r->p;
        if (c == '"') {
            r->p++;
            return;
        }
        if (c == '\\') {
            if (r->end - r->p < 2) {
                bad(r, "unterminated string");
                return;
            }
            uint8_t e = r->p[1];
            if (e == 'u') {
                long u = u_escape(r);
                if (u >= 0xDC00 && u <= 0xDFFF) bad(r, "lone surrogate in \\u escape");
                /* A high surrogate must be followed by its low half, as serde_json requires. */
                if (u >= 0xD800 && u <= 0xDBFF) {
                    long low = u_escape(r);
                    if (!r->err && (low < 0xDC00 || low > 0xDFFF)) bad(r, "lone surrogate in \\u escape");
                }
            } else if (strchr("\"\\/bfnrt", e) && e) {
                r->p += 2;
            } else {
                bad(r, "bad escape");
            }
            continue;
        }
        if (c < 0x20) {
            bad(r, "control character in string");
            return;
        }
        if (c < 0x80) r->p++;
        else utf8_seq(r);
    }
}

/* A number (RFC 8259 grammar). *is_i64: no fraction, no exponent, and within int64. */
static void number(rd *r, bool *is_i64) {
    bool neg = eat(r, '-');
    bool fits = true;
    uint64_t mag = 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    int c = peek(r);
    if (c == '0') {
        r->p++;
    } else if (c >= '1' && c <= '9') {
        while ((c = peek(r)) >= '0' && c <= '9') {
            uint64_t d = (uint64_t)(c - '0');
            if (mag > (limit - d) / 10) fits = false;
            else mag = mag * 10 + d;
            r->p++;
        }
    } else {
        bad(r, "expected a digit");
        return;
    }
    bool integral = true;
    if (eat(r, '.')) {
        integral = false;
        if (!((c = peek(r)) >= '0' && c <= '9')) bad(r, "expected a digit after '.'");
        while ((c = peek(r)) >= '0' && c <= '9') r->p++;
    }
    c = peek(r);
    if (c == 'e' || c == 'E') {
        integral = false;
        r->p++;
        if (!eat(r, '+')) eat(r, '-');
        if (!((c = peek(r)) >= '0' && c <= '9')) bad(r, "expected a digit in the exponent");
        while ((c = peek(r)) >= '0' && c <= '9') r->p++;
    }
    if (is_i64) *is_i64 = integral && fits;
}

/* Object keys: a string, then ':'. Sets k and klen to the raw bytes between the quotes. */
static void key(rd *r, const uint8_t **k, size_t *klen) {
    ws(r);
    if (peek(r) != '"') {
        bad(r, "expected a string key");
        return;
    }
    const uint8_t *s = r->p + 1;
    string(r);
    if (r->err) return;
    *k = s;
    *klen = (size_t)(r->p - 1 - s);
    ws(r);
    if (!eat(r, ':')) bad(r, "expected ':'");
}

/* Any value, containers included, without recursion. depth: containers already open around it. */
static void value(rd *r, unsigned depth) {
    uint8_t stack[DDS__LOGS_JSON_MAX_DEPTH];
    size_t top = 0;
    const uint8_t *k;
    size_t klen;
    while (!r->err) {
        ws(r);
        int c = peek(r);
        bool opened = false;
        if (c == '{' || c == '[') {
            if (depth + top + 1 > DDS__LOGS_JSON_MAX_DEPTH) {
                bad(r, "nested too deeply");
                return;
            }
            r->p++;
            ws(r);
            if (!eat(r, c == '{' ? '}' : ']')) {
                stack[top++] = (uint8_t)c;
                opened = true;
                if (c == '{') key(r, &k, &klen);
            }
        } else if (c == '"') {
            string(r);
        } else if (c == 't') {
            literal(r, "true");
        } else if (c == 'f') {
            literal(r, "false");
        } else if (c == 'n') {
            literal(r, "null");
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            number(r, NULL);
        } else {
            bad(r, c < 0 && !r->err ? "unexpected end" : "expected a value");
        }
        if (opened) continue;  /* its first value comes next */
        /* A value is complete: close every container it completes. */
        for (;;) {
            if (r->err || top == 0) return;
            ws(r);
            bool obj = stack[top - 1] == '{';
            if (eat(r, ',')) {
                if (obj) key(r, &k, &klen);
                break;
            }
            if (eat(r, obj ? '}' : ']')) {
                top--;
                continue;
            }
            bad(r, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
}

/* Does the key, decoded as JSON, equal name (ASCII)? "mess\u0061ge" is "message", as serde_json
 * reads it. string() validated the raw bytes first, so every escape here is complete. */
static bool key_is(const uint8_t *k, size_t klen, const char *name) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const uint8_t *end = k + klen;
    for (; *name; name++) {
        if (k >= end) return false;
        unsigned c = *k++;
        if (c == '\\') {
            unsigned e = *k++;
            if (e == 'u') {
                c = 0;
                for (int i = 0; i < 4; i++) {
                    unsigned h = *k++;
                    c = c * 16 + (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                }
            } else {
                c = (unsigned char)to[strchr(from, (int)e) - from];
            }
        }
        if (c != (unsigned char)*name) return false;
    }
    return k == end;
}

/* One entry; r->p is at its '{'. idx is 0-based, reported 1-based. */
static void entry(rd *r, size_t idx) {
    r->p++;
    bool has_message = false, has_timestamp = false;
    ws(r);
    if (!eat(r, '}')) {
        for (;;) {
            const uint8_t *k = NULL;
            size_t klen = 0;
            key(r, &k, &klen);
            ws(r);
            if (r->err) return;
            if (key_is(k, klen, "message")) {
                if (has_message) failf(r, "entry %zu: duplicate message", idx + 1);
                if (peek(r) != '"') failf(r, "entry %zu: message must be a string", idx + 1);
                string(r);
                has_message = true;
            } else if (key_is(k, klen, "timestamp")) {
                int c = peek(r);
                bool is_i64 = false;
                if (has_timestamp) failf(r, "entry %zu: duplicate timestamp", idx + 1);
                if (c == '-' || (c >= '0' && c <= '9')) number(r, &is_i64);
                if (!is_i64) failf(r, "entry %zu: timestamp must be an integer (Unix ms)", idx + 1);
                has_timestamp = true;
            } else {
                value(r, 2);
            }
            ws(r);
            if (eat(r, ',')) continue;
            if (eat(r, '}')) break;
            bad(r, "expected ',' or '}'");
            return;
        }
    }
    if (!has_message) failf(r, "entry %zu: message is required", idx + 1);
    if (!has_timestamp) failf(r, "entry %zu: timestamp is required", idx + 1);
}

static long walk(const char *body, size_t len, dds__logs_entry_fn on_entry, void *user, char *why) {
    rd r = {.p = (const uint8_t *)body, .start = (const uint8_t *)body, .end = (const uint8_t *)body + len, .why = why};
    long n = 0;
    ws(&r);
    if (!eat(&r, '[')) {
        failf(&r, "invalid JSON: the body must be an array of entries");
        return -1;
    }
    ws(&r);
    if (!eat(&r, ']')) {
        for (;;) {
            ws(&r);
            if (peek(&r) != '{') {
                if (peek(&r) < 0 && !r.err) bad(&r, "unexpected end");
                failf(&r, "entry %ld: must be an object", n + 1);
                return -1;
            }
            const uint8_t *start = r.p;
            entry(&r, (size_t)n);
            if (r.err) return -1;
            if (on_entry) on_entry(user, (const char *)start, (size_t)(r.p - start));
            n++;
            ws(&r);
            if (eat(&r, ',')) continue;
            if (eat(&r, ']')) break;
            bad(&r, "expected ',' or ']'");
            return -1;
        }
    }
    ws(&r);
    if (!r.err && r.p != r.end) bad(&r, "trailing data after the array");
    return r.err ? -1 : n;
}

long dds__logs_json_entries(const char *body, size_t len, dds__logs_entry_fn on_entry, void *user, char *why) {
    char scratch[DDS__LOGS_JSON_WHY_MAX];
    if (!why) why = scratch;
    why[0] = '\0';
    if (!body && len) {
        snprintf(why, DDS__LOGS_JSON_WHY_MAX, "invalid JSON: no body");
        return -1;
    }
    if (!body) body = "";
    long n = walk(body, len, NULL, NULL, why);
    /* Entries are handed out only once the whole body is known good. */
    if (n > 0 && on_entry) walk(body, len, on_entry, user, why);
    return n;
}
