"""End to end: the real `ddtrace` tracer (PyPI) pointed at the CLI's trace agent; the fake
intake receives gzip'd AgentPayloads with every span intact, stats when the tracer computes
them, and the tracer's telemetry through the proxy."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.py.cli import REPO, Cli

pytest.importorskip("ddtrace")
TRACE_PORT_RE = re.compile(r"trace agent listening on 127\.0\.0\.1:(\d+)")
API_KEY = "trace-e2e-key-0123456789abcdef"


def start(intake, **env) -> tuple[Cli, int]:
    base = {"DD_API_KEY": API_KEY, "DD_DD_URL": intake.url, "DD_APM_DD_URL": intake.url,
            "DD_APM_TELEMETRY_DD_URL": intake.url, "DD_APM_PROFILING_DD_URL": intake.url + "/api/v2/profile",
            "DD_APM_ENABLED": "true", "DD_APM_RECEIVER_PORT": "0"}
    base.update(env)
    cli = Cli(base)
    cli.wait_ready()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in cli.stderr_lines:
            m = TRACE_PORT_RE.search(line)
            if m:
                return cli, int(m.group(1))
        time.sleep(0.02)
    raise AssertionError(f"no trace agent port in {cli.stderr_lines}")


def run_app(port: int, api_version: str, *args: str, **env) -> dict:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    child_env.update({
        "DD_TRACE_AGENT_URL": f"http://127.0.0.1:{port}",
        "DD_TRACE_API_VERSION": api_version,
        "DD_REMOTE_CONFIGURATION_ENABLED": "false",
        "DD_SERVICE": "e2e-web",
        "DD_ENV": "e2e",
        "PYTHONPATH": str(REPO),
    })
    child_env.update(env)
    out = subprocess.run([sys.executable, str(REPO / "tests" / "py" / "trace_app.py"), *args], env=child_env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def spans_by_id(intake) -> dict[int, dict]:
    return {s["span_id"]: s for s in intake.spans()}


@pytest.mark.parametrize("api_version", ["v0.4", "v0.5"])
def test_ddtrace_spans_arrive_intact(fake_intake, api_version):
    cli, port = start(fake_intake, AWS_LAMBDA_FUNCTION_NAME="checkout-fn", DD_ENV="e2e")
    ids = run_app(port, api_version)
    fake_intake.wait_for(lambda i: set(x["span_id"] for x in ids.values()) <= set(spans_by_id(i)), timeout=10)
    assert cli.terminate() == 0

    got = spans_by_id(fake_intake)
    root, db, fetch, pay = (got[ids[k]["span_id"]] for k in ("root", "db", "fetch", "pay"))
    trace_id = ids["root"]["trace_id"]
    for k, s in (("root", root), ("db", db), ("fetch", fetch), ("pay", pay)):
        assert s["trace_id"] == trace_id, k
        assert s["parent_id"] == ids[k]["parent_id"], k
    assert root["parent_id"] == 0
    assert db["parent_id"] == root["span_id"] and fetch["parent_id"] == db["span_id"]
    assert (root["name"], root["service"], root["resource"], root["type"]) == \
        ("web.request", "e2e-web", "GET /checkout", "web")
    assert (db["service"], db["resource"], db["type"]) == ("e2e-db", "SELECT * FROM carts", "sql")
    assert fetch["service"] == "e2e-db"  # inherited from its parent by the tracer
    assert root["meta"]["customer.tier"] == "gold" and db["meta"]["db.system"] == "postgresql"
    assert root["metrics"]["cart.items"] == 3 and fetch["metrics"]["rows"] == 42
    assert pay["error"] == 1 and pay["meta"]["error.message"] == "card declined"
    assert root["duration"] > 0 and root["start"] > 1_700_000_000 * 10**9
    # top-level: roots and service entries
    assert root["metrics"].get("_top_level") == 1 and db["metrics"].get("_top_level") == 1
    assert "_top_level" not in fetch["metrics"]
    # serverless enrichment of the root span
    assert root["meta"]["_dd.origin"] == "lambda" and root["meta"]["functionname"] == "checkout-fn"
    # a tag value that is a card number is obfuscated (the Go agent's rule: whole values only)
    assert root["meta"]["payment.card"] == "?"
    # the query string stays unless DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING is set
    assert root["meta"]["http.url"] == "http://shop.local/checkout?card=4111111111111111&step=2"

    (payload, *_) = [r for r in fake_intake.records(path="/api/v0.2/traces") if r["status"] == 202]
    assert payload["headers"]["content-encoding"] == "gzip"
    assert payload["headers"]["content-type"] == "application/x-protobuf"
    assert payload["headers"]["dd-api-key"] == API_KEY
    tp = payload["payload"]["tracerPayloads"][0]
    assert tp["languageName"] == "python" and tp["tracerVersion"]
    assert payload["payload"]["env"] == "e2e"


def test_trace_sent_right_before_sigterm_still_arrives(fake_intake):
    cli, port = start(fake_intake, DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING="true")
    ids = run_app(port, "v0.4")
    assert cli.terminate() == 0  # at once: the trace agent's 3 s timer has not fired
    got = spans_by_id(fake_intake)
    assert set(x["span_id"] for x in ids.values()) <= set(got)
    assert "card=" not in got[ids["root"]["span_id"]]["meta"]["http.url"]


def test_ddtrace_telemetry_reaches_intake_through_proxy(fake_intake):
    cli, port = start(fake_intake)
    run_app(port, "v0.4", DD_INSTRUMENTATION_TELEMETRY_ENABLED="true", DD_TELEMETRY_HEARTBEAT_INTERVAL="1")
    fake_intake.wait_for(lambda i: i.records(path="/api/v2/apmtelemetry"), timeout=15)
    assert cli.terminate() == 0
    rec = fake_intake.records(path="/api/v2/apmtelemetry")[0]
    assert rec["headers"]["dd-api-key"] == API_KEY  # ours, added by the proxy
    body = rec["payload"]
    assert body["application"]["language_name"] == "python"


def test_ddtrace_stats_arrive_when_computed(fake_intake):
    cli, port = start(fake_intake)
    # ddtrace's native writer enables stats after reading /info (which lists /v0.6/stats with
    # client_drop_p0s) and flushes a bucket per interval: live 2 s with a 1 s interval.
    run_app(port, "v0.4", "--linger", "2", DD_TRACE_STATS_COMPUTATION_ENABLED="true",
            _DD_TRACE_STATS_WRITER_INTERVAL="1")
    fake_intake.wait_for(lambda i: i.stats(), timeout=20)
    assert cli.terminate() == 0
    stats = fake_intake.stats()[0]
    assert stats["ClientComputed"] is True
    assert stats["Stats"] and stats["Stats"][0]["Stats"]


def test_agent_computed_stats_reach_intake_on_sigterm(fake_intake):
    """DD_AGENT_STATS_COMPUTATION_ENABLED: ddtrace (its own stats off) sends every trace; the
    agent's stats of the open bucket go out on SIGTERM, matching the spans that reached the intake."""
    cli, port = start(fake_intake, DD_AGENT_STATS_COMPUTATION_ENABLED="true", DD_ENV="e2e")
    status, _, body = http(port, "GET", "/info")
    info = json.loads(body)
    assert status == 200 and info["client_drop_p0s"] is False
    assert info["span_kinds_stats_computed"] == ["server", "client", "producer", "consumer"]
    assert "peer.service" in info["peer_tags"] and len(info["peer_tags"]) == 43
    ids = run_app(port, "v0.4", "--client-kind", DD_TRACE_STATS_COMPUTATION_ENABLED="false")
    assert cli.terminate() == 0  # within the bucket: only the forced flush of the stop sends it

    got = spans_by_id(fake_intake)
    root, db, fetch, pay = (got[ids[k]["span_id"]] for k in ("root", "db", "fetch", "pay"))
    (payload,) = fake_intake.stats()
    assert payload["ClientComputed"] is False and payload["AgentEnv"] == "e2e"
    groups = {g["Name"]: g for g in fake_intake.stats_groups()}
    assert set(groups) == {"web.request", "db.query", "payment.charge"}  # db.fetch: not top level, no kind
    for span, kind, top_level in ((root, "", 1), (db, "", 1), (pay, "client", 0)):
        g = groups[span["name"]]
        assert (g["Service"], g["Resource"], g["Type"], g["SpanKind"]) == \
            (span["service"], span["resource"], span["type"], kind)
        assert g["Hits"] == 1 and g["Errors"] == span["error"] and g["Duration"] == span["duration"]
        assert g["TopLevelHits"] == top_level
        assert g["ok_sketch"]["count"] == 1 - span["error"] and g["error_sketch"]["count"] == span["error"]
        assert g["IsTraceRoot"] == (1 if span["parent_id"] == 0 else 2)
        assert g["width"] == 10**10 and g["start"] <= span["start"] + span["duration"] < g["start"] + 10**10
        base = span["meta"].get("_dd.base_service")
        if kind != "client":
            assert g["PeerTags"] == ([f"_dd.base_service:{base}"] if base else [])
        assert g["lang"] == "python" and g["env"] == "e2e" and g["tracer_version"]
    assert groups["web.request"]["HTTPStatusCode"] == 200
    assert groups["payment.charge"]["Errors"] == 1
    assert groups["web.request"]["service"] == root["meta"].get("_dd.base_service", "")


def test_no_stats_computed_without_the_variable(fake_intake):
    cli, port = start(fake_intake)
    _, _, body = http(port, "GET", "/info")
    info = json.loads(body)
    assert info["client_drop_p0s"] is True and info["peer_tags"] == [] and "span_kinds_stats_computed" not in info
    ids = run_app(port, "v0.4", "--client-kind", DD_TRACE_STATS_COMPUTATION_ENABLED="false")
    assert cli.terminate() == 0
    assert set(x["span_id"] for x in ids.values()) <= set(spans_by_id(fake_intake))
    assert fake_intake.stats() == []
    assert fake_intake.records(path="/api/v0.2/stats") == []


def http(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body if method != "GET" else None,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_oversize_body_413_and_keeps_serving(fake_intake):
    cli, port = start(fake_intake, DD_APM_MAX_PAYLOAD_SIZE=str(1 << 20))
    # The agent answers 413 from the headers and closes without reading the body, so a client
    # still writing gets EPIPE; the answer is there to read all the same.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        body = b"\x90" * (2 << 20)
        head = f"PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/msgpack\r\nContent-Length: {len(body)}\r\n\r\n"
        try:
            sock.sendall(head.encode() + body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except ConnectionResetError:
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"Datadog-Agent-Version:" in answer
    status, _, body = http(port, "GET", "/info")
    assert status == 200 and "/v0.4/traces" in json.loads(body)["endpoints"]
    status, _, body = http(port, "PUT", "/v0.4/traces", b"\x90", {"Content-Type": "application/msgpack"})
    assert status == 200 and b"rate_by_service" in body
    assert cli.terminate() == 0


def test_dogstatsd_over_http_proxy_joins_the_metrics(fake_intake):
    cli, port = start(fake_intake)
    status, _, _ = http(port, "POST", "/dogstatsd/v2/proxy", b"http.proxied:2|c|#via:http\nhttp.gauge:5|g\n")
    assert status == 202
    assert cli.terminate() == 0
    names = {s["metric"] for s in fake_intake.series()}
    assert {"http.proxied", "http.gauge"} <= names


def test_taken_trace_port_is_a_clear_start_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cli = Cli({"DD_APM_ENABLED": "true", "DD_APM_RECEIVER_PORT": str(port)})
        rc = cli.proc.wait(5)
    time.sleep(0.05)
    assert rc != 0
    assert any("Failed to start trace agent" in l and "Address already in use" in l for l in cli.stderr_lines), \
        cli.stderr_lines
