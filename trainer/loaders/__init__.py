"""Loaders for real labelled data: each yields preprocessed windows through the shared preprocessing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trainer.data import CORPUS_SEPARATOR, Dataset, combine

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


def corpus_names(folders: Sequence[Path]) -> list[str]:
    """A distinct name per folder: its base name, or as many of its last path parts (joined by "-") as it
    takes to tell folders of the same base name apart. The same folder twice is an error, not two corpora."""
    resolved = [f.resolve() for f in folders]
    for i, f in enumerate(resolved):
        if f in resolved[:i]:
            raise ValueError(f"--data {folders[i]}: the same folder is given twice")
    depth = 1
    while True:
        names = ["-".join(f.parts[-depth:]).replace(CORPUS_SEPARATOR, "-").lstrip("-") for f in resolved]
        if len(set(names)) == len(names) or depth >= max(len(f.parts) for f in resolved):
            return names
        depth += 1


def load(sources: Sequence[tuple[str, Path]], modality: str, skip_misnamed: bool = False) -> Dataset:
    """One modality's data from one or several (kind, folder) sources, each a corpus named by corpus_names:
    subjects become `<corpus>/<subject>`, so people of different corpora never merge. skip_misnamed: speech
    files and face images whose names give no label are skipped with a warning instead of stopping the load."""
    for kind, _ in sources:
        if SOURCES[kind] != modality:
            raise ValueError(f"{kind} data carries the {SOURCES[kind]} modality, not {modality}")
    names = corpus_names([folder for _, folder in sources])
    return combine(
        {
            name: _load_one(kind, folder, skip_misnamed)
            for name, (kind, folder) in zip(names, sources, strict=True)
        }
    )


def _load_one(kind: str, folder: Path, skip_misnamed: bool) -> Dataset:
    if kind == "speech":
        from trainer.loaders.speech import load_speech

        return load_speech(folder, skip_misnamed)
    if kind == "deap":
        from trainer.loaders.deap import load_deap

        return load_deap(folder)
    if kind == "faces":
        from trainer.loaders.faces import load_faces

        return load_faces(folder, skip_misnamed)
    from trainer.loaders.e4 import load_e4  # e4 and wesad: both are an Empatica E4's wrist sessions

    return load_e4(folder)
