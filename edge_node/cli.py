"""`mmer node`: the edge agent's command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

# A small device has no cores to spare for BLAS worker threads that spin between calls (they cost
# ~13 % of a core here); set before numpy loads. ORT threads are set per session instead.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from edge_node.spool import SYNC_POLICIES  # noqa: E402
from mmer_core.config import DEFAULT_GRPC  # noqa: E402

AVAILABLE = True


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the edge node's options."""
    parser.description = (
        "Read sensors, window and preprocess them, score each window with the modality's INT8 model, "
        "spool the scores on disk and stream them to a coordinator; hot-swap signed models it pushes."
    )
    parser.add_argument("--coordinator", default=DEFAULT_GRPC, help="coordinator gRPC address HOST:PORT")
    parser.add_argument(
        "--device-id", required=True, help="this device's id (must be known to the coordinator)"
    )
    parser.add_argument("--subject", required=True, help="id of the person wearing the sensors")
    parser.add_argument(
        "--source",
        default="synthetic",
        help="synthetic[:SEED] | replay:PATH (.npz, sensor recording folder, E4 session folder, speech wav folder, DEAP sNN.dat, WESAD S<n>.pkl, "
        "FER2013 .csv) | lsl:NAME (live LSL streams named NAME)",
    )
    parser.add_argument(
        "--modalities", default="hr,eeg,speech,image", help="comma-separated modalities to run"
    )
    parser.add_argument(
        "--models", type=Path, default=Path("models"), help="bundle directory (one per modality)"
    )
    parser.add_argument("--trainer-pubkey", type=Path, help="Ed25519 public key that must sign every bundle")
    parser.add_argument(
        "--providers",
        default="CPUExecutionProvider",
        help="onnxruntime execution providers, in preference order",
    )
    parser.add_argument("--spool", type=Path, default=Path("mmer-spool"), help="on-disk spool directory")
    parser.add_argument("--token", default="", help="bearer token of this device (or MMER_TOKEN)")
    parser.add_argument("--tls-ca", type=Path, help="CA certificate to verify the coordinator (enables TLS)")
    parser.add_argument("--tls-cert", type=Path, help="client certificate for mutual TLS")
    parser.add_argument("--tls-key", type=Path, help="client key for mutual TLS")
    parser.add_argument("--fast", action="store_true", help="synthetic/replay sources as fast as possible")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds of source time")
    parser.add_argument("--stats-json", type=Path, help="write frames sent/acked/lost here on exit")
    parser.add_argument("--health-port", type=int, help="serve grpc.health.v1 on 127.0.0.1:PORT")
    parser.add_argument("--spool-max-frames", type=int, default=100_000, help="spool bound (frames)")
    parser.add_argument(
        "--drop-policy", default="drop-oldest", help="when the spool is full: drop-oldest|drop-newest"
    )
    parser.add_argument(
        "--spool-sync",
        default="batch",
        choices=SYNC_POLICIES,
        help="fsync policy of the spool: always (every frame, slow), batch (before each batch is sent, "
        "and at least every second: power loss loses no frame the coordinator has seen), never (OS "
        "write-back: power loss may lose frames and reuse their seqs); a process crash loses nothing under any",
    )
    parser.add_argument(
        "--batch-interval-ms",
        type=float,
        default=500.0,
        help="a batch of scores that is not full goes out at least this long after the previous one (0: each "
        "frame at once when nothing is in flight); one spool fsync and one gRPC write per batch",
    )
    parser.add_argument("--queue-max", type=int, default=64, help="inference queue bound (windows)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads per session")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the node until the source ends (or SIGTERM/SIGINT), then drain the spool and exit."""
    from edge_node.malloc import limit_arenas
    from edge_node.node import run_node  # imported lazily: `mmer --help` must not load onnxruntime
    from mmer_core.telemetry import otlp_enabled, setup_telemetry

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limit_arenas(1)  # before gRPC, onnxruntime and the inference thread start threads of their own
    try:
        if otlp_enabled():  # a device pays for the SDK only when someone collects its traces
            setup_telemetry("mmer-edge")
        return asyncio.run(run_node(args))
    except ValueError as exc:
        print(f"mmer node: {exc}", file=sys.stderr)
        return 2
