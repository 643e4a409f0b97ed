"""A data folder assembled from links reads as its copy would: the speech and face loaders find their
files through linked folders, and a link back up the tree does not loop."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import soundfile

from mmer_core.file_tree import files_below
from mmer_core.speech_files import find_speech_files
from testkit.face_folders import EXPRESSIONS, write_face_folder
from testkit.speech_audio import voiced
from trainer.loaders.faces import load_image_folders

RATE = 16000


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_linked_folders_are_followed_and_paths_keep_the_link_names(tmp_path: Path) -> None:
    store = tmp_path / "store"
    touch(store / "A" / "x.wav")
    touch(store / "B" / "deep" / "y.wav")
    touch(store / "C" / "z.wav")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "A").symlink_to(store / "A")
    (corpus / "B2").symlink_to(store / "B")
    touch(corpus / "own.wav")
    assert files_below(corpus) == [
        corpus / "A" / "x.wav",
        corpus / "B2" / "deep" / "y.wav",
        corpus / "own.wav",
    ]


def test_a_link_back_up_the_tree_reads_each_folder_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    touch(root / "a" / "x.wav")
    (root / "a" / "up").symlink_to(root)
    (root / "again").symlink_to(root / "a")
    found = files_below(root)
    assert len(found) == 1 and found[0].name == "x.wav", found


def test_the_pattern_matches_names_of_files_only_and_case_sensitively(tmp_path: Path) -> None:
    touch(tmp_path / "s01.dat")
    touch(tmp_path / "S02.dat")
    touch(tmp_path / "sub" / "s03.dat")
    (tmp_path / "s04.dat").mkdir()
    assert files_below(tmp_path, "s*.dat") == [tmp_path / "s01.dat", tmp_path / "sub" / "s03.dat"]
    assert files_below(tmp_path / "missing") == []


def test_a_speech_corpus_of_linked_actor_folders_loads_every_clip(tmp_path: Path) -> None:
    store = tmp_path / "ravdess"
    for actor in (1, 2, 3):
        for emotion in (1, 5):  # neutral -> calm, angry -> angry
            path = store / f"Actor_{actor:02d}" / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(path), voiced(0.5, 200.0, 0.4, RATE), RATE, subtype="PCM_16")
    held_back = tmp_path / "held-back"
    held_back.mkdir()
    for actor in (2, 3):
        (held_back / f"Actor_{actor:02d}").symlink_to(store / f"Actor_{actor:02d}")
    files = find_speech_files(held_back)
    assert Counter(f.speaker for f in files) == {"actor02": 2, "actor03": 2}
    assert Counter(f.label for f in files) == {"calm": 2, "angry": 2}


def test_a_face_folder_of_linked_label_folders_loads_every_image(tmp_path: Path) -> None:
    store = write_face_folder(tmp_path / "faces", persons=2, per_label=2)
    linked = tmp_path / "linked"
    linked.mkdir()
    for label in EXPRESSIONS:
        (linked / label).symlink_to(store / label)
    with_links, copied = load_image_folders(linked), load_image_folders(store)
    assert len(with_links.y) > 0
    assert sorted(with_links.subjects) == sorted(copied.subjects)
    assert sorted(with_links.y.tolist()) == sorted(copied.y.tolist())
