"""Malformed request bytes answered with INVALID_ARGUMENT instead of grpc's UNKNOWN; streaming
responses always served by an async generator; responses serialized already sent as they are.

grpc.aio decodes a request before any servicer code runs and reports a decode
failure as UNKNOWN ("Unexpected DecodeError"), which clients and alerts read as
a server fault. This interceptor wraps each method's deserializer so that bytes
that are not the method's message reach the servicer as a marker, and the
call ends with INVALID_ARGUMENT naming the message type. Streaming requests
are checked message by message.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from google.protobuf.message import DecodeError


class Malformed:
    """Stands in for a request message whose bytes did not parse."""

    def __init__(self, error: str) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def parse(data: bytes) -> object:
        try:
            return deserializer(data)
        except DecodeError as exc:
            return Malformed(str(exc))

    return parse


def _passing_bytes(serializer: Callable[[object], bytes] | None) -> Callable[[object], bytes] | None:
    """The method's serializer, but a response the servicer serialized already (bytes: a fused emotion
    serialized once for every subscriber) goes out as it is."""
    if serializer is None:
        return None

    def serialize(response: object) -> bytes:
        return response if isinstance(response, bytes) else serializer(response)

    return serialize


async def _refuse(context: grpc.aio.ServicerContext, request: Malformed) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request: not a valid message ({request.error})")


async def _checked(requests: AsyncIterator, context: grpc.aio.ServicerContext) -> AsyncIterator:
    async for request in requests:
        if isinstance(request, Malformed):
            await _refuse(context, request)
        yield request


def _guard(behavior: Callable, streaming_request: bool, streaming_response: bool) -> Callable:
    """`behavior` checking its request(s) first. A streaming response is always an async generator: a
    servicer that streams with `await context.write()` (grpc's health Watch) is run inside one, because
    the OpenTelemetry interceptor iterates every streaming behavior with `async for`."""

    if streaming_response:

        async def stream(request, context):
            if not streaming_request and isinstance(request, Malformed):
                await _refuse(context, request)
            requests = _checked(request, context) if streaming_request else request
            if inspect.isasyncgenfunction(behavior):
                async for response in behavior(requests, context):
                    yield response
            else:
                await behavior(requests, context)

        return stream

    async def call(request, context):
        if not streaming_request and isinstance(request, Malformed):
            await _refuse(context, request)
        return await behavior(_checked(request, context) if streaming_request else request, context)

    return call


class WireGuardInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every method handler: malformed request bytes -> INVALID_ARGUMENT."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        kinds = (
            ("unary_unary", grpc.unary_unary_rpc_method_handler, False, False),
            ("unary_stream", grpc.unary_stream_rpc_method_handler, False, True),
            ("stream_unary", grpc.stream_unary_rpc_method_handler, True, False),
            ("stream_stream", grpc.stream_stream_rpc_method_handler, True, True),
        )
        for attr, make, streaming_request, streaming_response in kinds:
            behavior = getattr(handler, attr)
            if behavior is not None:
                return make(
                    _guard(behavior, streaming_request, streaming_response),
                    request_deserializer=_tolerant(handler.request_deserializer),
                    response_serializer=_passing_bytes(handler.response_serializer),
                )
        return handler
