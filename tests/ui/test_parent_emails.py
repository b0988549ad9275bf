"""Emails to a parent from the request's screen, as the WordPress plugin's three were: each template
filled in from the request, previewed, sent to a real SMTP server on loopback through Airflow's SMTP
provider, and logged on the request without its body."""

from __future__ import annotations

import html
import json
import re

import pytest

from include.parent_provisioning import names, parent_emails
from testbed.sshd import free_port
from tests.cycle.school import School, use_settings
from tests.cycle.test_notifications import loopback_smtp, smtp_connection
from tests.ui.conftest import login

BASE = "/parent-provisioning"
TEMPLATES_VAR = f"AIRFLOW_VAR_{names.EMAIL_TEMPLATES_VARIABLE.upper()}"


@pytest.fixture
def school(fresh):
    use_settings(fresh, moodle_url="https://moodle.school.test")
    return School(fresh)


@pytest.fixture
def inbox(monkeypatch):
    monkeypatch.delenv(TEMPLATES_VAR, raising=False)
    with loopback_smtp(monkeypatch) as box:
        yield box


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


@pytest.mark.parametrize("key", list(parent_emails.DEFAULTS))
def test_each_template_is_previewed_sent_and_logged_without_its_body(client, school, inbox, key):
    rid = school.request("Ann.Lee@Example.org", [("Amy", "Lee", "7RB"), ("Bo", "Lee", "9KM")], title="Dr", sname="Lee")
    login(client, "ops")
    page = html.unescape(client.get(f"{BASE}/requests/{rid}", params={"email": key}).text)
    subject = parent_emails.DEFAULTS[key].subject
    assert "To:</b> ann.lee@example.org" in page and subject in page and "Dear Dr Lee" in page
    assert not inbox.received  # a preview sends nothing
    done = client.post(
        f"{BASE}/requests/{rid}/email", data={"csrf": _csrf(page), "template": key}, follow_redirects=True
    )
    assert f"email '{parent_emails.DEFAULTS[key].name}' sent to the parent" in html.unescape(done.text)
    [(to, message)] = inbox.received
    assert to == ["ann.lee@example.org"] and message["Subject"] == subject
    text = message.get_body(("html", "plain")).get_content()
    assert "Dear Dr Lee" in html.unescape(text) and "{{" not in text
    if key != "forgotten_password":
        assert "Amy Lee and Bo Lee" in html.unescape(text)
    last = school.req(rid)["system_comment"].splitlines()[-1]
    assert f"Email '{parent_emails.DEFAULTS[key].name}' sent to the parent (by ops in Airflow)" in last
    assert "Dear" not in school.req(rid)["system_comment"]


def test_a_school_edits_the_templates_in_a_variable_and_a_wrong_one_is_refused_with_the_key(
    client, school, inbox, monkeypatch
):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], fname="Ann")
    custom = {
        "welcome": {"name": "Welcome", "subject": "Welcome, {{parent_fname}}", "body": "Log in at {{moodle_url}}."}
    }
    monkeypatch.setenv(TEMPLATES_VAR, json.dumps(custom))
    login(client, "ops")
    answer = client.post(f"{BASE}/api/requests/{rid}/email", json={"template": "welcome", "send": True}).json()
    assert (
        answer["subject"] == "Welcome, Ann"
        and answer["body"] == "Log in at https://moodle.school.test."
        and answer["sent"]
    )
    assert [m["Subject"] for _, m in inbox.received] == ["Welcome, Ann"]
    monkeypatch.setenv(TEMPLATES_VAR, json.dumps({"welcome": {**custom["welcome"], "body": "Hi {{child_dob}}"}}))
    refused = client.post(f"{BASE}/api/requests/{rid}/email", json={"template": "welcome", "send": True})
    assert refused.status_code == 409 and "{{child_dob}}, which is not a placeholder" in refused.json()["error"]
    assert len(inbox.received) == 1


def test_a_mail_server_that_refuses_is_said_and_logged_and_a_viewer_cannot_send(client, school, monkeypatch):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(free_port()))  # nothing listens there
    monkeypatch.delenv(TEMPLATES_VAR, raising=False)
    login(client, "ops")
    page = client.get(f"{BASE}/requests/{rid}").text
    answer = client.post(f"{BASE}/requests/{rid}/email", data={"csrf": _csrf(page), "template": "generic_fixed"},
                         follow_redirects=True)  # fmt: skip
    assert "the email could not be sent" in html.unescape(answer.text)
    assert "could not be sent" in school.req(rid)["system_comment"].splitlines()[-1]
    login(client, "viewer")
    assert client.post(f"{BASE}/api/requests/{rid}/email", json={"template": "generic_fixed"}).status_code == 403
