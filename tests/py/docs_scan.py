"""What the documentation must cover, read from the code: the warning and error log lines of
src_c/ (format strings), the stderr lines of the program (src_c/compat.c), and the code blocks of
the Markdown files. Used by tests/py/test_docs.py and tests/py/test_doc_examples.py."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src_c"
DOCS = REPO / "docs"

# Calls that print a line at a given level: the level macros, and the helpers that take the level
# as an argument (transport/intake.c report() and logf_(), trace/receiver.c log_limited()).
_LEVEL_MACROS = ("dds__log_warn", "dds__log_error")
_LEVEL_ARG = re.compile(r"\bDDS_LOG_(WARN|ERROR)\b")
_CALL = re.compile(r"\b(dds__log_warn|dds__log_error|report|logf_|log_limited|dds__log)\s*\(")
_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
# A printf conversion: flags, width, precision (* included), length, conversion.
_CONV = re.compile(r"%[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+))?(?:hh|h|ll|l|z|j|t|L)?[diouxXeEfgGcsp]")


@dataclass(frozen=True)
class LogFormat:
    where: str   # path:line
    level: str   # "warn" or "error"
    fmt: str     # the C format string, adjacent literals joined, escapes undone

    def pattern(self) -> re.Pattern[str]:
        """The line as a regular expression over the documentation: each run of conversions
        (`%s`, `%zu`, `%.*s%s`) matches one `<placeholder>` of the docs."""
        parts = re.split(r"(?:" + _CONV.pattern + r")+", self.fmt.replace("%%", "\0"))
        return re.compile(r"<[^<>`\n]+>".join(re.escape(p).replace("\\\0", "%").replace("\0", "%") for p in parts))


def _call_args(text: str, open_paren: int) -> str:
    """The text between the call's parentheses (string literals and nesting respected)."""
    depth, i = 0, open_paren
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[open_paren + 1:i]
        i += 1
    raise ValueError("unbalanced call")


def _unescape(s: str) -> str:
    return s.encode().decode("unicode_escape")


def _first_format(args: str) -> str | None:
    """The format argument: the first run of adjacent string literals (macros between them, such
    as DDS__CACERTS_HOW_TO_SET, become a placeholder)."""
    m = _STRING.search(args)
    if not m:
        return None
    out, pos = [], m.start()
    while True:
        m = _STRING.match(args, pos)
        if m:
            out.append(_unescape(m.group(1)))
            pos = m.end()
            continue
        gap = re.match(r"\s*([A-Z][A-Z0-9_]+)?\s*", args[pos:])
        if gap and gap.group(0) and _STRING.match(args, pos + gap.end()):
            if gap.group(1):
                out.append("%s")
            pos += gap.end()
            continue
        return "".join(out)


def _filled_by_call(before: str, buf: str) -> list[str]:
    """The formats a function writes into `buf` when the code before the log call passed it to
    one (`fn(..., buf, ...)`): every snprintf into the matching parameter of fn's definition."""
    calls = list(re.finditer(r"\b(\w+)\(([^;]*?\b" + re.escape(buf) + r"\b[^;]*)\)", before))
    if not calls:
        return []
    name, call_args = calls[-1].group(1), calls[-1].group(2)
    index = [a.strip() for a in call_args.split(",")].index(buf)
    for path in SRC.rglob("*.c"):
        text = path.read_text()
        d = re.search(r"^[\w *]+\b" + name + r"\(([^)]*)\)\s*\{(.*?)^\}", text, re.M | re.S)
        if not d:
            continue
        param = d.group(1).split(",")[index].strip().split()[-1].lstrip("*")
        return [_first_format(d.group(2)[f.start():]) for f in re.finditer(r"snprintf\(" + param + ",", d.group(2))]
    return []


def log_formats() -> list[LogFormat]:
    """Every warning and error line src_c/ can log, as its format string."""
    found = []
    for path in sorted(SRC.rglob("*.c")):
        text = path.read_text()
        for m in _CALL.finditer(text):
            name = m.group(1)
            # The definitions of the helpers themselves are not calls.
            line_start = text.rfind("\n", 0, m.start()) + 1
            if re.match(r"\s*(static\s+)?void\b", text[line_start:m.start()]):
                continue
            args = _call_args(text, m.end() - 1)
            if name in _LEVEL_MACROS:
                level = "warn" if name.endswith("warn") else "error"
            else:
                lv = _LEVEL_ARG.search(args.split('"', 1)[0])
                if not lv:
                    continue
                level = lv.group(1).lower()
            fmt = _first_format(args)
            if fmt is None:
                continue
            where = f"{path.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}"
            if fmt == "%s":
                # The text was formatted earlier into a buffer (the "no CA certificates" message,
                # the Google metadata check's): the line is the last snprintf into that buffer
                # before the call.
                buf = args.rsplit(",", 1)[-1].strip()
                at = text.rfind(f"snprintf({buf},", 0, m.start())
                if at >= 0:
                    found.append(LogFormat(where, level, _first_format(text[at:])))
                else:
                    fmts = _filled_by_call(text[:m.start()], buf)
                    assert fmts, f"{where}: logs a bare %s of {buf}, formatted nowhere this scan can see"
                    found += [LogFormat(where, level, f) for f in fmts]
                continue
            found.append(LogFormat(where, level, fmt))
    return found


def compat_stderr_formats() -> list[LogFormat]:
    """The lines the program itself (dds_compat_main) writes to stderr."""
    text = (SRC / "compat.c").read_text()
    out = []
    for m in re.finditer(r"\bfprintf\s*\(\s*stderr\s*,", text):
        args = _call_args(text, text.index("(", m.start()))
        where = f"src_c/compat.c:{text.count(chr(10), 0, m.start()) + 1}"
        out.append(LogFormat(where, "stderr", _first_format(args)))
    return out


@dataclass(frozen=True)
class Block:
    path: Path
    line: int     # of the opening fence
    lang: str
    run: bool     # the fence says `run`: a complete program, executed by the tests
    code: str


_FENCE = re.compile(r"^(```+)([^\n`]*)\n(.*?)^\1[ \t]*$", re.M | re.S)


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def code_blocks(path: Path) -> list[Block]:
    text = path.read_text()
    blocks = []
    for m in _FENCE.finditer(text):
        info = m.group(2).split()
        lang = info[0] if info else ""
        blocks.append(Block(path, text.count("\n", 0, m.start()) + 1, lang, "run" in info[1:], m.group(3)))
    return blocks
