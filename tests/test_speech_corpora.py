"""Speech corpora by their own names (CREMA-D beside RAVDESS), several corpora as one data set, and balance."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from mmer_core import bundle
from mmer_core.formats import read_audio
from mmer_core.speech_files import find_speech_files, label_file
from mmer_core.taxonomy import QUADRANTS
from testkit.speech_audio import voiced
from trainer.balance import balanced_sample_weights
from trainer.data import Dataset, combine, corpus_of, split
from trainer.loaders import corpus_names, load
from trainer.models import balanced_class_weights

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RATE = 16000
TONE_HZ = {"angry": 400.0, "happy": 300.0, "sad": 150.0, "calm": 200.0}
CREMA_CODES = {"ANG": "angry", "DIS": "angry", "FEA": "angry", "HAP": "happy", "NEU": "calm", "SAD": "sad"}


def write_clip(path: Path, seconds: float = 1.5, freq: float = 220.0, rate: int = RATE) -> None:
    """Voiced sound at freq between short silences, as 16-bit PCM in the format the suffix names (.wav or .flac)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.concatenate([np.zeros(rate // 8), voiced(seconds, freq, 0.4, rate), np.zeros(rate // 8)])
    soundfile.write(str(path), x, rate, subtype="PCM_16")


def write_crema(root: Path, actors: tuple[str, ...], suffix: str, seconds: float = 1.5) -> list[Path]:
    """One clip per actor and emotion code, one of them with a level, named as CREMA-D names them."""
    paths = []
    for actor in actors:
        for code, label in CREMA_CODES.items():
            level = "HI" if code == "ANG" else "XX"
            sentence = "IEO" if level == "HI" else "DFA"
            paths.append(root / f"{actor}_{sentence}_{code}_{level}{suffix}")
            write_clip(paths[-1], seconds, TONE_HZ[label])
    return paths


@pytest.mark.parametrize(("suffix", "subfolder"), [(".wav", ""), (".flac", ""), (".wav", "AudioWAV")])
def test_crema_d_names_give_label_speaker_and_metadata(tmp_path: Path, suffix: str, subfolder: str) -> None:
    root = tmp_path / "crema"
    write_crema(root / subfolder if subfolder else root, ("1001", "1002"), suffix)
    files = find_speech_files(root)
    assert len(files) == 12
    assert {f.corpus for f in files} == {"crema"}, "the corpus is the folder's name"
    assert Counter(f.speaker for f in files) == {"1001": 6, "1002": 6}
    assert Counter(f.label for f in files) == {"angry": 6, "happy": 2, "sad": 2, "calm": 2}
    by_name = {f.path.name: f for f in files}
    ang = by_name[f"1001_IEO_ANG_HI{suffix}"]
    assert ang.label == "angry"
    assert ang.meta == {"scheme": "crema-d", "emotion": "ANG", "sentence": "IEO", "level": "HI"}
    assert by_name[f"1002_DFA_NEU_XX{suffix}"].label == "calm"
    assert by_name[f"1002_DFA_DIS_XX{suffix}"].label == "angry"
    audio = read_audio(ang.path)
    assert abs(len(audio) - 1.75 * RATE) < 2 and 0.2 < np.abs(audio).max() < 0.4 + 1e-3


def test_crema_d_folder_loads_as_a_dataset(tmp_path: Path) -> None:
    write_crema(tmp_path / "AudioWAV", ("1001", "1002", "1003"), ".flac")
    d = load([("speech", tmp_path)], "speech")
    assert set(d.subjects) == {f"{tmp_path.name}/{a}" for a in ("1001", "1002", "1003")}
    angry = QUADRANTS.index("angry")
    assert (d.y == angry).mean() == 0.5, "3 of each actor's 6 clips, all of one length, are angry"
    assert np.isfinite(d.x).all()


def test_other_rates_and_depths_are_read_at_16k(tmp_path: Path) -> None:
    path = tmp_path / "1001_DFA_SAD_XX.wav"
    t = np.arange(44100) / 44100
    soundfile.write(str(path), np.stack([np.sin(2 * np.pi * 200 * t)] * 2, axis=1) * 0.5, 44100, "PCM_24")
    x = read_audio(path)
    assert abs(len(x) - RATE) < 2 and x.dtype == np.float32
    assert abs(np.abs(x).max() - 0.5) < 0.01, "stereo averaged to one channel, 24-bit scaled to [-1, 1]"


def test_a_name_of_no_scheme_is_an_error_that_names_the_file(tmp_path: Path) -> None:
    write_crema(tmp_path, ("1001",), ".wav")
    write_clip(tmp_path / "take 3.wav")
    with pytest.raises(ValueError, match=r"take 3\.wav: name follows neither RAVDESS, TESS, CREMA-D"):
        find_speech_files(tmp_path)
    with pytest.raises(ValueError, match=r"take 3\.wav"):
        load([("speech", tmp_path)], "speech")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1001_DFA_XYZ_XX.wav", "crema-d: unknown label 'XYZ'"),
        ("1001_DFA_ANG_QQ.wav", "level 'QQ' is none of"),
    ],
)
def test_crema_d_codes_it_does_not_define_are_errors(tmp_path: Path, name: str, message: str) -> None:
    write_clip(tmp_path / name)
    with pytest.raises(ValueError, match=message) as err:
        label_file(tmp_path / name, tmp_path)
    assert name in str(err.value)


def test_skip_misnamed_counts_and_names_what_it_skips(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_crema(tmp_path, ("1001",), ".flac")
    write_clip(tmp_path / "take 3.wav")
    write_clip(tmp_path / "1001_DFA_XYZ_XX.flac")
    (tmp_path / "notes.txt").write_text("not audio")
    with caplog.at_level(logging.WARNING):
        files = find_speech_files(tmp_path, skip_misnamed=True)
    assert len(files) == 6
    (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert "skipped 2 of 8 audio files" in record.getMessage()
    assert "take 3.wav" in record.getMessage() and "1001_DFA_XYZ_XX.flac" in record.getMessage()
    assert "notes.txt" not in record.getMessage(), "files that are not audio are not recordings"


def test_skip_misnamed_with_nothing_left_is_an_error(tmp_path: Path) -> None:
    write_clip(tmp_path / "a.wav")
    with pytest.raises(ValueError, match="none of the 1 audio files"):
        find_speech_files(tmp_path, skip_misnamed=True)


def test_ravdess_and_tess_names_also_read_as_flac(tmp_path: Path) -> None:
    write_clip(tmp_path / "Actor_07" / "03-01-04-01-02-01-07.flac")
    write_clip(tmp_path / "OAF_back_ps.flac")
    files = {f.path.name: f for f in find_speech_files(tmp_path)}
    assert (files["03-01-04-01-02-01-07.flac"].label, files["03-01-04-01-02-01-07.flac"].speaker) == (
        "sad",
        "actor07",
    )
    assert files["03-01-04-01-02-01-07.flac"].meta["statement"] == "02"
    assert (files["OAF_back_ps.flac"].label, files["OAF_back_ps.flac"].speaker) == ("happy", "OAF")


@pytest.mark.parametrize(
    ("name", "label", "speaker", "meta"),
    [
        ("03a01Fa.wav", "happy", "03", {"scheme": "emo-db", "emotion": "F", "text": "a01", "version": "a"}),
        ("16b10Lb.flac", "sad", "16", {"scheme": "emo-db", "emotion": "L", "text": "b10", "version": "b"}),
        ("11a05Wc.wav", "angry", "11", {"scheme": "emo-db", "emotion": "W", "text": "a05", "version": "c"}),
        ("13b02Na.wav", "calm", "13", {"scheme": "emo-db", "emotion": "N", "text": "b02", "version": "a"}),
        ("dis-f1-b1.wav", "angry", "f1", {"scheme": "emovo", "emotion": "dis", "sentence": "b1"}),
        ("gio-m3-l4.flac", "happy", "m3", {"scheme": "emovo", "emotion": "gio", "sentence": "l4"}),
        ("tri-f2-n5.wav", "sad", "f2", {"scheme": "emovo", "emotion": "tri", "sentence": "n5"}),
        ("DC_sa01.wav", "sad", "DC", {"scheme": "savee", "emotion": "sa", "number": "01"}),
        ("JK/su12.wav", "happy", "JK", {"scheme": "savee", "emotion": "su", "number": "12"}),
        ("KL/n30.flac", "calm", "KL", {"scheme": "savee", "emotion": "n", "number": "30"}),
    ],
)
def test_emo_db_emovo_and_savee_names_give_label_speaker_and_metadata(
    tmp_path: Path, name: str, label: str, speaker: str, meta: dict[str, str]
) -> None:
    write_clip(tmp_path / name)
    (found,) = find_speech_files(tmp_path)
    assert (found.label, found.speaker, found.meta) == (label, speaker, meta)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("03a01Xa.wav", "emo-db: unknown label 'X'"),
        ("ang-f1-b1.wav", "emovo: unknown label 'ang'"),
        ("sa01.wav", "name follows neither"),  # a SAVEE code needs its speaker: in the name or its folder
        ("DC_x01.wav", "name follows neither"),
    ],
)
def test_names_of_other_language_corpora_with_codes_they_do_not_define_are_errors(
    tmp_path: Path, name: str, message: str
) -> None:
    write_clip(tmp_path / name)
    with pytest.raises(ValueError, match=message) as err:
        find_speech_files(tmp_path)
    assert Path(name).name in str(err.value)


def test_an_emo_db_folder_loads_as_a_dataset_of_its_speakers(tmp_path: Path) -> None:
    codes = {"W": "angry", "F": "happy", "T": "sad", "N": "calm"}
    for speaker in ("03", "08"):
        for code, label in codes.items():
            write_clip(tmp_path / "wav" / f"{speaker}a01{code}a.wav", 1.5, TONE_HZ[label])
    d = load([("speech", tmp_path)], "speech")
    assert set(d.subjects) == {f"{tmp_path.name}/03", f"{tmp_path.name}/08"}
    assert Counter(QUADRANTS.labels[i] for i in d.y) == {"angry": 2, "happy": 2, "sad": 2, "calm": 2}


def toy(subjects: list[str], per_subject: int = 8) -> Dataset:
    """Feature rows of every class for each subject."""
    n = len(subjects) * per_subject
    y = np.tile(np.arange(len(QUADRANTS)), n // len(QUADRANTS) + 1)[:n]
    return Dataset(
        "speech",
        np.random.default_rng(0).normal(size=(n, 3)),
        y,
        np.repeat(subjects, per_subject),
        np.arange(n, dtype=float),
        "toy",
    )


def test_two_corpora_keep_people_apart_and_each_has_test_people() -> None:
    a = toy(["01", "02", "03", "04", "05", "06"])
    b = toy(["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"])
    both = combine({"ravdess": a, "crema": b})
    assert len(np.unique(both.subjects)) == 18, "speaker 01 of each corpus stays two people"
    assert {"ravdess/01", "crema/01"} <= set(both.subjects)
    assert Counter(corpus_of(both.subjects)) == {"ravdess": len(a), "crema": len(b)}
    parts = split(both, seed=3)
    people = [set(p.subjects) for p in (parts.train, parts.val, parts.test)]
    assert not (people[0] & people[1]) and not (people[0] & people[2]) and not (people[1] & people[2])
    assert set().union(*people) == set(both.subjects)
    for corpus, n in (("ravdess", 6), ("crema", 12)):
        test_people = {s for s in people[2] if s.startswith(f"{corpus}/")}
        assert len(test_people) == round(0.25 * n), corpus


def test_a_corpus_has_the_same_test_people_alone_and_beside_others() -> None:
    a, b = toy([f"s{i}" for i in range(12)]), toy([f"s{i}" for i in range(7)])
    alone, plain = split(combine({"a": a}), seed=5), split(a, seed=5)
    beside = split(combine({"b": b, "a": a}), seed=5)
    assert [f"a/{s}" for s in np.unique(plain.test.subjects)] == list(np.unique(alone.test.subjects))
    for part in ("train", "val", "test"):
        people = set(getattr(beside, part).subjects)
        assert {s for s in people if s.startswith("a/")} == set(getattr(alone, part).subjects), part


def test_combine_refuses_what_does_not_fit() -> None:
    a = toy(["01", "02", "03"])
    with pytest.raises(ValueError, match="must be non-empty and without '/'"):
        combine({"a/b": a})
    wider = Dataset("speech", np.zeros((4, 5)), np.zeros(4, int), np.array(["x"] * 4), np.zeros(4), "w")
    with pytest.raises(ValueError, match="corpus w: speech"):
        combine({"a": a, "w": wider})


def test_corpus_names_tell_folders_apart(tmp_path: Path) -> None:
    for sub in ("ravdess/audio", "crema/audio", "tess"):
        (tmp_path / sub).mkdir(parents=True)
    assert corpus_names([tmp_path / "tess", tmp_path / "crema"]) == ["tess", "crema"]
    assert corpus_names([tmp_path / "ravdess/audio", tmp_path / "crema/audio"]) == [
        "ravdess-audio",
        "crema-audio",
    ]
    with pytest.raises(ValueError, match="the same folder is given twice"):
        corpus_names([tmp_path / "tess", tmp_path / "crema/../tess"])


def test_balanced_weights_give_each_corpus_and_class_an_equal_share() -> None:
    # corpus "big": 3x the rows of "small", half of them class 1; "small": class 0 rare
    y = np.array([1] * 60 + [0] * 20 + [2] * 20 + [3] * 20 + [0] * 4 + [1] * 12 + [2] * 12 + [3] * 12)
    corpora = np.array(["big"] * 120 + ["small"] * 40)
    w = balanced_sample_weights(y, corpora)
    assert w.mean() == pytest.approx(1.0)
    assert w[corpora == "big"].sum() == pytest.approx(w[corpora == "small"].sum())
    for c in ("big", "small"):
        shares = [w[(corpora == c) & (y == k)].sum() for k in range(4)]
        assert shares == pytest.approx([shares[0]] * 4), c
    totals = [w[y == k].sum() for k in range(4)]
    assert totals == pytest.approx([len(y) / 4] * 4), "every corpus has every class: classes equal overall"
    assert w[(corpora == "small") & (y == 0)][0] > w[(corpora == "big") & (y == 1)][0]


def test_balanced_weights_of_one_corpus_are_inverse_class_frequencies() -> None:
    y = np.array([0] * 10 + [1] * 30 + [3] * 5)
    w = balanced_sample_weights(y, np.array(["only"] * len(y)))
    expected = balanced_class_weights(y)
    assert w == pytest.approx([expected[int(c)] for c in y])
    with pytest.raises(ValueError, match="45 labels but 3 corpus names"):
        balanced_sample_weights(y, np.array(["a", "b", "c"]))


@pytest.mark.slow
def test_pipeline_trains_one_speech_model_on_two_corpora(tmp_path: Path) -> None:
    crema, ravdess = tmp_path / "crema", tmp_path / "ravdess"
    write_crema(crema / "AudioWAV", ("1001", "1002", "1003", "1004"), ".flac", seconds=1.0)
    for actor in ("01", "02", "03", "04"):  # RAVDESS names, the same speaker numbers as nothing in crema
        for code, label in (("01", "calm"), ("03", "happy"), ("04", "sad"), ("05", "angry")):
            write_clip(ravdess / f"Actor_{actor}" / f"03-01-{code}-01-01-01-{actor}.wav", 1.0, TONE_HZ[label])
    write_clip(ravdess / "readme.wav")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "mmer_cli",
        "trainer",
        "pipeline",
        "--data",
        f"speech:{crema}",
        "--data",
        f"speech:{ravdess}",
        "--out",
        str(out),
        "--epochs",
        "2",
        "--methods",
        "max",
        "--no-tflite",
        "--class-weights",
        "balanced",
        "--wearer-baseline",
        "0",  # a speaker has 4-6 clips here: the speech recipe's warm-up would leave none to train on
    ]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "readme.wav: name follows neither" in refused.stderr
    proc = subprocess.run([*command, "--skip-misnamed"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "skipped 1 of 17 audio files" in proc.stderr and "readme.wav" in proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert set(report) >= {"speech", "fusion"} and "hr" not in report, "one modality, one model"
    corpora = report["speech"]["corpora"]
    assert set(corpora) == {"crema", "ravdess"}
    assert sum(c["share"] for c in corpora.values()) == pytest.approx(1.0, abs=1e-3)
    assert corpora["crema"]["labels"] == {"happy": 4, "angry": 12, "sad": 4, "calm": 4}
    assert corpora["ravdess"]["labels"] == {"happy": 4, "angry": 4, "sad": 4, "calm": 4}
    for c in corpora.values():
        assert c["people"] == {"train": 2, "val": 1, "test": 1}
        assert c["rows"]["test"] > 0 and set(c["test"]) == {"fp32", "int8", "majority"}
        assert 0.0 <= c["test"]["int8"]["accuracy"] <= 1.0
    assert report["speech"]["windows"]["test"] == sum(c["rows"]["test"] for c in corpora.values())
    assert report["data"].count("speech:") == 2
    markdown = (out / "report.md").read_text()
    assert "| crema |" in markdown and "| ravdess |" in markdown
    b = bundle.read_bundle(out / "speech", bundle.load_public_key(out / "keys" / bundle.PUBLIC_KEY_FILE))
    assert b.manifest.modality == "speech"


def test_shared_crema_d_folder() -> None:
    root = SHARED_DATA / "crema-d-16k"
    if not root.is_dir():
        pytest.skip(f"shared CREMA-D not found at {root}")
    files = find_speech_files(root)
    assert len(files) == 2435 and len({f.speaker for f in files}) == 30
    assert Counter(f.label for f in files) == {"angry": 1248, "happy": 416, "sad": 416, "calm": 355}
    assert Counter(f.meta["level"] for f in files) == {"XX": 1985, "LO": 150, "MD": 150, "HI": 150}
    assert len({f.meta["sentence"] for f in files}) == 12
    audio = read_audio(files[0].path)
    assert 0.5 * RATE < len(audio) < 10 * RATE and np.abs(audio).max() <= 1.0


def test_pipeline_refuses_corpora_of_different_modalities_and_a_folder_twice(tmp_path: Path) -> None:
    write_crema(tmp_path / "crema", ("1001",), ".wav", seconds=0.5)
    (tmp_path / "e4").mkdir()
    base = [sys.executable, "-m", "mmer_cli", "trainer", "pipeline", "--out", str(tmp_path / "out")]
    mixed = subprocess.run(
        [*base, "--data", f"speech:{tmp_path / 'crema'}", "--data", f"e4:{tmp_path / 'e4'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert mixed.returncode == 2 and "must be folders of one modality, got hr, speech" in mixed.stderr
    with_synthetic = subprocess.run(
        [*base, "--data", f"speech:{tmp_path / 'crema'}", "--data", "synthetic"],
        capture_output=True,
        text=True,
    )
    assert with_synthetic.returncode == 2 and "and synthetic" in with_synthetic.stderr
    twice = subprocess.run(
        [*base, "--data", f"speech:{tmp_path / 'crema'}", "--data", f"speech:{tmp_path / 'crema'}/"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert twice.returncode == 2 and "the same folder is given twice" in twice.stderr


def test_an_unreadable_audio_file_is_an_error_that_names_it(tmp_path: Path) -> None:
    (tmp_path / "1076_MTI_SAD_XX.wav").write_bytes(b"RIFF\x00\x00")
    with pytest.raises(ValueError, match=r"1076_MTI_SAD_XX\.wav: not a readable audio file"):
        read_audio(tmp_path / "1076_MTI_SAD_XX.wav")
