"""The FastAPI app behind "Parent provisioning" in Airflow's navigation.

Pages for people (server-rendered, keyboard-usable, forms protected against cross-site
request forgery) and a JSON API for scripts under /api, both on the same rules
(`management.py`) and the same permission check: any logged-in Airflow user reads;
only users with op or admin rights act.
"""

from __future__ import annotations

import html
import json
import math
from contextlib import closing
from pathlib import Path
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from include.parent_provisioning import management as m
from include.parent_provisioning import own_tables, wordpress
from include.parent_provisioning.names import DAG_ID, MOODLE_CONN_ID, WORDPRESS_CONN_ID
from include.parent_provisioning.reasons import Reason
from include.parent_provisioning.requests import DEPROVISIONED, REQUEST_TYPES, STATUSES
from include.parent_provisioning.settings import SettingsError
from include.parent_provisioning.ui.security import (
    UiUser,
    check_csrf,
    check_csrf_value,
    csrf_token,
    current_user,
    require_actor,
    require_personal_data,
)

URL_PREFIX = "/parent-provisioning"

# The status buttons of the request page, in their order: what each does in words.
STATUS_ACTIONS = {
    "rejected": "Reject",
    "duplicate": "Mark duplicate",
    "bogus": "Mark bogus",
    "unknown": "Mark unknown",
    "pending": "Back to pending",
}

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# No API docs page or schema: they would answer without login, and the docs page loads scripts from a
# public CDN into Airflow's origin. The API is described in the README.
app = FastAPI(title="Parent provisioning", docs_url=None, redoc_url=None, openapi_url=None)


@app.exception_handler(SettingsError)
def settings_missing(request: Request, exc: SettingsError):
    return (
        JSONResponse({"error": str(exc)}, status_code=503)
        if "/api/" in request.url.path
        else HTMLResponse(f"<h1>Parent provisioning is not set up</h1><p>{html.escape(str(exc))}</p>", status_code=503)
    )


@app.exception_handler(HTTPException)
def refused(request: Request, exc: HTTPException):
    """A refusal in the API's JSON; on a page, in words with the way back to the Overview."""
    if "/api/" in request.url.path:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    body = (
        f"<!doctype html><title>Parent provisioning</title><h1>Not shown</h1><p>{html.escape(str(exc.detail))}</p>"
        f'<p><a href="{URL_PREFIX}/">Back to the Overview</a></p>'
    )
    return HTMLResponse(body, status_code=exc.status_code, headers=exc.headers)


def load_settings():
    from include.parent_provisioning import airflow_adapter

    return airflow_adapter.load_settings()


def _database(conn_id: str) -> closing:
    from include.parent_provisioning import airflow_adapter

    return closing(airflow_adapter.connect(conn_id))


def wordpress_db():
    return _database(WORDPRESS_CONN_ID)


def moodle():
    """Moodle's database, read only here: the ledger of links a request's screen shows."""
    return _database(MOODLE_CONN_ID)


def _on_wordpress(work):
    """work(connection, settings) on the WordPress database, the connection closed afterwards."""
    s = load_settings()
    with wordpress_db() as conn:
        return work(conn, s)


def _ledger(request_id: int) -> tuple[list[dict], str]:
    """(the request's links as the ledger has them, why they could not be read)."""
    from include.parent_provisioning import moodle_db
    from include.parent_provisioning.unlink import REASONS

    try:
        with moodle() as conn:
            links = moodle_db.request_links(conn, load_settings(), request_id)
    except Exception as exc:  # the page still shows the request; the ledger says why it is missing
        return [], f"the ledger of links could not be read from Moodle's database ({type(exc).__name__})"
    for link in links:
        link["url"] = run_url(link["run_id"])
        link["removed_url"] = run_url(link["removed_by_run"]) if link["removed_by_run"] else None
        link["why"] = REASONS.get(link["removed_reason"] or "", link["removed_reason"])
    return links, ""


PREVIEWED = ("pending", "approved")  # the statuses a match preview is shown for


def previews(rows: list[dict]) -> tuple[dict[int, dict], str]:
    """The match preview (cycle.preview) of the pending and approved ones among `rows`, and why it could
    not be made (Moodle's database unreachable, the site not set up): the page still shows the requests."""
    from dataclasses import asdict

    from include.parent_provisioning import cycle, moodle_db

    ids = [int(r["id"]) for r in rows if r["status"] in PREVIEWED]
    if not ids:
        return {}, ""
    try:
        s = load_settings()
        with wordpress_db() as wp, moodle() as mdl:
            return cycle.preview(wp, mdl, s, asdict(moodle_db.check_site(mdl, s)), ids), ""
    except moodle_db.SiteError as exc:
        return {}, f"the match preview cannot be made: {exc}"
    except Exception as exc:  # the page still shows the requests; the preview says why it is missing
        return {}, f"the match preview could not be made: Moodle's database did not answer ({type(exc).__name__})"


def run_url(run_id: str) -> str:
    from urllib.parse import quote

    return f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"


def _render(request: Request, name: str, user: UiUser, page: str, **context) -> HTMLResponse:
    context.update(
        base=URL_PREFIX,
        user=user,
        page=page,
        csrf=csrf_token(request),
        msg=request.query_params.get("msg"),
        error=request.query_params.get("error") == "1",
        run_link=run_url(request.query_params["run"]) if request.query_params.get("run") else None,
    )
    return templates.TemplateResponse(request, name, context)


def _bulk_form(request: Request) -> dict:
    """A bulk action's form as a refusal sent it back: the ids, the status, and whether to ask to confirm."""
    params = request.query_params
    return {
        "ids": params.get("bulk_ids", ""),
        "status": params.get("bulk_status", ""),
        "confirm": params.get("confirm") == "1",
    }


def _back(
    path: str, message: str, error: bool = False, run: str | None = None, extra: dict | None = None
) -> RedirectResponse:
    query = urlencode(
        {"msg": message, **({"error": "1"} if error else {}), **({"run": run} if run else {}), **(extra or {})}
    )
    return RedirectResponse(f"{URL_PREFIX}{path}?{query}", status_code=303)


def _query_requests(status, request_type, q, sort, direction, page, per_page) -> tuple[list[dict], int]:
    try:
        return _on_wordpress(
            lambda conn, s: m.list_requests(
                conn, s, status or None, request_type or None, q, sort, direction != "asc", page, per_page
            )
        )
    except m.ActionRefused as exc:
        raise HTTPException(400, str(exc)) from exc


def _request_with_cycles(request_id: int) -> tuple[dict, list[dict]]:
    s = load_settings()
    with wordpress_db() as conn:
        r = m.get_request(conn, s, request_id)
        outcomes = own_tables.request_outcomes(conn, s, request_id) if r else []
    if not r:
        raise HTTPException(404, f"request {request_id} does not exist")
    return r, outcomes


# Pages -------------------------------------------------------------------------------


@app.get("/", response_class=HTMLResponse)
def overview(request: Request, user: UiUser = Depends(current_user)):
    s = load_settings()
    with wordpress_db() as conn:
        counts = m.status_counts(conn, s)
        waiting = wordpress.pending_waiting(conn, s)
        cycles = own_tables.recent_cycles(conn, s)
        attention = own_tables.needing_attention(conn, s)
    for c in cycles:
        c["summary"] = json.loads(c["summary"] or "{}")
        c["url"] = run_url(c["run_id"])
    # The leavers as the latest finished cycle found them (ids only: names are on each request's screen).
    latest = next((c for c in cycles if c["state"] == "finished" and "unlinks" in c["summary"]), None)
    unlinks = latest["summary"]["unlinks"] if latest else {}
    without_child = sorted({i for ids in (unlinks.get("parents_without_child") or {}).values() for i in ids})
    return _render(
        request,
        "overview.html",
        user,
        "overview",
        counts=counts,
        waiting=waiting,
        warn_days=s.pending_warn_days,
        cycles=cycles,
        attention=attention,
        leavers_cycle=latest,
        unlinks=unlinks,
        without_child=without_child,
    )


SEARCH_IN_URL = (
    "search with the page's search form (or POST /api/requests/search): a search term in a URL would be "
    "written to Airflow's access log, and search terms are parents' and children's names and emails"
)


@app.get("/requests", response_class=HTMLResponse)
def requests_page(
    request: Request,
    status: str = "",
    type: str = "",
    sort: str = "date_created",
    dir: str = "desc",
    page: int = 1,
    user: UiUser = Depends(require_personal_data),
):
    if "q" in request.query_params:
        raise HTTPException(400, SEARCH_IN_URL)
    return _requests_view(request, user, status, type, "", sort, dir, page)


@app.post("/requests/search", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
def requests_search(
    request: Request,
    status: str = Form(""),
    type: str = Form(""),
    q: str = Form(""),
    sort: str = Form("date_created"),
    dir: str = Form("desc"),
    page: int = Form(1),
    user: UiUser = Depends(require_personal_data),
):
    """The queue searched: the term travels in the form's body, never in a URL."""
    return _requests_view(request, user, status, type, q, sort, dir, page)


def _requests_view(request: Request, user: UiUser, status, type, q, sort, dir, page) -> HTMLResponse:
    rows, total = _query_requests(status, type, q, sort, dir, page, 50)
    f = {"status": status, "type": type, "q": q, "sort": sort, "dir": dir, "page": page}
    matches, match_error = previews(rows)

    def page_url(n: int) -> str:  # without a search term only: with one, the pager posts the form again
        return f"{URL_PREFIX}/requests?{urlencode({**{k: v for k, v in f.items() if k != 'q'}, 'page': n})}"

    return _render(
        request,
        "requests.html",
        user,
        "requests",
        rows=rows,
        total=total,
        f=f,
        pages=max(1, math.ceil(total / 50)),
        page_url=page_url,
        statuses=STATUSES,
        types=REQUEST_TYPES,
        bulk=_bulk_form(request),
        bulk_statuses=[st for st in DEPROVISIONED if st != "deleting"],
        matches=matches,
        match_error=match_error,
    )


@app.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, request_id: int, user: UiUser = Depends(require_personal_data)):
    r, outcomes = _request_with_cycles(request_id)
    for o in outcomes:
        o["url"] = run_url(o["run_id"])
        o["linked"] = json.loads(o["linked_children"] or "[]")
        o["reasons"] = [Reason.from_json(x).text for x in json.loads(o["reasons"] or "[]")]
    # After a status change that needs confirming: the same change again, confirmed, one click away.
    asked = request.query_params.get("confirm_status", "")
    confirming = asked if asked in STATUS_ACTIONS and r["status"] == "provisioned" else None
    links, ledger_error = _ledger(request_id)
    preview, preview_error = previews([r])
    email = _email_preview(request_id, request.query_params.get("email", "")) if user.can_act else None
    return _render(
        request,
        "request.html",
        user,
        "requests",
        r=r,
        fields=m.DETAIL_FIELDS,
        labels=m.LABELS,
        outcomes=outcomes,
        status_actions=STATUS_ACTIONS,
        confirming=confirming,
        links=links,
        ledger_error=ledger_error,
        preview=preview.get(request_id),
        preview_error=preview_error,
        email=email,
    )


def _templates():
    from include.parent_provisioning import airflow_adapter, parent_emails

    try:
        return airflow_adapter.email_templates(), ""
    except parent_emails.TemplateError as exc:
        return {}, str(exc)


def _email_preview(request_id: int, key: str) -> dict:
    """The email section of a request's screen: the templates, and the one asked for filled in."""
    templates, error = _templates()
    shown = {"templates": {k: t.name for k, t in templates.items()}, "key": key, "error": error}
    if key and not error:
        try:
            shown["to"], shown["subject"], shown["body"] = _on_wordpress(
                lambda conn, s: m.email_preview(conn, s, request_id, key, templates)
            )
        except m.ActionRefused as exc:
            shown["error"] = str(exc)
    return shown


def _send_email(request_id: int, key: str, actor: str) -> m.ActionResult:
    from include.parent_provisioning import airflow_adapter

    templates, error = _templates()
    if error:
        raise m.ActionRefused(error)
    return _on_wordpress(
        lambda conn, s: m.email_parent(conn, s, request_id, key, templates, actor, airflow_adapter.send_parent_email)
    )


@app.get("/auth-users", response_class=HTMLResponse)
def auth_rows_page(request: Request, page: int = 1, orphaned: int = 0, user: UiUser = Depends(require_personal_data)):
    s = load_settings()
    with wordpress_db() as conn:
        rows, total = m.list_auth_rows(conn, s, page, 100, orphaned_only=bool(orphaned))
    moodle_error = _with_moodle_accounts(s, rows)
    return _render(
        request,
        "auth_rows.html",
        user,
        "auth-users",
        rows=rows,
        total=total,
        page_no=page,
        pages=max(1, math.ceil(total / 100)),
        orphaned=bool(orphaned),
        moodle_error=moodle_error,
        moodle_url=s.moodle_url,
        bulk=_bulk_form(request),
    )


def _with_moodle_accounts(s, rows: list[dict]) -> str:
    """Each auth row with its Moodle account (id, suspended) and the children the project linked to it;
    why they could not be read, if Moodle's database did not answer (the page still lists the rows)."""
    from include.parent_provisioning import moodle_db

    try:
        with moodle() as mdl:
            site = moodle_db.check_site(mdl, s)
            accounts = moodle_db.find_accounts(mdl, s, site, {r["username"].strip().lower() for r in rows})
            children = moodle_db.linked_children(mdl, s, {a.id for a in accounts.values()})
    except Exception as exc:  # the auth rows are WordPress's: shown whatever Moodle says
        return f"Moodle's accounts could not be read ({type(exc).__name__})"
    for r in rows:
        account = accounts.get(r["username"].strip().lower())
        r["account"] = {"id": account.id, "suspended": account.suspended, "auth": account.auth} if account else None
        r["children"] = children.get(account.id, []) if account else []
    return ""


@app.post("/auth-users/remove", dependencies=[Depends(check_csrf)])
def remove_auth_rows_action(ids: str = Form(""), confirm: str = Form(""), user: UiUser = Depends(require_actor)):
    """Remove orphaned auth rows (no approved or provisioned request has their email), one or many."""
    try:
        result = _on_wordpress(
            lambda conn, s: m.remove_orphaned_auth_rows(conn, s, _ids(ids), user.name, confirmed=confirm == "yes")
        )
    except m.ConfirmationNeeded as exc:
        return _back("/auth-users", str(exc), error=True, extra={"orphaned": "1", "bulk_ids": ids, "confirm": "1"})
    except m.ActionRefused as exc:
        return _back("/auth-users", str(exc), error=True, extra={"orphaned": "1"})
    return _back("/auth-users", result.message, extra={"orphaned": "1"})


@app.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, user: UiUser = Depends(require_personal_data)):
    return _render(request, "upload.html", user, "upload", rows=None, columns=m.CSV_COLUMNS)


# Form actions ------------------------------------------------------------------------


def _act(path: str, work):
    try:
        result = _on_wordpress(work)
    except m.AccessRemovalNeedsConfirmation as exc:
        return _back(path, str(exc), error=True, extra={"confirm_status": exc.status})
    except m.ActionRefused as exc:
        return _back(path, str(exc), error=True)
    return _back(path, f"Request {result.request_id}: {result.message}")


@app.post("/requests/{request_id}/approve", dependencies=[Depends(check_csrf)])
def approve_action(request_id: int, user: UiUser = Depends(require_actor)):
    return _act(f"/requests/{request_id}", lambda conn, s: m.approve(conn, s, request_id, user.name))


@app.post("/requests/{request_id}/status", dependencies=[Depends(check_csrf)])
def status_action(
    request_id: int, status: str = Form(...), confirm: str = Form(""), user: UiUser = Depends(require_actor)
):
    """A provisioned parent losing access is asked first: the page comes back with what happens
    and a button that posts the same change with confirm=yes."""
    return _act(
        f"/requests/{request_id}",
        lambda conn, s: m.set_status(conn, s, request_id, status, user.name, confirmed=confirm == "yes"),
    )


def _ids(text: str) -> list[int]:
    """Request ids typed into a form: whole numbers separated by commas or spaces."""
    try:
        return sorted({int(x) for x in text.replace(",", " ").split()})
    except ValueError as exc:
        raise m.ActionRefused("request ids must be whole numbers separated by commas") from exc


@app.post("/requests/status", dependencies=[Depends(check_csrf)])
def bulk_status_action(
    ids: str = Form(""), status: str = Form(...), confirm: str = Form(""), user: UiUser = Depends(require_actor)
):
    try:
        results = _on_wordpress(
            lambda conn, s: m.set_status_many(conn, s, _ids(ids), status, user.name, confirmed=confirm == "yes")
        )
    except m.ConfirmationNeeded as exc:
        return _back("/requests", str(exc), error=True, extra={"bulk_ids": ids, "bulk_status": status, "confirm": "1"})
    except m.ActionRefused as exc:
        return _back("/requests", str(exc), error=True)
    refused = [r["request_id"] for r in results if "error" in r]
    note = f"; refused (see each request): {', '.join(map(str, refused))}" if refused else ""
    return _back("/requests", f"{len(results) - len(refused)} request(s) set to {status}{note}", error=bool(refused))


@app.post("/requests/{request_id}/child", dependencies=[Depends(check_csrf)])
def child_action(
    request_id: int,
    position: int = Form(...),
    first: str = Form(""),
    surname: str = Form(""),
    group: str = Form(""),
    user: UiUser = Depends(require_actor),
):
    return _act(
        f"/requests/{request_id}",
        lambda conn, s: m.correct_child(conn, s, request_id, position, first, surname, group, user.name),
    )


@app.post("/requests/{request_id}/email", dependencies=[Depends(check_csrf)])
def email_action(request_id: int, template: str = Form(""), user: UiUser = Depends(require_actor)):
    """Send the previewed template to the parent; the request's history records it."""
    try:
        result = _send_email(request_id, template, user.name)
    except m.ActionRefused as exc:
        return _back(f"/requests/{request_id}", str(exc), error=True)
    return _back(f"/requests/{request_id}", f"Request {request_id}: {result.message}")


@app.post("/requests/{request_id}/staff-comment", dependencies=[Depends(check_csrf)])
def comment_action(request_id: int, comment: str = Form(""), user: UiUser = Depends(require_actor)):
    return _act(f"/requests/{request_id}", lambda conn, s: m.set_staff_comment(conn, s, request_id, comment, user.name))


UPLOAD_LIMIT = 5_000_000  # bytes of CSV


async def _form_after_login(request: Request) -> dict:
    """The upload forms, read only once the user is known to manage requests (FastAPI would read a
    route's declared form before checking who is asking), up to the upload limit, CSRF checked."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > UPLOAD_LIMIT + 100_000:
        raise HTTPException(413, "the file is larger than 5 MB: split it")
    try:
        form = await request.form(max_files=1, max_fields=10, max_part_size=UPLOAD_LIMIT + 1)
    except HTTPException:
        raise
    except Exception as exc:  # a malformed or oversized body: Starlette's MultiPartException and kin
        raise HTTPException(400, f"the upload could not be read: {type(exc).__name__}") from exc
    check_csrf_value(request, form.get("csrf"))
    return dict(form)


def _upload_text(raw: bytes) -> str:
    if len(raw) > UPLOAD_LIMIT:
        raise m.ActionRefused("the file is larger than 5 MB: split it")
    return raw.decode("utf-8-sig", errors="replace")


def _validated(text: str) -> list:
    return _on_wordpress(lambda conn, s: m.validate_upload(conn, s, text))


def _validated_and_written(text: str, actor: str, remote_ip: str) -> tuple[list, dict[str, int]]:
    s = load_settings()
    with wordpress_db() as conn:
        rows = m.validate_upload(conn, s, text)  # checked again: the table may have changed
        return rows, m.upload(conn, s, rows, actor, remote_ip)


@app.post("/upload/preview", response_class=HTMLResponse)
async def upload_preview(request: Request, user: UiUser = Depends(require_actor)):
    form = await _form_after_login(request)
    file, pasted = form.get("file"), form.get("pasted")
    try:
        if isinstance(pasted, str) and pasted.strip():  # rows pasted from a spreadsheet: tab-separated
            text = _upload_text(pasted.encode())
        elif file is None or isinstance(file, str) or not file.filename:
            raise m.ActionRefused("choose a CSV file to upload, or paste the rows with their header row")
        else:
            text = _upload_text(await file.read(UPLOAD_LIMIT + 1))
        rows = await run_in_threadpool(_validated, text)
    except m.ActionRefused as exc:
        return _back("/upload", str(exc), error=True)
    writable = sum(1 for r in rows if r.verdict != "invalid")
    return _render(
        request, "upload.html", user, "upload", rows=rows, columns=m.CSV_COLUMNS, csv_text=text, writable=writable
    )


@app.post("/upload/commit")
async def upload_commit(request: Request, user: UiUser = Depends(require_actor)):
    """The previewed CSV sent back with the confirmation: read up to the upload limit (a form
    field's default limit, 1 MiB, would refuse a file the preview accepted)."""
    form = await _form_after_login(request)
    try:
        csv_text = form.get("csv_text")
        if not isinstance(csv_text, str) or not csv_text:
            raise m.ActionRefused("nothing to upload: preview a file first")
        _upload_text(csv_text.encode())
        rows, counts = await run_in_threadpool(
            _validated_and_written, csv_text, user.name, request.client.host if request.client else ""
        )
    except m.ActionRefused as exc:
        return _back("/upload", str(exc), error=True)
    invalid = sum(1 for r in rows if r.verdict == "invalid")
    return _back(
        "/requests",
        f"Uploaded: {counts['approved']} approved, {counts['duplicate']} duplicate, {invalid} invalid row(s) skipped",
    )


@app.post("/cycle", dependencies=[Depends(check_csrf)])
def cycle_action(request: Request, request_ids: str = Form(""), user: UiUser = Depends(require_actor)):
    try:
        ids = _ids(request_ids)
    except m.ActionRefused as exc:
        return _back("/", str(exc), error=True)
    from include.parent_provisioning.ui.security import trigger_cycle

    run_id = trigger_cycle(request, user, ids)
    which = f"requests {', '.join(map(str, ids))}" if ids else "every approved request"
    return _back("/", f"Provisioning cycle {run_id} started for {which}.", run=run_id)


# JSON API ----------------------------------------------------------------------------


class StatusChange(BaseModel):
    status: str
    confirm_access_removal: bool = False


class BulkStatusChange(BaseModel):
    ids: list[int]
    status: str
    confirm_mass_deprovision: bool = False


class UploadBody(BaseModel):
    csv: str
    commit: bool = False


def _api_refusal(exc: m.ActionRefused) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=409)


@app.get("/api/requests")
def api_list(
    request: Request,
    status: str = "",
    type: str = "",
    sort: str = "date_created",
    dir: str = "desc",
    page: int = 1,
    per_page: int = 50,
    user: UiUser = Depends(require_personal_data),
):
    if "q" in request.query_params:
        raise HTTPException(400, SEARCH_IN_URL)
    rows, total = _query_requests(status, type, "", sort, dir, page, per_page)
    return _listed(rows, total, page)


def _listed(rows: list[dict], total: int, page: int) -> dict:
    """A page of the queue; each pending or approved request with its match preview's verdict."""
    found, error = previews(rows)
    for r in rows:
        if r["status"] in PREVIEWED:
            seen = found.get(int(r["id"]))
            r["match"] = {"would_provision": seen["would_provision"], "reason_key": seen["reason_key"],
                          "existing_account": seen["existing_account"]} if seen else {"error": error}  # fmt: skip
    return {"total": total, "page": page, "requests": jsonable(rows)}


class Search(BaseModel):
    q: str = ""
    status: str = ""
    type: str = ""
    sort: str = "date_created"
    dir: str = "desc"
    page: int = 1
    per_page: int = 50


@app.post("/api/requests/search")
def api_search(body: Search, user: UiUser = Depends(require_personal_data)):
    """GET /api/requests with a search term, the term in the body: never in a URL, so never logged."""
    rows, total = _query_requests(body.status, body.type, body.q, body.sort, body.dir, body.page, body.per_page)
    return _listed(rows, total, body.page)


@app.get("/api/requests/{request_id}")
def api_get(request_id: int, user: UiUser = Depends(require_personal_data)):
    r, outcomes = _request_with_cycles(request_id)
    return {"request": jsonable(r), "cycles": jsonable(outcomes)}


class EmailBody(BaseModel):
    template: str
    send: bool = False


@app.post("/api/requests/{request_id}/email")
def api_email(request_id: int, body: EmailBody, user: UiUser = Depends(require_actor)):
    """The template filled in from the request; sent (and logged on the request) when send is true."""
    shown = _email_preview(request_id, body.template)
    if shown["error"]:
        return _api_refusal(m.ActionRefused(shown["error"]))
    sent = False
    if body.send:
        try:
            _send_email(request_id, body.template, user.name)
        except m.ActionRefused as exc:
            return _api_refusal(exc)
        sent = True
    return {"to": shown["to"], "subject": shown["subject"], "body": shown["body"], "sent": sent}


@app.get("/api/requests/{request_id}/preview")
def api_preview(request_id: int, user: UiUser = Depends(require_personal_data)):
    """What the next cycle would do with a pending or approved request (as if approved now)."""
    r, _ = _request_with_cycles(request_id)
    if r["status"] not in PREVIEWED:
        raise HTTPException(
            409, f"request {request_id} is {r['status']}: only pending and approved requests are previewed"
        )
    found, error = previews([r])
    if error:
        return JSONResponse({"error": error}, status_code=503)
    return found[request_id]


@app.post("/api/requests/{request_id}/status")
def api_status(request_id: int, body: StatusChange, user: UiUser = Depends(require_actor)):
    """Approve or de-provision one request. De-provisioning a provisioned request with an auth row
    of its own is refused (409, saying whether the parent would lose access) unless
    confirm_access_removal is true."""
    try:
        s = load_settings()
        with wordpress_db() as conn:
            if body.status == "approved":
                result = m.approve(conn, s, request_id, user.name)
            else:
                result = m.set_status(
                    conn, s, request_id, body.status, user.name, confirmed=body.confirm_access_removal
                )
    except m.AccessRemovalNeedsConfirmation as exc:
        return JSONResponse(
            {
                "error": str(exc),
                "suspends_account": exc.suspends_account,
                "confirm_with": {"confirm_access_removal": True},
            },
            status_code=409,
        )
    except m.ActionRefused as exc:
        return _api_refusal(exc)
    return {"request_id": result.request_id, "status": result.status, "message": result.message}


@app.post("/api/requests/status")
def api_bulk_status(body: BulkStatusChange, user: UiUser = Depends(require_actor)):
    """De-provision several requests at once. Removing more auth rows than max_suspensions_per_cycle
    is refused (409, with the figures) unless confirm_mass_deprovision is true."""
    try:
        results = _on_wordpress(
            lambda conn, s: m.set_status_many(conn, s, body.ids, body.status, user.name, body.confirm_mass_deprovision)
        )
    except m.ConfirmationNeeded as exc:
        return JSONResponse(
            {
                "error": str(exc),
                "would_remove_auth_rows": exc.would_remove,
                "limit": exc.limit,
                "confirm_with": {"confirm_mass_deprovision": True},
            },
            status_code=409,
        )
    except m.ActionRefused as exc:
        return _api_refusal(exc)
    return {"results": results, "changed": sum(1 for r in results if "error" not in r)}


@app.post("/api/upload")
async def api_upload(request: Request, user: UiUser = Depends(require_actor)):
    """{"csv": text, "commit": bool}: read only once the user is known to manage requests."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > 2 * UPLOAD_LIMIT:
        return _api_refusal(m.ActionRefused("the file is larger than 5 MB: split it"))
    try:
        body = UploadBody.model_validate_json(await request.body())
    except ValueError as exc:
        return JSONResponse({"error": f'send {{"csv": "...", "commit": false}} as JSON ({type(exc).__name__})'}, 400)
    return await run_in_threadpool(_api_upload, request, body, user)


def _api_upload(request: Request, body: UploadBody, user: UiUser):
    try:
        _upload_text(body.csv.encode())
        s = load_settings()
        with wordpress_db() as conn:
            rows = m.validate_upload(conn, s, body.csv)
            written = (
                m.upload(conn, s, rows, user.name, request.client.host if request.client else "")
                if body.commit
                else None
            )
    except m.ActionRefused as exc:
        return _api_refusal(exc)
    return {"rows": [{"line": r.line, "verdict": r.verdict, "problems": r.problems} for r in rows], "written": written}


def jsonable(value):
    return json.loads(json.dumps(value, default=str))
