"""gRPC metadata keys that edge and coordinator share beyond the protos."""

from __future__ import annotations

INVALID_FRAME_KEY = "mmer-invalid-frame"
"""Trailing metadata of an INVALID_ARGUMENT from Ingest.StreamScores: `<modality>#<seq>` of the refused frame."""


def format_invalid_frame(modality: str, seq: int) -> str | None:
    """The metadata value naming a frame, or None when its modality is not printable ASCII (gRPC refuses that)."""
    value = f"{modality}#{seq}"
    return value if value.isascii() and value.isprintable() else None


def parse_invalid_frame(value: str) -> tuple[str, int] | None:
    """(modality, seq) from the trailing metadata value, or None when it is not one."""
    modality, sep, seq = value.rpartition("#")
    if not sep or not modality or not seq.isdigit():
        return None
    return modality, int(seq)
