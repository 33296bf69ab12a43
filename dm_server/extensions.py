"""Where other parts of the server mount their CoAP resources and HTTP routers.

Each module named in :data:`EXTENSION_MODULES` that exists may define

* ``coap_resources(server) -> Iterable[tuple[tuple[str, ...], Resource]]`` and/or
* ``api_routers(server) -> Iterable[fastapi.APIRouter]``, and/or
* ``configure_app(server, app)``, called once the FastAPI app exists (middleware, state),

receiving the running :class:`dm_server.server.DmServer`. A missing module is skipped, so
the server runs without the optional parts. ``start_server(..., extensions=[...])`` adds
more modules or objects with the same functions (tests do).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import Any

HOOKS = ("coap_resources", "api_routers", "configure_app")

EXTENSION_MODULES = (
    "dm_server.firmware",  # firmware package store: CoAP block-wise and HTTP download
    "dashboard",  # web pages, when the dashboard package provides api_routers()
)


def load(names: Iterable[str] = EXTENSION_MODULES) -> list[ModuleType]:
    found = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        if any(hasattr(module, hook) for hook in HOOKS):
            found.append(module)
    return found


def coap_resources(extensions: Iterable[Any], server: Any) -> list[tuple[tuple[str, ...], Any]]:
    mounted = []
    for extension in extensions:
        factory = getattr(extension, "coap_resources", None)
        if factory is not None:
            mounted.extend((tuple(path), resource) for path, resource in factory(server))
    return mounted


def api_routers(extensions: Iterable[Any], server: Any) -> list[Any]:
    routers = []
    for extension in extensions:
        factory = getattr(extension, "api_routers", None)
        if factory is not None:
            routers.extend(factory(server))
    return routers


def configure_apps(extensions: Iterable[Any], server: Any, app: Any) -> None:
    for extension in extensions:
        configure = getattr(extension, "configure_app", None)
        if configure is not None:
            configure(server, app)
