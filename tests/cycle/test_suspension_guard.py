"""The cycle is never the trigger of a mass suspension: it predicts what Moodle's user sync will
do and refuses to run it when it would suspend too many parents. Real DAG runs on the test bed."""

from __future__ import annotations

import json

import pytest

from include.parent_provisioning import names
from testbed import demo_data, mariadb
from tests.testbed.helpers import add_auth_row

NEW_PARENT = "new.parent@example.org"


def report_of(dr) -> dict:
    return next(ti for ti in dr.get_task_instances() if ti.task_id == "report").xcom_pull(task_ids="report")


def cycle_record(school, run_id) -> dict:
    [row] = school.wp_rows("SELECT * FROM {cycles} WHERE run_id=%s", (run_id,))
    return {**row, "summary": json.loads(row["summary"] or "{}")}


def parents_with_accounts(school, n: int) -> list[str]:
    """n parents provisioned by earlier cycles: a 'db' account, a provisioned request, an auth row."""
    emails = [f"parent{k}@example.org" for k in range(n)]
    for k, email in enumerate(emails):
        school.parent_account(email)
        school.request(email, [("Kid", f"Fam{k}", "7RB")], status="provisioned")
    return emails


def a_new_parent(school) -> int:
    """An approved request needing a new account: the cycle will want to run the sync."""
    school.pupil("Nia", "Newell", "7RB")
    return school.request(NEW_PARENT, [("Nia", "Newell", "7RB")])


def empty_the_auth_table(school) -> None:
    school.wp_exec("DELETE FROM {auth}")


def users(school) -> list[dict]:
    return school.moodle_rows("SELECT * FROM {user} ORDER BY id")


def suspended_usernames(school) -> set[str]:
    return {r["username"] for r in school.moodle_rows("SELECT username FROM {user} WHERE auth='db' AND suspended=1")}


def ssh_logins(bed) -> int:
    return bed.ssh.log.read_text().count("Accepted publickey")


def test_a_truncated_auth_table_is_refused_and_no_parent_is_touched(school, run_cycle, fresh, capfd):
    parents_with_accounts(school, 20)
    empty_the_auth_table(school)
    rid = a_new_parent(school)  # approved after the table was emptied: the sync would run
    moodle_before = users(school)
    requests_before = school.wp_rows("SELECT * FROM {req} ORDER BY id")
    logins = ssh_logins(fresh)
    dr, states = run_cycle(retries=2)
    assert dr.state == "failed" and states["sync_users"] == "failed"
    for task in ("link_children", "send_passwords", "mark", "report"):
        assert states[task] == "upstream_failed", states
    sync = next(ti for ti in dr.get_task_instances() if ti.task_id == "sync_users")
    assert sync.try_number == 1  # retrying cannot help: an admin must look
    assert "would suspend 20 of 20 active parent accounts (100 %; limits: 50 accounts or 5 %)" in capfd.readouterr().out
    assert users(school) == moodle_before
    assert school.wp_rows("SELECT * FROM {req} ORDER BY id") == requests_before
    assert school.req(rid)["status"] == "approved"
    assert ssh_logins(fresh) == logins  # Moodle was not even contacted
    record = cycle_record(school, dr.run_id)
    assert record["state"] == "refused" and record["finished_at"] is not None
    prediction = record["summary"]["sync"]["prediction"]
    assert (prediction["suspended"], prediction["accounts"], prediction["created"]) == (20, 20, 1)
    assert "allow_mass_suspension=true" in record["summary"]["sync"]["refused"]


def test_most_auth_rows_removed_is_refused(school, run_cycle, capfd):
    emails = parents_with_accounts(school, 20)
    for email in emails[:15]:
        school.wp_exec("DELETE FROM {auth} WHERE username=%s", (email,))
    a_new_parent(school)
    moodle_before = users(school)
    dr, states = run_cycle()
    assert states["sync_users"] == "failed" and states["mark"] == "upstream_failed"
    assert "would suspend 15 of 20 active parent accounts (75 %; limits: 50 accounts or 5 %)" in capfd.readouterr().out
    assert users(school) == moodle_before


def test_a_normal_night_suspends_exactly_the_deprovisioned_parents(school, run_cycle, fresh):
    from include.parent_provisioning import management
    from include.parent_provisioning.settings import parse
    from tests.cycle.school import settings_for

    emails = parents_with_accounts(school, 50)
    rids = {r["parent_email"]: r["id"] for r in school.wp_rows("SELECT id, parent_email FROM {req}")}
    conn = mariadb.admin_connect(fresh.cfg.wp_db)
    try:  # staff reject two requests in the UI: their auth rows go
        for email in emails[:2]:
            management.set_status(conn, parse(settings_for(fresh)), rids[email], "rejected", "ops", confirmed=True)
    finally:
        conn.close()
    returning = "back.again@example.org"  # suspended earlier, re-approved since: its auth row is back
    school.user("Bea", "Back", auth="db", email=returning, username=returning, suspended=1)
    add_auth_row(school.cfg, returning)
    rid = a_new_parent(school)
    dr, states = run_cycle()
    assert dr.state == "success", states
    assert suspended_usernames(school) == set(emails[:2])
    assert school.req(rid)["status"] == "provisioned"
    summary = report_of(dr)
    want = {"created": 1, "suspended": 2, "revived": 1}
    assert {k: summary["sync"]["prediction"][k] for k in want} == want == summary["sync"]["actual"]
    assert summary["warnings"] == [] and summary["allow_mass_suspension"] is False
    assert cycle_record(school, dr.run_id)["summary"]["sync"]["prediction"]["suspended"] == 2


# dag.test() triggers its runs as the Airflow user "dag_test": here, one who manages requests (an op).
AN_OP_TRIGGERS = ("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,dag_test:op")
A_USER_TRIGGERS = ("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,dag_test:user")


def test_allow_mass_suspension_lets_one_run_through_and_the_record_names_who_triggered_it(
    school, run_cycle, monkeypatch
):
    monkeypatch.setenv(*AN_OP_TRIGGERS)
    emails = parents_with_accounts(school, 10)
    empty_the_auth_table(school)
    a_new_parent(school)
    dr, states = run_cycle(conf={names.ALLOW_MASS_SUSPENSION: True})
    assert dr.state == "success", states
    assert suspended_usernames(school) == set(emails)
    summary = report_of(dr)
    assert summary["allow_mass_suspension"] is True and summary["triggered_by"] == "dag_test"
    assert summary["sync"]["allow_mass_suspension"] is True and summary["sync"]["actual"]["suspended"] == 10
    record = cycle_record(school, dr.run_id)
    assert record["triggered_by"] == "dag_test" and record["state"] == "finished"
    assert record["summary"]["allow_mass_suspension"] is True


def test_with_nothing_to_create_a_mass_suspension_is_still_refused(school, run_cycle, fresh, capfd):
    """Suspensions are work: the sync wants to run for them alone, and the guard refuses it."""
    parents_with_accounts(school, 10)
    empty_the_auth_table(school)
    moodle_before = users(school)
    logins = ssh_logins(fresh)
    dr, states = run_cycle()
    assert dr.state == "failed" and states["sync_users"] == "failed", states
    assert users(school) == moodle_before and ssh_logins(fresh) == logins
    assert "would suspend 10 of 10 active parent accounts" in capfd.readouterr().out
    record = cycle_record(school, dr.run_id)
    assert record["state"] == "refused"
    assert record["summary"]["sync"]["prediction"]["suspended"] == 10


def test_a_dry_run_shows_the_prediction_and_the_refusal(school, run_cycle):
    parents_with_accounts(school, 10)
    empty_the_auth_table(school)
    a_new_parent(school)
    dr, states = run_cycle(conf={names.DRY_RUN: True})
    assert dr.state == "success", states
    sync = report_of(dr)["sync"]
    assert sync["prediction"]["suspended"] == 10 and sync["would_run"] is True
    assert "would suspend 10 of 10" in sync["would_refuse"]


def test_an_auth_db_column_the_auth_table_lacks_fails_with_what_to_fix(school, run_cycle, capfd):
    mariadb.set_moodle_config(school.cfg, "fielduser", "user_login", plugin="auth_db")
    a_new_parent(school)
    dr, states = run_cycle(retries=2)
    assert states["sync_users"] == "failed" and school.account(NEW_PARENT) is None
    assert "auth_db reads column 'user_login', which the auth table" in capfd.readouterr().out


def test_auth_db_reading_another_table_is_a_warning(school, run_cycle):
    mariadb.set_moodle_config(school.cfg, "table", "wp2_tvs_parent_moodle_provisioning_auth", plugin="auth_db")
    parents_with_accounts(school, 2)
    dr, states = run_cycle()
    assert dr.state == "success", states
    [warning] = report_of(dr)["warnings"]
    assert "auth_db reads table 'wp2_tvs_parent_moodle_provisioning_auth', not `wp_tvs_" in warning


def test_with_full_delete_deletions_count_as_suspensions(school, run_cycle, capfd):
    mariadb.set_moodle_config(school.cfg, "removeuser", "2", plugin="auth_db")
    parents_with_accounts(school, 10)
    empty_the_auth_table(school)
    a_new_parent(school)
    moodle_before = users(school)
    dr, states = run_cycle()
    assert states["sync_users"] == "failed"
    assert "would delete 10 of 10 parent accounts" in capfd.readouterr().out
    assert users(school) == moodle_before


def test_with_keep_an_empty_auth_table_suspends_nobody(school, run_cycle):
    mariadb.set_moodle_config(school.cfg, "removeuser", "0", plugin="auth_db")
    parents_with_accounts(school, 10)
    empty_the_auth_table(school)
    a_new_parent(school)
    dr, states = run_cycle()
    assert dr.state == "success", states
    assert suspended_usernames(school) == set()
    assert report_of(dr)["sync"]["prediction"]["suspended"] == 0


def db_accounts(school) -> dict[int, int]:
    return {r["id"]: r["suspended"] for r in school.moodle_rows("SELECT id, suspended FROM {user} WHERE auth='db'")}


def test_the_prediction_is_what_the_moodle_double_does_on_a_demo_school(fresh, school, run_cycle):
    school._moodle("DELETE FROM {cohort}")  # the demo school brings its own
    demo = demo_data.generate(size=150, seed=11)
    demo_data.load(fresh.cfg, demo)
    gone, returning, renamed = demo.parents[0], demo.parents[1], demo.parents[2]
    school.wp_exec("DELETE FROM {auth} WHERE username=%s", (gone.username,))  # de-provisioned
    school._moodle("UPDATE {user} SET suspended=1 WHERE id=%s", (returning.id,))  # suspended, auth row still there
    school.wp_exec("UPDATE {auth} SET username=UPPER(username) WHERE username=%s", (renamed.username,))
    for odd in ("Capital.Letters@example.org", "plus+tag@example.org", "twice@example.org", "twice@example.org"):
        add_auth_row(fresh.cfg, odd, username=odd)
    before = db_accounts(school)
    dr, states = run_cycle()
    assert dr.state == "success", states
    after = db_accounts(school)
    did = {
        "created": len(set(after) - set(before)),
        "suspended": sum(1 for uid, s in before.items() if not s and after[uid]),
        "revived": sum(1 for uid, s in before.items() if s and not after[uid]),
    }
    sync = report_of(dr)["sync"]
    prediction = sync["prediction"]
    assert {k: prediction[k] for k in did} == did == sync["actual"]
    assert did["suspended"] == 1 and did["revived"] == 1 and did["created"] > 50
    # The double's own output agrees on what it refused (capitals, '+', the second 'twice').
    assert (prediction["created"], prediction["refused"]) == (sync["created"], sync["refused"]) and sync["refused"] == 3
    assert report_of(dr)["warnings"] == []


@pytest.mark.parametrize("param", ["allow_mass_suspension", "allow_mass_unlink"])
def test_an_override_set_by_a_user_who_does_not_manage_requests_is_refused_saying_who_may(
    school, run_cycle, monkeypatch, capfd, param
):
    monkeypatch.setenv(*A_USER_TRIGGERS)  # Airflow's `user` role may trigger DAGs, not lift their guards
    emails = parents_with_accounts(school, 10)
    if param == "allow_mass_suspension":
        empty_the_auth_table(school)
    before = users(school)
    capfd.readouterr()

    dr, states = run_cycle(conf={param: True})

    task = "sync_users" if param == "allow_mass_suspension" else "unlink_children"
    assert states[task] == "failed", states
    out = capfd.readouterr().out
    assert f"{param} was set by dag_test, who does not manage requests" in out
    assert "honoured only for users with the op or admin role" in out
    assert users(school) == before and suspended_usernames(school) == set()  # nobody suspended
    assert len(emails) == 10
    monkeypatch.setenv("PARENT_PROVISIONING_OVERRIDE_USERS", "someone.else")  # the explicit list, when set, decides
    dr, states = run_cycle(conf={param: True})
    assert states[task] == "failed" and "honoured only for the users in PARENT_PROVISIONING_OVERRIDE_USERS" in (
        capfd.readouterr().out
    )
