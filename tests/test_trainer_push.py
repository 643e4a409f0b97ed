"""`mmer trainer push` to a real coordinator that serves TLS and checks tokens, as the deploy files run it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coordinator.auth import hash_token
from testkit.coordinator_helpers import ROOT, spawn_coordinator
from testkit.edge_models import make_bundle
from testkit.localhost import free_port

TOKEN = "tok-trainer"


@pytest.fixture()
def tls_coordinator(tmp_path: Path):
    """A `mmer coordinator` with TLS (certificates from deploy/certs/make-certs.sh) and a token file; yields
    (gRPC target, CA certificate, the trainer's key directory)."""
    certs, keys = tmp_path / "certs", tmp_path / "keys"
    subprocess.run(
        ["bash", str(ROOT / "deploy/certs/make-certs.sh"), str(certs), "127.0.0.1"],
        check=True,
        capture_output=True,
    )
    make_bundle(tmp_path / "models" / "hr", keys, "hr", version=1)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{hash_token(TOKEN)} trainer retrainer\n")
    port = free_port()
    proc = spawn_coordinator(
        port,
        free_port(),
        [
            "--tls-cert",
            str(certs / "server.crt"),
            "--tls-key",
            str(certs / "server.key"),
            "--auth",
            str(tokens),
            "--trainer-pubkey",
            str(keys / "trainer.pub"),
        ],
    )
    target = f"127.0.0.1:{port}"
    creds = grpc.ssl_channel_credentials((certs / "ca.crt").read_bytes())
    deadline = time.monotonic() + 30
    with grpc.secure_channel(target, creds) as channel:
        while True:
            try:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                break
            except grpc.RpcError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"coordinator did not start: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
    yield target, certs / "ca.crt", tmp_path / "models"
    proc.kill()
    proc.wait()


def push(target: str, models: Path, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmer_cli", "trainer", "push", "--coordinator", target, *args, str(models)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MMER_TOKEN": token},
    )


def test_push_verifies_the_coordinator_with_the_ca_and_sends_the_token_from_the_environment(
    tls_coordinator,
) -> None:
    target, ca, models = tls_coordinator
    done = push(target, models, "--tls-ca", str(ca))
    assert done.returncode == 0, done.stderr
    assert "pushed hr v1" in done.stdout


def test_push_without_the_ca_or_with_a_wrong_token_is_refused_with_the_reason(tls_coordinator) -> None:
    target, ca, models = tls_coordinator
    plaintext = push(target, models)
    assert plaintext.returncode == 1
    assert "UNAVAILABLE" in plaintext.stderr
    wrong = push(target, models, "--tls-ca", str(ca), token="nope")
    assert wrong.returncode == 1
    assert "UNAUTHENTICATED" in wrong.stderr
