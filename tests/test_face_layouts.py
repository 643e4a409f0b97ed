"""Face sets in the layouts they ship in (JAFFE, KDEF, RaFD, CK+), written here as generated faces in those layouts."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import pytest

from mmer_core.taxonomy import QUADRANTS
from testkit.face_folders import face_frame
from trainer.loaders.face_layouts import ck_plus
from trainer.loaders.faces import load_faces


def write_face(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), face_frame(seed))


def labels_by_person(d) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for person, y in zip(d.subjects.tolist(), d.y.tolist(), strict=True):
        out.setdefault(person, []).append(QUADRANTS.labels[y])
    return {p: sorted(v) for p, v in out.items()}


def test_jaffe_names_in_one_flat_folder_give_person_and_emotion(tmp_path: Path) -> None:
    for seed, name in enumerate(("KA.HA1.29.tiff", "KA.SA2.34.tiff", "KL.AN1.167.tiff", "KL.NE3.158.tiff")):
        write_face(tmp_path / name, seed)
    d = load_faces(tmp_path)
    assert labels_by_person(d) == {"KA": ["happy", "sad"], "KL": ["angry", "calm"]}
    assert "4 images of 2 persons" in d.description


def test_kdef_names_make_one_person_of_both_sessions(tmp_path: Path) -> None:
    for seed, name in enumerate(
        ("AF01/AF01HAS.JPG", "BF01/BF01SAS.JPG", "AM02/AM02AFS.JPG", "BM02/BM02NES.jpg")
    ):
        write_face(tmp_path / name, seed)
    d = load_faces(tmp_path)
    assert labels_by_person(d) == {"F01": ["happy", "sad"], "M02": ["angry", "calm"]}


def test_rafd_names_give_person_and_emotion_word(tmp_path: Path) -> None:
    names = (
        "Rafd090_01_Caucasian_female_happy_frontal.jpg",
        "Rafd090_01_Caucasian_female_contemptuous_left.jpg",
        "Rafd090_07_Moroccan_male_sad_frontal.jpg",
        "Rafd090_07_Moroccan_male_neutral_right.jpg",
    )
    for seed, name in enumerate(names):
        write_face(tmp_path / name, seed)
    d = load_faces(tmp_path)
    assert labels_by_person(d) == {"caucasian01": ["angry", "happy"], "moroccan07": ["calm", "sad"]}


def write_ck_plus(root: Path, sequences: dict[str, tuple[int, float | None]]) -> None:
    """root/cohn-kanade-images/S/NNN/S_NNN_0000000k.png for k = 1..frames, and the sequence's emotion code (if
    any) for its last frame in root/Emotion/S/NNN/S_NNN_0000000<frames>_emotion.txt."""
    for i, (sequence, (frames, code)) in enumerate(sequences.items()):
        stem = sequence.replace("/", "_")
        for k in range(1, frames + 1):
            write_face(root / "cohn-kanade-images" / sequence / f"{stem}_{k:08d}.png", 10 * i + k)
        if code is not None:
            label = root / "Emotion" / sequence / f"{stem}_{frames:08d}_emotion.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(f"   {code:.7e}\n")


def test_ck_plus_gives_each_labelled_sequence_peak_and_first_frame(tmp_path: Path) -> None:
    write_ck_plus(tmp_path, {"S005/001": (3, 5.0), "S005/002": (2, None), "S010/004": (4, 6.0)})
    files = ck_plus(tmp_path)
    assert [(f.path.name, f.label, f.person) for f in files] == [
        ("S005_001_00000001.png", "calm", "S005"),
        ("S005_001_00000003.png", "happy", "S005"),
        ("S010_004_00000001.png", "calm", "S010"),
        ("S010_004_00000004.png", "sad", "S010"),
    ]
    d = load_faces(tmp_path)
    assert labels_by_person(d) == {"S005": ["calm", "happy"], "S010": ["calm", "sad"]}
    assert "CK+" in d.description


def test_ck_plus_label_without_its_image_is_an_error_naming_it(tmp_path: Path) -> None:
    write_ck_plus(tmp_path, {"S005/001": (2, 1.0)})
    (tmp_path / "cohn-kanade-images" / "S005" / "001" / "S005_001_00000002.png").unlink()
    with pytest.raises(ValueError, match=r"S005_001_00000002_emotion\.txt: its image .* is missing"):
        ck_plus(tmp_path)


@pytest.mark.parametrize("text", ["   9.0000000e+00\n", "", "happy\n"])
def test_ck_plus_unknown_or_unreadable_code_is_an_error_naming_the_file(tmp_path: Path, text: str) -> None:
    write_ck_plus(tmp_path, {"S005/001": (2, 1.0)})
    (tmp_path / "Emotion" / "S005" / "001" / "S005_001_00000002_emotion.txt").write_text(text)
    with pytest.raises(ValueError, match=r"S005_001_00000002_emotion\.txt"):
        ck_plus(tmp_path)


def test_ck_plus_without_labels_is_an_error(tmp_path: Path) -> None:
    write_ck_plus(tmp_path, {"S005/001": (2, None)})
    (tmp_path / "Emotion").mkdir()
    with pytest.raises(ValueError, match="CK\\+ folder without any"):
        load_faces(tmp_path)


def test_jaffe_unknown_emotion_code_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write_face(tmp_path / "KA.XX1.29.tiff", 0)
    with pytest.raises(ValueError, match=r"KA\.XX1\.29\.tiff: jaffe: unknown label"):
        load_faces(tmp_path)


def test_a_flat_image_of_no_known_name_is_an_error_naming_the_layouts(tmp_path: Path) -> None:
    write_face(tmp_path / "face1.png", 0)
    with pytest.raises(
        ValueError, match=r"face1\.png: expected <label>/<person>_<name>\.png, or a JAFFE, KDEF or RaFD"
    ):
        load_faces(tmp_path)


def test_skip_misnamed_leaves_out_and_names_the_images_of_no_layout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for seed, name in enumerate(("KA.HA1.29.tiff", "KL.SA2.34.tiff", "face1.png", "KA.XX1.30.tiff")):
        write_face(tmp_path / name, seed)
    with caplog.at_level(logging.WARNING):
        d = load_faces(tmp_path, skip_misnamed=True)
    assert labels_by_person(d) == {"KA": ["happy"], "KL": ["sad"]}
    (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert "skipped 2 of 4 images" in record.getMessage()
    assert "face1.png" in record.getMessage() and "KA.XX1.30.tiff" in record.getMessage()


def test_skip_misnamed_with_nothing_left_is_an_error(tmp_path: Path) -> None:
    write_face(tmp_path / "face1.png", 0)
    with pytest.raises(ValueError, match="none of the 1 images has a name that gives a label"):
        load_faces(tmp_path, skip_misnamed=True)
