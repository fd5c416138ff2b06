"""A throwaway certificate authority and a server certificate it signs, for HTTPS intakes.

The release artifacts find the system's CA certificates themselves (their TLS library has no
default store), so the tests serve the fake intake over HTTPS with a certificate that only a root
which trusts this CA (`update-ca-certificates`) accepts. The `openssl` command makes them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make test certificates")
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True)


def make_ca_and_server_cert(directory: str | Path, host: str = "127.0.0.1") -> dict[str, Path]:
    """Write ca.crt/ca.key and server.crt/server.key (EC P-256, one day) into `directory`.

    The server certificate names `host` as subjectAltName, is signed by the CA, and is not a CA
    itself, so it verifies only through the CA.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-days", "1", "-keyout", "ca.key", "-out", "ca.crt",
             "-subj", "/CN=datadog-serverless test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={host}", cwd=d)
    alt = f"IP:{host}" if host.replace(".", "").isdigit() or ":" in host else f"DNS:{host}"
    (d / "server.ext").write_text(
        f"subjectAltName={alt}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "1", "-out", "server.crt", "-extfile", "server.ext", cwd=d)
    return {"ca": d / "ca.crt", "cert": d / "server.crt", "key": d / "server.key"}
