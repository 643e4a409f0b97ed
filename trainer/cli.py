"""`mmer trainer`: train, quantize, evaluate, sign and push models."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mmer_core.modalities import MODALITIES
from trainer.yardstick import KINDS as YARDSTICK_KINDS

AVAILABLE = True  # every step (keygen, pipeline, train, quantize, evaluate, push, serve) is built

STEPS = {
    "keygen": "make the Ed25519 key pair that signs bundles",
    "pipeline": "train, export, quantize (4 methods), evaluate, choose, compile and sign every modality",
    "train": "train the fp32 Keras model of one modality",
    "quantize": "quantize an exported ONNX model to INT8",
    "evaluate": "score a bundle on a labelled set exactly as the edge would (or a work directory's test split)",
    "push": "upload signed bundles to a coordinator's registry",
    "serve": "retrain on new labelled data and push models that are at least as good",
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the trainer's steps as sub-subcommands."""
    parser.description = (
        "Turn labelled data into signed, INT8-quantized model bundles per modality, prove how good each is, "
        "and keep the edge fleet up to date."
    )
    steps = parser.add_subparsers(dest="step", metavar="STEP", required=True)
    keygen = steps.add_parser("keygen", help=STEPS["keygen"], description=STEPS["keygen"])
    keygen.add_argument(
        "--out", type=Path, default=Path("models/keys"), help="directory for trainer.key/.pub"
    )
    keygen.add_argument("--force", action="store_true", help="replace an existing key pair")
    keygen.set_defaults(run=run_keygen)

    pipe = steps.add_parser("pipeline", help=STEPS["pipeline"], description=STEPS["pipeline"])
    pipe.add_argument(
        "--data",
        action="append",
        help="synthetic (default) | speech:DIR (RAVDESS/CREMA-D/TESS names or <label>/<speaker>_x, .wav/.flac) | "
        "e4:DIR | wesad:DIR | deap:DIR | faces:CSV_OR_DIR; repeat it to train one modality on several corpora "
        "(people are kept apart per corpus, named by folder)",
    )
    pipe.add_argument(
        "--skip-misnamed",
        action="store_true",
        help="speech and faces: skip audio files or images whose names give no label (a warning counts and names "
        "them) instead of stopping at the first",
    )
    pipe.add_argument(
        "--out", type=Path, default=Path("models"), help="bundles, report.json, report.md, plots"
    )
    pipe.add_argument("--key", type=Path, help="signing key (default OUT/keys/trainer.key, made if missing)")
    pipe.add_argument("--seed", type=int, default=7)
    pipe.add_argument("--modalities", default=",".join(MODALITIES), help="comma-separated")
    pipe.add_argument("--methods", default="max,percentile,max-percentile,entropy", help="comma-separated")
    pipe.add_argument("--percentile", type=float, default=99.999, help="for percentile and max-percentile")
    pipe.add_argument("--max-drop-pp", type=float, default=1.0, help="allowed INT8 accuracy drop, points")
    pipe.add_argument("--split", choices=("subject-independent", "random"), default="subject-independent")
    pipe.add_argument("--epochs", type=int, help="at most (default: the data kind's recipe, else 30)")
    pipe.add_argument("--subjects", type=int, default=16, help="synthetic subjects")
    pipe.add_argument("--seconds", type=float, default=300.0, help="synthetic seconds per subject")
    pipe.add_argument("--no-tflite", action="store_true", help="skip the TFLite int8 baseline")
    pipe.add_argument(
        "--class-weights",
        choices=("none", "balanced"),
        help="balanced: weight the loss by inverse class frequency (imbalanced real data); default: the data "
        "kind's recipe (trainer/kind_recipes.py), else none",
    )
    pipe.add_argument(
        "--wearer-baseline",
        type=int,
        metavar="WINDOWS",
        help="hr and eeg features relative to each wearer's own baseline, after a calibration period of this "
        "many windows that the edge does not score (0: off); default: the data kind's recipe, else 0",
    )
    pipe.add_argument(
        "--fast", action="store_true", help="tiny data and few epochs, for tests and smoke runs"
    )
    pipe.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print the tools' own output (TensorFlow, tf2onnx, onnxruntime) as debug lines",
    )
    pipe.set_defaults(run=run_pipeline)

    push = steps.add_parser("push", help=STEPS["push"], description=STEPS["push"])
    push.add_argument("--coordinator", required=True, help="coordinator gRPC address HOST:PORT")
    push.add_argument(
        "--token", default=os.environ.get("MMER_TOKEN", ""), help="bearer token (default $MMER_TOKEN)"
    )
    push.add_argument("--tls-ca", type=Path, help="CA certificate to verify the coordinator (enables TLS)")
    push.add_argument(
        "--pubkey", type=Path, help="check bundles with this key first (default DIR/keys/trainer.pub)"
    )
    push.add_argument(
        "directory", type=Path, help="a bundle, or a directory of bundles (the pipeline's --out)"
    )
    push.set_defaults(run=run_push)

    srv = steps.add_parser("serve", help=STEPS["serve"], description=STEPS["serve"])
    srv.add_argument(
        "--data", required=True, help="KIND:DIR of labelled recordings to watch (e4:, speech:, ...)"
    )
    srv.add_argument(
        "--out", type=Path, default=Path("models"), help="serving bundles live in OUT/<modality>"
    )
    srv.add_argument("--key", type=Path, help="signing key (default OUT/keys/trainer.key, made if missing)")
    srv.add_argument("--coordinator", help="push promoted bundles to this registry HOST:PORT")
    srv.add_argument(
        "--token", default=os.environ.get("MMER_TOKEN"), help="bearer token (default $MMER_TOKEN)"
    )
    srv.add_argument("--tls-ca", type=Path, help="CA certificate to verify the coordinator (enables TLS)")
    srv.add_argument("--min-new-files", type=int, default=1, help="retrain when this many new files arrived")
    srv.add_argument("--interval", type=float, help="also retrain every INTERVAL seconds")
    srv.add_argument("--poll", type=float, default=30.0, help="seconds between checks of the data directory")
    srv.add_argument("--once", action="store_true", help="one retraining round, then exit")
    srv.add_argument("--seed", type=int, default=7)
    srv.add_argument("--epochs", type=int, default=30)
    srv.add_argument("--methods", default="max,percentile,max-percentile,entropy", help="comma-separated")
    srv.set_defaults(run=run_serve)

    train = steps.add_parser("train", help=STEPS["train"], description=STEPS["train"])
    train.add_argument("--data", default="synthetic", help="synthetic or KIND:PATH as for pipeline")
    train.add_argument("--modality", choices=MODALITIES, required=True)
    train.add_argument("--work", type=Path, required=True, help="work directory for the model and split")
    train.add_argument("--split", choices=("subject-independent", "random"), default="subject-independent")
    train.add_argument("--seed", type=int, default=7)
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--fast", action="store_true", help="tiny synthetic data")
    train.set_defaults(run=run_train)

    quant = steps.add_parser("quantize", help=STEPS["quantize"], description=STEPS["quantize"])
    quant.add_argument("--work", type=Path, required=True, help="a directory `mmer trainer train` wrote")
    quant.add_argument(
        "--method", default="max-percentile", help="max | percentile | max-percentile | entropy"
    )
    quant.add_argument("--percentile", type=float, default=99.999)
    quant.add_argument("--calibration-windows", type=int, default=256)
    quant.add_argument("--seed", type=int, default=7)
    quant.set_defaults(run=run_quantize)

    ev = steps.add_parser("evaluate", help=STEPS["evaluate"], description=STEPS["evaluate"])
    target = ev.add_mutually_exclusive_group(required=True)
    target.add_argument("--bundle", type=Path, help="a signed bundle directory (e.g. models/speech)")
    target.add_argument("--work", type=Path, help="a directory `mmer trainer train` wrote: its test split")
    ev.add_argument(
        "--data", metavar="KIND:PATH", help=f"with --bundle: a labelled set ({', '.join(YARDSTICK_KINDS)})"
    )
    ev.add_argument(
        "--pubkey", type=Path, help="with --bundle: verify with this key (default BUNDLE/../keys/trainer.pub)"
    )
    ev.add_argument(
        "--references-from",
        action="append",
        default=[],
        metavar="KIND:PATH",
        help="with --bundle: also train the classical references (e.g. eGeMAPS + SVM for speech, random "
        "forests on wrist statistics) on every person of this labelled set, of --data's kind and none of its "
        "people, and score them beside the bundle on the same units; repeat it for several corpora",
    )
    ev.add_argument(
        "--json", action="store_true", help="with --bundle: one JSON object instead of the report"
    )
    ev.set_defaults(run=run_evaluate)


def run_keygen(args: argparse.Namespace) -> int:
    """Write a new signing key pair unless one exists."""
    from mmer_core import bundle

    if (args.out / bundle.PRIVATE_KEY_FILE).exists() and not args.force:
        print(f"{args.out / bundle.PRIVATE_KEY_FILE} exists; --force replaces it", file=sys.stderr)
        return 1
    priv, pub = bundle.generate_keypair(args.out)
    print(f"signing key {priv}\npublic key  {pub} (give this to coordinators and edge nodes)")
    return 0


def run_pipeline(args: argparse.Namespace) -> int:
    """The whole pipeline on the chosen data."""
    from mmer_core import bundle
    from trainer import data as data_mod
    from trainer.pipeline import PipelineOptions, run_pipeline

    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    for m in modalities:
        if m not in MODALITIES:
            print(f"unknown modality {m!r} (known: {', '.join(MODALITIES)})", file=sys.stderr)
            return 2
    from trainer.kind_recipes import recipe
    from trainer.loaders import SOURCES, load, parse_source

    specs = args.data or ["synthetic"]
    try:
        sources = [parse_source(spec) for spec in specs]
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    kinds = {kind for kind, _ in sources}
    kind_recipe = recipe(kinds.pop()) if len(kinds) == 1 else recipe("")
    class_weights = args.class_weights or kind_recipe.class_weights
    baseline = kind_recipe.wearer_baseline if args.wearer_baseline is None else args.wearer_baseline
    if baseline < 0:
        print(f"--wearer-baseline: a number of windows >= 0, got {baseline}", file=sys.stderr)
        return 2
    folders = [(kind, folder) for kind, folder in sources if folder is not None]
    if folders:
        carried = sorted({SOURCES[kind] for kind, _ in folders})
        if len(folders) != len(sources) or len(carried) > 1:
            print(
                f"--data {' '.join(specs)}: several --data must be folders of one modality, got "
                f"{', '.join(carried)}" + (" and synthetic" if len(folders) != len(sources) else ""),
                file=sys.stderr,
            )
            return 2
        if args.modalities == ",".join(MODALITIES):
            modalities = carried
        if modalities != carried:
            print(f"--data {' '.join(specs)} carries only the {carried[0]} modality", file=sys.stderr)
            return 2
    _tool_output(args.verbose)
    key = args.key or args.out / "keys" / bundle.PRIVATE_KEY_FILE
    if not key.exists():
        bundle.generate_keypair(key.parent)
        print(f"made a signing key pair in {key.parent}")
    epochs = args.epochs or kind_recipe.epochs
    subjects, seconds, epochs = (6, 90.0, 3) if args.fast else (args.subjects, args.seconds, epochs)
    plan = data_mod.SyntheticPlan(n_subjects=subjects, seconds=seconds, seed=args.seed)
    options = PipelineOptions(
        out=args.out,
        key=key,
        modalities=modalities,
        methods=[m.strip() for m in args.methods.split(",")],
        percentile=args.percentile,
        max_drop_pp=args.max_drop_pp,
        seed=args.seed,
        split=args.split,
        epochs=epochs,
        calibration_windows=64 if args.fast else 256,
        plan=plan,
        tflite=not args.no_tflite,
        class_weights=class_weights,
        wearer_baseline=baseline,
        wearer_levels=kind_recipe.wearer_levels,
    )
    if folders and all(kind == "e4" for kind, _ in folders):
        options, loader = _wrist_recipe(args, options, load(folders, "hr"))
    elif folders:
        loader = lambda m: load(folders, m, args.skip_misnamed)  # noqa: E731
    else:
        loader = lambda m: data_mod.combine({"synthetic": data_mod.synthetic(m, plan)})  # noqa: E731
    try:
        run_pipeline(options, loader, log=lambda s: print(s, flush=True))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _wrist_recipe(args: argparse.Namespace, options, data):
    """E4 data trains the wrist recipe the e4 yardstick measures (trainer.wrist_recipe), for the channels
    every session has: its wearer baseline, model and epochs (--fast: few epochs)."""
    from dataclasses import replace

    from trainer.data import Dataset
    from trainer.wrist_recipe import WRIST

    recipe = WRIST.for_features(data.x)
    described = f"{data.description}; model for {', '.join(('beats', *recipe.channels))}"
    data = Dataset(data.modality, recipe.features(data.x), data.y, data.subjects, data.t_end, described)
    options = replace(
        options,
        wearer_baseline=(recipe.quick() if args.fast else recipe).warmup,
        epochs=options.epochs if args.fast else recipe.epochs,
        wearer_levels=True,
        wrist=recipe,
        extra_params={k: v for k, v in recipe.params().items() if k.startswith("requires_")},
    )
    return options, lambda m: data


def _tool_output(verbose: bool) -> None:
    """Known-harmless tool warnings off; with --verbose the tools' captured output is shown as debug lines."""
    import logging

    from trainer.quiet import LOG, silence_tool_loggers

    silence_tool_loggers()
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("  %(message)s"))
        LOG.addHandler(handler)
        LOG.setLevel(logging.DEBUG)


def run_push(args: argparse.Namespace) -> int:
    """Push every bundle found; a refused one stops the run with the coordinator's reason."""
    import grpc

    from mmer_core.bundle import BundleError
    from trainer.push import push_bundles

    try:
        for r in push_bundles(args.coordinator, args.directory, args.token, args.pubkey, tls_ca=args.tls_ca):
            print(f"pushed {r.modality} v{r.version}: {r.stage}")
    except (BundleError, ValueError) as exc:
        print(f"push refused locally: {exc}", file=sys.stderr)
        return 1
    except grpc.RpcError as exc:
        print(f"push refused by {args.coordinator}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Watch the data directory and retrain; each round logs whether it promoted and why."""
    from mmer_core import bundle
    from trainer.loaders import SOURCES, load, parse_source
    from trainer.pipeline import PipelineOptions
    from trainer.serve import serve

    try:
        kind, folder = parse_source(args.data)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if folder is None:
        print("serve needs KIND:DIR data to watch, not synthetic", file=sys.stderr)
        return 2
    key = args.key or args.out / "keys" / bundle.PRIVATE_KEY_FILE
    if not key.exists():
        bundle.generate_keypair(key.parent)
    modality = SOURCES[kind]
    options = PipelineOptions(
        out=args.out,
        key=key,
        modalities=[modality],
        methods=[m.strip() for m in args.methods.split(",")],
        seed=args.seed,
        epochs=args.epochs,
        tflite=False,
    )
    serve(
        modality,
        lambda: load([(kind, folder)], modality),
        folder,
        options,
        min_new_files=args.min_new_files,
        interval_s=args.interval,
        poll_s=args.poll,
        coordinator=args.coordinator,
        token=args.token,
        rounds=1 if args.once else None,
        log=lambda s: print(s, flush=True),
        tls_ca=args.tls_ca,
    )
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Train one modality's fp32 model into --work."""
    from trainer import data as data_mod
    from trainer.loaders import load, parse_source
    from trainer.steps import train_step

    try:
        kind, folder = parse_source(args.data)
        if folder is None:
            subjects, seconds = (6, 90.0) if args.fast else (16, 300.0)
            dataset = data_mod.synthetic(args.modality, data_mod.SyntheticPlan(subjects, seconds, args.seed))
        else:
            dataset = load([(kind, folder)], args.modality)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    train_step(
        dataset,
        args.work,
        args.split,
        args.seed,
        3 if args.fast else args.epochs,
        lambda s: print(s, flush=True),
    )
    return 0


def run_quantize(args: argparse.Namespace) -> int:
    """Quantize --work's fp32 model with one method."""
    from trainer.steps import quantize_step

    try:
        path = quantize_step(args.work, args.method, args.percentile, args.calibration_windows, args.seed)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Score --bundle on --data as the edge would, or every model in --work on its test split (JSON)."""
    import json

    from trainer.steps import evaluate_step

    if args.bundle is not None:
        return _evaluate_bundle(args)
    if args.references_from:
        print("--references-from needs --bundle: references are scored beside a bundle", file=sys.stderr)
        return 2

    try:
        result = evaluate_step(args.work)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def _evaluate_bundle(args: argparse.Namespace) -> int:
    """`evaluate --bundle DIR --data KIND:PATH`: the bundle's report on a labelled set."""
    import importlib
    import json

    from mmer_core.bundle import BundleError, read_manifest
    from trainer.yardstick.held_back import check_apart, held_back_references

    if not args.data:
        print("evaluate --bundle needs --data KIND:PATH, the labelled set to score it on", file=sys.stderr)
        return 2
    kind, sep, path = args.data.partition(":")
    if not sep or kind not in YARDSTICK_KINDS:
        print(
            f"--data {args.data!r}: expected KIND:PATH with KIND one of {', '.join(YARDSTICK_KINDS)}",
            file=sys.stderr,
        )
        return 2
    if not Path(path).is_dir():
        print(f"--data {args.data!r}: {path} is not a directory", file=sys.stderr)
        return 2
    reference_folders = _reference_folders(args.references_from, kind)
    if reference_folders is None:
        return 2
    try:
        trained_persons = check_apart(kind, Path(path), reference_folders) if reference_folders else 0
    except ValueError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    try:
        key = {"public_key": args.pubkey} if args.pubkey else {}
        scored = importlib.import_module(YARDSTICK_KINDS[kind]).score_bundle(args.bundle, Path(path), **key)
        report = scored.report()
        if reference_folders:
            report["references"] = held_back_references(
                kind,
                scored,
                read_manifest(args.bundle).preprocessing.params,
                reference_folders,
                Path(path),
            )
    except (BundleError, ValueError, OSError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.bundle} on {args.data}: {report['n']} {report['unit']}s of {report['persons']} persons")
    print(
        f"accuracy {report['accuracy']:.3f}  macro-F1 {report['macro_f1']:.3f}  UAR {report['uar']:.3f}  "
        f"majority-class accuracy {report['majority']:.3f}"
    )
    width = max(len(label) for label in report["labels"])
    print(
        f"{'':<{width}}  recall   count  confusion (rows: truth, columns: predicted {' '.join(report['labels'])})"
    )
    for i, label in enumerate(report["labels"]):
        recall = report["recall"][label]
        shown = "   -  " if recall is None else f"{recall:6.3f}"
        print(
            f"{label:<{width}}  {shown}  {report['counts'][label]:6d}  {' '.join(f'{c:5d}' for c in report['confusion'][i])}"
        )
    if reference_folders:
        _print_references(report, trained_persons, args.references_from)
    return 0


def _reference_folders(specs: list[str], kind: str) -> list[Path] | None:
    """The folders of `--references-from KIND:PATH ...`, each of a kind the --data kind's yardstick reads;
    None (after saying why) when one is not."""
    folders = []
    for spec in specs:
        ref_kind, sep, path = spec.partition(":")
        if not sep or ref_kind not in YARDSTICK_KINDS:
            print(
                f"--references-from {spec!r}: expected KIND:PATH with KIND one of {', '.join(YARDSTICK_KINDS)}",
                file=sys.stderr,
            )
            return None
        if YARDSTICK_KINDS[ref_kind] != YARDSTICK_KINDS[kind]:
            print(
                f"--references-from {spec!r}: {ref_kind} data cannot train references for --data of kind {kind}",
                file=sys.stderr,
            )
            return None
        if not Path(path).is_dir():
            print(f"--references-from {spec!r}: {path} is not a directory", file=sys.stderr)
            return None
        folders.append(Path(path))
    return folders


def _print_references(report: dict, trained_persons: int, specs: list[str]) -> None:
    """The bundle beside the references, on the same units."""
    print(
        f"beside classical references trained on the {trained_persons} persons of {', '.join(specs)}, "
        f"on the same {report['n']} {report['unit']}s:"
    )
    rows = {"bundle (int8)": report, **report["references"]}
    width = max(len(name) for name in rows)
    for name, s in rows.items():
        print(
            f"  {name:<{width}}  accuracy {s['accuracy']:.3f}  macro-F1 {s['macro_f1']:.3f}  UAR {s['uar']:.3f}"
        )
