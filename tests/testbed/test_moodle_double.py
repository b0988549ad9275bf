"""The Moodle double, reached through the real sshd exactly as the cycle reaches Moodle.

Later tests trust the double; these tests are why they may: each behaviour and each
failure in docs/MOODLE_FACTS.md, checked on the database and on the command's output.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from airflow.providers.ssh.hooks.ssh import SSHHook

from include.parent_provisioning import names
from testbed import mariadb, moodle_site
from testbed.moodle_site import SEND_PASSWORDS, SYNC_USERS
from tests.testbed.helpers import add_auth_row, delete_auth_row, moodle_exec, moodle_rows


def run(bed, task, extra="", timeout=30, layout="classic"):
    """(exit status, stdout lines) of one Moodle CLI run over SSH."""
    hook = SSHHook(ssh_conn_id=names.MOODLE_SSH_CONN_ID, cmd_timeout=timeout)
    with hook.get_conn() as client:
        status, out, err = hook.exec_ssh_client_command(
            client,
            moodle_site.command(bed.cfg, task, layout=layout, extra=extra),
            get_pty=False,
            environment=None,
        )
    return status, out.decode().splitlines() + err.decode().splitlines()


def db_users(bed):
    return {u["username"]: u for u in moodle_rows(bed.cfg, "SELECT * FROM {user} WHERE auth='db'")}


def test_sync_creates_db_users_as_moodle_does(fresh):
    add_auth_row(fresh.cfg, "ann.lee@example.org", title="Mrs", fname="Ann", sname="Lee")
    status, lines = run(fresh, SYNC_USERS)
    assert status == 0
    assert lines[0] == "Execute scheduled task: Synchronise users task (auth_db\\task\\sync_users)"
    assert "User entries to add: 1" in lines
    assert lines[-1] == "Scheduled task complete: Synchronise users task (auth_db\\task\\sync_users)"
    user = db_users(fresh)["ann.lee@example.org"]
    assert (user["confirmed"], user["mnethostid"], user["suspended"], user["deleted"]) == (1, 1, 0, 0)
    assert (user["firstname"], user["lastname"], user["email"]) == ("Mrs Ann", "Lee", "ann.lee@example.org")
    assert user["description"] == "Parent Moodle Account"
    [ctx] = moodle_rows(fresh.cfg, "SELECT * FROM {context} WHERE contextlevel=30 AND instanceid=%s", (user["id"],))
    assert (ctx["path"], ctx["depth"]) == (f"/1/{ctx['id']}", 2)
    prefs = moodle_rows(fresh.cfg, "SELECT name, value FROM {user_preferences} WHERE userid=%s", (user["id"],))
    assert {(p["name"], p["value"]) for p in prefs} == {
        ("create_password", "1"),
        ("auth_forcepasswordchange", "1"),
    }


def test_sync_twice_creates_nobody_twice(fresh):
    add_auth_row(fresh.cfg, "ann.lee@example.org")
    run(fresh, SYNC_USERS)
    status, lines = run(fresh, SYNC_USERS)
    assert status == 0 and not any("User entries to add" in line for line in lines)
    assert len(moodle_rows(fresh.cfg, "SELECT id FROM {user} WHERE auth='db'")) == 1


def test_sync_skips_usernames_with_capitals_and_plus_signs(fresh):
    add_auth_row(fresh.cfg, "x", username="Bob.Ray@Example.org")
    add_auth_row(fresh.cfg, "x", username="sam+moodle@example.org")
    add_auth_row(fresh.cfg, "fine@example.org")
    status, lines = run(fresh, SYNC_USERS)
    assert status == 0
    assert "  Error inserting user Bob.Ray@Example.org" in lines
    assert "  Error inserting user sam+moodle@example.org" in lines
    assert set(db_users(fresh)) == {"fine@example.org"}


def test_sync_skips_a_username_taken_by_another_auth_method(fresh):
    moodle_exec(
        fresh.cfg,
        "INSERT INTO {user} (auth, confirmed, mnethostid, username, email) "
        "VALUES ('manual', 1, 1, 'taken@example.org', 'taken@example.org')",
    )
    add_auth_row(fresh.cfg, "taken@example.org")
    status, lines = run(fresh, SYNC_USERS)
    assert status == 0
    assert (
        "  Error inserting user taken@example.org - user with this username was already created "
        "through 'manual' plugin."
    ) in lines
    assert db_users(fresh) == {}


def test_sync_suspends_a_user_whose_auth_row_is_gone_and_revives_them(fresh):
    add_auth_row(fresh.cfg, "stay@example.org")
    add_auth_row(fresh.cfg, "gone@example.org")
    run(fresh, SYNC_USERS)
    delete_auth_row(fresh.cfg, "gone@example.org")
    status, lines = run(fresh, SYNC_USERS)
    gone = db_users(fresh)["gone@example.org"]
    assert status == 0 and "User entries to remove: 1" in lines
    assert f"  Suspended user gone@example.org id {gone['id']}" in lines
    assert gone["suspended"] == 1 and db_users(fresh)["stay@example.org"]["suspended"] == 0
    add_auth_row(fresh.cfg, "gone@example.org")
    status, lines = run(fresh, SYNC_USERS)
    assert f"  Revived user gone@example.org id {gone['id']}" in lines
    assert db_users(fresh)["gone@example.org"]["suspended"] == 0
    assert len(db_users(fresh)) == 2


def test_empty_auth_table_suspends_every_db_user(fresh):
    for n in range(3):
        add_auth_row(fresh.cfg, f"p{n}@example.org")
    run(fresh, SYNC_USERS)
    mariadb.admin_connect(fresh.cfg.wp_db).cursor().execute(f"TRUNCATE `{fresh.cfg.wp_auth_table}`")
    status, lines = run(fresh, SYNC_USERS)
    assert status == 0 and "User entries to remove: 3" in lines
    assert all(u["suspended"] == 1 for u in db_users(fresh).values())


def test_password_task_mails_exactly_the_users_moodle_would(fresh):
    for email in ("a@example.org", "b@example.org", "c@example.org"):
        add_auth_row(fresh.cfg, email)
    run(fresh, SYNC_USERS)
    users = db_users(fresh)
    moodle_exec(fresh.cfg, "UPDATE {user} SET suspended=1 WHERE id=%s", (users["b@example.org"]["id"],))
    moodle_exec(fresh.cfg, "UPDATE {user} SET email='' WHERE id=%s", (users["c@example.org"]["id"],))
    status, lines = run(fresh, SEND_PASSWORDS)
    assert status == 0 and "Creating passwords for new users..." in lines
    assert [m["to"] for m in moodle_site.sent_emails(fresh.cfg)] == ["a@example.org"]
    left = moodle_rows(fresh.cfg, "SELECT userid FROM {user_preferences} WHERE name='create_password'")
    assert {r["userid"] for r in left} == {users["b@example.org"]["id"], users["c@example.org"]["id"]}
    run(fresh, SEND_PASSWORDS)
    assert len(moodle_site.sent_emails(fresh.cfg)) == 1


def test_password_task_keeps_the_preference_when_mail_fails(fresh):
    add_auth_row(fresh.cfg, "a@example.org")
    run(fresh, SYNC_USERS)
    moodle_site.set_fault(fresh.cfg, SEND_PASSWORDS, email_fail=True, times=1)
    status, lines = run(fresh, SEND_PASSWORDS)
    assert status == 0 and "Could not create and mail new user password!" in lines
    assert moodle_site.sent_emails(fresh.cfg) == []
    run(fresh, SEND_PASSWORDS)
    assert len(moodle_site.sent_emails(fresh.cfg)) == 1


def test_a_failing_task_exits_zero_and_says_so_in_the_output(fresh):
    add_auth_row(fresh.cfg, "a@example.org")
    moodle_site.set_fault(fresh.cfg, SYNC_USERS, throw="Error reading from database", times=1)
    status, lines = run(fresh, SYNC_USERS)
    assert status == 0
    assert lines[-1] == (
        "Scheduled task failed: Synchronise users task (auth_db\\task\\sync_users),Error reading from database"
    )
    assert db_users(fresh) == {}
    status, lines = run(fresh, SYNC_USERS)  # healthy again
    assert status == 0 and lines[-1].startswith("Scheduled task complete")
    assert set(db_users(fresh)) == {"a@example.org"}


def test_unreachable_external_database_is_a_failed_task_with_exit_zero(fresh):
    add_auth_row(fresh.cfg, "a@example.org")
    mariadb.set_moodle_config(fresh.cfg, "pass", "wrong", plugin="auth_db")
    status, lines = run(fresh, SYNC_USERS)
    assert status == 0
    assert lines[-1].startswith("Scheduled task failed: Synchronise users task")
    assert "Could not connect to the specified authentication database" in lines[-1]


def test_disabled_auth_db_plugin_syncs_nothing_and_still_succeeds(fresh):
    add_auth_row(fresh.cfg, "a@example.org")
    mariadb.set_moodle_config(fresh.cfg, "auth", "email")
    status, lines = run(fresh, SYNC_USERS)
    assert status == 0
    assert "auth_db plugin is disabled, synchronisation stopped" in lines
    assert lines[-1].startswith("Scheduled task complete")
    assert db_users(fresh) == {}


def test_unknown_task_exits_1(fresh):
    status, lines = run(fresh, "\\auth_db\\task\\no_such_task")
    assert (status, lines) == (1, ["Task '\\auth_db\\task\\no_such_task' not found"])
    moodle_site.set_fault(fresh.cfg, SYNC_USERS, not_installed=True)  # as if auth_db's tasks were missing
    assert run(fresh, SYNC_USERS) == (1, [f"Task '{SYNC_USERS}' not found"])


def test_disabled_cron_exits_1_unless_forced(fresh):
    add_auth_row(fresh.cfg, "a@example.org")
    mariadb.set_moodle_config(fresh.cfg, "cron_enabled", "0")
    assert run(fresh, SYNC_USERS) == (1, ["Cron is disabled. Use --force to override."])
    status, lines = run(fresh, SYNC_USERS, extra="--force")
    assert status == 0 and lines[-1].startswith("Scheduled task complete")


def test_pending_upgrade_exits_1(fresh):
    mariadb.set_moodle_config(fresh.cfg, "version", "2024100700.00")
    assert run(fresh, SYNC_USERS) == (1, ["Moodle upgrade pending, cannot manage tasks."])


@pytest.mark.parametrize(
    ("lock", "code", "message"),
    [
        ("core_cron", 129, "Cannot obtain cron lock"),
        (SYNC_USERS, 130, "Cannot obtain task lock"),
    ],
)
def test_a_held_lock_exits_129_or_130(fresh, lock, code, message):
    with moodle_site.hold_lock(fresh.cfg, lock):
        assert run(fresh, SYNC_USERS) == (code, [message])
    assert run(fresh, SYNC_USERS)[0] == 0


def test_a_hanging_task_runs_past_the_ssh_timeout_and_keeps_its_lock(fresh):
    moodle_site.set_fault(fresh.cfg, SYNC_USERS, hang=6, times=1)
    started = time.monotonic()
    with pytest.raises(Exception, match="timed out"):
        run(fresh, SYNC_USERS, timeout=2)
    assert time.monotonic() - started < 5
    # The abandoned process goes on and holds the task lock, as a hung Moodle cron does:
    # the next try is refused until it ends.
    assert run(fresh, SYNC_USERS) == (130, ["Cannot obtain task lock"])
    with moodle_site.hold_lock(fresh.cfg, SYNC_USERS):
        pass
    assert run(fresh, SYNC_USERS)[0] == 0


def test_a_crash_half_way_leaves_the_first_users_only(fresh):
    for n in range(5):
        add_auth_row(fresh.cfg, f"p{n}@example.org")
    moodle_site.set_fault(fresh.cfg, SYNC_USERS, crash_after=2, times=1)
    status, lines = run(fresh, SYNC_USERS)
    assert status == 255
    assert any(line.startswith("PHP Fatal error:") for line in lines)
    assert not any(line.startswith("Scheduled task") for line in lines)
    assert len(db_users(fresh)) == 2
    status, lines = run(fresh, SYNC_USERS)
    assert status == 0 and len(db_users(fresh)) == 5


def test_moodle_51_public_layout(fresh):
    moodle_site.lay_out(fresh.cfg, layout="public")
    add_auth_row(fresh.cfg, "a@example.org")
    status, lines = run(fresh, SYNC_USERS, layout="public")
    assert status == 0 and lines[-1].startswith("Scheduled task complete")
    status, lines = run(fresh, SYNC_USERS, layout="classic")
    assert status == 1 and lines[0].startswith("Could not open input file")


def test_ssh_refuses_a_server_with_another_host_key(fresh, monkeypatch):
    import json

    conn = fresh.airflow_connections()[names.MOODLE_SSH_CONN_ID]
    conn["extra"]["host_key"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDd7PaB5rOcx/6dKdOSW1sMP5sP2sQ7B4nVD8m3Dq2bX"
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE_SSH", json.dumps(conn))
    with pytest.raises(Exception, match="(?i)host key|not found in known_hosts|does not match"):
        SSHHook(ssh_conn_id=names.MOODLE_SSH_CONN_ID, cmd_timeout=5).get_conn()


def test_sshd_listens_on_loopback_only(bed):
    with socket.create_connection(("127.0.0.1", bed.cfg.ssh_port), timeout=2) as s:
        assert s.recv(64).startswith(b"SSH-2.0-OpenSSH")


def test_concurrent_runs_are_serialised_by_the_task_lock(fresh):
    moodle_site.set_fault(fresh.cfg, SYNC_USERS, hang=6, times=1)
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", run(fresh, SYNC_USERS)))
    first.start()
    time.sleep(1.0)
    results["second"] = run(fresh, SYNC_USERS)
    first.join()
    assert results["first"][0] == 0
    assert results["second"] == (130, ["Cannot obtain task lock"])
