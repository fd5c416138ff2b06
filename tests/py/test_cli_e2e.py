"""End to end: the datadog-serverless-compat binary, real UDP on loopback, the fake intake.

Each test starts the binary with DD_DD_URL pointing at the fake intake, sends datagrams (the
project's generator or the real `datadog` client), stops it with SIGTERM and asserts on what the
intake decoded: every sample with the right name, type, value, interval, bucket and tags.
"""
from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from tests.py.cli import Cli
from tests.py.gen import close, generate

API_KEY = "e2e-test-api-key-0123456789abcdef"


def wait_for_bucket_room(seconds: float = 4.0) -> None:
    """Sleep until at least `seconds` are left in the current 10 s bucket, so a burst lands in
    one bucket and the expected values need no splitting."""
    while 10 - (time.time() % 10) < seconds:
        time.sleep(0.1)


def start_cli(intake, **env) -> Cli:
    base = {"DD_API_KEY": API_KEY, "DD_DD_URL": intake.url}
    base.update(env)
    cli = Cli(base)
    cli.wait_ready()
    return cli


def by_key(series: list[dict]) -> dict:
    out = {}
    for s in series:
        out.setdefault((s["metric"], s["type"], frozenset(s["tags"])), []).append(s)
    return out


def test_generator_every_type_arrives_after_sigterm(fake_intake):
    datagrams, exp = generate(seed=7)
    cli = start_cli(fake_intake)
    wait_for_bucket_room()
    sent_at = int(time.time())
    cli.send(*datagrams)
    time.sleep(0.2)
    assert cli.terminate() == 0, cli.stderr_lines

    got = by_key(fake_intake.series())
    bucket = sent_at - sent_at % 10
    for key, value in exp.series.items():
        assert key in got, f"missing series {key}; got {sorted(k[0] for k in got)[:50]}"
        (s,) = got[key]
        assert s["interval"] == 10
        assert len(s["points"]) == 1, s
        ts, v = s["points"][0]
        assert ts == bucket, (key, ts, bucket)
        assert close(v, value), (key, v, value)
    hosted = got[("gen.hosted", "gauge", frozenset({"role:web"}))][0]
    assert hosted["host"] == "my-host"
    device = got[("gen.device", "gauge", frozenset({"role:db"}))][0]
    assert ("device", "sda1") in device["resources"]

    sketches = {(s["metric"], frozenset(s["tags"])): s for s in fake_intake.sketches()}
    for key, summary in exp.sketches.items():
        assert key in sketches, f"missing sketch {key}"
        (d,) = sketches[key]["dogsketches"]
        assert d["ts"] == bucket
        assert d["cnt"] == summary["cnt"]
        assert close(d["min"], summary["min"]) and close(d["max"], summary["max"])
        assert abs(d["sum"] - summary["sum"]) < 1e-6
        assert sum(d["n"]) == summary["cnt"]
        assert d["k"] == sorted(d["k"])

    checks = {c["check"]: c for c in fake_intake.service_checks()}
    for want in exp.checks:
        c = checks[want["check"]]
        assert c["status"] == want["status"] and c["message"] == want["message"]
        assert set(want["tags"]) <= set(c["tags"])
        assert abs(c["timestamp"] - sent_at) < 30
    events = {e["title"]: e for e in fake_intake.events()}
    for want in exp.events:
        e = events[want["title"]]
        for k in ("text", "priority", "alert_type"):
            assert e[k] == want[k], (k, e, want)
        assert set(want["tags"]) <= set(e["tags"])
    assert fake_intake.api_keys() == {API_KEY}


def test_real_datadog_client_every_type(fake_intake, monkeypatch):
    datadog = pytest.importorskip("datadog")
    from datadog.dogstatsd import base as dsd_base

    cli = start_cli(fake_intake)
    # Client-side sampling is random; pin it so the sampled samples are all sent (with their @rate).
    monkeypatch.setattr(dsd_base, "random", lambda: 0.0)
    client = datadog.dogstatsd.DogStatsd(host="127.0.0.1", port=cli.port, constant_tags=["team:e2e"],
                                         disable_telemetry=False, telemetry_min_flush_interval=0)
    wait_for_bucket_room()
    sent_at = int(time.time())
    client.increment("client.count", 3, tags=["a:1"])
    client.increment("client.sampled", 1, sample_rate=0.5, tags=["a:1"])
    client.decrement("client.count", 1, tags=["a:1"])
    client.gauge("client.gauge", 42.5, tags=["a:1"])
    client.gauge("client.gauge", 43.5, tags=["a:1"])
    client.histogram("client.hist", 10, tags=["a:1"])
    client.histogram("client.hist", 30, tags=["a:1"])
    client.histogram("client.hist", 20, tags=["a:1"])
    client.timing("client.timing", 120, tags=["a:1"])
    client.distribution("client.dist", 5, tags=["a:1"])
    client.distribution("client.dist", 15, tags=["a:1"])
    client.set("client.set", "alice", tags=["a:1"])
    client.set("client.set", "bob", tags=["a:1"])
    client.set("client.set", "alice", tags=["a:1"])
    client.event("Client event", "something happened", alert_type="error", tags=["a:1"], priority="low")
    client.service_check("client.check", 2, tags=["a:1"], message="down")
    client.flush()
    time.sleep(0.3)
    assert cli.terminate() == 0

    tags = frozenset({"a:1", "team:e2e"})
    got = by_key(fake_intake.series())
    bucket = sent_at - sent_at % 10

    def value(metric, mtype):
        (s,) = got[(metric, mtype, tags)]
        assert s["points"][0][0] == bucket
        return s["points"][0][1]

    assert close(value("client.count", "rate"), 0.2)      # (3 - 1) / 10
    assert close(value("client.sampled", "rate"), 0.2)    # 1 / 0.5 / 10
    assert value("client.gauge", "gauge") == 43.5
    assert value("client.hist.max", "gauge") == 30
    assert value("client.hist.median", "gauge") == 20
    assert close(value("client.hist.avg", "gauge"), 20)
    assert close(value("client.hist.count", "rate"), 0.3)
    assert value("client.timing.max", "gauge") == 120
    assert value("client.set", "gauge") == 2
    (sk,) = [s for s in fake_intake.sketches() if s["metric"] == "client.dist"]
    assert frozenset(sk["tags"]) == tags
    d = sk["dogsketches"][0]
    assert (d["cnt"], d["min"], d["max"], d["sum"]) == (2, 5, 15, 20)
    # The client's own telemetry is aggregated like any counter (PROTOCOL.md section 2).
    assert any(k[0].startswith("datadog.dogstatsd.client.") for k in got)
    (ev,) = [e for e in fake_intake.events() if e["title"] == "Client event"]
    assert ev["text"] == "something happened" and ev["alert_type"] == "error" and ev["priority"] == "low"
    (sc,) = [c for c in fake_intake.service_checks() if c["check"] == "client.check"]
    assert sc["status"] == 2 and sc["message"] == "down" and {"a:1", "team:e2e"} <= set(sc["tags"])


def test_nothing_received_before_sigterm_is_lost(fake_intake):
    # A 4 MiB receive buffer holds the whole burst: with the kernel's default 208 KiB, a burst
    # faster than the reader can overflow it and the kernel drops datagrams before we ever
    # receive them (seen as RcvbufErrors in /proc/net/snmp), which is not what this test is about.
    cli = start_cli(fake_intake, DD_DOGSTATSD_SO_RCVBUF=str(4 << 20))
    lines = [f"burst.m{i}:1|c|#i:{i % 10}" for i in range(5000)]
    datagrams = ["\n".join(lines[i:i + 50]) for i in range(0, len(lines), 50)]
    cli.send(*datagrams)
    # Immediately: most datagrams are still in the socket buffer when the signal arrives.
    assert cli.terminate() == 0
    names = {s["metric"] for s in fake_intake.series()}
    missing = [f"burst.m{i}" for i in range(5000) if f"burst.m{i}" not in names]
    assert not missing, f"{len(missing)} lost, e.g. {missing[:5]}"


def test_intake_500_then_202_delivers(fake_intake):
    fake_intake.fail(status=500, count=2, path="/api/v2/series")
    cli = start_cli(fake_intake, DD_LOG_LEVEL="trace")
    cli.send("retry.me:1|c")
    time.sleep(0.1)
    assert cli.terminate() == 0
    assert not [l for l in cli.stderr_lines if API_KEY in l], "the API key reached a log line"
    statuses = [r["status"] for r in fake_intake.records(path="/api/v2/series")]
    assert statuses[:2] == [500, 500] and 202 in statuses, statuses
    assert any(s["metric"] == "retry.me" for s in fake_intake.series())


def test_intake_403_drops_counts_and_reports(fake_intake):
    fake_intake.fail(status=403, count=-1, path="/api/v2/series")
    cli = start_cli(fake_intake)
    cli.send("rejected.metric:1|c")
    time.sleep(0.1)
    assert cli.terminate() == 0
    statuses = [r["status"] for r in fake_intake.records(path="/api/v2/series")]
    assert statuses == [403], statuses  # never retried
    err = "\n".join(cli.stderr_lines)
    assert "error:" in err and "403" in err  # the status callback's error event
    assert "1 dropped" in err                # the final counters


def test_bad_datagrams_counted_neighbours_unaffected(fake_intake):
    cli = start_cli(fake_intake)
    cli.send("good.one:1|c\nbad line\na:|c\ngood.two:2|g\n_sc|x|9\n:1|c",
             "good.three:3|c|@abc",          # bad sample rate: the whole line is rejected
             b"good.four:4|c\n\xff\xfe:1|x")
    time.sleep(0.1)
    assert cli.terminate() == 0
    names = {s["metric"] for s in fake_intake.series()}
    assert {"good.one", "good.two", "good.four"} <= names
    assert "good.three" not in names
    final = [l for l in cli.stderr_lines if "stopped:" in l][-1]
    assert "6 parse errors" in final, final
    assert any("malformed line" in l for l in cli.stderr_lines)


def test_without_api_key_only_summaries_reach_stdout(fake_intake):
    """A forgotten key must not copy every tag and span into the platform's logs (stdout)."""
    cli = Cli({"DD_DD_URL": fake_intake.url, "DD_APM_DD_URL": fake_intake.url, "DD_APM_RECEIVER_PORT": "0"})
    cli.wait_ready()
    cli.send("dry.metric:1|c|#secret_tag:hunter2")
    cli.send("dry.metric:2|c|#secret_tag:hunter2")
    time.sleep(0.1)
    assert cli.terminate() == 0
    assert fake_intake.records() == []  # nothing sent
    text = "\n".join(cli.stdout_lines)
    assert "hunter2" not in text and "dry.metric" not in text, text
    lines = [json.loads(l) for l in cli.stdout_lines if l.strip()]
    assert lines and all(l["dry_run"] is True and l["summary"] is True and "payload" not in l for l in lines)
    (series,) = [l for l in lines if l["endpoint"] == "/api/v2/series"]
    assert series["kind"] == "series" and series["items"] >= 1 and series["bytes"] > 0, series
    warnings = [l for l in cli.stderr_lines if "DD_API_KEY is not set" in l]
    assert len(warnings) == 1 and "DD_DRY_RUN=true" in warnings[0], cli.stderr_lines


@pytest.mark.parametrize("how", ["env", "flag"])
def test_dry_run_without_api_key_prints_full_payloads(fake_intake, how):
    env = {"DD_DD_URL": fake_intake.url, "DD_APM_RECEIVER_PORT": "0"}
    if how == "env":
        env["DD_DRY_RUN"] = "true"
    cli = Cli(env, ["--dry-run"] if how == "flag" else [])
    cli.wait_ready()
    cli.send("dry.metric:1|c|#env:dev")
    time.sleep(0.1)
    assert cli.terminate() == 0
    assert fake_intake.records() == []  # nothing sent
    payloads = [json.loads(l) for l in cli.stdout_lines if l.strip()]
    series = [s for p in payloads if p["endpoint"] == "/api/v2/series" for s in p["payload"]["series"]]
    assert any(s["metric"] == "dry.metric" and s["tags"] == ["env:dev"] for s in series), payloads
    assert not any("DD_API_KEY is not set" in l for l in cli.stderr_lines)


def test_unknown_site_and_windows_pipes_are_one_warning_each(fake_intake):
    cli = Cli({"DD_DD_URL": fake_intake.url, "DD_API_KEY": API_KEY, "DD_SITE": "ap9.datadoghq.com",
               "DD_APM_RECEIVER_PORT": "0", "DD_DOGSTATSD_WINDOWS_PIPE_NAME": "dsd",
               "DD_APM_WINDOWS_PIPE_NAME": r"\\.\pipe\apm"})
    cli.wait_ready()
    cli.send("site.metric:1|c")
    time.sleep(0.1)
    assert cli.terminate() == 0
    assert sum("DD_SITE 'ap9.datadoghq.com' is not a Datadog site" in l for l in cli.stderr_lines) == 1
    for name in ("DD_DOGSTATSD_WINDOWS_PIPE_NAME", "DD_APM_WINDOWS_PIPE_NAME"):
        assert sum(f"{name} is set, but named pipes are Windows only" in l for l in cli.stderr_lines) == 1, name
    assert any(s["metric"] == "site.metric" for s in fake_intake.series())  # still serving and sending


def test_invalid_site_is_refused_in_one_line():
    cli = Cli({"DD_SITE": "https://datadoghq.com"})
    assert cli.proc.wait(5) == 2
    time.sleep(0.05)
    assert any("site must be a Datadog site" in l and "https://datadoghq.com" in l for l in cli.stderr_lines)


def test_dry_run_flag_forces_dry_run_with_a_key(fake_intake):
    cli = Cli({"DD_DD_URL": fake_intake.url, "DD_API_KEY": API_KEY}, ["--dry-run"])
    cli.wait_ready()
    cli.send("forced.dry:1|c")
    time.sleep(0.1)
    assert cli.terminate() == 0
    assert fake_intake.records() == []
    assert any("forced.dry" in l for l in cli.stdout_lines)


def test_namespace_tags_and_cloud_origin(fake_intake):
    cli = start_cli(fake_intake, DD_STATSD_METRIC_NAMESPACE="myapp", DD_TAGS="team:a,tier:b",
                    DD_ENV="prod", DD_SERVICE="checkout", DD_VERSION="1.2", AWS_LAMBDA_FUNCTION_NAME="my-fn")
    cli.send("ns.metric:1|g|#own:tag")
    time.sleep(0.1)
    assert cli.terminate() == 0
    (s,) = [s for s in fake_intake.series() if s["metric"] == "myapp.ns.metric"]
    assert set(s["tags"]) == {"own:tag", "team:a", "tier:b", "env:prod", "service:checkout", "version:1.2",
                              "origin:lambda", "dd.origin:lambda"}


def test_no_cloud_is_one_log_line_and_runs(fake_intake):
    cli = start_cli(fake_intake)
    assert cli.terminate() == 0
    assert sum("no serverless environment detected" in l for l in cli.stderr_lines) == 1


def test_sigint_stops_gracefully_too(fake_intake):
    cli = start_cli(fake_intake)
    cli.send("sigint.metric:1|c")
    time.sleep(0.1)
    assert cli.terminate(signal.SIGINT) == 0
    assert any(s["metric"] == "sigint.metric" for s in fake_intake.series())


@pytest.mark.parametrize("env,needle", [
    ({"DD_DOGSTATSD_PORT": "70000"}, "Invalid configuration: dogstatsd_port must be 0-65535, got 70000"),
    ({"DD_SITE": "example.com/"}, "Invalid configuration: site must be a Datadog site"),
    ({"DD_LOG_LEVEL": "loud"}, "DD_LOG_LEVEL must be one of"),
    ({"DD_STATSD_METRIC_NAMESPACE": "9lives"}, "metric_namespace must start with a letter"),
])
def test_invalid_configuration_fails_fast_with_one_line(env, needle):
    t0 = time.monotonic()
    cli = Cli(env)
    rc = cli.proc.wait(5)
    elapsed = time.monotonic() - t0
    time.sleep(0.05)
    assert rc != 0
    assert elapsed < 1.0, elapsed
    assert len(cli.stderr_lines) == 1 and needle in cli.stderr_lines[0], cli.stderr_lines


def test_taken_port_fails_fast_with_one_line():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t0 = time.monotonic()
        cli = Cli({"DD_DOGSTATSD_PORT": str(port)})
        rc = cli.proc.wait(5)
        elapsed = time.monotonic() - t0
    time.sleep(0.05)
    assert rc != 0 and elapsed < 1.0
    errors = [l for l in cli.stderr_lines if "Failed to start DogStatsD" in l]
    assert len(errors) == 1 and "Address already in use" in errors[0], cli.stderr_lines


def test_help_and_version():
    cli = Cli({}, ["--help"])
    assert cli.proc.wait(5) == 0
    time.sleep(0.05)
    assert any("DD_API_KEY" in l for l in cli.stdout_lines)
    cli = Cli({}, ["--version"])
    assert cli.proc.wait(5) == 0
    time.sleep(0.05)
    assert cli.stdout_lines and cli.stdout_lines[0].startswith("datadog-serverless-compat ")
    cli = Cli({}, ["--bogus"])
    assert cli.proc.wait(5) != 0


def test_https_proxy_setting_routes_every_request(fake_intake):
    # The intake doubles as a forward proxy: curl sends "POST http://metrics.invalid:9/api/v2/series"
    # to it, which only works if DD_PROXY_HTTPS is honoured (metrics.invalid never resolves).
    cli = start_cli(fake_intake, DD_DD_URL="http://metrics.invalid:9", DD_PROXY_HTTPS=fake_intake.url)
    cli.send("proxied.metric:1|c")
    time.sleep(0.1)
    assert cli.terminate() == 0
    assert any(s["metric"] == "proxied.metric" for s in fake_intake.series())
    (rec,) = fake_intake.records(path="/api/v2/series")
    assert rec["headers"]["host"].startswith("metrics.invalid")


def test_a_cli_left_running_is_killed_by_kill_all():
    """What the autouse fixture of conftest.py relies on: a binary a failing test did not stop is
    killed and reported; one that was stopped is no longer tracked."""
    stopped = Cli({})
    stopped.wait_ready()
    assert stopped.terminate() == 0
    left = Cli({})
    left.wait_ready()
    assert left in Cli.running and stopped not in Cli.running
    killed = Cli.kill_all()
    assert left.proc.poll() is not None and left.proc.returncode == -9
    assert killed == [" ".join(map(str, left.proc.args))]
    assert not Cli.running
