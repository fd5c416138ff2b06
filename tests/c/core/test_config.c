/* Tests of src_c/config.c: defaults, DD_* variables, validation messages. */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "datadog_serverless.h"
#include "test.h"

static const char *const all_vars[] = {
    "DD_API_KEY", "DD_SITE", "DD_DD_URL", "DD_URL", "DD_PROXY_HTTPS", "HTTPS_PROXY", "DD_LOG_LEVEL",
    "DD_DOGSTATSD_PORT", "DD_USE_DOGSTATSD", "DD_STATSD_METRIC_NAMESPACE", "DD_TAGS", "DD_ENV",
    "DD_SERVICE", "DD_VERSION", "DD_DOGSTATSD_SOCKET", "DD_DOGSTATSD_NON_LOCAL_TRAFFIC",
    "DD_APM_RECEIVER_PORT", "DD_SKIP_SSL_VALIDATION", "DD_DOGSTATSD_BUFFER_SIZE", "DD_FORWARDER_TIMEOUT",
    "DD_TLS_CA_PATH", "DD_LOGS_ENABLED", "DD_LOGS_PORT", "DD_LOGS_NON_LOCAL_TRAFFIC",
    "DD_LOGS_CONFIG_LOGS_DD_URL", "DD_LOGS_CONFIG_USE_COMPRESSION", "DD_LOGS_CONFIG_COMPRESSION_LEVEL",
    "DD_LOGS_MAX_QUEUED_BYTES", "DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS",
    "DD_APM_OBFUSCATION_REDIS_ENABLED", "DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS", "DD_APM_OBFUSCATION_VALKEY_ENABLED",
    "DD_APM_OBFUSCATION_VALKEY_REMOVE_ALL_ARGS", "DD_APM_OBFUSCATION_MEMCACHED_ENABLED",
    "DD_APM_OBFUSCATION_MEMCACHED_KEEP_COMMAND", "DD_APM_OBFUSCATION_REMOVE_STACK_TRACES", "DD_APM_REPLACE_TAGS",
    "DD_APM_OBFUSCATION_MONGODB_ENABLED", "DD_APM_OBFUSCATION_ELASTICSEARCH_ENABLED",
    "DD_LOGS_MAX_QUEUED_BYTES", "DD_DRY_RUN", "DD_FLUSH_TIMEOUT", "DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED",
    "DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL", "DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS",
    "DD_FORWARDER_SEND_QUEUE_PAYLOADS_MAX_SIZE", "DD_FORWARDER_RETRY_QUEUE_PAYLOADS_MAX_SIZE",
    "DD_AGENT_STATS_COMPUTATION_ENABLED",
    "DD_ENHANCED_METRICS_ENABLED", "DD_DOGSTATSD_QUEUE_BYTES", "DD_APM_OBFUSCATION_CACHE_ENABLED",
    "DD_APM_OBFUSCATION_CACHE_MAX_SIZE",
};

static void clear_env(void) {
    for (size_t i = 0; i < sizeof(all_vars) / sizeof(*all_vars); i++) unsetenv(all_vars[i]);
}

TEST(defaults_are_valid) {
    dds_config c;
    dds_config_init(&c);
    CHECK_EQ_STR(c.site, "datadoghq.com");
    CHECK_EQ_INT(c.dogstatsd_port, 8125);
    CHECK_EQ_INT(c.apm_receiver_port, 8126);
    CHECK(c.use_dogstatsd);
    CHECK(c.tls_verify);
    CHECK_EQ_INT(c.log_level, DDS_LOG_INFO);
    CHECK_EQ_INT(c.dogstatsd_buffer_size, 8192);
    CHECK(c.api_key == NULL);
    dds_error err = {0};
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    CHECK(dds__config_is_dry_run(&c)); /* no key: dry run, not an error */
}

TEST(port_out_of_range_names_field_and_value) {
    dds_config c;
    dds_config_init(&c);
    c.dogstatsd_port = 70000;
    dds_error err = {0};
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(err.code, DDS_ERR_INVALID_CONFIG);
    CHECK_EQ_STR(err.message, "Invalid configuration: dogstatsd_port must be 0-65535, got 70000");
    c.dogstatsd_port = -1;
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    c.dogstatsd_port = 0; /* any free port */
    CHECK_EQ_INT(dds_config_validate(&c, NULL), 0);
    c.apm_receiver_port = 65536;
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "apm_receiver_port") != NULL);
}

TEST(site_any_name_of_the_rust_binarys_form) {
    dds_config c;
    dds_config_init(&c);
    dds_error err = {0};
    const char *good[] = {"datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu",
                          "ddog-gov.com", "ap1.datadoghq.com", "ap2.datadoghq.com"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        c.site = good[i];
        CHECK_MSG(dds_config_validate(&c, &err) == 0, "site %s rejected", good[i]);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) CHECK(dds__config_site_known(good[i]));
    /* A site Datadog may add later is used as given (a warning at start, tested end to end). */
    const char *later[] = {"ap3.datadoghq.com", "us7.datadoghq.com", "localhost:8080", "a_b-c.example"};
    for (size_t i = 0; i < sizeof(later) / sizeof(*later); i++) {
        c.site = later[i];
        CHECK_MSG(dds_config_validate(&c, &err) == 0, "site %s rejected: %s", later[i], err.message);
        CHECK(!dds__config_site_known(later[i]));
    }
    const char *bad[] = {"https://datadoghq.com", "datadoghq.com/", "data dog", "caf\xc3\xa9.com", "a\nb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        c.site = bad[i];
        CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
        CHECK(strstr(err.message, "site must be a Datadog site") != NULL);
    }
}

TEST(profiling_url_full_or_prefix) {
    dds_config c;
    dds_config_init(&c);
    struct { const char *in, *want; } cases[] = {
        {NULL, "https://intake.profile.datadoghq.com/api/v2/profile"},
        {"https://intake.profile.datadoghq.eu/api/v2/profile", "https://intake.profile.datadoghq.eu/api/v2/profile"},
        {"http://127.0.0.1:9000", "http://127.0.0.1:9000/api/v2/profile"},     /* the Rust binary's prefix */
        {"http://127.0.0.1:9000/", "http://127.0.0.1:9000/api/v2/profile"},
        {"http://127.0.0.1:9000/custom/path/", "http://127.0.0.1:9000/custom/path"}, /* the Agent's full URL */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        c.apm_profiling_dd_url = cases[i].in;
        char *u = dds__config_profiling_url(&c);
        CHECK_EQ_STR(u, cases[i].want);
        free(u);
    }
}

TEST(dry_run_and_flush_timeout_variables) {
    clear_env();
    dds_config c;
    dds_error err = {0};
    dds_config_init(&c);
    setenv("DD_DRY_RUN", "true", 1);
    setenv("DD_API_KEY", "k", 1);
    setenv("DD_FLUSH_TIMEOUT", "9", 1);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK(c.dry_run);
    CHECK(dds__config_is_dry_run(&c)); /* a key and DD_DRY_RUN: still nothing sent */
    CHECK_EQ_INT(c.request_timeout_ms, 9000);
    setenv("DD_FORWARDER_TIMEOUT", "4", 1); /* the Agent's name wins */
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK_EQ_INT(c.request_timeout_ms, 4000);
    setenv("DD_DRY_RUN", "perhaps", 1);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "DD_DRY_RUN") != NULL);
    clear_env();
}

TEST(namespace_rules) {
    dds_config c;
    dds_config_init(&c);
    dds_error err = {0};
    const char *good[] = {"app", "my_app.v2", "A1", "app."};
    const char *bad[] = {"1app", "_app", "app-x", "app x", ".app", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        c.metric_namespace = good[i];
        CHECK_MSG(dds_config_validate(&c, &err) == 0, "namespace %s rejected", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        c.metric_namespace = bad[i];
        CHECK_MSG(dds_config_validate(&c, &err) == DDS_ERR_INVALID_CONFIG, "namespace %s accepted", bad[i]);
        CHECK(strstr(err.message, "metric_namespace") != NULL);
    }
}

TEST(other_validation) {
    dds_config c;
    dds_error err = {0};
    dds_config_init(&c);
    c.log_level = (dds_log_level)9;
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "log_level") != NULL);
    dds_config_init(&c);
    c.dd_url = "ftp://x";
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "dd_url") != NULL);
    dds_config_init(&c);
    c.histogram_aggregates = "max,p99";
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "p99") != NULL);
    dds_config_init(&c);
    c.histogram_percentiles = "0.95 1.5";
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    dds_config_init(&c);
    c.dogstatsd_buffer_size = 100;
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "dogstatsd_buffer_size") != NULL);
    CHECK_EQ_INT(dds_config_validate(NULL, &err), DDS_ERR_INVALID_CONFIG);
}

TEST(dogstatsd_queue_bytes) {
    dds_config c;
    dds_error err = {0};
    dds_config_init(&c);
    CHECK_EQ_INT(c.dogstatsd_queue_bytes, 4u << 20);
    c.dogstatsd_queue_bytes = 0; /* no receive thread */
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    c.dogstatsd_queue_bytes = 2 * (8192 + 16); /* two of the largest records */
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    c.dogstatsd_queue_bytes--;
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK_EQ_STR(err.message, "Invalid configuration: dogstatsd_queue_bytes must be 0 or 16416-1073741824 "
                              "(2 x (dogstatsd_buffer_size + 16) at least), got 16415");
    c.dogstatsd_buffer_size = 65536; /* the bound follows the buffer size */
    c.dogstatsd_queue_bytes = 100000;
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    c.dogstatsd_queue_bytes = (1u << 30) + 1;
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    clear_env();
    setenv("DD_DOGSTATSD_QUEUE_BYTES", "0", 1);
    dds_config_init(&c);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK_EQ_INT(c.dogstatsd_queue_bytes, 0);
    setenv("DD_DOGSTATSD_QUEUE_BYTES", "8388608", 1);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK_EQ_INT(c.dogstatsd_queue_bytes, 8u << 20);
    setenv("DD_DOGSTATSD_QUEUE_BYTES", "lots", 1);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "DD_DOGSTATSD_QUEUE_BYTES") != NULL);
    clear_env();
}

TEST(tls_ca_path_must_be_a_readable_file_or_directory) {
    dds_config c;
    dds_error err = {0};
    dds_config_init(&c);
    CHECK(c.tls_ca_path == NULL); /* discover */
    c.tls_ca_path = "";           /* "" is "not set" too */
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    char dir[] = "/tmp/dds-config-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char file[64];
    snprintf(file, sizeof(file), "%s/ca.pem", dir);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    c.tls_ca_path = file; /* a bundle; empty is the user's choice, not a config error */
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    c.tls_ca_path = dir;  /* a directory of PEM files */
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    unlink(file);
    c.tls_ca_path = file; /* gone: a typo is refused before anything is sent */
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    char want[256];
    snprintf(want, sizeof(want),
             "Invalid configuration: tls_ca_path must be a readable PEM file or directory, got '%s' (No such file or "
             "directory)", file);
    CHECK_EQ_STR(err.message, want);
    c.tls_ca_path = "/dev/null"; /* neither a file nor a directory */
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "tls_ca_path") != NULL && strstr(err.message, "(neither)") != NULL);
    rmdir(dir);
}

TEST(any_https_follows_the_enabled_services_urls) {
    dds_config c;
    dds_config_init(&c);
    CHECK(dds__config_any_https(&c)); /* every default is https */
    c.use_trace_agent = false;
    CHECK(dds__config_any_https(&c));
    c.dd_url = "http://127.0.0.1:1";
    CHECK(!dds__config_any_https(&c));
    c.dd_url = "HTTPS://127.0.0.1:1";
    CHECK(dds__config_any_https(&c));
    c.dd_url = "http://127.0.0.1:1";
    c.https_proxy = "https://proxy:3128"; /* the link to the proxy is TLS too */
    CHECK(dds__config_any_https(&c));
    c.https_proxy = "http://proxy:3128";
    CHECK(!dds__config_any_https(&c));
    c.use_dogstatsd = false;
    c.dd_url = "https://127.0.0.1:1"; /* DogStatsD off: its URL is never used */
    CHECK(!dds__config_any_https(&c));
    c.use_trace_agent = true;
    c.apm_dd_url = "http://127.0.0.1:2";
    c.apm_profiling_dd_url = "http://127.0.0.1:3";
    c.apm_telemetry_dd_url = "http://127.0.0.1:4";
    CHECK(dds__config_any_https(&c)); /* the EVP proxy still goes to https://<subdomain>.<site> */
    c.evp_proxy_dd_url = "http://127.0.0.1:5";
    CHECK(!dds__config_any_https(&c));
    c.apm_telemetry_dd_url = NULL;
    CHECK(dds__config_any_https(&c));
}

TEST(from_env_reads_every_documented_variable) {
    clear_env();
    setenv("DD_API_KEY", "abc123", 1);
    setenv("DD_SITE", "datadoghq.eu", 1);
    setenv("DD_LOG_LEVEL", "DEBUG", 1);
    setenv("DD_DOGSTATSD_PORT", "9125", 1);
    setenv("DD_USE_DOGSTATSD", "false", 1);
    setenv("DD_STATSD_METRIC_NAMESPACE", "ns", 1);
    setenv("HTTPS_PROXY", "http://proxy-b:3128", 1);
    setenv("DD_PROXY_HTTPS", "http://proxy-a:3128", 1);
    setenv("DD_URL", "http://127.0.0.1:1", 1);
    setenv("DD_DD_URL", "http://127.0.0.1:2", 1);
    setenv("DD_TAGS", "a:1,b:2", 1);
    setenv("DD_APM_RECEIVER_PORT", "0", 1);
    setenv("DD_SKIP_SSL_VALIDATION", "true", 1);
    setenv("DD_FORWARDER_TIMEOUT", "7", 1);
    setenv("DD_TLS_CA_PATH", "/", 1);
    dds_config c;
    dds_config_init(&c);
    dds_error err = {0};
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK_EQ_STR(c.api_key, "abc123");
    CHECK_EQ_STR(c.site, "datadoghq.eu");
    CHECK_EQ_INT(c.log_level, DDS_LOG_DEBUG);
    CHECK_EQ_INT(c.dogstatsd_port, 9125);
    CHECK(!c.use_dogstatsd);
    CHECK_EQ_STR(c.metric_namespace, "ns");
    CHECK_EQ_STR(c.https_proxy, "http://proxy-a:3128"); /* DD_PROXY_HTTPS wins */
    CHECK_EQ_STR(c.dd_url, "http://127.0.0.1:2");         /* DD_DD_URL wins */
    CHECK_EQ_STR(c.tags, "a:1,b:2");
    CHECK_EQ_INT(c.apm_receiver_port, 0);
    CHECK(!c.tls_verify);
    CHECK_EQ_INT(c.request_timeout_ms, 7000);
    CHECK_EQ_STR(c.tls_ca_path, "/");
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    CHECK(!dds__config_is_dry_run(&c));
    clear_env();
}

TEST(from_env_bad_values_name_the_variable) {
    clear_env();
    dds_config c;
    dds_error err = {0};
    setenv("DD_DOGSTATSD_PORT", "abc", 1);
    dds_config_init(&c);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "DD_DOGSTATSD_PORT") != NULL);
    CHECK(strstr(err.message, "abc") != NULL);
    clear_env();
    setenv("DD_DOGSTATSD_PORT", "70000", 1); /* converted, then refused by validation: never truncated */
    dds_config_init(&c);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK_EQ_INT(c.dogstatsd_port, 70000);
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    clear_env();
    setenv("DD_USE_DOGSTATSD", "maybe", 1);
    dds_config_init(&c);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "DD_USE_DOGSTATSD") != NULL);
    clear_env();
    setenv("DD_LOG_LEVEL", "verbose", 1);
    dds_config_init(&c);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "DD_LOG_LEVEL must be one of trace|debug|info|warn|error|off") != NULL);
    clear_env();
}

TEST(agent_stats_computation_field) {
    clear_env();
    dds_config c;
    dds_config_init(&c);
    CHECK(!c.agent_stats_computation_enabled);
    dds_error err = {0};
    setenv("DD_AGENT_STATS_COMPUTATION_ENABLED", "true", 1);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK(c.agent_stats_computation_enabled);
    setenv("DD_AGENT_STATS_COMPUTATION_ENABLED", "false", 1);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK(!c.agent_stats_computation_enabled);
    setenv("DD_AGENT_STATS_COMPUTATION_ENABLED", "perhaps", 1);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "DD_AGENT_STATS_COMPUTATION_ENABLED") != NULL);
    clear_env();
}

TEST(logs_agent_fields) {
    clear_env();
    dds_config c;
    dds_config_init(&c);
    CHECK(!c.logs_enabled);
    CHECK_EQ_INT(c.logs_port, 10517);
    CHECK(!c.logs_non_local_traffic);
    CHECK(c.logs_dd_url == NULL);
    CHECK(c.logs_use_compression);
    CHECK_EQ_INT(c.logs_compression_level, 3);
    CHECK_EQ_INT(c.logs_max_queued_bytes, 8 * 1024 * 1024);
    char *url = dds__config_logs_url(&c);
    CHECK_EQ_STR(url, "https://http-intake.logs.datadoghq.com/api/v2/logs");
    free(url);

    setenv("DD_LOGS_ENABLED", "true", 1);
    setenv("DD_LOGS_PORT", "0", 1);
    setenv("DD_LOGS_NON_LOCAL_TRAFFIC", "yes", 1);
    setenv("DD_LOGS_CONFIG_LOGS_DD_URL", "http://127.0.0.1:9000/", 1);
    setenv("DD_LOGS_CONFIG_USE_COMPRESSION", "false", 1);
    setenv("DD_LOGS_CONFIG_COMPRESSION_LEVEL", "9", 1);
    setenv("DD_LOGS_MAX_QUEUED_BYTES", "2097152", 1);
    dds_error err = {0};
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK(c.logs_enabled);
    CHECK_EQ_INT(c.logs_port, 0);
    CHECK(c.logs_non_local_traffic);
    CHECK(!c.logs_use_compression);
    CHECK_EQ_INT(c.logs_compression_level, 9);
    CHECK_EQ_INT(c.logs_max_queued_bytes, 2097152);
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    url = dds__config_logs_url(&c);
    CHECK_EQ_STR(url, "http://127.0.0.1:9000/api/v2/logs"); /* a URL: the path is appended */
    free(url);
    c.logs_dd_url = "agent-http-intake.logs.datadoghq.eu:443"; /* the Agent's host:port: https */
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    url = dds__config_logs_url(&c);
    CHECK_EQ_STR(url, "https://agent-http-intake.logs.datadoghq.eu:443/api/v2/logs");
    free(url);
    c.site = "datadoghq.eu";
    c.logs_dd_url = "";
    url = dds__config_logs_url(&c);
    CHECK_EQ_STR(url, "https://http-intake.logs.datadoghq.eu/api/v2/logs");
    free(url);

    /* https is needed unless the logs URL says http (or logs are off). */
    c.use_dogstatsd = false;
    c.use_trace_agent = false;
    c.logs_dd_url = "http://127.0.0.1:9000";
    CHECK(!dds__config_any_https(&c));
    c.logs_dd_url = "127.0.0.1:9000";
    CHECK(dds__config_any_https(&c));
    c.logs_enabled = false;
    CHECK(!dds__config_any_https(&c));

    const struct { const char *url; int32_t level; int32_t port; uint32_t queue; const char *msg; } bad[] = {
        {"ftp://x", 3, 1, 8u << 20, "logs_dd_url must be an http:// or https:// URL or host:port, got 'ftp://x'"},
        {"host:1/path", 3, 1, 8u << 20, "logs_dd_url must be"},
        {"has space:1", 3, 1, 8u << 20, "logs_dd_url must be"},
        {NULL, 0, 1, 8u << 20, "logs_compression_level must be 1-19, got 0"},
        {NULL, 20, 1, 8u << 20, "logs_compression_level must be 1-19, got 20"},
        {NULL, 3, 70000, 8u << 20, "logs_port must be 0-65535, got 70000"},
        {NULL, 3, 1, 1000, "logs_max_queued_bytes must be at least 1048576, got 1000"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        dds_config_init(&c);
        c.logs_dd_url = bad[i].url;
        c.logs_compression_level = bad[i].level;
        c.logs_port = bad[i].port;
        c.logs_max_queued_bytes = bad[i].queue;
        CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
        CHECK_MSG(strstr(err.message, bad[i].msg) != NULL, "row %zu: %s", i, err.message);
    }
    clear_env();
    setenv("DD_LOGS_ENABLED", "sometimes", 1);
    dds_config_init(&c);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "DD_LOGS_ENABLED") != NULL);
    clear_env();
}

TEST(enhanced_metrics_switch) {
    clear_env();
    dds_config c;
    dds_config_init(&c);
    CHECK(c.enhanced_metrics_enabled);
    setenv("DD_ENHANCED_METRICS_ENABLED", "false", 1);
    dds_error err = {0};
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK(!c.enhanced_metrics_enabled);
    setenv("DD_ENHANCED_METRICS_ENABLED", "sometimes", 1);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "DD_ENHANCED_METRICS_ENABLED") != NULL);
    clear_env();
}

/* The Rust binary's Tags::from_env_string / function_tags (trace agent config.rs), its test
 * vectors first. */
TEST(function_tags_table) {
    static const struct { const char *in, *want; } rows[] = {
        {"some:tag,another:thing,invalid:thing:here", "another:thing,some:tag"},
        {"some:tag another:thing invalid:thing:here", "another:thing,some:tag"},
        {"some:tag,another:thing extra:value", "another:thing,extra:value,some:tag"},
        {"invalid:thing:here,also-bad", ""},
        {"", ""},
        {"   ", ""},
        {" , , ", ""},
        {"k:1,k:2", "k:2"},                   /* a map: the last value of a key wins */
        {"b:2\ta:1\nc:3", "a:1,b:2,c:3"},     /* any whitespace separates */
        {"a:,:b", ":b,a:"},                   /* exactly one ':' is the only rule */
        {"ab:1,a:2", "a:2,ab:1"},             /* bytewise order of the k:v text */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
        char *got = dds__config_function_tags(rows[i].in);
        CHECK_MSG(got && strcmp(got, rows[i].want) == 0, "row %zu (%s): got \"%s\", want \"%s\"", i, rows[i].in,
                  got ? got : "(null)", rows[i].want);
        free(got);
    }
    char *none = dds__config_function_tags(NULL);
    CHECK_EQ_STR(none, "");
    free(none);
}

TEST(obfuscation_fields) {
    clear_env();
    dds_config c;
    dds_config_init(&c);
    /* The Go Agent's defaults */
    CHECK(c.apm_obfuscate_redis && c.apm_obfuscate_valkey && c.apm_obfuscate_memcached);
    CHECK(!c.apm_redis_remove_all_args && !c.apm_valkey_remove_all_args && !c.apm_memcached_keep_command);
    CHECK(!c.apm_remove_paths_with_digits && !c.apm_remove_stack_traces && c.apm_replace_tags == NULL);
    CHECK(c.apm_obfuscation_cache_enabled && c.apm_obfuscation_cache_max_size == 2u * 1024 * 1024);
    setenv("DD_APM_OBFUSCATION_CACHE_ENABLED", "false", 1);
    setenv("DD_APM_OBFUSCATION_CACHE_MAX_SIZE", "5000000", 1);
    setenv("DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS", "true", 1);
    setenv("DD_APM_OBFUSCATION_REDIS_ENABLED", "false", 1);
    setenv("DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS", "true", 1);
    setenv("DD_APM_OBFUSCATION_VALKEY_ENABLED", "false", 1);
    setenv("DD_APM_OBFUSCATION_VALKEY_REMOVE_ALL_ARGS", "true", 1);
    setenv("DD_APM_OBFUSCATION_MEMCACHED_ENABLED", "false", 1);
    setenv("DD_APM_OBFUSCATION_MEMCACHED_KEEP_COMMAND", "true", 1);
    setenv("DD_APM_OBFUSCATION_REMOVE_STACK_TRACES", "true", 1);
    setenv("DD_APM_REPLACE_TAGS", "[{\"name\":\"*\",\"pattern\":\"secret\",\"repl\":\"?\"}]", 1);
    setenv("DD_APM_OBFUSCATION_MONGODB_ENABLED", "false", 1);
    dds_error err = {0};
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK(c.apm_remove_paths_with_digits && !c.apm_obfuscate_redis && c.apm_redis_remove_all_args);
    CHECK(!c.apm_obfuscate_valkey && c.apm_valkey_remove_all_args && !c.apm_obfuscate_memcached);
    CHECK(c.apm_memcached_keep_command && c.apm_remove_stack_traces);
    CHECK(!c.apm_obfuscation_cache_enabled && c.apm_obfuscation_cache_max_size == 5000000);
    CHECK_EQ_STR(c.apm_replace_tags, "[{\"name\":\"*\",\"pattern\":\"secret\",\"repl\":\"?\"}]");
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    /* A bad rule is a validation error that says what is wrong. */
    c.apm_replace_tags = "[{\"name\":\"*\",\"pattern\":\"(?i)secret\"}]";
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "apm_replace_tags: rule 0 pattern '(?i)secret'") != NULL);
    c.apm_replace_tags = "[{\"name\":\"*\",\"pattern\":\"a[\"}]";
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "not a valid POSIX extended regex") != NULL);
    c.apm_replace_tags = "not json";
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "apm_replace_tags: must be a JSON list") != NULL);
    /* The JSON obfuscators are refused by name when asked for. */
    setenv("DD_APM_OBFUSCATION_ELASTICSEARCH_ENABLED", "true", 1);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "DD_APM_OBFUSCATION_ELASTICSEARCH_ENABLED=true is not supported") != NULL);
    clear_env();
}

TEST(logs_destinations_and_send_queue) {
    clear_env();
    dds_config c;
    dds_error err = {0};
    dds_config_init(&c);
    CHECK(!c.logs_opw_enabled);
    CHECK(c.logs_opw_url == NULL);
    CHECK(c.logs_additional_endpoints == NULL);
    CHECK_EQ_INT(c.send_queue_max_bytes, 32u * 1024 * 1024);
    setenv("DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED", "true", 1);
    setenv("DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL", "http://127.0.0.1:8282/logs", 1);
    setenv("DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS",
           "[{\"api_key\":\"k2\",\"Host\":\"h.example\",\"Port\":10516,\"is_reliable\":false}]", 1);
    setenv("DD_FORWARDER_SEND_QUEUE_PAYLOADS_MAX_SIZE", "65536", 1);
    setenv("DD_LOGS_ENABLED", "true", 1);
    CHECK_EQ_INT(dds_config_from_env(&c, &err), 0);
    CHECK(c.logs_opw_enabled);
    CHECK_EQ_STR(c.logs_opw_url, "http://127.0.0.1:8282/logs");
    CHECK(c.logs_additional_endpoints && strstr(c.logs_additional_endpoints, "h.example"));
    CHECK_EQ_INT(c.send_queue_max_bytes, 65536);
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);
    dds_config copy;
    CHECK_EQ_INT(dds__config_dup(&copy, &c), 0);
    CHECK(copy.logs_opw_url != c.logs_opw_url && copy.logs_additional_endpoints != c.logs_additional_endpoints);
    CHECK_EQ_STR(copy.logs_additional_endpoints, c.logs_additional_endpoints);
    dds__config_release(&copy);
    clear_env();

    /* Enabled without a URL: a clear start error where the Rust binary silently disables logs. */
    dds_config_init(&c);
    c.logs_enabled = true;
    c.logs_opw_enabled = true;
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.message, "logs_opw_url (DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL) must be set when "
                                  "logs_opw_enabled is true") != NULL, "%s", err.message);
    c.logs_opw_url = "";
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    c.logs_opw_url = "opw:8282";
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.message, "logs_opw_url must be an http:// or https:// URL, got 'opw:8282'") != NULL, "%s",
              err.message);
    c.logs_enabled = false;  /* unused when logs are off: no error for a missing URL */
    c.logs_opw_url = NULL;
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);

    /* Bad JSON names the variable and the place, and never the key. */
    dds_config_init(&c);
    c.logs_additional_endpoints = "[{\"api_key\":\"sekrit-key-value\",\"Host\":\"h\",\"Port\":\"443\"}]";
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.message, "logs_additional_endpoints (DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS) is not valid: "
                                  "endpoint 0: Port must be an integer 1-65535") != NULL, "%s", err.message);
    CHECK(strstr(err.message, "sekrit") == NULL);
    c.logs_additional_endpoints = "{\"api_key\":\"sekrit\"}";
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.message, "invalid JSON at byte 0: expected a JSON array") != NULL, "%s", err.message);
    c.logs_additional_endpoints = "";
    CHECK_EQ_INT(dds_config_validate(&c, &err), 0);

    dds_config_init(&c);
    c.send_queue_max_bytes = 1000;
    CHECK_EQ_INT(dds_config_validate(&c, &err), DDS_ERR_INVALID_CONFIG);
    CHECK_MSG(strstr(err.message, "send_queue_max_bytes must be at least 1024, got 1000") != NULL, "%s", err.message);
}

TEST(error_names_and_versions) {
    CHECK_EQ_STR(dds_errcode_name(DDS_ERR_INVALID_CONFIG), "ERR_INVALID_CONFIG");
    CHECK_EQ_STR(dds_errcode_name(DDS_ERR_ALREADY_STARTED), "ERR_ALREADY_STARTED");
    CHECK_EQ_STR(dds_errcode_name(DDS_ERR_NOT_RUNNING), "ERR_NOT_RUNNING");
    CHECK_EQ_STR(dds_errcode_name(DDS_ERR_LOGS_AGENT_START), "ERR_LOGS_AGENT_START");
    dds_error e = {0};
    dds__error_set(&e, DDS_ERR_LOGS_AGENT_START, "x");
    CHECK_EQ_STR(e.message, "Failed to start logs agent: x");
    CHECK_EQ_STR(dds_service_name(DDS_SERVICE_LOGS_AGENT), "logs-agent");
    CHECK_EQ_STR(dds_errcode_name(12345), "ERR_UNKNOWN");
    CHECK(dds_version() != NULL && strchr(dds_version(), '.') != NULL);
    CHECK_EQ_STR(dds_log_level_name(DDS_LOG_WARN), "warn");
}

TEST(owned_copy_is_deep) {
    char key[] = "secret-key";
    dds_config c, copy;
    dds_config_init(&c);
    c.api_key = key;
    CHECK_EQ_INT(dds__config_dup(&copy, &c), 0);
    key[0] = 'X';
    CHECK_EQ_STR(copy.api_key, "secret-key");
    CHECK_EQ_STR(copy.site, "datadoghq.com");
    dds__config_release(&copy);
    char ca[] = "/etc/ssl/certs";
    c.tls_ca_path = ca;
    CHECK_EQ_INT(dds__config_dup(&copy, &c), 0);
    ca[0] = 'X';
    CHECK_EQ_STR(copy.tls_ca_path, "/etc/ssl/certs");
    dds__config_release(&copy);
    char logs_url[] = "http://127.0.0.1:9000";
    c.logs_dd_url = logs_url;
    CHECK_EQ_INT(dds__config_dup(&copy, &c), 0);
    logs_url[0] = 'X';
    CHECK_EQ_STR(copy.logs_dd_url, "http://127.0.0.1:9000");
    dds__config_release(&copy);
}

int main(void) {
    RUN(defaults_are_valid);
    RUN(port_out_of_range_names_field_and_value);
    RUN(site_any_name_of_the_rust_binarys_form);
    RUN(profiling_url_full_or_prefix);
    RUN(dry_run_and_flush_timeout_variables);
    RUN(namespace_rules);
    RUN(other_validation);
    RUN(dogstatsd_queue_bytes);
    RUN(tls_ca_path_must_be_a_readable_file_or_directory);
    RUN(any_https_follows_the_enabled_services_urls);
    RUN(from_env_reads_every_documented_variable);
    RUN(from_env_bad_values_name_the_variable);
    RUN(logs_agent_fields);
    RUN(enhanced_metrics_switch);
    RUN(function_tags_table);
    RUN(obfuscation_fields);
    RUN(logs_destinations_and_send_queue);
    RUN(agent_stats_computation_field);
    RUN(error_names_and_versions);
    RUN(owned_copy_is_deep);
    return TEST_REPORT();
}
