/* log.h - internal logging: per-instance level, process-wide sink, secret redaction, rate limits. */
#ifndef DDS_LOG_H
#define DDS_LOG_H
#include <stdint.h>

#include "datadog_serverless.h"

/* One per instance (or a stack one for config-time messages). Read-only after setup. */
typedef struct dds__logger {
    dds_log_level level;
    /* A secret (the API key) that must never reach a sink: any occurrence is replaced by
     * "***redacted***" before the line leaves log.c. Not owned. May be NULL. */
    const char *secret;
} dds__logger;

void dds__log(const dds__logger *lg, dds_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define DDS__LOG_ENABLED(lg, lvl) ((lg) != NULL && (lvl) >= (lg)->level && (lg)->level != DDS_LOG_OFF)
#define dds__log_trace(lg, ...) do { if (DDS__LOG_ENABLED(lg, DDS_LOG_TRACE)) dds__log(lg, DDS_LOG_TRACE, __VA_ARGS__); } while (0)
#define dds__log_debug(lg, ...) do { if (DDS__LOG_ENABLED(lg, DDS_LOG_DEBUG)) dds__log(lg, DDS_LOG_DEBUG, __VA_ARGS__); } while (0)
#define dds__log_info(lg, ...)  do { if (DDS__LOG_ENABLED(lg, DDS_LOG_INFO))  dds__log(lg, DDS_LOG_INFO, __VA_ARGS__); } while (0)
#define dds__log_warn(lg, ...)  do { if (DDS__LOG_ENABLED(lg, DDS_LOG_WARN))  dds__log(lg, DDS_LOG_WARN, __VA_ARGS__); } while (0)
#define dds__log_error(lg, ...) do { if (DDS__LOG_ENABLED(lg, DDS_LOG_ERROR)) dds__log(lg, DDS_LOG_ERROR, __VA_ARGS__); } while (0)

/*
 * Bounded-rate logging for drops on the wire: at most one line per interval per limiter; the
 * lines skipped meanwhile are counted and reported with the next allowed one.
 * Usage: uint64_t skipped; if (dds__ratelimit_allow(&rl, now_ms, &skipped)) log(..., skipped).
 */
typedef struct dds__ratelimit {
    int64_t next_ms;
    uint64_t skipped;
    uint32_t interval_ms;  /* 0 means 10000 */
} dds__ratelimit;

int dds__ratelimit_allow(dds__ratelimit *rl, int64_t now_ms, uint64_t *skipped_out);
#endif
