"""Real-data yardstick: person-independent folds on every folder given, the deployed int8 bundle beside the
classical references and the majority class; writes JSON.

    python -m bench.realdata --json FILE --data KIND:PATH [--data KIND:PATH ...] [--folds N] [--workers N] [--quick]

Each `--data` goes to its kind's module in trainer.yardstick (KINDS below), which folds by person, trains the
deployed recipe per fold, scores the int8 model through the edge's own preprocessing and scores its
references on the same folds. Output: {"seconds": S, "sets": {NAME: entry}}, NAME the folder's base name.
With two or more folders of speech, also {"cross": {NAME: {"trained_on_others": entry, "trained_on_all":
entry, ...}}}: each corpus's people on its own folds, scored by models trained on the other corpora only and
on all of them (its test people never), beside the references trained on the same people.
Folds run in --workers processes at once (default: one per core), each single-threaded (BLAS through
threadpoolctl, OpenMP, TensorFlow): a fold's small models gain nothing from more threads, and on a shared
machine multi-threaded OpenBLAS made small SVMs many times slower. The figures do not depend on --workers.
"seconds" is the whole run's wall time, each set's and the cross section's too ("cross_seconds"); beside
each, "cpu_seconds": CPU time of this process, its children and its workers' jobs (on a shared machine wall
time also counts others' load).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from trainer.yardstick import KINDS
from trainer.yardstick.options import YardstickOptions
from trainer.yardstick.workers import cpu_seconds, default_workers


def parse_data(spec: str) -> tuple[str, Path]:
    """KIND:PATH with a kind of KINDS and an existing path; ValueError naming what is wrong."""
    kind, sep, path = spec.partition(":")
    if not sep or not path:
        raise ValueError(f"--data {spec!r}: expected KIND:PATH (kinds: {', '.join(KINDS)})")
    if kind not in KINDS:
        raise ValueError(f"--data {spec!r}: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
    if not Path(path).exists():
        raise ValueError(f"--data {spec!r}: {path} does not exist")
    return kind, Path(path)


def run(data: list[tuple[str, Path]], options: YardstickOptions) -> dict:
    """Every set's entry, keyed by folder name; with two or more folders of a kind whose module measures
    across corpora (`cross`), a `cross` entry per folder; and the seconds it all took."""
    started, cpu_started = time.monotonic(), cpu_seconds()
    sets: dict[str, dict] = {}
    for kind, folder in data:
        name = folder.name
        if name in sets:
            raise ValueError(f"two --data folders are both named {name!r}")
        set_started, set_cpu = time.monotonic(), cpu_seconds()
        sets[name] = importlib.import_module(KINDS[kind]).yardstick(folder, options)
        sets[name]["seconds"] = round(time.monotonic() - set_started, 1)
        sets[name]["cpu_seconds"] = round(cpu_seconds() - set_cpu, 1)
    # the seed orders each speaker's recordings (which utterances warm a baseline up), draws the folds and
    # starts training: the same command with another seed shows how much the figures owe to it
    result: dict = {"seconds": 0.0, "seed": options.seed, "sets": sets}
    for kind in dict.fromkeys(kind for kind, _ in data):
        folders = [folder for k, folder in data if k == kind]
        module = importlib.import_module(KINDS[kind])
        if len(folders) >= 2 and hasattr(module, "cross"):
            cross_started, cross_cpu = time.monotonic(), cpu_seconds()
            result.setdefault("cross", {}).update(module.cross(folders, options))
            result["cross_seconds"] = round(
                result.get("cross_seconds", 0.0) + time.monotonic() - cross_started, 1
            )
            result["cross_cpu_seconds"] = round(
                result.get("cross_cpu_seconds", 0.0) + cpu_seconds() - cross_cpu, 1
            )
    result["seconds"] = round(time.monotonic() - started, 1)
    result["cpu_seconds"] = round(cpu_seconds() - cpu_started, 1)
    return result


def summary_lines(result: dict) -> list[str]:
    """One line per set and classifier: accuracy and macro-F1 over folds."""
    lines = []
    for name, entry in result["sets"].items():
        rows = {
            "deployed int8": entry["deployed_int8"],
            "deployed fp32": entry["deployed_fp32"],
            **entry["references"],
            "majority": entry["majority"],
        }
        lines.append(
            f"{name} ({entry['folds']} folds by person, {entry['subjects']} persons, per {entry['unit']}):"
        )
        lines += [f"  {n:<24} acc {r['accuracy']:.3f}  macro-F1 {r['macro_f1']:.3f}" for n, r in rows.items()]
    for name, entry in result.get("cross", {}).items():
        for trained in ("trained_on_others", "trained_on_all"):
            part = entry[trained]
            lines.append(
                f"{name}, {entry['folds']} folds by person, trained on {' + '.join(part['corpora'])}:"
            )
            rows = {
                "deployed int8": part["deployed_int8"],
                "deployed fp32": part["deployed_fp32"],
                **part["references"],
                "majority": part["majority"],
            }
            lines += [
                f"  {n:<24} acc {r['accuracy']:.3f}  macro-F1 {r['macro_f1']:.3f}" for n, r in rows.items()
            ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    parser.add_argument(
        "--data", action="append", required=True, metavar="KIND:PATH", help=f"kinds: {', '.join(KINDS)}"
    )
    parser.add_argument("--folds", type=int, help="folds by person (default: each kind's own)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="folds at once, one process each (default: cores)",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run for tests: figures mean nothing")
    args = parser.parse_args(argv)
    try:
        data = [parse_data(spec) for spec in args.data]
        if args.folds is not None and args.folds < 2:
            raise ValueError(f"--folds: at least 2, got {args.folds}")
        if args.workers < 1:
            raise ValueError(f"--workers: at least 1, got {args.workers}")
        options = YardstickOptions(folds=args.folds, seed=args.seed, quick=args.quick, workers=args.workers)
        result = run(data, options)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(summary_lines(result)))
    print(f"written to {args.json} in {result['seconds']:.0f} s ({result['cpu_seconds']:.0f} CPU seconds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
