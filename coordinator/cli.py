"""`mmer coordinator`: the cloud side's command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mmer_core.config import DEFAULT_GRPC, DEFAULT_HTTP

AVAILABLE = True


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the coordinator's options."""
    parser.description = (
        "Take score streams from edge nodes, fuse them into one emotion per subject, serve the fused stream, "
        "hold the model registry, and track latency hop by hop."
    )
    parser.add_argument("--listen", default=DEFAULT_GRPC, help="gRPC address HOST:PORT")
    parser.add_argument("--http", default=DEFAULT_HTTP, help="dashboard and Prometheus /metrics HOST:PORT")
    parser.add_argument(
        "--store",
        default="memory",
        help="memory | redis://HOST:PORT/DB | redis+cluster://HOST:PORT (any node of a Redis Cluster)",
    )
    parser.add_argument("--tls-cert", type=Path, help="server certificate (enables TLS)")
    parser.add_argument("--tls-key", type=Path, help="server private key")
    parser.add_argument("--tls-client-ca", type=Path, help="CA for client certificates (enables mutual TLS)")
    parser.add_argument("--auth", type=Path, help="token file: devices, subscribers and trainers")
    parser.add_argument("--trainer-pubkey", type=Path, help="Ed25519 key that must sign pushed bundles")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM; refuse options whose features are not built yet rather than ignore them."""
    import asyncio
    import logging

    from coordinator.server import TlsFiles, serve
    from mmer_core.config import load_config
    from mmer_core.telemetry import setup_telemetry

    if args.workers < 1 or (args.workers > 1 and not args.store.startswith("redis")):
        print(
            "mmer coordinator: --workers N > 1 needs --store redis://... (the replicas share it)",
            file=sys.stderr,
        )
        return 2
    if bool(args.tls_cert) != bool(args.tls_key) or (args.tls_client_ca and not args.tls_cert):
        print(
            "mmer coordinator: --tls-cert and --tls-key go together (and --tls-client-ca needs both)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config().coordinator
    setup_telemetry("mmer-coordinator", prometheus=True)
    try:
        tls = TlsFiles(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
        serve_args = (
            config,
            args.store,
            args.listen,
            args.trainer_pubkey,
            args.auth,
            tls,
            args.workers > 1,
            args.http,
        )
        if args.workers == 1:
            asyncio.run(serve(*serve_args))
        else:
            return run_workers(args.workers, serve_args)
    except (ValueError, OSError) as exc:
        print(f"mmer coordinator: {exc}", file=sys.stderr)
        return 2
    return 0


def _worker(serve_args: tuple) -> None:
    import asyncio
    import logging

    from coordinator.server import serve
    from mmer_core.telemetry import setup_telemetry

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    setup_telemetry("mmer-coordinator", prometheus=True)
    asyncio.run(serve(*serve_args))


def run_workers(n: int, serve_args: tuple) -> int:
    """N processes on one port (SO_REUSEPORT) sharing one Redis; SIGTERM is passed on to each."""
    import multiprocessing
    import signal

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(serve_args,), name=f"coordinator-{i}") for i in range(n)]
    for p in procs:
        p.start()

    def forward(signum, _frame) -> None:
        for p in procs:
            if p.pid and p.is_alive():
                os.kill(p.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()
    return max((p.exitcode or 0) for p in procs)
