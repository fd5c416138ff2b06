"""A user switching from the Rust datadog-serverless-compat keeps their environment: every
variable it reads (PARITY.md section 5) is read here too (listed in src_c/config_vars.h, so in
--help and the README), and a function's environment written for the Rust binary runs unchanged,
with metrics, traces, agent-computed stats and logs all reaching the intake."""
from __future__ import annotations

import json
import re
import time
import urllib.request

import msgpack

from tests.py.cli import Cli
from tests.py.test_cloud_e2e import MetadataServer
from tests.py.test_config_docs import table

API_KEY = "parity-test-api-key-0123456789abcdef"

# Every DD_* variable the Rust binary (serverless-components d0c7f44, libdatadog a820699) reads.
RUST_VARIABLES = [
    "DD_LOG_LEVEL", "DD_API_KEY", "DD_SITE", "DD_DOGSTATSD_PORT", "DD_DOGSTATSD_WINDOWS_PIPE_NAME",
    "DD_USE_DOGSTATSD", "DD_STATSD_METRIC_NAMESPACE", "DD_ENHANCED_METRICS_ENABLED", "DD_PROXY_HTTPS",
    "DD_LOGS_ENABLED", "DD_LOGS_PORT", "DD_AGENT_STATS_COMPUTATION_ENABLED", "DD_APM_RECEIVER_PORT",
    "DD_APM_WINDOWS_PIPE_NAME", "DD_APM_DD_URL", "DD_APM_PROFILING_DD_URL", "DD_TAGS", "DD_ENV",
    "DD_SERVICE", "DD_VERSION", "DD_SERVERLESS_COMPAT_VERSION", "DD_AZURE_RESOURCE_GROUP",
    "DD_APM_REPLACE_TAGS", "DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING",
    "DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS", "DD_APM_OBFUSCATION_REDIS_ENABLED",
    "DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS", "DD_APM_OBFUSCATION_MEMCACHED_ENABLED",
    "DD_LOGS_CONFIG_USE_COMPRESSION", "DD_LOGS_CONFIG_COMPRESSION_LEVEL", "DD_FLUSH_TIMEOUT",
    "DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED", "DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL",
    "DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS",
]
PORT_RE = {
    "trace": re.compile(r"trace agent listening on 127\.0\.0\.1:(\d+)"),
    "logs": re.compile(r"logs agent listening on 127\.0\.0\.1:(\d+)"),
}


def test_every_variable_of_the_rust_binary_is_read_here():
    listed = {name for _, name, _, _ in table()}
    assert sorted(set(RUST_VARIABLES) - listed) == []


def port_of(cli: Cli, what: str, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in cli.stderr_lines:
            if m := PORT_RE[what].search(line):
                return int(m.group(1))
        time.sleep(0.02)
    raise AssertionError(f"no {what} port in {cli.stderr_lines}")


def post(url: str, body: bytes, content_type: str) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
        return r.status


def test_an_environment_written_for_the_rust_binary_runs_unchanged(fake_intake):
    env = {
        # as a user of the Rust binary sets them (prefix forms, its names), pointed at the fake intake
        "DD_API_KEY": API_KEY, "DD_SITE": "datadoghq.com", "DD_LOG_LEVEL": "info",
        "DD_DOGSTATSD_PORT": "0", "DD_USE_DOGSTATSD": "true", "DD_STATSD_METRIC_NAMESPACE": "app",
        "DD_APM_RECEIVER_PORT": "0", "DD_APM_DD_URL": fake_intake.url, "DD_APM_ENABLED": "true",
        "DD_APM_PROFILING_DD_URL": fake_intake.url, "DD_DD_URL": fake_intake.url,
        "DD_LOGS_ENABLED": "true", "DD_LOGS_PORT": "0", "DD_LOGS_CONFIG_LOGS_DD_URL": fake_intake.url,
        "DD_LOGS_CONFIG_USE_COMPRESSION": "true", "DD_LOGS_CONFIG_COMPRESSION_LEVEL": "3", "DD_FLUSH_TIMEOUT": "5",
        "DD_AGENT_STATS_COMPUTATION_ENABLED": "true", "DD_TAGS": "team:core,tier:web", "DD_ENV": "prod",
        "DD_SERVICE": "checkout", "DD_VERSION": "1.2.3", "DD_SERVERLESS_COMPAT_VERSION": "1.0.0",
        "DD_ENHANCED_METRICS_ENABLED": "true", "DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING": "true",
        "DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS": "true", "DD_APM_OBFUSCATION_REDIS_ENABLED": "true",
        "DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS": "false", "DD_APM_OBFUSCATION_MEMCACHED_ENABLED": "true",
        "DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED": "false",
        "K_SERVICE": "checkout-fn", "FUNCTION_TARGET": "handler",  # a Google Cloud function
    }
    md = MetadataServer()  # Google's metadata server, played on loopback (GCE_METADATA_HOST)
    try:
        cli = run_parity(env, md)
    finally:
        md.close()
    check_parity(cli, fake_intake)


def run_parity(env: dict, md: MetadataServer) -> Cli:
    cli = Cli({**env, "GCE_METADATA_HOST": md.host})
    cli.wait_ready()
    trace_port, logs_port = port_of(cli, "trace"), port_of(cli, "logs")
    cli.send("orders:3|c|#shop:1")
    now = time.time_ns()
    span = {"service": "checkout", "name": "http.request", "resource": "GET /orders/1234", "trace_id": 7,
            "span_id": 8, "parent_id": 0, "start": now - 5_000_000, "duration": 5_000_000, "error": 0,
            "type": "web", "meta": {"http.url": "http://shop/orders/1234?card=1", "span.kind": "server"},
            "metrics": {"_top_level": 1}}
    assert post(f"http://127.0.0.1:{trace_port}/v0.4/traces", msgpack.packb([[span]]), "application/msgpack") == 200
    entry = {"message": "order placed", "timestamp": int(time.time() * 1000), "service": "checkout"}
    assert post(f"http://127.0.0.1:{logs_port}/v1/input", json.dumps([entry]).encode(), "application/json") == 200
    time.sleep(0.1)
    assert cli.terminate() == 0, cli.stderr_lines
    return cli


def check_parity(cli: Cli, fake_intake) -> None:
    assert not [l for l in cli.stderr_lines if " ERROR " in l or " WARN " in l or ": error:" in l], cli.stderr_lines

    (series,) = [s for s in fake_intake.series() if s["metric"] == "app.orders"]
    assert {"shop:1", "team:core", "tier:web", "env:prod", "service:checkout", "version:1.2.3"} <= set(series["tags"])
    (sp,) = [s for s in fake_intake.spans() if s["name"] == "http.request"]
    assert sp["meta"]["http.url"] == "http://shop/orders/??"
    # A tracer payload tag, not a span tag: where the Rust binary puts it (trace_processor.rs)
    function_tags = [tp["tags"].get("_dd.tags.function") for p in fake_intake.traces() for tp in p["tracerPayloads"]]
    assert function_tags == ["team:core,tier:web"]
    assert sp["meta"].get("_dd.serverless_compat_version") == "1.0.0"
    stats = [p for p in fake_intake.stats() if not p.get("ClientComputed")]
    assert stats, "agent-computed stats reached /api/v0.2/stats at the stop"
    hits = sum(g["Hits"] for p in stats for c in p["Stats"] for b in c["Stats"] for g in b["Stats"])
    assert hits == 1
    assert [e["message"] for e in fake_intake.logs()] == ["order placed"]
