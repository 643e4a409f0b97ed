"""`mmer subscribe`: the fused-emotion stream on stdout, one JSON object a line, resumed across restarts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path

from mmer_client.stream import FROM_NOW, Backoff, FusedStream, SubscribeError


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the subscriber's options."""
    parser.description = (
        "Print fused emotions as NDJSON (subject, window, label, probabilities, modalities with their weights, "
        "position), reconnecting with backoff and resuming after the last line printed."
    )
    parser.add_argument("--coordinator", required=True, help="coordinator gRPC address HOST:PORT")
    parser.add_argument(
        "--token-file", type=Path, required=True, help="file holding this subscriber's bearer token"
    )
    parser.add_argument(
        "--subject", action="append", default=[], help="only this subject (repeat for more; default: all)"
    )
    parser.add_argument(
        "--from",
        dest="start",
        default=FROM_NOW,
        metavar="POSITION",
        help="continue after this position (a line's 'position'); 0: all the coordinator holds; default: now",
    )
    parser.add_argument("--tls-ca", type=Path, help="CA certificate to verify the coordinator (enables TLS)")
    parser.add_argument(
        "--max-backoff", type=float, default=15.0, metavar="S", help="longest wait between reconnects"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print until SIGINT/SIGTERM (exit 0) or a refusal no retry can fix (exit 2)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        token = args.token_file.read_text().strip()
        ca = args.tls_ca.read_bytes() if args.tls_ca else None
    except OSError as exc:
        print(f"mmer subscribe: {exc}", file=sys.stderr)
        return 2
    if not token:
        print(f"mmer subscribe: {args.token_file} holds no token", file=sys.stderr)
        return 2
    if args.max_backoff <= 0:
        print("mmer subscribe: --max-backoff must be > 0", file=sys.stderr)
        return 2
    stream = FusedStream(
        args.coordinator,
        token,
        subjects=args.subject,
        start=args.start,
        tls_ca=ca,
        backoff=Backoff(cap_s=args.max_backoff),
    )
    try:
        asyncio.run(_print(stream))
    except SubscribeError as exc:
        print(f"mmer subscribe: the coordinator refused: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`): not an error
        with contextlib.suppress(OSError):
            sys.stdout.close()
    return 0


async def _print(stream: FusedStream) -> None:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        async for emotion in stream:
            sys.stdout.write(json.dumps(emotion.to_json()) + "\n")
            sys.stdout.flush()
