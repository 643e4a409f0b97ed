"""Label taxonomies and the mappings from public datasets' labels into them.

Every model scores one ordered label set so that scores can be fused; the set
travels as data in each model manifest. The default, `quadrants`, is the four
quadrants of the valence/arousal circumplex.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mmer.v1 import common_pb2


@dataclass(frozen=True)
class Taxonomy:
    """An ordered set of class labels; probability vectors are indexed in this order."""

    name: str
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.name or len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"taxonomy {self.name!r}: needs a name and at least two unique labels")

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        """Position of a label; ValueError naming the taxonomy if it is not in it."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise ValueError(
                f"taxonomy {self.name}: unknown label {label!r} (labels: {self.labels})"
            ) from None

    def to_proto(self) -> common_pb2.Taxonomy:
        return common_pb2.Taxonomy(name=self.name, labels=list(self.labels))

    @classmethod
    def from_proto(cls, msg: common_pb2.Taxonomy) -> Taxonomy:
        return cls(msg.name, tuple(msg.labels))


QUADRANTS = Taxonomy("quadrants", ("happy", "angry", "sad", "calm"))
TAXONOMIES = {QUADRANTS.name: QUADRANTS}

# Where each label sits on the circumplex: (valence sign, arousal sign).
QUADRANT_OF = {"happy": (1, 1), "angry": (-1, 1), "sad": (-1, -1), "calm": (1, -1)}

# Common emotion words (lower case) -> quadrant. The generic folder layouts and every
# dataset table below resolve through this one table.
EMOTION_WORDS: dict[str, str] = {
    "happy": "happy", "happiness": "happy", "joy": "happy", "joyful": "happy", "surprise": "happy",
    "surprised": "happy", "pleasant_surprise": "happy", "pleasant_surprised": "happy", "ps": "happy",
    "amusement": "happy", "amused": "happy", "excited": "happy", "excitement": "happy", "elated": "happy",
    "angry": "angry", "anger": "angry", "fear": "angry", "fearful": "angry", "afraid": "angry",
    "disgust": "angry", "disgusted": "angry", "stress": "angry", "stressed": "angry", "anxious": "angry",
    "anxiety": "angry", "frustrated": "angry", "frustration": "angry", "contempt": "angry",
    "contemptuous": "angry",
    "sad": "sad", "sadness": "sad", "boredom": "sad", "bored": "sad", "depressed": "sad", "tired": "sad",
    "calm": "calm", "neutral": "calm", "relaxed": "calm", "relaxation": "calm", "relax": "calm",
    "baseline": "calm", "meditation": "calm", "content": "calm", "contentment": "calm", "serene": "calm",
}  # fmt: skip

# Dataset label codes -> common emotion word.
DATASET_LABELS: dict[str, dict[str, str]] = {
    # RAVDESS file names: emotion field 01..08.
    "ravdess": {
        "01": "neutral",
        "02": "calm",
        "03": "happy",
        "04": "sad",
        "05": "angry",
        "06": "fearful",
        "07": "disgust",
        "08": "surprised",
    },
    # TESS file names end in the emotion word; "ps" is pleasant surprise.
    "tess": {w: w for w in ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")},
    # CREMA-D file names carry a three-letter emotion code.
    "crema-d": {
        "ANG": "angry",
        "DIS": "disgust",
        "FEA": "fear",
        "HAP": "happy",
        "NEU": "neutral",
        "SAD": "sad",
    },
    # EMO-DB file names: the German emotion word's initial.
    "emo-db": {
        "W": "anger",
        "L": "boredom",
        "E": "disgust",
        "A": "fear",
        "F": "happiness",
        "T": "sadness",
        "N": "neutral",
    },
    # EMOVO file names: the Italian emotion word's first three letters.
    "emovo": {
        "dis": "disgust",
        "gio": "joy",
        "neu": "neutral",
        "pau": "fear",
        "rab": "anger",
        "sor": "surprise",
        "tri": "sadness",
    },
    # SAVEE file names: the English emotion word's first letter (two for sadness and surprise).
    "savee": {
        "a": "anger",
        "d": "disgust",
        "f": "fear",
        "h": "happiness",
        "n": "neutral",
        "sa": "sadness",
        "su": "surprise",
    },
    # FER2013 csv: emotion column 0..6.
    "fer2013": {
        "0": "angry",
        "1": "disgust",
        "2": "fear",
        "3": "happy",
        "4": "sad",
        "5": "surprise",
        "6": "neutral",
    },
    # JAFFE file names: two-letter emotion code.
    "jaffe": {
        "AN": "angry",
        "DI": "disgust",
        "FE": "fear",
        "HA": "happy",
        "NE": "neutral",
        "SA": "sad",
        "SU": "surprise",
    },
    # KDEF file names: two-letter emotion code.
    "kdef": {
        "AF": "afraid",
        "AN": "angry",
        "DI": "disgusted",
        "HA": "happy",
        "NE": "neutral",
        "SA": "sad",
        "SU": "surprised",
    },
    # CK+ Emotion/*_emotion.txt: code 0..7 (0, neutral, is each sequence's first frame).
    "ck+": {
        "0": "neutral",
        "1": "anger",
        "2": "contempt",
        "3": "disgust",
        "4": "fear",
        "5": "happy",
        "6": "sadness",
        "7": "surprise",
    },
    # WESAD protocol labels 1..4 (0 and 5-7 are transient/undefined and must be dropped by the loader).
    "wesad": {"1": "baseline", "2": "stress", "3": "amusement", "4": "meditation"},
    # Empatica E4 studies such as Stress-Predict: labels.csv intervals.
    "e4": {"baseline": "baseline", "relax": "relaxed", "stress": "stress"},
}


def get_taxonomy(name: str) -> Taxonomy:
    """Look a taxonomy up by name."""
    try:
        return TAXONOMIES[name]
    except KeyError:
        raise ValueError(f"unknown taxonomy {name!r} (known: {sorted(TAXONOMIES)})") from None


def map_label(dataset: str, label: str | int, taxonomy: Taxonomy = QUADRANTS) -> str:
    """Map one dataset label (code or word) into the taxonomy; ValueError if it has no mapping.

    Integral floats (3.0, as a csv column read as float gives) count as the integer code.
    """
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    key = str(label).strip()
    if dataset == "generic":
        word = key.lower()
    elif dataset in DATASET_LABELS:
        table = DATASET_LABELS[dataset]
        candidates = (key, key.zfill(2), key.upper(), key.lower())
        word = next((table[c] for c in candidates if c in table), None)
        if word is None:
            word = key.lower() if key.lower() in table.values() else ""
        if not word:
            raise ValueError(f"{dataset}: unknown label {label!r} (known: {sorted(table)})")
    else:
        known = sorted([*DATASET_LABELS, "generic"])
        raise ValueError(f"unknown dataset {dataset!r} for label mapping (known: {known})")
    quadrant = EMOTION_WORDS.get(word.replace(" ", "_").replace("-", "_"))
    if quadrant is None:
        raise ValueError(f"{dataset}: label {label!r} maps to no {taxonomy.name} class")
    if quadrant not in taxonomy.labels:
        raise ValueError(f"{dataset}: label {label!r} -> {quadrant!r}, not in taxonomy {taxonomy.name}")
    return quadrant


def va_to_label(valence: float, arousal: float, midpoint: float) -> str:
    """Quadrant of a valence/arousal rating split at the scale midpoint (DEAP 1..9: 5; DREAMER 1..5: 3).

    A rating exactly at the midpoint counts as high, the usual convention in DEAP studies.
    A missing (NaN) rating is an error, not silently "low".
    """
    if not all(math.isfinite(v) for v in (valence, arousal, midpoint)):
        raise ValueError(f"va_to_label: ratings must be finite, got valence={valence} arousal={arousal}")
    high_v, high_a = valence >= midpoint, arousal >= midpoint
    if high_a:
        return "happy" if high_v else "angry"
    return "calm" if high_v else "sad"
