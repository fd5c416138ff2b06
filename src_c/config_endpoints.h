/* config_endpoints.h - the value of DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS (logs_additional_endpoints):
 * a JSON array of {"api_key","Host","Port","is_reliable"} objects, each one more Datadog logs
 * intake that receives every batch at https://Host:Port/api/v2/logs with its own key. */
#ifndef DDS_CONFIG_ENDPOINTS_H
#define DDS_CONFIG_ENDPOINTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each endpoint is one more HTTP client with its own queues: a handful is what dual shipping
 * needs, and the bound keeps a pasted list from multiplying memory. */
#define DDS__LOGS_ENDPOINTS_MAX 8
#define DDS__ENDPOINT_KEY_MAX 128   /* a Datadog API key is 32 characters */
#define DDS__ENDPOINT_HOST_MAX 256
#define DDS__ENDPOINTS_WHY_MAX 160

typedef struct dds__logs_endpoint {
    char api_key[DDS__ENDPOINT_KEY_MAX];  /* a secret: never logged; wipe with dds__logs_endpoints_wipe */
    char host[DDS__ENDPOINT_HOST_MAX];
    uint16_t port;
    bool is_reliable;
} dds__logs_endpoint;

/*
 * Parse json (NUL-terminated; NULL, "" or blanks only mean no endpoint) into out[0..*n).
 * Keys are matched ignoring case, as the Go Agent's JSON decoder does ("Host" and "host"), and
 * underscores ("apiKey", "isReliable" from JavaScript); api_key and Host are required, Port defaults to 443 and is_reliable to true (the
 * Go Agent's defaults); other keys are ignored. Returns 0, or -1 with `why` (at most
 * DDS__ENDPOINTS_WHY_MAX bytes with the NUL) naming the endpoint, the key and what is wrong,
 * never a key's value. Allocates nothing, never reads past the NUL. Any thread.
 */
int dds__logs_endpoints_parse(const char *json, dds__logs_endpoint *out, size_t cap, size_t *n, char *why);
/* Zero the keys of e[0..n) before the memory is reused or released. */
void dds__logs_endpoints_wipe(dds__logs_endpoint *e, size_t n);
#endif
