"""SIGTERM under load: what reaches the intake of what was sent, when the process is told to stop
while DogStatsD datagrams are still arriving (a function instance being shut down).

    python bench/run.py --build build-bench --only sigterm [--runs 3] [--quick]

Receivers, one at a time, alternating: ours (the CLI `datadog-serverless-compat`, default
configuration) and the Rust binary Datadog ships (no signal handler: SIGTERM's default action
ends it at once). Each gets `bench_udp_load --mpd 1 --counters PREFIX` (one counter line of value
1 per datagram, CONTEXTS contexts) at RATE datagrams/s for LOAD_S seconds, and SIGTERM the moment
the sender returns (what it sent last is still in the socket buffer or the receive queue). What
reached the counting intake (common.CountingIntake: counters summed per prefix, rates multiplied
back by their interval) is compared with what the sender sent; nothing is assumed.
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import tempfile
import shutil
import time
from pathlib import Path

import common
from common import fmt, log, median, table

TITLE = "SIGTERM under load"
RATE = 50000
CONTEXTS = 100


def one(ctx, who: str, intake, prefix: str, load_s: float, tmp: Path) -> dict:
    udp, tcp = common.free_port(), common.free_port(socket.SOCK_STREAM)
    if who == "ours":
        cmd, env = [ctx.exe("datadog-serverless-compat")], common.cli_env(intake.url, udp)
    else:
        cmd, env = [str(common.RUST)], common.rust_env(intake.url, udp, tcp)
    logf = open(tmp / f"{who}.log", "a+")
    proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        if not common.wait_udp_bound(udp):
            raise RuntimeError(f"sigterm: {who} did not bind UDP {udp}")
        out = subprocess.run([ctx.exe("bench_udp_load"), "--port", str(udp), "--rate", str(RATE), "--duration",
                              f"{load_s:g}", "--mpd", "1", "--contexts", str(CONTEXTS), "--counters", prefix],
                             check=True, capture_output=True, text=True, timeout=load_s + 60).stdout
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
        exit_ms = (time.monotonic() - t0) * 1e3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        logf.close()
    time.sleep(0.5)  # a request answered just before the exit is counted by now
    sent = json.loads(out.strip().splitlines()[-1])["metrics"]
    got = intake.total(prefix)
    return {"sent": sent, "got": got, "lost": 1 - got / sent if sent else None, "rc": rc, "exit_ms": exit_ms}


def run(ctx) -> str:
    load_s = 12.0 if ctx.quick else 15.0
    runs = 1 if ctx.quick else max(1, min(ctx.runs, 3))
    if not common.RUST.exists():
        raise RuntimeError(f"{common.RUST} not found")
    tmp = Path(tempfile.mkdtemp(prefix="dds-bench-sigterm-"))
    intake = common.CountingIntake(count_prefix="bench.term.")
    res: dict[str, list[dict]] = {"ours": [], "rust": []}
    try:
        seq = 0
        for i in range(runs):
            for who in ("ours", "rust"):
                seq += 1
                r = one(ctx, who, intake, f"bench.term.r{seq}", load_s, tmp)
                res[who].append(r)
                log(f"sigterm: run {i + 1} {who:5s}: sent {r['sent']:,}, reached the intake {r['got']:,} "
                    f"({100 * r['lost']:.2f} % lost), exit {r['rc']} after {r['exit_ms']:.0f} ms")
    finally:
        intake.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if intake.errors:
        raise RuntimeError(f"sigterm: the intake could not decode payloads: {intake.errors[:2]}")

    def f(who, k):
        return median([r[k] for r in res[who]])

    def each(who, k, scale=1.0, digits=2):
        return ", ".join(f"{scale * r[k]:.{digits}f}" for r in res[who])

    lo, lr = f("ours", "lost"), f("rust", "lost")
    rows = [
        ["metrics sent (median)", f("ours", "sent"), f("rust", "sent"), ""],
        ["reached the intake (median)", f("ours", "got"), f("rust", "got"), ""],
        ["lost, % (median)", f"{100 * lo:.3f} %", f"{100 * lr:.3f} %",
         "ours lose less" if lo < lr else ("both none" if lo == lr == 0 else "**ours lose more**")],
        ["lost, % (each run)", each("ours", "lost", 100, 3), each("rust", "lost", 100, 3), ""],
        ["SIGTERM to exit, ms (median)", f("ours", "exit_ms"), f("rust", "exit_ms"), ""],
        ["exit status", ", ".join(str(r["rc"]) for r in res["ours"]), ", ".join(str(r["rc"]) for r in res["rust"]),
         "negative: killed by that signal"],
    ]
    return "\n".join([
        f"## {TITLE}\n",
        "What a stop costs: the process gets SIGTERM while DogStatsD datagrams are still arriving, as a function "
        "instance is shut down. Ours (the CLI `datadog-serverless-compat`, build-bench, default configuration) and "
        "the Rust binary Datadog ships (`/work/shared/peers`; it binds 0.0.0.0, we send to 127.0.0.1 only) each "
        f"receive `bench_udp_load --mpd 1 --counters <prefix> --contexts {CONTEXTS} --rate {RATE} --duration "
        f"{load_s:g}` (one counter line of value 1 per datagram) and get SIGTERM the moment the sender returns; "
        "both send their metrics to a counting intake in the bench process, which sums the counter values that "
        "reach it (rates multiplied back by their interval). Lost = 1 - reached/sent. The Rust binary has no "
        "signal handler: what it had not flushed (it flushes every 10 s, so up to the last 10 s of load) is "
        "lost; ours drains its socket and queue, flushes and waits for the intake's answer before it exits. "
        f"Median of {runs} run(s), alternating, on a 2-core machine shared with other work (the exit time "
        "varies with it; the counts do not). Reproduce: `python bench/run.py --only sigterm`.\n",
        table(["figure", "ours", "Rust binary", ""], rows),
    ])
