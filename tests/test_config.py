"""Configuration: defaults, a TOML file, environment overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmer_core.config import load_config


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
    assert config.coordinator.staleness_s == {"hr": 9.0}
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
        ({"MMER_NODE__SPOOL_MAX_FRAMES": "-5"}, "must not be negative"),
        ({"MMER_TRAINER__SEED": "1.5"}, "expected int"),
        ({"MMER_JUNK": "1"}, "MMER_<SECTION>__<KEY>"),
    ],
)
def test_bad_values_name_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_config(env=env)


def test_bad_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[coordinator]\nsubscriber_buffer = 'lots'\n")
    with pytest.raises(ValueError, match=r"bad.toml: coordinator.subscriber_buffer: expected int"):
        load_config(path, env={})
    path.write_text("not toml at all [")
    with pytest.raises(ValueError, match="cannot read"):
        load_config(path, env={})
