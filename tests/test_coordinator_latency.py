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


def test_hops_of_no_single_modality_count_once() -> None:
    """Fused emotions' hops have no modality: they go into the overall histogram, once per sample."""
    book = LatencyBook()
    book.add_rows(("fuse", "publish"), ["", "", ""], np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    book.add("fuse", "", 7.0)
    assert set(book.hists) == {("fuse", ""), ("publish", "")}
    assert book.hists[("fuse", "")].count == 4 and book.hists[("publish", "")].count == 3
    assert book.hists[("fuse", "")].max == 7.0 and book.hists[("fuse", "")].total == pytest.approx(16.0)


def test_the_recorder_holds_samples_until_flushed_then_counts_each() -> None:
    from coordinator.hop_recorder import HopRecorder

    book = LatencyBook()
    hops = HopRecorder(book, sample_every=1)
    hops._flushed = float("inf")  # no time-based flush during the test
    times = (10**9, 10**9 + 2 * 10**6, 10**9 + 5 * 10**6, 10**9 + 6 * 10**6, 10**9 + 10 * 10**6)
    hops.frame_times(["hr", "eeg", "hr"], [times] * 3)
    hops.emotion(0.0, 1.5, 0.5, 12.0)
    assert not book.hists
    hops.flush()
    assert book.hists[("queue", "hr")].count == 2 and book.hists[("queue", "")].count == 3
    assert book.hists[("network", "eeg")].max == pytest.approx(4.0)
    assert book.hists[("added", "")].count == 1 and book.hists[("added", "")].max == pytest.approx(2.0)
    hops.flush()  # nothing new: nothing counted twice
    assert book.hists[("queue", "")].count == 3
