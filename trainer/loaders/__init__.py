"""Loaders for real labelled data: each yields preprocessed windows through the shared preprocessing."""

from __future__ import annotations

from pathlib import Path

from trainer.data import Dataset

SOURCES = {"speech": "speech", "e4": "hr", "wesad": "hr", "deap": "eeg", "faces": "image"}


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
    if not (folder.is_dir() or (kind == "faces" and folder.is_file())):
        raise ValueError(
            f"--data {spec!r}: {folder} is not a directory" + (" or csv" if kind == "faces" else "")
        )
    return kind, folder


def load(kind: str, folder: Path, modality: str, seed: int) -> Dataset:
    """Load a real data set for the one modality it carries."""
    if SOURCES[kind] != modality:
        raise ValueError(f"{kind} data carries the {SOURCES[kind]} modality, not {modality}")
    if kind == "speech":
        from trainer.loaders.speech import load_speech

        return load_speech(folder, seed)
    if kind == "wesad":
        from trainer.loaders.wesad import load_wesad

        return load_wesad(folder)
    if kind == "deap":
        from trainer.loaders.deap import load_deap

        return load_deap(folder)
    if kind == "faces":
        from trainer.loaders.faces import load_faces

        return load_faces(folder)
    from trainer.loaders.e4 import load_e4

    return load_e4(folder)
