"""Recorded sessions as window streams: `.npz` recordings, sensor recording folders, Empatica E4 session
folders, speech wav folders.

Every format goes through the same Windower as a live sensor (except .npz,
which holds windows already), and windows come out in order of their end
time, lazily, so a long recording never sits in memory as windows.

- `.npz`: per modality m, `m_data` (N, ...) raw windows (hr rows NaN-padded
  to equal length), `m_t_start`, `m_t_end` (N,) seconds and optionally
  `m_labels` (N,) strings.
- Sensor recording folder (`eeg.npy`, `speech.npy`, `image.npy`, `hr_*.npy`:
  edge_node.recording): any of the four modalities, read a chunk at a time
  and windowed as a live sensor's data.
- E4 session folder (BVP.csv and/or IBI.csv, optionally EDA.csv and TEMP.csv,
  as the E4 exports them): hr, read and windowed by mmer_core.e4 exactly as the
  trainer's loader and the e4 yardstick read it (beats from BVP, EDA and skin
  temperature when present, labels from a labels.csv in the folder or its parent).
- Speech folder (*.wav below it, RAVDESS/TESS/<label>/<speaker>_x.wav names):
  speech. The files play one after another, as a microphone would hear them,
  with a gap between files so that no window spans two utterances; each
  window carries its file's label.
- DEAP preprocessed subject file (sNN.dat): eeg, the spec's 14 of DEAP's 32
  channels. Trials play one after another (each after its 3 s baseline),
  with a gap between them; windows carry the trial's valence/arousal quadrant.
  The file is one pickle, read whole (~100 MB while the trials are picked).
- FER2013 csv: image, one face a frame at the spec's 5 fps with its label,
  read row by row.
- WESAD subject pickle (S<n>.pkl): hr, beats from the wrist BVP; a window is
  labelled when the protocol condition (700 Hz codes) is one throughout it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from edge_node.recording import is_recording, replay_recording
from mmer_core.file_tree import files_below
from mmer_core.modalities import SPECS
from mmer_core.taxonomy import va_to_label
from mmer_core.windowing import SensorChunk, Window, Windower

GAP_S = 0.5  # silence between two replayed utterances


def open_replay(path: Path, modalities: Sequence[str]) -> Iterator[Window]:
    """Windows of a recording, in order of window end; ValueError naming the path when it is no recording."""
    if path.suffix == ".npz":
        if not path.is_file():
            raise ValueError(f"source replay:{path}: not an existing .npz recording")
        return replay_npz(path, modalities)
    if path.suffix == ".dat" and path.is_file():
        _only(path, modalities, "eeg", "a DEAP subject file")
        return replay_deap(path)
    if path.suffix == ".pkl" and path.is_file():
        _only(path, modalities, "hr", "a WESAD subject pickle")
        return replay_wesad(path)
    if path.suffix == ".csv" and path.is_file():
        _only(path, modalities, "image", "a FER2013 csv")
        return replay_fer2013(path)
    if not path.is_dir():
        raise ValueError(
            f"source replay:{path}: not an existing .npz recording, DEAP .dat, WESAD .pkl, FER2013 .csv "
            "or dataset or sensor recording folder"
        )
    if is_recording(path):
        return replay_recording(path, modalities)
    if (path / "BVP.csv").is_file() or (path / "IBI.csv").is_file():
        _only(path, modalities, "hr", "an Empatica E4 session")
        return replay_e4(path)
    if wavs := files_below(path, "*.wav"):
        _only(path, modalities, "speech", "a speech wav folder")
        return replay_wav_folder(path, wavs)
    raise ValueError(
        f"source replay:{path}: a folder must be a sensor recording (edge_node.recording), an E4 session "
        "(BVP.csv or IBI.csv) or hold .wav files"
    )


def _only(path: Path, modalities: Sequence[str], has: str, what: str) -> None:
    other = [m for m in modalities if m != has]
    if other:
        raise ValueError(f"source replay:{path}: {what} holds only {has}, but --modalities asks for {other}")


# ------------------------------------------------------------------ .npz
def replay_npz(path: Path, modalities: Sequence[str]) -> Iterator[Window]:
    with np.load(path, allow_pickle=False) as npz:
        streams = []
        for m in modalities:
            if f"{m}_data" not in npz:
                raise ValueError(f"source replay:{path}: no {m}_data array")
            labels = npz.get(f"{m}_labels", None)
            rows = zip(npz[f"{m}_t_start"], npz[f"{m}_t_end"], npz[f"{m}_data"], strict=True)
            streams.append(
                [
                    Window(m, float(ts), float(te), _unpad(m, d), None if labels is None else str(labels[i]))
                    for i, (ts, te, d) in enumerate(rows)
                ]
            )
    return heapq.merge(*streams, key=lambda w: w.t_end)


def _unpad(modality: str, data: np.ndarray) -> np.ndarray:
    if modality != "hr":
        return data
    return data[~np.isnan(data).all(axis=-1)] if data.ndim > 1 else data[~np.isnan(data)]


# ------------------------------------------------------------------ Empatica E4
def replay_e4(folder: Path) -> Iterator[Window]:
    from mmer_core.e4 import e4_windows, read_e4_session  # scipy (beats from BVP), loaded only for E4 replays

    try:
        session = read_e4_session(folder)
    except ValueError as exc:
        raise ValueError(f"source replay:{folder}: {exc}") from None
    return e4_windows(session)


# ------------------------------------------------------------------ speech wav folders
def replay_wav_folder(root: Path, wavs: list[Path]) -> Iterator[Window]:
    """The wav files `wavs` below root one after another, with a gap between them, each with its label."""
    from mmer_core.formats import read_wav, speech_label_and_speaker  # file formats: loaded for their replays

    windower = Windower(SPECS["speech"])
    t = 0.0
    for path in wavs:
        label, _speaker = speech_label_and_speaker(path, root)
        audio = read_wav(path)
        duration = len(audio) / SPECS["speech"].sample_rate_hz
        yield from windower.push(SensorChunk("speech", t, t + duration, audio, label))
        t += duration + GAP_S
    yield from windower.flush()


# ------------------------------------------------------------------ DEAP
def replay_deap(path: Path) -> Iterator[Window]:
    from mmer_core.formats import DEAP_BASELINE_S, DEAP_MIDPOINT, DEAP_PICK, read_deap_subject

    data, ratings = read_deap_subject(path)
    spec = SPECS["eeg"]
    trials = [
        (
            np.ascontiguousarray(trial[DEAP_PICK, int(DEAP_BASELINE_S * spec.sample_rate_hz) :]),
            va_to_label(v, a, DEAP_MIDPOINT),
        )
        for trial, (v, a, _, _) in zip(data, ratings, strict=True)
    ]
    del data  # keep the 14 picked channels, not the file's 40
    windower = Windower(spec)
    t = 0.0
    for eeg, label in trials:
        duration = eeg.shape[1] / spec.sample_rate_hz
        for w in windower.push(SensorChunk("eeg", t, t + duration, eeg)):
            yield Window(w.modality, w.t_start, w.t_end, w.data, label)
        t += duration + GAP_S


# ------------------------------------------------------------------ FER2013
def replay_fer2013(path: Path) -> Iterator[Window]:
    from mmer_core.formats import read_fer2013

    step = SPECS["image"].hop_s
    for i, (image, label) in enumerate(read_fer2013(path)):
        yield Window("image", i * step, (i + 1) * step, image, label)


# ------------------------------------------------------------------ WESAD
def replay_wesad(path: Path) -> Iterator[Window]:
    from mmer_core.e4 import e4_windows, read_wesad_session  # scipy (beats from BVP), loaded only for WESAD

    try:
        session = read_wesad_session(path)
    except ValueError as exc:
        raise ValueError(f"source replay:{path}: {exc}") from None
    return e4_windows(session)
