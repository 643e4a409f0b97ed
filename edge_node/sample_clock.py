"""When a window ended: its source's sample time mapped onto the device's clock.

A window ends when its last sample is taken, not when it reaches the node:
sensors (and the synthetic source) hand samples over in chunks, so a window can
arrive up to a chunk late, and that delay belongs to the frame's first hop
(window end -> inference start). Delivery delays are never negative, so the
least-delayed window seen so far fixes the mapping: device time = t + min(arrival
- t). A source replayed faster than real time makes every window the new
minimum, and its windows are stamped on arrival.
"""

from __future__ import annotations

RESYNC_NS = 10_000_000_000  # a stamp this far behind arrival means the source's time jumped (a replay loop)


class SampleClock:
    """Maps one source's sample times (seconds, any steady origin) to device wall-clock nanoseconds."""

    def __init__(self) -> None:
        self._offset_ns: int | None = None

    def stamp(self, t_s: float, arrival_ns: int) -> int:
        """Device time of sample time t_s, for a window that arrived at arrival_ns; never after arrival."""
        t_ns = round(t_s * 1e9)
        offset = arrival_ns - t_ns
        if self._offset_ns is None or offset < self._offset_ns or offset - self._offset_ns > RESYNC_NS:
            self._offset_ns = offset
        return self._offset_ns + t_ns
