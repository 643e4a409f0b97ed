"""The coordinator's HTTP side (aiohttp): dashboard page, server-sent events, Prometheus /metrics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web

from mmer.v1 import fusion_pb2

STATIC = Path(__file__).parent / "dashboard" / "static"
SNAPSHOT_SUBJECTS = 64


def fused_json(e: fusion_pb2.FusedEmotion) -> dict:
    return {
        "subject_id": e.subject_id, "label": e.label, "labels": list(e.taxonomy.labels),
        "probs": list(e.probs), "window_end_ms": e.window_end_ns / 1e6, "truth_label": e.truth_label,
        "strategy": e.strategy, "position": e.position,
        "contributions": [
            {"modality": c.modality, "weight": c.weight, "probs": list(c.probs), "model_version": c.model_version}
            for c in e.contributions
        ],
    }  # fmt: skip


def stats_json(app) -> dict:
    s = app.stats()
    return {
        "latencies": [
            {"hop": h.hop, "modality": h.modality, "count": h.summary.count, "p50_ms": h.summary.p50_ms,
             "p95_ms": h.summary.p95_ms, "p99_ms": h.summary.p99_ms, "max_ms": h.summary.max_ms}
            for h in s.latencies
        ],
        "devices": [
            {"device_id": d.device_id, "subject_id": d.subject_id, "model_versions": dict(d.model_versions),
             "spool_depth": d.spool_depth, "queue_depth": d.queue_depth, "frames_dropped": d.frames_dropped,
             "last_seen_ms": d.last_seen_ns / 1e6}
            for d in s.devices
        ],
        "counters": dict(s.counters),
        "histograms": [
            {"hop": hop, "buckets": hist.buckets()}
            for (hop, modality), hist in sorted(app.latency.hists.items()) if modality == "" and hist.count
        ],
    }  # fmt: skip


def build_http_app(app) -> web.Application:
    """Routes over one coordinator's state."""

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def metrics(_: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        app.hops.flush()
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        sub = app.hub.subscribe(None, app.config.subscriber_buffer)

        async def send(event: str, data: dict) -> None:
            await resp.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

        try:
            latest = await app.store.latest(None)
            await send("snapshot", {"fused": [fused_json(e) for e in latest[:SNAPSHOT_SUBJECTS]],
                                    "stats": stats_json(app)})  # fmt: skip
            next_stats = asyncio.get_running_loop().time() + 1
            while not sub.overflowed:
                timeout = max(next_stats - asyncio.get_running_loop().time(), 0)
                try:
                    emotion = await asyncio.wait_for(sub.queue.get(), timeout)
                    await send("fused", fused_json(emotion))
                except TimeoutError:
                    await send("stats", stats_json(app))
                    next_stats = asyncio.get_running_loop().time() + 1
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            app.hub.unsubscribe(sub)
        return resp

    web_app = web.Application()
    web_app.router.add_get("/", index)
    web_app.router.add_get("/events", events)
    web_app.router.add_get("/metrics", metrics)
    web_app.router.add_static("/static", STATIC)
    return web_app


async def start_http(app, listen: str, reuse_port: bool = False) -> web.AppRunner:
    """Serve the HTTP side on HOST:PORT; returns the runner to clean up at shutdown."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(build_http_app(app), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host or "127.0.0.1", int(port), reuse_port=reuse_port or None)
    await site.start()
    return runner
