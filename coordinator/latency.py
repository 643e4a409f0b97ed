"""Latency histograms per hop and modality: fixed log-spaced buckets, so memory is constant.

Percentiles come from the bucket counts (relative error ~2 %), the max is exact.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

import numpy as np

from mmer.v1 import common_pb2

# 0.01 ms .. ~100 s, 8 buckets per factor of 2 (each ~9 % wide).
_EDGES = 0.01 * 2.0 ** (np.arange(0, 8 * 24) / 8.0)
_EDGE_LIST = _EDGES.tolist()  # bisect on a list beats a numpy call for one value


class Histogram:
    """Counts of milliseconds in log buckets, plus exact count, sum and max."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(_EDGES) + 1, dtype=np.int64)
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, ms: float) -> None:
        ms = max(ms, 0.0)
        self.counts[bisect_left(_EDGE_LIST, ms)] += 1
        self.count += 1
        self.total += ms
        if ms > self.max:
            self.max = ms

    def percentile(self, p: float) -> float:
        """Upper edge of the bucket holding the p-th percentile, capped at the true max."""
        if self.count == 0:
            return 0.0
        rank = np.searchsorted(np.cumsum(self.counts), p / 100.0 * self.count)
        edge = _EDGES[min(rank, len(_EDGES) - 1)]
        return float(min(edge, self.max))

    def buckets(self) -> list[tuple[float, int]]:
        """(upper edge ms, count) of every bucket from the first to the last non-empty one, for plotting."""
        nonzero = np.flatnonzero(self.counts)
        if not len(nonzero):
            return []
        edges = [*_EDGES.tolist(), self.max]  # the overflow bucket ends at the largest sample
        return [(edges[i], int(self.counts[i])) for i in range(nonzero[0], nonzero[-1] + 1)]

    def summary(self) -> common_pb2.LatencySummary:
        return common_pb2.LatencySummary(
            count=self.count,
            p50_ms=self.percentile(50),
            p95_ms=self.percentile(95),
            p99_ms=self.percentile(99),
            max_ms=self.max,
            mean_ms=self.total / self.count if self.count else 0.0,
        )


class LatencyBook:
    """Every hop's histogram, per modality and over all modalities ("")."""

    def __init__(self) -> None:
        self.hists: dict[tuple[str, str], Histogram] = defaultdict(Histogram)

    def add(self, hop: str, modality: str, ms: float) -> None:
        """One sample of a modality's hop ("" = a hop of no single modality: only the overall histogram)."""
        if modality:
            self.hists[(hop, modality)].add(ms)
        self.hists[(hop, "")].add(ms)

    def add_rows(self, hops: tuple[str, ...], modalities: list[str], ms: np.ndarray) -> None:
        """A batch: row i holds the hops of one frame of modality modalities[i] (shape (n, len(hops))).

        One bucket search for the whole batch and one bincount per hop, whatever the modality mix."""
        if not modalities:
            return
        names = sorted(set(modalities))
        code = {m: i for i, m in enumerate(names)}
        rows = np.fromiter((code[m] for m in modalities), dtype=np.int64, count=len(modalities))
        ms = np.maximum(ms, 0.0)
        buckets = np.searchsorted(_EDGES, ms)
        nb = len(_EDGES) + 1
        per_name = np.bincount(rows, minlength=len(names))
        for h, hop in enumerate(hops):
            col = ms[:, h]
            counts = np.bincount(rows * nb + buckets[:, h], minlength=len(names) * nb).reshape(len(names), nb)
            sums = np.bincount(rows, weights=col, minlength=len(names))
            maxima = np.zeros(len(names))
            np.maximum.at(maxima, rows, col)
            for j, name in enumerate([*names, None]):  # None: the all-modalities histogram ("")
                if name == "":
                    continue  # samples of no single modality count in the overall histogram only
                hist = self.hists[(hop, name or "")]
                if name is not None:
                    hist.counts += counts[j]
                    n, total, top = int(per_name[j]), float(sums[j]), float(maxima[j])
                else:
                    hist.counts += counts.sum(axis=0)
                    n, total, top = len(modalities), float(sums.sum()), float(maxima.max())
                hist.count += n
                hist.total += total
                hist.max = max(hist.max, top)

    def reset(self) -> None:
        self.hists.clear()
