"""Labelling every file of a data folder by its name: a code the dataset does not define is an error naming the
file; the first file that gives no label stops the load, or (when the user asks) such files are left out and one
warning counts and names them, so nothing goes missing unsaid."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from mmer_core.taxonomy import map_label

LOG = logging.getLogger(__name__)
T = TypeVar("T")


def label_each(
    paths: Sequence[Path], label: Callable[[Path], T], root: Path, kind: str, noun: str, skip_misnamed: bool
) -> list[T]:
    """label(path) of every path in order (a ValueError when it gives none); `kind:root` and `noun` ("audio
    files", "images") word the warning and the error when nothing is left."""
    found, skipped = [], []
    for path in paths:
        try:
            found.append(label(path))
        except ValueError:
            if not skip_misnamed:
                raise
            skipped.append(path)
    if skipped:
        names = ", ".join(str(p.relative_to(root)) for p in skipped)
        LOG.warning(
            "%s:%s: skipped %d of %d %s whose names give no label: %s",
            kind,
            root,
            len(skipped),
            len(paths),
            noun,
            names,
        )
    if not found:
        raise ValueError(f"{kind}:{root}: none of the {len(paths)} {noun} has a name that gives a label")
    return found


def label_of(dataset: str, code: str | float, path: Path) -> str:
    """The taxonomy label of a dataset's emotion code; ValueError naming the file when the code is unknown."""
    try:
        return map_label(dataset, code)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
