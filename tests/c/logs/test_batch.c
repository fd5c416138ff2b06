/* test_batch.c - the logs queue and serializer (logs/batch.c): batches of at most 1000 entries
 * and 5 MiB as [e1,e2,...], zstd bodies that decompress to exactly that, the dry-run line, the
 * DD-PROTOCOL header, and the queue's bounds (entry size, bytes, entries) with every drop counted. */
#include "logs/batch.h"

#include <zstd.h>

#include "test.h"

#define URL "http://127.0.0.1:9/api/v2/logs"

static dds__logs_batcher *make(dds__logs_counters *c, bool compress, bool dry_run, size_t max_bytes,
                               size_t max_entries) {
    memset(c, 0, sizeof(*c));
    dds__logs_batch_config cfg = {.url = URL,
                                  .compress = compress,
                                  .compression_level = 3,
                                  .dry_run = dry_run,
                                  .max_queued_bytes = max_bytes,
                                  .max_queued_entries = max_entries};
    return dds__logs_batcher_new(&cfg, c);
}

static size_t count_list(const dds__payload *p) {
    size_t n = 0;
    for (; p; p = p->next) n++;
    return n;
}

static void free_list(dds__payload *p) {
    while (p) {
        dds__payload *next = p->next;
        dds__payload_free(p);
        p = next;
    }
}

/* An entry of exactly `len` bytes: {"message":"xxx...","timestamp":N}. */
static char *entry_of(size_t len, int n) {
    char head[64];
    int h = snprintf(head, sizeof(head), "{\"timestamp\":%d,\"message\":\"", n);
    char *e = malloc(len + 1);
    memcpy(e, head, (size_t)h);
    memset(e + h, 'x', len - (size_t)h - 2);
    e[len - 2] = '"';
    e[len - 1] = '}';
    e[len] = '\0';
    return e;
}

TEST(small_entries_split_at_1000) {
    dds__logs_counters c;
    dds__logs_batcher *b = make(&c, false, false, 0, 0);
    char e[64];
    for (int i = 0; i < 2500; i++) {
        int n = snprintf(e, sizeof(e), "{\"message\":\"m%d\",\"timestamp\":%d}", i, i);
        CHECK(dds__logs_batcher_add(b, e, (size_t)n));
    }
    CHECK_EQ_INT(dds__logs_batcher_queued_entries(b), 2500);
    dds__payload *list = dds__logs_batcher_take(b);
    CHECK_EQ_INT(count_list(list), 3);
    CHECK_EQ_INT(list->items, 1000);
    CHECK_EQ_INT(list->next->items, 1000);
    CHECK_EQ_INT(list->next->next->items, 500);
    CHECK_EQ_INT(list->kind, DDS__PK_LOGS);
    CHECK_EQ_STR(list->url, URL);
    CHECK_EQ_STR(list->content_type, "application/json");
    CHECK(list->content_encoding == NULL);
    CHECK_EQ_STR(list->extra_headers, "DD-PROTOCOL: agent-json\n");
    /* The third batch is entries 2000..2499 in order, as one JSON array. */
    const dds__payload *third = list->next->next;
    CHECK(third->body_len > 2 && third->body[0] == '[' && third->body[third->body_len - 1] == ']');
    CHECK(memcmp(third->body, "[{\"message\":\"m2000\",\"timestamp\":2000},{\"message\":\"m2001\"", 56) == 0);
    CHECK_EQ_INT(dds__logs_batcher_queued_entries(b), 0);
    CHECK(dds__logs_batcher_take(b) == NULL);
    CHECK_EQ_INT(dds__counter_get(&c.entries), 2500);
    CHECK_EQ_INT(dds__counter_get(&c.batches), 3);
    free_list(list);
    dds__logs_batcher_free(b);
}

TEST(large_entries_split_at_5_mib) {
    dds__logs_counters c;
    dds__logs_batcher *b = make(&c, false, false, 32u * 1024 * 1024, 0);
    /* 1 MiB - 100 bytes each: five fit in 5 MiB with brackets and commas, a sixth does not. */
    size_t len = 1024 * 1024 - 100;
    for (int i = 0; i < 12; i++) {
        char *e = entry_of(len, i);
        CHECK(dds__logs_batcher_add(b, e, len));
        free(e);
    }
    dds__payload *list = dds__logs_batcher_take(b);
    CHECK_EQ_INT(count_list(list), 3);
    for (dds__payload *p = list; p; p = p->next) CHECK(p->body_len <= DDS__LOGS_BATCH_MAX_BYTES);
    CHECK_EQ_INT(list->items, 5);
    CHECK_EQ_INT(list->next->items, 5);
    CHECK_EQ_INT(list->next->next->items, 2);
    CHECK_EQ_INT(list->body_len, 5 * len + 4 + 2);
    free_list(list);
    dds__logs_batcher_free(b);
}

TEST(exactly_5_mib_is_one_batch) {
    dds__logs_counters c;
    dds__logs_batcher *b = make(&c, false, false, 32u * 1024 * 1024, 0);
    /* Five entries whose array (4 commas, 2 brackets) is exactly 5 MiB. */
    size_t total = DDS__LOGS_BATCH_MAX_BYTES - 6;
    for (int i = 0; i < 5; i++) {
        size_t len = total / 5 + ((size_t)i < total % 5 ? 1 : 0); /* each <= 1 MiB */
        char *e = entry_of(len, i);
        CHECK(dds__logs_batcher_add(b, e, len));
        free(e);
    }
    dds__payload *list = dds__logs_batcher_take(b);
    CHECK_EQ_INT(count_list(list), 1);
    CHECK_EQ_INT(list->body_len, DDS__LOGS_BATCH_MAX_BYTES);
    free_list(list);
    dds__logs_batcher_free(b);
}

TEST(zstd_body_decompresses_to_the_array) {
    dds__logs_counters c;
    dds__logs_batcher *b = make(&c, true, false, 0, 0);
    const char *e1 = "{\"message\":\"one\",\"timestamp\":1}";
    const char *e2 = "{\"message\":\"two\",\"timestamp\":2,\"service\":\"s\"}";
    CHECK(dds__logs_batcher_add(b, e1, strlen(e1)));
    CHECK(dds__logs_batcher_add(b, e2, strlen(e2)));
    dds__payload *p = dds__logs_batcher_take(b);
    CHECK(p && !p->next);
    CHECK_EQ_STR(p->content_encoding, "zstd");
    char out[256];
    size_t n = ZSTD_decompress(out, sizeof(out), p->body, p->body_len);
    CHECK(!ZSTD_isError(n));
    out[ZSTD_isError(n) ? 0 : n] = '\0';
    CHECK_EQ_STR(out, "[{\"message\":\"one\",\"timestamp\":1},{\"message\":\"two\",\"timestamp\":2,\"service\":\"s\"}]");
    free_list(p);
    dds__logs_batcher_free(b);
}

TEST(dry_run_is_one_line_per_batch) {
    dds__logs_counters c;
    dds__logs_batcher *b = make(&c, true, true, 0, 0);
    const char *e = "{ \"message\":\"a\\nb\",\n  \"timestamp\":1\r\n}";
    CHECK(dds__logs_batcher_add(b, e, strlen(e)));
    dds__payload *p = dds__logs_batcher_take(b);
    CHECK(p && p->content_encoding == NULL);
    char *line = strndup((const char *)p->body, p->body_len);
    CHECK_EQ_STR(line, "{\"dry_run\":true,\"endpoint\":\"/api/v2/logs\",\"payload\":[{ \"message\":\"a\\nb\",   "
                       "\"timestamp\":1  }]}");
    free(line);
    free_list(p);
    dds__logs_batcher_free(b);
}

TEST(queue_bounds_drop_and_count) {
    dds__logs_counters c;
    /* Bytes: 1 MiB holds ten entries of 100 KiB, not eleven. */
    dds__logs_batcher *b = make(&c, false, false, 1024 * 1024, 0);
    size_t len = 100 * 1024;
    char *e = entry_of(len, 1);
    for (int i = 0; i < 10; i++) CHECK(dds__logs_batcher_add(b, e, len));
    CHECK(!dds__logs_batcher_add(b, e, len));
    CHECK(!dds__logs_batcher_add(b, e, len));
    CHECK_EQ_INT(dds__counter_get(&c.entries), 10);
    CHECK_EQ_INT(dds__counter_get(&c.entries_dropped), 2);
    CHECK_EQ_INT(dds__counter_get(&c.bytes), 10 * len);
    CHECK_EQ_INT(dds__logs_batcher_queued_bytes(b), 10 * len);
    /* A flush empties the queue: room again. */
    free_list(dds__logs_batcher_take(b));
    CHECK(dds__logs_batcher_add(b, e, len));
    free(e);
    dds__logs_batcher_free(b); /* one entry still queued: counted as dropped */
    CHECK_EQ_INT(dds__counter_get(&c.entries_dropped), 3);

    /* Entries: a bound of 3. */
    b = make(&c, false, false, 0, 3);
    const char *small = "{\"message\":\"m\",\"timestamp\":1}";
    for (int i = 0; i < 5; i++) dds__logs_batcher_add(b, small, strlen(small));
    CHECK_EQ_INT(dds__counter_get(&c.entries), 3);
    CHECK_EQ_INT(dds__counter_get(&c.entries_dropped), 2);
    dds__payload *p = dds__logs_batcher_take(b);
    CHECK(p && p->items == 3);
    free_list(p);
    dds__logs_batcher_free(b);
}

TEST(an_entry_over_1_mib_is_dropped) {
    dds__logs_counters c;
    dds__logs_batcher *b = make(&c, false, false, 0, 0);
    char *big = entry_of(DDS__LOGS_MAX_ENTRY_BYTES + 1, 1);
    CHECK(!dds__logs_batcher_add(b, big, DDS__LOGS_MAX_ENTRY_BYTES + 1));
    free(big);
    char *edge = entry_of(DDS__LOGS_MAX_ENTRY_BYTES, 1);
    CHECK(dds__logs_batcher_add(b, edge, DDS__LOGS_MAX_ENTRY_BYTES));
    free(edge);
    CHECK_EQ_INT(dds__counter_get(&c.entries_dropped), 1);
    CHECK_EQ_INT(dds__counter_get(&c.entries), 1);
    free_list(dds__logs_batcher_take(b));
    dds__logs_batcher_free(b);
}

int main(void) {
    RUN(small_entries_split_at_1000);
    RUN(large_entries_split_at_5_mib);
    RUN(exactly_5_mib_is_one_batch);
    RUN(zstd_body_decompresses_to_the_array);
    RUN(dry_run_is_one_line_per_batch);
    RUN(queue_bounds_drop_and_count);
    RUN(an_entry_over_1_mib_is_dropped);
    return TEST_REPORT();
}
