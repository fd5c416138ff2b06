"""Intake faults (issue 7): the retry policy of PROTOCOL.md through the real binary. Retryable
answers and outages are survived within the queue bound, rejections are dropped, counted and
reported, TLS failures are reported, and ingestion never slows down while the intake does."""
from __future__ import annotations

import re
import time

from tests.intake.client import FakeIntake
from tests.intake.tls import make_self_signed_cert
from tests.py.cli import Cli

API_KEY = "fault-test-key-0123456789abcdef"


def start_cli(url: str, **env) -> Cli:
    base = {"DD_API_KEY": API_KEY, "DD_DD_URL": url, "DD_DOGSTATSD_FLUSH_INTERVAL_MS": "500"}
    base.update(env)
    cli = Cli(base)
    cli.wait_ready()
    return cli


def final_counts(cli: Cli) -> dict[str, int]:
    line = [l for l in cli.stderr_lines if "stopped:" in l][-1]
    return {k.strip(): int(v) for v, k in re.findall(r"(\d+) ([a-z ()]+?)(?:,|$)", line.split("stopped:")[1])}


def test_intake_down_30s_then_back_delivers(tmp_path):
    """Intake down for 30 s, then back on the same port: the retried payload arrives."""
    first = FakeIntake()
    port = first.port
    first.stop()                      # the intake is down from the start
    cli = start_cli(f"http://127.0.0.1:{port}")
    cli.send("outage.metric:1|c")
    time.sleep(30)                    # the closed bucket is flushed and retried meanwhile
    with FakeIntake(port) as back:    # back on the same port
        back.wait_for(lambda i: any(s["metric"] == "outage.metric" for s in i.series()), timeout=20)
        assert cli.terminate() == 0
    assert any("will retry" in l for l in cli.stderr_lines)


def test_429_then_202_delivers(fake_intake):
    """429 twice, then 202: retried with backoff and delivered once."""
    fake_intake.fail(status=429, count=2, path="/api/v2/series")
    cli = start_cli(fake_intake.url)
    cli.send("throttled.metric:1|c")
    time.sleep(0.1)
    assert cli.terminate() == 0
    statuses = [r["status"] for r in fake_intake.records(path="/api/v2/series")]
    assert statuses[:2] == [429, 429] and 202 in statuses
    assert any(s["metric"] == "throttled.metric" for s in fake_intake.series())


def test_413_dropped_counted_reported(fake_intake):
    """413: dropped after one try, counted, reported as an error status."""
    fake_intake.fail(status=413, count=-1, path="/api/v2/series")
    cli = start_cli(fake_intake.url)
    cli.send("too.large:1|c")
    time.sleep(0.1)
    assert cli.terminate() == 0
    assert [r["status"] for r in fake_intake.records(path="/api/v2/series")] == [413]
    assert any("error:" in l and "413" in l for l in cli.stderr_lines)
    assert final_counts(cli)["dropped"] >= 1


def test_connection_reset_mid_response_is_retried(fake_intake):
    """Connection closed without an answer: retried and delivered."""
    fake_intake.fail(close=True, count=1, path="/api/v2/series")
    cli = start_cli(fake_intake.url)
    cli.send("reset.metric:1|c")
    time.sleep(0.1)
    assert cli.terminate() == 0
    assert any(s["metric"] == "reset.metric" for s in fake_intake.series())


def test_slow_intake_never_slows_ingestion(fake_intake):
    """10 s intake latency: a 20,000-line burst is still counted in full, at once."""
    # Every series request waits 10 s: flushes are in flight while a burst arrives. Every line
    # of the burst must still be counted at once (the loop never waits for the intake).
    fake_intake.fail(delay_ms=10000, count=-1, path="/api/v2/series")
    cli = start_cli(fake_intake.url, DD_DOGSTATSD_SO_RCVBUF=str(4 << 20))
    cli.send("slow.warmup:1|c")
    time.sleep(1.5)  # a flush of the warm-up bucket may be pending at the intake now
    lines = [f"slow.m{i}:1|c" for i in range(20000)]
    t0 = time.monotonic()
    cli.send(*["\n".join(lines[i:i + 100]) for i in range(0, len(lines), 100)])
    sent_in = time.monotonic() - t0
    time.sleep(0.5)
    fake_intake.clear_failures()
    assert cli.terminate(timeout=20) in (0, 1)   # 0, or 1 if the 5 s stop deadline hit the slow intake
    counts = final_counts(cli)
    assert counts["metric lines"] == 20001, counts
    assert sent_in < 5


def test_untrusted_tls_certificate_is_reported_not_sent(tmp_path):
    """Self-signed TLS certificate: nothing sent, the certificate failure is logged."""
    cert, key = make_self_signed_cert(tmp_path)
    with FakeIntake(tls_cert=cert, tls_key=key) as tls_intake:
        cli = start_cli(f"https://127.0.0.1:{tls_intake.port}")
        cli.send("tls.metric:1|c")
        time.sleep(1.5)
        cli.terminate(timeout=20)
        assert tls_intake.records() == []            # nothing accepted over an unverified link
    log = "\n".join(cli.stderr_lines)
    assert re.search(r"certificate|SSL", log), log[-2000:]


def test_skip_ssl_validation_sends_to_self_signed(tmp_path):
    """DD_SKIP_SSL_VALIDATION=true: the same intake receives the data."""
    cert, key = make_self_signed_cert(tmp_path)
    with FakeIntake(tls_cert=cert, tls_key=key) as tls_intake:
        cli = start_cli(f"https://127.0.0.1:{tls_intake.port}", DD_SKIP_SSL_VALIDATION="true")
        cli.send("tls.ok:1|c")
        time.sleep(0.1)
        assert cli.terminate() == 0
        assert any(s["metric"] == "tls.ok" for s in tls_intake.series())
