/* config_vars.h - the one list of the environment variables the core reads: name, default and
 * meaning, by section. `datadog-serverless-compat --help` prints it (compat.c), and
 * `scripts/config-docs` writes the README's tables from it; tests/py/test_config_docs.py checks
 * that every "DD_..." name in src_c/ is listed here and that the README matches.
 * One X(section, "NAME", "default", "meaning") per line: scripts/config-docs parses these lines.
 * Backticks mark code in the README and are dropped in --help. */
#ifndef DDS_CONFIG_VARS_H
#define DDS_CONFIG_VARS_H

/* clang-format off */
#define DDS__CONFIG_VARS(X) \
X(general, "DD_API_KEY", "", "Datadog API key; never logged. Without one nothing is sent: one summary line per payload on stdout") \
X(general, "DD_DRY_RUN", "`false`", "never send: write each payload in full as one JSON line on stdout (the CLI's `--dry-run`)") \
X(general, "DD_SITE", "`datadoghq.com`", "Datadog site (`us3.`, `us5.`, `ap1.`, `ap2.datadoghq.com`, `datadoghq.eu`, `ddog-gov.com`); another name of `[A-Za-z0-9._:-]` is used with a warning") \
X(general, "DD_LOG_LEVEL", "`info`", "`trace`, `debug`, `info`, `warn`, `error`, `off`") \
X(general, "DD_TAGS", "", "`k:v` tags (comma or space separated) on every metric, event and check") \
X(general, "DD_ENV", "", "adds `env:<env>`") \
X(general, "DD_SERVICE", "", "adds `service:<service>`") \
X(general, "DD_VERSION", "", "adds `version:<version>`") \
X(general, "DD_PROXY_HTTPS", "", "proxy for every request") \
X(general, "HTTPS_PROXY", "", "proxy for every request, when `DD_PROXY_HTTPS` is not set") \
X(general, "DD_SKIP_SSL_VALIDATION", "`false`", "TLS verification is on by default") \
X(general, "DD_TLS_CA_PATH", "(found at start)", "CA certificates that verify the intake: a PEM bundle or a directory of PEM files") \
X(general, "SSL_CERT_FILE", "", "CA bundle, when `DD_TLS_CA_PATH` is not set") \
X(general, "SSL_CERT_DIR", "", "CA directories (a `:` list), when neither of the above is set") \
X(general, "GCE_METADATA_HOST", "`169.254.169.254`", "Google Cloud Functions: the metadata server checked at start, a numeric `address[:port]` (the variable Google's client libraries read; emulators, tests)") \
X(dogstatsd, "DD_USE_DOGSTATSD", "`true`", "run the DogStatsD server") \
X(dogstatsd, "DD_DOGSTATSD_PORT", "`8125`", "UDP port; `0` = any free port (the bound port is logged)") \
X(dogstatsd, "DD_DOGSTATSD_SOCKET", "", "also listen on this Unix datagram socket") \
X(dogstatsd, "DD_DOGSTATSD_NON_LOCAL_TRAFFIC", "`false`", "bind `0.0.0.0` instead of loopback") \
X(dogstatsd, "DD_DOGSTATSD_WINDOWS_PIPE_NAME", "", "Windows only: ignored here, with a warning") \
X(dogstatsd, "DD_STATSD_METRIC_NAMESPACE", "", "prefix `<ns>.` on every metric name (a letter, then letters, digits, `_`, `.`)") \
X(dogstatsd, "DD_DD_URL", "`https://api.<site>`", "metrics intake override (tests, proxies)") \
X(dogstatsd, "DD_URL", "", "metrics intake override, when `DD_DD_URL` is not set") \
X(dogstatsd, "DD_HISTOGRAM_AGGREGATES", "`max,median,avg,count`", "histogram aggregates (`min`, `sum` too)") \
X(dogstatsd, "DD_HISTOGRAM_PERCENTILES", "`0.95`", "histogram percentiles") \
X(dogstatsd, "DD_DOGSTATSD_EXPIRY_SECONDS", "`300`", "counters keep reporting 0 this long after their last sample") \
X(dogstatsd, "DD_DOGSTATSD_CONTEXT_LIMIT", "`100000`", "live contexts; new ones past it are dropped and counted") \
X(dogstatsd, "DD_DOGSTATSD_BUFFER_SIZE", "`8192`", "bytes per datagram; larger datagrams are counted and dropped") \
X(dogstatsd, "DD_DOGSTATSD_SO_RCVBUF", "4 MiB asked, capped by `net.core.rmem_max`", "socket receive buffer; a value set here is forced past `rmem_max` when the process has `CAP_NET_ADMIN`") \
X(dogstatsd, "DD_DOGSTATSD_QUEUE_BYTES", "`4194304`", "per socket: a receive thread moves datagrams into a queue of this many bytes, the loop parses from it (a datagram takes its size + 8-15 bytes; full: dropped and counted); `0` = no thread. The Agent's `dogstatsd_queue_size` counts batches of packets instead") \
X(dogstatsd, "DD_DOGSTATSD_CLIENT_TELEMETRY", "`true`", "`false` drops `datadog.dogstatsd.client.*`") \
X(dogstatsd, "DD_DOGSTATSD_FLUSH_INTERVAL_MS", "`10000`", "period of the closed-bucket flush (and of the logs flush)") \
X(trace, "DD_APM_ENABLED", "`true`", "run the trace agent") \
X(trace, "DD_APM_RECEIVER_PORT", "`8126`", "HTTP port; `0` = any free port (the bound port is logged)") \
X(trace, "DD_APM_RECEIVER_SOCKET", "", "also listen on this Unix stream socket") \
X(trace, "DD_APM_NON_LOCAL_TRAFFIC", "`false`", "bind `0.0.0.0` instead of loopback") \
X(trace, "DD_APM_WINDOWS_PIPE_NAME", "", "Windows only: ignored here, with a warning") \
X(trace, "DD_APM_MAX_PAYLOAD_SIZE", "`26214400`", "request bodies past it get 413, while reading") \
X(trace, "DD_APM_DD_URL", "`https://trace.agent.<site>`", "traces, stats and pipeline stats intake") \
X(trace, "DD_APM_PROFILING_DD_URL", "`https://intake.profile.<site>/api/v2/profile`", "profiles: a full URL (the Agent's form) or a bare prefix such as `https://host:port` (the Rust binary's form: `/api/v2/profile` is appended)") \
X(trace, "DD_APM_TELEMETRY_DD_URL", "`https://instrumentation-telemetry-intake.<site>`", "tracer telemetry") \
X(trace, "DD_EVP_PROXY_CONFIG_DD_URL", "`https://<subdomain>.<site>`", "EVP proxy target") \
X(trace, "DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING", "`false`", "strip the query from `http.url`") \
X(trace, "DD_APM_OBFUSCATION_CREDIT_CARDS_ENABLED", "`true`", "tag values that are card numbers become `?`") \
X(trace, "DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS", "`false`", "`http.url` path segments holding a digit become `?`") \
X(trace, "DD_APM_OBFUSCATION_REDIS_ENABLED", "`true`", "values in `redis.raw_command` become `?` (the Rust binary: `false`)") \
X(trace, "DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS", "`false`", "every redis argument becomes `?`") \
X(trace, "DD_APM_OBFUSCATION_VALKEY_ENABLED", "`true`", "values in `valkey.raw_command` become `?` (the Rust binary: never)") \
X(trace, "DD_APM_OBFUSCATION_VALKEY_REMOVE_ALL_ARGS", "`false`", "every valkey argument becomes `?`") \
X(trace, "DD_APM_OBFUSCATION_MEMCACHED_ENABLED", "`true`", "rewrite `memcached.command` (the Rust binary: `false`)") \
X(trace, "DD_APM_OBFUSCATION_MEMCACHED_KEEP_COMMAND", "`false`", "keep its first line (`set k 0 60 5`) instead of blanking it") \
X(trace, "DD_APM_OBFUSCATION_REMOVE_STACK_TRACES", "`false`", "`error.stack` becomes `?`") \
X(trace, "DD_APM_OBFUSCATION_CACHE_ENABLED", "`true`", "keep SQL obfuscation results across requests (same output, less CPU), as the Go Agent does") \
X(trace, "DD_APM_OBFUSCATION_CACHE_MAX_SIZE", "`2097152`", "bytes the cache's entries may hold (the Go Agent: `5000000`)") \
X(trace, "DD_APM_REPLACE_TAGS", "", "JSON list of `{\"name\", \"pattern\", \"repl\"}` rules, see \"Obfuscation\"") \
X(trace, "DD_APM_OBFUSCATION_MONGODB_ENABLED", "`false`", "not supported: `true` is a configuration error (no JSON obfuscators here)") \
X(trace, "DD_APM_OBFUSCATION_ELASTICSEARCH_ENABLED", "`false`", "not supported: `true` is a configuration error") \
X(trace, "DD_APM_OBFUSCATION_OPENSEARCH_ENABLED", "`false`", "not supported: `true` is a configuration error") \
X(trace, "DD_APM_OBFUSCATION_SQL_EXEC_PLAN_ENABLED", "`false`", "not supported: `true` is a configuration error") \
X(trace, "DD_APM_OBFUSCATION_SQL_EXEC_PLAN_NORMALIZE_ENABLED", "`false`", "not supported: `true` is a configuration error") \
X(trace, "DD_AGENT_STATS_COMPUTATION_ENABLED", "`false`", "compute trace stats here and send them to `/api/v0.2/stats` (see \"Agent-computed trace stats\")") \
X(logs, "DD_LOGS_ENABLED", "`false`", "run the logs agent") \
X(logs, "DD_LOGS_PORT", "`10517`", "HTTP port; `0` = any free port (logged: `logs agent listening on 127.0.0.1:PORT`)") \
X(logs, "DD_LOGS_NON_LOCAL_TRAFFIC", "`false`", "bind `0.0.0.0` instead of loopback") \
X(logs, "DD_LOGS_CONFIG_LOGS_DD_URL", "`https://http-intake.logs.<site>`", "intake: a URL such as `http://127.0.0.1:9000` (`/api/v2/logs` is appended) or the Agent's `host:port` (then `https://host:port`)") \
X(logs, "DD_LOGS_CONFIG_USE_COMPRESSION", "`true`", "zstd request bodies") \
X(logs, "DD_LOGS_CONFIG_COMPRESSION_LEVEL", "`3`", "zstd level, 1-19") \
X(logs, "DD_LOGS_MAX_QUEUED_BYTES", "`8388608`", "accepted entries waiting for the next flush; past it (or 100000 entries) entries are dropped and counted") \
X(logs, "DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED", "`false`", "send batches to an Observability Pipelines Worker instead of Datadog (uncompressed, no `DD-PROTOCOL`)") \
X(logs, "DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL", "", "the worker's full URL; required when it is enabled") \
X(logs, "DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS", "", "JSON `[{\"api_key\",\"Host\",\"Port\",\"is_reliable\"}]`: more Datadog intakes that get every batch") \
X(cloud, "DD_ENHANCED_METRICS_ENABLED", "`true`", "on Azure Functions, send `azure.functions.enhanced.cpu.usage` (`azure.functions.enhanced.instance` is sent regardless)") \
X(cloud, "DD_SERVERLESS_COMPAT_VERSION", "", "set by the wrappers that start the binary: every span's `_dd.serverless_compat_version` and the enhanced metrics' `serverless_compat_version` tag") \
X(cloud, "DD_AZURE_RESOURCE_GROUP", "", "Azure resource group (`resource_group`, `aas.resource.group`); needed on Flex Consumption (`WEBSITE_SKU=FlexConsumption`)") \
X(forwarder, "DD_FORWARDER_TIMEOUT", "`20`", "seconds per request to the intake") \
X(forwarder, "DD_FLUSH_TIMEOUT", "", "the Rust binary's name for the request timeout (seconds), used when `DD_FORWARDER_TIMEOUT` is not set") \
X(forwarder, "DD_FORWARDER_RETRY_QUEUE_PAYLOADS_MAX_SIZE", "`15728640`", "bytes of payloads waiting for a retry; the oldest are dropped and counted past it") \
X(forwarder, "DD_FORWARDER_SEND_QUEUE_PAYLOADS_MAX_SIZE", "`33554432`", "bytes of payloads waiting for their first attempt while every request slot is busy (a slow intake), per destination; the oldest are dropped and counted past it")
/* clang-format on */

#endif
