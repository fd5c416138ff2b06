"""Runs every benchmark section and writes bench/RESULTS.md. Called by scripts/bench, which
builds the benchmarks and installs the peers first.

    python bench/run.py --build build-bench [--runs 5] [--quick] [--only ingest,traces] [--out FILE]

Each section is a module of bench/ (see common.py). The hand-written tuning history
(bench/HISTORY.md: before/after of every change that mattered) is appended as it is.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SECTIONS = ["parse", "ingest", "contention", "newnames", "traces", "sql", "footprint", "artifacts", "egress", "sigterm"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--out", default=str(common.REPO / "bench" / "RESULTS.md"))
    a = ap.parse_args()
    ctx = common.Ctx(build=(common.REPO / a.build).resolve(), python=a.python, runs=a.runs, quick=a.quick)
    names = [s for s in a.only.split(",") if s] or SECTIONS
    started = time.strftime("%Y-%m-%d %H:%M")
    head = [
        "# Benchmark results\n",
        "Written by `scripts/bench` (every section below, in one run on one machine; "
        f"{'quick mode, ' if a.quick else ''}each figure the median of {a.runs} runs). Absolute "
        "figures drift on a shared machine: the ratios against the peers, measured in the same run, "
        "are the result. A ratio above 1 means we lead.\n",
        f"Run: {started}. Machine: {common.machine()}.\n",
    ]
    body, failed = [], []
    for name in names:
        t0 = time.monotonic()
        common.log(f"== bench section {name}")
        try:
            mod = importlib.import_module(name)
            body.append(mod.run(ctx).rstrip() + "\n")
        except Exception:  # one broken section must not hide the others' figures
            failed.append(name)
            body.append(f"## {name}\n\nThis section failed in this run:\n\n```\n{traceback.format_exc()}```\n")
        common.log(f"== bench section {name}: {time.monotonic() - t0:.0f} s")
    hist = common.REPO / "bench" / "HISTORY.md"
    tail = [hist.read_text()] if hist.exists() else []
    out = Path(a.out)
    if a.only and out.exists():
        # --only replaces those sections in place and keeps every other one from the last run.
        body = merge_sections(out.read_text(), body, names, started)
        head = []
    out.write_text("\n".join(head + body + tail))
    common.log(f"wrote {a.out}" + (f"; failed sections: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def merge_sections(old: str, new_body: list[str], names: list[str], started: str) -> list[str]:
    """The old file's head and sections with each re-run section replaced (or appended), and a
    line saying which ones were re-run when. HISTORY.md is appended again by the caller."""
    hist_at = old.find("\n# Tuning history")
    if hist_at >= 0:
        old = old[:hist_at]
    parts = old.split("\n## ")
    head, sections = parts[0], ["## " + p for p in parts[1:]]
    titles = [s.splitlines()[0][3:].strip() for s in sections]
    for text in new_body:
        title = text.splitlines()[0][3:].strip()
        if title in titles:
            sections[titles.index(title)] = text
        else:
            sections.append(text)
            titles.append(title)
    note = f"Sections re-run alone on {started} (`--only {','.join(names)}`): {', '.join(names)}.\n"
    head = "\n".join(l for l in head.rstrip().splitlines() if not l.startswith("Sections re-run alone"))
    head = head.rstrip() + "\n\n" + note
    return [head] + [s.rstrip() + "\n" for s in sections]


if __name__ == "__main__":
    sys.exit(main())
