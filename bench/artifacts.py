"""Release artifacts (scripts/dist): their sizes against the issue's budgets and the Rust binary
Datadog ships, and the static CLI's exec to both ports ready, side by side with the dynamic build
of the same code (build-bench/) and the Rust binary, in one run.

    scripts/dist && python bench/run.py --build build-bench --only artifacts [--runs 5]

build-bench/bench_exec starts a binary 20 times per run (two free ports, logging off, nothing to
send), times fork+exec until the trace port accepts a TCP connection and the DogStatsD port is
bound (/proc/net/udp), SIGTERMs it; its median is one run; the figure is the median of ctx.runs.
"""
from __future__ import annotations

import json
from pathlib import Path

from common import REPO, fmt, lead, log, median, sh, table

TITLE = "Release artifacts"
DIST = REPO / "dist"
RUST = REPO.parent / "shared" / "peers" / "datadog-serverless-compat-rust"
BUDGET = {"wheel": 3_000_000, "npm": 4_000_000, "cli": 4_000_000}


def _one(pattern: str) -> Path | None:
    found = sorted(DIST.glob(pattern))
    return found[0] if found else None


def _exec_ms(ctx, binary: Path, rust: bool = False) -> float | None:
    meds = []
    for _ in range(ctx.runs):
        args = [ctx.exe("bench_exec"), "--json", "--runs", "10" if ctx.quick else "20"]
        out = sh(args + (["--rust"] if rust else []) + [str(binary)])
        meds.append(json.loads(out)["median_ms"])
    return median(meds)


def run(ctx) -> str:
    rows = []
    rust_size = RUST.stat().st_size if RUST.exists() else None
    for label, pattern, budget in [
        ("wheel x86_64 (CPython >= 3.11, abi3)", "datadog_serverless-*-cp311-abi3-*x86_64.whl", "wheel"),
        ("wheel aarch64", "datadog_serverless-*-cp311-abi3-*aarch64.whl", "wheel"),
        ("npm tarball (linux-x64 + linux-arm64 prebuilds)", "datadog-serverless-node-*.tgz", "npm"),
        ("static CLI x86_64 (musl)", "datadog-serverless-compat-*-linux-x86_64", "cli"),
        ("static CLI aarch64 (musl)", "datadog-serverless-compat-*-linux-aarch64", "cli"),
        ("C SDK x86_64 (.tar.gz)", "datadog-serverless-sdk-*-linux-x86_64.tar.gz", None),
        ("C SDK aarch64 (.tar.gz)", "datadog-serverless-sdk-*-linux-aarch64.tar.gz", None),
    ]:
        f = _one(pattern)
        size = f.stat().st_size if f else None
        peer = rust_size if budget == "cli" else None
        rows.append([label, fmt(size / 1e6) + " MB" if size else "missing (run scripts/dist)",
                     f"{BUDGET[budget] / 1e6:.0f} MB" if budget else "",
                     "Rust binary (x86_64, glibc)" if peer else "", fmt(peer / 1e6) + " MB" if peer else "",
                     fmt(lead(size, peer, higher_is_better=False)) if peer and size else ""])
    sizes = table(["artifact", "size", "budget", "peer", "peer's size", "ratio"], rows)

    static = _one("datadog-serverless-compat-*-linux-x86_64")
    dynamic = Path(ctx.exe("datadog-serverless-compat"))
    log("artifacts: exec to both ports ready")
    t_static = _exec_ms(ctx, static) if static else None
    t_dynamic = _exec_ms(ctx, dynamic) if dynamic.exists() else None
    t_rust = _exec_ms(ctx, RUST, rust=True) if RUST.exists() else None
    needed = len([l for l in sh(["readelf", "-d", str(dynamic)]).splitlines() if "NEEDED" in l]) if dynamic.exists() else None
    libs = sh(f"ldd {dynamic} | wc -l").strip() if dynamic.exists() else None
    start = table(["figure", "ours: static CLI (dist)", "peer", "peer's value", "ratio"], [
        ["exec to both ports ready, ms (median)", fmt(t_static), "dynamic CLI (build-bench, same code)", fmt(t_dynamic),
         fmt(lead(t_static, t_dynamic, higher_is_better=False))],
        ["", "", "Rust binary", fmt(t_rust), fmt(lead(t_static, t_rust, higher_is_better=False))],
    ])
    return (
        f"## {TITLE}\n\n"
        "What `scripts/dist` ships, and what it costs a cold start. Sizes are the files in `dist/`; the "
        "budgets are issue 10's. The CLI is static (musl, no interpreter, no NEEDED); the dynamic build "
        f"of the same code links {needed} libraries directly and loads {libs} in all (libcurl brings "
        "Kerberos, LDAP, GnuTLS, SSH...). Exec to both ports ready: `build-bench/bench_exec` (fork+exec "
        "until the trace port accepts a TCP connection and the DogStatsD UDP port is bound), median of "
        f"{10 if ctx.quick else 20} starts per run, median of {ctx.runs} runs; the Rust binary is started "
        "with the one cloud variable it needs (Azure Spring Apps).\n\n"
        "Reproduce: `scripts/dist && python bench/run.py --build build-bench --only artifacts` "
        "(or `build-bench/bench_exec --runs 20 dist/datadog-serverless-compat-*-linux-x86_64`).\n\n"
        + sizes + "\n" + start
    )
