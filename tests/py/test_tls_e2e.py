"""CA certificate discovery (issue 10) through the real binary and an HTTPS fake intake whose
certificate is self-signed: trusted when DD_TLS_CA_PATH, SSL_CERT_FILE or SSL_CERT_DIR names it,
refused (and reported, never sent) when the bundle found is another one or none is found at all.
Every case stops cleanly with exit code 0 on SIGTERM."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.intake.client import FakeIntake
from tests.intake.tls import make_self_signed_cert
from tests.py.cli import Cli, cli_path

API_KEY = "tls-test-key-0123456789abcdef"
# The variables the search reads; "" counts as unset, which overrides what the machine exports.
NO_CA_VARS = {"SSL_CERT_FILE": "", "SSL_CERT_DIR": "", "DD_TLS_CA_PATH": ""}


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    """The intake's certificate and key, and an unrelated certificate (a wrong bundle)."""
    cert, key = make_self_signed_cert(tmp_path / "intake")
    other, _ = make_self_signed_cert(tmp_path / "other")
    return {"cert": cert, "key": key, "other": other}


def run_once(intake: FakeIntake, metric: str, env: dict[str, str], program: str | None = None,
             args: list[str] | None = None) -> Cli:
    """Start the binary against the intake, send one counter, stop it with SIGTERM (exit 0)."""
    base = {"DD_API_KEY": API_KEY, "DD_DD_URL": f"https://127.0.0.1:{intake.port}",
            "DD_DOGSTATSD_FLUSH_INTERVAL_MS": "500", "DD_LOG_LEVEL": "debug", **NO_CA_VARS}
    base.update(env)
    cli = Cli(base, args=args, program=program)
    try:
        cli.wait_ready()
        cli.send(f"{metric}:1|c")
        time.sleep(0.1)
        assert cli.terminate(timeout=10) == 0, "\n".join(cli.stderr_lines)
    finally:
        cli.kill()
    return cli


def delivered(intake: FakeIntake, metric: str) -> bool:
    return any(s["metric"] == metric for s in intake.series())


def chosen_line(cli: Cli) -> str:
    lines = [l for l in cli.stderr_lines if "TLS: verifying the intake with" in l]
    assert len(lines) == 1, "\n".join(cli.stderr_lines)
    return lines[0]


def test_ssl_cert_file_naming_the_intakes_certificate_delivers(certs):
    with FakeIntake(tls_cert=certs["cert"], tls_key=certs["key"]) as intake:
        cli = run_once(intake, "tls.cert_file", {"SSL_CERT_FILE": str(certs["cert"])})
        assert delivered(intake, "tls.cert_file"), "\n".join(cli.stderr_lines)
    assert f"the bundle {certs['cert']} (SSL_CERT_FILE)" in chosen_line(cli)


def test_dd_tls_ca_path_wins_over_a_wrong_ssl_cert_file(certs):
    with FakeIntake(tls_cert=certs["cert"], tls_key=certs["key"]) as intake:
        cli = run_once(intake, "tls.explicit",
                       {"DD_TLS_CA_PATH": str(certs["cert"]), "SSL_CERT_FILE": str(certs["other"])})
        assert delivered(intake, "tls.explicit"), "\n".join(cli.stderr_lines)
    assert f"the bundle {certs['cert']} (tls_ca_path)" in chosen_line(cli)


def test_ssl_cert_dir_list_takes_the_first_existing_directory(certs, tmp_path):
    ca_dir = tmp_path / "ca-dir"
    ca_dir.mkdir()
    shutil.copy(certs["cert"], ca_dir / "intake.pem")
    # An OpenSSL libcurl (the development build) looks certificates up by their hashed names;
    # a mbedTLS one reads every file, so the extra link changes nothing there.
    subprocess.run(["openssl", "rehash", str(ca_dir)], check=True, capture_output=True)
    with FakeIntake(tls_cert=certs["cert"], tls_key=certs["key"]) as intake:
        cli = run_once(intake, "tls.cert_dir", {"SSL_CERT_DIR": f"{tmp_path / 'missing'}:{ca_dir}"})
        assert delivered(intake, "tls.cert_dir"), "\n".join(cli.stderr_lines)
    assert f"the directory {ca_dir} (SSL_CERT_DIR)" in chosen_line(cli)


def test_a_wrong_bundle_sends_nothing_and_reports_the_failure(certs):
    with FakeIntake(tls_cert=certs["cert"], tls_key=certs["key"]) as intake:
        cli = run_once(intake, "tls.wrong", {"SSL_CERT_FILE": str(certs["other"])})
        assert intake.records() == []  # not one request got past the handshake
    log = "\n".join(cli.stderr_lines)
    assert re.search(r"ERROR .*could not send a series payload .*certificate.*: dropped", log), log
    stopped = [l for l in cli.stderr_lines if "stopped:" in l][-1]
    assert "0 payloads sent" in stopped and "1 dropped" in stopped, stopped


def test_skip_ssl_validation_needs_no_ca(certs):
    with FakeIntake(tls_cert=certs["cert"], tls_key=certs["key"]) as intake:
        cli = run_once(intake, "tls.skip", {"DD_SKIP_SSL_VALIDATION": "true"})
        assert delivered(intake, "tls.skip"), "\n".join(cli.stderr_lines)
    assert not [l for l in cli.stderr_lines if "CA certificates" in l]


def private_etc_ssl_available() -> str | None:
    """Why the binary cannot run with an empty /etc/ssl of its own here, or None when it can."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs tmpfs /etc/ssl"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"no private mount namespace: {probe.stderr.strip()}"


def test_no_ca_anywhere_starts_reports_once_and_never_sends(certs):
    """With /etc/ssl empty (a tmpfs in a private mount namespace) and no variable set, nothing is
    found: the binary still starts and counts what it receives, says so once (a log line and a
    status event), and every https request fails: dropped and counted, never sent unverified."""
    why = private_etc_ssl_available()
    if why:
        pytest.skip(why)
    mounts = "mount -t tmpfs tmpfs /etc/ssl" + (" && mount -t tmpfs tmpfs /etc/pki" if Path("/etc/pki").is_dir() else "")
    wrapper = ["--mount", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$0"', cli_path()]
    with FakeIntake(tls_cert=certs["cert"], tls_key=certs["key"]) as intake:
        cli = run_once(intake, "tls.none", {}, program="unshare", args=wrapper)
        assert intake.records() == []
    errors = [l for l in cli.stderr_lines if " ERROR " in l and "no CA certificates found" in l]
    assert len(errors) == 1, "\n".join(cli.stderr_lines)
    for place in ("DD_TLS_CA_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "/etc/ssl/certs/ca-certificates.crt (missing)",
                  "/etc/pki/tls/certs/ca-bundle.crt (missing)", "/etc/ssl/certs/ (missing)"):
        assert place in errors[0], errors[0]
    # The status event reaches the host (the binary prints status errors).
    assert any("datadog-serverless-compat: error: no CA certificates found" in l for l in cli.stderr_lines)
    assert any("could not send a series payload" in l and "no CA certificates were found at start" in l
               for l in cli.stderr_lines), "\n".join(cli.stderr_lines)
    stopped = [l for l in cli.stderr_lines if "stopped:" in l][-1]
    assert "1 metric lines" in stopped and "0 payloads sent" in stopped and "1 dropped" in stopped, stopped
