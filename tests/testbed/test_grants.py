"""The grants in docs/grants.sql are the least the project needs, and the DAG's connections use
them: a whole cycle passing under these users proves they suffice (tests/cycle); these tests
prove they are not more than that, and that no Airflow connection is root."""

from __future__ import annotations

import MySQLdb
import pytest

from include.parent_provisioning import names
from testbed import mariadb


def _try(cfg, user, db, statement) -> int | None:
    """The MariaDB error code the statement gets, or None if it was allowed (rolled back)."""
    conn = mariadb.connect(cfg, user, db)
    try:
        cur = conn.cursor()
        cur.execute(statement)
        conn.rollback()
        return None
    except MySQLdb.OperationalError as exc:
        return exc.args[0]
    finally:
        conn.close()


DENIED = (1142, 1143, 1044)  # table / column / database access denied


def test_the_airflow_connections_log_in_as_the_projects_users_not_root(fresh):
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    expected = {names.WORDPRESS_CONN_ID: fresh.cfg.wp_user.name, names.MOODLE_CONN_ID: fresh.cfg.moodle_user.name}
    for conn_id, name in expected.items():
        user = MySqlHook(mysql_conn_id=conn_id).get_first("SELECT CURRENT_USER()")[0]
        assert user.split("@")[0] == name != "root", (conn_id, user)


@pytest.mark.parametrize(
    ("who", "table", "statement"),
    [
        ("wp", "{wp}tvs_parent_moodle_provisioning", "DELETE FROM `{t}` WHERE id = 0"),  # requests: never deleted
        ("wp", "{wp}tvs_parent_moodle_provisioning_auth", "UPDATE `{t}` SET username = username WHERE id = 0"),
        ("wp", "{wp}parent_provisioning_outcomes", "DROP TABLE `{t}`"),
        ("wp", "{wp}users", "SELECT 1 FROM `{t}` LIMIT 1"),  # WordPress's own users: none of its business
        ("moodle", "{mdl}context", "DELETE FROM `{t}` WHERE id = 0"),  # DELETE on role_assignments only
        ("moodle", "{mdl}cache_flags", "DELETE FROM `{t}` WHERE id = 0"),
        ("moodle", "{mdl}user", "DELETE FROM `{t}` WHERE id = 0"),
        ("moodle", "{mdl}role_assignments", "UPDATE `{t}` SET userid = userid WHERE id = 0"),
        ("moodle", "{mdl}user", "UPDATE `{t}` SET suspended = 0 WHERE id = 0"),  # accounts are Moodle's sync's
        ("moodle", "{mdl}user", "INSERT INTO `{t}` (username) VALUES ('x')"),
        ("moodle", "{mdl}role", "UPDATE `{t}` SET name = name WHERE id = 0"),
        ("moodle", "{mdl}mnet_host", "SELECT 1 FROM `{t}` LIMIT 1"),
    ],
)
def test_the_projects_users_cannot_do_what_the_project_never_does(fresh, who, table, statement):
    cfg = fresh.cfg
    user, db = (cfg.wp_user, cfg.wp_db) if who == "wp" else (cfg.moodle_user, cfg.moodle_db)
    name = table.format(wp=cfg.wp_prefix, mdl=cfg.moodle_prefix)
    assert _try(cfg, user, db, statement.format(t=name)) in DENIED


@pytest.mark.parametrize(
    ("who", "statement"),
    [
        ("wp", "SELECT id, status FROM `{wp}tvs_parent_moodle_provisioning` LIMIT 1"),
        ("wp", "UPDATE `{wp}tvs_parent_moodle_provisioning` SET status = status WHERE id = 0"),
        ("wp", "DELETE FROM `{wp}tvs_parent_moodle_provisioning_auth` WHERE id = 0"),
        ("moodle", "INSERT INTO `{mdl}role_assignments` (roleid, contextid, userid) VALUES (0, 0, 0)"),
        ("moodle", "UPDATE `{mdl}context` SET path = path WHERE id = 0"),
        ("moodle", "DELETE FROM `{mdl}role_assignments` WHERE id = 0"),  # unlinking (only what the ledger holds)
    ],
)
def test_and_can_do_what_it_does(fresh, who, statement):
    """The other side of the same grants: the denials above are not a user that can do nothing."""
    cfg = fresh.cfg
    user, db = (cfg.wp_user, cfg.wp_db) if who == "wp" else (cfg.moodle_user, cfg.moodle_db)
    assert _try(cfg, user, db, statement.format(wp=cfg.wp_prefix, mdl=cfg.moodle_prefix)) is None


def test_the_moodle_user_creates_and_writes_the_ledger_of_links_but_never_deletes_from_it(fresh):
    from include.parent_provisioning import moodle_db
    from include.parent_provisioning.settings import parse

    cfg = fresh.cfg
    s = parse({"moodle_dir": "/m", "moodle_table_prefix": cfg.moodle_prefix})
    conn = mariadb.connect(cfg, cfg.moodle_user, cfg.moodle_db)
    try:
        assert moodle_db.ensure_links_table(conn, s) is True  # CREATE, as the first run does
        assert moodle_db.ensure_links_table(conn, s) is False
    finally:
        conn.close()
    t = s.links_table
    user, db = cfg.moodle_user, cfg.moodle_db
    insert = (
        f"INSERT INTO `{t}` (request_id, parent_userid, contextid, roleid, ra_id, origin, run_id, created_at)"
        " VALUES (1, 1, 1, 1, 1, 'made', 'r', NOW())"
    )
    assert _try(cfg, user, db, insert) is None
    assert _try(cfg, user, db, f"UPDATE `{t}` SET removed_at = NOW() WHERE id = 0") is None
    assert _try(cfg, user, db, f"DELETE FROM `{t}` WHERE id = 0") in DENIED


READ_USER_COLUMNS = {"id", "auth", "username", "mnethostid", "deleted", "suspended", "firstname", "lastname",
                     "department", "email"}  # fmt: skip


def test_the_moodle_user_reads_only_the_columns_of_mdl_user_the_cycle_uses_and_no_other(fresh):
    cfg = fresh.cfg
    table = f"{cfg.moodle_prefix}user"
    columns = {
        r[0]
        for r in verify_rows(
            cfg.moodle_db,
            f"SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE()"
            f" AND table_name = '{table}'",
        )
    }
    assert columns > READ_USER_COLUMNS and {"password", "secret", "phone1", "address"} <= columns
    user, db = cfg.moodle_user, cfg.moodle_db
    refused = sorted(c for c in columns - READ_USER_COLUMNS if _try(cfg, user, db, f"SELECT `{c}` FROM `{table}`"))
    assert refused == sorted(columns - READ_USER_COLUMNS)  # every other column, one by one
    assert all(_try(cfg, user, db, f"SELECT `{c}` FROM `{table}`") is None for c in READ_USER_COLUMNS)
    assert _try(cfg, user, db, f"SELECT * FROM `{table}`") in DENIED


def test_the_moodle_user_reads_six_settings_through_the_view_and_no_secret(fresh):
    cfg = fresh.cfg
    p = cfg.moodle_prefix
    admin = mariadb.admin_connect(cfg.moodle_db)
    try:
        with mariadb.cursor(admin) as cur:  # secrets as a real site keeps them
            cur.execute(
                f"INSERT INTO `{p}config` (name, value) VALUES ('smtppass', 'mail-secret')"
                " ON DUPLICATE KEY UPDATE value = VALUES(value)"
            )
            cur.execute(
                f"INSERT INTO `{p}config_plugins` (plugin, name, value) VALUES ('auth_db', 'pass', 'db-secret'),"
                " ('auth_ldap', 'removeuser', '2') ON DUPLICATE KEY UPDATE value = VALUES(value)"
            )
    finally:
        admin.close()
    user, db = cfg.moodle_user, cfg.moodle_db
    for config in ("config", "config_plugins"):
        assert _try(cfg, user, db, f"SELECT * FROM `{p}{config}`") in DENIED
    conn = mariadb.connect(cfg, user, db)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT plugin, name, value FROM `parent_provisioning_{p}settings`")
        seen = {(plugin, name): value for plugin, name, value in cur.fetchall()}
    finally:
        conn.close()
    allowed = {("core", n) for n in ("mnet_localhost_id", "sessiontimeout", "extendedusernamechars")}
    allowed |= {("auth_db", n) for n in ("removeuser", "fielduser", "table")}
    assert set(seen) <= allowed and ("core", "mnet_localhost_id") in seen
    assert "mail-secret" not in seen.values() and "db-secret" not in seen.values()


def verify_rows(db: str, sql: str) -> list[tuple]:
    from testbed import verify

    return verify.rows(db, sql)
