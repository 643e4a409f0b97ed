"""What `mmer trainer pipeline` trains on each kind of real data unless told otherwise: the recipe the kind's
yardstick (trainer/yardstick/<kind>.py) measures, so the bundle a user pushes is the one that was measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.recipes import SPEECH


@dataclass(frozen=True)
class KindRecipe:
    """class_weights: "balanced" weighs the loss by inverse class frequency; wearer_baseline: calibration
    windows of the per-wearer feature baseline (0: none); wearer_levels: the model also takes the absolute
    features after the relative ones; epochs: at most, early stopping decides (speech: all of them)."""

    class_weights: str = "none"
    wearer_baseline: int = 0
    epochs: int = 30
    wearer_levels: bool = False


# Face sets are rarely balanced (CK+: few fearful or sad); one picture at a time, no wearer baseline.
# DEAP: the EEG features relative to the wearer's running baseline after one minute (30 windows of 2 s):
# EEG levels differ far more between heads and electrode fits than between emotions.
# Augmented face crops are new every epoch, so a face CNN trains longer before validation loss stops falling
# (or the face recipe ships its kernel model instead: trainer.face_recipe).
# Speech: trainer.recipes.SPEECH (utterance functionals relative to the speaker's running baseline and
# absolute, per-corpus experts mixed by a corpus gate, a fixed number of epochs), measured by
# trainer/yardstick/speech.py.
RECIPES = {
    "faces": KindRecipe("balanced", 0, 80),
    "deap": KindRecipe("balanced", 30, 60),
    "speech": KindRecipe("balanced", SPEECH.warmup, SPEECH.epochs, wearer_levels=True),
}


def recipe(kind: str) -> KindRecipe:
    """The kind's recipe; the plain one (unweighted, no wearer baseline) for kinds without their own."""
    return RECIPES.get(kind, KindRecipe())
