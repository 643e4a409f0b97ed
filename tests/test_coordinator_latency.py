"""Latency histograms: a batch added at once counts exactly as its samples added one by one."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.latency import LatencyBook

HOPS = ("queue", "inference", "spool", "network")


def test_a_batch_equals_its_samples_one_by_one() -> None:
    rng = np.random.default_rng(0)
    ms = rng.exponential(5.0, size=(300, len(HOPS)))
    ms[0, 0] = -1.0  # clock skew: counted as 0
    modalities = [str(m) for m in rng.choice(["hr", "eeg", "image"], 300)]
    batch, single = LatencyBook(), LatencyBook()
    batch.add_rows(HOPS, modalities, ms)
    for row, modality in zip(ms, modalities, strict=True):
        for hop, value in zip(HOPS, row, strict=True):
            single.add(hop, modality, float(value))
    assert set(batch.hists) == set(single.hists) == {(h, m) for h in HOPS for m in ("", "hr", "eeg", "image")}
    for key, want in single.hists.items():
        got = batch.hists[key]
        assert (got.counts == want.counts).all() and got.count == want.count, key
        assert got.total == pytest.approx(want.total) and got.max == want.max, key
    summary = batch.hists[("network", "")].summary()
    assert summary.count == 300 and 0 < summary.p50_ms < summary.p99_ms <= summary.max_ms
