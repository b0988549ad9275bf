"""The cycle's own emails to parents (task `email_parents`), off by default: with a template for
"provisioned" and one for "kept_back", a real cycle emails the parent of a request it provisioned and of one
kept back for what the parent wrote about a child, never one kept back for a reason of the school's, never
twice for the same thing, and no address or name reaches the task log."""

from __future__ import annotations

import json

import pytest

from include.parent_provisioning import names
from tests.cycle.test_notifications import loopback_smtp

TEMPLATES = {
    "generic_fixed": {"send_when": "provisioned", "subject": "Your Moodle account is ready"},
    "details_not_on_file": {"send_when": "kept_back"},
}


@pytest.fixture
def inbox(monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_VAR_{names.EMAIL_TEMPLATES_VARIABLE.upper()}", json.dumps(TEMPLATES))
    with loopback_smtp(monkeypatch) as box:
        yield box


def test_the_cycle_emails_provisioned_and_fixable_parents_once(school, run_cycle, inbox, capfd):
    school.pupil("Amy", "Lee", "7RB")
    ready = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    typo = school.request("bilal.khan@example.org", [("Bea", "Khan", "8CD")])  # no such pupil
    no_auth = school.request("cy.oduya@example.org", [("Amy", "Lee", "7RB")], auth=False)  # the school's to fix
    capfd.readouterr()
    dr, states = run_cycle()
    logs = "".join(capfd.readouterr())
    assert dr.state == "success" and states["email_parents"] == "success", states
    got = {to[0]: m["Subject"] for to, m in inbox.received if to[0] != "it@school.test"}
    assert got == {
        "ann.lee@example.org": "Your Moodle account is ready",
        "bilal.khan@example.org": "Your Moodle account request",
    }
    assert "sent to the parent by Airflow run" in school.req(ready)["system_comment"].splitlines()[-1]
    assert "sent to the parent" in school.req(typo)["system_comment"]
    assert "Email" not in school.req(no_auth)["system_comment"]
    assert "ann.lee" not in logs and "bilal" not in logs and "'sent': 2" in logs

    # The next cycle: the typo still there (same reason), nothing new to say: no email.
    dr, states = run_cycle()
    assert dr.state == "success" and len(inbox.received) == 2
    # The same run again (cleared): what it sent is not sent twice.
    dr2, states = run_cycle(rerun=dr)
    assert dr2.state == "success" and len(inbox.received) == 2


def test_without_a_send_when_template_the_cycle_emails_no_parent(school, run_cycle, inbox, monkeypatch):
    monkeypatch.delenv(f"AIRFLOW_VAR_{names.EMAIL_TEMPLATES_VARIABLE.upper()}")
    school.pupil("Amy", "Lee", "7RB")
    school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    dr, states = run_cycle()
    assert dr.state == "success" and states["email_parents"] == "success"
    assert inbox.received == []
