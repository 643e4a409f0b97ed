"""Where the trainer caches features it computed from recordings: `$XDG_CACHE_HOME/mmer/KIND`
(`~/.cache/mmer/KIND` by default), the standard place, outside the project and never shipped."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """The cache folder of one kind of features (e.g. "speech", "e4")."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmer" / kind
