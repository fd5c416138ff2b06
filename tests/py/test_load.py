"""Load (issue 7): SIGTERM in the middle of a UDP flood loses nothing the services accepted, and
an overload of UDP at the sender's limit plus 200 HTTP clients posting 1 MB bodies leaves the
process alive, within its memory bound, and answering right after. DDS_OVERLOAD_SECONDS sets
the overload's length (default 60, as the reliability suite asks; shorter for quick runs)."""
from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
import urllib.request

import msgpack
import pytest

from tests.intake.client import FakeIntake
from tests.py.cli import Cli

API_KEY = "load-test-key-0123456789abcdef"
TRACE_PORT_RE = re.compile(r"trace agent listening on [0-9.]+:(\d+)")


def final_metric_lines(cli: Cli) -> int:
    line = [l for l in cli.stderr_lines if "stopped:" in l][-1]
    return int(re.search(r"(\d+) metric lines", line).group(1))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def flood(port: int, stop: threading.Event, sent: list[int], lines_per_datagram: int = 20) -> None:
    payloads = ["\n".join(f"load.c{(i + j) % 50}:1|c" for j in range(lines_per_datagram)).encode()
                for i in range(50)]
    n = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while not stop.is_set():
            try:
                s.sendto(payloads[n % 50], ("127.0.0.1", port))
                n += 1
            except OSError:
                time.sleep(0.001)
    sent.append(n * lines_per_datagram)


def console_script() -> str | None:
    """The Python package's console script next to this interpreter, when the package is installed."""
    path = os.path.join(os.path.dirname(sys.executable), "datadog-serverless-compat")
    return path if os.access(path, os.X_OK) else None


@pytest.mark.parametrize("front", ["c-binary", "python-console-script"])
def test_sigterm_under_load_loses_nothing_accepted(fake_intake, front):
    """SIGTERM during a UDP flood: every line counted as accepted reaches the intake."""
    program = None
    if front == "python-console-script":
        program = console_script()
        if program is None:
            pytest.skip("the Python package is not installed in this interpreter's environment")
    cli = Cli({"DD_API_KEY": API_KEY, "DD_DD_URL": fake_intake.url, "DD_DOGSTATSD_SO_RCVBUF": str(4 << 20)},
              program=program)
    port = cli.wait_ready()
    stop, sent = threading.Event(), []
    sender = threading.Thread(target=flood, args=(port, stop, sent))
    sender.start()
    time.sleep(1.5)
    rc = cli.terminate(timeout=20)   # while the flood goes on
    stop.set()
    sender.join()
    assert rc == 0
    accepted = final_metric_lines(cli)
    assert accepted > 10000, accepted
    # Every accepted line is one increment of one of 50 counters: the intake must hold them all.
    delivered = sum(round(v * 10) for s in fake_intake.series() if s["metric"].startswith("load.c")
                    for _, v in s["points"])
    assert delivered == accepted, (delivered, accepted, sent)


def test_udp_drops_reconcile_exactly(fake_intake):
    """A flood the loop cannot parse in time, into a small receive queue and socket buffer: every
    line sent is either at the intake or in a dropped datagram the stop line counts (sending
    stops before SIGTERM, so nothing is left unread in the socket)."""
    cli = Cli({"DD_API_KEY": API_KEY, "DD_DD_URL": fake_intake.url, "DD_DOGSTATSD_SO_RCVBUF": "65536",
               "DD_DOGSTATSD_QUEUE_BYTES": "65536"})
    port = cli.wait_ready()
    stop, sent = threading.Event(), []
    sender = threading.Thread(target=flood, args=(port, stop, sent))
    sender.start()
    time.sleep(1.5)
    stop.set()
    sender.join()
    time.sleep(0.2)
    rc = cli.terminate(timeout=20)
    assert rc == 0
    line = [l for l in cli.stderr_lines if "DogStatsD datagrams dropped:" in l]
    assert line, ("no drops: the flood did not overflow, the test shows nothing", sent, cli.stderr_lines[-3:])
    m = re.search(r"dropped: (\d+) with the receive queue full, (\d+) by the kernel", line[-1])
    dropped_lines = 20 * (int(m.group(1)) + int(m.group(2)))
    delivered = sum(round(v * 10) for s in fake_intake.series() if s["metric"].startswith("load.c")
                    for _, v in s["points"])
    assert delivered == final_metric_lines(cli)
    assert delivered + dropped_lines == sent[0], (delivered, dropped_lines, sent[0], line[-1])
    print(f"sent {sent[0]} lines, delivered {delivered}, {line[-1]}")


def test_overload_udp_and_200_http_clients():
    """UDP at the sender's limit + 200 clients posting 1 MB traces: alive, bounded RSS, answers right after."""
    seconds = float(os.environ.get("DDS_OVERLOAD_SECONDS", "60"))
    # The metrics intake runs in its own process (this one is busy with 200 client threads);
    # traces go to a port where nothing listens, so the retry queue and its bound work under load.
    with FakeIntake.spawn() as fake_intake:
        _overload(fake_intake, seconds)


def _overload(fake_intake, seconds: float) -> None:
    cli = Cli({"DD_API_KEY": API_KEY, "DD_DD_URL": fake_intake.url, "DD_APM_DD_URL": "http://127.0.0.1:9",
               "DD_APM_ENABLED": "true", "DD_APM_RECEIVER_PORT": "0"})
    port = cli.wait_ready()
    deadline = time.monotonic() + 5
    trace_port = None
    while trace_port is None and time.monotonic() < deadline:
        for l in cli.stderr_lines:
            if m := TRACE_PORT_RE.search(l):
                trace_port = int(m.group(1))
        time.sleep(0.02)
    assert trace_port
    span = {"service": "load", "name": "op", "resource": "r" * 200, "trace_id": 1, "span_id": 2, "start": 1,
            "duration": 5, "meta": {"k": "v" * 400}}
    body = msgpack.packb([[dict(span, span_id=i + 1) for i in range(1400)]])
    assert 0.9e6 < len(body) < 1.2e6

    stop, sent, http_ok, http_err = threading.Event(), [], [0], [0]

    def client() -> None:
        while not stop.is_set():
            req = urllib.request.Request(f"http://127.0.0.1:{trace_port}/v0.4/traces", data=body, method="PUT",
                                         headers={"Content-Type": "application/msgpack"})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    r.read()
                    http_ok[0] += 1
            except Exception:
                http_err[0] += 1

    threads = [threading.Thread(target=flood, args=(port, stop, sent))]
    threads += [threading.Thread(target=client) for _ in range(200)]
    for t in threads:
        t.start()
    peak = 0
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        assert cli.proc.poll() is None, "the services died under load"
        peak = max(peak, rss_kib(cli.proc.pid))
        time.sleep(0.25)
    stop.set()
    for t in threads:
        t.join(timeout=90)
    # Right after: DogStatsD and the trace agent answer.
    with urllib.request.urlopen(f"http://127.0.0.1:{trace_port}/info", timeout=5) as r:
        assert r.status == 200
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"after.overload:1|c", ("127.0.0.1", port))
    time.sleep(0.5)
    rc = cli.terminate(timeout=30)
    assert rc in (0, 1)  # 1: the traces still retrying toward the closed port are dropped at the deadline
    assert any(s["metric"] == "after.overload" for s in fake_intake.series())
    assert http_ok[0] > 0
    # Bounded memory: evhttp buffers at most one body per connection (200 x 1 MB), one request is
    # decoded at a time (its arena is bounded), the retry queue holds 15 MiB.
    assert peak < 1024 * 1024, f"peak RSS {peak} KiB"
    print(f"overload {seconds:.0f}s: {sent[0] if sent else 0} UDP lines sent, {http_ok[0]} HTTP 1 MB bodies "
          f"accepted, {http_err[0]} failed, peak RSS {peak // 1024} MiB")
