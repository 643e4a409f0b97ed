"""The tools' chatter goes to the debug log; a failing step still shows what the tool said."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import pytest

from trainer.quiet import quiet


def chatter() -> None:
    print("python print")
    print("python stderr", file=sys.stderr)
    os.write(1, b"native stdout\n")
    os.write(2, b"native stderr\n")
    warnings.warn("a tool warning", UserWarning, stacklevel=1)


def test_output_of_a_quiet_step_is_logged_at_debug_not_printed(capfd, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="mmer.trainer.tools")
    with quiet("convert"):
        chatter()
    print("progress line")
    out, err = capfd.readouterr()
    assert out == "progress line\n" and err == ""
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    for text in (
        "python print",
        "python stderr",
        "native stdout",
        "native stderr",
        "UserWarning: a tool warning",
    ):
        assert f"[convert] {text}" in logged, (text, logged)


def test_a_failing_step_prints_what_the_tool_said_and_raises(capfd) -> None:
    with pytest.raises(RuntimeError, match="converter broke"), quiet("convert"):
        os.write(2, b"reason: unsupported op\n")
        raise RuntimeError("converter broke")
    _, err = capfd.readouterr()
    assert "[convert] output of the failed step:" in err and "reason: unsupported op" in err
