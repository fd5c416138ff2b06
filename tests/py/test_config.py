"""datadog_serverless.config: ServicesConfig <-> dds_config conversion, defaults and DD_* variables
read by C, and validation errors from dds_config_validate that name the field."""
from __future__ import annotations

import dataclasses
import json
import os

import pytest

from datadog_serverless import InvalidConfigError, ServerlessServices, ServicesConfig, _core


def converted(cfg: ServicesConfig) -> dict:
    """What the C struct holds after the conversion."""
    return cfg._to_core().as_dict()


def test_every_c_field_is_a_dataclass_field_in_header_order():
    assert [f.name for f in dataclasses.fields(ServicesConfig)] == [name for name, _, _ in _core.FIELDS]
    assert all(getattr(ServicesConfig(), f.name) is None for f in dataclasses.fields(ServicesConfig))


def test_defaults_come_from_dds_config_init():
    d = ServicesConfig.defaults()
    assert (d.site, d.dogstatsd_port, d.apm_receiver_port, d.log_level) == ("datadoghq.com", 8125, 8126, "info")
    assert (d.use_dogstatsd, d.use_trace_agent, d.tls_verify, d.dry_run, d.dry_run_fd) == (True, True, True, False, 1)
    assert d.histogram_aggregates == "max,median,avg,count" and d.histogram_percentiles == "0.95"
    assert (d.dogstatsd_so_rcvbuf, d.dogstatsd_queue_bytes) == (0, 4 << 20)
    assert d.api_key is None and d.dd_url is None
    assert (d.logs_enabled, d.logs_port, d.logs_non_local_traffic, d.logs_dd_url) == (False, 10517, False, None)
    assert (d.logs_use_compression, d.logs_compression_level, d.logs_max_queued_bytes) == (True, 3, 8 << 20)
    assert d.agent_stats_computation_enabled is False
    assert d.enhanced_metrics_enabled is True
    # None everywhere converts to exactly the C defaults.
    assert converted(ServicesConfig()) == dataclasses.asdict(d)


def test_every_field_round_trips_through_the_c_struct():
    values = dict(
        api_key="k", site="datadoghq.eu", dd_url="http://127.0.0.1:1", https_proxy="http://127.0.0.1:2",
        tls_ca_path="/", tls_verify=False, dry_run=True, dry_run_fd=2, log_level="debug", tags="a:1,b:2", env="prod",
        service="svc", version="1.2", use_dogstatsd=False, dogstatsd_port=0, dogstatsd_socket="/tmp/dsd.sock",
        dogstatsd_non_local_traffic=True, dogstatsd_buffer_size=1024, dogstatsd_so_rcvbuf=4096, dogstatsd_queue_bytes=65536,
        metric_namespace="ns", context_limit=7, counter_expiry_s=0, histogram_aggregates="min,sum",
        histogram_percentiles="0.5,0.99", client_telemetry=False, flush_interval_ms=500, use_trace_agent=False,
        apm_receiver_port=0, apm_receiver_socket="/tmp/apm.sock", apm_non_local_traffic=True,
        apm_dd_url="http://127.0.0.1:3", apm_profiling_dd_url="http://127.0.0.1:4/p",
        apm_telemetry_dd_url="http://127.0.0.1:5", evp_proxy_dd_url="http://127.0.0.1:6",
        apm_max_request_bytes=2048, apm_remove_query_string=True, apm_obfuscate_credit_cards=False,
        apm_remove_paths_with_digits=True, apm_obfuscate_redis=False, apm_redis_remove_all_args=True,
        apm_obfuscate_valkey=False, apm_valkey_remove_all_args=True, apm_obfuscate_memcached=False,
        apm_memcached_keep_command=True, apm_remove_stack_traces=True,
        apm_obfuscation_cache_enabled=False, apm_obfuscation_cache_max_size=65536,
        apm_replace_tags='[{"name": "*", "pattern": "secret", "repl": "?"}]',
        agent_stats_computation_enabled=True,
        logs_enabled=True, logs_port=0, logs_non_local_traffic=True, logs_dd_url="http://127.0.0.1:7",
        logs_use_compression=False, logs_compression_level=9, logs_max_queued_bytes=2 << 20,
        logs_opw_enabled=True, logs_opw_url="http://127.0.0.1:8",
        enhanced_metrics_enabled=False,
        logs_additional_endpoints='[{"api_key":"k2","Host":"h.example","Port":443,"is_reliable":true}]',
        request_timeout_ms=1500, retry_queue_max_bytes=1 << 20, send_queue_max_bytes=1 << 20,
    )
    assert set(values) == {f.name for f in dataclasses.fields(ServicesConfig)}
    cfg = ServicesConfig(**values)
    assert converted(cfg) == values
    cfg.validate()


def test_additional_logs_endpoints_as_a_list_or_json():
    eps = [{"api_key": "k1", "host": "h1.example", "port": 10516, "is_reliable": False},
           {"api_key": "k2", "host": "h2.example"}]
    text = converted(ServicesConfig(logs_additional_endpoints=eps))["logs_additional_endpoints"]
    assert json.loads(text) == eps
    ServicesConfig(logs_additional_endpoints=eps).validate()
    with pytest.raises(InvalidConfigError) as err:
        ServicesConfig(logs_additional_endpoints=[{"api_key": "py-secret-key", "port": 443}]).validate()
    assert str(err.value) == ("Invalid configuration: logs_additional_endpoints (DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS) "
                              "is not valid: endpoint 0: Host is missing")
    with pytest.raises(InvalidConfigError) as err:
        ServicesConfig(logs_additional_endpoints='[{"api_key":"py-secret-key","Host":"h"').validate()
    assert "invalid JSON at byte" in str(err.value) and "py-secret-key" not in str(err.value)
    with pytest.raises(InvalidConfigError, match="logs_additional_endpoints must be a JSON string or a list of dicts"):
        converted(ServicesConfig(logs_additional_endpoints=[1, 2]))  # type: ignore[list-item]


def test_opw_enabled_without_a_url_is_a_clear_error():
    with pytest.raises(InvalidConfigError, match=r"logs_opw_url \(DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL\) "
                                                 "must be set when logs_opw_enabled is true"):
        ServicesConfig(logs_enabled=True, logs_opw_enabled=True).validate()


def test_lists_are_joined_with_commas():
    got = converted(ServicesConfig(tags=["a:1", "b:2"], histogram_aggregates=("max", "sum"),
                                   histogram_percentiles=[0.5, 0.99]))
    assert (got["tags"], got["histogram_aggregates"], got["histogram_percentiles"]) == ("a:1,b:2", "max,sum", "0.5,0.99")


def test_log_level_by_name_or_number():
    assert converted(ServicesConfig(log_level="WARN"))["log_level"] == "warn"
    assert converted(ServicesConfig(log_level=0))["log_level"] == "trace"
    assert converted(ServicesConfig(log_level="off"))["log_level"] == "off"


def test_config_is_frozen_and_keyword_only():
    cfg = ServicesConfig(api_key="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.api_key = "y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ServicesConfig("x")  # type: ignore[misc]


def test_from_env_reads_dd_variables_in_c(monkeypatch):
    for k in [k for k in os.environ if k.startswith("DD_") or k == "HTTPS_PROXY"]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("DD_API_KEY", "env-key")
    monkeypatch.setenv("DD_SITE", "datadoghq.eu")
    monkeypatch.setenv("DD_URL", "http://ignored.invalid")
    monkeypatch.setenv("DD_DD_URL", "http://127.0.0.1:9")  # wins over DD_URL, as in the Go agent
    monkeypatch.setenv("DD_DOGSTATSD_PORT", "9125")
    monkeypatch.setenv("DD_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("DD_SKIP_SSL_VALIDATION", "true")
    monkeypatch.setenv("DD_FORWARDER_TIMEOUT", "3")           # seconds
    monkeypatch.setenv("DD_APM_ENABLED", "false")
    monkeypatch.setenv("DD_TAGS", "team:a tier:b")
    monkeypatch.setenv("DD_TLS_CA_PATH", "/")
    monkeypatch.setenv("DD_LOGS_ENABLED", "true")
    monkeypatch.setenv("DD_LOGS_PORT", "0")
    monkeypatch.setenv("DD_LOGS_CONFIG_LOGS_DD_URL", "127.0.0.1:9000")
    monkeypatch.setenv("DD_LOGS_CONFIG_USE_COMPRESSION", "false")
    monkeypatch.setenv("DD_LOGS_CONFIG_COMPRESSION_LEVEL", "7")
    monkeypatch.setenv("DD_ENHANCED_METRICS_ENABLED", "false")
    cfg = ServicesConfig.from_env()
    assert cfg.enhanced_metrics_enabled is False
    assert (cfg.logs_enabled, cfg.logs_port, cfg.logs_dd_url) == (True, 0, "127.0.0.1:9000")
    assert (cfg.logs_use_compression, cfg.logs_compression_level) == (False, 7)
    assert (cfg.api_key, cfg.site, cfg.dd_url, cfg.dogstatsd_port) == ("env-key", "datadoghq.eu", "http://127.0.0.1:9", 9125)
    assert (cfg.log_level, cfg.tls_verify, cfg.request_timeout_ms, cfg.use_trace_agent) == ("warn", False, 3000, False)
    assert cfg.tags == "team:a tier:b"
    assert cfg.tls_ca_path == "/"
    assert cfg.apm_receiver_port == 8126  # unset variable: the C default
    # Overrides come last.
    over = ServicesConfig.from_env(dogstatsd_port=0, api_key=None, log_level="error")
    assert (over.dogstatsd_port, over.api_key, over.log_level, over.site) == (0, None, "error", "datadoghq.eu")
    with pytest.raises(TypeError):
        ServicesConfig.from_env(no_such_field=1)


def test_from_env_conversion_error_is_the_c_message(monkeypatch):
    monkeypatch.setenv("DD_DOGSTATSD_PORT", "abc")
    with pytest.raises(InvalidConfigError) as exc:
        ServicesConfig.from_env()
    assert str(exc.value) == "Invalid configuration: DD_DOGSTATSD_PORT must be an integer in -2147483648-2147483647, got 'abc'"
    assert exc.value.code == "ERR_INVALID_CONFIG"
    monkeypatch.setenv("DD_DOGSTATSD_PORT", "0")
    monkeypatch.setenv("DD_USE_DOGSTATSD", "maybe")
    with pytest.raises(InvalidConfigError, match="^Invalid configuration: DD_USE_DOGSTATSD must be true or false, got 'maybe'$"):
        ServicesConfig.from_env()


@pytest.mark.parametrize("fields,message", [
    ({"dogstatsd_port": 70000}, "Invalid configuration: dogstatsd_port must be 0-65535, got 70000"),
    ({"apm_receiver_port": -1}, "Invalid configuration: apm_receiver_port must be 0-65535, got -1"),
    ({"site": "https://example.com"}, "Invalid configuration: site must be a Datadog site such as datadoghq.com, "
                                      "us3.datadoghq.com, datadoghq.eu (letters, digits, '.', '_', ':', '-'), "
                                      "got 'https://example.com'"),
    ({"metric_namespace": "9lives"}, "Invalid configuration: metric_namespace must start with a letter and contain "
                                     "only letters, digits, '_' and '.', got '9lives'"),
    ({"dogstatsd_buffer_size": 100}, "Invalid configuration: dogstatsd_buffer_size must be 512-65536, got 100"),
    ({"histogram_aggregates": ["max", "p99"]}, "Invalid configuration: histogram_aggregates must be a list of "
                                               "max|min|median|avg|sum|count, got 'p99'"),
    ({"histogram_percentiles": [1.5]}, "Invalid configuration: histogram_percentiles must be up to 16 numbers "
                                       "between 0 and 1 exclusive, got '1.5'"),
    ({"flush_interval_ms": 10}, "Invalid configuration: flush_interval_ms must be 100-3600000, got 10"),
    ({"dd_url": "ftp://x"}, "Invalid configuration: dd_url must be an http:// or https:// URL, got 'ftp://x'"),
    ({"log_level": 20}, "Invalid configuration: log_level must be one of trace|debug|info|warn|error|off, got 20"),
    ({"logs_port": 70000}, "Invalid configuration: logs_port must be 0-65535, got 70000"),
    ({"logs_compression_level": 0}, "Invalid configuration: logs_compression_level must be 1-19, got 0"),
    ({"logs_dd_url": "ftp://x"}, "Invalid configuration: logs_dd_url must be an http:// or https:// URL or "
                                 "host:port, got 'ftp://x'"),
    ({"tls_ca_path": "/no/such/ca.pem"}, "Invalid configuration: tls_ca_path must be a readable PEM file or "
                                         "directory, got '/no/such/ca.pem' (No such file or directory)"),
])
def test_validation_errors_come_from_c_and_name_the_field(fields, message):
    cfg = ServicesConfig(**fields)
    with pytest.raises(InvalidConfigError) as exc:
        cfg.validate()
    assert str(exc.value) == message
    with pytest.raises(InvalidConfigError) as exc:
        ServerlessServices(cfg)  # checked when the services object is made, before any start
    assert str(exc.value) == message
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("fields,needle", [
    ({"dogstatsd_port": "8125"}, "dogstatsd_port must be an integer, got '8125'"),
    ({"dogstatsd_port": True}, "dogstatsd_port must be an integer, got True"),
    ({"dogstatsd_port": 1 << 40}, "dogstatsd_port must be a 32-bit integer"),
    ({"context_limit": -1}, "context_limit must be a 32-bit unsigned integer, got -1"),
    ({"use_dogstatsd": "false"}, "use_dogstatsd must be True or False, got 'false'"),
    ({"log_level": "loud"}, "log_level must be one of trace|debug|info|warn|error|off, got 'loud'"),
    ({"api_key": "a\0b"}, "api_key must be a string without NUL characters"),
    ({"site": 3}, "site must be a string, got 3"),
])
def test_conversion_errors_name_the_field(fields, needle):
    with pytest.raises(InvalidConfigError) as exc:
        ServicesConfig(**fields).validate()
    assert str(exc.value).startswith("Invalid configuration: ") and needle in str(exc.value)


def test_missing_api_key_is_not_an_error():
    ServicesConfig(api_key=None).validate()
    ServicesConfig(api_key="").validate()
