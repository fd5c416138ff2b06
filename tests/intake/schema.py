"""The project's .proto files, compiled at run time, and protobuf messages turned into plain dicts.

Why compile at run time: the .proto files under proto/ (written from PROTOCOL.md) stay the one
source of truth. Checked-in *_pb2.py files could drift from them, and generated code only loads
with a protobuf runtime of a matching version, which tests/requirements.txt pins together with
grpcio-tools (the protoc we compile with).

Why our own dict conversion instead of json_format.MessageToDict: MessageToDict turns 64-bit
integers into strings and leaves out fields that hold their default value. Tests compare numbers
and want every field present, so we walk the message ourselves.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

PROTO_DIR = Path(__file__).resolve().parent / "proto"
PROTO_FILES = ("metrics.proto", "trace.proto")


@functools.cache
def modules() -> SimpleNamespace:
    """Return the generated modules as `.metrics` and `.trace`, compiling them on first use."""
    target = _cache_dir()
    if not all((target / _generated_name(name)).is_file() for name in PROTO_FILES):
        _compile_into(target)
    return SimpleNamespace(
        metrics=_load(target / "metrics_pb2.py"),
        trace=_load(target / "trace_pb2.py"),
    )


def _generated_name(proto_name: str) -> str:
    return proto_name.removesuffix(".proto") + "_pb2.py"


def _cache_dir() -> Path:
    """A folder keyed by the .proto contents and the tool versions: an edit recompiles by itself."""
    digest = hashlib.sha256()
    for package in ("protobuf", "grpcio-tools"):
        digest.update(f"{package}={metadata.version(package)}\n".encode())
    for name in PROTO_FILES:
        digest.update(name.encode() + b"\0" + (PROTO_DIR / name).read_bytes() + b"\0")
    return Path(tempfile.gettempdir()) / f"dds-intake-proto-{digest.hexdigest()[:16]}"


def _compile_into(target: Path) -> None:
    """Run protoc into a staging folder, then rename it into place.

    The rename makes the cache safe when several processes (pytest and a spawned intake) compile
    at the same moment: each one either publishes a complete folder or finds one already there.
    """
    from grpc_tools import protoc  # imported late: only needed on a cache miss

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        status = protoc.main(
            ["grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={staging}", *PROTO_FILES]
        )
        if status != 0:
            raise RuntimeError(f"protoc failed ({status}) on {PROTO_DIR}: see the messages above")
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load(path: Path) -> ModuleType:
    """Import a generated module under a name of its own, so it cannot clash with another metrics_pb2."""
    spec = importlib.util.spec_from_file_location(f"dds_intake_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def message_to_dict(message: Message) -> dict[str, Any]:
    """Every field of `message` by its .proto name, with defaults; ints stay ints, bytes become base64.

    Unset sub-messages are None. Field numbers the schema does not know are listed under
    "_unknown": a C encoder writing a wrong field number shows up there instead of vanishing.
    """
    out = {field.name: _field_value(message, field) for field in message.DESCRIPTOR.fields}
    unknown = unknown_field_numbers(message)
    if unknown:
        out["_unknown"] = unknown
    return out


def unknown_field_numbers(message: Message) -> list[int]:
    """Sorted field numbers that were on the wire but are not in the schema."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    return sorted({field.field_number for field in UnknownFieldSet(message)})


def _field_value(message: Message, field: FieldDescriptor) -> Any:
    value = getattr(message, field.name)
    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        return {key: _single_value(value_field, item) for key, item in value.items()}
    if field.is_repeated:
        return [_single_value(field, item) for item in value]
    if field.type == FieldDescriptor.TYPE_MESSAGE and not message.HasField(field.name):
        return None
    return _single_value(field, value)


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.message_type.GetOptions().map_entry
    )


def _single_value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return message_to_dict(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        known = field.enum_type.values_by_number.get(value)
        return known.name if known is not None else value  # an unknown number stays visible
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")  # records travel as JSON
    return value
