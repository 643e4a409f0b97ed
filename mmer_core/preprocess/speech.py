"""Speech: utterances found by voice activity, each described by openSMILE ComParE 2016 functionals.

A person's emotional unit in speech is an utterance, not a fixed window: the edge receives audio in
contiguous chunks (the spec's window, hop = window), `Utterances` cuts the stream where WebRTC's voice
activity detector hears speech begin and end, and `preprocess` turns one utterance into the 6373 ComParE 2016
functionals (statistics over the utterance of pitch, voicing, energy, auditory spectrum, MFCC, spectral shape
and voice quality). On folds by speaker they beat the smaller eGeMAPSv02 set (88) that the references use by
several points, at an extraction cost of the same order. The trainer cuts recordings with the same
segmenter, so a model is trained on the units the edge scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmer_core.modalities import SPECS
from mmer_core.preprocess import smile
from mmer_core.preprocess._checks import as_finite_array

SPEC = SPECS["speech"]
P = SPEC.params
RATE = int(SPEC.sample_rate_hz)
FRAME = round(P["vad_frame_ms"] / 1000 * RATE)
MIN_SAMPLES = round(P["min_utterance_s"] * RATE)
MAX_SAMPLES = SPEC.window_samples
FEATURE_SET = "ComParE_2016"
REFERENCE_FEATURE_SET = "eGeMAPSv02"  # the classical references' features, computed on the same utterances


@dataclass
class Utterance:
    """Audio of one utterance and where it lies in the stream (samples from the stream's start)."""

    start: int
    audio: np.ndarray

    @property
    def end(self) -> int:
        return self.start + len(self.audio)


@dataclass
class Utterances:
    """Streaming voice-activity segmentation: push audio, get each utterance once it has ended.

    An utterance starts `vad_onset_frames` voiced frames in a row after silence (with `vad_preroll_s` of audio
    before them, so a soft onset is kept) and ends after `vad_hangover_s` without voice (its trailing
    silence cut to the first frame of that pause), or at the spec's window_s (the longest utterance); utterances shorter than
    `min_utterance_s` are dropped (a cough, a click). Memory is bounded by one utterance.
    """

    mode: int = int(P["vad_mode"])
    onset: int = int(P["vad_onset_frames"])
    hangover: int = round(P["vad_hangover_s"] * 1000 / P["vad_frame_ms"])
    preroll: int = round(P["vad_preroll_s"] * RATE)
    dropped: int = 0
    _vad: object = field(default=None, repr=False)
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    received: int = 0  # samples pushed since the stream began
    _pos: int = 0  # stream samples consumed into frames
    _speech: list[np.ndarray] | None = None
    _start: int = 0
    _voiced_run: int = 0
    _silent_run: int = 0
    _last_voiced_end: int = 0
    _recent: list[np.ndarray] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        try:
            import webrtcvad
        except ImportError:
            raise ImportError("speech segmentation needs webrtcvad: pip install 'mmer[speech]'") from None
        self._vad = webrtcvad.Vad(self.mode)

    def push(self, audio: np.ndarray) -> list[Utterance]:
        """Add the next contiguous audio (float in [-1, 1]); every utterance that ended in it."""
        x = as_finite_array("speech", audio, (1,), np.float32) if np.size(audio) else np.zeros(0, np.float32)
        self.received += len(x)
        buf = np.concatenate([self._pending, x])
        n = len(buf) // FRAME
        self._pending = buf[n * FRAME :]
        out: list[Utterance] = []
        for i in range(n):
            frame = buf[i * FRAME : (i + 1) * FRAME]
            done = self._frame(frame)
            if done is not None:
                out.append(done)
        return [u for u in out if self._long_enough(u)]

    def flush(self) -> list[Utterance]:
        """End of stream: the utterance in progress, if long enough."""
        if self._speech is None:
            return []
        done = self._close(self._last_voiced_end)
        return [done] if self._long_enough(done) else []

    def _long_enough(self, u: Utterance) -> bool:
        if len(u.audio) >= MIN_SAMPLES:
            return True
        self.dropped += 1
        return False

    def _frame(self, frame: np.ndarray) -> Utterance | None:
        pcm = (np.clip(frame, -1.0, 32767 / 32768) * 32768).astype(np.int16).tobytes()
        voiced = self._vad.is_speech(pcm, RATE)
        self._pos += FRAME
        if self._speech is None:
            self._recent.append(frame)
            keep = (self.preroll + (self.onset - 1) * FRAME) // FRAME + 1
            del self._recent[:-keep]
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= self.onset:
                audio = np.concatenate(self._recent)
                self._speech = [audio]
                self._start = self._pos - len(audio)
                self._last_voiced_end = self._pos
                self._silent_run = 0
                self._recent = []
            return None
        self._speech.append(frame)
        if voiced:
            self._silent_run = 0
            self._last_voiced_end = self._pos
        else:
            self._silent_run += 1
        if self._silent_run >= self.hangover:
            return self._close(self._last_voiced_end)
        if self._pos - self._start >= MAX_SAMPLES:
            return self._close(self._pos)
        return None

    def _close(self, end: int) -> Utterance:
        audio = np.concatenate(self._speech)[: min(end - self._start, MAX_SAMPLES)]
        u = Utterance(self._start, audio)
        self._speech, self._voiced_run, self._silent_run = None, 0, 0
        return u


def utterances(audio: np.ndarray) -> list[Utterance]:
    """Every utterance of a whole recording, as the edge would cut it from a live stream."""
    seg = Utterances()
    return seg.push(audio) + seg.flush()


def _check(raw: object) -> np.ndarray:
    x = as_finite_array("speech", raw, (1,), np.float32)
    if x.size < MIN_SAMPLES:
        raise ValueError(
            f"speech: utterance too short: {x.size} samples, need {MIN_SAMPLES} ({P['min_utterance_s']:g} s at 16 kHz)"
        )
    if x.size > MAX_SAMPLES:
        raise ValueError(
            f"speech: utterance too long: {x.size} samples, at most {MAX_SAMPLES} ({SPEC.window_s:g} s)"
        )
    return x


def preprocess(raw: object) -> np.ndarray:
    """One utterance (16 kHz samples in [-1, 1]) -> its 6373 ComParE 2016 functionals (float32)."""
    return smile.functionals(_check(raw), RATE, FEATURE_SET)


def reference_features(raw: object) -> np.ndarray:
    """One utterance -> its 88 eGeMAPSv02 functionals, the features of the classical references."""
    return smile.functionals(_check(raw), RATE, REFERENCE_FEATURE_SET)


def preprocess_batch(raws: list[object]) -> np.ndarray:
    """Utterances -> (N, 6373); openSMILE runs one utterance at a time."""
    if len(raws) == 0:
        return np.empty((0, *SPEC.input_shape), np.float32)
    return np.stack([preprocess(r) for r in raws])
