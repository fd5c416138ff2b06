"""Every code block of README.md and docs/*.md whose fence says `run` (```python run, ```c run,
```sh run) is a complete program: extracted here and run against the fake intake, on loopback
only (ports 0, every intake URL at the fake intake), in bounded time, and must exit 0. The
```js run blocks are run the same way by tests/js/doc-examples.test.js. Other blocks are fragments
and stay unmarked."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.py.docs_scan import REPO, code_blocks, markdown_files
from tests.py.services_util import child_env

TIMEOUT_S = 60
RUNNERS = ("python", "c", "sh", "js")


def _blocks():
    return [b for path in markdown_files() for b in code_blocks(path) if b.run]


def _id(block) -> str:
    return f"{block.path.name}:{block.line}"


def test_runnable_blocks_are_marked_and_known():
    blocks = _blocks()
    assert {b.lang for b in blocks} <= set(RUNNERS), {b.lang for b in blocks}
    # The README and the docs hold programs of every runner: a floor against a broken scan.
    assert {"python", "c", "js", "sh"} <= {b.lang for b in blocks}
    assert len(blocks) >= 8, [_id(b) for b in blocks]


def _cli() -> Path:
    return Path(os.environ.get("DDS_CLI", REPO / "build-c" / "datadog-serverless-compat"))


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(intake) -> dict[str, str]:
    # Fixed free ports rather than 0: the "before" examples send to DD_DOGSTATSD_PORT and poll
    # DD_APM_RECEIVER_PORT, since a spawned binary cannot tell them which ports it got.
    env = child_env(intake, DD_APM_PROFILING_DD_URL=intake.url + "/api/v2/profile",
                    DD_LOGS_CONFIG_LOGS_DD_URL=intake.url, DD_LOGS_PORT="0", DD_LOG_LEVEL="warn",
                    DD_DOGSTATSD_PORT=str(_free_port(socket.SOCK_DGRAM)),
                    DD_APM_RECEIVER_PORT=str(_free_port(socket.SOCK_STREAM)))
    # "Before" examples spawn datadog-serverless-compat from PATH, as the wrappers spawn theirs.
    env["PATH"] = f"{_cli().parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _compile_c(source: Path, out: Path) -> None:
    build = _cli().parent
    lib = build / "libdatadog_serverless.a"
    if not lib.exists():
        pytest.skip(f"{lib} missing: scripts/build build-c")
    pkgs = ["libevent_core", "libevent_extra", "libevent_pthreads", "libcurl", "libzstd", "zlib"]
    libs = subprocess.run(["pkg-config", "--libs", *pkgs], capture_output=True, text=True, check=True).stdout.split()
    cc = os.environ.get("CC", "cc")
    # scripts/coverage points DDS_CLI at build-cov/, whose library is gcov-instrumented: the
    # program must then link gcov's runtime too (and adds its counters to the report).
    cache = build / "CMakeCache.txt"
    coverage = ["--coverage"] if cache.exists() and "--coverage" in cache.read_text() else []
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror", "-I", str(REPO / "src_c" / "include"),
                    str(source), str(lib), *libs, "-lpthread", "-lm", *coverage, "-o", str(out)], check=True,
                   capture_output=True, text=True)


@pytest.mark.parametrize("block", [b for b in _blocks() if b.lang != "js"], ids=_id)
def test_block_runs(block, fake_intake, tmp_path):
    cwd = tmp_path
    if block.lang == "python":
        src = tmp_path / "example.py"
        src.write_text(block.code)
        cmd = [sys.executable, str(src)]
    elif block.lang == "c":
        src = tmp_path / "example.c"
        src.write_text(block.code)
        try:
            _compile_c(src, tmp_path / "example")
        except subprocess.CalledProcessError as exc:
            pytest.fail(f"{_id(block)} does not compile:\n{exc.stderr}")
        cmd = [str(tmp_path / "example")]
    elif block.lang == "sh":
        if not shutil.which("bash"):
            pytest.skip("no bash")
        src = tmp_path / "example.sh"
        src.write_text(block.code)
        cmd = ["bash", "-euo", "pipefail", str(src)]
        cwd = REPO  # shell examples are typed at the repository's root (scripts/run ...)
    else:
        pytest.fail(f"{_id(block)}: no runner for '{block.lang}'")
    out = subprocess.run(cmd, cwd=cwd, env=_env(fake_intake), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0, f"{_id(block)} exited {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    # Every runnable example sends something; with the intake configured, it arrives there.
    assert fake_intake.wait_for(lambda i: i.records(), timeout=10), f"{_id(block)}: nothing reached the intake"
