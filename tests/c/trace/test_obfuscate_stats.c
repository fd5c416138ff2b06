/* test_obfuscate_stats.c - client stats bodies: the Resource of sql/cassandra/redis/valkey groups
 * rewritten as the spans' are (key order free, dialect from DBType), the replace rules applied,
 * every other byte kept in place, an untouched body returned as is, and malformed or truncated
 * bodies refused without an over-read. */
#include "common/msgpack.h"
#include "test.h"
#include "trace/obfuscate_stats.h"

typedef struct mw { uint8_t b[8192]; size_t n; } mw;
static void mw_raw(mw *w, const void *p, size_t n) { memcpy(w->b + w->n, p, n); w->n += n; }
static void mw_byte(mw *w, uint8_t c) { w->b[w->n++] = c; }
static void mw_str(mw *w, const char *s) {
    size_t n = strlen(s);
    if (n < 32) mw_byte(w, (uint8_t)(0xa0 | n));
    else if (n < 256) { mw_byte(w, 0xd9); mw_byte(w, (uint8_t)n); }
    else { mw_byte(w, 0xda); mw_byte(w, (uint8_t)(n >> 8)); mw_byte(w, (uint8_t)n); }
    mw_raw(w, s, n);
}
static void mw_map(mw *w, unsigned n) { mw_byte(w, (uint8_t)(0x80 | n)); }
static void mw_arr(mw *w, unsigned n) { mw_byte(w, (uint8_t)(0x90 | n)); }

/* A group map: Service, then Resource before or after Type, Hits. */
static void group(mw *w, const char *type, const char *res, const char *dbtype, bool res_first) {
    mw_map(w, dbtype ? 5 : 4);
    mw_str(w, "Service"); mw_str(w, "svc");
    if (res_first) { mw_str(w, "Resource"); mw_str(w, res); }
    mw_str(w, "Type"); mw_str(w, type);
    if (dbtype) { mw_str(w, "DBType"); mw_str(w, dbtype); }
    if (!res_first) { mw_str(w, "Resource"); mw_str(w, res); }
    mw_str(w, "Hits"); mw_byte(w, 0x07);
}

static size_t payload(mw *w, const char *long_sql) {
    w->n = 0;
    mw_map(w, 3);
    mw_str(w, "Hostname"); mw_str(w, "h");
    mw_str(w, "Stats"); mw_arr(w, 1);
    mw_map(w, 3);
    mw_str(w, "Start"); mw_byte(w, 0x01);
    mw_str(w, "Stats"); mw_arr(w, 5);
    group(w, "sql", "SELECT * FROM users WHERE id = 42", NULL, true);
    group(w, "redis", "SET k v\nGET k", NULL, false);
    group(w, "web", "GET /users/42", NULL, true);
    group(w, "sql", "SELECT a #> 'k' FROM t", "postgresql", false);
    group(w, "cassandra", long_sql, NULL, true);
    mw_str(w, "Duration"); mw_byte(w, 0x0a);
    mw_str(w, "Lang"); mw_str(w, "python");
    return w->n;
}

/* The Resource of every group, in order, from a body. */
static int resources(const uint8_t *b, size_t n, char out[][400], int max) {
    dds__mp_reader r;
    dds__mp_reader_init(&r, b, n, NULL);
    int k = 0;
    uint32_t top = dds__mp_read_map(&r);
    for (uint32_t i = 0; i < top; i++) {
        dds__slice key = dds__mp_read_str(&r);
        if (key.len != 5 || memcmp(key.ptr, "Stats", 5)) { dds__mp_skip(&r); continue; }
        uint32_t nb = dds__mp_read_array(&r);
        for (uint32_t bi = 0; bi < nb; bi++) {
            uint32_t nk = dds__mp_read_map(&r);
            for (uint32_t j = 0; j < nk; j++) {
                dds__slice bk = dds__mp_read_str(&r);
                if (bk.len != 5 || memcmp(bk.ptr, "Stats", 5)) { dds__mp_skip(&r); continue; }
                uint32_t ng = dds__mp_read_array(&r);
                for (uint32_t g = 0; g < ng; g++) {
                    uint32_t gk = dds__mp_read_map(&r);
                    for (uint32_t x = 0; x < gk; x++) {
                        dds__slice f = dds__mp_read_str(&r);
                        if (f.len == 8 && !memcmp(f.ptr, "Resource", 8) && k < max) {
                            dds__slice v = dds__mp_read_str(&r);
                            snprintf(out[k++], 400, "%.*s", (int)v.len, v.ptr);
                        } else {
                            dds__mp_skip(&r);
                        }
                    }
                }
            }
        }
    }
    return dds__mp_ok(&r) && dds__mp_left(&r) == 0 ? k : -1;
}

TEST(groups_get_the_span_resources) {
    char long_sql[400];
    snprintf(long_sql, sizeof(long_sql), "SELECT * FROM t WHERE name IN (%s'x')", "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', ");
    mw w;
    size_t n = payload(&w, long_sql);
    char *body = test_guarded_copy(w.b, n);
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__trace_process_config cfg = {0};
    const uint8_t *out;
    size_t out_len;
    char err[160] = "";
    long rc = dds__trace_stats_obfuscate((const uint8_t *)body, n, &cfg, &a, &out, &out_len, err, sizeof(err));
    CHECK_EQ_INT(rc, 4);
    char res[8][400];
    CHECK_EQ_INT(resources(out, out_len, res, 8), 5);
    CHECK_EQ_STR(res[0], "SELECT * FROM users WHERE id = ?");
    CHECK_EQ_STR(res[1], "SET GET");
    CHECK_EQ_STR(res[2], "GET /users/42");
    CHECK_EQ_STR(res[3], "SELECT a #> ? FROM t");
    CHECK_EQ_STR(res[4], "SELECT * FROM t WHERE name IN ( ? )");
    /* the bytes before the first rewritten string and after the last are the body's own */
    CHECK(memcmp(out, body, 40) == 0);
    CHECK(memcmp(out + out_len - 12, body + n - 12, 12) == 0);
    test_guarded_free(body, n);
    dds__arena_free(&a);
}

TEST(untouched_body_is_returned_as_is_and_rules_apply) {
    mw w;
    w.n = 0;
    mw_map(&w, 1);
    mw_str(&w, "Stats"); mw_arr(&w, 1);
    mw_map(&w, 1);
    mw_str(&w, "Stats"); mw_arr(&w, 1);
    group(&w, "web", "GET /prod/users", NULL, true);
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__trace_process_config cfg = {0};
    const uint8_t *out;
    size_t out_len;
    char err[160];
    CHECK_EQ_INT(dds__trace_stats_obfuscate(w.b, w.n, &cfg, &a, &out, &out_len, err, sizeof(err)), 0);
    CHECK(out == w.b && out_len == w.n);
    dds__replace_rules *rules = NULL;
    CHECK_EQ_INT(dds__replace_rules_parse("[{\"name\":\"resource.name\",\"pattern\":\"prod\",\"repl\":\"stage\"},"
                                          "{\"name\":\"http.url\",\"pattern\":\"users\",\"repl\":\"x\"}]",
                                          &rules, err, sizeof(err)),
                 0);
    cfg.replace_rules = rules;
    CHECK_EQ_INT(dds__trace_stats_obfuscate(w.b, w.n, &cfg, &a, &out, &out_len, err, sizeof(err)), 1);
    char res[2][400];
    CHECK_EQ_INT(resources(out, out_len, res, 2), 1);
    CHECK_EQ_STR(res[0], "GET /stage/users");  /* a tag rule does not reach the resource */
    dds__replace_rules_free(rules);
    dds__arena_free(&a);
}

TEST(malformed_and_truncated_bodies) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__trace_process_config cfg = {0};
    const uint8_t *out;
    size_t out_len;
    char err[160] = "";
    static const uint8_t not_map[] = {0x93, 0x01, 0x02, 0x03};
    CHECK_EQ_INT(dds__trace_stats_obfuscate(not_map, sizeof(not_map), &cfg, &a, &out, &out_len, err, sizeof(err)), -1);
    CHECK(err[0] != '\0');
    mw w;
    size_t n = payload(&w, "SELECT 1");
    for (size_t cut = 0; cut < n; cut++) {
        char *b = test_guarded_copy(w.b, cut);
        long rc = dds__trace_stats_obfuscate((const uint8_t *)b, cut, &cfg, &a, &out, &out_len, err, sizeof(err));
        CHECK(rc == -1 || rc >= 0);
        test_guarded_free(b, cut);
        dds__arena_reset(&a);
    }
    /* arena exhaustion is its own answer */
    dds__arena small;
    dds__arena_init(&small, 64, 128);
    CHECK_EQ_INT(dds__trace_stats_obfuscate(w.b, n, &cfg, &small, &out, &out_len, err, sizeof(err)), -2);
    dds__arena_free(&small);
    dds__arena_free(&a);
}

int main(void) {
    RUN(groups_get_the_span_resources);
    RUN(untouched_body_is_returned_as_is_and_rules_apply);
    RUN(malformed_and_truncated_bodies);
    return TEST_REPORT();
}
