"""Which face images a folder holds, who is in each and what it shows, in the layouts face sets ship in.

Face-expression sets name emotion and person each in their own way. One small function per layout reads an
image's path; it answers None when the path is not of its layout and raises a ValueError naming the file when
it is but carries a code the layout does not define:

- JAFFE: `KA.AN1.39.tiff` (person KA, emotion AN, take 1, picture 39), in one flat folder;
- KDEF: `AF01ANS.JPG` (session A, woman 01, emotion AN, straight view S), usually in a folder per session and
  person; a person is their sex and number (AF01 and BF01 are one woman on two days);
- RaFD: `Rafd090_01_Caucasian_female_angry_frontal.jpg` (camera angle 090, person 01, emotion word, gaze);
- image folders: `<label>/<person>_<name>.png`, the folder an emotion word, or a `persons.csv` naming the
  person in each file (trainer.loaders.faces).

CK+ is a layout of folders rather than names: `cohn-kanade-images/S005/001/S005_001_00000011.png`, with the
emotion of a sequence's last (peak) frame in `Emotion/S005/001/S005_001_00000011_emotion.txt`. Its images are
each labelled sequence's peak frame, with the sequence's emotion, and its first frame, which shows the same
person before the expression starts (neutral), the usual way CK+ is read; unlabelled sequences are not used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mmer_core.file_tree import files_below
from mmer_core.labelled_files import label_of

JAFFE = re.compile(r"^([A-Z]{2})\.([A-Z]{2})\d*\.\d+\.(?i:tiff?)$")
RAFD = re.compile(r"^Rafd(\d{3})_(\d{2})_([A-Za-z]+)_([A-Za-z]+)_([a-z]+)_([a-z]+)\.(?i:jpe?g|png)$")
KDEF = re.compile(r"^([AB])([FM])(\d{2})([A-Z]{2})(S|HL|HR|FL|FR)\.(?i:jpe?g)$")
CK_IMAGES, CK_EMOTION = "cohn-kanade-images", "Emotion"
CK_LABEL_SUFFIX = "_emotion.txt"


@dataclass(frozen=True)
class FaceFile:
    """One labelled picture: its taxonomy label and the person in it."""

    path: Path
    label: str
    person: str


def jaffe(path: Path) -> FaceFile | None:
    """`PP.EEn.N.tiff`: person PP, emotion EE (AN, DI, FE, HA, NE, SA, SU), take n, picture number N."""
    m = JAFFE.match(path.name)
    if not m:
        return None
    person, emotion = m.groups()
    return FaceFile(path, label_of("jaffe", emotion, path), person)


def kdef(path: Path) -> FaceFile | None:
    """`SXNNEEV.JPG`: session S (A, B), sex X (F, M), number NN, emotion EE (AF, AN, DI, HA, NE, SA, SU),
    view V (S straight, HL/HR half, FL/FR full profile: the face finder leaves out the faces it cannot see)."""
    m = KDEF.match(path.name)
    if not m:
        return None
    _, sex, number, emotion, _ = m.groups()
    return FaceFile(path, label_of("kdef", emotion, path), f"{sex}{number}")


def rafd(path: Path) -> FaceFile | None:
    """`RafdAAA_NN_Group_sex_emotion_gaze.jpg`: camera angle AAA (090 frontal; profiles are left out by the face
    finder), person NN within Group, emotion word (angry, contemptuous, ..., surprised), gaze."""
    m = RAFD.match(path.name)
    if not m:
        return None
    _, number, group, _, emotion, _ = m.groups()
    return FaceFile(path, label_of("generic", emotion, path), f"{group.lower()}{number}")


NAMED_LAYOUTS = (jaffe, kdef, rafd)


def is_ck_plus(root: Path) -> bool:
    """True for a CK+ folder: it holds both `cohn-kanade-images` and `Emotion`."""
    return (root / CK_IMAGES).is_dir() and (root / CK_EMOTION).is_dir()


def ck_plus(root: Path) -> list[FaceFile]:
    """Each labelled CK+ sequence's peak frame (its emotion) and first frame (neutral), in path order;
    ValueError naming the file for an unreadable label, an unknown code or a missing image."""
    out = []
    for label_file in files_below(root / CK_EMOTION, f"*{CK_LABEL_SUFFIX}"):
        sequence = label_file.parent.relative_to(root / CK_EMOTION)
        frames = sorted((root / CK_IMAGES / sequence).glob("*.png"))
        peak = root / CK_IMAGES / sequence / (label_file.name.removesuffix(CK_LABEL_SUFFIX) + ".png")
        if peak not in frames:
            raise ValueError(f"faces:{label_file}: its image {peak} is missing")
        try:
            code = float(label_file.read_text().split()[0])
        except (IndexError, ValueError):
            raise ValueError(f"faces:{label_file}: expected one emotion code (0-7)") from None
        person = sequence.parts[0]
        out.append(FaceFile(peak, label_of("ck+", code, label_file), person))
        if frames[0] != peak:
            out.append(FaceFile(frames[0], label_of("ck+", 0, label_file), person))
    if not out:
        raise ValueError(f"faces:{root}: a CK+ folder without any {CK_EMOTION}/**/*{CK_LABEL_SUFFIX}")
    return sorted(out, key=lambda f: f.path)
