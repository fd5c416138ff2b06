"""Helpers for the tests of the Python package (datadog_serverless): a config that talks only to
loopback (port 0 everywhere, intake URLs at the fake intake), UDP sends, RSS readings."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from datadog_serverless import ServicesConfig

API_KEY = "py-test-api-key-0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]


def local_config(intake=None, **overrides) -> ServicesConfig:
    """Any free ports, and every intake URL at `intake` (dry run without one)."""
    fields = {"dogstatsd_port": 0, "apm_receiver_port": 0, "log_level": "warn"}
    if intake is not None:
        fields.update(api_key=API_KEY, dd_url=intake.url, apm_dd_url=intake.url,
                      apm_telemetry_dd_url=intake.url, apm_profiling_dd_url=intake.url + "/api/v2/profile")
    fields.update(overrides)
    return ServicesConfig(**fields)


def child_env(intake=None, **extra: str) -> dict[str, str]:
    """The environment of a child process: no DD_* of ours, loopback ports and the intake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    env.update({"DD_DOGSTATSD_PORT": "0", "DD_APM_RECEIVER_PORT": "0", "PYTHONPATH": str(REPO)})
    if intake is not None:
        env.update({"DD_API_KEY": API_KEY, "DD_DD_URL": intake.url, "DD_APM_DD_URL": intake.url,
                    "DD_APM_TELEMETRY_DD_URL": intake.url})
    env.update(extra)
    return env


def send_udp(port: int, *lines: str | bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for line in lines:
            s.sendto(line.encode() if isinstance(line, str) else line, ("127.0.0.1", port))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def metric_names(intake) -> set[str]:
    return {s["metric"] for s in intake.series()}


def console_script() -> str:
    """The installed `datadog-serverless-compat` of this interpreter's environment."""
    path = Path(sys.executable).parent / "datadog-serverless-compat"
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} missing: install the package (scripts/test-python)")
    return str(path)
