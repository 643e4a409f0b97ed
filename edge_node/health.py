"""Standard grpc.health.v1 for a local probe: SERVING while the stream is connected."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVICE = "mmer.edge"


async def start_health(
    port: int, host: str = "127.0.0.1"
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    """Serve health on host:port (0 picks a port); returns the server, servicer and bound port."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await servicer.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, servicer, bound


async def set_serving(servicer: health.aio.HealthServicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    await servicer.set(SERVICE, status)
