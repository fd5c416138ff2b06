"""Benchmarks of the Python package: import time, start-to-ready, stop with a final flush to a
local fake intake, and the RSS a running instance adds. Medians over repeated runs.

Run (after scripts/test-python installed the package into .venv):
    .venv/bin/python bench/bench_python.py [--runs N]
Targets (issue 4): start < 10 ms, stop < 100 ms, < 8 MB RSS added.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.intake.client import FakeIntake  # noqa: E402


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.2f} ms"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DD_")}


def bench_import(runs: int) -> dict[str, float]:
    """`import datadog_serverless` timed inside fresh interpreters: with nothing else imported,
    and with logging, dataclasses and typing already imported (what most applications have)."""
    def timed(preload: str) -> float:
        code = (f"{preload}\nimport time\nt0 = time.perf_counter()\nimport datadog_serverless\n"
                "print(time.perf_counter() - t0)")
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                             env=clean_env(), cwd="/")
        return float(out.stdout)

    cold = [timed("") for _ in range(runs)]
    warm = [timed("import logging, dataclasses, typing") for _ in range(runs)]
    return {"import_cold_s": statistics.median(cold), "import_marginal_s": statistics.median(warm)}


def bench_lifecycle(intake: FakeIntake, runs: int) -> dict[str, list[float]]:
    from datadog_serverless import ServerlessServices, ServicesConfig

    cfg = ServicesConfig(api_key="bench-key-0123456789abcdef", dd_url=intake.url, apm_dd_url=intake.url,
                         dogstatsd_port=0, apm_receiver_port=0, log_level="warn")
    services = ServerlessServices(cfg)
    lines = [f"bench.metric.{i % 20}:{i}|c|#k:{i % 5}".encode() for i in range(200)]
    out: dict[str, list[float]] = {"start": [], "ready": [], "stop": [], "flush": []}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    services.start().stop()  # one-time library init (libcurl, OpenSSL) outside the samples
    for _ in range(runs):
        both_ready = threading.Event()
        ready = []

        def on_status(st, ready=ready, both_ready=both_ready):
            if st.type == "ready":
                ready.append(time.perf_counter())
                if len(ready) == 2:
                    both_ready.set()

        t0 = time.perf_counter()
        handle = services.start(on_status)
        out["start"].append(time.perf_counter() - t0)
        both_ready.wait(5)
        out["ready"].append(ready[-1] - t0)
        port = handle.ports.dogstatsd
        for line in lines:
            sock.sendto(line, ("127.0.0.1", port))
        time.sleep(0.02)
        # Even runs time flush(), odd runs stop(): each is then the first request on its
        # connection. (A second request on a kept-alive connection to the fake intake waits
        # ~40 ms for a delayed ACK: the intake, Python's http.server, writes headers and body
        # separately without TCP_NODELAY. Datadog's intake does not behave so.)
        if len(out["flush"]) <= len(out["stop"]):
            t0 = time.perf_counter()
            handle.flush()
            out["flush"].append(time.perf_counter() - t0)
            handle.stop()
        else:
            t0 = time.perf_counter()
            handle.stop()  # drain, final flush to the intake, join
            out["stop"].append(time.perf_counter() - t0)
        assert handle.stats().payloads_sent >= 1 and handle.stats().payloads_dropped == 0
    sock.close()
    return out


RSS_CHILD = textwrap.dedent("""
    import json, socket, sys, time
    import datadog_serverless as ds

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    cfg = ds.ServicesConfig(api_key="bench-key-0123456789abcdef", dd_url=sys.argv[1], apm_dd_url=sys.argv[1],
                            dogstatsd_port=0, apm_receiver_port=0, log_level="warn")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def load(handle):
        for i in range(2000):
            sock.sendto(f"rss.metric.{i % 500}:{i}|c|#k:{i % 7}".encode(), ("127.0.0.1", handle.ports.dogstatsd))
        time.sleep(0.1)
        handle.flush()

    before = rss()
    first = ds.ServerlessServices(cfg).start()
    load(first)
    one = rss()
    second = ds.ServerlessServices(cfg).start()
    load(second)
    two = rss()
    first.stop(); second.stop()
    print(json.dumps({"first": one - before, "second": two - one}))
""")


def bench_rss(intake: FakeIntake, runs: int) -> dict[str, float]:
    firsts, seconds = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", RSS_CHILD, intake.url], check=True, capture_output=True,
                             text=True, env=clean_env(), cwd="/")
        got = json.loads(out.stdout)
        firsts.append(got["first"])
        seconds.append(got["second"])
    return {"rss_first": statistics.median(firsts), "rss_second": statistics.median(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="lifecycle and import runs (RSS uses runs/20)")
    args = parser.parse_args()
    intake = FakeIntake.spawn()  # its own process: its HTTP handling does not share our GIL
    try:
        imports = bench_import(args.runs)
        life = bench_lifecycle(intake, args.runs)
        rss = bench_rss(intake, max(3, args.runs // 20))
    finally:
        intake.stop()
    import datadog_serverless

    print(f"datadog_serverless {datadog_serverless.__version__}, Python {sys.version.split()[0]}, "
          f"{args.runs} lifecycle runs (medians)")
    print(f"import, fresh interpreter                      : {imports['import_cold_s'] * 1000:.1f} ms")
    print(f"import, logging/dataclasses/typing loaded      : {imports['import_marginal_s'] * 1000:.1f} ms")
    print(f"start() returns (both listeners bound)         : {median_ms(life['start'])}")
    print(f"start to both READY events in on_status        : {median_ms(life['ready'])}")
    print(f"flush() of 200 lines, intake answered          : {median_ms(life['flush'])}")
    print(f"stop() with final flush of 200 lines, joined   : {median_ms(life['stop'])}")
    print(f"RSS added by the first running instance        : {rss['rss_first'] / 2**20:.2f} MiB")
    print(f"RSS added by a second running instance         : {rss['rss_second'] / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
