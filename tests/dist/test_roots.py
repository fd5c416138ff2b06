"""Each front door, installed as a user installs it, on a bare Debian root of each architecture
(python3, python3-venv, nodejs and ca-certificates; no libevent, libcurl, TLS library -dev package
or compiler; arm64 runs under qemu): the services start, take one DogStatsD metric over UDP and one
trace over HTTP, and deliver both to the fake intake over HTTPS, trusted through the root's own CA
store (the test CA added with update-ca-certificates). Without the CA: nothing is delivered, the
failure is logged, and the process still stops by itself (issue 10, point 4)."""

from __future__ import annotations

import re

import pytest

from tests.intake.client import SERIES_PATH, TRACES_PATH

from .conftest import ARCHES, ROOT_SCRIPTS, in_root, last_json

DOORS = ("python", "node", "cli")


def run_door(door: str, arch: str, artifacts, node_projects, intake, ca, flush_s: float):
    env = {"DD_API_KEY": "dist-test-key", "DD_DD_URL": intake.url, "DD_APM_DD_URL": intake.url,
           "DD_LOG_LEVEL": "info", "DDS_SEND_PY": "/t/send.py"}
    binds = {ROOT_SCRIPTS: "/t", artifacts.wheels[arch].parent: "/dist"}
    if door == "python":
        wheel = f"/dist/{artifacts.wheels[arch].name}"
        cmd = ["sh", "-c", f"python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -q --no-index {wheel} && "
                           f"/tmp/venv/bin/python /t/run_python.py {flush_s}"]
    elif door == "node":
        binds[node_projects[arch]] = "/proj"
        cmd = ["sh", "-c", f"cd /proj && node run_node.js {int(flush_s * 1000)}"]
    else:
        cmd = ["python3", "/t/run_cli.py", f"/dist/{artifacts.clis[arch].name}", "0.5"]
    return in_root(arch, cmd, ca=ca, binds=binds, env=env)


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("arch", ARCHES)
def test_delivers_over_https_with_the_roots_ca_store(arch, door, artifacts, node_projects, https_intake, pki):
    proc = run_door(door, arch, artifacts, node_projects, https_intake, pki["ca"], 10.0)
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\nintake: {https_intake.describe()}"
    assert proc.returncode == 0, detail
    out = last_json(proc.stdout)
    assert out["send_rc"] == 0, detail
    if door == "cli":
        assert out["exit_code"] == 0, detail
    else:
        assert out["flush_error"] is None and out["stop_error"] is None, detail
        assert out["payloads_sent"] >= 2 and not out["running"], detail
    if door == "node":
        assert out["addon"].startswith("node_modules/@datadog/serverless-node/"), out
    https_intake.wait_for(lambda i: any(s["metric"] == "dist.check" for s in i.series())
                          and any(sp.get("service") == f"dist-{door}" for sp in i.spans()), timeout=15)
    point = next(s for s in https_intake.series() if s["metric"] == "dist.check")
    assert f"door:{door}" in point["tags"], point
    assert https_intake.api_keys() == {"dist-test-key"}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("arch", ARCHES)
def test_sends_nothing_unverified_without_the_ca(arch, door, artifacts, node_projects, https_intake):
    proc = run_door(door, arch, artifacts, node_projects, https_intake, None, 2.0)
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\nintake: {https_intake.describe()}"
    assert proc.returncode == 0, detail  # the script ran to its end: start, send, flush, stop
    out = last_json(proc.stdout)
    assert out["send_rc"] == 0, detail  # the services still accepted the data
    log = "\n".join(out.get("log", [])) + proc.stderr
    assert "certificate" in log.lower(), detail  # the failure is logged, and says why
    if door == "cli":
        assert out["exit_code"] == 0 and re.search(r"stopped: .* [1-9][0-9]* dropped", log), detail
    else:
        # A certificate that fails verification is dropped at once (it would fail the same way on
        # every retry), counted and reported, like a 403; flush and stop still succeed.
        assert out["payloads_sent"] == 0 and out["payloads_dropped"] >= 1 and not out["running"], detail
        assert out["stop_error"] is None, detail
        assert any(e["type"] == "error" and "certificate" in (e.get("message") or "").lower() for e in out["events"]), detail
    assert not [r for r in https_intake.records() if r.get("path") in (SERIES_PATH, TRACES_PATH)], https_intake.describe()
    assert https_intake.health()["tls_handshake_failures"] > 0


@pytest.mark.parametrize("arch", ARCHES)
def test_skip_ssl_validation_still_delivers_without_the_ca(arch, artifacts, https_intake):
    """DD_SKIP_SSL_VALIDATION=true: the user's explicit choice, no CA needed (the static CLI)."""
    env = {"DD_API_KEY": "dist-test-key", "DD_DD_URL": https_intake.url, "DD_APM_DD_URL": https_intake.url,
           "DD_SKIP_SSL_VALIDATION": "true"}
    proc = in_root(arch, ["python3", "/t/run_cli.py", f"/dist/{artifacts.clis[arch].name}", "0.5"],
                   binds={ROOT_SCRIPTS: "/t", artifacts.clis[arch].parent: "/dist"}, env=env)
    out = last_json(proc.stdout)
    assert proc.returncode == 0 and out["exit_code"] == 0, (proc.stdout, proc.stderr)
    https_intake.wait_for(lambda i: any(s["metric"] == "dist.check" for s in i.series()), timeout=15)
