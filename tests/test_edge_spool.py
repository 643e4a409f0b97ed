"""The on-disk spool: bounded, restart-safe, trims only on ack, tolerates a torn tail."""

from __future__ import annotations

import pytest

from edge_node.spool import Spool


def test_frames_leave_only_when_acked_and_survive_restart(tmp_path):
    sp = Spool(tmp_path, max_frames=100)
    for i in range(10):
        assert sp.append("eeg", b"e%d" % i) == i + 1
    for i in range(5):
        sp.append("hr", b"h%d" % i)
    assert sp.ack("eeg", 4) == 4
    assert sp.depth == 11
    sp.close()
    again = Spool(tmp_path, max_frames=100)
    assert again.depth == 11
    rows = again.unsent({}, limit=100)
    assert [s for m, s, _ in rows if m == "eeg"] == list(range(5, 11))
    assert [p for m, _, p in rows if m == "hr"] == [b"h%d" % i for i in range(5)]
    assert again.next_seq("eeg") == 11
    assert again.unsent({"eeg": 8, "hr": 5}) == [("eeg", 9, b"e8"), ("eeg", 10, b"e9")]


def test_seq_never_reused_after_all_segments_trimmed(tmp_path):
    sp = Spool(tmp_path, max_frames=1000, segment_bytes=256)
    for _ in range(50):
        sp.append("speech", b"x" * 20)
    sp.ack("speech", 50)
    assert sp.depth == 0
    assert len(list(tmp_path.glob("seg-*.log"))) <= 2
    sp.close()
    again = Spool(tmp_path)
    assert again.next_seq("speech") == 51
    assert again.depth == 0


def test_full_spool_drops_oldest_and_counts(tmp_path):
    sp = Spool(tmp_path, max_frames=5)
    for i in range(8):
        sp.append("image", b"%d" % i)
    assert sp.depth == 5 and sp.dropped == 3
    assert [s for _, s, _ in sp.unsent({})] == [4, 5, 6, 7, 8]
    sp.close()
    assert [s for _, s, _ in Spool(tmp_path, max_frames=5).unsent({})] == [4, 5, 6, 7, 8]


def test_drop_newest_policy_refuses_new_frames(tmp_path):
    sp = Spool(tmp_path, max_frames=2, policy="drop-newest")
    assert [sp.append("hr", b"a"), sp.append("hr", b"b"), sp.append("hr", b"c")] == [1, 2, 0]
    assert sp.dropped == 1 and [s for _, s, _ in sp.unsent({})] == [1, 2]


def test_corrupted_tail_is_dropped_on_recovery(tmp_path):
    sp = Spool(tmp_path)
    for i in range(5):
        sp.append("eeg", b"frame%d" % i)
    sp.close()
    seg = sorted(tmp_path.glob("seg-*.log"))[-1]
    data = seg.read_bytes()
    seg.write_bytes(data[:-3] + b"\xff\xff\xff" + b"\x07garbage")
    again = Spool(tmp_path)
    assert [s for _, s, _ in again.unsent({})] == [1, 2, 3, 4]
    assert again.append("eeg", b"new") == 5
    again.close()
    assert [s for _, s, _ in Spool(tmp_path).unsent({})] == [1, 2, 3, 4, 5]


def test_sync_always_fsyncs_every_frame(tmp_path):
    sp = Spool(tmp_path, sync="always")
    for i in range(5):
        sp.append("eeg", b"%d" % i)
    assert sp.syncs >= 5 and not sp.uncommitted
    assert sp.commit() is False, "nothing left to sync"


def test_sync_batch_fsyncs_on_commit_and_after_the_interval(tmp_path):
    sp = Spool(tmp_path, sync="batch", batch_interval_s=3600.0)
    before = sp.syncs
    for i in range(5):
        sp.append("eeg", b"%d" % i)
    assert sp.syncs == before and sp.uncommitted, "appends within the interval wait for the group commit"
    assert sp.commit() is True and sp.syncs == before + 1 and not sp.uncommitted
    assert sp.commit() is False and sp.syncs == before + 1
    quick = Spool(tmp_path / "quick", sync="batch", batch_interval_s=1e-9)
    quick.append("eeg", b"x")
    assert not quick.uncommitted, "an append after the interval fsyncs by itself"


def test_sync_never_leaves_write_back_to_the_os(tmp_path):
    sp = Spool(tmp_path, sync="never")
    for i in range(5):
        sp.append("eeg", b"%d" % i)
    assert sp.commit() is False and sp.syncs == 0
    sp.close()
    assert len(Spool(tmp_path).unsent({})) == 5, "a process exit loses nothing without fsync"


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="sync"):
        Spool(tmp_path, sync="sometimes")
    with pytest.raises(ValueError, match="batch_interval_s"):
        Spool(tmp_path, batch_interval_s=0)
    with pytest.raises(ValueError, match="policy"):
        Spool(tmp_path, policy="keep-all")
    with pytest.raises(ValueError, match="max_frames"):
        Spool(tmp_path, max_frames=0)
    sp = Spool(tmp_path)
    with pytest.raises(ValueError, match="out of order"):
        sp.append("hr", b"x", seq=7)


def test_refused_frame_is_set_aside_and_leaves_after_the_frames_before_it(tmp_path):
    sp = Spool(tmp_path)
    for i in range(1, 6):
        sp.append("hr", b"x%d" % i)
    assert sp.refuse("hr", 3)
    assert not sp.refuse("hr", 3), "already set aside"
    assert not sp.refuse("hr", 99) and not sp.refuse("eeg", 1), "not in the spool"
    assert [s for _, s, _ in sp.unsent({})] == [1, 2, 4, 5], "never sent again"
    assert sp.depth == 5 and sp.refused == 1
    sp.ack("hr", 2)
    assert sp.depth == 2 and sp.acked()["hr"] == 3, "frames 1-2 acked, the refused 3 left with them"
    assert sp.trimmed == 2 and sp.refused == 1
    sp.ack("hr", 5)
    assert sp.depth == 0
    assert [s for _, s, _ in Spool(tmp_path).unsent({})] == [], "the set-aside frame is gone after a restart"


def test_refusing_the_oldest_frame_releases_it_at_once(tmp_path):
    sp = Spool(tmp_path)
    for _ in range(3):
        sp.append("eeg", b"y")
    assert sp.refuse("eeg", 1)
    assert sp.depth == 2 and sp.acked()["eeg"] == 1
    assert [s for _, s, _ in sp.unsent({})] == [2, 3]
