"""The fake Datadog intake: a threaded HTTP(S) server that decodes and records every payload.

In: requests from the code under test (any path) and from tests (/_control/..., see README.md).
Out: 202 {} for a payload that decodes, 400 for one that does not, or the failure a test asked
for; a record of every request, served as JSON by GET /_control/records.
It listens on 127.0.0.1 only: every test's traffic stays on this machine.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import socketserver
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

from .records import build_record

HOST = "127.0.0.1"
CONTROL_PREFIX = "/_control/"

# Bodies past this are answered 413 without being read: a guard for the test machine, far above
# anything the project sends (Datadog itself refuses series payloads over 5 MiB uncompressed).
MAX_BODY_BYTES = 64 * 1024 * 1024

# A TLS client that connects and never finishes its handshake gives up its thread after this.
TLS_HANDSHAKE_TIMEOUT_S = 10.0


class HttpError(Exception):
    """A request we answer with `status` before looking at its path (bad framing, too large)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class FailureRule:
    """A failure a test asked for with POST /_control/fail.

    It applies to the next `count` requests whose path equals `path` (None: every non-control
    path); count -1 keeps it until cleared. Several rules queue up: the first matching one wins.
    """

    path: str | None = None
    status: int | None = None
    count: int = 1
    delay_ms: int = 0
    close: bool = False
    body: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> FailureRule:
        """Validate a control request; a typo must fail loudly, not leave the intake healthy."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(known)}")
        rule = cls(**data)
        rule._check()
        return rule

    def _check(self) -> None:
        if self.path is not None and not isinstance(self.path, str):
            raise ValueError("path must be a string or null")
        if self.status is not None and not (
            isinstance(self.status, int) and 100 <= self.status <= 599
        ):
            raise ValueError(f"status must be 100-599 or null, got {self.status!r}")
        if not isinstance(self.count, int) or self.count == 0 or self.count < -1:
            raise ValueError(f"count must be >= 1, or -1 for 'until cleared', got {self.count!r}")
        if not isinstance(self.delay_ms, int) or self.delay_ms < 0:
            raise ValueError(f"delay_ms must be an integer >= 0, got {self.delay_ms!r}")
        if not isinstance(self.close, bool):
            raise ValueError("close must be true or false")
        if self.body is not None and not isinstance(self.body, str):
            raise ValueError("body must be a string or null")
        if self.status is None and not self.delay_ms and not self.close:
            raise ValueError("nothing to do: give status, delay_ms or close")

    def matches(self, path: str) -> bool:
        return self.count != 0 and (self.path is None or self.path == path)


class IntakeState:
    """Records and failure rules, shared by every handler thread behind one lock.

    Records are dicts that are never mutated after they are handed out: updates replace keys
    under the lock, and readers get shallow copies.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._rules: list[FailureRule] = []
        self._next_id = 1

    def add_rule(self, rule: FailureRule) -> int:
        with self._lock:
            self._rules.append(rule)
            return len(self._rules)

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def take_rule(self, path: str) -> FailureRule | None:
        """The first rule matching `path`, with one use consumed; spent rules are dropped."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(path):
                    taken = dataclasses.replace(rule)
                    if rule.count > 0:
                        rule.count -= 1
                    self._rules = [r for r in self._rules if r.count != 0]
                    return taken
        return None

    def add_record(self, record: dict[str, Any]) -> None:
        with self._lock:
            record["id"] = self._next_id
            self._next_id += 1
            self._records.append(record)

    def update_record(self, record: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            record.update(fields)

    def records(self, path: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records if path is None or r["path"] == path]

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._rules.clear()


class IntakeHandler(BaseHTTPRequestHandler):
    """One connection. HTTP/1.1 keep-alive, because libcurl reuses connections to Datadog."""

    protocol_version = "HTTP/1.1"
    server_version = "dds-fake-intake/1"
    server: IntakeServer

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        is_control = url.path.startswith(CONTROL_PREFIX)
        try:
            body = self._read_body()
        except HttpError as exc:
            self._refuse(url, is_control, exc)
            return
        if is_control:
            self._control(url, body)
        else:
            self._intake(url, body)

    do_PUT = do_GET = do_DELETE = do_PATCH = do_POST

    # -- reading --------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            raise HttpError(400, f"bad Content-Length {raw_length!r}") from None
        if length < 0:
            raise HttpError(400, f"bad Content-Length {raw_length!r}")
        if length > MAX_BODY_BYTES:
            raise HttpError(413, f"body of {length} bytes over {MAX_BODY_BYTES}")
        return self._read_exactly(length)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise HttpError(400, f"bad chunk size line {line[:40]!r}") from None
            if size == 0:
                break
            if len(body) + size > MAX_BODY_BYTES:
                raise HttpError(413, f"chunked body over {MAX_BODY_BYTES} bytes")
            body += self._read_exactly(size)
            self._read_exactly(2)  # the CRLF after each chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers: nothing we need
        return bytes(body)

    def _read_exactly(self, length: int) -> bytes:
        data = self.rfile.read(length)
        if len(data) != length:
            raise ConnectionAbortedError("client closed the connection mid-body")
        return data

    # -- intake paths ---------------------------------------------------------------------------

    def _intake(self, url: SplitResult, body: bytes) -> None:
        rule = self.server.state.take_rule(url.path)
        record = build_record(self.command, url, self.headers, body)
        status = _answer_status(record, rule)
        record["status"] = status
        record["fault"] = dataclasses.asdict(rule) if rule else None
        self.server.state.add_record(record)  # visible to tests before a delay runs out

        if rule and rule.delay_ms:
            self.server.stopping.wait(rule.delay_ms / 1000)
        if (rule and rule.close) or self.server.stopping.is_set():
            self._drop_connection()  # a stopped intake is down: it does not answer late
            return
        if rule and rule.body is not None:
            answer = rule.body.encode()
        elif record["error"]:
            answer = json.dumps({"errors": [record["error"]]}).encode()
        else:
            answer = b"{}"
        answered = self._send(status, answer)
        self.server.state.update_record(record, answered=answered)

    def _refuse(self, url: SplitResult, is_control: bool, exc: HttpError) -> None:
        """Answer a request whose body we could not read, and record it like any other failure."""
        if not is_control:
            record = build_record(self.command, url, self.headers, b"")
            record.update(status=exc.status, error=str(exc), answered=True)
            self.server.state.add_record(record)
        self.close_connection = True  # the unread body would be taken for the next request
        self._send(exc.status, json.dumps({"errors": [str(exc)]}).encode())

    def _drop_connection(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- control paths --------------------------------------------------------------------------

    def _control(self, url: SplitResult, body: bytes) -> None:
        name = url.path[len(CONTROL_PREFIX) :].strip("/")
        handler = {
            "health": self._control_health,
            "records": self._control_records,
            "reset": self._control_reset,
            "fail": self._control_fail,
        }.get(name)
        if handler is None:
            self._send_json(404, {"error": f"no control endpoint {url.path!r}"})
            return
        try:
            status, answer = handler(url, body)
        except ValueError as exc:
            status, answer = 400, {"error": str(exc)}
        self._send_json(status, answer)

    def _control_health(self, url: SplitResult, body: bytes) -> tuple[int, Any]:
        return 200, {
            "ok": True,
            "port": self.server.port,
            "tls": self.server.ssl_context is not None,
            "records": len(self.server.state.records()),
            "tls_handshake_failures": self.server.tls_handshake_failures,
        }

    def _control_records(self, url: SplitResult, body: bytes) -> tuple[int, Any]:
        path = parse_qs(url.query).get("path", [None])[0]
        return 200, self.server.state.records(path)

    def _control_reset(self, url: SplitResult, body: bytes) -> tuple[int, Any]:
        self.server.reset()
        return 200, {}

    def _control_fail(self, url: SplitResult, body: bytes) -> tuple[int, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise ValueError(f"body is not JSON: {exc}") from None
        if isinstance(data, dict) and data.get("clear") is True and len(data) == 1:
            self.server.state.clear_rules()
            return 200, {"rules": 0}
        return 200, {"rules": self.server.state.add_rule(FailureRule.from_json(data))}

    # -- writing --------------------------------------------------------------------------------

    def _send_json(self, status: int, value: Any) -> bool:
        return self._send(status, json.dumps(value).encode())

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> bool:
        """Write a whole response; False when the client went away first (it timed out)."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return True
        except OSError:
            self.close_connection = True
            return False

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


def _answer_status(record: dict[str, Any], rule: FailureRule | None) -> int | None:
    """Injected status first (tests choose it), then 400 for a bad payload, else 202 like Datadog."""
    if rule and rule.close:
        return None
    if rule and rule.status is not None:
        return rule.status
    return 400 if record["error"] else 202


class IntakeServer(ThreadingHTTPServer):
    """The listening socket plus shared state. start() serves on a thread; stop() takes it down.

    stop() also shuts every open connection: a keep-alive connection left to its handler thread
    would keep answering after the intake is supposed to be down.
    """

    allow_reuse_address = True  # a new intake can take the port of one just stopped
    daemon_threads = True  # a hung connection never blocks interpreter exit

    def __init__(
        self, port: int = 0, *, ssl_context: ssl.SSLContext | None = None, verbose: bool = False
    ) -> None:
        self.state = IntakeState()
        self.ssl_context = ssl_context
        self.verbose = verbose
        self.stopping = threading.Event()
        self.tls_handshake_failures = 0
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        super().__init__((HOST, port), IntakeHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall for seconds without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{HOST}:{self.port}"

    def start(self) -> IntakeServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-intake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close the listening socket and every open connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def reset(self) -> None:
        """Back to a fresh intake without closing the port: records, rules and counters."""
        self.state.reset()
        with self._connections_lock:
            self.tls_handshake_failures = 0

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs on the connection's own thread: the TLS handshake happens here, not in accept()."""
        conn = request
        if self.ssl_context is not None:
            conn = self._tls_handshake(request)
            if conn is None:
                return
        with self._connections_lock:
            self._connections.add(conn)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            with self._connections_lock:
                self._connections.discard(conn)
            if conn is not request:
                conn.close()

    def _tls_handshake(self, request: socket.socket) -> ssl.SSLSocket | None:
        """Counted failures let tests see that a client refused our (untrusted) certificate."""
        request.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self._connections_lock:
                self.tls_handshake_failures += 1
            return None
        conn.settimeout(None)
        return conn

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (timeouts, fault tests) are normal here; anything else is our bug."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)) and not self.verbose:
            return
        super().handle_error(request, client_address)


def server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context
