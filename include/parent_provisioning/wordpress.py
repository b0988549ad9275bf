"""The SQL of the WordPress plugin's two tables: the requests table and the auth table (the one
Moodle's external database authentication reads: an auth row lets a parent log in).

The plugin's tables are used as they are. What the cycle reads and marks, and the statements
behind staff's actions and screens (management.py decides when each may run), are all here.
The project's own tables beside them are own_tables.py's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from include.parent_provisioning import own_tables, sql
from include.parent_provisioning.reasons import Reason
from include.parent_provisioning.requests import REQUEST_COLUMNS, UPLOADED, fingerprint_sql
from include.parent_provisioning.settings import Settings

AUTH_DESCRIPTION = "Parent Moodle Account"
# The columns the requests screen sorts by.
SORTABLE = {"date_created", "date_updated", "date_approved", "id", "parent_sname", "child_sname"}
# The columns an uploaded row fills, in the upload file's order (management.CSV_COLUMNS).
UPLOADED_COLUMNS = (
    "parent_title", "parent_fname", "parent_sname", "parent_email",
    "child_fname", "child_sname", "child_tg", "child2_fname", "child2_sname", "child2_tg",
    "child3_fname", "child3_sname", "child3_tg",
)  # fmt: skip


def _appended_line(alias: str = "", line: str = "%s") -> str:
    """The SET clause that adds one line to a request's history (`system_comment`)."""
    return f"{alias}system_comment = CONCAT_WS('\\n', NULLIF({alias}system_comment, ''), {line})"


def append_line(cur, s: Settings, request_id: int, line: str, updated_at: datetime | None = None, **changes) -> None:
    """One line added to the request's history, with any column changes. updated_at also sets
    date_updated: staff's actions do; the cycle's line about an email it sent does not."""
    sets, values = [f"{col} = %s" for col in changes], list(changes.values())
    if updated_at is not None:
        sets.append("date_updated = %s")
        values.append(updated_at)
    cur.execute(
        f"UPDATE `{s.requests_table}` SET {', '.join([*sets, _appended_line()])} WHERE id = %s",
        (*values, line, request_id),
    )


# Requests, as the cycle reads and marks them -----------------------------------------


@dataclass(frozen=True)
class Queue:
    requests: list[tuple[int, str | None]]  # (id, parent_email as stored), oldest first
    deferred: int


def approved_queue(conn, s: Settings, request_ids: Sequence[int]) -> Queue:
    """The oldest approved requests (only the asked-for ones, if any), at most the cap: their ids
    and emails, the rest of each row read later a chunk at a time (requests_by_id)."""
    where, params = "status = 'approved'", []
    if request_ids:
        where += f" AND id IN ({sql.marks(len(request_ids))})"
        params = list(request_ids)
    with sql.cursor(conn) as cur:
        total = sql.rows(cur, f"SELECT COUNT(*) FROM `{s.requests_table}` WHERE {where}", params)[0][0]
        queue = [
            (int(rid), email)
            for rid, email in sql.rows(
                cur,
                f"SELECT id, parent_email FROM `{s.requests_table}` WHERE {where}"
                " ORDER BY COALESCE(date_approved, date_created), id LIMIT %s",
                (*params, s.max_requests_per_cycle),
            )
        ]
    return Queue(requests=queue, deferred=int(total) - len(queue))


def run_requests(conn, s: Settings, run_id: str) -> list[tuple[int, bool, str | None, str | None]]:
    """The requests this run took (its outcome rows): (id, needs_account, marked_outcome, the
    request's parent_email now, None once the request is deleted), by id."""
    with sql.cursor(conn) as cur:
        return [
            (int(rid), bool(needs), marked, email)
            for rid, needs, marked, email in sql.rows(
                cur,
                f"SELECT o.request_id, o.needs_account, o.marked_outcome, r.parent_email FROM `{s.outcomes_table}` o"
                f" LEFT JOIN `{s.requests_table}` r ON r.id = o.request_id WHERE o.run_id = %s ORDER BY o.request_id",
                (run_id,),
            )
        ]


def requests_by_id(conn, s: Settings, ids: Sequence[int]) -> list[dict]:
    found: list[dict] = []
    with sql.cursor(conn) as cur:
        for part in sql.chunks(sorted(ids)):
            query = f"SELECT {REQUEST_COLUMNS} FROM `{s.requests_table}` WHERE id IN ({sql.marks(len(part))})"
            found += sql.dict_rows(cur, query, part)
    return found


def requests_with_status(conn, s: Settings, status: str) -> list[dict]:
    with sql.cursor(conn) as cur:
        return sql.dict_rows(
            cur, f"SELECT {REQUEST_COLUMNS} FROM `{s.requests_table}` WHERE status = %s ORDER BY id", (status,)
        )


def request_states(conn, s: Settings, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """{request id: (status, digest)} of the requests that still exist; the digest as
    link_children's, a provisioned request's as it had when approved (see fingerprint_sql)."""
    found: dict[int, tuple[str, str]] = {}
    with sql.cursor(conn) as cur:
        for part in sql.chunks(sorted(set(ids))):
            for rid, status, digest in sql.rows(
                cur,
                f"SELECT id, status, {fingerprint_sql(provisioned_as_approved=True)} FROM `{s.requests_table}`"
                f" WHERE id IN ({sql.marks(len(part))})",
                part,
            ):
                found[int(rid)] = (str(status), str(digest))
    return found


def record_parent_email(conn, s: Settings, run_id: str, request_id: int, template_key: str, line: str) -> None:
    """This run emailed this request's parent (so a retry does not again), and the request's line saying so."""

    def work(cur) -> None:
        own_tables.note_parent_emailed(cur, s, run_id, request_id, template_key)
        append_line(cur, s, request_id, line)

    sql.in_transaction(conn, work)


def mark(conn, s: Settings, run_id: str, changed_line: str) -> int:
    """Apply this run's outcomes to the requests, in one transaction: provisioned requests
    change status; every request gets this run's line once, however often this runs.

    A request staff changed after `link_children` read it (its deciding columns' digest differs, or
    it is no longer approved) is not marked on stale data: its outcome becomes
    `changed_during_cycle` with `changed_line` as its comment, and the next cycle takes it up. The
    requests are locked first, so a staff edit waits for this transaction or comes after it."""
    now = datetime.now()

    def work(cur) -> int:
        _mark_changed_during_cycle(cur, s, run_id, changed_line, now)
        cur.execute(
            f"UPDATE `{s.requests_table}` r JOIN `{s.outcomes_table}` o ON o.request_id = r.id AND o.run_id = %s"
            " SET r.status = IF(o.outcome = 'provisioned', 'provisioned', r.status),"
            " r.provisioned_username = IF(o.outcome = 'provisioned', LOWER(TRIM(r.parent_email)),"
            " r.provisioned_username),"
            " r.date_updated = %s,"
            f" {_appended_line('r.', 'o.comment_line')}"
            " WHERE (r.status = 'approved' OR o.reason_key = 'changed_during_cycle')"
            " AND o.outcome IN ('provisioned', 'not_provisioned') AND NOT (o.marked_outcome <=> o.outcome)",
            (run_id, now),
        )
        updated = cur.rowcount
        cur.execute(
            f"UPDATE `{s.outcomes_table}` SET marked_outcome = outcome WHERE run_id = %s"
            " AND outcome IN ('provisioned', 'not_provisioned')",
            (run_id,),
        )
        return updated

    return sql.in_transaction(conn, work)


def _mark_changed_during_cycle(cur, s: Settings, run_id: str, changed_line: str, now: datetime) -> None:
    """Lock this run's unmarked requests that staff changed since the cycle read them, and make
    their outcome `changed_during_cycle`."""
    changed = [
        int(rid)
        for (rid,) in sql.rows(
            cur,
            f"SELECT o.request_id FROM `{s.outcomes_table}` o JOIN `{s.requests_table}` r ON r.id = o.request_id"
            " WHERE o.run_id = %s AND o.outcome IN ('provisioned', 'not_provisioned') AND o.marked_outcome IS NULL"
            f" AND o.reason_key <> 'changed_during_cycle' AND (r.status <> 'approved'"
            f" OR NOT (o.fingerprint <=> {fingerprint_sql('r.')})) FOR UPDATE",
            (run_id,),
        )
    ]
    for part in sql.chunks(changed):
        cur.execute(
            f"UPDATE `{s.outcomes_table}` SET outcome = 'not_provisioned', reasons = %s,"
            " reason_key = 'changed_during_cycle', linked_children = '[]', needs_attention = 0, comment_line = %s,"
            f" updated_at = %s WHERE run_id = %s AND request_id IN ({sql.marks(len(part))})",
            (json.dumps([Reason("changed_during_cycle").to_json()]), changed_line, now, run_id, *part),
        )


# Requests, as staff act on them (management.py's transactions) ----------------------


def lock_request(cur, s: Settings, request_id: int) -> dict | None:
    """The request's deciding fields, its row locked until the transaction ends; None if it does not exist."""
    cur.execute(
        f"SELECT id, status, parent_email, request_type FROM `{s.requests_table}` WHERE id = %s FOR UPDATE",
        (request_id,),
    )
    row = cur.fetchone()
    return dict(zip(("id", "status", "parent_email", "request_type"), row, strict=True)) if row else None


def request_columns(cur, s: Settings, request_id: int, columns: Sequence[str]) -> tuple:
    """Some of a request's columns as stored. columns: names from this code, never from input."""
    cur.execute(f"SELECT {', '.join(columns)} FROM `{s.requests_table}` WHERE id = %s", (request_id,))
    return tuple(cur.fetchone())


def insert_uploaded(
    cur, s: Settings, values: Sequence[str], status: str, line: str, now: datetime, remote_ip: str
) -> int:
    """A request from a row of an uploaded file; values: UPLOADED_COLUMNS's. Returns its id."""
    cur.execute(
        f"INSERT INTO `{s.requests_table}` ({', '.join(UPLOADED_COLUMNS)}, status, parent_comment, staff_comment,"
        " system_comment, date_created, date_updated, date_approved, remote_ip_addr, request_type)"
        " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,'','',%s,%s,%s,%s,%s,%s)",
        (*values, status, line, now, now, now if status == "approved" else None, remote_ip[:255], UPLOADED),
    )
    return cur.lastrowid


# Requests, as the screens list them ----------------------------------------------------


def status_counts(conn, s: Settings) -> dict[str, int]:
    with sql.cursor(conn) as cur:
        return {
            status: int(n)
            for status, n in sql.rows(cur, f"SELECT status, COUNT(*) FROM `{s.requests_table}` GROUP BY status")
        }


def pending_waiting(conn, s: Settings) -> int:
    """Pending requests received more than `pending_warn_days` ago: parents waiting on staff."""
    with sql.cursor(conn) as cur:
        cur.execute(
            f"SELECT COUNT(*) FROM `{s.requests_table}` WHERE status = 'pending'"
            " AND date_created < NOW() - INTERVAL %s DAY",
            (s.pending_warn_days,),
        )
        return int(cur.fetchone()[0])


# The parent, each of the three children, and the comments staff and parents wrote.
SEARCHED = (
    "parent_email", "CONCAT_WS(' ', parent_fname, parent_sname)",
    "CONCAT_WS(' ', child_fname, child_sname)", "CONCAT_WS(' ', child2_fname, child2_sname)",
    "CONCAT_WS(' ', child3_fname, child3_sname)",
    "parent_comment", "staff_comment",
)  # fmt: skip


def _search(term: str) -> tuple[str, list]:
    """A search term's WHERE condition: a request id, or text anywhere in SEARCHED."""
    if term.isdigit():
        return "id = %s", [int(term)]
    like = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return "(" + " OR ".join(f"{f} LIKE %s" for f in SEARCHED) + ")", [like] * len(SEARCHED)


def requests_page(
    conn, s: Settings, status: str | None, request_type: str | None, search: str | None,
    sort: str, descending: bool, page: int, per_page: int,
) -> tuple[list[dict], int]:  # fmt: skip
    """One page of requests, filtered and sorted in the database, and how many there are in all."""
    if sort not in SORTABLE:
        raise ValueError(f"not a column to sort by: {sort!r}")
    where, params = ["1 = 1"], []
    for condition, value in (("status = %s", status), ("request_type = %s", request_type)):
        if value:
            where.append(condition)
            params.append(value)
    if search and search.strip():
        condition, values = _search(search.strip())
        where.append(condition)
        params += values
    clause = " AND ".join(where)
    with sql.cursor(conn) as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{s.requests_table}` WHERE {clause}", params)
        total = int(cur.fetchone()[0])
        rows = sql.dict_rows(
            cur,
            f"SELECT id, status, request_type, parent_title, parent_fname, parent_sname, parent_email, child_fname,"
            f" child_sname, child_tg, date_created, date_approved, date_updated FROM `{s.requests_table}`"
            f" WHERE {clause} ORDER BY {sort} {'DESC' if descending else 'ASC'}, id DESC LIMIT %s OFFSET %s",
            (*params, per_page, (page - 1) * per_page),
        )
    return rows, total


def get_request(conn, s: Settings, request_id: int, columns: Sequence[str]) -> dict | None:
    """columns: names from this code, never from input."""
    shown = ", ".join(f"`{c}`" for c in columns)
    rows = own_tables.dict_rows_if_present(
        conn, f"SELECT {shown} FROM `{s.requests_table}` WHERE id = %s", (request_id,)
    )
    return rows[0] if rows else None


# Auth rows -------------------------------------------------------------------------------


def auth_emails(conn, s: Settings) -> set[str]:
    """Every email (and username) in the auth table, trimmed and lower-cased."""
    with sql.cursor(conn) as cur:
        found = sql.rows(cur, f"SELECT username, parent_email FROM `{s.auth_table}`")
    return {v.strip().lower() for row in found for v in row if v}


def auth_usernames(conn, s: Settings, column: str) -> list[str]:
    """The auth table's usernames exactly as Moodle's user sync reads them: every row, as stored.
    column: auth_db's 'fielduser' setting, a plain column name."""
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", column):
        raise ValueError(f"not a column name: {column!r}")
    with sql.cursor(conn) as cur:
        found = sql.rows(cur, f"SELECT `{column}` FROM `{s.auth_table}`")
    return [row[0] for row in found if row[0] is not None]


def auth_row_exists(cur, s: Settings, email: str) -> bool:
    """Any auth row for this email, whatever its case or spacing (locks the rows it reads,
    so two approvals of the same email serialise)."""
    cur.execute(
        f"SELECT id FROM `{s.auth_table}` WHERE LOWER(TRIM(username)) = %s OR LOWER(TRIM(parent_email)) = %s"
        " LIMIT 1 FOR UPDATE",
        (email, email),
    )
    return cur.fetchone() is not None


def other_auth_row(cur, s: Settings, email: str, request_id: int) -> int | None:
    """The request whose auth row for this email (any case or spacing, as `auth_row_exists`)
    remains when this request's goes: while it stays, Moodle's user sync keeps the parent's
    account active. None when there is none."""
    cur.execute(
        f"SELECT request_id FROM `{s.auth_table}` WHERE (LOWER(TRIM(username)) = %s OR LOWER(TRIM(parent_email)) = %s)"
        " AND request_id <> %s ORDER BY id LIMIT 1 FOR UPDATE",
        (email, email, request_id),
    )
    row = cur.fetchone()
    return None if row is None else int(row[0])


def own_auth_rows(cur, s: Settings, request_id: int) -> int:
    """How many auth rows this request wrote, locked."""
    cur.execute(f"SELECT id FROM `{s.auth_table}` WHERE request_id = %s FOR UPDATE", (request_id,))
    return len(cur.fetchall())


def delete_own_auth_rows(cur, s: Settings, request_id: int) -> int:
    cur.execute(f"DELETE FROM `{s.auth_table}` WHERE request_id = %s", (request_id,))
    return cur.rowcount


def write_auth_row(cur, s: Settings, request_id: int) -> None:
    """The auth row exactly as the WordPress plugin's approval writes it. "Title First name" is
    cut to its column, as WordPress's (non-strict) connection stored it; strict SQL refused it."""
    cur.execute(
        f"INSERT INTO `{s.auth_table}` (username, parent_title, parent_fname, parent_sname, parent_email,"
        " description, request_id) SELECT LOWER(TRIM(parent_email)), parent_title,"
        " LEFT(CONCAT(parent_title, ' ', parent_fname), 255), parent_sname, LOWER(TRIM(parent_email)), %s, id"
        f" FROM `{s.requests_table}` WHERE id = %s",
        (AUTH_DESCRIPTION, request_id),
    )


def requests_with_auth_rows(cur, s: Settings) -> int:
    """The parents Moodle keeps active are those with an auth row: how many requests have one."""
    return int(sql.rows(cur, f"SELECT COUNT(DISTINCT request_id) FROM `{s.auth_table}`")[0][0])


def requests_losing_auth_rows(cur, s: Settings, ids: Sequence[int], status: str) -> int:
    """How many of these requests have an auth row that setting them to `status` would remove."""
    return int(
        sql.rows(
            cur,
            f"SELECT COUNT(DISTINCT a.request_id) FROM `{s.auth_table}` a JOIN `{s.requests_table}` r"
            f" ON r.id = a.request_id WHERE r.status <> %s AND a.request_id IN ({sql.marks(len(ids))})",
            (status, *ids),
        )[0][0]
    )


def _live_joins(s: Settings) -> str:
    """Joins that find, for each auth row `a`, a live request (approved or provisioned) with its email; an
    auth row with neither (ORPHANED) has no request standing behind it, so nothing the project does would
    write it again and staff may remove it. Two equality joins on one materialised list of emails: fast on
    10,000 rows, where an OR or a correlated subquery would scan the requests once per auth row."""
    live = (
        f"(SELECT DISTINCT LOWER(TRIM(parent_email)) AS email FROM `{s.requests_table}`"
        " WHERE status IN ('approved', 'provisioned'))"
    )
    return (
        f" LEFT JOIN {live} live1 ON live1.email = LOWER(TRIM(a.username))"
        f" LEFT JOIN {live} live2 ON live2.email = LOWER(TRIM(a.parent_email))"
    )


ORPHANED = "(live1.email IS NULL AND live2.email IS NULL)"


def auth_rows_page(conn, s: Settings, page: int, per_page: int, orphaned_only: bool) -> tuple[list[dict], int]:
    """A page of auth rows, each saying whether it is orphaned, and how many there are in all."""
    where = ORPHANED if orphaned_only else "1 = 1"
    joined = f"`{s.auth_table}` a{_live_joins(s)}"
    total = own_tables.dict_rows_if_present(conn, f"SELECT COUNT(*) AS n FROM {joined} WHERE {where}")[0]["n"]
    rows = own_tables.dict_rows_if_present(
        conn,
        f"SELECT a.id, a.username, a.parent_title, a.parent_fname, a.parent_sname, a.parent_email, a.request_id,"
        f" {ORPHANED} AS orphaned FROM {joined} WHERE {where} ORDER BY a.username, a.id LIMIT %s OFFSET %s",
        (per_page, (page - 1) * per_page),
    )
    return rows, int(total)


def lock_orphaned_auth_rows(cur, s: Settings, ids: Sequence[int]) -> list[tuple[int, int]]:
    """(auth row id, its request id or 0) of those among `ids` still orphaned, locked."""
    cur.execute(
        f"SELECT a.id, a.request_id FROM `{s.auth_table}` a{_live_joins(s)} WHERE a.id IN ({sql.marks(len(ids))})"
        f" AND {ORPHANED} FOR UPDATE",
        ids,
    )
    return [(int(i), int(r or 0)) for i, r in cur.fetchall()]


def delete_auth_rows(cur, s: Settings, ids: Sequence[int]) -> None:
    cur.execute(f"DELETE FROM `{s.auth_table}` WHERE id IN ({sql.marks(len(ids))})", ids)
