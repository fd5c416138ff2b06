/* Tests of src_c/config_endpoints.c: the DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS parser. Inputs
 * include the Rust agent's test vectors (logs_additional_endpoint.rs). */
#include "config_endpoints.h"
#include "test.h"

typedef struct row {
    const char *name;
    const char *json;
    int n;               /* endpoints, or -1 for an error */
    const char *why;     /* substring of the reason (errors) */
} row;

static const row rows[] = {
    {"null", NULL, 0, NULL},
    {"empty", "", 0, NULL},
    {"blanks", " \n\t", 0, NULL},
    {"empty array", " [ ] ", 0, NULL},
    {"rust valid", "[{\"api_key\":\"key2\",\"Host\":\"agent-http-intake.logs.datadoghq.com\",\"Port\":443,\"is_reliable\":true}]", 1, NULL},
    {"rust multiple",
     "[\n {\"api_key\":\"k1\",\"Host\":\"host1.example.com\",\"Port\":443,\"is_reliable\":true},\n"
     " {\"api_key\":\"k2\",\"Host\":\"host2.example.com\",\"Port\":10516,\"is_reliable\":false}\n]", 2, NULL},
    {"rust missing port: defaults to 443 here",
     "[{\"api_key\":\"key\",\"Host\":\"intake.logs.datadoghq.com\",\"is_reliable\":true}]", 1, NULL},
    {"lower-case keys, unknown keys skipped",
     "[{\"host\":\"h\",\"api_key\":\"k\",\"use_compression\":true,\"x\":{\"a\":[1,2.5e3,null,\"s\\\"\"]}}]", 1, NULL},
    {"camelCase keys", "[{\"apiKey\":\"k\",\"host\":\"h\",\"port\":1,\"isReliable\":false}]", 1, NULL},
    {"ipv6 literal", "[{\"api_key\":\"k\",\"Host\":\"[::1]\",\"Port\":9}]", 1, NULL},
    {"escaped key", "[{\"api\\u005fkey\":\"k\",\"Host\":\"h\"}]", 1, NULL},
    {"not an array", "{\"api_key\":\"k\"}", -1, "invalid JSON at byte 0: expected a JSON array '['"},
    {"element not an object", "[1]", -1, "endpoint 0 must be an object"},
    {"missing key", "[{\"Host\":\"h\"}]", -1, "endpoint 0: api_key is missing"},
    {"empty key", "[{\"api_key\":\"\",\"Host\":\"h\"}]", -1, "endpoint 0: api_key is missing"},
    {"key with a line break", "[{\"api_key\":\"a\\nb\",\"Host\":\"h\"}]", -1, "endpoint 0: api_key must be printable ASCII"},
    {"missing host", "[{\"api_key\":\"k\"},{}]", -1, "endpoint 0: Host is missing"},
    {"second one bad", "[{\"api_key\":\"k\",\"Host\":\"h\"},{\"api_key\":\"k\"}]", -1, "endpoint 1: Host is missing"},
    {"host with scheme", "[{\"api_key\":\"k\",\"Host\":\"https://h\"}]", -1, "endpoint 0: Host must be a name or address"},
    {"host with port", "[{\"api_key\":\"k\",\"Host\":\"h:443\"}]", -1, "Host must be"},
    {"port zero", "[{\"api_key\":\"k\",\"Host\":\"h\",\"Port\":0}]", -1, "endpoint 0: Port must be an integer 1-65535"},
    {"port too big", "[{\"api_key\":\"k\",\"Host\":\"h\",\"Port\":65536}]", -1, "Port must be"},
    {"port fraction", "[{\"api_key\":\"k\",\"Host\":\"h\",\"Port\":443.5}]", -1, "Port must be"},
    {"port string", "[{\"api_key\":\"k\",\"Host\":\"h\",\"Port\":\"443\"}]", -1, "Port must be"},
    {"port huge", "[{\"api_key\":\"k\",\"Host\":\"h\",\"Port\":99999999999999999999}]", -1, "Port must be"},
    {"reliable string", "[{\"api_key\":\"k\",\"Host\":\"h\",\"is_reliable\":\"yes\"}]", -1, "is_reliable must be true or false"},
    {"key number", "[{\"api_key\":5,\"Host\":\"h\"}]", -1, "endpoint 0: api_key must be a string"},
    {"trailing comma", "[{\"api_key\":\"k\",\"Host\":\"h\"},]", -1, "endpoint 1 must be an object"},
    {"unterminated", "[{\"api_key\":\"k", -1, "unterminated string"},
    {"no closing bracket", "[{\"api_key\":\"k\",\"Host\":\"h\"}", -1, "expected ',' or ']'"},
    {"text after", "[] x", -1, "unexpected text after the array"},
    {"raw control char", "[{\"api_key\":\"a\tb\",\"Host\":\"h\"}]", -1, "control character in a string"},
    {"too deep", "[{\"api_key\":\"k\",\"Host\":\"h\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]",
     -1, "nested too deep"},
    {"bad literal", "[{\"api_key\":\"k\",\"Host\":\"h\",\"x\":tru}]", -1, "expected a value"},
};

TEST(table) {
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
        const row *r = &rows[i];
        dds__logs_endpoint eps[DDS__LOGS_ENDPOINTS_MAX];
        size_t n = 99;
        char why[DDS__ENDPOINTS_WHY_MAX];
        /* Exactly as long as its allocation: a read past the NUL is caught by ASan. */
        char *in = r->json ? strdup(r->json) : NULL;
        int rc = dds__logs_endpoints_parse(in, eps, DDS__LOGS_ENDPOINTS_MAX, &n, why);
        free(in);
        if (r->n < 0) {
            CHECK_MSG(rc == -1 && n == 0, "%s: rc %d n %zu", r->name, rc, n);
            CHECK_MSG(strstr(why, r->why) != NULL, "%s: why '%s'", r->name, why);
        } else {
            CHECK_MSG(rc == 0 && n == (size_t)r->n, "%s: rc %d n %zu why '%s'", r->name, rc, n, why);
        }
        dds__logs_endpoints_wipe(eps, n);
    }
}

TEST(values) {
    dds__logs_endpoint eps[DDS__LOGS_ENDPOINTS_MAX];
    size_t n;
    char why[DDS__ENDPOINTS_WHY_MAX];
    CHECK_EQ_INT(dds__logs_endpoints_parse(
                     "[{\"api_key\":\"k1\",\"Host\":\"host1.example.com\",\"Port\":443,\"is_reliable\":true},"
                     "{\"API_KEY\":\"k\\u0032\",\"HOST\":\"host2.example.com\",\"port\":10516,\"IS_RELIABLE\":false},"
                     "{\"api_key\":\"k3\",\"Host\":\"h3\"}]",
                     eps, DDS__LOGS_ENDPOINTS_MAX, &n, why),
                 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_STR(eps[0].api_key, "k1");
    CHECK_EQ_STR(eps[0].host, "host1.example.com");
    CHECK_EQ_INT(eps[0].port, 443);
    CHECK(eps[0].is_reliable);
    CHECK_EQ_STR(eps[1].api_key, "k2");
    CHECK_EQ_STR(eps[1].host, "host2.example.com");
    CHECK_EQ_INT(eps[1].port, 10516);
    CHECK(!eps[1].is_reliable);
    CHECK_EQ_INT(eps[2].port, 443);  /* the Go Agent's defaults */
    CHECK(eps[2].is_reliable);
    dds__logs_endpoints_wipe(eps, n);
    CHECK_EQ_STR(eps[0].api_key, "");
    CHECK_EQ_STR(eps[1].api_key, "");
}

TEST(bounds_and_secrets) {
    dds__logs_endpoint eps[2];
    size_t n;
    char why[DDS__ENDPOINTS_WHY_MAX];
    const char *three = "[{\"api_key\":\"a\",\"Host\":\"h\"},{\"api_key\":\"b\",\"Host\":\"h\"},{\"api_key\":\"c\",\"Host\":\"h\"}]";
    CHECK_EQ_INT(dds__logs_endpoints_parse(three, eps, 2, &n, why), -1);
    CHECK(strstr(why, "at most 2 endpoints are supported") != NULL);
    CHECK_EQ_STR(eps[0].api_key, "");  /* wiped on failure */
    CHECK_EQ_STR(eps[1].api_key, "");
    char longkey[400];
    snprintf(longkey, sizeof(longkey), "[{\"api_key\":\"%0200d\",\"Host\":\"h\"}]", 7);
    CHECK_EQ_INT(dds__logs_endpoints_parse(longkey, eps, 2, &n, why), -1);
    CHECK(strstr(why, "endpoint 0: api_key is longer than 127 bytes") != NULL);
    /* No reason ever quotes the key. */
    const char *bad[] = {
        "[{\"api_key\":\"SECRETVALUE\",\"Host\":\"h\",\"Port\":-1}]",
        "[{\"api_key\":\"SECRETVALUE\",\"Host\":\"h/x\"}]",
        "[{\"api_key\":\"SECRET VALUE\",\"Host\":\"h\"}]",
        "[{\"api_key\":\"SECRETVALUE\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        CHECK_EQ_INT(dds__logs_endpoints_parse(bad[i], eps, 2, &n, why), -1);
        CHECK_MSG(strstr(why, "SECRET") == NULL, "row %zu: %s", i, why);
    }
}

int main(void) {
    RUN(table);
    RUN(values);
    RUN(bounds_and_secrets);
    return TEST_REPORT();
}
