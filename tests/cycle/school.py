"""A small, explicit school for the cycle's tests: each pupil, staff member, parent and
request written by hand, so a test says exactly what it is about."""

from __future__ import annotations

import itertools
import json
import os
import threading
from contextlib import contextmanager
from datetime import datetime

from testbed import mariadb
from tests.testbed.helpers import moodle_exec, moodle_rows

_ids = itertools.count(1000)


class School:
    def __init__(self, bed):
        self.cfg = bed.cfg
        self.p = bed.cfg.moodle_prefix
        conn = mariadb.admin_connect(self.cfg.moodle_db)
        try:
            with mariadb.cursor(conn) as cur:
                cur.execute(
                    f"INSERT INTO `{self.p}cohort` (contextid, name, idnumber, descriptionformat, timecreated,"
                    " timemodified) VALUES (1, 'Pupils', 'pupils', 1, 0, 0)"
                )
                self.cohort_id = cur.lastrowid
        finally:
            conn.close()

    # Moodle side -------------------------------------------------------------------
    def _moodle(self, sql, params=()):
        return moodle_exec(self.cfg, sql, params)

    def user(
        self, first, last, dept="", auth="manual", email=None, username=None, suspended=0, deleted=0, context=True
    ) -> int:
        n = next(_ids)
        uid = self._moodle(
            "INSERT INTO {user} (auth, confirmed, mnethostid, username, firstname, lastname, email, department,"
            " suspended, deleted) VALUES (%s, 1, 1, %s, %s, %s, %s, %s, %s, %s)",
            (auth, username or f"u{n}", first, last, email or f"u{n}@school.test", dept, suspended, deleted),
        )
        if context:
            ctx = self._moodle(
                "INSERT INTO {context} (contextlevel, instanceid, depth, path) VALUES (30, %s, 2, NULL)", (uid,)
            )
            self._moodle("UPDATE {context} SET path=%s WHERE id=%s", (f"/1/{ctx}", ctx))
        return uid

    def pupil(self, first, last, tg, **kw) -> int:
        uid = self.user(first, last, tg, email=f"p{next(_ids)}@pupils.school.test", **kw)
        self._moodle(
            "INSERT INTO {cohort_members} (cohortid, userid, timeadded) VALUES (%s, %s, 0)", (self.cohort_id, uid)
        )
        return uid

    def staff(self, first, last) -> int:
        return self.user(first, last, "Staff")

    def parent_account(self, email, first="Pat", last="Parent") -> int:
        return self.user(first, last, auth="db", email=email, username=email)

    def context_of(self, uid):
        rows = self.moodle_rows("SELECT * FROM {context} WHERE contextlevel=30 AND instanceid=%s", (uid,))
        return rows[0] if rows else None

    def moodle_rows(self, sql, params=()):
        return moodle_rows(self.cfg, sql, params)

    def links(self, parent_uid) -> set[int]:
        """The pupils (user ids) in whose user context this parent holds the Parent role."""
        rows = self.moodle_rows(
            "SELECT c.instanceid FROM {role_assignments} ra JOIN {context} c ON c.id=ra.contextid"
            " JOIN {role} r ON r.id=ra.roleid WHERE r.shortname='parent' AND c.contextlevel=30 AND ra.userid=%s",
            (parent_uid,),
        )
        return {r["instanceid"] for r in rows}

    def account(self, email):
        rows = self.moodle_rows("SELECT * FROM {user} WHERE username=%s AND deleted=0", (email,))
        return rows[0] if rows else None

    # WordPress side ----------------------------------------------------------------
    def request(
        self,
        email,
        children,
        status="approved",
        auth=True,
        title="Mrs",
        fname="Ann",
        sname="Lee",
        request_type="I do not currently have a Moodle Account.",
        **columns,
    ) -> int:
        """children: up to three (first, surname, tutor group) tuples (None: a NULL column).
        columns: any other column of the requests table, as the form or a legacy row left it."""
        kids = list(children) + [("", "", "")] * (3 - len(children))
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        row = {
            "parent_title": title,
            "parent_fname": fname,
            "parent_sname": sname,
            "parent_email": email,
            "status": status,
            "system_comment": f"{now} Request received.",
            "date_created": now,
            "date_approved": now if status == "approved" else None,
            "remote_ip_addr": "203.0.113.9",
            "request_type": request_type,
        }
        for prefix, kid in zip(("child", "child2", "child3"), kids, strict=True):
            row.update(zip((f"{prefix}_fname", f"{prefix}_sname", f"{prefix}_tg"), kid, strict=True))
        row.update(columns)
        conn = mariadb.admin_connect(self.cfg.wp_db)
        try:
            with mariadb.cursor(conn) as cur:
                cur.execute(
                    f"INSERT INTO `{self.cfg.wp_requests_table}` ({', '.join(row)})"
                    f" VALUES ({', '.join(['%s'] * len(row))})",
                    tuple(row.values()),
                )
                rid = cur.lastrowid
                if auth:
                    clean = email.strip().lower()
                    # As WordPress stores it: its connection is not strict, so a long name is cut to the column.
                    cur.execute(
                        f"INSERT INTO `{self.cfg.wp_auth_table}` (username, parent_title, parent_fname, parent_sname,"
                        " parent_email, description, request_id) VALUES (%s,%s,%s,%s,%s,'Parent Moodle Account',%s)",
                        (clean, title, f"{title} {fname}"[:255], sname, clean, rid),
                    )
        finally:
            conn.close()
        return rid

    def _wp_sql(self, sql: str) -> str:
        return (
            sql.replace("{req}", self.cfg.wp_requests_table)
            .replace("{auth}", self.cfg.wp_auth_table)
            .replace("{out}", f"{self.cfg.wp_prefix}parent_provisioning_outcomes")
            .replace("{cycles}", f"{self.cfg.wp_prefix}parent_provisioning_cycles")
            .replace("{lock}", f"{self.cfg.wp_prefix}parent_provisioning_lock")
        )

    def wp_rows(self, sql, params=()):
        conn = mariadb.admin_connect(self.cfg.wp_db)
        try:
            cur = conn.cursor(mariadb.MySQLdb.cursors.DictCursor)
            cur.execute(self._wp_sql(sql), params)
            return list(cur.fetchall())
        finally:
            conn.close()

    def wp_exec(self, sql, params=()) -> None:
        conn = mariadb.admin_connect(self.cfg.wp_db)
        try:
            with mariadb.cursor(conn) as cur:
                cur.execute(self._wp_sql(sql), params)
        finally:
            conn.close()

    def req(self, rid) -> dict:
        return self.wp_rows("SELECT * FROM {req} WHERE id=%s", (rid,))[0]


def settings_for(bed, **overrides) -> dict:
    value = {
        "moodle_dir": str(bed.cfg.moodle_dir),
        "php_path": str(bed.cfg.php_path),
        "pupil_filter": {"by": "cohort", "value": "pupils"},
        "moodle_task_timeout_s": 60,
    }
    value.update(overrides)
    return value


def use_settings(bed, **overrides) -> None:
    os.environ["AIRFLOW_VAR_MOODLE_PARENT_PROVISIONING"] = json.dumps(settings_for(bed, **overrides))


def snapshot(bed) -> dict:
    """Every row of both databases, to prove a dry run wrote nothing."""
    out = {}
    for db in (bed.cfg.wp_db, bed.cfg.moodle_db):
        conn = mariadb.admin_connect(db)
        try:
            cur = conn.cursor()
            cur.execute("SHOW TABLES")
            for (table,) in cur.fetchall():
                cur.execute(f"SELECT * FROM `{table}` ORDER BY 1")
                out[f"{db}.{table}"] = cur.fetchall()
        finally:
            conn.close()
    return out


@contextmanager
def in_the_background(action):
    """action(stop), in a thread while the block runs (a DAG run, say); `stop` is set when the block
    ends, and the block's end waits for the thread."""
    stop = threading.Event()
    thread = threading.Thread(target=action, args=(stop,))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
