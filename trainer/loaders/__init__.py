"""Loaders for real labelled data: each yields preprocessed windows through the shared preprocessing."""

from __future__ import annotations

from pathlib import Path

from trainer.data import Dataset

SOURCES = {"speech": "speech", "e4": "hr"}


def parse_source(spec: str) -> tuple[str, Path | None]:
    """`synthetic` or `KIND:PATH`; ValueError naming what is wrong."""
    if spec == "synthetic":
        return "synthetic", None
    kind, sep, path = spec.partition(":")
    if not sep or not path:
        raise ValueError(f"--data {spec!r}: expected synthetic or KIND:PATH (kinds: {', '.join(SOURCES)})")
    if kind not in SOURCES:
        raise ValueError(f"--data {spec!r}: unknown kind {kind!r} (kinds: {', '.join(SOURCES)})")
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"--data {spec!r}: {folder} is not a directory")
    return kind, folder


def load(kind: str, folder: Path, modality: str, seed: int) -> Dataset:
    """Load a real data set for the one modality it carries."""
    if SOURCES[kind] != modality:
        raise ValueError(f"{kind} data carries the {SOURCES[kind]} modality, not {modality}")
    if kind == "speech":
        from trainer.loaders.speech import load_speech

        return load_speech(folder)
    from trainer.loaders.e4 import load_e4

    return load_e4(folder)
