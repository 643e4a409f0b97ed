"""The whole trainer run: data -> Keras -> ONNX -> four INT8 methods -> evaluation -> choice -> bundles -> report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mmer_core import bundle, wearer_baseline
from mmer_core.fusion import DEFAULT_STRATEGY, STRATEGIES, fit_weights, fuse
from mmer_core.modalities import MODALITIES
from trainer import data as data_mod
from trainer.balance import balanced_sample_weights
from trainer.compile import to_ort_format
from trainer.corpus_report import corpus_report
from trainer.evaluate import Evaluation, evaluate_onnx
from trainer.export import export_onnx
from trainer.quantize import METHODS, calibration_rows, quantize
from trainer.wrist_recipe import WristRecipe

Log = Callable[[str], None]


@dataclass(frozen=True)
class PipelineOptions:
    """What to train and how strictly to choose."""

    out: Path
    key: Path
    modalities: Sequence[str] = MODALITIES
    methods: Sequence[str] = METHODS
    percentile: float = 99.999
    max_drop_pp: float = 1.0
    seed: int = 7
    split: str = "subject-independent"
    epochs: int = 30
    calibration_windows: int = 256
    plan: data_mod.SyntheticPlan = field(default_factory=data_mod.SyntheticPlan)
    tflite: bool = True
    # or "balanced": every corpus of the training split weighs the same, and within it every class
    class_weights: str = "none"
    # > 0: feature modalities relative to each wearer's baseline after this many calibration windows
    wearer_baseline: int = 0
    # the model also takes the absolute features after the relative ones (with a wearer baseline)
    wearer_levels: bool = False
    # wrist data (E4): the hr model is the wrist recipe's (trainer.wrist_recipe); None: the modality's own
    wrist: WristRecipe | None = None
    # manifest preprocessing params beyond the modality's own (the wrist channels a model needs)
    extra_params: dict[str, float] = field(default_factory=dict)


@dataclass
class ModalityRun:
    """One modality's outcome, kept for fusion and the report."""

    report: dict
    test: data_mod.Dataset
    test_probs: np.ndarray
    val_probs: np.ndarray
    val_y: np.ndarray


def choose(fp32: Evaluation, methods: dict[str, Evaluation], max_drop_pp: float) -> str:
    """Best efficiency (accuracy ratio x compression) among methods within the allowed accuracy drop.

    When none is within the drop, the most accurate method wins: a model that
    serves is better than none, and the report shows the drop.
    """

    def efficiency(e: Evaluation) -> float:
        return (e.accuracy / fp32.accuracy if fp32.accuracy else 0.0) * fp32.bytes / e.bytes

    allowed = {m: e for m, e in methods.items() if (fp32.accuracy - e.accuracy) * 100 <= max_drop_pp + 1e-9}
    if allowed:
        return max(allowed, key=lambda m: (efficiency(allowed[m]), allowed[m].accuracy))
    return max(methods, key=lambda m: methods[m].accuracy)


def train_model(
    modality: str,
    train: data_mod.Dataset,
    val: data_mod.Dataset | None,
    epochs: int,
    options: PipelineOptions,
    log: Log,
    face_model: str | None = None,
) -> tuple[object, dict[str, float]]:
    """The modality's model trained on `train`: stopped early on `val`'s loss, or for exactly `epochs` epochs
    when there is no `val` (the shipped model, trained on every person); and what the training did. Faces:
    the recipe's choice on `val` (trainer.face_recipe), or without `val` the `face_model` kind the split chose."""
    from trainer.models import train_on

    corpora = data_mod.corpus_of(train.subjects)
    if modality == "speech":
        from trainer.recipes import SPEECH

        model = SPEECH.fit(train.x, train.y, corpora, options.seed, epochs)
        log(
            f"[{modality}] trained one expert per corpus ({len(np.unique(corpora))}), mixed by a corpus gate when "
            f"more than one ({model.count_params()} weights, {epochs} epochs)"
        )
        return model, {"epochs": epochs, "best_epoch": epochs}
    if options.wrist is not None:
        from trainer.committee import person_groups

        model = options.wrist.fit(train.x, train.y, train.subjects, options.seed, epochs)
        members = len(person_groups(train.subjects, options.wrist.members, options.seed))
        log(
            f"[{modality}] trained the wrist recipe's committee of {members} ({model.count_params()} weights, "
            f"each at most {epochs} epochs, early-stopped on its own group of the people)"
        )
        return model, {"epochs": epochs, "best_epoch": epochs}
    weights = balanced_sample_weights(train.y, corpora) if options.class_weights == "balanced" else None
    if modality == "image":
        from trainer.face_recipe import fit_faces

        chosen = fit_faces(train, val, epochs, options.seed, weights, log, face_model)
        return chosen.model, chosen.info
    return train_on(modality, train, val, epochs, options.seed, log, weights)


def run_modality(modality: str, dataset: data_mod.Dataset, options: PipelineOptions, log: Log) -> ModalityRun:
    """Train, export, quantize with every method, evaluate and choose on a split by person; then train the
    shipped model the same way on every person (as many epochs as the split's best) and bundle it."""
    params: dict[str, float] = dict(options.extra_params)
    if options.wearer_baseline > 0 and dataset.x.ndim == 2:
        before = len(dataset)
        dataset, _ = data_mod.relative_to_wearers(
            dataset, options.wearer_baseline, levels=options.wearer_levels
        )
        params |= {
            wearer_baseline.WARMUP_PARAM: options.wearer_baseline,
            wearer_baseline.HORIZON_PARAM: wearer_baseline.DEFAULT_HORIZON,
            wearer_baseline.LEVELS_PARAM: float(options.wearer_levels),
        }
        log(
            f"[{modality}] relative to each wearer's baseline: {before - len(dataset)} calibration windows not scored"
        )
    parts = data_mod.split(dataset, options.split, options.seed)
    k = len(dataset.taxonomy)
    log(
        f"[{modality}] {len(parts.train)} train / {len(parts.val)} val / {len(parts.test)} test windows ({parts.kind})"
    )
    model, info = train_model(modality, parts.train, parts.val, options.epochs, options, log)
    work = options.out / "work" / modality
    fp32_path = export_onnx(model, work / "model.fp32.onnx", model.input.name, parts.test.x[:64])
    fp32 = evaluate_onnx(fp32_path, parts.test.x, parts.test.y, k)
    log(f"[{modality}] fp32 accuracy {fp32.accuracy:.3f}, {fp32.bytes} bytes")
    calib = calibration_rows(parts.train.x, options.seed, options.calibration_windows)
    results: dict[str, Evaluation] = {}
    paths: dict[str, Path] = {}
    for method in options.methods:
        paths[method] = quantize(fp32_path, work / f"model.{method}.onnx", method, calib, options.percentile)
        results[method] = evaluate_onnx(paths[method], parts.test.x, parts.test.y, k)
        e = results[method]
        log(
            f"[{modality}] int8 {method:<14} accuracy {e.accuracy:.3f}  {e.bytes} bytes  {fp32.bytes / e.bytes:.2f}x"
        )
    selected = choose(fp32, results, options.max_drop_pp)
    log(f"[{modality}] selected {selected}")
    report = {
        "fp32": {**fp32.to_json(), "weights": model.count_params(), **info},
        "methods": {
            m: {
                **e.to_json(),
                "compression": round(fp32.bytes / e.bytes, 4),
                "accuracy_ratio": round(e.accuracy / fp32.accuracy, 4) if fp32.accuracy else 0.0,
                "efficiency": round(
                    (e.accuracy / fp32.accuracy if fp32.accuracy else 0) * fp32.bytes / e.bytes, 4
                ),
            }
            for m, e in results.items()
        },
        "selected": selected,
        "windows": {"train": len(parts.train), "val": len(parts.val), "test": len(parts.test)},
        "corpora": corpus_report(parts, {"fp32": fp32.probs, "int8": results[selected].probs}),
    }
    for name, c in report["corpora"].items():
        figure = (
            f", int8 accuracy {c['test']['int8']['accuracy']:.3f} on its test people" if c["test"] else ""
        )
        log(
            f"[{modality}] corpus {name}: {c['share']:.1%} of the data, {sum(c['people'].values())} people{figure}"
        )
    from trainer.tflite import evaluate_tflite, has_peer

    if options.tflite and not has_peer(model):
        log(
            f"[{modality}] no TFLite peer: the model standardises inside its branches (trainer.tflite.has_peer)"
        )
    elif options.tflite:
        lite = evaluate_tflite(model, calib, parts.test.x, parts.test.y, k)
        report["tflite_int8"] = lite.to_json()
        log(f"[{modality}] TFLite int8 accuracy {lite.accuracy:.3f}, {lite.bytes} bytes")
    val_eval = evaluate_onnx(paths[selected], parts.val.x, parts.val.y, k, latency_runs=1)
    shipped, report["shipped"], shipped_fp32, shipped_int8 = _train_shipped(
        modality, dataset, selected, info, options, log
    )
    ort_path = to_ort_format(shipped, work / "model.int8.ort")
    report["ort_bytes"] = ort_path.stat().st_size
    # the manifest: the split's accuracy (no person is left to measure the shipped model on), the shipped
    # model's own size and speed (on every person its experts or features may differ in size)
    written = _bundle(
        modality,
        dataset,
        options,
        shipped,
        ort_path,
        selected,
        replace(fp32, bytes=shipped_fp32.bytes),
        replace(
            results[selected],
            bytes=shipped_int8.bytes,
            latency_ms_p50=shipped_int8.latency_ms_p50,
            latency_ms_p99=shipped_int8.latency_ms_p99,
            cpu_ms_per_1000=shipped_int8.cpu_ms_per_1000,
        ),
        val_eval.accuracy,
        parts,
        params,
    )
    report["bundle"] = {"path": str(written.path), "version": written.manifest.version}
    return ModalityRun(report, parts.test, results[selected].probs, val_eval.probs, parts.val.y)


def _train_shipped(
    modality: str,
    dataset: data_mod.Dataset,
    method: str,
    split_info: dict,
    options: PipelineOptions,
    log: Log,
) -> tuple[Path, dict, Evaluation, Evaluation]:
    """The model the bundle ships: the recipe measured on the split, trained again on every person (a wearer
    the model has never met is better served by all the people there are) and quantized with the method the
    split chose. Its accuracy is the split's: no person is left to measure it on. Returns its int8 file, its
    report entry and its fp32 and int8 evaluations on the windows it learned from (for their sizes and the
    int8 model's speed)."""
    epochs = int(split_info["best_epoch"])
    model, _ = train_model(modality, dataset, None, epochs, options, log, split_info.get("face_model"))
    work = options.out / "work" / modality
    fp32_path = export_onnx(model, work / "shipped.fp32.onnx", model.input.name, dataset.x[:64])
    calib = calibration_rows(dataset.x, options.seed, options.calibration_windows)
    int8_path = quantize(fp32_path, work / "shipped.int8.onnx", method, calib, options.percentile)
    people = len(np.unique(dataset.subjects))
    fp32 = evaluate_onnx(fp32_path, dataset.x, dataset.y, len(dataset.taxonomy), latency_runs=1)
    int8 = evaluate_onnx(int8_path, dataset.x, dataset.y, len(dataset.taxonomy))
    agreement = float(np.mean(fp32.probs.argmax(axis=1) == int8.probs.argmax(axis=1)))
    log(
        f"[{modality}] shipped: trained on all {people} people for {epochs} epochs, {method} int8 agrees with "
        f"fp32 on {agreement:.1%} of the windows"
    )
    return (
        int8_path,
        {
            "people": people,
            "windows": len(dataset),
            "epochs": epochs,
            "int8_fp32_agreement": agreement,
            "bytes": int8.bytes,
        },
        fp32,
        int8,
    )


def _bundle(modality, dataset, options, int8_path, ort_path, method, fp32, chosen, val_acc, parts, params):
    from trainer.bundling import write_modality_bundle

    return write_modality_bundle(
        options.out / modality,
        modality,
        dataset.taxonomy,
        int8_path,
        ort_path,
        method,
        options.percentile,
        options.calibration_windows,
        fp32,
        chosen,
        val_acc,
        parts.test.x,
        dataset.description,
        parts.kind,
        bundle.load_private_key(options.key),
        params,
    )


def align(runs: dict[str, ModalityRun], step_s: float = 1.0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Test-set scores of every modality at common instants: per subject, every step_s, each modality's
    latest window that ended within the last step. Instants a modality lacks leave it out (NaN rows)."""
    anchor = min(runs, key=lambda m: len(runs[m].test))
    scores: dict[str, list[np.ndarray]] = {m: [] for m in runs}
    labels = []
    k = runs[anchor].test_probs.shape[1]
    for subject in np.unique(runs[anchor].test.subjects):
        mask = runs[anchor].test.subjects == subject
        for t, y in zip(runs[anchor].test.t_end[mask], runs[anchor].test.y[mask], strict=True):
            labels.append(y)
            for m, run in runs.items():
                sel = (
                    (run.test.subjects == subject)
                    & (run.test.t_end <= t + 1e-9)
                    & (run.test.t_end > t - step_s)
                )
                idx = np.flatnonzero(sel)
                scores[m].append(run.test_probs[idx[-1]] if idx.size else np.full(k, np.nan))
    return {m: np.stack(v) for m, v in scores.items()}, np.asarray(labels)


def fusion_report(runs: dict[str, ModalityRun], strategy: str = DEFAULT_STRATEGY) -> dict:
    """Fused accuracy on aligned test instants next to the best single modality, and with each left out.
    An instant a modality has no window for is an instant it gives no answer: wrong, for it and for fusion
    alike (`coverage` says how often each modality answers)."""
    if len(runs) == 1:  # nothing to fuse: report the modality itself on its own test set
        ((m, run),) = runs.items()
        accuracy = round(float((run.test_probs.argmax(axis=1) == run.test.y).mean()), 4)
        return {
            "strategy": "none (one modality)",
            "instants": len(run.test),
            "weights": {m: 1.0},
            "accuracy": accuracy,
            "best_single_accuracy": accuracy,
            "single": {m: accuracy},
            "without": {},
            "strategies": {},
        }
    scores, y = align(runs)
    weights = {m: fit_weights({m: r.val_probs}, r.val_y)[m] for m, r in runs.items()}

    def fused_accuracy(modalities: Sequence[str], how: str = strategy) -> float:
        correct = 0
        for i in range(len(y)):
            present = {m: scores[m][i] for m in modalities if not np.isnan(scores[m][i]).any()}
            if present:
                correct += int(fuse(present, how, weights).probs.argmax() == y[i])
        return correct / len(y)

    present = {m: ~np.isnan(scores[m]).any(axis=1) for m in runs}
    single = {m: float(np.mean(present[m] & (np.nan_to_num(scores[m]).argmax(axis=1) == y))) for m in runs}
    names = list(runs)
    return {
        "strategy": strategy,
        "instants": len(y),
        "weights": {m: round(w, 4) for m, w in weights.items()},
        "accuracy": round(fused_accuracy(names), 4),
        "best_single_accuracy": round(max(single.values()), 4),
        "single": {m: round(a, 4) for m, a in single.items()},
        "coverage": {m: round(float(p.mean()), 4) for m, p in present.items()},
        "without": {m: round(fused_accuracy([n for n in names if n != m]), 4) for m in names}
        if len(names) > 1
        else {},
        "strategies": {s: round(fused_accuracy(names, s), 4) for s in STRATEGIES},
    }


def run_pipeline(options: PipelineOptions, load: Callable[[str], data_mod.Dataset], log: Log = print) -> dict:
    """Every modality, then fusion; writes report.json and report.md into options.out."""
    started = time.monotonic()
    options.out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, ModalityRun] = {}
    for modality in options.modalities:
        log(f"[{modality}] loading data")
        runs[modality] = run_modality(modality, load(modality), options, log)
    report: dict = {m: r.report for m, r in runs.items()}
    report["fusion"] = fusion_report(runs)
    log(
        f"[fusion] accuracy {report['fusion']['accuracy']:.3f} vs best single {report['fusion']['best_single_accuracy']:.3f}"
    )
    report["split"] = options.split
    report["class_weights"] = options.class_weights
    report["wearer_baseline"] = options.wearer_baseline
    report["data"] = runs[next(iter(runs))].test.description
    report["seconds"] = round(time.monotonic() - started, 1)
    (options.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    from trainer.report import write_markdown, write_plots

    write_markdown(report, options.out / "report.md")
    write_plots(report, options.out)
    log(f"report written to {options.out / 'report.json'} in {report['seconds']:.0f} s")
    return report
