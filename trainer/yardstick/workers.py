"""Independent jobs of a yardstick (a fold's trainings and scores, a session's windows) spread over worker
processes, one per core.

A fold's models are small: TensorFlow, OpenBLAS and OpenMP gain next to nothing from a second thread on them,
so each worker computes with one thread and two folds at once keep two cores busy. Workers are spawned, never
forked (TensorFlow and openSMILE are not fork-safe), and live as long as the process, so each imports
TensorFlow once. Results come back in the order of the jobs; every job seeds its own trainings, so the
figures do not depend on which worker ran which job, nor on how many workers there are.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
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
_worker_cpu_s = [0.0]


def default_workers() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_jobs(job: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """job(item) for every item, in order: in this process when workers is 0, else in `workers`
    single-threaded worker processes (job and items must pickle). TensorFlow's sums come out a little
    different on one thread than on two, so only runs with workers >= 1 give the same figures whatever
    their number of workers."""
    if workers <= 0:
        with threadpool_limits(1):
            return [job(item) for item in items]
    pool = _pools.get(workers)
    if pool is None:
        context = multiprocessing.get_context("spawn")
        pool = _pools[workers] = ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread)
    out = []
    for result, cpu_s in pool.map(_call, [job] * len(items), items):
        _worker_cpu_s[0] += cpu_s
        out.append(result)
    return out


def cpu_seconds() -> float:
    """CPU seconds (all threads, user and system) used so far by this process, its finished children and the
    jobs its workers ran: what a section of a run cost, whatever ran it in parallel."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + _worker_cpu_s[0]


def _one_thread() -> None:
    os.environ.update(ONE_THREAD)
    threadpool_limits(1)


def _call(job: Callable[[T], R], item: T) -> tuple[R, float]:
    """The job's result and the CPU seconds the worker spent on it."""
    started = time.process_time()
    with threadpool_limits(1):
        result = job(item)
    return result, time.process_time() - started
