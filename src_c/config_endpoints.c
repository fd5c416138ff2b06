/* config_endpoints.c - in: the DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS text, as the user typed it.
 * Out: up to DDS__LOGS_ENDPOINTS_MAX checked endpoints, or one reason naming the endpoint and the
 * key. Never allocates, never reads past the NUL, and never copies a key's value into a reason. */
#include "config_endpoints.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values we skip (keys we do not know) may nest; the bound keeps the recursion shallow. */
#define MAX_DEPTH 32

typedef struct rd {
    const char *p, *start;
    char *why;
    bool err;
} rd;

static void failf(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(rd *r, const char *fmt, ...) {
    if (r->err) return;
    r->err = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, DDS__ENDPOINTS_WHY_MAX, fmt, ap);
    va_end(ap);
}

static void bad(rd *r, const char *what) {
    failf(r, "invalid JSON at byte %zu: %s", (size_t)(r->p - r->start), what);
}

static int peek(const rd *r) { return r->err ? -1 : (unsigned char)*r->p; }

static void ws(rd *r) {
    while (!r->err && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static bool eat(rd *r, int c) {
    if (peek(r) != c) return false;
    r->p++;
    return true;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The string at r->p, decoded into out[0..cap) (NUL-terminated) when out is set. *clipped says
 * it did not fit. An escape outside ASCII is kept as '?': no value we read may hold one. */
static void string(rd *r, char *out, size_t cap, bool *clipped) {
    size_t n = 0;
    if (clipped) *clipped = false;
    if (!eat(r, '"')) {
        bad(r, "expected a string");
        return;
    }
    for (;;) {
        int c = peek(r);
        if (c < 0) return;
        if (c == 0) {
            bad(r, "unterminated string");
            return;
        }
        r->p++;
        if (c == '"') break;
        if (c < 0x20) {
            r->p--;
            bad(r, "control character in a string");
            return;
        }
        if (c == '\\') {
            int e = peek(r);
            r->p++;
            switch (e) {
            case '"': case '\\': case '/': c = e; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                long u = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(r->p[i]);
                    if (h < 0) {
                        bad(r, "bad \\u escape");
                        return;
                    }
                    u = u * 16 + h;
                }
                r->p += 4;
                c = (u > 0 && u < 0x80) ? (int)u : '?';
                break;
            }
            default:
                r->p--;
                bad(r, "bad escape");
                return;
            }
        }
        if (out) {
            if (n + 1 < cap) out[n++] = (char)c;
            else if (clipped) *clipped = true;
        }
    }
    if (out && cap) out[n] = '\0';
}

static void digits(rd *r) {
    if (!(*r->p >= '0' && *r->p <= '9')) {
        bad(r, "bad number");
        return;
    }
    while (*r->p >= '0' && *r->p <= '9') r->p++;
}

/* A JSON number; *integer is set when it has neither fraction nor exponent. */
static void number(rd *r, bool *integer) {
    *integer = true;
    eat(r, '-');
    if (peek(r) == '0') r->p++;
    else digits(r);
    if (eat(r, '.')) {
        *integer = false;
        digits(r);
    }
    if (peek(r) == 'e' || peek(r) == 'E') {
        r->p++;
        *integer = false;
        if (!eat(r, '+')) eat(r, '-');
        digits(r);
    }
}

static bool literal(rd *r, const char *word) {
    size_t n = strlen(word);
    if (strncmp(r->p, word, n) != 0) return false;
    r->p += n;
    return true;
}

static void skip_value(rd *r, int depth);

static void skip_container(rd *r, int depth, char close) {
    if (depth >= MAX_DEPTH) {
        bad(r, "nested too deep");
        return;
    }
    r->p++;
    ws(r);
    if (eat(r, close)) return;
    for (;;) {
        if (close == '}') {
            string(r, NULL, 0, NULL);
            ws(r);
            if (!eat(r, ':')) bad(r, "expected ':'");
            ws(r);
        }
        skip_value(r, depth + 1);
        ws(r);
        if (eat(r, ',')) {
            ws(r);
            continue;
        }
        if (!eat(r, close)) bad(r, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        return;
    }
}

static void skip_value(rd *r, int depth) {
    bool integer;
    switch (peek(r)) {
    case -1: return;
    case '"': string(r, NULL, 0, NULL); return;
    case '{': skip_container(r, depth, '}'); return;
    case '[': skip_container(r, depth, ']'); return;
    case 't': if (literal(r, "true")) return; break;
    case 'f': if (literal(r, "false")) return; break;
    case 'n': if (literal(r, "null")) return; break;
    default:
        if (peek(r) == '-' || (peek(r) >= '0' && peek(r) <= '9')) {
            number(r, &integer);
            return;
        }
    }
    bad(r, "expected a value");
}

/* What a key or a host may hold: printable ASCII without spaces. */
static bool plain_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) return false;
    return true;
}

static bool host_ok(const char *h) {
    size_t n = strlen(h);
    if (!n) return false;
    if (h[0] == '[') {  /* an IPv6 literal */
        if (n < 3 || h[n - 1] != ']') return false;
        for (size_t i = 1; i + 1 < n; i++)
            if (hexval(h[i]) < 0 && h[i] != ':' && h[i] != '.') return false;
        return true;
    }
    for (; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') || *h == '.' ||
              *h == '-' || *h == '_'))
            return false;
    return true;
}

/* Keys match ignoring case and underscores: "Host" and "host" (the Go Agent's decoder ignores
 * case), "apiKey" and "isReliable" (what a JavaScript caller writes) too. */
static bool key_is(const char *key, const char *want) {
    for (;;) {
        while (*key == '_') key++;
        while (*want == '_') want++;
        if (!*key || !*want) return !*key && !*want;
        char a = *key >= 'A' && *key <= 'Z' ? (char)(*key + 32) : *key;
        if (a != *want) return false;
        key++;
        want++;
    }
}

/* One {...} at r->p into e. */
static void endpoint(rd *r, size_t idx, dds__logs_endpoint *e) {
    bool have_key = false, have_host = false;
    memset(e, 0, sizeof(*e));
    e->port = 443;
    e->is_reliable = true;
    if (peek(r) != '{') {
        failf(r, "endpoint %zu must be an object", idx);
        return;
    }
    r->p++;
    ws(r);
    if (!eat(r, '}')) {
        for (;;) {
            char key[32];
            bool clipped;
            string(r, key, sizeof(key), &clipped);
            ws(r);
            if (!eat(r, ':')) bad(r, "expected ':'");
            ws(r);
            if (r->err) return;
            if (clipped) {
                skip_value(r, 1);
            } else if (key_is(key, "api_key")) {
                if (peek(r) != '"') {
                    failf(r, "endpoint %zu: api_key must be a string", idx);
                    return;
                }
                string(r, e->api_key, sizeof(e->api_key), &clipped);
                if (clipped) failf(r, "endpoint %zu: api_key is longer than %d bytes", idx, DDS__ENDPOINT_KEY_MAX - 1);
                have_key = true;
            } else if (key_is(key, "host")) {
                if (peek(r) != '"') {
                    failf(r, "endpoint %zu: Host must be a string", idx);
                    return;
                }
                string(r, e->host, sizeof(e->host), &clipped);
                if (clipped) failf(r, "endpoint %zu: Host is longer than %d bytes", idx, DDS__ENDPOINT_HOST_MAX - 1);
                have_host = true;
            } else if (key_is(key, "port")) {
                const char *at = r->p;
                bool integer = false;
                if (peek(r) == '-' || (peek(r) >= '0' && peek(r) <= '9')) number(r, &integer);
                long v = integer && r->p - at <= 6 ? strtol(at, NULL, 10) : -1;
                if (!r->err && (v < 1 || v > 65535)) failf(r, "endpoint %zu: Port must be an integer 1-65535", idx);
                e->port = (uint16_t)v;
            } else if (key_is(key, "is_reliable")) {
                if (literal(r, "true")) e->is_reliable = true;
                else if (literal(r, "false")) e->is_reliable = false;
                else failf(r, "endpoint %zu: is_reliable must be true or false", idx);
            } else {
                skip_value(r, 1);
            }
            ws(r);
            if (eat(r, ',')) {
                ws(r);
                continue;
            }
            if (!eat(r, '}')) bad(r, "expected ',' or '}'");
            break;
        }
    }
    if (r->err) return;
    if (!have_key || !e->api_key[0]) failf(r, "endpoint %zu: api_key is missing", idx);
    else if (!plain_ascii(e->api_key)) failf(r, "endpoint %zu: api_key must be printable ASCII without spaces", idx);
    else if (!have_host || !e->host[0]) failf(r, "endpoint %zu: Host is missing", idx);
    else if (!host_ok(e->host))
        failf(r, "endpoint %zu: Host must be a name or address (no scheme, port or path), got '%.48s'", idx,
              e->host);
}

int dds__logs_endpoints_parse(const char *json, dds__logs_endpoint *out, size_t cap, size_t *n, char *why) {
    *n = 0;
    why[0] = '\0';
    if (!json) return 0;
    rd r = {.p = json, .start = json, .why = why};
    ws(&r);
    if (!*r.p) return 0;
    if (!eat(&r, '[')) {
        bad(&r, "expected a JSON array '['");
        return -1;
    }
    ws(&r);
    if (!eat(&r, ']')) {
        for (;;) {
            if (*n == cap) {
                failf(&r, "at most %zu endpoints are supported", cap);
                break;
            }
            endpoint(&r, *n, &out[*n]);
            if (r.err) break;
            (*n)++;
            ws(&r);
            if (eat(&r, ',')) {
                ws(&r);
                continue;
            }
            if (!eat(&r, ']')) bad(&r, "expected ',' or ']'");
            break;
        }
    }
    ws(&r);
    if (!r.err && *r.p) bad(&r, "unexpected text after the array");
    if (r.err) {
        dds__logs_endpoints_wipe(out, *n + (*n < cap ? 1 : 0));
        *n = 0;
        return -1;
    }
    return 0;
}

void dds__logs_endpoints_wipe(dds__logs_endpoint *e, size_t n) {
    static void *(*const volatile memset_v)(void *, int, size_t) = memset;
    for (size_t i = 0; i < n; i++) memset_v(e[i].api_key, 0, sizeof(e[i].api_key));
}
