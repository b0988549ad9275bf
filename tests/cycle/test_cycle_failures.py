"""When the system fails the run is red and nothing is half-done; a re-run converges.
Each of Moodle's failure exits, and each injected fault, is in the fault matrix (test_faults.py)."""

from __future__ import annotations

import re
import time

from include.parent_provisioning import names
from testbed import moodle_site
from testbed.moodle_site import SEND_PASSWORDS
from tests.cycle.school import in_the_background, snapshot, use_settings


def test_a_held_moodle_lock_is_retried(school, run_cycle, fresh):
    school.pupil("Bo", "Ray", "7RB")
    rid = school.request("bo.ray@example.org", [("Bo", "Ray", "7RB")])
    logins = fresh.ssh.logins()

    def hold_until_the_sync_was_refused(done):
        with moodle_site.hold_lock(school.cfg, "core_cron"):
            fresh.ssh.wait_for_login(logins, timeout_s=120, stop=done)
            time.sleep(4)  # the double waits 2 s for the lock, then exits 129

    with in_the_background(hold_until_the_sync_was_refused):
        dr, states = run_cycle(retries=3, retry_delay_s=2)
    assert dr.state == "success", states
    sync = next(ti for ti in dr.get_task_instances() if ti.task_id == "sync_users")
    assert sync.try_number >= 2
    assert school.req(rid)["status"] == "provisioned"


def test_a_broken_setting_fails_check_before_anything_is_written(school, run_cycle, fresh, capfd):
    school.pupil("Di", "Fox", "7RB")
    school.request("di.fox@example.org", [("Di", "Fox", "7RB")])
    use_settings(fresh, parent_role="no_such_role")
    before = snapshot(fresh)
    dr, states = run_cycle(retries=2)
    assert states["check"] == "failed" and states["collect"] == "upstream_failed"
    assert "setting 'parent_role': no Moodle role 'no_such_role'" in capfd.readouterr().out
    assert snapshot(fresh) == before


def test_dry_run_writes_nothing_and_opens_no_ssh_session(school, run_cycle, fresh):
    school.pupil("Ed", "Gray", "7RB", context=False)
    school.request("ed.gray@example.org", [("Ed", "Gray", "7RB")])
    school.request("no.auth@example.org", [("Ed", "Gray", "7RB")], auth=False)
    run_cycle(conf={names.DRY_RUN: True})  # first run: own tables do not exist yet either
    before = snapshot(fresh)
    sshd_log = fresh.ssh.log.read_text()
    dr, states = run_cycle(conf={names.DRY_RUN: True})
    assert dr.state == "success", states
    assert snapshot(fresh) == before
    assert fresh.ssh.log.read_text().count("Accepted publickey") == sshd_log.count("Accepted publickey")
    plan = next(ti for ti in dr.get_task_instances() if ti.task_id == "report").xcom_pull(task_ids="report")
    assert plan["dry_run"] is True and plan["needs_account"] == 1 and plan["invalid"] == 1


def test_rerunning_a_finished_run_changes_nothing(school, run_cycle, fresh):
    school.pupil("Fay", "Hill", "7RB")
    school.request("fay.hill@example.org", [("Fay", "Hill", "7RB")])
    school.request("gil.hill@example.org", [("Nobody", "Hill", "7RB")])
    dr, _ = run_cycle()
    after_first = snapshot(fresh)
    dr2, states = run_cycle(rerun=dr)
    assert dr2.run_id == dr.run_id and dr2.state == "success", states
    after_second = snapshot(fresh)
    for table in after_first:
        if table.endswith(
            ("parent_provisioning_outcomes", "parent_provisioning_cycles", "parent_provisioning_lock", "cache_flags")
        ):
            continue  # the re-run's own bookkeeping: its timestamps, the lock's claim count
        assert after_second[table] == after_first[table], table


def test_a_crash_between_linking_and_marking_converges_on_rerun(school, run_cycle, fresh, monkeypatch):
    from include.parent_provisioning import wordpress

    kid = school.pupil("Hal", "Ives", "7RB")
    rid = school.request("hal.ives@example.org", [("Hal", "Ives", "7RB")])
    bad = school.request("ida.ives@example.org", [("Nobody", "Ives", "7RB")])
    real_mark = wordpress.mark

    def crash(*args, **kwargs):
        raise SystemExit("worker killed before marking")

    monkeypatch.setattr(wordpress, "mark", crash)
    dr, states = run_cycle()
    assert states["link_children"] == "success" and states["mark"] == "failed"
    parent = school.account("hal.ives@example.org")
    assert school.links(parent["id"]) == {kid}
    assert school.req(rid)["status"] == "approved"  # linked, but not yet marked
    monkeypatch.setattr(wordpress, "mark", real_mark)
    dr2, states = run_cycle(rerun=dr)
    assert dr2.state == "success", states
    assert school.req(rid)["status"] == "provisioned"
    assert school.req(rid)["system_comment"].count(dr.run_id) == 1
    assert school.req(bad)["system_comment"].count(dr.run_id) == 1
    assert len(school.moodle_rows("SELECT id FROM {role_assignments} WHERE userid=%s", (parent["id"],))) == 1


def test_password_mail_failure_is_retried(school, run_cycle):
    school.pupil("Jo", "Kay", "7RB")
    school.request("jo.kay@example.org", [("Jo", "Kay", "7RB")])
    moodle_site.set_fault(school.cfg, SEND_PASSWORDS, throw="SMTP connect() failed", times=1)
    dr, states = run_cycle(retries=1)
    assert dr.state == "success", states
    assert [m["to"] for m in moodle_site.sent_emails(school.cfg)] == ["jo.kay@example.org"]


def test_task_logs_name_no_parent_or_child(school, run_cycle, capfd):
    names = ["Philippa", "Quarrington", "Rosalind", "Sebastiano", "Thaddeus", "Umberto"]
    school.pupil("Rosalind", "Quarrington", "7RB")
    school.pupil("Sebastiano", "Quarrington", "7RB")
    school.request(
        "philippa.quarrington@example.org",
        [("Rosalind", "Quarrington", "7RB"), ("Thaddeus", "Quarrington", "7RB")],
        fname="Philippa",
        sname="Quarrington",
    )
    school.request("Umberto.Q@Example.org", [("Sebastiano", "Quarrington", "7RB")], fname="Umberto")
    capfd.readouterr()
    dr, states = run_cycle()
    assert dr.state == "success", states
    out = capfd.readouterr()
    logs = out.out + out.err
    assert "sync_users" in logs  # the run's logs were captured
    for name in names:
        assert name.lower() not in logs.lower(), name
    assert not re.search(r"[\w.+-]+@example\.org", logs, re.IGNORECASE)
