"""What each failure of a call to the coordinator answers over gRPC, in one table, applied by one interceptor.

The services raise their own exceptions (a frame refused, the store away, a registry refusal) and never pick
a status code; the interceptor ends the call with the status the table names for the exception, the way a
web framework keeps its exception handlers in one place. Anything not in the table is a bug and stays
what grpc makes of it (UNKNOWN).

Request bytes that do not parse are one of those failures. grpc.aio decodes a request before any servicer
code runs and reports a decode failure as UNKNOWN ("Unexpected DecodeError"), which clients and alerts
read as a server fault; so the interceptor wraps each method's deserializer, bytes that are not the
method's message reach the call as a marker, and the call ends with INVALID_ARGUMENT naming the message
type (streaming requests message by message). It also makes every streaming response an async generator
(the OpenTelemetry interceptor iterates every streaming behavior with `async for`) and sends responses
the servicer serialized already (a fused emotion serialized once for every subscriber) as they are. One
wrapper per call: each layer of async generators costs every message of a stream.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from coordinator.registry import RegistryError
from coordinator.store import StoreError
from coordinator.validation import InvalidFrame
from mmer_core.wire import INVALID_FRAME_KEY, format_invalid_frame

log = logging.getLogger("mmer.coordinator")


@dataclass(frozen=True)
class Refusal:
    """How a call ends: its status, the message, and trailing metadata the client acts on."""

    code: grpc.StatusCode
    details: str
    trailing: tuple[tuple[str, str], ...] = ()


class MalformedRequest(Exception):
    """Request bytes that are not the method's message."""


class _Unparsed:
    """Stands in for a request message whose bytes did not parse (raised as MalformedRequest once the call
    reads it, inside the interceptor's error handling)."""

    def __init__(self, error: str) -> None:
        self.error = error


def _malformed(exc: Exception) -> Refusal:
    return Refusal(grpc.StatusCode.INVALID_ARGUMENT, f"request: not a valid message ({exc})")


def _store_unavailable(exc: Exception) -> Refusal:
    """The client retries (the edge resends what was not acked; a subscriber resumes from its position)."""
    return Refusal(grpc.StatusCode.UNAVAILABLE, f"store unavailable: {exc}")


def _invalid_frame(exc: Exception) -> Refusal:
    """The edge sets the named frame aside instead of resending it forever."""
    frame = getattr(exc, "frame", None)
    value = None if frame is None else format_invalid_frame(*frame)  # None: not sayable in metadata
    named = () if value is None else ((INVALID_FRAME_KEY, value),)
    return Refusal(grpc.StatusCode.INVALID_ARGUMENT, str(exc), named)


def _registry_refusal(exc: Exception) -> Refusal:
    """A registry refusal names its own status (FAILED_PRECONDITION, NOT_FOUND, ...)."""
    return Refusal(getattr(grpc.StatusCode, getattr(exc, "code", "INVALID_ARGUMENT")), str(exc))


HANDLERS: dict[type[Exception], Callable[[Exception], Refusal]] = {
    StoreError: _store_unavailable,
    InvalidFrame: _invalid_frame,
    RegistryError: _registry_refusal,
    MalformedRequest: _malformed,
}


def refusal_for(exc: Exception) -> Refusal | None:
    """The table's answer for `exc` (the nearest class in its MRO that has a handler), None if unknown."""
    for cls in type(exc).__mro__:
        handler = HANDLERS.get(cls)
        if handler is not None:
            return handler(exc)
    return None


async def _end(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    refusal = refusal_for(exc)
    if refusal is None:
        raise exc
    if refusal.code == grpc.StatusCode.UNAVAILABLE:
        log.warning("%s: %s", method, refusal.details)
    await context.abort(refusal.code, refusal.details, trailing_metadata=refusal.trailing)


def _tolerant(deserializer: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def parse(data: bytes) -> object:
        try:
            return deserializer(data)
        except DecodeError as exc:
            return _Unparsed(str(exc))

    return parse


def _passing_bytes(serializer: Callable[[object], bytes] | None) -> Callable[[object], bytes] | None:
    """The method's serializer, but a response the servicer serialized already goes out as it is."""
    if serializer is None:
        return None

    def serialize(response: object) -> bytes:
        return response if isinstance(response, bytes) else serializer(response)

    return serialize


def _parsed(request: object) -> object:
    if isinstance(request, _Unparsed):
        raise MalformedRequest(request.error)
    return request


async def _checked(requests: AsyncIterator) -> AsyncIterator:
    async for request in requests:
        yield _parsed(request)


def _guarded(behavior: Callable, streaming_request: bool, streaming_response: bool, method: str) -> Callable:
    """`behavior` with its request(s) parsed and its failures ended with the table's status."""
    known = tuple(HANDLERS)
    if streaming_response:
        generates = inspect.isasyncgenfunction(behavior)

        async def stream(request, context):
            try:
                requests = _checked(request) if streaming_request else _parsed(request)
                if generates:
                    async for response in behavior(requests, context):
                        yield response
                else:  # streams with `await context.write()` (grpc's health Watch)
                    await behavior(requests, context)
            except known as exc:
                await _end(context, method, exc)

        return stream

    async def call(request, context):
        try:
            return await behavior(_checked(request) if streaming_request else _parsed(request), context)
        except known as exc:
            await _end(context, method, exc)

    return call


class ErrorStatusInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every method handler (see the module's docstring): the innermost interceptor, whose
    deserializer is the one grpc uses."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        kinds = {
            (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
            (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
            (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
            (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
        }
        streaming = (handler.request_streaming, handler.response_streaming)
        attr, make = kinds[streaming]
        deserializer = handler.request_deserializer
        return make(
            _guarded(getattr(handler, attr), *streaming, details.method),
            request_deserializer=None if deserializer is None else _tolerant(deserializer),
            response_serializer=_passing_bytes(handler.response_serializer),
        )
