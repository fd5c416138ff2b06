"""Shared helpers of the benchmark sections run by scripts/bench (bench/run.py).

A section is a module in bench/ with `TITLE` and `run(ctx) -> str` returning Markdown (its own
`## ` heading, a sentence on what is measured, the command that reproduces it alone, a table).
Every figure is the median of `ctx.runs` runs made in this process's run; a figure measured
against a peer is a row `figure | ours | peer | peer's value | ratio`, the ratio written so that
above 1 means we lead (ours/peer for a rate, peer/ours for a cost).
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
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
