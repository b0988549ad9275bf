"""What ops and admins do with the production topology: a deadline alert leaving the triggerer for a
loopback SMTP server, "Provision now" clicked in a real browser, and the nightly schedule firing on its
own. Every task runs on a Celery worker (its host name in Airflow is the worker's)."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from include.parent_provisioning import names
from testbed import moodle_site
from testbed.airflow_stack import WORKERS
from testbed.moodle_site import SYNC_USERS
from tests.cycle.test_notifications import loopback_smtp
from tests.stack.conftest import DAG_ID, TEST_STACK_ENV, wait_for
from tests.ui.browser import CHROMIUM, chromium, log_in

OPS = ["it@school.test"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def on_workers(tis: dict[str, dict]) -> None:
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(tis, "success")
    assert {ti["hostname"] for ti in tis.values()} <= set(WORKERS), {t: ti["hostname"] for t, ti in tis.items()}
    assert {ti["queue"] for ti in tis.values()} == {"default"}  # Celery's queue


@pytest.fixture
def inbox():
    with loopback_smtp() as box:
        yield box, box.port


def test_a_deadline_alert_leaves_the_triggerer_for_the_smtp_server(on_stack, inbox):
    """Production defaults (180 minutes after queueing): the run's deadline row is moved to now, as if
    three hours had passed; the scheduler finds it missed, the triggerer runs the callback, the email goes."""
    school, stack = on_stack, on_stack.stack
    box, port = inbox
    school.use(smtp_port=port, notify_emails=OPS)
    school.pupil("Zebedee", "Quixotic", "7RB")
    school.request("wilhelmina.quill@example.org", [("Zebedee", "Quixotic", "7RB")], fname="Wilhelmina")
    moodle_site.set_fault(school.cfg, SYNC_USERS, hang=20, times=1)  # the run still going
    run_id = stack.trigger()
    wait_for(lambda: stack.run(run_id)["state"] == "running", 60)
    db = stack.metadata_db()
    try:
        with db.cursor() as cur:
            rows = wait_for(lambda: _deadlines(cur, run_id), 60)
            queued_at = datetime.fromisoformat(stack.run(run_id)["queued_at"])
            [(deadline_id, deadline_time)] = [
                (i, t) for i, t in rows if abs(t - queued_at - timedelta(minutes=180)) < timedelta(seconds=5)
            ]
            cur.execute("UPDATE deadline SET deadline_time = now() - interval '1 second' WHERE id = %s", (deadline_id,))
            db.commit()
    finally:
        db.close()
    alert = wait_for(lambda: [t for t in box.texts() if "past its deadline" in t], 120, 0.5)
    assert run_id in alert[0]
    for name in ("Zebedee", "Quixotic", "Wilhelmina", "quill"):
        assert name not in alert[0]
    # Run by the triggerer, once, and it succeeded.
    done = [("triggerer", "success", "include.parent_provisioning.airflow_adapter.deadline_missed")]
    wait_for(lambda: _callbacks(stack, run_id) == done, 60, 0.5)
    run = stack.wait_for_run(run_id)
    assert run["state"] == "success"
    assert len([t for t in box.texts() if "past its deadline" in t]) == 1  # once
    assert any(t.startswith("Parent provisioning: 1 provisioned") for t in box.texts())  # and the summary


def _deadlines(cur, run_id: str) -> list:
    cur.execute(
        "SELECT d.id, d.deadline_time FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id WHERE r.run_id = %s",
        (run_id,),
    )
    return cur.fetchall()


def _callbacks(stack, run_id: str) -> list[tuple]:
    """The run's callbacks: (who ran it, its state, the function)."""
    db = stack.metadata_db()
    try:
        with db.cursor() as cur:
            cur.execute(
                "SELECT type, state, data::json->'__var'->>'path' FROM callback WHERE data::text LIKE %s",
                (f"%{run_id}%",),
            )
            return [tuple(row) for row in cur.fetchall()]
    finally:
        db.close()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_provision_now_in_a_real_browser_runs_on_the_workers_and_the_run_link_opens(on_stack):
    from playwright.sync_api import expect, sync_playwright

    school, stack = on_stack, on_stack.stack
    school.pupil("Amy", "Lee", "7RB")
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    shots = ARTIFACTS / "stack-screens"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    with sync_playwright() as p, chromium(p) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        log_in(page, stack.base_url, "ops", stack.passwords()["ops"], timeout_ms=60000)
        page.get_by_role("link", name="Parent provisioning").first.click(timeout=60000)
        frame = page.frame_locator("iframe")
        frame.get_by_role("link", name="Requests").click(timeout=60000)
        frame.get_by_role("link", name=str(rid), exact=True).click()
        frame.get_by_role("button", name="Provision now").click()
        expect(frame.get_by_role("status")).to_contain_text("Provisioning cycle manual__", timeout=30000)
        page.screenshot(path=str(shots / "1-provision-now.png"))
        run_id = frame.get_by_role("status").inner_text().split("Provisioning cycle ", 1)[1].split()[0]
        frame.get_by_role("link", name="Open the run in Airflow").click()
        page.wait_for_url("**/dags/moodle_parent_provisioning/runs/**", timeout=30000, wait_until="commit")
        expect(page.get_by_text(run_id.rstrip(".:,")).first).to_be_visible(timeout=60000)
        page.screenshot(path=str(shots / "2-the-run.png"))
    run = stack.wait_for_run(run_id.rstrip(".:,"))
    assert run["state"] == "success" and run["triggered_by"] != "test"
    assert run["conf"][names.REQUEST_IDS] == [rid]
    on_workers(stack.task_instances(run["dag_run_id"]))
    assert school.req(rid)["status"] == "provisioned"
    assert school.moodle_rows("SELECT id FROM {role_assignments}")


def test_the_schedule_fires_a_run_on_its_own_and_each_task_runs_on_a_celery_worker(on_stack):
    """The DAG's cron (a test schedule of every minute, from PARENT_PROVISIONING_SCHEDULE as a school sets
    it), the scheduler creating the run, the workers running it."""
    school, stack = on_stack, on_stack.stack
    school.pupil("Amy", "Lee", "7RB")
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    before = {r["dag_run_id"] for r in stack.runs()}
    stack.restart("dag-processor", PARENT_PROVISIONING_SCHEDULE="* * * * *")
    try:
        wait_for(lambda: _schedule(stack) == "* * * * *", 180, 1)
        run = wait_for(lambda: _new_scheduled_run(stack, before), 150, 1)
    finally:
        stack.restart("dag-processor", PARENT_PROVISIONING_SCHEDULE=TEST_STACK_ENV["PARENT_PROVISIONING_SCHEDULE"])
    run = stack.wait_for_run(run["dag_run_id"])
    assert run["state"] == "success" and run["run_type"] == "scheduled"
    assert datetime.fromisoformat(run["run_after"]).second == 0  # on the minute, from the cron
    on_workers(stack.task_instances(run["dag_run_id"]))
    assert school.req(rid)["status"] == "provisioned"
    wait_for(lambda: _schedule(stack) == TEST_STACK_ENV["PARENT_PROVISIONING_SCHEDULE"], 180, 1)


def _schedule(stack) -> str:
    return stack.api("GET", f"/api/v2/dags/{DAG_ID}")["timetable_summary"]


def _new_scheduled_run(stack, before: set[str]) -> dict | None:
    return next((r for r in stack.runs() if r["run_type"] == "scheduled" and r["dag_run_id"] not in before), None)
