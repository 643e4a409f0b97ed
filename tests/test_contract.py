"""The wire contract: generated code is current and every message survives a round trip."""

from __future__ import annotations

import filecmp
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor
from google.protobuf.message import Message

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "protos" / "mmer" / "v1"
MODULES = sorted(p.stem for p in PROTO_DIR.glob("*.proto"))


def test_generated_code_is_current(tmp_path: Path) -> None:
    """Runs the generator exactly as `make protos` does, into a scratch directory."""
    subprocess.run([sys.executable, str(ROOT / "tools" / "protogen.py"), str(tmp_path)], check=True, cwd=ROOT)
    written = sorted((tmp_path / "mmer" / "v1").glob("*_pb2*.py*"))
    assert written, "protoc wrote nothing"
    for new in written:
        committed = PROTO_DIR / new.name
        assert committed.exists(), f"{new.name} is generated but not committed; run `make protos`"
        assert filecmp.cmp(new, committed, shallow=False), f"{new.name} is stale; run `make protos`"
    committed = {p.name for p in PROTO_DIR.glob("*_pb2*.py*")}
    assert committed == {p.name for p in written}, "committed generated files without a .proto"


def _messages() -> list[type[Message]]:
    found = []
    for name in MODULES:
        module = importlib.import_module(f"mmer.v1.{name}_pb2")
        for desc in module.DESCRIPTOR.message_types_by_name.values():
            found.append(getattr(module, desc.name))
    return found


def _fill(msg: Message, depth: int = 0) -> None:
    """Set every field of a message to a distinctive non-default value."""
    for i, field in enumerate(msg.DESCRIPTOR.fields, start=1):
        if field.containing_oneof is not None and msg.WhichOneof(field.containing_oneof.name):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is not None:
                _fill(getattr(msg, field.name)["k"], depth + 1)
            else:
                getattr(msg, field.name)["k"] = _scalar(value_field, i)
        elif field.message_type is not None:
            if depth > 3:
                continue
            target = getattr(msg, field.name)
            _fill(target.add() if _is_repeated(field) else target, depth + 1)
            if not _is_repeated(field):
                target.SetInParent()
        elif _is_repeated(field):
            getattr(msg, field.name).extend([_scalar(field, i), _scalar(field, i + 1)])
        else:
            setattr(msg, field.name, _scalar(field, i))


def _is_repeated(field: descriptor.FieldDescriptor) -> bool:
    return field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED


def _scalar(field: descriptor.FieldDescriptor, i: int) -> object:
    t = field.type
    if t == field.TYPE_STRING:
        return f"v{i}"
    if t == field.TYPE_BYTES:
        return bytes([i % 256]) * 3
    if t == field.TYPE_BOOL:
        return True
    if t in (field.TYPE_FLOAT, field.TYPE_DOUBLE):
        return i + 0.5
    if t == field.TYPE_ENUM:
        return field.enum_type.values[-1].number
    if t in (field.TYPE_INT32, field.TYPE_INT64, field.TYPE_SINT32, field.TYPE_SINT64):
        return -i * 1_000_000_007 if t in (field.TYPE_INT64, field.TYPE_SINT64) else -i
    return i * 3


@pytest.mark.parametrize("cls", _messages(), ids=lambda c: c.DESCRIPTOR.full_name)
def test_every_message_round_trips(cls: type[Message]) -> None:
    original = cls()
    _fill(original)
    data = original.SerializeToString(deterministic=True)
    if original.DESCRIPTOR.fields:
        assert data, f"{cls.DESCRIPTOR.full_name}: filled message serialised to nothing"
    copy = cls.FromString(data)
    assert copy == original
    assert copy.SerializeToString(deterministic=True) == data


def test_every_field_is_documented() -> None:
    """Each field of the contract has a comment right above it (unit, clock, range)."""
    undocumented = []
    for proto in sorted(PROTO_DIR.glob("*.proto")):
        lines = proto.read_text().splitlines()
        for n, line in enumerate(lines):
            stripped = line.strip()
            if (
                not stripped.endswith(";")
                or "=" not in stripped
                or stripped.startswith(("//", "syntax", "option"))
            ):
                continue
            if not lines[n - 1].strip().startswith("//"):
                undocumented.append(f"{proto.name}:{n + 1}: {stripped}")
    assert not undocumented, "fields without a comment:\n" + "\n".join(undocumented)


def test_services_are_complete() -> None:
    expected = {
        "Ingest": {"StreamScores"},
        "Fusion": {"Subscribe", "SubscribeBatches", "Latest"},
        "Registry": {"PushModel", "WatchModels", "GetModel", "ListModels", "Rollback", "Promote"},
        "Clock": {"Sync"},
        "Admin": {"GetStats"},
    }
    found = {}
    for name in MODULES:
        module = importlib.import_module(f"mmer.v1.{name}_pb2")
        for svc in module.DESCRIPTOR.services_by_name.values():
            found[svc.name] = {m.name for m in svc.methods}
    assert found == expected
    ingest = importlib.import_module("mmer.v1.ingest_pb2").DESCRIPTOR.services_by_name["Ingest"]
    stream = ingest.methods_by_name["StreamScores"]
    assert stream.client_streaming and stream.server_streaming
