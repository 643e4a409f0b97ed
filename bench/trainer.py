"""Trainer benchmark: run the full synthetic pipeline and check the issue's goals; writes JSON.

    python -m bench.trainer [--out DIR] [--json FILE] [--seed N] [--fast]

Goals: selected INT8 >= 3.5x smaller than fp32 for speech and image, >= 3.0x for hr and eeg; selected INT8
within 1 pp of fp32 and >= TFLite int8 on every modality; fused >= best single + 3 pp; whole run <= 600 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

MIN_COMPRESSION = {"hr": 3.0, "eeg": 3.0, "speech": 3.5, "image": 3.5}


def goals(report: dict, wall_s: float, cpu_s: float | None = None) -> dict:
    """Each goal with its measured figure and whether it is met."""
    out: dict = {}
    for m, need in MIN_COMPRESSION.items():
        if m not in report:
            continue
        sel = report[m]["methods"][report[m]["selected"]]
        fp32 = report[m]["fp32"]["accuracy"]
        lite = report[m].get("tflite_int8", {}).get("accuracy")
        out[m] = {
            "selected": report[m]["selected"],
            "compression": sel["compression"],
            "compression_ok": sel["compression"] >= need,
            "drop_pp": round((fp32 - sel["accuracy"]) * 100, 2),
            "drop_ok": fp32 - sel["accuracy"] <= 0.01 + 1e-9,
            "int8_vs_tflite_pp": None if lite is None else round((sel["accuracy"] - lite) * 100, 2),
            "tflite_ok": lite is None or sel["accuracy"] >= lite,
        }
    fusion = report.get("fusion", {})
    if fusion:
        gain = fusion["accuracy"] - fusion["best_single_accuracy"]
        out["fusion"] = {"gain_pp": round(gain * 100, 2), "ok": gain >= 0.03}
    # cpu: this process's CPU seconds (all threads); on a shared machine wall time also counts others' load.
    out["seconds"] = {
        "wall": round(wall_s, 1),
        "cpu": None if cpu_s is None else round(cpu_s, 1),
        "ok": wall_s <= 600,
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="pipeline output directory (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=Path("bench/results/trainer.json"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--fast", action="store_true", help="tiny run (checks the bench itself, not the goals)"
    )
    args = parser.parse_args(argv)
    from mmer_cli.dispatch import main as mmer

    with tempfile.TemporaryDirectory(prefix="mmer-bench-") as tmp:
        out = args.out or Path(tmp)
        cmd = ["trainer", "pipeline", "--data", "synthetic", "--out", str(out), "--seed", str(args.seed)]
        started, cpu0 = time.monotonic(), time.process_time()
        rc = mmer([*cmd, "--fast"] if args.fast else cmd)
        wall, cpu = time.monotonic() - started, time.process_time() - cpu0
        if rc != 0:
            print(f"pipeline failed with exit code {rc}", file=sys.stderr)
            return rc
        report = json.loads((out / "report.json").read_text())
    result = {
        "bench": "trainer",
        "fast": args.fast,
        "seed": args.seed,
        "goals": goals(report, wall, cpu),
        "report": report,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["goals"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
