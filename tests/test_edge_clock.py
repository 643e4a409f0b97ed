"""The edge's coordinator clock: best exchange by round trip, and time that never runs backwards."""

from __future__ import annotations

import time

from edge_node.clock import ClockEstimate

MS = 1_000_000


def exchange(clock: ClockEstimate, offset_ms: float, rtt_ms: float) -> None:
    """One Sync exchange that measures `offset_ms` with round trip `rtt_ms` (server time negligible)."""
    t0 = time.time_ns()
    t1 = t2 = t0 + int((offset_ms + rtt_ms / 2) * MS)
    clock.add(t0, t1, t2, t0 + int(rtt_ms * MS))


def test_keeps_the_exchange_with_the_lowest_round_trip() -> None:
    clock = ClockEstimate()
    exchange(clock, offset_ms=40, rtt_ms=30)
    exchange(clock, offset_ms=25, rtt_ms=4)
    exchange(clock, offset_ms=60, rtt_ms=50)
    assert abs(clock.offset_ns - 25 * MS) < MS and clock.best.rtt_ns == 4 * MS


def test_now_never_goes_back_when_a_better_exchange_lowers_the_offset() -> None:
    clock = ClockEstimate()
    exchange(clock, offset_ms=500, rtt_ms=40)
    before = clock.now_ns()
    exchange(clock, offset_ms=0, rtt_ms=2)  # the better exchange moves the offset back by ~500 ms
    assert abs(clock.offset_ns) < MS
    readings = [clock.now_ns() for _ in range(1000)]
    assert readings[0] >= before and readings == sorted(readings)
    time.sleep(0.6)
    assert clock.now_ns() - before > 50 * MS, "after the offset's step back has passed, time moves again"
