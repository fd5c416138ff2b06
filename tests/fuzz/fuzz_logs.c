/* fuzz_logs.c - a POST /v1/input body on arbitrary bytes through what the logs agent does with
 * it: the validator (logs/json.c), then each entry it hands out into the batcher and the batches
 * out. Round trip: every batch body (an array of the entries) validates again to its own count,
 * and every entry on its own, wrapped in [ ], is one valid entry. */
#include <stdlib.h>
#include <string.h>

#include "logs/batch.h"
#include "logs/json.h"

static dds__logs_batcher *batcher;
static dds__logs_counters counters;
static const char *body_start, *body_end;

static void on_entry(void *user, const char *entry, size_t len) {
    (void)user;
    if (entry < body_start || entry + len > body_end || len < 2 || entry[0] != '{' || entry[len - 1] != '}') abort();
    char *wrapped = malloc(len + 2);
    wrapped[0] = '[';
    memcpy(wrapped + 1, entry, len);
    wrapped[len + 1] = ']';
    if (dds__logs_json_entries(wrapped, len + 2, NULL, NULL, NULL) != 1) abort();
    free(wrapped);
    dds__logs_batcher_add(batcher, entry, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!batcher) {
        dds__logs_batch_config bc = {.url = "http://127.0.0.1:1/api/v2/logs"};
        batcher = dds__logs_batcher_new(&bc, &counters);
        if (!batcher) abort();
    }
    /* An exact-size copy, so reading one byte past the end is an ASan report. */
    char *body = malloc(size ? size : 1);
    if (size) memcpy(body, data, size);
    body_start = body;
    body_end = body + size;
    char why[DDS__LOGS_JSON_WHY_MAX];
    long n = dds__logs_json_entries(body, size, on_entry, NULL, why);
    if (n < 0 && (why[0] == '\0' || strlen(why) >= DDS__LOGS_JSON_WHY_MAX)) abort();
    if (n >= 0 && why[0] != '\0') abort();
    dds__payload *p = dds__logs_batcher_take(batcher, NULL);
    long total = 0;
    while (p) {
        dds__payload *next = p->next;
        if (dds__logs_json_entries((const char *)p->body, p->body_len, NULL, NULL, NULL) != (long)p->items) abort();
        total += p->items;
        dds__payload_free(p);
        p = next;
    }
    /* Entries over 1 MiB are the only ones dropped here (the queue is emptied each run). */
    if (n >= 0 && total > n) abort();
    free(body);
    return 0;
}
