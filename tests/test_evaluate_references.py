"""`mmer trainer evaluate --references-from`: the classical references trained on other people's folders and
scored beside a bundle on the same units, on tiny generated speech and E4 sets; and the inputs it refuses.

The bundles are tiny signed linear models (testkit.edge_models): their own figures mean nothing here, what is
checked is that the references are trained on the reference people only and scored on the bundle's units."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmer_cli.dispatch import main
from testkit.e4_files import write_e4_session
from testkit.edge_models import make_bundle
from testkit.speech_audio import ravdess_corpus
from trainer.yardstick.held_back import check_apart

SPEECH_REFERENCES = {"svm", "svm-speaker-running", "majority"}
WRIST_REFERENCES = {"rf-stats", "rf-stats-wearer-running", "majority"}
EXISTING_KEYS = {
    "accuracy",
    "macro_f1",
    "uar",
    "majority",
    "n",
    "persons",
    "unit",
    "labels",
    "recall",
    "counts",
    "confusion",
}
ACTORS, PER_CLASS, TEST_ACTORS = 5, 2, (4, 5)
SESSION_S = 240


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def speech_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """RAVDESS-named actors 1-3 to train references on, actors 4-5 held back."""
    root = tmp_path_factory.mktemp("speech")
    ravdess_corpus(root / "all", ACTORS, PER_CLASS)
    for actor in range(1, ACTORS + 1):
        part = "test" if actor in TEST_ACTORS else "train"
        (root / part).mkdir(exist_ok=True)
        (root / "all" / f"Actor_{actor:02d}").rename(root / part / f"Actor_{actor:02d}")
    return root / "train", root / "test"


@pytest.fixture(scope="module")
def e4_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Five wearers in the E4's export layout, calm for the first half of the session and stressed for the
    rest: three to train references on, two held back."""
    root = tmp_path_factory.mktemp("e4")
    for part, wearers in (("train", range(3)), ("test", range(3, 5))):
        rows = []
        for i in wearers:
            start = 1_700_000_000 + 10_000 * i
            write_e4_session(root / part / f"P{i}", start, 0.75 + 0.05 * i, SESSION_S)
            half = start + SESSION_S // 2
            rows += [f"P{i},{start},{half},baseline", f"P{i},{half},{start + SESSION_S},stress"]
        header = "subject,start_unix_utc,end_unix_utc,label\n"
        (root / part / "labels.csv").write_text(header + "\n".join(rows) + "\n")
    return root / "train", root / "test"


def evaluate(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(["trainer", "evaluate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_speech_references_are_scored_beside_the_bundle_on_its_utterances(
    speech_split: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    train, test = speech_split
    make_bundle(tmp_path / "speech", tmp_path / "keys", "speech", 1, params={"wearer_baseline_windows": 2})
    bundle = ["--bundle", str(tmp_path / "speech"), "--data", f"speech:{test}"]
    code, out, err = evaluate([*bundle, "--json"], capsys)
    assert code == 0, err
    alone = json.loads(out)
    code, out, err = evaluate([*bundle, "--references-from", f"speech:{train}", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == EXISTING_KEYS | {"references"}
    assert {k: v for k, v in report.items() if k != "references"} == alone, (
        "the bundle's own figures unchanged"
    )
    # each held-back speaker's first utterance only warms the baseline up, for the bundle and the references
    assert report["n"] == len(TEST_ACTORS) * (4 * PER_CLASS - 1) and report["unit"] == "utterance"
    refs = report["references"]
    assert set(refs) == SPEECH_REFERENCES
    for scores in refs.values():
        assert set(scores) == {"accuracy", "macro_f1", "uar"}
    # the training actors' classes are balanced: the majority reference answers the first class, happy
    assert refs["majority"]["accuracy"] == pytest.approx(report["counts"]["happy"] / report["n"], abs=1e-4)
    # classes differ in pitch relative to each speaker: the speaker-relative SVM finds them on new speakers
    assert refs["svm-speaker-running"]["accuracy"] > refs["majority"]["accuracy"] + 0.15

    code, out, err = evaluate([*bundle, "--references-from", f"speech:{train}"], capsys)
    assert code == 0, err
    assert f"trained on the 3 persons of speech:{train}, on the same {report['n']} utterances" in out
    for name in ("bundle (int8)", *SPEECH_REFERENCES):
        assert any(line.strip().startswith(name) for line in out.splitlines()), name


@pytest.mark.slow
def test_wrist_references_are_scored_beside_the_bundle_on_its_windows(
    e4_split: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    train, test = e4_split
    params = {"wearer_baseline_windows": 4.0, "wearer_baseline_levels": 1.0}
    make_bundle(tmp_path / "hr", tmp_path / "keys", "hr", 1, params=params)
    code, out, err = evaluate(
        [
            "--bundle",
            str(tmp_path / "hr"),
            "--data",
            f"e4:{test}",
            "--references-from",
            f"e4:{train}",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads(out)
    assert set(report) >= EXISTING_KEYS and set(report["references"]) == WRIST_REFERENCES
    # each wearer: 37 windows (60 s every 5 s over 240 s), 11 across the change of label, 26 labelled of
    # which the first 3 calibrate
    assert report["unit"] == "window" and report["n"] == 2 * (26 - 3)
    refs = report["references"]
    # training windows are half calm, half stressed: the majority reference answers the first, angry
    assert refs["majority"]["accuracy"] == pytest.approx(report["counts"]["angry"] / report["n"], abs=1e-4)
    for scores in refs.values():
        assert 0.0 <= scores["accuracy"] <= 1.0 and 0.0 <= scores["macro_f1"] <= 1.0


def test_references_of_another_kind_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = evaluate(
        ["--bundle", str(tmp_path), "--data", f"speech:{tmp_path}", "--references-from", f"e4:{tmp_path}"],
        capsys,
    )
    assert code == 2 and "e4 data cannot train references for --data of kind speech" in err


def test_references_from_a_folder_without_people_are_refused(
    speech_split: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = evaluate(
        [
            "--bundle",
            str(tmp_path),
            "--data",
            f"speech:{speech_split[1]}",
            "--references-from",
            f"speech:{empty}",
        ],
        capsys,
    )
    assert code == 2 and f"speech:{empty}: no audio files" in err


def test_references_from_a_missing_folder_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = evaluate(
        ["--bundle", str(tmp_path), "--data", f"speech:{tmp_path}", "--references-from", "speech:/no/such"],
        capsys,
    )
    assert code == 2 and "/no/such is not a directory" in err


def test_references_sharing_people_with_the_test_set_are_refused_and_named(
    speech_split: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    train, test = speech_split
    overlapping = tmp_path / "overlapping"
    for actor in (train / "Actor_01", test / "Actor_05"):
        (overlapping / actor.name).mkdir(parents=True)
        for wav in actor.glob("*.wav"):
            (overlapping / actor.name / wav.name).symlink_to(wav)
    code, _, err = evaluate(
        [
            "--bundle",
            str(tmp_path),
            "--data",
            f"speech:{test}",
            "--references-from",
            f"speech:{train}",
            "--references-from",
            f"speech:{overlapping}",
        ],
        capsys,
    )
    assert code == 2 and f"--references-from speech:{overlapping} holds 1 of the persons" in err
    assert "(actor05)" in err and "never be trained on test people" in err


def test_the_test_folder_itself_is_refused_as_references(e4_split: tuple[Path, Path]) -> None:
    train, test = e4_split
    assert check_apart("e4", test, [train]) == 3
    with pytest.raises(ValueError, match=r"holds 2 of the persons .*\(P3, P4\)"):
        check_apart("e4", test, [train, test])


def test_kinds_without_references_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = evaluate(
        ["--bundle", str(tmp_path), "--data", f"deap:{tmp_path}", "--references-from", f"deap:{tmp_path}"],
        capsys,
    )
    assert code == 2 and "no classical references for deap data" in err


@pytest.mark.slow
def test_face_references_are_scored_beside_the_bundle_on_its_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from testkit.face_folders import write_face_folder

    train = write_face_folder(tmp_path / "train", persons=3, per_label=2, seed=1)
    test = write_face_folder(tmp_path / "test", persons=2, per_label=2, seed=2)
    for png in test.rglob("p*.png"):  # the held-back persons get names of their own
        png.rename(png.with_name("q" + png.name[1:]))
    make_bundle(tmp_path / "image", tmp_path / "keys", "image", 1)
    code, out, err = evaluate(
        [
            "--bundle",
            str(tmp_path / "image"),
            "--data",
            f"faces:{test}",
            "--references-from",
            f"faces:{train}",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["unit"] == "frame" and report["persons"] == 2
    assert set(report["references"]) == {
        "pca-svm-pixels",
        "pca-svm-hog",
        "pca-svm-pixels+hog",
        "pca-svm-pixels+hog-person-running",
        "majority",
    }
    assert report["references"]["majority"]["accuracy"] == pytest.approx(
        report["counts"]["happy"] / report["n"], abs=1e-4
    )


def test_references_without_a_bundle_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = evaluate(["--work", str(tmp_path), "--references-from", f"speech:{tmp_path}"], capsys)
    assert code == 2 and "--references-from needs --bundle" in err
