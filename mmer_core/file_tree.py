"""The files below a data folder, with folders that are symbolic links followed.

A corpus is often assembled from links (a folder of links to some speakers' folders, a dataset kept by
git-annex or DVC); it must read as its copy would. pathlib's rglob before Python 3.13 does not descend into
linked folders, so such a corpus looked empty or half there. Each real folder is read once, so a link back
up the tree ends the walk instead of repeating it.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path


def files_below(root: Path, pattern: str = "*") -> list[Path]:
    """Every file below root (at any depth) whose name matches `pattern` (case-sensitive, as glob), in path
    order; each path goes through the link names as found below root, so parent folders still name speakers,
    labels or sequences."""
    found: list[Path] = []
    seen: set[str] = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders.sort()
        found += [
            Path(folder, name)
            for name in names
            if fnmatch.fnmatchcase(name, pattern) and os.path.isfile(os.path.join(folder, name))
        ]
    return sorted(found)
