"""DogStatsD: 100,000 new metric names arriving at 100,000/s (issue 12). Every line creates a
context (hash, canonicalize, allocate), so the loop thread parses slower than in the steady state
while the names arrive; what it cannot take in time must wait in the receive thread's queue or the
socket buffer, or be lost. Loss is counted end to end: the CLI (`datadog-serverless-compat`) sends
to a counting intake in this process (contention.py's), is stopped with SIGTERM (final flush), and
the counter values that reached the intake are compared with the lines sent.

    python bench/newnames.py --build build-bench [--runs 3] [--names 100000] [--rate 100000]

The sender is `bench_udp_load --mpd 1 --counters bench.cont.nn<round> --contexts N --corpus N`: one
line per datagram, `bench.cont.nn<round>.c<i>:1|c` with i = 0..N-1, each name once (the corpus is
the N datagrams, sent once in N/rate seconds). N = 100,000 is also the default context limit, so
every name must become a context. Configurations, alternating within each round:
  - ours: the default configuration (receive thread, 4 MiB queue, SO_RCVBUF asked 4 MiB);
  - ours, kernel-default socket buffer (DD_DOGSTATSD_SO_RCVBUF=106496, 212,992 bytes);
  - ours without the receive thread (DD_DOGSTATSD_QUEUE_BYTES=0, kernel-default socket buffer): the
    configuration of commit 8b57a86, where 0.5-0.6 % were lost.
Runs as a section of bench/run.py too (`run(ctx)`), if run.py lists it.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import fmt, log, median, table  # noqa: E402
from common import CountingIntake, free_port, wait_udp_bound  # noqa: E402
from contention import KERNEL_DEFAULT_ASK  # noqa: E402

TITLE = "DogStatsD: 100,000 new names at 100,000/s"
NAMES = 100_000
RATE = 100_000

CONFIGS = [
    ("ours (default)", {}),
    ("ours, kernel-default socket buffer", {"DD_DOGSTATSD_SO_RCVBUF": str(KERNEL_DEFAULT_ASK)}),
    ("ours without the receive thread (as at 8b57a86)",
     {"DD_DOGSTATSD_QUEUE_BYTES": "0", "DD_DOGSTATSD_SO_RCVBUF": str(KERNEL_DEFAULT_ASK)}),
]


def one(ctx, intake, tmp: Path, name: str, extra: dict, prefix: str, names: int, rate: int) -> dict:
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "DD_API_KEY": "bench-newnames-key", "DD_DD_URL": intake.url,
           "DD_DOGSTATSD_PORT": str(port), "DD_APM_ENABLED": "false", "DD_LOG_LEVEL": "warn"}
    env.update(extra)
    errf = open(tmp / f"{prefix}.log", "w+")
    p = subprocess.Popen([ctx.exe("datadog-serverless-compat")], env=env, stdout=subprocess.DEVNULL, stderr=errf)
    try:
        if not wait_udp_bound(port):
            raise RuntimeError(f"{name}: the CLI did not bind UDP {port}")
        seconds = names / rate
        # Paced, the sender stops when the next line would be due at the end of the duration:
        # names/rate seconds is the corpus sent exactly once (it would repeat names after that).
        cmd = [ctx.exe("bench_udp_load"), "--port", str(port), "--rate", str(rate), "--duration", f"{seconds:g}",
               "--mpd", "1", "--contexts", str(names), "--corpus", str(names), "--counters", prefix]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
        sent = json.loads(out.strip().splitlines()[-1])
        p.send_signal(signal.SIGTERM)
        p.wait(60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    errf.seek(0)
    log_text = errf.read()
    errf.close()
    drops = None
    for line in log_text.splitlines():
        if "DogStatsD datagrams dropped:" in line:
            drops = line.split("dropped:", 1)[1].strip()
    counted = intake.total(prefix)
    return {"sent": sent["metrics"], "send_errors": sent["send_errors"], "counted": counted, "rc": p.returncode,
            "drops": drops, "rate": sent["metrics_per_s"],
            "loss": (sent["metrics"] - counted) / sent["metrics"] if sent["metrics"] else None}


def measure(ctx, names=NAMES, rate=RATE) -> dict[str, list[dict]]:
    res: dict[str, list[dict]] = {n: [] for n, _ in CONFIGS}
    intake = CountingIntake()
    try:
        with tempfile.TemporaryDirectory(prefix="newnames-") as tmp:
            for r in range(ctx.runs):
                for i, (name, extra) in enumerate(CONFIGS):
                    prefix = f"bench.cont.nn{r}x{i}"
                    got = one(ctx, intake, Path(tmp), name, extra, prefix, names, rate)
                    log(f"newnames: {name}, round {r + 1}: sent {got['sent']}, counted {got['counted']}, "
                        f"loss {got['loss']:.4%}, sender {got['rate']:.0f}/s, drops {got['drops']}")
                    res[name].append(got)
    finally:
        intake.close()
    return res


def run(ctx) -> str:
    res = measure(ctx)
    rows = []
    for name, _ in CONFIGS:
        rs = res[name]
        rows.append([name, f"{fmt(median([r['sent'] for r in rs]))}",
                     " / ".join(f"{r['loss'] * 100:.3f} %" for r in rs),
                     f"{median([r['loss'] for r in rs]) * 100:.3f} %",
                     "; ".join(sorted({str(r['drops']) for r in rs}))])
    return (f"## {TITLE}\n\n"
            f"{NAMES:,} distinct counter names, one line per datagram, sent once each at {RATE:,}/s "
            "(`bench_udp_load --mpd 1 --counters P --contexts 100000 --corpus 100000`), to the CLI, which "
            "is then stopped with SIGTERM; loss = lines sent that did not reach the intake. "
            f"{ctx.runs} rounds, configurations alternating. Reproduce alone: "
            "`python bench/newnames.py --build build-bench`.\n\n"
            + table(["configuration", "lines sent", "loss per round", "median loss", "drops the CLI logged"], rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    build = Path(args.build)
    if not build.is_absolute():
        build = common.REPO / build
    ctx = common.Ctx(build=build, python=sys.executable, runs=args.runs)
    t0 = time.monotonic()
    print(run(ctx))
    log(f"newnames: {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
