/* test_jsonw.c - JSON writer: escaping, UTF-8 repair, numbers, nesting and commas; every
 * document is checked by a strict validator (RFC 8259 grammar + well-formed UTF-8). */
#include "common/jsonw.h"

#include <locale.h>

#include "test.h"

/* ---- strict validator (test only) ---- */

typedef struct vjson {
    const unsigned char *p, *end;
    int depth;
} vjson;

static bool v_value(vjson *v);

static void v_ws(vjson *v) {
    while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r')) v->p++;
}

static bool v_lit(vjson *v, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, lit, n) != 0) return false;
    v->p += n;
    return true;
}

static bool v_utf8(vjson *v) {
    unsigned char c = *v->p;
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) need = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return false;
    if ((size_t)(v->end - v->p) < need) return false;
    if (v->p[1] < lo || v->p[1] > hi) return false;
    for (size_t i = 2; i < need; i++)
        if ((v->p[i] & 0xC0) != 0x80) return false;
    v->p += need;
    return true;
}

static bool v_string(vjson *v) {
    if (v->p >= v->end || *v->p != '"') return false;
    v->p++;
    while (v->p < v->end) {
        unsigned char c = *v->p;
        if (c == '"') {
            v->p++;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            v->p++;
            if (v->p >= v->end) return false;
            c = *v->p++;
            if (c == 'u') {
                for (int i = 0; i < 4; i++) {
                    if (v->p >= v->end || !strchr("0123456789abcdefABCDEF", *v->p) || !*v->p) return false;
                    v->p++;
                }
            } else if (!strchr("\"\\/bfnrt", c) || !c) {
                return false;
            }
            continue;
        }
        if (c < 0x80) {
            v->p++;
            continue;
        }
        if (!v_utf8(v)) return false;
    }
    return false;
}

static bool v_digits(vjson *v) {
    const unsigned char *s = v->p;
    while (v->p < v->end && *v->p >= '0' && *v->p <= '9') v->p++;
    return v->p > s;
}

static bool v_number(vjson *v) {
    if (v->p < v->end && *v->p == '-') v->p++;
    if (v->p < v->end && *v->p == '0') v->p++;
    else if (!v_digits(v)) return false;
    if (v->p < v->end && *v->p == '.') {
        v->p++;
        if (!v_digits(v)) return false;
    }
    if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
        v->p++;
        if (v->p < v->end && (*v->p == '+' || *v->p == '-')) v->p++;
        if (!v_digits(v)) return false;
    }
    return true;
}

static bool v_container(vjson *v, bool object) {
    char close = object ? '}' : ']';
    v->p++;
    if (++v->depth > 200) return false;
    v_ws(v);
    if (v->p < v->end && *v->p == close) {
        v->p++;
        v->depth--;
        return true;
    }
    for (;;) {
        v_ws(v);
        if (object) {
            if (!v_string(v)) return false;
            v_ws(v);
            if (v->p >= v->end || *v->p++ != ':') return false;
        }
        if (!v_value(v)) return false;
        v_ws(v);
        if (v->p >= v->end) return false;
        if (*v->p == ',') {
            v->p++;
            continue;
        }
        if (*v->p == close) {
            v->p++;
            v->depth--;
            return true;
        }
        return false;
    }
}

static bool v_value(vjson *v) {
    v_ws(v);
    if (v->p >= v->end) return false;
    switch (*v->p) {
    case '{': return v_container(v, true);
    case '[': return v_container(v, false);
    case '"': return v_string(v);
    case 't': return v_lit(v, "true");
    case 'f': return v_lit(v, "false");
    case 'n': return v_lit(v, "null");
    default: return v_number(v);
    }
}

static bool json_valid(const void *data, size_t len) {
    vjson v = {data, (const unsigned char *)data + len, 0};
    if (!v_value(&v)) return false;
    v_ws(&v);
    return v.p == v.end;
}

/* ---- helpers ---- */

static void check_out(const dds__jsonw *w, const char *want, int line) {
    const dds__buf *b = w->b;
    size_t n = strlen(want);
    if (!dds__jsonw_ok(w) || b->len != n || memcmp(b->data, want, n) != 0)
        TEST_FAIL_AT("line %d: got %.*s (ok=%d), want %s", line, (int)b->len, b->data ? (const char *)b->data : "",
                     dds__jsonw_ok(w), want);
    if (!json_valid(b->data, b->len)) TEST_FAIL_AT("line %d: invalid JSON: %.*s", line, (int)b->len, b->data);
}
#define CHECK_OUT(w, want) check_out(&(w), (want), __LINE__)

static void one_string(dds__buf *b, dds__jsonw *w, const char *s, size_t n) {
    dds__buf_reset(b);
    dds__jsonw_init(w, b);
    dds__jsonw_string(w, s, n);
}
#define STR(b, w, lit) one_string(&(b), &(w), (lit), sizeof(lit) - 1)

TEST(escaping) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    STR(b, w, "plain");
    CHECK_OUT(w, "\"plain\"");
    STR(b, w, "a\"b\\c/d");
    CHECK_OUT(w, "\"a\\\"b\\\\c/d\"");
    STR(b, w, "\n\r\t\b\f");
    CHECK_OUT(w, "\"\\n\\r\\t\\b\\f\"");
    STR(b, w, "\x01\x1f\x00z");
    CHECK_OUT(w, "\"\\u0001\\u001f\\u0000z\"");
    STR(b, w, "\x7f");  /* DEL is legal in JSON strings */
    CHECK_OUT(w, "\"\x7f\"");
    STR(b, w, "");
    CHECK_OUT(w, "\"\"");
    one_string(&b, &w, NULL, 0);
    CHECK_OUT(w, "\"\"");
    dds__buf_free(&b);
}

TEST(utf8_valid_passes_through) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    STR(b, w, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf");
    CHECK_OUT(w, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf\"");
    dds__buf_free(&b);
}

#define FFFD "\xef\xbf\xbd"
TEST(utf8_invalid_replaced) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    STR(b, w, "\xff");
    CHECK_OUT(w, "\"" FFFD "\"");
    STR(b, w, "a\xc3");  /* truncated at the end */
    CHECK_OUT(w, "\"a" FFFD "\"");
    STR(b, w, "\xe2\x82z");  /* truncated 3-byte: one replacement for the maximal prefix */
    CHECK_OUT(w, "\"" FFFD "z\"");
    STR(b, w, "\xf0\x9f\x98" "A");
    CHECK_OUT(w, "\"" FFFD "A\"");
    STR(b, w, "\xc0\xaf");  /* overlong '/' */
    CHECK_OUT(w, "\"" FFFD FFFD "\"");
    STR(b, w, "\xe0\x80\xaf");  /* overlong 3-byte */
    CHECK_OUT(w, "\"" FFFD FFFD FFFD "\"");
    STR(b, w, "\xed\xa0\x80");  /* UTF-16 surrogate */
    CHECK_OUT(w, "\"" FFFD FFFD FFFD "\"");
    STR(b, w, "\xf4\x90\x80\x80");  /* above U+10FFFF */
    CHECK_OUT(w, "\"" FFFD FFFD FFFD FFFD "\"");
    STR(b, w, "\x80\xbf");  /* lone continuation bytes */
    CHECK_OUT(w, "\"" FFFD FFFD "\"");
    STR(b, w, "\xc3\xa9\xc3");
    CHECK_OUT(w, "\"\xc3\xa9" FFFD "\"");
    /* random bytes: whatever comes in, the output is valid JSON */
    uint32_t seed = 12345;
    for (int round = 0; round < 2000; round++) {
        char junk[64];
        size_t n = (size_t)(round % 64);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            junk[i] = (char)(seed >> 16);
        }
        one_string(&b, &w, junk, n);
        if (!dds__jsonw_ok(&w) || !json_valid(b.data, b.len)) {
            TEST_FAIL_AT("round %d: invalid output", round);
            break;
        }
    }
    dds__buf_free(&b);
}

TEST(integers) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    dds__jsonw_init(&w, &b);
    dds__jsonw_array_begin(&w);
    dds__jsonw_int(&w, 0);
    dds__jsonw_int(&w, -1);
    dds__jsonw_int(&w, INT64_MIN);
    dds__jsonw_int(&w, INT64_MAX);
    dds__jsonw_uint(&w, UINT64_MAX);
    dds__jsonw_array_end(&w);
    CHECK_OUT(w, "[0,-1,-9223372036854775808,9223372036854775807,18446744073709551615]");
    dds__buf_free(&b);
}

TEST(doubles) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    dds__jsonw_init(&w, &b);
    dds__jsonw_array_begin(&w);
    dds__jsonw_double(&w, 0.1);
    dds__jsonw_double(&w, 1.0);
    dds__jsonw_double(&w, 100.0);
    dds__jsonw_double(&w, -2.5);
    dds__jsonw_double(&w, 1.0 / 3.0);
    dds__jsonw_double(&w, 1e21);
    dds__jsonw_double(&w, 1e-7);
    dds__jsonw_double(&w, -0.0);
    dds__jsonw_double(&w, 0.30000000000000004);
    dds__jsonw_double(&w, 4277834443099750.0);  /* written out: shorter than 4.27783444309975e+15 */
    dds__jsonw_double(&w, 1e15);
    dds__jsonw_double(&w, NAN);
    dds__jsonw_double(&w, INFINITY);
    dds__jsonw_double(&w, -INFINITY);
    dds__jsonw_array_end(&w);
    CHECK_OUT(w, "[0.1,1,100,-2.5,0.3333333333333333,1e+21,1e-07,-0,0.30000000000000004,4277834443099750,1e+15,null,null,null]");

    /* random finite doubles read back exactly, in no more characters than %.17g */
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof(d));
        if (!isfinite(d)) continue;
        dds__buf_reset(&b);
        dds__jsonw_init(&w, &b);
        dds__jsonw_double(&w, d);
        char tmp[64], ref[64];
        snprintf(tmp, sizeof(tmp), "%.*s", (int)b.len, (const char *)b.data);
        int reflen = snprintf(ref, sizeof(ref), "%.17g", d);
        if (strtod(tmp, NULL) != d || (int)b.len > reflen || !json_valid(b.data, b.len)) {
            TEST_FAIL_AT("%.17g written as %s", d, tmp);
            break;
        }
    }
    dds__buf_free(&b);
}

TEST(decimal_comma_locale) {
    /* A host program with a ',' decimal locale must not break the JSON. Skipped when the
     * machine has no such locale. */
    const char *names[] = {"de_DE.UTF-8", "fr_FR.UTF-8", "de_DE.utf8", "fr_FR.utf8"};
    const char *set = NULL;
    for (size_t i = 0; i < 4 && !set; i++) set = setlocale(LC_NUMERIC, names[i]);
    if (!set) return;
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    dds__jsonw_init(&w, &b);
    dds__jsonw_double(&w, 2.5);
    setlocale(LC_NUMERIC, "C");
    CHECK_OUT(w, "2.5");
    dds__buf_free(&b);
}

TEST(nesting_and_commas) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    dds__jsonw_init(&w, &b);
    dds__jsonw_object_begin(&w);
    dds__jsonw_key(&w, "a");
    dds__jsonw_array_begin(&w);
    dds__jsonw_int(&w, 1);
    dds__jsonw_int(&w, 2);
    dds__jsonw_object_begin(&w);
    dds__jsonw_key(&w, "b");
    dds__jsonw_array_begin(&w);
    dds__jsonw_array_end(&w);
    dds__jsonw_object_end(&w);
    dds__jsonw_array_begin(&w);
    dds__jsonw_array_end(&w);
    dds__jsonw_array_end(&w);
    dds__jsonw_key(&w, "c");
    dds__jsonw_object_begin(&w);
    dds__jsonw_object_end(&w);
    dds__jsonw_key(&w, "d");
    dds__jsonw_null(&w);
    dds__jsonw_key(&w, "e");
    dds__jsonw_bool(&w, true);
    dds__jsonw_key(&w, "f");
    dds__jsonw_bool(&w, false);
    dds__jsonw_keyn(&w, "g\"h", 3);
    dds__jsonw_raw(&w, "{\"x\":1}", 7);
    dds__jsonw_key(&w, "i");
    dds__jsonw_cstr(&w, "s");
    dds__jsonw_object_end(&w);
    CHECK_OUT(w, "{\"a\":[1,2,{\"b\":[]},[]],\"c\":{},\"d\":null,\"e\":true,\"f\":false,\"g\\\"h\":{\"x\":1},\"i\":\"s\"}");

    /* raw values get commas like any other */
    dds__buf_reset(&b);
    dds__jsonw_init(&w, &b);
    dds__jsonw_array_begin(&w);
    dds__jsonw_raw(&w, "1", 1);
    dds__jsonw_raw(&w, "{}", 2);
    dds__jsonw_array_end(&w);
    CHECK_OUT(w, "[1,{}]");

    /* deepest allowed nesting */
    dds__buf_reset(&b);
    dds__jsonw_init(&w, &b);
    for (int i = 0; i < DDS__JSONW_MAX_DEPTH; i++) dds__jsonw_array_begin(&w);
    for (int i = 0; i < DDS__JSONW_MAX_DEPTH; i++) dds__jsonw_array_end(&w);
    CHECK(dds__jsonw_ok(&w));
    CHECK(json_valid(b.data, b.len));
    dds__buf_free(&b);
}

TEST(misuse_is_sticky_error) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    /* value in an object without a key */
    dds__jsonw_init(&w, &b);
    dds__jsonw_object_begin(&w);
    dds__jsonw_int(&w, 1);
    dds__jsonw_object_end(&w);
    CHECK(w.err && !dds__jsonw_ok(&w));
    /* key in an array */
    dds__buf_reset(&b);
    dds__jsonw_init(&w, &b);
    dds__jsonw_array_begin(&w);
    dds__jsonw_key(&w, "k");
    CHECK(w.err);
    /* mismatched end */
    dds__buf_reset(&b);
    dds__jsonw_init(&w, &b);
    dds__jsonw_array_begin(&w);
    dds__jsonw_object_end(&w);
    CHECK(w.err);
    /* end with a key waiting for its value */
    dds__buf_reset(&b);
    dds__jsonw_init(&w, &b);
    dds__jsonw_object_begin(&w);
    dds__jsonw_key(&w, "k");
    dds__jsonw_object_end(&w);
    CHECK(w.err);
    /* unclosed */
    dds__buf_reset(&b);
    dds__jsonw_init(&w, &b);
    dds__jsonw_object_begin(&w);
    CHECK(!w.err && !dds__jsonw_ok(&w));
    /* too deep */
    dds__buf_reset(&b);
    dds__jsonw_init(&w, &b);
    for (int i = 0; i <= DDS__JSONW_MAX_DEPTH; i++) dds__jsonw_array_begin(&w);
    CHECK(w.err);
    /* buffer oom: reported by ok() and nothing written */
    dds__buf_reset(&b);
    b.oom = true;
    dds__jsonw_init(&w, &b);
    dds__jsonw_object_begin(&w);
    dds__jsonw_key(&w, "k");
    dds__jsonw_string(&w, "v", 1);
    dds__jsonw_object_end(&w);
    CHECK(!dds__jsonw_ok(&w));
    CHECK_EQ_INT(b.len, 0);
    dds__buf_free(&b);
}

int main(void) {
    RUN(escaping);
    RUN(utf8_valid_passes_through);
    RUN(utf8_invalid_replaced);
    RUN(integers);
    RUN(doubles);
    RUN(decimal_comma_locale);
    RUN(nesting_and_commas);
    RUN(misuse_is_sticky_error);
    return TEST_REPORT();
}
