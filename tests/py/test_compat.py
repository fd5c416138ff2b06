"""datadog_serverless.compat: the console script `datadog-serverless-compat` is the C program
(dds_compat_main) run inside Python: same variables, signals, exit codes, stderr lines and dry-run
output as the C binary, and SIGTERM's final flush reaches the intake."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.py import cli as cli_module
from tests.py.cli import Cli
from tests.py.services_util import API_KEY, console_script


@pytest.fixture
def script(monkeypatch) -> str:
    """Cli() runs the console script instead of the C binary."""
    path = console_script()
    monkeypatch.setattr(cli_module, "cli_path", lambda: path)
    return path


def c_binary() -> str:
    path = os.environ.get("DDS_CLI") or str(cli_module.REPO / "build-c" / "datadog-serverless-compat")
    if not os.access(path, os.X_OK):
        pytest.skip("the C binary is not built (scripts/build)")
    return path


def run(program: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    full.update({"DD_DOGSTATSD_PORT": "0", "DD_APM_RECEIVER_PORT": "0"})
    full.update(env)
    return subprocess.run([program, *args], env=full, capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("args,env", [
    (["--version"], {}),
    (["--help"], {}),
    (["--bogus"], {}),
    ([], {"DD_DOGSTATSD_PORT": "70000"}),
    ([], {"DD_SITE": "example.com/"}),
    ([], {"DD_LOG_LEVEL": "loud"}),
    ([], {"DD_APM_ENABLED": "maybe"}),
])
def test_same_output_and_exit_code_as_the_c_binary(script, args, env):
    ours, theirs = run(script, *args, **env), run(c_binary(), *args, **env)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    assert ours.returncode == (0 if args in (["--version"], ["--help"]) else 2)


def test_version_matches_the_package(script):
    import datadog_serverless

    assert run(script, "--version").stdout == f"datadog-serverless-compat {datadog_serverless.__version__}\n"
    module = subprocess.run([sys.executable, "-m", "datadog_serverless", "--version"], capture_output=True, text=True,
                            timeout=20)
    assert module.returncode == 0 and module.stdout == f"datadog-serverless-compat {datadog_serverless.__version__}\n"


def test_taken_port_exits_1_with_one_line(script):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        out = run(script, DD_DOGSTATSD_PORT=str(port), DD_APM_ENABLED="false")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if "Failed to start DogStatsD" in line]
    assert errors == [f"datadog-serverless-compat: Failed to start DogStatsD: cannot bind UDP 127.0.0.1:{port}: "
                      "Address already in use"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_with_a_final_flush(script, fake_intake, sig):
    cli = Cli({"DD_API_KEY": API_KEY, "DD_DD_URL": fake_intake.url})
    cli.wait_ready()
    cli.send("py.compat.final:1|c|#via:console-script")
    time.sleep(0.1)
    t0 = time.monotonic()
    assert cli.terminate(sig) == 0, cli.stderr_lines
    assert time.monotonic() - t0 < 5
    name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
    assert f"datadog-serverless-compat: received {name}: stopping (final flush)" in cli.stderr_lines
    assert not any("Traceback" in line or "KeyboardInterrupt" in line for line in cli.stderr_lines)
    series = [s for s in fake_intake.series() if s["metric"] == "py.compat.final"]
    assert len(series) == 1 and "via:console-script" in series[0]["tags"]
    assert fake_intake.api_keys() == {API_KEY}
    assert any(line.startswith("datadog-serverless-compat: stopped: 1 metric lines") for line in cli.stderr_lines)


def test_dry_run_writes_json_lines_like_the_binary(script, fake_intake):
    cli = Cli({"DD_API_KEY": API_KEY, "DD_DD_URL": fake_intake.url}, ["--dry-run"])
    cli.wait_ready()
    cli.send("py.compat.dry:2|c")
    time.sleep(0.1)
    assert cli.terminate() == 0
    lines = [json.loads(line) for line in cli.stdout_lines]
    series = [s for line in lines if line["endpoint"] == "/api/v2/series" for s in line["payload"]["series"]]
    assert all(line["dry_run"] is True for line in lines)
    assert [s["metric"] for s in series] == ["py.compat.dry"]
    assert fake_intake.records() == []  # nothing sent
