"""The web dashboard of the DM server (Jinja2 pages, static files, live updates, i18n).

A server extension (see :mod:`dm_server.extensions`): ``api_routers`` adds the pages,
``configure_app`` the session cookie, static files and security headers.
"""

from __future__ import annotations

from typing import Any


def api_routers(server: Any) -> list[Any]:
    from dashboard import live, pages

    return [pages.router, live.router]


def configure_app(server: Any, app: Any) -> None:
    from dashboard.app import install
    from dm_server.services import licensing

    install(app, server.settings)
    # The licence signing key exists from the first start (created, mode 0600, if missing).
    app.state.licence_authority = licensing.authority_from_settings(server.settings)
