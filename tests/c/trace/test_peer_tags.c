/* test_peer_tags.c - the peer-tag key list (sorted, 43 keys of the Rust agent) and the IP
 * quantization of peer tag values, one row per case of libdd-trace-obfuscation's ip_address.rs
 * tests. Inputs end at a guard page. */
#include "test.h"
#include "trace/peer_tags.h"

static void check_quantize(const char *in, const char *want) {
    size_t n = strlen(in);
    char *g = test_guarded_copy(in, n);
    dds__buf out;
    dds__buf_init(&out);
    dds__peer_tag_quantize(dds__slice_make(g, n), &out);
    CHECK(!out.oom);
    CHECK_MSG(out.len == strlen(want) && (out.len == 0 || memcmp(out.data, want, out.len) == 0),
              "quantize(%s) = %.*s, want %s", in, (int)out.len, out.data ? (const char *)out.data : "", want);
    dds__buf_free(&out);
    test_guarded_free(g, n);
}

TEST(test_keys_sorted_unique_and_complete) {
    CHECK_EQ_INT(dds__peer_tag_nkeys, 43);
    for (size_t i = 1; i < dds__peer_tag_nkeys; i++)
        CHECK_MSG(strcmp(dds__peer_tag_keys[i - 1], dds__peer_tag_keys[i]) < 0, "%s before %s", dds__peer_tag_keys[i - 1],
                  dds__peer_tag_keys[i]);
    const char *must[] = {"_dd.base_service", "peer.service", "peer.hostname", "db.instance", "db.system", "out.host",
                          "messaging.destination", "aws.queue.name", "tablename", "topicname", "rpc.service"};
    for (size_t k = 0; k < sizeof(must) / sizeof(must[0]); k++) {
        bool found = false;
        for (size_t i = 0; i < dds__peer_tag_nkeys; i++) found |= strcmp(dds__peer_tag_keys[i], must[k]) == 0;
        CHECK_MSG(found, "%s missing", must[k]);
    }
}

TEST(test_quantize_table) {
    static const char *rows[][2] = {
        {"127.0.0.1", "127.0.0.1"},
        {"::1", "::1"},
        {"169.254.169.254", "169.254.169.254"},
        {"169.254.170.2", "169.254.170.2"},
        {"", ""},
        {"foo.dog", "foo.dog"},
        {"192.168.1.1", "blocked-ip-address"},
        {"192.168.1.1.foo", "blocked-ip-address.foo"},
        {"192.168.1.1.2.3.4.5", "blocked-ip-address.2.3.4.5"},
        {"192_168_1_1", "blocked-ip-address"},
        {"192-168-1-1", "blocked-ip-address"},
        {"192-168-1-1.foo", "blocked-ip-address.foo"},
        {"192-168-1-1-foo", "blocked-ip-address-foo"},
        {"2001:db8:3333:4444:CCCC:DDDD:EEEE:FFFF", "blocked-ip-address"},
        {"2001:db8:3c4d:15::1a2f:1a2b", "blocked-ip-address"},
        {"[fe80::1ff:fe23:4567:890a]:8080", "blocked-ip-address:8080"},
        {"192.168.1.1:1234", "blocked-ip-address:1234"},
        {"dnspoll:///10.21.120.145:6400", "dnspoll:///blocked-ip-address:6400"},
        {"http://10.21.120.145:6400", "http://blocked-ip-address:6400"},
        {"https://10.21.120.145:6400", "https://blocked-ip-address:6400"},
        {"192.168.1.1:1234,10.23.1.1:53,10.23.1.1,fe80::1ff:fe23:4567:890a,foo.dog",
         "blocked-ip-address:1234,blocked-ip-address:53,blocked-ip-address,foo.dog"},
        {"http://172.24.160.151:8091,172.24.163.33:8091,172.24.164.111:8091,172.24.165.203:8091,"
         "172.24.168.235:8091,172.24.170.130:8091",
         "http://blocked-ip-address:8091,blocked-ip-address:8091"},
        {"10-60-160-172.my-service.namespace.svc.abc.cluster.local",
         "blocked-ip-address.my-service.namespace.svc.abc.cluster.local"},
        {"ip-10-152-4-129.ec2.internal", "ip-blocked-ip-address.ec2.internal"},
        {"1-foo", "1-foo"},
        {"1-2-foo", "1-2-foo"},
        {"1-2-3-foo", "1-2-3-foo"},
        {"1-2-3-999", "1-2-3-999"},
        {"1-2-999-foo", "1-2-999-foo"},
        {"1-2-3-999-foo", "1-2-3-999-foo"},
        {"1-2-3-4-foo", "blocked-ip-address-foo"},
        {"7-55-2-app.agent.datadoghq.com", "7-55-2-app.agent.datadoghq.com"},
        /* ours: leading zeros are not an address, duplicates go even without an address */
        {"01.2.3.4", "01.2.3.4"},
        {"a,a,b,a", "a,b"},
        {"[::1", "[::1"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) check_quantize(rows[i][0], rows[i][1]);
}

TEST(test_quantize_many_entries_dedups_linearly) {
    /* 5000 entries, 3 distinct: the hash-set path */
    dds__buf in;
    dds__buf_init(&in);
    for (int i = 0; i < 5000; i++) dds__buf_printf(&in, "%s%s", i ? "," : "", i % 3 == 0 ? "10.0.0.1" : i % 3 == 1 ? "db" : "10.0.0.2:5");
    dds__buf out;
    dds__buf_init(&out);
    dds__peer_tag_quantize(dds__slice_make((const char *)in.data, in.len), &out);
    CHECK_EQ_INT(out.len, strlen("blocked-ip-address,db,blocked-ip-address:5"));
    CHECK(out.len && memcmp(out.data, "blocked-ip-address,db,blocked-ip-address:5", out.len) == 0);
    dds__buf_free(&in);
    dds__buf_free(&out);
}

int main(void) {
    RUN(test_keys_sorted_unique_and_complete);
    RUN(test_quantize_table);
    RUN(test_quantize_many_entries_dedups_linearly);
    return TEST_REPORT();
}
