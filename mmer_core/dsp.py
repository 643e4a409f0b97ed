"""The few signal-processing routines the edge path needs, in numpy alone.

Importing scipy.signal costs ~80 MB of resident memory (it pulls in
scipy.stats, sparse, linalg, optimize ...), over half of an edge node's
150 MB budget, for three small functions. These reproduce scipy.signal's
results (tests/test_dsp.py compares them with scipy to 1e-9 or better);
the trainer and anything off the edge may keep using scipy.signal.
"""

from __future__ import annotations

import numpy as np


def hann_periodic(n: int) -> np.ndarray:
    """The DFT-even Hann window, scipy.signal.get_window('hann', n)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def median_bias(n: int) -> float:
    """How much the median of n chi-squared(2) periodogram values underestimates their mean (scipy's)."""
    k = 2 * np.arange(1, (n - 1) // 2 + 1)
    return float(1.0 + np.sum(1.0 / (k + 1) - 1.0 / k))


def welch(
    x: np.ndarray, fs: float, nperseg: int, noverlap: int, average: str = "mean"
) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD along the last axis, as scipy.signal.welch with its defaults.

    Hann window, mean removed per segment, density scaling, one-sided; the segments' mean, or with
    average="median" their bias-corrected median (one segment hit by an artefact then moves nothing);
    no padding, so a trailing partial segment is left out. Returns (frequencies, psd).
    """
    if average not in ("mean", "median"):
        raise ValueError(f"welch: average must be mean or median, got {average!r}")
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    nperseg = min(int(nperseg), n)
    if not 0 <= noverlap < nperseg:
        raise ValueError(f"welch: noverlap must be within 0..{nperseg - 1}, got {noverlap}")
    step = nperseg - noverlap
    starts = step * np.arange((n - noverlap) // step)
    segments = x[..., starts[:, None] + np.arange(nperseg)]
    segments = segments - segments.mean(axis=-1, keepdims=True)
    win = hann_periodic(nperseg)
    spec = np.fft.rfft(segments * win, axis=-1)
    psd = (spec.real**2 + spec.imag**2) / (fs * np.sum(win**2))
    psd[..., 1 : -1 if nperseg % 2 == 0 else None] *= 2.0
    freqs = np.fft.rfftfreq(nperseg, 1.0 / fs)
    if average == "median":
        return freqs, np.median(psd, axis=-2) / median_bias(psd.shape[-2])
    return freqs, psd.mean(axis=-2)


def lombscargle(t: np.ndarray, y: np.ndarray, angular_freqs: np.ndarray) -> np.ndarray:
    """Lomb-Scargle periodogram of unevenly sampled y(t), as scipy.signal.lombscargle (power units).

    P(w) = 1/2 [(sum y cos w(t-tau))^2 / sum cos^2 w(t-tau) + (sum y sin w(t-tau))^2 / sum sin^2 w(t-tau)]
    with tau making the sine and cosine terms orthogonal.
    """
    t = np.asarray(t, dtype=np.float64)[:, None]
    y = np.asarray(y, dtype=np.float64)[:, None]
    wt = t * np.asarray(angular_freqs, dtype=np.float64)[None, :]
    n = t.shape[0]
    cc = np.mean(np.cos(wt) ** 2, axis=0)
    cs = np.mean(np.cos(wt) * np.sin(wt), axis=0)
    tau = 0.5 * np.arctan2(2.0 * cs, cc - (1.0 - cc))
    cos_tau, sin_tau = np.cos(wt - tau), np.sin(wt - tau)
    yc = np.mean(y * cos_tau, axis=0)
    ys = np.mean(y * sin_tau, axis=0)
    cc = np.mean(cos_tau**2, axis=0)
    eps = np.finfo(np.float64).epsneg
    cc_safe, ss_safe = np.maximum(cc, eps), np.maximum(1.0 - cc, eps)
    return 2.0 * (yc * yc / cc_safe + ys * ys / ss_safe) * (n / 4.0)


def allpole_filter(gain: float, denominator: np.ndarray | list[float], x: np.ndarray) -> np.ndarray:
    """scipy.signal.lfilter([gain], denominator, x) for a stable all-pole filter with distinct poles, zero state.

    Partial fractions split the filter into first-order recurrences z[n] = p z[n-1] + x[n], one per
    pole (one per conjugate pair: real input makes the other its conjugate), each solved in blocks by
    `_first_order` without a Python loop over samples.
    """
    a = np.asarray(denominator, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or a[0] == 0:
        raise ValueError(f"allpole_filter: denominator must be 1-D with a non-zero first entry, got {a}")
    gain = gain / a[0]
    poles = np.roots(a / a[0]) if a.size > 1 else np.empty(0, np.complex128)
    if np.any(np.abs(poles) >= 1.0):
        raise ValueError(f"allpole_filter: unstable denominator {a.tolist()} (a pole on or outside |z| = 1)")
    if poles.size > 1 and np.min(np.abs(poles[:, None] - poles[None, :]) + np.eye(poles.size)) < 1e-6:
        raise ValueError(f"allpole_filter: denominator {a.tolist()} has a repeated pole")
    y = np.zeros(x.shape[-1])
    for k, p in enumerate(poles):
        if p.imag < 0 and np.any(np.isclose(poles, np.conj(p))):
            continue  # the conjugate of a pole already counted twice below
        c = p ** (poles.size - 1) / np.prod(p - np.delete(poles, k))
        part = (c * _first_order(complex(p), x)).real
        y += 2.0 * part if p.imag > 0 and np.any(np.isclose(poles, np.conj(p))) else part
    return gain * y if poles.size else gain * x


def _first_order(p: complex, x: np.ndarray, max_gain: float = 1e3) -> np.ndarray:
    """z[n] = p z[n-1] + x[n] from z[-1] = 0, for |p| < 1.

    Within a block of B samples z = p^j cumsum(x p^-i); B is as long as keeps |p|^-B <= max_gain, so
    at most three digits of float64 are lost. Each block then adds the carry from the blocks before
    it, Z[b] = sum_m P^m e[b-m] with P = p^B and e the blocks' own end values; |P| <= 1/max_gain, so
    the terms fall below float64 resolution after a handful of m and the sum stops there.
    """
    n = x.shape[-1]
    mag = abs(p)
    if mag == 0.0 or n == 0:
        return x.astype(np.complex128)
    block = int(np.clip(1 + np.log(max_gain) / -np.log(mag), 1, n))
    blocks = -(-n // block)
    padded = np.zeros(blocks * block)
    padded[:n] = x
    j = np.arange(block)
    up = p**j
    local = np.cumsum(padded.reshape(blocks, block) / up, axis=1) * up
    ends, pb = local[:, -1], p**block
    carry = ends.copy()
    terms = min(blocks, int(np.ceil(np.log(1e-18) / np.log(abs(pb)))) if 0 < abs(pb) < 1 else 1)
    for m in range(1, terms):
        carry[m:] += pb**m * ends[:-m]
    local[1:] += np.multiply.outer(carry[:-1], p * up)
    return local.reshape(-1)[:n]


def sawtooth(phase: np.ndarray) -> np.ndarray:
    """Rising sawtooth of period 2 pi in [-1, 1), scipy.signal.sawtooth(phase) with width 1."""
    return np.mod(phase, 2.0 * np.pi) / np.pi - 1.0
