"""Bearer-token auth: hashed tokens from a file, roles per method, subscribers scoped to subjects.

Token file, one principal a line (`#` comments):

    <sha256 hex of the token>  <role>  <name>  [<subject>,<subject>... | *]

roles: device (name = its device_id: Ingest, Clock, model watch/fetch), subscriber (Fusion and the
dashboard, for its subjects), trainer (push/promote/rollback), metrics (the HTTP side's Prometheus
/metrics, which names no subject), admin (everything). Only hashes are kept, so the file leaks no
usable token. Health checks and reflection (the services' descriptions) need no token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc

REFUSAL_WAIT_S = 2.0
ROLES = ("device", "subscriber", "trainer", "metrics", "admin")
METHOD_ROLES: dict[str, tuple[str, ...]] = {
    "/mmer.v1.Ingest/StreamScores": ("device",),
    "/mmer.v1.Clock/Sync": ("device", "subscriber", "trainer"),
    "/mmer.v1.Fusion/Subscribe": ("subscriber",),
    "/mmer.v1.Fusion/SubscribeBatches": ("subscriber",),
    "/mmer.v1.Fusion/Latest": ("subscriber",),
    "/mmer.v1.Registry/WatchModels": ("device",),
    "/mmer.v1.Registry/GetModel": ("device", "trainer"),
    "/mmer.v1.Registry/ListModels": ("device", "trainer", "subscriber"),
    "/mmer.v1.Registry/PushModel": ("trainer",),
    "/mmer.v1.Registry/Promote": ("trainer",),
    "/mmer.v1.Registry/Rollback": ("trainer",),
    "/mmer.v1.Admin/GetStats": (),
}
# health checks and the service descriptions (reflection) carry no one's data
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/")


def hash_token(token: str) -> str:
    """What the token file holds for a token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a token belongs to and what it may see."""

    role: str
    name: str
    subjects: frozenset[str] | None = None  # None = all subjects

    def may_see(self, subjects: Iterable[str]) -> bool:
        if self.role == "admin" or self.subjects is None:
            return True
        wanted = set(subjects)
        return bool(wanted) and wanted <= self.subjects


def principal_for(tokens: dict[str, Principal], token: str) -> Principal | None:
    """The principal a presented token belongs to (None when empty or unknown)."""
    return tokens.get(hash_token(token)) if token else None


def load_tokens(path: str | Path) -> dict[str, Principal]:
    """Parse the token file; ValueError naming the line for anything malformed."""
    tokens: dict[str, Principal] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) not in (3, 4) or len(parts[0]) != 64 or parts[1] not in ROLES:
            raise ValueError(
                f"{path}:{number}: expected '<sha256 hex> <{'|'.join(ROLES)}> <name> [subjects]'"
            )
        scope = None if len(parts) == 3 or parts[3] == "*" else frozenset(parts[3].split(","))
        tokens[parts[0].lower()] = Principal(parts[1], parts[2], scope)
    return tokens


def principal_of(context: grpc.aio.ServicerContext, tokens: dict[str, Principal] | None) -> Principal | None:
    """The caller's principal (None when auth is off or the token is unknown)."""
    if tokens is None:
        return None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and value.startswith("Bearer "):
            return principal_for(tokens, value[len("Bearer ") :].strip())
    return None


async def _await_first_request(request: object) -> None:
    """On a client-streaming call, wait (bounded) for the client's first message before refusing.

    grpc.aio replaces the server's status with INTERNAL "Internal error from Core" when a client write is
    issued as the call ends (grpc/grpc#36066), so a refusal sent while the first write is on its way would
    reach the caller as INTERNAL instead of saying what was wrong.
    """
    if isinstance(request, AsyncIterator):
        # the end, a timeout or bytes that do not parse: refused all the same
        with contextlib.suppress(Exception):
            async with asyncio.timeout(REFUSAL_WAIT_S):
                await anext(request)


def _refusal(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    async def refuse(request, context: grpc.aio.ServicerContext) -> None:
        await _await_first_request(request)
        await context.abort(code, message)

    async def refuse_stream(request, context: grpc.aio.ServicerContext):
        # a generator, as wrapping interceptors (OpenTelemetry) expect of streaming responses
        await _await_first_request(request)
        await context.abort(code, message)
        yield

    kind = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return kind(
        refuse_stream if handler.response_streaming else refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED without a known token, PERMISSION_DENIED when the role may not call the method."""

    def __init__(self, tokens: dict[str, Principal]) -> None:
        self.tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_PREFIXES):
            return handler
        token = ""
        for key, value in details.invocation_metadata or ():
            if key == "authorization" and value.startswith("Bearer "):
                token = value[len("Bearer ") :].strip()
        principal = principal_for(self.tokens, token)
        if principal is None:
            return _refusal(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or unknown token (authorization: Bearer ...)",
            )
        allowed = METHOD_ROLES.get(details.method, ())
        if principal.role != "admin" and principal.role not in allowed:
            return _refusal(
                handler,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{principal.role} {principal.name!r} may not call {details.method}",
            )
        return handler
