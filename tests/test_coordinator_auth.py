"""Auth and TLS over real gRPC: unknown tokens, wrong roles, wrong subjects, wrong devices; TLS and mTLS."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coordinator import auth
from coordinator.assembly import open_coordinator
from coordinator.auth import hash_token, load_tokens
from coordinator.memory_store import MemoryStore
from coordinator.server import TlsFiles, build_server
from mmer.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    fusion_pb2,
    fusion_pb2_grpc,
    ingest_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)
from mmer_core.config import CoordinatorConfig
from testkit.coordinator_helpers import batch, frame

TOKENS = {"dev": "tok-device-1", "sub": "tok-sub-1", "all": "tok-sub-all", "admin": "tok-admin"}


def token_file(path: Path) -> Path:
    path.write_text(
        "# hashed tokens\n"
        f"{hash_token(TOKENS['dev'])} device dev-1\n"
        f"{hash_token(TOKENS['sub'])} subscriber dash subj-1,subj-2\n"
        f"{hash_token(TOKENS['all'])} subscriber ops *\n"
        f"{hash_token(TOKENS['admin'])} admin root\n"
    )
    return path


def md(name: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {TOKENS[name]}"),)


@pytest.fixture()
async def secured(tmp_path: Path):
    app = await open_coordinator(CoordinatorConfig(), MemoryStore())
    tokens = load_tokens(token_file(tmp_path / "tokens"))
    server, port, _ = await build_server(app, "127.0.0.1:0", tokens=tokens)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    await channel.close()
    await server.stop(None)
    await app.close()


async def ingest(channel, frames, metadata=()):
    """One batch on a new stream: its ack, or AioRpcError with the RPC's final status. A refusal can end the
    call before the write is through, and the write then fails with a status of its own; the call's is the
    server's answer."""
    call = ingest_pb2_grpc.IngestStub(channel).StreamScores(metadata=metadata)
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call.write(batch(frames))
        reply = await call.read()
        if reply is not grpc.aio.EOF:
            return reply
    code = await call.code()
    raise grpc.aio.AioRpcError(
        code, await call.initial_metadata(), await call.trailing_metadata(), await call.details()
    )


@pytest.mark.parametrize(
    "metadata", [(), (("authorization", "Bearer nope"),), (("authorization", "tok-device-1"),)]
)
async def test_unknown_or_missing_token_is_unauthenticated(secured, metadata) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ingest(secured, [frame(1)], metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await admin_pb2_grpc.AdminStub(secured).GetStats(admin_pb2.GetStatsRequest(), metadata=metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_refused_streams_report_the_refusal_not_internal(secured, monkeypatch) -> None:
    """The refusal waits for the client's first write: a write racing the call's end would turn the status
    into INTERNAL on the client (grpc/grpc#36066). Whether the client writes, half-closes at once or
    sends nothing, it reads UNAUTHENTICATED."""
    monkeypatch.setattr(auth, "REFUSAL_WAIT_S", 0.2)
    codes = set()
    for _ in range(100):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ingest(secured, [frame(1)], (("authorization", "Bearer nope"),))
        codes.add(err.value.code())
    assert codes == {grpc.StatusCode.UNAUTHENTICATED}
    raw = secured.stream_stream("/mmer.v1.Ingest/StreamScores")  # bytes as they come, no serializer
    garbage = raw(metadata=(("authorization", "Bearer nope"),))
    await garbage.write(b"\xff\xfe not a ScoreBatch")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await garbage.read()
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, "bytes that do not parse change nothing"
    for half_close in (True, False):
        call = ingest_pb2_grpc.IngestStub(secured).StreamScores()
        if half_close:
            await call.done_writing()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "token" in err.value.details()


async def test_device_token_ingests_its_own_frames_only(secured) -> None:
    ack = await ingest(secured, [frame(1)], md("dev"))
    assert ack.acks[0].acked_seq == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ingest(secured, [frame(1, device="dev-2")], md("dev"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "device_id" in err.value.details() and "dev-2" in err.value.details()


async def test_roles_are_enforced_per_method(secured) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ingest(secured, [frame(1)], md("sub"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await registry_pb2_grpc.RegistryStub(secured).Rollback(
            registry_pb2.RollbackRequest(modality="hr"), metadata=md("dev")
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    stats = await admin_pb2_grpc.AdminStub(secured).GetStats(
        admin_pb2.GetStatsRequest(), metadata=md("admin")
    )
    assert stats.replica
    health = await health_pb2_grpc.HealthStub(secured).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_subscriber_tokens_are_scoped_to_subjects(secured) -> None:
    stub = fusion_pb2_grpc.FusionStub(secured)
    ok = await stub.Latest(fusion_pb2.LatestRequest(subject_ids=["subj-1"]), metadata=md("sub"))
    assert list(ok.emotions) == []
    for subjects in (["subj-3"], ["subj-1", "subj-3"], []):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Latest(fusion_pb2.LatestRequest(subject_ids=subjects), metadata=md("sub"))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "subject_ids" in err.value.details()
    call = stub.Subscribe(fusion_pb2.SubscribeRequest(subject_ids=["subj-9"]), metadata=md("sub"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert list((await stub.Latest(fusion_pb2.LatestRequest(), metadata=md("all"))).emotions) == []


def test_malformed_token_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "t").write_text(f"{hash_token('a')} device dev-1\n{hash_token('b')} superuser x\n")
    with pytest.raises(ValueError, match=r"t:2: expected"):
        load_tokens(tmp_path / "t")


def _cert(subject: str, key, issuer_key, issuer_name, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(d: Path) -> dict[str, bytes]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all PEM."""
    pem = lambda k: k.private_bytes(  # noqa: E731
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mmer test CA")])
    ca = _cert("mmer test CA", ca_key, ca_key, ca_name, ca=True)
    out = {"ca": ca.public_bytes(serialization.Encoding.PEM)}
    for who in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        out[f"{who}_key"] = pem(key)
        out[f"{who}_cert"] = _cert(who, key, ca_key, ca_name, ca=False).public_bytes(
            serialization.Encoding.PEM
        )
    for name, data in out.items():
        (d / name).write_bytes(data)
    return out


@pytest.mark.parametrize("mutual", [False, True])
async def test_tls_and_mutual_tls(tmp_path: Path, mutual: bool) -> None:
    pki = make_pki(tmp_path)
    tls = TlsFiles(tmp_path / "server_cert", tmp_path / "server_key", tmp_path / "ca" if mutual else None)
    app = await open_coordinator(CoordinatorConfig(), MemoryStore())
    server, port, _ = await build_server(app, "127.0.0.1:0", tls)
    target = f"127.0.0.1:{port}"
    try:
        client_creds = grpc.ssl_channel_credentials(pki["ca"], pki["client_key"], pki["client_cert"])
        async with grpc.aio.secure_channel(target, client_creds) as channel:
            assert (await ingest(channel, [frame(1)])).acks[0].acked_seq == 1
        async with grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(pki["ca"])) as channel:
            if mutual:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await ingest(channel, [frame(2)])
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            else:
                assert (await ingest(channel, [frame(2)])).acks[0].acked_seq == 2
        async with grpc.aio.insecure_channel(target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await ingest(channel, [frame(3)])
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)
        await app.close()


async def test_reflection_lists_every_service_without_a_token(secured) -> None:
    """What `grpcurl -plaintext HOST:PORT list` asks; describing a service needs no token either."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(secured)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="mmer.v1.Fusion"),
    ]
    listed, described = [r async for r in stub.ServerReflectionInfo(iter(requests))]
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "mmer.v1.Ingest",
        "mmer.v1.Fusion",
        "mmer.v1.Registry",
        "mmer.v1.Clock",
        "mmer.v1.Admin",
        "grpc.health.v1.Health",
    } <= names
    from google.protobuf import descriptor_pb2

    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in described.file_descriptor_response.file_descriptor_proto
    ]
    assert any(
        s.name == "Fusion" and [m.name for m in s.method] == ["Subscribe", "SubscribeBatches", "Latest"]
        for f in files
        for s in f.service
    )
