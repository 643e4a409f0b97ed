"""What each failure of the coordinator's code answers over gRPC, in one table.

The services raise their own exceptions (a frame refused, the store away, a registry refusal) and never pick
a status code; this interceptor ends the call with the status the table names for the exception, the way a
web framework keeps its exception handlers in one place. Anything not in the table is a bug and stays
what grpc makes of it (UNKNOWN).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

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


def _mapped(behavior: Callable, streaming_response: bool, method: str) -> Callable:
    known = tuple(HANDLERS)
    if streaming_response:

        async def stream(request, context):
            try:
                async for response in behavior(request, context):
                    yield response
            except known as exc:
                await _end(context, method, exc)

        return stream

    async def call(request, context):
        try:
            return await behavior(request, context)
        except known as exc:
            await _end(context, method, exc)

    return call


class ErrorStatusInterceptor(grpc.aio.ServerInterceptor):
    """Ends every call whose servicer raised a known exception with the status HANDLERS names for it.

    Placed just outside WireGuardInterceptor, which makes every streaming behavior an async generator."""

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
        attr, make = kinds[(handler.request_streaming, handler.response_streaming)]
        return make(
            _mapped(getattr(handler, attr), handler.response_streaming, details.method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
