"""Lifecycle and footprint, from the three front doors (C, Python, Node): start to ready, stop with
a final flush, the RSS a running instance adds (idle, and holding 100,000 live contexts), and the
sizes of what is shipped.

    python bench/run.py --build build-bench --only footprint [--runs 5] [--quick]

C: bench/bench_lifecycle.c against a fake intake this module spawns (tests/intake). Python:
bench/bench_python.py --json. Node: bench/bench_node.js --lifecycle-only --json. Both bindings'
benches spawn a fake intake of their own. Each runs its start/stop loop `life_runs` times in one
process and its RSS measurements in `ctx.runs` fresh processes; the figures are the medians.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from common import REPO, fmt, log, sh, table

TITLE = "Lifecycle and footprint"

START_TARGET_MS = 5.0
STOP_TARGET_MS = 50.0
RSS_TARGET_BYTES = 5_000_000  # "5 MB", taken as 10^6 bytes (4.77 MiB): the stricter reading
IMPORT_TARGET_MS = 10.0  # issue 12: `import datadog_serverless`, `require('@datadog/serverless-node')`
MiB = 1 << 20


class _Intake:
    """The fake intake (python -m tests.intake) as a child process of ctx.python."""

    def __init__(self, python: str):
        self._dir = tempfile.mkdtemp(prefix="footprint-intake-")
        port_file = Path(self._dir) / "port"
        self._proc = subprocess.Popen([python, "-m", "tests.intake", "--port", "0", "--port-file", str(port_file)],
                                      cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake intake did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stderr:
            self._proc.stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DD_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def _json(cmd: list[str], timeout: int) -> dict:
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=_clean_env(), timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _verdict(values: dict[str, float | None], limit: float) -> str:
    parts = []
    for door, v in values.items():
        parts.append(f"{door} {'n/a' if v is None else ('met' if v < limit else '**not met**')}")
    return ", ".join(parts)


def _ms(x):
    return None if x is None else f"{fmt(x)} ms"


def _mib(x):
    return None if x is None else f"{fmt(x / MiB)} MiB"


# ---- sizes ------------------------------------------------------------------------------------

def _stripped_size(path: Path, *args: str) -> int | None:
    if not shutil.which("strip"):
        return None
    with tempfile.TemporaryDirectory(prefix="footprint-strip-") as tmp:
        copy = Path(tmp) / path.name
        shutil.copy2(path, copy)
        subprocess.run(["strip", *args, str(copy)], check=True, capture_output=True)
        return copy.stat().st_size


def _shared_deps(binary: Path) -> dict[str, int]:
    """Resolved shared-library dependencies of a binary and their sizes, the C runtime excluded."""
    try:
        out = sh(["ldd", str(binary)])
    except (subprocess.CalledProcessError, OSError):
        return {}
    deps = {}
    for line in out.splitlines():
        parts = line.split("=>")
        if len(parts) != 2 or not parts[1].strip().startswith("/"):
            continue
        path = Path(parts[1].split("(")[0].strip())
        if path.name.split(".so")[0] in ("libc", "libm", "libstdc++", "libgcc_s", "libpthread", "libdl", "librt"):
            continue
        deps[str(path)] = path.resolve().stat().st_size
    return deps


def _git_time(*paths: str) -> int | None:
    try:
        out = sh(["git", "-C", str(REPO), "log", "-1", "--format=%ct", "--", *paths]).strip()
        return int(out) if out else None
    except (subprocess.CalledProcessError, OSError, ValueError):
        return None


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) + " UTC"


def _wheel(ctx) -> tuple[Path | None, str]:
    """The x86_64 release wheel in dist/, built by scripts/dist when absent (not in --quick)."""
    def find():
        found = sorted((REPO / "dist").glob("datadog_serverless-*-abi3-*x86_64.whl"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None

    wheel, built_now = find(), False
    if wheel is None and not ctx.quick:
        log("footprint: no wheel in dist/, running scripts/dist --only wheel (a few minutes)")
        res = subprocess.run([str(REPO / "scripts" / "dist"), "--only", "wheel", "--arch", "x86_64"], cwd=REPO,
                             capture_output=True, text=True, timeout=1800)
        if res.returncode != 0:
            return None, f"not present, and scripts/dist failed: {res.stderr.strip()[-300:]}"
        wheel, built_now = find(), True
    if wheel is None:
        return None, "not present in dist/ (made by `scripts/dist`; not built in --quick mode)"
    mtime = wheel.stat().st_mtime
    how = (f"`{wheel.name}`, made by `scripts/dist` ({'in this run' if built_now else _when(mtime)}): "
           "self-contained, the core and libevent, libcurl, mbedTLS, zstd and zlib linked statically into "
           "one abi3 extension that needs only glibc 2.17")
    with zipfile.ZipFile(wheel) as z:
        ext = sum(i.compress_size for i in z.infolist() if "/_core." in i.filename)
    how += f"; of it, {fmt(ext / MiB)} MiB is the extension, compressed"
    src = _git_time("src_c", "pyx", "CMakeLists.txt", "pyproject.toml")
    if src and src > mtime:
        how += f" (built before the last commit to src_c/pyx/CMake, {_when(src)}: may be slightly off)"
    return wheel, how


def _sizes(ctx) -> str:
    rows = []
    lib = ctx.build / "libdatadog_serverless.a"
    if lib.exists():
        rows.append(["static library `libdatadog_serverless.a`, as built (-O2 -g)", lib.stat().st_size,
                     "the library alone; links libevent, libcurl, libzstd, zlib (shared)"])
        rows.append(["the same, debug info stripped (`strip -g`)", _stripped_size(lib, "-g"), ""])
    cli = ctx.build / "datadog-serverless-compat"
    if cli.exists():
        rows.append(["CLI `datadog-serverless-compat`, as built (-O2 -g)", cli.stat().st_size,
                     "dynamically linked to the system's libevent, libcurl, libzstd, zlib"])
        rows.append(["the same, stripped (`strip`)", _stripped_size(cli), ""])
        deps = _shared_deps(cli)
        if deps:
            rows.append(["shared libraries the CLI loads (`ldd`), summed", sum(deps.values()),
                         f"{len(deps)} files of the system (libc, libm, libstdc++ excluded): libcurl's dependency "
                         "tree (OpenSSL, GnuTLS, Kerberos, LDAP, ...), libevent, libzstd, zlib; shared with "
                         "whatever else the host loads"])
    wheel, how = _wheel(ctx)
    rows.append(["Python wheel", wheel.stat().st_size if wheel else None, how])
    try:
        so = subprocess.run([ctx.python, "-c", "import datadog_serverless._core as c; print(c.__file__)"],
                            capture_output=True, text=True, check=True, cwd="/").stdout.strip()
        rows.append(["Python extension `_core.*.so` installed in the venv", Path(so).stat().st_size,
                     "built by `pip install` (scikit-build-core), the library linked in; system libraries not bundled"])
    except (subprocess.CalledProcessError, OSError):
        rows.append(["Python extension installed in the venv", None, "package not importable"])
    try:
        packed = json.loads(sh(["npm", "pack", "--dry-run", "--json", "--ignore-scripts"], cwd=REPO))[0]
        rows.append(["npm tarball of the repository (`npm pack --dry-run --json`, development prebuild; the release one is under Release artifacts)", packed["size"],
                     f"{packed['entryCount']} files, {fmt(packed['unpackedSize'] / MiB)} MiB unpacked: the JS, "
                     "the C sources (compiled at install when no prebuild loads) and prebuilds/"])
    except (subprocess.CalledProcessError, OSError, ValueError, KeyError, IndexError) as exc:
        rows.append(["npm tarball", None, f"`npm pack --dry-run` failed: {exc}"])
    nodes = sorted((REPO / "prebuilds").glob("*/*.node")) + sorted((REPO / "build" / "Release").glob("*.node"))
    for p in nodes:
        what = ("prebuild (`prebuildify --napi --strip`, the development prebuild; the release prebuilds are built by scripts/dist)" if "prebuilds" in p.parts
                else "node-gyp build, not stripped")
        rows.append([f"Node addon `{p.relative_to(REPO)}`", p.stat().st_size,
                     what + "; links the system's libevent, libcurl, libzstd, zlib"])
    if not nodes:
        rows.append(["Node addon `.node`", None, "not built (`npm install` or `npm run prebuildify`)"])
    out = [[r[0], None if r[1] is None else f"{r[1]:,}", _mib(r[1]), r[2]] for r in rows]
    return table(["artifact", "bytes", "size", "what it is"], out)


# ---- the section ------------------------------------------------------------------------------

def run(ctx) -> str:
    life_runs = 10 if ctx.quick else max(20, 4 * ctx.runs)
    rss_runs = 2 if ctx.quick else ctx.runs
    t0 = time.monotonic()

    intake = _Intake(ctx.python)
    try:
        c = _json([ctx.exe("bench_lifecycle"), "--intake", intake.url, "--runs", str(life_runs),
                   "--rss-runs", str(rss_runs), "--json"], timeout=300)
    finally:
        intake.stop()
    log(f"footprint: C done ({time.monotonic() - t0:.0f} s)")
    py = _json([ctx.python, str(REPO / "bench" / "bench_python.py"), "--runs", str(life_runs),
                "--rss-runs", str(rss_runs), "--json"], timeout=600)
    log(f"footprint: Python done ({time.monotonic() - t0:.0f} s)")
    node = None
    if shutil.which("node"):
        node = _json(["node", str(REPO / "bench" / "bench_node.js"), "--lifecycle-only", "--json",
                      "--runs", str(life_runs), "--rss-runs", str(rss_runs)], timeout=600)
        log(f"footprint: Node done ({time.monotonic() - t0:.0f} s)")
    n = node or {}

    def per_ctx(d_idle, d_100k):
        return None if d_idle is None or d_100k is None else f"{fmt((d_100k - d_idle) / 100_000)} B"

    start = {"C": c["start_ready_ms"], "Python": py["start_ready_s"] * 1e3, "Node": n.get("start_ms_median")}
    stop = {"C": c["stop_flush_ms"], "Python": py["stop_flush_s"] * 1e3, "Node": n.get("stop_ms_median_200_lines")}
    idle = {"C": c["rss_idle_added_bytes"], "Python": py["rss_idle_added"],
            "Node": n.get("rss_idle_added_bytes_fresh_process_median")}
    k100 = {"C": c["rss_100k_added_bytes"], "Python": py["rss_100k_added"],
            "Node": n.get("rss_100k_contexts_added_bytes_fresh_process_median")}
    rows = [
        ["start to ready: start call until both services are bound and both READY delivered",
         _ms(start["C"]), _ms(start["Python"]), _ms(start["Node"]),
         f"< {START_TARGET_MS:g} ms: {_verdict(start, START_TARGET_MS)}"],
        # coldstart (issue 12): the package's import / require, and up to start() returned.
        ["import / require of the package in a fresh process (the C library: linked, nothing to load)", None,
         _ms(py["import_cold_s"] * 1e3), _ms(n.get("require_ms_fresh_process_median")),
         f"≤ {IMPORT_TARGET_MS:g} ms: " + _verdict({"Python": py["import_cold_s"] * 1e3,
                                                    "Node": n.get("require_ms_fresh_process_median")}, IMPORT_TARGET_MS + 1e-9)],
        ["import / require, config, start() returned: a fresh process (the extension loads on first use)", None,
         _ms(py["import_to_started_s"] * 1e3), _ms(n.get("require_to_started_ms_fresh_process_median")), ""],
        ["start call returns (both listeners bound; Node: the Promise above)",
         _ms(c["start_return_ms"]), _ms(py["start_return_s"] * 1e3), "(as above)", ""],
        ["first start of a fresh process to both READY (one-time libcurl/OpenSSL init included)",
         _ms(c["first_start_ready_ms"]), _ms(py["first_start_ready_s"] * 1e3),
         _ms(n.get("first_start_ready_ms_fresh_process_median")), ""],
        ["stop with flush: 200 lines (20 contexts) pending, final flush answered by the intake, thread joined",
         _ms(stop["C"]), _ms(stop["Python"]), _ms(stop["Node"]),
         f"< {STOP_TARGET_MS:g} ms: {_verdict(stop, STOP_TARGET_MS)}"],
        ["RSS added when idle (running, both READY, 100 ms later; vs just before start)",
         _mib(idle["C"]), _mib(idle["Python"]), _mib(idle["Node"]),
         f"< 5 MB: {_verdict(idle, RSS_TARGET_BYTES)}"],
        ["RSS added with 100,000 live contexts (vs just before start)",
         _mib(k100["C"]), _mib(k100["Python"]), _mib(k100["Node"]), ""],
        ["the same, per live context, over idle",
         per_ctx(idle["C"], k100["C"]), per_ctx(idle["Python"], k100["Python"]),
         per_ctx(idle["Node"], k100["Node"]), ""],
        ["RSS of the process just before start (the runtime and the loaded library)",
         _mib(c["rss_before_bytes"]), _mib(py["rss_before"]), _mib(n.get("rss_before_start_bytes_fresh_process_median")),
         ""],
    ]
    node_note = ""
    if node is None:
        node_note = " Node.js is absent on this machine: its column is n/a."
    js = n.get("js_heap_and_external_added_by_100k_contexts_bytes_median")
    js_note = (f" In the Node process the JS heap and external memory grew by {fmt(js / MiB)} MiB between the idle "
               "and the 100k readings: the rest of its RSS growth is native." if js is not None else "")
    head = (
        f"## {TITLE}\n\n"
        "What embedding costs, measured from each front door: C (`bench/bench_lifecycle.c`), Python "
        "(`bench/bench_python.py`) and Node (`bench/bench_node.js`), every instance with both services on port 0 "
        "of 127.0.0.1 and the fake Datadog intake (`tests/intake`, a separate Python process on loopback) "
        "as its metrics and traces intake. Start, start-to-ready and stop: medians of "
        f"{life_runs} fresh instances started and stopped in one process, after a first start that did the "
        "process-wide init (Python: stop is timed in every other run, the others time `flush()`, so each is the "
        "first request on its connection). Before each timed stop, 200 DogStatsD lines (20 counter contexts) are "
        "sent over UDP and counted by the stats; the stop drains, flushes, waits for the intake's 202 and joins "
        f"the loop thread. RSS (`/proc/self/statm`, resident): medians of {rss_runs} fresh processes, each "
        "reading RSS just before its first start (library loaded; Node after a full GC), then 100 ms after both "
        "services reported READY (idle), then after 100,000 distinct counter contexts were sent over UDP "
        "(`footprint.metric.<0-99>:1|c|#ctx:<0-999>,env:bench,service:footprint`, packed into datagrams of at "
        "most 8000 bytes, paced on the stats so the socket buffer never overflows) and the stats counted "
        "100,000 lines and 100,000 live contexts (the default context limit). Those processes end without the "
        "final flush. The targets are issue 6's; 5 MB is read as 5,000,000 bytes." + node_note + js_note + "\n\n"
        "Reproduce: `python bench/run.py --build build-bench --only footprint` (each front door alone: "
        "`build-bench/bench_lifecycle --intake URL`, `.venv/bin/python bench/bench_python.py --runs 20`, "
        "`node bench/bench_node.js --lifecycle-only --runs 20`).\n\n"
    )
    body = table(["figure", "C", "Python", "Node", "target"], rows)
    versions = (f"\nVersions: library {c.get('version')}, Python {py.get('python')}, "
                f"Node {n.get('node', 'absent')}.\n")
    sizes = ("\n### Sizes\n\nWhat is shipped or linked, as found in this checkout (the build dir of this run for "
             "the C artifacts).\n\n" + _sizes(ctx))
    log(f"footprint: sizes done ({time.monotonic() - t0:.0f} s)")
    return head + body + versions + sizes
