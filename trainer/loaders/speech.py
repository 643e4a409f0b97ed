"""Speech corpora as folders of audio files named as mmer_core.speech_files reads them (RAVDESS, CREMA-D,
TESS, <label>/<speaker>_<name>).

Any sample rate, bit depth and format libsndfile reads (WAV, FLAC); audio is resampled to the speech spec's
16 kHz. Each recording is cut into utterances by the edge's own voice-activity segmentation and every
utterance becomes a row of openSMILE functionals (trainer.loaders.utterances).

Rows come per speaker in recording order, which is the order a wearer baseline sees them in. Corpus files
carry no recording time, and their names group emotions (RAVDESS lists neutral and calm first, CREMA-D
anger first), so each speaker's files are taken in a seeded random order: a wearer whose first minutes are
whatever they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmer_core.formats import read_audio
from mmer_core.speech_files import find_speech_files
from mmer_core.taxonomy import QUADRANTS
from trainer.data import CORPUS_SEPARATOR, Dataset
from trainer.loaders.utterances import Recordings, recordings


def speech_files(root: Path, skip_misnamed: bool = False) -> list[tuple[Path, int, str]]:
    """(path, quadrant index, speaker) of every speech file below root."""
    return [
        (f.path, QUADRANTS.index(f.label), f.speaker)
        for f in find_speech_files(root, skip_misnamed=skip_misnamed)
    ]


def recording_order(files: list[tuple[Path, int, str]], seed: int) -> list[tuple[Path, int, str]]:
    """Speakers in sorted order, each speaker's files in a random order drawn from seed."""
    rng = np.random.default_rng(seed)
    out = []
    for speaker in sorted({s for _, _, s in files}):
        mine = [f for f in files if f[2] == speaker]
        out += [mine[i] for i in rng.permutation(len(mine))]
    return out


def load_recordings(root: Path, seed: int = 7, skip_misnamed: bool = False) -> Recordings:
    """Every utterance below root, per speaker in recording order."""
    return recordings(recording_order(speech_files(root, skip_misnamed), seed), read_audio)


def load_corpora(roots: dict[str, Path], seed: int = 7) -> tuple[Recordings, np.ndarray]:
    """Several corpora as one set of recordings, each speaker named `<corpus>/<speaker>` so that two corpora's
    speakers "01" stay two people; and the corpus of every utterance row."""
    parts = {name: load_recordings(root, seed) for name, root in roots.items()}
    for name in parts:
        if not name or CORPUS_SEPARATOR in name:
            raise ValueError(f"corpus name {name!r}: must be non-empty and without {CORPUS_SEPARATOR!r}")
    offsets = np.cumsum([0, *(len(r.files) for r in parts.values())])

    def named(name: str, speakers: np.ndarray) -> np.ndarray:
        return np.char.add(f"{name}{CORPUS_SEPARATOR}", speakers.astype(str))

    rec = Recordings(
        np.concatenate([r.x for r in parts.values()]),
        np.concatenate([r.reference for r in parts.values()]),
        np.concatenate([r.y for r in parts.values()]),
        np.concatenate([named(n, r.speakers) for n, r in parts.items()]),
        np.concatenate([r.unit + offset for r, offset in zip(parts.values(), offsets, strict=False)]),
        tuple(f for r in parts.values() for f in r.files),
        np.concatenate([r.unit_y for r in parts.values()]),
        np.concatenate([named(n, r.unit_speaker) for n, r in parts.items()]),
        tuple(f for r in parts.values() for f in r.silent),
    )
    corpora = np.concatenate([np.full(len(r.y), name) for name, r in parts.items()])
    return rec, corpora


def as_dataset(rec: Recordings, description: str) -> Dataset:
    """Utterance rows as the trainer's Dataset (t_end: the utterance's place in its speaker's stream)."""
    position = np.zeros(len(rec.y))
    for speaker in np.unique(rec.speakers):
        rows = rec.speakers == speaker
        position[rows] = np.arange(1, rows.sum() + 1)
    return Dataset("speech", rec.x, rec.y, rec.speakers, position, description, QUADRANTS, rec.unit)


def load_speech(root: Path, skip_misnamed: bool = False, seed: int = 7) -> Dataset:
    """Every utterance below root as a row of features, labelled by its file's name."""
    rec = load_recordings(root, seed, skip_misnamed)
    if rec.silent:
        print(f"speech:{root}: no speech found in {len(rec.silent)} files, e.g. {rec.silent[0]}", flush=True)
    speakers = len(set(rec.unit_speaker.tolist()))
    return as_dataset(
        rec, f"speech:{root} ({len(rec.files)} files, {len(rec.y)} utterances, {speakers} speakers)"
    )
