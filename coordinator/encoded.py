"""Protobuf messages put together from messages serialized already, so that each fused emotion is
serialized once however many subscribers receive it.

Protobuf's wire format lets a message be concatenated from its fields: a length-delimited field is its
tag byte, its length as a varint, then its bytes, and a field that appears twice takes its last value.
Only these two cases are built here; tests read every result back with the protobuf library.
"""

from __future__ import annotations

from collections.abc import Iterable

MESSAGE_FIELD_1 = 0x0A  # field 1, length-delimited: ScoreBatch.frames, FusedBatch.emotions
STRING_FIELD_2 = 0x12  # field 2, length-delimited: FusedEmotion.position


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_HEADS = [bytes([MESSAGE_FIELD_1]) + _varint(size) for size in range(1 << 14)]  # one- and two-byte lengths


def field_1(data: bytes) -> bytes:
    """`data` (a serialized message) as one entry of a repeated field 1 (tag and length in front)."""
    size = len(data)
    head = _HEADS[size] if size < len(_HEADS) else bytes([MESSAGE_FIELD_1]) + _varint(size)
    return head + data


def repeated_field_1(messages: Iterable[bytes]) -> bytes:
    """A message whose field 1 repeats the given serialized messages, in order (a FusedBatch of emotions,
    a ScoreBatch of frames)."""
    return b"".join([field_1(data) for data in messages])


def with_position(emotion: bytes, position: str) -> bytes:
    """A serialized FusedEmotion with its `position` (field 2) set to `position`, whatever it held."""
    text = position.encode()
    return emotion + bytes([STRING_FIELD_2]) + _varint(len(text)) + text
