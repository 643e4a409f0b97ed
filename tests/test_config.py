"""Configuration: defaults, a TOML file, environment overrides, and clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mmer_core.config import _validate, load_config


def test_defaults_without_file_or_environment() -> None:
    config = load_config(env={})
    assert config.coordinator.listen == "127.0.0.1:50051"
    assert config.coordinator.fusion_window_s == 1.0
    assert config.node.drop_policy == "drop-oldest"
    assert config.trainer.methods == ["max", "percentile", "max-percentile", "entropy"]


def test_file_then_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "mmer.toml"
    path.write_text(
        '[coordinator]\nfusion_window_s = 2.0\nstrategy = "product"\n[coordinator.staleness_s]\nhr = 9\n'
        '[node]\nproviders = ["QNNExecutionProvider", "CPUExecutionProvider"]\n'
    )
    config = load_config(
        path, env={"MMER_COORDINATOR__STRATEGY": "vote", "MMER_COORDINATOR": "10.1.2.3:50051"}
    )
    assert config.coordinator.fusion_window_s == 2.0
    assert config.coordinator.strategy == "vote", "environment wins over the file"
    assert config.coordinator.staleness_s == {"hr": 9.0, "eeg": 3.0, "speech": 3.0, "image": 2.0}
    assert config.node.providers == ["QNNExecutionProvider", "CPUExecutionProvider"]
    assert config.node.coordinator == "10.1.2.3:50051"


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[trainer]\nseed = 42\n")
    assert load_config(env={"MMER_CONFIG": str(path)}).trainer.seed == 42


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MMER_COORDINATOR__FUSION_WINDOW_S": "abc"}, "MMER_COORDINATOR__FUSION_WINDOW_S: expected float"),
        ({"MMER_COORDINATOR__STRATEGY": "median"}, "not one of"),
        ({"MMER_NODE__NO_SUCH_KEY": "1"}, "unknown key 'no_such_key'"),
        ({"MMER_NOSECTION__KEY": "1"}, "unknown section"),
        ({"MMER_NODE__SPOOL_MAX_FRAMES": "-5"}, r"MMER_NODE__SPOOL_MAX_FRAMES: -5 is outside \[1, inf\)"),
        ({"MMER_TRAINER__SEED": "1.5"}, "expected int"),
        ({"MMER_TRAINER__SEED": "-1"}, "MMER_TRAINER__SEED: must not be negative"),
        ({"MMER_COORDINATOR__FUSION_WINDOW_S": "0"}, r"FUSION_WINDOW_S: 0.0 is outside \(0.0, inf\)"),
        ({"MMER_COORDINATOR__FUSION_WINDOW_S": "nan"}, "FUSION_WINDOW_S: must be a number, got nan"),
        ({"MMER_COORDINATOR__CLOCK_TOLERANCE_MS": "-inf"}, r"CLOCK_TOLERANCE_MS: -inf is outside"),
        ({"MMER_COORDINATOR__FUSION_WINDOW_S": "true"}, "FUSION_WINDOW_S: expected float"),
        ({"MMER_COORDINATOR__SMOOTHING_ALPHA": "1.0"}, r"SMOOTHING_ALPHA: 1.0 is outside \[0.0, 1.0\)"),
        ({"MMER_COORDINATOR__ROLLOUT_FRACTION": "0"}, "ROLLOUT_FRACTION: 0.0 is outside"),
        ({"MMER_COORDINATOR__MAX_MESSAGE_BYTES": "10"}, "MAX_MESSAGE_BYTES: 10 is outside"),
        ({"MMER_COORDINATOR__STALENESS_S": "{hr = -1}"}, r"STALENESS_S.hr: -1.0 is outside"),
        ({"MMER_COORDINATOR__STALENESS_S": "{gsr = 2}"}, "STALENESS_S: unknown modality 'gsr'"),
        ({"MMER_COORDINATOR__WEIGHTS": "{face = 2}"}, "WEIGHTS: unknown modality 'face'"),
        ({"MMER_COORDINATOR__WEIGHTS": "{eeg = -0.5}"}, "WEIGHTS.eeg: must not be negative, got -0.5"),
        ({"MMER_COORDINATOR__WEIGHTS": "{hr = 0, eeg = 0, speech = 0, image = 0}"}, "must not all be zero"),
        ({"MMER_COORDINATOR": "nonsense"}, "MMER_COORDINATOR: expected host:port with port 1..65535"),
        ({"MMER_COORDINATOR": "127.0.0.1:0"}, "MMER_COORDINATOR: expected host:port"),
        ({"MMER_LISTEN": "127.0.0.1:70000"}, "MMER_LISTEN: expected host:port"),
        ({"MMER_NODE__DROP_POLICY": "block"}, "DROP_POLICY: 'block' is not one of"),
        ({"MMER_NODE__PROVIDERS": "[]"}, "PROVIDERS: must not be empty"),
        ({"MMER_TRAINER__METHODS": "max,minmax"}, "METHODS: 'minmax' is not one of"),
        ({"MMER_TRAINER__PERCENTILE": "100.5"}, r"PERCENTILE: 100.5 is outside \(0.0, 100.0\]"),
        ({"MMER_JUNK": "1"}, "MMER_<SECTION>__<KEY>"),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config(env=env)


def test_environment_text_is_taken_verbatim() -> None:
    """Tokens and paths must not be read as TOML numbers or booleans."""
    config = load_config(
        env={"MMER_TOKEN": "1_000", "MMER_SPOOL": "true", "MMER_NODE__PROVIDERS": "QNNExecutionProvider, CPU"}
    )
    assert config.node.token == "1_000"
    assert config.node.spool == "true"
    assert config.node.providers == ["QNNExecutionProvider", "CPU"]
    assert load_config(env={"MMER_NODE__PROVIDERS": '["A", "B"]'}).node.providers == ["A", "B"]


@pytest.mark.parametrize(
    "address", ["127.0.0.1:50051", "[::1]:50051", "coordinator.example:443", "unix:/run/mmer.sock"]
)
def test_valid_addresses_are_accepted(address: str) -> None:
    assert load_config(env={"MMER_COORDINATOR": address}).node.coordinator == address
    assert load_config(env={"MMER_LISTEN": "0.0.0.0:0"}).coordinator.listen == "0.0.0.0:0"


def test_bad_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[coordinator]\nsubscriber_buffer = 'lots'\n")
    with pytest.raises(ValueError, match=r"bad.toml: coordinator.subscriber_buffer: expected int"):
        load_config(path, env={})
    path.write_text("[node]\nspool_max_frames = true\n")
    with pytest.raises(ValueError, match=r"bad.toml: node.spool_max_frames: expected int"):
        load_config(path, env={})
    path.write_text("[coordinator]\nlisten = 50051\n")
    with pytest.raises(ValueError, match=r"bad.toml: coordinator.listen: expected host:port"):
        load_config(path, env={})
    path.write_text("not toml at all [")
    with pytest.raises(ValueError, match="cannot read"):
        load_config(path, env={})


def test_every_default_passes_its_own_validation() -> None:
    config = load_config(env={})
    for section in dataclasses.fields(config):
        values = getattr(config, section.name)
        for key in dataclasses.fields(values):
            _validate((section.name, key.name), getattr(values, key.name), f"{section.name}.{key.name}")
