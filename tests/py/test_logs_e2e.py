"""End to end: the logs agent of the datadog-serverless-compat binary, real HTTP on loopback, the
fake intake.

Each test starts the binary with DD_LOGS_ENABLED=true, DD_LOGS_PORT=0 (the port is read back from
its "logs agent listening on" log line) and DD_LOGS_CONFIG_LOGS_DD_URL pointing at the fake intake,
posts entries to /v1/input with urllib, and asserts on what the intake decoded: the entries as
posted, in order, with DD-PROTOCOL: agent-json and zstd (unless compression is off). SIGTERM
delivers what was accepted (the Rust binary loses it).
"""
from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request

import pytest

from tests.py.cli import Cli

API_KEY = "logs-e2e-api-key-0123456789abcdef"
LOGS_PORT_RE = re.compile(r"logs agent listening on [0-9.]+:(\d+)")


def start_cli(intake, **env) -> tuple[Cli, int]:
    base = {
        "DD_API_KEY": API_KEY,
        "DD_DD_URL": intake.url,
        "DD_LOGS_ENABLED": "true",
        "DD_LOGS_PORT": "0",
        "DD_LOGS_CONFIG_LOGS_DD_URL": intake.url,
    }
    base.update(env)
    cli = Cli(base)
    cli.wait_ready()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in list(cli.stderr_lines):
            m = LOGS_PORT_RE.search(line)
            if m:
                return cli, int(m.group(1))
        time.sleep(0.02)
    cli.kill()
    raise AssertionError(f"no logs agent port in the log: {cli.stderr_lines}")


def post(port: int, body: bytes, method: str = "POST", path: str = "/v1/input") -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body if method != "GET" else None,
                                 method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def entries(n: int, start: int = 0, **extra) -> list[dict]:
    return [{"message": f"line {i}", "timestamp": 1_700_000_000_000 + i, "service": "e2e", **extra}
            for i in range(start, start + n)]


def test_entries_arrive_after_sigterm_with_the_agent_protocol(fake_intake):
    cli, port = start_cli(fake_intake)
    try:
        first = entries(3, **{"lambda": {"arn": "arn:aws:lambda:us-east-1:1:function:f", "request_id": "r1"}})
        assert post(port, json.dumps(first).encode()) == (200, "ok")
        assert post(port, b"[]") == (200, "ok")
        second = entries(2, start=3)
        assert post(port, json.dumps(second).encode()) == (200, "ok")
        assert post(port, b'[{"message":"no timestamp"}]') == (400, "entry 1: timestamp is required")
        assert post(port, b"[]", method="GET")[0] == 405
        assert post(port, b"[]", path="/v1/other")[0] == 404
    finally:
        rc = cli.terminate()
    assert rc == 0, cli.stderr_lines

    assert fake_intake.logs() == first + second  # kept exactly as posted, other keys included
    (record,) = fake_intake.records("/api/v2/logs")  # one batch: delivered by the stop's flush
    assert record.header("DD-PROTOCOL") == "agent-json"
    assert record["content_encoding"] == "zstd"
    assert record["content_type"] == "application/json"
    assert record["api_key"] == API_KEY
    assert not record["warnings"], record["warnings"]
    summary = [line for line in cli.stderr_lines if "logs:" in line]
    assert summary and "3 requests, 5 entries accepted, 0 dropped" in summary[-1], cli.stderr_lines


def test_flushed_on_the_tick_without_a_stop(fake_intake):
    cli, port = start_cli(fake_intake, DD_DOGSTATSD_FLUSH_INTERVAL_MS="300")
    try:
        sent = entries(4)
        assert post(port, json.dumps(sent).encode()) == (200, "ok")
        fake_intake.wait_for(lambda i: i.logs() == sent, timeout=5)
    finally:
        assert cli.terminate() == 0, cli.stderr_lines
    assert fake_intake.logs() == sent  # nothing sent twice at the stop


def raw_status(port: int, head: bytes, body: bytes = b"") -> int:
    """Send a request head (and maybe a start of body) on a raw socket; the status answered.
    The logs agent answers 413 while reading, before the rest of the body is sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def test_over_4_mib_is_413_and_nothing_is_queued(fake_intake):
    cli, port = start_cli(fake_intake)
    try:
        limit = 4 * 1024 * 1024
        # The declared length is enough: refused before the body is read.
        head = f"POST /v1/input HTTP/1.1\r\nHost: x\r\nContent-Length: {limit + 1}\r\n\r\n".encode()
        assert raw_status(port, head, b"[") == 413
        # A chunked body is refused as soon as its chunk sizes pass the limit.
        head = b"POST /v1/input HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        assert raw_status(port, head, b"%x\r\n" % (limit + 1)) == 413
        # A whole >4 MiB body posted with urllib: 413 (or the connection closed under the upload).
        big = json.dumps([{"message": "x" * (512 * 1024), "timestamp": i} for i in range(9)]).encode()
        assert len(big) > limit
        try:
            assert post(port, big)[0] == 413
        except urllib.error.URLError as exc:
            assert isinstance(exc.reason, (BrokenPipeError, ConnectionResetError)), exc
        # Exactly 4 MiB is accepted.
        small = entries(1)
        exact = json.dumps(small).encode()
        exact += b" " * (limit - len(exact))
        assert post(port, exact) == (200, "ok")
    finally:
        assert cli.terminate() == 0, cli.stderr_lines
    assert fake_intake.logs() == small


def test_compression_off_sends_plain_json(fake_intake):
    cli, port = start_cli(fake_intake, DD_LOGS_CONFIG_USE_COMPRESSION="false")
    try:
        sent = entries(2)
        assert post(port, json.dumps(sent).encode()) == (200, "ok")
    finally:
        assert cli.terminate() == 0, cli.stderr_lines
    (record,) = fake_intake.records("/api/v2/logs")
    assert record["content_encoding"] is None
    assert record["body_length"] == record["decoded_length"]
    assert record.header("DD-PROTOCOL") == "agent-json"
    assert fake_intake.logs() == sent


def test_more_than_1000_entries_go_in_batches_of_1000(fake_intake):
    cli, port = start_cli(fake_intake)
    try:
        sent = entries(2500)
        assert post(port, json.dumps(sent).encode()) == (200, "ok")
    finally:
        assert cli.terminate() == 0, cli.stderr_lines
    sizes = sorted(len(r["payload"]) for r in fake_intake.records("/api/v2/logs"))
    assert sizes == [500, 1000, 1000]
    assert sorted(fake_intake.logs(), key=lambda e: e["timestamp"]) == sent


@pytest.mark.parametrize("value", ["abc", "70000"])
def test_a_bad_logs_port_is_one_line_and_exit_2(value, fake_intake):
    cli = Cli({"DD_LOGS_ENABLED": "true", "DD_LOGS_PORT": value})
    assert cli.proc.wait(10) == 2
    time.sleep(0.05)
    assert any("DD_LOGS_PORT" in line or "logs_port" in line for line in cli.stderr_lines), cli.stderr_lines


def test_a_taken_logs_port_is_a_start_error(fake_intake):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cli = Cli({"DD_API_KEY": API_KEY, "DD_DD_URL": fake_intake.url, "DD_LOGS_ENABLED": "true",
                   "DD_LOGS_PORT": str(port)})
        assert cli.proc.wait(10) == 1
    time.sleep(0.05)
    want = f"datadog-serverless-compat: Failed to start logs agent: cannot bind TCP 127.0.0.1:{port}: Address already in use"
    assert want in cli.stderr_lines, cli.stderr_lines


def test_through_the_python_binding_ready_flush_and_stats(fake_intake):
    from datadog_serverless import ServerlessServices
    from tests.py.services_util import local_config

    events = []
    cfg = local_config(fake_intake, use_trace_agent=False, logs_enabled=True, logs_port=0,
                       logs_dd_url=fake_intake.url)
    handle = ServerlessServices(cfg).start(on_status=events.append)
    try:
        deadline = time.monotonic() + 5
        while not any(e.service == "logs-agent" for e in events) and time.monotonic() < deadline:
            time.sleep(0.01)
        (ready,) = [e for e in events if e.service == "logs-agent"]
        assert ready.type == "ready" and ready.port > 0
        assert handle.ports.logs_agent == ready.port  # returned by start, like the other ports
        assert handle.ports.trace_agent == 0
        sent = entries(3)
        assert post(ready.port, json.dumps(sent).encode()) == (200, "ok")
        handle.flush(timeout=5)
        assert fake_intake.logs() == sent  # flush returns after the intake answered
        stats = handle.stats()
        assert (stats.logs_requests, stats.logs_entries, stats.logs_entries_dropped) == (1, 3, 0)
        assert stats.logs_bytes == sum(len(json.dumps(e)) for e in sent)
    finally:
        handle.stop()


def test_help_lists_the_logs_variables():
    cli = Cli({}, ["--help"])
    assert cli.proc.wait(5) == 0
    time.sleep(0.05)
    text = "\n".join(cli.stdout_lines)
    for name in ("DD_LOGS_ENABLED", "DD_LOGS_PORT", "DD_LOGS_NON_LOCAL_TRAFFIC", "DD_LOGS_CONFIG_LOGS_DD_URL",
                 "DD_LOGS_CONFIG_USE_COMPRESSION", "DD_LOGS_CONFIG_COMPRESSION_LEVEL", "DD_LOGS_MAX_QUEUED_BYTES",
                 "DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED", "DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL",
                 "DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS", "DD_FORWARDER_SEND_QUEUE_PAYLOADS_MAX_SIZE"):
        assert name in text, name


# ---- destinations: Observability Pipelines Worker, additional endpoints ----------------------------

EXTRA_KEY = "extra-endpoint-key-fedcba9876543210"


def test_opw_gets_plain_batches_without_dd_protocol(fake_intake):
    from tests.intake.client import FakeIntake

    with FakeIntake() as opw:
        cli, port = start_cli(fake_intake, DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED="true",
                              DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL=f"{opw.url}/api/v2/logs")
        try:
            sent = entries(3)
            assert post(port, json.dumps(sent).encode()) == (200, "ok")
        finally:
            assert cli.terminate() == 0, cli.stderr_lines
        (record,) = opw.records("/api/v2/logs")
        assert record.header("DD-PROTOCOL") is None
        assert record["content_encoding"] is None  # compression is on, but never for the worker
        assert record["api_key"] == API_KEY
        assert opw.logs() == sent
    assert fake_intake.records("/api/v2/logs") == []  # instead of the Datadog intake, not as well
    assert any("sending to the Observability Pipelines Worker" in line for line in cli.stderr_lines)


def test_opw_enabled_without_a_url_is_a_config_error_not_a_silent_disable():
    cli = Cli({"DD_API_KEY": API_KEY, "DD_LOGS_ENABLED": "true",
               "DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED": "true"})
    assert cli.proc.wait(10) == 2
    time.sleep(0.05)
    assert any("DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL) must be set" in line for line in cli.stderr_lines), \
        cli.stderr_lines


def test_an_additional_endpoint_gets_every_batch_with_its_own_key_over_tls(fake_intake, tmp_path):
    """The Host/Port form for real: https://127.0.0.1:<port>/api/v2/logs, a certificate for
    127.0.0.1 trusted through DD_TLS_CA_PATH, while the main intake stays the http fake one."""
    from tests.intake.client import FakeIntake
    from tests.intake.tls import make_self_signed_cert

    cert, key = make_self_signed_cert(tmp_path / "extra")
    with FakeIntake(tls_cert=cert, tls_key=key) as extra:
        endpoints = json.dumps([{"api_key": EXTRA_KEY, "Host": "127.0.0.1", "Port": extra.port,
                                 "is_reliable": True}])
        cli, port = start_cli(fake_intake, DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS=endpoints,
                              DD_TLS_CA_PATH=str(cert), DD_LOG_LEVEL="debug")
        try:
            sent = entries(3)
            assert post(port, json.dumps(sent).encode()) == (200, "ok")
        finally:
            rc = cli.terminate()  # a reliable endpoint: the stop waits for it too
        assert rc == 0, cli.stderr_lines
        (record,) = extra.records("/api/v2/logs")
        assert record["api_key"] == EXTRA_KEY
        assert record.header("DD-PROTOCOL") == "agent-json"
        assert record["content_encoding"] == "zstd"
        assert extra.logs() == sent
    (main,) = fake_intake.records("/api/v2/logs")
    assert main["api_key"] == API_KEY
    assert fake_intake.logs() == sent
    assert any(f"every batch also goes to https://127.0.0.1:{extra.port}/api/v2/logs (reliable" in line
               for line in cli.stderr_lines), cli.stderr_lines
    assert not [line for line in cli.stderr_lines + cli.stdout_lines if EXTRA_KEY in line]


def test_dry_run_lines_name_the_additional_endpoint_never_its_key():
    endpoints = json.dumps([{"api_key": EXTRA_KEY, "Host": "logs.example.com", "Port": 10516}])
    cli = Cli({"DD_API_KEY": API_KEY, "DD_DRY_RUN": "true", "DD_LOGS_ENABLED": "true", "DD_LOGS_PORT": "0",
               "DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS": endpoints, "DD_LOG_LEVEL": "debug"})
    cli.wait_ready()
    try:
        deadline = time.monotonic() + 5
        port = None
        while port is None and time.monotonic() < deadline:
            port = next((int(m.group(1)) for m in map(LOGS_PORT_RE.search, list(cli.stderr_lines)) if m), None)
            time.sleep(0.02)
        assert port, cli.stderr_lines
        sent = entries(2)
        assert post(port, json.dumps(sent).encode()) == (200, "ok")
    finally:
        assert cli.terminate() == 0, cli.stderr_lines
    lines = [json.loads(line) for line in cli.stdout_lines if line.startswith("{")]
    logs = {line["endpoint"]: line["payload"] for line in lines if "logs" in line["endpoint"]}
    assert logs == {"/api/v2/logs": sent, "https://logs.example.com:10516/api/v2/logs": sent}
    assert not [line for line in cli.stderr_lines + cli.stdout_lines if EXTRA_KEY in line]


def test_bad_additional_endpoints_json_is_one_clear_line_and_exit_2():
    cli = Cli({"DD_API_KEY": API_KEY, "DD_LOGS_ENABLED": "true",
               "DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS": f'[{{"api_key":"{EXTRA_KEY}","Host":"h","Port":"443"}}]'})
    assert cli.proc.wait(10) == 2
    time.sleep(0.05)
    want = ("logs_additional_endpoints (DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS) is not valid: "
            "endpoint 0: Port must be an integer 1-65535")
    assert any(want in line for line in cli.stderr_lines), cli.stderr_lines
    assert not [line for line in cli.stderr_lines + cli.stdout_lines if EXTRA_KEY in line]


def _logs_port(events: list) -> int:
    """The logs agent's port from its READY event (delivered from the loop thread)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ready = [e.port for e in list(events) if e.service == "logs-agent" and e.type == "ready"]
        if ready:
            return ready[0]
        time.sleep(0.01)
    raise AssertionError(f"no logs-agent ready event: {events}")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("reliable", [False, True])
def test_flush_waits_for_reliable_endpoints_only(fake_intake, reliable):
    from datadog_serverless import ServerlessServices, ShutdownTimeoutError
    from tests.py.services_util import local_config

    dead = [{"api_key": EXTRA_KEY, "host": "127.0.0.1", "port": _closed_port(), "is_reliable": reliable}]
    cfg = local_config(fake_intake, use_trace_agent=False, logs_enabled=True, logs_port=0,
                       logs_dd_url=fake_intake.url, logs_additional_endpoints=dead)
    events = []
    handle = ServerlessServices(cfg).start(on_status=events.append)
    try:
        port = _logs_port(events)
        sent = entries(2)
        assert post(port, json.dumps(sent).encode()) == (200, "ok")
        started = time.monotonic()
        if reliable:
            with pytest.raises(ShutdownTimeoutError):
                handle.flush(timeout=1.5)  # the dead endpoint keeps its batch in retry
        else:
            handle.flush(timeout=5)
            assert time.monotonic() - started < 1.0
        assert fake_intake.logs() == sent  # the main intake got it either way
    finally:
        try:
            handle.stop(timeout=1)  # an unreliable endpoint's batch is dropped at the end of the stop
        except ShutdownTimeoutError:
            if not reliable:
                raise


def test_a_slow_intake_bounds_the_send_queue_and_counts_what_it_drops(fake_intake):
    """The intake accepts every request and answers each after 3 s: 8 requests are in flight, and
    the batches of later flushes wait in a queue bounded to 4 KiB (one ~3 KiB batch), the
    oldest dropped and counted. What was not dropped arrives once the intake answers."""
    from datadog_serverless import ServerlessServices, ShutdownTimeoutError
    from tests.py.services_util import local_config

    cfg = local_config(fake_intake, use_trace_agent=False, logs_enabled=True, logs_port=0,
                       logs_dd_url=fake_intake.url, logs_use_compression=False, send_queue_max_bytes=4096)
    events = []
    handle = ServerlessServices(cfg).start(on_status=events.append)
    try:
        port = _logs_port(events)
        fake_intake.fail(delay_ms=3000, count=-1, path="/api/v2/logs")
        peak = 0
        for i in range(20):
            batch = [{"message": f"{i:04d}" + "x" * 3000, "timestamp": i}]
            assert post(port, json.dumps(batch).encode()) == (200, "ok")
            with pytest.raises(ShutdownTimeoutError):
                handle.flush(timeout=0.05)
            peak = max(peak, handle.stats().send_queue_bytes)
        stats = handle.stats()
        assert peak <= 4096, peak
        # 20 batches: 8 in flight, 1 waiting, the 11 others pushed out oldest first.
        assert stats.send_queue_dropped_logs >= 10, stats
        assert stats.payloads_dropped >= stats.send_queue_dropped_logs
        fake_intake.clear_failures()
        handle.flush(timeout=10)
        stats = handle.stats()
        assert stats.send_queue_bytes == 0
        got = fake_intake.logs()
        assert len(got) == 20 - stats.send_queue_dropped_logs  # lost only what was counted
        stamps = {e["timestamp"] for e in got}
        assert 19 in stamps and 8 not in stamps  # the newest is kept, the oldest waiting went
    finally:
        handle.stop()


def test_nothing_is_lost_when_the_intake_is_a_little_slow(fake_intake):
    from datadog_serverless import ServerlessServices, ShutdownTimeoutError
    from tests.py.services_util import local_config

    cfg = local_config(fake_intake, use_trace_agent=False, logs_enabled=True, logs_port=0,
                       logs_dd_url=fake_intake.url)
    events = []
    handle = ServerlessServices(cfg).start(on_status=events.append)
    try:
        port = _logs_port(events)
        fake_intake.fail(delay_ms=150, count=-1, path="/api/v2/logs")
        sent = []
        for i in range(30):
            batch = entries(5, start=5 * i)
            sent += batch
            assert post(port, json.dumps(batch).encode()) == (200, "ok")
            try:
                handle.flush(timeout=0.01)
            except ShutdownTimeoutError:
                pass
        handle.flush(timeout=10)
        stats = handle.stats()
        assert (stats.send_queue_dropped_logs, stats.payloads_dropped, stats.send_queue_bytes) == (0, 0, 0)
        assert sorted(fake_intake.logs(), key=lambda e: e["timestamp"]) == sent
    finally:
        handle.stop()
