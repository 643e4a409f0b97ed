"""WESAD, DEAP, FER2013 and image-folder loaders on small files written in each exact format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imsave

from mmer_core.formats import DEAP_CHANNELS
from mmer_core.modalities import HR_FEATURES, SPECS
from mmer_core.synthetic import face
from mmer_core.synthetic.traits import sample_traits
from mmer_core.taxonomy import QUADRANTS
from testkit.face_folders import face_frame
from trainer.loaders import load, parse_source
from trainer.loaders.deap import load_deap
from trainer.loaders.e4 import load_e4
from trainer.loaders.faces import load_faces


def _pulse(seconds: float, fs: float, bpm: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    phase = 2 * np.pi * bpm / 60.0 * t
    return 50 * np.sin(phase) + 15 * np.sin(2 * phase) + rng.normal(0, 1.0, t.size)


def write_wesad(
    root: Path, subject: str, conditions: list[tuple[int, float, float]], seed: int = 0, skin: bool = True
) -> None:
    """S<n>/S<n>.pkl as WESAD ships it: latin-1 py2-style dict, wrist BVP 64 Hz, EDA and TEMP 4 Hz (a level
    per condition: conductance rises with the heart rate), labels 700 Hz."""
    rng = np.random.default_rng(seed)
    bvp, eda, temp, label = [], [], [], []
    for code, seconds, bpm in conditions:
        bvp.append(_pulse(seconds, 64.0, bpm, rng))
        eda.append(np.full(int(seconds * 4), bpm / 20.0) + rng.normal(0, 0.01, int(seconds * 4)))
        temp.append(np.full(int(seconds * 4), 33.0) + rng.normal(0, 0.01, int(seconds * 4)))
        label.append(np.full(int(seconds * 700), code, dtype=np.int32))
    wrist = {"BVP": np.concatenate(bvp)[:, None], "ACC": np.zeros((10, 3))}
    if skin:
        wrist |= {"EDA": np.concatenate(eda)[:, None], "TEMP": np.concatenate(temp)[:, None]}
    data = {
        "subject": subject,
        "signal": {"wrist": wrist, "chest": {"ECG": np.zeros((10, 1))}},
        "label": np.concatenate(label),
    }
    (root / subject).mkdir(parents=True)
    with (root / subject / f"{subject}.pkl").open("wb") as fh:
        pickle.dump(data, fh, protocol=2)


def test_wesad_pickles_give_wrist_windows_per_protocol_condition(tmp_path: Path) -> None:
    # 0 transient, 1 baseline -> calm, 2 stress -> angry, 3 amusement -> happy; 6 is outside the protocol.
    write_wesad(tmp_path, "S2", [(0, 20, 70), (1, 90, 65), (2, 90, 95), (6, 20, 80)])
    write_wesad(tmp_path, "S3", [(3, 90, 80), (4, 70, 60)], seed=1, skin=False)
    d = load_e4(tmp_path)
    assert d.modality == "hr" and d.x.shape[1:] == SPECS["hr"].input_shape
    assert set(d.subjects) == {"S2", "S3"}
    s2 = {QUADRANTS.labels[i] for i in d.y[d.subjects == "S2"]}
    s3 = {QUADRANTS.labels[i] for i in d.y[d.subjects == "S3"]}
    assert s2 == {"calm", "angry"} and s3 == {"happy", "calm"}
    # 90 s baseline, 60 s windows every 5 s wholly inside it: 7 windows
    assert np.sum((d.subjects == "S2") & (d.y == QUADRANTS.index("calm"))) == 7
    # the wrist's skin conductance and temperature reach the features, as from an E4 export
    eda, temp = HR_FEATURES.index("eda_present"), HR_FEATURES.index("temp_present")
    assert np.all(d.x[d.subjects == "S2"][:, [eda, temp]] == 1.0)
    assert np.all(d.x[d.subjects == "S3"][:, [eda, temp]] == 0.0), (
        "a pickle without EDA/TEMP gives beats only"
    )
    tonic = HR_FEATURES.index("eda_tonic_us")
    s2_calm, s2_stress = (d.x[(d.subjects == "S2") & (d.y == QUADRANTS.index(q))] for q in ("calm", "angry"))
    assert np.median(s2_stress[:, tonic]) > np.median(s2_calm[:, tonic]) + 1.0


def test_wesad_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "S9").mkdir()
    with (tmp_path / "S9" / "S9.pkl").open("wb") as fh:
        pickle.dump({"signal": {}}, fh)
    with pytest.raises(ValueError, match=r"wesad:.*S9.pkl: missing signal.wrist.BVP"):
        load_e4(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no labels.csv \(E4 session folders\) or S<n>\.pkl"):
        load_e4(empty)


def write_deap(path: Path, ratings: list[tuple[float, float]], seconds: float = 7.0, seed: int = 0) -> None:
    """sNN.dat as DEAP's preprocessed python release: dict of data (trials, 40, samples) and labels (trials, 4)."""
    rng = np.random.default_rng(seed)
    n = int((3.0 + seconds) * 128)
    data = rng.normal(0, 10, size=(len(ratings), 40, n)).astype(np.float32)
    data[:, DEAP_CHANNELS.index("O1"), :] += 30 * np.sin(2 * np.pi * 10 * np.arange(n) / 128)
    labels = np.array([[v, a, 5.0, 5.0] for v, a in ratings], dtype=np.float32)
    with path.open("wb") as fh:
        pickle.dump({"data": data, "labels": labels}, fh, protocol=2)


def test_deap_files_give_eeg_windows_labelled_by_quadrant(tmp_path: Path) -> None:
    write_deap(tmp_path / "s01.dat", [(8.0, 7.5), (2.0, 8.0)])  # happy, angry
    write_deap(tmp_path / "s02.dat", [(3.0, 2.0), (7.0, 1.5)], seed=1)  # sad, calm
    d = load_deap(tmp_path)
    assert d.modality == "eeg" and d.x.shape[1:] == SPECS["eeg"].input_shape
    # 7 s after the 3 s baseline, 2 s windows every 2 s: 3 per trial, 4 trials
    assert len(d) == 12
    assert [QUADRANTS.labels[i] for i in d.y[::3]] == ["happy", "angry", "sad", "calm"]
    assert set(d.subjects) == {"s01", "s02"}


def test_deap_wrong_layout_is_a_clear_error(tmp_path: Path) -> None:
    with (tmp_path / "s01.dat").open("wb") as fh:
        pickle.dump({"data": np.zeros((2, 8, 100)), "labels": np.zeros((2, 4))}, fh)
    with pytest.raises(ValueError, match="not DEAP's layout"):
        load_deap(tmp_path)


def test_fer2013_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["emotion,pixels,Usage"]
    for code in (0, 3, 4, 6, 5):
        pixels = face.draw(sample_traits(rng), np.array([0.5]), np.array([0.5]), rng, 0.0, size=48)[0]
        rows.append(f"{code}," + " ".join(str(v) for v in pixels.ravel()) + ",Training")
    rows.append("3," + " ".join(["128"] * 48 * 48) + ",Training")  # a blank picture: no face in it
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(rows) + "\n")
    d = load_faces(path)
    assert d.x.shape == (5, *SPECS["image"].input_shape)
    assert [QUADRANTS.labels[i] for i in d.y] == ["angry", "happy", "sad", "calm", "happy"]
    assert len(set(d.subjects)) == 5
    assert "1 without a detected face left out" in d.description


def test_fer2013_bad_pixels_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "fer.csv"
    path.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    with pytest.raises(ValueError, match="line 2 has 3 pixels"):
        load_faces(path)


def test_image_folders_any_size_and_colour(tmp_path: Path) -> None:
    import cv2

    for label, person, seed, size in (
        ("joy", "p1", 1, (200, 160)),
        ("fear", "p2", 2, (160, 120)),
        ("calm", "p1", 3, None),
    ):
        (tmp_path / label).mkdir()
        frame = face_frame(seed, grey=label != "fear")
        if size is not None:
            frame = cv2.resize(frame, size)
        cv2.imwrite(str(tmp_path / label / f"{person}_img.png"), frame)
    cv2.imwrite(str(tmp_path / "calm" / "p3_blank.jpg"), np.full((90, 120), 128, np.uint8))
    d = load([parse_source(f"faces:{tmp_path}")], "image")
    assert d.x.shape == (3, *SPECS["image"].input_shape)
    assert sorted(QUADRANTS.labels[i] for i in d.y) == ["angry", "calm", "happy"]
    assert sorted(d.subjects) == [f"{tmp_path.name}/p1", f"{tmp_path.name}/p1", f"{tmp_path.name}/p2"]
    assert "3 images of 2 persons, 1 without a detected face left out" in d.description


def test_image_folders_read_tiff_and_bmp_as_face_sets_ship_them(tmp_path: Path) -> None:
    import cv2

    for label, name, seed in (
        ("happy", "KA_happy1.tiff", 1),
        ("sad", "KA_sad1.tif", 2),
        ("calm", "KB_n1.bmp", 3),
    ):
        (tmp_path / label).mkdir()
        cv2.imwrite(str(tmp_path / label / name), face_frame(seed, grey=True))
    d = load_faces(tmp_path)
    assert sorted(QUADRANTS.labels[i] for i in d.y) == ["calm", "happy", "sad"]
    assert sorted(d.subjects.tolist()) == ["KA", "KA", "KB"]


def test_image_folders_persons_csv_names_the_persons(tmp_path: Path) -> None:
    import cv2

    for label, name, seed in (("happy", "a.png", 1), ("sad", "b.png", 2), ("sad", "c.png", 3)):
        (tmp_path / label).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / label / name), face_frame(seed))
    (tmp_path / "persons.csv").write_text("file,person\nhappy/a.png,S005\nsad/b.png,S005\nsad/c.png,S010\n")
    d = load_faces(tmp_path)
    assert sorted(d.subjects.tolist()) == ["S005", "S005", "S010"]
    (tmp_path / "persons.csv").write_text("file,person\nhappy/a.png,S005\n")
    with pytest.raises(ValueError, match="not listed in"):
        load_faces(tmp_path)


def test_image_folders_without_any_face_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "happy").mkdir()
    imsave(tmp_path / "happy" / "p1_a.png", np.full((60, 60), 0.5), cmap="gray")
    with pytest.raises(ValueError, match="no face found in any of its 1 images"):
        load_faces(tmp_path)


def test_image_folder_unknown_label_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "confused").mkdir()
    imsave(tmp_path / "confused" / "p1_a.png", np.zeros((8, 8)), cmap="gray")
    with pytest.raises(ValueError, match="confused"):
        load_faces(tmp_path)


def test_parse_source_knows_the_new_kinds(tmp_path: Path) -> None:
    for kind in ("wesad", "deap", "faces"):
        assert parse_source(f"{kind}:{tmp_path}") == (kind, tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        parse_source(f"wesad:{tmp_path / 'missing'}")
