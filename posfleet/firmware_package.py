"""Signed terminal software packages, shared by the server's package store and the terminal.

A package is one file::

    MAGIC (8 bytes: b"PFPKG01\\n")
    manifest length (4 bytes, big-endian)
    manifest (canonical JSON, UTF-8)
    Ed25519 signature (64 bytes) over MAGIC + manifest
    payload (a gzip-compressed tar of the software folder)

The manifest names the package and version, the payload's SHA-256 and size, and the id of
the signing key (as in :mod:`posfleet.licence_token`). Verification checks, in this order,
the layout (else :class:`UnsupportedPackage`), the signature by a trusted manufacturer key,
then the payload's size and SHA-256 (else :class:`IntegrityError`). Nothing is unpacked
before all three pass.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from posfleet.licence_token import key_id

MAGIC = b"PFPKG01\n"
FORMAT_VERSION = 1
SIGNATURE_LENGTH = 64
_LENGTH = struct.Struct(">I")
#: Largest manifest accepted; a real one is a few hundred bytes.
MAX_MANIFEST_BYTES = 16 * 1024
#: Largest package accepted by the store and the terminal.
MAX_PACKAGE_BYTES = 64 * 1024 * 1024
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,39}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,59}$")
HEADER_BYTES = len(MAGIC) + _LENGTH.size


class PackageError(ValueError):
    """A package is not acceptable; subclasses say why (mapped to Update Result codes)."""


class UnsupportedPackage(PackageError):
    """Not a package of this format (wrong magic, bad manifest)."""


class IntegrityError(PackageError):
    """Signature, size or SHA-256 does not match: altered, truncated or foreign."""


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    sha256: str
    size: int
    key_id: str
    created: int

    def to_bytes(self) -> bytes:
        return json.dumps(
            {"format": FORMAT_VERSION, "name": self.name, "version": self.version,
             "sha256": self.sha256, "size": self.size, "kid": self.key_id,
             "created": self.created},
            sort_keys=True, separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UnsupportedPackage(f"manifest is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise UnsupportedPackage("manifest format is not 1")
        try:
            manifest = cls(
                name=str(data["name"]), version=str(data["version"]),
                sha256=str(data["sha256"]), size=int(data["size"]), key_id=str(data["kid"]),
                created=int(data["created"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UnsupportedPackage(f"manifest field missing or wrong: {exc}") from None
        if not _NAME.match(manifest.name) or not _VERSION.match(manifest.version):
            raise UnsupportedPackage("manifest name or version has characters not allowed")
        if not re.fullmatch(r"[0-9a-f]{64}", manifest.sha256) or manifest.size < 0:
            raise UnsupportedPackage("manifest sha256 or size is malformed")
        return manifest

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.pfpkg"


@dataclass(frozen=True)
class Package:
    manifest: Manifest
    payload: bytes


def tar_folder(folder: Path) -> bytes:
    """A deterministic gzip'd tar of ``folder`` (sorted names, zero times and owners)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for path in sorted(folder.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def build_package(
    private_key: Ed25519PrivateKey, name: str, version: str, payload: bytes,
    created: int | None = None,
) -> bytes:
    """Sign and assemble a package around ``payload`` (usually :func:`tar_folder` output)."""
    manifest = Manifest(
        name=name, version=version, sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload), key_id=key_id(private_key.public_key()),
        created=int(time.time()) if created is None else created,
    )
    Manifest.from_bytes(manifest.to_bytes())  # refuse names and versions we could not read
    raw = manifest.to_bytes()
    signature = private_key.sign(MAGIC + raw)
    return MAGIC + _LENGTH.pack(len(raw)) + raw + signature + payload


def read_manifest(data: bytes) -> tuple[Manifest, bytes, int]:
    """Parse the header: (manifest, raw manifest bytes, payload offset). No signature check."""
    if len(data) < HEADER_BYTES or not data.startswith(MAGIC):
        raise UnsupportedPackage("not a PosFleet package (magic bytes missing)")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if length > MAX_MANIFEST_BYTES:
        raise UnsupportedPackage(f"manifest of {length} bytes is too long")
    end = HEADER_BYTES + length
    if len(data) < end + SIGNATURE_LENGTH:
        raise IntegrityError("package is truncated inside its header")
    raw = data[HEADER_BYTES:end]
    return Manifest.from_bytes(raw), raw, end + SIGNATURE_LENGTH


def verify_package(data: bytes, trusted_keys: Iterable[Ed25519PublicKey]) -> Package:
    """Check layout, signature, size and SHA-256; return the package or raise PackageError."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise UnsupportedPackage(f"package larger than {MAX_PACKAGE_BYTES} bytes")
    manifest, raw, offset = read_manifest(data)
    signature = data[offset - SIGNATURE_LENGTH:offset]
    keys = {key_id(key): key for key in trusted_keys}
    key = keys.get(manifest.key_id)
    if key is None:
        raise IntegrityError(f"signed by key {manifest.key_id}, which is not trusted")
    try:
        key.verify(signature, MAGIC + raw)
    except InvalidSignature:
        raise IntegrityError("signature does not match the manifest") from None
    payload = data[offset:]
    if len(payload) != manifest.size:
        raise IntegrityError(f"payload is {len(payload)} bytes, manifest says {manifest.size}")
    if hashlib.sha256(payload).hexdigest() != manifest.sha256:
        raise IntegrityError("payload SHA-256 does not match the manifest")
    return Package(manifest, payload)


def unpack_payload(payload: bytes, target: Path) -> None:
    """Extract a verified payload into ``target`` (tar's ``data`` filter: no links out,
    no absolute paths, no device files)."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UnsupportedPackage(f"payload cannot be unpacked: {exc}") from None
