"""Assemble and run the coordinator's grpc.aio server, with health checks and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from coordinator.assembly import open_coordinator, open_store
from coordinator.auth import AuthInterceptor, Principal, load_tokens
from coordinator.http import start_http
from coordinator.registry_service import RegistryService
from coordinator.rpc_errors import ErrorStatusInterceptor
from coordinator.service import AdminService, ClockService, Coordinator, FusionService, IngestService
from mmer.v1 import admin_pb2_grpc, clock_pb2_grpc, fusion_pb2_grpc, ingest_pb2_grpc, registry_pb2_grpc
from mmer_core import bundle
from mmer_core.config import CoordinatorConfig

log = logging.getLogger("mmer.coordinator")
GC_YOUNG_THRESHOLD = 10_000  # allocations between young-generation collections (CPython's default: 700)
SERVICES = ("mmer.v1.Ingest", "mmer.v1.Fusion", "mmer.v1.Registry", "mmer.v1.Clock", "mmer.v1.Admin")


@dataclass(frozen=True)
class TlsFiles:
    """Server certificate and key; a client CA turns on mutual TLS (client certificates required)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        ca = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )


async def build_server(
    app: Coordinator,
    listen: str,
    tls: TlsFiles | None = None,
    reuse_port: bool = False,
    *,
    tokens: Mapping[str, Principal] | None = None,
) -> tuple[grpc.aio.Server, int, health.HealthServicer]:
    """A started server on `listen` (port 0 picks one) serving `app`; returns it, its port and its health
    servicer. tokens: the callers allowed and their roles (None: no authentication)."""
    limit = app.config.max_message_bytes
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    interceptors = [aio_server_interceptor()]  # continues the edge's trace from the gRPC metadata
    if tokens is not None:
        interceptors.append(AuthInterceptor(tokens))
    interceptors.append(ErrorStatusInterceptor())  # innermost: failures -> status codes, in one table
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
    )
    ingest_pb2_grpc.add_IngestServicer_to_server(IngestService(app, tokens), server)
    fusion_pb2_grpc.add_FusionServicer_to_server(
        FusionService(app.hub, app.store, app.config.subscriber_buffer, tokens), server
    )
    clock_pb2_grpc.add_ClockServicer_to_server(ClockService(app.config.clock_tolerance_ms), server)
    admin_pb2_grpc.add_AdminServicer_to_server(AdminService(app.stats), server)
    registry_pb2_grpc.add_RegistryServicer_to_server(
        RegistryService(app.registry, app.refresh_models), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # grpcurl, Postman and evans discover the services and their messages without the .proto files
    reflection.enable_server_reflection((*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_secure_port(listen, tls.credentials()) if tls else server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    for name in ("", *SERVICES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer


async def follow_registry(app: Coordinator, stop: asyncio.Event) -> None:
    """Apply registry changes made through other replicas (and tell this replica's WatchModels streams)."""
    async for modality, rollback in app.store.rollout_changes(stop):
        await app.registry.apply_change(modality, rollback)
        app.refresh_models()


def settle_garbage_collector() -> None:
    """Leave what start-up built (modules, config, registry) out of the collector's full passes, and collect
    the young generation less often: ingest allocates a few objects per frame that die within a batch, and
    with the defaults the collector's passes cost about a sixth of ingest."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def serve(
    config: CoordinatorConfig,
    store_url: str,
    listen: str,
    trainer_pubkey: Path | None = None,
    auth: Path | None = None,
    tls: TlsFiles | None = None,
    reuse_port: bool = False,
    http: str = "",
) -> None:
    """Run until SIGTERM/SIGINT: then report NOT_SERVING, stop accepting, drain, close the store."""
    key = bundle.load_public_key(trainer_pubkey) if trainer_pubkey else None
    tokens = load_tokens(auth) if auth else None
    app = await open_coordinator(config, open_store(store_url, config), key)
    settle_garbage_collector()
    server, port, health_servicer = await build_server(app, listen, tls, reuse_port, tokens=tokens)
    stop_following = asyncio.Event()
    follower = asyncio.create_task(follow_registry(app, stop_following))
    runner = await start_http(app, http, reuse_port, tls, tokens=tokens) if http else None
    log.info("coordinator listening on %s (port %d), store %s", listen, port, store_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: draining streams")
    for name in ("", *SERVICES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.stop(grace=5.0)
    stop_following.set()
    await asyncio.wait([follower], timeout=2.0)
    if runner is not None:
        await runner.cleanup()
    await app.close()
    log.info("stopped")
