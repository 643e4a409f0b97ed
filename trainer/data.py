"""Labelled, preprocessed data for the trainer, and the splits it is judged on.

Every source ends as windows preprocessed by mmer_core.preprocess, exactly as
the edge node will preprocess live windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmer_core import wearer_baseline
from mmer_core.preprocess import preprocess_kept
from mmer_core.synthetic import NoiseConfig, make_windows
from mmer_core.taxonomy import QUADRANTS, Taxonomy


@dataclass(frozen=True)
class Dataset:
    """Preprocessed windows of one modality with labels, subject ids and window end times."""

    modality: str
    x: np.ndarray
    y: np.ndarray
    subjects: np.ndarray
    t_end: np.ndarray
    description: str
    taxonomy: Taxonomy = QUADRANTS
    units: np.ndarray | None = None  # the recording each row came from, where rows are parts of one (speech)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, mask: np.ndarray) -> Dataset:
        """The rows selected by a boolean mask or index array."""
        return Dataset(
            self.modality,
            self.x[mask],
            self.y[mask],
            self.subjects[mask],
            self.t_end[mask],
            self.description,
            self.taxonomy,
            None if self.units is None else self.units[mask],
        )


CORPUS_SEPARATOR = "/"


def combine(corpora: dict[str, Dataset]) -> Dataset:
    """Several corpora of one modality as one Dataset whose subjects are `<corpus>/<subject>`: two corpora that
    both have a speaker "01" keep two people, and every split by subject stays a split by person."""
    if not corpora:
        raise ValueError("combine: no corpora")
    for name in corpora:
        if not name or CORPUS_SEPARATOR in name:
            raise ValueError(f"corpus name {name!r}: must be non-empty and without {CORPUS_SEPARATOR!r}")
    first = next(iter(corpora.values()))
    for name, d in corpora.items():
        if d.modality != first.modality or d.taxonomy != first.taxonomy or d.x.shape[1:] != first.x.shape[1:]:
            raise ValueError(
                f"corpus {name}: {d.modality} {d.x.shape[1:]} does not match {first.modality} "
                f"{first.x.shape[1:]} with the same taxonomy"
            )
    parts = list(corpora.values())
    subjects = [
        np.char.add(f"{name}{CORPUS_SEPARATOR}", d.subjects.astype(str)) for name, d in corpora.items()
    ]
    return Dataset(
        first.modality,
        np.concatenate([d.x for d in parts]),
        np.concatenate([d.y for d in parts]),
        np.concatenate(subjects),
        np.concatenate([d.t_end for d in parts]),
        " + ".join(d.description for d in parts),
        first.taxonomy,
    )


def corpus_of(subjects: np.ndarray) -> np.ndarray:
    """The corpus of each `<corpus>/<subject>` (empty for a subject named outside any corpus)."""
    named = [str(s).partition(CORPUS_SEPARATOR) for s in subjects]
    return np.array([corpus if sep else "" for corpus, sep, _ in named], dtype=str)


@dataclass(frozen=True)
class SyntheticPlan:
    """How much synthetic data to make: subjects, seconds each, and per-modality window strides."""

    n_subjects: int = 16
    seconds: float = 300.0
    seed: int = 7
    strides: tuple[tuple[str, int], ...] = (("hr", 1), ("eeg", 2), ("speech", 1), ("image", 5))
    noise: NoiseConfig = field(default_factory=NoiseConfig)


def synthetic(modality: str, plan: SyntheticPlan) -> Dataset:
    """Synthetic windows of one modality, preprocessed."""
    stride = dict(plan.strides)[modality]
    raw = make_windows(modality, plan.n_subjects, plan.seconds, plan.seed, plan.noise, stride=stride)
    if modality == "speech":  # openSMILE in child processes (trainer.loaders.utterances.in_child_processes)
        from trainer.loaders.utterances import features_of

        x, kept = features_of(raw.windows), np.ones(len(raw.windows), bool)
    else:
        x, kept = preprocess_kept(modality, raw.windows)
    left_out = f", {int((~kept).sum())} frames without a face left out" if not kept.all() else ""
    return Dataset(
        modality,
        x,
        raw.labels[kept],
        raw.subjects[kept],
        raw.t_end[kept],
        f"synthetic seed={plan.seed} subjects={plan.n_subjects} seconds={plan.seconds:g}{left_out}",
    )


@dataclass(frozen=True)
class Split:
    """Train, validation and test parts, and how they were made."""

    train: Dataset
    val: Dataset
    test: Dataset
    kind: str


def relative_to_wearers(
    data: Dataset, warmup: int, horizon: int = wearer_baseline.DEFAULT_HORIZON, levels: bool = False
) -> tuple[Dataset, np.ndarray]:
    """Feature vectors relative to each subject's running baseline, as the edge computes it (followed by the
    absolute features when levels), and the mask of the rows kept: the windows of each subject's calibration
    period are dropped, as the edge does not score them. Loaders give each subject's windows in recording
    order, which is the order the baseline sees them in."""
    x, scored = wearer_baseline.relative_to_wearers(data.x, data.subjects, warmup, horizon, levels)
    relative = Dataset(
        data.modality, x, data.y, data.subjects, data.t_end, data.description, data.taxonomy, data.units
    )
    return relative.take(scored), scored


def split(
    data: Dataset, kind: str = "subject-independent", seed: int = 7, test: float = 0.25, val: float = 0.2
) -> Split:
    """Subject-independent (whole subjects held out: the honest split) or random window split.

    Subject-independent splits deal each corpus's subjects into the parts on
    their own, with the same seed for each, so every corpus of three or more
    people has people in each part and its own figures on unseen people, and
    they are the same people whether it is trained alone or beside other
    corpora; a smaller corpus trains only.
    """
    if kind == "subject-independent":
        if len(np.unique(data.subjects)) < 3:
            raise ValueError(
                f"{data.modality}: a subject-independent split needs >= 3 subjects, got {len(np.unique(data.subjects))}"
            )
        corpora = corpus_of(data.subjects)
        test_mask = np.zeros(len(data), bool)
        val_mask = np.zeros(len(data), bool)
        for corpus in np.unique(corpora):
            subjects = np.unique(data.subjects[corpora == corpus])
            if len(subjects) < 3:
                continue
            n_test = max(1, round(test * len(subjects)))
            n_val = max(1, round(val * len(subjects)))
            order = _subject_order(data, subjects, n_test, n_val, np.random.default_rng(seed))
            test_mask |= np.isin(data.subjects, order[:n_test])
            val_mask |= np.isin(data.subjects, order[n_test : n_test + n_val])
    elif kind == "random":
        u = np.random.default_rng(seed).random(len(data))
        test_mask, val_mask = u < test, (u >= test) & (u < test + val)
    else:
        raise ValueError(f"unknown split {kind!r} (subject-independent or random)")
    train_mask = ~test_mask & ~val_mask
    for name, mask in (("train", train_mask), ("validation", val_mask), ("test", test_mask)):
        if not mask.any():
            raise ValueError(f"{data.modality}: the {name} part of the {kind} split is empty")
    return Split(data.take(train_mask), data.take(val_mask), data.take(test_mask), kind)


SPLIT_CANDIDATES = 200


def _subject_order(
    data: Dataset, subjects: np.ndarray, n_test: int, n_val: int, rng: np.random.Generator
) -> np.ndarray:
    """A seeded order of subjects (test first, then validation, then train) whose parts see every class.

    With few subjects, each carrying only some emotions, a label-blind draw can
    leave a class out of training or out of the test set: on the --fast data
    the test subjects had none of training's majority class and image scored
    0.000. Among seeded random orders the first that misses the fewest classes
    per part wins. Only which classes a subject has counts, never how many
    windows: modalities of the same subjects then get the same split, which
    fusion needs, and when the first draw covers every class nothing changes.
    """
    has = {s: set(np.unique(data.y[data.subjects == s]).tolist()) for s in subjects}
    classes = set().union(*has.values())

    def missing(order: np.ndarray) -> tuple[int, int, int]:
        parts = (order[n_test + n_val :], order[:n_test], order[n_test : n_test + n_val])
        return tuple(len(classes - set().union(*(has[s] for s in part))) for part in parts)  # type: ignore[return-value]

    best = rng.permutation(subjects)
    for _ in range(SPLIT_CANDIDATES - 1):
        if missing(best) == (0, 0, 0):
            break
        candidate = rng.permutation(subjects)
        if missing(candidate) < missing(best):
            best = candidate
    return best
