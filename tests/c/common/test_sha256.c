/* test_sha256.c - SHA-256 against the FIPS 180-2/180-4 example vectors, padding boundaries
 * (lengths around 55/56/64 bytes, digests from coreutils sha256sum), and incremental updates in
 * every split, each input placed against a guard page so an over-read crashes. */
#include "common/sha256.h"

#include "test.h"

static void hex_of(const uint8_t d[32], char out[65]) {
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_digest(const char *name, const void *data, size_t n, const char *want) {
    char *g = test_guarded_copy(data, n);
    char hex[65];
    dds__sha256_hex(g, n, hex);
    CHECK_MSG(strcmp(hex, want) == 0, "%s: got %s, want %s", name, hex, want);
    test_guarded_free(g, n);
}

TEST(fips_vectors) {
    static const struct {
        const char *name, *msg, *digest;
    } rows[] = {
        {"empty", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"448 bits", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"896 bits",
         "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
         "nopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        check_digest(rows[i].name, rows[i].msg, strlen(rows[i].msg), rows[i].digest);
}

TEST(million_a) {
    size_t n = 1000000;
    char *m = malloc(n);
    memset(m, 'a', n);
    check_digest("one million a", m, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* Same message fed 1000 bytes at a time: the streaming path must agree. */
    dds__sha256 s;
    dds__sha256_init(&s);
    for (size_t off = 0; off < n; off += 1000) dds__sha256_update(&s, m + off, 1000);
    uint8_t d[32];
    char hex[65];
    dds__sha256_final(&s, d);
    hex_of(d, hex);
    CHECK_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(m);
}

/* Lengths where the padding fits in the last block or spills into one more. */
TEST(padding_boundaries) {
    static const struct {
        size_t n;
        const char *digest;
    } rows[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    char m[128];
    memset(m, 'a', sizeof(m));
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "%zu x 'a'", rows[i].n);
        check_digest(name, m, rows[i].n, rows[i].digest);
    }
}

/* Every two-piece split of a 1 KiB message (all byte values) gives the one-shot digest. */
TEST(incremental_splits) {
    uint8_t m[1024];
    for (size_t i = 0; i < sizeof(m); i++) m[i] = (uint8_t)i;
    const char *want = "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9";
    check_digest("0..255 x 4", m, sizeof(m), want);
    int bad = 0;
    for (size_t cut = 0; cut <= sizeof(m); cut++) {
        dds__sha256 s;
        dds__sha256_init(&s);
        dds__sha256_update(&s, m, cut);
        dds__sha256_update(&s, NULL, 0);
        dds__sha256_update(&s, m + cut, sizeof(m) - cut);
        uint8_t d[32];
        char hex[65];
        dds__sha256_final(&s, d);
        hex_of(d, hex);
        if (strcmp(hex, want) != 0 && bad++ < 3) TEST_FAIL_AT("split at %zu: got %s", cut, hex);
    }
    /* Byte by byte. */
    dds__sha256 s;
    dds__sha256_init(&s);
    for (size_t i = 0; i < sizeof(m); i++) dds__sha256_update(&s, m + i, 1);
    uint8_t d[32], one[32];
    dds__sha256_final(&s, d);
    dds__sha256_digest(m, sizeof(m), one);
    CHECK(memcmp(d, one, 32) == 0);
}

int main(void) {
    RUN(fips_vectors);
    RUN(million_a);
    RUN(padding_boundaries);
    RUN(incremental_splits);
    return TEST_REPORT();
}
