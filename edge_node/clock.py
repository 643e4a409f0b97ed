"""NTP-style clock sync with the coordinator: keep the exchange with the lowest round trip."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from mmer.v1 import clock_pb2


@dataclass(frozen=True)
class Exchange:
    offset_ns: int
    rtt_ns: int


class ClockEstimate:
    """The offset (coordinator - device) of the best recent exchange; 0 until the first one.

    A new best exchange can move the offset back by a few milliseconds; now_ns() never goes back
    (it holds still until the clock catches up), so a frame's timestamps stay in order even when a
    sync lands between its window end and its inference.
    """

    def __init__(self, keep: int = 16) -> None:
        self._recent: deque[Exchange] = deque(maxlen=keep)
        self.best = Exchange(0, 0)
        self._last_ns = 0
        self._lock = threading.Lock()

    def add(self, t0: int, t1: int, t2: int, t3: int) -> Exchange:
        """Record one exchange (t0/t3 device clock, t1/t2 coordinator clock)."""
        ex = Exchange(((t1 - t0) + (t2 - t3)) // 2, max(0, (t3 - t0) - (t2 - t1)))
        self._recent.append(ex)
        self.best = min(self._recent, key=lambda e: e.rtt_ns)
        return ex

    def add_response(self, resp: clock_pb2.SyncResponse, t3: int) -> Exchange:
        return self.add(resp.t0_device_ns, resp.t1_ns, resp.t2_ns, t3)

    @property
    def offset_ns(self) -> int:
        return self.best.offset_ns

    def now_ns(self) -> int:
        """Current time on the coordinator's clock, never earlier than a value it returned before."""
        with self._lock:
            self._last_ns = max(self._last_ns, time.time_ns() + self.best.offset_ns)
            return self._last_ns

    def to_coordinator_ns(self, device_ns: int) -> int:
        return device_ns + self.best.offset_ns
