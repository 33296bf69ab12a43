"""What every dashboard page shares: the session (signed cookie), CSRF tokens, the logged-in
account and the subtree it has chosen, the Jinja environment, and error pages.

The session cookie is signed by Starlette's SessionMiddleware with a secret generated into
the data folder; it holds only the account id, a fingerprint of the password hash (so a
password change ends every other session), the CSRF token and the chosen tree node.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.status import HTTP_303_SEE_OTHER

from dashboard import i18n, vocabulary
from dashboard.i18n import _
from dm_server.api.deps import get_session
from dm_server.db.models.account import Account, Role
from dm_server.errors import NotFound, ServiceError
from dm_server.services import accounts

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "posfleet_session"
SESSION_SECRET_FILE = "session-secret"  # noqa: S105 - a file name
CSRF_FIELD = "csrf_token"
#: Sessions end after this long even if the browser stays open.
SESSION_MAX_AGE_S = 12 * 3600


def core(request: Request) -> Any:
    """The running DmServer (settings, database, LwM2M side, API token signer)."""
    return request.app.state.core


def login_policy(request: Request) -> accounts.LoginPolicy:
    return accounts.LoginPolicy.from_settings(core(request).settings)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = i18n.format_when
    env.filters["money"] = i18n.format_money
    env.filters["number"] = i18n.format_number
    env.filters["term"] = vocabulary.term
    return env


templates = Jinja2Templates(env=_environment())
SessionDep = Annotated[AsyncSession, Depends(get_session)]


# --- session and CSRF -------------------------------------------------------------------


def password_fingerprint(account: Account) -> str:
    return hashlib.sha256(account.password_hash.encode()).hexdigest()[:16]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    """Every state-changing form carries the session's CSRF token (double submit would
    not do: the cookie is HttpOnly and SameSite, and the token is per session)."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, _("The form has expired. Reload the page and try again."))


def start_session(request: Request, account: Account) -> None:
    request.session.clear()
    request.session.update(
        uid=account.id, pw=password_fingerprint(account), csrf=secrets.token_urlsafe(24),
        scope=account.id,
    )


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session.setdefault("flash", [])
    request.session["flash"] = [*request.session["flash"], [kind, message]][-5:]


class LoginRequired(HTTPException):
    def __init__(self, request: Request) -> None:
        target = request.url.path
        super().__init__(
            HTTP_303_SEE_OTHER, headers={"Location": f"/login?next={target}"}
        )


async def current_account(
    request: Request, session: SessionDep
) -> Account:
    """The logged-in account, or a redirect to the log-in page. A disabled account or a
    changed password ends the session here, on its next request."""
    uid = request.session.get("uid")
    account = await session.get(Account, uid) if isinstance(uid, int) else None
    if (
        account is None
        or account.disabled
        or request.session.get("pw") != password_fingerprint(account)
    ):
        request.session.clear()
        raise LoginRequired(request)
    i18n.current_locale.set(account.locale if account.locale in i18n.LOCALES else "en")
    return account


@dataclass
class Page:
    """The logged-in account and the node of the tree that scopes what it looks at."""

    request: Request
    session: AsyncSession
    account: Account
    scope: Account
    #: The caller's subtree in tree order, for the navigation on the left.
    tree: list[Account] = field(default_factory=list)

    def depth(self, node: Account) -> int:
        return node.path.count("/") - self.account.path.count("/")

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, template, status_code, page=self, **context)

    def back(self, default: str = "/") -> RedirectResponse:
        target = self.request.headers.get("referer") or default
        return RedirectResponse(target, status_code=HTTP_303_SEE_OTHER)


async def page(
    request: Request,
    session: SessionDep,
    account: Annotated[Account, Depends(current_account)],
) -> Page:
    scope_id = request.session.get("scope", account.id)
    scope = account
    if isinstance(scope_id, int) and scope_id != account.id:
        try:
            scope = await accounts.get_account(session, account, scope_id)
        except NotFound:
            request.session["scope"] = account.id
    tree = list(await accounts.list_accounts(session, account))
    return Page(request, session, account, scope, tree)


PageDep = Annotated[Page, Depends(page)]


def require_admin(p: Page) -> None:
    if p.account.role is not Role.ADMIN:
        raise HTTPException(403, _("Only the manufacturer's administrator may open this page."))


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    flashes = request.session.pop("flash", []) if "session" in request.scope else []
    return templates.TemplateResponse(
        request,
        template,
        {
            "csrf_token": csrf_token(request) if "session" in request.scope else "",
            "csrf_field": CSRF_FIELD,
            "flashes": flashes,
            "locale": i18n.current_locale.get(),
            "Role": Role,
            **context,
        },
        status_code=status_code,
    )


def error_page(request: Request, exc: ServiceError | HTTPException) -> HTMLResponse:
    if isinstance(exc, ServiceError):
        status, message = exc.http_status, i18n.error_text(exc)
    else:
        status, message = exc.status_code, str(exc.detail)
    return render(request, "error.html", status, status=status, message=message)
