/* test_obfuscate_redis.c - redis/valkey quantization and raw-command obfuscation, remove-all-args
 * and the memcached command, against the tables of the Go Agent and the Rust port (redis.rs,
 * memcached.rs), every input ending at a guard page; plus hostile input and arena exhaustion. */
#include "test.h"
#include "trace/obfuscate_redis.h"

typedef struct rcase { const char *in, *want; } rcase;

static const rcase QUANTIZE[] = {
    {"CLIENT", "CLIENT"},
    {"CLIENT LIST", "CLIENT LIST"},
    {"get my_key", "GET"},
    {"SET le_key le_value", "SET"},
    {"\n\n  \nSET foo bar  \n  \n\n  ", "SET"},
    {"CONFIG SET parameter value", "CONFIG SET"},
    {"SET toto tata \n \n  EXPIRE toto 15  ", "SET EXPIRE"},
    {"MSET toto tata toto tata toto tata \n ", "MSET"},
    {"MULTI\nSET k1 v1\nSET k2 v2\nSET k3 v3\nSET k4 v4\nDEL to_del\nEXEC", "MULTI SET SET ..."},
    {"GET...", "..."},
    {"GET k...", "GET"},
    {"GET k1\nGET k2\nG...", "GET GET ..."},
    {"GET k1\nGET k2\nDEL k3\nGET k...", "GET GET DEL ..."},
    {"GET k1\nGET k2\nHDEL k3 a\nG...", "GET GET HDEL ..."},
    {"GET k...\nDEL k2\nMS...", "GET DEL ..."},
    {"GET k...\nDE...\nMS...", "GET ..."},
    {"GET k1\nDE...\nGET k2", "GET GET"},
    {"GET k1\nDE...\nGET k2\nHDEL k3 a\nGET k4\nDEL k5", "GET GET HDEL ..."},
    {"UNKNOWN 123", "UNKNOWN"},
    {"", ""},
    {"client kill 1.2.3.4", "CLIENT KILL"},
    {"CONFIG SE...", "..."},
};

static const rcase OBFUSCATE[] = {
    {"AUTH my-secret-password", "AUTH ?"},
    {"AUTH james my-secret-password", "AUTH ?"},
    {"AUTH", "AUTH"},
    {"MIGRATE host port key destination-db timeout", "MIGRATE ?"},
    {"MIGRATE host port \"\" destination-db timeout KEYS key1 key2 key3", "MIGRATE ?"},
    {"MIGRATE", "MIGRATE"},
    {"HELLO 3 AUTH username password SETNAME clientname", "HELLO ?"},
    {"HELLO", "HELLO"},
    {"ACL SETUSER alice on >password ~* &* +@all", "ACL SETUSER ?"},
    {"ACL GETUSER alice", "ACL GETUSER ?"},
    {"ACL DELUSER alice bob charlie", "ACL DELUSER ?"},
    {"ACL LIST", "ACL LIST"},
    {"ACL", "ACL"},
    {"APPEND key value", "APPEND key ?"},
    {"GETSET key value", "GETSET key ?"},
    {"LPUSHX key value", "LPUSHX key ?"},
    {"GEORADIUSBYMEMBER key member radius m|km|ft|mi [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count] [ASC|DESC] "
     "[STORE key] [STOREDIST key]",
     "GEORADIUSBYMEMBER key ? radius m|km|ft|mi [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count] [ASC|DESC] [STORE key] "
     "[STOREDIST key]"},
    {"RPUSHX key value", "RPUSHX key ?"},
    {"SET key value", "SET key ?"},
    {"SET key value [expiration EX seconds|PX milliseconds] [NX|XX]",
     "SET key ? [expiration EX seconds|PX milliseconds] [NX|XX]"},
    {"SETNX key value", "SETNX key ?"},
    {"SISMEMBER key member", "SISMEMBER key ?"},
    {"ZRANK key member", "ZRANK key ?"},
    {"ZREVRANK key member", "ZREVRANK key ?"},
    {"ZSCORE key member", "ZSCORE key ?"},
    {"BITFIELD key GET type offset SET type offset value INCRBY type",
     "BITFIELD key GET type offset SET type offset ? INCRBY type"},
    {"BITFIELD key SET type offset value INCRBY type", "BITFIELD key SET type offset ? INCRBY type"},
    {"BITFIELD key GET type offset INCRBY type", "BITFIELD key GET type offset INCRBY type"},
    {"BITFIELD key SET type offset", "BITFIELD key SET type offset"},
    {"CONFIG SET parameter value", "CONFIG SET parameter ?"},
    {"CONFIG foo bar baz", "CONFIG foo bar baz"},
    {"GEOADD key longitude latitude member longitude latitude member longitude latitude member",
     "GEOADD key longitude latitude ? longitude latitude ? longitude latitude ?"},
    {"GEOADD key longitude latitude member", "GEOADD key longitude latitude ?"},
    {"GEOADD key longitude latitude", "GEOADD key longitude latitude"},
    {"GEOADD key", "GEOADD key"},
    {"GEOHASH key\nGEOPOS key\n GEODIST key", "GEOHASH key\nGEOPOS key\nGEODIST key"},
    {"GEOHASH key member\nGEOPOS key member\nGEODIST key member\n", "GEOHASH key ?\nGEOPOS key ?\nGEODIST key ?"},
    {"GEOHASH key member member member\nGEOPOS key member member \n  GEODIST key member member member",
     "GEOHASH key ?\nGEOPOS key ?\nGEODIST key ?"},
    {"GEOPOS key member [member ...]", "GEOPOS key ?"},
    {"SREM key member [member ...]", "SREM key ?"},
    {"ZREM key member [member ...]", "ZREM key ?"},
    {"SADD key member [member ...]", "SADD key ?"},
    {"GEODIST key member1 member2 [unit]", "GEODIST key ?"},
    {"LPUSH key value [value ...]", "LPUSH key ?"},
    {"RPUSH key value [value ...]", "RPUSH key ?"},
    {"HSET key field value \nHSETNX key field value\nBLAH", "HSET key field ?\nHSETNX key field ?\nBLAH"},
    {"HSET key field value", "HSET key field ?"},
    {"HSET key field value field value", "HSET key field ? field ?"},
    {"HSETNX key field value", "HSETNX key field ?"},
    {"LREM key count value", "LREM key count ?"},
    {"LSET key index value", "LSET key index ?"},
    {"SETBIT key offset value", "SETBIT key offset ?"},
    {"SETRANGE key offset value", "SETRANGE key offset ?"},
    {"SETEX key seconds value", "SETEX key seconds ?"},
    {"PSETEX key milliseconds value", "PSETEX key milliseconds ?"},
    {"ZINCRBY key increment member", "ZINCRBY key increment ?"},
    {"SMOVE source destination member", "SMOVE source destination ?"},
    {"RESTORE key ttl serialized-value [REPLACE]", "RESTORE key ttl ? [REPLACE]"},
    {"LINSERT key BEFORE pivot value", "LINSERT key BEFORE pivot ?"},
    {"LINSERT key AFTER pivot value", "LINSERT key AFTER pivot ?"},
    {"HMSET key field value field value", "HMSET key field ? field ?"},
    {"HMSET key field value \n HMSET key field value\n\n ", "HMSET key field ?\nHMSET key field ?"},
    {"HMSET key field", "HMSET key field"},
    {"MSET key value key value", "MSET key ? key ?"},
    {"MSET\nMSET key value", "MSET\nMSET key ?"},
    {"MSETNX key value key value", "MSETNX key ? key ?"},
    {"ZADD key score member score member", "ZADD key score ? score ?"},
    {"ZADD key NX score member score member", "ZADD key NX score ? score ?"},
    {"ZADD key NX CH INCR score member score member", "ZADD key NX CH INCR score ? score ?"},
    {"ZADD key XX INCR score member", "ZADD key XX INCR score ?"},
    {"ZADD key XX INCR score", "ZADD key XX INCR score"},
    {"zadd key nx 1 member", "zadd key nx 1 ?"},
    {"\nCONFIG command\nSET k v\n                        ", "CONFIG command\nSET k ?"},
    {"SET k \"quoted value with spaces\"", "SET k ?"},
    {"SET \"k with space\" v", "SET \"k with space\" ?"},
    {"GET key", "GET key"},
    {"", ""},
};

static const rcase REMOVE_ALL[] = {
    {"", ""},
    {"SET key value", "SET ?"},
    {"GET k", "GET ?"},
    {"FAKECMD key value hash", "FAKECMD ?"},
    {"AUTH password", "AUTH ?"},
    {"GET", "GET"},
    {"CONFIG SET key value", "CONFIG SET ?"},
    {"CONFIG GET key", "CONFIG GET ?"},
    {"CONFIG key", "CONFIG ?"},
    {"BITFIELD key SET type offset value GET type offset INCRBY type offset increment",
     "BITFIELD ? SET ? GET ? INCRBY ?"},
    {"BITFIELD secret", "BITFIELD ?"},
};

static const rcase MEMCACHED[] = {
    {"set mykey 0 60 5\r\nvalue", "set mykey 0 60 5"},
    {"get mykey", "get mykey"},
    {"add newkey 0 60 5\r\nvalue", "add newkey 0 60 5"},
    {"  incr mykey 1  \r\n", "incr mykey 1"},
    {"\r\nvalue", ""},
    {"", ""},
};

typedef bool (*fn3)(dds__slice, dds__arena *, dds__slice *);

static void run_table(const char *name, const rcase *cases, size_t n, fn3 f) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(cases[i].in);
        char *in = test_guarded_copy(cases[i].in, len);
        dds__slice out = {0};
        CHECK_MSG(f(dds__slice_make(in, len), &a, &out), "%s[%zu]: out of memory", name, i);
        CHECK_MSG(out.len == strlen(cases[i].want) && memcmp(out.ptr, cases[i].want, out.len) == 0,
                  "%s[%zu]\n    in:   %s\n    want: %s\n    got:  %.*s", name, i, cases[i].in, cases[i].want,
                  (int)out.len, out.ptr ? out.ptr : "");
        test_guarded_free(in, len);
        dds__arena_reset(&a);
    }
    dds__arena_free(&a);
}

TEST(quantize) { run_table("quantize", QUANTIZE, sizeof(QUANTIZE) / sizeof(QUANTIZE[0]), dds__redis_quantize); }
TEST(obfuscate) { run_table("obfuscate", OBFUSCATE, sizeof(OBFUSCATE) / sizeof(OBFUSCATE[0]), dds__redis_obfuscate); }
TEST(remove_all_args) {
    run_table("remove_all", REMOVE_ALL, sizeof(REMOVE_ALL) / sizeof(REMOVE_ALL[0]), dds__redis_remove_all_args);
}

TEST(memcached_command) {
    for (size_t i = 0; i < sizeof(MEMCACHED) / sizeof(MEMCACHED[0]); i++) {
        size_t len = strlen(MEMCACHED[i].in);
        char *in = test_guarded_copy(MEMCACHED[i].in, len);
        dds__slice out = dds__memcached_command(dds__slice_make(in, len));
        CHECK_MSG(out.len == strlen(MEMCACHED[i].want) && memcmp(out.ptr, MEMCACHED[i].want, out.len) == 0,
                  "memcached[%zu]: got %.*s", i, (int)out.len, out.ptr);
        test_guarded_free(in, len);
    }
}

/* Every prefix of every command, any byte, each ending at a guard page: a result, no over-read,
 * never longer than the input plus a little. */
TEST(hostile_prefixes) {
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    const rcase *tables[] = {QUANTIZE, OBFUSCATE, REMOVE_ALL};
    size_t sizes[] = {sizeof(QUANTIZE) / sizeof(QUANTIZE[0]), sizeof(OBFUSCATE) / sizeof(OBFUSCATE[0]),
                      sizeof(REMOVE_ALL) / sizeof(REMOVE_ALL[0])};
    fn3 fns[] = {dds__redis_quantize, dds__redis_obfuscate, dds__redis_remove_all_args};
    for (size_t t = 0; t < 3; t++)
        for (size_t i = 0; i < sizes[t]; i++) {
            size_t len = strlen(tables[t][i].in);
            for (size_t cut = 0; cut <= len; cut++)
                for (size_t f = 0; f < 3; f++) {
                    char *in = test_guarded_copy(tables[t][i].in, cut);
                    dds__slice out;
                    CHECK(fns[f](dds__slice_make(in, cut), &a, &out));
                    CHECK(out.len <= 2 * cut + 8);
                    test_guarded_free(in, cut);
                    dds__arena_reset(&a);
                }
        }
    /* Quotes and backslashes left open, NULs, lone newlines. */
    static const char odd[] = "SET \"k\\\" \n\n\\\\\" \0 v \"\n\n AUTH \"";
    char *in = test_guarded_copy(odd, sizeof(odd) - 1);
    dds__slice out;
    CHECK(dds__redis_obfuscate(dds__slice_make(in, sizeof(odd) - 1), &a, &out));
    CHECK(dds__redis_quantize(dds__slice_make(in, sizeof(odd) - 1), &a, &out));
    test_guarded_free(in, sizeof(odd) - 1);
    dds__arena_free(&a);
}

TEST(arena_exhaustion) {
    for (size_t limit = 16; limit < 2048; limit += 16) {
        dds__arena a;
        dds__arena_init(&a, 16, limit);
        dds__slice out = DDS__SLICE_LIT("untouched");
        if (dds__redis_obfuscate(DDS__SLICE_LIT("SET key value\nAUTH secret\nGET k"), &a, &out))
            CHECK_EQ_SLICE(out, "SET key ?\nAUTH ?\nGET k");
        else
            CHECK_EQ_SLICE(out, "untouched");
        dds__arena_free(&a);
    }
}

int main(void) {
    RUN(quantize);
    RUN(obfuscate);
    RUN(remove_all_args);
    RUN(memcached_command);
    RUN(hostile_prefixes);
    RUN(arena_exhaustion);
    return TEST_REPORT();
}
