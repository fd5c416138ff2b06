"""``ServicesConfig``: every option of the C library's ``dds_config``, in snake_case.

A field left at ``None`` keeps the C library's default (``dds_config_init``); the defaults, the
``DD_*`` variables and every range check live in C, not here. :meth:`ServicesConfig.defaults`
and :meth:`ServicesConfig.from_env` read them back from C, so they show the real values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ._record import TYPE_CHECKING, record
from .errors import InvalidConfigError

# Nothing here is imported at import time that a function's cold start would pay for without
# using it: the extension on the first call that
# needs the C library, `json` only for logs_additional_endpoints given as a list, and not `typing`
# (it imports `re`): the field annotations use builtins and collections.abc only, so that
# typing.get_type_hints(ServicesConfig) still resolves them.
if TYPE_CHECKING:
    from typing import Any

    from . import _core

StrList = str | Iterable[object] | None

__all__ = ["ServicesConfig"]

_LIST_FIELDS = ("tags", "histogram_aggregates", "histogram_percentiles")


@record(frozen=True, kw_only=True)
class ServicesConfig:
    """Configuration of one services instance. ``None`` means "the C library's default".

    Strings are UTF-8. ``tags``, ``histogram_aggregates`` and ``histogram_percentiles`` also
    accept a list (joined with commas). ``log_level`` is a name (``"trace"``, ``"debug"``,
    ``"info"``, ``"warn"``, ``"error"``, ``"off"``). The environment variable each field is read
    from by :meth:`from_env` is in brackets.
    """

    # Datadog account
    api_key: str | None = None
    """[DD_API_KEY] Without one nothing is sent: one summary line per payload (endpoint, kind, items,
    bytes; never its contents) is written to ``dry_run_fd``; ``dry_run=True`` writes the payloads in full."""
    site: str | None = None
    """[DD_SITE] A Datadog site; default ``datadoghq.com``."""
    dd_url: str | None = None
    """[DD_DD_URL, then DD_URL] Metrics intake base URL override."""
    https_proxy: str | None = None
    """[DD_PROXY_HTTPS, then HTTPS_PROXY] Proxy for every request."""
    tls_ca_path: str | None = None
    """[DD_TLS_CA_PATH] CA certificates that verify the intake: a PEM bundle, or a directory of
    PEM files. Unset: found at start ($SSL_CERT_FILE, $SSL_CERT_DIR, the system bundles, then
    /etc/ssl/certs). Found nowhere: https requests fail, they are never sent unverified."""
    tls_verify: bool | None = None
    """[DD_SKIP_SSL_VALIDATION=true clears it] Default True."""
    dry_run: bool | None = None
    """[DD_DRY_RUN] Never send: write each payload in full as one JSON line to ``dry_run_fd``. Default False."""
    dry_run_fd: int | None = None
    """File descriptor of the dry-run output; default 1 (stdout)."""

    # Logging
    log_level: str | int | None = None
    """[DD_LOG_LEVEL] Lines below it are never produced; default ``"info"``."""

    # Unified service tagging and tags added to every metric
    tags: StrList = None
    """[DD_TAGS] ``"k:v,k2:v2"`` or ``["k:v", "k2:v2"]``."""
    env: str | None = None
    """[DD_ENV] Adds ``env:<env>``."""
    service: str | None = None
    """[DD_SERVICE] Adds ``service:<service>``."""
    version: str | None = None
    """[DD_VERSION] Adds ``version:<version>``."""

    # DogStatsD
    use_dogstatsd: bool | None = None
    """[DD_USE_DOGSTATSD] Run the DogStatsD server; default True."""
    dogstatsd_port: int | None = None
    """[DD_DOGSTATSD_PORT] UDP port, default 8125; 0 = any free port (see ``handle.ports``)."""
    dogstatsd_socket: str | None = None
    """[DD_DOGSTATSD_SOCKET] Also listen on this Unix datagram socket."""
    dogstatsd_non_local_traffic: bool | None = None
    """[DD_DOGSTATSD_NON_LOCAL_TRAFFIC] Bind 0.0.0.0 instead of 127.0.0.1; default False."""
    dogstatsd_buffer_size: int | None = None
    """[DD_DOGSTATSD_BUFFER_SIZE] Bytes per datagram, 512-65536; default 8192."""
    dogstatsd_so_rcvbuf: int | None = None
    """[DD_DOGSTATSD_SO_RCVBUF] Socket receive buffer; 0 (default) = ask for 4 MiB, capped by the kernel."""
    dogstatsd_queue_bytes: int | None = None
    """[DD_DOGSTATSD_QUEUE_BYTES] Receive queue per socket, filled by a thread of its own; default
    4194304, 0 = no thread (the loop thread reads the sockets)."""
    metric_namespace: str | None = None
    """[DD_STATSD_METRIC_NAMESPACE] Prefix ``<ns>.`` on every metric name."""
    context_limit: int | None = None
    """[DD_DOGSTATSD_CONTEXT_LIMIT] Live contexts, default 100000; 0 = unlimited."""
    counter_expiry_s: int | None = None
    """[DD_DOGSTATSD_EXPIRY_SECONDS] Counters report 0 this long after their last sample; 300."""
    histogram_aggregates: StrList = None
    """[DD_HISTOGRAM_AGGREGATES] Of max|min|median|avg|sum|count; default max,median,avg,count."""
    histogram_percentiles: StrList = None
    """[DD_HISTOGRAM_PERCENTILES] Numbers in (0, 1); default ``"0.95"``."""
    client_telemetry: bool | None = None
    """[DD_DOGSTATSD_CLIENT_TELEMETRY] False drops ``datadog.dogstatsd.client.*``; default True."""
    flush_interval_ms: int | None = None
    """[DD_DOGSTATSD_FLUSH_INTERVAL_MS] Period of the closed-bucket flush; default 10000."""

    # Trace agent
    use_trace_agent: bool | None = None
    """[DD_APM_ENABLED] Run the trace agent; default True."""
    apm_receiver_port: int | None = None
    """[DD_APM_RECEIVER_PORT] HTTP port, default 8126; 0 = any free port."""
    apm_receiver_socket: str | None = None
    """[DD_APM_RECEIVER_SOCKET] Also listen on this Unix stream socket."""
    apm_non_local_traffic: bool | None = None
    """[DD_APM_NON_LOCAL_TRAFFIC] Bind 0.0.0.0 instead of 127.0.0.1; default False."""
    apm_dd_url: str | None = None
    """[DD_APM_DD_URL] Traces and stats intake base URL; default https://trace.agent.<site>."""
    apm_profiling_dd_url: str | None = None
    """[DD_APM_PROFILING_DD_URL] Full profiles URL."""
    apm_telemetry_dd_url: str | None = None
    """[DD_APM_TELEMETRY_DD_URL] Tracer telemetry base URL."""
    evp_proxy_dd_url: str | None = None
    """[DD_EVP_PROXY_CONFIG_DD_URL] EVP proxy base URL."""
    apm_max_request_bytes: int | None = None
    """[DD_APM_MAX_PAYLOAD_SIZE] Trace request bodies past it get 413; default 25 MiB."""
    apm_remove_query_string: bool | None = None
    """[DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING] Strip the query from ``http.url``."""
    apm_obfuscate_credit_cards: bool | None = None
    """[DD_APM_OBFUSCATION_CREDIT_CARDS_ENABLED] Card numbers in tags become ``?``; default True."""
    apm_remove_paths_with_digits: bool | None = None
    """[DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS] ``http.url`` path segments with a digit become ``?``; default False."""
    apm_obfuscate_redis: bool | None = None
    """[DD_APM_OBFUSCATION_REDIS_ENABLED] Values in ``redis.raw_command`` become ``?``; default True."""
    apm_redis_remove_all_args: bool | None = None
    """[DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS] Every redis argument becomes ``?``; default False."""
    apm_obfuscate_valkey: bool | None = None
    """[DD_APM_OBFUSCATION_VALKEY_ENABLED] Values in ``valkey.raw_command`` become ``?``; default True."""
    apm_valkey_remove_all_args: bool | None = None
    """[DD_APM_OBFUSCATION_VALKEY_REMOVE_ALL_ARGS] Every valkey argument becomes ``?``; default False."""
    apm_obfuscate_memcached: bool | None = None
    """[DD_APM_OBFUSCATION_MEMCACHED_ENABLED] Rewrite ``memcached.command``; default True."""
    apm_memcached_keep_command: bool | None = None
    """[DD_APM_OBFUSCATION_MEMCACHED_KEEP_COMMAND] Keep its first line instead of blanking it; default False."""
    apm_remove_stack_traces: bool | None = None
    """[DD_APM_OBFUSCATION_REMOVE_STACK_TRACES] ``error.stack`` becomes ``?``; default False."""
    apm_obfuscation_cache_enabled: bool | None = None
    """[DD_APM_OBFUSCATION_CACHE_ENABLED] Keep SQL obfuscation results across requests (same output,
    less CPU); default True."""
    apm_obfuscation_cache_max_size: int | None = None
    """[DD_APM_OBFUSCATION_CACHE_MAX_SIZE] Bytes the cache's entries may hold; default 2097152."""
    apm_replace_tags: str | None = None
    """[DD_APM_REPLACE_TAGS] JSON list of ``{"name", "pattern", "repl"}`` rules (POSIX extended regex)."""
    agent_stats_computation_enabled: bool | None = None
    """[DD_AGENT_STATS_COMPUTATION_ENABLED] The trace agent computes trace stats (hits, errors,
    latency sketches per 10 s bucket) from the spans it receives, for tracers that do not compute
    their own; default False."""

    # Logs agent
    logs_enabled: bool | None = None
    """[DD_LOGS_ENABLED] Run the logs agent (HTTP ``POST /v1/input``); default False."""
    logs_port: int | None = None
    """[DD_LOGS_PORT] HTTP port, default 10517; 0 = any free port."""
    logs_non_local_traffic: bool | None = None
    """[DD_LOGS_NON_LOCAL_TRAFFIC] Bind 0.0.0.0 instead of 127.0.0.1; default False."""
    logs_dd_url: str | None = None
    """[DD_LOGS_CONFIG_LOGS_DD_URL] Logs intake: a URL (``/api/v2/logs`` appended) or ``host:port``
    (https); default https://http-intake.logs.<site>."""
    logs_use_compression: bool | None = None
    """[DD_LOGS_CONFIG_USE_COMPRESSION] zstd bodies; default True."""
    logs_compression_level: int | None = None
    """[DD_LOGS_CONFIG_COMPRESSION_LEVEL] zstd level 1-19; default 3."""
    logs_max_queued_bytes: int | None = None
    """[DD_LOGS_MAX_QUEUED_BYTES] Entries waiting for the next flush; default 8 MiB."""
    logs_opw_enabled: bool | None = None
    """[DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED] Send batches to ``logs_opw_url`` instead of
    the Datadog intake (uncompressed, without DD-PROTOCOL); default False."""
    logs_opw_url: str | None = None
    """[DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL] Full URL of the Observability Pipelines Worker;
    required when ``logs_opw_enabled``."""
    logs_additional_endpoints: str | Iterable[Mapping[str, object]] | None = None
    """[DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS] More Datadog logs intakes that receive every batch at
    ``https://host:port/api/v2/logs`` with their own key: the JSON text, or a list of
    ``{"api_key", "host", "port", "is_reliable"}`` dicts (port 443 and is_reliable True by
    default). Flush and stop wait for the reliable ones only."""

    # Azure Functions enhanced metrics
    enhanced_metrics_enabled: bool | None = None
    """[DD_ENHANCED_METRICS_ENABLED] On Azure Functions, send azure.functions.enhanced.cpu.usage;
    default True (azure.functions.enhanced.instance is sent regardless)."""

    # Transport
    request_timeout_ms: int | None = None
    """[DD_FORWARDER_TIMEOUT, in seconds] Per-request timeout; default 20000."""
    retry_queue_max_bytes: int | None = None
    """[DD_FORWARDER_RETRY_QUEUE_PAYLOADS_MAX_SIZE] Bound of the retry queue; default 15 MiB."""
    send_queue_max_bytes: int | None = None
    """[DD_FORWARDER_SEND_QUEUE_PAYLOADS_MAX_SIZE] Payloads waiting for their first attempt (a slow
    intake), per destination; the oldest past it are dropped and counted; default 32 MiB."""

    @classmethod
    def defaults(cls) -> ServicesConfig:
        """A config with every field set to the C library's default (``dds_config_init``)."""
        from . import _core

        return cls(**_core.Config().as_dict())

    @classmethod
    def from_env(cls, **overrides: Any) -> ServicesConfig:
        """The C library's defaults, then the ``DD_*`` variables (read in C by
        ``dds_config_from_env``, exactly as ``datadog-serverless-compat`` reads them), then
        ``overrides`` (field names, e.g. ``dogstatsd_port=0``).

        Raises InvalidConfigError naming the variable when one cannot be converted
        (``DD_DOGSTATSD_PORT=abc``), and TypeError for an unknown override name.
        """
        from . import _core

        core = _core.Config()
        core.load_env()
        return cls(**{**core.as_dict(), **overrides})

    def validate(self) -> None:
        """Check every field (``dds_config_validate``); raises InvalidConfigError naming it."""
        self._to_core().validate()

    def _to_core(self) -> _core.Config:
        """The C config: ``dds_config_init``, then every field that is not None."""
        from . import _core

        core = _core.Config()
        for name, value in self.__dict__.items():  # every field, in declaration order
            if name in _LIST_FIELDS and value is not None and not isinstance(value, str):
                value = ",".join(str(item) for item in value)
            elif name == "logs_additional_endpoints" and value is not None and not isinstance(value, str):
                import json

                # The C library reads the variable's JSON; its keys match in any case.
                try:
                    value = json.dumps([dict(item) for item in value])
                except (TypeError, ValueError) as exc:
                    raise InvalidConfigError(
                        "Invalid configuration: logs_additional_endpoints must be a JSON string or a list of "
                        f"dicts, got {type(value).__name__}") from exc
            core.set(name, value)
        return core
