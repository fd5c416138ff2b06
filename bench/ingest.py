"""DogStatsD ingest: our services against the npm `statsd` daemon and a bare recvmmsg loop (the
kernel's limit), all three receiving the same UDP load on 127.0.0.1 in one run.

Processes (all started here, all stopped in `finally`):
  - bench_udp_load (C, sendmmsg): the realistic line mix of bench/dsdgen.h, 2000 contexts,
    either 1 metric per datagram or datagrams packed up to 8192 bytes;
  - bench_udp_sink ours: dds_start (DogStatsD on 127.0.0.1, trace agent off, SO_RCVBUF the kernel
    default as the CLI leaves it), flushing for real to a minimal HTTP intake inside that process
    (its thread's CPU is taken out);
  - statsd 0.9.0 (Etsy's Node.js daemon, installed from bench/peers/ into bench/.peers/), no
    backend, counters read on its management port;
  - bench_udp_sink drain: recvmmsg in batches of 32, counting datagrams and lines.

Figures per receiver and datagram shape: metrics/s counted by the receiver over the sender's
elapsed time, loss (1 - counted/sent), CPU seconds per million metrics counted; (a) with the
generator at full speed, (b) the highest offered rate whose loss stays under 1 % (a geometric
sweep that stops at the first rate with >= 1 % loss or when the sender cannot offer the rate).
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import common
from common import fmt, lead, log, median, ratio, table

TITLE = "DogStatsD ingest"

CONTEXTS = 2000
SHAPES = [("1 metric/datagram", ["--mpd", "1"]), ("packed 8 KiB datagrams", ["--pack", "full"])]
LOSS_MAX = 0.01
CLK_TCK = os.sysconf("SC_CLK_TCK")
SHAPE_INFO = {}  # shape args -> (metrics per datagram, bytes per datagram), as the generator said


# ---- helpers ----------------------------------------------------------------------------------

def free_port(kind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_socket_state(port: int):
    """(rx_queue bytes, drops) of the UDP socket bound to 127.0.0.1:port, from /proc/net/udp."""
    want = f"0100007F:{port:04X}"
    try:
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            f = line.split()
            if f[1] == want:
                return int(f[4].split(":")[1], 16), int(f[-1])
    except (OSError, IndexError, ValueError):
        pass
    return None, None


def wait_socket_empty(port: int, timeout=10.0):
    """Until the receiver has read everything its socket holds (statsd: no other way to know)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        q, _ = udp_socket_state(port)
        if not q:
            return
        time.sleep(0.005)


# ---- receivers --------------------------------------------------------------------------------

class Sink:
    """bench_udp_sink ours|drain, driven on stdin."""

    def __init__(self, ctx, mode, tmp: Path):
        self.name = "ours" if mode == "ours" else "drain"
        self.errlog = open(tmp / f"sink-{mode}.log", "w+")
        # The bare loop gets the receive buffer ours asks by default (4 MiB, capped by rmem_max), so
        # that its losses measure its reading, not a smaller buffer.
        args = ["--rcvbuf", str(4 * 1024 * 1024)] if mode == "drain" else []
        self.p = subprocess.Popen([ctx.exe("bench_udp_sink"), mode, *args], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.errlog, text=True, bufsize=1)
        try:
            ready = self._readline(15)
            m = re.match(r"ready port=(\d+) rcvbuf=(-?\d+)", ready)
            if not m:
                raise RuntimeError(f"bench_udp_sink {mode}: unexpected '{ready}'")
        except BaseException:
            self.stop()
            raise
        self.port, self.rcvbuf = int(m.group(1)), int(m.group(2))

    def _readline(self, timeout) -> str:
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        line = self.p.stdout.readline() if r else ""
        if not line:
            self.errlog.seek(0)
            raise RuntimeError(f"bench_udp_sink {self.name}: no answer (exit {self.p.poll()}): {self.errlog.read()[-2000:]}")
        return line.strip()

    def snapshot(self) -> dict:
        self.p.stdin.write("stats\n")
        self.p.stdin.flush()
        s = json.loads(self._readline(30))
        if s.get("flush_rc"):
            log(f"ingest: bench_udp_sink {self.name}: dds_flush returned {s['flush_rc']}")
        _, drops = udp_socket_state(self.port)
        return {"metrics": s["metrics"], "datagrams": s["datagrams"], "bad": s["parse_errors"],
                "cpu": s["cpu_s"] - s["intake_cpu_s"], "drops": drops, "truncated": s["truncated"]}

    def stop(self):
        try:
            if self.p.poll() is None:
                self.p.stdin.write("quit\n")
                self.p.stdin.flush()
                self.p.wait(15)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        if not self.errlog.closed:
            self.errlog.close()


class Statsd:
    """Etsy's statsd daemon, no backend; counters through its management interface."""

    name = "statsd"

    def __init__(self, ctx, tmp: Path):
        node = shutil.which("node")
        stats_js = ctx.peers / "node_modules" / "statsd" / "stats.js"
        if not stats_js.exists():
            subprocess.run([str(common.REPO / "bench" / "peers" / "install.sh"), str(ctx.peers)], check=False,
                           capture_output=True, timeout=300)
        if not node or not stats_js.exists():
            raise RuntimeError("statsd peer not installed (node + bench/peers/install.sh)")
        self.version = json.loads((stats_js.parent / "package.json").read_text())["version"]
        self.port = free_port(socket.SOCK_DGRAM)
        self.mgmt = free_port(socket.SOCK_STREAM)
        while self.mgmt in (8125, 8126, self.port):
            self.mgmt = free_port(socket.SOCK_STREAM)
        conf = tmp / "statsd-config.js"
        # flushInterval: one hour (under setTimeout's 2^31 ms), so no flush resets the counters
        # during the run; backends: [] (no graphite); everything on 127.0.0.1.
        conf.write_text("{\n"
                        f"  port: {self.port}, address: \"127.0.0.1\",\n"
                        f"  mgmt_port: {self.mgmt}, mgmt_address: \"127.0.0.1\",\n"
                        "  backends: [], flushInterval: 3600000, automaticConfigReload: false\n"
                        "}\n")
        self.log = open(tmp / "statsd.log", "w+")
        self.p = subprocess.Popen([node, str(stats_js), str(conf)], stdout=self.log, stderr=subprocess.STDOUT,
                                  cwd=str(tmp))
        try:
            end = time.monotonic() + 20
            while True:
                if self.p.poll() is not None or time.monotonic() > end:
                    self.log.seek(0)
                    raise RuntimeError(f"statsd did not start: {self.log.read()[-2000:]}")
                try:
                    if "health: up" in self._mgmt("health", "\n", 2) and udp_socket_state(self.port)[0] is not None:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        self.rcvbuf = None

    def _mgmt(self, cmd, until="END\n\n", timeout=30.0) -> str:
        with socket.create_connection(("127.0.0.1", self.mgmt), timeout=timeout) as s:
            s.sendall(cmd.encode() + b"\n")
            buf = b""
            end = time.monotonic() + timeout
            while until.encode() not in buf and time.monotonic() < end:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
            return buf.decode("ascii", "replace")

    def _cpu(self) -> float:
        f = Path(f"/proc/{self.p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / CLK_TCK  # utime, stime (fields 14, 15)

    def snapshot(self) -> dict:
        wait_socket_empty(self.port)
        time.sleep(0.05)  # the last batch read is processed in the same tick: let it finish
        # The `counters` dump (every key, ~1 MB of text) costs statsd CPU of its own: the CPU time
        # is read before it (end of an interval) and after it (start of the next one).
        cpu = self._cpu()
        out = self._mgmt("counters")
        time.sleep(0.02)
        cpu_after = self._cpu()

        def counter(name):
            m = re.search(r"'statsd\." + name + r"': (\d+)", out)
            if not m:
                raise RuntimeError(f"statsd counters: no statsd.{name} in {out[:300]!r}")
            return int(m.group(1))

        _, drops = udp_socket_state(self.port)
        return {"metrics": counter("metrics_received"), "datagrams": counter("packets_received"),
                "bad": counter("bad_lines_seen"), "cpu": cpu, "cpu_next": cpu_after, "drops": drops, "truncated": 0}

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        if not self.log.closed:
            self.log.close()


class Rust:
    """The Rust binary Datadog ships (/work/shared/peers), DogStatsD only in use (its trace port is
    bound too), metrics flushed every 10 s to a closed local port. It has no counter of what it
    parsed, so what it received is what was sent less what its socket dropped (/proc/net/udp: it
    binds 0.0.0.0), read once its socket is empty; its CPU is /proc/<pid>/stat (all its threads,
    its 10 s flushes included)."""

    name = "Rust binary"
    counts_by_drops = True

    def __init__(self, ctx, tmp: Path):
        if not common.RUST.exists():
            raise RuntimeError(f"{common.RUST} not found")
        self.port = common.free_port()
        env = common.rust_env("http://127.0.0.1:9", self.port, common.free_port(socket.SOCK_STREAM))
        self.log = open(tmp / "rust.log", "w+")
        self.p = subprocess.Popen([str(common.RUST)], env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        if not common.wait_udp_bound(self.port):
            self.stop()
            raise RuntimeError("the Rust binary did not bind its UDP port")
        self.rcvbuf = None

    def snapshot(self) -> dict:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            q, _ = common.udp_socket_state(self.port, any_address=True)
            if not q:
                break
            time.sleep(0.005)
        time.sleep(0.05)  # what it read last is parsed by now
        _, drops = common.udp_socket_state(self.port, any_address=True)
        return {"metrics": 0, "datagrams": 0, "bad": None, "cpu": common.proc_cpu(self.p.pid), "drops": drops,
                "truncated": 0}

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()  # no signal handler: SIGTERM would do the same
            self.p.wait(10)
        if not self.log.closed:
            self.log.close()


# ---- measurements -----------------------------------------------------------------------------

def load(ctx, port, shape_args, seconds, rate=0.0) -> dict:
    cmd = [ctx.exe("bench_udp_load"), "--port", str(port), "--duration", f"{seconds:g}", "--rate", f"{rate:.0f}",
           "--contexts", str(CONTEXTS)] + shape_args
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(ctx, rcv, shape_args, seconds, rate=0.0) -> dict:
    s0 = rcv.snapshot()
    sent = load(ctx, rcv.port, shape_args, seconds, rate)
    s1 = rcv.snapshot()
    counted = s1["metrics"] - s0["metrics"]
    c0 = s0.get("cpu_next", s0["cpu"])
    el = sent["elapsed_s"]
    drops = None if s1["drops"] is None or s0["drops"] is None else s1["drops"] - s0["drops"]
    if getattr(rcv, "counts_by_drops", False):  # no counter of its own: sent less the socket's drops
        counted = round(sent["metrics"] - (drops or 0) * sent["avg_mpd"])
        s1 = dict(s1, datagrams=sent["datagrams"] - (drops or 0))
    SHAPE_INFO[tuple(shape_args)] = (sent["avg_mpd"], sent["avg_datagram_bytes"])
    return {
        "offered": rate, "sent_rate": sent["metrics"] / el if el else 0, "sent": sent["metrics"],
        "send_errors": sent["send_errors"], "rate": counted / el if el else 0,
        "loss": 1 - counted / sent["metrics"] if sent["metrics"] else None,
        "cpu_per_m": (s1["cpu"] - c0) / counted * 1e6 if counted else None,
        "cpu_share": (s1["cpu"] - c0) / el if el else None,
        "bad": None if s1["bad"] is None else s1["bad"] - s0["bad"], "counted": counted,
        "dgram_loss": 1 - (s1["datagrams"] - s0["datagrams"]) / sent["datagrams"] if sent["datagrams"] else None,
        "kernel_drops": drops, "truncated": s1["truncated"] - s0["truncated"],
    }


def sweep(ctx, rcv, shape_args, start_rate, step_s, factor, deadline, max_steps=10) -> dict:
    """Highest offered rate with loss < 1 %: up from start_rate by `factor` until a step loses
    >= 1 % or the sender falls short of the rate; down by halves first while start_rate loses.
    A step that loses >= 1 % is tried once more before it counts as a failure (a receiver that
    sleeps between paced batches must be woken, and a wake-up delayed by anything else running
    on the 2 cores overflows the default socket buffer in a few ms). Returns the best passing
    step (offered rate and the figures measured there) and why the sweep stopped."""
    def passes(rate):
        m = measure(ctx, rcv, shape_args, step_s, rate)
        if m["loss"] is not None and m["loss"] >= LOSS_MAX and m["sent_rate"] >= 0.97 * rate:
            m2 = measure(ctx, rcv, shape_args, step_s, rate)
            m = m2 if m2["loss"] is not None and m2["loss"] < m["loss"] else m
        return m, m["loss"] is not None and m["loss"] < LOSS_MAX

    rate, best = max(start_rate, 1000.0), None
    for _ in range(4):  # find a passing rate
        m, ok = passes(rate)
        if ok:
            best = m
            break
        rate /= 2
    if best is None:
        return {"best": None, "why": "loss >= 1 %% even at %.0f metrics/s" % (rate * 2)}
    why = "step bound"
    for _ in range(max_steps):
        if time.monotonic() > deadline:
            why = "time bound"
            break
        rate *= factor
        m, ok = passes(rate)
        if m["sent_rate"] < 0.97 * rate:
            why = "sender limit"
            if ok:
                best = m
            break
        if not ok:
            why = "loss"
            break
        best = m
    return {"best": best, "why": why}


def run(ctx) -> str:
    quick = ctx.quick
    runs = max(1, 1 if quick else ctx.runs)
    full_s = 1.0 if quick else 1.5
    step_s = 0.5 if quick else 0.8
    factor = 1.5 if quick else 1.25
    n_sweeps = 1 if quick else min(ctx.runs, 3)
    # Sweeps stop climbing past this (the section's time budget: ~4 min with runs=5, < 1 min quick).
    deadline = time.monotonic() + (45 if quick else 200)
    tmp = Path(tempfile.mkdtemp(prefix="dds-bench-ingest-"))
    receivers, notes = [], []
    results = {}  # (receiver, shape) -> {"full": [..], "sweep": [..]}
    try:
        ours = Sink(ctx, "ours", tmp)
        receivers.append(ours)
        drain = Sink(ctx, "drain", tmp)
        receivers.append(drain)
        try:
            receivers.insert(1, Rust(ctx, tmp))
        except Exception as e:  # the section still reports the others
            notes.append(f"the Rust binary could not be run: {e}")
            log(f"ingest: the Rust binary could not be run: {e}")
        statsd = None
        try:
            statsd = Statsd(ctx, tmp)
            receivers.insert(1, statsd)
        except Exception as e:  # the section still reports ours vs the kernel
            notes.append(f"statsd could not be run: {e}")
            log(f"ingest: statsd could not be run: {e}")
        names = [r.name for r in receivers]
        for r in receivers:
            for shape, _ in SHAPES:
                results[(r.name, shape)] = {"full": [], "sweep": []}
        # (a) full speed, interleaved so every receiver sees the same machine conditions
        for i in range(runs):
            for shape, sargs in SHAPES:
                for r in receivers:
                    m = measure(ctx, r, sargs, full_s)
                    results[(r.name, shape)]["full"].append(m)
                    log(f"ingest: full speed {r.name:6s} {shape}: {m['rate']:,.0f} metrics/s, "
                        f"loss {100 * m['loss']:.1f} %, {fmt(m['cpu_per_m'])} CPU s/M")
        # (b) highest rate under 1 % loss, starting from 40 % of the full-speed throughput
        for i in range(n_sweeps):
            for shape, sargs in SHAPES:
                for r in receivers:
                    fs = median([m["rate"] for m in results[(r.name, shape)]["full"]]) or 10000
                    sw = sweep(ctx, r, sargs, fs * 0.4, step_s, factor, deadline)
                    results[(r.name, shape)]["sweep"].append(sw)
                    b = sw["best"]
                    log(f"ingest: sweep {r.name:6s} {shape}: "
                        + (f"{b['offered']:,.0f} metrics/s offered, loss {100 * b['loss']:.2f} % (stopped: {sw['why']})"
                           if b else sw["why"]))
    finally:
        for r in receivers:
            try:
                r.stop()
            except Exception as e:  # stop the others all the same
                log(f"ingest: stopping {r.name}: {e}")
        shutil.rmtree(tmp, ignore_errors=True)

    # ---- figures ----
    def fig(name, shape, key, which="full"):
        if (name, shape) not in results:
            return None
        if which == "full":
            return median([m[key] for m in results[(name, shape)]["full"]])
        return median([sw["best"][key] for sw in results[(name, shape)]["sweep"] if sw["best"]])

    def at_least(x, limited):
        return x if x is None or not limited else "≥ " + fmt(x)

    def sweep_why(name, shape):
        whys = [sw["why"] for sw in results.get((name, shape), {}).get("sweep", [])]
        return max(set(whys), key=whys.count) if whys else "n/a"

    short = {SHAPES[0][0]: "1 metric/datagram", SHAPES[1][0]: "8 KiB datagrams"}
    rows = []
    peers = [("statsd", f"statsd {statsd.version if statsd else '0.9.0'} (Node.js {node_version()})")] \
        if statsd else []
    if "Rust binary" in names:
        peers.insert(0, ("Rust binary", "Rust binary (Datadog's, `/work/shared/peers`)"))
    peers.append(("drain", "bare recvmmsg loop (kernel limit)"))
    for pname, plabel in peers:
        for shape, _ in SHAPES:
            o, p = fig("ours", shape, "offered", "sweep"), fig(pname, shape, "offered", "sweep")
            o_lim, p_lim = sweep_why("ours", shape) == "sender limit", sweep_why(pname, shape) == "sender limit"
            r = ratio(lead(o, p))
            if o_lim and p_lim:
                r += " (both at the sender's limit)"
            elif o_lim:
                r = "≥ " + r
            elif p_lim:
                r = "≤ " + r
            rows.append([f"highest rate at < 1 % loss, metrics/s ({short[shape]})", at_least(o, o_lim), plabel,
                         at_least(p, p_lim), r])
            o, p = fig("ours", shape, "rate"), fig(pname, shape, "rate")
            rows.append([f"metrics/s processed, sender at full speed ({short[shape]})", o, plabel, p, ratio(lead(o, p))])
            if pname != "drain":
                o, p = fig("ours", shape, "cpu_per_m"), fig(pname, shape, "cpu_per_m")
                rows.append([f"CPU s per million metrics, full speed ({short[shape]})", o, plabel, p,
                             ratio(lead(o, p, higher_is_better=False))])

    raw = []
    for shape, _ in SHAPES:
        for name in names:
            raw.append([
                name, short[shape], fig(name, shape, "sent_rate"), fig(name, shape, "rate"),
                pct(fig(name, shape, "loss")), fig(name, shape, "cpu_per_m"), fig(name, shape, "cpu_share"),
                1e6 / fig(name, shape, "cpu_per_m") if fig(name, shape, "cpu_per_m") else None,
                fig(name, shape, "offered", "sweep"), fig(name, shape, "cpu_per_m", "sweep"), sweep_why(name, shape),
                fig(name, shape, "bad"),
            ])

    # ---- targets ----
    tgt = []
    for shape, _ in SHAPES:
        o, s = fig("ours", shape, "offered", "sweep"), fig("statsd", shape, "offered", "sweep")
        r = lead(o, s)
        lim = sweep_why("ours", shape) == "sender limit"
        tgt.append(f"- >= 10x statsd's metrics/s at < 1 % loss ({short[shape]}): "
                   + (f"{'≥ ' if lim else ''}{r:.1f}x, **{'met' if r >= 10 else 'not shown' if lim else 'not met'}**"
                      if r else "n/a")
                   + (" (ours kept up with everything the generator could send on its one core, so this is a lower "
                      "bound; CPU per metric: " + ratio(lead(fig("ours", shape, "cpu_per_m"), fig("statsd", shape, "cpu_per_m"),
                                                             higher_is_better=False)) + " in our favour)"
                      if lim and r and r < 10 else ""))
    o, d = fig("ours", SHAPES[0][0], "offered", "sweep"), fig("drain", SHAPES[0][0], "offered", "sweep")
    r = lead(o, d)
    dwhy = sweep_why("drain", SHAPES[0][0])
    tgt.append("- >= 95 % of the drain limit with 1-metric datagrams (highest rate at < 1 % loss): "
               + (f"{100 * r:.0f} %, **{'met' if r >= 0.95 else 'not met'}**" if r else "n/a")
               + (" (the drain loop kept up with everything the generator could send, so its limit here is "
                  "the sender's: the kernel's own limit is at least that"
                  + (", and ours kept up too" if sweep_why("ours", SHAPES[0][0]) == "sender limit" else "")
                  + f"; CPU per metric, ours {fmt(fig('ours', SHAPES[0][0], 'cpu_per_m'))} s/M against the bare "
                  f"loop's {fmt(fig('drain', SHAPES[0][0], 'cpu_per_m'))} s/M)" if dwhy == "sender limit" else ""))
    # Issue 12: CPU per metric with 1-metric datagrams, at most 1.2x the bare loop's and 0.4x the Rust binary's.
    oc = fig("ours", SHAPES[0][0], "cpu_per_m")
    for pname, label, bound in (("drain", "the bare loop's", 1.2), ("Rust binary", "the Rust binary's", 0.4)):
        pc = fig(pname, SHAPES[0][0], "cpu_per_m")
        if oc and pc:
            tgt.append(f"- CPU per metric with 1-metric datagrams at most {bound}x {label} (full speed): "
                       f"{oc / pc:.2f}x ({fmt(oc)} against {fmt(pc)} s/M), **{'met' if oc / pc <= bound else 'not met'}**")

    bad_statsd = fig("statsd", SHAPES[0][0], "bad")
    rcvbuf = receivers[0].rcvbuf if receivers else None
    text = [
        f"## {TITLE}\n",
        "The same UDP load on 127.0.0.1, sent by `bench_udp_load` (C, `sendmmsg`; the realistic line mix of "
        f"`bench/dsdgen.h`: counts:gauges:distributions:sets:histograms = 208:66:72:9:1, 2-50 tags, names of "
        f"10-100 bytes, {CONTEXTS} contexts), to receivers that are each a process of its own: our services "
        "(`bench_udp_sink ours`: `dds_start` with DogStatsD only, every metric parsed, aggregated and flushed "
        "for real — protobuf, zstd, libcurl POST — to a minimal HTTP intake in that process, whose thread's CPU "
        "is taken out), the npm `statsd` daemon (Etsy's, Node.js, no backend, counters read on its management "
        "port) and a bare `recvmmsg` loop (`bench_udp_sink drain`, batches of 32, 8 KiB buffers, lines counted "
        "with `memchr`): what one thread can take out of the kernel here. Two datagram shapes: one metric per "
        f"datagram ({shape_desc(SHAPES[0][0])}), and datagrams packed with as many lines as fit 8192 bytes "
        f"({shape_desc(SHAPES[1][0])}). Our socket has the receive buffer the library asks by default (SO_RCVBUF {rcvbuf} "
        "bytes as the kernel reports it: 4 MiB asked, doubled, capped by net.core.rmem_max), and so has the bare loop's "
        "(it asks the same 4 MiB); statsd's and the Rust binary's have the kernel's default, 212,992 bytes (neither sets "
        "it). The bare loop polls, then reads the socket until it is empty: when it keeps up it is woken for nearly "
        "every datagram, where our receive thread naps 50 us after a read and takes what arrived meanwhile in one "
        "recvmmsg, so our CPU per metric can be below its. Figures: metrics/s counted by the receiver over the sender's elapsed time, loss "
        "= 1 - counted/sent, receiver CPU (user+system) per million metrics counted; (a) generator at full "
        f"speed for {full_s:g} s, median of {runs} run(s); (b) highest offered rate with < 1 % loss, from a "
        f"geometric sweep ({step_s:g} s steps, x{factor:g} from 40 % of the full-speed figure, halving first while "
        "that loses; it stops at the first rate at >= 1 % loss or when the sender cannot offer the rate; a "
        "step at >= 1 % loss is tried a second time before it counts, since a sleeping receiver whose "
        "wake-up is delayed by anything else running overflows the default socket buffer within "
        f"milliseconds), median of {n_sweeps} sweep(s). "
        "The Rust binary Datadog ships (`/work/shared/peers`, the one cloud variable it needs set; it binds "
        "0.0.0.0, the load goes to 127.0.0.1) is a fourth receiver: it has no counter of what it parsed, so what it "
        "received is what was sent less its socket's drops (`/proc/net/udp`, read once its socket is empty; "
        "checked end to end on 2026-12-07 with one-counter datagrams at 30k, 60k, 120k/s and full speed for 2 s "
        "each: sent less the socket's drops equalled what reached an intake exactly, 60,000, 117,258, 166,211 and "
        "134,193; "
        "for packed datagrams, drops times the average lines per datagram), and its CPU is its whole process's "
        "(its 10 s flushes to a closed local port included). "
        "The machine has 2 cores (shared with other work during this run): the generator takes one and the receiver the other, so the receiver competes "
        "with nothing but the sender (and whatever else runs on the machine); on loopback the kernel's delivery "
        "work is done on the sender's side. Reproduce this section alone: "
        "`python bench/run.py --only ingest` (after `scripts/bench` built the benchmarks and installed the peer; "
        "`--quick` for a short try).\n",
        table(["figure", "ours", "peer", "peer's value", "ratio"], rows),
        "Raw figures per receiver (full speed unless said; `sweep` = at the highest rate with < 1 % loss):\n",
        table(["receiver", "datagrams", "offered metrics/s", "processed metrics/s", "loss", "CPU s/M metrics",
               "CPU cores busy", "one core's worth, metrics/s", "highest rate < 1 % loss", "CPU s/M at that rate", "sweep stopped by",
               "bad lines"], raw),
        "`one core's worth` = 1e6 / (CPU s per million metrics): the rate the receiver would reach with a whole "
        "core to itself if its cost per metric stayed the same, a projection for where the sender is the limit.\n",
        "Targets:\n",
        "\n".join(tgt) + "\n",
        "About statsd: 0.9.0 accepts our line format. It splits each line at `|#` and appends the tags to the "
        "key, so every context is its own key; `d` (distribution) and `h` (histogram) are not types it knows, "
        "and it counts them as counters (summing their values) rather than rejecting them; sets and sample "
        "rates are understood. Its `statsd.metrics_received` counts every non-empty line of a packet before "
        "validation, `statsd.packets_received` every datagram, and `statsd.bad_lines_seen` the lines it "
        f"rejected: {fmt(bad_statsd)} in the full-speed runs here"
        + (" (so its metrics/s counts lines it received, not lines it aggregated correctly)." if bad_statsd else ".")
        + " It does no flush during the run (one-hour flush interval, no backend), so it is measured doing "
        "less work than ours, which also serializes and sends every flush. Its CPU is read from "
        "`/proc/<pid>/stat` once its socket is empty, before its counters are dumped.\n",
    ]
    if notes:
        text.append("Notes: " + " ".join(notes) + "\n")
    return "\n".join(text)


def shape_desc(shape) -> str:
    info = SHAPE_INFO.get(tuple(dict(SHAPES)[shape]))
    return "n/a" if not info else f"{info[0]:.1f} metrics, {info[1]:,.0f} bytes on average"


def pct(x):
    return None if x is None else f"{100 * x:.1f} %"


def node_version() -> str:
    node = shutil.which("node")
    if not node:
        return "absent"
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
