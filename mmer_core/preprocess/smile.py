"""openSMILE functionals of one utterance through the opensmile wheel's own C API binding.

The `opensmile` package wraps libSMILEapi in a pandas-based interface whose import alone costs ~120 MB of
RSS, more than an edge node's whole budget. Its ctypes binding (`opensmile/core/lib.py`) needs only numpy,
so it is loaded on its own, and driven with the package's own config files exactly as
`opensmile.Smile.process_signal` drives it: same features, a fraction of the memory.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import threading
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np

FEATURE_SETS = {"eGeMAPSv02": "egemaps/v02/eGeMAPSv02.conf", "ComParE_2016": "compare/ComParE_2016.conf"}
SOURCE, SINK = "extsource", "extsink"
# how the levels before the functionals are buffered: grown as an utterance needs, from 1 s of frames
BUFFERS = Path(__file__).with_name("smile_buffers.conf.inc")
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _package_root() -> Path:
    spec = importlib.util.find_spec("opensmile")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("speech features need openSMILE: pip install 'mmer[speech]'")
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def _binding() -> ModuleType:
    """opensmile/core/lib.py loaded alone (it imports only ctypes and numpy), not the package around it."""
    _load_isolated(_package_root() / "core" / "bin")
    path = _package_root() / "core" / "lib.py"
    spec = importlib.util.spec_from_file_location("mmer_opensmile_lib", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"openSMILE binding not found at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_isolated(bin_dir: Path) -> None:
    """Load libSMILEapi so it binds its own symbols first (RTLD_DEEPBIND), before the binding loads it again
    (the loader then returns this handle). libSMILEapi and TensorFlow both export Ooura's FFT (`rdft`, `cdft`,
    `makewt`, ...) in different versions; in a process that already holds TensorFlow, openSMILE would call
    TensorFlow's and corrupt the heap."""
    if not hasattr(os, "RTLD_DEEPBIND"):
        return
    for library in bin_dir.glob(f"*_{platform.machine().lower()}/libSMILEapi.so"):
        ctypes.CDLL(str(library), mode=os.RTLD_DEEPBIND | os.RTLD_LOCAL)


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def _return_freed_memory() -> None:
    """Hand the pages openSMILE freed back to the OS: a ComParE run allocates ~13 MB that glibc would otherwise
    keep in the process (its heap top is rarely free), a tenth of an edge node's memory budget."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _options(sample_rate: int) -> dict[str, str | int]:
    config = _package_root() / "core" / "config"
    return {
        "source": str(config / "shared/standard_external_wave_input.conf.inc"),
        "sink": str(config / "shared/standard_external_data_output_single.conf.inc"),
        "sinkLevel": "func",
        "bufferModeRbConf": str(config / "shared/BufferModeRb.conf.inc"),
        "bufferModeConf": str(BUFFERS),
        "frameModeFunctionalsConf": str(config / "shared/FrameModeFunctionals.conf.inc"),
        "sampleRate": sample_rate,
        "nBits": 16,
    }


def functionals(x: np.ndarray, sample_rate: int, feature_set: str = "eGeMAPSv02") -> np.ndarray:
    """One row of the feature set's functionals over the whole signal (float32 in [-1, 1]); ValueError when
    openSMILE returns none (a signal too short for its frames)."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown openSMILE feature set {feature_set!r} (known: {', '.join(FEATURE_SETS)})")
    lib = _binding()
    pcm = (np.clip(np.asarray(x, dtype=np.float64), -1.0, 32767 / 32768) * 32768).astype(np.int16)
    rows: list[np.ndarray] = []
    with _lock:  # libSMILEapi keeps global state per process
        smile = lib.OpenSMILE()
        smile.initialize(
            config_file=str(_package_root() / "core" / "config" / FEATURE_SETS[feature_set]),
            options=_options(sample_rate),
            loglevel=0,
            log_file=None,
            debug=False,
        )
        try:
            smile.external_sink_set_callback_ex(SINK, lambda data, meta: rows.append(data.copy()))
            smile.external_audio_source_write_data(SOURCE, pcm.tobytes())
            smile.external_audio_source_set_eoi(SOURCE)
            smile.run()
        finally:
            smile.free()
            _return_freed_memory()
    if not rows:
        raise ValueError(
            f"speech: {len(pcm)} samples are too short for openSMILE's {feature_set} functionals"
        )
    return np.asarray(rows[-1], dtype=np.float32).reshape(-1)
