"""The one list of environment variables (src_c/config_vars.h) against the code that reads them,
the CLI's --help and the README's tables (written by scripts/config-docs)."""
from __future__ import annotations

import re
import subprocess
import sys
import time

from tests.py.cli import Cli

from tests.py.conftest import REPO_ROOT as REPO

CONFIG_DOCS = REPO / "scripts" / "config-docs"


def table() -> list[tuple[str, str, str, str]]:
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("config_docs", str(CONFIG_DOCS))
    spec = importlib.util.spec_from_loader("config_docs", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod.load()


def test_every_variable_the_code_reads_is_in_the_table():
    listed = {name for _, name, _, _ in table()}
    read = set()
    for path in (REPO / "src_c").rglob("*.[ch]"):
        if path.name == "config_vars.h":
            continue
        read |= set(re.findall(r'"(DD_[A-Z0-9_]+)"', path.read_text()))
    assert read, "no DD_ names found: the scan is broken"
    assert sorted(read - listed) == [], "read in src_c/ but missing from src_c/config_vars.h"
    sources = "\n".join(p.read_text() for p in (REPO / "src_c").rglob("*.[ch]") if p.name != "config_vars.h")
    assert sorted(n for n in listed if f'"{n}"' not in sources) == [], "listed in src_c/config_vars.h but read nowhere"


def test_readme_tables_are_generated_from_the_table():
    out = subprocess.run([sys.executable, str(CONFIG_DOCS), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_help_lists_every_variable_with_its_default():
    cli = Cli({}, ["--help"])
    assert cli.proc.wait(5) == 0
    time.sleep(0.05)
    text = "\n".join(cli.stdout_lines)
    for _, name, default, _ in table():
        line = next((l for l in cli.stdout_lines if l.strip().split(" ")[0] == name), None)
        assert line is not None, f"{name} missing from --help"
        if default:
            assert f"[{default.replace('`', '')}]" in line, (name, line)
    assert "`" not in text
