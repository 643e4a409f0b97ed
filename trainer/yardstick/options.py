"""What every kind's yardstick takes from the command line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class YardstickOptions:
    """folds: how many folds by person (None: the kind's default); quick: a tiny run for tests (few epochs,
    small references), whose figures mean nothing; workers: single-threaded processes that run folds at
    once (trainer.yardstick.workers; 0: every fold in this process, on its threads)."""

    folds: int | None = None
    seed: int = 7
    quick: bool = False
    workers: int = 0
