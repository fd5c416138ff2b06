"""The C SDK tarball as a C programmer uses it: examples/c/basic.c compiled against the extracted
tree with pkg-config and with CMake's find_package, linked with nothing but libc, libm and
libpthread, and run; the pkg-config build also inside the amd64 root (no libevent, libcurl or TLS
library there), and the aarch64 tarball cross-compiled with the release toolchain and run in the
arm64 root (issue 10, point 4)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from .conftest import REPO, in_root

EXAMPLE = REPO / "examples" / "c"
# basic.c sends one metric to itself and flushes in dry-run mode: this line closes its output.
DONE = re.compile(r"metric lines: 1, payloads: 1")


def extract(sdk: Path, into: Path) -> Path:
    with tarfile.open(sdk) as t:
        t.extractall(into, filter="data")
    (tree,) = [p for p in into.iterdir() if p.is_dir()]
    return tree


def needed(program: Path) -> set[str]:
    out = subprocess.run(["readelf", "-d", str(program)], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"Shared library: \[([^\]]+)\]", out))


def pkg_config(tree: Path, *args: str) -> list[str]:
    env = {**os.environ, "PKG_CONFIG_PATH": str(tree / "lib" / "pkgconfig"), "PKG_CONFIG_LIBDIR": ""}
    out = subprocess.run(["pkg-config", *args, "datadog-serverless"], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def run(program: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    proc = subprocess.run([str(program)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and DONE.search(proc.stdout + proc.stderr), proc.stdout + proc.stderr
    return proc.stdout


def test_pkg_config_build_runs_here_and_in_the_bare_root(artifacts, tmp_path):
    tree = extract(artifacts.sdks["amd64"], tmp_path / "sdk")
    program = tmp_path / "bin" / "basic"
    program.parent.mkdir()
    subprocess.run(["cc", "-O2", str(EXAMPLE / "basic.c"), "-o", str(program), *pkg_config(tree, "--cflags", "--libs")],
                   check=True)
    assert needed(program) <= {"libc.so.6", "libm.so.6", "libpthread.so.0"}, needed(program)
    run(program)
    proc = in_root("amd64", ["/sdkbin/basic"], binds={program.parent: "/sdkbin"})
    assert proc.returncode == 0 and DONE.search(proc.stdout + proc.stderr), proc.stdout + proc.stderr


def test_cmake_find_package_build_runs(artifacts, tmp_path):
    tree = extract(artifacts.sdks["amd64"], tmp_path / "sdk")
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(EXAMPLE), "-B", str(build), "-G", "Ninja", f"-DCMAKE_PREFIX_PATH={tree}"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    assert needed(build / "basic") <= {"libc.so.6", "libm.so.6", "libpthread.so.0"}
    run(build / "basic")


def test_aarch64_sdk_cross_builds_both_ways_and_runs_in_the_arm64_root(artifacts, tmp_path):
    tree = extract(artifacts.sdks["arm64"], tmp_path / "sdk")
    toolchain = subprocess.run([str(REPO / "scripts" / "deps"), "--toolchain", "aarch64-linux-gnu.2.17"],
                               capture_output=True, text=True, check=True).stdout.strip()
    cc = Path(toolchain).parent / "bin" / "cc"
    bins = tmp_path / "bin"
    bins.mkdir()
    subprocess.run([str(cc), "-O2", str(EXAMPLE / "basic.c"), "-o", str(bins / "basic-pc"),
                    *pkg_config(tree, "--cflags", "--libs")], check=True)
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(EXAMPLE), "-B", str(build), "-G", "Ninja", f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
                    f"-DCMAKE_PREFIX_PATH={tree}", f"-DCMAKE_FIND_ROOT_PATH={tree}"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    shutil.copy(build / "basic", bins / "basic-cmake")
    for name in ("basic-pc", "basic-cmake"):
        assert "AArch64" in subprocess.run(["readelf", "-h", str(bins / name)], capture_output=True, text=True).stdout
        proc = in_root("arm64", [f"/sdkbin/{name}"], binds={bins: "/sdkbin"})
        assert proc.returncode == 0 and DONE.search(proc.stdout + proc.stderr), (name, proc.stdout + proc.stderr)
