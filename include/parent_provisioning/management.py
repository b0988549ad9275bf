"""What staff do to requests and auth rows: approve, deny, de-provision, correct, upload,
remove orphaned auth rows; and what the request screens show of them. The rules are the
WordPress plugin's where they were right; the SQL is wordpress.py's.

Each action is one database transaction that locks the request row first, so two staff
acting at once cannot both succeed, and appends one dated line to `system_comment`
naming who did it. Nothing here trusts its input: every value is validated before it
reaches the database.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from include.parent_provisioning import sql, wordpress
from include.parent_provisioning.names import SMTP_CONN_ID
from include.parent_provisioning.requests import (
    CHILDREN_NOT_LINKED,
    DEPROVISIONED,
    EMAIL_PATTERN,
    REQUEST_TYPES,
    STATUSES,
    normalise_email,
)
from include.parent_provisioning.settings import Settings

# Other names a column goes by: the WordPress plugin's own upload template (js/upload-users.js) says
# "Parent Email Address".
HEADER_ALIASES = {"parent email address": "parent email"}
CSV_COLUMNS = (
    "Parent Title", "Parent First Name", "Parent Surname", "Parent Email",
    "Child 1 First Name", "Child 1 Surname", "Child 1 Tutor Group",
    "Child 2 First Name", "Child 2 Surname", "Child 2 Tutor Group",
    "Child 3 First Name", "Child 3 Surname", "Child 3 Tutor Group",
)  # fmt: skip
LIMITS = {"parent_title": 12, "name": 255, "email": 255, "tg": 16, "staff_comment": 65535}
MAX_UPLOAD_ROWS = 5000
MAX_BULK_IDS = 5000


class ActionRefused(ValueError):
    """The action is not allowed for this request now; the message says why."""


class ConfirmationNeeded(ActionRefused):
    """A bulk action would de-provision more parents at once than the limit: it needs confirming."""

    def __init__(self, message: str, would_remove: int, limit: int):
        super().__init__(message)
        self.would_remove, self.limit = would_remove, limit


class AccessRemovalNeedsConfirmation(ActionRefused):
    """De-provisioning a provisioned request removes its auth row: staff confirm first, told
    whether the parent loses access to Moodle or keeps it through another auth row."""

    def __init__(self, message: str, request_id: int, status: str, suspends_account: bool):
        super().__init__(message)
        self.request_id, self.status, self.suspends_account = request_id, status, suspends_account


@dataclass(frozen=True)
class ActionResult:
    request_id: int
    status: str
    message: str


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def _line(actor: str, text: str) -> str:
    return f"{_now():%Y-%m-%d %H:%M:%S} {text} (by {actor[:100]} in Airflow)"


def _lock_request(cur, s: Settings, request_id: int) -> dict:
    req = wordpress.lock_request(cur, s, request_id)
    if req is None:
        raise ActionRefused(f"request {request_id} does not exist")
    return req


def _append(cur, s: Settings, request_id: int, line: str, **changes) -> None:
    """A staff action's line on the request's history, with its changes; date_updated says when."""
    wordpress.append_line(cur, s, request_id, line, updated_at=_now(), **changes)


def _read_only(conn, read):
    """read(cursor), then the transaction ended: no snapshot held while the actions that follow run."""
    with sql.cursor(conn) as cur:
        result = read(cur)
        conn.rollback()
    return result


def approve(conn, s: Settings, request_id: int, actor: str) -> ActionResult:
    """Only from pending. A new account for an email that already has an auth row becomes
    a duplicate; a "children not linked" request for such a parent is approved without a
    second auth row; otherwise approved with its auth row."""

    def work(cur) -> ActionResult:
        req = _lock_request(cur, s, request_id)
        if req["status"] != "pending":
            raise ActionRefused(f"request {request_id} is {req['status']}: only pending requests can be approved")
        email = normalise_email(req["parent_email"])
        if not EMAIL_PATTERN.fullmatch(email):
            raise ActionRefused(f"request {request_id}: the parent email is not a usable address; correct it first")
        if wordpress.auth_row_exists(cur, s, email):
            if req["request_type"] == CHILDREN_NOT_LINKED:
                _append(
                    cur,
                    s,
                    request_id,
                    _line(actor, "Approved: the parent already has an account; the next cycle links the children"),
                    status="approved",
                    date_approved=_now(),
                )
                return ActionResult(request_id, "approved", "approved; the parent's existing account is used")
            _append(
                cur,
                s,
                request_id,
                _line(actor, "Marked duplicate: an account for this email already exists"),
                status="duplicate",
            )
            return ActionResult(request_id, "duplicate", "an account for this email already exists: marked duplicate")
        _append(cur, s, request_id, _line(actor, "Approved"), status="approved", date_approved=_now())
        wordpress.write_auth_row(cur, s, request_id)
        return ActionResult(request_id, "approved", "approved; the next cycle creates the account")

    return sql.in_transaction(conn, work)


def _check_deprovision_status(status: str) -> None:
    if status not in DEPROVISIONED or status == "deleting":
        raise ActionRefused(f"status must be one of {', '.join(x for x in DEPROVISIONED if x != 'deleting')}")


DOING = {
    "rejected": "rejecting it",
    "duplicate": "marking it duplicate",
    "bogus": "marking it bogus",
    "unknown": "marking it unknown",
    "pending": "sending it back to pending",
}
NEXT_CYCLE = "the next provisioning cycle (the nightly run, or 'Provision now')"


def _status_note(was: str, status: str, removed: int, keeper: int | None) -> str:
    """The history line and the answer: what the change does to the parent's access, truthfully.
    Moodle's user sync suspends an account only when no auth row for it is left."""
    head = f"Status {was} -> {status}"
    if removed and keeper is not None:
        kept = f"{head}; auth row removed; the parent keeps access through another auth row (request {keeper})"
        return kept + ("; the next cycle unlinks the children only it linked" if was == "provisioned" else "")
    if removed and was == "provisioned":
        return f"{head}; auth row removed: the parent's Moodle account is suspended at the next cycle"
    if removed:
        return (
            f"{head}; auth row removed: the parent gets no Moodle account from it (one Moodle's user sync"
            " already created is suspended at the next cycle)"
        )
    if was == "provisioned":
        return (
            f"{head}; it had no auth row of its own, so no account is suspended;"
            " the next cycle unlinks the children only it linked"
        )
    return head


def _confirmation(request_id: int, status: str, keeper: int | None) -> AccessRemovalNeedsConfirmation:
    doing = f"Request {request_id} is provisioned: {DOING[status]} removes its auth row"
    if keeper is None:
        text = (
            f"{doing}, so the parent loses access to Moodle: {NEXT_CYCLE} runs Moodle's user sync, which"
            " suspends the parent's account (its data is kept)."
        )
    else:
        text = (
            f"{doing}, but the parent keeps the Moodle account through request {keeper}'s auth row for the"
            " same email, so the account is not suspended; the next cycle unlinks the children only this request"
            " linked."
        )
    if status == "pending":
        text += " To fix a child's name or tutor group, correct the child instead: the parent keeps access."
    return AccessRemovalNeedsConfirmation(
        f"{text} Confirm to go ahead.", request_id, status, suspends_account=keeper is None
    )


def set_status(conn, s: Settings, request_id: int, status: str, actor: str, confirmed: bool = False) -> ActionResult:
    """Reject, mark duplicate, bogus or unknown, or send back to pending: the request's own
    auth row goes. When no other auth row for the parent's email is left, the next cycle runs
    Moodle's user sync, which suspends the account (keeping its data). A provisioned request
    with an auth row of its own is a parent who has access: that needs confirmed=True, and the
    refusal (AccessRemovalNeedsConfirmation) says whether the parent would lose it."""
    _check_deprovision_status(status)

    def work(cur) -> ActionResult:
        req = _lock_request(cur, s, request_id)
        if req["status"] == status:
            raise ActionRefused(f"request {request_id} is already {status}")
        own = wordpress.own_auth_rows(cur, s, request_id)
        keeper = wordpress.other_auth_row(cur, s, normalise_email(req["parent_email"]), request_id) if own else None
        if own and req["status"] == "provisioned" and not confirmed:
            raise _confirmation(request_id, status, keeper)
        removed = wordpress.delete_own_auth_rows(cur, s, request_id)
        note = _status_note(req["status"], status, removed, keeper)
        _append(cur, s, request_id, _line(actor, note), status=status)
        return ActionResult(request_id, status, note)

    return sql.in_transaction(conn, work)


def _suspension_guard(s: Settings, losing: int, keeping: int, what: str, confirmed: bool) -> None:
    """Removing more auth rows at once than `max_suspensions_per_cycle` (or `max_suspension_fraction` of
    those with one) needs confirmed=True: Moodle's next user sync would suspend that many parents."""
    limit, fraction = s.max_suspensions_per_cycle, s.max_suspension_fraction
    over_count, over_share = losing > limit, losing > fraction * keeping
    if not losing or not (over_count or over_share) or confirmed:
        return
    share = round(100 * losing / keeping) if keeping else 100
    which = " and ".join(
        w
        for w, over in (
            (f"more than {limit}, the setting max_suspensions_per_cycle", over_count),
            (
                f"{share} % of the {keeping} with an auth row, more than max_suspension_fraction's "
                f"{fraction * 100:g} %",
                over_share,
            ),
        )
        if over
    )
    raise ConfirmationNeeded(
        f"{losing} {what}, so Moodle's next user sync would suspend up to {losing} parent accounts ({which}). "
        "Confirm to go ahead; the next cycle will then also refuse to run the sync until it is triggered with "
        "allow_mass_suspension=true.",
        would_remove=losing,
        limit=limit,
    )


def set_status_many(
    conn, s: Settings, request_ids: Sequence[int], status: str, actor: str, confirmed: bool = False
) -> list[dict]:
    """set_status for each request, each in its own transaction; one refusal does not stop the
    others. Removing more auth rows at once than `max_suspensions_per_cycle` needs confirmed=True:
    Moodle's next user sync would suspend that many parents. A provisioned request's own
    confirmation is not asked again: choosing a bulk de-provision is that choice (its form says so)."""
    _check_deprovision_status(status)
    ids = sorted({int(i) for i in request_ids})
    if not ids:
        raise ActionRefused("give at least one request id")
    if len(ids) > MAX_BULK_IDS:
        raise ActionRefused(f"at most {MAX_BULK_IDS} requests at once")
    losing, keeping = _read_only(
        conn,
        lambda cur: (
            wordpress.requests_losing_auth_rows(cur, s, ids, status),
            wordpress.requests_with_auth_rows(cur, s),
        ),
    )
    _suspension_guard(s, losing, keeping, f"of these {len(ids)} requests would lose their auth row", confirmed)
    results = []
    for request_id in ids:
        try:
            done = set_status(conn, s, request_id, status, actor, confirmed=True)
            results.append({"request_id": request_id, "status": done.status, "message": done.message})
        except ActionRefused as exc:
            results.append({"request_id": request_id, "error": str(exc)})
    return results


def _clean(value, limit: int, what: str) -> str:
    text = " ".join(str(value or "").split())
    if len(text) > limit:
        raise ActionRefused(f"{what} is longer than {limit} characters")
    return text


CHILD_PREFIX = {1: "child", 2: "child2", 3: "child3"}


def _stored_child(cur, s: Settings, request_id: int, columns: Sequence[str]) -> tuple[str, ...]:
    """A child's three columns as stored, with the whitespace cleanup a correction gets."""
    return tuple(" ".join(str(v or "").split()) for v in wordpress.request_columns(cur, s, request_id, columns))


def _provisioned_correction_note(position: int, values: tuple[str, ...]) -> str:
    what = "corrected" if any(values) else "removed"
    then = " and the next cycle links the corrected child" if any(values) else ""
    return (
        f"Child {position} {what} on a provisioned request: back to approved; the parent keeps access{then}"
        " (and unlinks the child it no longer names)"
    )


def correct_child(
    conn, s: Settings, request_id: int, position: int, first: str, surname: str, group: str, actor: str
) -> ActionResult:
    """Staff fix a child's name or tutor group. A provisioned request goes back to approved
    with its auth row kept, so the parent never loses access for a typo and the next cycle
    links the corrected child; a correction that changes nothing leaves it provisioned."""
    if position not in (1, 2, 3):
        raise ActionRefused("child position must be 1, 2 or 3")
    values = (
        _clean(first, LIMITS["name"], "first name"),
        _clean(surname, LIMITS["name"], "surname"),
        _clean(group, LIMITS["tg"], "tutor group"),
    )
    if any(values) and not all(values):
        raise ActionRefused("a child needs a first name, a surname and a tutor group (or all three empty)")
    if position == 1 and not all(values):
        raise ActionRefused("the first child cannot be removed")
    prefix = CHILD_PREFIX[position]
    columns = (f"{prefix}_fname", f"{prefix}_sname", f"{prefix}_tg")

    def work(cur) -> ActionResult:
        req = _lock_request(cur, s, request_id)
        changes = dict(zip(columns, values, strict=True))
        if req["status"] != "provisioned":
            _append(cur, s, request_id, _line(actor, f"Child {position} corrected"), **changes)
            return ActionResult(request_id, req["status"], f"child {position} corrected")
        if _stored_child(cur, s, request_id, columns) == values:
            return ActionResult(request_id, "provisioned", f"child {position}: nothing changed; still provisioned")
        note = _provisioned_correction_note(position, values)
        _append(cur, s, request_id, _line(actor, note), status="approved", **changes)
        return ActionResult(request_id, "approved", note)

    return sql.in_transaction(conn, work)


def set_staff_comment(conn, s: Settings, request_id: int, text: str, actor: str) -> ActionResult:
    comment = str(text or "").strip()
    if len(comment) > LIMITS["staff_comment"]:
        raise ActionRefused("the staff comment is too long")

    def work(cur) -> ActionResult:
        req = _lock_request(cur, s, request_id)
        _append(cur, s, request_id, _line(actor, "Staff comment edited"), staff_comment=comment)
        return ActionResult(request_id, req["status"], "staff comment saved")

    return sql.in_transaction(conn, work)


# Emails to a parent -------------------------------------------------------------------


def email_preview(conn, s: Settings, request_id: int, template_key: str, templates) -> tuple[str, str, str]:
    """(to, subject, body) of a template filled in from the request, nothing sent."""
    from include.parent_provisioning import parent_emails

    template = templates.get(template_key)
    if template is None:
        raise ActionRefused(f"no email template {template_key!r} (there are: {', '.join(templates)})")
    row = get_request(conn, s, request_id)
    if not row:
        raise ActionRefused(f"request {request_id} does not exist")
    to = normalise_email(row["parent_email"] or "")
    if not EMAIL_PATTERN.fullmatch(to):
        raise ActionRefused("the parent email is not a usable address: correct the request first")
    subject, body = parent_emails.render(template, row, s.moodle_url)
    return to, subject, body


def email_parent(conn, s: Settings, request_id: int, template_key: str, templates, actor: str, send) -> ActionResult:
    """Send the template to the request's parent, then log it on the request (who, which, when; no body).
    A refusal by the mail server is logged too and refused with its kind. send(to, subject, body)."""
    to, subject, body = email_preview(conn, s, request_id, template_key, templates)
    name = templates[template_key].name
    conn.rollback()  # no snapshot held while the mail server answers
    try:
        send(to, subject, body)
    except Exception as exc:  # the SMTP server or the connection: logged on the request, then refused
        failed = _line(actor, f"Email '{name}' to the parent could not be sent ({type(exc).__name__})")

        def log_failure(cur) -> None:
            _lock_request(cur, s, request_id)
            _append(cur, s, request_id, failed)

        sql.in_transaction(conn, log_failure)
        raise ActionRefused(
            f"the email could not be sent ({type(exc).__name__}): check the {SMTP_CONN_ID} connection"
        ) from exc

    def work(cur) -> ActionResult:
        req = _lock_request(cur, s, request_id)
        _append(cur, s, request_id, _line(actor, f"Email '{name}' sent to the parent"))
        return ActionResult(request_id, req["status"], f"email '{name}' sent to the parent")

    return sql.in_transaction(conn, work)


# Bulk upload --------------------------------------------------------------------------


@dataclass
class UploadRow:
    line: int
    values: dict[str, str]
    verdict: str = "approved"  # approved | duplicate | invalid
    problems: list[str] = field(default_factory=list)


def validate_upload(conn, s: Settings, text: str) -> list[UploadRow]:
    """Every row's verdict, before anything is written. A file the CSV reader cannot read (a field
    longer than it takes, a NUL byte, an unclosed quote) is refused with the line, never an error page."""
    text = text.lstrip("\ufeff")
    # Rows pasted from a spreadsheet come tab-separated: the header line tells.
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        return _validate_rows(conn, s, reader)
    except csv.Error as exc:
        raise ActionRefused(
            f"line {reader.line_num}: the file cannot be read as CSV ({exc}); save it again as CSV (UTF-8), "
            "or split a field that long"
        ) from exc


def _validate_rows(conn, s: Settings, reader: csv.DictReader) -> list[UploadRow]:
    column_of = _header(reader)
    known = wordpress.auth_emails(conn, s)
    rows: list[UploadRow] = []
    seen: set[str] = set()
    for n, raw in enumerate(reader, start=2):
        if n - 1 > MAX_UPLOAD_ROWS:
            raise ActionRefused(f"the file has more than {MAX_UPLOAD_ROWS} rows: split it")
        values = {c: " ".join(str(raw.get(column_of[c]) or "").split()) for c in CSV_COLUMNS}
        row = UploadRow(line=n, values=values, problems=row_problems(values))
        email = normalise_email(values["Parent Email"])
        if row.problems:
            row.verdict = "invalid"
        elif email in known or email in seen:
            row.verdict = "duplicate"
            row.problems.append(
                "an account for this email already exists"
                if email in known
                else "the same email appears earlier in the file"
            )
        seen.add(email)
        rows.append(row)
    return rows


def _header(reader: csv.DictReader) -> dict[str, str]:
    """Each of CSV_COLUMNS as the file's header names it: any case or spacing, or an alias."""
    if not reader.fieldnames:
        raise ActionRefused("the file is empty")
    by_lower = {}
    for name in reader.fieldnames:
        key = (name or "").strip().lower()
        by_lower[HEADER_ALIASES.get(key, key)] = name
    missing = [c for c in CSV_COLUMNS if c.lower() not in by_lower]
    if missing:
        raise ActionRefused(f"the file has no column {missing[0]!r}; the columns are: {', '.join(CSV_COLUMNS)}")
    return {c: by_lower[c.lower()] for c in CSV_COLUMNS}


def row_problems(values: dict[str, str]) -> list[str]:
    """What makes an uploaded row (its CSV_COLUMNS, whitespace tidied) invalid; none when it is valid."""
    problems = []
    email = normalise_email(values["Parent Email"])
    if len(email) > LIMITS["email"]:
        problems.append(f"Parent Email is longer than {LIMITS['email']} characters")
    elif not EMAIL_PATTERN.fullmatch(email):
        problems.append("Parent Email is not a usable address")
    for col, limit in (
        ("Parent Title", LIMITS["parent_title"]),
        ("Parent First Name", LIMITS["name"]),
        ("Parent Surname", LIMITS["name"]),
    ):
        if not values[col]:
            problems.append(f"{col} is empty")
        elif len(values[col]) > limit:
            problems.append(f"{col} is longer than {limit} characters")
    for k in (1, 2, 3):
        child = [values[f"Child {k} First Name"], values[f"Child {k} Surname"], values[f"Child {k} Tutor Group"]]
        if k == 1 and not all(child):
            problems.append("Child 1 needs a first name, surname and tutor group")
        elif any(child) and not all(child):
            problems.append(f"Child {k} is only partly filled in")
        for col, value, limit in zip(
            ("First Name", "Surname", "Tutor Group"), child, (LIMITS["name"], LIMITS["name"], LIMITS["tg"]), strict=True
        ):
            if len(value) > limit:
                problems.append(f"Child {k} {col} is longer than {limit} characters")
    return problems


def upload(conn, s: Settings, rows: Sequence[UploadRow], actor: str, remote_ip: str = "") -> dict[str, int]:
    """Write every valid row in one transaction: approved with its auth row, or duplicate."""
    valid = [r for r in rows if r.verdict in ("approved", "duplicate")]

    def work(cur) -> dict[str, int]:
        now = _now()
        counts = {"approved": 0, "duplicate": 0}
        for row in valid:
            email = normalise_email(row.values["Parent Email"])
            # Re-checked inside the transaction: another upload or approval may have added the email.
            status = (
                "duplicate" if row.verdict == "duplicate" or wordpress.auth_row_exists(cur, s, email) else "approved"
            )
            values = [email if c == "Parent Email" else row.values[c] for c in CSV_COLUMNS]
            line = _line(actor, f"Uploaded from line {row.line} of a file: {status}")
            request_id = wordpress.insert_uploaded(cur, s, values, status, line, now, remote_ip)
            if status == "approved":
                wordpress.write_auth_row(cur, s, request_id)
            counts[status] += 1
        return counts

    return sql.in_transaction(conn, work)


# What the screens show ----------------------------------------------------------------


def status_counts(conn, s: Settings) -> dict[str, int]:
    """Every status's count, those with no request too."""
    found = wordpress.status_counts(conn, s)
    return {status: found.get(status, 0) for status in STATUSES} | found


def list_requests(
    conn,
    s: Settings,
    status: str | None = None,
    request_type: str | None = None,
    search: str | None = None,
    sort: str = "date_created",
    descending: bool = True,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict], int]:
    """One page of requests, filtered and sorted in the database."""
    if status and status not in STATUSES:
        raise ActionRefused(f"unknown status {status!r}")
    if request_type and request_type not in REQUEST_TYPES:
        raise ActionRefused("unknown request type")
    if sort not in wordpress.SORTABLE:
        raise ActionRefused(f"cannot sort by {sort!r}")
    page, per_page = _paging(page, per_page, 500)
    return wordpress.requests_page(conn, s, status, request_type, search, sort, descending, page, per_page)


# What a request's screen and the API show of it, and nothing more: never the plugin's old password
# column or anything a later version of the plugin adds.
DETAIL_FIELDS = (
    "id", "status", "request_type", "parent_title", "parent_fname", "parent_sname", "parent_email",
    "parent_comment", "date_created", "date_approved", "date_updated", "provisioned_username", "remote_ip_addr",
)  # fmt: skip
CHILD_FIELDS = tuple(f"{c}_{f}" for c in ("child", "child2", "child3") for f in ("fname", "sname", "tg"))
# What staff read on the request screen: the form's words, not the table's column names.
LABELS = {
    "id": "Request", "status": "Status", "request_type": "Request type", "parent_title": "Title",
    "parent_fname": "First name", "parent_sname": "Surname", "parent_email": "Email address",
    "parent_comment": "Parent's comment", "date_created": "Received", "date_approved": "Approved",
    "date_updated": "Last changed", "provisioned_username": "Moodle username",
    "remote_ip_addr": "Sent from (IP address)", "staff_comment": "Staff comment", "system_comment": "History",
}  # fmt: skip
SHOWN_FIELDS = DETAIL_FIELDS + CHILD_FIELDS + ("staff_comment", "system_comment")


def get_request(conn, s: Settings, request_id: int) -> dict | None:
    return wordpress.get_request(conn, s, request_id, SHOWN_FIELDS)


MAX_PAGE = 100_000  # 50 million rows at the largest page size: past any school's table


def _paging(page: int, per_page: int, most: int) -> tuple[int, int]:
    """A page number and size the database can take: a huge page number is the last page there
    could be, not an OFFSET out of range (a server error)."""
    return min(max(1, int(page)), MAX_PAGE), min(max(1, int(per_page)), most)


# Auth rows ------------------------------------------------------------------------------


def list_auth_rows(
    conn, s: Settings, page: int = 1, per_page: int = 100, orphaned_only: bool = False
) -> tuple[list[dict], int]:
    """A page of the auth table, each row saying whether a live request stands behind it (orphaned
    when none does: wordpress.ORPHANED)."""
    page, per_page = _paging(page, per_page, 500)
    rows, total = wordpress.auth_rows_page(conn, s, page, per_page, orphaned_only)
    for row in rows:
        row["orphaned"] = bool(row["orphaned"])
    return rows, total


def remove_orphaned_auth_rows(
    conn, s: Settings, ids: Sequence[int], actor: str, confirmed: bool = False
) -> ActionResult:
    """Remove auth rows no live request stands behind (checked again in the transaction: a row a request
    was approved for meanwhile stays). Each removal is a line on the request the row names, when it exists.
    Many at once need confirming, as bulk de-provisioning does (_suspension_guard)."""
    ids = sorted({int(i) for i in ids})
    if not ids:
        raise ActionRefused("choose the auth rows to remove")
    if len(ids) > MAX_BULK_IDS:
        raise ActionRefused(f"at most {MAX_BULK_IDS} auth rows at once")
    if len(ids) > 1:  # the bulk guard: one row at a time is the choice of that row
        keeping = _read_only(conn, lambda cur: wordpress.requests_with_auth_rows(cur, s))
        _suspension_guard(s, len(ids), keeping, "auth rows would be removed", confirmed)

    def work(cur) -> int:
        found = wordpress.lock_orphaned_auth_rows(cur, s, ids)
        if found:
            wordpress.delete_auth_rows(cur, s, [i for i, _ in found])
        for auth_id, request_id in found:
            if request_id and wordpress.lock_request(cur, s, request_id):
                _append(cur, s, request_id, _line(actor, f"removed its orphaned auth row (auth row {auth_id})"))
        return len(found)

    removed = sql.in_transaction(conn, work)
    kept = len(ids) - removed
    note = f"{removed} orphaned auth row(s) removed" + (
        f"; {kept} kept: a live request stands behind them" if kept else ""
    )
    return ActionResult(0, "", note)
