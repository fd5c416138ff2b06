"""Tests of the fake Datadog intake itself (tests/intake/): every end-to-end test trusts it."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
import zlib
from pathlib import Path

import msgpack
import pytest
import zstandard

from tests.intake import schema
from tests.intake.client import (
    CHECK_RUN_PATH, EVENTS_PATH, SERIES_PATH, SKETCHES_PATH, STATS_PATH, TRACES_PATH,
    FakeIntake, IntakeControlError,
)
from tests.intake.tls import make_self_signed_cert

API_KEY = "0123456789abcdef0123456789abcdef"
PROTOBUF = {"Content-Type": "application/x-protobuf", "DD-API-KEY": API_KEY}
JSON = {"Content-Type": "application/json", "DD-API-KEY": API_KEY}
UINT64_MAX = 2**64 - 1


def post(intake: FakeIntake, path: str, body: bytes, headers: dict[str, str] | None = None,
         timeout: float = 10.0) -> tuple[int, bytes]:
    """One request on a fresh connection, as the C transport would send it."""
    conn = http.client.HTTPConnection("127.0.0.1", intake.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def metrics_pb():
    return schema.modules().metrics


def trace_pb():
    return schema.modules().trace


def series_payload() -> bytes:
    pb = metrics_pb()
    payload = pb.MetricPayload()
    rate = payload.series.add(metric="page.views", type=pb.RATE, interval=10, tags=["env:prod", "a:b"])
    rate.points.add(value=0.5, timestamp=1_700_000_000)
    rate.resources.add(type="host", name="fn-host")
    rate.resources.add(type="device", name="sda")
    gauge = payload.series.add(metric="queue.depth", type=pb.GAUGE, interval=10)
    gauge.points.add(value=42.0, timestamp=1_700_000_010)
    gauge.metadata.origin.origin_product = 10
    return payload.SerializeToString()


def zstd_streaming(data: bytes) -> bytes:
    """A frame without content size, as a streaming compressor (like the C one may) writes it."""
    compressor = zstandard.ZstdCompressor().compressobj()
    return compressor.compress(data) + compressor.flush()


# -- decoding -------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [
    pytest.param(lambda d: zstandard.ZstdCompressor().compress(d), id="one-shot"),
    pytest.param(zstd_streaming, id="no-content-size"),
    pytest.param(lambda d: zstd_streaming(d[:7]) + zstd_streaming(d[7:]), id="two-frames"),
])
def test_series_zstd_read_back_flattened(fake_intake, compress):
    status, body = post(fake_intake, SERIES_PATH, compress(series_payload()),
                        {**PROTOBUF, "Content-Encoding": "zstd"})
    assert (status, json.loads(body)) == (202, {})
    rate, gauge = fake_intake.series()
    assert rate == {
        "metric": "page.views", "type": "rate", "tags": ["env:prod", "a:b"],
        "points": [(1_700_000_000, 0.5)], "interval": 10,
        "resources": [("host", "fn-host"), ("device", "sda")], "host": "fn-host",
        "unit": "", "source_type_name": "", "metadata": None,
    }
    assert type(rate["points"][0][0]) is int and type(rate["interval"]) is int
    assert (gauge["type"], gauge["host"], gauge["points"]) == ("gauge", None, [(1_700_000_010, 42.0)])
    assert gauge["metadata"]["origin"]["origin_product"] == 10
    (record,) = fake_intake.records(SERIES_PATH)
    assert record["warnings"] == [] and record["error"] is None
    assert record["decoded_length"] == len(series_payload())
    assert fake_intake.api_keys() == {API_KEY}


def test_sketches_keep_signed_keys_and_counts(fake_intake):
    pb = metrics_pb()
    payload = pb.SketchPayload()
    sketch = payload.sketches.add(metric="latency", host="h", tags=["t:1"])
    sketch.dogsketches.add(ts=1_700_000_000, cnt=3, min=-3.0, max=10.0, avg=3.0, sum=9.0,
                           k=[-1409, 1338, 1487], n=[1, 1, 65535])
    body = zstandard.ZstdCompressor().compress(payload.SerializeToString())
    assert post(fake_intake, SKETCHES_PATH, body, {**PROTOBUF, "Content-Encoding": "zstd"})[0] == 202
    assert fake_intake.sketches() == [{
        "metric": "latency", "host": "h", "tags": ["t:1"], "metadata": None,
        "dogsketches": [{"ts": 1_700_000_000, "cnt": 3, "min": -3.0, "max": 10.0, "avg": 3.0,
                         "sum": 9.0, "k": [-1409, 1338, 1487], "n": [1, 1, 65535]}],
    }]


def test_gzip_agent_payload_keeps_full_uint64_ids_and_headers(fake_intake):
    pb = trace_pb()
    payload = pb.AgentPayload(hostName="h", env="prod", agentVersion="1.0", targetTPS=10.0)
    tracer = payload.tracerPayloads.add(languageName="python", tracerVersion="2.0")
    chunk = tracer.chunks.add(priority=1, origin="lambda")
    span = chunk.spans.add(service="svc", name="op", resource="GET /", traceID=UINT64_MAX,
                           spanID=UINT64_MAX - 1, start=1_700_000_000_000_000_000, duration=5,
                           meta={"k": "v"}, metrics={"_top_level": 1.0},
                           meta_struct={"appsec": b"\x81\xa1a\x01"})
    span.spanLinks.add(traceID=1, traceID_high=2, spanID=3, attributes={"x": "y"}, flags=1)
    headers = {**PROTOBUF, "Content-Encoding": "gzip", "X-Datadog-Reported-Languages": "python"}
    assert post(fake_intake, TRACES_PATH, gzip.compress(payload.SerializeToString()), headers)[0] == 202

    (agent_payload,) = fake_intake.traces()
    decoded = agent_payload["tracerPayloads"][0]["chunks"][0]["spans"][0]
    assert decoded["traceID"] == UINT64_MAX and decoded["spanID"] == UINT64_MAX - 1
    assert decoded["start"] == 1_700_000_000_000_000_000
    assert decoded["meta"] == {"k": "v"} and decoded["metrics"] == {"_top_level": 1.0}
    assert msgpack.unpackb(base64.b64decode(decoded["meta_struct"]["appsec"])) == {"a": 1}
    assert decoded["spanLinks"][0]["traceID_high"] == 2
    (record,) = fake_intake.records(TRACES_PATH)
    assert record.header("x-datadog-reported-languages") == "python"
    assert record["headers"]["X-DATADOG-REPORTED-LANGUAGES"] == "python"


def test_unknown_protobuf_fields_are_kept_visible_not_fatal(fake_intake):
    pb = trace_pb()
    unknown_101 = b"\xa8\x06\x07"  # field 101, varint 7: not in trace.proto
    span = pb.Span.FromString(pb.Span(service="svc").SerializeToString() + unknown_101)
    payload = pb.AgentPayload(hostName="h")
    payload.tracerPayloads.add().chunks.add().spans.append(span)  # unknown fields are re-encoded
    body = gzip.compress(payload.SerializeToString() + unknown_101)
    assert post(fake_intake, TRACES_PATH, body, {**PROTOBUF, "Content-Encoding": "gzip"})[0] == 202
    (decoded,) = fake_intake.traces()
    assert decoded["_unknown"] == [101] and decoded["hostName"] == "h"
    decoded_span = decoded["tracerPayloads"][0]["chunks"][0]["spans"][0]
    assert decoded_span["service"] == "svc" and decoded_span["_unknown"] == [101]


def test_check_runs_and_events_json(fake_intake):
    checks = [{"check": "app.ok", "host_name": "h", "timestamp": 1, "status": 0, "message": "",
               "tags": ["a:b"]},
              {"check": "app.db", "host_name": "h", "timestamp": 1, "status": 2, "message": "down",
               "tags": []}]
    event = {"title": "deploy", "text": "v2", "date_happened": 1, "priority": "normal",
             "host": "h", "tags": [], "alert_type": "info", "aggregation_key": "",
             "source_type_name": ""}
    assert post(fake_intake, CHECK_RUN_PATH, json.dumps(checks).encode(), JSON)[0] == 202
    assert post(fake_intake, EVENTS_PATH, json.dumps(event).encode(), JSON)[0] == 202
    assert fake_intake.service_checks() == checks
    assert fake_intake.events() == [event]
    assert all(r["warnings"] == [] for r in fake_intake.records())


def test_stats_msgpack_bin_fields_become_base64(fake_intake):
    stats = {"AgentHostname": "h", "AgentEnv": "prod", "Stats": [{"Hostname": "h", "Blob": b"\x00\x01"}],
             "AgentVersion": "1.0", "ClientComputed": True, "SplitPayload": False}
    headers = {"Content-Type": "application/msgpack", "Content-Encoding": "gzip", "DD-API-KEY": API_KEY}
    assert post(fake_intake, STATS_PATH, gzip.compress(msgpack.packb(stats)), headers)[0] == 202
    (decoded,) = fake_intake.stats()
    assert decoded["AgentHostname"] == "h" and decoded["Stats"][0]["Blob"] == "AAE="


@pytest.mark.parametrize("encoding, compress", [
    ("deflate", zlib.compress),
    ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate, as some clients send it
    ("identity", lambda d: d),
    ("gzip", lambda d: gzip.compress(d[:5]) + gzip.compress(d[5:])),  # two gzip members
], ids=["zlib", "raw-deflate", "identity", "gzip-members"])
def test_other_content_encodings(fake_intake, encoding, compress):
    body = json.dumps([{"check": "c", "status": 0}]).encode()
    status, _ = post(fake_intake, CHECK_RUN_PATH, compress(body), {**JSON, "Content-Encoding": encoding})
    assert status == 202
    assert fake_intake.service_checks() == [{"check": "c", "status": 0}]


def test_other_paths_keep_raw_body_and_try_json(fake_intake):
    headers = {"Content-Type": "application/json", "DD-API-KEY": API_KEY}
    assert post(fake_intake, "/api/v2/apmtelemetry?x=1", b'{"a": 1}', headers)[0] == 202
    assert post(fake_intake, "/api/v2/profile", b"\x00binary", {"DD-API-KEY": API_KEY})[0] == 202
    telemetry, profile = fake_intake.records()
    assert (telemetry["kind"], telemetry["payload"], telemetry["params"]) == ("raw", {"a": 1}, {"x": ["1"]})
    assert profile["payload"] is None and profile["body_base64"] == "AGJpbmFyeQ=="


# -- bad payloads -----------------------------------------------------------------------------

@pytest.mark.parametrize("path, encoding, body", [
    (SERIES_PATH, "zstd", b"\x28\xb5\x2f\xfd" + b"corrupt"),
    (SERIES_PATH, "zstd", zstandard.ZstdCompressor().compress(b"x" * 100)[:-4]),  # truncated
    (SERIES_PATH, "zstd", zstandard.ZstdCompressor().compress(b"\x0a\xff")),  # not protobuf
    (TRACES_PATH, "gzip", gzip.compress(b"x" * 100)[:-6]),
    (CHECK_RUN_PATH, "identity", b"[{"),
    (STATS_PATH, "gzip", gzip.compress(msgpack.packb({"a": 1}) + b"\xc1")),
    (EVENTS_PATH, "br", b"{}"),
], ids=["corrupt-zstd", "truncated-zstd", "bad-protobuf", "truncated-gzip", "bad-json",
        "bad-msgpack", "unknown-encoding"])
def test_bad_payload_answered_400_and_recorded(fake_intake, path, encoding, body):
    status, answer = post(fake_intake, path, body, {"Content-Encoding": encoding, "DD-API-KEY": API_KEY})
    assert status == 400
    (record,) = fake_intake.errors()
    assert record["path"] == path and record["status"] == 400 and record["error"]
    assert json.loads(answer) == {"errors": [record["error"]]}
    assert fake_intake.accepted_payloads(path) == []


def test_records_filtered_by_path_and_reset(fake_intake):
    post(fake_intake, EVENTS_PATH, b"{}", JSON)
    post(fake_intake, CHECK_RUN_PATH, b"[]", JSON)
    post(fake_intake, EVENTS_PATH, b"{}", JSON)
    assert [r["path"] for r in fake_intake.records(EVENTS_PATH)] == [EVENTS_PATH] * 2
    assert [r["id"] for r in fake_intake.records()] == [1, 2, 3]
    fake_intake.reset()
    assert fake_intake.records() == []


def test_chunked_body_and_missing_api_key(fake_intake):
    conn = http.client.HTTPConnection("127.0.0.1", fake_intake.port, timeout=10)
    conn.request("POST", EVENTS_PATH, body=iter([b'{"title":', b' "t"}']),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    assert conn.getresponse().status == 202
    conn.close()
    (record,) = fake_intake.records()
    assert record["payload"] == {"title": "t"} and record["api_key"] is None
    assert "no DD-API-KEY header" in record["warnings"]
    assert fake_intake.api_keys() == set()


def test_oversized_body_refused_unread_and_recorded(fake_intake):
    with socket.create_connection(("127.0.0.1", fake_intake.port), timeout=5) as sock:
        sock.sendall(b"POST /api/v2/series HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 413 ")
    (record,) = fake_intake.errors()
    assert record["status"] == 413 and "999999999" in record["error"]


# -- failure modes ----------------------------------------------------------------------------

def test_fail_500_twice_then_accept(fake_intake):
    fake_intake.fail(status=500, count=2, path=SERIES_PATH)
    body = zstandard.ZstdCompressor().compress(series_payload())
    headers = {**PROTOBUF, "Content-Encoding": "zstd"}
    assert post(fake_intake, EVENTS_PATH, b"{}", JSON)[0] == 202  # other paths unaffected
    assert [post(fake_intake, SERIES_PATH, body, headers)[0] for _ in range(3)] == [500, 500, 202]
    records = fake_intake.records(SERIES_PATH)
    assert [r["status"] for r in records] == [500, 500, 202]
    assert records[0]["fault"]["status"] == 500 and records[2]["fault"] is None
    assert records[0]["payload"] == records[2]["payload"]  # the retried copy is decoded too
    assert len(fake_intake.series()) == 2  # only the accepted copy counts


def test_fail_until_cleared_with_custom_body(fake_intake):
    fake_intake.fail(status=403, count=-1, body='{"errors": ["Forbidden"]}')
    assert [post(fake_intake, EVENTS_PATH, b"{}", JSON) for _ in range(3)] == \
        [(403, b'{"errors": ["Forbidden"]}')] * 3
    fake_intake.clear_failures()
    assert post(fake_intake, EVENTS_PATH, b"{}", JSON)[0] == 202


def test_fail_delay(fake_intake):
    fake_intake.fail(delay_ms=400)
    started = time.monotonic()
    assert post(fake_intake, EVENTS_PATH, b"{}", JSON)[0] == 202
    assert time.monotonic() - started >= 0.4
    assert post(fake_intake, EVENTS_PATH, b"{}", JSON)[0] == 202  # count 1: back to normal


def test_fail_delay_is_recorded_before_the_answer(fake_intake):
    fake_intake.fail(delay_ms=500, status=429)
    with pytest.raises(TimeoutError):  # a client that gives up, as the C transport's timeout does
        post(fake_intake, EVENTS_PATH, b"{}", JSON, timeout=0.1)
    (record,) = fake_intake.records()
    assert (record["status"], record["fault"]["delay_ms"]) == (429, 500)


def test_fail_close_drops_connection_without_answer(fake_intake):
    fake_intake.fail(close=True, path=EVENTS_PATH)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        post(fake_intake, EVENTS_PATH, b'{"title": "t"}', JSON)
    (record,) = fake_intake.records()
    assert record["status"] is None and record["fault"]["close"] is True
    assert record["payload"] == {"title": "t"}  # the request was read before closing
    assert post(fake_intake, EVENTS_PATH, b"{}", JSON)[0] == 202


@pytest.mark.parametrize("bad", [
    {"status": 99}, {"count": 0}, {"delay_ms": -1}, {"sttaus": 500}, {"path": "/x"},
])
def test_fail_rejects_bad_arguments(fake_intake, bad):
    with pytest.raises(IntakeControlError, match="400"):
        fake_intake._call("POST", "/_control/fail", bad)
    assert post(fake_intake, EVENTS_PATH, b"{}", JSON)[0] == 202


def test_stop_closes_keep_alive_connections_and_port_can_be_reused():
    intake = FakeIntake()
    port = intake.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", EVENTS_PATH, body=b"{}", headers=JSON)
    assert conn.getresponse().read() == b"{}"
    intake.stop()
    intake.stop()  # idempotent
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, OSError)):
        conn.request("POST", EVENTS_PATH, body=b"{}", headers=JSON)
        conn.getresponse()
    conn.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with FakeIntake(port=port) as again:  # "intake back up" on the same port
        assert post(again, EVENTS_PATH, b"{}", JSON)[0] == 202


def test_wait_for_returns_value_or_explains_timeout(fake_intake):
    post(fake_intake, EVENTS_PATH, b"{}", JSON)
    assert fake_intake.wait_for(lambda i: i.events()) == [{}]
    with pytest.raises(AssertionError) as failure:
        fake_intake.wait_for(lambda i: i.series()[0]["metric"] == "never", timeout=0.2)
    message = str(failure.value)
    assert "i.series()[0]" in message and "IndexError" in message
    assert f"1 x POST {EVENTS_PATH} -> 202" in message


# -- running as a process -----------------------------------------------------------------------

def test_cli_prints_port_serves_and_exits_on_sigterm(repo_root, tmp_path):
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.intake", "--port", "0", "--port-file", str(port_file)],
        cwd=repo_root, stdout=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        assert int(port_file.read_text()) == port
        intake = FakeIntake.connect(f"http://127.0.0.1:{port}")
        assert post(intake, EVENTS_PATH, b'{"title": "t"}', JSON)[0] == 202
        assert intake.events() == [{"title": "t"}]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_spawned_intake_can_go_down_and_come_back_on_its_port():
    intake = FakeIntake.spawn()
    port = intake.port
    intake.fail(status=503, count=1)
    assert post(intake, SERIES_PATH, b"", PROTOBUF)[0] == 503
    intake.stop()
    with pytest.raises(ConnectionRefusedError):
        post(intake, SERIES_PATH, b"", PROTOBUF)
    revived = FakeIntake.spawn(port=port)
    try:
        assert revived.port == port and revived.records() == []
    finally:
        revived.stop()


def test_tls_with_untrusted_self_signed_certificate(tmp_path):
    cert, key = make_self_signed_cert(tmp_path)
    with FakeIntake(tls_cert=cert, tls_key=key) as intake:
        assert intake.url.startswith("https://127.0.0.1:")
        strict = ssl.create_default_context()
        conn = http.client.HTTPSConnection("127.0.0.1", intake.port, timeout=5, context=strict)
        with pytest.raises(ssl.SSLCertVerificationError):
            conn.request("POST", EVENTS_PATH, body=b"{}", headers=JSON)
        conn.close()
        intake.wait_for(lambda i: i.health()["tls_handshake_failures"] == 1)
        trusting = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection("127.0.0.1", intake.port, timeout=5, context=trusting)
        conn.request("POST", EVENTS_PATH, body=b"{}", headers=JSON)
        assert conn.getresponse().status == 202
        conn.close()
        assert len(intake.records(EVENTS_PATH)) == 1


def test_proto_files_compile_and_name_the_protocol_fields():
    pb = metrics_pb()
    assert [f.number for f in pb.MetricSeries.DESCRIPTOR.fields] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert pb.Origin.DESCRIPTOR.fields_by_name["origin_product"].number == 4
    assert pb.Sketch.DESCRIPTOR.fields_by_name["dogsketches"].number == 7
    assert trace_pb().AgentPayload.DESCRIPTOR.fields_by_name["tracerPayloads"].number == 5
    assert trace_pb().Span.DESCRIPTOR.fields_by_name["spanEvents"].number == 15
    assert Path(schema.PROTO_DIR, "metrics.proto").is_file()
