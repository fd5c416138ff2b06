"""Soak: the binary under a steady, realistic load (UDP metrics over many contexts, trace
requests) for a given time, RSS sampled every second. Passes when, after a warm-up of a fifth of
the run, RSS stays flat: the last quarter's median within 10 % (and 8 MiB) of the median just
after warm-up. Prints one JSON line of results (docs/RELIABILITY.md is built from it).

Usage: python -m tests.py.soak [seconds=120]   (CI: 120; documented run: 3600)"""
from __future__ import annotations

import json
import re
import socket
import statistics
import sys
import threading
import time
import urllib.request

import msgpack

from tests.intake.client import FakeIntake
from tests.py.cli import Cli

TRACE_PORT_RE = re.compile(r"trace agent listening on [0-9.]+:(\d+)")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main(seconds: float) -> int:
    with FakeIntake.spawn() as intake:
        cli = Cli({"DD_API_KEY": "soak-key", "DD_DD_URL": intake.url, "DD_APM_DD_URL": intake.url,
                   "DD_APM_ENABLED": "true", "DD_APM_RECEIVER_PORT": "0", "DD_DOGSTATSD_FLUSH_INTERVAL_MS": "2000"})
        port = cli.wait_ready()
        trace_port = None
        while trace_port is None:
            for line in cli.stderr_lines:
                if m := TRACE_PORT_RE.search(line):
                    trace_port = int(m.group(1))
            time.sleep(0.02)
        stop = threading.Event()
        counts = {"udp_lines": 0, "trace_requests": 0}

        def metrics() -> None:
            # 5000 contexts in rotation (counts, gauges, distributions, sets), ~20k lines/s.
            i = 0
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                while not stop.is_set():
                    lines = [f"soak.m{(i + j) % 1250}:{j}|{'cgds'[j % 4]}|#shard:{(i + j) % 4},env:soak"
                             for j in range(20)]
                    s.sendto("\n".join(lines).encode(), ("127.0.0.1", port))
                    counts["udp_lines"] += 20
                    i += 20
                    time.sleep(0.001)

        def traces() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                body = msgpack.packb([[{"service": "soak", "name": "op", "resource": f"r{n % 100}",
                                        "trace_id": n, "span_id": k + 1, "parent_id": k, "start": time.time_ns(),
                                        "duration": 1000, "meta": {"k": "v"}} for k in range(20)]])
                req = urllib.request.Request(f"http://127.0.0.1:{trace_port}/v0.4/traces", data=body, method="PUT",
                                             headers={"Content-Type": "application/msgpack"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    r.read()
                counts["trace_requests"] += 1
                time.sleep(0.05)

        workers = [threading.Thread(target=metrics), threading.Thread(target=traces)]
        for w in workers:
            w.start()
        samples = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            if cli.proc.poll() is not None:
                print(json.dumps({"ok": False, "error": "the binary exited", "stderr": cli.stderr_lines[-20:]}))
                return 1
            samples.append(rss_kib(cli.proc.pid))
            time.sleep(1)
        stop.set()
        for w in workers:
            w.join()
        rc = cli.terminate(timeout=30)
        warm = max(1, len(samples) // 5)
        after_warmup = statistics.median(samples[warm:warm + max(1, len(samples) // 10)])
        last_quarter = statistics.median(samples[-max(1, len(samples) // 4):])
        growth = last_quarter - after_warmup
        ok = rc == 0 and growth <= max(0.10 * after_warmup, 8 * 1024)
        print(json.dumps({"ok": ok, "seconds": seconds, "udp_lines": counts["udp_lines"],
                          "trace_requests": counts["trace_requests"], "rss_after_warmup_kib": after_warmup,
                          "rss_last_quarter_kib": last_quarter, "rss_max_kib": max(samples),
                          "growth_kib": growth, "exit_code": rc}))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 120.0))
