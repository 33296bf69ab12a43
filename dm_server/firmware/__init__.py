"""The DM server's firmware package store, served over CoAP (block-wise) and HTTP.

Mounted by :mod:`dm_server.extensions`: ``coap_resources`` puts :class:`PackageResource` at
``/fw`` and ``api_routers`` adds the download and admin routes. Packages live in
``<data_dir>/firmware``; the manufacturer's public key (the licence signing key's public
half) is the one they must be signed with.
"""

from __future__ import annotations

from typing import Any

from dm_server.firmware.store import PackageStore


def store_for(server: Any) -> PackageStore:
    """The package store of one running server (kept on the server object)."""
    store: PackageStore | None = getattr(server, "firmware_store", None)
    if store is None:
        settings = server.settings

        def trusted_keys() -> list[Any]:
            from posfleet.licence_token import load_or_create_signing_key

            key = load_or_create_signing_key(settings.resolved_licence_key_file)
            return [key.public_key()]

        store = PackageStore(settings.data_dir / "firmware", trusted_keys)
        server.firmware_store = store
    return store


def coap_resources(server: Any) -> list[tuple[tuple[str, ...], Any]]:
    from dm_server.firmware.coap import PackageResource

    return [(("fw",), PackageResource(store_for(server)))]


def api_routers(server: Any) -> list[Any]:
    from dm_server.api.deps import get_current_account
    from dm_server.firmware.http import admin_router, download_router

    store = store_for(server)

    def coap_base() -> str:
        return f"coap://{server.settings.bind}:{server.coap_port}"

    return [download_router(store), admin_router(store, get_current_account, coap_base)]
