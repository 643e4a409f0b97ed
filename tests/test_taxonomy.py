"""Label mappings from every named dataset into the quadrant taxonomy."""

from __future__ import annotations

import numpy as np
import pytest

from mmer.v1 import common_pb2
from mmer_core.taxonomy import QUADRANTS, Taxonomy, get_taxonomy, map_label, va_to_label

CASES = {
    "ravdess": {
        "01": "calm",
        "02": "calm",
        "03": "happy",
        "04": "sad",
        "05": "angry",
        "06": "angry",
        "07": "angry",
        "08": "happy",
        3: "happy",
        "fearful": "angry",
        "surprised": "happy",
    },
    "tess": {
        "angry": "angry",
        "disgust": "angry",
        "fear": "angry",
        "happy": "happy",
        "neutral": "calm",
        "ps": "happy",
        "sad": "sad",
    },
    "crema-d": {"ANG": "angry", "DIS": "angry", "FEA": "angry", "HAP": "happy", "NEU": "calm", "SAD": "sad"},
    "fer2013": {0: "angry", 1: "angry", 2: "angry", 3: "happy", 4: "sad", 5: "happy", 6: "calm"},
    "wesad": {
        1: "calm",
        2: "angry",
        3: "happy",
        4: "calm",
        "baseline": "calm",
        "stress": "angry",
        "amusement": "happy",
        "meditation": "calm",
    },
    "e4": {"baseline": "calm", "stress": "angry", "relax": "calm"},
    "generic": {
        "anger": "angry",
        "Fear": "angry",
        "joy": "happy",
        "happiness": "happy",
        "surprise": "happy",
        "sadness": "sad",
        "boredom": "sad",
        "bored": "sad",
        "neutral": "calm",
        "calm": "calm",
        "disgust": "angry",
        "relaxed": "calm",
        "stress": "angry",
        "amusement": "happy",
        "contentment": "calm",
        "surprised": "happy",
        "fearful": "angry",
        "sad": "sad",
    },
}


@pytest.mark.parametrize("dataset", sorted(CASES))
def test_dataset_labels_map_to_quadrants(dataset: str) -> None:
    for label, expected in CASES[dataset].items():
        assert map_label(dataset, label) == expected, (dataset, label)


@pytest.mark.parametrize(("label", "expected"), [(3.0, "happy"), (np.int64(6), "calm"), (" 4 ", "sad")])
def test_numeric_codes_from_csv_columns(label: object, expected: str) -> None:
    assert map_label("fer2013", label) == expected


@pytest.mark.parametrize(
    ("dataset", "label"),
    [
        ("ravdess", "09"),
        ("fer2013", 7),
        ("fer2013", 2.5),
        ("wesad", 0),
        ("crema-d", "XYZ"),
        ("tess", "bored"),
        ("e4", "amusement"),
        ("generic", "meh"),
    ],
)
def test_unknown_label_is_a_clear_error(dataset: str, label: object) -> None:
    with pytest.raises(ValueError, match=dataset):
        map_label(dataset, label)


def test_unknown_dataset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'affectnet'"):
        map_label("affectnet", "happy")


@pytest.mark.parametrize(
    ("valence", "arousal", "midpoint", "expected"),
    [
        (7, 8, 5, "happy"),
        (2, 8, 5, "angry"),
        (2, 2, 5, "sad"),
        (8, 2, 5, "calm"),
        (5, 5, 5, "happy"),
        (4, 1, 3, "calm"),
        (1, 4, 3, "angry"),
    ],
)
def test_deap_and_dreamer_ratings_split_at_midpoint(valence, arousal, midpoint, expected) -> None:
    assert va_to_label(valence, arousal, midpoint) == expected


@pytest.mark.parametrize(("valence", "arousal"), [(float("nan"), 5.0), (5.0, float("inf"))])
def test_missing_ratings_are_refused(valence: float, arousal: float) -> None:
    with pytest.raises(ValueError, match="va_to_label: ratings must be finite"):
        va_to_label(valence, arousal, 5)


def test_taxonomy_is_data_and_round_trips() -> None:
    assert QUADRANTS.labels == ("happy", "angry", "sad", "calm")
    assert QUADRANTS.index("sad") == 2
    assert Taxonomy.from_proto(QUADRANTS.to_proto()) == QUADRANTS
    assert isinstance(QUADRANTS.to_proto(), common_pb2.Taxonomy)
    assert get_taxonomy("quadrants") is QUADRANTS
    with pytest.raises(ValueError, match="unknown label 'bored'"):
        QUADRANTS.index("bored")
    with pytest.raises(ValueError, match="unknown taxonomy"):
        get_taxonomy("ekman")
    with pytest.raises(ValueError, match="unique"):
        Taxonomy("dup", ("a", "a"))
