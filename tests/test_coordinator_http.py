"""The coordinator's HTTP side: dashboard, server-sent events, /metrics and the login, over real servers.

A real `mmer coordinator --http` process for the open local set-up, and the HTTP side of an in-process
coordinator with a token file on 127.0.0.1 for who may read what.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import subprocess
import time
import urllib.error
from pathlib import Path

import aiohttp
import grpc
import pytest

from coordinator.assembly import open_coordinator
from coordinator.auth import hash_token, load_tokens
from coordinator.http import COOKIE, start_http
from coordinator.memory_store import MemoryStore
from coordinator.server import TlsFiles
from mmer.v1 import common_pb2, fusion_pb2, ingest_pb2_grpc
from mmer_core.config import CoordinatorConfig
from mmer_core.taxonomy import QUADRANTS
from testkit.coordinator_helpers import batch, coordinator_process, frame, http_get
from testkit.localhost import free_port

ROOT = Path(__file__).resolve().parents[1]
TOKENS = {
    "one": "tok-sub-subj-1",
    "two": "tok-sub-subj-2",
    "all": "tok-sub-all",
    "metrics": "tok-metrics",
    "device": "tok-device",
    "admin": "tok-admin",
}


async def test_metrics_dashboard_and_clean_sigterm() -> None:
    async with coordinator_process() as (grpc_port, http_port):
        status, _, page = await asyncio.to_thread(http_get, f"http://127.0.0.1:{http_port}/")
        assert status == 200 and "dashboard.js" in page
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
            call = ingest_pb2_grpc.IngestStub(ch).StreamScores()
            await call.write(batch([frame(1), frame(2), frame(3), frame(4)]))
            assert (await call.read()).acks[0].acked_seq == 4
            await call.done_writing()
        _, _, metrics = await asyncio.to_thread(http_get, f"http://127.0.0.1:{http_port}/metrics")
        assert "mmer_coordinator_hop_latency" in metrics
        assert 'hop="network"' in metrics and 'modality="hr"' in metrics


async def test_a_coordinator_with_a_token_file_keeps_its_web_side_private(tmp_path: Path) -> None:
    """The real process: nothing without a token; /metrics for the metrics role, its series named by device
    and never by subject."""
    tokens = write_tokens(tmp_path / "tokens")
    async with coordinator_process(args=["--auth", str(tokens)]) as (grpc_port, http_port):
        base = f"http://127.0.0.1:{http_port}"
        for path in ("/", "/events", "/metrics"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                await asyncio.to_thread(http_get, base + path)
            assert refused.value.code == 401, path
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
            call = ingest_pb2_grpc.IngestStub(ch).StreamScores(
                metadata=(("authorization", f"Bearer {TOKENS['device']}"),)
            )
            report = batch([frame(1, subject="subj-1")])
            report.status.device_id, report.status.spool_depth = "dev-1", 3
            await call.write(report)
            assert (await call.read()).acks[0].acked_seq == 1
            await call.done_writing()
        _, _, metrics = await asyncio.to_thread(http_get, base + "/metrics", TOKENS["metrics"])
        spool = [
            line for line in metrics.splitlines() if line.startswith("mmer_coordinator_device_spool_depth{")
        ]
        assert len(spool) == 1 and 'device="dev-1"' in spool[0] and spool[0].endswith(" 3.0"), spool
        assert "subj-1" not in metrics and "subject" not in metrics


def write_tokens(path: Path) -> Path:
    path.write_text(
        f"{hash_token(TOKENS['one'])} subscriber viewer-1 subj-1\n"
        f"{hash_token(TOKENS['two'])} subscriber viewer-2 subj-2\n"
        f"{hash_token(TOKENS['all'])} subscriber ops *\n"
        f"{hash_token(TOKENS['metrics'])} metrics prometheus\n"
        f"{hash_token(TOKENS['device'])} device dev-1\n"
        f"{hash_token(TOKENS['admin'])} admin root\n"
    )
    return path


# windows after any the fixture's frames make, each emotion its own: the store appends a subject's window once
WINDOW_ENDS = itertools.count(time.time_ns() // 1_000_000_000 + 3600)


def emotion(subject: str, label: str = "happy") -> fusion_pb2.FusedEmotion:
    end_ns = next(WINDOW_ENDS) * 1_000_000_000
    probs = [0.1] * 4
    probs[QUADRANTS.labels.index(label)] = 0.7
    return fusion_pb2.FusedEmotion(
        subject_id=subject,
        label=label,
        taxonomy=common_pb2.Taxonomy(name="quadrants", labels=QUADRANTS.labels),
        probs=probs,
        window_start_ns=end_ns - 1_000_000_000,
        window_end_ns=end_ns,
        contributions=[fusion_pb2.Contribution(modality="hr", weight=1.0, probs=probs, model_version=1)],
    )


@pytest.fixture()
async def web(tmp_path: Path):
    """An in-process coordinator with a token file, its HTTP side on 127.0.0.1, devices of two subjects."""
    app = await open_coordinator(CoordinatorConfig(), MemoryStore())
    tokens = load_tokens(write_tokens(tmp_path / "tokens"))
    for subject, device in (("subj-1", "dev-1"), ("subj-2", "dev-2")):
        await app.ingest(batch([frame(1, device=device, subject=subject)]), frame(1).send_ns)
    port = free_port()
    runner = await start_http(app, f"127.0.0.1:{port}", tokens=tokens)
    yield app, f"http://127.0.0.1:{port}"
    await runner.cleanup()
    await app.close()


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


async def read_events(response: aiohttp.ClientResponse, want: int) -> list[tuple[str, dict]]:
    """The first `want` server-sent events (name, data) of a stream."""
    events, name = [], ""
    async with asyncio.timeout(10):
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
                if len(events) == want:
                    return events
    raise AssertionError(f"stream ended after {len(events)} events")


@pytest.mark.parametrize("path", ["/", "/events", "/metrics", "/a-route-added-later"])
async def test_no_or_unknown_token_is_401(web, path: str) -> None:
    _, base = web
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Cookie": f"{COOKIE}=nope"}):
            async with http.get(base + path, headers=headers) as r:
                assert r.status == 401, (path, headers)
                assert r.headers["WWW-Authenticate"] == 'Bearer realm="mmer"'
                assert "subj-" not in await r.text()


async def test_a_browser_without_a_session_gets_the_login_form(web) -> None:
    _, base = web
    async with aiohttp.ClientSession() as http, http.get(base + "/", headers={"Accept": "text/html"}) as r:
        page = await r.text()
    assert r.status == 401 and '<form method="post" action="login"' in page and "dashboard.js" not in page


async def test_login_sets_an_httponly_strict_cookie_that_opens_the_dashboard(web, caplog) -> None:
    _, base = web
    caplog.set_level(logging.DEBUG)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address host
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(base + "/login", data={"token": TOKENS["one"]}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "./"
            cookie = r.headers["Set-Cookie"]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "samesite", "path", "max-age"} <= attributes and "secure" not in attributes
        assert "SameSite=Strict" in cookie
        async with http.get(base + "/") as r:
            assert r.status == 200 and "dashboard.js" in await r.text()
        async with http.post(base + "/logout", allow_redirects=False) as r:
            assert r.status == 303
        async with http.get(base + "/") as r:
            assert r.status == 401
    assert TOKENS["one"] not in caplog.text


async def test_login_refuses_unknown_tokens_and_other_sites(web) -> None:
    _, base = web
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/login", data={"token": "guess"}, allow_redirects=False) as r:
            assert r.status == 401 and "Unknown token" in await r.text() and "Set-Cookie" not in r.headers
        foreign = {"Origin": "https://elsewhere.example"}
        async with http.post(
            base + "/login", data={"token": TOKENS["one"]}, headers=foreign, allow_redirects=False
        ) as r:
            assert r.status == 403 and "Set-Cookie" not in r.headers


async def test_a_subscriber_sees_only_its_own_subjects(web) -> None:
    app, base = web
    await app.fuser.append([emotion("subj-1", "sad"), emotion("subj-2", "angry")])
    async with aiohttp.ClientSession() as http, http.get(base + "/events", headers=bearer("one")) as r:
        assert r.status == 200
        ((kind, snapshot),) = await read_events(r, 1)
        assert kind == "snapshot"
        assert [f["subject_id"] for f in snapshot["fused"]] == ["subj-1"]
        assert [d["subject_id"] for d in snapshot["stats"]["devices"]] == ["subj-1"]
        await app.fuser.append([emotion("subj-2"), emotion("subj-1", "calm"), emotion("subj-2")])
        live = [data for kind, data in await read_events(r, 2) if kind == "fused"]
        assert live and {f["subject_id"] for f in live} == {"subj-1"} and live[0]["label"] == "calm"


async def test_asking_for_other_subjects_is_403(web) -> None:
    _, base = web
    async with aiohttp.ClientSession() as http:
        for query in ("?subject=subj-2", "?subject=subj-1&subject=subj-2"):
            async with http.get(base + "/events" + query, headers=bearer("one")) as r:
                assert r.status == 403 and "subj-2" in await r.text()
        async with http.get(base + "/events?subject=subj-2", headers=bearer("all")) as r:
            assert r.status == 200
            ((_, snapshot),) = await read_events(r, 1)
            assert {d["subject_id"] for d in snapshot["stats"]["devices"]} == {"subj-2"}


@pytest.mark.parametrize(
    ("who", "status"), [("metrics", 200), ("admin", 200), ("one", 403), ("all", 403), ("device", 403)]
)
async def test_metrics_need_the_metrics_or_admin_role(web, who: str, status: int) -> None:
    _, base = web
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics", headers=bearer(who)) as r:
        body = await r.text()
    assert r.status == status
    assert ("# TYPE" in body) == (status == 200)


@pytest.mark.parametrize(
    ("who", "path"), [("device", "/"), ("metrics", "/events"), ("one", "/a-route-added-later")]
)
async def test_roles_reach_only_their_routes(web, who: str, path: str) -> None:
    _, base = web
    async with aiohttp.ClientSession() as http, http.get(base + path, headers=bearer(who)) as r:
        assert r.status == 403
    async with (
        aiohttp.ClientSession() as http,
        http.get(base + "/a-route-added-later", headers=bearer("admin")) as r,
    ):
        assert r.status == 404


async def test_health_and_static_files_need_no_token(web) -> None:
    _, base = web
    async with aiohttp.ClientSession() as http:
        for path in ("/healthz", "/login", "/static/dashboard.css"):
            async with http.get(base + path) as r:
                assert r.status == 200, path


async def test_an_open_http_side_only_binds_loopback() -> None:
    app = await open_coordinator(CoordinatorConfig(), MemoryStore())
    with pytest.raises(ValueError, match="--auth"):
        await start_http(app, f"0.0.0.0:{free_port()}")
    await app.close()


async def test_over_tls_the_cookie_is_secure(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    subprocess.run(
        ["bash", str(ROOT / "deploy/certs/make-certs.sh"), str(certs), "127.0.0.1"],
        check=True,
        capture_output=True,
    )
    app = await open_coordinator(CoordinatorConfig(), MemoryStore())
    tokens = load_tokens(write_tokens(tmp_path / "tokens"))
    port = free_port()
    runner = await start_http(
        app, f"127.0.0.1:{port}", tls=TlsFiles(certs / "server.crt", certs / "server.key"), tokens=tokens
    )
    try:
        import ssl

        context = ssl.create_default_context(cafile=certs / "ca.crt")
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"https://127.0.0.1:{port}/login",
                data={"token": TOKENS["one"]},
                ssl=context,
                allow_redirects=False,
            ) as r:
                assert r.status == 303
                assert "Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/healthz"):
                    pass
    finally:
        await runner.cleanup()
        await app.close()
