"""Bodies as Datadog reads them: undo Content-Encoding, then decode by path.

In: the raw request body, its Content-Encoding and Content-Type, and the path.
Out: (kind, payload) where payload is plain JSON-able data, or a PayloadError that the server
answers with 400 and records. Nothing here keeps state; the server module owns the records.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import msgpack
import zstandard

from . import schema

# Far above what the project may send (5 MiB uncompressed per series payload, ~3.2 MB of traces):
# the bound only keeps a broken or hostile body from eating the test machine's memory.
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024

# zstd input is fed in slices this big so the output bound above is checked as output grows.
_ZSTD_SLICE_BYTES = 4096


class PayloadError(Exception):
    """The body could not be decompressed or decoded: the intake answers 400 and records why."""


@dataclass(frozen=True)
class Route:
    """What Datadog expects on one intake path."""

    kind: str
    content_type: str
    decode: Callable[[bytes], Any]


def decompress(body: bytes, content_encoding: str | None) -> bytes:
    """Undo every coding listed in Content-Encoding (applied left to right, so undone right to left)."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        decoder = _DECOMPRESSORS.get(coding)
        if decoder is None:
            raise PayloadError(f"unsupported Content-Encoding {coding!r}")
        body = decoder(body)
    return body


def _zstd(body: bytes) -> bytes:
    """Decode one or more zstd frames, with or without a content size in their headers.

    ZstdDecompressor.decompress() refuses frames written by a streaming compressor (no content
    size) unless told max_output_size, and silently stops after the first frame. A decompressobj
    per frame handles both, and its `eof` tells a complete frame from a truncated one.
    """
    if not body:
        raise PayloadError("zstd: empty body")
    dctx = zstandard.ZstdDecompressor()
    out = bytearray()
    rest = body
    while rest:
        frame = dctx.decompressobj()
        offset = 0
        try:
            while not frame.eof and offset < len(rest):
                out += frame.decompress(rest[offset : offset + _ZSTD_SLICE_BYTES])
                offset += _ZSTD_SLICE_BYTES
                _check_size(out, "zstd")
        except zstandard.ZstdError as exc:
            raise PayloadError(f"zstd: {exc}") from exc
        if not frame.eof:
            raise PayloadError("zstd: truncated frame")
        rest = frame.unused_data + rest[offset:]
    return bytes(out)


def _gzip(body: bytes) -> bytes:
    """Decode every gzip member (concatenated members are valid gzip)."""
    if not body:
        raise PayloadError("gzip: empty body")
    out = bytearray()
    rest = body
    while rest:
        data, rest = _zlib_stream(rest, zlib.MAX_WBITS | 16, "gzip")
        out += data
        _check_size(out, "gzip")
    return bytes(out)


def _deflate(body: bytes) -> bytes:
    """HTTP 'deflate' means a zlib stream, but some clients send raw deflate: accept both."""
    try:
        data, rest = _zlib_stream(body, zlib.MAX_WBITS, "deflate")
    except PayloadError:
        data, rest = _zlib_stream(body, -zlib.MAX_WBITS, "deflate")
    if rest:
        raise PayloadError(f"deflate: {len(rest)} bytes after the end of the stream")
    return data


def _zlib_stream(body: bytes, wbits: int, name: str) -> tuple[bytes, bytes]:
    """Decode one stream; return it and the bytes after it. A stream that does not end is an error."""
    stream = zlib.decompressobj(wbits)
    try:
        data = stream.decompress(body, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error as exc:
        raise PayloadError(f"{name}: {exc}") from exc
    _check_size(data, name)
    if not stream.eof:
        raise PayloadError(f"{name}: truncated stream")
    return data, stream.unused_data


def _check_size(data: bytes | bytearray, name: str) -> None:
    if len(data) > MAX_DECOMPRESSED_BYTES:
        raise PayloadError(f"{name}: decompressed body over {MAX_DECOMPRESSED_BYTES} bytes")


_DECOMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "identity": lambda body: body,
    "zstd": _zstd,
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
}


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"json: {exc}") from exc


def decode_msgpack(body: bytes) -> Any:
    """One msgpack object that uses the whole body (trailing bytes are an error, as in Datadog)."""
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise PayloadError(f"msgpack: {type(exc).__name__}: {exc}") from exc
    return to_jsonable(value)


def _protobuf_decoder(module: str, message: str) -> Callable[[bytes], Any]:
    def decode(body: bytes) -> Any:
        cls = getattr(getattr(schema.modules(), module), message)
        try:
            parsed = cls.FromString(body)
        except Exception as exc:  # DecodeError, or RuntimeError from some runtimes
            raise PayloadError(f"protobuf {message}: {exc}") from exc
        return schema.message_to_dict(parsed)

    return decode


ROUTES: dict[str, Route] = {
    "/api/v2/series": Route(
        "series", "application/x-protobuf", _protobuf_decoder("metrics", "MetricPayload")
    ),
    "/api/beta/sketches": Route(
        "sketches", "application/x-protobuf", _protobuf_decoder("metrics", "SketchPayload")
    ),
    "/api/v1/check_run": Route("check_run", "application/json", decode_json),
    "/api/v1/events": Route("events", "application/json", decode_json),
    "/api/v0.2/traces": Route(
        "traces", "application/x-protobuf", _protobuf_decoder("trace", "AgentPayload")
    ),
    "/api/v0.2/stats": Route("stats", "application/msgpack", decode_msgpack),
    "/api/v2/logs": Route("logs", "application/json", decode_json),
}


def decode_other(body: bytes, content_type: str | None) -> tuple[Any, str | None]:
    """Best effort for paths we have no schema for (proxied profiles, telemetry, EVP...).

    Returns (payload or None, a note when the Content-Type promised a format the body is not in).
    Never raises: these bodies are kept raw whatever they hold.
    """
    media = (content_type or "").lower()
    decoder = decode_json if "json" in media else decode_msgpack if "msgpack" in media else None
    if decoder is None:
        return None, None
    try:
        return decoder(body), None
    except PayloadError as exc:
        return None, f"body not decodable as its Content-Type {content_type!r}: {exc}"


def to_jsonable(value: Any) -> Any:
    """Make msgpack output JSON-able: bytes become base64, map keys strings, ext types dicts."""
    if isinstance(value, dict):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, msgpack.ExtType):
        return {"ext_type": value.code, "data": base64.b64encode(value.data).decode("ascii")}
    return value


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray)):
        return bytes(key).decode("utf-8", "backslashreplace")
    return str(key)
