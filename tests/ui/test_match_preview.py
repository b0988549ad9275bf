"""The match preview: before staff approve a request, what the next cycle would do with it, read from
Moodle with the cycle's own code: the page, the queue's column and the JSON API say the same, and a
real cycle after the approval does exactly that. (The whole bad-input corpus is compared with its cycle
in tests/cycle/test_bad_input.py.)"""

from __future__ import annotations

import html
import json
import os
from datetime import date, timedelta

import pytest

from include.parent_provisioning import management as m
from include.parent_provisioning.settings import parse
from testbed import mariadb
from tests.cycle.school import School, settings_for, use_settings
from tests.ui.conftest import login

BASE = "/parent-provisioning"


@pytest.fixture
def school(fresh):
    use_settings(fresh)
    return School(fresh)


@pytest.fixture
def pending(school):
    """Four pending requests: a clear child, a tutor-group typo, a suspended account's parent, twins' namesakes."""
    amy = school.pupil("Amy", "Lee", "7RB")
    school.pupil("Bea", "Khan", "8CD")
    school.pupil("Kit", "Nash", "9KM")
    school.pupil("Kit", "Nash", "9KM")
    email = "dee.hart@example.org"
    school.user("Dee", "Hart", auth="db", email=email, username=email, suspended=1)  # access removed long ago
    dan = school.pupil("Dan", "Hart", "7RB")
    ids = {
        "clear": school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False),
        "typo": school.request("bilal.khan@example.org", [("Bea", "Khan", "8DC")], status="pending", auth=False),
        "suspended": school.request("dee.hart@example.org", [("Dan", "Hart", "7RB")], status="pending", auth=False),
        "ambiguous": school.request("max.nash@example.org", [("Kit", "Nash", "9KM")], status="pending", auth=False),
    }
    return ids, {"amy": amy, "dan": dan}


def test_the_preview_says_what_the_cycle_will_do_and_the_cycle_does_it(client, school, pending, run_cycle):
    ids, pupils = pending
    login(client, "ops")
    seen = {name: client.get(f"{BASE}/api/requests/{rid}/preview").json() for name, rid in ids.items()}
    assert seen["clear"]["would_provision"] and seen["clear"]["account"] == "created_by_sync"
    assert seen["clear"]["children"][0]["pupil"] == {
        "id": pupils["amy"], "first_name": "Amy", "surname": "Lee", "tutor_group": "7RB"
    }  # fmt: skip
    assert not seen["clear"]["existing_account"]
    assert seen["typo"]["reason_key"] == "child_not_found" and seen["typo"]["children"][0]["pupil"] is None
    assert "matches no pupil" in seen["typo"]["children"][0]["reason"]
    assert seen["suspended"]["account"] == "revived_by_sync" and seen["suspended"]["existing_account"]
    assert seen["suspended"]["links"] == [[1, pupils["dan"]]]
    assert seen["ambiguous"]["reason_key"] == "child_ambiguous"

    page = html.unescape(client.get(f"{BASE}/requests/{ids['typo']}").text)
    assert "Match preview" in page and "Would not be provisioned" in page and "matches no pupil" in page
    assert "Check the request against the school's records before approving" in page
    assert "<dt>Email address</dt>" in page and "<dt>First name</dt>" in page and "<dt>parent_fname" not in page
    page = html.unescape(client.get(f"{BASE}/requests/{ids['suspended']}").text)
    assert "An existing Moodle account with this email address was found" in page
    queue = client.get(f"{BASE}/api/requests", params={"status": "pending"}).json()["requests"]
    assert {r["id"]: r["match"]["reason_key"] for r in queue} == {
        rid: seen[name]["reason_key"] for name, rid in ids.items()
    }
    assert "child_not_found" in client.get(f"{BASE}/requests", params={"status": "pending"}).text

    s = parse(json.dumps(settings_for(school)))
    conn = mariadb.connect(school.cfg, school.cfg.wp_user, school.cfg.wp_db)
    try:
        for rid in ids.values():
            m.approve(conn, s, rid, "ops")
    finally:
        conn.close()
    dr, states = run_cycle()
    assert dr.state == "success", states
    for name, rid in ids.items():
        [outcome] = school.wp_rows("SELECT * FROM {out} WHERE run_id=%s AND request_id=%s", (dr.run_id, rid))
        assert outcome["reason_key"] == seen[name]["reason_key"], name
        assert json.loads(outcome["linked_children"]) == seen[name]["links"], name
        assert (school.req(rid)["status"] == "provisioned") == seen[name]["would_provision"], name


def test_a_request_no_cycle_takes_is_not_previewed_and_a_viewer_sees_no_preview(client, school):
    school.pupil("Amy", "Lee", "7RB")
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="rejected", auth=False)
    login(client, "ops")
    response = client.get(f"{BASE}/api/requests/{rid}/preview")
    assert response.status_code == 409 and "only pending and approved" in response.json()["detail"]
    assert "Match preview" not in client.get(f"{BASE}/requests/{rid}").text
    login(client, "viewer")
    assert client.get(f"{BASE}/api/requests/{rid}/preview").status_code == 403


def test_without_moodle_the_request_page_still_shows_and_says_why_there_is_no_preview(client, school, monkeypatch):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False)
    conn = json.loads(os.environ["AIRFLOW_CONN_MOODLE_DB"])
    monkeypatch.setenv("AIRFLOW_CONN_MOODLE_DB", json.dumps({**conn, "port": 1}))  # nothing listens there
    login(client, "ops")
    page = client.get(f"{BASE}/requests/{rid}")
    assert page.status_code == 200 and "Moodle&#39;s database did not answer" in page.text
    assert client.get(f"{BASE}/api/requests/{rid}/preview").status_code == 503


def test_the_overview_shows_the_pending_count_and_those_waiting_longer_than_the_setting(client, school):
    for n, days in enumerate((0, 3, 10, 30)):
        school.request(f"p{n}@example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False,
                       date_created=f"{date.today() - timedelta(days=days)} 09:00:00")  # fmt: skip
    login(client, "ops")
    page = html.unescape(client.get(f"{BASE}/").text)
    assert "4 pending</span>" in page and "2 pending request(s) received more than 7 days ago" in page
    use_settings(school, pending_warn_days=2)
    page = html.unescape(client.get(f"{BASE}/").text)
    assert "3 pending request(s) received more than 2 days ago" in page
