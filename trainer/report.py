"""The human side of report.json: a Markdown summary and PNG plots."""

from __future__ import annotations

from pathlib import Path

MODALITY_KEYS = ("hr", "eeg", "speech", "image")


def _modalities(report: dict) -> list[str]:
    return [m for m in MODALITY_KEYS if m in report]


def _baseline(windows: int) -> str:
    return f"after {windows} calibration windows (hr, eeg)" if windows else "none"


def write_markdown(report: dict, path: Path) -> None:
    """Per-modality table of fp32, every INT8 method and TFLite, then fusion."""
    lines = [
        f"# mmer trainer report\n\nData: {report.get('data', '?')}; split: **{report['split']}**; "
        f"class weights: {report.get('class_weights', 'none')}; "
        f"wearer baseline: {_baseline(report.get('wearer_baseline', 0))}; {report['seconds']:.0f} s.\n"
    ]
    for m in _modalities(report):
        r = report[m]
        lines += [
            f"\n## {m}\n",
            "| model | accuracy | macro-F1 | bytes | compression | efficiency | p50 ms | p99 ms |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| fp32 | {r['fp32']['accuracy']:.3f} | {r['fp32']['macro_f1']:.3f} | {r['fp32']['bytes']} | 1.00 | 1.00 | "
            f"{r['fp32']['latency_ms_p50']:.3f} | {r['fp32']['latency_ms_p99']:.3f} |",
        ]
        for method, e in r["methods"].items():
            mark = " **(selected)**" if method == r["selected"] else ""
            lines.append(
                f"| int8 {method}{mark} | {e['accuracy']:.3f} | {e['macro_f1']:.3f} | {e['bytes']} | "
                f"{e['compression']:.2f} | {e['efficiency']:.2f} | {e['latency_ms_p50']:.3f} | {e['latency_ms_p99']:.3f} |"
            )
        if "tflite_int8" in r:
            t = r["tflite_int8"]
            lines.append(
                f"| TFLite int8 | {t['accuracy']:.3f} | {t['macro_f1']:.3f} | {t['bytes']} | "
                f"{r['fp32']['bytes'] / t['bytes']:.2f} | | {t['latency_ms_p50']:.3f} | {t['latency_ms_p99']:.3f} |"
            )
        lines += _corpus_lines(r.get("corpora", {}))
    f = report.get("fusion")
    if f:
        lines += [
            f"\n## Fusion ({f['strategy']}, {f['instants']} aligned test instants)\n",
            f"Fused accuracy **{f['accuracy']:.3f}**, best single modality {f['best_single_accuracy']:.3f}.\n",
            "| left out | fused accuracy |",
            "| --- | --- |",
            *[f"| {m} | {a:.3f} |" for m, a in f["without"].items()],
            "\n| strategy | fused accuracy |",
            "| --- | --- |",
            *[f"| {s} | {a:.3f} |" for s, a in f["strategies"].items()],
        ]
    path.write_text("\n".join(lines) + "\n")


def _corpus_lines(corpora: dict) -> list[str]:
    """Each corpus's share of the data, its people per part, and the int8 model's figures on its test people."""
    if not corpora:
        return []
    lines = [
        "\n| corpus | share | people train/val/test | labels | int8 accuracy / macro-F1 on its test people "
        "| fp32 | majority |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in corpora.items():
        people = "/".join(str(c["people"][p]) for p in ("train", "val", "test"))
        labels = ", ".join(f"{label} {n}" for label, n in c["labels"].items())
        figures = [
            f"{c['test'][m]['accuracy']:.3f} / {c['test'][m]['macro_f1']:.3f}" if m in c["test"] else "-"
            for m in ("int8", "fp32", "majority")
        ]
        lines.append(f"| {name or '-'} | {c['share']:.1%} | {people} | {labels} | {' | '.join(figures)} |")
    return lines


def write_plots(report: dict, out: Path) -> None:
    """Confusion matrices, accuracy vs compression per method, and latency, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mods = _modalities(report)
    fig, axes = plt.subplots(1, len(mods), figsize=(3.2 * len(mods), 3.2), squeeze=False)
    for ax, m in zip(axes[0], mods, strict=True):
        r = report[m]
        cm = r["methods"][r["selected"]]["confusion"]
        ax.imshow(cm, cmap="Blues")
        ax.set_title(f"{m}: int8 {r['selected']}", fontsize=9)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for i, row in enumerate(cm):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for m in mods:
        r = report[m]
        xs = [1.0] + [e["compression"] for e in r["methods"].values()]
        ys = [r["fp32"]["accuracy"]] + [e["accuracy"] for e in r["methods"].values()]
        ax.plot(xs, ys, "o", label=m)
        for label, x, y in zip(["fp32", *r["methods"]], xs, ys, strict=True):
            ax.annotate(label, (x, y), fontsize=6)
    ax.set_xlabel("compression (fp32 bytes / model bytes)")
    ax.set_ylabel("test accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_compression.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = ["fp32", *next(iter(report[m]["methods"] for m in mods))]
    width = 0.8 / len(mods)
    for i, m in enumerate(mods):
        r = report[m]
        values = [r["fp32"]["latency_ms_p50"]] + [r["methods"][n]["latency_ms_p50"] for n in names[1:]]
        ax.bar([j + i * width for j in range(len(names))], values, width, label=m)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names, fontsize=7)
    ax.set_ylabel("batch-1 latency p50 (ms)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)
