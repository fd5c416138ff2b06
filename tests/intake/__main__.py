"""Run the fake intake as its own process: `python -m tests.intake --port 0 --port-file FILE`.

Tests in any language start it, read the port from the first stdout line ("listening on
127.0.0.1:<port>") or from --port-file, and drive it over HTTP (README.md). It runs until SIGTERM
or SIGINT, then closes every connection and exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from .server import HOST, IntakeServer, server_ssl_context


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.intake", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 = any free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTPS instead of HTTP")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    return args


def write_port_file(path: Path, port: int) -> None:
    """Write then rename, so a test polling for the file never reads it half-written."""
    partial = path.with_name(path.name + f".{os.getpid()}.tmp")
    partial.write_text(f"{port}\n")
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    context = server_ssl_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    try:
        server = IntakeServer(args.port, ssl_context=context, verbose=args.verbose)
    except OSError as exc:
        print(f"fake intake: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    server.start()
    if args.port_file:
        write_port_file(args.port_file, server.port)
    print(f"listening on {HOST}:{server.port}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
