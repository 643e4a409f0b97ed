"""Signed bundles: a good one verifies; unsigned, tampered or foreign ones are refused."""

from __future__ import annotations

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
