"""The edge spool: durable until acked, survives restarts and torn writes, bounded with counted drops."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_node.spool import SEGMENT_FRAMES, Spool
from mmer.v1 import ingest_pb2


def frames(modality: str, seqs) -> list[ingest_pb2.ScoreFrame]:
    return [
        ingest_pb2.ScoreFrame(device_id="d", subject_id="s", modality=modality, seq=s, probs=[1.0])
        for s in seqs
    ]


def seqs(spool: Spool, modality: str | None = None) -> list[tuple[str, int]]:
    return [(f.modality, f.seq) for f in spool.unacked() if modality in (None, f.modality)]


def test_frames_leave_only_when_acked_in_spool_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(frames("hr", [1, 2]) + frames("eeg", [1]) + frames("hr", [3]))
    assert seqs(spool) == [("hr", 1), ("hr", 2), ("eeg", 1), ("hr", 3)]
    assert spool.ack("hr", 2) == 2
    assert seqs(spool) == [("eeg", 1), ("hr", 3)]
    assert spool.ack("hr", 1) == 0, "an older ack changes nothing"
    assert spool.depth == 2


def test_unacked_frames_survive_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(frames("speech", range(1, 11)))
    spool.ack("speech", 4)
    spool.close()
    reopened = Spool(tmp_path)
    assert [s for _, s in seqs(reopened)] == list(range(5, 11))
    reopened.append(frames("speech", [11]))
    reopened.close()
    assert [s for _, s in seqs(Spool(tmp_path))] == list(range(5, 12))


def test_a_torn_tail_is_cut_and_the_rest_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(frames("hr", range(1, 6)))
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    segment.write_bytes(segment.read_bytes()[:-3])  # power lost mid-record
    reopened = Spool(tmp_path)
    assert [s for _, s in seqs(reopened)] == [1, 2, 3, 4]
    reopened.append(frames("hr", [5]))
    reopened.close()
    assert [s for _, s in seqs(Spool(tmp_path))] == [1, 2, 3, 4, 5]


def test_corrupted_record_stops_recovery_of_that_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(frames("hr", range(1, 4)))
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[-2] ^= 0xFF  # flip a byte inside the last record's payload: its CRC no longer matches
    segment.write_bytes(bytes(data))
    assert [s for _, s in seqs(Spool(tmp_path))] == [1, 2]


def test_full_spool_drops_oldest_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_frames=5)
    assert spool.append(frames("hr", range(1, 9))) == 3
    assert [s for _, s in seqs(spool)] == [4, 5, 6, 7, 8]
    assert spool.dropped == 3
    newest = Spool(tmp_path / "n", max_frames=5, policy="drop-newest")
    newest.append(frames("hr", range(1, 9)))
    assert [s for _, s in seqs(newest)] == [1, 2, 3, 4, 5] and newest.dropped == 3


def test_acked_segments_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(frames("eeg", range(1, 2 * SEGMENT_FRAMES + 10)))
    assert len(list(tmp_path.glob("*.seg"))) == 3
    spool.ack("eeg", 2 * SEGMENT_FRAMES + 5)
    assert len(list(tmp_path.glob("*.seg"))) == 1


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        Spool(tmp_path, policy="block-forever")
    with pytest.raises(ValueError, match="max_frames"):
        Spool(tmp_path, max_frames=0)
