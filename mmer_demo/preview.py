"""The data preview: synthetic subjects streamed through the shared windowing and preprocessing.

It shows what each modality carries (heart rate and HRV, EEG alpha asymmetry
and beta/alpha balance, voice loudness and pitch, face brightness) next to the
true emotion, and measures preprocessing time per window. It runs with nothing
trained, so it is what `mmer demo` shows until models exist.
"""

from __future__ import annotations

import heapq
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmer_core.modalities import EEG_BANDS, EEG_CHANNELS, HR_FEATURES, MODALITIES
from mmer_core.preprocess import preprocess
from mmer_core.preprocess.face_finder import NoFace
from mmer_core.synthetic import Session, SessionConfig, stream_windows
from mmer_core.windowing import Window

SUBJECT_PLANS = (
    (("happy", 20.0), ("angry", 20.0), ("sad", 20.0), ("calm", 20.0)),
    (("calm", 20.0), ("sad", 20.0), ("happy", 20.0), ("angry", 20.0)),
    (("angry", 20.0), ("calm", 20.0), ("angry", 20.0), ("happy", 20.0)),
)
_ALPHA = [b for b, _, _ in EEG_BANDS].index("alpha")
_BETA = [b for b, _, _ in EEG_BANDS].index("beta")


def _cue(modality: str, features: np.ndarray) -> str:
    """One human-readable number or two from a window's features."""
    if modality == "hr":
        f = dict(zip(HR_FEATURES, features, strict=True))
        return f"HR {f['mean_hr_bpm']:5.1f} bpm RMSSD {f['rmssd_ms']:4.0f} ms"
    if modality == "eeg":
        # differential entropy per channel and band comes first: 0.5 ln(2 pi e P), so differences are ln ratios / 2
        bands = features[: len(EEG_CHANNELS) * len(EEG_BANDS)].reshape(len(EEG_CHANNELS), len(EEG_BANDS))
        return f"alpha asym {features[-3]:+.2f} beta/alpha {np.mean(bands[:, _BETA] - bands[:, _ALPHA]):+.2f}"
    if modality == "speech":
        return f"loudness {features.mean():6.2f}"
    return f"face mean {features.mean():.2f}"


def _tag(session: Session) -> Iterator[tuple[Session, Window]]:
    for window in stream_windows(session, MODALITIES):
        yield session, window


def run_preview(seconds: float, devices: int, json_path: Path | None, speed: float = 4.0) -> int:
    """Stream `devices` synthetic subjects for `seconds` of session time at `speed` x real time."""
    print(
        f"[demo] no trained models yet: previewing the synthetic sensor data ({devices} subjects, {speed:g}x)"
    )
    timings: dict[str, list[float]] = defaultdict(list)
    sessions = []
    for i in range(devices):
        plan = SUBJECT_PLANS[i % len(SUBJECT_PLANS)]
        duration = min(seconds, sum(d for _, d in plan))
        sessions.append(Session(SessionConfig(f"subject-{i + 1}", 100 + i, duration, plan)))
    tagged = [_tag(s) for s in sessions]
    merged = heapq.merge(*tagged, key=lambda item: item[1].t_end)
    started = time.monotonic()
    last: dict[tuple[str, str], str] = {}
    shown = 0.0
    for session, window in merged:
        t0 = time.perf_counter()
        try:
            features = preprocess(window.modality, window.data)
            cue = _cue(window.modality, features)
        except NoFace:
            cue = "no face in view"
        timings[window.modality].append((time.perf_counter() - t0) * 1000)
        last[(session.config.subject_id, window.modality)] = cue
        lag = window.t_end / speed - (time.monotonic() - started)
        if lag > 0:
            time.sleep(lag)
        if window.t_end - shown >= 5.0:
            shown = window.t_end
            for s in sessions:
                sid = s.config.subject_id
                cues = " | ".join(last.get((sid, m), "-") for m in MODALITIES)
                print(
                    f"t={window.t_end:5.1f}s {sid:<10} truth {s.label_at(window.t_end):<6} {cues}", flush=True
                )
    summary = {
        m: {
            "windows": len(v),
            "preprocess_ms_p50": float(np.percentile(v, 50)),
            "preprocess_ms_p99": float(np.percentile(v, 99)),
        }
        for m, v in timings.items()
    }
    print("\nmodality  windows  preprocess p50 ms  p99 ms")
    for m, s in summary.items():
        print(f"{m:<9} {s['windows']:7d}  {s['preprocess_ms_p50']:17.2f}  {s['preprocess_ms_p99']:6.2f}")
    if json_path:
        json_path.write_text(json.dumps({"mode": "preview", "modalities": summary}, indent=2) + "\n")
    return 0
