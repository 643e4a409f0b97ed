"""`mmer demo`: the whole system on one machine, from nothing to a latency table."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options."""
    parser.add_argument(
        "--seconds",
        type=float,
        default=90.0,
        help="how long the edge nodes stream (default 90: the wrist's first 60 s window, then half a minute more)",
    )
    parser.add_argument("--devices", type=int, default=3, help="edge nodes, one subject each (default 3)")
    parser.add_argument("--json", type=Path, help="also write the final figures to this JSON file")
    parser.add_argument(
        "--models", type=Path, default=Path("models"), help="bundle directory; trained if empty"
    )
    parser.add_argument(
        "--store",
        choices=("auto", "memory", "redis"),
        default="auto",
        help="coordinator store: redis when redis-server is installed (auto), else the embedded memory store",
    )
    parser.add_argument(
        "--http-port", type=int, default=8080, help="dashboard port on 127.0.0.1 (0 = any free)"
    )
    parser.add_argument("--retrain", action="store_true", help="train new models even if bundles exist")
    parser.add_argument("--run-dir", type=Path, default=Path(".mmer-demo"), help="logs, spools and state")
    parser.add_argument(
        "--preview", action="store_true", help="only stream synthetic sensor data through the preprocessing"
    )
    parser.add_argument("--speed", type=float, default=4.0, help="preview pace, times real time (default 4)")
    parser.set_defaults(run=run)


def services_ready() -> list[str]:
    """The services whose command is not built yet (their cli module says AVAILABLE = False)."""
    missing = []
    for module in ("trainer.cli", "coordinator.cli", "edge_node.cli"):
        if not getattr(importlib.import_module(module), "AVAILABLE", False):
            missing.append(module.split(".")[0])
    return missing


def run(args: argparse.Namespace) -> int:
    """Run the demo; the orchestration lives in mmer_demo.orchestrate."""
    missing = services_ready()
    if args.preview or missing:
        from mmer_demo.preview import run_preview

        if missing:
            print(f"[demo] not built yet: {', '.join(missing)}; the end-to-end demo needs all three services")
        return run_preview(args.seconds, args.devices, args.json, args.speed)

    from mmer_demo.orchestrate import DemoOptions, run_demo

    options = DemoOptions(
        seconds=args.seconds,
        devices=args.devices,
        json_path=args.json,
        models=args.models,
        store=args.store,
        http_port=args.http_port,
        retrain=args.retrain,
        run_dir=args.run_dir,
    )
    return run_demo(options)
