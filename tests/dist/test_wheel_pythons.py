"""One abi3 wheel for every CPython from 3.11: the x86_64 wheel installed with pip (no index) into
a fresh venv of each CPython 3.11+ this machine has (pyenv's and the system's), imported from
there, and the services started and stopped (issue 10, point 1)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def interpreters() -> dict[str, str]:
    found = {}
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    candidates += [p for p in (shutil.which(f"python3.{m}") for m in range(11, 20)) if p]
    candidates += ["/usr/bin/python3"]
    for exe in candidates:
        if not os.access(exe, os.X_OK):
            continue
        out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.implementation.name)"],
                             capture_output=True, text=True)
        if out.returncode:
            continue
        version, impl = out.stdout.split()
        if impl == "cpython" and tuple(map(int, version.split("."))) >= (3, 11):
            found.setdefault(version, exe)
    return found


PYTHONS = interpreters()


def test_at_least_two_cpythons_are_tried():
    assert len(PYTHONS) >= 2, f"only {PYTHONS} found: the abi3 claim needs more than the build's own CPython"


@pytest.mark.parametrize("version", sorted(PYTHONS))
def test_wheel_installs_and_runs(version, artifacts, tmp_path):
    exe = PYTHONS[version]
    venv = tmp_path / "venv"
    subprocess.run([exe, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--disable-pip-version-check",
                    str(artifacts.wheels["amd64"])], check=True)
    code = ("import datadog_serverless as ds, sys\n"
            "h = ds.ServerlessServices(ds.ServicesConfig(dogstatsd_port=0, apm_receiver_port=0, log_level='off')).start()\n"
            "p = h.ports; h.stop()\n"
            "print(sys.version_info[:2], p.dogstatsd > 0 and p.trace_agent > 0, ds._core.__file__)\n")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "True" in out.stdout and "_core.abi3.so" in out.stdout, out.stdout
