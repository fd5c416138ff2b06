"""Trace ingest: our trace decoder against the msgpack C unpacker on the same bytes, and our trace
agent against the Datadog test agent over loopback with the same client and payloads.

Run alone: python bench/run.py --only traces [--runs 5] [--quick]

Decode: bench_trace_decode (C, one core) decodes v0.4, v0.5 and v0.7 bodies of ~1000 spans and
dumps the exact bytes (--dump); this module then times `msgpack.unpackb(body)` (msgpack's C
extension) on those files in a child interpreter (`python bench/traces.py msgpack-peer DIR MS`).
The two alternate run by run, so a load change on the machine hits both.

HTTP: bench_trace_load (C, epoll, keep-alive) PUTs the same v0.4 body to /v0.4/traces over N
connections for a bounded time, against datadog-serverless-compat (intake at a closed local port)
and against ddapm-test-agent, each in its own process started and stopped here.
"""
from __future__ import annotations

import gc
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import REPO, fmt, lead, log, median, ratio, table  # noqa: E402

TITLE = "Trace ingest"

TESTAGENT_VENV = REPO / "bench" / ".venv-testagent"
REQUIREMENTS = REPO / "bench" / "requirements.txt"
CONNS = 4
HTTP_CASES = [  # label, spans per trace, traces: the bodies of bench_trace_http
    ("~10 KB", 10, 2),
    ("~1 MB", 100, 19),
]
TARGET_MBPS = 1000.0   # v0.4 decode >= 1 GB/s
TARGET_VS_MSGPACK = 20.0


# ---- helpers -------------------------------------------------------------------------------------

def _pins() -> tuple[str, str]:
    """(msgpack pin, ddapm-test-agent pin) from bench/requirements.txt."""
    text = REQUIREMENTS.read_text()
    mp = re.search(r"^(msgpack==\S+)", text, re.M)
    ta = re.search(r"^#\s*testagent:\s*(ddapm-test-agent==\S+)", text, re.M)
    if not mp or not ta:
        raise RuntimeError(f"{REQUIREMENTS} lacks the msgpack pin or the '# testagent:' line")
    return mp.group(1), ta.group(1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(**extra) -> dict:
    """The environment without DD_* (a DD_TRACE_AGENT_URL would make the test agent forward)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env.update(extra)
    return env


def _run_json(cmd, timeout) -> list[dict]:
    out = subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, timeout=timeout).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _testagent_exe(ctx) -> tuple[Path, str]:
    """ddapm-test-agent from its own venv (bench/.venv-testagent), installed when missing."""
    mp_pin, ta_pin = _pins()
    want = ta_pin.split("==", 1)[1]
    exe = TESTAGENT_VENV / "bin" / "ddapm-test-agent"

    def version():
        if not exe.exists():
            return None
        r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
        return r.stdout.strip() if r.returncode == 0 else None

    if version() != want:
        log(f"traces: installing {ta_pin} into {TESTAGENT_VENV.relative_to(REPO)}")
        if not (TESTAGENT_VENV / "bin" / "python").exists():
            subprocess.run([ctx.python, "-m", "venv", str(TESTAGENT_VENV)], check=True, timeout=300)
        (TESTAGENT_VENV / ".gitignore").write_text("*\n")  # the venv never goes into git
        subprocess.run([str(TESTAGENT_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        ta_pin, mp_pin], check=True, timeout=600)
        if version() != want:
            raise RuntimeError(f"{exe} --version is not {want} after the install")
    return exe, want


class Server:
    """A server process on 127.0.0.1: started, waited for (GET /info answers 200), stopped."""

    def __init__(self, name, cmd, env, cwd, port, logdir: Path, stop_grace: float):
        self.name, self.port, self.stop_grace = name, port, stop_grace
        self.logpath = logdir / f"{name}.log"
        self._log = open(self.logpath, "wb")
        self.proc = subprocess.Popen([str(c) for c in cmd], env=env, cwd=cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/info", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not serve /info on 127.0.0.1:{self.port}:\n{self.tail()}")

    def tail(self, n=20) -> str:
        self._log.flush()
        try:
            return "\n".join(self.logpath.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                # Ours retries its payloads to the closed intake port until its 5 s stop deadline:
                # nothing to wait for in a benchmark.
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


# ---- the msgpack peer (runs in a child interpreter: python bench/traces.py msgpack-peer DIR MS) ----

def msgpack_peer(dirname: str, round_ms: float) -> int:
    import msgpack
    c_ext = msgpack.Unpacker.__module__ == "msgpack._cmsgpack" and msgpack.unpackb.__module__ == "msgpack._cmsgpack"
    print(json.dumps({"msgpack_version": ".".join(map(str, msgpack.version)), "c_extension": c_ext,
                      "python": sys.version.split()[0]}), flush=True)
    if not c_ext:
        return 3
    round_s = round_ms / 1000.0
    for path in sorted(Path(dirname).glob("*.msgpack")):
        body = path.read_bytes()
        # v0.5 meta maps have integer keys (string-table indexes): the test agent passes the same flag.
        kw = {"strict_map_key": False} if path.name.startswith("v05") else {}
        unpackb = msgpack.unpackb
        unpackb(body, **kw)
        gc.disable()  # the peer's best case: no collection while timing (it changes little)
        try:
            rates = []
            for r in range(2):  # round 0 warms up
                n, t0 = 0, time.perf_counter()
                deadline = t0 + round_s
                while True:
                    for _ in range(4):
                        unpackb(body, **kw)  # each result dropped at once: decode + free, as a server does
                    n += 4
                    t = time.perf_counter()
                    if t >= deadline:
                        break
                if r:
                    rates.append(len(body) * n / (t - t0) / 1e6)
        finally:
            gc.enable()
        print(json.dumps({"file": path.name, "bytes": len(body), "mb_s": rates[-1]}), flush=True)
    return 0


# ---- decode --------------------------------------------------------------------------------------

def _decode(ctx, tmp: Path, round_ms: float):
    bodies = tmp / "bodies"
    bodies.mkdir()
    ours: dict[str, list] = {}
    peer: dict[str, list] = {}
    meta: dict[str, dict] = {}
    peer_info = None
    for run in range(ctx.runs):
        for row in _run_json([ctx.exe("bench_trace_decode"), 1, round_ms, "--json", "--dump", bodies], timeout=120):
            ours.setdefault(row["file"], []).append(row["mb_s"])
            meta[row["file"]] = row
        rows = _run_json([ctx.python, Path(__file__).resolve(), "msgpack-peer", bodies, round_ms], timeout=120)
        peer_info = rows[0]
        if not peer_info.get("c_extension"):
            raise RuntimeError(f"msgpack's C extension is not in use: {peer_info}")
        for row in rows[1:]:
            if row["bytes"] != meta[row["file"]]["bytes"]:
                raise RuntimeError(f"{row['file']}: the peer read {row['bytes']} bytes, we decoded "
                                   f"{meta[row['file']]['bytes']}")
            peer.setdefault(row["file"], []).append(row["mb_s"])
        log(f"traces: decode run {run + 1}/{ctx.runs} done")
    out = []
    for name, m in meta.items():
        o, p = median(ours.get(name, [])), median(peer.get(name, []))
        out.append(dict(m, ours_mb_s=o, peer_mb_s=p, ours_spans_s=o and o * 1e6 / m["bytes"] * m["spans"],
                        peer_spans_s=p and p * 1e6 / m["bytes"] * m["spans"]))
    return out, peer_info


# ---- HTTP ----------------------------------------------------------------------------------------

def _load(ctx, port, per, ntraces, seconds, warmup):
    return _run_json([ctx.exe("bench_trace_load"), "--target", f"127.0.0.1:{port}", "--gen", f"{per},{ntraces}",
                      "--conns", CONNS, "--seconds", seconds, "--warmup", warmup, "--rounds", ctx.runs, "--json"],
                     timeout=warmup + seconds * ctx.runs + 60)


def _start_ours(ctx, tmp: Path) -> Server:
    port = _free_port()
    env = _clean_env(DD_API_KEY="bench-key", DD_USE_DOGSTATSD="false", DD_APM_RECEIVER_PORT=str(port),
                     DD_APM_DD_URL="http://127.0.0.1:9", DD_DD_URL="http://127.0.0.1:9",  # closed: the discard port
                     DD_LOG_LEVEL="off")
    return Server("datadog-serverless-compat", [ctx.exe("datadog-serverless-compat")], env, tmp, port, tmp,
                  stop_grace=1.0)


def _start_testagent(exe: Path, tmp: Path) -> Server:
    port, otlp_http, otlp_grpc = _free_port(), _free_port(), _free_port()
    cmd = [exe, "--host", "127.0.0.1", "--port", port, "--otlp-http-port", otlp_http, "--otlp-grpc-port", otlp_grpc,
           "--log-level", "WARNING"]
    # cwd: its default snapshot directory ("snapshots", unused here) is relative to it.
    return Server("ddapm-test-agent", cmd, _clean_env(), tmp, port, tmp, stop_grace=10.0)


def _start_rust(tmp: Path) -> Server:
    """The Rust binary Datadog ships (/work/shared/peers): trace intake at the same closed port as
    ours; it binds DogStatsD on 0.0.0.0 (unused here)."""
    port = _free_port()
    env = common.rust_env("http://127.0.0.1:9", common.free_port(), port, DD_LOG_LEVEL="off")
    return Server("rust-binary", [common.RUST], env, tmp, port, tmp, stop_grace=2.0)


def _http(ctx, tmp: Path, seconds: float, warmup: float):
    ta_exe, ta_version = _testagent_exe(ctx)
    results = []
    for label, per, ntraces in HTTP_CASES:
        case = {"label": label}
        servers = [("ours", lambda: _start_ours(ctx, tmp)), ("peer", lambda: _start_testagent(ta_exe, tmp))]
        if common.RUST.exists():
            servers.append(("rust", lambda: _start_rust(tmp)))
        for who, start in servers:
            srv = start()
            try:
                srv.wait_ready()
                rows = _load(ctx, srv.port, per, ntraces, seconds, warmup)
            finally:
                srv.stop()
            if not rows:
                raise RuntimeError(f"bench_trace_load printed nothing against {srv.name}:\n{srv.tail()}")
            case[who] = {
                "req_s": median([r["req_s"] for r in rows]),
                "spans_s": median([r["spans_s"] for r in rows]),
                "mb_s": median([r["mb_s"] for r in rows]),
                "p50_ms": median([r["p50_ms"] for r in rows]),
                "p99_ms": median([r["p99_ms"] for r in rows]),
                "errors": sum(r["errors"] for r in rows),
                "requests": sum(r["requests"] for r in rows),
            }
            case["bytes"], case["spans"] = rows[0]["body_bytes"], rows[0]["spans"]
            log(f"traces: {label} {who}: {case[who]['req_s']:.0f} req/s, {case[who]['errors']} errors")
        results.append(case)
    return results, ta_version


# ---- the section ---------------------------------------------------------------------------------

def run(ctx) -> str:
    round_ms = 60 if ctx.quick else 150
    seconds, warmup = (0.7, 0.3) if ctx.quick else (2.0, 0.5)
    for exe in ("bench_trace_decode", "bench_trace_load", "datadog-serverless-compat"):
        if not Path(ctx.exe(exe)).exists():
            raise RuntimeError(f"{ctx.exe(exe)} is missing: build the benchmarks first (scripts/build {ctx.build.name})")
    tmp = Path(tempfile.mkdtemp(prefix="dds-bench-traces-"))
    try:
        dec, peer_info = _decode(ctx, tmp, round_ms)
        http, ta_version = _http(ctx, tmp, seconds, warmup)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    mp = f"msgpack {peer_info['msgpack_version']} `unpackb` (C ext.)"
    order = {"v0.4": 0, "v0.5": 1, "v0.7": 2}
    dec.sort(key=lambda d: (order[d["format"]], d["spans_per_trace"]))
    rows = []
    for d in dec:
        rows.append([f"decode {d['format']}, {d['spans_per_trace']} spans/trace, {d['bytes'] / 1024:.0f} KB: MB/s",
                     d["ours_mb_s"], mp, d["peer_mb_s"], ratio(lead(d["ours_mb_s"], d["peer_mb_s"]))])
    for d in dec:
        if d["spans_per_trace"] == 100:
            rows.append([f"decode {d['format']}, 100 spans/trace: spans/s", d["ours_spans_s"], mp, d["peer_spans_s"],
                         ratio(lead(d["ours_spans_s"], d["peer_spans_s"]))])
    ta = f"ddapm-test-agent {ta_version}"
    hrows = []
    for c in http:
        o, p = c["ours"], c["peer"]
        what = f"PUT /v0.4/traces {c['label']} ({c['bytes'] / 1024:.1f} KB, {c['spans']} spans)"
        hrows += [
            [f"{what}: requests/s", o["req_s"], ta, p["req_s"], ratio(lead(o["req_s"], p["req_s"]))],
            [f"{what}: spans/s", o["spans_s"], ta, p["spans_s"], ratio(lead(o["spans_s"], p["spans_s"]))],
            [f"{what}: latency p50 ms", o["p50_ms"], ta, p["p50_ms"], ratio(lead(o["p50_ms"], p["p50_ms"], False))],
            [f"{what}: latency p99 ms", o["p99_ms"], ta, p["p99_ms"], ratio(lead(o["p99_ms"], p["p99_ms"], False))],
            [f"{what}: errors (non-2xx, broken connections) of requests", f"{o['errors']} of {o['requests']}", ta,
             f"{p['errors']} of {p['requests']}", "n/a"],
        ]
        rs = c.get("rust")
        if rs:
            rb = "Rust binary"
            hrows += [
                [f"{what}: requests/s", o["req_s"], rb, rs["req_s"], ratio(lead(o["req_s"], rs["req_s"]))],
                [f"{what}: latency p50 ms", o["p50_ms"], rb, rs["p50_ms"], ratio(lead(o["p50_ms"], rs["p50_ms"], False))],
                [f"{what}: latency p99 ms", o["p99_ms"], rb, rs["p99_ms"], ratio(lead(o["p99_ms"], rs["p99_ms"], False))],
                [f"{what}: errors of requests", f"{o['errors']} of {o['requests']}", rb,
                 f"{rs['errors']} of {rs['requests']}", "n/a"],
            ]

    v04 = [d for d in dec if d["format"] == "v0.4"]
    low_mbps = min(d["ours_mb_s"] for d in v04)
    ratios = [lead(d["ours_mb_s"], d["peer_mb_s"]) for d in v04]
    low_ratio, high_ratio = min(ratios), max(ratios)
    met = lambda ok: "**met**" if ok else "**not met**"  # noqa: E731

    md = [f"## {TITLE}\n"]
    md.append(
        "Two measures of the trace mini-agent. **Decode**: `bench_trace_decode` decodes tracer bodies of ~1000 "
        "web-service spans (v0.4, v0.5, v0.7; 10, 100 and 1000 spans per trace) again and again on one core, and "
        "writes the exact bytes it decodes to files; a child Python process then times the peer, "
        f"`msgpack.unpackb(body)` ({mp}, Python {peer_info['python']}), on those files. Each run times every body "
        f"for {round_ms:g} ms after a warm-up round of the same length, ours then the peer's, run after run. "
        "**End to end**: `bench_trace_load` (C, epoll, keep-alive, one request in flight per connection) PUTs one "
        f"v0.4 body again and again over {CONNS} connections on 127.0.0.1, the same bytes and headers to each "
        f"server, for {seconds:g} s per run after {warmup:g} s of warm-up, against `datadog-serverless-compat` "
        f"(its own process, DogStatsD off, trace intake at a closed local port) and against {ta} (its own process, "
        "aiohttp, no checks enabled, log level WARNING, in its own venv `bench/.venv-testagent`) and against the "
        "Rust binary Datadog ships (`/work/shared/peers`, its own process, the one cloud variable it needs set, "
        "trace intake at the same closed local port as ours, logging off). The body's database spans all carry one "
        "SQL query (`bench/tracegen.h`): ours caches obfuscation results across requests, exactly (the query's "
        "bytes are compared), as the Go Agent does by default (`DD_APM_OBFUSCATION_CACHE_ENABLED`), so after the "
        "first request each is a hit; a workload of ever-new query texts pays the obfuscator for every span. "
        "Each figure is "
        f"the median of {ctx.runs} runs. Reproduce: `python bench/run.py --only traces` (the tools alone: "
        "`bench_trace_decode 5 150 --json --dump DIR`, `bench_trace_load --target 127.0.0.1:PORT --gen 100,19 "
        "--conns 4 --json`, or `--inproc` for an agent in the load tool's process).\n")
    md.append(
        f"Targets: v0.4 decode at least 1 GB/s: {met(low_mbps >= TARGET_MBPS)} (slowest v0.4 body "
        f"{fmt(low_mbps)} MB/s); at least {TARGET_VS_MSGPACK:g}x the msgpack unpacker on the same bytes: "
        f"{met(low_ratio >= TARGET_VS_MSGPACK)} ({low_ratio:.1f}x to {high_ratio:.1f}x on the v0.4 bodies).\n")
    md.append(table(["figure", "ours", "peer", "peer's value", "ratio"], rows))
    md.append(table(["figure", "ours", "peer", "peer's value", "ratio"], hrows))
    md.append(
        "What each side does, for a fair reading:\n\n"
        "- Our decoder validates every length against the bytes left, checks UTF-8, and builds span records "
        "(the structs that normalization then edits) in an arena reset between decodes; strings are not copied "
        "(they point into the body). `msgpack.unpackb` builds Python objects (dicts, lists, `str` decoded from "
        "UTF-8, ints, floats) and frees them when the next call drops the result: it decodes msgpack generically, "
        "it knows nothing of spans, and it does not check or normalize them. The peer runs with the garbage "
        "collector off while timing (its best case); v0.5 bodies need `strict_map_key=False` (integer map keys), "
        "as the test agent passes. Both decode one body again and again, so both run from warm caches.\n"
        "- End to end, ours answers each request after decoding, normalizing and encoding its spans into the "
        "pending protobuf payload (gzip'd as it grows, sent at each 3 s or 3.2 MB flush; sends fail at the closed port and are dropped when the "
        "retry queue is full): the production path without the network. The test agent decodes with the same "
        "msgpack, turns every span into a checked dict, formats each trace for its (filtered-out) INFO log, and "
        "keeps every request in memory for its test API; it normalizes nothing and sends nothing. It is a test "
        "tool (single-threaded Python), not a production agent: the production agents (the Go trace-agent, the "
        "Rust serverless mini-agent) are not measured against it; the Rust binary (the serverless mini-agent Datadog "
        "ships) is, in the rows marked so: it answers once the payload is decoded and queued, and sends its traces "
        "uncompressed every 3 s (here to the closed port). Client and server share the machine's 2 cores, "
        "and the machine was shared with other work during this run.\n")
    return "\n".join(md)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "msgpack-peer":
        sys.exit(msgpack_peer(sys.argv[2], float(sys.argv[3])))
    print("usage: traces.py msgpack-peer DIR ROUND_MS   (the section itself runs from bench/run.py)", file=sys.stderr)
    sys.exit(2)
