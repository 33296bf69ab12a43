"""The server's firmware package store: signed packages as files in one folder.

Packages are verified (layout, manufacturer signature, size, SHA-256) before they are
stored, so everything the store serves is something a terminal will accept. Files are named
``<name>-<version>.pfpkg``; a package is never overwritten by a different one with the same
name and version.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from posfleet.firmware_package import (
    HEADER_BYTES,
    MAX_MANIFEST_BYTES,
    SIGNATURE_LENGTH,
    Manifest,
    PackageError,
    read_manifest,
    verify_package,
)

_FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,59}-[0-9A-Za-z][0-9A-Za-z.+_-]{0,39}\.pfpkg$")
#: URL path prefixes where packages are served (CoAP and HTTP).
COAP_PREFIX = ("fw",)
HTTP_PREFIX = "/firmware"


class StoreError(Exception):
    """A package cannot be stored or found; the message says why."""


class PackageRefused(StoreError):
    pass


class PackageNotFound(StoreError):
    pass


@dataclass(frozen=True)
class StoredPackage:
    file_name: str
    manifest: Manifest
    size: int
    path: Path

    @property
    def etag(self) -> bytes:
        """Eight bytes that change whenever the content does (for CoAP ETag)."""
        return bytes.fromhex(self.manifest.sha256[:16])


class PackageStore:
    """Folder of verified packages; ``trusted_keys`` gives the manufacturer's public keys."""

    def __init__(self, root: Path, trusted_keys: Callable[[], list[Ed25519PublicKey]]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.trusted_keys = trusted_keys

    def add(self, data: bytes) -> StoredPackage:
        """Verify and store a package; returns what was stored (idempotent for the same bytes)."""
        try:
            package = verify_package(data, self.trusted_keys())
        except PackageError as exc:
            raise PackageRefused(f"package refused: {exc}") from None
        target = self.root / package.manifest.file_name
        if target.exists():
            existing = self.get(target.name)
            if existing.manifest.sha256 != package.manifest.sha256:
                raise PackageRefused(
                    f"{target.name} already exists with other content: use a new version")
            return existing
        temporary = target.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return self.get(target.name)

    def get(self, file_name: str) -> StoredPackage:
        if not _FILE_NAME.match(file_name):
            raise PackageNotFound(f"{file_name[:80]!r} is not a package file name")
        path = self.root / file_name
        try:
            with path.open("rb") as handle:
                head = handle.read(HEADER_BYTES + MAX_MANIFEST_BYTES + SIGNATURE_LENGTH)
            size = path.stat().st_size
        except OSError:
            raise PackageNotFound(f"no package {file_name}") from None
        try:
            manifest, _, _ = read_manifest(head)
        except PackageError as exc:
            raise PackageNotFound(f"{file_name} is damaged: {exc}") from None
        return StoredPackage(file_name, manifest, size, path)

    def list(self) -> list[StoredPackage]:
        out = []
        for path in sorted(self.root.glob("*.pfpkg")):
            try:
                out.append(self.get(path.name))
            except PackageNotFound:
                continue
        return out

    def read(self, file_name: str, offset: int, length: int) -> bytes:
        package = self.get(file_name)
        with package.path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def delete(self, file_name: str) -> None:
        package = self.get(file_name)
        package.path.unlink(missing_ok=True)
