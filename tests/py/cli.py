"""Start and stop the datadog-serverless-compat binary for end-to-end tests.

The binary is found through $DDS_CLI (set by scripts/test) or build-c/. Every test process gets
port 0 (any free port) and reads the bound port back from the binary's own log line, so tests can
run in parallel and never collide with a real agent on 8125.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PORT_RE = re.compile(r"DogStatsD listening on [0-9.]+:(\d+)")


def cli_path() -> str:
    path = os.environ.get("DDS_CLI") or str(REPO / "build-c" / "datadog-serverless-compat")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} not built: run scripts/build first")
    return path


class Cli:
    """One running binary; stdout (dry-run lines) and stderr (logs) are collected by threads.

    Every instance is registered in `Cli.running` until it has exited: the autouse fixture of
    conftest.py kills whatever a test left running (a failed assertion skips the test's own
    terminate()), so one failure never leaves a process holding ports for the rest of the suite.
    It is also a context manager (`with Cli(env) as cli:` kills it on exit if still running)."""

    running: "set[Cli]" = set()

    def __init__(self, env: dict[str, str], args: list[str] | None = None, program: str | None = None):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
        full_env.update({"DD_DOGSTATSD_PORT": "0", "DD_LOG_LEVEL": "info", "DD_APM_ENABLED": "false"})
        full_env.update(env)
        self.proc = subprocess.Popen(
            [program or cli_path(), *(args or [])], env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        Cli.running.add(self)
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._port_seen = threading.Event()
        self.port: int | None = None
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines), daemon=True).start()

    def _pump(self, stream, sink: list[str]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            sink.append(line)
            m = PORT_RE.search(line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._port_seen.set()

    def wait_ready(self, timeout: float = 5.0) -> int:
        if not self._port_seen.wait(timeout):
            raise AssertionError(f"binary did not report its port; stderr: {self.stderr_lines}")
        return self.port  # type: ignore[return-value]

    def send(self, *datagrams: bytes | str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for d in datagrams:
                s.sendto(d.encode() if isinstance(d, str) else d, ("127.0.0.1", self.port))

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        Cli.running.discard(self)
        time.sleep(0.05)  # let the pump threads read the last lines
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        Cli.running.discard(self)

    def __enter__(self) -> "Cli":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()

    @classmethod
    def kill_all(cls) -> list[str]:
        """Kill every instance still running; returns the command lines of those it had to kill."""
        left = []
        for cli in list(cls.running):
            if cli.proc.poll() is None:
                left.append(" ".join(map(str, cli.proc.args)))
            cli.kill()
        return left
