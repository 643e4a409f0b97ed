"""Preprocessing for every modality, the one implementation both the edge node and the trainer use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mmer_core.modalities import get_spec
from mmer_core.preprocess import eeg, hr, image, speech
from mmer_core.preprocess.face_tracker import FaceTracker

_MODULES = {"hr": hr, "eeg": eeg, "speech": speech, "image": image}


def preprocess(modality: str, raw: object, faces: FaceTracker | None = None) -> np.ndarray:
    """One raw window -> float32 model input of the modality's input_shape; ValueError on bad input.

    A camera stream passes its FaceTracker (`faces`), so a frame's face is looked for where the last one
    was; without it each frame is searched whole, as independent pictures are."""
    get_spec(modality)
    if modality == "image" and faces is not None:
        return image.preprocess(raw, locate=faces.find)
    return _MODULES[modality].preprocess(raw)


def preprocess_batch(modality: str, raws: Sequence[object]) -> np.ndarray:
    """Many raw windows -> (N, *input_shape) float32, vectorised where the modality allows."""
    get_spec(modality)
    return _MODULES[modality].preprocess_batch(list(raws))


def check_model_input(modality: str, x: np.ndarray, params: Mapping[str, float]) -> None:
    """ValueError when a preprocessed window lacks what a model with these manifest params needs."""
    if modality == "hr":
        hr.check_channels(x, params)


def preprocess_kept(modality: str, raws: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """Like preprocess_batch, but frames without a face are left out instead of failing the batch: the
    preprocessed rows and the boolean mask of the raw windows they came from (all True for signals)."""
    get_spec(modality)
    if modality == "image":
        return image.preprocess_found(list(raws))
    return _MODULES[modality].preprocess_batch(list(raws)), np.ones(len(raws), bool)


def preprocessing_params(modality: str) -> dict[str, float]:
    """Every parameter the preprocessing uses, for the model manifest."""
    spec = get_spec(modality)
    return {**spec.params, "input_rank": float(len(spec.input_shape))}
