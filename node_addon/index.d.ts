// Types of @datadog/serverless-node. Option names are the camelCase names of the C library's
// configuration fields (src_c/include/datadog_serverless.h); an option left out (undefined)
// takes its DD_* environment variable, then the C default. For string options, null means
// "not set" even when the environment sets it.

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'off';

/** One additional logs endpoint (the Agent's DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS entry). */
export interface LogsEndpoint {
  apiKey?: string;
  api_key?: string;
  host?: string;
  Host?: string;
  /** 443 when left out. */
  port?: number;
  Port?: number;
  /** true when left out: flush and stop wait for it. */
  isReliable?: boolean;
  is_reliable?: boolean;
}

export interface ServicesConfig {
  // ---- Datadog account
  /** [DD_API_KEY] Without one nothing is sent: one summary line per payload on stdout (`dryRun` for the payloads in full). */
  apiKey?: string | null;
  /** [DD_SITE] "datadoghq.com" (or us3., us5., datadoghq.eu, ddog-gov.com, ap1., ap2.). */
  site?: string | null;
  /** [DD_DD_URL, then DD_URL] Metrics intake base URL, default https://api.<site>. */
  ddUrl?: string | null;
  /** [DD_PROXY_HTTPS, then HTTPS_PROXY] Proxy for every request. */
  httpsProxy?: string | null;
  /**
   * [DD_TLS_CA_PATH] CA certificates that verify the intake: a PEM bundle, or a directory of PEM
   * files. Unset: found at start ($SSL_CERT_FILE, $SSL_CERT_DIR, the system bundles, then
   * /etc/ssl/certs). Found nowhere: https requests fail, they are never sent unverified.
   */
  tlsCaPath?: string | null;
  /** [DD_SKIP_SSL_VALIDATION=true clears it] true. */
  tlsVerify?: boolean;
  /** [DD_DRY_RUN] false. When true nothing is sent and each payload is written in full as a JSON line to dryRunFd. */
  dryRun?: boolean;
  /** 1 (stdout). */
  dryRunFd?: number;

  // ---- Logging
  /** [DD_LOG_LEVEL] "info". Case-insensitive. */
  logLevel?: LogLevel | Uppercase<LogLevel> | string;

  // ---- Unified service tagging, tags on every metric
  /** [DD_TAGS] "k:v,k2:v2", or an array of "k:v". */
  tags?: string | readonly string[] | null;
  /** [DD_ENV] Adds env:<env>. */
  env?: string | null;
  /** [DD_SERVICE] Adds service:<service>. */
  service?: string | null;
  /** [DD_VERSION] Adds version:<version>. */
  version?: string | null;

  // ---- DogStatsD
  /** [DD_USE_DOGSTATSD] true. */
  useDogstatsd?: boolean;
  /** [DD_DOGSTATSD_PORT] 8125; 0 = any free port (see `ports`). */
  dogstatsdPort?: number;
  /** [DD_DOGSTATSD_SOCKET] Also listen on this Unix datagram socket. */
  dogstatsdSocket?: string | null;
  /** [DD_DOGSTATSD_NON_LOCAL_TRAFFIC] false: bind 127.0.0.1. */
  dogstatsdNonLocalTraffic?: boolean;
  /** [DD_DOGSTATSD_BUFFER_SIZE] 8192 bytes per datagram, 512-65536. */
  dogstatsdBufferSize?: number;
  /** [DD_DOGSTATSD_SO_RCVBUF] 0 = ask for 4 MiB, silently capped by the kernel (net.core.rmem_max). */
  dogstatsdSoRcvbuf?: number;
  /** [DD_DOGSTATSD_QUEUE_BYTES] 4194304: receive queue per socket, filled by a thread of its own; 0 = no thread. */
  dogstatsdQueueBytes?: number;
  /** [DD_STATSD_METRIC_NAMESPACE] Prefix "<ns>." on every metric name. */
  metricNamespace?: string | null;
  /** [DD_DOGSTATSD_CONTEXT_LIMIT] 100000 live contexts; 0 = unlimited. */
  contextLimit?: number;
  /** [DD_DOGSTATSD_EXPIRY_SECONDS] 300: counters keep reporting 0 this long; 0 = off. */
  counterExpirySeconds?: number;
  /** [DD_HISTOGRAM_AGGREGATES] "max,median,avg,count" of max|min|median|avg|sum|count. */
  histogramAggregates?: string | readonly string[] | null;
  /** [DD_HISTOGRAM_PERCENTILES] "0.95"; each in (0, 1). */
  histogramPercentiles?: string | ReadonlyArray<string | number> | null;
  /** [DD_DOGSTATSD_CLIENT_TELEMETRY] true; false drops datadog.dogstatsd.client.*. */
  clientTelemetry?: boolean;
  /** [DD_DOGSTATSD_FLUSH_INTERVAL_MS] 10000. */
  flushIntervalMs?: number;

  // ---- Trace agent
  /** [DD_APM_ENABLED] true. */
  useTraceAgent?: boolean;
  /** [DD_APM_RECEIVER_PORT] 8126; 0 = any free port (see `ports`). */
  apmReceiverPort?: number;
  /** [DD_APM_RECEIVER_SOCKET] Also listen on this Unix stream socket. */
  apmReceiverSocket?: string | null;
  /** [DD_APM_NON_LOCAL_TRAFFIC] false: bind 127.0.0.1. */
  apmNonLocalTraffic?: boolean;
  /** [DD_APM_DD_URL] Traces, stats and pipeline stats intake, default https://trace.agent.<site>. */
  apmDdUrl?: string | null;
  /** [DD_APM_PROFILING_DD_URL] Full URL, default https://intake.profile.<site>/api/v2/profile. */
  apmProfilingDdUrl?: string | null;
  /** [DD_APM_TELEMETRY_DD_URL] Default https://instrumentation-telemetry-intake.<site>. */
  apmTelemetryDdUrl?: string | null;
  /** [DD_EVP_PROXY_CONFIG_DD_URL] Default https://<subdomain>.<site>. */
  evpProxyDdUrl?: string | null;
  /** [DD_APM_MAX_PAYLOAD_SIZE] 26214400: larger request bodies get 413. */
  apmMaxRequestBytes?: number;
  /** [DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING] false. */
  apmRemoveQueryString?: boolean;
  /** [DD_APM_OBFUSCATION_CREDIT_CARDS_ENABLED] true. */
  apmObfuscateCreditCards?: boolean;
  /** [DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS] `http.url` path segments with a digit become `?`; default False. */
  apmRemovePathsWithDigits?: boolean;
  /** [DD_APM_OBFUSCATION_REDIS_ENABLED] Values in `redis.raw_command` become `?`; default True. */
  apmObfuscateRedis?: boolean;
  /** [DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS] Every redis argument becomes `?`; default False. */
  apmRedisRemoveAllArgs?: boolean;
  /** [DD_APM_OBFUSCATION_VALKEY_ENABLED] Values in `valkey.raw_command` become `?`; default True. */
  apmObfuscateValkey?: boolean;
  /** [DD_APM_OBFUSCATION_VALKEY_REMOVE_ALL_ARGS] Every valkey argument becomes `?`; default False. */
  apmValkeyRemoveAllArgs?: boolean;
  /** [DD_APM_OBFUSCATION_MEMCACHED_ENABLED] Rewrite `memcached.command`; default True. */
  apmObfuscateMemcached?: boolean;
  /** [DD_APM_OBFUSCATION_MEMCACHED_KEEP_COMMAND] Keep its first line instead of blanking it; default False. */
  apmMemcachedKeepCommand?: boolean;
  /** [DD_APM_OBFUSCATION_REMOVE_STACK_TRACES] `error.stack` becomes `?`; default False. */
  apmRemoveStackTraces?: boolean;
  /** [DD_APM_OBFUSCATION_CACHE_ENABLED] Keep SQL obfuscation results across requests (same output, less CPU); default True. */
  apmObfuscationCacheEnabled?: boolean;
  /** [DD_APM_OBFUSCATION_CACHE_MAX_SIZE] Bytes the cache's entries may hold; default 2097152. */
  apmObfuscationCacheMaxSize?: number;
  /** [DD_APM_REPLACE_TAGS] JSON list of `{"name", "pattern", "repl"}` rules (POSIX extended regex). */
  apmReplaceTags?: string | null;
  /** [DD_AGENT_STATS_COMPUTATION_ENABLED] false: the trace agent computes trace stats (hits,
   * errors, latency sketches per 10 s bucket) for tracers that do not compute their own. */
  agentStatsComputationEnabled?: boolean;

  // ---- Logs agent
  /** [DD_LOGS_ENABLED] false: HTTP POST /v1/input, batched to the logs intake. */
  logsEnabled?: boolean;
  /** [DD_LOGS_PORT] 10517; 0 = any free port (the `ready` status of 'logs-agent' has it). */
  logsPort?: number;
  /** [DD_LOGS_NON_LOCAL_TRAFFIC] false: bind 127.0.0.1. */
  logsNonLocalTraffic?: boolean;
  /** [DD_LOGS_CONFIG_LOGS_DD_URL] A URL (/api/v2/logs appended) or host:port (https).
   * Default https://http-intake.logs.<site>. */
  logsDdUrl?: string | null;
  /** [DD_LOGS_CONFIG_USE_COMPRESSION] true: zstd. */
  logsUseCompression?: boolean;
  /** [DD_LOGS_CONFIG_COMPRESSION_LEVEL] 3, 1-19. */
  logsCompressionLevel?: number;
  /** [DD_LOGS_MAX_QUEUED_BYTES] 8388608: entries waiting for the next flush. */
  logsMaxQueuedBytes?: number;
  /** [DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED] false: send batches to logsOpwUrl instead of
   * the Datadog intake (uncompressed, without DD-PROTOCOL). */
  logsOpwEnabled?: boolean;
  /** [DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL] Full URL of the worker; required when logsOpwEnabled. */
  logsOpwUrl?: string | null;
  /** [DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS] More Datadog logs intakes that get every batch at
   * https://host:port/api/v2/logs with their own key: the JSON text, or an array of endpoints.
   * Flush and stop wait for the reliable ones only. */
  logsAdditionalEndpoints?: string | LogsEndpoint[] | null;

  // ---- Azure Functions enhanced metrics
  /** [DD_ENHANCED_METRICS_ENABLED] true: on Azure Functions, send azure.functions.enhanced.cpu.usage
   * (azure.functions.enhanced.instance is sent regardless). */
  enhancedMetricsEnabled?: boolean;

  // ---- Transport
  /** [DD_FORWARDER_TIMEOUT, in seconds there] 20000. */
  requestTimeoutMs?: number;
  /** [DD_FORWARDER_RETRY_QUEUE_PAYLOADS_MAX_SIZE] 15728640. */
  retryQueueMaxBytes?: number;
  /** [DD_FORWARDER_SEND_QUEUE_PAYLOADS_MAX_SIZE] 33554432: payloads waiting for their first
   * attempt (a slow intake), per destination; the oldest past it are dropped and counted. */
  sendQueueMaxBytes?: number;

  // ---- Node only
  /** Keep the process alive while the services run (default false: they never hold it open). */
  keepAlive?: boolean;
  /**
   * Receives the C library's log lines (filtered by logLevel) instead of stderr. The C log sink
   * is process-wide: while several instances run, the latest one started with a logger gets
   * every line.
   */
  logger?: ((level: Exclude<LogLevel, 'off'>, message: string) => void) | null;
}

export interface ServiceStatus {
  type: 'ready' | 'error' | 'stopped';
  /** The service the event is about; 'process' for the whole instance ('stopped', no CA certificates). */
  service: 'trace-agent' | 'dogstatsd' | 'logs-agent' | 'process';
  message?: string;
  /** For 'ready': the bound port. */
  port?: number;
}

export type StatusCallback = (status: ServiceStatus) => void;

/** Codes of the errors start, stop and flush reject with (messages as in the design). */
export type ServicesErrorCode =
  | 'ERR_INVALID_CONFIG'          // "Invalid configuration: ..."
  | 'ERR_ENVIRONMENT_DETECTION'   // "Failed to detect cloud environment"
  | 'ERR_TRACE_AGENT_START'       // "Failed to start trace agent: ..."
  | 'ERR_DOGSTATSD_START'         // "Failed to start DogStatsD: ..."
  | 'ERR_ALREADY_STARTED'         // "Services already started"
  | 'ERR_NOT_RUNNING'             // "Services not running"
  | 'ERR_SHUTDOWN_TIMEOUT'        // "Shutdown timeout exceeded ..." / "Flush timeout exceeded ..."
  | 'ERR_RUNTIME'                 // "Runtime error: ..."
  | 'ERR_LOGS_AGENT_START';       // "Failed to start logs agent: ..."

export interface ServicesError extends Error {
  code: ServicesErrorCode | 'ERR_INVALID_ARG_TYPE' | 'ERR_OUT_OF_RANGE';
}

export interface ServicePorts {
  /** 0 when DogStatsD is not running. */
  dogstatsd: number;
  /** 0 when the trace agent is not running. */
  traceAgent: number;
  /** 0 when the logs agent is not running (logsEnabled). */
  logsAgent: number;
}

/** Counters since start; they keep their values after stop. */
export interface ServicesStats {
  dsdPackets: number;
  dsdPacketsTruncated: number;
  /** Datagrams dropped because the receive queue (dogstatsdQueueBytes) was full. */
  dsdPacketsDroppedQueue: number;
  /** Datagrams the kernel dropped because the socket's receive buffer was full (its own count). */
  dsdPacketsDroppedSocket: number;
  dsdBytes: number;
  dsdMetricLines: number;
  dsdEvents: number;
  dsdServiceChecks: number;
  dsdParseErrors: number;
  dsdSamples: number;
  dsdSamplesDropped: number;
  dsdContextsDropped: number;
  dsdContexts: number;
  dsdEventsDropped: number;
  payloadsSent: number;
  payloadsRetried: number;
  payloadsDropped: number;
  payloadBytesSent: number;
  seriesSent: number;
  sketchesSent: number;
  dryRunPayloads: number;
  traceRequests: number;
  traceSpans: number;
  traceDropped: number;
  traceSpansDropped: number;
  traceSpansObfuscated: number;
  traceSqlNonParsable: number;
  /** Eligible spans aggregated into agent-computed trace stats. */
  traceStatsSpans: number;
  /** Of those, aggregated under the overflow key (live-key bound reached). */
  traceStatsSpansOverflow: number;
  /** Eligible spans lost (tracer-metadata bound, out of memory). */
  traceStatsSpansDropped: number;
  /** 10 s stats buckets flushed. */
  traceStatsBuckets: number;
  /** Aggregation keys (grouped stats) flushed. */
  traceStatsKeys: number;
  logsRequests: number;
  logsEntries: number;
  logsEntriesDropped: number;
  logsBytes: number;
  /** Bytes of payloads waiting for their first attempt right now (a gauge). */
  sendQueueBytes: number;
  /** Payloads dropped because the send queue was full, by pipeline. */
  sendQueueDroppedMetrics: number;
  sendQueueDroppedTraces: number;
  sendQueueDroppedLogs: number;
  sendQueueDroppedProxy: number;
  /** Enhanced metric samples aggregated (CPU and instance). */
  enhancedSamples: number;
  /** 1 s CPU ticks with no readable cgroup counter (or garbage in it). */
  enhancedCpuUnavailable: number;
}

export class DatadogServices {
  /**
   * Start Datadog serverless services
   * @param config Service configuration (options left out come from DD_* variables)
   * @param statusCallback Optional callback for status updates
   * @returns Promise that resolves when both services are bound and serving
   */
  start(config?: ServicesConfig, statusCallback?: StatusCallback): Promise<void>;

  /**
   * Stop services gracefully: drain, flush, wait for the intake (at most timeoutMs, default 5000)
   * @returns Promise that resolves when services are stopped
   */
  stop(timeoutMs?: number): Promise<void>;

  /** Send everything now and wait for the intake (at most timeoutMs, default 5000). */
  flush(timeoutMs?: number): Promise<void>;

  /** Check if services are currently running */
  isRunning(): boolean;

  /** The bound ports. */
  readonly ports: ServicePorts;

  /** Counters since start. */
  stats(): ServicesStats;

  /** Stop and flush on beforeExit, SIGTERM, SIGINT and exit; signals keep their usual outcome. */
  registerCleanupHook(): void;
}

export const services: DatadogServices;

/** The C library's version. */
export const version: string;
