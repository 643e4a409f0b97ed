"""Labelling every file of a data folder by its name: the first file that gives no label stops the load with
an error naming it, or (when the user asks) such files are left out and one warning counts and names them, so
nothing goes missing unsaid."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

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
