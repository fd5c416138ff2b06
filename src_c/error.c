/* error.c - error codes, names and messages (public header section "Errors"), and the version. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

#ifndef DDS_VERSION_STRING
#define DDS_VERSION_STRING "0.0.0"
#endif

const char *dds_version(void) { return DDS_VERSION_STRING; }

const char *dds_errcode_name(int code) {
    switch (code) {
    case DDS_OK: return "OK";
    case DDS_ERR_INVALID_CONFIG: return "ERR_INVALID_CONFIG";
    case DDS_ERR_ENVIRONMENT: return "ERR_ENVIRONMENT_DETECTION";
    case DDS_ERR_TRACE_AGENT_START: return "ERR_TRACE_AGENT_START";
    case DDS_ERR_DOGSTATSD_START: return "ERR_DOGSTATSD_START";
    case DDS_ERR_ALREADY_STARTED: return "ERR_ALREADY_STARTED";
    case DDS_ERR_NOT_RUNNING: return "ERR_NOT_RUNNING";
    case DDS_ERR_SHUTDOWN_TIMEOUT: return "ERR_SHUTDOWN_TIMEOUT";
    case DDS_ERR_RUNTIME: return "ERR_RUNTIME";
    case DDS_ERR_LOGS_AGENT_START: return "ERR_LOGS_AGENT_START";
    default: return "ERR_UNKNOWN";
    }
}

/* The prefixes of the original design's ServicesError, so bindings can pass messages through. */
static const char *prefix_of(int code) {
    switch (code) {
    case DDS_ERR_INVALID_CONFIG: return "Invalid configuration: ";
    case DDS_ERR_ENVIRONMENT: return "Failed to detect cloud environment";
    case DDS_ERR_TRACE_AGENT_START: return "Failed to start trace agent: ";
    case DDS_ERR_DOGSTATSD_START: return "Failed to start DogStatsD: ";
    case DDS_ERR_ALREADY_STARTED: return "Services already started";
    case DDS_ERR_NOT_RUNNING: return "Services not running";
    case DDS_ERR_SHUTDOWN_TIMEOUT: return "";
    case DDS_ERR_RUNTIME: return "Runtime error: ";
    case DDS_ERR_LOGS_AGENT_START: return "Failed to start logs agent: ";
    default: return "";
    }
}

int dds__error_set(dds_error *err, int code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    int n = snprintf(err->message, sizeof(err->message), "%s", prefix_of(code));
    if (n < 0) n = 0;
    if (fmt && (size_t)n < sizeof(err->message)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message + n, sizeof(err->message) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}
