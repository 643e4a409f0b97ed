"""Wire the node together from command-line options: slots, spool, streamer, agent, health."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from pathlib import Path

from edge_node.agent import Agent
from edge_node.clock import ClockEstimate
from edge_node.inference import load_runner
from edge_node.models import ModelSlot
from edge_node.sources import open_source
from edge_node.spool import Spool
from edge_node.streamer import Streamer, make_channel
from edge_node.wearer_baselines import STATE_FILE, WearerBaselines
from mmer_core.bundle import PUBLIC_KEY_FILE, BundleError, load_public_key
from mmer_core.modalities import get_spec

log = logging.getLogger(__name__)


def parse_modalities(text: str) -> list[str]:
    mods = [m.strip() for m in text.split(",") if m.strip()]
    if not mods:
        raise ValueError("--modalities: at least one modality is required")
    for m in mods:
        get_spec(m)
    return mods


def load_slots(models: Path, modalities: list[str], public_key, providers: list[str], threads: int) -> dict:
    """A slot per modality; a bundle that is missing waits for the registry, a bad one is an error."""
    slots = {}
    for m in modalities:
        runner = None
        if (models / m).is_dir():
            runner = load_runner(models / m, public_key, providers, intra_op_threads=threads)
            log.info("%s: serving v%d from %s", m, runner.version, models / m)
        else:
            log.warning("%s: no bundle in %s yet; waiting for the registry", m, models / m)
        slots[m] = ModelSlot(m, runner)
    return slots


async def run_node(args: argparse.Namespace) -> int:
    modalities = parse_modalities(args.modalities)
    pub_path = args.trainer_pubkey or args.models / PUBLIC_KEY_FILE
    if not Path(pub_path).is_file():
        raise ValueError(f"--trainer-pubkey: no Ed25519 public key at {pub_path}")
    public_key = load_public_key(pub_path)
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    args.models.mkdir(parents=True, exist_ok=True)
    try:
        slots = load_slots(args.models, modalities, public_key, providers, args.threads)
    except BundleError as exc:
        raise ValueError(f"--models: {exc}") from None
    windows = open_source(args.source, modalities, args.subject, args.fast, args.seconds)
    token = args.token or os.environ.get("MMER_TOKEN", "")
    tls = [p.read_bytes() if p else None for p in (args.tls_ca, args.tls_cert, args.tls_key)]
    spool = Spool(args.spool, max_frames=args.spool_max_frames, policy=args.drop_policy, sync=args.spool_sync)
    clock = ClockEstimate()

    def channel():
        return make_channel(args.coordinator, *tls)

    streamer = Streamer(
        channel, spool, clock, args.device_id, token=token, batch_interval_s=args.batch_interval_ms / 1000
    )
    agent = Agent(
        args.device_id,
        args.subject,
        slots,
        spool,
        streamer,
        clock,
        public_key,
        args.models,
        providers,
        args.queue_max,
        WearerBaselines(args.spool / STATE_FILE, args.subject),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stopping.set)
    health = None
    if args.health_port is not None:
        # imported only when asked for: grpc_health's servicer and messages cost a node ~1.8 MB of RSS
        from edge_node.health import set_serving, start_health

        health, servicer, port = await start_health(args.health_port)
        log.info("health on 127.0.0.1:%d", port)

        async def mirror():
            while True:
                await set_serving(servicer, streamer.connected.is_set())
                await asyncio.sleep(0.5)

        mirror_task = asyncio.create_task(mirror())
    watch_channel = channel()
    try:
        await agent.run(windows, watch_channel)
    finally:
        await watch_channel.close()
        if health is not None:
            mirror_task.cancel()
            await health.stop(grace=None)
        spool.close()
        agent.baselines.save()
    if args.stats_json:
        args.stats_json.write_text(
            json.dumps(
                {
                    "frames_sent": streamer.stats.sent,
                    "frames_acked": streamer.stats.acked,
                    "frames_lost": spool.dropped,
                    "frames_refused": spool.refused,
                    "frames_unacked": spool.depth,
                    "windows": agent.counters.windows,
                    "windows_rejected": agent.counters.rejected,
                    "windows_unserved": agent.counters.unserved,
                    "windows_calibrating": agent.counters.calibrating,
                    "windows_no_face": agent.counters.no_face,
                    "queue_dropped": agent.counters.queue_dropped,
                    "reconnects": streamer.stats.reconnects,
                    "model_versions": {m: s.version for m, s in slots.items()},
                }
            )
        )
    log.info("node %s done: %s", args.device_id, agent.counters)
    return 0
