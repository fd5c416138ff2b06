/* test_json.c - the logs body validator (logs/json.c): one table row per rule of PARITY.md 3 and
 * per JSON edge case, each input copied to end exactly at a guard page so an over-read crashes
 * even without a sanitizer; then the entries handed out, deep nesting, and truncations of a
 * valid body at every byte. */
#include "logs/json.h"

#include "test.h"

typedef struct row {
    const char *name;
    const char *in;
    long want;             /* entries, or -1 */
    const char *why_has;   /* substring of the reason when want == -1 */
} row;

static const row ROWS[] = {
    {"empty array", "[]", 0, NULL},
    {"empty array with spaces", " \t\r\n[ \n ] \n", 0, NULL},
    {"one entry", "[{\"message\":\"m\",\"timestamp\":1}]", 1, NULL},
    {"two entries, other keys kept", "[{\"message\":\"a\",\"timestamp\":1,\"service\":\"s\",\"ddtags\":\"a:b\"},"
                                     "{\"timestamp\":-2,\"message\":\"\",\"lambda\":{\"arn\":\"x\",\"n\":[1,2.5,-3e-2,true,false,null]}}]",
     2, NULL},
    {"escapes and unicode", "[{\"message\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00 caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80\",\"timestamp\":0}]", 1, NULL},
    {"keys written with escapes", "[{\"mess\\u0061ge\":\"m\",\"t\\u0069mestamp\":1}]", 1, NULL},
    {"an escaped key is the same key", "[{\"message\":\"m\",\"m\\u0065ssage\":\"n\",\"timestamp\":1}]", -1, "duplicate message"},
    {"an escaped lookalike is another key", "[{\"message\\n\":\"m\",\"timestamp\":1}]", -1, "message is required"},
    {"int64 max", "[{\"message\":\"m\",\"timestamp\":9223372036854775807}]", 1, NULL},
    {"int64 min", "[{\"message\":\"m\",\"timestamp\":-9223372036854775808}]", 1, NULL},
    {"empty body", "", -1, "array"},
    {"object, not array", "{\"message\":\"m\",\"timestamp\":1}", -1, "array"},
    {"not JSON", "hello", -1, "array"},
    {"entry not an object", "[1]", -1, "entry 1: must be an object"},
    {"entry a string", "[{\"message\":\"m\",\"timestamp\":1},\"x\"]", -1, "entry 2: must be an object"},
    {"missing message", "[{\"timestamp\":1}]", -1, "entry 1: message is required"},
    {"missing timestamp", "[{\"message\":\"m\"}]", -1, "entry 1: timestamp is required"},
    {"empty object", "[{}]", -1, "message is required"},
    {"message a number", "[{\"message\":5,\"timestamp\":1}]", -1, "message must be a string"},
    {"message null", "[{\"message\":null,\"timestamp\":1}]", -1, "message must be a string"},
    {"timestamp a float", "[{\"message\":\"m\",\"timestamp\":1.5}]", -1, "timestamp must be an integer"},
    {"timestamp exponent", "[{\"message\":\"m\",\"timestamp\":1e3}]", -1, "timestamp must be an integer"},
    {"timestamp a string", "[{\"message\":\"m\",\"timestamp\":\"1\"}]", -1, "timestamp must be an integer"},
    {"timestamp past int64", "[{\"message\":\"m\",\"timestamp\":9223372036854775808}]", -1, "timestamp must be an integer"},
    {"timestamp below int64", "[{\"message\":\"m\",\"timestamp\":-9223372036854775809}]", -1, "timestamp must be an integer"},
    {"duplicate message", "[{\"message\":\"m\",\"message\":\"n\",\"timestamp\":1}]", -1, "duplicate message"},
    {"trailing comma in array", "[{\"message\":\"m\",\"timestamp\":1},]", -1, "entry 2: must be an object"},
    {"trailing comma in object", "[{\"message\":\"m\",\"timestamp\":1,}]", -1, "expected a string key"},
    {"trailing data", "[] x", -1, "trailing data"},
    {"two arrays", "[][]", -1, "trailing data"},
    {"unterminated array", "[{\"message\":\"m\",\"timestamp\":1}", -1, "expected ',' or ']'"},
    {"unterminated string", "[{\"message\":\"m", -1, "unterminated string"},
    {"raw newline in string", "[{\"message\":\"a\nb\",\"timestamp\":1}]", -1, "control character"},
    {"bad escape", "[{\"message\":\"\\x\",\"timestamp\":1}]", -1, "bad escape"},
    {"short unicode escape", "[{\"message\":\"\\u12\",\"timestamp\":1}]", -1, "bad \\u escape"},
    {"lone low surrogate", "[{\"message\":\"\\udc00\",\"timestamp\":1}]", -1, "lone surrogate"},
    {"lone high surrogate", "[{\"message\":\"\\ud800x\",\"timestamp\":1}]", -1, "\\u escape"},
    {"invalid UTF-8", "[{\"message\":\"\xff\",\"timestamp\":1}]", -1, "invalid UTF-8"},
    {"overlong UTF-8", "[{\"message\":\"\xc0\xaf\",\"timestamp\":1}]", -1, "invalid UTF-8"},
    {"UTF-8 surrogate", "[{\"message\":\"\xed\xa0\x80\",\"timestamp\":1}]", -1, "invalid UTF-8"},
    {"truncated UTF-8", "[{\"message\":\"\xe2\x98", -1, "invalid UTF-8"},
    {"leading zero", "[{\"message\":\"m\",\"timestamp\":1,\"x\":01}]", -1, "expected ',' or '}'"},
    {"lone minus", "[{\"message\":\"m\",\"timestamp\":1,\"x\":-}]", -1, "expected a digit"},
    {"bad literal", "[{\"message\":\"m\",\"timestamp\":1,\"x\":tru}]", -1, "expected a value"},
    {"missing colon", "[{\"message\" \"m\",\"timestamp\":1}]", -1, "expected ':'"},
    {"unclosed nested", "[{\"message\":\"m\",\"timestamp\":1,\"x\":[1,{\"a\":2}]", -1, "expected ',' or '}'"},
    {"nested mismatch", "[{\"message\":\"m\",\"timestamp\":1,\"x\":[1}]}]", -1, "expected ',' or ']'"},
    {"only open bracket", "[", -1, "unexpected end at byte 1"},
    {"NUL inside", "[{\"message\":\"m\",\"timestamp\":1}]\0", -1, "trailing data"},
};

TEST(table) {
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(*ROWS); i++) {
        const row *r = &ROWS[i];
        /* The NUL row carries its NUL as a byte of the body. */
        size_t len = strlen(r->in) + (strcmp(r->name, "NUL inside") == 0 ? 1 : 0);
        char *in = test_guarded_copy(r->in, len);
        char why[DDS__LOGS_JSON_WHY_MAX];
        long got = dds__logs_json_entries(in, len, NULL, NULL, why);
        CHECK_MSG(got == r->want, "%s: got %ld, want %ld (%s)", r->name, got, r->want, why);
        if (r->want < 0)
            CHECK_MSG(strstr(why, r->why_has) != NULL, "%s: reason \"%s\" lacks \"%s\"", r->name, why, r->why_has);
        else
            CHECK_MSG(why[0] == '\0', "%s: reason set on success: %s", r->name, why);
        test_guarded_free(in, len);
    }
}

typedef struct seen {
    int n;
    char text[4][128];
} seen;

static void record(void *user, const char *e, size_t len) {
    seen *s = user;
    if (s->n < 4 && len < 128) {
        memcpy(s->text[s->n], e, len);
        s->text[s->n][len] = '\0';
    }
    s->n++;
}

TEST(entries_are_slices_of_the_body_in_order) {
    const char *body = " [ {\"message\":\"a\", \"timestamp\":1} ,\n{ \"timestamp\":2,\"message\":\"b\",\"k\":[{}]}]";
    seen s = {0};
    CHECK_EQ_INT(dds__logs_json_entries(body, strlen(body), record, &s, NULL), 2);
    CHECK_EQ_INT(s.n, 2);
    CHECK_EQ_STR(s.text[0], "{\"message\":\"a\", \"timestamp\":1}");
    CHECK_EQ_STR(s.text[1], "{ \"timestamp\":2,\"message\":\"b\",\"k\":[{}]}");
}

TEST(a_bad_entry_hands_out_nothing) {
    const char *body = "[{\"message\":\"a\",\"timestamp\":1},{\"message\":\"b\"}]";
    seen s = {0};
    char why[DDS__LOGS_JSON_WHY_MAX];
    CHECK_EQ_INT(dds__logs_json_entries(body, strlen(body), record, &s, why), -1);
    CHECK_EQ_INT(s.n, 0);
    CHECK_EQ_STR(why, "entry 2: timestamp is required");
}

/* An entry with `depth` nested arrays inside "x": the array and the entry object take 2 levels. */
static char *nested(size_t depth, size_t *len) {
    const char *head = "[{\"message\":\"m\",\"timestamp\":1,\"x\":";
    size_t n = strlen(head) + 2 * depth + 2;
    char *s = malloc(n + 1);
    size_t o = 0;
    memcpy(s, head, strlen(head));
    o += strlen(head);
    memset(s + o, '[', depth);
    o += depth;
    memset(s + o, ']', depth);
    o += depth;
    s[o++] = '}';
    s[o++] = ']';
    s[o] = '\0';
    *len = o;
    return s;
}

TEST(nesting_is_bounded_without_recursion) {
    size_t len;
    char *ok = nested(DDS__LOGS_JSON_MAX_DEPTH - 2, &len);
    CHECK_EQ_INT(dds__logs_json_entries(ok, len, NULL, NULL, NULL), 1);
    free(ok);
    char why[DDS__LOGS_JSON_WHY_MAX];
    char *deep = nested(DDS__LOGS_JSON_MAX_DEPTH - 1, &len);
    CHECK_EQ_INT(dds__logs_json_entries(deep, len, NULL, NULL, why), -1);
    CHECK(strstr(why, "nested too deeply") != NULL);
    free(deep);
    /* A million open brackets: refused at the bound, in constant stack. */
    size_t huge = 1000000;
    char *h = malloc(huge + 40);
    int o = sprintf(h, "[{\"message\":\"m\",\"timestamp\":1,\"x\":");
    memset(h + o, '[', huge);
    char *g = test_guarded_copy(h, (size_t)o + huge);
    CHECK_EQ_INT(dds__logs_json_entries(g, (size_t)o + huge, NULL, NULL, why), -1);
    CHECK(strstr(why, "nested too deeply") != NULL);
    test_guarded_free(g, (size_t)o + huge);
    free(h);
}

TEST(every_truncation_of_a_valid_body_is_refused_without_over_read) {
    const char *body = "[{\"message\":\"caf\xc3\xa9 \\ud83d\\ude00\",\"timestamp\":-12,\"a\":{\"b\":[1.5e-3,true,null,\"x\"]}},"
                       "{\"message\":\"\",\"timestamp\":0}]";
    size_t full = strlen(body);
    CHECK_EQ_INT(dds__logs_json_entries(body, full, NULL, NULL, NULL), 2);
    for (size_t n = 0; n < full; n++) {
        char *in = test_guarded_copy(body, n);
        char why[DDS__LOGS_JSON_WHY_MAX];
        long got = dds__logs_json_entries(in, n, NULL, NULL, why);
        CHECK_MSG(got == -1, "prefix of %zu bytes accepted", n);
        CHECK_MSG(why[0] != '\0', "prefix of %zu bytes: no reason", n);
        test_guarded_free(in, n);
    }
}

TEST(null_body) {
    char why[DDS__LOGS_JSON_WHY_MAX];
    CHECK_EQ_INT(dds__logs_json_entries(NULL, 0, NULL, NULL, why), -1);
    CHECK_EQ_INT(dds__logs_json_entries(NULL, 5, NULL, NULL, why), -1);
}

int main(void) {
    RUN(table);
    RUN(entries_are_slices_of_the_body_in_order);
    RUN(a_bad_entry_hands_out_nothing);
    RUN(nesting_is_bounded_without_recursion);
    RUN(every_truncation_of_a_valid_body_is_refused_without_over_read);
    RUN(null_body);
    return TEST_REPORT();
}
