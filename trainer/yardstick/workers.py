"""Independent jobs of a yardstick (a fold's trainings and scores, a session's windows) spread over worker
processes, one per core.

A fold's models are small: TensorFlow, OpenBLAS and OpenMP gain next to nothing from a second thread on them,
so each worker computes with one thread and two folds at once keep two cores busy. Workers are spawned, never
forked (TensorFlow and openSMILE are not fork-safe), and live as long as the process, so each imports
TensorFlow once. Results come back in the order of the jobs; every job seeds its own trainings, so the
figures do not depend on which worker ran which job.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")

# read by OpenMP, OpenBLAS and MKL when they load, and by trainer.tf_setup for TensorFlow
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}
_pools: dict[int, ProcessPoolExecutor] = {}


def default_workers() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_jobs(job: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """job(item) for every item, in order: in this process when workers <= 1 or there is one item, else in
    `workers` single-threaded worker processes (job and items must pickle)."""
    if workers <= 1 or len(items) <= 1:
        with threadpool_limits(1):
            return [job(item) for item in items]
    pool = _pools.get(workers)
    if pool is None:
        context = multiprocessing.get_context("spawn")
        pool = _pools[workers] = ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread)
    return list(pool.map(_call, [job] * len(items), items))


def _one_thread() -> None:
    os.environ.update(ONE_THREAD)
    threadpool_limits(1)


def _call(job: Callable[[T], R], item: T) -> R:
    with threadpool_limits(1):
        return job(item)
