"""Ops hear about every cycle by email, once per failed run, and when a run overstays its deadline:
real DAG runs sending through Airflow's SMTP provider to a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from contextlib import contextmanager
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller

from include.parent_provisioning import airflow_adapter, names
from testbed import moodle_site
from testbed.moodle_site import SYNC_USERS
from testbed.sshd import free_port
from tests.cycle.school import use_settings

DAGS = Path(__file__).resolve().parents[2] / "dags"
OPS = ["it@school.test", "head.of.it@school.test"]
BASE_URL = "https://airflow.school.test"


class Inbox:
    """What the loopback SMTP server received: (recipients, parsed message) per email."""

    def __init__(self):
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"

    def texts(self) -> list[str]:
        return [f"{m['Subject']}\n{m.get_body(('html', 'plain')).get_content()}" for _, m in self.received]


def smtp_connection(port: int) -> str:
    extra = {"from_email": "airflow@school.test", "disable_ssl": True, "disable_tls": True, "retry_limit": 0}
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra})


@pytest.fixture(autouse=True)
def settings_put_back(monkeypatch):
    """use_settings() writes os.environ itself: later tests must not inherit these notify_emails."""
    key = f"AIRFLOW_VAR_{names.SETTINGS_VARIABLE.upper()}"
    monkeypatch.setenv(key, os.environ.get(key, ""))  # undone after the test, whoever wrote it since


@contextmanager
def loopback_smtp(monkeypatch=None):
    """A real SMTP server on a loopback port: its Inbox, with .port. Given monkeypatch, Airflow's
    smtp_default connection points at it for the test."""
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    if monkeypatch is not None:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(controller.port))
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def inbox(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
    with loopback_smtp(monkeypatch) as box:
        yield box


@pytest.fixture
def named_school(school, fresh):
    """Requests whose parents and children have names no email may carry."""
    use_settings(fresh, notify_emails=OPS)
    school.pupil("Zebedee", "Quixotic", "7RB")
    ids = {
        "ok": school.request("wilhelmina.quill@example.org", [("Zebedee", "Quixotic", "7RB")], fname="Wilhelmina"),
        "no_pupil": school.request("ottoline.vexley@example.org", [("Yolanda", "Quixotic", "7RB")], fname="Ottoline"),
        "no_auth": school.request("bartholomew.quince@example.org", [("Zebedee", "Quixotic", "7RB")], auth=False),
    }
    names = ["Zebedee", "Quixotic", "Wilhelmina", "Ottoline", "Yolanda", "Bartholomew", "quill", "vexley", "quince"]
    return ids, names


def test_the_summary_email_has_counts_ids_reasons_and_the_run_link_but_no_names(named_school, run_cycle, inbox):
    ids, names = named_school
    dr, states = run_cycle()
    assert dr.state == "success" and states["notify"] == "success", states
    assert len(inbox.received) == 1
    to, message = inbox.received[0]
    assert sorted(to) == sorted(OPS)
    assert message["Subject"].startswith("Parent provisioning: 1 provisioned, 2 not provisioned, 0 deferred")
    text = inbox.texts()[0]
    assert f"<code>child_not_found</code> (1): requests {ids['no_pupil']}" in text
    assert f"<code>no_auth_row</code> (1): requests {ids['no_auth']}" in text
    assert f"{BASE_URL}/dags/moodle_parent_provisioning/runs/{quote(dr.run_id, safe='')}" in text
    assert "user sync, predicted: 2 created, 0 suspended, 0 revived, 0 refused" in text
    assert "user sync, done: 2 created, 0 suspended, 0 revived" in text
    for name in names:
        assert name.lower() not in text.lower(), name
    assert "@example.org" not in text


def test_the_summary_email_lists_the_warnings_and_the_override_in_words():
    from include.parent_provisioning import notify

    summary = {
        "run_id": "manual__x",
        "requests_taken": 0,
        "provisioned": 0,
        "not_provisioned": 0,
        "deferred": 0,
        "needs_attention": [],
        "failed": {},
        "allow_mass_suspension": True,
        "allow_mass_unlink": True,
        "triggered_by": "admin",
        "links_made": 4,
        "links_removed": 3,
        "unlinks": {
            "unlinked": 3,
            "unlinked_by_reason": {"child_changed": 1, "request_bogus": 2},
            "leaver_links": 1,
            "leavers_unlinked": False,
            "leavers": [{"request_id": 17, "parent": 300, "child": 41}],
            "parents_without_child": {"300": [17]},
        },
        "warnings": ["Moodle's user sync suspended 3 accounts; predicted 2 (amy@example.org)"],
        "sync": {
            "prediction": {
                "removeuser": "suspend",
                "auth_rows": 9,
                "accounts": 12,
                "created": 0,
                "suspended": 2,
                "revived": 0,
                "refused": 0,
            },
            "actual": {"suspended": 3},
        },
    }
    html = notify.summary_email(summary, "http://a/run").html
    assert "<h3>Warnings</h3><ul><li>Moodle&#x27;s user sync suspended 3 accounts; predicted 2" in html
    assert "allow_mass_suspension=true, triggered by admin" in html
    assert "allow_mass_unlink=true, triggered by admin" in html
    assert "<th align='left'>Links removed</th><td>3</td>" in html
    assert (
        "Links removed: 3 parent-child link(s) whose requests no longer justify them (child_changed 1, request_bogus 2)"
        in html
    )
    assert "Leavers: 1 link(s) to a child no longer a pupil, kept (unlink_leavers is off); requests 17" in html
    assert "Parents with no current child: 1; their requests 17" in html
    assert "2 suspended, 0 revived, 0 refused (of 12 parent accounts, 9 auth rows" in html
    assert "{" not in html and "@example.org" not in html  # words, not a dict; no email address


def test_the_failure_email_keeps_the_whole_refusal_of_a_mass_suspension():
    from include.parent_provisioning import notify
    from include.parent_provisioning.settings import parse
    from include.parent_provisioning.user_sync import Prediction

    refusal = Prediction("suspend", 3, 400, 0, 380, 0, 0).refusal(parse({"moodle_dir": "/m"}))
    html = notify.failure_email("d", "r", "sync_users", 1, RuntimeError(refusal), "http://a/run").html
    assert len(refusal) > 300 and "trigger the DAG with allow_mass_suspension=true" in html


def test_a_failing_task_alerts_once_not_once_per_retry(named_school, school, run_cycle, inbox):
    moodle_site.set_fault(school.cfg, SYNC_USERS, throw="Error reading from database")
    dr, states = run_cycle(retries=2, retry_delay_s=1)
    assert dr.state == "failed" and states["sync_users"] == "failed" and states["notify"] == "upstream_failed"
    sync = next(ti for ti in dr.get_task_instances() if ti.task_id == "sync_users")
    assert sync.try_number == 3
    assert len(inbox.received) == 1, [m["Subject"] for _, m in inbox.received]
    assert inbox.received[0][1]["Subject"] == f"Parent provisioning FAILED at sync_users ({dr.run_id})"
    text = inbox.texts()[0]
    assert "Scheduled task failed" in text or "Moodle reported a failed task" in text
    assert "@example.org" not in text


def test_a_mail_server_that_refuses_fails_notify_but_not_the_cycle_it_reports(named_school, run_cycle, monkeypatch):
    ids, _ = named_school
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(free_port()))  # nothing listens there
    dr, states = run_cycle()
    assert states["report"] == "success" and states["mark"] == "success"
    assert states["notify"] == "failed" and dr.state == "failed"
    report = next(ti for ti in dr.get_task_instances() if ti.task_id == "report").xcom_pull(task_ids="report")
    assert report["provisioned"] == 1 and report["failed"]["child_not_found"] == [ids["no_pupil"]]


def test_without_notify_emails_nothing_is_sent(school, run_cycle, inbox):
    school.pupil("Ada", "Lane", "7RB")
    school.request("ada.lane@example.org", [("Ada", "Lane", "7RB")])
    dr, states = run_cycle()
    assert dr.state == "success" and states["notify"] == "success"
    assert inbox.received == []


def test_the_deadline_callback_emails_while_the_run_is_still_going(fresh, inbox):

    use_settings(fresh, notify_emails=OPS)
    run = {"dag_id": names.DAG_ID, "dag_run_id": "scheduled__2026-09-01T01:00:00+00:00", "state": "running"}
    run["queued_at"] = "2026-09-01T01:00:05Z"
    deadline = {"id": "0199", "deadline_time": "2026-09-01T04:00:05Z"}
    asyncio.run(airflow_adapter.deadline_missed(context={"dag_run": run, "deadline": deadline}))
    assert len(inbox.received) == 1
    assert (
        inbox.received[0][1]["Subject"] == f"Parent provisioning still running past its deadline ({run['dag_run_id']})"
    )
    assert f"{BASE_URL}/dags/moodle_parent_provisioning/runs/{quote(run['dag_run_id'], safe='')}" in inbox.texts()[0]
    # A run that already failed was alerted by its failed task: no second email hours later.
    asyncio.run(airflow_adapter.deadline_missed(context={"dag_run": {**run, "state": "failed"}, "deadline": deadline}))
    assert len(inbox.received) == 1


def test_the_dag_declares_its_deadline_from_the_environment(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import AsyncCallback, DeadlineReference

    monkeypatch.setenv("PARENT_PROVISIONING_DEADLINE_MINUTES", "150")
    monkeypatch.setenv("PARENT_PROVISIONING_OVERRUN_MINUTES", "45")
    dag = DagBag(dag_folder=str(DAGS)).get_dag(names.DAG_ID)
    fixed, overrun = dag.deadline
    assert fixed.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert fixed.interval.total_seconds() == 150 * 60
    # "Far longer than usual": 45 minutes past the average of the last ten runs, once three have finished.
    assert overrun.reference == DeadlineReference.AVERAGE_RUNTIME(max_runs=10, min_runs=3)
    assert overrun.interval.total_seconds() == 45 * 60
    for alert in (fixed, overrun):
        assert isinstance(alert.callback, AsyncCallback)
        assert alert.callback.path == "include.parent_provisioning.airflow_adapter.deadline_missed"
    assert inspect.iscoroutinefunction(airflow_adapter.deadline_missed)
    assert all(airflow_adapter.task_failed in t.on_failure_callback for t in dag.tasks)
    monkeypatch.setenv("PARENT_PROVISIONING_DEADLINE_MINUTES", "0")
    (only,) = DagBag(dag_folder=str(DAGS)).get_dag(names.DAG_ID).deadline
    assert only.reference == DeadlineReference.AVERAGE_RUNTIME(max_runs=10, min_runs=3)
    monkeypatch.setenv("PARENT_PROVISIONING_OVERRUN_MINUTES", "0")
    assert not DagBag(dag_folder=str(DAGS)).get_dag(names.DAG_ID).deadline
