"""Render bench/RESULTS.md, and the README's real-data table, from the benchmarks' published JSON.

    python bench/results.py            # rewrite bench/RESULTS.md and the README block
    python bench/results.py --check    # exit 1 if either would change (a test runs this)

A benchmark's figures are published by copying the JSON it wrote to `bench/published/NAME.json` (NAME: the
benchmark, e.g. `realdata`, `edge`, `coordinator`); the documents are then rendered from those files, never
typed by hand. `bench/published/reference.json` holds published figures from the literature to stand beside
ours, by set name and metric, with their source.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PUBLISHED = HERE / "published"
RESULTS = HERE / "RESULTS.md"
README = HERE.parent / "README.md"
BEGIN, END = "<!-- realdata:begin (bench/results.py) -->", "<!-- realdata:end -->"
COMMANDS = {
    "realdata": "python bench/realdata.py --json FILE --data KIND:PATH ...",
    "trainer": "python bench/trainer.py --json FILE",
    "edge": "python -m bench.edge --json FILE --models DIR",
    "coordinator": "python bench/coordinator.py --devices 1000 --seconds 60 --store redis --json FILE",
    "faults": "python bench/faults.py --json FILE",
    "load": "python bench/load.py --json FILE",
}


def pct(entry: dict | None, metric: str) -> str:
    """A mean over folds as a fraction with its spread, or a dash."""
    if not entry or metric not in entry:
        return "-"
    sd = entry.get("sd", {}).get(metric)
    return f"{entry[metric]:.3f}" + (f" ± {sd:.3f}" if sd else "")


def realdata_table(data: dict, reference: dict) -> str:
    """One row per classifier and set (deployed int8 and fp32, every reference, the majority class), then the
    published figures that stand beside them."""
    rows = [
        "| set | split | classifier | accuracy | macro-F1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, s in sorted(data["sets"].items()):
        split = f"{s['folds']} folds by person, {s['subjects']} persons, per {s['unit']}"
        entries = [("**deployed int8**", s.get("deployed_int8")), ("deployed fp32", s.get("deployed_fp32"))]
        entries += [(ref, e) for ref, e in sorted(s.get("references", {}).items())]
        entries.append(("majority class", s.get("majority")))
        for label, entry in entries:
            rows.append(
                f"| {name} | {split} | {label} | {pct(entry, 'accuracy')} | {pct(entry, 'macro_f1')} |"
            )
        for suffix, deployed, refs in deployed_models(s)[1:]:
            for label, entry in [("**deployed int8**", deployed), *sorted(refs.items())]:
                rows.append(
                    f"| {name} | {split}{suffix} | {label} | {pct(entry, 'accuracy')} "
                    f"| {pct(entry, 'macro_f1')} |"
                )
        for ref, e in sorted(s.get("eight_classes", {}).items()):
            if ref != "published":
                rows.append(
                    f"| {name} | {split}, the 8 original emotions | {ref} (UAR {e['uar']:.3f}) "
                    f"| {pct(e, 'accuracy')} | {pct(e, 'macro_f1')} |"
                )
    if data.get("cross"):
        rows += ["", cross_table(data["cross"])]
    return "\n".join(rows + published_rows(data, reference))


def summary_table(data: dict, reference: dict, runs: list[dict]) -> str:
    """The README's block: per set, the deployed int8 model beside the best reference a device could run (no
    `-oracle` statistics), the oracle ceiling and the majority class; with runs of other seeds, each model's
    mean over them beside the best reference's, so that no one seed's luck is the headline; bench/RESULTS.md
    has every row."""
    rows = [
        "| set | split | deployed int8 | best reference | oracle ceiling | majority |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in sorted(data["sets"].items()):
        refs = s.get("references", {})
        best, best_entry = best_reference(refs)
        oracle = max(
            (r for r in refs if r.endswith("-oracle")), key=lambda r: refs[r]["macro_f1"], default=None
        )
        rows.append(
            f"| {name} | {s['folds']} folds by person, {s['subjects']} persons, per {s['unit']} "
            f"| {pair(s.get('deployed_int8'))} | {best or '-'}: {pair(best_entry)} "
            f"| {oracle or '-'}: {pair(refs.get(oracle))} | {s['majority']['accuracy']:.3f} |"
        )
    if len(runs) > 1:
        means = []
        for label, entries in runs_per_model(runs).items():
            deployed, best = run_means(entries)
            means.append(f"{label} {pair(deployed)} against {pair(best)}")
        seeds = ", ".join(str(run["seed"]) for run in runs)
        rows += [
            "",
            f"The table is the run at seed {runs[0]['seed']}; `bench/RESULTS.md` gives every seed's run (a seed "
            "sets the warm-up order, the folds and the initialisation). "
            f"Mean of the runs at seeds {seeds}, deployed int8 against the best reference: "
            + "; ".join(means)
            + ".",
        ]
    return "\n".join(rows + published_rows(data, reference))


def deployed_models(s: dict) -> list[tuple[str, dict, dict]]:
    """A set's deployed int8 models, each (what its rows' split adds, its entry, its references): the set's
    model, then the one a device with heart beats only runs, where the set reports it."""
    models = [("", s["deployed_int8"], s.get("references", {}))]
    if "deployed_int8_beats_only" in s:
        models.append((", beats only", s["deployed_int8_beats_only"], s.get("references_beats_only", {})))
    return models


def best_reference(references: dict) -> tuple[str | None, dict | None]:
    """The best of a model's references a device could run (no `-oracle` statistics), by macro-F1 then
    accuracy."""
    fair = {ref: e for ref, e in references.items() if not ref.endswith("-oracle")}
    best = max(fair, key=lambda ref: (fair[ref]["macro_f1"], fair[ref]["accuracy"]), default=None)
    return best, fair.get(best)


SeedRun = tuple[int, dict, str | None, dict | None]  # seed, deployed int8 entry, best reference, its entry


def runs_per_model(runs: list[dict]) -> dict[str, list[SeedRun]]:
    """Per deployed model ("set[, beats only]"), each run's seed, deployed int8 entry and best reference."""
    per_model: dict[str, list[SeedRun]] = {}
    for name in sorted(runs[0]["sets"]):
        for run in runs:
            for suffix, deployed, refs in deployed_models(run["sets"][name]) if name in run["sets"] else []:
                per_model.setdefault(f"{name}{suffix}", []).append(
                    (run["seed"], deployed, *best_reference(refs))
                )
    return per_model


def run_means(entries: list[SeedRun]) -> tuple[dict | None, dict | None]:
    """Mean accuracy and macro-F1 of the deployed model and of the best reference over the runs (None where
    a run lacks one)."""
    return tuple(
        {k: sum(run[i][k] for run in entries) / len(entries) for k in ("accuracy", "macro_f1")}
        if all(run[i] for run in entries)
        else None
        for i in (1, 3)
    )


def seed_table(runs: list[dict]) -> str:
    """Per set, the deployed int8 model and the best reference a device could run in each published run of
    another --seed (`bench/published/realdata-seedN.json`) and their mean: how much a figure owes to which
    utterances warmed a speaker's baseline up, to the folds and to the initialisation."""
    seeds = ", ".join(str(run["seed"]) for run in runs)
    rows = [
        f"Seeds {seeds} (each run orders every speaker's recordings, draws its folds and starts training from "
        "its seed):",
        "",
        "| set | seed | deployed int8 | best reference |",
        "| --- | --- | --- | --- |",
    ]
    for label, entries in runs_per_model(runs).items():
        for seed, deployed, best, best_entry in entries:
            rows.append(f"| {label} | {seed} | {pair(deployed)} | {best or '-'}: {pair(best_entry)} |")
        if len(entries) > 1:
            deployed, best = run_means(entries)
            rows.append(f"| {label} | mean of {len(entries)} | {pair(deployed)} | {pair(best)} |")
    return "\n".join(rows)


def pair(entry: dict | None) -> str:
    """accuracy / macro-F1 of an entry, or '-'."""
    if not entry:
        return "-"
    return f"{entry['accuracy']:.3f} / {entry['macro_f1']:.3f}"


def published_rows(data: dict, reference: dict) -> list[str]:
    published = [(name, p) for name in sorted(data["sets"]) for p in reference.get(name, [])]
    if not published:
        return []
    rows = ["", "Published person-independent figures on the same corpora, for orientation:", ""]
    rows += ["| set | task and split | figure | source |", "| --- | --- | --- | --- |"]
    return rows + [f"| {name} | {p['task']} | {p['figure']} | {p['source']} |" for name, p in published]


def cross_table(cross: dict) -> str:
    """What adding a corpus does: each corpus's people, on its own folds, scored by models trained on the other
    corpora only and on all of them (its test people never), beside the references trained on the same people."""
    rows = [
        "Across corpora: each corpus's people on its own folds, trained on the other corpora only or on all of "
        "them (the corpus's test people never). Trained on all, fold i of every corpus is held out at once and "
        "one model scores each corpus's fold i:",
        "",
        "| test people | trained on | classifier | accuracy | macro-F1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, c in sorted(cross.items()):
        test = f"{name}, {c['folds']} folds by person, {c['subjects']} persons"
        for trained in ("trained_on_others", "trained_on_all"):
            part = c[trained]
            on = " + ".join(part["corpora"])
            entries = [
                ("**deployed int8**", part.get("deployed_int8")),
                ("deployed fp32", part.get("deployed_fp32")),
            ]
            entries += [(ref, e) for ref, e in sorted(part.get("references", {}).items())]
            entries.append(("majority class", part.get("majority")))
            rows += [
                f"| {test} | {on} | {label} | {pct(e, 'accuracy')} | {pct(e, 'macro_f1')} |"
                for label, e in entries
            ]
    return "\n".join(rows)


def edge_section(data: dict) -> str:
    """The node's budget (CPU, memory, inference overhead) beside what was measured, what the figure includes,
    then the per-modality latencies and the rest of the run's figures."""
    realtime = data["realtime"]
    budget = data.get("budget", {})
    mods = data["modalities"]
    overhead = max(m["overhead_ratio"] for m in mods.values())
    rows = [
        f"Models: {data['models']}.",
        "",
        "| figure | measured | budget |",
        "| --- | --- | --- |",
        f"| CPU of one `mmer node`, all four modalities in real time, % of a core "
        f"| {realtime['cpu_percent_of_core']} | ≤ {budget.get('cpu_percent_of_core', '-')} |",
        f"| its memory, {realtime.get('rss_mb_how', 'max RSS while measured')} (MB) | {realtime['rss_mb']} "
        f"| ≤ {budget.get('rss_mb', '-')} |",
        f"| node inference path vs bare onnxruntime, worst modality (×) | {overhead} "
        f"| ≤ {budget.get('overhead_ratio', '-')} |",
        "",
        f"Over {realtime['seconds']} s after a {realtime.get('warmup_seconds', '-')} s warm-up. "
        f"Source: {realtime.get('source', '-')}.",
        "",
        "| modality | model | preprocess p50 / p99 (ms) | wearer baseline p50 (ms) | inference p50 / p99 (ms) "
        "| bare ORT p50 (ms) | overhead (×) | windows |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in mods.items():
        baseline = m.get("wearer_baseline_ms_p50")
        rows.append(
            f"| {name} | {model_cell(m.get('model'))} | {m['preprocess_ms_p50']} / {m['preprocess_ms_p99']} "
            f"| {'-' if baseline is None else baseline} "
            f"| {m['inference_ms_p50']} / {m['inference_ms_p99']} | {m['bare_ort_ms_p50']} "
            f"| {m['overhead_ratio']} | {m['windows']} |"
        )
    rest = {k: v for k, v in data.items() if k not in ("models", "modalities", "budget")}
    rest["realtime"] = {k: v for k, v in realtime.items() if k != "source"}
    return "\n".join([*rows, "", generic_section(rest)])


def model_cell(model: dict | None) -> str:
    """A bundle's version, INT8 calibration, size and training data, or '-'."""
    if not model:
        return "-"
    return (
        f"v{model['version']}, {model['quantization']}, {model['bytes'] / 1024:.0f} KiB, "
        f"training data: {model['training_data']}"
    )


def flat_rows(value: object, prefix: str = "") -> list[tuple[str, str]]:
    """Every scalar of a JSON document as (dotted key, value); lists of scalars joined."""
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in flat_rows(v, f"{prefix}.{k}" if prefix else k)]
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join(str(v) for v in value))]
        return [row for i, v in enumerate(value) for row in flat_rows(v, f"{prefix}[{i}]")]
    return [(prefix, str(value))]


def generic_section(data: dict) -> str:
    """A benchmark without a table of its own: every figure it wrote, one row each."""
    rows = ["| figure | value |", "| --- | --- |"]
    rows += [f"| `{key}` | {value} |" for key, value in flat_rows(data)]
    return "\n".join(rows)


def render() -> tuple[str, str | None]:
    """(RESULTS.md, the README's real-data block or None when no real-data JSON is published)."""
    reference = (
        json.loads((PUBLISHED / "reference.json").read_text())
        if (PUBLISHED / "reference.json").exists()
        else {}
    )
    parts = [
        "# Benchmark results",
        "",
        "Rendered by `python bench/results.py` from the JSON in `bench/published/`; do not edit by hand.",
        "Every benchmark runs on one 2-core machine; each section names the command that wrote its JSON.",
    ]
    block = None
    for name, command in COMMANDS.items():
        path = PUBLISHED / f"{name}.json"
        parts += ["", f"## {name}", "", f"`{command}`", ""]
        if not path.exists():
            parts.append(
                f"Not published yet: run the command and copy its JSON to `bench/published/{name}.json`."
            )
            continue
        data = json.loads(path.read_text())
        if name == "realdata":
            others = [json.loads(p.read_text()) for p in sorted(PUBLISHED.glob("realdata-seed*.json"))]
            runs = [data, *others]
            seeded = bool(others) and all("seed" in run for run in runs)
            spread = seed_table(runs) if seeded else ""
            block = summary_table(data, reference, runs if seeded else [data])
            parts += [
                realdata_table(data, reference),
                "",
                f"The whole run took {data['seconds'] / 60:.0f} min.",
            ]
            if spread:
                parts += ["", spread]
        elif name == "edge":
            parts.append(edge_section(data))
        else:
            parts.append(generic_section(data))
    return "\n".join(parts) + "\n", block


def with_block(readme: str, block: str) -> str:
    """The README with its real-data block replaced by `block`; ValueError if the markers are missing."""
    head, begin, rest = readme.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"README.md has no {BEGIN} ... {END} block")
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a document would change")
    args = parser.parse_args(argv)
    results, block = render()
    readme = README.read_text()
    new_readme = with_block(readme, block) if block is not None else readme
    stale = [
        p.name
        for p, old, new in (
            (RESULTS, RESULTS.read_text() if RESULTS.exists() else "", results),
            (README, readme, new_readme),
        )
        if old != new
    ]
    if args.check:
        if stale:
            print(f"out of date: {', '.join(stale)} (run python bench/results.py)", file=sys.stderr)
        return 1 if stale else 0
    RESULTS.write_text(results)
    README.write_text(new_readme)
    print(
        f"rendered {RESULTS.relative_to(HERE.parent)}"
        + (" and the README's real-data table" if block else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
