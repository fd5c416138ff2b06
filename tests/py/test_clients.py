"""The real clients against an embedded instance, checked at the fake intake: the `datadog`
DogStatsD client in this process, and the examples (examples/python/) as child processes: the
`ddtrace` tracer with the `datadog` client, the function handler, the asyncio service."""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

from datadog_serverless import ServerlessServices
from tests.py.services_util import API_KEY, REPO, child_env, local_config

EXAMPLES = REPO / "examples" / "python"


def test_datadog_client_every_kind(fake_intake):
    from datadog.dogstatsd import DogStatsd

    handle = ServerlessServices(local_config(fake_intake, use_trace_agent=False, tags="team:py")).start()
    client = DogStatsd(host="127.0.0.1", port=handle.ports.dogstatsd, constant_tags=["client:datadog"],
                       disable_telemetry=True)
    client.increment("py.client.count", 3, tags=["a:1"])
    client.gauge("py.client.gauge", 42.5, tags=["a:1"])
    client.histogram("py.client.hist", 10, tags=["a:1"])
    client.histogram("py.client.hist", 30, tags=["a:1"])
    client.distribution("py.client.dist", 5, tags=["a:1"])
    client.set("py.client.set", "alice", tags=["a:1"])
    client.set("py.client.set", "bob", tags=["a:1"])
    client.event("Python event", "from the datadog client", alert_type="warning", tags=["a:1"])
    client.service_check("py.client.check", 1, tags=["a:1"], message="degraded")
    deadline = time.monotonic() + 5
    while handle.stats().dsd_service_checks < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    handle.flush()
    handle.stop()
    client.close_socket()

    tags = {"a:1", "client:datadog", "team:py"}
    series = {(s["metric"], s["type"]): s for s in fake_intake.series() if s["metric"].startswith("py.client.")}
    assert set(series[("py.client.count", "rate")]["tags"]) == tags
    assert series[("py.client.count", "rate")]["points"][0][1] == pytest.approx(0.3)
    assert series[("py.client.gauge", "gauge")]["points"][0][1] == 42.5
    assert series[("py.client.hist.max", "gauge")]["points"][0][1] == 30
    assert series[("py.client.set", "gauge")]["points"][0][1] == 2
    (sketch,) = [s for s in fake_intake.sketches() if s["metric"] == "py.client.dist"]
    assert sketch["dogsketches"][0]["cnt"] == 1 and set(sketch["tags"]) == tags
    (event,) = [e for e in fake_intake.events() if e["title"] == "Python event"]
    assert event["text"] == "from the datadog client" and event["alert_type"] == "warning"
    (check,) = [c for c in fake_intake.service_checks() if c["check"] == "py.client.check"]
    assert check["status"] == 1 and check["message"] == "degraded"
    assert fake_intake.api_keys() == {API_KEY}


def run_example(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out


def test_ddtrace_and_datadog_in_one_script_that_just_ends(fake_intake):
    env = child_env(fake_intake, DD_REMOTE_CONFIGURATION_ENABLED="false", DD_ENV="example")
    out = run_example("clients.py", env=env)
    assert out.stdout.startswith("trace ")
    # Everything arrived although the script never called flush() or stop(): the atexit hooks
    # flushed ddtrace into the agent, then stopped the services with a final flush.
    spans = {s["name"]: s for s in fake_intake.spans()}
    assert set(spans) == {"checkout.request", "db.query", "payment.charge"}
    root, db, pay = spans["checkout.request"], spans["db.query"], spans["payment.charge"]
    assert (root["service"], root["resource"], root["type"], root["parent_id"]) == \
        ("example-shop", "POST /checkout", "web", 0)
    assert (db["service"], db["resource"], db["parent_id"]) == ("example-db", "SELECT * FROM carts", root["span_id"])
    assert pay["parent_id"] == root["span_id"] and pay["trace_id"] == root["trace_id"]
    assert root["meta"]["customer.tier"] == "gold" and root["language"] == "python"
    metrics = {s["metric"] for s in fake_intake.series()}
    assert {"example.checkout.orders", "example.checkout.queries"} <= metrics
    assert [s["metric"] for s in fake_intake.sketches()] == ["example.checkout.amount"]
    assert fake_intake.api_keys() == {API_KEY}


def test_handler_example_flushes_before_returning(fake_intake):
    out = run_example("handler.py", env=child_env(fake_intake))
    assert out.stdout.count("'statusCode': 200") == 2
    # Each invocation's count arrives once (a counter flushed earlier is zero-filled in later
    # payloads, like the Agent does: zeros are left out). Which flush carries it is not asserted:
    # see test_services.py::test_flush_includes_datagrams_sent_before_it.
    payloads = fake_intake.accepted_payloads("/api/v2/series")
    assert len(payloads) >= 2  # one flush per invocation at least
    counted = [(s["tags"], s["points"][0]["value"]) for p in payloads for s in p["series"]
               if s["metric"] == "orders.received" and s["points"][0]["value"]]
    assert sorted(counted) == [(["channel:mobile"], pytest.approx(0.1)), (["channel:web"], pytest.approx(0.1))]


def test_asyncio_example_serves_counts_and_stops(fake_intake):
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "asyncio_service.py"), "3"], env=child_env(fake_intake),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        head = [proc.stdout.readline().strip() for _ in range(3)]  # the URL and two "ready" lines
        (url,) = [line for line in head if line.startswith("http://127.0.0.1:")]
        for path in ("", "orders", "orders"):
            with urllib.request.urlopen(url + path, timeout=5) as response:
                assert response.read() == b"ok\n"
        rest, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "dogstatsd ready on port" in "\n".join(head) + rest and "stopped: 3 metric lines" in rest
    counts = {tuple(s["tags"]): s["points"][0][1] for s in fake_intake.series() if s["metric"] == "http.requests"}
    assert counts == {("path:/",): pytest.approx(0.1), ("path:/orders",): pytest.approx(0.2)}
