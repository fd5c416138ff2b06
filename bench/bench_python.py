"""Benchmarks of the Python package: import time, start-to-ready, stop with a final flush to a
local fake intake, and the RSS a running instance adds, idle and with 100,000 live contexts.
Medians over repeated runs.

Run (after scripts/test-python installed the package into .venv):
    .venv/bin/python bench/bench_python.py [--runs N] [--rss-runs M] [--json]
Targets (issue 4): start < 10 ms, stop < 100 ms, < 8 MB RSS added.
--json prints one JSON object (seconds and bytes) instead of the text (bench/footprint.py reads it).
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
    and with logging, dataclasses and typing already imported (what most applications have); the
    wall time of `python -c "import datadog_serverless"` minus that of `python -c "pass"` (the two
    alternating); and what a function's cold start pays before clients may send: import,
    `ServicesConfig.from_env()`, `ServerlessServices(...)` and `start()` returning (the extension
    is loaded by the first call that needs it, not by the import)."""
    def timed(preload: str, body: str = "import datadog_serverless") -> float:
        code = (f"{preload}\nimport time\nt0 = time.perf_counter()\n{body}\n"
                "print(time.perf_counter() - t0)")
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                             env=clean_env(), cwd="/")
        return float(out.stdout.split()[-1])

    def wall(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=clean_env(), cwd="/")
        return time.perf_counter() - t0

    cold = [timed("") for _ in range(runs)]
    warm = [timed("import logging, dataclasses, typing") for _ in range(runs)]
    walls: dict[str, list[float]] = {"pass": [], "import": []}
    for _ in range(runs):
        walls["pass"].append(wall("pass"))
        walls["import"].append(wall("import datadog_serverless"))
    started = [timed("import os\nos.environ.update(DD_DOGSTATSD_PORT='0', DD_APM_RECEIVER_PORT='0', DD_LOG_LEVEL='warn')",
                     "import datadog_serverless as ds\n"
                     "h = ds.ServerlessServices(ds.ServicesConfig.from_env()).start()\n"
                     "t1 = time.perf_counter(); h.stop(); print(t1 - t0); import sys; sys.exit(0)")
               for _ in range(max(3, runs // 4))]
    return {"import_cold_s": statistics.median(cold), "import_marginal_s": statistics.median(warm),
            "import_wall_minus_pass_s": statistics.median(walls["import"]) - statistics.median(walls["pass"]),
            "import_to_started_s": statistics.median(started)}


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
        deadline = time.monotonic() + 2  # until the stats count the 200 lines (at most 2 s)
        while handle.stats().dsd_metric_lines < len(lines) and time.monotonic() < deadline:
            time.sleep(0.001)
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


# A fresh interpreter: RSS before start (package imported), the first start of the process to both
# READY (one-time libcurl/OpenSSL init included), RSS after 100 ms idle, then RSS with 100,000 live
# contexts: the lines of bench_lifecycle.c (100 names x 1000 values of one tag), packed into
# datagrams of at most 8000 bytes, at most 800 lines sent and not yet counted (the default socket
# buffer holds them), until the stats count 100,000 contexts (at most 3 passes, 20 s each). It
# exits without the final flush: 100k series would only keep the fake intake decoding.
FOOTPRINT_CHILD = textwrap.dedent("""
    import json, os, socket, sys, threading, time
    import datadog_serverless as ds

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    cfg = ds.ServicesConfig(api_key="bench-key-0123456789abcdef", dd_url=sys.argv[1], apm_dd_url=sys.argv[1],
                            dogstatsd_port=0, apm_receiver_port=0, log_level="warn")
    services = ds.ServerlessServices(cfg)
    both = threading.Event()
    ready = []

    def on_status(st):
        if st.type == "ready":
            ready.append(time.perf_counter())
            if len(ready) == 2:
                both.set()

    before = rss()
    t0 = time.perf_counter()
    handle = services.start(on_status)
    if not both.wait(5):
        sys.exit("no READY from both services within 5 s")
    first_ready = ready[-1] - t0
    time.sleep(0.1)
    idle = rss()

    N = 100000
    addr = ("127.0.0.1", handle.ports.dogstatsd)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(3):
        base = handle.stats().dsd_metric_lines
        sent = 0
        deadline = time.monotonic() + 20
        buf, in_buf = [], 0
        size = 0
        for i in range(N + 1):
            line = f"footprint.metric.{i % 100}:1|c|#ctx:{i // 100},env:bench,service:footprint" if i < N else ""
            if buf and (i == N or size + 1 + len(line) > 8000):
                while sent > handle.stats().dsd_metric_lines - base + 800 and time.monotonic() < deadline:
                    time.sleep(0.0001)
                sock.sendto("\\n".join(buf).encode(), addr)
                sent += len(buf)
                buf, size = [], 0
            if i < N:
                size += len(line) + (1 if buf else 0)
                buf.append(line)
        last, quiet = handle.stats().dsd_metric_lines, time.monotonic()
        while handle.stats().dsd_metric_lines - base < sent and time.monotonic() - quiet < 0.5:
            time.sleep(0.001)
            now = handle.stats().dsd_metric_lines
            if now != last:
                last, quiet = now, time.monotonic()
        if handle.stats().dsd_contexts >= N:
            break
    sock.close()
    time.sleep(0.02)
    st = handle.stats()
    out = {"rss_before": before, "rss_idle": idle, "rss_100k": rss(), "first_ready_s": first_ready,
           "contexts": st.dsd_contexts, "lines": st.dsd_metric_lines, "contexts_dropped": st.dsd_contexts_dropped}
    print(json.dumps(out), flush=True)
    os._exit(0 if st.dsd_contexts >= N else 1)
""")


def bench_footprint(intake: FakeIntake, runs: int) -> dict[str, float]:
    """RSS added idle and with 100k live contexts, first start to READY: fresh interpreters."""
    got = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", FOOTPRINT_CHILD, intake.url], capture_output=True,
                             text=True, env=clean_env(), cwd="/", timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"footprint child failed ({out.returncode}): {out.stdout} {out.stderr}")
        got.append(json.loads(out.stdout))
    med = lambda key: statistics.median(key(g) for g in got)  # noqa: E731
    return {"rss_before": med(lambda g: g["rss_before"]),
            "rss_idle_added": med(lambda g: g["rss_idle"] - g["rss_before"]),
            "rss_100k_added": med(lambda g: g["rss_100k"] - g["rss_before"]),
            "first_ready_s": med(lambda g: g["first_ready_s"])}


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
    parser.add_argument("--rss-runs", type=int, default=0,
                        help="fresh interpreters for each RSS figure (default: runs/20, at least 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    args = parser.parse_args()
    rss_runs = args.rss_runs or max(3, args.runs // 20)
    intake = FakeIntake.spawn()  # its own process: its HTTP handling does not share our GIL
    try:
        imports = bench_import(args.runs)
        life = bench_lifecycle(intake, args.runs)
        rss = bench_rss(intake, rss_runs)
        foot = bench_footprint(intake, rss_runs)
    finally:
        intake.stop()
    import datadog_serverless

    if args.json:
        med = statistics.median
        print(json.dumps({
            "version": datadog_serverless.__version__, "python": sys.version.split()[0],
            "runs": args.runs, "rss_runs": rss_runs, **imports,
            "start_return_s": med(life["start"]), "start_ready_s": med(life["ready"]),
            "flush_s": med(life["flush"]), "stop_flush_s": med(life["stop"]),
            "first_start_ready_s": foot["first_ready_s"], "rss_before": foot["rss_before"],
            "rss_idle_added": foot["rss_idle_added"], "rss_100k_added": foot["rss_100k_added"],
            "rss_first_loaded_added": rss["rss_first"], "rss_second_loaded_added": rss["rss_second"],
        }))
        return
    print(f"datadog_serverless {datadog_serverless.__version__}, Python {sys.version.split()[0]}, "
          f"{args.runs} lifecycle runs, {rss_runs} fresh interpreters per RSS figure (medians)")
    print(f"import, fresh interpreter                      : {imports['import_cold_s'] * 1000:.1f} ms")
    print(f"import, logging/dataclasses/typing loaded      : {imports['import_marginal_s'] * 1000:.1f} ms")
    print(f"import, wall time minus `python -c pass`       : {imports['import_wall_minus_pass_s'] * 1000:.1f} ms")
    print(f"import + from_env + start() returned, fresh    : {imports['import_to_started_s'] * 1000:.1f} ms")
    print(f"start() returns (both listeners bound)         : {median_ms(life['start'])}")
    print(f"start to both READY events in on_status        : {median_ms(life['ready'])}")
    print(f"flush() of 200 lines, intake answered          : {median_ms(life['flush'])}")
    print(f"stop() with final flush of 200 lines, joined   : {median_ms(life['stop'])}")
    print(f"first start() of a process to both READY       : {foot['first_ready_s'] * 1000:.2f} ms")
    print(f"RSS added by the first instance, idle          : {foot['rss_idle_added'] / 2**20:.2f} MiB")
    print(f"RSS added by the first instance, 100k contexts : {foot['rss_100k_added'] / 2**20:.2f} MiB")
    print(f"RSS added by the first running instance        : {rss['rss_first'] / 2**20:.2f} MiB")
    print(f"RSS added by a second running instance         : {rss['rss_second'] / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
