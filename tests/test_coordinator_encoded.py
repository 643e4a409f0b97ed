"""Fused emotions serialized once and shared: the bytes put together read back with the protobuf library,
and every subscriber of all subjects gets the very same bytes."""

from __future__ import annotations

from coordinator.encoded import repeated_field_1, with_position
from coordinator.hub import Hub, Published
from mmer.v1 import fusion_pb2, ingest_pb2
from testkit.coordinator_helpers import frame


def emotion(subject: str, end_s: int, note: str = "") -> fusion_pb2.FusedEmotion:
    return fusion_pb2.FusedEmotion(
        subject_id=subject,
        window_end_ns=end_s * 10**9,
        label="happy",
        probs=[0.7, 0.1, 0.1, 0.1],
        truth_label=note,
    )


def test_messages_put_together_read_back_as_the_library_writes_them() -> None:
    emotions = [
        emotion("a", 1),
        emotion("b", 2, note="x" * 20_000),
        emotion("c", 3),
    ]  # lengths of 1 to 3 bytes
    batch = fusion_pb2.FusedBatch.FromString(repeated_field_1([e.SerializeToString() for e in emotions]))
    assert list(batch.emotions) == emotions
    assert (
        repeated_field_1([e.SerializeToString() for e in emotions])
        == fusion_pb2.FusedBatch(emotions=emotions).SerializeToString()
    )
    frames = [frame(1), frame(2, modality="eeg")]
    scores = ingest_pb2.ScoreBatch.FromString(repeated_field_1([f.SerializeToString() for f in frames]))
    assert list(scores.frames) == frames


def test_a_position_added_to_serialized_bytes_wins_over_one_they_held() -> None:
    old = emotion("a", 1)
    old.position = "1-0"
    read = fusion_pb2.FusedEmotion.FromString(with_position(old.SerializeToString(), "1700000000000-12"))
    assert read.position == "1700000000000-12" and read.subject_id == "a"


def test_subscribers_of_all_subjects_share_one_serialized_batch() -> None:
    hub = Hub()
    everyone = [hub.subscribe(None, 10) for _ in range(3)]
    only_b = hub.subscribe(["b"], 10)
    emotions = [emotion(s, i + 1) for i, s in enumerate("abab")]
    for i, e in enumerate(emotions):
        e.position = f"5-{i}"
    hub.publish(Published.of(emotions))
    got = [sub.get_nowait() for sub in everyone]
    assert got[0].batch is got[1].batch is got[2].batch
    assert list(fusion_pb2.FusedBatch.FromString(got[0].batch).emotions) == emotions
    mine = only_b.get_nowait()
    assert [e.window_end_ns for e in mine.emotions()] == [2 * 10**9, 4 * 10**9] and mine.positions == [
        "5-1",
        "5-3",
    ]
    assert mine.after((5, 1)).positions == ["5-3"]
    assert [p.positions for p in Published.of(emotions).parts(3)] == [["5-0", "5-1", "5-2"], ["5-3"]]


def test_a_subscriber_that_would_hold_more_than_its_buffer_is_cut_off() -> None:
    hub = Hub()
    slow, other = hub.subscribe(None, 3), hub.subscribe(["z"], 3)
    for i in range(3):
        e = emotion("a", i + 1)
        e.position = f"1-{i}"
        hub.publish(Published.of([e]))
    assert not slow.overflowed
    e = emotion("a", 9)
    e.position = "1-9"
    hub.publish(Published.of([e]))
    assert slow.overflowed and hub.cut_off == 1 and slow not in hub.subscriptions
    assert not other.overflowed and other in hub.subscriptions
