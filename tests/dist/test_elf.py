"""Every ELF in every release artifact needs nothing but glibc 2.17 (or nothing at all, for the
static CLI), and the packages are what their installers expect (issue 10, point 2)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from .conftest import ARCHES, DIST, REPO

# The libraries a manylinux 2014 wheel may need from the system (PEP 599), limited to what glibc provides.
ALLOWED_NEEDED = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                  "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}
MACHINE = {"amd64": "Advanced Micro Devices X86-64", "arm64": "AArch64"}
SIZE_LIMITS = {"wheel": 3_000_000, "npm": 4_000_000, "cli": 4_000_000}


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True, text=True).stdout


def elf_files(artifact: Path, into: Path) -> list[Path]:
    """Unpack an artifact (or take it as it is) and return its ELF files."""
    if artifact.suffix == ".whl":
        with zipfile.ZipFile(artifact) as z:
            z.extractall(into)
    elif artifact.name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(artifact) as t:
            t.extractall(into, filter="data")
    else:
        return [artifact]
    return [p for p in into.rglob("*") if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"]


def check_dynamic(path: Path, arch: str) -> None:
    header = readelf("-h", str(path))
    assert MACHINE[arch] in header, f"{path.name}: not an {arch} ELF:\n{header}"
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf("-d", str(path))))
    assert needed <= ALLOWED_NEEDED, f"{path.name} needs {sorted(needed - ALLOWED_NEEDED)}"
    versions = set(re.findall(r"@([A-Z_]+[0-9.]*)", readelf("--dyn-syms", str(path))))
    foreign = {v for v in versions if not v.startswith("GLIBC_")}
    assert not foreign, f"{path.name} references {sorted(foreign)} (libstdc++? another library?)"
    newest = max((tuple(int(x) for x in v[6:].split(".")) for v in versions if v[6:]), default=(0,))
    assert newest <= (2, 17), f"{path.name} needs GLIBC_{'.'.join(map(str, newest))}"


@pytest.mark.parametrize("arch", ARCHES)
def test_wheel_extension_needs_only_glibc_2_17(artifacts, arch, tmp_path):
    elves = elf_files(artifacts.wheels[arch], tmp_path)
    assert [p.name for p in elves] == ["_core.abi3.so"]
    check_dynamic(elves[0], arch)
    exports = re.findall(r"\s(?:FUNC|OBJECT)\s+GLOBAL\s+DEFAULT\s+\d+\s+(\S+)", readelf("--dyn-syms", str(elves[0])))
    assert exports == ["PyInit__core"], exports


@pytest.mark.parametrize("arch", ARCHES)
def test_node_prebuild_needs_only_glibc_2_17(artifacts, arch, tmp_path):
    elves = elf_files(artifacts.npm, tmp_path)
    node_arch = ARCHES[arch]["node"]
    mine = [p for p in elves if f"/prebuilds/linux-{node_arch}/" in str(p)]
    assert [p.name for p in mine] == ["node.napi.glibc.node"], [str(p) for p in elves]
    check_dynamic(mine[0], arch)
    exports = sorted(re.findall(r"\s(?:FUNC|OBJECT)\s+GLOBAL\s+DEFAULT\s+\d+\s+(\S+)", readelf("--dyn-syms", str(mine[0]))))
    assert exports == ["napi_register_module_v1", "node_api_module_get_api_version_v1"], exports


@pytest.mark.parametrize("arch", ARCHES)
def test_cli_is_fully_static(artifacts, arch):
    cli = artifacts.clis[arch]
    assert ARCHES[arch]["uname"] in cli.name
    assert MACHINE[arch] in readelf("-h", str(cli))
    programs = readelf("-l", str(cli))
    assert "INTERP" not in programs and "DYNAMIC" not in programs, programs
    assert cli.stat().st_mode & 0o111, "not executable"


@pytest.mark.parametrize("arch", ARCHES)
def test_sdk_tree_and_archive(artifacts, arch, tmp_path):
    with tarfile.open(artifacts.sdks[arch]) as t:
        names = sorted(n.split("/", 1)[1] for n in t.getnames() if "/" in n and not t.getmember(n).isdir())
        t.extractall(tmp_path, filter="data")
    assert names == [
        "include/datadog_serverless.h",
        "lib/cmake/datadog_serverless/datadog_serverlessConfig.cmake",
        "lib/cmake/datadog_serverless/datadog_serverlessConfigVersion.cmake",
        "lib/libdatadog_serverless.a",
        "lib/pkgconfig/datadog-serverless.pc",
    ]
    archive = next(tmp_path.rglob("libdatadog_serverless.a"))
    # One archive holds the core and every dependency: their entry points are defined inside it.
    symbols = subprocess.run(["nm", "--defined-only", str(archive)], capture_output=True, text=True).stdout
    for name in ("dds_start", "curl_multi_init", "event_base_new", "mbedtls_ssl_setup", "ZSTD_compress2", "deflate"):
        assert re.search(rf" T {name}$", symbols, re.M), f"{name} is not defined in {archive.name}"
    # ... and nothing but the public API is visible to the program that links it (PIC, hidden).
    visible = set(re.findall(r"\sGLOBAL\s+DEFAULT\s+\d+\s+(\S+)", readelf("-s", str(archive))))
    assert visible and all(v.startswith("dds_") for v in visible), sorted(v for v in visible if not v.startswith("dds_"))[:10]


def test_wheels_are_manylinux2014(artifacts):
    for arch, wheel in artifacts.wheels.items():
        assert "manylinux_2_17_" + ARCHES[arch]["uname"] in wheel.name and "manylinux2014" in wheel.name, wheel.name
        out = subprocess.run(["auditwheel", "show", str(wheel)], capture_output=True, text=True, check=True).stdout
        flat = " ".join(out.split())
        assert f'consistent with the following platform tag: "manylinux_2_17_{ARCHES[arch]["uname"]}"' in flat, out


def test_packages_carry_the_docs(artifacts):
    docs = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    assert "MIGRATING.md" in docs and "TROUBLESHOOTING.md" in docs, docs
    for wheel in artifacts.wheels.values():
        with zipfile.ZipFile(wheel) as z:
            carried = sorted(n.split("/")[-1] for n in z.namelist() if n.startswith("datadog_serverless/docs/") and n.endswith(".md"))
        assert carried == docs, (wheel.name, carried)
    with tarfile.open(artifacts.npm) as t:
        carried = sorted(n.split("/")[-1] for n in t.getnames() if n.startswith("package/docs/"))
    assert carried == docs, carried


def test_sizes(artifacts):
    for wheel in artifacts.wheels.values():
        assert wheel.stat().st_size <= SIZE_LIMITS["wheel"], (wheel.name, wheel.stat().st_size)
    assert artifacts.npm.stat().st_size <= SIZE_LIMITS["npm"], artifacts.npm.stat().st_size
    for cli in artifacts.clis.values():
        assert cli.stat().st_size <= SIZE_LIMITS["cli"], (cli.name, cli.stat().st_size)


def test_sha256sums_cover_every_artifact(artifacts):
    listed = {}
    for line in (DIST / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name.lstrip("*")] = digest
    files = [*artifacts.wheels.values(), *artifacts.clis.values(), *artifacts.sdks.values(), artifacts.npm]
    for f in files:
        assert listed.get(f.name) == hashlib.sha256(f.read_bytes()).hexdigest(), f.name
