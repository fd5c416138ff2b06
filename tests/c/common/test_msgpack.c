/* Tests of src_c/common/msgpack.c: every encoding of every lenient reader, UTF-8 validity and
 * repair (expected bytes produced by Go's utf8.Valid and the agent's ReadRune loop), declared
 * lengths checked before use, sticky errors, skip() of every type and its depth bound, and
 * hostile input (truncation at every offset, random bytes). Inputs end at a guard page. */
#include "common/msgpack.h"
#include "test.h"

/* ---- a small test-local msgpack writer ------------------------------------------------------ */

typedef struct wbuf {
    uint8_t *b;
    size_t n, cap;
} wbuf;

static void w_raw(wbuf *w, const void *p, size_t n) {
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
        if (!w->b) abort();
    }
    if (n) memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void w_byte(wbuf *w, uint8_t c) { w_raw(w, &c, 1); }
static void w_be(wbuf *w, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) w_byte(w, (uint8_t)(v >> (8 * i)));
}
static void w_tag_be(wbuf *w, uint8_t tag, uint64_t v, int bytes) { w_byte(w, tag); w_be(w, v, bytes); }
static void w_nil(wbuf *w) { w_byte(w, 0xc0); }
static void w_f64(wbuf *w, double d) { uint64_t b; memcpy(&b, &d, 8); w_tag_be(w, 0xcb, b, 8); }
static void w_f32(wbuf *w, float f) { uint32_t b; memcpy(&b, &f, 4); w_tag_be(w, 0xca, b, 4); }
static void w_strn(wbuf *w, const char *s, size_t n) {
    if (n < 32) w_byte(w, (uint8_t)(0xa0 | n));
    else if (n <= 0xff) w_tag_be(w, 0xd9, n, 1);
    else if (n <= 0xffff) w_tag_be(w, 0xda, n, 2);
    else w_tag_be(w, 0xdb, n, 4);
    w_raw(w, s, n);
}
static void w_str(wbuf *w, const char *s) { w_strn(w, s, strlen(s)); }
static void w_arr(wbuf *w, uint32_t n) {
    if (n < 16) w_byte(w, (uint8_t)(0x90 | n));
    else if (n <= 0xffff) w_tag_be(w, 0xdc, n, 2);
    else w_tag_be(w, 0xdd, n, 4);
}
static void w_map(wbuf *w, uint32_t n) {
    if (n < 16) w_byte(w, (uint8_t)(0x80 | n));
    else if (n <= 0xffff) w_tag_be(w, 0xde, n, 2);
    else w_tag_be(w, 0xdf, n, 4);
}

/* A reader over a guarded copy of w (freed by done()). */
typedef struct fixture {
    char *mem;
    size_t len;
    dds__mp_reader r;
    dds__arena arena;
} fixture;

static void start(fixture *f, const wbuf *w) {
    f->len = w->n;
    f->mem = test_guarded_copy(w->b, w->n);
    dds__arena_init(&f->arena, 0, 0);
    dds__mp_reader_init(&f->r, f->mem, f->len, &f->arena);
}
static void done(fixture *f, wbuf *w) {
    test_guarded_free(f->mem, f->len);
    dds__arena_free(&f->arena);
    w->n = 0;
}
static bool inside(const fixture *f, dds__slice s) {
    return s.ptr >= f->mem && s.ptr + s.len <= f->mem + f->len;
}

/* ---- integers ------------------------------------------------------------------------------- */

typedef struct int_case {
    const char *name;
    uint8_t tag;   /* 0 = the value is the single byte `v` */
    int bytes;
    uint64_t v;    /* raw big-endian payload */
    uint64_t u64;  /* expected dds__mp_read_u64 */
    int64_t i64;   /* expected dds__mp_read_i64 */
    bool i64_ok, i32_ok, u32_ok;
} int_case;

static const int_case int_cases[] = {
    {"positive fixint", 0, 0, 0x05, 5, 5, true, true, true},
    {"fixint 127", 0, 0, 0x7f, 127, 127, true, true, true},
    {"negative fixint -1", 0, 0, 0xff, UINT64_MAX, -1, true, true, false},
    {"negative fixint -32", 0, 0, 0xe0, (uint64_t)-32, -32, true, true, false},
    {"uint8 200", 0xcc, 1, 200, 200, 200, true, true, true},
    {"uint16 65535", 0xcd, 2, 0xffff, 0xffff, 0xffff, true, true, true},
    {"uint32 small (Node's error)", 0xce, 4, 1, 1, 1, true, true, true},
    {"uint32 0x80000000", 0xce, 4, 0x80000000u, 0x80000000u, 0x80000000u, true, false, true},
    {"uint32 max", 0xce, 4, 0xffffffffu, 0xffffffffu, 0xffffffffu, true, false, true},
    {"uint64 small (Node's ids)", 0xcf, 8, 42, 42, 42, true, true, true},
    {"uint64 INT64_MAX", 0xcf, 8, INT64_MAX, INT64_MAX, INT64_MAX, true, false, false},
    {"uint64 2^63", 0xcf, 8, 1ull << 63, 1ull << 63, 0, false, false, false},
    {"uint64 max id", 0xcf, 8, UINT64_MAX, UINT64_MAX, 0, false, false, false},
    {"int8 -100", 0xd0, 1, 0x9c, (uint64_t)-100, -100, true, true, false},
    {"int8 100", 0xd0, 1, 100, 100, 100, true, true, true},
    {"int16 -300", 0xd1, 2, 0xfed4, (uint64_t)-300, -300, true, true, false},
    {"int32 INT32_MIN", 0xd2, 4, 0x80000000u, (uint64_t)(int64_t)INT32_MIN, INT32_MIN, true, true, false},
    {"int32 7", 0xd2, 4, 7, 7, 7, true, true, true},
    {"int64 -1 (old Java ids)", 0xd3, 8, UINT64_MAX, UINT64_MAX, -1, true, true, false},
    {"int64 INT64_MIN", 0xd3, 8, 1ull << 63, 1ull << 63, INT64_MIN, true, false, false},
    {"int64 2^31", 0xd3, 8, 1ull << 31, 1ull << 31, 1ll << 31, true, false, true},
    {"int64 -2^31-1", 0xd3, 8, (uint64_t)(-(1ll << 31) - 1), (uint64_t)(-(1ll << 31) - 1), -(1ll << 31) - 1, true, false, false},
    {"int64 2^32", 0xd3, 8, 1ull << 32, 1ull << 32, 1ll << 32, true, false, false},
    {"nil is zero", 0, 0, 0xc0, 0, 0, true, true, true},
};

static void write_int_case(wbuf *w, const int_case *c) {
    if (c->tag) w_tag_be(w, c->tag, c->v, c->bytes);
    else w_byte(w, (uint8_t)c->v);
}

TEST(integers_every_encoding) {
    wbuf w = {0};
    for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
        const int_case *c = &int_cases[i];
        fixture f;
        write_int_case(&w, c);
        start(&f, &w);
        uint64_t u = dds__mp_read_u64(&f.r);
        CHECK_MSG(dds__mp_ok(&f.r) && u == c->u64 && f.r.p == f.r.end, "%s: u64 got %llu", c->name,
                  (unsigned long long)u);
        done(&f, &w);

        write_int_case(&w, c);
        start(&f, &w);
        int64_t s = dds__mp_read_i64(&f.r);
        CHECK_MSG(dds__mp_ok(&f.r) == c->i64_ok, "%s: i64 ok", c->name);
        CHECK_MSG(s == (c->i64_ok ? c->i64 : 0), "%s: i64 got %lld", c->name, (long long)s);
        if (!c->i64_ok) CHECK_EQ_STR(f.r.err, "overflows int64");
        done(&f, &w);

        write_int_case(&w, c);
        start(&f, &w);
        int32_t s32 = dds__mp_read_i32(&f.r);
        CHECK_MSG(dds__mp_ok(&f.r) == c->i32_ok, "%s: i32 ok", c->name);
        CHECK_MSG(s32 == (c->i32_ok ? (int32_t)c->i64 : 0), "%s: i32 got %d", c->name, s32);
        done(&f, &w);

        write_int_case(&w, c);
        start(&f, &w);
        uint32_t u32 = dds__mp_read_u32(&f.r);
        CHECK_MSG(dds__mp_ok(&f.r) == c->u32_ok, "%s: u32 ok", c->name);
        CHECK_MSG(u32 == (c->u32_ok ? (uint32_t)c->u64 : 0), "%s: u32 got %u", c->name, u32);
        done(&f, &w);

        /* float fields take every integer encoding too */
        write_int_case(&w, c);
        start(&f, &w);
        double d = dds__mp_read_f64(&f.r);
        bool neg = c->i64_ok && c->i64 < 0;
        CHECK_MSG(dds__mp_ok(&f.r), "%s: f64 ok", c->name);
        CHECK_MSG(d == (neg ? (double)c->i64 : (double)c->u64), "%s: f64 got %g", c->name, d);
        done(&f, &w);
    }
    free(w.b);
}

/* The Go agent's parseInt64Bytes/parseUint64Bytes/parseInt32Bytes take IntType and UintType
 * only: msgp.NextType reports a float as Float64Type/Float32Type, which they refuse. */
TEST(integers_refuse_floats_and_others) {
    wbuf w = {0};
    fixture f;
    w_f64(&w, 1.0);
    start(&f, &w);
    CHECK(dds__mp_read_u64(&f.r) == 0);
    CHECK_EQ_STR(f.r.err, "is not an integer");
    CHECK_EQ_INT(f.r.err_byte, 0xcb);
    CHECK_EQ_STR(dds__mp_type_name((uint8_t)f.r.err_byte), "float64");
    done(&f, &w);

    w_f32(&w, 2.0f);
    start(&f, &w);
    CHECK(dds__mp_read_i64(&f.r) == 0 && !dds__mp_ok(&f.r));
    done(&f, &w);

    w_str(&w, "12");
    start(&f, &w);
    CHECK(dds__mp_read_i32(&f.r) == 0 && !dds__mp_ok(&f.r));
    CHECK_EQ_STR(dds__mp_type_name((uint8_t)f.r.err_byte), "fixstr");
    done(&f, &w);

    w_byte(&w, 0xc3); /* true */
    start(&f, &w);
    CHECK(dds__mp_read_u32(&f.r) == 0 && !dds__mp_ok(&f.r));
    done(&f, &w);
    free(w.b);
}

TEST(floats_every_encoding) {
    wbuf w = {0};
    fixture f;
    w_f64(&w, 0.125);
    w_f32(&w, 1.5f);
    w_f64(&w, -2.5e300);
    w_byte(&w, 0x03);
    w_tag_be(&w, 0xcf, UINT64_MAX, 8);
    w_tag_be(&w, 0xd3, (uint64_t)-5, 8);
    w_nil(&w);
    start(&f, &w);
    CHECK(dds__mp_read_f64(&f.r) == 0.125);
    CHECK(dds__mp_read_f64(&f.r) == 1.5);
    CHECK(dds__mp_read_f64(&f.r) == -2.5e300);
    CHECK(dds__mp_read_f64(&f.r) == 3.0);
    CHECK(dds__mp_read_f64(&f.r) == 18446744073709551615.0);
    CHECK(dds__mp_read_f64(&f.r) == -5.0);
    CHECK(dds__mp_read_f64(&f.r) == 0.0);
    CHECK(dds__mp_ok(&f.r) && f.r.p == f.r.end);
    done(&f, &w);

    w_str(&w, "1.5");
    start(&f, &w);
    CHECK(dds__mp_read_f64(&f.r) == 0 && !dds__mp_ok(&f.r));
    CHECK_EQ_STR(f.r.err, "is not a number");
    done(&f, &w);

    w_tag_be(&w, 0xcb, 0, 4); /* float64 cut short */
    start(&f, &w);
    CHECK(dds__mp_read_f64(&f.r) == 0);
    CHECK_EQ_STR(f.r.err, "is truncated");
    done(&f, &w);
    free(w.b);
}

TEST(booleans) {
    wbuf w = {0};
    fixture f;
    w_byte(&w, 0xc3);
    w_byte(&w, 0xc2);
    w_nil(&w);
    w_byte(&w, 1);
    start(&f, &w);
    CHECK(dds__mp_read_bool(&f.r) == true);
    CHECK(dds__mp_read_bool(&f.r) == false);
    CHECK(dds__mp_read_bool(&f.r) == false);
    CHECK(dds__mp_ok(&f.r));
    CHECK(dds__mp_read_bool(&f.r) == false);
    CHECK_EQ_STR(f.r.err, "is not a boolean");
    done(&f, &w);
    free(w.b);
}

/* ---- strings -------------------------------------------------------------------------------- */

TEST(strings_str_bin_nil_every_width) {
    char big[70000];
    memset(big, 'x', sizeof(big));
    wbuf w = {0};
    fixture f;
    w_str(&w, "");                                   /* fixstr 0 */
    w_str(&w, "service");                            /* fixstr */
    w_strn(&w, big, 40);                             /* str8 */
    w_strn(&w, big, 300);                            /* str16 */
    w_strn(&w, big, sizeof(big));                    /* str32 */
    w_tag_be(&w, 0xc4, 3, 1); w_raw(&w, "bin", 3);   /* bin8 */
    w_tag_be(&w, 0xc5, 4, 2); w_raw(&w, "bin2", 4);  /* bin16 */
    w_tag_be(&w, 0xc6, 4, 4); w_raw(&w, "bin4", 4);  /* bin32 */
    w_tag_be(&w, 0xd9, 2, 1); w_raw(&w, "s8", 2);    /* str8 holding a short string */
    w_nil(&w);
    start(&f, &w);
    dds__slice s = dds__mp_read_str(&f.r);
    CHECK(s.len == 0 && s.ptr != NULL);
    s = dds__mp_read_str(&f.r);
    CHECK_EQ_SLICE(s, "service");
    CHECK(inside(&f, s)); /* zero copy */
    s = dds__mp_read_str(&f.r);
    CHECK(s.len == 40 && inside(&f, s));
    s = dds__mp_read_str(&f.r);
    CHECK(s.len == 300 && inside(&f, s));
    s = dds__mp_read_str(&f.r);
    CHECK(s.len == sizeof(big) && inside(&f, s) && s.ptr[69999] == 'x');
    /* (CHECK_EQ_SLICE evaluates its argument more than once: read first) */
    s = dds__mp_read_str(&f.r);
    CHECK_EQ_SLICE(s, "bin");
    s = dds__mp_read_str(&f.r);
    CHECK_EQ_SLICE(s, "bin2");
    s = dds__mp_read_bytes(&f.r);
    CHECK_EQ_SLICE(s, "bin4");
    s = dds__mp_read_bytes(&f.r);
    CHECK_EQ_SLICE(s, "s8");
    s = dds__mp_read_str(&f.r);
    CHECK(s.len == 0 && s.ptr != NULL); /* nil = "" */
    CHECK(dds__mp_ok(&f.r) && f.r.p == f.r.end);
    CHECK_EQ_INT(f.arena.total, 0); /* nothing copied */
    done(&f, &w);

    w_byte(&w, 0x05);
    start(&f, &w);
    f.r.ctx = "meta value";
    s = dds__mp_read_str(&f.r);
    CHECK(s.len == 0 && !dds__mp_ok(&f.r));
    CHECK_EQ_STR(f.r.err, "is not a string");
    CHECK_EQ_STR(f.r.err_ctx, "meta value");
    done(&f, &w);
    free(w.b);
}

typedef struct utf8_case {
    const char *in;
    size_t in_len;
    bool valid;
    const char *repaired; /* what Go's repairUTF8 gives (checked with the Go toolchain) */
} utf8_case;

#define U(in, valid, out) {in, sizeof(in) - 1, valid, out}
static const utf8_case utf8_cases[] = {
    U("abc", true, "abc"),
    U("\xe2\x82\xac", true, "\xe2\x82\xac"),                       /* U+20AC */
    U("\xf0\x9f\x98\x80", true, "\xf0\x9f\x98\x80"),               /* U+1F600 */
    U("\xef\xbf\xbd", true, "\xef\xbf\xbd"),                       /* U+FFFD itself */
    U("\xe0\xa0\x80", true, "\xe0\xa0\x80"),                       /* U+0800, smallest 3-byte */
    U("\xed\xa0\x80", false, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"), /* surrogate: one per byte */
    U("\xc0\x80", false, "\xef\xbf\xbd\xef\xbf\xbd"),              /* overlong NUL */
    U("\xe0\x9f\x80", false, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"), /* overlong 3-byte */
    U("\xf0\x8f\xbf\xbf", false, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
    U("\xf4\x90\x80\x80", false, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"), /* > U+10FFFF */
    U("\xe2\x82" "A", false, "\xef\xbf\xbd\xef\xbf\xbd" "A"),      /* not collapsed (ToValidUTF8 would) */
    U("\xff", false, "\xef\xbf\xbd"),
    U("\xc3", false, "\xef\xbf\xbd"),
    U("a\x80" "b", false, "a\xef\xbf\xbd" "b"),
    U("caf\xe9", false, "caf\xef\xbf\xbd"),                        /* Latin-1 */
    U("\xf0\x9f\x98", false, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"), /* cut at the end */
    U("\xf8\x88\x80\x80\x80", false, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"),
    U("ok\xe2\x82\xac\xe2\x82", false, "ok\xe2\x82\xac\xef\xbf\xbd\xef\xbf\xbd"),
};

TEST(utf8_repaired_as_go_does) {
    wbuf w = {0};
    for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        const utf8_case *c = &utf8_cases[i];
        CHECK_MSG(dds__mp_utf8_valid((const uint8_t *)c->in, c->in_len) == c->valid, "case %zu validity", i);
        fixture f;
        w_strn(&w, c->in, c->in_len);
        w_tag_be(&w, 0xc4, c->in_len, 1); /* the same bytes as bin are repaired too */
        w_raw(&w, c->in, c->in_len);
        start(&f, &w);
        for (int k = 0; k < 2; k++) {
            dds__slice s = dds__mp_read_str(&f.r);
            CHECK_MSG(s.len == strlen(c->repaired) && memcmp(s.ptr, c->repaired, s.len) == 0,
                      "case %zu: repaired to %zu bytes", i, s.len);
            CHECK_MSG(inside(&f, s) == c->valid, "case %zu: zero copy only when valid", i);
        }
        CHECK(dds__mp_ok(&f.r));
        done(&f, &w);
    }
    free(w.b);
}

/* One bad byte at every position of an ASCII run exercises the 16- and 8-byte fast paths and
 * the tail loop around it. */
TEST(utf8_bad_byte_at_every_position) {
    char s[80], want[84];
    for (size_t len = 1; len <= sizeof(s); len++) {
        for (size_t at = 0; at < len; at++) {
            memset(s, 'a', len);
            s[at] = (char)0x80;
            char *g = test_guarded_copy(s, len);
            CHECK(!dds__mp_utf8_valid((const uint8_t *)g, len));
            s[at] = 'b';
            memcpy(g, s, len);
            CHECK(dds__mp_utf8_valid((const uint8_t *)g, len));
            s[at] = (char)0xc3; /* a 2-byte lead cut by the end when at == len - 1 */
            memcpy(g, s, len);
            CHECK(dds__mp_utf8_valid((const uint8_t *)g, len) == false);
            test_guarded_free(g, len);

            dds__arena a;
            dds__arena_init(&a, 0, 0);
            dds__slice out;
            CHECK(dds__mp_utf8_repair(&a, (const uint8_t *)s, len, &out));
            memset(want, 'a', at);
            memcpy(want + at, "\xef\xbf\xbd", 3);
            memset(want + at + 3, 'a', len - at - 1);
            CHECK(out.len == len + 2 && memcmp(out.ptr, want, out.len) == 0);
            dds__arena_free(&a);
        }
    }
}

/* An independent check of validity: decode code points and apply the Unicode rules, over every
 * string of 1 to 3 bytes built from boundary bytes, and random 4-byte strings. */
static bool reference_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!k || i + k > n) return false;
        uint32_t cp = k == 1 ? c : k == 2 ? c & 0x1f : k == 3 ? c & 0x0f : c & 0x07;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += k;
    }
    return true;
}

TEST(utf8_matches_reference_decoder) {
    static const uint8_t edge[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
                                   0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
    size_t ne = sizeof(edge);
    uint8_t s[4];
    int mismatches = 0;
    for (size_t a = 0; a < ne; a++) {
        s[0] = edge[a];
        mismatches += dds__mp_utf8_valid(s, 1) != reference_valid(s, 1);
        for (size_t b = 0; b < ne; b++) {
            s[1] = edge[b];
            mismatches += dds__mp_utf8_valid(s, 2) != reference_valid(s, 2);
            for (size_t c = 0; c < ne; c++) {
                s[2] = edge[c];
                mismatches += dds__mp_utf8_valid(s, 3) != reference_valid(s, 3);
                for (size_t d = 0; d < ne; d++) {
                    s[3] = edge[d];
                    mismatches += dds__mp_utf8_valid(s, 4) != reference_valid(s, 4);
                }
            }
        }
    }
    CHECK_EQ_INT(mismatches, 0);
}

TEST(invalid_utf8_without_arena_is_an_error) {
    wbuf w = {0};
    w_str(&w, "caf\xe9");
    char *m = test_guarded_copy(w.b, w.n);
    dds__mp_reader r;
    dds__mp_reader_init(&r, m, w.n, NULL);
    dds__slice s = dds__mp_read_str(&r);
    CHECK(s.len == 0);
    CHECK_EQ_STR(r.err, "is not valid UTF-8");
    test_guarded_free(m, w.n);
    free(w.b);
}

TEST(repair_fails_cleanly_past_the_arena_limit) {
    char bad[200];
    memset(bad, 0xff, sizeof(bad)); /* repaired to 600 bytes */
    wbuf w = {0};
    fixture f;
    w_strn(&w, bad, sizeof(bad));
    start(&f, &w);
    dds__arena_free(&f.arena);
    dds__arena_init(&f.arena, 256, 400);
    dds__slice s = dds__mp_read_str(&f.r);
    CHECK(s.len == 0);
    CHECK_EQ_STR(f.r.err, "exceeds the memory limit");
    CHECK(f.arena.oom);
    done(&f, &w);
    free(w.b);
}

/* ---- containers ----------------------------------------------------------------------------- */

TEST(containers_every_width) {
    wbuf w = {0};
    fixture f;
    w_arr(&w, 2); w_byte(&w, 1); w_byte(&w, 2);
    w_tag_be(&w, 0xdc, 1, 2); w_byte(&w, 3);               /* array16 */
    w_tag_be(&w, 0xdd, 1, 4); w_byte(&w, 4);               /* array32 (Node) */
    w_map(&w, 1); w_byte(&w, 1); w_byte(&w, 2);
    w_tag_be(&w, 0xde, 1, 2); w_byte(&w, 1); w_byte(&w, 2); /* map16 */
    w_tag_be(&w, 0xdf, 1, 4); w_byte(&w, 1); w_byte(&w, 2); /* map32 (Node) */
    w_arr(&w, 0);
    w_nil(&w);
    w_nil(&w);
    start(&f, &w);
    CHECK_EQ_INT(dds__mp_read_array(&f.r), 2);
    dds__mp_skip(&f.r);
    dds__mp_skip(&f.r);
    CHECK_EQ_INT(dds__mp_read_array(&f.r), 1);
    dds__mp_skip(&f.r);
    CHECK_EQ_INT(dds__mp_read_array(&f.r), 1);
    dds__mp_skip(&f.r);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(dds__mp_read_map(&f.r), 1);
        dds__mp_skip(&f.r);
        dds__mp_skip(&f.r);
    }
    CHECK_EQ_INT(dds__mp_read_array(&f.r), 0);
    CHECK_EQ_INT(dds__mp_read_map_or_nil(&f.r), 0);
    CHECK_EQ_INT(dds__mp_read_array_or_nil(&f.r), 0);
    CHECK(dds__mp_ok(&f.r) && f.r.p == f.r.end);
    done(&f, &w);

    w_nil(&w);
    start(&f, &w);
    CHECK_EQ_INT(dds__mp_read_map(&f.r), 0);
    CHECK_EQ_STR(f.r.err, "is not a map");
    done(&f, &w);
    free(w.b);
}

/* Every declared count is refused before it is returned when the bytes left cannot hold it. */
TEST(declared_counts_checked_against_bytes_left) {
    wbuf w = {0};
    fixture f;
    /* an array of 2^32-1 items in a 10-byte body */
    w_tag_be(&w, 0xdd, 0xffffffffu, 4);
    w_raw(&w, "\x01\x02\x03\x04\x05", 5);
    CHECK_EQ_INT(w.n, 10);
    start(&f, &w);
    CHECK_EQ_INT(dds__mp_read_array(&f.r), 0);
    CHECK_EQ_STR(f.r.err, "declares more items than the bytes left can hold");
    CHECK(f.r.p == f.r.end);
    done(&f, &w);

    /* a map of 2^31 entries */
    w_tag_be(&w, 0xdf, 0x80000000u, 4);
    w_raw(&w, "\x01\x02", 2);
    start(&f, &w);
    CHECK_EQ_INT(dds__mp_read_map(&f.r), 0);
    CHECK(!dds__mp_ok(&f.r));
    done(&f, &w);

    /* a map of 3 entries needs 6 bytes: 5 fail, 6 pass */
    w_map(&w, 3);
    w_raw(&w, "\x01\x02\x03\x04\x05", 5);
    start(&f, &w);
    CHECK_EQ_INT(dds__mp_read_map(&f.r), 0);
    CHECK(!dds__mp_ok(&f.r));
    done(&f, &w);
    w_map(&w, 3);
    w_raw(&w, "\x01\x02\x03\x04\x05\x06", 6);
    start(&f, &w);
    CHECK_EQ_INT(dds__mp_read_map(&f.r), 3);
    CHECK(dds__mp_ok(&f.r));
    done(&f, &w);

    /* a str32 declaring 2^32-1 bytes, a bin8 declaring one byte too many */
    w_tag_be(&w, 0xdb, 0xffffffffu, 4);
    w_raw(&w, "abc", 3);
    start(&f, &w);
    CHECK_EQ_INT(dds__mp_read_str(&f.r).len, 0);
    CHECK_EQ_STR(f.r.err, "declares a length past the end of the body");
    done(&f, &w);
    w_tag_be(&w, 0xc4, 4, 1);
    w_raw(&w, "abc", 3);
    start(&f, &w);
    CHECK_EQ_INT(dds__mp_read_bytes(&f.r).len, 0);
    CHECK(!dds__mp_ok(&f.r));
    done(&f, &w);

    /* headers cut short */
    static const uint8_t cut[][4] = {{0xdc, 0x00}, {0xdd, 0, 0, 0}, {0xde, 0x01}, {0xdf, 0, 0, 0},
                                     {0xd9}, {0xda, 0}, {0xdb, 0, 0, 0}, {0xcf, 0, 0, 0}};
    static const size_t cut_len[] = {2, 4, 2, 4, 1, 2, 4, 4};
    for (size_t i = 0; i < 8; i++) {
        w_raw(&w, cut[i], cut_len[i]);
        start(&f, &w);
        dds__mp_type t = dds__mp_peek(&f.r);
        if (t == DDS__MP_ARRAY) dds__mp_read_array(&f.r);
        else if (t == DDS__MP_MAP) dds__mp_read_map(&f.r);
        else if (t == DDS__MP_STR) dds__mp_read_str(&f.r);
        else dds__mp_read_u64(&f.r);
        CHECK_MSG(f.r.err && strcmp(f.r.err, "is truncated") == 0, "cut header %zu", i);
        done(&f, &w);
    }
    free(w.b);
}

TEST(errors_are_sticky) {
    wbuf w = {0};
    fixture f;
    w_f64(&w, 1.0);
    w_str(&w, "after");
    w_arr(&w, 1);
    w_byte(&w, 1);
    start(&f, &w);
    f.r.ctx = "trace_id";
    CHECK(dds__mp_read_u64(&f.r) == 0);
    const char *first = f.r.err;
    CHECK_EQ_STR(first, "is not an integer");
    CHECK_EQ_INT(f.r.err_offset, 0);
    f.r.ctx = "later";
    CHECK_EQ_INT(dds__mp_read_str(&f.r).len, 0);
    CHECK_EQ_INT(dds__mp_read_array(&f.r), 0);
    CHECK_EQ_INT(dds__mp_read_map_or_nil(&f.r), 0);
    CHECK(dds__mp_read_f64(&f.r) == 0);
    CHECK(!dds__mp_read_bool(&f.r));
    CHECK(!dds__mp_try_nil(&f.r));
    CHECK(dds__mp_peek(&f.r) == DDS__MP_NONE);
    dds__mp_skip(&f.r);
    dds__mp_fail(&f.r, "another reason");
    CHECK(f.r.err == first);
    CHECK_EQ_STR(f.r.err_ctx, "trace_id");
    done(&f, &w);

    /* the offset points at the value that failed */
    w_str(&w, "ok");
    w_tag_be(&w, 0xcf, UINT64_MAX, 8);
    start(&f, &w);
    dds__mp_read_str(&f.r);
    dds__mp_read_i64(&f.r);
    CHECK_EQ_STR(f.r.err, "overflows int64");
    CHECK_EQ_INT(f.r.err_offset, 3);
    done(&f, &w);
    free(w.b);
}

TEST(peek_and_type_names) {
    static const struct { uint8_t b; dds__mp_type t; const char *name; } rows[] = {
        {0x00, DDS__MP_INT, "positive fixint"}, {0x85, DDS__MP_MAP, "fixmap"}, {0x93, DDS__MP_ARRAY, "fixarray"},
        {0xa3, DDS__MP_STR, "fixstr"}, {0xc0, DDS__MP_NIL, "nil"}, {0xc1, DDS__MP_INVALID, "reserved byte 0xc1"},
        {0xc3, DDS__MP_BOOL, "true"}, {0xc5, DDS__MP_BIN, "bin16"}, {0xc7, DDS__MP_EXT, "ext8"},
        {0xca, DDS__MP_FLOAT32, "float32"}, {0xcb, DDS__MP_FLOAT64, "float64"}, {0xcf, DDS__MP_UINT, "uint64"},
        {0xd3, DDS__MP_INT, "int64"}, {0xd8, DDS__MP_EXT, "fixext16"}, {0xdb, DDS__MP_STR, "str32"},
        {0xdd, DDS__MP_ARRAY, "array32"}, {0xdf, DDS__MP_MAP, "map32"}, {0xff, DDS__MP_INT, "negative fixint"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        dds__mp_reader r;
        dds__mp_reader_init(&r, &rows[i].b, 1, NULL);
        CHECK_MSG(dds__mp_peek(&r) == rows[i].t, "peek 0x%02x", rows[i].b);
        CHECK_EQ_STR(dds__mp_type_name(rows[i].b), rows[i].name);
    }
    for (int b = 0; b < 256; b++) CHECK(dds__mp_type_name((uint8_t)b) != NULL);
    dds__mp_reader r;
    dds__mp_reader_init(&r, NULL, 0, NULL);
    CHECK(dds__mp_peek(&r) == DDS__MP_NONE);
}

/* ---- skip ----------------------------------------------------------------------------------- */

static void write_every_type(wbuf *w) {
    w_map(w, 3);
    w_str(w, "a");
    w_arr(w, 14);
    w_nil(w); w_byte(w, 0xc2); w_byte(w, 0xc3); w_byte(w, 0x7f); w_byte(w, 0xe0);
    w_tag_be(w, 0xcc, 1, 1); w_tag_be(w, 0xcd, 1, 2); w_tag_be(w, 0xce, 1, 4); w_tag_be(w, 0xcf, 1, 8);
    w_tag_be(w, 0xd0, 1, 1); w_tag_be(w, 0xd1, 1, 2); w_tag_be(w, 0xd2, 1, 4); w_tag_be(w, 0xd3, 1, 8);
    w_f32(w, 1.0f);
    w_str(w, "b");
    w_arr(w, 9);
    w_f64(w, 2.0);
    w_tag_be(w, 0xc4, 1, 1); w_byte(w, 9);
    w_tag_be(w, 0xc5, 1, 2); w_byte(w, 9);
    w_tag_be(w, 0xc6, 1, 4); w_byte(w, 9);
    w_tag_be(w, 0xc7, 2, 1); w_byte(w, 5); w_raw(w, "xy", 2);        /* ext8: len, type, data */
    w_tag_be(w, 0xc8, 1, 2); w_byte(w, 5); w_byte(w, 1);             /* ext16 */
    w_tag_be(w, 0xc9, 1, 4); w_byte(w, 5); w_byte(w, 1);             /* ext32 */
    w_byte(w, 0xd4); w_byte(w, 1); w_byte(w, 0);                     /* fixext1 */
    w_byte(w, 0xd5); w_byte(w, 1); w_raw(w, "12", 2);                /* fixext2 */
    w_str(w, "c");
    w_arr(w, 5);
    w_byte(w, 0xd6); w_byte(w, 1); w_raw(w, "1234", 4);              /* fixext4 */
    w_byte(w, 0xd7); w_byte(w, 1); w_raw(w, "12345678", 8);          /* fixext8 */
    w_byte(w, 0xd8); w_byte(w, 1); w_raw(w, "1234567812345678", 16); /* fixext16 */
    w_tag_be(w, 0xde, 1, 2); w_str(w, "k"); w_tag_be(w, 0xdc, 1, 2); w_map(w, 0);
    w_tag_be(w, 0xdf, 1, 4); w_tag_be(w, 0xda, 1, 2); w_byte(w, 'k'); w_tag_be(w, 0xdd, 0, 4);
}

TEST(skip_every_type) {
    wbuf w = {0};
    fixture f;
    write_every_type(&w);
    size_t value_len = w.n;
    w_str(&w, "next");
    start(&f, &w);
    dds__mp_skip(&f.r);
    CHECK(dds__mp_ok(&f.r));
    CHECK_EQ_INT((size_t)(f.r.p - f.r.start), value_len);
    dds__slice next = dds__mp_read_str(&f.r);
    CHECK_EQ_SLICE(next, "next");
    done(&f, &w);

    /* every proper prefix of that value fails, without reading past it */
    write_every_type(&w);
    uint8_t *full = malloc(w.n);
    memcpy(full, w.b, w.n);
    size_t n = w.n;
    for (size_t len = 0; len < n; len++) {
        w.n = 0;
        w_raw(&w, full, len);
        start(&f, &w);
        dds__mp_skip(&f.r);
        CHECK_MSG(!dds__mp_ok(&f.r), "prefix %zu of %zu skipped without error", len, n);
        done(&f, &w);
    }
    free(full);

    w_byte(&w, 0xc1);
    start(&f, &w);
    dds__mp_skip(&f.r);
    CHECK_EQ_STR(f.r.err, "is not msgpack");
    done(&f, &w);
    free(w.b);
}

TEST(skip_depth_is_bounded) {
    wbuf w = {0};
    fixture f;
    /* DDS__MP_MAX_DEPTH nested containers (the skipped one included) are fine, one more is not */
    for (int i = 0; i < DDS__MP_MAX_DEPTH; i++) w_arr(&w, 1);
    w_nil(&w);
    start(&f, &w);
    dds__mp_skip(&f.r);
    CHECK(dds__mp_ok(&f.r) && f.r.p == f.r.end);
    done(&f, &w);

    for (int i = 0; i < DDS__MP_MAX_DEPTH + 1; i++) w_arr(&w, 1);
    w_nil(&w);
    start(&f, &w);
    dds__mp_skip(&f.r);
    CHECK_EQ_STR(f.r.err, "nests deeper than 64 levels");
    done(&f, &w);

    /* 100000 levels of arrays and of maps */
    for (int i = 0; i < 100000; i++) w_arr(&w, 1);
    w_nil(&w);
    start(&f, &w);
    dds__mp_skip(&f.r);
    CHECK(!dds__mp_ok(&f.r));
    done(&f, &w);
    for (int i = 0; i < 100000; i++) { w_map(&w, 1); w_byte(&w, 1); }
    w_nil(&w);
    start(&f, &w);
    dds__mp_skip(&f.r);
    CHECK(!dds__mp_ok(&f.r));
    done(&f, &w);

    /* wide is fine: 100000 siblings at one level */
    w_arr(&w, 100000);
    for (int i = 0; i < 100000; i++) w_arr(&w, 0);
    start(&f, &w);
    dds__mp_skip(&f.r);
    CHECK(dds__mp_ok(&f.r) && f.r.p == f.r.end);
    done(&f, &w);
    free(w.b);
}

/* Random bytes through every reader: never a crash or an over-read (guard page, ASan). */
TEST(random_bytes) {
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    uint8_t buf[256];
    dds__arena a;
    dds__arena_init(&a, 4096, 1 << 20);
    for (int iter = 0; iter < 5000; iter++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        size_t n = rng % sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            /* bias towards container and length bytes, where the bugs would be */
            buf[i] = (rng >> 32) % 4 == 0 ? (uint8_t)(0x80 + (rng >> 40) % 0x60) : (uint8_t)(rng >> 24);
        }
        char *m = test_guarded_copy(buf, n);
        dds__mp_reader r;
        dds__mp_reader_init(&r, m, n, &a);
        while (dds__mp_ok(&r) && dds__mp_left(&r) > 0) {
            switch ((iter + dds__mp_left(&r)) % 8) {
            case 0: dds__mp_skip(&r); break;
            case 1: dds__mp_read_str(&r); break;
            case 2: dds__mp_read_f64(&r); break;
            case 3: dds__mp_read_i32(&r); break;
            case 4: {
                uint32_t k = dds__mp_read_map_or_nil(&r);
                CHECK(k * 2 <= dds__mp_left(&r));
                break;
            }
            case 5: {
                uint32_t k = dds__mp_read_array_or_nil(&r);
                CHECK(k <= dds__mp_left(&r));
                break;
            }
            case 6: dds__mp_read_bytes(&r); break;
            default: dds__mp_read_u64(&r); break;
            }
        }
        test_guarded_free(m, n);
        dds__arena_reset(&a);
    }
    dds__arena_free(&a);
}

/* The readers inlined into the decoders take the common encodings themselves and hand the rest
 * to the out-of-line *_any readers. On every input both must agree exactly: value, bytes
 * consumed, error and its offset. Random bytes biased to the encodings the fast paths take,
 * cut at every length (truncation is where a fast path could over-read). */
TEST(inline_fast_paths_agree_with_the_full_readers) {
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    static const uint8_t hot[] = {0x00, 0x05, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x93, 0x9f, 0xa0, 0xa3, 0xbf,
                                  0xc0, 0xcb, 0xcf, 0xd3, 0xcc, 0xce, 0xd2, 0xca, 0xd9, 0xff, 0xe3, 0xc3};
    uint8_t buf[48];
    dds__arena a1, a2;
    dds__arena_init(&a1, 4096, 1 << 20);
    dds__arena_init(&a2, 4096, 1 << 20);
    int compared = 0;
    for (int iter = 0; iter < 1500; iter++) {
        for (size_t i = 0; i < sizeof(buf); i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            uint32_t x = (uint32_t)(rng >> 20);
            buf[i] = x % 3 == 0 ? hot[(x >> 8) % sizeof(hot)] : (x % 5 == 0 ? (uint8_t)(0x80 | (x >> 12)) : (uint8_t)(x >> 12));
        }
        for (size_t n = 0; n <= 20; n++) {
            char *m = test_guarded_copy(buf, n);
            for (int kind = 0; kind < 9; kind++) {
                dds__mp_reader r1, r2;
                dds__mp_reader_init(&r1, m, n, &a1);
                dds__mp_reader_init(&r2, m, n, &a2);
                bool same = true;
                switch (kind) {
                case 0: { dds__slice x = dds__mp_read_str(&r1), y = dds__mp_read_str_any(&r2);
                          same = x.len == y.len && (x.len == 0 || memcmp(x.ptr, y.ptr, x.len) == 0); break; }
                case 1: { dds__slice x = dds__mp_read_bytes(&r1), y = dds__mp_read_bytes_any(&r2);
                          same = x.ptr == y.ptr && x.len == y.len; break; }
                case 2: same = dds__mp_read_u64(&r1) == dds__mp_read_u64_any(&r2); break;
                case 3: same = dds__mp_read_i64(&r1) == dds__mp_read_i64_any(&r2); break;
                case 4: same = dds__mp_read_u32(&r1) == dds__mp_read_u32_any(&r2); break;
                case 5: same = dds__mp_read_i32(&r1) == dds__mp_read_i32_any(&r2); break;
                case 6: { double x = dds__mp_read_f64(&r1), y = dds__mp_read_f64_any(&r2);
                          same = memcmp(&x, &y, sizeof(x)) == 0; break; }
                case 7: same = dds__mp_read_map(&r1) == dds__mp_read_map_any(&r2); break;
                default: same = dds__mp_read_array(&r1) == dds__mp_read_array_any(&r2); break;
                }
                same = same && r1.p == r2.p && (r1.err == NULL) == (r2.err == NULL) &&
                       (!r1.err || (strcmp(r1.err, r2.err) == 0 && r1.err_offset == r2.err_offset));
                CHECK_MSG(same, "reader %d disagrees on %zu bytes starting 0x%02x", kind, n, n ? buf[0] : 0);
                compared++;
                dds__arena_reset(&a1);
                dds__arena_reset(&a2);
                if (!same) break;
            }
            test_guarded_free(m, n);
            if (test_cur_failed) goto out;
        }
    }
out:
    CHECK(compared > 100000);
    dds__arena_free(&a1);
    dds__arena_free(&a2);
}

int main(void) {
    RUN(integers_every_encoding);
    RUN(integers_refuse_floats_and_others);
    RUN(floats_every_encoding);
    RUN(booleans);
    RUN(strings_str_bin_nil_every_width);
    RUN(utf8_repaired_as_go_does);
    RUN(utf8_bad_byte_at_every_position);
    RUN(utf8_matches_reference_decoder);
    RUN(invalid_utf8_without_arena_is_an_error);
    RUN(repair_fails_cleanly_past_the_arena_limit);
    RUN(containers_every_width);
    RUN(declared_counts_checked_against_bytes_left);
    RUN(errors_are_sticky);
    RUN(peek_and_type_names);
    RUN(skip_every_type);
    RUN(skip_depth_is_bounded);
    RUN(random_bytes);
    RUN(inline_fast_paths_agree_with_the_full_readers);
    return TEST_REPORT();
}
