"""A throwaway self-signed certificate for HTTPS intakes.

Fault tests point the project at an intake whose certificate nobody trusts and check that the
payload is refused rather than sent. The `openssl` command line (Debian's openssl package) makes
the certificate, so the tests need no extra Python package.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def make_self_signed_cert(directory: str | Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write cert.pem and key.pem (EC P-256, one day) for `host` into `directory`; return their paths.

    The certificate names the host both as CN and as subjectAltName (IP or DNS), so a client
    that trusts it explicitly (e.g. with a CA bundle option) accepts it, and any other refuses it.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    alt_name = f"IP:{host}" if host.replace(".", "").isdigit() or ":" in host else f"DNS:{host}"
    subprocess.run(
        [
            openssl, "req", "-x509", "-nodes", "-days", "1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", f"/CN={host}", "-addext", f"subjectAltName={alt_name}",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
