"""Small readers and writers the test bed's tests share."""

from __future__ import annotations

from testbed import mariadb


def add_auth_row(cfg, email: str, title="Mrs", fname="Ann", sname="Lee", request_id=1, username=None) -> None:
    """An auth row as WordPress approval writes it (username = lower-cased email)."""
    conn = mariadb.admin_connect(cfg.wp_db)
    try:
        with mariadb.cursor(conn) as cur:
            cur.execute(
                f"INSERT INTO `{cfg.wp_auth_table}` (username, parent_title, parent_fname, parent_sname,"
                " parent_email, description, request_id)"
                " VALUES (%s, %s, %s, %s, %s, 'Parent Moodle Account', %s)",
                (
                    username if username is not None else email.lower(),
                    title,
                    f"{title} {fname}",
                    sname,
                    email.lower(),
                    request_id,
                ),
            )
    finally:
        conn.close()


def delete_auth_row(cfg, username: str) -> None:
    conn = mariadb.admin_connect(cfg.wp_db)
    try:
        with mariadb.cursor(conn) as cur:
            cur.execute(f"DELETE FROM `{cfg.wp_auth_table}` WHERE username=%s", (username,))
    finally:
        conn.close()


def moodle_rows(cfg, sql: str, params=()) -> list[dict]:
    conn = mariadb.admin_connect(cfg.moodle_db)
    try:
        cur = conn.cursor(mariadb.MySQLdb.cursors.DictCursor)
        cur.execute(sql.replace("{", cfg.moodle_prefix).replace("}", ""), params)
        return list(cur.fetchall())
    finally:
        conn.close()


def moodle_exec(cfg, sql: str, params=()) -> int:
    """Run one statement as root on the Moodle database; returns the new row's id, if any."""
    conn = mariadb.admin_connect(cfg.moodle_db)
    try:
        with mariadb.cursor(conn) as cur:
            cur.execute(sql.replace("{", cfg.moodle_prefix).replace("}", ""), params)
            return cur.lastrowid
    finally:
        conn.close()
