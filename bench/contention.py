"""DogStatsD under CPU contention (issue 12): in a function the host's own code is the CPU hog.
Two busy processes at normal priority keep both cores busy while 1-metric datagrams arrive at
50k, 100k and 200k/s; loss is counted end to end: what reached an intake against what was sent.

Receivers, one at a time, alternating within each round (each a process of its own):
  - ours: the CLI (`datadog-serverless-compat`), default configuration: a receive thread per
    socket and its 4 MiB queue, SO_RCVBUF asked 4 MiB (the kernel caps it at rmem_max);
  - ours, kernel-default socket buffer: the same with DD_DOGSTATSD_SO_RCVBUF=106496 (the kernel
    doubles it: 212,992 bytes, its default), so the queue alone is measured, as on a host whose
    rmem_max is the default (AWS Lambda's is not documented);
  - ours before: DD_DOGSTATSD_QUEUE_BYTES=0 (no receive thread, the loop reads the socket, as
    before this change) and the default socket buffer as before it;
  - the Rust binary Datadog ships (/work/shared/peers, see its README), kernel-default buffer;
  - npm statsd 0.9.0 (Etsy's daemon): no intake, its own `metrics_received` counter instead.
The CLI and the Rust binary send to a counting intake in this process (zstd JSON or protobuf
series; DogStatsD counts arrive as rates over 10 s intervals and are multiplied back). Ours is
stopped with SIGTERM (final flush); the Rust binary has no SIGTERM flush, so it is waited for
until two flushes after the load (its interval is 10 s) and then killed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import common
from common import fmt, log, median, table

TITLE = "DogStatsD under CPU contention"
RATES = [50000, 100000, 200000]
CONTEXTS = 100
RUST = common.RUST
HOG = "while :; do :; done"
# The kernel doubles what SO_RCVBUF asks: this gives its default, 212,992 bytes.
KERNEL_DEFAULT_ASK = 106496


# The counting intake, free_port and wait_udp_bound are common.py's (shared with egress, sigterm).
CountingIntake, free_port, wait_udp_bound = common.CountingIntake, common.free_port, common.wait_udp_bound


def send(ctx, port, rate, seconds, prefix) -> dict:
    cmd = [ctx.exe("bench_udp_load"), "--port", str(port), "--rate", str(rate), "--duration", f"{seconds:g}",
           "--mpd", "1", "--contexts", str(CONTEXTS), "--counters", prefix]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    return json.loads(out.strip().splitlines()[-1])


class Hogs:
    """Two busy shell loops at normal priority, one per core."""

    def __enter__(self):
        self.ps = [subprocess.Popen(["sh", "-c", HOG]) for _ in range(os.cpu_count() or 2)]
        time.sleep(0.3)
        return self

    def __exit__(self, *a):
        for p in self.ps:
            p.kill()
        for p in self.ps:
            p.wait(5)


# ---- receivers -----------------------------------------------------------------------------------

class Cli:
    def __init__(self, ctx, intake, tmp, name, extra_env):
        self.name, self.ctx, self.intake, self.tmp, self.extra = name, ctx, intake, tmp, extra_env

    def run(self, rate, seconds, prefix) -> dict:
        port = free_port()
        env = {"PATH": os.environ.get("PATH", ""), "DD_API_KEY": "bench-contention-key", "DD_DD_URL": self.intake.url,
               "DD_DOGSTATSD_PORT": str(port), "DD_APM_ENABLED": "false", "DD_LOG_LEVEL": "warn"}
        env.update(self.extra)
        errf = open(self.tmp / f"{self.name.replace(' ', '_').replace(',', '')}.log", "w+")  # this run's lines only
        p = subprocess.Popen([self.ctx.exe("datadog-serverless-compat")], env=env, stdout=subprocess.DEVNULL,
                             stderr=errf)
        try:
            if not wait_udp_bound(port):
                raise RuntimeError(f"{self.name}: the CLI did not bind UDP {port}")
            with Hogs():
                sent = send(self.ctx, port, rate, seconds, prefix)
                p.send_signal(signal.SIGTERM)  # under contention too: the stop drains
                p.wait(30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        errf.seek(0)
        tail = errf.read()[-3000:]
        errf.close()
        drops = None
        for line in tail.splitlines():
            if "DogStatsD datagrams dropped:" in line:
                drops = line.split("dropped:", 1)[1].strip()
        return {"sent": sent["metrics"], "counted": self.intake.total(prefix), "rc": p.returncode, "drops": drops}


class Rust:
    name = "Rust binary"

    def __init__(self, ctx, intake, tmp):
        if not RUST.exists():
            raise RuntimeError(f"{RUST} not found")
        self.ctx, self.intake, self.tmp = ctx, intake, tmp

    def run(self, rate, seconds, prefix) -> dict:
        port = free_port()
        env = {"PATH": os.environ.get("PATH", ""), "ASCSVCRT_SPRING__APPLICATION__NAME": "bench",
               "DD_API_KEY": "bench-contention-key", "DD_DD_URL": self.intake.url, "DD_DOGSTATSD_PORT": str(port),
               "DD_APM_RECEIVER_PORT": str(free_port(socket.SOCK_STREAM)), "DD_LOG_LEVEL": "error"}
        errf = open(self.tmp / "rust.log", "a+")
        p = subprocess.Popen([str(RUST)], env=env, stdout=errf, stderr=subprocess.STDOUT)
        try:
            if not wait_udp_bound(port):
                raise RuntimeError("the Rust binary did not bind its UDP port")
            with Hogs():
                sent = send(self.ctx, port, rate, seconds, prefix)
            # No flush on SIGTERM: wait for its 10 s flushes to carry everything it aggregated
            # (the last bucket closes after the load; two flushes after it, then stable).
            end = time.monotonic() + 35
            last, stable_since = -1, time.monotonic()
            time.sleep(11)
            while time.monotonic() < end:
                n = self.intake.total(prefix)
                if n != last:
                    last, stable_since = n, time.monotonic()
                elif time.monotonic() - stable_since > 11:
                    break
                time.sleep(0.5)
        finally:
            p.kill()
            p.wait(5)
        errf.close()
        return {"sent": sent["metrics"], "counted": self.intake.total(prefix), "rc": None, "drops": None}


class StatsdPeer:
    name = "statsd"

    def __init__(self, ctx, tmp):
        import ingest  # its Statsd wrapper: installs and starts the daemon, reads its counters

        self.s = ingest.Statsd(ctx, tmp)
        self.version = self.s.version
        self.ctx = ctx

    def run(self, rate, seconds, prefix) -> dict:
        import ingest

        s0 = self.s.snapshot()
        with Hogs():
            sent = send(self.ctx, self.s.port, rate, seconds, prefix)
            ingest.wait_socket_empty(self.s.port, 20)
        s1 = self.s.snapshot()
        return {"sent": sent["metrics"], "counted": s1["metrics"] - s0["metrics"], "rc": None,
                "drops": f"{s1['drops'] - s0['drops']} kernel drops" if s1["drops"] is not None else None}

    def stop(self):
        self.s.stop()


# ---- the section ----------------------------------------------------------------------------------

def run(ctx) -> str:
    seconds = 3.0 if ctx.quick else 10.0
    runs = 1 if ctx.quick else max(1, min(ctx.runs, 3))
    tmp = Path(tempfile.mkdtemp(prefix="dds-bench-contention-"))
    intake = CountingIntake()
    notes = []
    receivers = [
        Cli(ctx, intake, tmp, "ours", {}),
        Cli(ctx, intake, tmp, "ours, kernel-default socket buffer", {"DD_DOGSTATSD_SO_RCVBUF": str(KERNEL_DEFAULT_ASK)}),
        Cli(ctx, intake, tmp, "ours before (no receive thread)",
            {"DD_DOGSTATSD_QUEUE_BYTES": "0", "DD_DOGSTATSD_SO_RCVBUF": str(KERNEL_DEFAULT_ASK)}),
    ]
    try:
        receivers.append(Rust(ctx, intake, tmp))
    except Exception as e:
        notes.append(f"The Rust binary could not be run: {e}.")
    statsd = None
    try:
        statsd = StatsdPeer(ctx, tmp)
        receivers.append(statsd)
    except Exception as e:
        notes.append(f"npm statsd could not be run: {e}.")
        log(f"contention: statsd: {e}")
    results: dict[tuple[str, int], list[dict]] = {}
    seq = 0
    try:
        for i in range(runs):
            for rate in RATES:
                for r in receivers:
                    seq += 1
                    prefix = f"bench.cont.r{seq}"
                    m = r.run(rate, seconds, prefix)
                    m["loss"] = 1 - m["counted"] / m["sent"] if m["sent"] else None
                    results.setdefault((r.name, rate), []).append(m)
                    log(f"contention: run {i + 1} {rate:>7,}/s {r.name:38s} sent {m['sent']:>9,} counted "
                        f"{m['counted']:>9,} loss {100 * m['loss']:6.3f} %" + (f" ({m['drops']})" if m["drops"] else ""))
    finally:
        if statsd:
            statsd.stop()
        intake.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if intake.errors:
        notes.append(f"The intake could not decode {len(intake.errors)} payload(s): {intake.errors[0]}.")

    def loss(name, rate):
        return median([m["loss"] for m in results.get((name, rate), [])])

    def all_losses(name, rate):
        return ", ".join(f"{100 * m['loss']:.3f}" for m in results.get((name, rate), []))

    names = [r.name for r in receivers]
    rows = []
    for rate in RATES:
        for n in names:
            rows.append([f"{rate:,}", n, pct(loss(n, rate)), all_losses(n, rate),
                         fmt(median([m["sent"] for m in results.get((n, rate), [])]))])
    cmp_rows = []
    for rate in RATES:
        o, rs = loss("ours", rate), loss("Rust binary", rate)
        ok = loss("ours, kernel-default socket buffer", rate)
        cmp_rows.append([f"{rate:,}", pct(o), pct(ok), pct(loss("ours before (no receive thread)", rate)), pct(rs),
                         pct(loss("statsd", rate)),
                         "n/a" if o is None or rs is None else ("yes" if o < rs or (o == 0 and rs == 0) else "no")])
    o100 = loss("ours", 100000)
    tgt = [f"- ours <= 0.1 % at 100k/s: {pct(o100)}, **{'met' if o100 is not None and o100 <= 0.001 else 'not met'}**",
           "- lower than the Rust binary at every rate: **"
           + ("met" if all(r[-1] == "yes" for r in cmp_rows) else "not met") + "**"]
    alone = [(rate, loss("ours, kernel-default socket buffer", rate), loss("Rust binary", rate)) for rate in RATES]
    tgt.append("- the queue alone (kernel-default socket buffer) against the Rust binary: "
               + "; ".join(f"{rate // 1000}k/s {pct(a)} against {pct(b)}" for rate, a, b in alone))
    text = [
        f"## {TITLE}\n",
        f"Two busy processes (`sh -c '{HOG}'`, normal priority, one per core) keep both cores busy while "
        f"`bench_udp_load --mpd 1 --counters` sends one counter line per datagram (`bench.cont.rN.c<i>:1|c`, "
        f"{CONTEXTS} contexts, ~22 bytes) at each rate for {seconds:g} s. Loss = 1 - counted/sent, counted end to end: "
        "the counter values that reached a counting intake (ours: stopped with SIGTERM, which drains and flushes; "
        "the Rust binary: waited for until two of its 10 s flushes after the load), and for statsd its own "
        "`metrics_received` (it has no intake). Receivers alternate within each round; median of "
        f"{runs} round(s) (every round's figure listed). `ours` is the default configuration: a receive thread "
        "per socket filling a 4 MiB queue, and SO_RCVBUF asked 4 MiB, which the kernel caps at "
        f"net.core.rmem_max ({rmem_max()} bytes here); `kernel-default socket buffer` leaves the socket at the "
        "kernel's 212,992 bytes so the queue alone is measured; `before` is the previous design (the loop thread "
        "reads and parses; kernel-default buffer). Reproduce: `python bench/run.py --only contention`.\n",
        table(["datagrams/s", "ours", "ours, kernel-default socket buffer", "ours before", "Rust binary",
               "statsd (received)", "ours lower than Rust"], cmp_rows),
        "Every run (loss %):\n",
        table(["datagrams/s", "receiver", "median loss", "each round, %", "sent (median)"], rows),
        "Targets:\n",
        "\n".join(tgt) + "\n",
    ]
    if notes:
        text.append("Notes: " + " ".join(notes) + "\n")
    return "\n".join(text)


def rmem_max() -> str:
    try:
        return f"{int(Path('/proc/sys/net/core/rmem_max').read_text()):,}"
    except OSError:
        return "unknown"


def pct(x):
    return None if x is None else f"{100 * x:.3f} %"
