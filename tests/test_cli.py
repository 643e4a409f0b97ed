"""The `mmer` console script lists and explains its subcommands."""

from __future__ import annotations

import subprocess
import sys

from mmer_cli import dispatch as cli


def test_help_lists_every_subcommand() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mmer_cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in cli.SUBCOMMANDS:
        assert name in out
    assert "edge node" in out and "coordinator" in out


def test_missing_subcommand_is_an_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "mmer_cli"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "COMMAND" in proc.stderr
