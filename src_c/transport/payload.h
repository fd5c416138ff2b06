/* payload.h - one request body on its way to the intake. Built by a serializer, owned by the
 * intake once submitted, freed by dds__payload_free. */
#ifndef DDS_TRANSPORT_PAYLOAD_H
#define DDS_TRANSPORT_PAYLOAD_H
#include <stddef.h>
#include <stdint.h>

typedef enum dds__payload_kind {
    DDS__PK_SERIES = 0,
    DDS__PK_SKETCHES,
    DDS__PK_SERVICE_CHECKS,
    DDS__PK_EVENTS,
    DDS__PK_TRACES,
    DDS__PK_STATS,
    DDS__PK_PROXY,
    DDS__PK_LOGS,
} dds__payload_kind;
#define DDS__PK_KINDS (DDS__PK_LOGS + 1)

typedef struct dds__payload dds__payload;

/* Called once, on the loop thread, when the intake is done with a payload: http_status is the
 * final answer (0 for a network error or a drop); response body valid during the call only.
 * Used by proxies to answer their client. */
typedef void (*dds__payload_done_fn)(void *user, int http_status, const uint8_t *resp, size_t resp_len);

struct dds__payload {
    dds__payload *next;              /* list link for whoever holds the payload */
    dds__payload_kind kind;
    char *url;                       /* owned, full URL */
    uint8_t *body;                   /* owned */
    size_t body_len;
    const char *content_type;        /* static string */
    const char *content_encoding;    /* static string, NULL when not compressed */
    char *extra_headers;             /* owned, "Name: value\n" lines, or NULL */
    uint32_t items;                  /* series/sketches/checks/events/spans inside, for the counters */
    dds__payload_done_fn on_done;    /* may be NULL */
    void *done_user;
    /* transport state */
    uint32_t attempts;
    int64_t next_attempt_ms;
};

/* Takes ownership of url and body (even on failure). NULL on allocation failure. */
dds__payload *dds__payload_new(dds__payload_kind kind, char *url, uint8_t *body, size_t body_len,
                               const char *content_type, const char *content_encoding, uint32_t items);
/* Calls on_done(user, 0, NULL, 0) if still set, then frees. Accepts NULL. */
void dds__payload_free(dds__payload *p);
const char *dds__payload_kind_name(dds__payload_kind kind);  /* "series", "sketches", ... */

struct dds__jsonw;
/* Every dry-run line has one envelope, {"dry_run":true,"endpoint":"<path>","payload":<value>}:
 * this writes it up to the value. The caller writes the value, then closes the outer object
 * with dds__jsonw_object_end. */
void dds__payload_dry_run_begin(struct dds__jsonw *w, const char *endpoint);
#endif
