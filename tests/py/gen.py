"""The project's own DogStatsD datagram generator, with an independent model of what the Datadog
Agent's aggregation makes of it (PROTOCOL.md section 2), so end-to-end tests can compare what
reached the fake intake with what should have.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class Expected:
    """What one flush of one 10 s bucket should produce."""

    series: dict[tuple[str, str, frozenset], float] = field(default_factory=dict)  # (metric, type, tags) -> value
    sketches: dict[tuple[str, frozenset], dict] = field(default_factory=dict)      # (metric, tags) -> summary
    checks: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def _tags(rng: random.Random, n: int) -> list[str]:
    return [f"k{i}:v{rng.randrange(3)}" for i in range(n)]


def generate(seed: int = 1, contexts_per_type: int = 20) -> tuple[list[bytes], Expected]:
    """Datagrams of every metric type (packed values, sample rates, tags in shuffled order and
    repeated, host/device tags), plus events and service checks, and their expected results."""
    rng = random.Random(seed)
    lines: list[str] = []
    exp = Expected()

    for i in range(contexts_per_type):
        tags = _tags(rng, rng.randrange(1, 6))
        key = frozenset(tags)
        # count: several samples, some with a sample rate, some packed
        name = f"gen.count.{i}"
        total = 0.0
        for _ in range(rng.randrange(1, 5)):
            v, rate = rng.randrange(1, 100), rng.choice([1.0, 0.5, 0.25])
            shuffled = tags[:]
            rng.shuffle(shuffled)
            suffix = f"|@{rate}" if rate != 1.0 else ""
            lines.append(f"{name}:{v}|c{suffix}|#{','.join(shuffled + shuffled[:1])}")
            total += v / rate
        lines.append(f"{name}:1:2|c|#{','.join(tags)}")  # packed: two samples
        total += 3
        exp.series[(name, "rate", key)] = total / 10

        # gauge: one packed line, since lines are shuffled below and the last value must be known
        name = f"gen.gauge.{i}"
        values = [round(rng.uniform(-1000, 1000), 3) for _ in range(rng.randrange(1, 4))]
        lines.append(f"{name}:{':'.join(str(v) for v in values)}|g|#{','.join(tags)}")
        exp.series[(name, "gauge", key)] = values[-1]

        name = f"gen.set.{i}"
        members = [f"user{rng.randrange(10)}" for _ in range(rng.randrange(1, 15))]
        for m in members:
            lines.append(f"{name}:{m}|s|#{','.join(tags)}")
        exp.series[(name, "gauge", key)] = float(len(set(members)))

        for mtype, base in (("h", "gen.hist"), ("ms", "gen.timing")):
            name = f"{base}.{i}"
            samples = sorted(rng.randrange(1, 1000) for _ in range(2 * rng.randrange(1, 5) + 1))
            packed = ":".join(str(s) for s in samples)
            lines.append(f"{name}:{packed}|{mtype}|#{','.join(tags)}")
            exp.series[(f"{name}.max", "gauge", key)] = float(samples[-1])
            exp.series[(f"{name}.avg", "gauge", key)] = sum(samples) / len(samples)
            exp.series[(f"{name}.count", "rate", key)] = len(samples) / 10
            exp.series[(f"{name}.median", "gauge", key)] = float(samples[len(samples) // 2])

        name = f"gen.dist.{i}"
        samples = [round(rng.uniform(0.5, 500), 2) for _ in range(rng.randrange(1, 30))]
        lines.append(f"{name}:{':'.join(str(s) for s in samples)}|d|#{','.join(tags)}")
        exp.sketches[(name, key)] = {"cnt": len(samples), "min": min(samples), "max": max(samples),
                                     "sum": sum(samples)}

    # host: sets the host and leaves the tags; device: becomes a resource
    lines.append("gen.hosted:5|g|#host:my-host,role:web")
    exp.series[("gen.hosted", "gauge", frozenset({"role:web"}))] = 5.0
    lines.append("gen.device:6|g|#device:sda1,role:db")
    exp.series[("gen.device", "gauge", frozenset({"role:db"}))] = 6.0

    for i in range(3):
        lines.append(f"_sc|gen.check.{i}|{i}|#svc:x{i}|m:message {i}")
        exp.checks.append({"check": f"gen.check.{i}", "status": i, "message": f"message {i}", "tags": [f"svc:x{i}"]})
        title, text = f"Deploy {i}", f"line one\\nline two {i}"
        lines.append(f"_e{{{len(title)},{len(text)}}}:{title}|{text}|p:low|t:warning|#evt:{i}")
        exp.events.append({"title": title, "text": text.replace("\\n", "\n"), "priority": "low",
                           "alert_type": "warning", "tags": [f"evt:{i}"]})

    rng.shuffle(lines)
    # Pack lines into datagrams of at most 1400 bytes, as clients with buffering do.
    datagrams: list[bytes] = []
    cur: list[str] = []
    size = 0
    for line in lines:
        if cur and size + len(line) + 1 > 1400:
            datagrams.append("\n".join(cur).encode())
            cur, size = [], 0
        cur.append(line)
        size += len(line) + 1
    if cur:
        datagrams.append("\n".join(cur).encode())
    return datagrams, exp


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
