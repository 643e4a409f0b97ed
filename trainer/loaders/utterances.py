"""Speech recordings turned into the units the edge scores: utterances found by voice activity, each one a row
of openSMILE functionals, through the same `mmer_core.preprocess.speech` code the edge runs.

openSMILE costs ~0.1 s per utterance, so each file's rows are cached outside the project (in
trainer.cache's speech folder), keyed by the file, the speech preprocessing parameters and code (`trainer.cache.cache_key`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.preprocess import smile, speech
from trainer.cache import cache_dir, cache_key, cached_arrays

SPEC = SPECS["speech"]


@dataclass(frozen=True)
class FileUtterances:
    """One recording's utterances: the model's features (n, F), the references' eGeMAPSv02 features (n, 88)
    and the spans in seconds from the file's start."""

    features: np.ndarray
    reference: np.ndarray
    starts_s: np.ndarray
    ends_s: np.ndarray


def file_utterances(path: Path, read: Callable[[Path], np.ndarray]) -> FileUtterances:
    """The utterances the edge would find in this recording and their features (cached)."""

    def compute() -> dict[str, np.ndarray]:
        found = speech.utterances(read(path))
        rate = SPEC.sample_rate_hz
        return {
            "features": speech.preprocess_batch([u.audio for u in found]).reshape(
                len(found), *SPEC.input_shape
            ),
            "reference": np.array([speech.reference_features(u.audio) for u in found], np.float32).reshape(
                len(found), 88
            ),
            "starts_s": np.array([u.start / rate for u in found]),
            "ends_s": np.array([u.end / rate for u in found]),
        }

    return FileUtterances(**cached_arrays(_cache_path(path), compute))


def _cache_path(path: Path) -> Path:
    key = cache_key([path], (speech, smile), [SPEC.params, SPEC.input_shape])
    return cache_dir("speech") / f"{path.stem}-{key}.npz"


def in_child_processes(work: Callable, items: Sequence, workers: int = 2) -> list:
    """work(item) for every item, in fresh (spawned) processes.

    libSMILEapi's heap was corrupted (malloc abort) when it ran in a process where TensorFlow had trained, as
    the pipeline does modality after modality; a spawned child never loads TensorFlow. It also spreads
    openSMILE over the cores."""
    if not items:
        return []
    with ProcessPoolExecutor(
        min(workers, len(items)), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        return list(pool.map(work, items, chunksize=max(1, len(items) // (8 * workers))))


def features_of(utterances: list[np.ndarray]) -> np.ndarray:
    """The model's features of many utterances (N, F), computed in a child process (in_child_processes)."""
    rows = in_child_processes(speech.preprocess, utterances)
    return np.stack(rows) if rows else np.empty((0, *SPEC.input_shape), np.float32)


@dataclass(frozen=True)
class _Cached:
    """Picklable: compute and cache one file's utterances in a child process."""

    read: Callable[[Path], np.ndarray]

    def __call__(self, path: Path) -> None:
        file_utterances(path, self.read)


@dataclass(frozen=True)
class Recordings:
    """Every utterance of a labelled speech corpus: one row each, with the recording (unit) it came from."""

    x: np.ndarray  # (n, F): the model's features
    reference: np.ndarray  # (n, 88): eGeMAPSv02, the classical references' features
    y: np.ndarray
    speakers: np.ndarray
    unit: np.ndarray  # index into files
    files: tuple[Path, ...]
    unit_y: np.ndarray  # label of each file
    unit_speaker: np.ndarray
    silent: tuple[Path, ...]  # files in which no utterance was found (scored as unanswered)


def recordings(files: Sequence[tuple[Path, int, str]], read: Callable[[Path], np.ndarray]) -> Recordings:
    """(path, label index, speaker) per file -> utterance rows, in the order given."""
    xs, refs, ys, speakers, units, silent = [], [], [], [], [], []
    missing = [path for path, _, _ in files if not _cache_path(path).exists()]
    in_child_processes(_Cached(read), missing)
    for i, (path, label, speaker) in enumerate(files):
        found = file_utterances(path, read)
        if len(found.features) == 0:
            silent.append(path)
        xs.append(found.features)
        refs.append(found.reference)
        ys += [label] * len(found.features)
        speakers += [speaker] * len(found.features)
        units += [i] * len(found.features)
    return Recordings(
        np.concatenate(xs).astype(np.float32) if xs else np.empty((0, *SPEC.input_shape), np.float32),
        np.concatenate(refs).astype(np.float32) if refs else np.empty((0, 88), np.float32),
        np.array(ys, dtype=int),
        np.array(speakers),
        np.array(units, dtype=int),
        tuple(p for p, _, _ in files),
        np.array([label for _, label, _ in files], dtype=int),
        np.array([s for _, _, s in files]),
        tuple(silent),
    )
