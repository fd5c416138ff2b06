/* test_parse.c - dogstatsd/parse.c. Tables of (input, expected result, short name): one row per
 * PROTOCOL.md section 1 edge case and per feature. Every input ends exactly at a PROT_NONE page
 * (test_guarded_copy), so reading one byte past a line crashes even without a sanitizer. */
#include "dogstatsd/parse.h"

#include <locale.h>

#include "test.h"

/* Table rows stop at the last field they check; the rest is zero on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* Row-tagged checks: a failing row names itself. */
#define ROW_CHECK(r, cond) CHECK_MSG((cond), "[%s] %s", (r)->name, #cond)
#define ROW_EQ_INT(r, got, want)                                                                  \
    do {                                                                                          \
        long long _g = (long long)(got), _w = (long long)(want);                                  \
        CHECK_MSG(_g == _w, "[%s] %s: got %lld, want %lld", (r)->name, #got, _g, _w);             \
    } while (0)
/* want == NULL: the field must be absent ({NULL, 0}). */
#define ROW_SLICE(r, sl, want)                                                                    \
    do {                                                                                          \
        dds__slice _s = (sl);                                                                     \
        const char *_w = (want);                                                                  \
        CHECK_MSG(slice_matches(_s, _w), "[%s] %s: got %s\"%.*s\", want %s%s%s", (r)->name, #sl,  \
                  _s.ptr ? "" : "(absent) ", (int)_s.len, _s.ptr ? _s.ptr : "", _w ? "\"" : "",    \
                  _w ? _w : "(absent)", _w ? "\"" : "");                                          \
    } while (0)

static bool slice_matches(dds__slice s, const char *want) {
    if (!want) return s.ptr == NULL && s.len == 0;
    return s.ptr != NULL && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

/* Same double, bit for bit apart from NaN payloads: -0 is not 0 here. */
static bool same_double(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) && !signbit(a) == !signbit(b);
    return a == b && !signbit(a) == !signbit(b);
}

static int parse_any(dds__slice line) {
    double vals[64];
    size_t nvals;
    dds__metric m;
    dds__event e;
    dds__service_check sc;
    switch (dds__line_kind_of(line)) {
    case DDS__LINE_EVENT: return dds__parse_event(line.ptr, line.len, &e);
    case DDS__LINE_SERVICE_CHECK: return dds__parse_service_check(line.ptr, line.len, &sc);
    case DDS__LINE_METRIC: break;
    }
    return dds__parse_metric(line.ptr, line.len, &m, vals, 64, &nvals);
}

/* ---- PROTOCOL.md section 1 "Edge cases" table, one row per input, through the packet path --- */

struct packet_row {
    const char *name;
    const char *in;
    int nlines;
    int status[4]; /* of each line, in order */
};

static const struct packet_row packet_rows[] = {
    {"count ending in \\n", "a:1|c\n", 1, {DDS__PARSE_OK}},
    {"count ending in \\r\\n", "a:1|c\r\n", 1, {DDS__PARSE_OK}},
    {"only newlines", "\n\n", 0, {0}},
    {"empty packet", "", 0, {0}},
    {"empty value", "a:|c", 1, {DDS__PARSE_ERR_VALUE}},
    {"empty name", ":1|c", 1, {DDS__PARSE_ERR_NAME}},
    {"no colon", "a1|c", 1, {DDS__PARSE_ERR_NAME}},
    {"no type", "a:1", 1, {DDS__PARSE_ERR_TYPE}},
    {"unknown type", "a:1|x", 1, {DDS__PARSE_ERR_TYPE}},
    {"type is case-sensitive", "a:1|C", 1, {DDS__PARSE_ERR_TYPE}},
    {"empty type", "a:1|", 1, {DDS__PARSE_ERR_TYPE}},
    {"sample rate not a number", "a:1|c|@abc", 1, {DDS__PARSE_ERR_SAMPLE_RATE}},
    {"timestamp 0", "a:1|g|T0", 1, {DDS__PARSE_ERR_TIMESTAMP}},
    {"packed with empty item", "a:1::2|h", 1, {DDS__PARSE_OK}},
    {"set member with colon", "u:a:b|s", 1, {DDS__PARSE_OK}},
    {"empty tag kept", "a:1|c|#x,,y", 1, {DDS__PARSE_OK}},
    {"event empty title", "_e{0,4}:|text", 1, {DDS__PARSE_ERR_EVENT}},
    {"event body shorter than lengths", "_e{5,100}:hello|short", 1, {DDS__PARSE_ERR_EVENT}},
    {"service check empty name", "_sc||0", 1, {DDS__PARSE_ERR_SERVICE_CHECK}},
    {"service check status 4", "_sc|n|4", 1, {DDS__PARSE_ERR_SERVICE_CHECK}},
    /* "One bad line never affects its neighbours." */
    {"bad line between good ones", "a:1|c\nbad\n_sc|n|0\r\n_e{1,1}:t|x", 4,
     {DDS__PARSE_OK, DDS__PARSE_ERR_NAME, DDS__PARSE_OK, DDS__PARSE_OK}},
    {"kinds mixed, unterminated last", "_e{1,0}:t|\n\n_sc|n|9\nb:2|g", 3,
     {DDS__PARSE_OK, DDS__PARSE_ERR_SERVICE_CHECK, DDS__PARSE_OK}},
};

TEST(edge_cases_table) {
    for (size_t i = 0; i < sizeof packet_rows / sizeof packet_rows[0]; i++) {
        const struct packet_row *r = &packet_rows[i];
        size_t len = strlen(r->in);
        char *buf = test_guarded_copy(r->in, len);
        const char *cur = buf;
        dds__slice line;
        int n = 0;
        while (dds__packet_next_line(&cur, buf + len, &line)) {
            /* Each line again at its own guard page: inside the packet, an over-read would only
             * reach the next line. */
            char *lb = test_guarded_copy(line.ptr, line.len);
            if (n < 4) ROW_EQ_INT(r, parse_any(dds__slice_make(lb, line.len)), r->status[n]);
            test_guarded_free(lb, line.len);
            n++;
        }
        ROW_EQ_INT(r, n, r->nlines);
        test_guarded_free(buf, len);
    }
}

/* ---- metrics ------------------------------------------------------------------------------ */

struct metric_row {
    const char *name;
    const char *in;
    int status;
    /* checked when status is OK */
    double rate; /* 1.0 when the line has no '@' */
    const char *mname, *raw;
    dds__mtype type;
    size_t nvals;
    double vals[4];
    const char *tags; /* NULL: no '#' field */
    int64_t ts;
};

static const struct metric_row metric_rows[] = {
    /* types */
    {"count", "a:1|c", DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}},
    {"gauge", "g:-2.5|g", DDS__PARSE_OK, 1.0, "g", "-2.5", DDS__MT_GAUGE, 1, {-2.5}},
    {"histogram", "h:10|h", DDS__PARSE_OK, 1.0, "h", "10", DDS__MT_HISTOGRAM, 1, {10}},
    {"timing", "t:250|ms", DDS__PARSE_OK, 1.0, "t", "250", DDS__MT_TIMING, 1, {250}},
    {"distribution", "d:0.125|d",
     DDS__PARSE_OK, 1.0, "d", "0.125", DDS__MT_DISTRIBUTION, 1, {0.125}},
    {"set", "u:user1|s", DDS__PARSE_OK, 1.0, "u", "user1", DDS__MT_SET, 0, {0}},
    {"type m", "a:1|m", DDS__PARSE_ERR_TYPE},
    {"type msx", "a:1|msx", DDS__PARSE_ERR_TYPE},
    {"type MS", "a:1|MS", DDS__PARSE_ERR_TYPE},
    {"type with blank", "a:1|c |#t", DDS__PARSE_ERR_TYPE},
    /* name / value split */
    {"name not validated", "a b/c-d.\xc3\xa9:1|c",
     DDS__PARSE_OK, 1.0, "a b/c-d.\xc3\xa9", "1", DDS__MT_COUNT, 1, {1}},
    {"split at first colon", "a:b:1|c", DDS__PARSE_ERR_VALUE},
    {"colon only after bar", "a|c:1", DDS__PARSE_ERR_NAME},
    {"only a colon", ":", DDS__PARSE_ERR_NAME},
    {"empty line", "", DDS__PARSE_ERR_NAME},
    {"empty set member", "u:|s", DDS__PARSE_ERR_VALUE},
    /* packing (DogStatsD 1.1) */
    {"packed three", "a:1:2:3|d",
     DDS__PARSE_OK, 1.0, "a", "1:2:3", DDS__MT_DISTRIBUTION, 3, {1, 2, 3}},
    {"packed empty item skipped", "a:1::2|h",
     DDS__PARSE_OK, 1.0, "a", "1::2", DDS__MT_HISTOGRAM, 2, {1, 2}},
    {"packed empty ends skipped", "a::1:|c", DDS__PARSE_OK, 1.0, "a", ":1:", DDS__MT_COUNT, 1, {1}},
    {"packed gauge", "a:1.5:-2|g", DDS__PARSE_OK, 1.0, "a", "1.5:-2", DDS__MT_GAUGE, 2, {1.5, -2}},
    {"packed bad item rejects", "a:1:x:3|d", DDS__PARSE_ERR_VALUE},
    {"packed bad last item rejects", "a:1:2:3x|d", DDS__PARSE_ERR_VALUE},
    {"separators only", "a::|c", DDS__PARSE_ERR_VALUE},
    {"set keeps colons", "u:a:b|s", DDS__PARSE_OK, 1.0, "u", "a:b", DDS__MT_SET, 0, {0}},
    {"set not split", "u:1::2|s", DDS__PARSE_OK, 1.0, "u", "1::2", DDS__MT_SET, 0, {0}},
    {"set member not a number", "u:1.50x|s", DDS__PARSE_OK, 1.0, "u", "1.50x", DDS__MT_SET, 0, {0}},
    /* numbers */
    {"exponent", "a:1e3|g", DDS__PARSE_OK, 1.0, "a", "1e3", DDS__MT_GAUGE, 1, {1000}},
    {"negative exponent", "a:1.5E-3|g",
     DDS__PARSE_OK, 1.0, "a", "1.5E-3", DDS__MT_GAUGE, 1, {1.5e-3}},
    {"exponent with plus", "a:2e+2|g", DDS__PARSE_OK, 1.0, "a", "2e+2", DDS__MT_GAUGE, 1, {200}},
    {"capital exponent", "a:25E-1|g", DDS__PARSE_OK, 1.0, "a", "25E-1", DDS__MT_GAUGE, 1, {2.5}},
    {"exponent 22", "a:1e22|g", DDS__PARSE_OK, 1.0, "a", "1e22", DDS__MT_GAUGE, 1, {1e22}},
    {"exponent 23", "a:1e23|g", DDS__PARSE_OK, 1.0, "a", "1e23", DDS__MT_GAUGE, 1, {1e23}},
    {"exponent cancels fraction", "a:1.5e1|g",
     DDS__PARSE_OK, 1.0, "a", "1.5e1", DDS__MT_GAUGE, 1, {15}},
    {"exponent with leading zeros", "a:3e0002|g",
     DDS__PARSE_OK, 1.0, "a", "3e0002", DDS__MT_GAUGE, 1,
     {300}},
    {"smallest subnormal", "a:5e-324|g",
     DDS__PARSE_OK, 1.0, "a", "5e-324", DDS__MT_GAUGE, 1, {5e-324}},
    {"leading plus is not a delta", "a:+5|g", DDS__PARSE_OK, 1.0, "a", "+5", DDS__MT_GAUGE, 1, {5}},
    {"negative zero", "a:-0|g", DDS__PARSE_OK, 1.0, "a", "-0", DDS__MT_GAUGE, 1, {-0.0}},
    {"no integer part", "a:.5|g", DDS__PARSE_OK, 1.0, "a", ".5", DDS__MT_GAUGE, 1, {0.5}},
    {"no fraction digits", "a:5.|g", DDS__PARSE_OK, 1.0, "a", "5.", DDS__MT_GAUGE, 1, {5}},
    {"one tenth", "a:0.1|g", DDS__PARSE_OK, 1.0, "a", "0.1", DDS__MT_GAUGE, 1, {0.1}},
    {"17 significant digits", "a:0.30000000000000004|g",
     DDS__PARSE_OK, 1.0, "a", "0.30000000000000004",
     DDS__MT_GAUGE, 1, {0.30000000000000004}},
    {"2^53+1 rounds to even", "a:9007199254740993|c", DDS__PARSE_OK, 1.0, "a", "9007199254740993",
     DDS__MT_COUNT, 1, {9007199254740992.0}},
    {"19 digits", "a:9999999999999999999|c",
     DDS__PARSE_OK, 1.0, "a", "9999999999999999999", DDS__MT_COUNT, 1,
     {1e19}},
    {"20 digits", "a:18446744073709551617|c",
     DDS__PARSE_OK, 1.0, "a", "18446744073709551617", DDS__MT_COUNT, 1,
     {18446744073709551616.0}},
    {"30 digits", "a:123456789012345678901234567890|g", DDS__PARSE_OK, 1.0, "a",
     "123456789012345678901234567890", DDS__MT_GAUGE, 1, {123456789012345678901234567890.0}},
    {"decimal past 2^53", "a:9007199254740993.5|g",
     DDS__PARSE_OK, 1.0, "a", "9007199254740993.5", DDS__MT_GAUGE,
     1, {9007199254740994.0}},
    {"23 fraction digits", "a:0.00000000000000000000001|g", DDS__PARSE_OK, 1.0, "a",
     "0.00000000000000000000001", DDS__MT_GAUGE, 1, {1e-23}},
    {"nan", "a:nan|g", DDS__PARSE_OK, 1.0, "a", "nan", DDS__MT_GAUGE, 1, {NAN}},
    {"NaN", "a:NaN|g", DDS__PARSE_OK, 1.0, "a", "NaN", DDS__MT_GAUGE, 1, {NAN}},
    {"inf", "a:inf|g", DDS__PARSE_OK, 1.0, "a", "inf", DDS__MT_GAUGE, 1, {INFINITY}},
    {"+Inf", "a:+Inf|g", DDS__PARSE_OK, 1.0, "a", "+Inf", DDS__MT_GAUGE, 1, {INFINITY}},
    {"-Infinity", "a:-Infinity|d",
     DDS__PARSE_OK, 1.0, "a", "-Infinity", DDS__MT_DISTRIBUTION, 1, {-INFINITY}},
    {"overflow becomes inf", "a:1e999|g",
     DDS__PARSE_OK, 1.0, "a", "1e999", DDS__MT_GAUGE, 1, {INFINITY}},
    {"underflow becomes 0", "a:1e-999|g", DDS__PARSE_OK, 1.0, "a", "1e-999", DDS__MT_GAUGE, 1, {0}},
    {"decimal comma", "a:1,5|g", DDS__PARSE_ERR_VALUE},
    {"leading blank", "a: 1|g", DDS__PARSE_ERR_VALUE},
    {"trailing blank", "a:1 |g", DDS__PARSE_ERR_VALUE},
    {"leading blank before exponent form", "a: 1e3|g", DDS__PARSE_ERR_VALUE},
    {"hex", "a:0x10|g", DDS__PARSE_ERR_VALUE},
    {"hex float", "a:0x1p3|g", DDS__PARSE_ERR_VALUE},
    {"exponent without digits", "a:1e|g", DDS__PARSE_ERR_VALUE},
    {"exponent sign only", "a:1e+|g", DDS__PARSE_ERR_VALUE},
    {"dot only", "a:.|g", DDS__PARSE_ERR_VALUE},
    {"minus only", "a:-|g", DDS__PARSE_ERR_VALUE},
    {"plus only", "a:+|g", DDS__PARSE_ERR_VALUE},
    {"double sign", "a:--1|g", DDS__PARSE_ERR_VALUE},
    {"two dots", "a:1..2|g", DDS__PARSE_ERR_VALUE},
    {"two exponents", "a:1e5e5|g", DDS__PARSE_ERR_VALUE},
    {"digit separator", "a:1_000|g", DDS__PARSE_ERR_VALUE},
    {"nan with payload", "a:nan(1)|g", DDS__PARSE_ERR_VALUE},
    {"truncated infinity", "a:infinit|g", DDS__PARSE_ERR_VALUE},
    {"word", "a:none|g", DDS__PARSE_ERR_VALUE},
    /* sample rate */
    {"sample rate", "a:1|c|@0.5", DDS__PARSE_OK, 0.5, "a", "1", DDS__MT_COUNT, 1, {1}},
    {"sample rate exponent", "a:1|c|@1e-2", DDS__PARSE_OK, 0.01, "a", "1", DDS__MT_COUNT, 1, {1}},
    {"sample rate 0 kept as sent", "a:1|c|@0", DDS__PARSE_OK, 0, "a", "1", DDS__MT_COUNT, 1, {1}},
    {"sample rate 2 kept as sent", "a:1|h|@2",
     DDS__PARSE_OK, 2, "a", "1", DDS__MT_HISTOGRAM, 1, {1}},
    {"sample rate duplicate later wins", "a:1|c|@0.5|@0.25",
     DDS__PARSE_OK, 0.25, "a", "1", DDS__MT_COUNT, 1, {1}},
    {"sample rate on a set", "u:x|s|@0.5", DDS__PARSE_OK, 0.5, "u", "x", DDS__MT_SET, 0, {0}},
    {"sample rate empty", "a:1|c|@", DDS__PARSE_ERR_SAMPLE_RATE},
    {"sample rate garbage", "a:1|c|@abc", DDS__PARSE_ERR_SAMPLE_RATE},
    {"sample rate bad duplicate", "a:1|c|@0.5|@x", DDS__PARSE_ERR_SAMPLE_RATE},
    {"sample rate bad on a set", "u:x|s|@x", DDS__PARSE_ERR_SAMPLE_RATE},
    /* names past 16 bytes (the name is searched 16 bytes at a time) */
    {"long name", "abcdefghijklmnopqrstuvwxyz.abcdefghij:12.5|g|#t",
     DDS__PARSE_OK, 1.0, "abcdefghijklmnopqrstuvwxyz.abcdefghij", "12.5", DDS__MT_GAUGE, 1, {12.5}, .tags = "t"},
    {"long name with a bar before the colon", "abcdefghijklmnopqrstu|vwxyz:1|c", DDS__PARSE_ERR_NAME},
    {"long name, packed values", "abcdefghijklmnopqrstuvwxyz:1:-2.5|d",
     DDS__PARSE_OK, 1.0, "abcdefghijklmnopqrstuvwxyz", "1:-2.5", DDS__MT_DISTRIBUTION, 2, {1, -2.5}},
    {"long name, exponent", "abcdefghijklmnopqrstuvwxyz:25e-1|h",
     DDS__PARSE_OK, 1.0, "abcdefghijklmnopqrstuvwxyz", "25e-1", DDS__MT_HISTOGRAM, 1, {2.5}},
    {"long name, no colon", "abcdefghijklmnopqrstuvwxyz0123456789", DDS__PARSE_ERR_NAME},
    /* tags */
    {"tags", "a:1|c|#a:b,c", DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}, .tags = "a:b,c"},
    {"tags with empty one", "a:1|c|#x,,y",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}, .tags = "x,,y"},
    {"hash alone", "a:1|c|#", DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}, .tags = ""},
    {"tags duplicate later wins", "a:1|c|#a|#b",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}, .tags = "b"},
    {"tags then other fields", "a:1|c|#a,b|@0.5|T5",
     DDS__PARSE_OK, 0.5, "a", "1", DDS__MT_COUNT, 1, {1}, .tags = "a,b", .ts = 5},
    {"tags then a bad sample rate", "a:1|c|#a,b|@x", DDS__PARSE_ERR_SAMPLE_RATE},
    {"tags then a bad timestamp", "a:1|c|#a,b|T-1", DDS__PARSE_ERR_TIMESTAMP},
    {"tags then a trailing bar", "a:1|c|#a,b|",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}, .tags = "a,b"},
    {"tags then origin fields", "a:1|c|#a,b|c:ci-1|e:x",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}, .tags = "a,b"},
    {"fields in another order", "a:2|g|T7|@0.5|#t",
     DDS__PARSE_OK, 0.5, "a", "2", DDS__MT_GAUGE, 1, {2}, .tags = "t", .ts = 7},
    /* T timestamp */
    {"timestamp", "a:1|g|T1700000000",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_GAUGE, 1, {1}, .ts = 1700000000},
    {"timestamp 1", "a:1|g|T1", DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_GAUGE, 1, {1}, .ts = 1},
    {"timestamp leading plus", "a:1|g|T+5",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_GAUGE, 1, {1}, .ts = 5},
    {"timestamp int64 max", "a:1|g|T9223372036854775807",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_GAUGE, 1, {1},
     .ts = INT64_MAX},
    {"timestamp duplicate later wins", "a:1|g|T5|T6",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_GAUGE, 1, {1}, .ts = 6},
    {"timestamp 0", "a:1|g|T0", DDS__PARSE_ERR_TIMESTAMP},
    {"timestamp 000", "a:1|g|T000", DDS__PARSE_ERR_TIMESTAMP},
    {"timestamp empty", "a:1|g|T", DDS__PARSE_ERR_TIMESTAMP},
    {"timestamp negative", "a:1|g|T-5", DDS__PARSE_ERR_TIMESTAMP},
    {"timestamp plus only", "a:1|g|T+", DDS__PARSE_ERR_TIMESTAMP},
    {"timestamp trailing garbage", "a:1|g|T12a", DDS__PARSE_ERR_TIMESTAMP},
    {"timestamp fraction", "a:1|g|T1.5", DDS__PARSE_ERR_TIMESTAMP},
    {"timestamp int64 max + 1", "a:1|g|T9223372036854775808", DDS__PARSE_ERR_TIMESTAMP},
    {"timestamp uint64 overflow", "a:1|g|T99999999999999999999", DDS__PARSE_ERR_TIMESTAMP},
    {"timestamp bad after good", "a:1|g|T5|Tx", DDS__PARSE_ERR_TIMESTAMP},
    /* origin detection and unknown fields */
    {"origin fields ignored", "a:1|c|c:ci-1234abcd|e:it-false,cn-app|card:high|#t",
     DDS__PARSE_OK, 1.0, "a", "1",
     DDS__MT_COUNT, 1, {1}, .tags = "t"},
    {"empty origin fields ignored", "a:1|c|c:|e:|card:",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}},
    {"unknown fields ignored", "a:1|c|x:1|zzz|#t",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}, .tags = "t"},
    {"empty field ignored", "a:1|c||#t",
     DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}, .tags = "t"},
    {"trailing bar", "a:1|c|", DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}},
    {"two trailing bars", "a:1|c||", DDS__PARSE_OK, 1.0, "a", "1", DDS__MT_COUNT, 1, {1}},
};

/* Every row twice: dds__parse_metric, then dds__parse_metric_open (its tag list runs to the end
 * of the line) finished by dds__parse_metric_close, which must give the same result. */
TEST(metric_table) {
    for (size_t i = 0; i < 2 * (sizeof metric_rows / sizeof metric_rows[0]); i++) {
        const struct metric_row *r = &metric_rows[i / 2];
        size_t len = strlen(r->in);
        char *buf = test_guarded_copy(r->in, len);
        dds__metric m;
        double vals[8];
        size_t nvals = 99;
        int st;
        if (i % 2 == 0) {
            st = dds__parse_metric(buf, len, &m, vals, 8, &nvals);
        } else {
            bool open = false;
            st = dds__parse_metric_open(buf, len, &m, vals, 8, &nvals, &open);
            ROW_EQ_INT(r, open, st == DDS__PARSE_OK && strstr(r->in, "|#") != NULL);
            if (open) {
                ROW_EQ_INT(r, m.tags.ptr + m.tags.len == buf + len, 1);
                st = dds__parse_metric_close(&m, &nvals);
            }
        }
        ROW_EQ_INT(r, st, r->status);
        if (st != DDS__PARSE_OK) {
            ROW_EQ_INT(r, nvals, 0);
        } else if (r->status == DDS__PARSE_OK) {
            ROW_SLICE(r, m.name, r->mname);
            ROW_SLICE(r, m.raw_value, r->raw);
            ROW_EQ_INT(r, m.type, r->type);
            ROW_EQ_INT(r, nvals, r->nvals);
            for (size_t k = 0; k < nvals && k < r->nvals; k++)
                CHECK_MSG(same_double(vals[k], r->vals[k]), "[%s] vals[%zu]: got %.17g, want %.17g",
                          r->name, k, vals[k], r->vals[k]);
            CHECK_MSG(same_double(m.sample_rate, r->rate), "[%s] rate: got %.17g, want %.17g",
                      r->name, m.sample_rate, r->rate);
            ROW_SLICE(r, m.tags, r->tags);
            ROW_EQ_INT(r, m.timestamp, r->ts);
        }
        test_guarded_free(buf, len);
    }
}

/* Bytes strlen cannot carry: a NUL inside a value must not end the number early. */
TEST(metric_embedded_nul) {
    static const char in[] = "a:1\0002|g"; /* value "1\0" "2" */
    static const char in2[] = "a:1e\0003|g";
    const char *ins[] = {in, in2};
    size_t lens[] = {sizeof in - 1, sizeof in2 - 1};
    for (int i = 0; i < 2; i++) {
        char *buf = test_guarded_copy(ins[i], lens[i]);
        dds__metric m;
        double v[2];
        size_t n;
        CHECK_EQ_INT(dds__parse_metric(buf, lens[i], &m, v, 2, &n), DDS__PARSE_ERR_VALUE);
        test_guarded_free(buf, lens[i]);
    }
}

TEST(metric_value_capacity) {
    static const char in[] = "a:1:2:3|d";
    size_t len = sizeof in - 1;
    char *buf = test_guarded_copy(in, len);
    dds__metric m;
    double v[3] = {0};
    size_t n = 99;
    CHECK_EQ_INT(dds__parse_metric(buf, len, &m, v, 2, &n), DDS__PARSE_ERR_TOO_MANY_VALUES);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(dds__parse_metric(buf, len, &m, v, 3, &n), DDS__PARSE_OK);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_DBL(v[2], 3, 0);
    CHECK_EQ_INT(dds__parse_metric(buf, len, &m, NULL, 0, &n), DDS__PARSE_ERR_TOO_MANY_VALUES);
    test_guarded_free(buf, len);

    /* A set needs no value array. */
    static const char set[] = "u:1:2:3|s";
    buf = test_guarded_copy(set, sizeof set - 1);
    CHECK_EQ_INT(dds__parse_metric(buf, sizeof set - 1, &m, NULL, 0, &n), DDS__PARSE_OK);
    CHECK_EQ_INT(n, 0);
    test_guarded_free(buf, sizeof set - 1);

    /* The header's bound: n bytes never hold more than n/2 + 1 values. */
    char big[201];
    size_t bl = 0;
    big[bl++] = 'a';
    big[bl++] = ':';
    while (bl < 196) {
        big[bl++] = '7';
        big[bl++] = ':';
    }
    big[bl++] = '7';
    memcpy(big + bl, "|h", 2);
    bl += 2;
    double many[101];
    buf = test_guarded_copy(big, bl);
    CHECK_EQ_INT(dds__parse_metric(buf, bl, &m, many, bl / 2 + 1, &n), DDS__PARSE_OK);
    CHECK_EQ_INT(n, 98);
    CHECK(n <= bl / 2 + 1);
    test_guarded_free(buf, bl);
}

/* Numbers far longer than any client writes: up to 127 bytes go to strtod, longer are refused
 * (parse.c NUM_MAX_LEN). */
TEST(metric_long_numbers) {
    char in[300];
    dds__metric m;
    double v[1];
    size_t n;
    for (size_t digits = 100; digits <= 140; digits += 40) {
        size_t len = 0;
        memcpy(in, "a:0.", 4);
        len = 4;
        for (size_t k = 0; k + 3 < digits; k++) in[len++] = '0';
        in[len++] = '1'; /* value "0.000...01" of `digits` bytes: 10^-(digits-2) */
        memcpy(in + len, "|g", 2);
        len += 2;
        char *buf = test_guarded_copy(in, len);
        int st = dds__parse_metric(buf, len, &m, v, 1, &n);
        if (digits <= 127) {
            CHECK_EQ_INT(st, DDS__PARSE_OK);
            CHECK_EQ_DBL(v[0], 1e-98, 0);
        } else {
            CHECK_EQ_INT(st, DDS__PARSE_ERR_VALUE);
        }
        test_guarded_free(buf, len);
    }
}

/* The fast path must give strtod's result bit for bit. Random decimals of 1-45 digits (0-25 after
 * the point) with and without an exponent of 1-4 digits exercise both sides of every fast-path
 * bound (19 digits, 2^53, 10^22). */
TEST(metric_fast_path_matches_strtod) {
    uint64_t s = 0x9E3779B97F4A7C15u;
    char fill[128];
    memset(fill, 'x', sizeof fill);
    /* One guarded area for all inputs: each is written so that it ends at the guard page. */
    char *buf = test_guarded_copy(fill, sizeof fill);
    char *end = buf + sizeof fill;
    int mismatches = 0;
    for (int iter = 0; iter < 200000; iter++) {
        char num[64];
        size_t nl = 0;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        if (s & 1) num[nl++] = (s & 2) ? '-' : '+';
        unsigned int_digits = (unsigned)(s >> 8) % 21, frac_digits = (unsigned)(s >> 16) % 26;
        bool dot = (s >> 24) & 1;
        if (!dot) frac_digits = 0;
        if (int_digits + frac_digits == 0) int_digits = 1;
        for (unsigned k = 0; k < int_digits + frac_digits; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            if (dot && k == int_digits) num[nl++] = '.';
            num[nl++] = (char)('0' + s % 10);
        }
        if (dot && int_digits + frac_digits == int_digits) num[nl++] = '.';
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        if (s % 3 == 0) { /* exponent of 1-4 digits, sign optional */
            num[nl++] = (s & 8) ? 'e' : 'E';
            if (s & 16) num[nl++] = (s & 32) ? '-' : '+';
            unsigned exp_digits = 1 + (unsigned)(s >> 6) % 4;
            for (unsigned k = 0; k < exp_digits; k++)
                num[nl++] = (char)('0' + (s >> (12 + 4 * k)) % 10);
        }
        num[nl] = '\0';
        char line[80];
        int ll = snprintf(line, sizeof line, "a:%s|g", num);
        char *p = end - ll;
        memcpy(p, line, (size_t)ll);
        dds__metric m;
        double v[1];
        size_t n;
        int st = dds__parse_metric(p, (size_t)ll, &m, v, 1, &n);
        double want = strtod(num, NULL);
        if (st != DDS__PARSE_OK || !same_double(v[0], want)) {
            if (mismatches++ < 5)
                TEST_FAIL_AT("\"%s\": st %d, got %.17g, want %.17g", num, st, v[0], want);
        }
    }
    CHECK_EQ_INT(mismatches, 0);
    test_guarded_free(buf, 128);
}

/* Short values, followed by more of the line (the head's one-pass path scans them as it goes) or
 * at its very end: random strings of digits, '.', '+', '-', 'e' and bytes next to the digits in
 * ASCII must be taken exactly when strtod takes them whole, with its double, bit for bit, either
 * way; as a value and as a sample rate. (No blank: strtod skips leading ones, the parser rejects
 * them.) */
TEST(short_values_match_strtod) {
    static const char alpha[] = "0123456789012345678901234567890123456789..-+;?/e";
    uint64_t s = 0xD1B54A32D192ED03u;
    int mismatches = 0;
    for (int iter = 0; iter < 60000; iter++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        size_t nl = 1 + (size_t)(s >> 60) % 9; /* 1-9 bytes: 9 is past the word */
        char num[16];
        for (size_t k = 0; k < nl; k++) num[k] = alpha[(s >> (4 + 5 * k)) % (sizeof alpha - 1)];
        num[nl] = '\0';
        char *stop;
        double want = strtod(num, &stop);
        bool want_ok = stop == num + nl;
        for (int form = 0; form < 4; form++) {
            char line[64];
            int ll = snprintf(line, sizeof line,
                              form == 0 ? "a:%s|g|#tag:padding" : form == 1 ? "a:%s|g"
                              : form == 2 ? "a:1|g|@%s|#tag:padding" : "a:1|g|@%s", num);
            char *buf = test_guarded_copy(line, (size_t)ll);
            dds__metric m;
            double v[8] = {0};
            size_t n = 0;
            int st = dds__parse_metric(buf, (size_t)ll, &m, v, 8, &n);
            double got = form < 2 ? v[0] : m.sample_rate;
            /* Values are packed on ':' only, so a value's verdict is the whole string's. */
            bool ok = st == DDS__PARSE_OK;
            if (ok != want_ok || (ok && !same_double(got, want))) {
                if (mismatches++ < 5)
                    TEST_FAIL_AT("\"%s\" (form %d): status %d, got %.17g; strtod: %s %.17g", line, form, st, got,
                                 want_ok ? "ok" : "rejects", want);
            }
            test_guarded_free(buf, (size_t)ll);
        }
    }
    CHECK_EQ_INT(mismatches, 0);
}

/* strtod follows LC_NUMERIC; the parser must not. Runs only where a ',' locale is installed
 * (e.g. LOCPATH pointing at a `localedef -i de_DE -f UTF-8` output). */
TEST(metric_ignores_locale) {
    static const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    bool switched = false;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !switched; i++)
        switched = setlocale(LC_NUMERIC, names[i]) != NULL &&
                   strcmp(localeconv()->decimal_point, ",") == 0;
    if (!switched) {
        fprintf(stderr, "     (no decimal-comma locale installed: locale test skipped)\n");
        return;
    }
    static const char *ins[] = {"a:1.5e0|g", "a:1.5|g", "a:0.000000000000000000000015|g"};
    static const double want[] = {1.5, 1.5, 1.5e-23};
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(ins[i]);
        char *buf = test_guarded_copy(ins[i], len);
        dds__metric m;
        double v[1] = {0};
        size_t n;
        CHECK_EQ_INT(dds__parse_metric(buf, len, &m, v, 1, &n), DDS__PARSE_OK);
        CHECK_EQ_DBL(v[0], want[i], 0);
        test_guarded_free(buf, len);
    }
    setlocale(LC_NUMERIC, "C");
}

/* ---- tags --------------------------------------------------------------------------------- */

struct tags_row {
    const char *name;
    const char *list; /* raw list after '#' */
    int ntags;
    const char *tags[4];
};

static const struct tags_row tags_rows[] = {
    {"hash alone", "", 0, {NULL}},
    {"one", "a", 1, {"a"}},
    {"key value", "a:b,c", 2, {"a:b", "c"}},
    {"empty inner", "x,,y", 3, {"x", "", "y"}},
    {"empty leading", ",a", 2, {"", "a"}},
    {"trailing comma adds nothing", "a,", 1, {"a"}},
    {"comma alone", ",", 1, {""}},
    {"blanks kept", " a , b", 2, {" a ", " b"}},
    {"split on comma only", "a|b;c d", 1, {"a|b;c d"}},
};

TEST(tags_table) {
    for (size_t i = 0; i < sizeof tags_rows / sizeof tags_rows[0]; i++) {
        const struct tags_row *r = &tags_rows[i];
        size_t len = strlen(r->list);
        char *buf = test_guarded_copy(r->list, len);
        dds__slice rest = {buf, len}, tag;
        int n = 0;
        while (dds__tags_next(&rest, &tag)) {
            if (n < r->ntags) ROW_SLICE(r, tag, r->tags[n]);
            n++;
        }
        ROW_EQ_INT(r, n, r->ntags);
        CHECK(!dds__tags_next(&rest, &tag)); /* stays exhausted */
        test_guarded_free(buf, len);
    }
    dds__slice absent = {NULL, 0}, tag;
    CHECK(!dds__tags_next(&absent, &tag));
}

/* Tags of a parsed line, end to end. */
TEST(tags_from_metric) {
    static const char in[] = "a:1|c|#x,,y";
    size_t len = sizeof in - 1;
    char *buf = test_guarded_copy(in, len);
    dds__metric m;
    double v[1];
    size_t n;
    CHECK_EQ_INT(dds__parse_metric(buf, len, &m, v, 1, &n), DDS__PARSE_OK);
    dds__slice rest = m.tags, tag;
    const char *want[] = {"x", "", "y"};
    int k = 0;
    while (dds__tags_next(&rest, &tag)) {
        if (k < 3) CHECK_EQ_SLICE(tag, want[k]);
        k++;
    }
    CHECK_EQ_INT(k, 3);
    test_guarded_free(buf, len);
}

/* ---- events ------------------------------------------------------------------------------- */

struct event_row {
    const char *name;
    const char *in;
    int status;
    const char *title, *text; /* raw */
    int64_t ts;
    const char *host, *key, *source, *tags;
    dds__event_priority prio;
    dds__alert_type alert;
};

/* "café ☕": 9 bytes, 6 UTF-16 code units. "naïve": 6 bytes, 5 units.
 * "a😀": 5 bytes, 3 units (the emoji is a surrogate pair). */
#define CAFE "caf\xc3\xa9 \xe2\x98\x95"
#define NAIVE "na\xc3\xafve"
#define GRIN "a\xf0\x9f\x98\x80"

static const struct event_row event_rows[] = {
    {"basic", "_e{5,4}:hello|text", DDS__PARSE_OK, "hello", "text"},
    {"empty text", "_e{5,0}:hello|", DDS__PARSE_OK, "hello", ""},
    {"empty text then field", "_e{5,0}:hello||h:x", DDS__PARSE_OK, "hello", "", .host = "x"},
    {"all fields", "_e{5,4}:hello|text|d:1700000000|h:host1|k:agg1|p:low|s:src1|t:error|#a,b:c",
     DDS__PARSE_OK, "hello", "text", 1700000000, "host1", "agg1", "src1", "a,b:c", DDS__PRIO_LOW,
     DDS__ALERT_ERROR},
    {"fields in another order", "_e{5,4}:hello|text|#t1|t:warning|s:s|p:normal|k:k|h:h|d:42",
     DDS__PARSE_OK, "hello", "text", 42, "h", "k", "s", "t1", DDS__PRIO_NORMAL, DDS__ALERT_WARNING},
    {"alert success", "_e{1,1}:a|b|t:success",
     DDS__PARSE_OK, "a", "b", .alert = DDS__ALERT_SUCCESS},
    {"alert info", "_e{1,1}:a|b|t:error|t:info", DDS__PARSE_OK, "a", "b", .alert = DDS__ALERT_INFO},
    {"duplicates later wins", "_e{1,1}:a|b|p:low|p:normal|t:error|t:success|h:a|h:b|d:5|d:6|#x|#y",
     DDS__PARSE_OK, "a", "b", 6, "b", .tags = "y", .prio = DDS__PRIO_NORMAL,
     .alert = DDS__ALERT_SUCCESS},
    {"bad fields ignored", "_e{1,1}:a|b|d:abc|p:urgent|t:fatal|x:y|zz||:|d:",
     DDS__PARSE_OK, "a", "b"},
    {"bad field keeps earlier good", "_e{1,1}:a|b|p:low|p:LOW|t:error|t:Error|d:7|d:0|d:-1",
     DDS__PARSE_OK, "a", "b", 7, .prio = DDS__PRIO_LOW, .alert = DDS__ALERT_ERROR},
    {"d overflow ignored", "_e{1,1}:a|b|d:99999999999999999999", DDS__PARSE_OK, "a", "b"},
    {"hash alone", "_e{1,1}:a|b|#", DDS__PARSE_OK, "a", "b", .tags = ""},
    {"escaped newline kept raw", "_e{12,10}:line1\\nline2|text\\nmore", DDS__PARSE_OK,
     "line1\\nline2", "text\\nmore"},
    {"text holds a bar", "_e{5,3}:hello|a|b", DDS__PARSE_OK, "hello", "a|b"},
    {"title holds a bar", "_e{3,1}:a|b|c", DDS__PARSE_OK, "a|b", "c"},
    {"non-ASCII with byte lengths", "_e{9,6}:" CAFE "|" NAIVE, DDS__PARSE_OK, CAFE, NAIVE},
    {"hot-shots UTF-16 lengths", "_e{6,5}:" CAFE "|" NAIVE, DDS__PARSE_OK, CAFE, NAIVE},
    {"hot-shots UTF-16 with fields", "_e{6,5}:" CAFE "|" NAIVE "|p:low|#t", DDS__PARSE_OK, CAFE,
     NAIVE, .tags = "t", .prio = DDS__PRIO_LOW},
    {"hot-shots only text non-ASCII", "_e{5,5}:hello|" NAIVE "|h:x", DDS__PARSE_OK, "hello", NAIVE,
     .host = "x"},
    {"hot-shots surrogate pair", "_e{3,1}:" GRIN "|b", DDS__PARSE_OK, GRIN, "b"},
    {"UTF-16 count splits a surrogate pair", "_e{2,1}:" GRIN "|b", DDS__PARSE_ERR_EVENT},
    {"UTF-16 lengths still too long", "_e{6,6}:" CAFE "|" NAIVE, DDS__PARSE_ERR_EVENT},
    /* rejected */
    {"empty title", "_e{0,4}:|text", DDS__PARSE_ERR_EVENT},
    {"body shorter than lengths", "_e{5,100}:hello|short", DDS__PARSE_ERR_EVENT},
    {"title length overflows uint64", "_e{99999999999999999999,1}:a|b", DDS__PARSE_ERR_EVENT},
    {"text length overflows uint64", "_e{1,99999999999999999999}:a|b", DDS__PARSE_ERR_EVENT},
    {"title length uint64 max", "_e{18446744073709551615,1}:a|b", DDS__PARSE_ERR_EVENT},
    {"text length uint64 max", "_e{1,18446744073709551615}:a|b", DDS__PARSE_ERR_EVENT},
    {"both lengths uint64 max", "_e{18446744073709551615,18446744073709551615}:a|b",
     DDS__PARSE_ERR_EVENT},
    /* 2^64-1 + 1 + 3 wraps to 3, the body length: unchecked arithmetic would index body[2^64-1]. */
    {"length sum wraps to the body length", "_e{18446744073709551615,3}:a|b", DDS__PARSE_ERR_EVENT},
    {"title too long", "_e{6,4}:hello|text", DDS__PARSE_ERR_EVENT},
    {"title too short", "_e{4,4}:hello|text", DDS__PARSE_ERR_EVENT},
    {"text too short", "_e{5,3}:hello|textX", DDS__PARSE_ERR_EVENT},
    {"no separator after title", "_e{5,0}:hello", DDS__PARSE_ERR_EVENT},
    {"no closing brace", "_e{5,4:hello|text", DDS__PARSE_ERR_EVENT},
    {"no colon after brace", "_e{5,4}hello|text", DDS__PARSE_ERR_EVENT},
    {"length not a number", "_e{a,4}:hello|text", DDS__PARSE_ERR_EVENT},
    {"empty title length", "_e{,4}:hello|text", DDS__PARSE_ERR_EVENT},
    {"empty text length", "_e{5,}:hello|text", DDS__PARSE_ERR_EVENT},
    {"negative length", "_e{-1,4}:hello|text", DDS__PARSE_ERR_EVENT},
    {"signed length", "_e{+5,4}:hello|text", DDS__PARSE_ERR_EVENT},
    {"blank in length", "_e{ 5,4}:hello|text", DDS__PARSE_ERR_EVENT},
    {"one length", "_e{5}:hello", DDS__PARSE_ERR_EVENT},
    {"header only", "_e{", DDS__PARSE_ERR_EVENT},
    {"header without body", "_e{5,4}:", DDS__PARSE_ERR_EVENT},
    {"not an event", "_e(5,4):hello|text", DDS__PARSE_ERR_EVENT},
};

TEST(event_table) {
    for (size_t i = 0; i < sizeof event_rows / sizeof event_rows[0]; i++) {
        const struct event_row *r = &event_rows[i];
        size_t len = strlen(r->in);
        char *buf = test_guarded_copy(r->in, len);
        dds__event e;
        int st = dds__parse_event(buf, len, &e);
        ROW_EQ_INT(r, st, r->status);
        if (st == DDS__PARSE_OK && r->status == DDS__PARSE_OK) {
            ROW_SLICE(r, e.title, r->title);
            ROW_SLICE(r, e.text, r->text);
            ROW_EQ_INT(r, e.timestamp, r->ts);
            ROW_SLICE(r, e.hostname, r->host);
            ROW_SLICE(r, e.aggregation_key, r->key);
            ROW_SLICE(r, e.source_type_name, r->source);
            ROW_SLICE(r, e.tags, r->tags);
            ROW_EQ_INT(r, e.priority, r->prio);
            ROW_EQ_INT(r, e.alert_type, r->alert);
        }
        test_guarded_free(buf, len);
    }
}

/* A literal backslash-n becomes a newline once the caller unescapes the raw title and text. */
TEST(event_unescaped_newlines) {
    static const char in[] = "_e{12,10}:line1\\nline2|text\\nmore";
    size_t len = sizeof in - 1;
    char *buf = test_guarded_copy(in, len);
    dds__event e;
    CHECK_EQ_INT(dds__parse_event(buf, len, &e), DDS__PARSE_OK);
    char title[32], text[32];
    size_t tl = dds__unescape_newlines(title, e.title.ptr, e.title.len);
    size_t xl = dds__unescape_newlines(text, e.text.ptr, e.text.len);
    CHECK_EQ_SLICE(dds__slice_make(title, tl), "line1\nline2");
    CHECK_EQ_SLICE(dds__slice_make(text, xl), "text\nmore");
    test_guarded_free(buf, len);
}

struct unescape_row {
    const char *name;
    const char *in, *out;
};

static const struct unescape_row unescape_rows[] = {
    {"empty", "", ""},
    {"nothing to do", "abc", "abc"},
    {"one", "a\\nb", "a\nb"},
    {"only", "\\n", "\n"},
    {"two in a row", "\\n\\n", "\n\n"},
    {"lone backslash at end", "a\\", "a\\"},
    {"backslash other", "a\\tb", "a\\tb"},
    {"double backslash then n", "a\\\\nb", "a\\\nb"},
    {"real newline kept", "a\nb", "a\nb"},
};

TEST(unescape_table) {
    for (size_t i = 0; i < sizeof unescape_rows / sizeof unescape_rows[0]; i++) {
        const struct unescape_row *r = &unescape_rows[i];
        size_t len = strlen(r->in);
        char *buf = test_guarded_copy(r->in, len);
        char out[32];
        size_t n = dds__unescape_newlines(out, buf, len);
        ROW_SLICE(r, dds__slice_make(out, n), r->out);
        /* In place: dst == src. */
        n = dds__unescape_newlines(buf, buf, len);
        ROW_SLICE(r, dds__slice_make(buf, n), r->out);
        test_guarded_free(buf, len);
    }
}

/* ---- service checks ----------------------------------------------------------------------- */

struct sc_row {
    const char *name;
    const char *in;
    int status;
    const char *sc_name;
    int sc_status;
    int64_t ts;
    const char *host, *tags, *msg;
};

static const struct sc_row sc_rows[] = {
    {"basic", "_sc|name|0", DDS__PARSE_OK, "name", 0},
    {"all fields", "_sc|svc.up|2|d:1700000000|h:host1|#a,b:c|m:it broke",
     DDS__PARSE_OK, "svc.up", 2,
     1700000000, "host1", "a,b:c", "it broke"},
    {"message ends at bar", "_sc|n|1|m:hello|h:x", DDS__PARSE_OK, "n", 1, 0, "x", NULL, "hello"},
    {"message with colon", "_sc|n|1|m:a:b", DDS__PARSE_OK, "n", 1, .msg = "a:b"},
    {"empty message", "_sc|n|1|m:", DDS__PARSE_OK, "n", 1, .msg = ""},
    {"status 3", "_sc|n|3", DDS__PARSE_OK, "n", 3},
    {"trailing bar", "_sc|n|3|", DDS__PARSE_OK, "n", 3},
    {"bad d ignored", "_sc|n|1|d:abc", DDS__PARSE_OK, "n", 1},
    {"d 0 ignored", "_sc|n|1|d:0", DDS__PARSE_OK, "n", 1},
    {"bad d keeps earlier good", "_sc|n|1|d:5|d:x", DDS__PARSE_OK, "n", 1, 5},
    {"unknown fields ignored", "_sc|n|0|x:1|zz||#t|c:abc", DDS__PARSE_OK, "n", 0, .tags = "t"},
    {"duplicates later wins", "_sc|n|0|h:a|h:b|m:1|m:2|#x|#y|d:1|d:2",
     DDS__PARSE_OK, "n", 0, 2, "b",
     "y", "2"},
    {"hash alone", "_sc|n|0|#", DDS__PARSE_OK, "n", 0, .tags = ""},
    {"name with spaces and colons", "_sc|a b:c|0", DDS__PARSE_OK, "a b:c", 0},
    {"empty name", "_sc||0", DDS__PARSE_ERR_SERVICE_CHECK},
    {"status 4", "_sc|n|4", DDS__PARSE_ERR_SERVICE_CHECK},
    {"empty status", "_sc|n|", DDS__PARSE_ERR_SERVICE_CHECK},
    {"empty status then field", "_sc|n||h:x", DDS__PARSE_ERR_SERVICE_CHECK},
    {"no status", "_sc|n", DDS__PARSE_ERR_SERVICE_CHECK},
    {"status 00", "_sc|n|00", DDS__PARSE_ERR_SERVICE_CHECK},
    {"status -1", "_sc|n|-1", DDS__PARSE_ERR_SERVICE_CHECK},
    {"status letter", "_sc|n|a", DDS__PARSE_ERR_SERVICE_CHECK},
    {"status with suffix", "_sc|n|0x", DDS__PARSE_ERR_SERVICE_CHECK},
    {"status with blank", "_sc|n| 0", DDS__PARSE_ERR_SERVICE_CHECK},
    {"prefix only", "_sc|", DDS__PARSE_ERR_SERVICE_CHECK},
    {"not a service check", "_sc", DDS__PARSE_ERR_SERVICE_CHECK},
};

TEST(service_check_table) {
    for (size_t i = 0; i < sizeof sc_rows / sizeof sc_rows[0]; i++) {
        const struct sc_row *r = &sc_rows[i];
        size_t len = strlen(r->in);
        char *buf = test_guarded_copy(r->in, len);
        dds__service_check sc;
        int st = dds__parse_service_check(buf, len, &sc);
        ROW_EQ_INT(r, st, r->status);
        if (st == DDS__PARSE_OK && r->status == DDS__PARSE_OK) {
            ROW_SLICE(r, sc.name, r->sc_name);
            ROW_EQ_INT(r, sc.status, r->sc_status);
            ROW_EQ_INT(r, sc.timestamp, r->ts);
            ROW_SLICE(r, sc.hostname, r->host);
            ROW_SLICE(r, sc.tags, r->tags);
            ROW_SLICE(r, sc.message, r->msg);
        }
        test_guarded_free(buf, len);
    }
}

/* ---- packets and line kinds --------------------------------------------------------------- */

struct lines_row {
    const char *name;
    const char *in;
    int nlines;
    const char *lines[4];
};

static const struct lines_row lines_rows[] = {
    {"empty packet", "", 0, {NULL}},
    {"one unterminated", "a:1|c", 1, {"a:1|c"}},
    {"one terminated", "a:1|c\n", 1, {"a:1|c"}},
    {"crlf, empty line, unterminated last", "a:1|c\r\nb:2|c\n\nc:3|c",
     3, {"a:1|c", "b:2|c", "c:3|c"}},
    {"only newlines", "\n\n\n", 0, {NULL}},
    {"only crlf", "\r\n\r\n", 0, {NULL}},
    {"lone cr", "\r", 0, {NULL}},
    {"one cr dropped, not two", "a\r\r\nb", 2, {"a\r", "b"}},
    {"unterminated last with cr", "a\nb\r", 2, {"a", "b"}},
    {"cr inside a line kept", "a\rb\n", 1, {"a\rb"}},
    {"leading empty lines", "\n\r\n\na", 1, {"a"}},
    {"trailing empty lines", "a\n\n\r\n", 1, {"a"}},
};

TEST(packet_lines_table) {
    for (size_t i = 0; i < sizeof lines_rows / sizeof lines_rows[0]; i++) {
        const struct lines_row *r = &lines_rows[i];
        size_t len = strlen(r->in);
        char *buf = test_guarded_copy(r->in, len);
        const char *cur = buf, *end = buf + len;
        dds__slice line;
        int n = 0;
        while (dds__packet_next_line(&cur, end, &line)) {
            ROW_CHECK(r, line.ptr >= buf && line.ptr + line.len <= end);
            if (n < r->nlines) ROW_SLICE(r, line, r->lines[n]);
            n++;
        }
        ROW_EQ_INT(r, n, r->nlines);
        ROW_CHECK(r, cur == end);
        ROW_CHECK(r, !dds__packet_next_line(&cur, end, &line)); /* stays exhausted */
        test_guarded_free(buf, len);
    }
}

/* A NUL byte is data, not a separator (strlen-based rows above cannot carry one). */
TEST(packet_lines_with_nul) {
    static const char in[] = "a\0b\nc";
    size_t len = sizeof in - 1;
    char *buf = test_guarded_copy(in, len);
    const char *cur = buf;
    dds__slice line;
    CHECK(dds__packet_next_line(&cur, buf + len, &line));
    CHECK(line.ptr == buf && line.len == 3);
    CHECK(dds__packet_next_line(&cur, buf + len, &line));
    CHECK_EQ_SLICE(line, "c");
    CHECK(!dds__packet_next_line(&cur, buf + len, &line));
    test_guarded_free(buf, len);
}

struct kind_row {
    const char *name;
    const char *in;
    dds__line_kind kind;
};

static const struct kind_row kind_rows[] = {
    {"metric", "a:1|c", DDS__LINE_METRIC},
    {"event", "_e{1,1}:a|b", DDS__LINE_EVENT},
    {"event prefix only", "_e{", DDS__LINE_EVENT},
    {"service check", "_sc|n|0", DDS__LINE_SERVICE_CHECK},
    {"service check prefix only", "_sc|", DDS__LINE_SERVICE_CHECK},
    {"short _e", "_e", DDS__LINE_METRIC},
    {"short _sc", "_sc", DDS__LINE_METRIC},
    {"_e without brace", "_e:1|c", DDS__LINE_METRIC},
    {"_sc without bar", "_sc:1|c", DDS__LINE_METRIC},
    {"case-sensitive", "_E{1,1}:a|b", DDS__LINE_METRIC},
    {"empty", "", DDS__LINE_METRIC},
};

TEST(line_kind_table) {
    for (size_t i = 0; i < sizeof kind_rows / sizeof kind_rows[0]; i++) {
        const struct kind_row *r = &kind_rows[i];
        size_t len = strlen(r->in);
        char *buf = test_guarded_copy(r->in, len);
        ROW_EQ_INT(r, dds__line_kind_of(dds__slice_make(buf, len)), r->kind);
        test_guarded_free(buf, len);
    }
}

/* ---- every prefix of every line: no over-read, whatever the cut --------------------------- */

static void parse_every_prefix(const char *in, size_t len) {
    for (size_t k = 0; k <= len; k++) {
        char *buf = test_guarded_copy(in, k);
        int st = parse_any(dds__slice_make(buf, k));
        CHECK(st >= DDS__PARSE_OK && st <= DDS__PARSE_ERR_TOO_MANY_VALUES);
        test_guarded_free(buf, k);
    }
}

TEST(every_prefix_stays_in_bounds) {
    for (size_t i = 0; i < sizeof metric_rows / sizeof metric_rows[0]; i++)
        parse_every_prefix(metric_rows[i].in, strlen(metric_rows[i].in));
    for (size_t i = 0; i < sizeof event_rows / sizeof event_rows[0]; i++)
        parse_every_prefix(event_rows[i].in, strlen(event_rows[i].in));
    for (size_t i = 0; i < sizeof sc_rows / sizeof sc_rows[0]; i++)
        parse_every_prefix(sc_rows[i].in, strlen(sc_rows[i].in));
}

/* Random lines over the protocol's own alphabet: no crash, no sanitizer report, no slice outside
 * the line, whatever the bytes. */
TEST(random_lines_stay_in_bounds) {
    static const char alphabet[] = "_e{}sc|:#@T,.0123456789-+eEinfa\\n\r\xc3\xa9\xf0";
    uint64_t s = 0x2545F4914F6CDD1Du;
    char fill[96];
    memset(fill, 0, sizeof fill);
    char *buf = test_guarded_copy(fill, sizeof fill);
    char *end = buf + sizeof fill;
    for (int iter = 0; iter < 100000; iter++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t len = (size_t)(s % sizeof fill);
        char *p = end - len;
        /* Half the lines start like an event or a service check, so their parsers get exercised. */
        static const char *starts[] = {"", "_e{", "_sc|", "a:", "_e{3,", "_e{1,1}:"};
        size_t pre = strlen(starts[(s >> 8) % 6]);
        if (pre > len) pre = len;
        memcpy(p, starts[(s >> 8) % 6], pre);
        for (size_t k = pre; k < len; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            p[k] = alphabet[s % (sizeof alphabet - 1)];
        }
        dds__slice line = {p, len};
        double vals[64];
        size_t n;
        dds__metric m;
        dds__event e;
        dds__service_check sc;
        int st;
        switch (dds__line_kind_of(line)) {
        case DDS__LINE_EVENT:
            st = dds__parse_event(p, len, &e);
            if (st == DDS__PARSE_OK)
                CHECK(e.title.ptr >= p && e.text.ptr + e.text.len <= end);
            break;
        case DDS__LINE_SERVICE_CHECK:
            st = dds__parse_service_check(p, len, &sc);
            if (st == DDS__PARSE_OK) CHECK(sc.name.ptr >= p && sc.name.ptr + sc.name.len <= end);
            break;
        default:
            st = dds__parse_metric(p, len, &m, vals, 64, &n);
            if (st == DDS__PARSE_OK) {
                CHECK(m.name.ptr == p && m.raw_value.ptr + m.raw_value.len <= end);
                CHECK(m.tags.ptr == NULL || (m.tags.ptr >= p && m.tags.ptr + m.tags.len <= end));
            }
            break;
        }
        CHECK(st >= DDS__PARSE_OK && st <= DDS__PARSE_ERR_TOO_MANY_VALUES);
    }
    test_guarded_free(buf, sizeof fill);
}

/* ---- names -------------------------------------------------------------------------------- */

TEST(status_text_and_type_names) {
    CHECK_EQ_STR(dds__parse_status_text(DDS__PARSE_OK), "ok");
    for (int s = DDS__PARSE_ERR_NAME; s <= DDS__PARSE_ERR_TOO_MANY_VALUES; s++) {
        const char *t = dds__parse_status_text(s);
        CHECK(t != NULL && t[0] != '\0' && strcmp(t, "unknown parse status") != 0);
        for (int o = DDS__PARSE_OK; o < s; o++) CHECK(strcmp(t, dds__parse_status_text(o)) != 0);
    }
    CHECK_EQ_STR(dds__parse_status_text(-1), "unknown parse status");
    CHECK_EQ_STR(dds__parse_status_text(1000), "unknown parse status");

    /* dds__mtype_name is the exact inverse of the wire letters. */
    static const char *letters[] = {"c", "g", "h", "ms", "d", "s"};
    for (int t = DDS__MT_COUNT; t <= DDS__MT_SET; t++) {
        CHECK_EQ_STR(dds__mtype_name((dds__mtype)t), letters[t]);
        char line[16];
        int ll = snprintf(line, sizeof line, "a:1|%s", letters[t]);
        char *buf = test_guarded_copy(line, (size_t)ll);
        dds__metric m;
        double v[1];
        size_t n;
        CHECK_EQ_INT(dds__parse_metric(buf, (size_t)ll, &m, v, 1, &n), DDS__PARSE_OK);
        CHECK_EQ_INT(m.type, t);
        test_guarded_free(buf, (size_t)ll);
    }
    CHECK_EQ_STR(dds__mtype_name((dds__mtype)42), "?");
}

int main(void) {
    RUN(edge_cases_table);
    RUN(metric_table);
    RUN(metric_embedded_nul);
    RUN(metric_value_capacity);
    RUN(metric_long_numbers);
    RUN(metric_fast_path_matches_strtod);
    RUN(tags_table);
    RUN(tags_from_metric);
    RUN(event_table);
    RUN(event_unescaped_newlines);
    RUN(unescape_table);
    RUN(service_check_table);
    RUN(packet_lines_table);
    RUN(packet_lines_with_nul);
    RUN(line_kind_table);
    RUN(every_prefix_stays_in_bounds);
    RUN(random_lines_stay_in_bounds);
    RUN(status_text_and_type_names);
    RUN(short_values_match_strtod);
    RUN(metric_ignores_locale); /* last: it switches LC_NUMERIC */
    return TEST_REPORT();
}
