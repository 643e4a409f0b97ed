"""What a wrist device (Empatica E4 class) delivers over a span of time: beats, skin conductance, skin temperature.

Every channel is timestamped on the session clock, so sources with different rates, a late stream or a
dropout window the same way. A channel the device does not have is None (never zeros, which would read
as a real, implausible signal); beats are required, EDA and temperature are optional.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHANNELS = ("beats", "eda", "temp")


@dataclass(frozen=True)
class WristData:
    """beats: (n, 2) rows of [beat_time_s, rr_s]; eda: (m, 2) rows of [time_s, microsiemens];
    temp: (k, 2) rows of [time_s, degrees C]; eda/temp None when the device has no such sensor."""

    beats: np.ndarray
    eda: np.ndarray | None = None
    temp: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in CHANNELS:
            value = getattr(self, name)
            if value is None and name != "beats":
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.size == 0:
                arr = arr.reshape(0, 2)
            if arr.ndim != 2 or arr.shape[1] != 2:
                raise ValueError(f"hr: {name} must be (n, 2) rows of [time_s, value], got shape {arr.shape}")
            object.__setattr__(self, name, arr)

    def between(self, start_s: float, end_s: float) -> WristData:
        """The samples with start_s <= time < end_s of every channel, found by bisection (each channel is in
        time order); absent channels stay absent. Half-open: spans that follow each other (a source's chunks,
        a window and the next one's start) share no sample, and a sample stamped at a chunk's end comes with
        the next chunk, as from a live wrist."""

        def cut(arr: np.ndarray | None) -> np.ndarray | None:
            if arr is None:
                return None
            lo, hi = np.searchsorted(arr[:, 0], (start_s, end_s))
            return arr[lo:hi]

        return WristData(cut(self.beats), cut(self.eda), cut(self.temp))  # type: ignore[arg-type]


def rr_only(rr_s: np.ndarray) -> WristData:
    """A beat-only window from its RR intervals (s), beat times by accumulation: what an RR sensor gives."""
    rr = np.asarray(rr_s, dtype=np.float64).reshape(-1)
    return WristData(np.column_stack([np.cumsum(rr), rr]))
