"""Egress: the bytes ours and the Rust binary send to the intake for one fixed workload.

    python bench/run.py --build build-bench --only egress [--runs 3] [--quick]

Each receiver (the CLI `datadog-serverless-compat` of build-bench, and the Rust binary of
/work/shared/peers) is started on its own with the same environment shape, metrics and traces
pointed at a counting intake in this process (common.CountingIntake: it decodes every payload as
Datadog would, and counts bytes per path on the wire and decompressed). The same workload goes to
both: `bench_udp_load` (the realistic mix of bench/dsdgen.h, 2000 contexts, datagrams packed to
8 KiB, a fixed seed) paced at RATE lines/s for LOAD_S seconds, and, in the same seconds, TRACE_REQS
PUTs of one ~10 KB v0.4 trace body (tracegen.h, `bench_trace_load --gen 10,2 --dump`), evenly
spaced. Both are then left idle until WINDOW_S seconds after their start (several 10 s flushes:
the Agent semantics make ours report every counter context as 0 for DD_DOGSTATSD_EXPIRY_SECONDS
after its last sample; those zero-filled series are counted, as they are sent), then ours gets
SIGTERM (its final flush is counted) and the Rust binary is killed (it has no signal handler;
it has flushed everything by then: its last flush of data is at about LOAD_S + 10 s).
"""
from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import common
from common import fmt, lead, log, median, ratio, table

TITLE = "Egress for a fixed workload"
CONTEXTS = 2000
SEED = "1"
METRIC_PATHS = ["/api/v2/series", "/api/beta/sketches"]
TRACE_PATHS = ["/api/v0.2/traces", "/api/v0.2/stats"]


def params(ctx) -> dict:
    if ctx.quick:
        return {"rate": 8000, "load_s": 5.0, "window_s": 24.0, "trace_reqs": 50}
    return {"rate": 8000, "load_s": 25.0, "window_s": 46.0, "trace_reqs": 250}


def trace_body(ctx, tmp: Path) -> Path:
    f = tmp / "trace_10kb.msgpack"
    # --dump writes the body before connecting; port 1 refuses, so the tool exits after the dump.
    subprocess.run([ctx.exe("bench_trace_load"), "--target", "127.0.0.1:1", "--gen", "10,2", "--dump", str(f)],
                   capture_output=True, timeout=60)
    if not f.exists() or f.stat().st_size == 0:
        raise RuntimeError("bench_trace_load --dump wrote no trace body")
    return f


def send_traces(port: int, body: bytes, n: int, seconds: float, out: dict):
    """n PUT /v0.4/traces of body on one keep-alive connection, evenly spaced over `seconds`."""
    ok = err = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t0 = time.monotonic()
    for i in range(n):
        due = t0 + i * seconds / n
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        try:
            conn.request("PUT", "/v0.4/traces", body=body, headers={
                "Content-Type": "application/msgpack", "X-Datadog-Trace-Count": "2",
                "Datadog-Meta-Lang": "python", "Datadog-Meta-Lang-Version": "3.11.7",
                "Datadog-Meta-Tracer-Version": "4.16.0"})
            r = conn.getresponse()
            r.read()
            ok += 200 <= r.status < 300
            err += not (200 <= r.status < 300)
        except (OSError, http.client.HTTPException):
            err += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    out.update(ok=ok, errors=err)


def wait_phase(phase_s: float):
    """Until the wall clock is phase_s seconds into a 10 s bucket (both aggregate into buckets
    aligned on multiples of 10 s of Unix time; the Rust binary flushes every 10 s from its start)."""
    now = time.time()
    wait = (phase_s - now % 10.0) % 10.0
    time.sleep(wait if wait > 0.05 else wait + 10.0)


def one(ctx, who: str, body: bytes, p: dict, tmp: Path, phase_s: float = 5.0) -> dict:
    intake = common.CountingIntake(count_prefix="\x00")  # nothing to sum by name here
    udp, tcp = common.free_port(), common.free_port(socket.SOCK_STREAM)
    logf = open(tmp / f"{who}.log", "w+")
    if who == "ours":
        cmd, env = [ctx.exe("datadog-serverless-compat")], common.cli_env(intake.url, udp, tcp)
    else:
        cmd, env = [str(common.RUST)], common.rust_env(intake.url, udp, tcp)
    wait_phase(phase_s)
    t_start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    traces = {}
    try:
        if not common.wait_udp_bound(udp) or not common.wait_tcp_accepting(tcp):
            raise RuntimeError(f"egress: {who} did not bind its ports")
        th = threading.Thread(target=send_traces, args=(tcp, body, p["trace_reqs"], p["load_s"], traces))
        th.start()
        out = subprocess.run([ctx.exe("bench_udp_load"), "--port", str(udp), "--rate", str(p["rate"]),
                              "--duration", f"{p['load_s']:g}", "--pack", "full", "--contexts", str(CONTEXTS),
                              "--seed", SEED], check=True, capture_output=True, text=True,
                             timeout=p["load_s"] + 60).stdout
        sent = json.loads(out.strip().splitlines()[-1])
        th.join(p["load_s"] + 60)
        rest = t_start + p["window_s"] - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        if who == "ours":
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            time.sleep(0.2)
        else:
            proc.kill()
            proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        intake.close()
    logf.seek(0)
    tail = logf.read()[-1500:]
    logf.close()
    snap = intake.snapshot()
    if intake.errors:
        raise RuntimeError(f"egress: the intake could not decode {who}'s payloads: {intake.errors[:2]}")
    return {"paths": snap, "lines": sent["metrics"], "send_errors": sent["send_errors"], "traces_ok": traces.get("ok"),
            "trace_errors": traces.get("errors"), "log": tail}


def run(ctx) -> str:
    p = params(ctx)
    runs = 1 if ctx.quick else max(1, min(ctx.runs, 3))
    if not common.RUST.exists():
        raise RuntimeError(f"{common.RUST} not found")
    tmp = Path(tempfile.mkdtemp(prefix="dds-bench-egress-"))
    res: dict[str, list[dict]] = {"ours": [], "rust": []}
    try:
        body = trace_body(ctx, tmp).read_bytes()
        for i in range(runs):
            phase = 10.0 * (i + 0.5) / runs  # the runs' start phases spread evenly over a bucket
            for who in ("ours", "rust"):
                r = one(ctx, who, body, p, tmp, phase)
                r["phase"] = phase
                res[who].append(r)
                m = sum(r["paths"].get(x, {}).get("wire", 0) for x in METRIC_PATHS)
                t = sum(r["paths"].get(x, {}).get("wire", 0) for x in TRACE_PATHS)
                log(f"egress: run {i + 1} {who:5s}: {r['lines']:,} lines, {r['traces_ok']} trace PUTs; metrics "
                    f"{m:,} B, traces {t:,} B on the wire; "
                    + ", ".join(f"{k} {v['requests']} req {v['wire']:,}/{v['plain']:,} B" for k, v in sorted(r["paths"].items())))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def fig(who, paths, key):
        return median([sum(r["paths"].get(x, {}).get(key, 0) for x in paths) for r in res[who]])

    rows = []
    for label, paths in [("series (`/api/v2/series`)", ["/api/v2/series"]),
                         ("sketches (`/api/beta/sketches`)", ["/api/beta/sketches"]),
                         ("**metrics, all**", METRIC_PATHS),
                         ("traces (`/api/v0.2/traces`)", ["/api/v0.2/traces"]),
                         ("trace stats (`/api/v0.2/stats`)", ["/api/v0.2/stats"])]:
        for key, what in [("wire", "bytes on the wire"), ("plain", "bytes decompressed")]:
            o, r = fig("ours", paths, key), fig("rust", paths, key)
            if not o and not r:
                continue
            rows.append([f"{label}: {what}", o, r, ratio(lead(o, r, higher_is_better=False))])
        o, r = fig("ours", paths, "requests"), fig("rust", paths, "requests")
        if o or r:
            rows.append([f"{label}: requests", o, r, ""])
    detail = []
    for who, name in (("ours", "ours"), ("rust", "Rust binary")):
        for path in sorted({k for r in res[who] for k in r["paths"]}):
            v = [r["paths"].get(path) for r in res[who] if r["paths"].get(path)]
            enc = ", ".join(sorted({e for x in v for e in x["encodings"]}))
            typ = ", ".join(sorted({e for x in v for e in x["types"]}))
            detail.append([name, f"`{path}`", f"{typ}; {enc}", median([x["requests"] for x in v]),
                           median([x["series"] for x in v]) or median([x["sketches"] for x in v]) or
                           median([x["chunks"] for x in v]),
                           median([x["points"] for x in v]) if path.endswith("series") else "",
                           median([x["zero_points"] for x in v]) if path.endswith("series") else "",
                           median([x["sketch_samples"] for x in v]) if path.endswith("sketches") else
                           (median([x["spans"] for x in v]) if path.endswith("traces") else "")])
    mo, mr = fig("ours", METRIC_PATHS, "wire"), fig("rust", METRIC_PATHS, "wire")
    per_run = ", ".join(
        f"{sum(o['paths'].get(x, {}).get('wire', 0) for x in METRIC_PATHS):,} against "
        f"{sum(r['paths'].get(x, {}).get('wire', 0) for x in METRIC_PATHS):,} B (start {o['phase']:.1f} s into a "
        f"10 s bucket: {lead(sum(o['paths'].get(x, {}).get('wire', 0) for x in METRIC_PATHS), sum(r['paths'].get(x, {}).get('wire', 0) for x in METRIC_PATHS), False):.3f}x)"
        for o, r in zip(res["ours"], res["rust"]))
    target = ("**met**" if mo is not None and mr is not None and mo <= mr else "**not met**")
    lines = median([r["lines"] for r in res["ours"] + res["rust"]])
    return "\n".join([
        f"## {TITLE}\n",
        "What each sends to Datadog for the same fixed workload: ours (the CLI `datadog-serverless-compat`, "
        "build-bench) and the Rust binary Datadog ships (`/work/shared/peers`, started with the one cloud variable "
        "it needs; it binds 0.0.0.0 for DogStatsD, we send to 127.0.0.1 only), one after the other, each pointed "
        "at a counting intake in the bench process that decodes every payload (zstd/gzip, protobuf; the Rust "
        "binary's series are JSON) and counts bytes per endpoint as received and decompressed. The workload: "
        f"`bench_udp_load --pack full --contexts {CONTEXTS} --seed {SEED} --rate {p['rate']} --duration "
        f"{p['load_s']:g}` (the realistic mix of `bench/dsdgen.h`, {fmt(lines)} lines, datagrams packed to 8 KiB) "
        f"and, over the same {p['load_s']:g} s, {p['trace_reqs']} evenly spaced PUT /v0.4/traces of one ~10 KB "
        f"body (2 traces of 10 spans, tracegen.h); then idle until {p['window_s']:g} s after the start (both flush "
        "metrics every 10 s, traces every 3 s), when ours is stopped with SIGTERM (its final flush counts) and "
        "the Rust binary is killed (no signal handler; it has flushed all its data by then). Ours reports every "
        "counter context as 0 on idle flushes for 300 s after its last sample (the Agent's "
        "`dogstatsd_expiry_seconds`), and those series are counted: like with like is the same window, "
        f"the same flushes. Median of {runs} run(s), ours and the Rust binary alternating, each run's pair started "
        "at the same phase of the 10 s bucket (run i of n at 10(i + 0.5)/n s into it); the machine (2 cores) "
        "was shared with other work, which changes no byte count; the start phase does (below). A ratio above 1 "
        "means we send fewer bytes. Reproduce: `python bench/run.py --only egress`.\n",
        table(["bytes (median)", "ours", "Rust binary", "ratio"], rows),
        "Per endpoint (median per run): requests, items (series, sketches or trace chunks), series points and "
        "how many of them are 0 (zero-filled idle counters, and samples of value 0), distribution samples in "
        "the sketches or spans in the traces:\n",
        table(["receiver", "endpoint", "Content-Type; encoding", "requests", "items", "points", "of them 0",
               "samples / spans"], detail),
        f"Target (issue 12): metrics egress at most the Rust binary's bytes: {target} "
        f"(ours {fmt(mo)} B, Rust binary {fmt(mr)} B on the wire, medians: {ratio(lead(mo, mr, False))}; run by run, "
        f"ours against the Rust binary: {per_run}).\n",
        "Why the start phase matters: both aggregate into 10 s buckets aligned on Unix time, but the Rust binary "
        "flushes every 10 s counted from its own start, each time everything it holds, the bucket still open "
        "included, as one series per context and bucket: under a steady load each flush carries two buckets of "
        "most contexts (the end of the one that closed and the start of the one still open), and how many "
        "buckets the load touches, and which flush carries them, depends on where in a bucket it starts. Ours "
        "flushes closed buckets only (and its final one at SIGTERM). The runs start at phases spread evenly over "
        "a bucket, as instances start at any time. The ratio depends on the shape of the workload: every idle "
        "flush within 300 s of a counter's last sample adds one zero-filled series per counter context to ours "
        "and nothing to the Rust binary's, so a short burst followed by idle flushes favours the Rust binary "
        "(bench/HISTORY.md has the `--quick` figures, 5 s of load in a 24 s window).\n",
    ])
