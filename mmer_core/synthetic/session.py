"""A synthetic session: one subject, an emotion trajectory, and every modality's sensor data.

Signals are generated in fixed blocks seeded by (seed, modality, block), so any
stretch of time comes out the same whether it is read in one piece (the batch
API) or chunk by chunk (the streaming API), and a long session never sits in
memory whole. Consecutive blocks overlap briefly and are cross-faded.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from mmer_core.modalities import MODALITIES, SPECS, get_spec
from mmer_core.synthetic import eeg, face, hr, speech
from mmer_core.synthetic.traits import Traits, sample_traits
from mmer_core.synthetic.trajectory import Trajectory, random_segments
from mmer_core.windowing import SensorChunk, Window, Windower
from mmer_core.wrist import WristData

BLOCK_S = 8.0
# 16 kHz audio is made in shorter blocks: the temporaries of its filters then stay a few MB (8 s of audio
# held ~20 MB at once, which a device's memory keeps)
AUDIO_BLOCK_S = 2.0
SCR_BLOCKS = 4  # a skin conductance response has faded within this many blocks after its onset
OVERLAP_S = 0.25
_STREAM_IDS = {
    "traits": 0,
    "hr": 1,
    "eeg": 2,
    "speech": 3,
    "image": 4,
    "trajectory": 5,
    "skin": 6,
    "demeanour": 7,
}


def _block_s(modality: str) -> float:
    """Seconds of one generated block of the modality."""
    return AUDIO_BLOCK_S if modality == "speech" else BLOCK_S


@dataclass(frozen=True)
class NoiseConfig:
    """Noise scale per modality (1.0 = default). Defaults leave each modality imperfect on its own."""

    hr: float = 1.0
    eeg: float = 1.0
    speech: float = 1.0
    image: float = 1.0

    def __post_init__(self) -> None:
        for name in MODALITIES:
            if not 0.0 <= getattr(self, name) <= 20.0:
                raise ValueError(f"noise.{name}: must be within 0..20, got {getattr(self, name)}")


@dataclass(frozen=True)
class SessionConfig:
    """Who the subject is (seed), how long the session runs, and optionally which emotions in which order."""

    subject_id: str
    seed: int
    duration_s: float = 600.0
    segments: tuple[tuple[str, float], ...] | None = None
    transition_s: float = 4.0
    noise: NoiseConfig = field(default_factory=NoiseConfig)


class Session:
    """Deterministic sensor data of one synthetic subject."""

    def __init__(self, config: SessionConfig) -> None:
        if config.duration_s <= 0:
            raise ValueError(f"session {config.subject_id}: duration must be positive")
        self.config = config
        self.traits: Traits = sample_traits(self._rng("traits"))
        self.demeanour = face.sample_demeanour(self._rng("demeanour"))
        rng = self._rng("trajectory")
        segments = config.segments or tuple(random_segments(rng, config.duration_s))
        wander = np.stack(
            [
                np.column_stack(
                    [rng.uniform(0.03, 0.08, 3), rng.uniform(0.002, 0.02, 3), rng.uniform(0, 6.3, 3)]
                )
                for _ in range(2)
            ]
        )
        self.trajectory = Trajectory(segments, config.transition_s, wander)
        self._cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    @property
    def duration_s(self) -> float:
        return min(self.config.duration_s, self.trajectory.duration_s)

    def _rng(self, stream: str, block: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, _STREAM_IDS[stream], block])

    def label_at(self, t: float) -> str:
        """True label at session time t."""
        return self.trajectory.label_at(t)

    def valence_arousal(self, t: float) -> tuple[float, float]:
        """Valence and arousal at session time t."""
        v, a = self.trajectory.valence_arousal(t)
        return float(v), float(a)

    def _block(self, modality: str, k: int) -> np.ndarray:
        key = (modality, k)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        rng = self._rng(modality, k)
        noise = getattr(self.config.noise, modality)
        t0 = k * _block_s(modality)
        if modality == "hr":
            beats = hr.beats(self.traits, self.trajectory, t0, t0 + BLOCK_S, rng, noise)
            events = [self._scr_events(j) for j in range(max(k - SCR_BLOCKS, 0), k + 1)]
            skin_rng = self._rng("skin", k)
            hr.scr_events(self.trajectory, t0, t0 + BLOCK_S, skin_rng)  # the block's own events, drawn first
            eda, temp = hr.skin(
                self.traits, self.trajectory, t0, t0 + BLOCK_S, np.concatenate(events), skin_rng, noise
            )
            data = WristData(beats, eda, temp)
        else:
            rate = SPECS[modality].sample_rate_hz
            n = round((_block_s(modality) + OVERLAP_S) * rate)
            gen = eeg.signal if modality == "eeg" else speech.signal
            data = gen(self.traits, self.trajectory, t0, n, rng, noise)
        self._cache[key] = data
        while len(self._cache) > 12:
            self._cache.popitem(last=False)
        return data

    def _scr_events(self, k: int) -> np.ndarray:
        """The SCRs starting in block k: the first draws of the block's skin stream."""
        t0 = k * BLOCK_S
        return hr.scr_events(self.trajectory, t0, t0 + BLOCK_S, self._rng("skin", k))

    def samples(self, modality: str, t0: float, t1: float) -> np.ndarray:
        """Regular-rate signal in [t0, t1): (channels, n) for EEG, (n,) for speech."""
        rate = SPECS[modality].sample_rate_hz
        i0, i1 = round(t0 * rate), round(t1 * rate)
        per_block, overlap = round(_block_s(modality) * rate), round(OVERLAP_S * rate)
        fade = np.linspace(0.0, 1.0, overlap, endpoint=False)
        parts = []
        for k in range(i0 // per_block, (i1 - 1) // per_block + 1):
            block = self._block(modality, k)[..., :per_block].copy()
            if k > 0:
                tail = self._block(modality, k - 1)[..., per_block : per_block + overlap]
                block[..., :overlap] = block[..., :overlap] * fade + tail * (1 - fade)
            lo, hi = max(i0 - k * per_block, 0), min(i1 - k * per_block, per_block)
            parts.append(block[..., lo:hi])
        return np.concatenate(parts, axis=-1)

    def wrist(self, t0: float, t1: float) -> WristData:
        """Heart beats, skin conductance and temperature in [t0, t1)."""
        parts = [self._block("hr", k) for k in range(int(t0 // BLOCK_S), int(np.ceil(t1 / BLOCK_S)))]

        def joined(channel: str) -> np.ndarray:
            arr = np.concatenate([getattr(p, channel) for p in parts]) if parts else np.empty((0, 2))
            return arr[(arr[:, 0] >= t0) & (arr[:, 0] < t1)]

        return WristData(joined("beats"), joined("eda"), joined("temp"))

    def beats(self, t0: float, t1: float) -> np.ndarray:
        """Heart beats in [t0, t1) as (n, 2) rows of [beat_time_s, rr_s]."""
        return self.wrist(t0, t1).beats

    def frames(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """Camera frames at 5 fps in [t0, t1), the person's face in each, showing part of what they feel:
        (frame times, (n, H, W) uint8)."""
        rate = SPECS["image"].sample_rate_hz
        idx = np.arange(int(np.ceil(t0 * rate - 1e-9)), int(np.ceil(t1 * rate - 1e-9)))
        if idx.size == 0:
            return np.empty(0), np.empty((0, face.FRAME_H, face.FRAME_W), np.uint8)
        times = idx / rate
        va = self.trajectory.valence_arousal(times) * face.shown(self.demeanour, times)[:, None]
        rng = self._rng("image", int(idx[0]))
        where = face.corners(self.demeanour, times)
        return times, face.frames(self.traits, va[:, 0], va[:, 1], rng, self.config.noise.image, where)

    def chunk(self, modality: str, t0: float, t1: float) -> SensorChunk:
        """Sensor data of one modality over [t0, t1) as a sensor would deliver it."""
        label = self.label_at(max(t0, t1 - 1e-6))
        if modality == "hr":
            return SensorChunk("hr", t0, t1, self.wrist(t0, t1), label)
        if modality == "image":
            return SensorChunk("image", t0, t1, self.frames(t0, t1)[1], label)
        get_spec(modality)
        return SensorChunk(modality, t0, t1, self.samples(modality, t0, t1), label)

    def chunks(self, modalities: Sequence[str] = MODALITIES, chunk_s: float = 0.2) -> Iterator[SensorChunk]:
        """Every modality's data in time order, chunk_s at a time (image chunks hold one frame per 0.2 s)."""
        for m in modalities:
            get_spec(m)
        n = int(self.duration_s / chunk_s + 1e-9)
        for i in range(n):
            t0, t1 = i * chunk_s, (i + 1) * chunk_s
            for m in modalities:
                chunk = self.chunk(m, t0, t1)
                if m != "image" or len(chunk.data):
                    yield chunk


def stream_windows(
    session: Session, modalities: Sequence[str] = MODALITIES, realtime: bool = False, speed: float = 1.0
) -> Iterator[Window]:
    """Windows as they complete, in order of window end; paced to the wall clock when realtime."""
    windowers = {m: Windower(SPECS[m]) for m in modalities}
    started = time.monotonic()
    for chunk in session.chunks(modalities):
        if realtime:
            delay = chunk.t_end / speed - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)
        ready = windowers[chunk.modality].push(chunk)
        yield from ready
