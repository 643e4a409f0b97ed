"""The fusion engine on a synthetic clock: windows fused when complete or when their grace runs out, once each."""

from __future__ import annotations

import pytest

from coordinator.fusion_engine import FusionEngine
from testkit.coordinator_helpers import frame

S = 1_000_000_000
BASE = 1_000 * S
GRACE = 0.05
STALENESS = {"hr": 5.0, "eeg": 3.0, "speech": 3.0, "image": 2.0}


def engine() -> FusionEngine:
    return FusionEngine(1.0, STALENESS, "weighted_mean", grace_s=GRACE)


class Feed:
    """Frames of one subject, each received 1 ms after its window ended; collects what the engine fuses."""

    def __init__(self, e: FusionEngine) -> None:
        self.e = e
        self.seq: dict[str, int] = {}
        self.fused = []

    def add(self, modality: str, end_s: float, label: str = "happy") -> list:
        self.seq[modality] = self.seq.get(modality, 0) + 1
        end = BASE + round(end_s * S)
        out = self.e.add(frame(self.seq[modality], modality, end_ns=end, label=label), end + 1_000_000)
        self.fused += out
        return out

    def tick(self, at_s: float) -> list:
        out = self.e.tick(BASE + round(at_s * S))
        self.fused += out
        return out


def test_a_window_is_fused_by_the_frame_that_completes_it() -> None:
    feed = Feed(engine())
    feed.add("image", 1.0)
    feed.add("hr", 0.3)
    feed.add("hr", 1.3)  # hr's hop is 1 s: its next frame ends at 2.3, after the window (1, 2]
    for end in (1.2, 1.4, 1.6, 1.8):
        assert not [e for e in feed.add("image", end) if e.window_end_ns == BASE + 2 * S]
    (done,) = [e for e in feed.add("image", 2.0) if e.window_end_ns == BASE + 2 * S]
    assert {(c.modality, c.seq) for c in done.contributions} == {("hr", 2), ("image", 6)}
    assert done.latency.wait_ms == 0, "completed by its freshest frame: nothing waited for"
    assert feed.e.closed["complete"] >= 1


def test_a_window_missing_a_frame_is_fused_when_its_grace_runs_out() -> None:
    feed = Feed(engine())
    feed.add("image", 0.9)
    for end in (1.1, 1.3, 1.5, 1.7):  # image's next frame (1.9) would still fall into (1, 2]: wait for it
        feed.add("image", end)
    feed.add("hr", 0.3)
    feed.add("hr", 1.3)
    assert not [e for e in feed.fused if e.window_end_ns == BASE + 2 * S]
    assert not feed.tick(2.0 + GRACE - 0.001)
    (done,) = feed.tick(2.0 + GRACE)
    assert done.window_end_ns == BASE + 2 * S
    assert {(c.modality, c.seq) for c in done.contributions} == {("hr", 2), ("image", 5)}
    # its freshest frame (image, ended 1.7, received 1 ms later) waited for the grace deadline 2.05
    assert done.latency.wait_ms == pytest.approx((2.0 + GRACE - 1.701) * 1000)
    assert feed.e.closed["grace"] == 1
    feed.add("image", 1.9)  # late: counts for later windows only, never re-fuses (1, 2]
    feed.add("image", 2.1)
    feed.tick(10.0)
    ends = [e.window_end_ns for e in feed.fused]
    assert ends == sorted(set(ends)), "each window once, in order"
    assert feed.e.next_deadline() is None


def test_stale_and_silent_modalities_are_not_waited_for_and_do_not_count() -> None:
    feed = Feed(engine())
    feed.add("eeg", -4.0)
    feed.add("eeg", -3.5)  # then eeg goes silent: overdue by far more than two hops
    feed.add("speech", 1.0)  # a single speech frame: rhythm unknown, fresh until 4.0
    feed.add("hr", 0.5)
    feed.add("hr", 1.5)
    feed.add("hr", 2.5)
    assert not [e for e in feed.fused if e.window_end_ns == BASE + 2 * S], "waits for speech's next frame"
    (done,) = [e for e in feed.tick(2.0 + GRACE) if e.window_end_ns == BASE + 2 * S]
    assert {c.modality for c in done.contributions} == {"hr", "speech"}, "stale eeg does not count"
    feed.add("speech", 2.5)  # speech's hop (1.5 s) is known now: (2, 3] is complete at once
    assert [e.window_end_ns for e in feed.fused][-1] == BASE + 3 * S


def test_a_timer_window_waits_from_its_first_frame_when_data_arrives_late() -> None:
    """Replayed data (a spool draining): the grace counts from when the window's first frame arrived."""
    e = engine()
    now = BASE + 100 * S
    e.add(frame(1, "hr", end_ns=BASE + int(0.5 * S)), now)
    assert not e.tick(now + int(GRACE * S) - 1)
    assert [x.window_end_ns for x in e.tick(now + int(GRACE * S))] == [BASE + S]


def test_two_devices_of_one_modality_count_by_window_end_not_by_arrival() -> None:
    """A subject with two cameras: a frame arriving after a newer one from the other device is kept in
    window order, so each window takes the newest frame that ends inside it; the history stays bounded."""
    e = engine()
    fused = []
    for seq, device, end_s, label in [
        (1, "cam-a", 1.2, "happy"),
        (1, "cam-b", 1.9, "sad"),
        (2, "cam-a", 1.6, "angry"),
    ]:
        end = BASE + round(end_s * S)
        fused += e.add(frame(seq, "image", device, end_ns=end, label=label), end + 1_000_000)
    history = e.subjects["subj-1"].frames["image"]
    assert [round((end - BASE) / S, 1) for end, *_ in history] == [1.2, 1.6, 1.9]
    (done,) = fused + e.tick(BASE + 3 * S)
    assert done.window_end_ns == BASE + 2 * S and done.label == "sad"
    assert [(c.device_id, c.seq) for c in done.contributions] == [("cam-b", 1)], "ends at 1.9, the newest"
    for seq in range(4, 200):  # cam-b far ahead, cam-a's late frames interleaved, then older than all kept
        e.add(frame(seq, "image", "cam-b", end_ns=BASE + seq * S), BASE + seq * S)
        e.add(frame(seq, "image", "cam-a", end_ns=BASE + (seq - 150) * S), BASE + seq * S)
    ends = [end for end, *_ in history]
    assert len(ends) == 64 and ends == sorted(ends) and ends[-1] == BASE + 199 * S


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"window_s": 0}, "fusion window"),
        ({"grace_s": -0.1}, "fusion grace"),
        ({"idle_s": 0}, "subject idle time"),
    ],
)
def test_bad_settings_are_refused(kwargs, message) -> None:
    args = {"window_s": 1.0, "staleness_s": STALENESS, "strategy": "weighted_mean", **kwargs}
    with pytest.raises(ValueError, match=message):
        FusionEngine(**args)


def _weights_of(emotion) -> dict[str, float]:
    return {c.modality: round(c.weight, 6) for c in emotion.contributions}


def _window(feed: Feed, end_s: int):
    (emotion,) = [e for e in feed.fused if e.window_end_ns == BASE + end_s * S]
    return emotion


def test_models_weigh_by_their_validation_accuracy_per_version() -> None:
    """Weights come from the model that scored each frame; an unknown model gets the mean of the known ones."""
    model_weights = {("hr", 1): 0.6, ("image", 1): 0.2}
    feed = Feed(FusionEngine(1.0, STALENESS, "weighted_mean", grace_s=GRACE, model_weights=model_weights))
    feed.add("hr", 0.5, label="sad")
    feed.add("image", 0.5, label="happy")
    feed.tick(1.2)
    first = _window(feed, 1)
    assert _weights_of(first) == {"hr": 0.75, "image": 0.25}
    assert first.label == "sad", "the better model wins a disagreement"
    model_weights[("image", 1)] = 1.8  # the registry changed: the engine reads the same mapping
    feed.add("hr", 1.5, label="sad")
    feed.add("image", 1.5, label="happy")
    feed.tick(2.2)
    second = _window(feed, 2)
    assert _weights_of(second) == {"hr": 0.25, "image": 0.75} and second.label == "happy"
    feed.e.add(frame(9, "eeg", end_ns=BASE + round(2.5 * S), model_version=7), BASE + round(2.5 * S))
    feed.add("hr", 2.5)
    feed.add("image", 2.5)
    feed.tick(3.2)
    assert _weights_of(_window(feed, 3)) == {
        "eeg": round(1.2 / 3.6, 6),
        "hr": round(0.6 / 3.6, 6),
        "image": 0.5,
    }


def test_configured_weights_win_and_a_zero_weight_leaves_a_modality_out() -> None:
    e = FusionEngine(
        1.0,
        STALENESS,
        "weighted_mean",
        weights={"hr": 0.0, "eeg": 3.0},
        grace_s=GRACE,
        model_weights={("image", 1): 5.0},
    )
    feed = Feed(e)
    for m in ("hr", "eeg", "image"):
        feed.add(m, 0.5)
    feed.tick(1.2)
    assert _weights_of(_window(feed, 1)) == {"eeg": 0.75, "image": 0.25}
    only_hr = Feed(FusionEngine(1.0, STALENESS, "weighted_mean", weights={"hr": 0.0}, grace_s=GRACE))
    only_hr.add("hr", 0.5)
    assert only_hr.tick(1.2) == [], "a window with only zero-weight modalities has nothing to fuse"


@pytest.mark.parametrize("strategy", ["weighted_mean", "product", "confidence"])
def test_a_batch_of_frames_fuses_as_the_same_frames_one_by_one(strategy: str) -> None:
    """Windows closed by one batch (many subjects, different modalities each) fuse in one vectorised call:
    the emotions are those that adding the frames one at a time gives, in the same order."""
    labels = ["happy", "angry", "sad", "calm"]
    received = []
    for step in range(12):
        for n in range(6):
            for modality in ("hr", "eeg", "image")[: 1 + n % 3]:
                end = BASE + step * S // 2 + n * 7_000_000
                f = frame(step + 1, modality, f"dev-{n}-{modality}", f"subj-{n}", end, labels[(n + step) % 4])
                received.append((f, end + 1_000_000))
    one_by_one = FusionEngine(1.0, STALENESS, strategy, smoothing_alpha=0.3, grace_s=GRACE)
    at_once = FusionEngine(1.0, STALENESS, strategy, smoothing_alpha=0.3, grace_s=GRACE)
    want = [e for f, r in received for e in one_by_one.add(f, r)]
    got = at_once.add_many(received)
    assert len(want) > 20 and [(e.subject_id, e.window_end_ns, e.label) for e in got] == [
        (e.subject_id, e.window_end_ns, e.label) for e in want
    ]
    for g, w in zip(got, want, strict=True):
        assert list(g.probs) == pytest.approx(list(w.probs), abs=1e-9)
        assert [c.modality for c in g.contributions] == [c.modality for c in w.contributions]
        assert [c.weight for c in g.contributions] == pytest.approx([c.weight for c in w.contributions])


def test_only_a_window_that_waits_keeps_a_timer() -> None:
    """A window whose last frame completes it leaves no grace timer for the tick loop to wake for; a window
    that still waits has one, and frames of other modalities meanwhile add none."""
    feed = Feed(engine())
    for t in range(1, 7):  # hr and eeg every second, window ends on the second: eeg completes each window
        feed.add("hr", t)
        feed.add("eeg", t)
        if t >= 3:  # both rhythms known
            assert feed.e.next_deadline() is None
    assert feed.e.closed["complete"] == len(feed.fused) >= 4
    feed.add("hr", 6.5)  # hr's hop (1 s) says it may still deliver in (6, 7]: the window ending 7 waits
    feed.add("eeg", 7)
    feed.add("eeg", 7.2)
    assert feed.e.next_deadline() == BASE + 7 * S + round(GRACE * S)
    assert not feed.tick(7 + GRACE - 0.001)
    (done,) = feed.tick(7 + GRACE)
    assert done.window_end_ns == BASE + 7 * S
    assert feed.e.next_deadline() == BASE + 8 * S + round(GRACE * S), "the next window (eeg 7.2) waits for hr"


def test_a_silent_subject_is_forgotten_once_all_it_sent_is_fused_and_starts_afresh_when_back() -> None:
    """A coordinator that runs for months meets many subjects once: what fusion keeps of each must go."""
    e = FusionEngine(1.0, STALENESS, "weighted_mean", smoothing_alpha=0.5, grace_s=GRACE, idle_s=60)
    for seq, end_s in enumerate((0.9, 1.1, 1.3, 1.5, 1.7), 1):  # subj-1's window (1, 2] waits for image 1.9
        end = BASE + round(end_s * S)
        e.add(frame(seq, "image", subject="subj-1", end_ns=end), end)
    e.add(frame(1, "hr", "dev-2", "subj-2", end_ns=BASE + 50 * S), BASE + 50 * S)
    assert e.forget_idle(BASE + 30 * S) == [], "30 s of silence is not the 60 s idle time"
    assert e.forget_idle(BASE + 70 * S) == [], "a window of subj-1's still waits: not forgotten"
    e.tick(BASE + 70 * S)  # its grace ran out long ago: fused now
    assert e.forget_idle(BASE + 70 * S) == ["subj-1"]
    assert set(e.subjects) == {"subj-2"} and "subj-1" not in e.smoother._state
    assert e.next_deadline() is None or e.next_deadline() > BASE + 50 * S, "no timer of subj-1's is left"
    back = BASE + 500 * S  # subj-1 again: fused as a new subject, its smoothing not mixed with the old one
    e.add(frame(4, "hr", subject="subj-1", end_ns=back - S // 2, label="sad"), back - S // 2)
    out = e.add(frame(5, "hr", subject="subj-1", end_ns=back + S // 2, label="sad"), back + S // 2)
    (fused,) = [f for f in out if f.window_end_ns == back]
    assert fused.subject_id == "subj-1" and fused.label == "sad" and fused.seq == 1, fused
    sad = list(fused.taxonomy.labels).index("sad")
    assert fused.probs[sad] == pytest.approx(0.7, abs=1e-6), "its frame's own 0.7: no smoothing from before"
