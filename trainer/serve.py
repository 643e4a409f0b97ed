"""The retraining service: watch for new labelled data, retrain, and replace the model only if it is not worse.

A candidate is trained by the same pipeline into a staging directory, then the serving model (the bundle in
``models/<modality>``, signature checked) is scored on the candidate's held-out test split. The candidate
replaces it, and is pushed to the coordinator when one is configured, only when its INT8 accuracy is at least
the serving model's; every decision is logged with both figures.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mmer_core import bundle
from mmer_core.file_tree import files_below
from trainer import data as data_mod
from trainer.evaluate import evaluate_onnx
from trainer.pipeline import PipelineOptions, run_modality

Log = Callable[[str], None]


@dataclass(frozen=True)
class Decision:
    """What one retraining round decided, and why."""

    promoted: bool
    reason: str
    candidate_accuracy: float
    serving_accuracy: float | None
    version: int


def data_fingerprint(folder: Path) -> tuple[int, int]:
    """(file count, total bytes) of a recordings directory; growth means new data arrived."""
    files = files_below(Path(folder))
    return len(files), sum(p.stat().st_size for p in files)


def retrain_once(
    modality: str,
    dataset: data_mod.Dataset,
    options: PipelineOptions,
    coordinator: str | None = None,
    token: str | None = None,
    log: Log = print,
    tls_ca: Path | None = None,
) -> Decision:
    """Train a candidate into OUT/staging, compare it with OUT/<modality> on held-out data, promote or refuse."""
    serving = options.out / modality
    staging_root = options.out / "staging"
    staging = staging_root / modality
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if (serving / bundle.MANIFEST_FILE).is_file():
        # The candidate's version follows the serving one (the pipeline numbers from the manifest it finds).
        shutil.copyfile(serving / bundle.MANIFEST_FILE, staging / bundle.MANIFEST_FILE)
    run = run_modality(modality, dataset, replace(options, out=staging_root), log)
    selected = run.report["selected"]
    cand_acc = float(run.report["methods"][selected]["accuracy"])
    version = int(run.report["bundle"]["version"])
    serving_acc = _serving_accuracy(serving, options, run.test, log)
    if serving_acc is not None and cand_acc < serving_acc:
        reason = (
            f"[{modality}] kept serving model: candidate v{version} accuracy {cand_acc:.4f} < "
            f"serving {serving_acc:.4f} on {len(run.test)} held-out windows"
        )
        log(reason)
        return Decision(False, reason, cand_acc, serving_acc, version)
    if coordinator:
        from trainer.push import push_bundles

        public = options.key.with_name(bundle.PUBLIC_KEY_FILE)
        for response in push_bundles(coordinator, staging, token or "", public, tls_ca=tls_ca):
            log(f"[{modality}] pushed v{response.version} to {coordinator}: {response.stage}")
    shutil.rmtree(serving, ignore_errors=True)
    shutil.copytree(staging, serving)
    before = "no serving model" if serving_acc is None else f"serving {serving_acc:.4f}"
    reason = f"[{modality}] promoted v{version} ({selected}): accuracy {cand_acc:.4f} >= {before}" + (
        f", pushed to {coordinator}" if coordinator else ""
    )
    log(reason)
    return Decision(True, reason, cand_acc, serving_acc, version)


def _serving_accuracy(
    serving: Path, options: PipelineOptions, test: data_mod.Dataset, log: Log
) -> float | None:
    """The serving bundle's accuracy on the candidate's test windows; None when there is no serving model."""
    if not (serving / bundle.MANIFEST_FILE).is_file():
        return None
    public = options.key.with_name(bundle.PUBLIC_KEY_FILE)
    try:
        current = bundle.read_bundle(serving, bundle.load_public_key(public))
    except bundle.BundleError as exc:
        log(f"serving bundle {serving} does not verify ({exc}); treating it as absent")
        return None
    return evaluate_onnx(current.file("model"), test.x, test.y, len(test.taxonomy), latency_runs=1).accuracy


def serve(
    modality: str,
    load: Callable[[], data_mod.Dataset],
    watch: Path,
    options: PipelineOptions,
    min_new_files: int = 1,
    interval_s: float | None = None,
    poll_s: float = 30.0,
    coordinator: str | None = None,
    token: str | None = None,
    rounds: int | None = None,
    log: Log = print,
    tls_ca: Path | None = None,
) -> list[Decision]:
    """Poll WATCH; retrain when >= min_new_files arrived since the last round or interval_s elapsed."""
    decisions: list[Decision] = []
    seen_files = 0
    last = float("-inf")
    while rounds is None or len(decisions) < rounds:
        files, _ = data_fingerprint(watch)
        due = interval_s is not None and time.monotonic() - last >= interval_s
        if files - seen_files >= min_new_files or due:
            why = f"{files - seen_files} new files" if files - seen_files >= min_new_files else "schedule"
            log(f"[{modality}] retraining ({why}; {files} files in {watch})")
            decisions.append(retrain_once(modality, load(), options, coordinator, token, log, tls_ca))
            seen_files, last = files, time.monotonic()
        else:
            log(
                f"[{modality}] no retraining: {files - seen_files} new files (< {min_new_files}), schedule not due"
            )
            time.sleep(poll_s)
    return decisions
