/* test_replace_rules.c - DD_APM_REPLACE_TAGS: the JSON rules (valid, invalid, hostile), the RE2
 * to POSIX translation and what it refuses, and Go's ReplaceAllString semantics ($1, ${1}, $$,
 * empty matches, NUL bytes), with the Rust replacer's test vectors. */
#include "common/replace_rules.h"
#include "test.h"

static dds__replace_rules *parse_ok(const char *json) {
    dds__replace_rules *r = NULL;
    char why[200] = "";
    int rc = dds__replace_rules_parse(json, &r, why, sizeof(why));
    CHECK_MSG(rc == 0, "parse(%s): %s", json, why);
    return r;
}

static void parse_fails(const char *json, const char *why_has) {
    dds__replace_rules *r = (dds__replace_rules *)1;
    char why[200] = "";
    CHECK_MSG(dds__replace_rules_parse(json, &r, why, sizeof(why)) == -1, "parse(%s) should fail", json);
    CHECK(r == NULL);
    CHECK_MSG(strstr(why, why_has) != NULL, "parse(%s): why '%s' lacks '%s'", json, why, why_has);
}

static void apply_is(const dds__replace_rule *rule, const char *in, const char *want) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    size_t n = strlen(in);
    char *g = test_guarded_copy(in, n);
    dds__slice out;
    CHECK(dds__replace_apply(rule, dds__slice_make(g, n), &a, NULL, &out));
    CHECK_MSG(out.len == strlen(want) && memcmp(out.ptr, want, out.len) == 0, "apply(%s): want '%s', got '%.*s'", in,
              want, (int)out.len, out.ptr);
    /* the same through a reused scratch buffer */
    dds__buf scratch;
    dds__buf_init(&scratch);
    CHECK(dds__replace_apply(rule, dds__slice_make(g, n), &a, &scratch, &out));
    CHECK(dds__replace_apply(rule, dds__slice_make(g, n), &a, &scratch, &out));
    CHECK_MSG(out.len == strlen(want) && memcmp(out.ptr, want, out.len) == 0, "apply(%s) with scratch: got '%.*s'", in,
              (int)out.len, out.ptr);
    dds__buf_free(&scratch);
    test_guarded_free(g, n);
    dds__arena_free(&a);
}

TEST(rust_replacer_vectors) {
    dds__replace_rules *r = parse_ok("[{\"name\": \"http.url\", \"pattern\": \"(token/)([^/]*)\", \"repl\": \"${1}?\"},"
                                     " {\"name\": \"http.url\", \"pattern\": \"guid\", \"repl\": \"[REDACTED]\"},"
                                     " {\"name\": \"custom.tag\", \"pattern\": \"(/foo/bar/).*\", \"repl\": \"${1}extra\"},"
                                     " {\"name\": \"*\", \"pattern\": \"this\", \"repl\": \"that\"},"
                                     " {\"name\": \"resource.name\", \"pattern\": \"prod\", \"repl\": \"stage\"}]");
    if (!r) return;
    CHECK_EQ_INT(r->n, 5);
    CHECK_EQ_INT(r->rule[0].target, DDS__REPLACE_TAG);
    CHECK_EQ_SLICE(r->rule[0].name, "http.url");
    CHECK_EQ_INT(r->rule[3].target, DDS__REPLACE_ALL);
    CHECK_EQ_INT(r->rule[4].target, DDS__REPLACE_RESOURCE);
    apply_is(&r->rule[0], "some/guid/token/abcdef/abc", "some/guid/token/?/abc");
    apply_is(&r->rule[1], "some/guid/token/?/abc", "some/[REDACTED]/token/?/abc");
    apply_is(&r->rule[2], "/foo/bar/foo", "/foo/bar/extra");
    apply_is(&r->rule[3], "this is prod", "that is prod");
    apply_is(&r->rule[4], "that is prod", "that is stage");
    dds__replace_rules_free(r);
}

TEST(go_replace_all_semantics) {
    dds__replace_rules *r = parse_ok(
        "[{\"name\":\"a\",\"pattern\":\"x*\",\"repl\":\"-\"},"             /* empty matches */
        " {\"name\":\"a\",\"pattern\":\"(a)(b)?\",\"repl\":\"[$1|$2|$$|$3|${1}x|$1x|$]\"},"
        " {\"name\":\"a\",\"pattern\":\"^s\",\"repl\":\"S\"},"               /* ^ only at the start */
        " {\"name\":\"a\",\"pattern\":\"\\\\d+\",\"repl\":\"?\"},"           /* \\d translated */
        " {\"name\":\"a\",\"pattern\":\"[\\\\w.]+@[\\\\w.]+\",\"repl\":\"<email>\"},"
        " {\"name\":\"error.stack\",\"pattern\":\"\\\\s+\",\"repl\":\" \"},"
        " {\"name\":\"a\",\"pattern\":\"secret\"}]");                        /* no repl: removed */
    if (!r) return;
    apply_is(&r->rule[0], "abc", "-a-b-c-");
    apply_is(&r->rule[0], "", "-");
    apply_is(&r->rule[0], "xxa", "-a-");
    apply_is(&r->rule[1], "ab a", "[a|b|$||ax||$] [a||$||ax||$]");
    apply_is(&r->rule[2], "sss", "Sss");
    apply_is(&r->rule[3], "user 1234 order 56", "user ? order ?");
    apply_is(&r->rule[3], "no digits", "no digits");
    apply_is(&r->rule[4], "mail bob.smith@example.com now", "mail <email> now");
    apply_is(&r->rule[5], "a \t\n b", "a b");
    apply_is(&r->rule[6], "my secret and secret", "my  and ");
    /* NUL bytes split the value: each part is matched, the NUL kept. */
    {
        dds__arena a;
        dds__arena_init(&a, 0, 0);
        static const char v[] = "12\0x34";
        char *g = test_guarded_copy(v, 6);
        dds__slice out;
        CHECK(dds__replace_apply(&r->rule[3], dds__slice_make(g, 6), &a, NULL, &out));
        CHECK(out.len == 4 && memcmp(out.ptr, "?\0x?", 4) == 0);
        test_guarded_free(g, 6);
        dds__arena_free(&a);
    }
    dds__replace_rules_free(r);
}

TEST(unmatched_value_is_the_same_slice) {
    dds__replace_rules *r = parse_ok("[{\"name\":\"*\",\"pattern\":\"zzz\",\"repl\":\"?\"}]");
    if (!r) return;
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__slice in = DDS__SLICE_LIT("nothing to see"), out;
    dds__buf scratch;
    dds__buf_init(&scratch);
    CHECK(dds__replace_apply(&r->rule[0], in, &a, &scratch, &out));
    CHECK(out.ptr == in.ptr && out.len == in.len);
    /* and it took no arena memory */
    size_t used = 0;
    for (const dds__arena_block *b = a.head; b; b = b->next) used += b->used;
    CHECK_EQ_INT(used, 0);
    dds__buf_free(&scratch);
    dds__arena_free(&a);
    dds__replace_rules_free(r);
}

TEST(json_shapes) {
    dds__replace_rules *r = NULL;
    char why[200];
    CHECK_EQ_INT(dds__replace_rules_parse(NULL, &r, why, sizeof(why)), 0);
    CHECK(r == NULL);
    CHECK_EQ_INT(dds__replace_rules_parse("", &r, why, sizeof(why)), 0);
    CHECK_EQ_INT(dds__replace_rules_parse(" [ ] ", &r, why, sizeof(why)), 0);
    CHECK(r == NULL);
    /* Unknown fields are ignored and keys match case-insensitively, as encoding/json does;
     * escapes are decoded. */
    r = parse_ok("[{\"Name\":\"k\",\"extra\":{\"a\":[1,2.5e3,true,null,\"s\"]},\"PATTERN\":\"\\u0061\\/b\","
                 "\"repl\":\"\\\"\\u00e9\\ud83d\\ude00\"}]");
    if (r) {
        CHECK_EQ_SLICE(r->rule[0].name, "k");
        CHECK_EQ_STR(r->rule[0].repl, "\"\xc3\xa9\xf0\x9f\x98\x80");
        apply_is(&r->rule[0], "xa/by", "x\"\xc3\xa9\xf0\x9f\x98\x80y");
        dds__replace_rules_free(r);
    }
    parse_fails("{\"name\":\"a\"}", "JSON list");
    parse_fails("[1]", "must be a JSON object");
    parse_fails("[{\"name\":\"a\"}]", "needs a non-empty \"name\" and a \"pattern\"");
    parse_fails("[{\"pattern\":\"a\"}]", "needs a non-empty");
    parse_fails("[{\"name\":\"a\",\"pattern\":5}]", "must be strings");
    parse_fails("[{\"name\":\"a\",\"pattern\":\"a\"}", "JSON list");
    parse_fails("[{\"name\":\"a\",\"pattern\":\"a\"}] x", "unexpected text");
    parse_fails("[{\"name\":\"a\",\"pattern\":\"a\\q\"}]", "invalid JSON string");
    parse_fails("[{\"name\":\"a\",\"pattern\":\"a\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]",
                "nested too deeply");
    /* Too many rules. */
    char big[64 * 40 + 16];
    size_t n = 0;
    big[n++] = '[';
    for (int i = 0; i < 65; i++) n += (size_t)snprintf(big + n, sizeof(big) - n, "%s{\"name\":\"a\",\"pattern\":\"a\"}", i ? "," : "");
    big[n++] = ']';
    big[n] = '\0';
    parse_fails(big, "at most 64 rules");
}

TEST(patterns_posix_refuses) {
    parse_fails("[{\"name\":\"a\",\"pattern\":\"(?i)secret\"}]", "(?...) groups and flags");
    parse_fails("[{\"name\":\"a\",\"pattern\":\"a.*?b\"}]", "lazy quantifiers");
    parse_fails("[{\"name\":\"a\",\"pattern\":\"\\\\p{L}\"}]", "\\p is RE2 syntax");
    parse_fails("[{\"name\":\"a\",\"pattern\":\"[\\\\D]\"}]", "inside [...]");
    parse_fails("[{\"name\":\"a\",\"pattern\":\"(unclosed\"}]", "not a valid POSIX extended regex");
    /* Bracket expressions: \d inside a class, a leading ']' and POSIX classes pass. */
    dds__replace_rules *r = parse_ok("[{\"name\":\"a\",\"pattern\":\"[\\\\d_]+\",\"repl\":\"#\"},"
                                     " {\"name\":\"a\",\"pattern\":\"[]x]\",\"repl\":\"#\"},"
                                     " {\"name\":\"a\",\"pattern\":\"[[:upper:]]\",\"repl\":\"#\"}]");
    if (!r) return;
    apply_is(&r->rule[0], "a1_2b", "a#b");
    apply_is(&r->rule[1], "a]x", "a##");
    apply_is(&r->rule[2], "aBc", "a#c");
    dds__replace_rules_free(r);
}

/* Every prefix of a valid document fails cleanly (or parses), never over-reads. */
TEST(json_prefixes) {
    const char *doc = "[{\"name\": \"*\", \"pattern\": \"(a|b)\\\\d\", \"repl\": \"\\u00e9$1\", \"x\": [1, {\"y\": null}]}]";
    size_t len = strlen(doc);
    for (size_t cut = 0; cut < len; cut++) {
        char *p = malloc(cut + 1);
        memcpy(p, doc, cut);
        p[cut] = '\0';
        dds__replace_rules *r = NULL;
        char why[200];
        int rc = dds__replace_rules_parse(p, &r, why, sizeof(why));
        CHECK(rc == -1 || (rc == 0 && r == NULL));
        dds__replace_rules_free(r);
        free(p);
    }
}

int main(void) {
    RUN(rust_replacer_vectors);
    RUN(go_replace_all_semantics);
    RUN(unmatched_value_is_the_same_slice);
    RUN(json_shapes);
    RUN(patterns_posix_refuses);
    RUN(json_prefixes);
    return TEST_REPORT();
}
