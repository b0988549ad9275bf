"""Everything the cycle reads from and writes to the WordPress database.

The plugin's two tables are used as they are; the project's own record lives in two
tables of its own beside them (created when missing), so that marking a request and
recording that it was marked happen in one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from include.parent_provisioning import sql
from include.parent_provisioning.reasons import Reason
from include.parent_provisioning.requests import REQUEST_COLUMNS, fingerprint_sql
from include.parent_provisioning.settings import Settings

FINAL_OUTCOMES = ("provisioned", "not_provisioned")
ATTENTION_AFTER = 3  # cycles failing the same way


def own_tables_sql(s: Settings) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS `{s.cycles_table}` (
  `run_id` varchar(250) NOT NULL,
  `started_at` datetime NOT NULL,
  `finished_at` datetime NULL,
  `triggered_by` varchar(255) NOT NULL DEFAULT '',
  `run_type` varchar(32) NOT NULL DEFAULT '',
  `dry_run` tinyint(1) NOT NULL DEFAULT 0,
  `requested_ids` mediumtext NULL,
  `state` varchar(32) NOT NULL DEFAULT 'running',
  `summary` mediumtext NULL,
  PRIMARY KEY (`run_id`)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
        f"""CREATE TABLE IF NOT EXISTS `{s.outcomes_table}` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `run_id` varchar(250) NOT NULL,
  `request_id` bigint(20) NOT NULL,
  `outcome` varchar(32) NOT NULL,
  `needs_account` tinyint(1) NOT NULL DEFAULT 0,
  `reasons` mediumtext NULL,
  `reason_key` varchar(255) NOT NULL DEFAULT '',
  `parent_userid` bigint(20) NULL,
  `linked_children` mediumtext NULL,
  `attempt` int NOT NULL DEFAULT 1,
  `needs_attention` tinyint(1) NOT NULL DEFAULT 0,
  `comment_line` mediumtext NULL,
  `marked_outcome` varchar(32) NULL,
  `fingerprint` char(64) NULL,
  `parent_emailed` varchar(64) NULL,
  `updated_at` datetime NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `run_request` (`run_id`, `request_id`),
  KEY `request` (`request_id`)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
        f"""CREATE TABLE IF NOT EXISTS `{s.lock_table}` (
  `name` varchar(32) NOT NULL,
  `run_id` varchar(250) NOT NULL DEFAULT '',
  `deployment` varchar(64) NOT NULL DEFAULT '',
  `holder` varchar(255) NOT NULL DEFAULT '',
  `acquired_at` datetime NULL,
  `expires_at` datetime NULL,
  `claims` bigint(20) NOT NULL DEFAULT 0,
  PRIMARY KEY (`name`)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    ]


def missing_tables(conn, s: Settings) -> list[str]:
    cur = conn.cursor()
    try:
        names = (s.requests_table, s.auth_table, s.cycles_table, s.outcomes_table, s.lock_table)
        present = {
            r[0]
            for r in sql.rows(
                cur,
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
                f" AND table_name IN ({sql.marks(len(names))})",
                names,
            )
        }
        return [n for n in names if n not in present]
    finally:
        cur.close()


# Columns added to the project's own tables since their first release: (table property, column, definition).
ADDED_COLUMNS = (
    ("outcomes_table", "fingerprint", "char(64) NULL AFTER `marked_outcome`"),
    ("outcomes_table", "parent_emailed", "varchar(64) NULL AFTER `fingerprint`"),
)


def upgrade_own_tables(conn, s: Settings) -> list[str]:
    """Add the columns a deployment made by an earlier version lacks; returns what was added."""
    cur = conn.cursor()
    try:
        added = []
        for prop, column, definition in ADDED_COLUMNS:
            table = getattr(s, prop)
            if not sql.rows(
                cur,
                "SELECT 1 FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = %s"
                " AND column_name = %s",
                (table, column),
            ):
                cur.execute(f"ALTER TABLE `{table}` ADD COLUMN IF NOT EXISTS `{column}` {definition}")
                added.append(f"{table}.{column}")
        conn.commit()
        return added
    finally:
        cur.close()


def create_own_tables(conn, s: Settings) -> None:
    cur = conn.cursor()
    try:
        for sql in own_tables_sql(s):
            cur.execute(sql)
        cur.execute(f"INSERT IGNORE INTO `{s.lock_table}` (name) VALUES ('cycle')")
        conn.commit()
    finally:
        cur.close()


def start_cycle(conn, s: Settings, run_id: str, triggered_by: str, run_type: str, request_ids: Sequence[int]) -> None:
    cur = conn.cursor()
    try:
        cur.execute(
            f"INSERT INTO `{s.cycles_table}` (run_id, started_at, triggered_by, run_type, requested_ids, state)"
            " VALUES (%s, %s, %s, %s, %s, 'running') ON DUPLICATE KEY UPDATE state = 'running', finished_at = NULL",
            (run_id, datetime.now(), triggered_by[:255], run_type[:32], json.dumps(list(request_ids))),
        )
        conn.commit()
    finally:
        cur.close()


def record_cycle(conn, s: Settings, run_id: str, summary: dict, state: str = "running") -> None:
    """The cycle's summary so far; any state but 'running' also ends the cycle."""
    cur = conn.cursor()
    try:
        cur.execute(
            f"UPDATE `{s.cycles_table}` SET finished_at = %s, state = %s, summary = %s WHERE run_id = %s",
            (None if state == "running" else datetime.now(), state, json.dumps(summary), run_id),
        )
        conn.commit()
    finally:
        cur.close()


def finish_cycle(conn, s: Settings, run_id: str, summary: dict) -> None:
    record_cycle(conn, s, run_id, summary, "finished")


@dataclass(frozen=True)
class Batch:
    rows: list[dict]
    deferred: int


def approved_requests(conn, s: Settings, request_ids: Sequence[int]) -> Batch:
    """The oldest approved requests (only the asked-for ones, if any), at most the cap."""
    where, params = "status = 'approved'", []
    if request_ids:
        where += f" AND id IN ({sql.marks(len(request_ids))})"
        params = list(request_ids)
    cur = conn.cursor()
    try:
        total = sql.rows(cur, f"SELECT COUNT(*) FROM `{s.requests_table}` WHERE {where}", params)[0][0]
        batch = sql.dict_rows(
            cur,
            f"SELECT {REQUEST_COLUMNS} FROM `{s.requests_table}` WHERE {where}"
            " ORDER BY COALESCE(date_approved, date_created), id LIMIT %s",
            (*params, s.max_requests_per_cycle),
        )
    finally:
        cur.close()
    return Batch(rows=batch, deferred=int(total) - len(batch))


def requests_by_id(conn, s: Settings, ids: Sequence[int]) -> list[dict]:
    found: list[dict] = []
    cur = conn.cursor()
    try:
        for part in sql.chunks(sorted(ids)):
            query = f"SELECT {REQUEST_COLUMNS} FROM `{s.requests_table}` WHERE id IN ({sql.marks(len(part))})"
            found += sql.dict_rows(cur, query, part)
    finally:
        cur.close()
    return found


def requests_with_status(conn, s: Settings, status: str) -> list[dict]:
    cur = conn.cursor()
    try:
        return sql.dict_rows(
            cur, f"SELECT {REQUEST_COLUMNS} FROM `{s.requests_table}` WHERE status = %s ORDER BY id", (status,)
        )
    finally:
        cur.close()


def request_states(conn, s: Settings, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """{request id: (status, digest)} of the requests that still exist; the digest as
    link_children's, a provisioned request's as it had when approved (see fingerprint_sql)."""
    found: dict[int, tuple[str, str]] = {}
    cur = conn.cursor()
    try:
        for part in sql.chunks(sorted(set(ids))):
            for rid, status, digest in sql.rows(
                cur,
                f"SELECT id, status, {fingerprint_sql(provisioned_as_approved=True)} FROM `{s.requests_table}`"
                f" WHERE id IN ({sql.marks(len(part))})",
                part,
            ):
                found[int(rid)] = (str(status), str(digest))
    finally:
        cur.close()
    return found


def auth_emails(conn, s: Settings) -> set[str]:
    """Every email (and username) in the auth table, trimmed and lower-cased."""
    cur = conn.cursor()
    try:
        found = sql.rows(cur, f"SELECT username, parent_email FROM `{s.auth_table}`")
    finally:
        cur.close()
    return {v.strip().lower() for row in found for v in row if v}


def auth_usernames(conn, s: Settings, column: str) -> list[str]:
    """The auth table's usernames exactly as Moodle's user sync reads them: every row, as stored.
    column: auth_db's 'fielduser' setting, a plain column name."""
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", column):
        raise ValueError(f"not a column name: {column!r}")
    cur = conn.cursor()
    try:
        found = sql.rows(cur, f"SELECT `{column}` FROM `{s.auth_table}`")
    finally:
        cur.close()
    return [row[0] for row in found if row[0] is not None]


@dataclass
class Outcome:
    request_id: int
    outcome: str  # collected | provisioned | not_provisioned
    needs_account: bool = False
    reasons: tuple[Reason, ...] = ()
    parent_userid: int | None = None
    linked_children: tuple[tuple[int, int], ...] = ()  # (position on the form, pupil user id)
    attempt: int = 1
    needs_attention: bool = False
    comment_line: str = ""
    fingerprint: str = ""  # of the request as the cycle read it (requests.fingerprint_sql)

    @property
    def reason_key(self) -> str:
        return ",".join(sorted({r.code for r in self.reasons}))[:255]


def write_outcomes(conn, s: Settings, run_id: str, outcomes: Iterable[Outcome]) -> None:
    now = datetime.now()
    rows = [
        (
            run_id,
            o.request_id,
            o.outcome,
            int(o.needs_account),
            json.dumps([r.to_json() for r in o.reasons]),
            o.reason_key,
            o.parent_userid,
            json.dumps([list(c) for c in o.linked_children]),
            o.attempt,
            int(o.needs_attention),
            o.comment_line,
            o.fingerprint or None,
            now,
        )
        for o in outcomes
    ]
    cur = conn.cursor()
    try:
        sql.insert_many(
            cur,
            f"INSERT INTO `{s.outcomes_table}` (run_id, request_id, outcome, needs_account, reasons, reason_key,"
            " parent_userid, linked_children, attempt, needs_attention, comment_line, fingerprint, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
            " outcome = VALUES(outcome), needs_account = VALUES(needs_account), reasons = VALUES(reasons),"
            " reason_key = VALUES(reason_key), parent_userid = VALUES(parent_userid),"
            " linked_children = VALUES(linked_children), attempt = VALUES(attempt),"
            " needs_attention = VALUES(needs_attention), comment_line = VALUES(comment_line),"
            " fingerprint = VALUES(fingerprint), updated_at = VALUES(updated_at)",
            rows,
        )
        conn.commit()
    finally:
        cur.close()


def run_outcomes(conn, s: Settings, run_id: str) -> list[dict]:
    cur = conn.cursor()
    try:
        return sql.dict_rows(
            cur,
            f"SELECT request_id, outcome, needs_account, reasons, reason_key, parent_userid, linked_children,"
            f" attempt, needs_attention, marked_outcome, fingerprint, parent_emailed FROM `{s.outcomes_table}`"
            " WHERE run_id = %s"
            " ORDER BY request_id",
            (run_id,),
        )
    finally:
        cur.close()


def record_parent_email(conn, s: Settings, run_id: str, request_id: int, template_key: str, line: str) -> None:
    """This run emailed this request's parent (so a retry does not again), and the request's line saying so."""
    cur = conn.cursor()
    try:
        cur.execute(
            f"UPDATE `{s.outcomes_table}` SET parent_emailed = %s WHERE run_id = %s AND request_id = %s",
            (template_key, run_id, request_id),
        )
        cur.execute(
            f"UPDATE `{s.requests_table}` SET system_comment = CONCAT_WS('\\n', NULLIF(system_comment, ''), %s)"
            " WHERE id = %s",
            (line, request_id),
        )
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    finally:
        cur.close()


def history(conn, s: Settings, run_id: str, request_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    """Earlier cycles' (outcome, reason_key) per request, oldest first."""
    past: dict[int, list[tuple[str, str]]] = {}
    cur = conn.cursor()
    try:
        for part in sql.chunks(sorted(request_ids)):
            for rid, outcome, key in sql.rows(
                cur,
                f"SELECT request_id, outcome, reason_key FROM `{s.outcomes_table}` WHERE run_id <> %s"
                f" AND marked_outcome IS NOT NULL AND request_id IN ({sql.marks(len(part))}) ORDER BY id",
                (run_id, *part),
            ):
                past.setdefault(int(rid), []).append((outcome, key))
    finally:
        cur.close()
    return past


def attempt_and_attention(past: list[tuple[str, str]], reason_key: str) -> tuple[int, bool]:
    """This is attempt N; flag the request once it has failed the same way ATTENTION_AFTER times."""
    failures = [key for outcome, key in past if outcome != "provisioned"]
    streak = 1
    for key in reversed(failures):
        if key != reason_key:
            break
        streak += 1
    return len(failures) + 1, streak >= ATTENTION_AFTER


def mark(conn, s: Settings, run_id: str, changed_line: str) -> int:
    """Apply this run's outcomes to the requests, in one transaction: provisioned requests
    change status; every request gets this run's line once, however often this runs.

    A request staff changed after `link_children` read it (its deciding columns' digest differs, or
    it is no longer approved) is not marked on stale data: its outcome becomes
    `changed_during_cycle` with `changed_line` as its comment, and the next cycle takes it up. The
    requests are locked first, so a staff edit waits for this transaction or comes after it."""
    now = datetime.now()
    cur = conn.cursor()
    try:
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
        cur.execute(
            f"UPDATE `{s.requests_table}` r JOIN `{s.outcomes_table}` o ON o.request_id = r.id AND o.run_id = %s"
            " SET r.status = IF(o.outcome = 'provisioned', 'provisioned', r.status),"
            " r.provisioned_username = IF(o.outcome = 'provisioned', LOWER(TRIM(r.parent_email)),"
            " r.provisioned_username),"
            " r.date_updated = %s,"
            " r.system_comment = CONCAT_WS('\\n', NULLIF(r.system_comment, ''), o.comment_line)"
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
        conn.commit()
        return updated
    except Exception:
        conn.rollback()
        raise
    finally:
        cur.close()
