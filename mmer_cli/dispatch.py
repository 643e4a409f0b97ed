"""The `mmer` console script: one entry point, one subcommand per service.

Subcommands are loaded by module name only when chosen, so `mmer node` on an
edge device never imports the trainer's TensorFlow. The dispatcher sits above the
services; `mmer_core` and the services never import it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "node": ("edge_node.cli", "run an edge node: sensors -> INT8 models -> scored stream to a coordinator"),
    "coordinator": (
        "coordinator.cli",
        "run the coordinator: ingest, fusion, fused stream, registry, latency",
    ),
    "trainer": ("trainer.cli", "train, quantize, evaluate, sign and push per-modality models"),
    "subscribe": (
        "mmer_client.subscribe",
        "print the fused-emotion stream as NDJSON, resuming across restarts",
    ),
    "demo": ("mmer_demo.cli", "train if needed, start a coordinator and edge nodes, show fused emotions"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Build the top-level parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="mmer",
        description="Multimodal emotion recognition: edge nodes, a fusing coordinator and a trainer.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, summary) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=summary, description=summary)
        if name == chosen:
            importlib.import_module(module).configure(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; its return value is the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    return int(args.run(args) or 0)
