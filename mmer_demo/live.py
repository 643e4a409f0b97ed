"""Watch the fused stream live, print it beside the truth, and gather the final figures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from mmer.v1 import admin_pb2, admin_pb2_grpc, fusion_pb2
from mmer_client import FusedEmotion, FusedStream
from mmer_demo.processes import ProcessGroup

# Each hop of a fused emotion's latency and what it spans, in the order a window lives through them.
HOPS = {
    "queue": "window end -> inference start, on the node",
    "inference": "the INT8 model scoring the window",
    "spool": "written to the node's on-disk spool",
    "network": "node -> coordinator, clocks synchronised",
    "wait": "waiting for the subject's other signals",
    "fuse": "fusing the window on the coordinator",
    "publish": "into the fused stream",
    "total": "window end -> fused emotion published",
}


@dataclass
class DemoResult:
    """What the demo measured, for the table and the JSON file."""

    fused_hits: int = 0
    fused_total: int = 0
    modality_hits: Counter = field(default_factory=Counter)
    modality_total: Counter = field(default_factory=Counter)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    frames_sent: int = 0
    frames_acked: int = 0
    frames_lost: int = 0
    model_versions: dict[str, dict[str, int]] = field(default_factory=dict)
    store: str = "memory"
    push_to_serving_s: float | None = None

    @property
    def fused_accuracy(self) -> float:
        return self.fused_hits / self.fused_total if self.fused_total else 0.0

    def modality_accuracy(self) -> dict[str, float]:
        return {m: self.modality_hits[m] / n for m, n in sorted(self.modality_total.items()) if n}

    def add(self, emotion: fusion_pb2.FusedEmotion) -> None:
        """Count one fused emotion and its contributing modalities against the truth."""
        truth = emotion.truth_label
        if not truth:
            return
        labels = list(emotion.taxonomy.labels)
        self.fused_total += 1
        self.fused_hits += emotion.label == truth
        for c in emotion.contributions:
            if c.probs:
                self.modality_total[c.modality] += 1
                self.modality_hits[c.modality] += (
                    labels[max(range(len(c.probs)), key=c.probs.__getitem__)] == truth
                )

    def add_stats(self, stats: admin_pb2.Stats) -> None:
        """Latency per hop (all modalities) and model versions per device from Admin.GetStats."""
        for h in stats.latencies:
            if h.modality == "" and h.summary.count:
                self.latency[h.hop] = {"p50": round(h.summary.p50_ms, 2), "p99": round(h.summary.p99_ms, 2)}
        for d in stats.devices:
            self.model_versions[d.device_id] = dict(d.model_versions)

    def add_node_stats(self, paths: list[Path]) -> None:
        """Frames sent/acked/lost as each node counted them at its clean exit."""
        for path in paths:
            if not path.exists():
                self.frames_lost += 1
                continue
            stats = json.loads(path.read_text())
            self.frames_sent += int(stats["frames_sent"])
            self.frames_acked += int(stats["frames_acked"])
            self.frames_lost += int(stats["frames_lost"])

    def to_json(self) -> dict:
        return {
            "fused_accuracy": round(self.fused_accuracy, 4),
            "fused_windows": self.fused_total,
            "modality_accuracy": {m: round(a, 4) for m, a in self.modality_accuracy().items()},
            "frames": {"sent": self.frames_sent, "acked": self.frames_acked, "lost": self.frames_lost},
            "latency_ms": self.latency,
            "model_versions": self.model_versions,
            "push_to_serving_s": None if self.push_to_serving_s is None else round(self.push_to_serving_s, 2),
            "store": self.store,
        }

    def table(self) -> str:
        """The demo's figures, each line saying what it measures and in which unit."""
        rows = ["", "Accuracy against the synthetic truth (share of 1 s windows labelled right)"]
        rows.append(
            f"  {'fused stream':<24} {100 * self.fused_accuracy:5.1f} %   ({self.fused_total} windows)"
        )
        for m, a in sorted(self.modality_accuracy().items(), key=lambda item: -item[1]):
            rows.append(f"  {m + ' alone':<24} {100 * a:5.1f} %")
        rows += [
            "",
            f"Frames from the nodes: {self.frames_sent} sent, {self.frames_acked} acked by the coordinator, "
            f"{self.frames_lost} lost",
            "",
            f"  {'Latency per hop, ms':<24} {'p50':>8} {'p99':>8}   what the hop spans",
        ]
        for hop, spans in HOPS.items():
            if hop in self.latency:
                p50, p99 = self.latency[hop]["p50"], self.latency[hop]["p99"]
                rows.append(f"  {hop:<24} {p50:8.2f} {p99:8.2f}   {spans}")
        rows += ["", "Model version each node serves, per modality"]
        for device, versions in sorted(self.model_versions.items()):
            rows.append(f"  {device:<24} " + ", ".join(f"{m} v{v}" for m, v in sorted(versions.items())))
        if self.push_to_serving_s is not None:
            rows.append(
                f"  every node served the pushed models {self.push_to_serving_s:.1f} s after the push began"
            )
        rows.append(f"\nStore: {self.store}")
        return "\n".join(rows)


def wait_until_serving(
    address: str, token: str, devices: list[str], modalities: list[str], timeout_s: float = 30.0
) -> float | None:
    """Seconds until every device reports a model version for every modality (None on timeout)."""
    metadata = (("authorization", f"Bearer {token}"),)
    started = time.monotonic()
    with grpc.insecure_channel(address) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        while time.monotonic() - started < timeout_s:
            stats = stub.GetStats(admin_pb2.GetStatsRequest(), metadata=metadata, timeout=5)
            versions = {d.device_id: d.model_versions for d in stats.devices}
            if all(all(versions.get(d, {}).get(m, 0) > 0 for m in modalities) for d in devices):
                return time.monotonic() - started
            time.sleep(0.05)
    return None


def watch(address: str, token: str, subjects: list[str], seconds: float, group: ProcessGroup) -> DemoResult:
    """Subscribe for `seconds`, print one line per subject per second, return the figures."""
    result = asyncio.run(_watch(address, token, subjects, seconds, group))
    metadata = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(address) as channel:
        stats = admin_pb2_grpc.AdminStub(channel).GetStats(
            admin_pb2.GetStatsRequest(), metadata=metadata, timeout=5
        )
    result.add_stats(stats)
    return result


async def _watch(
    address: str, token: str, subjects: list[str], seconds: float, group: ProcessGroup
) -> DemoResult:
    """Read the fused stream through mmer_client while checking every half second that the processes live."""
    result = DemoResult()
    received: asyncio.Queue[FusedEmotion] = asyncio.Queue()

    async def read() -> None:
        async for emotion in FusedStream(address, token, subjects=subjects):
            received.put_nowait(emotion)

    reader = asyncio.create_task(read())
    last_print: dict[str, float] = defaultdict(float)
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            group.check_alive()
            if reader.done():
                reader.result()  # a refusal no reconnect fixes
            try:
                async with asyncio.timeout(min(left, 0.5)):
                    emotion = await received.get()
            except TimeoutError:
                continue
            result.add(emotion.message)
            now = time.monotonic()
            if now - last_print[emotion.subject] >= 1.0:
                last_print[emotion.subject] = now
                print(_line(emotion.message), flush=True)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return result


def _line(emotion: fusion_pb2.FusedEmotion) -> str:
    """One fused emotion: subject, label and its probability (the confidence), the truth, and the signals that
    took part with the share of the fused score each carried (fusion weights, not scores)."""
    truth = emotion.truth_label or "?"
    verdict = "right" if emotion.label == truth else "WRONG"
    weights = ", ".join(f"{c.modality} {c.weight:.2f}" for c in emotion.contributions)
    return (
        f"{emotion.subject_id:<10} {emotion.label:<6} confidence {max(emotion.probs):.2f}  "
        f"truth {truth:<6} {verdict:<5}  from {weights} (weights)  {emotion.latency.total_ms:6.1f} ms"
    )
