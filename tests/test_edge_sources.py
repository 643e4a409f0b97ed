"""Sources: .npz replays in window order, synthetic sessions by seed, clear errors."""

from __future__ import annotations

import pickle
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from edge_node.sources import open_source
from mmer_core.modalities import HR_FEATURES, SPECS
from mmer_core.preprocess import preprocess
from mmer_core.synthetic import face
from mmer_core.synthetic.traits import sample_traits
from testkit.e4_files import write_e4_session
from testkit.speech_audio import voiced


def test_replay_npz_yields_windows_in_time_order(tmp_path):
    hr = np.full((2, 12), np.nan)
    hr[0, :10] = 0.8
    hr[1, :11] = 0.7
    path = tmp_path / "rec.npz"
    np.savez(
        path,
        eeg_data=np.zeros((3, 14, 256)),
        eeg_t_start=np.array([0.0, 0.5, 1.0]),
        eeg_t_end=np.array([2.0, 2.5, 3.0]),
        eeg_labels=np.array(["calm", "calm", "sad"]),
        hr_data=hr,
        hr_t_start=np.array([0.0, 1.0]),
        hr_t_end=np.array([2.2, 3.2]),
    )
    ws = list(open_source(f"replay:{path}", ["eeg", "hr"], "s1", fast=True, seconds=None))
    assert [(w.modality, w.t_end) for w in ws] == [
        ("eeg", 2.0),
        ("hr", 2.2),
        ("eeg", 2.5),
        ("eeg", 3.0),
        ("hr", 3.2),
    ]
    assert [len(w.data) for w in ws if w.modality == "hr"] == [10, 11]
    assert ws[-2].label == "sad" and ws[1].label is None
    assert len(list(open_source(f"replay:{path}", ["eeg"], "s1", fast=True, seconds=2.6))) == 2


def test_synthetic_source_is_deterministic_by_seed():
    a = [w.data for w in open_source("synthetic:7", ["eeg"], "s1", fast=True, seconds=4.0)]
    b = [w.data for w in open_source("synthetic:7", ["eeg"], "s1", fast=True, seconds=4.0)]
    assert len(a) == len(b) > 0 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_bad_sources_are_refused(tmp_path):
    with pytest.raises(ValueError, match="expected synthetic"):
        open_source("camera:0", ["eeg"], "s1", True, None)
    np.savez(tmp_path / "r.npz", eeg_data=np.zeros((1, 14, 256)), eeg_t_start=[0.0], eeg_t_end=[2.0])
    with pytest.raises(ValueError, match="no speech_data"):
        open_source(f"replay:{tmp_path / 'r.npz'}", ["speech"], "s1", True, None)


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_wav(path: Path, seconds: float, rate: int = 16000, freq: float = 220.0) -> np.ndarray:
    """A 16-bit mono wav of voiced sound as RAVDESS ships it; returns the samples as the reader should see them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (voiced(seconds, freq, 0.5, rate) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32767


def test_replay_e4_session_gives_labelled_wrist_windows(tmp_path):
    start = 1644227574.0
    write_e4_session(tmp_path / "S02", start, 0.8, 150.0)
    (tmp_path / "labels.csv").write_text(
        "subject,start_unix_utc,end_unix_utc,label\n"
        f"S02,{start},{start + 75},baseline\nS02,{start + 75},{start + 150},stress\nS03,{start},{start + 40},stress\n"
    )
    ws = list(open_source(f"replay:{tmp_path / 'S02'}", ["hr"], "s1", fast=True, seconds=None))
    assert [w.t_end for w in ws] == [float(t) for t in range(60, 151, 5)], "60 s windows every 5 s"
    f = np.array([preprocess("hr", w.data) for w in ws])
    assert np.allclose(f[:, HR_FEATURES.index("mean_hr_bpm")], 75.0, atol=1.0), "the pulse's 75 bpm"
    assert np.all(f[:, HR_FEATURES.index("eda_present")] == 1) and np.all(
        f[:, HR_FEATURES.index("temp_present")] == 1
    )
    assert np.allclose(
        f[:, HR_FEATURES.index("temp_c")], 32.0 + 0.01 * (np.array([w.t_end for w in ws]) - 30), atol=0.01
    )
    labels = [w.label for w in ws]
    assert labels[:4] == ["calm"] * 4 and labels[-4:] == ["angry"] * 4, "baseline -> calm, stress -> angry"
    assert set(labels[4:-4]) == {None}, "windows across the change of label have none"


def test_replay_e4_without_bvp_or_skin_gives_beat_only_windows(tmp_path):
    write_e4_session(tmp_path / "S05", 1.6e9, 1.0, 90.0, ibi_only=True, skin=False)
    ws = list(open_source(f"replay:{tmp_path / 'S05'}", ["hr"], "s1", fast=True, seconds=None))
    assert len(ws) == 6 and all(w.label is None for w in ws)
    assert all(w.data.eda is None and w.data.temp is None for w in ws)
    f = np.array([preprocess("hr", w.data) for w in ws])
    assert np.allclose(f[:, HR_FEATURES.index("mean_hr_bpm")], 60.0)
    assert np.all(f[:, HR_FEATURES.index("eda_present")] == 0) and np.all(
        f[:, HR_FEATURES.index("temp_present")] == 0
    )


def _nan_in_eda(folder: Path) -> None:
    write_e4_session(folder, 1.6e9, 0.8, 70.0)
    lines = (folder / "EDA.csv").read_text().splitlines()
    lines[40] = "nan"
    (folder / "EDA.csv").write_text("\n".join(lines) + "\n")


def _two_column_temp(folder: Path) -> None:
    write_e4_session(folder, 1.6e9, 0.8, 70.0)
    lines = (folder / "TEMP.csv").read_text().splitlines()
    (folder / "TEMP.csv").write_text("\n".join(f"{line},{line}" for line in lines) + "\n")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_nan_in_eda, r"EDA\.csv: 1 NaN or infinite values \(first on line 41\)"),
        (_two_column_temp, r"TEMP\.csv: not a single-signal E4 file: 2 columns"),
        (
            lambda p: (write_e4_session(p, 1.6e9, 0.8, 70.0), (p / "BVP.csv").write_text("1.6e9\n64\n1\n")),
            r"too short: PPG",
        ),
    ],
)
def test_bad_e4_sessions_are_refused_naming_the_file(tmp_path, make, message):
    make(tmp_path / "S07")
    with pytest.raises(ValueError, match=message):
        list(open_source(f"replay:{tmp_path / 'S07'}", ["hr"], "s1", fast=True, seconds=None))


def test_replay_wav_folder_plays_files_in_order_with_their_labels(tmp_path):
    a = write_wav(tmp_path / "Actor_01" / "03-01-05-01-02-01-01.wav", 2.0)  # angry
    b = write_wav(tmp_path / "Actor_02" / "03-01-04-02-01-01-02.wav", 1.5)  # sad
    write_wav(tmp_path / "Actor_02" / "03-01-03-01-01-01-02.wav", 0.3)  # happy, shorter than an utterance
    ws = list(open_source(f"replay:{tmp_path}", ["speech"], "s1", fast=True, seconds=None))
    assert [w.label for w in ws] == ["angry", "sad"], "one utterance per file; the 0.3 s sound is too short"
    # sorted by path: angry at 0 s, the happy sound at 2.5 s, sad at 3.3 s (gaps of 0.5 s between files)
    assert ws[0].t_start == pytest.approx(0.0) and ws[0].t_end == pytest.approx(2.0, abs=0.1)
    assert ws[1].t_start == pytest.approx(3.3, abs=0.05) and ws[1].t_end == pytest.approx(4.8, abs=0.1)
    assert np.array_equal(ws[0].data, a[: len(ws[0].data)]) and np.array_equal(
        ws[1].data, b[: len(ws[1].data)]
    )
    assert all(preprocess("speech", w.data).shape == (6373,) for w in ws)


def test_replay_is_paced_in_real_time_unless_fast(tmp_path):
    write_wav(tmp_path / "03-01-05-01-02-01-01.wav", 1.6)
    started = time.monotonic()
    ws = list(open_source(f"replay:{tmp_path}", ["speech"], "s1", fast=False, seconds=None))
    assert len(ws) == 1 and time.monotonic() - started >= 1.5 * 0.95


@pytest.mark.parametrize(
    ("make", "target", "modalities", "message"),
    [
        (lambda p: write_e4_session(p, 1.6e9, 0.8, 20.0), "", ["hr", "eeg"], "holds only hr"),
        (lambda p: write_wav(p / "03-01-05-01-02-01-01.wav", 1.0), "", ["hr"], "holds only speech"),
        (lambda p: (p / "notes.txt").write_text("x"), "", ["hr"], "E4 session"),
        (lambda p: write_wav(p / "clip.wav", 1.0), "", ["speech"], "neither RAVDESS"),
        (lambda p: (p / "s01.dat").write_bytes(b"not a pickle"), "s01.dat", ["eeg"], "not a readable pickle"),
        (lambda p: (p / "s01.dat").write_bytes(b"x"), "s01.dat", ["eeg", "hr"], "holds only eeg"),
        (
            lambda p: (p / "f.csv").write_text("emotion,pixels\n3,1 2 3\n"),
            "f.csv",
            ["image"],
            "line 2 has 3 pixels",
        ),
        (
            lambda p: (p / "f.csv").write_text("label,image\n"),
            "f.csv",
            ["image"],
            "needs 'emotion' and 'pixels'",
        ),
        (lambda p: None, "missing.dat", ["eeg"], "not an existing"),
    ],
)
def test_bad_replays_are_refused(tmp_path, make, target, modalities, message):
    make(tmp_path)
    with pytest.raises(ValueError, match=message):
        list(open_source(f"replay:{tmp_path / target}", modalities, "s1", fast=True, seconds=None))


def test_replay_of_the_real_recordings():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA}")
    e4 = SHARED_DATA / "stress-predict-e4" / "S02"
    ws = list(open_source(f"replay:{e4}", ["hr"], "s1", fast=True, seconds=900.0))
    labelled = [w for w in ws if w.label]
    assert len(ws) > 150 and {w.label for w in labelled} == {"calm", "angry"}
    scored = []
    for w in labelled:
        try:
            scored.append(preprocess("hr", w.data))
        except ValueError:
            continue
    f = np.array(scored)
    assert len(f) > 0.8 * len(labelled) and 50 < np.median(f[:, 0]) < 140
    assert (
        np.all(f[:, HR_FEATURES.index("eda_present")] == 1)
        and 25 < np.median(f[:, HR_FEATURES.index("temp_c")]) < 40
    )
    speech = list(
        open_source(f"replay:{SHARED_DATA / 'ravdess-speech-16k' / 'Actor_01'}", ["speech"], "s", True, 30.0)
    )
    assert len(speech) >= 5 and {w.label for w in speech} <= {"calm", "happy", "sad", "angry"}


def test_live_ppg_beats_are_handed_out_once_and_only_when_final():
    from edge_node.lsl import PpgBeats

    fs, beat_s = 64.0, 0.8
    t = np.arange(int(30 * fs)) / fs
    pulse = 40 * np.sin(np.pi * t / beat_s) ** 20 + 0.5 * np.sin(2 * np.pi * 0.1 * t)  # one peak per beat
    ppg = PpgBeats(fs)
    beats, finals = [], []
    for i in range(0, len(pulse), 16):  # 0.25 s per pull, as a live inlet delivers
        out = ppg.push(pulse[i : i + 16])
        if out is not None:
            beats.append(out)
            finals.append(ppg.final_s)
    rows = np.concatenate(beats)
    assert np.all(np.diff(rows[:, 0]) > 0.5), "each beat once, in order"
    assert np.allclose(rows[:, 1], beat_s, atol=2 / fs) and len(rows) >= 30
    assert np.allclose(rows[:, 0] % beat_s, beat_s / 2, atol=2 / fs), "peaks at the pulse's maxima"
    assert rows[-1, 0] <= finals[-1] <= 30.0 - ppg.edge_s + 1e-9
    backlog = PpgBeats(fs).push(pulse)  # 30 s arriving in one pull are analysed as if they came live
    assert np.array_equal(backlog, rows)


def test_replay_deap_subject_plays_trials_with_their_quadrants(tmp_path):
    from mmer_core.formats import DEAP_PICK

    rng = np.random.default_rng(0)
    data = rng.normal(0, 10, size=(2, 40, int(10.0 * 128))).astype(np.float32)  # 3 s baseline + 7 s
    ratings = np.array([[8.0, 7.5, 5.0, 5.0], [2.0, 8.0, 5.0, 5.0]], dtype=np.float32)  # happy, angry
    with (tmp_path / "s01.dat").open("wb") as fh:
        pickle.dump({"data": data, "labels": ratings}, fh, protocol=2)
    ws = list(open_source(f"replay:{tmp_path / 's01.dat'}", ["eeg"], "s1", fast=True, seconds=None))
    assert [w.label for w in ws] == ["happy"] * 11 + ["angry"] * 11, (
        "7 s trials: 11 windows of 2 s every 0.5 s"
    )
    assert ws[11].t_start == 7.5, "the second trial starts after a gap: no window spans two trials"
    assert np.array_equal(ws[3].data, data[0][DEAP_PICK, 384 + 3 * 64 : 384 + 3 * 64 + 256])
    assert preprocess("eeg", ws[0].data).shape == SPECS["eeg"].input_shape


def test_replay_fer2013_csv_gives_labelled_frames_at_5_fps(tmp_path):
    rng = np.random.default_rng(1)
    pixels = [rng.integers(0, 256, 48 * 48) for _ in range(3)]
    pixels[0] = face.draw(sample_traits(rng), np.array([0.5]), np.array([0.5]), rng, 0.0, size=48)[0].ravel()
    rows = [
        f"{code}," + " ".join(map(str, p)) + ",Training" for code, p in zip((3, 0, 6), pixels, strict=True)
    ]
    (tmp_path / "fer2013.csv").write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    ws = list(open_source(f"replay:{tmp_path / 'fer2013.csv'}", ["image"], "s1", fast=True, seconds=None))
    assert [(w.label, w.t_end) for w in ws] == [("happy", 0.2), ("angry", 0.4), ("calm", pytest.approx(0.6))]
    assert np.allclose(ws[1].data, pixels[1].reshape(48, 48) / 255.0)
    assert preprocess("image", ws[0].data).shape == (48, 48, 1)


def test_replay_wesad_pickle_labels_windows_inside_one_condition(tmp_path):
    fs, beat_s = 64.0, 0.8
    t = np.arange(int(180 * fs)) / fs
    bvp = 40 * np.sin(np.pi * t / beat_s) ** 20
    label = np.concatenate([np.full(90 * 700, 1), np.full(90 * 700, 2)]).astype(np.int32)  # baseline, stress
    data = {
        "subject": "S2",
        "signal": {
            "wrist": {
                "BVP": bvp[:, None],
                "EDA": np.full((180 * 4, 1), 2.0),
                "TEMP": np.full((180 * 4, 1), 33.0),
            }
        },
        "label": label,
    }
    with (tmp_path / "S2.pkl").open("wb") as fh:
        pickle.dump(data, fh, protocol=2)
    ws = list(open_source(f"replay:{tmp_path / 'S2.pkl'}", ["hr"], "s1", fast=True, seconds=None))
    assert [w.t_end for w in ws] == [float(e) for e in range(60, 181, 5)]
    labels = [w.label for w in ws]
    assert labels[:7] == ["calm"] * 7 and labels[18:] == ["angry"] * 7 and set(labels[7:18]) == {None}
    features = preprocess("hr", ws[0].data)
    assert np.allclose(features[0], 75.0, atol=1.0)
    assert features[HR_FEATURES.index("eda_tonic_us")] == pytest.approx(2.0, abs=0.05), (
        "EDA reaches the window"
    )
    assert features[HR_FEATURES.index("temp_present")] == 1.0
