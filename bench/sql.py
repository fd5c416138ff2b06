"""Section: SQL obfuscation throughput on one core (the cost it adds to every sql span)."""
from __future__ import annotations

import re

import common

TITLE = "SQL obfuscation"


def run(ctx) -> str:
    rounds = max(3, ctx.runs)
    ms = 150 if ctx.quick else 300
    out = common.sh([ctx.exe("bench_sql"), str(rounds), str(ms)])
    head = out.splitlines()[0].replace("# bench_sql: ", "")
    mbs = [float(m) for m in re.findall(r"^round \d+: ([\d.]+) MB/s", out, re.M)]
    ns = [float(m) for m in re.findall(r"^round \d+: [\d.]+ MB/s, ([\d.]+) ns/query", out, re.M)]
    return (
        f"## {TITLE}\n\n"
        "The Go Agent's legacy SQL tokenizer and filters (src_c/trace/obfuscate_sql.c) over a corpus of "
        "realistic queries (ORM SELECTs with joins and aliases, multi-row INSERTs, UPDATEs, IN lists, "
        "comments, postgres placeholders and JSON operators, MSSQL brackets, a stored-procedure call), "
        f"one core, the arena reset per query as per request. Corpus: {head}. No peer runs this "
        "outside its agent.\n\n"
        f"Reproduce: `build-bench/bench_sql {rounds} {ms}` (or `python bench/run.py --only sql`).\n\n"
        + common.table(["run", "MB/s of query text (median)", "ns per query (median)"],
                       [["all queries, their own dialect", common.median(mbs), common.median(ns)]])
    )
