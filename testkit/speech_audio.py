"""Speech-like audio with known answers for the speech tests: a glottal pulse train at a set pitch through
three formant resonators, syllable-modulated, between silences of known length. WebRTC's voice detector
hears it as speech (a pure tone it does not), and openSMILE measures its pitch."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from mmer_core import dsp
from mmer_core.synthetic.speech import FORMANTS_HZ

RATE = 16000


def _resonator(freq: float, bw: float, rate: int) -> tuple[float, np.ndarray]:
    """Gain and denominator of a two-pole resonator at freq with bandwidth bw (Hz), at any sample rate."""
    r = np.exp(-np.pi * bw / rate)
    return 1.0 - r, np.array([1.0, -2 * r * np.cos(2 * np.pi * freq / rate), r * r])


def voiced(seconds: float, f0_hz: float = 130.0, loudness: float = 0.3, rate: int = RATE) -> np.ndarray:
    """seconds of a steady vowel-like sound at f0_hz, with 4 syllables a second."""
    t = np.arange(int(seconds * rate)) / rate
    source = dsp.sawtooth(2 * np.pi * f0_hz * t)
    shaped = sum(dsp.allpole_filter(*_resonator(f, bw, rate), source) for f, bw in FORMANTS_HZ)
    shaped = shaped / (np.abs(shaped).max() + 1e-9)
    syllables = 0.3 + 0.7 * np.maximum(0.0, np.sin(2 * np.pi * 4 * t)) ** 0.5
    return (loudness * shaped * syllables).astype(np.float32)


def with_spans(
    total_s: float, spans: list[tuple[float, float]], f0_hz: float = 130.0, seed: int = 0
) -> np.ndarray:
    """total_s of faint noise with voiced() sound in each (start_s, end_s) span."""
    rng = np.random.default_rng(seed)
    x = (0.002 * rng.standard_normal(int(total_s * RATE))).astype(np.float32)
    for a, b in spans:
        i, j = int(a * RATE), int(b * RATE)
        x[i:j] += voiced((j - i) / RATE, f0_hz)
    return x


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> None:
    """16-bit mono wav."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


# each quadrant's pitch (times the speaker's own) and loudness: happy, angry, sad, calm
QUADRANT_VOICES = {"happy": (1.25, 0.35), "angry": (1.4, 0.6), "sad": (0.85, 0.15), "calm": (1.0, 0.25)}


def _clip(speaker_f0: float, quadrant: str, rep: int) -> np.ndarray:
    """Half a second of silence, a voiced stretch in the quadrant's voice, half a second of silence."""
    pitch, loud = QUADRANT_VOICES[quadrant]
    silence = np.zeros(RATE // 2, np.float32)
    return np.concatenate(
        [silence, voiced(1.2 + 0.2 * rep, speaker_f0 * pitch * (1 + 0.02 * rep), loud), silence]
    )


def ravdess_corpus(root: Path, actors: int = 4, per_class: int = 3) -> None:
    """A tiny corpus in RAVDESS naming whose classes differ in pitch and loudness, each actor at their own
    pitch: a model can learn it only relative to the speaker."""
    codes = {"03": "happy", "05": "angry", "04": "sad", "02": "calm"}
    for actor in range(1, actors + 1):
        for code, quadrant in codes.items():
            for rep in range(per_class):
                name = f"03-01-{code}-01-0{rep % 2 + 1}-0{rep // 2 + 1}-{actor:02d}.wav"
                write_wav(root / f"Actor_{actor:02d}" / name, _clip(100.0 + 25.0 * actor, quadrant, rep))


def crema_corpus(root: Path, actors: int = 3, per_class: int = 3) -> None:
    """A tiny corpus in CREMA-D naming (`AAAA_SSS_EEE_LL.wav`, one sentence code per repetition), voiced as
    ravdess_corpus voices its classes, its actors at pitches of their own."""
    codes = {"HAP": "happy", "ANG": "angry", "SAD": "sad", "NEU": "calm"}
    sentences = ("IEO", "TIE", "DFA", "ITH", "MTI", "WSI")
    for actor in range(1, actors + 1):
        for code, quadrant in codes.items():
            for rep in range(per_class):
                name = f"{1000 + actor}_{sentences[rep % len(sentences)]}_{code}_XX.wav"
                write_wav(root / name, _clip(90.0 + 30.0 * actor, quadrant, rep))
