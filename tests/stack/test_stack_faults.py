"""Faults of the production topology itself, each during a real run on the stack: a Celery worker
SIGKILLed in the middle of a task (the task is retried on the other worker), Redis and the scheduler
restarted mid-run, two schedulers at once. Each run must end as an undisturbed run of the same school
ends (tests/cycle/end_state.py), every task having succeeded exactly once. Rows go into RELIABILITY.md."""

from __future__ import annotations

import pprint
import time
from contextlib import contextmanager
from datetime import datetime

import pytest

from testbed import mariadb, moodle_site
from testbed.airflow_stack import WORKERS
from testbed.moodle_site import SYNC_USERS
from tests.cycle import end_state
from tests.cycle.test_faults import LIKE_UNDISTURBED, SETTINGS, build
from tests.reliability import record
from tests.stack.conftest import running_on, successful_tries, wait_for

SECTION = "stack"


@pytest.fixture(scope="module")
def undisturbed(stack, bed):
    """The end state an undisturbed run on the stack leaves (the fault tests' school)."""
    from tests.stack.conftest import StackSchool

    school = StackSchool(bed.reset(), stack)
    school.use(**SETTINGS)
    build(school)
    run, tis = school.cycle()
    assert run["state"] == "success", {t: ti["state"] for t, ti in tis.items()}
    state = end_state.capture(bed.cfg)
    assert [c[:2] for c in state["cycles"]] == [("finished", True)]
    return state


@pytest.fixture
def school(on_stack, undisturbed):
    on_stack.use(**SETTINGS)
    moodle_site.lay_out(on_stack.cfg, on_stack.bed.layout, lock_wait_s=1)
    return build(on_stack)


def assert_converged(school, undisturbed, run_id: str, case: str, injected: str, disturbed: str, how: str) -> None:
    run = school.stack.run(run_id)
    assert run["state"] == "success", run
    tries = successful_tries(school.stack, run_id)
    assert set(tries.values()) == {1}, tries  # nothing ran twice, nothing was lost
    state = end_state.capture(school.cfg)
    assert state["comment_lines_wrong"] == []
    diff = end_state.differences(state, undisturbed)
    assert diff == {}, pprint.pformat(diff, width=150)
    record(SECTION, case, injected, disturbed, f"{how}: {LIKE_UNDISTURBED}")


@contextmanager
def role_assignments_held(cfg):
    """A transaction holding every gap of Moodle's role_assignments: linking's INSERT waits in it."""
    conn = mariadb.admin_connect(cfg.moodle_db)
    try:
        cur = conn.cursor()
        cur.execute("BEGIN")
        cur.execute(f"SELECT id FROM `{cfg.moodle_prefix}role_assignments` FOR UPDATE")
        yield
    finally:
        conn.rollback()
        conn.close()


def waiting_insert(cfg) -> bool:
    conn = mariadb.admin_connect("information_schema")
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT COUNT(*) FROM PROCESSLIST WHERE USER = %s AND INFO LIKE %s",
            (cfg.moodle_user.name, f"INSERT INTO `{cfg.moodle_prefix}role_assignments`%"),
        )
        return cur.fetchone()[0] > 0
    finally:
        conn.close()


def kill_worker_running(school, run_id: str, task_id: str) -> str:
    worker = wait_for(lambda: running_on(school.stack, run_id, task_id))
    school.stack.kill(worker)
    return worker


def test_a_worker_killed_in_the_middle_of_link_children_the_other_worker_retries_it(school, undisturbed):
    stack = school.stack
    with role_assignments_held(school.cfg):
        run_id = stack.trigger()
        wait_for(lambda: waiting_insert(school.cfg), 180)  # linking's INSERT sent, its transaction open
        killed = kill_worker_running(school, run_id, "link_children")
    stack.wait_for_run(run_id)
    tries = stack.tries(run_id, "link_children")
    assert [t["hostname"] for t in tries][0] == killed
    assert tries[-1]["state"] == "success" and tries[-1]["hostname"] == next(w for w in WORKERS if w != killed)
    assert_converged(
        school,
        undisturbed,
        run_id,
        "Celery worker SIGKILLed in link_children",
        "the worker running link_children SIGKILLed (with its task process) while linking's INSERT waits "
        "in its open transaction",
        "no heartbeat: the scheduler fails the try after 20 s; MariaDB rolls the transaction back",
        "retried on the other worker",
    )


def test_a_worker_killed_in_the_middle_of_sync_users_the_other_worker_retries_it(school, undisturbed):
    stack = school.stack
    moodle_site.set_fault(school.cfg, SYNC_USERS, hang=8, times=1)  # Moodle's user sync slow to start, once
    logins = school.bed.ssh.logins()
    run_id = stack.trigger()
    wait_for(lambda: school.bed.ssh.logins() > logins, 180)  # the SSH session to Moodle is open
    killed = kill_worker_running(school, run_id, "sync_users")
    stack.wait_for_run(run_id)
    tries = stack.tries(run_id, "sync_users")
    assert tries[0]["hostname"] == killed
    assert tries[-1]["state"] == "success" and tries[-1]["hostname"] != killed
    assert_converged(
        school,
        undisturbed,
        run_id,
        "Celery worker SIGKILLed in sync_users",
        "the worker running sync_users SIGKILLed while Moodle's user sync runs over SSH",
        "no heartbeat: the scheduler fails the try after 20 s",
        "retried on the other worker",
    )


def disturbed_during_the_sync(school, disturb) -> str:
    """A run whose sync_users Moodle holds for 6 s, disturb(stack) while it runs; the run's id, once it ended."""
    stack = school.stack
    moodle_site.set_fault(school.cfg, SYNC_USERS, hang=6, times=1)
    run_id = stack.trigger()
    wait_for(lambda: running_on(stack, run_id, "sync_users"), 180)
    disturb(stack)
    stack.wait_for_run(run_id)
    return run_id


def restart_redis(stack) -> None:
    stack.stop("redis")
    time.sleep(5)  # the broker down while tasks finish and the next ones are due
    stack.start("redis")


def restart_the_scheduler(stack) -> None:
    stack.kill("scheduler")
    stack.start_airflow("scheduler")


def test_redis_restarted_mid_run_loses_and_doubles_nothing(school, undisturbed):
    lost = broker_lost(school.stack)
    run_id = disturbed_during_the_sync(school, restart_redis)
    assert all(broker_lost(school.stack)[w] > lost[w] for w in WORKERS)  # each worker saw the broker go and come back
    assert_converged(
        school,
        undisturbed,
        run_id,
        "Redis restarted mid-run",
        "Celery's broker (Redis) stopped for 5 s while sync_users runs, then started again, empty",
        "both workers log the broker lost, then reconnect",
        "the run goes on",
    )


def test_the_scheduler_restarted_mid_run_loses_and_doubles_nothing(school, undisturbed):
    run_id = disturbed_during_the_sync(school, restart_the_scheduler)
    assert len(queued_by(school.stack, run_id)) == 2  # the tasks after the kill were queued by the new scheduler
    assert_converged(
        school,
        undisturbed,
        run_id,
        "scheduler SIGKILLed and restarted mid-run",
        "the scheduler SIGKILLed while sync_users runs on a worker, then started again",
        "the running task goes on on its worker; the new scheduler adopts the run",
        "the run goes on",
    )


def test_two_schedulers_still_run_one_cycle_at_a_time(on_stack):
    school, stack = on_stack, on_stack.stack
    school.pupil("Amy", "Lee", "7RB")
    school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    stack.start_airflow("scheduler-2")
    try:
        wait_for(lambda: len(live_schedulers(stack)) == 2, 120, 1)
        run_ids = [stack.trigger() for _ in range(3)]
        runs = [stack.wait_for_run(r) for r in run_ids]
        assert [r["state"] for r in runs] == ["success"] * 3
        spans = sorted((_t(r["start_date"]), _t(r["end_date"])) for r in runs)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False)), spans
        for r in run_ids:
            assert set(successful_tries(stack, r).values()) == {1}
        cycles = school.wp_rows("SELECT run_id, state FROM {cycles} ORDER BY started_at")
        assert [c["run_id"] for c in cycles] == [r["dag_run_id"] for r in sorted(runs, key=lambda r: r["start_date"])]
        assert {c["state"] for c in cycles} == {"finished"}
        assert len(live_schedulers(stack)) == 2
    finally:
        stack.stop("scheduler-2")
    record(
        SECTION,
        "two schedulers at once",
        "a second scheduler on the same PostgreSQL metadata database (Airflow's HA mode); three cycles "
        "triggered at once",
        "both schedulers heartbeat, on one database",
        "the runs ran one after another (max_active_runs=1), each task once, three cycle records: one cycle at a time",
    )


def broker_lost(stack) -> dict[str, int]:
    return {w: stack.log(w).read_text(errors="replace").count("Connection to broker lost") for w in WORKERS}


def queued_by(stack, run_id: str) -> set[int]:
    """The scheduler jobs that queued the run's tasks."""
    conn = stack.metadata_db()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT DISTINCT queued_by_job_id FROM task_instance WHERE run_id = %s", (run_id,))
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def live_schedulers(stack) -> list[str]:
    conn = stack.metadata_db()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT hostname FROM job WHERE job_type = 'SchedulerJob' AND state = 'running'"
                " AND latest_heartbeat > now() - interval '30 seconds'"
            )
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value)
