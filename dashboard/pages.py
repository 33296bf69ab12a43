"""The dashboard's pages: overview, terminals, organisation, licences, reports, audit,
profile and server administration. Every read goes through a service with the chosen tree
node as the caller (so the subtree filter narrows it); every change goes through a service
with the logged-in account as the caller (so its rights decide)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.routing import APIRoute
from starlette.status import HTTP_303_SEE_OTHER

from dashboard import charts, i18n, server_admin
from dashboard.i18n import _
from dashboard.web import (
    LoginRequired,
    Page,
    PageDep,
    SessionDep,
    check_csrf,
    core,
    error_page,
    flash,
    login_policy,
    render,
    require_admin,
    start_session,
)
from dm_server.api.routes.licences import get_authority, get_token_writer
from dm_server.db.base import utcnow
from dm_server.db.models.account import Account, Role
from dm_server.db.models.terminal import TradingState
from dm_server.errors import N_, Forbidden, InvalidInput, NotFound, ServiceError, Unauthorized
from dm_server.lwm2m.operations import OperationRequest
from dm_server.services import accounts, audit, events, licensing, terminals
from dm_server.services import state as fleet_state
from posfleet.licence_token import Edition

log = logging.getLogger(__name__)

PAGE_SIZE = 25
#: A CSV report holds at most this many rows (newest events first).
MAX_CSV_ROWS = 100_000
STATE_CHART_HOURS = 24
#: Features a licence may enable (object 26242 Features); the form offers these.
LICENCE_FEATURES = ("face-recognition", "loyalty", "emotion", "reports")
#: Paths the terminal page offers as one-click reads.
LOG_PATH = "/10259"
#: What the flash message after an operation calls it (translated where shown).
ACTION_LABELS = {
    "reboot": "Reboot", "logs": "Fetch logs", "read": "Read", "write": "Write",
    "observe": "Observe", "cancel-observe": "Stop observing",
}


class DashboardRoute(APIRoute):
    """Turns service errors into pages: a refused or unknown id is a 403/404 page; a bad
    form is a message on the page it came from (nothing is lost: the form is re-shown)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                if request.method == "POST" and not isinstance(exc, NotFound | Forbidden):
                    flash(request, i18n.error_text(exc), "error")
                    target = request.headers.get("referer") or "/"
                    return RedirectResponse(target, status_code=HTTP_303_SEE_OTHER)
                return error_page(request, exc)
            except LoginRequired as exc:
                return RedirectResponse(exc.headers["Location"], status_code=HTTP_303_SEE_OTHER)
            except HTTPException as exc:
                return error_page(request, exc)

        return guarded


router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
Csrf = Depends(check_csrf)


# --- log-in -----------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_form(*, request: Request, next: str = "/") -> HTMLResponse:
    i18n.current_locale.set(_login_locale(request))
    return render(request, "login.html", next=_safe_next(next))


@router.post("/login", dependencies=[Csrf])
async def login(
    *,
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    session: SessionDep,
) -> Response:
    i18n.current_locale.set(_login_locale(request))
    try:
        account = await accounts.authenticate(
            session, username.strip(), password, login_policy(request)
        )
    except Unauthorized as exc:
        message = (
            _("Too many failed log-ins. Try again later.")
            if exc.template.startswith("too many")
            else _("Wrong user name or password.")
        )
        return render(request, "login.html", 401, next=_safe_next(next), error=message,
                      username=username)
    audit.record(session, account, "account.login", "account", account.id)
    start_session(request, account)
    return RedirectResponse(_safe_next(next), status_code=HTTP_303_SEE_OTHER)


@router.post("/logout", dependencies=[Csrf])
async def logout(*, request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=HTTP_303_SEE_OTHER)


@router.get("/scope/{account_id}")
async def choose_scope(*, account_id: int, p: PageDep) -> Response:
    """Choose a node of the tree: every page then shows that subtree only."""
    node = await accounts.get_account(p.session, p.account, account_id)
    p.request.session["scope"] = node.id
    return p.back()


# --- overview ---------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def overview(*, p: PageDep) -> HTMLResponse:
    now = utcnow()
    counts = await fleet_state.fleet_counts(p.session, p.scope)
    since = now - timedelta(hours=STATE_CHART_HOURS)
    history = await fleet_state.state_history(p.session, p.scope, since)
    _total, recent_events = await events.list_events(p.session, p.scope, limit=10)
    recent_licences = await licensing.list_licences(p.session, p.scope, limit=8)
    ranking = (
        await licensing.dealer_ranking(p.session, p.scope, now)
        if p.account.role is not Role.OWNER
        else []
    )
    chart = charts.fleet_state_chart(counts, history, since, now, STATE_CHART_HOURS)
    endpoints = await _endpoints(p, [e.terminal_id for e in recent_events])
    return p.render(
        "overview.html", counts=counts, chart=chart, events=recent_events,
        endpoints=endpoints, licences=recent_licences, ranking=ranking[:10],
    )


# --- terminals --------------------------------------------------------------------------


@router.get("/terminals", response_class=HTMLResponse)
async def terminal_list(
    *,
    p: PageDep, state_filter: str = "", q: str = "", firmware: str = "",
    page_no: int = 1,
) -> HTMLResponse:
    trading = TradingState(state_filter) if state_filter in set(TradingState) else None
    page_no = max(1, page_no)
    total, rows = await terminals.list_terminals(
        p.session, p.scope,
        terminals.TerminalFilter(
            state=trading, text=q.strip() or None, firmware_version=firmware.strip() or None,
            offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        ),
    )
    owners = await _owner_names(p, [t.owner_id for t in rows])
    return p.render(
        "terminals.html", terminals=rows, total=total, page_no=page_no,
        pages=max(1, -(-total // PAGE_SIZE)), state_filter=state_filter, q=q,
        firmware=firmware, owners=owners, states=list(TradingState),
    )


@router.get("/terminals/{endpoint}", response_class=HTMLResponse)
async def terminal_page(*, endpoint: str, p: PageDep) -> HTMLResponse:
    terminal = await terminals.get_terminal(p.session, p.account, endpoint)
    await licensing.sync_report_from_values(p.session, terminal)
    detail = await terminals.terminal_detail(p.session, terminal)
    _total, terminal_events = await events.list_events(p.session, p.account, terminal, limit=20)
    licence_rows = await licensing.list_licences(p.session, p.account, endpoint=endpoint)
    owner = await p.session.get(Account, terminal.owner_id) if terminal.owner_id else None
    owners = (
        await accounts.list_accounts(p.session, p.account, role=Role.OWNER)
        if p.account.role is not Role.OWNER
        else []
    )
    browser = server_admin.resource_browser(detail["registration"], detail["values"])
    return p.render(
        "terminal.html", terminal=terminal, registration=detail["registration"],
        browser=browser, events=terminal_events, licences=[lic for lic, _ in licence_rows],
        owner=owner, owners=owners, editions=list(Edition), features=LICENCE_FEATURES,
    )


@router.post("/terminals/{endpoint}/operation", dependencies=[Csrf])
async def terminal_operation(
    *,
    endpoint: str,
    p: PageDep,
    kind: Annotated[str, Form()],
    path: Annotated[str, Form()] = "",
    value: Annotated[str, Form()] = "",
) -> Response:
    """Reboot, read, write, observe or fetch logs: one DM operation, its outcome flashed."""
    terminal = await terminals.get_terminal(p.session, p.account, endpoint)
    if p.account.role is Role.OWNER and kind != "read":
        raise Forbidden(N_("Store owners can look, not change: ask your dealer."))
    lwm2m = getattr(p.request.app.state.core, "lwm2m", None)
    if lwm2m is None:
        raise InvalidInput(N_("The LwM2M side of the server is not running."))
    request_body: dict[str, Any]
    label = _(ACTION_LABELS.get(kind, "Operation"))
    if kind == "reboot":
        kind, request_body = "execute", {"path": "/3/0/4"}
    elif kind == "logs":
        kind, request_body = "read", {"path": LOG_PATH}
    elif kind in ("read", "observe", "cancel-observe"):
        request_body = {"path": path}
    elif kind == "write":
        request_body = {"path": path, "value": _typed(value)}
    else:
        raise InvalidInput(N_("Unknown operation."))
    audit.record(p.session, p.account, f"operation.{kind}", "terminal", endpoint,
                 path=request_body["path"])
    await p.session.commit()
    operation = OperationRequest.from_json(kind, request_body)
    outcome = await lwm2m.operations.perform(p.account, terminal.endpoint, operation)
    flash(p.request, _summarise(label, request_body["path"], outcome),
          "ok" if outcome.get("status") in ("done", "queued") else "error")
    return RedirectResponse(f"/terminals/{endpoint}", status_code=HTTP_303_SEE_OTHER)


@router.post("/terminals/{endpoint}/assign", dependencies=[Csrf])
async def terminal_assign(*, endpoint: str, p: PageDep,
                          owner_id: Annotated[int, Form()]) -> Response:
    await accounts.assign_terminal(p.session, p.account, endpoint, owner_id)
    flash(p.request, _("Terminal assigned."))
    return p.back(f"/terminals/{endpoint}")


# --- organisation -----------------------------------------------------------------------


@router.get("/organization", response_class=HTMLResponse)
async def organization(*, p: PageDep) -> HTMLResponse:
    if p.account.role is Role.OWNER:
        raise Forbidden(N_("Store owners do not manage accounts."))
    tree = await accounts.list_accounts(p.session, p.account, under=p.scope.id)
    parents = [a for a in tree if accounts.CHILD_ROLES[a.role]]
    owners = [a for a in tree if a.role is Role.OWNER]
    return p.render("organization.html", tree=tree, parents=parents, owners=owners,
                    roles=[Role.DEALER, Role.OWNER], locales=i18n.LOCALES,
                    language_names=i18n.LANGUAGE_NAMES)


@router.post("/organization/accounts", dependencies=[Csrf])
async def organization_create(
    *,
    p: PageDep,
    parent_id: Annotated[int, Form()],
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()],
    display_name: Annotated[str, Form()] = "",
    locale: Annotated[str, Form()] = "ko",
) -> Response:
    if role not in (Role.DEALER, Role.OWNER):
        raise InvalidInput(N_("Choose dealer or store owner."))
    account = await accounts.create_account(
        p.session, p.account, parent_id=parent_id, username=username.strip(),
        password=password, role=Role(role), display_name=display_name.strip(), locale=locale,
    )
    flash(p.request, _("Account %(name)s created.", name=account.username))
    return p.back("/organization")


@router.post("/organization/assign", dependencies=[Csrf])
async def organization_assign(
    *, p: PageDep, endpoint: Annotated[str, Form()], owner_id: Annotated[int, Form()]
) -> Response:
    await accounts.assign_terminal(p.session, p.account, endpoint.strip(), owner_id)
    flash(p.request, _("Terminal assigned."))
    return p.back("/organization")


@router.post("/organization/accounts/{account_id}", dependencies=[Csrf])
async def organization_update(
    *,
    account_id: int,
    p: PageDep,
    display_name: Annotated[str | None, Form()] = None,
    locale: Annotated[str | None, Form()] = None,
    disabled: Annotated[str | None, Form()] = None,
    new_password: Annotated[str, Form()] = "",
) -> Response:
    await accounts.update_account(
        p.session, p.account, account_id, display_name=display_name, locale=locale,
        disabled=None if disabled is None else disabled == "1",
    )
    if new_password:
        await accounts.set_password(p.session, p.account, account_id, new_password)
    flash(p.request, _("Account saved."))
    return p.back("/organization")


# --- licences ---------------------------------------------------------------------------


@router.get("/licences", response_class=HTMLResponse)
async def licence_page(*, p: PageDep, window: int = 30,
                       page_no: int = 1) -> HTMLResponse:
    window = window if window in licensing.EXPIRY_WINDOWS else licensing.EXPIRY_WINDOWS[0]
    now = utcnow()
    expiring = await licensing.list_licences(p.session, p.scope, expiring_within_days=window)
    page_no = max(1, page_no)
    history = await licensing.list_licences(
        p.session, p.scope, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE
    )
    authority = get_authority(p.request)
    forecast = await licensing.revenue_forecast(p.session, p.scope, authority, now=now)
    ranking = await licensing.dealer_ranking(p.session, p.scope, now)
    dealers = await _owner_names(p, [lic.dealer_id for lic, _ in [*expiring, *history]])
    return p.render(
        "licences.html", window=window, windows=licensing.EXPIRY_WINDOWS, expiring=expiring,
        history=history, page_no=page_no, forecast=forecast, ranking=ranking,
        dealers=dealers, editions=list(Edition), features=LICENCE_FEATURES, now=now,
        can_manage=p.account.role is not Role.OWNER,
    )


@router.post("/licences/issue", dependencies=[Csrf])
async def licence_issue(
    *,
    p: PageDep,
    endpoint: Annotated[str, Form()],
    edition: Annotated[str, Form()],
    days: Annotated[int, Form()] = 365,
    grace_days: Annotated[int | None, Form()] = None,
    features: Annotated[tuple[str, ...], Form()] = (),
) -> Response:
    licence = await licensing.issue(
        p.session, p.account, get_authority(p.request), endpoint=endpoint.strip(), edition=edition,
        features=features, days=days, grace_days=grace_days,
    )
    await _deliver(p, licence)
    return p.back("/licences")


@router.post("/licences/{licence_id}/renew", dependencies=[Csrf])
async def licence_renew(*, licence_id: int, p: PageDep,
                        days: Annotated[int, Form()] = 365) -> Response:
    licence = await licensing.renew(
        p.session, p.account, get_authority(p.request), licence_id, days=days
    )
    await _deliver(p, licence)
    return p.back("/licences")


@router.post("/licences/{licence_id}/revoke", dependencies=[Csrf])
async def licence_revoke(*, licence_id: int, p: PageDep,
                         reason: Annotated[str, Form()] = "") -> Response:
    licence = await licensing.revoke(p.session, p.account, licence_id, reason=reason)
    await _deliver(p, licence)
    return p.back("/licences")


@router.post("/licences/{licence_id}/transfer", dependencies=[Csrf])
async def licence_transfer(*, licence_id: int, p: PageDep,
                           to_endpoint: Annotated[str, Form()]) -> Response:
    old, new = await licensing.transfer(
        p.session, p.account, get_authority(p.request), licence_id, to_endpoint=to_endpoint.strip()
    )
    await _deliver(p, old)
    await _deliver(p, new)
    return p.back("/licences")


async def _deliver(p: Page, licence: Any) -> None:
    """Commit the change first (it must not wait on a terminal), then write the token."""
    await p.session.commit()
    writer = get_token_writer(p.request)
    if writer is None:
        flash(p.request, _("Saved. The token will be written when the terminal connects."))
        return
    await licensing.deliver(p.session, p.account, licence, writer)
    await p.session.commit()
    flash(p.request, _("Saved. Delivery to the terminal: %(status)s.",
                       status=_(licence.delivery.value)))


# --- reports ----------------------------------------------------------------------------


@router.get("/reports", response_class=HTMLResponse)
async def reports(*, p: PageDep) -> HTMLResponse:
    return p.render("reports.html")


@router.get("/reports/{name}.csv")
async def report_csv(*, name: str, p: PageDep) -> Response:
    rows: Iterable[list[object]]
    if name == "terminals":
        found = []
        while len(found) < MAX_CSV_ROWS:
            _total, batch = await terminals.list_terminals(
                p.session, p.scope,
                terminals.TerminalFilter(offset=len(found), limit=terminals.MAX_PAGE_SIZE),
            )
            found += batch
            if len(batch) < terminals.MAX_PAGE_SIZE:
                break
        owners = await _owner_names(p, [t.owner_id for t in found])
        header = ["endpoint", "owner", "state", "firmware", "last_seen"]
        rows = [[t.endpoint, owners.get(t.owner_id, ""), t.trading_state.value,
                 getattr(t, "firmware_version", "") or "", _iso(t.last_seen_at)] for t in found]
    elif name == "licences":
        found_l = await licensing.list_licences(p.session, p.scope, limit=MAX_CSV_ROWS)
        header = ["licence", "endpoint", "edition", "features", "starts", "expires",
                  "grace_days", "lifecycle", "delivery", "reported", "price", "currency"]
        rows = [[lic.licence_uid, term.endpoint, lic.edition, " ".join(lic.features),
                 _iso(lic.starts), _iso(lic.expires), lic.grace_days, lic.lifecycle.value,
                 lic.delivery.value, lic.reported_state or "", lic.price, lic.currency]
                for lic, term in found_l]
    elif name == "events":
        found_e = []
        while len(found_e) < MAX_CSV_ROWS:
            _total, batch_e = await events.list_events(
                p.session, p.scope, offset=len(found_e), limit=events.MAX_PAGE_SIZE
            )
            found_e += batch_e
            if len(batch_e) < events.MAX_PAGE_SIZE:
                break
        endpoints = await _endpoints(p, [e.terminal_id for e in found_e])
        header = ["received", "endpoint", "kind", "amount", "currency", "occurred", "uid"]
        rows = [[_iso(e.received_at), endpoints.get(e.terminal_id, ""), e.kind, e.amount,
                 e.currency, _iso(e.occurred_at), e.event_uid] for e in found_e]
    else:
        raise NotFound(N_("No such report."))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_safe(cell) for cell in row])
    return Response(
        buffer.getvalue(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="posfleet-{name}.csv"'},
    )


# --- audit, profile ---------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(*, p: PageDep, action: str = "", page_no: int = 1) -> HTMLResponse:
    if p.account.role is Role.OWNER:
        raise Forbidden(N_("The audit log is for dealers and the administrator."))
    page_no = max(1, page_no)
    entries = await audit.list_entries(
        p.session, p.scope, action_prefix=action, limit=PAGE_SIZE,
        offset=(page_no - 1) * PAGE_SIZE,
    )
    return p.render("audit.html", entries=entries, action=action, page_no=page_no)


@router.get("/profile", response_class=HTMLResponse)
async def profile(*, p: PageDep) -> HTMLResponse:
    return p.render("profile.html", locales=i18n.LOCALES, language_names=i18n.LANGUAGE_NAMES,
                    api_token=p.request.session.pop("api_token", None))


@router.post("/profile", dependencies=[Csrf])
async def profile_save(*, p: PageDep, display_name: Annotated[str, Form()] = "",
                       locale: Annotated[str, Form()] = "en") -> Response:
    await accounts.update_account(p.session, p.account, p.account.id,
                                  display_name=display_name, locale=locale)
    i18n.current_locale.set(locale)
    flash(p.request, _("Profile saved."))
    return p.back("/profile")


@router.post("/profile/password", dependencies=[Csrf])
async def password_change(
    *,
    p: PageDep, current_password: Annotated[str, Form()],
    new_password: Annotated[str, Form()], repeat_password: Annotated[str, Form()],
) -> Response:
    if new_password != repeat_password:
        raise InvalidInput(N_("The two new passwords differ."))
    await accounts.change_own_password(p.session, p.account, current_password, new_password)
    start_session(p.request, p.account)  # this session lives on; every other one ends
    flash(p.request, _("Password changed. Other sessions have been logged out."))
    return p.back("/profile")


@router.post("/profile/api-token", dependencies=[Csrf])
async def api_token(*, p: PageDep) -> Response:
    """A bearer token for the REST API with exactly this account's rights."""
    signer = core(p.request).tokens
    audit.record(p.session, p.account, "account.api-token", "account", p.account.id)
    p.request.session["api_token"] = signer.issue(p.account.id)
    return RedirectResponse("/profile", status_code=HTTP_303_SEE_OTHER)


# --- server (admin only) ----------------------------------------------------------------


@router.get("/server", response_class=HTMLResponse)
async def server_page(*, p: PageDep) -> HTMLResponse:
    require_admin(p)
    settings = core(p.request).settings
    return p.render(
        "server.html", objects=server_admin.object_summaries(settings),
        settings_rows=server_admin.settings_rows(settings),
        public_key=get_authority(p.request).public_key_text,
        backup_supported=server_admin.backup_supported(settings),
    )


@router.post("/server/objects", dependencies=[Csrf])
async def server_object_upload(*, request: Request, p: PageDep) -> Response:
    require_admin(p)
    form = await request.form()
    upload = form.get("definition")
    if upload is None or isinstance(upload, str):
        raise InvalidInput(N_("Choose an object definition file (XML)."))
    data = await upload.read(server_admin.MAX_UPLOAD_BYTES + 1)
    save = form.get("action") == "save"
    summary = server_admin.check_definition(data, core(request).settings, save=save)
    if save:
        audit.record(p.session, p.account, "server.object-upload", "object", summary)
        flash(request, _("Definition saved: %(summary)s. It is used from the next start.",
                         summary=summary))
    else:
        flash(request, _("Definition is valid: %(summary)s", summary=summary))
    return p.back("/server")


@router.get("/server/backup")
async def server_backup(*, p: PageDep) -> Response:
    require_admin(p)
    audit.record(p.session, p.account, "server.backup", "database", "")
    await p.session.commit()
    path = await server_admin.backup(core(p.request).settings)
    return StreamingResponse(
        server_admin.stream_and_remove(path), media_type="application/vnd.sqlite3",
        headers={"Content-Disposition": f'attachment; filename="{path.name}"'},
    )


@router.post("/server/restore", dependencies=[Csrf])
async def server_restore(*, request: Request, p: PageDep) -> Response:
    require_admin(p)
    form = await request.form()
    upload = form.get("backup")
    if upload is None or isinstance(upload, str):
        raise InvalidInput(N_("Choose a backup file."))
    await p.session.close()
    await server_admin.restore(upload.file, core(request).settings)
    request.session.clear()
    return RedirectResponse("/login", status_code=HTTP_303_SEE_OTHER)


# --- helpers ----------------------------------------------------------------------------


async def _owner_names(p: Page, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    visible = await accounts.list_accounts(p.session, p.account)
    return {a.id: a.display_name or a.username for a in visible if a.id in wanted}


async def _endpoints(p: Page, terminal_ids: Iterable[int]) -> dict[int, str]:
    wanted = set(terminal_ids)
    if not wanted:
        return {}
    return await terminals.endpoints_by_id(p.session, p.account, wanted)


def _login_locale(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.session.get("lang")
    if chosen in i18n.LOCALES:
        request.session["lang"] = chosen
        return str(chosen)
    return i18n.negotiate(request.headers.get("accept-language"))


def _safe_next(target: str) -> str:
    """Only same-site paths: an open redirect after log-in would help phishing."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _typed(value: str) -> object:
    """Form values arrive as text; integers, floats and booleans are sent as such."""
    text = value.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return value


def _summarise(kind: str, path: str, outcome: dict[str, Any]) -> str:
    code = outcome.get("code", "")
    if outcome.get("status") == "queued":
        return _("%(kind)s %(path)s queued until the terminal wakes up.", kind=kind, path=path)
    if outcome.get("status") == "timeout":
        return _("%(kind)s %(path)s: the terminal did not answer in time; it may or may not "
                 "have done it.", kind=kind, path=path)
    if "value" in outcome and kind == "read":
        text = str(outcome["value"])
        return _("%(kind)s %(path)s: %(code)s %(value)s", kind=kind, path=path, code=code,
                 value=text[:300])
    message = outcome.get("message", "") or outcome.get("code_name", "")
    return _("%(kind)s %(path)s: %(code)s %(message)s", kind=kind, path=path, code=code,
             message=message)


def _iso(moment: Any) -> str:
    return moment.isoformat() if moment is not None else ""


def _csv_safe(cell: object) -> object:
    """Terminal strings could start a spreadsheet formula; quote them so they stay text."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell

