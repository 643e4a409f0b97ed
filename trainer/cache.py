"""Where the trainer caches features it computed from recordings: `$XDG_CACHE_HOME/mmer/KIND`
(`~/.cache/mmer/KIND` by default), the standard place, outside the project and never shipped.

An entry's key covers the files it was computed from (path, size, modification time), the parameters, and
the source of the code that computed it, so a changed recording, parameter or feature is computed again
and never served stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np


def cache_dir(kind: str) -> Path:
    """The cache folder of one kind of features (e.g. "speech", "e4")."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmer" / kind


def cache_key(files: Iterable[Path], code: Sequence[ModuleType], params: object) -> str:
    """A short hash of the files' identities, the code modules' source and JSON-able parameters."""
    described = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]
    sources = [hashlib.sha256(Path(str(m.__file__)).read_bytes()).hexdigest() for m in code]
    return hashlib.sha256(json.dumps([sources, described, params]).encode()).hexdigest()[:16]


def cached_arrays(path: Path, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays stored at path, or computed and stored there first; written to a temporary file and renamed,
    so a reader (another process) never sees half an entry."""
    if path.is_file():
        with np.load(path) as npz:
            return {name: npz[name] for name in npz.files}
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays
