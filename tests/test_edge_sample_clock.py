"""Window ends on the device clock: sample time mapped by the least-delayed window, not arrival time."""

from __future__ import annotations

import itertools

from edge_node.sample_clock import BACKWARD_NS, SampleClock

S = 1_000_000_000
T0 = 1_700_000_000 * S  # device wall clock when the source's time was 0


def test_chunked_delivery_is_stamped_at_sample_time() -> None:
    """Samples come in 0.2 s chunks: a window ending at 0.5 s reaches the node with the chunk ending 0.6 s."""
    clock = SampleClock()
    assert clock.stamp(0.4, T0 + 400_000_000) == T0 + 400_000_000  # arrived on time: fixes the mapping
    assert clock.stamp(0.5, T0 + 600_000_000) == T0 + 500_000_000  # a chunk late: still ended at 0.5 s
    assert clock.stamp(1.0, T0 + 1_000_000_000) == T0 + S
    ends = [clock.stamp(t / 2, T0 + round((t / 2 + (0.1 if t % 2 else 0)) * S)) for t in range(3, 9)]
    assert [b - a for a, b in itertools.pairwise(ends)] == [S // 2] * 5, "a hop is a hop"


def test_a_late_first_window_is_corrected_by_a_prompter_one() -> None:
    clock = SampleClock()
    assert clock.stamp(0.5, T0 + 600_000_000) == T0 + 600_000_000  # nothing better known yet
    assert clock.stamp(0.6, T0 + 600_000_000) == T0 + 600_000_000
    assert clock.stamp(1.0, T0 + S + 100_000_000) == T0 + S


def test_a_replay_faster_than_real_time_is_stamped_on_arrival() -> None:
    clock = SampleClock()
    for i in range(1, 50):  # 10 s of windows per 10 ms of wall time
        arrival = T0 + i * 10_000_000
        assert clock.stamp(i * 10.0, arrival) == arrival


def test_a_source_whose_time_jumps_back_is_remapped() -> None:
    clock = SampleClock()
    clock.stamp(100.0, T0 + 100 * S)
    arrival = T0 + 101 * S
    assert clock.stamp(1.0, arrival) == arrival, "a replay that starts over is not stamped 99 s in the past"
    assert clock.stamp(1.5, arrival + S // 2) == arrival + S // 2
    assert BACKWARD_NS < 99 * S


def test_windows_a_sensor_held_back_keep_the_time_they_were_taken() -> None:
    """A radio dropout: 30 s of windows arrive at once; they ended long ago and must look old."""
    clock = SampleClock()
    for t in range(1, 11):
        assert clock.stamp(float(t), T0 + t * S) == T0 + t * S
    late = T0 + 41 * S
    assert [clock.stamp(float(t), late) for t in range(11, 41)] == [T0 + t * S for t in range(11, 41)]
    assert clock.stamp(41.0, T0 + 41 * S) == T0 + 41 * S
    assert clock.stamp(38.5, T0 + 41 * S) == T0 + 38 * S + S // 2, "a little out of order is not a restart"
