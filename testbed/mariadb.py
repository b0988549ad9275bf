"""MariaDB for the test bed: the server, the two databases, their users and their rows.

Root is used only here, to create databases and users; everything else connects as
the users created below.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import MySQLdb
from MySQLdb.constants import CLIENT

from testbed.config import TestBedConfig

SQL_DIR = Path(__file__).parent / "sql"
SOCKET = "/run/mysqld/mysqld.sock"
MOODLE_VERSION = "2025100600.00"  # Moodle 5.1
MOODLE_RELEASE = "5.1 (Build: 20251006)"
PARENT_ROLE_SHORTNAME = "parent"
AUTH_DESCRIPTION = "Parent Moodle Account"


def _ping() -> bool:
    try:
        admin_connect().close()
        return True
    except MySQLdb.OperationalError:
        return False


def ensure_server(timeout_s: float = 30) -> None:
    """Start MariaDB if it is installed but not running (as this kind of machine boots it)."""
    if _ping():
        return
    daemon = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    if not os.path.exists(daemon):
        raise RuntimeError("MariaDB is not installed: apt-get install -y mariadb-server")
    os.makedirs("/run/mysqld", exist_ok=True)
    shutil.chown("/run/mysqld", "mysql", "mysql")
    subprocess.run(
        ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", daemon],
        check=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _ping():
            return
        time.sleep(0.5)
    raise RuntimeError(f"MariaDB did not answer within {timeout_s}s")


def admin_connect(db: str | None = None, multi: bool = False):
    """Root, through the socket when it is there (Debian authenticates root there), else over TCP
    (the compose demo's MariaDB container: TESTBED_DB_HOST and TESTBED_DB_ROOT_PASSWORD)."""
    kwargs = {"user": "root", "charset": "utf8mb4"}
    if db:
        kwargs["database"] = db
    if multi:
        kwargs["client_flag"] = CLIENT.MULTI_STATEMENTS
    if os.path.exists(SOCKET):
        try:
            return MySQLdb.connect(unix_socket=SOCKET, **kwargs)
        except MySQLdb.OperationalError:
            pass
    env = os.environ.get
    return MySQLdb.connect(
        host=env("TESTBED_DB_HOST", "127.0.0.1"),
        port=int(env("TESTBED_DB_PORT", "3306")),
        password=env("TESTBED_DB_ROOT_PASSWORD", ""),
        **kwargs,
    )


def _user_hosts() -> list[str]:
    """Where the test bed's users may connect from: this machine, or '%' for the compose demo's containers."""
    return os.environ.get("TESTBED_DB_USER_HOSTS", "127.0.0.1,localhost").split(",")


def connect(cfg: TestBedConfig, user, db: str, **kwargs):
    """A TCP connection as one of the test bed's users, the way the project connects."""
    return MySQLdb.connect(
        host=cfg.db_host,
        port=cfg.db_port,
        user=user.name,
        password=user.password,
        database=db,
        charset="utf8mb4",
        **kwargs,
    )


@contextmanager
def cursor(conn):
    cur = conn.cursor()
    try:
        yield cur
        conn.commit()
    finally:
        cur.close()


def _run_script(db: str, sql: str) -> None:
    conn = admin_connect(db, multi=True)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        while cur.nextset():
            pass
        conn.commit()
    finally:
        conn.close()


GRANTS_SQL = Path(__file__).resolve().parent.parent / "docs" / "grants.sql"


def grant_statements(cfg: TestBedConfig, host: str) -> list[str]:
    """docs/grants.sql for this test bed's names: the project's two users and auth_db's get
    exactly what production gets. (The Moodle double's own user, standing in for Moodle's
    database user, gets everything on the Moodle database, as Moodle's does.)"""
    names = {
        "WP_DB": cfg.wp_db,
        "WP_PREFIX": cfg.wp_prefix,
        "MOODLE_DB": cfg.moodle_db,
        "MOODLE_PREFIX": cfg.moodle_prefix,
        "WP_USER": f"'{cfg.wp_user.name}'@'{host}'",
        "WP_PASSWORD": cfg.wp_user.password,
        "MOODLE_USER": f"'{cfg.moodle_user.name}'@'{host}'",
        "MOODLE_PASSWORD": cfg.moodle_user.password,
        "AUTHDB_USER": f"'{cfg.authdb_user.name}'@'{host}'",
        "AUTHDB_PASSWORD": cfg.authdb_user.password,
    }
    text = "\n".join(line for line in GRANTS_SQL.read_text().splitlines() if not line.lstrip().startswith("--"))
    statements = []
    for statement in text.split(";"):
        statement = statement.strip()
        if statement:
            for key, value in names.items():
                statement = statement.replace("${" + key + "}", value)
            if "${" in statement:
                raise ValueError(f"docs/grants.sql: a name the test bed does not know in {statement!r}")
            statements.append(statement)
    statements.append(f"GRANT ALL PRIVILEGES ON `{cfg.moodle_db}`.* TO '{cfg.moodle_app_user.name}'@'{host}'")
    return statements


def create(cfg: TestBedConfig) -> None:
    """Drop and create both databases with their schemas, users and a fresh Moodle site."""
    ensure_server()
    conn = admin_connect()
    try:
        with cursor(conn) as cur:
            for db in (cfg.wp_db, cfg.moodle_db):
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
                cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()
    wp_sql = (SQL_DIR / "wordpress_tables.sql").read_text().replace("{prefix}", cfg.wp_prefix)
    _run_script(cfg.wp_db, wp_sql)
    mdl_sql = (SQL_DIR / "moodle_core_subset.sql").read_text()
    if cfg.moodle_prefix != "mdl_":
        mdl_sql = mdl_sql.replace("`mdl_", f"`{cfg.moodle_prefix}")
    _run_script(cfg.moodle_db, mdl_sql)
    create_users(cfg)
    seed_moodle_site(cfg)


def create_users(cfg: TestBedConfig) -> None:
    conn = admin_connect()
    try:
        with cursor(conn) as cur:
            for user in (cfg.wp_user, cfg.moodle_user, cfg.moodle_app_user, cfg.authdb_user):
                for host in _user_hosts():
                    cur.execute("DROP USER IF EXISTS %s@%s", (user.name, host))
            for host in _user_hosts():
                cur.execute(
                    "CREATE USER %s@%s IDENTIFIED BY %s", (cfg.moodle_app_user.name, host, cfg.moodle_app_user.password)
                )
                for statement in grant_statements(cfg, host):
                    cur.execute(statement)
    finally:
        conn.close()


def seed_moodle_site(cfg: TestBedConfig, auth_plugins: str = "email,db") -> None:
    """What an admin of a fresh Moodle 5.1 site does before the WordPress plugin can work:
    cron on, auth_db enabled and pointed at the auth table, a Parent role at user level."""
    p = cfg.moodle_prefix
    conn = admin_connect(cfg.moodle_db)
    try:
        with cursor(conn) as cur:
            cur.executemany(
                f"INSERT INTO `{p}config` (name, value) VALUES (%s, %s)",
                [
                    ("version", MOODLE_VERSION),
                    ("release", MOODLE_RELEASE),
                    ("lang", "en"),
                    ("cron_enabled", "1"),
                    ("auth", auth_plugins),
                    ("sessiontimeout", "28800"),
                    ("extendedusernamechars", "0"),
                ],
            )
            auth_db = {
                "host": f"{cfg.db_host}:{cfg.db_port}",
                "type": "mysqli",
                "sybasequoting": "0",
                "name": cfg.wp_db,
                "user": cfg.authdb_user.name,
                "pass": cfg.authdb_user.password,
                "table": cfg.wp_auth_table,
                "fielduser": "username",
                "fieldpass": "",
                "passtype": "internal",
                "extencoding": "utf-8",
                "setupsql": "",
                "debugauthdb": "0",
                "removeuser": "1",
                "updateusers": "0",
                "field_map_firstname": "parent_fname",
                "field_map_lastname": "parent_sname",
                "field_map_email": "parent_email",
                "field_map_description": "description",
            }
            cur.executemany(
                f"INSERT INTO `{p}config_plugins` (plugin, name, value) VALUES ('auth_db', %s, %s)",
                list(auth_db.items()),
            )
            cur.execute(
                f"INSERT INTO `{p}role` (name, shortname, description, sortorder, archetype)"
                " VALUES ('Parent', %s, 'Parents and guardians: see their children', 9, '')",
                (PARENT_ROLE_SHORTNAME,),
            )
            role_id = cur.lastrowid
            cur.execute(
                f"INSERT INTO `{p}role_context_levels` (roleid, contextlevel) VALUES (%s, 30)",
                (role_id,),
            )
    finally:
        conn.close()


def set_moodle_config(cfg: TestBedConfig, name: str, value: str, plugin: str | None = None) -> None:
    """Change a Moodle setting the way an admin would in Site administration."""
    p = cfg.moodle_prefix
    conn = admin_connect(cfg.moodle_db)
    try:
        with cursor(conn) as cur:
            if plugin:
                cur.execute(
                    f"UPDATE `{p}config_plugins` SET value=%s WHERE plugin=%s AND name=%s",
                    (value, plugin, name),
                )
            else:
                cur.execute(
                    f"INSERT INTO `{p}config` (name, value) VALUES (%s, %s)"
                    " ON DUPLICATE KEY UPDATE value=VALUES(value)",
                    (name, value),
                )
    finally:
        conn.close()


def drop(cfg: TestBedConfig) -> None:
    conn = admin_connect()
    try:
        with cursor(conn) as cur:
            for db in (cfg.wp_db, cfg.moodle_db):
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
            for user in (cfg.wp_user, cfg.moodle_user, cfg.moodle_app_user, cfg.authdb_user):
                for host in _user_hosts():
                    cur.execute("DROP USER IF EXISTS %s@%s", (user.name, host))
    finally:
        conn.close()
