"""Fault suite: each scenario against a real redis + coordinator + edges on 127.0.0.1, figures as JSON.

    python -m bench.faults --json faults.json [--edges 4 --warm 5 --fault 3 --tail 8] [--only a,b]

JSON: scenarios.<name>.{produced, acked, fused, lost, duplicates, max_gap_s, recovery_s, ...} (see
testkit/fault_scenarios.py for what each figure counts) and goals.<name>: whether the scenario met
"0 acked frames lost, 0 duplicates, service back within 5 s" (and, for trainer_push, served within 5 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from testkit.fault_scenarios import SCENARIOS, Figures, Size, open_cluster

RECOVERY_GOAL_S = 5.0


def meets_goals(name: str, f: Figures) -> bool:
    """The issue's goals: 0 acked frames lost, 0 duplicates, service back within 5 s of the fault's end."""
    ok = f.lost == 0 and f.duplicates == 0 and f.unacked == 0 and f.subscriber_missing == 0
    ok = ok and f.recovery_s is not None and f.recovery_s <= RECOVERY_GOAL_S
    if name == "trainer_push":
        serving = f.extra.get("serving_s")
        ok = ok and serving is not None and serving <= RECOVERY_GOAL_S and f.windows_dropped == 0
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, required=True, help="write the figures here")
    p.add_argument("--edges", type=int, default=4, help="edges (one subject each) per scenario")
    p.add_argument("--warm", type=float, default=5.0, help="seconds of steady streaming before the fault")
    p.add_argument("--fault", type=float, default=3.0, help="seconds the fault lasts")
    p.add_argument("--tail", type=float, default=8.0, help="seconds after recovery before stopping")
    p.add_argument("--modalities", default="image,speech", help="modalities each edge runs")
    p.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        p.error(f"--only: unknown scenarios {sorted(unknown)} (known: {', '.join(SCENARIOS)})")
    if args.edges < 1:
        p.error("--edges: at least 1")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("edge_node").setLevel(logging.ERROR)  # reconnect warnings are the faults working
    size = Size(edges=args.edges, warm_s=args.warm, fault_s=args.fault, tail_s=args.tail)
    out: dict = {"size": vars(size), "modalities": args.modalities.split(","), "scenarios": {}, "goals": {}}
    with tempfile.TemporaryDirectory(prefix="mmer-faults-") as tmp:
        cluster = open_cluster(Path(tmp), args.modalities.split(","))
        try:
            for name in names:
                started = time.monotonic()
                try:
                    figures = SCENARIOS[name](cluster, size)
                except (TimeoutError, RuntimeError) as exc:  # one broken scenario must not hide the others
                    out["scenarios"][name] = {"error": str(exc)}
                    out["goals"][name] = False
                    print(f"{name}: failed: {exc}", flush=True)
                    continue
                out["scenarios"][name] = figures.to_json()
                out["goals"][name] = meets_goals(name, figures)
                took = time.monotonic() - started
                print(f"{name}: {json.dumps(figures.to_json())} ({took:.0f} s)", flush=True)
        finally:
            cluster.close()
    args.json.write_text(json.dumps(out, indent=2))
    return 0 if all(out["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
