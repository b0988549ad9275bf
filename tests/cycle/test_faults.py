"""The fault matrix: each fault injected into a real component during a real DAG run, then the
run is carried through (the task's own retry) or cleared and run again; the end state must equal
that of an undisturbed run of the same school. Each case records itself in RELIABILITY.md."""

from __future__ import annotations

import ast
import dataclasses
import json
import pprint
import re
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.listeners import hookimpl

from include.parent_provisioning import names
from testbed import mariadb, moodle_site
from testbed.moodle_site import SEND_PASSWORDS, SYNC_USERS
from tests.cycle import end_state, runner
from tests.cycle.conftest import run_dag
from tests.cycle.proxy import proxied
from tests.cycle.school import School, in_the_background, use_settings
from tests.reliability import record
from tests.testbed.helpers import moodle_rows

SETTINGS = {"static_context_ids": [1]}
CHILDREN_NOT_LINKED = "One or more of my children is not linked correctly to my account (please provide details below)."
LIKE_UNDISTURBED = "equal to an undisturbed run"


def build(school: School) -> School:
    """Seven requests: one, two and three children; a parent who has an account already; a child
    found nowhere; an ambiguous child beside a clear one; no auth row. Some pupils have no user
    context yet, so linking creates contexts too."""
    school.pupil("Amy", "Lee", "7RB")
    school.pupil("Bea", "Khan", "8CD")
    school.pupil("Bo", "Khan", "10EF", context=False)
    school.pupil("Cal", "Oduya", "7RB")
    school.pupil("Cat", "Oduya", "9KM")
    school.pupil("Cy", "Oduya", "11AB", context=False)
    school.pupil("Dan", "Hart", "7RB")
    school.pupil("Kit", "Nash", "9KM")
    school.pupil("Kit", "Nash", "9KM")
    school.pupil("Lou", "Nash", "7RB", context=False)
    school.pupil("Oli", "Sim", "7RB")
    school.parent_account("dee.hart@example.org", first="Dee", last="Hart")
    school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    school.request("bilal.khan@example.org", [("Bea", "Khan", "8CD"), ("Bo", "Khan", "10EF")])
    school.request("chi.oduya@example.org", [("Cal", "Oduya", "7RB"), ("Cat", "Oduya", "9KM"), ("Cy", "Oduya", "11AB")])
    school.request("dee.hart@example.org", [("Dan", "Hart", "7RB")], request_type=CHILDREN_NOT_LINKED)
    school.request("ned.ray@example.org", [("Noa", "Ray", "7RB")])
    school.request("max.nash@example.org", [("Kit", "Nash", "9KM"), ("Lou", "Nash", "7RB")])
    school.request("pam.sim@example.org", [("Oli", "Sim", "7RB")], auth=False)
    return school


@pytest.fixture(scope="module")
def undisturbed(bed, provisioning_dag):
    """The end state one undisturbed run leaves on a fresh test bed."""
    use_settings(bed.reset(), **SETTINGS)
    build(School(bed))
    dr, states = run_dag(provisioning_dag)
    assert dr.state == "success", states
    state = end_state.capture(bed.cfg)
    assert state["comment_lines_wrong"] == []
    assert [c[:2] for c in state["cycles"]] == [("finished", True)]
    return state


@pytest.fixture
def school(undisturbed, fresh):
    """The same school on a fresh test bed (after the undisturbed run, which resets the bed too)."""
    use_settings(fresh, **SETTINGS)
    moodle_site.lay_out(fresh.cfg, fresh.layout, lock_wait_s=1)  # Moodle waits 10 s for a lock; 1 s is enough here
    return build(School(fresh))


def assert_like_undisturbed(school: School, undisturbed: dict, case: str, injected: str, disturbed: str, how: str):
    """The end state equals the undisturbed run's; then the case's row goes into RELIABILITY.md."""
    state = end_state.capture(school.cfg)
    assert state["comment_lines_wrong"] == []
    diff = end_state.differences(state, undisturbed)
    assert diff == {}, pprint.pformat(diff, width=150)
    record("faults", case, injected, disturbed, f"{how}: {LIKE_UNDISTURBED}")


def task(dr, task_id: str):
    return next(ti for ti in dr.get_task_instances() if ti.task_id == task_id)


def nothing_marked(school: School) -> bool:
    """No request changed: all approved, each with only the line it was received with."""
    return all(
        r["status"] == "approved" and "\n" not in r["system_comment"] for r in school.wp_rows("SELECT * FROM {req}")
    )


def left_behind(school: School) -> str:
    """What a disturbed run left, in words that do not change from run to run."""
    accounts = len(school.moodle_rows("SELECT id FROM {user} WHERE auth='db'"))
    contexts = len(school.moodle_rows("SELECT id FROM {context} WHERE contextlevel=30"))
    marked = sum("\n" in r["system_comment"] for r in school.wp_rows("SELECT system_comment FROM {req}"))
    cycle = [c["state"] for c in school.wp_rows("SELECT state FROM {cycles}")]
    return (
        f"{accounts} db accounts, {contexts} user contexts, {links(school)} role assignments, {marked} requests "
        f"marked, cycle record {cycle[0] if cycle else 'absent'}"
    )


def links(school: School) -> int:
    return len(school.moodle_rows("SELECT id FROM {role_assignments}"))


# --- a database connection cut in the middle of a task ------------------------------------------------------

RA_INSERT = "INSERT INTO `{m}role_assignments`"
MARK_UPDATE = "UPDATE `{w}tvs_parent_moodle_provisioning` r JOIN"
CUTS = {
    # case: (connection, statements the cut waits for, delivered?, the task, what that statement is)
    "Moodle DB cut in linking, before the role assignment INSERT": (
        names.MOODLE_CONN_ID,
        (RA_INSERT,),
        False,
        "link_children",
        "the role_assignments INSERT",
    ),
    "Moodle DB cut in linking, after the role assignment INSERT": (
        names.MOODLE_CONN_ID,
        (RA_INSERT,),
        True,
        "link_children",
        "the role_assignments INSERT",
    ),
    "Moodle DB cut in linking, after its COMMIT": (
        names.MOODLE_CONN_ID,
        (RA_INSERT, "COMMIT"),
        True,
        "link_children",
        "linking's COMMIT",
    ),
    "WordPress DB cut in marking, before the requests UPDATE": (
        names.WORDPRESS_CONN_ID,
        (MARK_UPDATE,),
        False,
        "mark",
        "the requests UPDATE",
    ),
    "WordPress DB cut in marking, after the requests UPDATE": (
        names.WORDPRESS_CONN_ID,
        (MARK_UPDATE,),
        True,
        "mark",
        "the requests UPDATE",
    ),
    "WordPress DB cut in marking, after its COMMIT": (
        names.WORDPRESS_CONN_ID,
        (MARK_UPDATE, "COMMIT"),
        True,
        "mark",
        "marking's COMMIT",
    ),
}


@pytest.mark.parametrize("case", list(CUTS))
def test_a_database_connection_cut_mid_task_leaves_nothing_half_written(school, fresh, run_cycle, undisturbed, case):
    conn_id, patterns, delivered, task_id, statement = CUTS[case]
    committed = patterns[-1] == "COMMIT"
    stream = [p.format(m=school.cfg.moodle_prefix, w=school.cfg.wp_prefix).encode() for p in patterns]
    with proxied(fresh, conn_id) as proxies:
        proxies[conn_id].cut_on(*stream, after=delivered)
        dr, states = run_cycle()
        assert proxies[conn_id].cuts == 1
        assert states[task_id] == "failed" and dr.state == "failed", states
        if task_id == "link_children":  # all of linking's rows rolled back with the connection, or all committed
            assert links(school) == (sum(n for _, n in undisturbed["role_assignments"]) if committed else 0)
        assert nothing_marked(school) == (task_id != "mark" or not committed)
        dr2, states = run_cycle(rerun=dr)
    assert dr2.state == "success", states
    assert_like_undisturbed(
        school,
        undisturbed,
        case,
        f"a TCP proxy on {conn_id} cuts the connection at {statement} "
        f"({'delivered, answer held back' if delivered else 'not delivered'}), once",
        f"{task_id} fails: lost connection; "
        + ("the COMMIT took effect" if committed else "nothing of its transaction stays"),
        "re-run",
    )


# --- MariaDB refusing connections for a while -------------------------------------------------------------


class _AtTaskStart:
    """A listener that does `action` once, as the task `task_id` starts (in this process: dag.test)."""

    def __init__(self, task_id: str, action):
        self.task_id, self.action, self.done = task_id, action, False

    @hookimpl
    def on_task_instance_running(self, previous_state, task_instance):
        if task_instance.task_id == self.task_id and not self.done:
            self.done = True
            self.action()


@contextmanager
def at_task_start(task_id: str, action):
    from airflow.sdk.listener import get_listener_manager

    listener = _AtTaskStart(task_id, action)
    get_listener_manager().add_listener(listener)
    try:
        yield listener
    finally:
        get_listener_manager().pm.unregister(listener)


def test_mariadb_refusing_connections_for_a_while_is_ridden_out_by_the_retries(school, fresh, run_cycle, undisturbed):
    with proxied(fresh, names.WORDPRESS_CONN_ID, names.MOODLE_CONN_ID) as proxies:

        def refuse():
            for proxy in proxies.values():
                proxy.refuse_for(5)

        with at_task_start("link_children", refuse) as listener:
            dr, states = run_cycle(retries=4, retry_delay_s=2)
    assert listener.done and dr.state == "success", states
    tries = task(dr, "link_children").try_number
    assert tries >= 3  # refused for 5 s, retried every 2 s
    assert_like_undisturbed(
        school,
        undisturbed,
        "MariaDB refusing connections for 5 s",
        "TCP proxies on both databases stop listening as link_children starts, then listen again",
        "link_children's tries fail to connect (refused) until MariaDB is back; the next try succeeds",
        "the task's own retries",
    )


# --- SSH: the stream cut, sshd stopped, a sync past its timeout -----------------------------------------------


def test_the_ssh_stream_cut_during_the_sync_is_retried(school, fresh, run_cycle, undisturbed, capfd):
    moodle_site.set_fault(school.cfg, SYNC_USERS, hang=3, times=1)
    capfd.readouterr()
    with proxied(fresh, names.MOODLE_SSH_CONN_ID) as proxies:
        proxies[names.MOODLE_SSH_CONN_ID].cut_after(1.5)
        dr, states = run_cycle(retries=3, retry_delay_s=1)
        assert proxies[names.MOODLE_SSH_CONN_ID].cuts == 1
    out = capfd.readouterr().out
    assert dr.state == "success", states
    assert task(dr, "sync_users").try_number >= 2
    assert "the SSH session to the Moodle server ended before Moodle's task did (no exit status)" in out
    assert_like_undisturbed(
        school,
        undisturbed,
        "SSH stream cut during the user sync",
        "a TCP proxy in front of sshd cuts the sync's connection 1.5 s in (the sync hangs 3 s)",
        "sync_users' try fails: 'the SSH session to the Moodle server ended before Moodle's task did'",
        "the task's own retry",
    )


def test_sshd_stopped_during_the_sync(school, fresh, run_cycle, undisturbed, capfd):
    moodle_site.set_fault(school.cfg, SYNC_USERS, hang=3, times=1)
    capfd.readouterr()
    logins = fresh.ssh.logins()
    stopped = threading.Event()

    def stop_during_the_sync(_):
        fresh.ssh.wait_for_login(logins)
        time.sleep(0.5)
        fresh.ssh.stop()
        stopped.set()
        time.sleep(6)  # past the sync's end: the password task's connection finds no sshd
        fresh.ssh.start()

    try:
        with in_the_background(stop_during_the_sync):
            dr, states = run_cycle(retries=3, retry_delay_s=2)
    finally:
        fresh.ssh.start()  # whatever happened: the other tests need it (a no-op if it runs)
    assert stopped.is_set() and dr.state == "success", states
    assert task(dr, "sync_users").try_number == 1  # its session outlived the listening sshd
    assert "Failed to connect. Sleeping before retry attempt" in capfd.readouterr().out  # send_passwords'
    assert_like_undisturbed(
        school,
        undisturbed,
        "sshd stopped during the user sync",
        "the test bed's sshd stopped 0.5 s into the sync (hanging 3 s), started again 6 s later",
        "the open session finishes the sync (as with systemd's KillMode=process); the next SSH "
        "connection is refused until sshd is back",
        "reconnects and retries carry the run",
    )


def test_a_sync_hanging_past_its_timeout_fails_and_a_rerun_after_it_ends_succeeds(
    school, fresh, run_cycle, undisturbed, capfd, monkeypatch
):
    from include.parent_provisioning import airflow_adapter

    load = airflow_adapter.load_settings  # the setting's floor is 10 s; 2 s keeps the test short
    monkeypatch.setattr(airflow_adapter, "load_settings", lambda: dataclasses.replace(load(), moodle_task_timeout_s=2))
    moodle_site.set_fault(school.cfg, SYNC_USERS, hang=6, times=1)
    capfd.readouterr()
    dr, states = run_cycle(retries=1)
    out = capfd.readouterr().out
    assert states["sync_users"] == "failed" and states["link_children"] == "upstream_failed", states
    assert "ran longer than moodle_task_timeout_s=2s; it may still be running on the Moodle server" in out
    assert "could not obtain the task lock (exit 130)" in out  # the retry: the hung sync still holds it
    assert nothing_marked(school) and links(school) == 0
    with moodle_site.hold_lock(school.cfg, SYNC_USERS):
        pass  # the hung sync has ended
    monkeypatch.setattr(airflow_adapter, "load_settings", load)
    dr2, states = run_cycle(rerun=dr)
    assert dr2.state == "success", states
    assert_like_undisturbed(
        school,
        undisturbed,
        "a user sync hanging past moodle_task_timeout_s",
        "the double hangs 6 s; moodle_task_timeout_s = 2",
        "sync_users fails: 'ran longer than moodle_task_timeout_s=2s'; its retry: task lock held (exit 130)",
        "re-run once the hung sync ended",
    )


# --- every failure exit and message of Moodle's CLI -----------------------------------------------------------


@contextmanager
def _double_fault(cfg, task=SYNC_USERS, **spec):
    moodle_site.set_fault(cfg, task, **spec)
    try:
        yield
    finally:
        moodle_site.clear_faults(cfg)


@contextmanager
def _moodle_config(cfg, name, value, plugin=None):
    table, where = ("config_plugins", (plugin, name)) if plugin else ("config", (name,))
    sql = f"SELECT value FROM {{{table}}} WHERE {'plugin=%s AND ' if plugin else ''}name=%s"
    [before] = moodle_rows(cfg, sql, where)
    mariadb.set_moodle_config(cfg, name, value, plugin)
    try:
        yield
    finally:
        mariadb.set_moodle_config(cfg, name, before["value"], plugin)


MOODLE_FAILURES = {
    # case: (how it is injected, the fault, the task's message, retried?)
    "Moodle task throws: exit 0 and 'Scheduled task failed'": (
        "the double's task throws 'Error reading from database'",
        lambda cfg: _double_fault(cfg, throw="Error reading from database"),
        "Moodle reported a failed task (exit status 0)",
        True,
    ),
    "auth_db plugin disabled": (
        "Moodle config auth = 'email'",
        lambda cfg: _moodle_config(cfg, "auth", "email"),
        "External database authentication (auth_db) is disabled",
        False,
    ),
    "external auth database unreachable": (
        "auth_db's host set to a closed port",
        lambda cfg: _moodle_config(cfg, "host", "127.0.0.1:1", plugin="auth_db"),
        "Could not connect to the specified authentication database",
        True,
    ),
    "unknown task: exit 1": (
        "the double does not know the sync task (plugin missing)",
        lambda cfg: _double_fault(cfg, not_installed=True),
        "Moodle does not know the task",
        False,
    ),
    "cron disabled: exit 1": (
        "Moodle config cron_enabled = 0",
        lambda cfg: _moodle_config(cfg, "cron_enabled", "0"),
        "Moodle's cron is disabled",
        False,
    ),
    "upgrade pending: exit 1": (
        "Moodle config version older than the code's",
        lambda cfg: _moodle_config(cfg, "version", "2024100700.00"),
        "Moodle has an upgrade pending",
        False,
    ),
    "cron lock held: exit 129": (
        "Moodle's cron lock held by another process",
        lambda cfg: moodle_site.hold_lock(cfg, "core_cron"),
        "could not obtain the cron lock (exit 129)",
        True,
    ),
    "task lock held: exit 130": (
        "the sync task's lock held by another process",
        lambda cfg: moodle_site.hold_lock(cfg, SYNC_USERS),
        "could not obtain the task lock (exit 130)",
        True,
    ),
    "PHP fatal error half-way through the users: exit 255": (
        "the double dies with a PHP fatal error after 2 users",
        lambda cfg: _double_fault(cfg, crash_after=2),
        "Moodle CLI exited with 255: PHP Fatal error",
        True,
    ),
}


@pytest.mark.parametrize("case", list(MOODLE_FAILURES))
def test_each_moodle_cli_failure_stops_the_run_before_linking_and_a_rerun_converges(
    school, run_cycle, undisturbed, capfd, case
):
    injected, fault, message, retried = MOODLE_FAILURES[case]
    capfd.readouterr()
    with fault(school.cfg):
        dr, states = run_cycle(retries=1)
    out = capfd.readouterr().out
    assert states["sync_users"] == "failed" and states["link_children"] == "upstream_failed", states
    assert task(dr, "sync_users").try_number == (2 if retried else 1)
    assert message in out
    assert nothing_marked(school) and links(school) == 0
    assert [c["state"] for c in school.wp_rows("SELECT state FROM {cycles}")] == ["running"]
    dr2, states = run_cycle(rerun=dr)
    assert dr2.state == "success", states
    assert_like_undisturbed(
        school,
        undisturbed,
        case,
        injected,
        f"sync_users fails {'after its retry' if retried else 'at once, not retried'}: '{message}'; "
        "nothing linked or marked",
        "fault removed, re-run",
    )


PASSWORD_FAILURES = {
    # case: (how it is injected, the fault, the task's message)
    "password task throws: exit 0 and 'Scheduled task failed'": (
        "the double's password task throws 'Error reading from database'",
        lambda cfg: _double_fault(cfg, SEND_PASSWORDS, throw="Error reading from database"),
        "Moodle reported a failed task (exit status 0)",
    ),
    "password task lock held: exit 130": (
        "the password task's lock held by another process",
        lambda cfg: moodle_site.hold_lock(cfg, SEND_PASSWORDS),
        "could not obtain the task lock (exit 130)",
    ),
}


@pytest.mark.parametrize("case", list(PASSWORD_FAILURES))
def test_a_failing_password_task_leaves_the_links_made_and_nothing_marked_and_a_rerun_converges(
    school, run_cycle, undisturbed, capfd, case
):
    injected, fault, message = PASSWORD_FAILURES[case]
    capfd.readouterr()
    with fault(school.cfg):
        dr, states = run_cycle(retries=1)
    out = capfd.readouterr().out
    assert states["link_children"] == "success" and states["send_passwords"] == "failed", states
    assert states["mark"] == "upstream_failed" and task(dr, "send_passwords").try_number == 2
    assert message in out
    assert nothing_marked(school) and links(school) > 0  # linked, not yet marked: marking waits for the mail
    assert moodle_site.sent_emails(school.cfg) == []
    dr2, states = run_cycle(rerun=dr)
    assert dr2.state == "success", states
    assert_like_undisturbed(
        school,
        undisturbed,
        case,
        injected,
        f"send_passwords fails after its retry: '{message}'; the links are made, no request marked",
        "fault removed, re-run",
    )


def test_the_moodle_double_crashing_half_way_is_finished_by_the_retry(school, run_cycle, undisturbed, capfd):
    moodle_site.set_fault(school.cfg, SYNC_USERS, crash_after=2, times=1)
    capfd.readouterr()
    dr, states = run_cycle(retries=1)
    assert dr.state == "success", states
    assert task(dr, "sync_users").try_number == 2
    tries = re.findall(r"Moodle \\auth_db\\task\\sync_users: (\{.*\})", capfd.readouterr().out)
    assert [(t["exit_status"], t.get("created")) for t in map(ast.literal_eval, tries)] == [(255, 2), (0, 3)]
    assert_like_undisturbed(
        school,
        undisturbed,
        "the Moodle double crashing half-way through its users",
        "a PHP fatal error after 2 of 5 new users, once",
        "sync_users' first try fails (exit 255); 2 accounts made",
        "the task's own retry makes the other 3",
    )


# --- the task process killed (SIGKILL) inside each task and between tasks -------------------------------------

KILLS = {
    # case: the runner's kill point. One per state a dead process can leave: points that leave the same rows
    # (say, inside sync_users once Moodle's sync is done, and just after it) are one case.
    "SIGKILL in check: lock taken, no cycle record yet": {"kill_after": "include.parent_provisioning.cycle_lock:claim"},
    "SIGKILL between check and collect: cycle record and lock written": {"kill_after_task": "check"},
    "SIGKILL in collect: outcomes sent, not committed": {
        "kill_after_sql": "INSERT INTO `{w}parent_provisioning_outcomes`"
    },
    "SIGKILL between sync_users and link_children: accounts made": {"kill_after_task": "sync_users"},
    "SIGKILL in link_children: contexts and role assignments sent, not committed": {
        "kill_after": "include.parent_provisioning.moodle_db:ensure_role_assignments"
    },
    "SIGKILL in link_children: Moodle committed, outcomes sent": {
        "kill_after_sql": "INSERT INTO `{w}parent_provisioning_outcomes`@2"
    },
    "SIGKILL between link_children and send_passwords": {"kill_after_task": "link_children"},
    "SIGKILL in send_passwords: the passwords mailed": {
        "kill_after": "include.parent_provisioning.moodle_cli:run_task@2"
    },
    "SIGKILL in mark: requests updated, not committed": {
        "kill_after_sql": "UPDATE `{w}tvs_parent_moodle_provisioning` r JOIN"
    },
    "SIGKILL between mark and report: requests marked": {"kill_after_task": "mark"},
    "SIGKILL in report: cycle finished, lock kept": {
        "kill_after": "include.parent_provisioning.own_tables:finish_cycle"
    },
    "SIGKILL between report and notify: lock released, no email": {"kill_after_task": "report"},
}


@pytest.fixture(scope="module", autouse=True)
def runners(tmp_path_factory):
    """Started with the module, so the first runner is warm by the time the SIGKILL cases come."""
    ahead = runner.Ahead(tmp_path_factory.mktemp("runners"))
    yield ahead
    ahead.close()


@pytest.mark.parametrize("case", list(KILLS))
def test_a_task_process_killed_mid_cycle_converges_on_rerun(school, run_cycle, undisturbed, runners, case):
    spec = {k: v.format(w=school.cfg.wp_prefix) for k, v in KILLS[case].items()}
    logical_date = datetime.now(UTC).replace(microsecond=0)
    when = logical_date.isoformat()
    proc, out, log = runners.launch(logical_date=when, run_after=when, **spec)
    assert proc.wait(timeout=120) == -9, log.read_text()[-3000:]
    left = left_behind(school)
    dr, states = run_cycle(rerun=SimpleNamespace(logical_date=logical_date, run_after=logical_date))
    assert dr.state == "success", states
    assert dr.run_id == json.loads(out.read_text())["run_id"]  # the same run, cleared and run again
    point = ", ".join(f"{k}={v}" for k, v in spec.items()).replace("include.parent_provisioning.", "")
    assert_like_undisturbed(
        school, undisturbed, case, f"the run's process SIGKILLed ({point})", f"left: {left}", "re-run"
    )
