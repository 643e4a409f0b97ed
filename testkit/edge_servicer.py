"""A small coordinator-side gRPC server for the edge tests: Ingest, Clock and Registry on 127.0.0.1.

It de-duplicates by (device, modality, seq) and acks the highest contiguous
seq, as the real coordinator does, so the tests can count arrivals exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import grpc

from mmer.v1 import clock_pb2, clock_pb2_grpc, ingest_pb2, ingest_pb2_grpc, registry_pb2, registry_pb2_grpc


class Store:
    """What the test server received; survives server restarts."""

    def __init__(self) -> None:
        self.frames: dict[tuple[str, str], list] = defaultdict(list)
        self.contiguous: dict[tuple[str, str], int] = defaultdict(int)
        self.duplicates = 0
        self.dropped: list[tuple[str, int]] = []  # (modality, seq) of every duplicate dropped
        self.gaps = 0
        self.withhold_acks = False  # store frames but never ack them, as a server that dies before acking
        self.auth: list[str] = []
        self.traceparents: list[str] = []
        self.batch_sizes: list[int] = []
        self.status: list = []
        self.bundles: dict[tuple[str, int], tuple] = {}
        self.updates: asyncio.Queue = asyncio.Queue()

    def seqs(self, modality: str, device: str = "dev1") -> list[int]:
        return [f.seq for f in self.frames[(device, modality)]]


class Ingest(ingest_pb2_grpc.IngestServicer):
    def __init__(self, store: Store) -> None:
        self.store = store

    async def StreamScores(self, request_iterator, context):
        md = dict(context.invocation_metadata())
        self.store.auth.append(md.get("authorization", ""))
        if "traceparent" in md:
            self.store.traceparents.append(md["traceparent"])
        async for batch in request_iterator:
            s = self.store
            s.batch_sizes.append(len(batch.frames))
            if batch.HasField("status"):
                s.status.append(batch.status)
            dup = gaps = 0
            touched = set()
            for f in batch.frames:
                key = (f.device_id, f.modality)
                touched.add(key)
                if f.seq <= s.contiguous[key]:
                    dup += 1
                    s.duplicates += 1
                    s.dropped.append((f.modality, f.seq))
                    continue
                if f.seq != s.contiguous[key] + 1:
                    gaps += 1
                    s.gaps += 1
                s.frames[key].append(f)
                s.contiguous[key] = f.seq
            if s.withhold_acks:
                continue
            yield ingest_pb2.Ack(
                batch_id=batch.batch_id,
                acks=[
                    ingest_pb2.ModalityAck(device_id=d, modality=m, acked_seq=s.contiguous[(d, m)])
                    for d, m in touched
                ],
                duplicates=dup,
                gaps=gaps,
                receive_ns=time.time_ns(),
            )


class Clock(clock_pb2_grpc.ClockServicer):
    def __init__(self, skew_ns: int = 0) -> None:
        self.skew_ns = skew_ns

    async def Sync(self, request, context):
        t1 = time.time_ns() + self.skew_ns
        return clock_pb2.SyncResponse(
            t0_device_ns=request.t0_device_ns, t1_ns=t1, t2_ns=time.time_ns() + self.skew_ns, tolerance_ms=50
        )


class Registry(registry_pb2_grpc.RegistryServicer):
    def __init__(self, store: Store) -> None:
        self.store = store

    async def WatchModels(self, request, context):
        while True:
            yield await self.store.updates.get()

    async def GetModel(self, request, context):
        manifest, blobs = self.store.bundles[(request.modality, request.version)]
        yield registry_pb2.BundleChunk(manifest=manifest)
        for f in manifest.files:
            data = blobs[f.name]
            for off in range(0, max(len(data), 1), 1 << 20):
                yield registry_pb2.BundleChunk(
                    file=registry_pb2.FileChunk(name=f.name, offset=off, data=data[off : off + (1 << 20)])
                )


class EdgeTestServer:
    """Start/stop the servicers on a fixed 127.0.0.1 port; the store outlives restarts."""

    def __init__(self, skew_ns: int = 0) -> None:
        self.store = Store()
        self.port = 0
        self.skew_ns = skew_ns
        self.server: grpc.aio.Server | None = None

    async def start(self) -> None:
        self.server = grpc.aio.server()
        ingest_pb2_grpc.add_IngestServicer_to_server(Ingest(self.store), self.server)
        clock_pb2_grpc.add_ClockServicer_to_server(Clock(self.skew_ns), self.server)
        registry_pb2_grpc.add_RegistryServicer_to_server(Registry(self.store), self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=None)
            self.server = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"
