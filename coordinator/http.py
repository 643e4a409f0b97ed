"""The coordinator's HTTP side (aiohttp): dashboard page, server-sent events, Prometheus /metrics, login.

Every route is private unless named in PUBLIC_ROUTES. One middleware checks the caller's token against the
same token file as gRPC: the session cookie the login form sets for a browser, or an `Authorization: Bearer`
header for scrapers and scripts. ROUTE_ROLES says which roles reach which route (admin reaches all); a route
it does not name is for admins only. A subscriber's dashboard and events show only its own subjects.

The cookie holds the token itself, HttpOnly (no script reads it), SameSite=Strict (no other site sends it)
and Secure over TLS: each request is checked against the token file, so removing a line locks its holder out
at the next restart, and any replica or worker process accepts the cookie. Tokens never go in URLs, and no
access log is written.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from coordinator.auth import Principal, principal_for
from mmer.v1 import fusion_pb2

if TYPE_CHECKING:
    from coordinator.server import TlsFiles

STATIC = Path(__file__).parent / "dashboard" / "static"
SNAPSHOT_SUBJECTS = 64
COOKIE = "mmer_session"
SESSION_S = 12 * 3600
# the login form, the probes' health check, and scripts and styles: no one's data
PUBLIC_ROUTES = ("/login", "/healthz", "/static")
ROUTE_ROLES: dict[str, tuple[str, ...]] = {
    "/": ("subscriber",),
    "/events": ("subscriber",),
    "/metrics": ("metrics",),
    "/logout": ("device", "subscriber", "trainer", "metrics"),
}
PRINCIPAL = web.RequestKey("principal", Principal)


def fused_json(e: fusion_pb2.FusedEmotion) -> dict:
    return {
        "subject_id": e.subject_id,
        "label": e.label,
        "labels": list(e.taxonomy.labels),
        "probs": list(e.probs),
        "window_end_ms": e.window_end_ns / 1e6,
        "truth_label": e.truth_label,
        "strategy": e.strategy,
        "position": e.position,
        "contributions": [
            {
                "modality": c.modality,
                "weight": c.weight,
                "probs": list(c.probs),
                "model_version": c.model_version,
            }
            for c in e.contributions
        ],
    }


def stats_json(app, subjects: frozenset[str] | None = None) -> dict:
    """Latency, counters and devices; only the devices of `subjects` (None: all)."""
    s = app.stats()
    return {
        "latencies": [
            {
                "hop": h.hop,
                "modality": h.modality,
                "count": h.summary.count,
                "p50_ms": h.summary.p50_ms,
                "p95_ms": h.summary.p95_ms,
                "p99_ms": h.summary.p99_ms,
                "max_ms": h.summary.max_ms,
            }
            for h in s.latencies
        ],
        "devices": [
            {
                "device_id": d.device_id,
                "subject_id": d.subject_id,
                "model_versions": dict(d.model_versions),
                "spool_depth": d.spool_depth,
                "queue_depth": d.queue_depth,
                "frames_dropped": d.frames_dropped,
                "last_seen_ms": d.last_seen_ns / 1e6,
            }
            for d in s.devices
            if subjects is None or d.subject_id in subjects
        ],
        "counters": dict(s.counters),
        "histograms": [
            {"hop": hop, "buckets": hist.buckets()}
            for (hop, modality), hist in sorted(app.latency.hists.items())
            if modality == "" and hist.count
        ],
    }


def presented_token(request: web.Request) -> str:
    """The token of an `Authorization: Bearer` header, else of the session cookie ("" when neither)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer ") :].strip()
    return request.cookies.get(COOKIE, "")


def route_of(request: web.Request) -> str:
    """The route a request reaches ("/static" for any static file), or its path when it matches none."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def allowed_roles(route: str) -> tuple[str, ...]:
    """Roles besides admin that may reach `route`; none for a route ROUTE_ROLES does not name."""
    return ROUTE_ROLES.get(route, ())


def is_public(route: str) -> bool:
    return route in PUBLIC_ROUTES


def login_page(status: int, error: str = "") -> web.Response:
    """The login form, with `error` said above it."""
    page = (STATIC / "login.html").read_text()
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return web.Response(
        status=status,
        text=page.replace("<!-- error -->", message),
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


def refuse_unauthenticated(request: web.Request) -> web.Response:
    """401: the login form for a browser, a plain answer with the scheme to use for anything else."""
    if "text/html" in request.headers.get("Accept", ""):
        return login_page(401)
    return web.Response(
        status=401,
        text="401: missing or unknown token (log in, or send Authorization: Bearer <token>)\n",
        headers={"WWW-Authenticate": 'Bearer realm="mmer"'},
    )


def auth_middleware(tokens: dict[str, Principal] | None):
    """The one place routes are protected: token → principal → role allowed for the route."""

    @web.middleware
    async def check(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        route = route_of(request)
        if tokens is None or is_public(route):
            return await handler(request)
        principal = principal_for(tokens, presented_token(request))
        if principal is None:
            return refuse_unauthenticated(request)
        if principal.role != "admin" and principal.role not in allowed_roles(route):
            return web.Response(
                status=403, text=f"403: {principal.role} {principal.name!r} may not read {request.path}\n"
            )
        request[PRINCIPAL] = principal
        return await handler(request)

    return check


def subjects_of(request: web.Request) -> frozenset[str] | None:
    """The subjects a request asks for (`?subject=A&subject=B`), within what its principal may see.

    No `subject` parameter means all the principal may see (None: every subject); asking for any other
    subject is HTTPForbidden, naming what the principal may see.
    """
    asked = frozenset(request.query.getall("subject", []))
    principal = request.get(PRINCIPAL)
    if principal is None or principal.role == "admin" or principal.subjects is None:
        return asked or None
    if not asked:
        return principal.subjects
    if not principal.may_see(asked):
        raise web.HTTPForbidden(
            text=f"403: {principal.name!r} may see only {sorted(principal.subjects)}, asked for {sorted(asked)}\n"
        )
    return asked


def session_cookie(response: web.StreamResponse, token: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE, token, max_age=SESSION_S, path="/", httponly=True, samesite="Strict", secure=secure or None
    )


def same_origin(request: web.Request) -> bool:
    """A form post from this site: no Origin header (older browsers, curl) or one naming this host."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def build_http_app(app, tokens: dict[str, Principal] | None = None) -> web.Application:
    """Routes over one coordinator's state, behind the token file's principals (`tokens`; None: open)."""

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def login_form(_: web.Request) -> web.Response:
        return login_page(200)

    async def login(request: web.Request) -> web.Response:
        if not same_origin(request):
            return web.Response(status=403, text="403: log in from this site's own form\n")
        form = await request.post()
        token = str(form.get("token", "")).strip()
        if tokens is not None and principal_for(tokens, token) is None:
            return login_page(401, "Unknown token.")
        response = web.Response(status=303, headers={"Location": "./", "Cache-Control": "no-store"})
        session_cookie(response, token, request.secure)
        return response

    async def logout(_: web.Request) -> web.Response:
        response = web.Response(status=303, headers={"Location": "login"})
        response.del_cookie(COOKIE, path="/")
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def metrics(_: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        app.hops.flush()
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def events(request: web.Request) -> web.StreamResponse:
        subjects = subjects_of(request)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        sub = app.hub.subscribe(subjects, app.config.subscriber_buffer)

        async def send(event: str, data: dict) -> None:
            await resp.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

        try:
            latest = await app.store.latest(sorted(subjects) if subjects is not None else None)
            await send(
                "snapshot",
                {
                    "fused": [fused_json(e) for e in latest[:SNAPSHOT_SUBJECTS]],
                    "stats": stats_json(app, subjects),
                },
            )
            next_stats = asyncio.get_running_loop().time() + 1
            while not sub.overflowed:
                timeout = max(next_stats - asyncio.get_running_loop().time(), 0)
                try:
                    async with asyncio.timeout(timeout):
                        published = await sub.get()
                except TimeoutError:
                    await send("stats", stats_json(app, subjects))
                    next_stats = asyncio.get_running_loop().time() + 1
                    continue
                for emotion in published.emotions():
                    await send("fused", fused_json(emotion))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            app.hub.unsubscribe(sub)
        return resp

    web_app = web.Application(middlewares=[auth_middleware(tokens)])
    web_app.router.add_get("/", index)
    web_app.router.add_get("/login", login_form)
    web_app.router.add_post("/login", login)
    web_app.router.add_post("/logout", logout)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/events", events)
    web_app.router.add_get("/metrics", metrics)
    web_app.router.add_static("/static", STATIC)
    return web_app


def check_exposure(host: str, tokens: dict[str, Principal] | None) -> None:
    """ValueError for an HTTP side that would show every subject's emotions beyond this machine."""
    if tokens is not None:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(
            f"--http on {host} without --auth would show every subject's emotions to anyone who reaches it: "
            "give --auth TOKEN_FILE or bind 127.0.0.1"
        )


async def start_http(
    app,
    listen: str,
    reuse_port: bool = False,
    tls: TlsFiles | None = None,
    *,
    tokens: dict[str, Principal] | None = None,
) -> web.AppRunner:
    """Serve the HTTP side on HOST:PORT (HTTPS with the gRPC certificate when `tls`), behind the token file's
    principals (`tokens`; None: open, loopback only); returns the runner."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    check_exposure(host, tokens)
    context = None
    if tls is not None:  # browsers bring no client certificate: only the server's is used here
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.cert, tls.key)
    runner = web.AppRunner(build_http_app(app, tokens), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, int(port), ssl_context=context, reuse_port=reuse_port or None)
    await site.start()
    return runner
