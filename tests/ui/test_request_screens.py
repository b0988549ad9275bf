"""The request screens and their JSON API, served by Airflow's real app with its real
login, against MariaDB: every action, and every refusal."""

from __future__ import annotations

import re

import pytest

from tests.cycle.school import School, use_settings
from tests.ui.conftest import login

BASE = "/parent-provisioning"


@pytest.fixture
def school(fresh):
    use_settings(fresh)
    return School(fresh)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def test_nothing_is_shown_without_an_airflow_session(client, school):
    assert client.get(f"{BASE}/").status_code == 401
    assert client.get(f"{BASE}/api/requests").status_code == 401
    client.cookies.set("_token", "forged")
    assert client.get(f"{BASE}/requests").status_code == 403


def test_the_plugin_is_in_airflows_navigation(client, school):
    login(client, "viewer")
    views = client.get("/api/v2/plugins").json()["plugins"]
    [plugin] = [p for p in views if p["name"] == "parent_provisioning"]
    [view] = plugin["external_views"]
    assert (view["name"], view["url_route"], view["href"]) == ("Parent provisioning", "parent-provisioning", f"{BASE}/")


def test_a_viewer_reads_but_cannot_act(client, school):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False)
    login(client, "viewer")
    page = client.get(f"{BASE}/requests/{rid}")
    assert page.status_code == 200 and "ann.lee@example.org" in page.text and "Approve" not in page.text
    assert client.post(f"{BASE}/api/requests/{rid}/status", json={"status": "approved"}).status_code == 403
    forged = client.post(f"{BASE}/requests/{rid}/approve", data={"csrf": "x"})
    assert forged.status_code == 403
    assert school.req(rid)["status"] == "pending"


def test_ops_approve_from_the_page_and_the_auth_row_is_listed(client, school):
    rid = school.request("Ann.Lee@Example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False)
    login(client, "ops")
    page = client.get(f"{BASE}/requests/{rid}")
    assert "Approve" in page.text
    done = client.post(f"{BASE}/requests/{rid}/approve", data={"csrf": csrf_of(page.text)}, follow_redirects=True)
    assert done.status_code == 200 and "approved; the next cycle creates the account" in done.text
    assert school.req(rid)["status"] == "approved"
    assert "(by ops in Airflow)" in school.req(rid)["system_comment"]
    users = client.get(f"{BASE}/auth-users")
    assert "ann.lee@example.org" in users.text and f"/requests/{rid}" in users.text


def test_a_forged_post_without_the_forms_token_is_refused(client, school):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False)
    login(client, "ops")
    assert client.post(f"{BASE}/requests/{rid}/approve").status_code == 403
    assert client.post(f"{BASE}/requests/{rid}/approve", data={"csrf": "0" * 40}).status_code == 403
    assert school.req(rid)["status"] == "pending"


def test_a_refused_action_says_why_and_changes_nothing(client, school):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned")
    login(client, "ops")
    page = client.get(f"{BASE}/requests/{rid}")
    response = client.post(f"{BASE}/requests/{rid}/approve", data={"csrf": csrf_of(page.text)}, follow_redirects=True)
    assert "only pending requests can be approved" in response.text
    assert school.req(rid)["status"] == "provisioned"


def test_deprovision_correct_and_comment_from_the_page(client, school):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="approved")
    login(client, "admin")
    token = csrf_of(client.get(f"{BASE}/requests/{rid}").text)
    client.post(
        f"{BASE}/requests/{rid}/child",
        data={"csrf": token, "position": 2, "first": "Bo", "surname": "Lee", "group": "9KM"},
    )
    client.post(f"{BASE}/requests/{rid}/staff-comment", data={"csrf": token, "comment": "Checked with the office"})
    client.post(f"{BASE}/requests/{rid}/status", data={"csrf": token, "status": "rejected"})
    req = school.req(rid)
    assert (req["child2_fname"], req["child2_tg"], req["staff_comment"]) == ("Bo", "9KM", "Checked with the office")
    assert req["status"] == "rejected"
    assert school.wp_rows("SELECT * FROM {auth}") == []


def test_the_queue_filters_and_pages_on_the_server(client, school):
    for n in range(60):
        school.request(f"p{n}@example.org", [("Amy", f"Lee{n}", "7RB")], status="pending", auth=False)
    login(client, "viewer")
    page = client.get(f"{BASE}/requests", params={"status": "pending", "page": 2})
    assert "60 request(s), page 2 of 2" in page.text and page.text.count('<span class="badge pending">') == 10
    found = client.get(f"{BASE}/api/requests", params={"q": "p42@example"}).json()
    assert found["total"] == 1 and found["requests"][0]["parent_email"] == "p42@example.org"
    assert client.get(f"{BASE}/api/requests", params={"sort": "1; DROP TABLE x"}).status_code == 400


def test_the_api_approves_and_refuses_with_reasons(client, school):
    rid = school.request("x@example.org", [("A", "B", "7RB")], status="pending", auth=False)
    token = login(client, "ops")
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {token}"}
    ok = client.post(f"{BASE}/api/requests/{rid}/status", json={"status": "approved"}, headers=headers)
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    again = client.post(f"{BASE}/api/requests/{rid}/status", json={"status": "approved"}, headers=headers)
    assert again.status_code == 409 and "only pending" in again.json()["error"]
    bad = client.post(f"{BASE}/api/requests/{rid}/status", json={"status": "provisioned"}, headers=headers)
    assert bad.status_code == 409
    got = client.get(f"{BASE}/api/requests/{rid}", headers=headers).json()
    assert got["request"]["status"] == "approved"


def test_upload_shows_verdicts_first_then_writes(client, school):
    from include.parent_provisioning.management import CSV_COLUMNS

    csv_text = ",".join(CSV_COLUMNS) + "\nMrs,Ann,Lee,ann.lee@example.org,Amy,Lee,7RB,,,,,,\nMr,B,C,bad,D,E,7RB,,,,,,\n"
    login(client, "ops")
    token = csrf_of(client.get(f"{BASE}/upload").text)
    preview = client.post(
        f"{BASE}/upload/preview", data={"csrf": token}, files={"file": ("users.csv", csv_text, "text/csv")}
    )
    assert preview.status_code == 200 and "Parent Email is not a usable address" in preview.text
    assert school.wp_rows("SELECT * FROM {req}") == []
    done = client.post(f"{BASE}/upload/commit", data={"csrf": token, "csv_text": csv_text}, follow_redirects=True)
    assert "Uploaded: 1 approved, 0 duplicate, 1 invalid row(s) skipped" in done.text
    assert [r["status"] for r in school.wp_rows("SELECT * FROM {req}")] == ["approved"]
    api = client.post(f"{BASE}/api/upload", json={"csv": csv_text}).json()
    assert [r["verdict"] for r in api["rows"]] == ["duplicate", "invalid"] and api["written"] is None
