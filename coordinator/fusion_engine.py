"""Per-subject fusion: frames aligned by window end into fusion windows, fused once each, soon after they end.

A fusion window [T - w, T) holds the frames whose window ends in (T - w, T].
It is fused as soon as no frame that could still change it is expected: for
every modality of the subject, its newest frame already ends at or after T,
or its next frame (newest end + the modality's observed hop: window ends follow
the sample clock, so hops are regular) will end after T,
or it has been silent for two hops (or is stale) and is not waited for. Otherwise a
timer fuses it at max(T, when its first frame arrived) + grace, on the
coordinator's clock: a modality that lags by more than the grace misses the
window. A modality counts if its latest frame ending by T is not older than its
staleness limit and its weight is not zero. Weights are the configured ones, or
else those of the models that scored the frames (by modality and model version,
from the manifests' validation accuracy); a model the registry does not know
gets the mean weight of the known ones in the window. Each window is fused
exactly once and windows are fused in order; late frames update the state for
later windows only.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from coordinator.validation import BatchColumns, Received, read_columns
from mmer.v1 import common_pb2, fusion_pb2, ingest_pb2
from mmer_core.fusion import Smoother, fuse_stack

MAX_BACKLOG_WINDOWS = 5
HISTORY_PER_MODALITY = 64
OVERDUE_HOPS = 2.0  # a modality silent for this many hops is not waited for
TICK_S = 0.005  # the longest a window's grace timer may overrun


@dataclass
class Closed:
    """A window whose inputs are chosen, waiting for the numbers: windows closed together fuse in one call."""

    subject: str
    end_ns: int
    ready_ns: int
    chosen: dict[str, Received]
    weights: dict[str, float] | None  # None: equal
    seq: int
    engine: FusionEngine  # whose smoothing and settings make its emotion


@dataclass
class SubjectState:
    """What the engine remembers about one subject."""

    frames: dict[str, deque[Received]] = field(default_factory=dict)
    newest_end: dict[str, int] = field(default_factory=dict)
    hop: dict[str, int] = field(default_factory=dict)
    last_receive: dict[str, int] = field(default_factory=dict)
    next_window: int | None = None  # index of the next window to fuse; its end is (index + 1) * window
    top: int = -(2**62)  # the newest window index waiting (known_since holds next_window..top)
    blocked: tuple[int, dict[str, float]] | None = None  # a window, the modalities it waits for, until when
    timed: int | None = None  # the window whose grace deadline is in the engine's heap
    known_since: dict[int, int] = field(default_factory=dict)  # window index -> first receive covering it
    seq: int = 0


class FusionEngine:
    """Turns a subject's frames into FusedEmotions, one per fusion window."""

    def __init__(
        self,
        window_s: float,
        staleness_s: Mapping[str, float],
        strategy: str,
        smoothing_alpha: float = 0.0,
        weights: Mapping[str, float] | None = None,
        grace_s: float = 0.05,
        model_weights: Mapping[tuple[str, int], float] | None = None,
        idle_s: float = 600.0,
    ) -> None:
        """`model_weights` ((modality, model version) -> weight) is read, not copied: the coordinator
        updates it in place when the registry changes. A subject silent for `idle_s` is forgotten
        (forget_idle)."""
        if window_s <= 0:
            raise ValueError(f"fusion window must be positive, got {window_s}")
        if grace_s < 0:
            raise ValueError(f"fusion grace must not be negative, got {grace_s}")
        if idle_s <= 0:
            raise ValueError(f"subject idle time must be positive, got {idle_s}")
        self.window_ns = int(window_s * 1e9)
        self.grace_ns = int(grace_s * 1e9)
        self.idle_ns = int(idle_s * 1e9)
        self.staleness_ns = {m: int(s * 1e9) for m, s in staleness_s.items()}
        self.strategy = strategy
        self.weights = dict(weights or {})
        self.model_weights = model_weights if model_weights is not None else {}
        self.smoother = Smoother(smoothing_alpha)
        self.subjects: dict[str, SubjectState] = {}
        self._deadlines: list[tuple[int, str, int]] = []  # heap of (deadline, subject, window index)
        self.closed: Counter[str] = Counter()  # windows fused "complete" or when their "grace" ran out
        self._taxonomies: dict[tuple[str, tuple[str, ...]], common_pb2.Taxonomy] = {}

    def add(self, frame: ingest_pb2.ScoreFrame, receive_ns: int) -> list[fusion_pb2.FusedEmotion]:
        """Take one new frame; return the fusion windows it completes (usually zero or one)."""
        return self.add_many([(frame, receive_ns)])

    def add_many(self, frames: Sequence[tuple[ingest_pb2.ScoreFrame, int]]) -> list[fusion_pb2.FusedEmotion]:
        """Take new (validated) frames in order, each with its receive time; the windows they complete."""
        return self.add_batch(read_columns([f for f, _ in frames], [r for _, r in frames]))

    def add_batch(
        self, cols: BatchColumns, rows: Iterable[int] | None = None
    ) -> list[fusion_pb2.FusedEmotion]:
        """Take a batch's frames (`rows` of it, all by default) in order; return the fusion windows they
        complete, fused in one call."""
        return fuse_closed(self.close_batch(cols, rows))

    def close_batch(self, cols: BatchColumns, rows: Iterable[int] | None = None) -> list[Closed]:
        """add_batch up to fusing: the windows the frames complete, to fuse with fuse_closed (with other
        engines' windows: one vectorised call for them all). Each frame costs a history entry; windows are
        opened as frames reach them; a window that waits for a modality is looked at again when that
        modality's frame comes (or it is overdue), not at every frame of the others."""
        records = cols.records
        subjects, modalities = cols.subject_ids, cols.modalities
        window_ns, states = self.window_ns, self.subjects
        closed: list[Closed] = []
        for i in range(len(records)) if rows is None else rows:
            received = records[i]
            subject, modality, end, receive_ns = subjects[i], modalities[i], received[0], received[1]
            state = states.get(subject)
            if state is None:
                state = states[subject] = SubjectState()
            history = state.frames.get(modality)
            if history is None:
                history = state.frames[modality] = deque(maxlen=HISTORY_PER_MODALITY)
            if history and end < history[-1][0]:  # another device of the modality is ahead: keep order
                _insert(history, received)
            else:
                history.append(received)
            state.last_receive[modality] = receive_ns
            newest = state.newest_end.get(modality)
            if newest is None or end > newest:
                if newest is not None:
                    state.hop[modality] = end - newest
                state.newest_end[modality] = end
            window = (end - 1) // window_ns
            if window > state.top:
                self._open(subject, state, window, receive_ns)
            if not self._still_waits(state, modality, receive_ns):
                self._close_ready(subject, state, None, receive_ns, closed)
        return closed

    def _still_waits(self, state: SubjectState, modality: str, now_ns: int) -> bool:
        """True when the subject's next window surely still waits after this frame of `modality`: some
        modality it waited for, other than this one (or this one still), is not overdue yet. Only the
        arriving modality's state changed since the window was last looked at, so only it is checked."""
        blocked = state.blocked
        if blocked is None or blocked[0] != state.next_window:
            return False
        waits = blocked[1]
        if modality in waits:
            until = self._waits_for(state, modality, (blocked[0] + 1) * self.window_ns, now_ns)
            if until is None:
                del waits[modality]
            else:
                waits[modality] = until
        return bool(waits) and now_ns <= min(waits.values())

    def _open(self, subject: str, state: SubjectState, window: int, receive_ns: int) -> None:
        """Wait for the subject's windows up to `window` (first frame covering each: now); after a long gap
        only the last MAX_BACKLOG_WINDOWS of them. A window's grace timer is set only once it waits (see
        _close_ready): most windows close complete, and their timers would only wake the tick loop."""
        if state.next_window is None:
            state.next_window = window
        elif window - state.next_window > MAX_BACKLOG_WINDOWS:  # back after a long gap: skip the void
            for w in range(state.next_window, window - MAX_BACKLOG_WINDOWS):
                state.known_since.pop(w, None)
            state.next_window = window - MAX_BACKLOG_WINDOWS
        for w in range(max(state.next_window, state.top + 1), window + 1):
            state.known_since[w] = receive_ns
        state.top = window

    def tick(self, now_ns: int | None = None) -> list[fusion_pb2.FusedEmotion]:
        """Fuse the windows whose deadline has passed (and any complete ones behind them)."""
        return fuse_closed(self.close_due(time.time_ns() if now_ns is None else now_ns))

    def close_due(self, now_ns: int) -> list[Closed]:
        """tick up to fusing: the windows whose deadline has passed (and complete ones behind them)."""
        closed: list[Closed] = []
        heap = self._deadlines
        while heap and heap[0][0] <= now_ns:
            _, subject, w = heapq.heappop(heap)
            state = self.subjects.get(subject)  # None: forgotten since (nothing of it waited)
            if state is not None and state.next_window is not None and w >= state.next_window:
                self._close_ready(subject, state, w, now_ns, closed)
        return closed

    def forget_idle(self, now_ns: int) -> list[str]:
        """Drop the subjects that sent nothing for the idle time and have no window waiting (all they sent is
        fused): their frame history and smoothing. A coordinator that runs for months meets many subjects
        once; one that comes back starts afresh. Returns the subjects dropped."""
        limit = now_ns - self.idle_ns
        gone = [
            subject
            for subject, state in self.subjects.items()
            if not state.known_since and max(state.last_receive.values(), default=0) < limit
        ]
        for subject in gone:
            del self.subjects[subject]
            self.smoother.forget(subject)
        return gone

    def _deadline(self, window: int, first_receive_ns: int) -> int:
        """When a window's grace runs out: its end or its first frame's arrival, whichever is later, + grace."""
        return max((window + 1) * self.window_ns, first_receive_ns) + self.grace_ns

    def next_deadline(self) -> int | None:
        """When tick() next has something to do (ns, coordinator clock), None when nothing waits. Timers of
        windows that closed complete before their grace ran out are dropped here, so that they never wake
        the tick loop."""
        heap, subjects = self._deadlines, self.subjects
        while heap and ((state := subjects.get(heap[0][1])) is None or state.next_window != heap[0][2]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _close_ready(
        self, subject: str, state: SubjectState, due: int | None, now_ns: int, closed: list[Closed]
    ) -> None:
        """Close windows in order while each is due (index <= `due`) or complete."""
        while state.next_window is not None and state.next_window in state.known_since:
            w = state.next_window
            end_ns = (w + 1) * self.window_ns
            waits = self._waiting(state, end_ns, now_ns)
            if not waits:
                self.closed["complete"] += 1
                ready_ns = now_ns
            elif due is not None and w <= due:
                self.closed["grace"] += 1
                ready_ns = min(now_ns, self._deadline(w, state.known_since[w]))
            else:
                state.blocked = (w, waits)
                if state.timed != w:
                    state.timed = w
                    heapq.heappush(self._deadlines, (self._deadline(w, state.known_since[w]), subject, w))
                break
            del state.known_since[w]
            state.next_window = w + 1
            window = self._close(subject, state, end_ns, ready_ns)
            if window is not None:
                closed.append(window)

    def _waiting(self, state: SubjectState, end_ns: int, now_ns: int) -> dict[str, float]:
        """The modalities of the subject expected to deliver another frame ending by end_ns, each with when
        it is overdue: none, and the window ending then is complete."""
        waits = {}
        for modality in state.newest_end:
            until = self._waits_for(state, modality, end_ns, now_ns)
            if until is not None:
                waits[modality] = until
        return waits

    def _waits_for(self, state: SubjectState, modality: str, end_ns: int, now_ns: int) -> float | None:
        """When the modality stops being waited for in the window ending end_ns (never, while its rhythm is
        unknown: one frame so far), or None when it is not waited for."""
        newest = state.newest_end[modality]
        if newest >= end_ns:
            return None
        hop = state.hop.get(modality)
        if hop is None:
            limit = self.staleness_ns.get(modality, 3 * self.window_ns)
            return math.inf if newest > end_ns - limit else None
        if newest + hop > end_ns:
            return None
        until = state.last_receive[modality] + OVERDUE_HOPS * hop
        return until if now_ns <= until else None

    def _close(self, subject: str, state: SubjectState, end_ns: int, ready_ns: int) -> Closed | None:
        """Choose the window's inputs (ending at end_ns); ready_ns is when it could be fused (all in, or its
        grace over). None when no modality counts."""
        chosen: dict[str, Received] = {}
        for modality, history in state.frames.items():
            oldest = end_ns - self.staleness_ns.get(modality, 3 * self.window_ns)
            # the history is in window order: the first frame from the end that ends by end_ns is the newest
            for received in reversed(history):
                if received[0] <= end_ns:
                    if received[0] > oldest:
                        chosen[modality] = received
                    break
        base = self._weights(chosen)
        if base is not None:
            chosen = {m: r for m, r in chosen.items() if base[m] > 0}
        if not chosen:
            return None
        state.seq += 1
        return Closed(subject, end_ns, ready_ns, chosen, base, state.seq, self)

    def _emotion(
        self, window: Closed, fused: list[float], weights: dict[str, float]
    ) -> fusion_pb2.FusedEmotion:
        chosen = window.chosen
        freshest = max(chosen.values(), key=lambda r: r[0])
        labels = freshest[3]
        probs = self.smoother.update(window.subject, fused)
        fused_ns = time.time_ns()
        truths = [r[8] for r in chosen.values() if r[8]]
        emotion = fusion_pb2.FusedEmotion(
            subject_id=window.subject,
            window_start_ns=window.end_ns - self.window_ns,
            window_end_ns=window.end_ns,
            label=labels[probs.index(max(probs))],
            taxonomy=self._taxonomy(freshest[7], labels),
            probs=probs,
            strategy=self.strategy,
            latency=breakdown(freshest, window.ready_ns, fused_ns),
            seq=window.seq,
            published_ns=fused_ns,  # fusion time until the coordinator publishes and overwrites it
            truth_label=Counter(truths).most_common(1)[0][0] if truths else "",
        )
        add = emotion.contributions.add
        for m, r in sorted(chosen.items()):
            add(
                modality=m,
                weight=weights[m],
                probs=r[2],
                device_id=r[4],
                seq=r[5],
                model_version=r[6],
                age_ms=(fused_ns - r[0]) / 1e6,
            )
        return emotion

    def _taxonomy(self, name: str, labels: tuple[str, ...]) -> common_pb2.Taxonomy:
        """The Taxonomy message of a label set, built once."""
        key = (name, labels)
        taxonomy = self._taxonomies.get(key)
        if taxonomy is None:
            taxonomy = self._taxonomies[key] = common_pb2.Taxonomy(name=name, labels=labels)
        return taxonomy

    def _weights(self, chosen: Mapping[str, Received]) -> dict[str, float] | None:
        """Each chosen modality's weight (None: all equal)."""
        if self.weights:
            return {m: self.weights.get(m, 1.0) for m in chosen}
        if not self.model_weights:
            return None
        known = {}
        for m, r in chosen.items():
            w = self.model_weights.get((m, r[6]))
            if w is not None:
                known[m] = w
        if not known:
            return None
        fill = sum(known.values()) / len(known)
        return {m: known.get(m, fill) for m in chosen}


def fuse_closed(closed: list[Closed]) -> list[fusion_pb2.FusedEmotion]:
    """Fuse closed windows (of any engines), with one vectorised call per strategy and label set, then smooth
    each in order by its engine."""
    if not closed:
        return []
    groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for i, window in enumerate(closed):
        groups.setdefault((window.engine.strategy, next(iter(window.chosen.values()))[3]), []).append(i)
    fused: list[tuple[list[float], dict[str, float]]] = [([], {})] * len(closed)
    for (strategy, labels), members in groups.items():
        modalities = sorted({m for i in members for m in closed[i].chosen})
        index = {m: j for j, m in enumerate(modalities)}
        stack = np.full((len(modalities), len(members), len(labels)), 1.0 / len(labels))
        weights = np.zeros((len(modalities), len(members)))
        for col, i in enumerate(members):
            window = closed[i]
            for m, r in window.chosen.items():
                stack[index[m], col] = r[2]
                weights[index[m], col] = 1.0 if window.weights is None else window.weights[m]
        probs, normalised = fuse_stack(stack, weights, strategy)
        for col, i in enumerate(members):
            w = {m: float(normalised[index[m], col]) for m in closed[i].chosen}
            fused[i] = (probs[col].tolist(), w)
    return [w.engine._emotion(w, *result) for w, result in zip(closed, fused, strict=True)]


def _insert(history: deque[Received], received: Received) -> None:
    """Put a frame into a history in window order (the oldest goes when it is full, unless it is this one)."""
    end = received[0]
    i = len(history)
    while i and history[i - 1][0] > end:
        i -= 1
    if len(history) < HISTORY_PER_MODALITY:
        history.insert(i, received)
    elif i:
        history.popleft()
        history.insert(i - 1, received)


def breakdown(r: Received, ready_ns: int, fused_ns: int) -> fusion_pb2.LatencyBreakdown:
    """Hop durations of a window's freshest frame up to fusion (publish is filled in when published): the
    wait for a grace deadline (ready_ns, if later than its receipt), then the coordinator's own fuse hop."""
    end, receive_ns, inference_start, inference_end, send = r[0], r[1], r[9], r[10], r[11]
    return fusion_pb2.LatencyBreakdown(
        queue_ms=max(inference_start - end, 0) / 1e6,
        inference_ms=max(inference_end - inference_start, 0) / 1e6,
        spool_ms=max(send - inference_end, 0) / 1e6,
        network_ms=max(receive_ns - send, 0) / 1e6,
        wait_ms=max(ready_ns - receive_ns, 0) / 1e6,
        fuse_ms=max(fused_ns - max(receive_ns, ready_ns), 0) / 1e6,
    )
