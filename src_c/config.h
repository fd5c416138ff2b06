/* config.h - internal side of the configuration: an owned deep copy and derived values. */
#ifndef DDS_CONFIG_H
#define DDS_CONFIG_H
#include <stdbool.h>
#include <stdint.h>

#include "datadog_serverless.h"

/* Deep copy of every string of src into dst (dst's strings owned, release with
 * dds__config_release). Returns 0 or -1 on allocation failure (dst then holds nothing). */
int dds__config_dup(dds_config *dst, const dds_config *src);
void dds__config_release(dds_config *cfg);

/* Histogram options parsed (validated by dds_config_validate, so these cannot fail after it). */
int dds__config_histogram_aggregates(const char *spec, uint32_t *mask_out, char *bad, size_t bad_cap);
int dds__config_histogram_percentiles(const char *spec, double *out, size_t cap, size_t *n_out,
                                      char *bad, size_t bad_cap);

/* Split a DD_TAGS-style list (commas or spaces) calling fn for each non-empty tag. */
void dds__config_each_tag(const char *list, void (*fn)(void *user, const char *tag, size_t len), void *user);

/* DD_TAGS as the Rust binary puts it in the tracer payload tag _dd.tags.function: split on
 * commas and whitespace, only key:value tokens with exactly one ':' kept (for a repeated key the
 * last one), sorted bytewise and joined with ','. A malloc'd string ("" when nothing is kept),
 * NULL on allocation failure. */
char *dds__config_function_tags(const char *list);

/* The override (trailing '/' removed) when it is set and non-empty, else fmt with the site
 * ("https://api.%s"). A malloc'd string, NULL on allocation failure. */
char *dds__config_base_url(const char *override, const char *fmt, const char *site);
/* The profiles URL: DD_APM_PROFILING_DD_URL as a full URL (the Agent's form), or a bare
 * scheme://host[:port][/] prefix with /api/v2/profile appended (the Rust binary's form), else
 * https://intake.profile.<site>/api/v2/profile. malloc'd, NULL on allocation failure. */
char *dds__config_profiling_url(const dds_config *cfg);
/* true for the Datadog sites we know; another valid name is used with a warning at start. */
bool dds__config_site_known(const char *site);
/* "https://api.<site>" unless dd_url overrides; no trailing '/'. Returns a malloc'd string. */
char *dds__config_metrics_url(const dds_config *cfg);
/* The logs agent's queue bound: 8 MiB holds two full 4 MiB requests between two flushes, and
 * stays small beside a function's memory; below 1 MiB one largest entry would not fit. */
#define DDS__LOGS_DEFAULT_MAX_QUEUED_BYTES (8u * 1024 * 1024)
#define DDS__LOGS_MIN_MAX_QUEUED_BYTES (1u * 1024 * 1024)
#define DDS__LOGS_INTAKE_PATH "/api/v2/logs"
/* The full logs intake URL: logs_dd_url (a URL, or host:port made https) or
 * https://http-intake.logs.<site>, then /api/v2/logs. malloc'd, NULL on allocation failure. */
char *dds__config_logs_url(const dds_config *cfg);
/* true when some request of an enabled service may go over https: an https proxy, or an intake
 * URL left at its https default or overridden with an https:// one. */
bool dds__config_any_https(const dds_config *cfg);
/* true when the API key is unset or empty, or dry_run is forced: nothing is sent. Without
 * dry_run the lines written are one-line summaries, with it the payloads in full. */
bool dds__config_is_dry_run(const dds_config *cfg);
#endif
