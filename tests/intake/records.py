"""One request to the intake, turned into the JSON-able record that tests read back.

In: method, URL, headers and raw body of a request to a non-control path.
Out: a dict (fields listed in README.md) with the decoded payload or the reason it did not decode,
plus warnings where the request differs from what Datadog expects without being an error.
"""

from __future__ import annotations

import base64
import time
from email.message import Message
from typing import Any
from urllib.parse import SplitResult, parse_qs

from . import codec

# What PROTOCOL.md section 3 says each route is compressed with; None means "no expectation".
EXPECTED_ENCODING = {
    "series": "zstd",
    "sketches": "zstd",
    "traces": "gzip",
    "stats": "gzip",
    # Logs are zstd unless DD_LOGS_CONFIG_USE_COMPRESSION=false; identity is no surprise either.
}


def build_record(method: str, url: SplitResult, headers: Message, body: bytes) -> dict[str, Any]:
    """Decode the body and describe the request. Never raises on a bad body: it sets "error"."""
    route = codec.ROUTES.get(url.path)
    record: dict[str, Any] = {
        "id": None,  # set by IntakeState when stored
        "time": time.time(),
        "method": method,
        "path": url.path,
        "query": url.query,
        "params": parse_qs(url.query, keep_blank_values=True),
        "headers": lowercase_headers(headers),
        "api_key": headers.get("DD-API-KEY"),
        "content_type": headers.get("Content-Type"),
        "content_encoding": headers.get("Content-Encoding"),
        "body_length": len(body),
        "decoded_length": None,
        "kind": route.kind if route else "raw",
        "payload": None,
        "body_base64": None,
        "error": None,
        "warnings": [],
        "status": None,
        "fault": None,
        "answered": False,
    }
    try:
        plain = codec.decompress(body, record["content_encoding"])
        record["decoded_length"] = len(plain)
        if route is not None:
            record["payload"] = route.decode(plain)
        else:
            _keep_raw(record, plain)
    except codec.PayloadError as exc:
        record["error"] = str(exc)
    record["warnings"] += expectation_warnings(record, route)
    return record


def lowercase_headers(headers: Message) -> dict[str, str]:
    """Header names lowercased (HTTP names are case-insensitive); repeated headers joined by ', '."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _keep_raw(record: dict[str, Any], plain: bytes) -> None:
    """Paths without a schema (proxied profiles, telemetry...) keep their bytes for the test to read."""
    record["body_base64"] = base64.b64encode(plain).decode("ascii")
    payload, note = codec.decode_other(plain, record["content_type"])
    record["payload"] = payload
    if note:
        record["warnings"].append(note)


def expectation_warnings(record: dict[str, Any], route: codec.Route | None) -> list[str]:
    """Differences from what Datadog expects that it would still accept, or that a test may
    want to see (a missing API key is answered 403 by the real intake)."""
    warnings = []
    if record["api_key"] is None:
        warnings.append("no DD-API-KEY header")
    if route is None:
        return warnings
    media = (record["content_type"] or "").split(";")[0].strip().lower()
    if media != route.content_type:
        warnings.append(f"Content-Type {record['content_type']!r}, expected {route.content_type!r}")
    expected_encoding = EXPECTED_ENCODING.get(route.kind)
    encoding = (record["content_encoding"] or "identity").strip().lower()
    if expected_encoding and encoding != expected_encoding:
        warnings.append(f"Content-Encoding {encoding!r}, expected {expected_encoding!r}")
    return warnings
