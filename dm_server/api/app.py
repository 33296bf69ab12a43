"""The FastAPI application: routes, and errors as JSON a person can act on."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dm_server.api.routes import accounts, audit, auth, licences, operations, terminals
from dm_server.errors import ServiceError, Unauthorized

if TYPE_CHECKING:
    from dm_server.server import DmServer

log = logging.getLogger(__name__)


def create_app(core: DmServer, extra_routers: Iterable[APIRouter] = ()) -> FastAPI:
    app = FastAPI(
        title="PosFleet DM server",
        version="1",
        description="Device management for POS terminals over LwM2M. Log in with "
        "POST /api/v1/auth/token, then send the bearer token.",
    )
    app.state.core = core
    for router in (
        auth.router,
        terminals.router,
        operations.router,
        accounts.router,
        licences.router,
        audit.router,
        *extra_routers,
    ):
        app.include_router(router)

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
        return JSONResponse({"detail": exc.message}, status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "internal error; the server log has the details"}, status_code=500
        )

    return app
