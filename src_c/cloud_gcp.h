/* cloud_gcp.h - the Google Cloud Functions runtime check of the Rust binary (env_verifier.rs):
 * one POST to the metadata server, whose answer says whether this is a serverless runtime and
 * gives the project and region the spans are tagged with (gcrfx.*). The Rust binary exits when
 * the check fails; here the caller reports it and keeps running. */
#ifndef DDS_CLOUD_GCP_H
#define DDS_CLOUD_GCP_H
#include <stddef.h>
#include <stdint.h>

struct event_base;

#define DDS__GCP_METADATA_HOST "metadata.google.internal"
/* The address metadata.google.internal always names (Google documents both; its own Go client
 * connects here). Connecting to it needs no name lookup: libevent cannot tear down an
 * asynchronous lookup still in flight without running the loop again, and a blocking one could
 * stall the loop for seconds off Google Cloud. The Rust binary resolves the name. */
#define DDS__GCP_METADATA_ADDRESS "169.254.169.254"
#define DDS__GCP_METADATA_PATH "/computeMetadata/v1/?recursive=true"
/* The Rust binary's verify_env_timeout_ms: past it the check counts as passed with "unknown"
 * values (a cold start does not wait on it). */
#define DDS__GCP_METADATA_TIMEOUT_MS 100
/* The metadata document is a few KiB; a larger answer is not the metadata server's. */
#define DDS__GCP_METADATA_MAX_BODY (256u * 1024)
#define DDS__GCP_VALUE_MAX 128

typedef struct dds__gcp_metadata {
    char project_id[DDS__GCP_VALUE_MAX];  /* project.projectId, "unknown" when not known */
    char region[DDS__GCP_VALUE_MAX];      /* the R of instance.region "projects/N/regions/R", else "unknown" */
} dds__gcp_metadata;

typedef enum dds__gcp_result {
    DDS__GCP_OK = 0,           /* the serverless metadata server answered (values may still be "unknown") */
    DDS__GCP_TIMEOUT,          /* no answer in time: values "unknown", not a failure (as in the Rust binary) */
    DDS__GCP_UNREACHABLE,      /* no answer at all (name, connection): not on Google Cloud */
    DDS__GCP_NOT_SERVERLESS,   /* an answer without the serverless Server header */
} dds__gcp_result;

/* Loop thread, once. md is always filled; why says what failed (NULL for OK and TIMEOUT). Both
 * valid during the call only. */
typedef void (*dds__gcp_done_fn)(void *user, dds__gcp_result result, const dds__gcp_metadata *md, const char *why);

typedef struct dds__gcp_check dds__gcp_check;

/* Start the check on base: POST http://address:port path with Host: metadata.google.internal
 * and Metadata-Flavor: Google (services.c passes the metadata server's address; tests a loopback
 * server). address is a numeric IPv4 or IPv6 address (nothing is looked up, the loop never
 * blocks). done runs once from the loop, never from inside this call. NULL on allocation failure
 * or an address that is not numeric. */
dds__gcp_check *dds__gcp_check_start(struct event_base *base, const char *address, uint16_t port, const char *path,
                                     uint32_t timeout_ms, dds__gcp_done_fn done, void *user);
/* Cancel what is in flight (done is not called afterwards) and release. Loop thread, or any
 * thread once the loop has stopped. Accepts NULL. */
void dds__gcp_check_free(dds__gcp_check *c);

/* The metadata document (JSON): project.projectId and instance.region into md, "unknown" for
 * what is missing, not a string, or too long. 0, or -1 when the body is not a JSON object (md
 * then all "unknown"). Never reads past len; nesting bounded. */
int dds__gcp_parse_metadata(const char *body, size_t len, dds__gcp_metadata *md);

/* "projects/N/regions/R" -> "R"; anything without exactly four '/'-separated parts -> "unknown". */
void dds__gcp_region_of(const char *s, char *out, size_t cap);
#endif
