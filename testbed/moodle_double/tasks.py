"""The two scheduled tasks, doing to the database what Moodle's own code does.

Sources followed: auth/db/auth.php sync_users(), auth/db/classes/task/sync_users.php,
lib/classes/task/send_new_user_passwords_task.php, user/lib.php user_create_user(),
lib/moodlelib.php clean_param(PARAM_USERNAME) and truncate_userinfo(), and
context::insert_context_record().
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sys
import time
from pathlib import Path

import MySQLdb

FAULTS_FILE = "moodle_double_faults.json"
EMAILS_FILE = "emails.jsonl"
CONTEXT_SYSTEM, CONTEXT_USER = 10, 30
# truncate_userinfo(): the user fields auth_db may fill, capped at their column lengths.
FIELD_LIMITS = {"username": 100, "firstname": 100, "lastname": 100, "email": 100}


class MoodleDb:
    """Moodle's $DB: autocommit, as Moodle runs outside explicit transactions here."""

    def __init__(self, host, port, user, password, name, prefix):
        self.conn = MySQLdb.connect(
            host=host,
            port=port,
            user=user,
            password=password,
            database=name,
            charset="utf8mb4",
            autocommit=True,
        )
        self.prefix = prefix
        self.queries = 0

    def q(self, sql: str, params=()) -> list[dict]:
        self.queries += 1
        cur = self.conn.cursor(MySQLdb.cursors.DictCursor)
        cur.execute(sql.replace("{", self.prefix).replace("}", ""), params)
        rows = list(cur.fetchall()) if cur.description else []
        self.lastrowid = cur.lastrowid
        cur.close()
        return rows

    def get_config(self, name: str, plugin: str | None = None) -> str | None:
        if plugin:
            rows = self.q("SELECT value FROM {config_plugins} WHERE plugin=%s AND name=%s", (plugin, name))
        else:
            rows = self.q("SELECT value FROM {config} WHERE name=%s", (name,))
        return rows[0]["value"] if rows else None

    def plugin_config(self, plugin: str) -> dict[str, str]:
        rows = self.q("SELECT name, value FROM {config_plugins} WHERE plugin=%s", (plugin,))
        return {r["name"]: r["value"] for r in rows}

    def set_user_preference(self, userid: int, name: str, value: str) -> None:
        self.q(
            "INSERT INTO {user_preferences} (userid, name, value) VALUES (%s, %s, %s)"
            " ON DUPLICATE KEY UPDATE value=VALUES(value)",
            (userid, name, value),
        )

    def rollback(self) -> None:
        with contextlib.suppress(MySQLdb.Error):
            self.conn.rollback()


class Faults:
    """Failures a test switches on for one task: throw, hang, crash_after, email_fail, not_installed.

    `times` (default: until cleared) counts how many runs the fault lasts, so a test
    can check that a retry succeeds once Moodle is healthy again.
    """

    def __init__(self, dataroot: Path, classname: str):
        self.path = dataroot / FAULTS_FILE
        self.classname = classname
        self.spec: dict = {}
        if self.path.exists():
            allfaults = json.loads(self.path.read_text() or "{}")
            self.spec = dict(allfaults.get(classname) or {})
            if self.spec and "times" in self.spec:
                remaining = int(self.spec["times"]) - 1
                if remaining <= 0:
                    allfaults.pop(classname)
                else:
                    allfaults[classname]["times"] = remaining
                self.path.write_text(json.dumps(allfaults))

    @staticmethod
    def peek(dataroot: Path, classname: str) -> dict:
        """The fault switched on for this task, without counting a run: `not_installed` (the
        task's plugin is missing, so the CLI does not know it) stops the CLI before any run."""
        path = dataroot / FAULTS_FILE
        return dict(json.loads(path.read_text() or "{}").get(classname) or {}) if path.exists() else {}

    def at_start(self) -> None:
        if "hang" in self.spec:
            time.sleep(float(self.spec["hang"]))
        if "throw" in self.spec:
            raise RuntimeError(self.spec["throw"])

    def after_unit(self, done: int) -> None:
        """Called after each user is fully processed: a fatal error kills PHP there."""
        limit = self.spec.get("crash_after")
        if limit is not None and done >= int(limit):
            sys.stdout.flush()
            print(
                "PHP Fatal error:  Allowed memory size of 134217728 bytes exhausted "
                "(tried to allocate 20480 bytes) in lib/dml/moodle_database.php on line 1422",
                file=sys.stderr,
                flush=True,
            )
            os._exit(255)


def clean_username(value: str, extended: bool) -> str:
    """clean_param($value, PARAM_USERNAME)."""
    value = value.strip().lower()
    if not extended:
        value = value.replace(" ", "")
        value = re.sub(r"[^-\.@_a-z0-9]", "", value)
    return value


def external_connect(config: dict[str, str]):
    host, _, port = config.get("host", "localhost").partition(":")
    try:
        return MySQLdb.connect(
            host=host,
            port=int(port or 3306),
            user=config.get("user", ""),
            password=config.get("pass", ""),
            database=config.get("name", ""),
            charset="utf8mb4",
            connect_timeout=10,
        )
    except MySQLdb.Error as exc:
        raise RuntimeError("Could not connect to the specified authentication database...") from exc


def ensure_user_context(db: MoodleDb, userid: int) -> None:
    """context_user::instance(): insert, then set path and depth from the new id."""
    if db.q("SELECT id FROM {context} WHERE contextlevel=%s AND instanceid=%s", (CONTEXT_USER, userid)):
        return
    db.q(
        "INSERT INTO {context} (contextlevel, instanceid, depth, path, locked) VALUES (%s, %s, 0, NULL, 0)",
        (CONTEXT_USER, userid),
    )
    ctxid = db.lastrowid
    system = db.q("SELECT path FROM {context} WHERE contextlevel=%s", (CONTEXT_SYSTEM,))[0]["path"]
    path = f"{system}/{ctxid}"
    db.q("UPDATE {context} SET path=%s, depth=%s WHERE id=%s", (path, path.count("/"), ctxid))


class SyncUsers:
    name = "Synchronise users task"

    def execute(self, db: MoodleDb, cfg: dict, faults: Faults, mtrace) -> None:
        faults.at_start()
        enabled = (db.get_config("auth") or "").split(",")
        if "db" not in enabled:
            mtrace("auth_db plugin is disabled, synchronisation stopped")
            return
        config = db.plugin_config("auth_db")
        self.sync_users(db, config, faults, mtrace)

    def sync_users(self, db: MoodleDb, config: dict, faults: Faults, mtrace) -> None:
        def trace(msg: str, depth: int = 0) -> None:
            mtrace("  " * depth + msg)

        ext = external_connect(config)
        table, fielduser = config["table"], config["fielduser"]
        cur = ext.cursor()
        try:
            cur.execute(f"SELECT {fielduser} FROM {table}")
        except MySQLdb.Error as exc:
            raise RuntimeError(f"Error reading the external table: {exc.args[-1]}") from exc
        userlist = [row[0] for row in cur.fetchall()]
        mnethost = int(db.get_config("mnet_localhost_id") or 1)
        removeuser = int(config.get("removeuser") or 0)
        suspendselect = "AND suspended = 0" if removeuser == 1 else ""

        if removeuser:
            internal = db.q(
                "SELECT id, username FROM {user} WHERE auth='db' AND deleted=0 AND mnethostid=%s " + suspendselect,
                (mnethost,),
            )
            present = set(userlist)
            removeusers = [u for u in internal if u["username"] not in present]
            if removeusers:
                trace(f"User entries to remove: {len(removeusers)}")
                for user in removeusers:
                    if removeuser == 2:
                        db.q(
                            "UPDATE {user} SET deleted=1, timemodified=%s WHERE id=%s",
                            (int(time.time()), user["id"]),
                        )
                        trace(f"Deleted user {user['username']} id {user['id']}", 1)
                    else:
                        db.q(
                            "UPDATE {user} SET suspended=1, timemodified=%s WHERE id=%s",
                            (int(time.time()), user["id"]),
                        )
                        trace(f"Suspended user {user['username']} id {user['id']}", 1)
        if not userlist:
            return

        existing = {
            u["username"]
            for u in db.q(
                "SELECT id, username FROM {user} WHERE auth='db' AND deleted='0' AND mnethostid=%s " + suspendselect,
                (mnethost,),
            )
        }
        add_users = [u for u in userlist if u not in existing]
        if not add_users:
            return
        trace(f"User entries to add: {len(add_users)}")
        extended = db.get_config("extendedusernamechars") == "1"
        mapping = {k[len("field_map_") :]: v for k, v in config.items() if k.startswith("field_map_") and v}
        done = 0
        for username in add_users:
            if removeuser == 1:
                old = db.q(
                    "SELECT id FROM {user} WHERE username=%s AND deleted=0 AND suspended=1 "
                    "AND mnethostid=%s AND auth='db'",
                    (username, mnethost),
                )
                if old:
                    db.q(
                        "UPDATE {user} SET suspended=0, timemodified=%s WHERE id=%s",
                        (int(time.time()), old[0]["id"]),
                    )
                    trace(f"Revived user {username} id {old[0]['id']}", 1)
                    done += 1
                    faults.after_unit(done)
                    continue
            info = self.get_userinfo(ext, table, fielduser, mapping, username)
            collision = db.q(
                "SELECT auth FROM {user} WHERE username=%s AND mnethostid=%s AND auth <> 'db'",
                (username, mnethost),
            )
            if collision:
                trace(
                    f"Error inserting user {username} - user with this username was already created "
                    f"through '{collision[0]['auth']}' plugin.",
                    1,
                )
                continue
            try:
                userid = self.user_create_user(db, username, info, mnethost, extended)
            except (ValueError, MySQLdb.Error):
                trace(f"Error inserting user {username}", 1)
                continue
            trace(f"Inserted user {username} id {userid}", 1)
            if config.get("passtype") == "internal":
                db.set_user_preference(userid, "auth_forcepasswordchange", "1")
                db.set_user_preference(userid, "create_password", "1")
            done += 1
            faults.after_unit(done)

    @staticmethod
    def get_userinfo(ext, table, fielduser, mapping, username) -> dict[str, str]:
        if not mapping:
            return {}
        cols = ", ".join(mapping.values())
        cur = ext.cursor()
        cur.execute(f"SELECT {cols} FROM {table} WHERE {fielduser} = %s", (username,))
        row = cur.fetchone()
        if not row:
            return {}
        info = {field: (value or "") for field, value in zip(mapping, row, strict=False)}
        return {k: v[: FIELD_LIMITS[k]] if k in FIELD_LIMITS else v for k, v in info.items()}

    @staticmethod
    def user_create_user(db: MoodleDb, username: str, info: dict, mnethost: int, extended: bool) -> int:
        if username != username.lower():
            raise ValueError("usernamelowercase")
        if username != clean_username(username, extended):
            raise ValueError("invalidusername")
        now = int(time.time())
        db.q(
            "INSERT INTO {user} (auth, confirmed, mnethostid, username, firstname, lastname, email,"
            " description, lang, calendartype, timezone, timecreated, timemodified)"
            " VALUES ('db', 1, %s, %s, %s, %s, %s, %s, 'en', 'gregorian', '99', %s, %s)",
            (
                mnethost,
                username,
                info.get("firstname", ""),
                info.get("lastname", ""),
                info.get("email", ""),
                info.get("description"),
                now,
                now,
            ),
        )
        userid = db.lastrowid
        ensure_user_context(db, userid)
        return userid


class SendNewUserPasswords:
    name = "Send new user passwords"

    def execute(self, db: MoodleDb, cfg: dict, faults: Faults, mtrace) -> None:
        faults.at_start()
        if not db.q("SELECT id FROM {user_preferences} WHERE name='create_password' AND value='1' LIMIT 1"):
            return
        mtrace("Creating passwords for new users...")
        newusers = db.q(
            "SELECT u.id, u.email, u.username FROM {user} u JOIN {user_preferences} p ON u.id=p.userid"
            " WHERE p.name='create_password' AND p.value='1' AND u.email != '' AND u.suspended = 0"
            " AND u.auth != 'nologin' AND u.deleted = 0"
        )
        outbox = Path(cfg["dataroot"]) / EMAILS_FILE
        for done, user in enumerate(newusers, start=1):
            if self.setnew_password_and_mail(db, user, outbox, faults):
                db.q("DELETE FROM {user_preferences} WHERE userid=%s AND name='create_password'", (user["id"],))
                db.set_user_preference(user["id"], "auth_forcepasswordchange", "1")
            else:
                mtrace("Could not create and mail new user password!")
            faults.after_unit(done)

    @staticmethod
    def setnew_password_and_mail(db: MoodleDb, user: dict, outbox: Path, faults: Faults) -> bool:
        hashed = "$2y$04$" + secrets.token_urlsafe(40)[:53]
        db.q("UPDATE {user} SET password=%s WHERE id=%s", (hashed, user["id"]))
        if faults.spec.get("email_fail"):
            return False
        with outbox.open("a") as fh:
            fh.write(
                json.dumps(
                    {
                        "time": time.time(),
                        "userid": user["id"],
                        "username": user["username"],
                        "to": user["email"],
                        "subject": "New user account",
                    }
                )
                + "\n"
            )
        return True


TASKS = {
    "\\auth_db\\task\\sync_users": SyncUsers(),
    "\\core\\task\\send_new_user_passwords_task": SendNewUserPasswords(),
}
