/* config.c - configuration defaults, DD_* environment variables and validation (PROTOCOL.md
 * section 5). In: the caller's struct or the environment. Out: a checked config or an error
 * message naming the field, the value and what is allowed. Never exits, never logs the key. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/replace_rules.h"
#include "config_endpoints.h"
#include "error.h"

/* Datadog's public sites (and the staging one, so internal users can test). */
static const char *const known_sites[] = {
    "datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu",
    "ddog-gov.com",  "ap1.datadoghq.com", "ap2.datadoghq.com", "datad0g.com",
};

void dds_config_init(dds_config *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->site = "datadoghq.com";
    cfg->tls_verify = true;
    cfg->dry_run_fd = 1;
    cfg->log_level = DDS_LOG_INFO;
    cfg->use_dogstatsd = true;
    cfg->dogstatsd_port = 8125;
    cfg->dogstatsd_buffer_size = 8192;
    cfg->dogstatsd_queue_bytes = 4u << 20;
    cfg->context_limit = 100000;
    cfg->counter_expiry_s = 300;
    cfg->histogram_aggregates = "max,median,avg,count";
    cfg->histogram_percentiles = "0.95";
    cfg->client_telemetry = true;
    cfg->flush_interval_ms = 10000;
    cfg->use_trace_agent = true;
    cfg->apm_receiver_port = 8126;
    cfg->apm_max_request_bytes = 25u * 1024 * 1024;
    cfg->apm_obfuscate_credit_cards = true;
    cfg->apm_obfuscate_redis = true;
    cfg->apm_obfuscate_valkey = true;
    cfg->apm_obfuscate_memcached = true;
    cfg->apm_obfuscation_cache_enabled = true;
    cfg->apm_obfuscation_cache_max_size = 2u * 1024 * 1024;
    cfg->logs_port = 10517;
    cfg->logs_use_compression = true;
    cfg->logs_compression_level = 3;
    cfg->logs_max_queued_bytes = DDS__LOGS_DEFAULT_MAX_QUEUED_BYTES;
    cfg->enhanced_metrics_enabled = true;
    cfg->request_timeout_ms = 20000;
    cfg->retry_queue_max_bytes = 15u * 1024 * 1024;
    cfg->send_queue_max_bytes = 32u * 1024 * 1024;
}

/* ---- environment ------------------------------------------------------------------------- */

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return (v && v[0]) ? v : NULL;
}

static int parse_bool(const char *name, const char *v, bool *out, dds_error *err) {
    static const char *const yes[] = {"1", "t", "true", "yes", "y", "on"};
    static const char *const no[] = {"0", "f", "false", "no", "n", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
        if (strcasecmp(v, yes[i]) == 0) { *out = true; return 0; }
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        if (strcasecmp(v, no[i]) == 0) { *out = false; return 0; }
    return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "%s must be true or false, got '%.64s'", name, v);
}

static int parse_i64(const char *name, const char *v, int64_t lo, int64_t hi, int64_t *out, dds_error *err) {
    errno = 0;
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    while (end && isspace((unsigned char)*end)) end++;
    if (errno || end == v || *end != '\0' || x < lo || x > hi)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "%s must be an integer in %lld-%lld, got '%.64s'",
                              name, (long long)lo, (long long)hi, v);
    *out = x;
    return 0;
}

static int env_bool(const char *name, bool *field, dds_error *err) {
    const char *v = env_nonempty(name);
    return v ? parse_bool(name, v, field, err) : 0;
}

/* Ports are read wide so that 70000 reaches validation and is reported, not truncated. */
static int env_i32(const char *name, int32_t *field, dds_error *err) {
    const char *v = env_nonempty(name);
    if (!v) return 0;
    int64_t x;
    int rc = parse_i64(name, v, INT32_MIN, INT32_MAX, &x, err);
    if (rc == 0) *field = (int32_t)x;
    return rc;
}

static int env_u32(const char *name, uint32_t *field, uint32_t scale, dds_error *err) {
    const char *v = env_nonempty(name);
    if (!v) return 0;
    int64_t x;
    int rc = parse_i64(name, v, 0, UINT32_MAX / scale, &x, err);
    if (rc == 0) *field = (uint32_t)x * scale;
    return rc;
}

static void env_str(const char *name, const char **field) {
    const char *v = env_nonempty(name);
    if (v) *field = v;
}

static int parse_log_level(const char *v, dds_log_level *out) {
    static const struct { const char *name; dds_log_level level; } map[] = {
        {"trace", DDS_LOG_TRACE}, {"debug", DDS_LOG_DEBUG}, {"info", DDS_LOG_INFO},
        {"warn", DDS_LOG_WARN},   {"warning", DDS_LOG_WARN}, {"error", DDS_LOG_ERROR},
        {"critical", DDS_LOG_ERROR}, {"off", DDS_LOG_OFF},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++)
        if (strcasecmp(v, map[i].name) == 0) { *out = map[i].level; return 0; }
    return -1;
}

int dds_config_from_env(dds_config *cfg, dds_error *err) {
    int rc;
    env_str("DD_API_KEY", &cfg->api_key);
    env_str("DD_SITE", &cfg->site);
    env_str("DD_URL", &cfg->dd_url);
    env_str("DD_DD_URL", &cfg->dd_url);  /* wins over DD_URL, as in the Go agent */
    env_str("HTTPS_PROXY", &cfg->https_proxy);
    env_str("DD_PROXY_HTTPS", &cfg->https_proxy);
    env_str("DD_TLS_CA_PATH", &cfg->tls_ca_path);
    bool skip_ssl = false;
    if ((rc = env_bool("DD_SKIP_SSL_VALIDATION", &skip_ssl, err))) return rc;
    if ((rc = env_bool("DD_DRY_RUN", &cfg->dry_run, err))) return rc;
    if (env_nonempty("DD_SKIP_SSL_VALIDATION")) cfg->tls_verify = !skip_ssl;

    const char *lvl = env_nonempty("DD_LOG_LEVEL");
    if (lvl && parse_log_level(lvl, &cfg->log_level) != 0)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "DD_LOG_LEVEL must be one of trace|debug|info|warn|error|off, got '%.64s'", lvl);

    env_str("DD_TAGS", &cfg->tags);
    env_str("DD_ENV", &cfg->env);
    env_str("DD_SERVICE", &cfg->service);
    env_str("DD_VERSION", &cfg->version);

    if ((rc = env_bool("DD_USE_DOGSTATSD", &cfg->use_dogstatsd, err))) return rc;
    if ((rc = env_i32("DD_DOGSTATSD_PORT", &cfg->dogstatsd_port, err))) return rc;
    env_str("DD_DOGSTATSD_SOCKET", &cfg->dogstatsd_socket);
    if ((rc = env_bool("DD_DOGSTATSD_NON_LOCAL_TRAFFIC", &cfg->dogstatsd_non_local_traffic, err))) return rc;
    if ((rc = env_u32("DD_DOGSTATSD_BUFFER_SIZE", &cfg->dogstatsd_buffer_size, 1, err))) return rc;
    if ((rc = env_u32("DD_DOGSTATSD_SO_RCVBUF", &cfg->dogstatsd_so_rcvbuf, 1, err))) return rc;
    if ((rc = env_u32("DD_DOGSTATSD_QUEUE_BYTES", &cfg->dogstatsd_queue_bytes, 1, err))) return rc;
    env_str("DD_STATSD_METRIC_NAMESPACE", &cfg->metric_namespace);
    if ((rc = env_u32("DD_DOGSTATSD_CONTEXT_LIMIT", &cfg->context_limit, 1, err))) return rc;
    if ((rc = env_u32("DD_DOGSTATSD_EXPIRY_SECONDS", &cfg->counter_expiry_s, 1, err))) return rc;
    env_str("DD_HISTOGRAM_AGGREGATES", &cfg->histogram_aggregates);
    env_str("DD_HISTOGRAM_PERCENTILES", &cfg->histogram_percentiles);
    if ((rc = env_bool("DD_DOGSTATSD_CLIENT_TELEMETRY", &cfg->client_telemetry, err))) return rc;
    if ((rc = env_u32("DD_DOGSTATSD_FLUSH_INTERVAL_MS", &cfg->flush_interval_ms, 1, err))) return rc;

    if ((rc = env_bool("DD_APM_ENABLED", &cfg->use_trace_agent, err))) return rc;
    if ((rc = env_i32("DD_APM_RECEIVER_PORT", &cfg->apm_receiver_port, err))) return rc;
    env_str("DD_APM_RECEIVER_SOCKET", &cfg->apm_receiver_socket);
    if ((rc = env_bool("DD_APM_NON_LOCAL_TRAFFIC", &cfg->apm_non_local_traffic, err))) return rc;
    env_str("DD_APM_DD_URL", &cfg->apm_dd_url);
    env_str("DD_APM_PROFILING_DD_URL", &cfg->apm_profiling_dd_url);
    env_str("DD_APM_TELEMETRY_DD_URL", &cfg->apm_telemetry_dd_url);
    env_str("DD_EVP_PROXY_CONFIG_DD_URL", &cfg->evp_proxy_dd_url);
    if ((rc = env_u32("DD_APM_MAX_PAYLOAD_SIZE", &cfg->apm_max_request_bytes, 1, err))) return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING", &cfg->apm_remove_query_string, err))) return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_CREDIT_CARDS_ENABLED", &cfg->apm_obfuscate_credit_cards, err))) return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS", &cfg->apm_remove_paths_with_digits, err)))
        return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_REDIS_ENABLED", &cfg->apm_obfuscate_redis, err))) return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS", &cfg->apm_redis_remove_all_args, err))) return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_VALKEY_ENABLED", &cfg->apm_obfuscate_valkey, err))) return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_VALKEY_REMOVE_ALL_ARGS", &cfg->apm_valkey_remove_all_args, err))) return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_MEMCACHED_ENABLED", &cfg->apm_obfuscate_memcached, err))) return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_MEMCACHED_KEEP_COMMAND", &cfg->apm_memcached_keep_command, err))) return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_REMOVE_STACK_TRACES", &cfg->apm_remove_stack_traces, err))) return rc;
    if ((rc = env_bool("DD_APM_OBFUSCATION_CACHE_ENABLED", &cfg->apm_obfuscation_cache_enabled, err))) return rc;
    if ((rc = env_u32("DD_APM_OBFUSCATION_CACHE_MAX_SIZE", &cfg->apm_obfuscation_cache_max_size, 1, err))) return rc;
    env_str("DD_APM_REPLACE_TAGS", &cfg->apm_replace_tags);
    /* The Agent's JSON obfuscators (mongodb.query, elasticsearch.body, opensearch.body) are not
     * built in: asking for one is refused rather than silently sending the bodies unchanged. */
    static const char *const json_obfuscators[] = {
        "DD_APM_OBFUSCATION_MONGODB_ENABLED", "DD_APM_OBFUSCATION_ELASTICSEARCH_ENABLED",
        "DD_APM_OBFUSCATION_OPENSEARCH_ENABLED", "DD_APM_OBFUSCATION_SQL_EXEC_PLAN_ENABLED",
        "DD_APM_OBFUSCATION_SQL_EXEC_PLAN_NORMALIZE_ENABLED",
    };
    for (size_t i = 0; i < sizeof(json_obfuscators) / sizeof(*json_obfuscators); i++) {
        bool on = false;
        if ((rc = env_bool(json_obfuscators[i], &on, err))) return rc;
        if (on)
            return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                                  "%s=true is not supported: the JSON obfuscators (mongodb, elasticsearch, "
                                  "opensearch, SQL plans) are not built in; unset it or set it to false",
                                  json_obfuscators[i]);
    }
    if ((rc = env_bool("DD_AGENT_STATS_COMPUTATION_ENABLED", &cfg->agent_stats_computation_enabled, err))) return rc;

    if ((rc = env_bool("DD_LOGS_ENABLED", &cfg->logs_enabled, err))) return rc;
    if ((rc = env_i32("DD_LOGS_PORT", &cfg->logs_port, err))) return rc;
    if ((rc = env_bool("DD_LOGS_NON_LOCAL_TRAFFIC", &cfg->logs_non_local_traffic, err))) return rc;
    env_str("DD_LOGS_CONFIG_LOGS_DD_URL", &cfg->logs_dd_url);
    if ((rc = env_bool("DD_LOGS_CONFIG_USE_COMPRESSION", &cfg->logs_use_compression, err))) return rc;
    if ((rc = env_i32("DD_LOGS_CONFIG_COMPRESSION_LEVEL", &cfg->logs_compression_level, err))) return rc;
    if ((rc = env_u32("DD_LOGS_MAX_QUEUED_BYTES", &cfg->logs_max_queued_bytes, 1, err))) return rc;
    if ((rc = env_bool("DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED", &cfg->logs_opw_enabled, err))) return rc;
    env_str("DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL", &cfg->logs_opw_url);
    env_str("DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS", &cfg->logs_additional_endpoints);

    if ((rc = env_bool("DD_ENHANCED_METRICS_ENABLED", &cfg->enhanced_metrics_enabled, err))) return rc;

    /* DD_FLUSH_TIMEOUT is the Rust binary's name (its logs agent's per-request timeout). */
    if ((rc = env_u32("DD_FLUSH_TIMEOUT", &cfg->request_timeout_ms, 1000, err))) return rc;
    if ((rc = env_u32("DD_FORWARDER_TIMEOUT", &cfg->request_timeout_ms, 1000, err))) return rc;
    if ((rc = env_u32("DD_FORWARDER_RETRY_QUEUE_PAYLOADS_MAX_SIZE", &cfg->retry_queue_max_bytes, 1, err)))
        return rc;
    if ((rc = env_u32("DD_FORWARDER_SEND_QUEUE_PAYLOADS_MAX_SIZE", &cfg->send_queue_max_bytes, 1, err))) return rc;
    return 0;
}

/* ---- validation ---------------------------------------------------------------------------- */

void dds__config_each_tag(const char *list, void (*fn)(void *user, const char *tag, size_t len), void *user) {
    if (!list) return;
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t') p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t') p++;
        if (p > start) fn(user, start, (size_t)(p - start));
    }
}

typedef struct ftag {
    const char *p;
    size_t len, klen, order;
} ftag;

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static int ftag_by_key_then_order(const void *x, const void *y) {
    const ftag *a = x, *b = y;
    int c = cmp_bytes(a->p, a->klen, b->p, b->klen);
    return c ? c : (a->order > b->order) - (a->order < b->order);
}

static int ftag_by_text(const void *x, const void *y) {
    const ftag *a = x, *b = y;
    return cmp_bytes(a->p, a->len, b->p, b->len);
}

static bool ftag_sep(char c) { return c == ',' || c == ' ' || (c >= '\t' && c <= '\r'); }

char *dds__config_function_tags(const char *list) {
    size_t n = 0, total = 0;
    const char *p = list ? list : "";
    size_t len = strlen(p);
    /* A token takes at least two bytes with its separator: this bounds the array. */
    ftag *v = malloc((len / 2 + 1) * sizeof(*v));
    if (!v) return NULL;
    while (*p) {
        while (*p && ftag_sep(*p)) p++;
        const char *start = p, *colon = NULL;
        size_t colons = 0;
        while (*p && !ftag_sep(*p)) {
            if (*p == ':') { colons++; if (!colon) colon = p; }
            p++;
        }
        if (p > start && colons == 1)
            v[n] = (ftag){start, (size_t)(p - start), (size_t)(colon - start), n}, n++;
    }
    /* A map in the Rust binary: the last value of a key wins. */
    qsort(v, n, sizeof(*v), ftag_by_key_then_order);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && cmp_bytes(v[i].p, v[i].klen, v[i + 1].p, v[i + 1].klen) == 0) continue;
        v[w++] = v[i];
    }
    qsort(v, w, sizeof(*v), ftag_by_text);
    for (size_t i = 0; i < w; i++) total += v[i].len + 1;
    char *out = malloc(total + 1);
    if (out) {
        size_t o = 0;
        for (size_t i = 0; i < w; i++) {
            if (i) out[o++] = ',';
            memcpy(out + o, v[i].p, v[i].len);
            o += v[i].len;
        }
        out[o] = '\0';
    }
    free(v);
    return out;
}

/* Tokens of a "a,b c" list, one at a time into tok (NUL-terminated, truncated to cap). */
static const char *next_token(const char *p, char *tok, size_t cap) {
    while (*p == ',' || *p == ' ' || *p == '\t') p++;
    if (!*p) return NULL;
    size_t n = 0;
    while (*p && *p != ',' && *p != ' ' && *p != '\t') {
        if (n + 1 < cap) tok[n++] = *p;
        p++;
    }
    tok[n] = '\0';
    return p;
}

int dds__config_histogram_aggregates(const char *spec, uint32_t *mask_out, char *bad, size_t bad_cap) {
    static const struct { const char *name; uint32_t bit; } map[] = {
        {"max", 1u << 0}, {"min", 1u << 1}, {"median", 1u << 2},
        {"avg", 1u << 3}, {"sum", 1u << 4}, {"count", 1u << 5},
    };
    uint32_t mask = 0;
    char tok[64];
    const char *p = spec ? spec : "";
    while ((p = next_token(p, tok, sizeof(tok))) != NULL) {
        size_t i;
        for (i = 0; i < sizeof(map) / sizeof(*map); i++)
            if (strcmp(tok, map[i].name) == 0) break;
        if (i == sizeof(map) / sizeof(*map)) {
            if (bad) snprintf(bad, bad_cap, "%s", tok);
            return -1;
        }
        mask |= map[i].bit;
    }
    *mask_out = mask;
    return 0;
}

int dds__config_histogram_percentiles(const char *spec, double *out, size_t cap, size_t *n_out,
                                      char *bad, size_t bad_cap) {
    size_t n = 0;
    char tok[64];
    const char *p = spec ? spec : "";
    while ((p = next_token(p, tok, sizeof(tok))) != NULL) {
        char *end;
        errno = 0;
        double v = strtod(tok, &end);
        if (errno || *end || !(v > 0.0 && v < 1.0) || n == cap) {
            if (bad) snprintf(bad, bad_cap, "%s", tok);
            return -1;
        }
        out[n++] = v;
    }
    *n_out = n;
    return 0;
}

static bool namespace_ok(const char *ns) {
    if (!isalpha((unsigned char)ns[0]) || ns[0] & 0x80) return false;
    for (const char *p = ns + 1; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.') || (*p & 0x80)) return false;
    return true;
}

/* The Rust binary's rule for DD_SITE: ^[a-zA-Z0-9._:-]+$. A site of that form that is not in
 * known_sites is used as given (Datadog adds sites), with a warning at start. */
static bool site_ok(const char *site) {
    for (const char *p = site; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == ':' || *p == '-') || (*p & 0x80))
            return false;
    return true;
}

bool dds__config_site_known(const char *site) {
    for (size_t i = 0; i < sizeof(known_sites) / sizeof(*known_sites); i++)
        if (site && strcasecmp(site, known_sites[i]) == 0) return true;
    return false;
}

static bool url_ok(const char *u) {
    return (strncmp(u, "http://", 7) == 0 && u[7]) || (strncmp(u, "https://", 8) == 0 && u[8]);
}

/* The Agent's logs_dd_url is host:port (no scheme); a URL is taken too. A scheme other than
 * http(s), a path or whitespace in the host:port form is a typo worth refusing at start. */
static bool logs_url_ok(const char *u) {
    if (strstr(u, "://")) return url_ok(u);
    for (const char *p = u; *p; p++)
        if (*p == '/' || isspace((unsigned char)*p) || (unsigned char)*p < 0x20) return false;
    return u[0] != ':';
}

static int check_port(const char *field, int32_t port, dds_error *err) {
    if (port < 0 || port > 65535)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "%s must be 0-65535, got %ld", field, (long)port);
    return 0;
}

static int check_unix_path(const char *field, const char *path, dds_error *err) {
    /* sun_path holds 108 bytes with the NUL on Linux. */
    if (path && strlen(path) > 107)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "%s must be at most 107 bytes, got %zu",
                              field, strlen(path));
    return 0;
}

/* The rule transport/cacerts.c applies to an explicit path: a readable regular file or directory.
 * Empty is allowed (the user's choice); a path that is not there is a typo worth failing on
 * before anything is sent, rather than a silent fallback to other certificates. */
static int check_ca_path(const char *path, dds_error *err) {
    struct stat st;
    if (stat(path, &st) != 0)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "tls_ca_path must be a readable PEM file or directory, got '%.128s' (%s)", path,
                              strerror(errno));
    bool dir = S_ISDIR(st.st_mode);
    if (!dir && !S_ISREG(st.st_mode))
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "tls_ca_path must be a readable PEM file or directory, got '%.128s' (neither)", path);
    if (access(path, dir ? R_OK | X_OK : R_OK) != 0)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "tls_ca_path must be a readable PEM file or directory, got '%.128s' (%s)", path,
                              strerror(errno));
    return 0;
}

int dds_config_validate(const dds_config *cfg, dds_error *err) {
    int rc;
    if (!cfg) return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "config must not be NULL");
    if (!cfg->site || !cfg->site[0])
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "site must be set (e.g. datadoghq.com)");
    if (!site_ok(cfg->site))
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "site must be a Datadog site such as datadoghq.com, us3.datadoghq.com, datadoghq.eu "
                              "(letters, digits, '.', '_', ':', '-'), got '%.64s'",
                              cfg->site);
    if ((unsigned)cfg->log_level > DDS_LOG_OFF)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "log_level must be one of trace|debug|info|warn|error|off, got %d", (int)cfg->log_level);
    if ((rc = check_port("dogstatsd_port", cfg->dogstatsd_port, err))) return rc;
    if ((rc = check_port("apm_receiver_port", cfg->apm_receiver_port, err))) return rc;
    if ((rc = check_port("logs_port", cfg->logs_port, err))) return rc;
    if (cfg->logs_compression_level < 1 || cfg->logs_compression_level > 19)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "logs_compression_level must be 1-19, got %ld",
                              (long)cfg->logs_compression_level);
    if (cfg->logs_max_queued_bytes < DDS__LOGS_MIN_MAX_QUEUED_BYTES)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "logs_max_queued_bytes must be at least %u, got %u",
                              (unsigned)DDS__LOGS_MIN_MAX_QUEUED_BYTES, cfg->logs_max_queued_bytes);
    if (cfg->logs_dd_url && cfg->logs_dd_url[0] && !logs_url_ok(cfg->logs_dd_url))
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "logs_dd_url must be an http:// or https:// URL or host:port, got '%.96s'",
                              cfg->logs_dd_url);
    /* The Rust binary disables its logs agent silently on an empty URL; a start error says why. */
    if (cfg->logs_enabled && cfg->logs_opw_enabled && (!cfg->logs_opw_url || !cfg->logs_opw_url[0]))
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "logs_opw_url (DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL) must be set when "
                              "logs_opw_enabled is true");
    if (cfg->logs_additional_endpoints && cfg->logs_additional_endpoints[0]) {
        dds__logs_endpoint eps[DDS__LOGS_ENDPOINTS_MAX];
        size_t n;
        char why[DDS__ENDPOINTS_WHY_MAX];
        int bad = dds__logs_endpoints_parse(cfg->logs_additional_endpoints, eps, DDS__LOGS_ENDPOINTS_MAX, &n, why);
        dds__logs_endpoints_wipe(eps, n);
        if (bad)
            return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                                  "logs_additional_endpoints (DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS) is not valid: %s",
                                  why);
    }
    if ((rc = check_unix_path("dogstatsd_socket", cfg->dogstatsd_socket, err))) return rc;
    if ((rc = check_unix_path("apm_receiver_socket", cfg->apm_receiver_socket, err))) return rc;
    if (cfg->dogstatsd_buffer_size < 512 || cfg->dogstatsd_buffer_size > 65536)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "dogstatsd_buffer_size must be 512-65536, got %u",
                              cfg->dogstatsd_buffer_size);
    /* The queue must hold two of the largest records: a record that does not fit before the end
     * of the ring starts again at its beginning and can waste up to one record's worth. */
    uint64_t queue_min = 2 * ((uint64_t)cfg->dogstatsd_buffer_size + 16);
    if (cfg->dogstatsd_queue_bytes && (cfg->dogstatsd_queue_bytes < queue_min || cfg->dogstatsd_queue_bytes > (1u << 30)))
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "dogstatsd_queue_bytes must be 0 or %llu-1073741824 (2 x (dogstatsd_buffer_size + 16) "
                              "at least), got %u", (unsigned long long)queue_min, cfg->dogstatsd_queue_bytes);
    if (cfg->metric_namespace && cfg->metric_namespace[0] && !namespace_ok(cfg->metric_namespace))
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "metric_namespace must start with a letter and contain only letters, digits, "
                              "'_' and '.', got '%.64s'", cfg->metric_namespace);
    char bad[64];
    uint32_t mask;
    if (dds__config_histogram_aggregates(cfg->histogram_aggregates, &mask, bad, sizeof(bad)) != 0)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "histogram_aggregates must be a list of max|min|median|avg|sum|count, got '%s'", bad);
    double pct[16];
    size_t npct;
    if (dds__config_histogram_percentiles(cfg->histogram_percentiles, pct, 16, &npct, bad, sizeof(bad)) != 0)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG,
                              "histogram_percentiles must be up to 16 numbers between 0 and 1 exclusive, got '%s'",
                              bad);
    if (cfg->flush_interval_ms < 100 || cfg->flush_interval_ms > 3600000)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "flush_interval_ms must be 100-3600000, got %u",
                              cfg->flush_interval_ms);
    const struct { const char *field; const char *value; } urls[] = {
        {"dd_url", cfg->dd_url},
        {"apm_dd_url", cfg->apm_dd_url},
        {"apm_profiling_dd_url", cfg->apm_profiling_dd_url},
        {"apm_telemetry_dd_url", cfg->apm_telemetry_dd_url},
        {"evp_proxy_dd_url", cfg->evp_proxy_dd_url},
        {"logs_opw_url", cfg->logs_opw_url},
        {"https_proxy", cfg->https_proxy},
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(*urls); i++)
        if (urls[i].value && urls[i].value[0] && !url_ok(urls[i].value))
            return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "%s must be an http:// or https:// URL, got '%.96s'",
                                  urls[i].field, urls[i].value);
    if (cfg->tls_ca_path && cfg->tls_ca_path[0] && (rc = check_ca_path(cfg->tls_ca_path, err))) return rc;
    if (cfg->request_timeout_ms < 100)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "request_timeout_ms must be at least 100, got %u",
                              cfg->request_timeout_ms);
    if (cfg->apm_replace_tags && cfg->apm_replace_tags[0]) {
        dds__replace_rules *rules = NULL;
        char why[200];
        if (dds__replace_rules_parse(cfg->apm_replace_tags, &rules, why, sizeof(why)) != 0)
            return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "apm_replace_tags: %s", why);
        dds__replace_rules_free(rules);
    }
    if (cfg->send_queue_max_bytes < 1024)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "send_queue_max_bytes must be at least 1024, got %u",
                              cfg->send_queue_max_bytes);
    if (cfg->apm_max_request_bytes < 1024)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "apm_max_request_bytes must be at least 1024, got %u",
                              cfg->apm_max_request_bytes);
    return 0;
}

/* ---- owned copy ------------------------------------------------------------------------------ */

#define DDS__CONFIG_STRINGS(X)                                                                    \
    X(api_key) X(site) X(dd_url) X(https_proxy) X(tls_ca_path) X(tags) X(env) X(service)          \
    X(version) X(dogstatsd_socket) X(metric_namespace) X(histogram_aggregates)                    \
    X(histogram_percentiles) X(apm_receiver_socket) X(apm_dd_url) X(apm_profiling_dd_url)         \
    X(apm_telemetry_dd_url) X(evp_proxy_dd_url) X(logs_dd_url) X(logs_opw_url)                   \
    X(logs_additional_endpoints) X(apm_replace_tags)

int dds__config_dup(dds_config *dst, const dds_config *src) {
    *dst = *src;
#define DUP(f) dst->f = NULL;
    DDS__CONFIG_STRINGS(DUP)
#undef DUP
#define DUP(f)                                      \
    if (src->f) {                                   \
        if (!(dst->f = strdup(src->f))) goto fail;  \
    }
    DDS__CONFIG_STRINGS(DUP)
#undef DUP
    return 0;
fail:
    dds__config_release(dst);
    return -1;
}

void dds__config_release(dds_config *cfg) {
#define REL(f)                  \
    free((char *)cfg->f);       \
    cfg->f = NULL;
    DDS__CONFIG_STRINGS(REL)
#undef REL
}

char *dds__config_base_url(const char *override, const char *fmt, const char *site) {
    char *out = NULL;
    if (override && override[0]) {
        out = strdup(override);
        if (out) {
            size_t n = strlen(out);
            while (n > 0 && out[n - 1] == '/') out[--n] = '\0';
        }
        return out;
    }
    if (asprintf(&out, fmt, site) < 0) return NULL;
    return out;
}

/* DD_APM_PROFILING_DD_URL: the Agent's full URL (https://host/api/v2/profile) is used as given;
 * the Rust binary's bare prefix (https://host or https://host/) gets /api/v2/profile appended. */
char *dds__config_profiling_url(const dds_config *cfg) {
    const char *o = cfg->apm_profiling_dd_url;
    if (!o || !o[0]) return dds__config_base_url(NULL, "https://intake.profile.%s/api/v2/profile", cfg->site);
    const char *host = strstr(o, "://");
    host = host ? host + 3 : o;
    const char *path = strchr(host, '/');
    bool bare = !path || strspn(path, "/") == strlen(path);
    if (!bare) return dds__config_base_url(o, NULL, NULL);
    char *out = NULL;
    int n = (int)(path ? (size_t)(path - o) : strlen(o));
    if (asprintf(&out, "%.*s/api/v2/profile", n, o) < 0) return NULL;
    return out;
}

char *dds__config_metrics_url(const dds_config *cfg) {
    return dds__config_base_url(cfg->dd_url, "https://api.%s", cfg->site);
}

char *dds__config_logs_url(const dds_config *cfg) {
    char *out = NULL;
    const char *o = cfg->logs_dd_url;
    if (!o || !o[0]) {
        if (asprintf(&out, "https://http-intake.logs.%s" DDS__LOGS_INTAKE_PATH, cfg->site) < 0) return NULL;
        return out;
    }
    size_t n = strlen(o);
    while (n > 0 && o[n - 1] == '/') n--;
    /* The Agent's host:port form is always https. */
    const char *scheme = strstr(o, "://") ? "" : "https://";
    if (asprintf(&out, "%s%.*s" DDS__LOGS_INTAKE_PATH, scheme, (int)n, o) < 0) return NULL;
    return out;
}

static bool is_https(const char *url) { return url && strncasecmp(url, "https://", 8) == 0; }

/* An override replaces the default, which is https for every intake. */
static bool https_or_default(const char *override) { return !override || !override[0] || is_https(override); }

bool dds__config_any_https(const dds_config *cfg) {
    if (is_https(cfg->https_proxy)) return true;
    if (cfg->use_dogstatsd && https_or_default(cfg->dd_url)) return true;
    if (cfg->logs_enabled) {
        /* Additional endpoints are always https. */
        const char *extra = cfg->logs_additional_endpoints;
        if (extra && extra[strspn(extra, " \t\r\n")] && strcmp(extra + strspn(extra, " \t\r\n"), "[]") != 0)
            return true;
        if (cfg->logs_opw_enabled) {
            if (is_https(cfg->logs_opw_url)) return true;
        } else if (!cfg->logs_dd_url || !strstr(cfg->logs_dd_url, "://") || is_https(cfg->logs_dd_url)) {
            /* host:port (no scheme) is https too. */
            return true;
        }
    }
    /* The EVP proxy has no default to override per request: https://<subdomain>.<site>. */
    return cfg->use_trace_agent &&
           (https_or_default(cfg->apm_dd_url) || https_or_default(cfg->apm_profiling_dd_url) ||
            https_or_default(cfg->apm_telemetry_dd_url) || https_or_default(cfg->evp_proxy_dd_url));
}

bool dds__config_is_dry_run(const dds_config *cfg) {
    return cfg->dry_run || !cfg->api_key || !cfg->api_key[0];
}
