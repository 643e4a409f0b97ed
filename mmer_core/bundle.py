"""Model bundles: model files plus a signed `ModelManifest`, on disk and on the wire.

The trainer signs, the coordinator and the edge verify. A bundle whose signature
does not verify against the trainer's public key, or whose files do not match
their digests, is refused before anything loads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mmer.v1 import manifest_pb2
from mmer_core import wearer_baseline

MANIFEST_FILE = "manifest.pb"
FORMAT_VERSION = 1
PRIVATE_KEY_FILE = "trainer.key"
PUBLIC_KEY_FILE = "trainer.pub"
# an Ed25519 SubjectPublicKeyInfo (RFC 8410) in DER is always this 12-byte header and the 32-byte key
ED25519_SPKI_HEADER = bytes.fromhex("302a300506032b6570032100")
PEM_PUBLIC_KEY = (b"-----BEGIN PUBLIC KEY-----", b"-----END PUBLIC KEY-----")


class BundleError(ValueError):
    """A bundle is unsigned, tampered, incomplete or malformed."""


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk."""

    path: Path
    manifest: manifest_pb2.ModelManifest

    def file(self, role: str = "model") -> Path:
        """Path of the first file with this role (the served model for "model")."""
        for f in self.manifest.files:
            if f.role == role:
                return self.path / f.name
        raise BundleError(f"bundle {self.path}: no file with role {role!r}")


def generate_keypair(directory: str | Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair (PEM) as trainer.key (mode 0600) and trainer.pub."""
    from cryptography.hazmat.primitives import serialization  # the trainer's: see load_public_key

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    priv = directory / PRIVATE_KEY_FILE
    pub = directory / PUBLIC_KEY_FILE
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Load the trainer's signing key from a PEM file."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Load the trainer's verification key from a PEM file (SubjectPublicKeyInfo, as generate_keypair writes).

    Read from its fixed DER form rather than through cryptography's serialization module, whose import
    brings the code of every key type and format (RSA, EC, DSA, SSH, PKCS#12): ~1.8 MB of an edge node's
    memory budget for one Ed25519 key."""
    lines = Path(path).read_bytes().strip().splitlines()
    if len(lines) < 3 or (lines[0].strip(), lines[-1].strip()) != PEM_PUBLIC_KEY:
        raise BundleError(f"{path}: not a PEM public key (BEGIN/END PUBLIC KEY)")
    try:
        der = base64.b64decode(b"".join(line.strip() for line in lines[1:-1]), validate=True)
    except binascii.Error:
        raise BundleError(f"{path}: PEM body is not base64") from None
    if len(der) != len(ED25519_SPKI_HEADER) + 32 or not der.startswith(ED25519_SPKI_HEADER):
        raise BundleError(f"{path}: not an Ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(der[len(ED25519_SPKI_HEADER) :])


def key_id(public_key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw public key: names the signer in manifests."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()


def signed_payload(manifest: manifest_pb2.ModelManifest) -> bytes:
    """The bytes the signature covers: the manifest serialised deterministically, signature empty."""
    unsigned = manifest_pb2.ModelManifest()
    unsigned.CopyFrom(manifest)
    unsigned.ClearField("signature")
    return unsigned.SerializeToString(deterministic=True)


def sign_manifest(
    manifest: manifest_pb2.ModelManifest, private_key: Ed25519PrivateKey
) -> manifest_pb2.ModelManifest:
    """Return a copy of the manifest carrying the signer's key id and an Ed25519 signature."""
    signed = manifest_pb2.ModelManifest()
    signed.CopyFrom(manifest)
    signed.signer_key_id = key_id(private_key.public_key())
    signed.ClearField("signature")
    signed.signature = private_key.sign(signed_payload(signed))
    return signed


def verify_manifest(manifest: manifest_pb2.ModelManifest, public_key: Ed25519PublicKey) -> None:
    """Raise BundleError unless the manifest is well formed and signed by this key."""
    where = f"{manifest.modality or '?'} v{manifest.version}"
    if not manifest.signature:
        raise BundleError(f"bundle {where}: unsigned manifest")
    if manifest.signer_key_id != key_id(public_key):
        raise BundleError(f"bundle {where}: signed by unknown key {manifest.signer_key_id[:16] or '(none)'}")
    try:
        public_key.verify(manifest.signature, signed_payload(manifest))
    except InvalidSignature:
        raise BundleError(f"bundle {where}: signature does not verify (manifest tampered)") from None
    if manifest.format_version != FORMAT_VERSION:
        raise BundleError(f"bundle {where}: unsupported format_version {manifest.format_version}")
    if not manifest.modality or manifest.version < 1:
        raise BundleError(f"bundle {where}: modality and version >= 1 are required")
    if not manifest.files or manifest.files[0].role != "model":
        raise BundleError(f"bundle {where}: files[0] must be the model")
    if len(manifest.taxonomy.labels) < 2:
        raise BundleError(f"bundle {where}: taxonomy needs at least 2 labels")
    for name in ("accuracy", "fp32_accuracy", "validation_accuracy"):  # fusion weighs models by these
        value = getattr(manifest.metrics, name)
        if not 0.0 <= value <= 1.0:
            raise BundleError(f"bundle {where}: metrics.{name} must be within [0, 1], got {value}")
    try:
        wearer_baseline.requested(manifest.preprocessing.params)
    except ValueError as exc:
        raise BundleError(f"bundle {where}: preprocessing: {exc}") from None
    for f in manifest.files:
        if not f.name or "/" in f.name or f.name.startswith(".") or f.name == MANIFEST_FILE:
            raise BundleError(f"bundle {where}: bad file name {f.name!r}")


def verify_blobs(manifest: manifest_pb2.ModelManifest, blobs: Mapping[str, bytes]) -> None:
    """Raise BundleError unless the blobs are exactly the manifest's files with matching digests."""
    where = f"{manifest.modality} v{manifest.version}"
    expected = {f.name: f for f in manifest.files}
    if set(blobs) != set(expected):
        missing = sorted(set(expected) - set(blobs))
        extra = sorted(set(blobs) - set(expected))
        raise BundleError(
            f"bundle {where}: files differ from manifest (missing {missing}, unexpected {extra})"
        )
    for name, data in blobs.items():
        digest = expected[name]
        if len(data) != digest.size or hashlib.sha256(data).hexdigest() != digest.sha256:
            raise BundleError(
                f"bundle {where}: file {name} does not match its sha256 (tampered or truncated)"
            )


def file_digest(name: str, data: bytes, role: str) -> manifest_pb2.FileDigest:
    """The manifest entry of one file."""
    return manifest_pb2.FileDigest(
        name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data), role=role
    )


def write_bundle(
    directory: str | Path,
    manifest: manifest_pb2.ModelManifest,
    files: Mapping[str, tuple[bytes, str]],
    private_key: Ed25519PrivateKey,
) -> Bundle:
    """Write files (name -> (bytes, role); the "model" role first) and the signed manifest.

    The manifest's `files` are filled from the given bytes, so what is signed is
    exactly what is written. The manifest goes last, atomically, so a reader
    never sees a manifest whose files are not all there.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ordered = sorted(files.items(), key=lambda kv: kv[1][1] != "model")
    draft = manifest_pb2.ModelManifest()
    draft.CopyFrom(manifest)
    draft.format_version = FORMAT_VERSION
    del draft.files[:]
    for name, (data, role) in ordered:
        (directory / name).write_bytes(data)
        draft.files.append(file_digest(name, data, role))
    signed = sign_manifest(draft, private_key)
    _atomic_write(directory / MANIFEST_FILE, signed.SerializeToString(deterministic=True))
    return Bundle(directory, signed)


def read_manifest(directory: str | Path) -> manifest_pb2.ModelManifest:
    """Parse a bundle's manifest without verifying it (for listing only)."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"bundle {directory}: no {MANIFEST_FILE}")
    manifest = manifest_pb2.ModelManifest()
    try:
        manifest.ParseFromString(path.read_bytes())
    except Exception as exc:
        raise BundleError(f"bundle {directory}: manifest does not parse ({exc})") from None
    return manifest


def read_bundle(directory: str | Path, public_key: Ed25519PublicKey) -> Bundle:
    """Load a bundle from disk, verifying the signature and every file's digest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    verify_manifest(manifest, public_key)
    blobs = {}
    for f in manifest.files:
        path = directory / f.name
        if not path.is_file():
            raise BundleError(f"bundle {directory}: missing file {f.name}")
        blobs[f.name] = path.read_bytes()
    verify_blobs(manifest, blobs)
    return Bundle(directory, manifest)


def write_verified_blobs(
    directory: str | Path, manifest: manifest_pb2.ModelManifest, blobs: Mapping[str, bytes]
) -> Bundle:
    """Store a bundle received over the wire, after its signature and digests were checked."""
    verify_blobs(manifest, blobs)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in blobs.items():
        _atomic_write(directory / name, data)
    _atomic_write(directory / MANIFEST_FILE, manifest.SerializeToString(deterministic=True))
    return Bundle(directory, manifest)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
