"""Which speech recordings a folder holds and what each one is: label, speaker, corpus and metadata.

Public corpora encode the emotion and the speaker in the file name, each in its
own scheme. One small function per scheme reads a name; it answers None when the
name is not of its scheme and raises a ValueError naming the file when it is but
carries a code the scheme does not define. Reading the audio is not done here:
the trainer and the edge's replay each turn these records into their own inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mmer_core.file_tree import files_below
from mmer_core.labelled_files import label_each, label_of

AUDIO_SUFFIXES = (".wav", ".flac")
# Whole file names, an audio suffix included.
AUDIO = r"\.(?i:" + "|".join(suffix[1:] for suffix in AUDIO_SUFFIXES) + ")$"
RAVDESS = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})" + AUDIO)
TESS = re.compile(r"^([A-Za-z]+)_([A-Za-z]+)_([A-Za-z]+)" + AUDIO)
TESS_EMOTIONS = {"angry", "disgust", "fear", "happy", "neutral", "ps", "sad"}
CREMA_D = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})" + AUDIO)
CREMA_D_LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
# EMO-DB (Berlin, German): speaker, text (a01..b10), emotion letter, version letter.
EMO_DB = re.compile(r"^(\d{2})([a-z]\d{2})([A-Z])([a-z])" + AUDIO)
# EMOVO (Italian): emotion, speaker, sentence.
EMOVO = re.compile(r"^([a-z]{3})-([fm]\d)-([a-z]+\d*)" + AUDIO)
# SAVEE (British English): speaker initials and emotion code with a number, flat (DC_sa01) or in a
# speaker's folder (DC/sa01).
SAVEE = re.compile(r"^(?:([A-Z]{2})_)?(sa|su|a|d|f|h|n)(\d{2})" + AUDIO)
SCHEME_NAMES = "RAVDESS, TESS, CREMA-D, EMO-DB, EMOVO, SAVEE nor <label>/<speaker>_<name>"


@dataclass(frozen=True)
class SpeechFile:
    """One labelled recording: its taxonomy label, its speaker within its corpus, and what else its name says."""

    path: Path
    label: str
    speaker: str
    corpus: str
    meta: dict[str, str] = field(default_factory=dict)


def ravdess(path: Path, root: Path, corpus: str) -> SpeechFile | None:
    """`MM-VV-EE-II-SS-RR-AA`: emotion EE, intensity II, statement SS, repetition RR, actor AA."""
    m = RAVDESS.match(path.name)
    if not m:
        return None
    modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
    meta = {
        "scheme": "ravdess",
        "emotion": emotion,
        "intensity": intensity,
        "statement": statement,
        "repetition": repetition,
        "channel": channel,
        "modality": modality,
    }
    return SpeechFile(path, label_of("ravdess", emotion, path), f"actor{actor}", corpus, meta)


def crema_d(path: Path, root: Path, corpus: str) -> SpeechFile | None:
    """`AAAA_SSS_EEE_LL`: actor AAAA, sentence SSS, emotion EEE, level LL (LO, MD, HI or XX)."""
    m = CREMA_D.match(path.name)
    if not m:
        return None
    actor, sentence, emotion, level = m.groups()
    if level not in CREMA_D_LEVELS:
        raise ValueError(f"{path}: CREMA-D level {level!r} is none of {', '.join(CREMA_D_LEVELS)}")
    meta = {"scheme": "crema-d", "emotion": emotion, "sentence": sentence, "level": level}
    return SpeechFile(path, label_of("crema-d", emotion, path), actor, corpus, meta)


def tess(path: Path, root: Path, corpus: str) -> SpeechFile | None:
    """`SPEAKER_word_emotion` (OAF_back_sad)."""
    m = TESS.match(path.name)
    if not m or m.group(3).lower() not in TESS_EMOTIONS:
        return None
    speaker, word, emotion = m.groups()
    meta = {"scheme": "tess", "emotion": emotion.lower(), "word": word}
    return SpeechFile(path, label_of("tess", emotion.lower(), path), speaker.upper(), corpus, meta)


def emo_db(path: Path, root: Path, corpus: str) -> SpeechFile | None:
    """`SSTTTEV` (03a01Fa): speaker SS, text TTT, emotion E (German initials: W Ärger, L Langeweile, E Ekel,
    A Angst, F Freude, T Trauer, N neutral), version V."""
    m = EMO_DB.match(path.name)
    if not m:
        return None
    speaker, text, emotion, version = m.groups()
    meta = {"scheme": "emo-db", "emotion": emotion, "text": text, "version": version}
    return SpeechFile(path, label_of("emo-db", emotion, path), speaker, corpus, meta)


def emovo(path: Path, root: Path, corpus: str) -> SpeechFile | None:
    """`EEE-SS-TT` (dis-f1-b1): emotion EEE (Italian: dis disgusto, gio gioia, neu, pau paura, rab rabbia,
    sor sorpresa, tri tristezza), speaker SS, sentence TT."""
    m = EMOVO.match(path.name)
    if not m:
        return None
    emotion, speaker, sentence = m.groups()
    meta = {"scheme": "emovo", "emotion": emotion, "sentence": sentence}
    return SpeechFile(path, label_of("emovo", emotion, path), speaker, corpus, meta)


def savee(path: Path, root: Path, corpus: str) -> SpeechFile | None:
    """`SS_EENN` or `SS/EENN` (DC_sa01, DC/sa01): speaker SS, emotion EE (a anger, d disgust, f fear,
    h happiness, n neutral, sa sadness, su surprise), number NN."""
    m = SAVEE.match(path.name)
    if not m:
        return None
    speaker, emotion, number = m.groups()
    if speaker is None:
        folder = path.parent.name
        if path.parent == root or not re.fullmatch(r"[A-Z]{2}", folder):
            return None
        speaker = folder
    meta = {"scheme": "savee", "emotion": emotion, "number": number}
    return SpeechFile(path, label_of("savee", emotion, path), speaker, corpus, meta)


def label_folders(path: Path, root: Path, corpus: str) -> SpeechFile | None:
    """`<label>/<speaker>_<name>`: the folder names the emotion, the name's first part the speaker."""
    rel = path.relative_to(root)
    if len(rel.parts) < 2 or "_" not in path.stem:
        return None
    meta = {"scheme": "label-folders", "emotion": rel.parts[-2]}
    return SpeechFile(
        path, label_of("generic", rel.parts[-2], path), path.stem.split("_", 1)[0], corpus, meta
    )


Scheme = Callable[[Path, Path, str], SpeechFile | None]
# Tried in this order; the first scheme that recognises a name labels the file.
SCHEMES: tuple[Scheme, ...] = (ravdess, crema_d, tess, emo_db, emovo, savee, label_folders)


def label_file(path: Path, root: Path, corpus: str = "") -> SpeechFile:
    """The record of one file below root; ValueError naming it when no scheme reads its name."""
    for scheme in SCHEMES:
        found = scheme(path, root, corpus)
        if found is not None:
            return found
    raise ValueError(f"{path}: name follows neither {SCHEME_NAMES}")


def find_speech_files(root: Path, corpus: str | None = None, skip_misnamed: bool = False) -> list[SpeechFile]:
    """Every .wav and .flac file below root, labelled by its name, in path order (other files are not audio).

    A name no scheme reads stops the search with an error naming the file; with
    skip_misnamed such files are left out instead, and one warning counts and
    names them all, so nothing goes missing unsaid. corpus defaults to root's name.
    """
    corpus = root.name if corpus is None else corpus
    paths = [p for p in files_below(root) if p.suffix.lower() in AUDIO_SUFFIXES]
    if not paths:
        raise ValueError(f"speech:{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
    return label_each(
        paths, lambda path: label_file(path, root, corpus), root, "speech", "audio files", skip_misnamed
    )
