/* fuzz_config.c - configuration from environment strings: the input is split into values for
 * the DD_* variables dds_config_from_env reads, then validated. Errors must be clean messages. */
#include <stdlib.h>
#include <string.h>

#include "datadog_serverless.h"

static const char *const vars[] = {
    "DD_API_KEY", "DD_SITE", "DD_DD_URL", "DD_URL", "DD_PROXY_HTTPS", "HTTPS_PROXY", "DD_SKIP_SSL_VALIDATION",
    "DD_LOG_LEVEL", "DD_TAGS", "DD_ENV", "DD_SERVICE", "DD_VERSION", "DD_USE_DOGSTATSD", "DD_DOGSTATSD_PORT",
    "DD_DOGSTATSD_SOCKET", "DD_DOGSTATSD_NON_LOCAL_TRAFFIC", "DD_DOGSTATSD_BUFFER_SIZE", "DD_DOGSTATSD_SO_RCVBUF",
    "DD_STATSD_METRIC_NAMESPACE", "DD_DOGSTATSD_CONTEXT_LIMIT", "DD_DOGSTATSD_EXPIRY_SECONDS",
    "DD_HISTOGRAM_AGGREGATES", "DD_HISTOGRAM_PERCENTILES", "DD_DOGSTATSD_CLIENT_TELEMETRY",
    "DD_DOGSTATSD_FLUSH_INTERVAL_MS", "DD_APM_ENABLED", "DD_APM_RECEIVER_PORT", "DD_APM_RECEIVER_SOCKET",
    "DD_APM_NON_LOCAL_TRAFFIC", "DD_APM_DD_URL", "DD_APM_PROFILING_DD_URL", "DD_APM_TELEMETRY_DD_URL",
    "DD_EVP_PROXY_CONFIG_DD_URL", "DD_APM_MAX_PAYLOAD_SIZE", "DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING",
    "DD_APM_OBFUSCATION_CREDIT_CARDS_ENABLED", "DD_FORWARDER_TIMEOUT", "DD_FORWARDER_RETRY_QUEUE_PAYLOADS_MAX_SIZE",
    "DD_ENHANCED_METRICS_ENABLED",
};
#define NVARS (sizeof(vars) / sizeof(*vars))

extern char **environ;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Input: "<var index byte><value bytes>\0<var index byte><value>\0..." (a later value of the
     * same variable replaces the earlier one). The environment is an array built here and set as
     * `environ` for the call: setenv() keeps every value it ever replaced (glibc cannot know who
     * still points at it), which ran a 50 M-execution campaign out of memory. */
    char *copy = malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *values[NVARS] = {0};
    size_t i = 0;
    while (i < size) {
        size_t v = (unsigned char)copy[i] % NVARS;
        const char *value = copy + i + 1;
        size_t n = i + 1 <= size ? strlen(value) : 0;
        if (i + 1 <= size) values[v] = value;
        i += n + 2;
    }
    char *env[NVARS + 1];
    size_t ne = 0;
    for (size_t k = 0; k < NVARS; k++) {
        if (!values[k]) continue;
        size_t nl = strlen(vars[k]), vl = strlen(values[k]);
        char *e = malloc(nl + 1 + vl + 1);
        memcpy(e, vars[k], nl);
        e[nl] = '=';
        memcpy(e + nl + 1, values[k], vl + 1);
        env[ne++] = e;
    }
    env[ne] = NULL;
    char **saved = environ;
    environ = env;
    dds_config cfg;
    dds_config_init(&cfg);
    dds_error err = {0};
    if (dds_config_from_env(&cfg, &err) == 0) {
        if (dds_config_validate(&cfg, &err) != 0 && (err.code != DDS_ERR_INVALID_CONFIG || !err.message[0])) abort();
    } else if (err.code != DDS_ERR_INVALID_CONFIG || strncmp(err.message, "Invalid configuration: ", 23) != 0) {
        abort();
    }
    environ = saved;
    for (size_t k = 0; k < ne; k++) free(env[k]);
    free(copy);
    return 0;
}
