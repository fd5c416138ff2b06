# cdds.pxd - src_c/include/datadog_serverless.h for Cython, declaration for declaration, in the
# header's order (version, errors, config, lifecycle, stats, logging, the standalone program).
# The header is the documentation: ownership, threads and errors are described there, not here.
# Everything is nogil: no function of the library touches Python.

from libc.stdint cimport int32_t, uint16_t, uint32_t, uint64_t


cdef extern from "datadog_serverless.h" nogil:

    # ---- Version --------------------------------------------------------------------------------

    const char *dds_version()

    # ---- Errors ---------------------------------------------------------------------------------

    ctypedef enum dds_errcode:
        DDS_OK
        DDS_ERR_INVALID_CONFIG
        DDS_ERR_ENVIRONMENT
        DDS_ERR_TRACE_AGENT_START
        DDS_ERR_DOGSTATSD_START
        DDS_ERR_ALREADY_STARTED
        DDS_ERR_NOT_RUNNING
        DDS_ERR_SHUTDOWN_TIMEOUT
        DDS_ERR_RUNTIME
        DDS_ERR_LOGS_AGENT_START

    enum: DDS_ERROR_MESSAGE_MAX

    ctypedef struct dds_error:
        int code
        char message[DDS_ERROR_MESSAGE_MAX]

    const char *dds_errcode_name(int code)

    # ---- Configuration --------------------------------------------------------------------------

    ctypedef enum dds_log_level:
        DDS_LOG_TRACE
        DDS_LOG_DEBUG
        DDS_LOG_INFO
        DDS_LOG_WARN
        DDS_LOG_ERROR
        DDS_LOG_OFF

    ctypedef struct dds_config:
        # Datadog account
        const char *api_key
        const char *site
        const char *dd_url
        const char *https_proxy
        const char *tls_ca_path
        bint tls_verify
        bint dry_run
        int dry_run_fd
        # Logging
        dds_log_level log_level
        # Unified service tagging and tags added to every metric
        const char *tags
        const char *env
        const char *service
        const char *version
        # DogStatsD
        bint use_dogstatsd
        int32_t dogstatsd_port
        const char *dogstatsd_socket
        bint dogstatsd_non_local_traffic
        uint32_t dogstatsd_buffer_size
        uint32_t dogstatsd_so_rcvbuf
        uint32_t dogstatsd_queue_bytes
        const char *metric_namespace
        uint32_t context_limit
        uint32_t counter_expiry_s
        const char *histogram_aggregates
        const char *histogram_percentiles
        bint client_telemetry
        uint32_t flush_interval_ms
        # Trace mini-agent
        bint use_trace_agent
        int32_t apm_receiver_port
        const char *apm_receiver_socket
        bint apm_non_local_traffic
        const char *apm_dd_url
        const char *apm_profiling_dd_url
        const char *apm_telemetry_dd_url
        const char *evp_proxy_dd_url
        uint32_t apm_max_request_bytes
        bint apm_remove_query_string
        bint apm_obfuscate_credit_cards
        bint apm_remove_paths_with_digits
        bint apm_obfuscate_redis
        bint apm_redis_remove_all_args
        bint apm_obfuscate_valkey
        bint apm_valkey_remove_all_args
        bint apm_obfuscate_memcached
        bint apm_memcached_keep_command
        bint apm_remove_stack_traces
        bint apm_obfuscation_cache_enabled
        uint32_t apm_obfuscation_cache_max_size
        const char * apm_replace_tags
        bint agent_stats_computation_enabled
        # Logs agent
        bint logs_enabled
        int32_t logs_port
        bint logs_non_local_traffic
        const char *logs_dd_url
        bint logs_use_compression
        int32_t logs_compression_level
        uint32_t logs_max_queued_bytes
        bint logs_opw_enabled
        const char *logs_opw_url
        const char *logs_additional_endpoints
        # Azure Functions enhanced metrics
        bint enhanced_metrics_enabled
        # Transport
        uint32_t request_timeout_ms
        uint32_t retry_queue_max_bytes
        uint32_t send_queue_max_bytes

    void dds_config_init(dds_config *cfg)
    int dds_config_from_env(dds_config *cfg, dds_error *err)
    int dds_config_validate(const dds_config *cfg, dds_error *err)

    # ---- Lifecycle ------------------------------------------------------------------------------

    ctypedef struct dds_services:
        pass

    ctypedef enum dds_status_type:
        DDS_STATUS_READY
        DDS_STATUS_ERROR
        DDS_STATUS_STOPPED

    ctypedef enum dds_service_kind:
        DDS_SERVICE_NONE
        DDS_SERVICE_DOGSTATSD
        DDS_SERVICE_TRACE_AGENT
        DDS_SERVICE_LOGS_AGENT

    ctypedef struct dds_status:
        dds_status_type type
        dds_service_kind service
        uint16_t port
        const char *message

    const char *dds_service_name(dds_service_kind kind)

    ctypedef void (*dds_status_fn)(const dds_status *status, void *user) noexcept

    int dds_start(const dds_config *cfg, dds_status_fn on_status, void *user,
                  dds_services **out, dds_error *err)
    int dds_flush(dds_services *s, uint32_t timeout_ms, dds_error *err)
    int dds_stop(dds_services *s, uint32_t timeout_ms, dds_error *err)
    bint dds_is_running(const dds_services *s)
    void dds_ports(const dds_services *s, uint16_t *dogstatsd, uint16_t *trace)
    uint16_t dds_logs_port(const dds_services *s)
    void dds_free(dds_services *s)

    # ---- Stats ----------------------------------------------------------------------------------

    ctypedef struct dds_stats:
        # DogStatsD ingest
        uint64_t dsd_packets
        uint64_t dsd_packets_truncated
        uint64_t dsd_packets_dropped_queue
        uint64_t dsd_packets_dropped_socket
        uint64_t dsd_bytes
        uint64_t dsd_metric_lines
        uint64_t dsd_events
        uint64_t dsd_service_checks
        uint64_t dsd_parse_errors
        uint64_t dsd_samples
        uint64_t dsd_samples_dropped
        uint64_t dsd_contexts_dropped
        uint64_t dsd_contexts
        uint64_t dsd_events_dropped
        # Intake (all payload kinds)
        uint64_t payloads_sent
        uint64_t payloads_retried
        uint64_t payloads_dropped
        uint64_t payload_bytes_sent
        uint64_t series_sent
        uint64_t sketches_sent
        uint64_t dry_run_payloads
        # Trace agent
        uint64_t trace_requests
        uint64_t trace_spans
        uint64_t trace_dropped
        uint64_t trace_spans_dropped
        uint64_t trace_spans_obfuscated
        uint64_t trace_sql_non_parsable
        # Agent-computed trace stats
        uint64_t trace_stats_spans
        uint64_t trace_stats_spans_overflow
        uint64_t trace_stats_spans_dropped
        uint64_t trace_stats_buckets
        uint64_t trace_stats_keys
        # Logs agent
        uint64_t logs_requests
        uint64_t logs_entries
        uint64_t logs_entries_dropped
        uint64_t logs_bytes
        # Send queue
        uint64_t send_queue_bytes
        uint64_t send_queue_dropped_metrics
        uint64_t send_queue_dropped_traces
        uint64_t send_queue_dropped_logs
        uint64_t send_queue_dropped_proxy
        # Azure Functions enhanced metrics
        uint64_t enhanced_samples
        uint64_t enhanced_cpu_unavailable

    void dds_stats_get(const dds_services *s, dds_stats *out)

    # ---- Logging --------------------------------------------------------------------------------

    ctypedef void (*dds_log_fn)(dds_log_level level, const char *line, void *user) noexcept

    void dds_set_log_fn(dds_log_fn fn, void *user)
    const char *dds_log_level_name(dds_log_level level)

    # ---- The standalone program ------------------------------------------------------------------

    int dds_compat_main(int argc, char **argv)
