"""The documentation in docs/ against the code: every log line and error code is in
TROUBLESHOOTING.md, every public name is in the API references, the generated tables are up to
date, and the README and docs link only to files of the repository."""
from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import re
import subprocess
import sys

import pytest

from tests.py.docs_scan import DOCS, REPO, compat_stderr_formats, log_formats, markdown_files

HEADER = REPO / "src_c" / "include" / "datadog_serverless.h"
PKG = REPO / "pyx" / "datadog_serverless"
DTS = REPO / "node_addon" / "index.d.ts"


def _api_docs():
    loader = importlib.machinery.SourceFileLoader("api_docs", str(REPO / "scripts" / "api-docs"))
    spec = importlib.util.spec_from_loader("api_docs", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def _doc(name: str) -> str:
    return (DOCS / name).read_text()


def _code_names(text: str) -> set[str]:
    """Every name written as code (`name`, `name(...)`, `Class.name`) in a Markdown text."""
    names = set()
    fence = re.compile(r"^(```+)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
    for block in fence.finditer(text):
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", block.group(2)))
    for span in re.findall(r"`([^`]+)`", fence.sub("", text)):
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span))
    return names


# ---- TROUBLESHOOTING.md --------------------------------------------------------------------------

def test_the_scan_finds_the_log_lines():
    formats = log_formats()
    # A floor, not a count: it catches a scan that silently stopped matching.
    assert len(formats) >= 30, formats
    assert {f.level for f in formats} == {"warn", "error"}
    by_file = {f.where.split(":")[0] for f in formats}
    for path in ("src_c/transport/intake.c", "src_c/trace/receiver.c", "src_c/services.c",
                 "src_c/dogstatsd/server.c", "src_c/logs/batch.c"):
        assert path in by_file, path


def test_every_logging_helper_is_scanned():
    """A function of src_c/ that takes a level and a format prints lines: the scan must know it
    (tests/py/docs_scan.py _CALL), or its lines would escape TROUBLESHOOTING.md."""
    from tests.py.docs_scan import _CALL, SRC
    helpers = set()
    for path in SRC.rglob("*.c"):
        helpers |= set(re.findall(r"^[\w ]*?\b(\w+)\([^)]*\bdds_log_level \w+,[^)]*\bfmt\b", path.read_text(), re.M))
    assert helpers, "no logging helper found: the scan is broken"
    known = set(re.findall(r"\w+", _CALL.pattern.split("(", 1)[1]))
    assert helpers <= known, f"logging helpers the scan does not follow: {sorted(helpers - known)}"


@pytest.mark.parametrize("fmt", log_formats(), ids=lambda f: f.where)
def test_every_warning_and_error_line_is_in_troubleshooting(fmt):
    assert fmt.pattern().search(_doc("TROUBLESHOOTING.md")), (
        f"{fmt.where} logs at {fmt.level}:\n  {fmt.fmt!r}\nwhich docs/TROUBLESHOOTING.md does not list "
        f"(write it with <placeholders> for its conversions; it must match {fmt.pattern().pattern!r})")


@pytest.mark.parametrize("fmt", compat_stderr_formats(), ids=lambda f: f.where)
def test_every_line_of_the_program_is_in_troubleshooting(fmt):
    line = fmt.fmt.rstrip("\n")
    from tests.py.docs_scan import LogFormat
    assert LogFormat(fmt.where, fmt.level, line).pattern().search(_doc("TROUBLESHOOTING.md")), (fmt.where, line)


def test_the_bindings_lines_are_in_troubleshooting():
    text = _doc("TROUBLESHOOTING.md")
    lines = []
    for path in PKG.glob("*.py*"):
        lines += re.findall(r"\b_?logger\.(?:warning|error|exception)\(\s*\"([^\"]+)\"", path.read_text())
    assert len(lines) >= 2, lines
    for line in lines:
        assert f"`{line}`" in text, line
    js = (REPO / "node_addon" / "index.js").read_text()
    warnings = re.findall(r"process\.emitWarning\(`([^`$]*)\$\{", js)
    assert warnings, "no emitWarning found in node_addon/index.js"
    for prefix in warnings:
        assert f"`{prefix}<" in text, prefix


def test_every_error_code_is_in_troubleshooting_with_its_names():
    text = _doc("TROUBLESHOOTING.md")
    header = HEADER.read_text()
    codes = re.findall(r"^\s*(DDS_ERR_\w+) = (-\d+),", header, re.M)
    assert len(codes) >= 9
    names = dict(re.findall(r"case (DDS_ERR_\w+): return \"(\w+)\";", (REPO / "src_c" / "error.c").read_text()))
    errors = ast.parse((PKG / "errors.py").read_text())
    py_class = {}
    for node in errors.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and getattr(item.target, "id", "") == "code":
                    py_class[item.value.value] = node.name
                elif isinstance(item, ast.Assign) and getattr(item.targets[0], "id", "") == "code":
                    py_class[item.value.value] = node.name
    rows = {line.split("|")[1].strip(" `"): line for line in text.splitlines() if line.startswith("| `DDS_ERR_")}
    for code, value in codes:
        assert code in rows, f"{code} has no row in the error table of TROUBLESHOOTING.md"
        row = rows[code]
        assert f"| {value} |" in row, (code, value)
        assert f"`{names[code]}`" in row, (code, names[code])
        assert f"`{py_class[names[code]]}`" in row, (code, py_class[names[code]])


# ---- API references -------------------------------------------------------------------------------

def test_generated_tables_are_up_to_date():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "api-docs"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_api_c_names_every_function_field_stat_and_code():
    names = _code_names(_doc("API-C.md"))
    header = HEADER.read_text()
    functions = re.findall(r"^DDS_API [^;(]*?\b(\w+)\(", header, re.M)
    assert len(functions) >= 15
    config = re.search(r"typedef struct dds_config \{(.*?)\} dds_config;", header, re.S).group(1)
    stats = re.search(r"typedef struct dds_stats \{(.*?)\} dds_stats;", header, re.S).group(1)
    strip = lambda body: re.sub(r"/\*.*?\*/", "", body, flags=re.S)  # noqa: E731
    fields = re.findall(r"(\w+)(?:\[\w+\])?;", strip(config))
    counters = re.findall(r"(\w+)(?:\[\w+\])?;", strip(stats))
    enums = re.findall(r"^\s*(DDS_[A-Z_]+) = ", header, re.M)
    assert len(fields) >= 50 and len(counters) >= 35 and len(enums) >= 20
    for kind, wanted in (("function", functions), ("dds_config field", fields), ("dds_stats field", counters),
                         ("enumerator", enums)):
        missing = sorted(set(wanted) - names)
        assert not missing, f"docs/API-C.md lacks {kind}s: {missing}"


def _dts_members(block: str) -> list[str]:
    body = re.search(r"^export (?:interface|class) " + block + r" \{\n(.*?)^\}", DTS.read_text(), re.S | re.M).group(1)
    body = re.sub(r"/\*.*?\*/|//[^\n]*", "", body, flags=re.S)
    return re.findall(r"^\s+(?:readonly )?(\w+)\??[(:]", body, re.M)


def test_api_node_names_every_option_stat_method_and_code():
    names = _code_names(_doc("API-NODE.md"))
    checks = {
        "option": _dts_members("ServicesConfig"),
        "stats field": _dts_members("ServicesStats"),
        "method": _dts_members("DatadogServices"),
        "status field": _dts_members("ServiceStatus"),
        "error code": re.findall(r"'(ERR_\w+)'", DTS.read_text()),
    }
    assert len(checks["option"]) >= 60 and len(checks["stats field"]) >= 35 and len(checks["method"]) >= 6
    for kind, wanted in checks.items():
        missing = sorted(set(wanted) - names)
        assert not missing, f"docs/API-NODE.md lacks {kind}s: {missing}"


def _dataclass_fields(module: str, cls: str) -> list[str]:
    tree = ast.parse((PKG / f"{module}.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    return [n.target.id for n in node.body if isinstance(n, ast.AnnAssign)]


def _public_methods(module: str, cls: str) -> list[str]:
    tree = ast.parse((PKG / f"{module}.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    return [n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and not n.name.startswith("_")]


def test_api_python_names_every_export_field_stat_method_and_error():
    names = _code_names(_doc("API-PYTHON.md"))
    init = ast.parse((PKG / "__init__.py").read_text())
    exports = next(n for n in init.body if isinstance(n, ast.Assign) and n.targets[0].id == "__all__")
    ports = re.search(r"class Ports\b.*?def __new__\(cls, ([^)]*)\)", (PKG / "services.py").read_text(), re.S)
    assert ports, "Ports.__new__ not found in services.py"
    checks = {
        "export": [e.value for e in exports.value.elts],
        "ServicesConfig field": _dataclass_fields("config", "ServicesConfig"),
        "ServicesStats field": _dataclass_fields("services", "ServicesStats"),
        "ServiceStatus field": _dataclass_fields("services", "ServiceStatus"),
        "method": _public_methods("config", "ServicesConfig") + _public_methods("services", "ServerlessServices")
        + _public_methods("services", "ServicesHandle"),
        "error code": re.findall(r'code = "(ERR_\w+)"', (PKG / "errors.py").read_text()),
        "Ports field": re.findall(r"(\w+): int", ports.group(1)),
    }
    assert len(checks["ServicesConfig field"]) >= 50 and len(checks["ServicesStats field"]) >= 35
    for kind, wanted in checks.items():
        missing = sorted(set(wanted) - names)
        assert not missing, f"docs/API-PYTHON.md lacks {kind}s: {missing}"


def test_the_three_references_agree_on_the_fields():
    """Every C config and stats field has its Python and Node name (Python: the same; Node:
    camelCase, `counter_expiry_s` being `counterExpirySeconds`)."""
    api = _api_docs()
    c_config = [f for f, _, _ in api.c_fields("dds_config")]
    c_stats = [f for f, _, _ in api.c_fields("dds_stats") if f != "reserved"]
    camel = lambda s: re.sub(r"_([a-z])", lambda m: m.group(1).upper(), s)  # noqa: E731
    assert c_config == [f for f, _, _ in api.py_fields("config", "ServicesConfig")]
    assert c_stats == [f for f, _, _ in api.py_fields("services", "ServicesStats")]
    node = {m for m, _, _ in api.dts_members("interface", "ServicesConfig")}
    renamed = {"counter_expiry_s": "counterExpirySeconds"}
    assert sorted(renamed.get(f, camel(f)) for f in c_config if renamed.get(f, camel(f)) not in node) == []
    assert [camel(f) for f in c_stats] == [m for m, _, _ in api.dts_members("interface", "ServicesStats")]


# ---- links ------------------------------------------------------------------------------------------

def test_docs_exist_and_the_readme_links_them():
    readme = (REPO / "README.md").read_text()
    for name in ("DESIGN.md", "MIGRATING.md", "TROUBLESHOOTING.md", "TUNING.md", "API-C.md", "API-PYTHON.md",
                 "API-NODE.md"):
        assert (DOCS / name).is_file(), name
    for path in DOCS.glob("*.md"):
        assert f"(docs/{path.name})" in readme, f"README.md does not link docs/{path.name}"


def _anchors(path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but `-` and `_` removed, spaces to `-`."""
    text = re.sub(r"^(```+).*?^\1", "", path.read_text(), flags=re.M | re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_links_stay_inside_the_repository(path):
    text = path.read_text()
    assert "shared/docs" not in text, f"{path.name} points outside the repository"
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)]*))?\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        resolved = (path.parent / target).resolve() if target else path
        assert resolved.is_relative_to(REPO), f"{path.name}: {target} is outside the repository"
        assert resolved.exists(), f"{path.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{path.name}: {target}#{anchor}: no such heading"
