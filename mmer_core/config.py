"""Configuration in one place: defaults, then a TOML file, then MMER_* environment variables.

Every service reads its settings through `load_config`, so a value means the
same thing wherever it is set. Command-line flags override what this returns.
An environment variable names its key path: MMER_COORDINATOR__FUSION_WINDOW_S=2
sets [coordinator] fusion_window_s; a few common ones have short aliases
(MMER_COORDINATOR, MMER_STORE, MMER_TOKEN, ...). A table such as
[coordinator.staleness_s] sets the entries it names and keeps the other defaults.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mmer_core.fusion import DEFAULT_STRATEGY
from mmer_core.modalities import MODALITIES

ENV_PREFIX = "MMER_"
DEFAULT_GRPC = "127.0.0.1:50051"
DEFAULT_HTTP = "127.0.0.1:8080"


@dataclass(frozen=True)
class CoordinatorConfig:
    """The coordinator's settings; frozen, as every part of a running coordinator reads the same ones."""

    listen: str = DEFAULT_GRPC
    http: str = DEFAULT_HTTP
    store: str = "memory"
    fusion_window_s: float = 1.0
    fusion_grace_s: float = 0.05  # a window is fused this long after it ends unless complete earlier
    # A subject or device silent this long is forgotten: fusion's recent frames and smoothing of a subject, a
    # device's state in GetStats and its gauges; back, it starts afresh.
    idle_s: float = 600.0
    strategy: str = DEFAULT_STRATEGY
    smoothing_alpha: float = 0.0
    staleness_s: dict[str, float] = field(
        default_factory=lambda: {"hr": 5.0, "eeg": 3.0, "speech": 3.0, "image": 2.0}
    )
    # Fusion weight per modality; empty (the default): each model's validation accuracy from its manifest.
    weights: dict[str, float] = field(default_factory=dict)
    subscriber_buffer: int = 1024
    clock_tolerance_ms: float = 2000.0
    max_message_bytes: int = 4 * 1024 * 1024
    fused_stream_maxlen: int = 100_000
    # One frame (and fused emotion) in this many goes into the OpenTelemetry hop histograms, per modality
    # (as traces are sampled): recording one costs ~16 µs, more than validating and storing it. GetStats and
    # the dashboard count every frame; 1 records all.
    metrics_sample_every: int = 100
    rollout_fraction: float = 0.25
    auth: str = ""
    trainer_pubkey: str = ""

    @property
    def idle_check_s(self) -> float:
        """How often the coordinator looks for subjects and devices silent for idle_s: a tenth of it, at least
        every 10 s, so that what left is forgotten soon after idle_s without a sweep at every frame."""
        return min(self.idle_s / 10, 10.0)


@dataclass
class NodeConfig:
    """The edge node's settings."""

    coordinator: str = DEFAULT_GRPC
    spool: str = "mmer-spool"
    spool_max_frames: int = 100_000
    drop_policy: str = "drop-oldest"
    providers: list[str] = field(default_factory=lambda: ["CPUExecutionProvider"])
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    queue_max_windows: int = 64
    clock_sync_interval_s: float = 30.0
    token: str = ""


@dataclass
class TrainerConfig:
    """The trainer's settings."""

    out: str = "models"
    seed: int = 7
    methods: list[str] = field(default_factory=lambda: ["max", "percentile", "max-percentile", "entropy"])
    percentile: float = 99.999
    max_accuracy_drop_pp: float = 1.0
    calibration_windows: int = 256


@dataclass
class Config:
    """All settings of a deployment."""

    coordinator: CoordinatorConfig = field(default_factory=CoordinatorConfig)
    node: NodeConfig = field(default_factory=NodeConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


ALIASES = {
    "MMER_COORDINATOR": ("node", "coordinator"),
    "MMER_LISTEN": ("coordinator", "listen"),
    "MMER_HTTP": ("coordinator", "http"),
    "MMER_STORE": ("coordinator", "store"),
    "MMER_TOKEN": ("node", "token"),
    "MMER_SPOOL": ("node", "spool"),
}

QUANTIZATION_METHODS = ("max", "percentile", "max-percentile", "entropy")

CHOICES = {
    ("coordinator", "strategy"): ("weighted_mean", "product", "max", "vote", "confidence"),
    ("node", "drop_policy"): ("drop-oldest", "drop-newest"),
    ("trainer", "methods"): QUANTIZATION_METHODS,
}

# Numeric ranges (low, high, low inclusive, high inclusive); None leaves a side open. Numbers not listed
# here only have to be non-negative.
RANGES: dict[tuple[str, str], tuple[float | None, float | None, bool, bool]] = {
    ("coordinator", "fusion_window_s"): (0.0, None, False, False),
    ("coordinator", "fusion_grace_s"): (0.0, None, True, False),
    ("coordinator", "idle_s"): (0.0, None, False, False),
    ("coordinator", "staleness_s"): (0.0, None, False, False),
    ("coordinator", "smoothing_alpha"): (0.0, 1.0, True, False),
    ("coordinator", "subscriber_buffer"): (1, None, True, False),
    ("coordinator", "clock_tolerance_ms"): (0.0, None, False, False),
    ("coordinator", "max_message_bytes"): (1024, None, True, False),
    ("coordinator", "fused_stream_maxlen"): (1, None, True, False),
    ("coordinator", "metrics_sample_every"): (1, None, True, False),
    ("coordinator", "rollout_fraction"): (0.0, 1.0, False, True),
    ("node", "spool_max_frames"): (1, None, True, False),
    ("node", "queue_max_windows"): (1, None, True, False),
    ("node", "clock_sync_interval_s"): (0.0, None, False, False),
    ("trainer", "percentile"): (0.0, 100.0, False, True),
    ("trainer", "calibration_windows"): (1, None, True, False),
}

# host:port settings; a server may listen on port 0 (any free port), a client must name a real one.
ADDRESSES = {("coordinator", "listen"): 0, ("coordinator", "http"): 0, ("node", "coordinator"): 1}
# Per-modality tables: keys must be modality names.
MODALITY_TABLES = {("coordinator", "staleness_s"), ("coordinator", "weights")}
# Lists that must not be empty.
NON_EMPTY = {("node", "providers"), ("trainer", "methods")}


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Defaults, overridden by the TOML file (if given) and then by MMER_* variables."""
    env = os.environ if env is None else env
    config = Config()
    path = path or env.get("MMER_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"config {path}: cannot read ({exc})") from None
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ValueError(f"config {path}: [{section}] must be a table")
            for key, value in values.items():
                _set(config, (section, key), value, f"{path}: {section}.{key}")
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == "MMER_CONFIG":
            continue
        keys = ALIASES.get(name) or tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        if len(keys) != 2:
            raise ValueError(f"{name}: expected MMER_<SECTION>__<KEY>")
        _set(config, keys, _parse_env(config, keys, raw), name)
    return config


def _parse_env(config: Config, keys: tuple[str, ...], raw: str) -> object:
    """Text settings take the variable verbatim (a token "1_000" stays "1_000"); others read it as a TOML
    literal when it parses as one (numbers, booleans, ["lists"], {inline = tables})."""
    section = getattr(config, keys[0], None) if len(keys) == 2 else None
    if dataclasses.is_dataclass(section):
        hint = typing.get_type_hints(type(section)).get(keys[1])
        if hint is str or (hint == list[str] and not raw.lstrip().startswith("[")):
            return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _set(config: Config, keys: tuple[str, ...], value: object, where: str) -> None:
    section_name, key = keys
    section = getattr(config, section_name, None)
    if section is None or not dataclasses.is_dataclass(section):
        raise ValueError(f"{where}: unknown section {section_name!r}")
    fields = {f.name: f for f in dataclasses.fields(section)}
    if key not in fields:
        raise ValueError(f"{where}: unknown key {key!r} in [{section_name}] (known: {', '.join(fields)})")
    hint = typing.get_type_hints(type(section))[key]
    coerced = _coerce(value, hint, where)
    if isinstance(coerced, dict):
        # A table sets the entries it names; the other defaults stay (one modality's staleness, say).
        coerced = {**getattr(section, key), **coerced}
    _validate((section_name, key), coerced, where)
    setattr(config, section_name, dataclasses.replace(section, **{key: coerced}))  # sections may be frozen


def _validate(path: tuple[str, str], value: object, where: str) -> None:
    """Refuse values the services could not use, naming the key; ranges and choices are data above."""
    items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    allowed = CHOICES.get(path)
    if allowed:
        bad = [v for v in items if v not in allowed]
        if bad:
            raise ValueError(f"{where}: {bad[0]!r} is not one of {allowed}")
    if path in NON_EMPTY and not items:
        raise ValueError(f"{where}: must not be empty")
    if path in MODALITY_TABLES and isinstance(value, dict):
        unknown = sorted(set(value) - set(MODALITIES))
        if unknown:
            raise ValueError(f"{where}: unknown modality {unknown[0]!r} (known: {', '.join(MODALITIES)})")
    if path == ("coordinator", "weights") and set(value) >= set(MODALITIES) and not any(value.values()):
        raise ValueError(f"{where}: fusion weights must not all be zero")
    if path in ADDRESSES:
        _check_address(str(value), ADDRESSES[path], where)
    low, high, low_in, high_in = RANGES.get(path, (0, None, True, False))
    named = value.items() if isinstance(value, dict) else [(None, v) for v in items]
    for entry, v in named:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        here = where if entry is None else f"{where}.{entry}"
        too_low = low is not None and (v < low or (v == low and not low_in))
        too_high = high is not None and (v > high or (v == high and not high_in))
        if v != v:  # NaN
            raise ValueError(f"{here}: must be a number, got {v}")
        if too_low or too_high:
            if (low, high) == (0, None) and low_in:
                raise ValueError(f"{here}: must not be negative, got {v}")
            lo = "(-inf" if low is None else f"{'[' if low_in else '('}{low}"
            hi = "inf)" if high is None else f"{high}{']' if high_in else ')'}"
            raise ValueError(f"{here}: {v} is outside {lo}, {hi}")


def _check_address(address: str, min_port: int, where: str) -> None:
    """host:port ([v6]:port too); unix: socket paths pass as they are (gRPC accepts them)."""
    if address.startswith("unix:"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not min_port <= int(port) <= 65535:
        raise ValueError(f"{where}: expected host:port with port {min_port}..65535, got {address!r}")


def _coerce(value: object, hint: object, where: str) -> object:
    origin = typing.get_origin(hint)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a table, got {value!r}")
        _, vtype = typing.get_args(hint)
        return {str(k): _coerce(v, vtype, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        (itype,) = typing.get_args(hint)
        return [_coerce(v.strip() if isinstance(v, str) else v, itype, where) for v in items]
    if isinstance(hint, types.UnionType):
        hint = typing.get_args(hint)[0]
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            raise TypeError
        if hint in (int, float) and isinstance(value, bool):
            raise TypeError
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise TypeError
        return hint(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}") from None
