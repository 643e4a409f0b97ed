"""When a window ended: its source's sample time mapped onto the device's clock.

A window ends when its last sample is taken, not when it reaches the node:
sensors (and the synthetic source) hand samples over in chunks, so a window can
arrive up to a chunk late, and that delay belongs to the frame's first hop
(window end -> inference start). Delivery delays are never negative, so the
least-delayed window seen so far fixes the mapping: device time = t + min(arrival
- t). A source replayed faster than real time makes every window the new
minimum, and its windows are stamped on arrival. Windows a sensor held back (a
radio dropout) keep the time they were taken, so the coordinator sees them as
old; only a source whose time goes back (a replay starting over) is mapped anew.
"""

from __future__ import annotations

BACKWARD_NS = 5_000_000_000  # sample time this far behind the newest seen: the source started over


class SampleClock:
    """Maps one source's sample times (seconds, any steady origin) to device wall-clock nanoseconds."""

    def __init__(self) -> None:
        self._offset_ns: int | None = None
        self._newest_ns: int | None = None

    def stamp(self, t_s: float, arrival_ns: int) -> int:
        """Device time of sample time t_s, for a window that arrived at arrival_ns; never after arrival."""
        t_ns = round(t_s * 1e9)
        offset = arrival_ns - t_ns
        restarted = self._newest_ns is not None and t_ns < self._newest_ns - BACKWARD_NS
        if self._offset_ns is None or offset < self._offset_ns or restarted:
            self._offset_ns = offset
        if self._newest_ns is None or restarted or t_ns > self._newest_ns:
            self._newest_ns = t_ns
        return self._offset_ns + t_ns
