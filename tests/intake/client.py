"""FakeIntake: run the fake Datadog intake from pytest and read back what it received.

Three ways to get one, all driven through the same HTTP control API (README.md), so a helper
that works in-process works against a spawned or foreign intake too:
- FakeIntake(): a server on a thread of this process, any free port.
- FakeIntake.spawn(): a child process (`python -m tests.intake`), for tests that kill it.
- FakeIntake.connect(url): one started by someone else; stop() leaves it running.
"""

from __future__ import annotations

import http.client
import inspect
import json
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

from .server import IntakeServer, server_ssl_context

SERIES_PATH = "/api/v2/series"
SKETCHES_PATH = "/api/beta/sketches"
CHECK_RUN_PATH = "/api/v1/check_run"
EVENTS_PATH = "/api/v1/events"
TRACES_PATH = "/api/v0.2/traces"
STATS_PATH = "/api/v0.2/stats"
LOGS_PATH = "/api/v2/logs"

REPO_ROOT = Path(__file__).resolve().parents[2]


class IntakeControlError(RuntimeError):
    """The control API refused a request (bad arguments) or the intake is not reachable."""


class Headers(dict):
    """Request headers with case-insensitive lookups (the server stores names lowercased)."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class Record(dict):
    """One request as the intake recorded it (fields in README.md)."""

    def __init__(self, data: dict[str, Any]):
        super().__init__(data)
        self["headers"] = Headers(data.get("headers") or {})

    def header(self, name: str, default: str | None = None) -> str | None:
        return self["headers"].get(name, default)

    @property
    def accepted(self) -> bool:
        """What Datadog would have kept: answered 2xx, and the payload decoded."""
        status = self.get("status")
        return status is not None and 200 <= status < 300 and not self.get("error")


class FakeIntake:
    """A fake Datadog intake; a context manager that stops it on exit."""

    def __init__(self, port: int = 0, *, tls_cert: str | Path | None = None,
                 tls_key: str | Path | None = None, verbose: bool = False) -> None:
        context = server_ssl_context(str(tls_cert), str(tls_key)) if tls_cert else None
        server = IntakeServer(port, ssl_context=context, verbose=verbose).start()
        self._setup(server.url, server=server)

    @classmethod
    def connect(cls, url: str) -> FakeIntake:
        """Control an intake that runs elsewhere (another process, started by a script)."""
        intake = cls.__new__(cls)
        intake._setup(url.rstrip("/"))
        intake.health()
        return intake

    @classmethod
    def spawn(cls, port: int = 0, *, tls_cert: str | Path | None = None,
              tls_key: str | Path | None = None, timeout: float = 10.0) -> FakeIntake:
        """Start `python -m tests.intake` as a child process; stop() terminates it."""
        with tempfile.TemporaryDirectory(prefix="fake-intake-") as tmp:
            port_file = Path(tmp) / "port"
            command = [sys.executable, "-m", "tests.intake", "--port", str(port),
                       "--port-file", str(port_file)]
            if tls_cert:
                command += ["--tls-cert", str(tls_cert), "--tls-key", str(tls_key)]
            process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
            bound = _wait_for_port_file(port_file, process, timeout)
        process.stdout.readline()  # "listening on ...": printed right after the port file
        scheme = "https" if tls_cert else "http"
        intake = cls.__new__(cls)
        intake._setup(f"{scheme}://127.0.0.1:{bound}", process=process)
        return intake

    def _setup(self, url: str, *, server: IntakeServer | None = None,
               process: subprocess.Popen | None = None) -> None:
        self.url = url
        self._server = server
        self._process = process

    @property
    def port(self) -> int:
        return urlsplit(self.url).port

    def stop(self) -> None:
        """Take the intake down (in-process or spawned); idempotent. A connected one is left alone."""
        if self._server is not None:
            self._server.stop()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stdout:
            self._process.stdout.close()

    def __enter__(self) -> FakeIntake:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"FakeIntake({self.url})"

    # -- control API ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/_control/health")

    def records(self, path: str | None = None) -> list[Record]:
        query = f"?path={quote(path)}" if path else ""
        return [Record(r) for r in self._call("GET", "/_control/records" + query)]

    def reset(self) -> None:
        """Forget every record and failure rule."""
        self._call("POST", "/_control/reset")

    def fail(self, status: int | None = None, count: int = 1, path: str | None = None,
             delay_ms: int = 0, close: bool = False, body: str | None = None) -> None:
        """Answer the next `count` requests to `path` (None: any intake path) with a failure.

        `status`: answer it instead of 202/400; `delay_ms`: wait first; `close`: read the request
        and close the connection without answering. count=-1 lasts until clear_failures()/reset().
        """
        self._call("POST", "/_control/fail", {
            "path": path, "status": status, "count": count,
            "delay_ms": delay_ms, "close": close, "body": body,
        })

    def clear_failures(self) -> None:
        self._call("POST", "/_control/fail", {"clear": True})

    def _call(self, method: str, path: str, payload: Any = None, timeout: float = 10.0) -> Any:
        """One control request on a fresh connection (never held across a fault test)."""
        parts = urlsplit(self.url)
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                               context=_trust_anything())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        body = json.dumps(payload).encode() if payload is not None else None
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
        except OSError as exc:
            raise IntakeControlError(f"{self}: {method} {path}: {exc}") from exc
        finally:
            conn.close()
        if response.status != 200:
            raise IntakeControlError(f"{self}: {method} {path}: {response.status} {data!r}")
        return json.loads(data)

    # -- waiting --------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[FakeIntake], Any], timeout: float = 10.0,
                 interval: float = 0.05, message: str | None = None) -> Any:
        """Poll until predicate(self) is truthy and return its value.

        AssertionError and LookupError inside the predicate count as "not yet", so
        `lambda i: i.series()[0]["metric"] == "x"` works before anything arrived. On timeout the
        AssertionError says what was awaited and what the intake did receive.
        """
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                result = predicate(self)
                if result:
                    return result
            except (AssertionError, LookupError) as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        what = message or _describe_predicate(predicate)
        because = f"\n  last error: {last_error!r}" if last_error else ""
        raise AssertionError(
            f"fake intake: not true after {timeout:g}s: {what}{because}\n{self.describe()}"
        )

    def describe(self) -> str:
        """What arrived so far, by path and status, with the errors: for failure messages."""
        records = self.records()
        if not records:
            return "  received nothing"
        counts = Counter((r["method"], r["path"], r["status"]) for r in records)
        lines = [f"  {n} x {m} {p} -> {s}" for (m, p, s), n in sorted(counts.items(), key=str)]
        lines += [f"  error in #{r['id']} {r['path']}: {r['error']}" for r in records if r["error"]]
        return "\n".join(lines)

    # -- decoded data, as Datadog would have kept it ---------------------------------------------

    def accepted_payloads(self, path: str) -> list[Any]:
        """Payloads answered 2xx and decoded: retried copies answered 5xx are left out."""
        return [r["payload"] for r in self.records(path) if r.accepted]

    def series(self) -> list[dict[str, Any]]:
        """Every accepted MetricSeries, flattened; `type` lowercase, points as (ts, value)."""
        return [_flatten_series(s) for p in self.accepted_payloads(SERIES_PATH) for s in p["series"]]

    def sketches(self) -> list[dict[str, Any]]:
        return [_flatten_sketch(s) for p in self.accepted_payloads(SKETCHES_PATH) for s in p["sketches"]]

    def service_checks(self) -> list[dict[str, Any]]:
        """Every check of every accepted check_run payload (each payload is a JSON list)."""
        checks: list[dict[str, Any]] = []
        for payload in self.accepted_payloads(CHECK_RUN_PATH):
            checks += payload if isinstance(payload, list) else [payload]
        return checks

    def events(self) -> list[Any]:
        """One accepted payload per request: PROTOCOL.md sends one event per request."""
        return self.accepted_payloads(EVENTS_PATH)

    def traces(self) -> list[dict[str, Any]]:
        """Accepted AgentPayloads as dicts (field names as in trace.proto)."""
        return self.accepted_payloads(TRACES_PATH)

    def stats(self) -> list[Any]:
        return self.accepted_payloads(STATS_PATH)

    def stats_groups(self) -> list[dict[str, Any]]:
        """Every ClientGroupedStats of every accepted StatsPayload, flattened with its bucket
        (`start`, `width`), its ClientStatsPayload (`lang`, `env`, `version`, `service`, ...) and
        `client_computed`; OkSummary and ErrorSummary decoded as DDSketch protobufs into
        `ok_sketch` / `error_sketch` dicts with their total `count` (bins and zero bin)."""
        out: list[dict[str, Any]] = []
        for payload in self.stats():
            for csp in payload.get("Stats") or []:
                for bucket in csp.get("Stats") or []:
                    for group in bucket.get("Stats") or []:
                        row = dict(group)
                        row.update(start=bucket["Start"], width=bucket["Duration"], lang=csp.get("Lang"),
                                   env=csp.get("Env"), version=csp.get("Version"), service=csp.get("Service"),
                                   tracer_version=csp.get("TracerVersion"), container_id=csp.get("ContainerID"),
                                   client_computed=payload.get("ClientComputed"))
                        row["ok_sketch"] = decode_ddsketch(group.get("OkSummary"))
                        row["error_sketch"] = decode_ddsketch(group.get("ErrorSummary"))
                        out.append(row)
        return out

    def logs(self) -> list[dict[str, Any]]:
        """Every log entry of every accepted /api/v2/logs batch (each batch is a JSON array), in
        arrival order."""
        return [entry for batch in self.accepted_payloads(LOGS_PATH) for entry in batch]

    def spans(self) -> list[dict[str, Any]]:
        """Every span of every accepted AgentPayload, flattened with snake_case ids and the
        chunk's and tracer payload's fields alongside (chunk_priority, chunk_origin, language)."""
        out: list[dict[str, Any]] = []
        for payload in self.traces():
            for tp in payload["tracerPayloads"]:
                for chunk in tp["chunks"]:
                    for span in chunk["spans"]:
                        out.append({
                            "trace_id": int(span["traceID"]), "span_id": int(span["spanID"]),
                            "parent_id": int(span["parentID"]), "name": span["name"],
                            "service": span["service"], "resource": span["resource"],
                            "type": span["type"], "start": int(span["start"]),
                            "duration": int(span["duration"]), "error": int(span["error"]),
                            "meta": dict(span["meta"]), "metrics": dict(span["metrics"]),
                            "chunk_priority": chunk["priority"], "chunk_origin": chunk["origin"],
                            "language": tp["languageName"], "payload_env": tp["env"],
                        })
        return out

    def api_keys(self) -> set[str]:
        """Every DD-API-KEY value seen on an intake path, whatever the answer was."""
        return {r["api_key"] for r in self.records() if r["api_key"] is not None}

    def errors(self) -> list[Record]:
        """Records of payloads that did not decompress or decode (answered 400)."""
        return [r for r in self.records() if r["error"]]


def decode_ddsketch(b64: str | None) -> dict[str, Any] | None:
    """A stats summary (base64 of a DDSketch protobuf, as the intake records msgpack bin) as a
    dict with the decoded fields and `count`; None when absent."""
    if not b64:
        return None
    import base64

    from . import schema

    sketch = schema.modules().trace.DDSketch.FromString(base64.b64decode(b64))
    positive = sketch.positiveValues
    out = schema.message_to_dict(sketch)
    out["count"] = (sketch.zeroCount + sum(positive.contiguousBinCounts) + sum(positive.binCounts.values()))
    return out


def _flatten_series(series: dict[str, Any]) -> dict[str, Any]:
    resources = [(r["type"], r["name"]) for r in series["resources"]]
    kind = series["type"]
    return {
        "metric": series["metric"],
        "type": kind.lower() if isinstance(kind, str) else str(kind),
        "tags": list(series["tags"]),
        "points": [(int(p["timestamp"]), float(p["value"])) for p in series["points"]],
        "interval": int(series["interval"]),
        "resources": resources,
        "host": next((name for rtype, name in resources if rtype == "host"), None),
        "unit": series["unit"],
        "source_type_name": series["source_type_name"],
        "metadata": series["metadata"],
    }


def _flatten_sketch(sketch: dict[str, Any]) -> dict[str, Any]:
    return {
        "metric": sketch["metric"],
        "host": sketch["host"],
        "tags": list(sketch["tags"]),
        "dogsketches": [
            {key: d[key] for key in ("ts", "cnt", "min", "max", "avg", "sum", "k", "n")}
            for d in sketch["dogsketches"]
        ],
        "metadata": sketch["metadata"],
    }


def _wait_for_port_file(port_file: Path, process: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if process.poll() is not None:
            raise IntakeControlError(f"fake intake exited with {process.returncode} before listening")
        time.sleep(0.02)
    process.kill()
    process.wait()
    raise IntakeControlError(f"fake intake did not listen within {timeout:g}s")


def _trust_anything() -> ssl.SSLContext:
    """The control client talks to our own intake, whose test certificate nobody trusts."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _describe_predicate(predicate: Callable[..., Any]) -> str:
    """The predicate's source line when available: '<lambda>' alone says nothing."""
    try:
        source = inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)
    return source if len(source) <= 300 else source[:300] + "..."
