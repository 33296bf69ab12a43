"""Puts the dashboard into the DM server's FastAPI app: session cookie, static files, page
routes, live updates, and the licence authority (signing key) shared with the REST API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from dashboard import i18n
from dashboard.web import (
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    SESSION_SECRET_FILE,
    STATIC_DIR,
)
from dm_server.security import load_or_create_secret
from dm_server.settings import Settings

#: Sent with every dashboard page: no framing, scripts and styles from this origin only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def install(app: FastAPI, settings: Settings) -> None:
    """Session cookie, static files and security headers on ``app`` (before it serves);
    the page routers come in through :func:`dashboard.api_routers`."""
    i18n.compile_catalogues()
    secret = load_or_create_secret(settings.data_dir, SESSION_SECRET_FILE)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=settings.cookie_secure,
    )

    @app.middleware("http")
    async def security_headers(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.update(SECURITY_HEADERS)
        return response

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
