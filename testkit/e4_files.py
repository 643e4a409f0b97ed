"""Tiny Empatica E4 session folders written in the device's export layout, with known signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np

BVP_HZ, SKIN_HZ = 64.0, 4.0


def signal_csv(path: Path, start: float, rate: float, values: np.ndarray) -> None:
    """An E4 single-signal file: session start (Unix s), rate (Hz), then one sample a row."""
    path.write_text(f"{start:.6f}\n{rate:.6f}\n" + "\n".join(f"{v:.6f}" for v in values) + "\n")


def write_e4_session(
    folder: Path, start: float, beat_s: float, seconds: float, ibi_only: bool = False, skin: bool = True
) -> dict[str, np.ndarray]:
    """BVP.csv (one pulse per beat), IBI.csv, HR.csv and, with skin, EDA.csv (2 uS with a 0.5 uS skin
    conductance response every 20 s) and TEMP.csv (a ramp from 32 C by 0.01 C/s); returns the skin signals."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * BVP_HZ)) / BVP_HZ
    bvp = 40 * np.sin(2 * np.pi * t / beat_s) ** 21 + 0.5 * np.sin(2 * np.pi * 0.1 * t)
    if not ibi_only:
        signal_csv(folder / "BVP.csv", start, BVP_HZ, bvp)
    beats = np.arange(beat_s, seconds, beat_s)
    rows = "\n".join(f"{b:.6f},{beat_s:.6f}" for b in beats)
    (folder / "IBI.csv").write_text(f"{start:.6f}, IBI\n{rows}\n")
    signal_csv(folder / "HR.csv", start + 10, 1.0, np.full(20, 75.0))
    ts = np.arange(int(seconds * SKIN_HZ)) / SKIN_HZ
    eda = 2.0 + scr_train(ts, 20.0)
    temp = 32.0 + 0.01 * ts
    if skin:
        signal_csv(folder / "EDA.csv", start, SKIN_HZ, eda)
        signal_csv(folder / "TEMP.csv", start, SKIN_HZ, temp)
    return {"t": ts, "eda": eda, "temp": temp}


def scr_train(t: np.ndarray, every_s: float, amplitude: float = 0.5) -> np.ndarray:
    """Skin conductance responses (fast rise, slow decay) starting every every_s seconds from 5 s."""
    out = np.zeros_like(t)
    for onset in np.arange(5.0, t[-1], every_s):
        since = t - onset
        out += np.where(since > 0, amplitude * (np.exp(-since / 4.0) - np.exp(-since / 0.5)), 0.0)
    return out
