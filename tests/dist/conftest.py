"""Fixtures of the release-artifact tests: the artifacts of dist/ (made by scripts/dist), an HTTPS
fake intake whose certificate a test CA signs, the Debian test roots (scripts/roots, entered with
scripts/in-root) and npm projects where the packed tarball is installed as a user installs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.intake.client import FakeIntake

from .pki import make_ca_and_server_cert

REPO = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("DDS_DIST_DIR", REPO / "dist"))
IN_ROOT = REPO / "scripts" / "in-root"
ROOT_SCRIPTS = Path(__file__).resolve().parent / "root"
VERSION = next(line.split("VERSION")[1].split()[0] for line in (REPO / "CMakeLists.txt").read_text().splitlines()
               if line.startswith("project(datadog_serverless VERSION"))

# Debian's architecture names, and what each ecosystem calls the same machine.
ARCHES = {"amd64": {"uname": "x86_64", "node": "x64"}, "arm64": {"uname": "aarch64", "node": "arm64"}}


@dataclass(frozen=True)
class Artifacts:
    wheels: dict[str, Path]
    clis: dict[str, Path]
    sdks: dict[str, Path]
    npm: Path


def _one(pattern: str) -> Path:
    found = sorted(DIST.glob(pattern))
    if len(found) != 1:
        raise AssertionError(f"expected one {pattern} in {DIST}, found {[f.name for f in found]} (run scripts/dist)")
    return found[0]


@pytest.fixture(scope="session")
def artifacts() -> Artifacts:
    wheels, clis, sdks = {}, {}, {}
    for deb, names in ARCHES.items():
        u = names["uname"]
        wheels[deb] = _one(f"datadog_serverless-{VERSION}-cp311-abi3-*{u}.whl")
        clis[deb] = _one(f"datadog-serverless-compat-{VERSION}-linux-{u}")
        sdks[deb] = _one(f"datadog-serverless-sdk-{VERSION}-linux-{u}.tar.gz")
    return Artifacts(wheels, clis, sdks, _one(f"datadog-serverless-node-{VERSION}.tgz"))


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> dict[str, Path]:
    return make_ca_and_server_cert(tmp_path_factory.mktemp("pki"))


@pytest.fixture()
def https_intake(pki):
    with FakeIntake(tls_cert=pki["cert"], tls_key=pki["key"]) as intake:
        yield intake


def in_root(arch: str, command: list[str], *, ca: Path | None = None, binds: dict[Path, str] | None = None,
            env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `command` in the test root of `arch` (never changed by it); returns the finished process."""
    args = [str(IN_ROOT), arch]
    if ca is not None:
        args += ["--ca", str(ca)]
    for host, inside in (binds or {}).items():
        args += ["--bind", f"{host}:{inside}"]
    # Only what the test sets reaches the root: this machine's own SSL_CERT_* and DD_* stay out,
    # so certificate discovery there finds what a user's machine would.
    # DDS_CACHE_DIR says where scripts/in-root finds the roots.
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DD_", "DDS_", "SSL_CERT")) or k == "DDS_CACHE_DIR"}
    clean.update(env or {})
    return subprocess.run(args + ["--"] + command, env=clean, capture_output=True, text=True, timeout=timeout)


def last_json(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON line in the output:\n{stdout}")


@pytest.fixture(scope="session")
def node_projects(artifacts, tmp_path_factory) -> dict[str, Path]:
    """One empty npm project per architecture with the tarball installed, scripts off, as a user would
    (`--cpu=arm64` for the other architecture); run_node.js copied in."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssertionError("npm is needed")
    projects = {}
    for deb, names in ARCHES.items():
        project = tmp_path_factory.mktemp(f"npm-{deb}")
        subprocess.run([npm, "init", "-y"], cwd=project, check=True, capture_output=True)
        subprocess.run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error",
                        f"--cpu={names['node']}", "--os=linux", str(artifacts.npm)],
                       cwd=project, check=True, capture_output=True)
        shutil.copy(ROOT_SCRIPTS / "run_node.js", project / "run_node.js")
        projects[deb] = project
    return projects
