"""Loaders on small files written in each format's exact layout, and on the real sets when present."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from mmer_core.formats import read_audio
from mmer_core.modalities import HR_FEATURES, SPECS
from mmer_core.taxonomy import QUADRANTS
from testkit.e4_files import write_e4_session
from testkit.speech_audio import voiced
from trainer.loaders import load, parse_source
from trainer.loaders.e4 import load_e4
from trainer.loaders.speech import load_speech

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_wav(path: Path, seconds: float, rate: int = 16000, width: int = 2, freq: float = 220.0) -> None:
    """seconds of voiced sound between 0.25 s silences, at any rate and sample width."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = voiced(seconds, freq, 0.5, rate)
    x = np.concatenate([np.zeros(rate // 4), x, np.zeros(rate // 4)])
    pcm = (x * 32767).astype("<i2") if width == 2 else ((x + 1) * 127.5).astype(np.uint8)
    data = pcm.tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def test_ravdess_naming(tmp_path: Path) -> None:
    write_wav(tmp_path / "Actor_01" / "03-01-05-01-02-01-01.wav", 2.0)  # angry, actor 1
    write_wav(tmp_path / "Actor_02" / "03-01-03-02-01-01-02.wav", 1.5)  # happy, actor 2
    d = load_speech(tmp_path)
    assert d.x.shape[1:] == SPECS["speech"].input_shape
    assert set(d.subjects) == {"actor01", "actor02"}
    assert {QUADRANTS.labels[i] for i in d.y[d.subjects == "actor01"]} == {"angry"}
    assert (d.subjects == "actor01").sum() == 1, "one utterance per file, a row of functionals each"
    assert list(d.units) == [0, 1] and list(d.t_end) == [1.0, 1.0], "each speaker's first utterance"


def test_tess_naming_and_other_rates(tmp_path: Path) -> None:
    write_wav(tmp_path / "OAF_back_sad.wav", 1.2, rate=24414)
    write_wav(tmp_path / "YAF_dog_ps.wav", 1.2, rate=8000, width=1)
    d = load_speech(tmp_path)
    assert {QUADRANTS.labels[i] for i in d.y} == {"happy", "sad"}
    assert set(d.subjects) == {"OAF", "YAF"}
    x = read_audio(tmp_path / "OAF_back_sad.wav")
    assert abs(len(x) - 1.7 * 16000) < 20, "resampled to 16 kHz"


def test_generic_layout_and_unknown_label(tmp_path: Path) -> None:
    write_wav(tmp_path / "joy" / "spk1_a.wav", 1.0)
    write_wav(tmp_path / "boredom" / "spk2_b.wav", 1.0)
    d = load_speech(tmp_path)
    assert sorted(QUADRANTS.labels[i] for i in d.y) == ["happy", "sad"]
    write_wav(tmp_path / "meh" / "spk3_c.wav", 1.0)
    with pytest.raises(ValueError, match="label 'meh' maps to no quadrants class"):
        load_speech(tmp_path)


def test_unnamed_file_and_empty_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no audio files"):
        load_speech(tmp_path)
    write_wav(tmp_path / "recording.wav", 1.0)
    with pytest.raises(ValueError, match="neither RAVDESS, TESS"):
        load_speech(tmp_path)


@pytest.fixture
def e4_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Session windows are cached per test, never in the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_e4_folders_with_labelled_intervals(tmp_path: Path, e4_cache: Path) -> None:
    root = tmp_path / "set"
    write_e4_session(root / "S01", 1_700_000_000, 60 / 66, 180)
    write_e4_session(root / "S02", 1_700_100_000, 60 / 90, 150, skin=False)
    (root / "labels.csv").write_text(
        "subject,start_unix_utc,end_unix_utc,label\n"
        "S01,1700000000,1700000090,baseline\nS01,1700000090,1700000180,stress\n"
        "S02,1700100000,1700100150,stress\n"
    )
    d = load_e4(root)
    assert set(d.subjects) == {"S01", "S02"}
    s1 = d.subjects == "S01"
    assert {QUADRANTS.labels[i] for i in d.y[s1]} == {"calm", "angry"}
    assert s1.sum() == 7 + 7, "60 s windows every 5 s wholly inside one of the two 90 s intervals"
    assert {QUADRANTS.labels[i] for i in d.y[~s1]} == {"angry"} and (~s1).sum() == 19
    f = dict(zip(HR_FEATURES, d.x.T, strict=True))
    assert np.allclose(f["mean_hr_bpm"][~s1], 90, atol=2), "mean HR from the BVP beats"
    assert np.all(f["eda_present"][s1] == 1) and np.all(f["eda_present"][~s1] == 0), "S02 has no EDA.csv"
    assert np.all(np.diff(d.t_end[s1]) > 0), "recording order"


def test_e4_windows_are_cached_until_a_file_changes(tmp_path: Path, e4_cache: Path) -> None:
    root = tmp_path / "set"
    write_e4_session(root / "S01", 1_700_000_000, 0.8, 90)
    (root / "labels.csv").write_text(
        "subject,start_unix_utc,end_unix_utc,label\nS01,1700000000,1700000090,stress\n"
    )
    first = load_e4(root)
    assert len(list(e4_cache.rglob("S01-*.npz"))) == 1
    assert np.array_equal(load_e4(root).x, first.x)
    write_e4_session(root / "S01", 1_700_000_000, 0.6, 90)
    assert np.allclose(load_e4(root).x[:, 0], 100, atol=2), "a changed BVP.csv is read again"
    assert len(list(e4_cache.rglob("S01-*.npz"))) == 2


def test_e4_missing_labels_or_subject_folder(tmp_path: Path, e4_cache: Path) -> None:
    with pytest.raises(ValueError, match=r"no labels\.csv"):
        load_e4(tmp_path)
    (tmp_path / "labels.csv").write_text("subject,start_unix_utc,end_unix_utc,label\nS09,1,100,baseline\n")
    with pytest.raises(ValueError, match=r"without a folder: .*S09"):
        load_e4(tmp_path)


def test_e4_session_without_beats_is_a_clear_error(tmp_path: Path, e4_cache: Path) -> None:
    (tmp_path / "S01").mkdir()
    (tmp_path / "labels.csv").write_text("subject,start_unix_utc,end_unix_utc,label\nS01,1,100,baseline\n")
    with pytest.raises(ValueError, match=r"no BVP\.csv or IBI\.csv"):
        load_e4(tmp_path)


def test_data_source_parsing(tmp_path: Path) -> None:
    assert parse_source("synthetic") == ("synthetic", None)
    assert parse_source(f"speech:{tmp_path}") == ("speech", tmp_path)
    with pytest.raises(ValueError, match="unknown kind 'dreamer'"):
        parse_source(f"dreamer:{tmp_path}")
    with pytest.raises(ValueError, match="not a directory"):
        parse_source("e4:/no/such/dir")
    with pytest.raises(ValueError, match="carries the hr modality, not speech"):
        load([("e4", tmp_path)], "speech")


def _first_people(path: Path, dest: Path, folders: int) -> tuple[Path, set[str]]:
    """A set's first `folders` person folders, linked file by file (the loaders do not follow linked
    folders), with its labels.csv cut to them, and the people in it that carry labels: the whole shared
    sets take minutes to turn into features."""
    people = sorted(p for p in path.iterdir() if p.is_dir())[:folders]
    for person in people:
        (dest / person.name).mkdir()
        for f in person.iterdir():
            (dest / person.name / f.name).symlink_to(f)
    names = {p.name for p in people}
    labels = path / "labels.csv"
    if not labels.is_file():
        return dest, names
    header, *rows = labels.read_text().splitlines()
    kept = [r for r in rows if r.split(",")[0] in names]
    (dest / "labels.csv").write_text("\n".join([header, *kept]) + "\n")
    return dest, {r.split(",")[0] for r in kept}


@pytest.mark.parametrize(
    ("kind", "folder", "modality"),
    [("speech", "ravdess-speech-16k", "speech"), ("e4", "stress-predict-e4", "hr")],
)
def test_real_sets_load(tmp_path: Path, e4_cache: Path, kind: str, folder: str, modality: str) -> None:
    path = SHARED_DATA / folder
    if not path.is_dir():
        pytest.skip(f"real data not found at {path}")
    (tmp_path / "set").mkdir()
    path, people = _first_people(path, tmp_path / "set", 4)
    d = load([(kind, path)], modality)
    assert len(set(d.subjects)) == len(people) >= 3
    assert len(d) > 50 * len(people)
    assert d.x.shape[1:] == SPECS[modality].input_shape and np.isfinite(d.x).all()
