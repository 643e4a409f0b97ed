"""Sensor sources as iterators of model windows: synthetic sessions, recorded replays, live LSL streams.

`synthetic[:SEED]` and `replay:PATH` are paced to the wall clock (window
ends at their session time) unless `fast`; `lsl:NAME` is live and paced by
the sensors themselves. Formats of the replays: edge_node.replay.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from mmer_core.windowing import Window


def open_source(
    source: str, modalities: Sequence[str], subject: str, fast: bool, seconds: float | None
) -> Iterator[Window]:
    """Windows from `synthetic[:SEED]`, `replay:PATH` or `lsl:NAME`; ValueError naming the source otherwise."""
    kind, _, arg = source.partition(":")
    if kind == "synthetic":
        from mmer_core.synthetic.session import Session, SessionConfig, stream_windows  # a device has sensors

        seed = int(arg) if arg else 0
        session = Session(SessionConfig(subject_id=subject, seed=seed, duration_s=seconds or 24 * 3600.0))
        return stream_windows(session, modalities, realtime=not fast)
    if kind == "replay":
        from edge_node.replay import open_replay

        return paced(open_replay(Path(arg), modalities), fast, seconds)
    if kind == "lsl":
        from edge_node.lsl import open_lsl

        return open_lsl(arg, modalities, seconds)
    raise ValueError(f"source {source!r}: expected synthetic[:SEED], replay:PATH or lsl:NAME")


def paced(windows: Iterable[Window], fast: bool, seconds: float | None) -> Iterator[Window]:
    """Hand each window out when its end time has come (or at once when fast), until `seconds` of session time."""
    started = time.monotonic()
    for w in windows:
        if seconds is not None and w.t_end > seconds:
            return
        if not fast and (delay := w.t_end - (time.monotonic() - started)) > 0:
            time.sleep(delay)
        yield w
