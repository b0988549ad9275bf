"""De-provisioning several requests at once, from the API and the Requests page: the same rule
as one request, and the mass-suspension guard: more auth rows removed at once than
max_suspensions_per_cycle, or a larger share of the parents with an auth row than
max_suspension_fraction, asks for an explicit confirmation."""

from __future__ import annotations

import pytest

from tests.cycle.school import School, use_settings
from tests.ui.conftest import login
from tests.ui.test_request_screens import BASE, csrf_of

LIMIT = 3


@pytest.fixture
def school(fresh):
    use_settings(fresh, max_suspensions_per_cycle=LIMIT, max_suspension_fraction=1.0)  # the count alone
    return School(fresh)


def provisioned(school, n: int) -> list[int]:
    return [school.request(f"p{k}@example.org", [("Amy", f"Lee{k}", "7RB")], status="provisioned") for k in range(n)]


def auth_rows(school) -> int:
    return len(school.wp_rows("SELECT id FROM {auth}"))


def test_the_api_deprovisions_up_to_the_limit_without_asking(client, school):
    rids = provisioned(school, LIMIT)
    login(client, "ops")
    done = client.post(f"{BASE}/api/requests/status", json={"ids": rids, "status": "rejected"})
    assert done.status_code == 200 and done.json()["changed"] == LIMIT
    assert [school.req(r)["status"] for r in rids] == ["rejected"] * LIMIT
    assert auth_rows(school) == 0
    assert all("(by ops in Airflow)" in school.req(r)["system_comment"] for r in rids)


def test_the_api_refuses_more_than_the_limit_with_the_figures_until_confirmed(client, school):
    rids = provisioned(school, LIMIT + 2)
    login(client, "ops")
    body = {"ids": rids, "status": "rejected"}
    refused = client.post(f"{BASE}/api/requests/status", json=body)
    assert refused.status_code == 409
    answer = refused.json()
    assert (answer["would_remove_auth_rows"], answer["limit"]) == (LIMIT + 2, LIMIT)
    assert "5 of these 5 requests would lose their auth row" in answer["error"]
    assert auth_rows(school) == LIMIT + 2 and {school.req(r)["status"] for r in rids} == {"provisioned"}
    done = client.post(f"{BASE}/api/requests/status", json={**body, "confirm_mass_deprovision": True})
    assert done.status_code == 200 and done.json()["changed"] == LIMIT + 2
    assert auth_rows(school) == 0


def test_the_api_asks_when_the_share_of_parents_is_over_the_fraction_though_under_the_count(client, fresh):
    use_settings(fresh, max_suspensions_per_cycle=50, max_suspension_fraction=0.25)
    school = School(fresh)
    rids = provisioned(school, 8)
    login(client, "ops")
    body = {"ids": rids[:3], "status": "rejected"}
    refused = client.post(f"{BASE}/api/requests/status", json=body)  # 3 of 8: 38 %, over 25 %
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert "38 % of the 8 with an auth row, more than max_suspension_fraction's 25 %" in error
    assert "max_suspensions_per_cycle" not in error
    assert auth_rows(school) == 8
    done = client.post(f"{BASE}/api/requests/status", json={"ids": rids[:2], "status": "rejected"})  # 2 of 8: 25 %
    assert done.status_code == 200 and done.json()["changed"] == 2
    assert auth_rows(school) == 6


def test_requests_without_an_auth_row_do_not_count_and_each_refusal_is_reported(client, school):
    rids = provisioned(school, LIMIT)
    pending = [school.request(f"q{k}@example.org", [("A", "B", "7RB")], status="pending", auth=False) for k in range(3)]
    login(client, "ops")
    done = client.post(f"{BASE}/api/requests/status", json={"ids": rids + pending + [999999], "status": "pending"})
    assert done.status_code == 200
    results = {r["request_id"]: r for r in done.json()["results"]}
    assert done.json()["changed"] == LIMIT
    assert "already pending" in results[pending[0]]["error"] and "does not exist" in results[999999]["error"]


def test_a_viewer_cannot_and_a_bad_status_is_refused(client, school):
    rids = provisioned(school, 1)
    login(client, "viewer")
    assert client.post(f"{BASE}/api/requests/status", json={"ids": rids, "status": "rejected"}).status_code == 403
    login(client, "ops")
    bad = client.post(f"{BASE}/api/requests/status", json={"ids": rids, "status": "provisioned"})
    assert bad.status_code == 409 and "status must be one of" in bad.json()["error"]
    assert school.req(rids[0])["status"] == "provisioned"


def test_the_requests_page_asks_for_confirmation_over_the_limit(client, school):
    rids = provisioned(school, LIMIT + 1)
    login(client, "ops")
    page = client.get(f"{BASE}/requests")
    assert "Change the status of several requests" in page.text and 'name="confirm"' not in page.text
    form = {"csrf": csrf_of(page.text), "ids": ", ".join(map(str, rids)), "status": "bogus"}
    asked = client.post(f"{BASE}/requests/status", data=form, follow_redirects=True)
    assert "4 of these 4 requests would lose their auth row" in asked.text
    assert 'name="confirm"' in asked.text and f'value="{form["ids"]}"' in asked.text
    assert auth_rows(school) == LIMIT + 1
    done = client.post(f"{BASE}/requests/status", data={**form, "confirm": "yes"}, follow_redirects=True)
    assert f"{LIMIT + 1} request(s) set to bogus" in done.text
    assert {school.req(r)["status"] for r in rids} == {"bogus"} and auth_rows(school) == 0
    assert client.post(f"{BASE}/requests/status", data={**form, "csrf": "0" * 40}).status_code == 403


def test_a_viewer_sees_no_bulk_form(client, school):
    login(client, "viewer")
    page = client.get(f"{BASE}/requests")
    assert page.status_code == 403 and "Change the status of several requests" not in page.text
