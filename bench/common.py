"""Shared helpers of the benchmark sections run by scripts/bench (bench/run.py).

A section is a module in bench/ with `TITLE` and `run(ctx) -> str` returning Markdown (its own
`## ` heading, a sentence on what is measured, the command that reproduces it alone, a table).
Every figure is the median of `ctx.runs` runs made in this process's run; a figure measured
against a peer is a row `figure | ours | peer | peer's value | ratio`, the ratio written so that
above 1 means we lead (ours/peer for a rate, peer/ours for a cost).

Also shared by the sections that run whole processes (contention, egress, sigterm, ingest, traces,
footprint): the Rust binary's path (RUST) and environment (rust_env), ours' (cli_env), free
loopback ports, waits for a bound UDP port or an accepting TCP one, /proc readings (RSS, CPU,
a UDP socket's queue and drops), and CountingIntake, a Datadog intake in the bench process.
"""
from __future__ import annotations

import json as _json
import os
import platform
import re
import shutil
import socket as _socket
import statistics
import subprocess
import sys
import threading as _threading
import time as _time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler as _Handler, ThreadingHTTPServer as _Server
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Ctx:
    build: Path                    # CMake build dir with the benches (RelWithDebInfo)
    python: str                    # the venv's interpreter (package, msgpack, ddapm-test-agent)
    runs: int = 5                  # medians over this many runs
    quick: bool = False            # shorter runs, for trying the script out
    peers: Path = REPO / "bench" / ".peers"   # npm peers (statsd) installed by scripts/bench
    notes: list[str] = field(default_factory=list)

    def exe(self, name: str) -> str:
        return str(self.build / name)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def lead(ours, peer, higher_is_better=True):
    """Ratio written so that > 1 means we lead."""
    if ours is None or peer is None or ours == 0 or peer == 0:
        return None
    return ours / peer if higher_is_better else peer / ours


def fmt(x, digits=3):
    """Numbers with a sensible number of significant digits and thousands separators."""
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    ax = abs(x)
    if ax >= 1e4:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.{digits}g}"


def ratio(x):
    return "n/a" if x is None else f"**{x:.2f}x**"


def table(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        out.append("| " + " | ".join(fmt(c) for c in r) + " |")
    return "\n".join(out) + "\n"


def sh(cmd, **kw) -> str:
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, capture_output=True, text=True, **kw).stdout


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    virt = ""
    if shutil.which("systemd-detect-virt"):
        v = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True).stdout.strip()
        virt = f", {v} guest" if v and v != "none" else ""
    osrel = ""
    try:
        m = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text())
        osrel = m.group(1) if m else ""
    except OSError:
        pass
    gcc = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    node = shutil.which("node") and subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    return (f"{os.cpu_count()} x {cpu}{virt}, {mem_gib:.0f} GiB, {osrel}, kernel {platform.release()}, "
            f"gcc {gcc} (-O2 -g), Python {platform.python_version()}, Node.js {node or 'absent'}; "
            f"load average {load:.2f} when the run started")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- peers and processes shared by the sections that run CLIs (contention, egress, sigterm, ...) ----

# The Rust binary Datadog ships (see /work/shared/peers/README.md): for benchmarks only.
RUST = REPO.parent / "shared" / "peers" / "datadog-serverless-compat-rust"
if not RUST.exists():
    RUST = Path("/work/shared/peers/datadog-serverless-compat-rust")
RUST_CONTEXT_LIMIT = 10_240
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port(kind=_socket.SOCK_DGRAM) -> int:
    with _socket.socket(_socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_socket_state(port: int, any_address: bool = False):
    """(rx_queue bytes, drops) of the UDP socket bound to 127.0.0.1:port (any address with
    any_address: the Rust binary binds 0.0.0.0), from /proc/net/udp; (None, None) if none."""
    try:
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            f = line.split()
            if f[1] == f"0100007F:{port:04X}" or (any_address and f[1].endswith(f":{port:04X}")):
                return int(f[4].split(":")[1], 16), int(f[-1])
    except (OSError, IndexError, ValueError):
        pass
    return None, None


def wait_udp_bound(port, timeout=15.0) -> bool:
    """Until something is bound to UDP port (any address), from /proc/net/udp."""
    end = _time.monotonic() + timeout
    while _time.monotonic() < end:
        if udp_socket_state(port, any_address=True)[0] is not None:
            return True
        _time.sleep(0.05)
    return False


def wait_tcp_accepting(port, timeout=15.0) -> bool:
    end = _time.monotonic() + timeout
    while _time.monotonic() < end:
        try:
            with _socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            _time.sleep(0.05)
    return False


def proc_rss(pid: int) -> int | None:
    """VmRSS of a process in bytes, from /proc/<pid>/status."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def proc_cpu(pid: int) -> float | None:
    """utime + stime of a process (all its threads) in seconds, from /proc/<pid>/stat."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def base_env(**extra) -> dict:
    """PATH and nothing else (no DD_* from the caller), plus extra."""
    env = {"PATH": os.environ.get("PATH", ""), "NO_PROXY": "127.0.0.1,localhost"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def cli_env(intake_url: str, udp_port: int, trace_port: int | None = None, **extra) -> dict:
    """Ours (build-bench/datadog-serverless-compat): metrics and traces to intake_url."""
    env = base_env(DD_API_KEY="bench-key", DD_DD_URL=intake_url, DD_APM_DD_URL=intake_url,
                   DD_DOGSTATSD_PORT=udp_port, DD_LOG_LEVEL="warn")
    if trace_port is None:
        env["DD_APM_ENABLED"] = "false"
    else:
        env["DD_APM_RECEIVER_PORT"] = str(trace_port)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def rust_env(intake_url: str, udp_port: int, trace_port: int, **extra) -> dict:
    """The Rust binary: the one cloud variable it needs (Azure Spring Apps), metrics (DD_DD_URL,
    the peer build's patch) and traces (DD_APM_DD_URL) to intake_url. It binds 0.0.0.0:udp_port
    whatever we ask: we send to 127.0.0.1 only."""
    env = base_env(ASCSVCRT_SPRING__APPLICATION__NAME="bench", DD_API_KEY="bench-key", DD_DD_URL=intake_url,
                   DD_APM_DD_URL=intake_url, DD_DOGSTATSD_PORT=udp_port, DD_APM_RECEIVER_PORT=trace_port,
                   DD_LOG_LEVEL="error")
    env.update({k: str(v) for k, v in extra.items()})
    return env


class CountingIntake:
    """A Datadog intake on 127.0.0.1 in this process, answering 202 to everything, that decodes
    every payload as Datadog would (tests/intake's codec: zstd/gzip/deflate, protobuf by path;
    series also as JSON, which the Rust binary sends) and counts, per path: requests, bytes on
    the wire (the body as sent), bytes decompressed, encodings seen, decode errors. Series
    counters whose name starts with `count_prefix` are summed per name minus its last component
    (DogStatsD counts arrive as rates over their interval and are multiplied back), for end-to-end
    loss. Series points and zero-valued points, sketches and their sample counts, trace chunks
    and spans are counted too."""

    def __init__(self, count_prefix: str = "bench.cont."):
        sys.path.insert(0, str(REPO))
        from tests.intake import codec

        self.codec = codec
        self.count_prefix = count_prefix
        self.lock = _threading.Lock()
        self.totals: dict[str, float] = {}
        self.paths: dict[str, dict] = {}
        self.requests = 0
        self.errors: list[str] = []
        intake = self

        class H(_Handler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    intake._record(self.path.split("?")[0], body, self.headers.get("Content-Encoding"),
                                   self.headers.get("Content-Type"))
                except Exception as e:  # counted as an error, answered 202 all the same
                    with intake.lock:
                        intake.errors.append(f"{self.path}: {e!r}"[:300])
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_PUT = do_POST

        class S(_Server):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a sender killed mid-request (the Rust binary at the end of a run): nothing to report

        self.srv = S(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        _threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def _record(self, path, body, encoding, ctype):
        st = {"requests": 1, "wire": len(body), "plain": 0, "points": 0, "zero_points": 0, "series": 0,
              "sketches": 0, "sketch_samples": 0, "chunks": 0, "spans": 0}
        with self.lock:
            self.requests += 1
            p = self.paths.setdefault(path, {k: 0 for k in st} | {"encodings": set(), "types": set()})
            p["requests"] += 1
            p["wire"] += len(body)
            p["encodings"].add(encoding or "identity")
            p["types"].add((ctype or "").split(";")[0])
        plain = self.codec.decompress(body, encoding)
        with self.lock:
            p["plain"] += len(plain)
        add: dict[str, float] = {}
        c = {k: 0 for k in ("points", "zero_points", "series", "sketches", "sketch_samples", "chunks", "spans")}
        if path.endswith("/api/v2/series"):
            if "json" in (ctype or ""):
                series = _json.loads(plain)["series"]
            else:
                series = self.codec.ROUTES["/api/v2/series"].decode(plain)["series"]
            for s in series:
                c["series"] += 1
                c["points"] += len(s["points"])
                c["zero_points"] += sum(1 for pt in s["points"] if float(pt.get("value") or 0) == 0)
                name = s["metric"]
                if not name.startswith(self.count_prefix):
                    continue
                key = name.rsplit(".", 1)[0]
                typ = str(s.get("type"))
                interval = float(s.get("interval") or 0)
                mult = interval if typ in ("2", "RATE", "rate") and interval else 1.0
                add[key] = add.get(key, 0.0) + sum(float(pt.get("value") or 0) for pt in s["points"]) * mult
        elif path.endswith("/api/beta/sketches"):
            for sk in self.codec.ROUTES["/api/beta/sketches"].decode(plain)["sketches"]:
                c["sketches"] += 1
                for d in sk.get("dogsketches") or []:
                    c["sketch_samples"] += int(d.get("cnt") or 0)
        elif path.endswith("/api/v0.2/traces"):
            for tp in self.codec.ROUTES["/api/v0.2/traces"].decode(plain).get("tracerPayloads") or []:
                for ch in tp.get("chunks") or []:
                    c["chunks"] += 1
                    c["spans"] += len(ch.get("spans") or [])
        elif path in self.codec.ROUTES:
            self.codec.ROUTES[path].decode(plain)
        with self.lock:
            for k, v in c.items():
                p[k] += v
            for k, v in add.items():
                self.totals[k] = self.totals.get(k, 0.0) + v

    def total(self, prefix) -> int:
        with self.lock:
            return round(self.totals.get(prefix, 0.0))

    def snapshot(self) -> dict:
        """A copy of the per-path counts (and resets nothing)."""
        with self.lock:
            return {k: dict(v, encodings=sorted(v["encodings"]), types=sorted(v["types"])) for k, v in self.paths.items()}

    def reset(self):
        with self.lock:
            self.paths.clear()
            self.totals.clear()
            self.errors.clear()
            self.requests = 0

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
