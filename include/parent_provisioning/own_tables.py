"""The project's own tables in the WordPress database: the cycles, each request's outcome in each
cycle (its history), and the cycle lock's row. They live beside the plugin's two tables so that
marking a request and recording that it was marked happen in one transaction; they are created
when missing and upgraded in place. The cycle lock's use of its table is cycle_lock.py's."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from include.parent_provisioning import sql
from include.parent_provisioning.outcomes import Outcome
from include.parent_provisioning.settings import Settings

TABLE_OPTIONS = "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
CYCLES_COLUMNS = """
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
"""
OUTCOMES_COLUMNS = """
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
"""
LOCK_COLUMNS = """
  `name` varchar(32) NOT NULL,
  `run_id` varchar(250) NOT NULL DEFAULT '',
  `deployment` varchar(64) NOT NULL DEFAULT '',
  `holder` varchar(255) NOT NULL DEFAULT '',
  `acquired_at` datetime NULL,
  `expires_at` datetime NULL,
  `claims` bigint(20) NOT NULL DEFAULT 0,
  PRIMARY KEY (`name`)
"""
# Columns added to the project's own tables since their first release: (table property, column, definition).
ADDED_COLUMNS = (
    ("outcomes_table", "fingerprint", "char(64) NULL AFTER `marked_outcome`"),
    ("outcomes_table", "parent_emailed", "varchar(64) NULL AFTER `fingerprint`"),
)


def own_tables_sql(s: Settings) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS `{table}` ({columns}) {TABLE_OPTIONS}"
        for table, columns in (
            (s.cycles_table, CYCLES_COLUMNS),
            (s.outcomes_table, OUTCOMES_COLUMNS),
            (s.lock_table, LOCK_COLUMNS),
        )
    ]


def missing_tables(conn, s: Settings) -> list[str]:
    """The plugin's tables and the project's own that the WordPress database lacks."""
    names = (s.requests_table, s.auth_table, s.cycles_table, s.outcomes_table, s.lock_table)
    with sql.cursor(conn) as cur:
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


def upgrade_own_tables(conn, s: Settings) -> list[str]:
    """Add the columns a deployment made by an earlier version lacks; returns what was added."""
    added = []
    with sql.cursor(conn) as cur:
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


def create_own_tables(conn, s: Settings) -> None:
    with sql.cursor(conn) as cur:
        for statement in own_tables_sql(s):
            cur.execute(statement)
        cur.execute(f"INSERT IGNORE INTO `{s.lock_table}` (name) VALUES ('cycle')")
        conn.commit()


def dict_rows_if_present(conn, query: str, params: Sequence = ()) -> list[dict]:
    """Rows as dicts, none when a table is missing: the screens are shown before the first cycle
    has made the project's own tables."""
    with sql.cursor(conn) as cur:
        try:
            return sql.dict_rows(cur, query, params)
        except Exception as exc:
            if sql.error_code(exc) == sql.ER_NO_SUCH_TABLE:
                return []
            raise


# Cycles -------------------------------------------------------------------------------


def start_cycle(conn, s: Settings, run_id: str, triggered_by: str, run_type: str, request_ids: Sequence[int]) -> None:
    with sql.cursor(conn) as cur:
        cur.execute(
            f"INSERT INTO `{s.cycles_table}` (run_id, started_at, triggered_by, run_type, requested_ids, state)"
            " VALUES (%s, %s, %s, %s, %s, 'running') ON DUPLICATE KEY UPDATE state = 'running', finished_at = NULL",
            (run_id, datetime.now(), triggered_by[:255], run_type[:32], json.dumps(list(request_ids))),
        )
        conn.commit()


def record_cycle(conn, s: Settings, run_id: str, summary: dict, state: str = "running") -> None:
    """The cycle's summary so far; any state but 'running' also ends the cycle."""
    with sql.cursor(conn) as cur:
        cur.execute(
            f"UPDATE `{s.cycles_table}` SET finished_at = %s, state = %s, summary = %s WHERE run_id = %s",
            (None if state == "running" else datetime.now(), state, json.dumps(summary), run_id),
        )
        conn.commit()


def finish_cycle(conn, s: Settings, run_id: str, summary: dict) -> None:
    record_cycle(conn, s, run_id, summary, "finished")


def recent_cycles(conn, s: Settings, limit: int = 10) -> list[dict]:
    return dict_rows_if_present(
        conn,
        f"SELECT run_id, started_at, finished_at, state, triggered_by, run_type, dry_run, summary"
        # Two cycles may start within one second: the run id (its time to the microsecond) orders them then.
        f" FROM `{s.cycles_table}` ORDER BY started_at DESC, run_id DESC LIMIT %s",
        (limit,),
    )


# Outcomes -----------------------------------------------------------------------------


def _outcome_row(run_id: str, o: Outcome, now: datetime) -> tuple:
    return (
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


def write_outcomes(conn, s: Settings, run_id: str, outcomes: Iterable[Outcome]) -> None:
    now = datetime.now()
    rows = [_outcome_row(run_id, o, now) for o in outcomes]
    with sql.cursor(conn) as cur:
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


RUN_OUTCOME_COLUMNS = (
    "request_id, outcome, needs_account, reasons, reason_key, parent_userid, linked_children, attempt,"
    " needs_attention, marked_outcome, fingerprint, parent_emailed"
)


def run_outcomes(
    conn, s: Settings, run_id: str, request_ids: Iterable[int] | None = None, columns: str = RUN_OUTCOME_COLUMNS
) -> list[dict]:
    """This run's outcome rows, by request id; request_ids: only theirs; columns: only these (from this code)."""
    query = f"SELECT {columns} FROM `{s.outcomes_table}` WHERE run_id = %s"
    with sql.cursor(conn) as cur:
        if request_ids is None:
            return sql.dict_rows(cur, f"{query} ORDER BY request_id", (run_id,))
        found: list[dict] = []
        for part in sql.chunks(sorted(set(request_ids))):
            found += sql.dict_rows(
                cur, f"{query} AND request_id IN ({sql.marks(len(part))}) ORDER BY request_id", (run_id, *part)
            )
        return found


def needing_account(conn, s: Settings, run_id: str) -> set[int]:
    """The requests this run found needing a new Moodle account."""
    with sql.cursor(conn) as cur:
        return {
            int(rid)
            for (rid,) in sql.rows(
                cur, f"SELECT request_id FROM `{s.outcomes_table}` WHERE run_id = %s AND needs_account = 1", (run_id,)
            )
        }


def note_parent_emailed(cur, s: Settings, run_id: str, request_id: int, template_key: str) -> None:
    """This run emailed this request's parent: a retry of the run does not again."""
    cur.execute(
        f"UPDATE `{s.outcomes_table}` SET parent_emailed = %s WHERE run_id = %s AND request_id = %s",
        (template_key, run_id, request_id),
    )


def request_outcomes(conn, s: Settings, request_id: int) -> list[dict]:
    """A request's outcome in every cycle that took it up, latest first (its screen's history)."""
    return dict_rows_if_present(
        conn,
        f"SELECT run_id, outcome, reasons, reason_key, linked_children, attempt, needs_attention, updated_at"
        f" FROM `{s.outcomes_table}` WHERE request_id = %s ORDER BY id DESC",
        (request_id,),
    )


def needing_attention(conn, s: Settings, limit: int = 200) -> list[dict]:
    """Approved requests whose latest cycle flagged them as failing the same way repeatedly."""
    return dict_rows_if_present(
        conn,
        f"SELECT o.request_id, o.reason_key, o.attempt FROM `{s.outcomes_table}` o"
        f" JOIN `{s.requests_table}` r ON r.id = o.request_id AND r.status = 'approved'"
        f" WHERE o.needs_attention = 1"
        f" AND o.id = (SELECT MAX(id) FROM `{s.outcomes_table}` WHERE request_id = o.request_id)"
        " ORDER BY o.request_id LIMIT %s",
        (limit,),
    )


# History ------------------------------------------------------------------------------


def history(conn, s: Settings, run_id: str, request_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    """Earlier cycles' (outcome, reason_key) per request, oldest first."""
    past: dict[int, list[tuple[str, str]]] = {}
    with sql.cursor(conn) as cur:
        for part in sql.chunks(sorted(request_ids)):
            for rid, outcome, key in sql.rows(
                cur,
                f"SELECT request_id, outcome, reason_key FROM `{s.outcomes_table}` WHERE run_id <> %s"
                f" AND marked_outcome IS NOT NULL AND request_id IN ({sql.marks(len(part))}) ORDER BY id",
                (run_id, *part),
            ):
                past.setdefault(int(rid), []).append((outcome, key))
    return past
