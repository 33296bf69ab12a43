"""HTTP side of the package store.

``GET /firmware/<file>`` serves a package to terminals, with ``Range`` so an interrupted
download resumes; it needs no log-in because packages are signed and verified on the
terminal. ``GET /api/v1/firmware`` lists the store and ``POST /api/v1/firmware`` adds a
package (admin only; the body is the package file).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status

from dm_server.firmware.store import (
    HTTP_PREFIX,
    PackageNotFound,
    PackageRefused,
    PackageStore,
    StoredPackage,
)
from posfleet.firmware_package import MAX_PACKAGE_BYTES

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def describe(package: StoredPackage, coap_base: str = "") -> dict[str, Any]:
    m = package.manifest
    out = {"file": package.file_name, "name": m.name, "version": m.version,
           "sha256": m.sha256, "size": package.size, "created": m.created,
           "http_path": f"{HTTP_PREFIX}/{package.file_name}",
           "coap_path": f"/fw/{package.file_name}"}
    if coap_base:
        out["coap_uri"] = f"{coap_base.rstrip('/')}/fw/{package.file_name}"
    return out


def download_router(store: PackageStore) -> APIRouter:
    router = APIRouter(tags=["firmware"])

    @router.get(HTTP_PREFIX + "/{file_name}", summary="Download a package (supports Range)")
    async def download(file_name: str, request: Request) -> Response:
        try:
            package = store.get(file_name)
        except PackageNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        start, end = 0, package.size - 1
        header = request.headers.get("range")
        partial = False
        if header:
            match = _RANGE.match(header.strip())
            if not match or not (match.group(1) or match.group(2)):
                raise HTTPException(status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
                                    "only one bytes=START-END range is supported")
            if match.group(1):
                start = int(match.group(1))
                if match.group(2):
                    end = min(int(match.group(2)), end)
            else:  # suffix range: the last N bytes
                start = max(0, package.size - int(match.group(2)))
            if start > end:
                raise HTTPException(status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
                                    f"range starts beyond {package.size} bytes",
                                    headers={"Content-Range": f"bytes */{package.size}"})
            partial = True
        body = await asyncio.to_thread(store.read, file_name, start, end - start + 1)
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{package.manifest.sha256[:32]}"'}
        if partial:
            headers["Content-Range"] = f"bytes {start}-{end}/{package.size}"
        return Response(body, status_code=206 if partial else 200, headers=headers,
                        media_type="application/octet-stream")

    return router


def admin_router(store: PackageStore, current_account: Callable[..., Any],
                 coap_base: Callable[[], str] = lambda: "") -> APIRouter:
    """List and upload; ``current_account`` is the server's log-in dependency."""
    from fastapi import Depends

    router = APIRouter(prefix="/api/v1/firmware", tags=["firmware"],
                       dependencies=[Depends(current_account)])
    # The dependency runs again per route to hand over the caller (FastAPI caches it).
    caller_dependency = Depends(current_account)

    @router.get("", summary="Packages in the store")
    async def list_packages() -> list[dict[str, Any]]:
        return [describe(p, coap_base()) for p in store.list()]

    @router.post("", status_code=status.HTTP_201_CREATED,
                 summary="Add a signed package (body: the .pfpkg file); admin only")
    async def upload(request: Request, caller: Any = caller_dependency) -> dict[str, Any]:
        if not getattr(caller, "is_admin", False):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "only the manufacturer admin "
                                "may add firmware packages")
        data = await request.body()
        if len(data) > MAX_PACKAGE_BYTES:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                                f"package larger than {MAX_PACKAGE_BYTES} bytes")
        try:
            package = await asyncio.to_thread(store.add, data)
        except PackageRefused as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        return describe(package, coap_base())

    return router
