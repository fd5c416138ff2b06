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
    dds__payload *list = dds__logs_batcher_take(b, NULL);
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
    CHECK(dds__logs_batcher_take(b, NULL) == NULL);
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
    dds__payload *list = dds__logs_batcher_take(b, NULL);
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
    dds__payload *list = dds__logs_batcher_take(b, NULL);
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
    dds__payload *p = dds__logs_batcher_take(b, NULL);
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
    dds__payload *p = dds__logs_batcher_take(b, NULL);
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
    free_list(dds__logs_batcher_take(b, NULL));
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
    dds__payload *p = dds__logs_batcher_take(b, NULL);
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
    free_list(dds__logs_batcher_take(b, NULL));
    dds__logs_batcher_free(b);
}

static const char *const EXTRA[] = {"https://h1.example:443/api/v2/logs", "https://h2.example:10516/api/v2/logs"};

static bool is_zstd_of(const dds__payload *p, const char *want) {
    char out[256];
    size_t n = ZSTD_decompress(out, sizeof(out), p->body, p->body_len);
    return !ZSTD_isError(n) && n == strlen(want) && memcmp(out, want, n) == 0;
}

TEST(opw_main_destination_plain_extras_are_datadog) {
    dds__logs_counters c = {0};
    dds__logs_batch_config cfg = {.url = "http://opw.internal:8282/logs", .opw = true, .extra_urls = EXTRA,
                                  .n_extra = 2, .compress = true, .compression_level = 3};
    dds__logs_batcher *b = dds__logs_batcher_new(&cfg, &c);
    CHECK(b != NULL);
    const char *e = "{\"message\":\"m\",\"timestamp\":1}";
    CHECK(dds__logs_batcher_add(b, e, strlen(e)));
    dds__payload *extra[2] = {(dds__payload *)1, (dds__payload *)1};
    dds__payload *p = dds__logs_batcher_take(b, extra);
    const char *want = "[{\"message\":\"m\",\"timestamp\":1}]";
    CHECK(p != NULL && p->next == NULL);
    CHECK_EQ_STR(p->url, "http://opw.internal:8282/logs");
    CHECK(p->content_encoding == NULL);   /* never compressed for the worker */
    CHECK(p->extra_headers == NULL);      /* no DD-PROTOCOL */
    CHECK(p->body_len == strlen(want) && memcmp(p->body, want, p->body_len) == 0);
    for (int k = 0; k < 2; k++) {
        CHECK(extra[k] != NULL && extra[k]->next == NULL);
        CHECK_EQ_STR(extra[k]->url, EXTRA[k]);
        CHECK_EQ_STR(extra[k]->content_encoding, "zstd");
        CHECK_EQ_STR(extra[k]->extra_headers, "DD-PROTOCOL: agent-json\n");
        CHECK(is_zstd_of(extra[k], want));
        CHECK_EQ_INT(extra[k]->items, 1);
        free_list(extra[k]);
    }
    CHECK_EQ_INT(dds__counter_get(&c.batches), 1);
    free_list(p);
    /* Nothing queued: every list is empty. */
    extra[0] = extra[1] = (dds__payload *)1;
    CHECK(dds__logs_batcher_take(b, extra) == NULL);
    CHECK(extra[0] == NULL && extra[1] == NULL);
    dds__logs_batcher_free(b);
}

TEST(datadog_main_and_extras_share_the_batches) {
    dds__logs_counters c = {0};
    dds__logs_batch_config cfg = {.url = URL, .extra_urls = EXTRA, .n_extra = 1, .compress = false};
    dds__logs_batcher *b = dds__logs_batcher_new(&cfg, &c);
    char e[64];
    for (int i = 0; i < 1500; i++) {
        int n = snprintf(e, sizeof(e), "{\"message\":\"m%d\",\"timestamp\":%d}", i, i);
        CHECK(dds__logs_batcher_add(b, e, (size_t)n));
    }
    dds__payload *extra[1];
    dds__payload *p = dds__logs_batcher_take(b, extra);
    CHECK_EQ_INT(count_list(p), 2);
    CHECK_EQ_INT(count_list(extra[0]), 2);
    for (const dds__payload *a = p, *x = extra[0]; a && x; a = a->next, x = x->next) {
        CHECK(a->body_len == x->body_len && memcmp(a->body, x->body, a->body_len) == 0);
        CHECK_EQ_STR(a->extra_headers, "DD-PROTOCOL: agent-json\n");
        CHECK_EQ_STR(x->extra_headers, "DD-PROTOCOL: agent-json\n");
        CHECK(x->content_encoding == NULL);
        CHECK_EQ_INT(a->items, x->items);
    }
    free_list(p);
    free_list(extra[0]);
    dds__logs_batcher_free(b);
}

TEST(dry_run_names_each_destination) {
    dds__logs_counters c = {0};
    dds__logs_batch_config cfg = {.url = URL, .extra_urls = EXTRA, .n_extra = 2, .compress = true, .dry_run = true};
    dds__logs_batcher *b = dds__logs_batcher_new(&cfg, &c);
    const char *e = "{\"message\":\"m\",\"timestamp\":1}";
    CHECK(dds__logs_batcher_add(b, e, strlen(e)));
    dds__payload *extra[2];
    dds__payload *p = dds__logs_batcher_take(b, extra);
    char line[512];
    snprintf(line, sizeof(line), "%.*s", (int)p->body_len, p->body);
    CHECK_EQ_STR(line, "{\"dry_run\":true,\"endpoint\":\"/api/v2/logs\",\"payload\":[{\"message\":\"m\",\"timestamp\":1}]}");
    snprintf(line, sizeof(line), "%.*s", (int)extra[1]->body_len, extra[1]->body);
    CHECK_EQ_STR(line, "{\"dry_run\":true,\"endpoint\":\"https://h2.example:10516/api/v2/logs\",\"payload\":"
                       "[{\"message\":\"m\",\"timestamp\":1}]}");
    free_list(p);
    free_list(extra[0]);
    free_list(extra[1]);
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
    RUN(opw_main_destination_plain_extras_are_datadog);
    RUN(datadog_main_and_extras_share_the_batches);
    RUN(dry_run_names_each_destination);
    return TEST_REPORT();
}
