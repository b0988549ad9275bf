"""The WordPress plugin's provisioning loop, replayed statement for statement (benchmark only).

What it reproduces: the database side of one provisioning cycle of the plugin *TVS Moodle
Parent Provisioning*, as `TVS_PMP_Provisioner::provision_all_approved()` and
`provision_request()` in `includes/class.tvs-pmp-provisioner.php` run it, with the helpers they
call (`TVS_PMP_Request::load_all_approved()`, `append_system_comment()` and `save()` in
`includes/class.tvs-pmp-request.php`; the role assignment, context and mnethostid statements of
`includes/class.tvs-pmp-mdl-db-helper.php` and `includes/class.tvs-pmp-mdl-user.php`). It is
new Python written for the benchmark: same tables, same WHERE clauses, same order, one request
at a time, one statement per look-up, insert or update, each sent on its own (autocommit), as
the plugin's mysqli (Moodle) and wpdb (WordPress) calls send them. The Moodle scheduled tasks,
emails and logging are left out; the benchmark measures those separately.

Per cycle: one SELECT of every approved request (WordPress), and per request, in order:

1. (only with `check_auth_table=True`) the auth row by email (WordPress). The plugin has
   `auth_table_entry_exists()` but its provisioning loop never calls it.
2. the parent's user id: auth = 'db', firstname = "<title> <first name>", lastname, email and
   username = the request's email, taken as stored (Moodle). Not found: the request gets one
   comment UPDATE (system_comment, date_updated) and stays approved.
3. the local mnet host id by wwwroot (Moodle), again for every request: the plugin's cache of
   it is never filled. Then UPDATE of the user's mnethostid (Moodle).
4. for each static context: the role assignment, INSERT if missing (Moodle).
5. for each child whose first name, surname and tutor group are all non-empty: the pupil
   match (firstname, lastname, department, deleted = 0); if exactly one: the user context
   (contextlevel 30, depth 2), INSERT if missing; the role assignment, INSERT if missing
   (Moodle). A first child with an empty field ends the request like step 2, after steps 3-4.
6. a comment UPDATE (system_comment, date_updated), then `save()`: an UPDATE of the 19 columns
   it writes (not system_comment, staff_comment, date_approved or provisioned_username). Status
   becomes 'provisioned' only if every named child was linked; otherwise it stays approved
   with a "partial success" comment, and is retried every cycle.

wpdb reads a table's column definitions (`SHOW FULL COLUMNS`) once per process before its first
`update()` on that table, so the replay sends that statement once too (it is in "statements";
MariaDB's USER_STATISTICS leaves SHOW commands out, so the server's figure is one lower).

Weak spots kept on purpose, because the benchmark compares against them:
- pupils are matched among all users (staff, parents, suspended pupils), not the pupil cohort;
  only a second match is refused;
- a tutor group that trims to '' or '0' is dropped from the match (PHP's falsy strings);
- contexts it inserts have no path, and only depth-2 contexts are looked for;
- the parent's email is used as stored (no trim, no lower-casing): only the columns'
  case-insensitive, trailing-space-blind collation rescues a messy one, a leading space
  never finds the account; several accounts matching: the first is used;
- `provisioned_username` is never written, and failed or partial requests are retried with no
  limit, gaining a comment line every cycle;
- the access cache is never marked dirty; a database error ends the whole cycle (PHP 8.1's
  mysqli raises), here as the driver's exception.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from testbed.demo_data import REQUEST_COLS

_PREFIX = re.compile(r"[A-Za-z0-9_]+")
_PHP_TRIM = " \t\n\r\0\x0b"
_STRIPSLASHES = re.compile(r"\\(.?)", re.DOTALL)
_AUTH_PLUGIN = "db"
_CONTEXT_USER = 30
_USER_CONTEXT_DEPTH = 2

_REQUEST_COLUMNS = REQUEST_COLS  # every column of the requests table, in its order
# What TVS_PMP_Request::save() writes, in its order.
_SAVED_COLUMNS = (
    "parent_title", "parent_fname", "parent_sname", "child_fname", "child_sname", "child_tg",
    "parent_email", "child2_fname", "child2_sname", "child2_tg", "child3_fname", "child3_sname",
    "child3_tg", "parent_comment", "date_created", "date_updated", "status", "remote_ip_addr",
    "request_type",
)  # fmt: skip
_CHILDREN = (("child_fname", "child_sname", "child_tg"), ("child2_fname", "child2_sname", "child2_tg"),
             ("child3_fname", "child3_sname", "child3_tg"))  # fmt: skip


def replay(
    wp_conn,
    mdl_conn,
    *,
    wp_prefix: str,
    mdl_prefix: str,
    parent_role_id: int,
    static_context_ids: tuple[int, ...] = (),
    modifier_id: int = 2,
    mnet_host_id: int = 1,
    moodle_wwwroot: str | None = None,
    check_auth_table: bool = False,
    firstname_surname_only: bool = False,
    trace: list | None = None,
) -> dict:
    """Run the plugin's statements for every approved request; return what it did.

    wp_conn, mdl_conn: open MySQLdb connections (autocommit is switched on if it is off, which
    is one more statement). moodle_wwwroot: the plugin's "Moodle URL" setting, looked up in
    mnet_host for every request; when None, the wwwroot of mnet host `mnet_host_id` is read once
    first (one extra statement, standing in for WordPress's autoloaded option).
    check_auth_table: also run the plugin's unused auth row check (a request without one is
    then commented and skipped). firstname_surname_only: the plugin's "match by" setting.
    trace: if a list, gets one (database, sql, params) tuple per statement.

    Returns {"requests", "provisioned", "not_provisioned", "children_linked",
    "role_assignments_added", "contexts_added", "statements"}.
    """
    for prefix in (wp_prefix, mdl_prefix):
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"table prefix {prefix!r}: letters, digits and '_' only")
    run = _Replay(
        wp_conn,
        mdl_conn,
        wp_prefix,
        mdl_prefix,
        parent_role_id=parent_role_id,
        static_context_ids=tuple(int(c) for c in static_context_ids if int(c) > 0),
        modifier_id=modifier_id,
        check_auth_table=check_auth_table,
        firstname_surname_only=firstname_surname_only,
        trace=trace,
    )
    return run.cycle(mnet_host_id, moodle_wwwroot)


class _Replay:
    def __init__(self, wp_conn, mdl_conn, wp_prefix, mdl_prefix, **options):
        self.wp, self.mdl = wp_conn, mdl_conn
        self.wp_cur, self.mdl_cur = wp_conn.cursor(), mdl_conn.cursor()
        self.role_id = options["parent_role_id"]
        self.static_contexts = options["static_context_ids"]
        self.modifier_id = options["modifier_id"]
        self.check_auth_table = options["check_auth_table"]
        self.name_only = options["firstname_surname_only"]
        self.trace = options["trace"]
        self.requests_table = f"{wp_prefix}tvs_parent_moodle_provisioning"
        self.auth_table = f"{wp_prefix}tvs_parent_moodle_provisioning_auth"
        self.user, self.context = f"{mdl_prefix}user", f"{mdl_prefix}context"
        self.role_assignments, self.mnet_host = f"{mdl_prefix}role_assignments", f"{mdl_prefix}mnet_host"
        self.described_tables: set[str] = set()
        self.counts = dict.fromkeys(
            ("requests", "provisioned", "not_provisioned", "children_linked", "role_assignments_added",
             "contexts_added", "statements"), 0)  # fmt: skip

    # --- sending --------------------------------------------------------------------------------
    def _send(self, db: str, sql: str, params: tuple | None = None):
        cur = self.wp_cur if db == "wordpress" else self.mdl_cur
        cur.execute(sql, params)
        self.counts["statements"] += 1
        if self.trace is not None:
            self.trace.append((db, sql, params))
        return cur

    def _ensure_autocommit(self) -> None:
        for db, conn in (("wordpress", self.wp), ("moodle", self.mdl)):
            if not conn.get_autocommit():
                conn.autocommit(True)  # the client library sends SET autocommit=1
                self.counts["statements"] += 1
                if self.trace is not None:
                    self.trace.append((db, "SET autocommit=1", None))

    # --- the cycle ------------------------------------------------------------------------------
    def cycle(self, mnet_host_id: int, wwwroot: str | None) -> dict:
        self._ensure_autocommit()
        if wwwroot is None:
            sql = f"SELECT wwwroot FROM {self.mnet_host} WHERE id = %s"
            row = self._send("moodle", sql, (mnet_host_id,)).fetchone()
            wwwroot = row[0] if row else ""
        for request in self._load_all_approved():
            self.counts["requests"] += 1
            if self._provision(request, wwwroot):
                self.counts["provisioned"] += 1
        self.counts["not_provisioned"] = self.counts["requests"] - self.counts["provisioned"]
        self.wp_cur.close()
        self.mdl_cur.close()
        return dict(self.counts)

    def _load_all_approved(self) -> list[dict]:
        sql = f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM {self.requests_table} WHERE status = %s"
        return [dict(zip(_REQUEST_COLUMNS, row, strict=True)) for row in self._send("wordpress", sql, ("approved",))]

    def _provision(self, request: dict, wwwroot: str) -> bool:
        """One request, as provision_request(); True if it ends 'provisioned'."""
        if self.check_auth_table and not self._auth_row_exists(request["parent_email"]):
            self._append_system_comment(request, f"Not provisioned at {_now_text()}: no auth table entry.")
            return False
        parent_id = self._moodle_user_id(request)
        if not parent_id:
            self._append_system_comment(
                request, f"Not provisioned at {_now_text()}: no Moodle user found for this request."
            )
            return False
        self._set_mnethostid(parent_id, self._local_mnethostid(wwwroot))
        for context_id in self.static_contexts:
            self._assign_once(parent_id, context_id)

        every_child_linked = True
        for number, (fname_col, sname_col, tg_col) in enumerate(_CHILDREN):
            fname, sname, tg = (request[fname_col] or "", request[sname_col] or "", request[tg_col] or "")
            if fname and sname and tg:
                if self._connect_pupil(parent_id, fname, sname, tg):
                    self.counts["children_linked"] += 1
                else:
                    every_child_linked = False
            elif number == 0:
                self._append_system_comment(request, f"Not provisioned at {_now_text()}: the first child is missing.")
                return False

        if every_child_linked:
            self._append_system_comment(request, f"Provisioned at {_now_text()}.")
            request["status"] = "provisioned"
        else:
            self._append_system_comment(request, f"Partly provisioned at {_now_text()}: a child was not linked.")
        self._save(request)
        return every_child_linked

    # --- WordPress ------------------------------------------------------------------------------
    def _auth_row_exists(self, email: str) -> bool:
        if not (email or "").isascii():
            self._describe_table(self.auth_table)  # wpdb checks a non-ASCII query's collation
        sql = f"SELECT * FROM {self.auth_table} WHERE parent_email = %s"
        return self._send("wordpress", sql, (email,)).fetchone() is not None

    def _describe_table(self, table: str) -> None:
        if table not in self.described_tables:
            self.described_tables.add(table)
            self._send("wordpress", f"SHOW FULL COLUMNS FROM `{table}`").fetchall()

    def _update_request(self, request_id: int, values: dict) -> None:
        """wpdb::update(): every value a quoted string, the id a number."""
        self._describe_table(self.requests_table)
        assignments = ", ".join(f"`{column}` = %s" for column in values)
        sql = f"UPDATE `{self.requests_table}` SET {assignments} WHERE `id` = %s"
        self._send("wordpress", sql, (*values.values(), int(request_id)))

    def _append_system_comment(self, request: dict, comment: str) -> None:
        request["system_comment"] = f"{request['system_comment'] or ''}\n{comment}"
        self._update_request(request["id"], {"system_comment": request["system_comment"], "date_updated": _now_sql()})

    def _save(self, request: dict) -> None:
        values = {}
        for column in _SAVED_COLUMNS:
            if column == "date_updated":
                values[column] = _now_sql()
            elif column == "date_created":
                values[column] = _php_datetime(request[column])
            elif column == "parent_email":
                values[column] = _stripslashes(_php_strtolower(request[column]))
            elif column.endswith("_tg"):
                values[column] = _stripslashes(_php_substr(request[column], 15))
            else:
                values[column] = _stripslashes(request[column])
        self._update_request(request["id"], values)

    # --- Moodle ---------------------------------------------------------------------------------
    def _moodle_user_id(self, request: dict) -> int:
        sql = (
            f"SELECT id FROM {self.user}"
            " WHERE auth = %s AND firstname = %s AND lastname = %s AND email = %s AND username = %s"
        )
        firstname = f"{request['parent_title']} {request['parent_fname']}"
        email = request["parent_email"]
        row = self._send("moodle", sql, (_AUTH_PLUGIN, firstname, request["parent_sname"], email, email)).fetchone()
        return int(row[0]) if row else 0

    def _local_mnethostid(self, wwwroot: str) -> int:
        sql = f"SELECT id FROM {self.mnet_host} WHERE wwwroot = %s"
        row = self._send("moodle", sql, (wwwroot.rstrip("/\\"),)).fetchone()
        return int(row[0]) if row else 0

    def _set_mnethostid(self, user_id: int, mnethostid: int) -> None:
        sql = f"UPDATE {self.user} SET mnethostid = %s WHERE auth = %s AND id = %s"
        self._send("moodle", sql, (mnethostid, _AUTH_PLUGIN, user_id))

    def _assign_once(self, user_id: int, context_id: int) -> int:
        """get_role_assignment(), then add_role_assignment() if there was none; the id."""
        sql = f"SELECT id FROM {self.role_assignments} WHERE roleid = %s AND contextid = %s AND userid = %s"
        row = self._send("moodle", sql, (self.role_id, context_id, user_id)).fetchone()
        if row:
            return int(row[0])
        sql = (
            f"INSERT INTO {self.role_assignments}"
            " ( roleid, contextid, userid, timemodified, modifierid, component, itemid, sortorder )"
            " VALUES ( %s, %s, %s, %s, %s, %s, %s, %s )"
        )
        cur = self._send(
            "moodle", sql, (self.role_id, context_id, user_id, int(time.time()), self.modifier_id, "", 0, 0)
        )
        self.counts["role_assignments_added"] += 1
        return int(cur.lastrowid or 0)

    def _connect_pupil(self, parent_id: int, fname: str, sname: str, tg: str) -> bool:
        fname, sname, tg = fname.strip(_PHP_TRIM), sname.strip(_PHP_TRIM), tg.strip(_PHP_TRIM)
        columns = "id, auth, firstname, lastname, email, department"
        if tg not in ("", "0") and not self.name_only:
            sql = f"SELECT {columns} FROM {self.user} WHERE firstname = %s AND lastname = %s AND department = %s AND deleted = %s"  # noqa: E501
            params: tuple = (fname, sname, tg, 0)
        else:
            sql = f"SELECT {columns} FROM {self.user} WHERE firstname = %s AND lastname = %s AND deleted = %s"
            params = (fname, sname, 0)
        matches = self._send("moodle", sql, params).fetchall()
        if len(matches) != 1:
            return False  # none, or ambiguous: the plugin refuses both
        pupil_id = int(matches[0][0])

        sql = f"SELECT id FROM {self.context} WHERE contextlevel = %s AND instanceid = %s AND depth = %s"
        row = self._send("moodle", sql, (_CONTEXT_USER, pupil_id, _USER_CONTEXT_DEPTH)).fetchone()
        if row:
            context_id = int(row[0])
        else:
            sql = f"INSERT INTO {self.context} (contextlevel, instanceid, depth) VALUES (%s, %s, %s)"
            context_id = int(self._send("moodle", sql, (_CONTEXT_USER, pupil_id, _USER_CONTEXT_DEPTH)).lastrowid or 0)
            self.counts["contexts_added"] += 1
        return self._assign_once(parent_id, context_id) > 0


# --- PHP's string functions, as save() applies them ----------------------------------------------
def _stripslashes(value) -> str:
    if value is None:
        return ""
    return _STRIPSLASHES.sub(lambda m: "\0" if m.group(1) == "0" else m.group(1), str(value))


def _php_strtolower(value) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in (value or ""))


def _php_substr(value, length: int) -> str:
    """substr() counts bytes; wpdb then drops a cut-off UTF-8 sequence."""
    return (value or "").encode()[:length].decode(errors="ignore")


def _php_datetime(value) -> str:
    if value is None:
        return "0000-00-00 00:00:00"  # the driver reads MySQL's zero date as None
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value)


def _now_sql() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")  # WordPress runs PHP in UTC


def _now_text() -> str:
    return datetime.now(UTC).strftime("%d %B %Y %H:%M")
