"""Signed bundles: a good one verifies; unsigned, tampered or foreign ones are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mmer.v1 import common_pb2, manifest_pb2
from mmer_core import bundle


@pytest.fixture()
def keys(tmp_path: Path):
    priv, pub = bundle.generate_keypair(tmp_path / "keys")
    return bundle.load_private_key(priv), bundle.load_public_key(pub)


def _manifest() -> manifest_pb2.ModelManifest:
    return manifest_pb2.ModelManifest(
        modality="speech",
        version=3,
        taxonomy=common_pb2.Taxonomy(name="quadrants", labels=["happy", "angry", "sad", "calm"]),
        input=manifest_pb2.InputSpec(name="logmel", shape=[40, 98, 1], dtype="float32"),
        output_name="probs",
        metrics=manifest_pb2.Metrics(accuracy=0.8, fp32_accuracy=0.81),
    )


FILES = {"model.int8.onnx": (b"\x08\x07onnx-bytes" * 50, "model"), "samples.npz": (b"npz" * 10, "samples")}


def test_written_bundle_reads_back_verified(tmp_path: Path, keys) -> None:
    priv, pub = keys
    written = bundle.write_bundle(tmp_path / "b", _manifest(), FILES, priv)
    loaded = bundle.read_bundle(tmp_path / "b", pub)
    assert loaded.manifest == written.manifest
    assert loaded.manifest.files[0].name == "model.int8.onnx"
    assert loaded.file("model").read_bytes() == FILES["model.int8.onnx"][0]
    assert loaded.manifest.signer_key_id == bundle.key_id(pub)
    assert len(loaded.manifest.signature) == 64


@pytest.mark.parametrize("name", sorted(FILES))
def test_flipped_byte_in_a_file_is_refused(tmp_path: Path, keys, name: str) -> None:
    priv, pub = keys
    bundle.write_bundle(tmp_path / "b", _manifest(), FILES, priv)
    path = tmp_path / "b" / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(bundle.BundleError, match=f"{name} does not match its sha256"):
        bundle.read_bundle(tmp_path / "b", pub)


MANIFEST_EDITS = {
    "modality": lambda m: setattr(m, "modality", "image"),
    "version": lambda m: setattr(m, "version", 99),
    "taxonomy": lambda m: m.taxonomy.labels.append("bored"),
    "input": lambda m: m.input.shape.append(2),
    "metrics": lambda m: setattr(m.metrics, "accuracy", 0.99),
    "file_digest": lambda m: setattr(m.files[0], "sha256", "0" * 64),
    "quantization": lambda m: setattr(m.quantization, "method", "max"),
}


@pytest.mark.parametrize("field", sorted(MANIFEST_EDITS))
def test_edited_manifest_field_is_refused(tmp_path: Path, keys, field: str) -> None:
    priv, pub = keys
    signed = bundle.write_bundle(tmp_path / "b", _manifest(), FILES, priv).manifest
    MANIFEST_EDITS[field](signed)
    (tmp_path / "b" / bundle.MANIFEST_FILE).write_bytes(signed.SerializeToString())
    with pytest.raises(bundle.BundleError, match="signature does not verify"):
        bundle.read_bundle(tmp_path / "b", pub)


def test_flipped_byte_in_manifest_file_is_refused(tmp_path: Path, keys) -> None:
    priv, pub = keys
    bundle.write_bundle(tmp_path / "b", _manifest(), FILES, priv)
    path = tmp_path / "b" / bundle.MANIFEST_FILE
    raw = bytearray(path.read_bytes())
    raw[5] ^= 0x20
    path.write_bytes(bytes(raw))
    with pytest.raises(bundle.BundleError):
        bundle.read_bundle(tmp_path / "b", pub)


def test_unsigned_manifest_is_refused(tmp_path: Path, keys) -> None:
    priv, pub = keys
    signed = bundle.write_bundle(tmp_path / "b", _manifest(), FILES, priv).manifest
    signed.ClearField("signature")
    (tmp_path / "b" / bundle.MANIFEST_FILE).write_bytes(signed.SerializeToString())
    with pytest.raises(bundle.BundleError, match="unsigned"):
        bundle.read_bundle(tmp_path / "b", pub)


def test_bundle_signed_by_another_key_is_refused(tmp_path: Path, keys) -> None:
    _, pub = keys
    other_priv, _ = bundle.generate_keypair(tmp_path / "other")
    bundle.write_bundle(tmp_path / "b", _manifest(), FILES, bundle.load_private_key(other_priv))
    with pytest.raises(bundle.BundleError, match="unknown key"):
        bundle.read_bundle(tmp_path / "b", pub)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: setattr(m.metrics, "validation_accuracy", 1.5), "metrics.validation_accuracy"),
        (lambda m: setattr(m.metrics, "accuracy", float("nan")), "metrics.accuracy"),
        (lambda m: setattr(m.metrics, "fp32_accuracy", -0.1), "metrics.fp32_accuracy"),
        (lambda m: m.taxonomy.CopyFrom(common_pb2.Taxonomy(name="one", labels=["x"])), "at least 2 labels"),
    ],
)
def test_signed_manifest_with_impossible_figures_is_refused(tmp_path: Path, keys, edit, message) -> None:
    """The coordinator weighs each model in fusion by its validation accuracy: a signed bundle claiming an
    accuracy outside [0, 1] (or NaN), or a taxonomy of fewer than two labels, is refused at verification."""
    priv, pub = keys
    manifest = _manifest()
    edit(manifest)
    bundle.write_bundle(tmp_path / "b", manifest, FILES, priv)
    with pytest.raises(bundle.BundleError, match=message):
        bundle.read_bundle(tmp_path / "b", pub)


def test_wire_blobs_must_match_manifest(keys, tmp_path: Path) -> None:
    priv, pub = keys
    signed = bundle.write_bundle(tmp_path / "b", _manifest(), FILES, priv).manifest
    blobs = {name: data for name, (data, _) in FILES.items()}
    bundle.verify_manifest(signed, pub)
    bundle.verify_blobs(signed, blobs)
    with pytest.raises(bundle.BundleError, match="missing"):
        bundle.verify_blobs(signed, {"model.int8.onnx": blobs["model.int8.onnx"]})
    with pytest.raises(bundle.BundleError, match="does not match"):
        bundle.verify_blobs(signed, {**blobs, "samples.npz": b"short"})
    stored = bundle.write_verified_blobs(tmp_path / "copy", signed, blobs)
    assert bundle.read_bundle(stored.path, pub).manifest == signed


def test_private_key_file_is_private(tmp_path: Path) -> None:
    priv, pub = bundle.generate_keypair(tmp_path)
    assert priv.stat().st_mode & 0o077 == 0
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_public_key_reads_back_as_the_key_that_signs(tmp_path: Path) -> None:
    priv, pub = bundle.generate_keypair(tmp_path)
    private = bundle.load_private_key(priv)
    loaded = bundle.load_public_key(pub)
    assert loaded.public_bytes_raw() == private.public_key().public_bytes_raw()
    assert bundle.key_id(loaded) == bundle.key_id(private.public_key())
    loaded.verify(private.sign(b"payload"), b"payload")  # raises if the key were another


def _other_keys_pem() -> dict[str, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448

    spki = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "ec": ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*spki),
        "ed448": ed448.Ed448PrivateKey.generate().public_key().public_bytes(*spki),
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a PEM public key"),
        (b"-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n", "not base64"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a PEM public key"),
        ("ec", "not an Ed25519 public key"),
        ("ed448", "not an Ed25519 public key"),
    ],
)
def test_a_public_key_file_that_is_not_an_ed25519_key_is_refused(
    tmp_path: Path, content: bytes | str, message: str
) -> None:
    path = tmp_path / "trainer.pub"
    path.write_bytes(_other_keys_pem()[content] if isinstance(content, str) else content)
    with pytest.raises(bundle.BundleError, match=message):
        bundle.load_public_key(path)


def test_an_edge_node_loads_and_verifies_without_cryptographys_serialization_module(tmp_path: Path) -> None:
    # the serialization module brings every key type's code: ~1.8 MB of an edge node's memory budget
    priv, pub = bundle.generate_keypair(tmp_path / "keys")
    bundle.write_bundle(tmp_path / "b", _manifest(), FILES, bundle.load_private_key(priv))
    probe = (
        "import sys, edge_node.node; from mmer_core import bundle\n"
        f"bundle.read_bundle({str(tmp_path / 'b')!r}, bundle.load_public_key({str(pub)!r}))\n"
        "print(sorted(n for n in sys.modules if n.startswith('cryptography.hazmat.primitives.serialization')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
