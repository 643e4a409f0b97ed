"""Hypothesis fuzzing of every RPC of a real `mmer coordinator` process on 127.0.0.1.

Three kinds of input per method: random bytes sent as the serialized request (a generic channel with
identity serializers), random messages of the method's request type built from its descriptor (boundary
integers, NaN/inf floats, empty/huge/odd strings, long repeated fields), and near-valid messages (a valid
frame or signed bundle with one field set to a boundary value). The server must answer every call with a
deliberate status, never die, and keep serving a well-behaved edge that streams valid frames throughout.

Allowed answers to bad input: OK, INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, PERMISSION_DENIED,
ALREADY_EXISTS, RESOURCE_EXHAUSTED (message too large), OUT_OF_RANGE, and DEADLINE_EXCEEDED for the
endless server streams (Subscribe, WatchModels, Health.Watch) that a valid request keeps open. Never
UNKNOWN or INTERNAL (a server fault), UNAVAILABLE (the server died) or UNIMPLEMENTED.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor as FD
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmer.v1 import (
    admin_pb2,
    clock_pb2,
    fusion_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    manifest_pb2,
    registry_pb2,
)
from mmer_core.bundle import load_private_key, sign_manifest
from testkit.coordinator_helpers import frame
from testkit.edge_models import bundle_blobs, make_bundle
from testkit.localhost import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
}
ENDLESS = {"/mmer.v1.Fusion/Subscribe", "/mmer.v1.Registry/WatchModels", "/grpc.health.v1.Health/Watch"}
# method -> (kind, request type)
METHODS = {
    "/mmer.v1.Ingest/StreamScores": ("stream_stream", ingest_pb2.ScoreBatch),
    "/mmer.v1.Fusion/Subscribe": ("unary_stream", fusion_pb2.SubscribeRequest),
    "/mmer.v1.Fusion/Latest": ("unary_unary", fusion_pb2.LatestRequest),
    "/mmer.v1.Registry/PushModel": ("stream_unary", registry_pb2.BundleChunk),
    "/mmer.v1.Registry/WatchModels": ("unary_stream", registry_pb2.WatchModelsRequest),
    "/mmer.v1.Registry/GetModel": ("unary_stream", registry_pb2.GetModelRequest),
    "/mmer.v1.Registry/ListModels": ("unary_unary", registry_pb2.ListModelsRequest),
    "/mmer.v1.Registry/Rollback": ("unary_unary", registry_pb2.RollbackRequest),
    "/mmer.v1.Registry/Promote": ("unary_unary", registry_pb2.PromoteRequest),
    "/mmer.v1.Clock/Sync": ("unary_unary", clock_pb2.SyncRequest),
    "/mmer.v1.Admin/GetStats": ("unary_unary", admin_pb2.GetStatsRequest),
    "/grpc.health.v1.Health/Check": ("unary_unary", health_pb2.HealthCheckRequest),
    "/grpc.health.v1.Health/Watch": ("unary_stream", health_pb2.HealthCheckRequest),
}
FUZZ = settings(
    max_examples=int(os.environ.get("RPC_FUZZ_EXAMPLES", "12")),
    deadline=10_000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False,
)


class WellBehavedEdge:
    """Streams valid frames every 50 ms and counts the acks, in a thread, while the fuzzer runs."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.acks = 0
        self.last_ack = time.monotonic()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="good-edge", daemon=True)
        self._thread.start()

    def _batches(self):
        seq = 0
        while not self._stop.is_set():
            seq += 1
            f = frame(seq, device="good-dev", subject="good-subj", end_ns=time.time_ns() - 1_000_000_000)
            yield ingest_pb2.ScoreBatch(frames=[f], batch_id=seq)
            time.sleep(0.05)

    def _run(self) -> None:
        try:
            with grpc.insecure_channel(self.target) as ch:
                for ack in ingest_pb2_grpc.IngestStub(ch).StreamScores(self._batches()):
                    assert ack.acks[0].acked_seq == ack.batch_id, ack
                    self.acks += 1
                    self.last_ack = time.monotonic()
        except BaseException as exc:  # the test reads it
            self.error = exc

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    signed = make_bundle(tmp / "image-v1", tmp / "keys", "image", 1)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mmer_cli",
        "coordinator",
        "--listen",
        f"127.0.0.1:{port}",
        "--http",
        f"127.0.0.1:{free_port()}",
        "--trainer-pubkey",
        str(tmp / "keys" / "trainer.pub"),
    ]
    log = open(tmp / "coordinator.log", "wb")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log)
    target = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(target)
    deadline = time.monotonic() + 60
    while not _ready(channel):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"coordinator did not start; log in {tmp / 'coordinator.log'}")
    good = WellBehavedEdge(target)
    yield {"proc": proc, "channel": channel, "good": good, "bundle": signed, "keys": tmp / "keys", "log": tmp}
    good.close()
    channel.close()
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def _ready(channel: grpc.Channel) -> bool:
    try:
        grpc.channel_ready_future(channel).result(timeout=0.5)
        return True
    except grpc.FutureTimeoutError:
        return False


def call(server, method: str, payloads: list[bytes]) -> grpc.StatusCode:
    """Send raw request bytes (one message, or several for client streams); returns the final status."""
    kind, _ = METHODS[method]
    ch: grpc.Channel = server["channel"]
    timeout = 0.3 if method in ENDLESS else 5.0
    try:
        if kind == "unary_unary":
            ch.unary_unary(method)(payloads[0], timeout=timeout)
        elif kind == "unary_stream":
            for _ in ch.unary_stream(method)(payloads[0], timeout=timeout):
                pass
        elif kind == "stream_unary":
            ch.stream_unary(method)(iter(payloads), timeout=timeout)
        else:
            for _ in ch.stream_stream(method)(iter(payloads), timeout=timeout):
                pass
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def check(server, method: str, payloads: list[bytes]) -> None:
    code = call(server, method, payloads)
    allowed = ALLOWED | ({grpc.StatusCode.DEADLINE_EXCEEDED} if method in ENDLESS else set())
    assert code in allowed, f"{method} answered {code} to {[p[:80] for p in payloads]}"
    assert server["proc"].poll() is None, f"coordinator died; log in {server['log']}"


# ------------------------------------------------------------------ message strategies from descriptors

INT_BOUNDS = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}
ODD_STRINGS = ["", "hr", "image", "0", "-1", "1-2-3", "9" * 40, "a" * 300, "é\u0000\U0001f600", "../x", " "]


def scalar(field) -> st.SearchStrategy:
    if field.type in INT_BOUNDS:
        lo, hi = INT_BOUNDS[field.type]
        return st.one_of(st.sampled_from([lo, hi, 0, 1, -1 if lo < 0 else 2]), st.integers(lo, hi))
    if field.type in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if field.type == FD.TYPE_FLOAT else 64)
    if field.type == FD.TYPE_BOOL:
        return st.booleans()
    if field.type == FD.TYPE_STRING:
        return st.one_of(st.sampled_from(ODD_STRINGS), st.text(max_size=40))
    if field.type == FD.TYPE_BYTES:
        return st.binary(max_size=256)
    if field.type == FD.TYPE_ENUM:  # unknown enum numbers included (proto3 keeps them)
        return st.integers(-5, 50)
    raise AssertionError(field.type)


def message_of(descriptor, depth: int = 0) -> st.SearchStrategy:
    """Random messages of this type: each field absent or set to a random/boundary value."""
    parts = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            parts[field.name] = st.dictionaries(scalar(key), scalar(value), max_size=4)
            continue
        if field.message_type is not None:
            if depth >= 2:
                continue
            inner = message_of(field.message_type, depth + 1)
        else:
            inner = scalar(field)
        if field.is_repeated:
            parts[field.name] = st.lists(inner, max_size=4 if field.message_type is not None else 8)
        else:
            parts[field.name] = inner
    cls = _message_class(descriptor)
    return st.fixed_dictionaries({}, optional=parts).map(lambda kw: _build(cls, kw))


def _message_class(descriptor):
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


def _build(cls, values: dict):
    msg = cls()
    for name, value in values.items():
        field = msg.DESCRIPTOR.fields_by_name[name]
        if isinstance(value, dict):
            getattr(msg, name).update(value)
        elif field.is_repeated:
            if field.message_type is not None:
                for v in value:
                    getattr(msg, name).add().CopyFrom(v)
            else:
                getattr(msg, name).extend(value)
        elif field.message_type is not None:
            getattr(msg, name).CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


# ------------------------------------------------------------------ the fuzz tests


@pytest.mark.parametrize("method", sorted(METHODS))
@FUZZ
@given(data=st.data())
def test_random_bytes_as_request(server, method, data) -> None:
    kind, _ = METHODS[method]
    n = data.draw(st.integers(1, 3)) if kind.startswith("stream") else 1
    payloads = data.draw(st.lists(st.binary(max_size=512), min_size=n, max_size=n))
    check(server, method, payloads)


@pytest.mark.parametrize("method", sorted(METHODS))
@FUZZ
@given(data=st.data())
def test_random_messages_of_the_request_type(server, method, data) -> None:
    kind, request_type = METHODS[method]
    n = data.draw(st.integers(1, 3)) if kind.startswith("stream") else 1
    messages = data.draw(st.lists(message_of(request_type.DESCRIPTOR), min_size=n, max_size=n))
    check(server, method, [m.SerializeToString() for m in messages])


BOUNDARY = st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, -(2**63)])
FRAME_MUTATIONS = st.one_of(
    st.tuples(st.just("seq"), st.sampled_from([0, 1, 2**63, 2**64 - 1])),
    st.tuples(
        st.sampled_from(
            [
                "window_start_ns",
                "window_end_ns",
                "inference_start_ns",
                "inference_end_ns",
                "send_ns",
                "clock_offset_ns",
            ]
        ),
        BOUNDARY,
    ),
    st.tuples(
        st.just("probs"), st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=6)
    ),
    st.tuples(
        st.just("labels"), st.lists(st.sampled_from(["happy", "angry", "sad", "calm", ""]), max_size=5)
    ),
    st.tuples(
        st.sampled_from(["modality", "device_id", "subject_id", "taxonomy"]), st.sampled_from(ODD_STRINGS)
    ),
    st.tuples(st.just("quality"), st.floats(allow_nan=True, allow_infinity=True, width=32)),
    st.tuples(st.just("model_version"), st.sampled_from([0, 2**64 - 1])),
)


@FUZZ
@given(mutation=FRAME_MUTATIONS, frames=st.sampled_from([1, 2, 1024, 1025]))
def test_near_valid_score_batches(server, mutation, frames) -> None:
    """A valid frame with one boundary field, alone or in batches around the 1024-frame limit."""
    name, value = mutation
    bad = frame(
        1, modality="image", device="fuzz-dev", subject="fuzz-subj", end_ns=time.time_ns() - 2 * 10**9
    )
    if isinstance(value, list):
        del getattr(bad, name)[:]
        getattr(bad, name).extend(value)
    else:
        setattr(bad, name, value)
    batch = ingest_pb2.ScoreBatch(frames=[bad] * frames, batch_id=1)
    check(server, "/mmer.v1.Ingest/StreamScores", [batch.SerializeToString()])


MANIFEST_MUTATIONS = st.one_of(
    st.tuples(st.just("version"), st.sampled_from([0, 1, 2**63, 2**64 - 1])),
    st.tuples(st.just("format_version"), st.sampled_from([0, 2, 2**32 - 1])),
    st.tuples(st.just("modality"), st.sampled_from(["", "image", "speech", "../evil", "x" * 300])),
    st.tuples(st.just("files"), st.sampled_from(["drop", "rename", "dotfile", "slash", "size"])),
    st.tuples(
        st.just("chunks"), st.sampled_from(["bad_offset", "missing_file", "extra_file", "twice", "none"])
    ),
)


@FUZZ
@given(mutation=MANIFEST_MUTATIONS, resign=st.booleans())
def test_near_valid_signed_pushes(server, mutation, resign) -> None:
    """A real bundle with one manifest field or chunk changed, re-signed by the trainer key or not."""
    b = server["bundle"]
    manifest = manifest_pb2.ModelManifest()
    manifest.CopyFrom(b.manifest)
    manifest.modality = "speech"  # fuzzed pushes never touch the modality the good edge streams
    blobs = bundle_blobs(b)
    what, how = mutation
    if what in ("version", "format_version", "modality"):
        setattr(manifest, what, how)
    elif what == "files":
        f = manifest.files[-1]
        if how == "drop":
            del manifest.files[-1]
        elif how in ("rename", "dotfile", "slash"):
            f.name = {"rename": "other.bin", "dotfile": ".hidden", "slash": "a/b"}[how]
        else:
            f.size += 1
    if resign:
        manifest = sign_manifest(manifest, load_private_key(server["keys"] / "trainer.key"))
    chunks = [registry_pb2.BundleChunk(manifest=manifest)]
    files = list(blobs.items())
    if what == "chunks" and how == "missing_file":
        files = files[:1]
    if what == "chunks" and how == "extra_file":
        files.append(("extra.bin", b"x"))
    for name, data in files:
        offset = 7 if (what == "chunks" and how == "bad_offset") else 0
        chunks.append(
            registry_pb2.BundleChunk(file=registry_pb2.FileChunk(name=name, offset=offset, data=data))
        )
    if what == "chunks" and how == "twice":
        chunks.append(registry_pb2.BundleChunk(manifest=manifest))
    if what == "chunks" and how == "none":
        chunks = chunks[1:]
    check(server, "/mmer.v1.Registry/PushModel", [c.SerializeToString() for c in chunks])


@FUZZ
@given(
    method=st.sampled_from(["Rollback", "Promote", "GetModel", "WatchModels", "ListModels"]),
    modality=st.sampled_from(["speech", "image", "", "nope"]),
    version=st.sampled_from([0, 1, 2, 3, 2**63, 2**64 - 1]),
)
def test_registry_calls_on_a_populated_registry(server, method, modality, version) -> None:
    """Rollback/Promote/GetModel/Watch/List at boundary versions once the registry holds signed versions."""
    key = load_private_key(server["keys"] / "trainer.key")
    b = server["bundle"]
    for v in (2, 3):  # two real versions of speech (ALREADY_EXISTS after the first example)
        m = manifest_pb2.ModelManifest()
        m.CopyFrom(b.manifest)
        m.modality, m.version = "speech", v
        chunks = [registry_pb2.BundleChunk(manifest=sign_manifest(m, key))]
        chunks += [
            registry_pb2.BundleChunk(file=registry_pb2.FileChunk(name=n, data=d))
            for n, d in bundle_blobs(b).items()
        ]
        check(server, "/mmer.v1.Registry/PushModel", [c.SerializeToString() for c in chunks])
    request = {
        "Rollback": registry_pb2.RollbackRequest(modality=modality, to_version=version, reason="fuzz"),
        "Promote": registry_pb2.PromoteRequest(modality=modality, version=version),
        "GetModel": registry_pb2.GetModelRequest(modality=modality, version=version),
        "WatchModels": registry_pb2.WatchModelsRequest(
            device_id="fuzz-dev", modalities=[modality], current_versions={modality: version}
        ),
        "ListModels": registry_pb2.ListModelsRequest(modality=modality),
    }[method]
    check(server, f"/mmer.v1.Registry/{method}", [request.SerializeToString()])


@pytest.mark.parametrize("method", sorted(m for m, (kind, _) in METHODS.items() if kind == "unary_unary"))
def test_oversized_request_is_refused_with_resource_exhausted(server, method) -> None:
    assert call(server, method, [b"\x0a" + b"\xff" * 5 * 2**20]) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_health_watch_streams_the_serving_status(server) -> None:
    """Regression: Watch (a context.write servicer) used to fail with UNKNOWN under the tracing interceptor."""
    stream = server["channel"].unary_stream("/grpc.health.v1.Health/Watch")(b"", timeout=5)
    first = health_pb2.HealthCheckResponse.FromString(next(stream))
    stream.cancel()
    assert first.status == health_pb2.HealthCheckResponse.SERVING


def test_undecodable_request_is_invalid_argument_naming_the_type(server) -> None:
    """Regression: grpc answered UNKNOWN ("Unexpected DecodeError") to bytes that do not parse."""
    with pytest.raises(grpc.RpcError) as err:
        server["channel"].unary_unary("/mmer.v1.Clock/Sync")(b"\xff\xff\xff", timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "mmer.v1.SyncRequest" in err.value.details()


def test_subscribe_positions_at_the_boundaries(server) -> None:
    for position in ["-", "1-", "-1", "1-2-3", "18446744073709551616-0", "1e9", "NaN", " 1"]:
        req = fusion_pb2.SubscribeRequest(after_position=position)
        code = call(server, "/mmer.v1.Fusion/Subscribe", [req.SerializeToString()])
        assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.DEADLINE_EXCEEDED), (position, code)


def test_server_kept_serving_the_well_behaved_edge(server) -> None:
    """Runs last in this module (pytest keeps file order): the good edge was acked throughout."""
    good = server["good"]
    acks = good.acks
    time.sleep(1.0)
    assert good.error is None, good.error
    assert good.acks > acks, "the well-behaved edge got no acks in the last second"
    assert time.monotonic() - good.last_ack < 1.0
    assert server["proc"].poll() is None
    reply = health_pb2.HealthCheckResponse.FromString(
        server["channel"].unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
