"""A committee for feature rows of few people: members early-stopped on disjoint groups of the training
people, their class probabilities averaged inside one model.

With tens of people, one model early-stopped on a fifth of them learns from four fifths only, and where it
stops depends on who those few validation people are. Member i of a committee of k is validated on the i-th
of k groups of people and trained on the others: every person teaches k-1 members, and the mean of their
probabilities averages out where each one stopped. The committee is one Keras model, exported and quantized
as any other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from trainer.models import balanced_class_weights, fit


def person_groups(persons: np.ndarray, members: int, seed: int) -> list[np.ndarray]:
    """The people each member validates on: the distinct people shuffled with `seed`, dealt into `members`
    groups (fewer when there are fewer people)."""
    if members < 2:
        raise ValueError(f"a committee needs at least 2 members, got {members}")
    distinct = np.unique(persons)
    if len(distinct) < 2:
        raise ValueError(f"a committee needs at least 2 people to validate on, got {len(distinct)}")
    shuffled = np.random.default_rng(seed).permutation(distinct)
    return np.array_split(shuffled, min(members, len(distinct)))


def fit_committee(
    build: Callable[[np.ndarray, int, str], object],
    x: np.ndarray,
    y: np.ndarray,
    persons: np.ndarray,
    members: int,
    epochs: int,
    seed: int,
    input_name: str,
    name: str,
    balanced: bool = False,
):
    """The committee's Keras model, named `name` with an input `input_name`: `build(training rows, seed,
    member name)` makes each member (a compiled model ending in a softmax), trained on the other groups' rows
    with early stopping on its group's (at most `epochs` epochs; classes weighed inversely to their frequency
    when `balanced`)."""
    import keras
    from keras import layers

    trained = []
    for i, group in enumerate(person_groups(persons, members, seed)):
        val = np.isin(persons, group)
        member = build(x[~val], seed + i, f"member_{i}")
        weights = balanced_class_weights(y[~val]) if balanced else None
        fit(member, x[~val], y[~val], x[val], y[val], epochs, seed + i, lambda _: None, class_weight=weights)
        trained.append(member)
    inputs = keras.Input(shape=x.shape[1:], name=input_name)
    outputs = [member(inputs) for member in trained]
    return keras.Model(inputs, layers.Average(name="probs")(outputs), name=name)
