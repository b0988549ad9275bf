"""The request screens and their JSON API, served by Airflow's real app with its real
login, against MariaDB: every action, and every refusal."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import unquote_plus

import pytest

from include.parent_provisioning import management as m
from include.parent_provisioning import names, own_tables
from include.parent_provisioning.settings import parse
from testbed import mariadb
from tests.cycle.school import School, settings_for, use_settings
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


def test_a_viewer_sees_counts_and_cycles_but_no_parents_or_childrens_data_and_cannot_act(client, school):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False)
    login(client, "viewer")
    overview = client.get(f"{BASE}/")
    assert overview.status_code == 200 and ">pending</span><b>1</b>" in overview.text
    assert f'href="{BASE}/requests' not in overview.text  # no way in to the personal data
    for path in (f"/requests/{rid}", "/requests", "/requests?q=ann", "/auth-users", "/upload"):
        page = client.get(f"{BASE}{path}")
        assert page.status_code == 403, path
        assert "shown only to users who manage requests" in html.unescape(page.text) and "ann.lee" not in page.text
    for path in (f"/api/requests/{rid}", "/api/requests", "/api/requests?q=ann"):
        answer = client.get(f"{BASE}{path}")
        assert answer.status_code == 403 and "ann.lee" not in answer.text, path
        assert "shown only to users who manage requests" in answer.json()["detail"]
    assert client.post(f"{BASE}/api/requests/{rid}/status", json={"status": "approved"}).status_code == 403
    forged = client.post(f"{BASE}/requests/{rid}/approve", data={"csrf": "x"})
    assert forged.status_code == 403
    assert school.req(rid)["status"] == "pending"


def test_the_api_returns_what_the_page_shows_and_never_the_old_password_column(client, school):
    rid = school.request(
        "ann.lee@example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False, provisioned_initialpass="Secr3t!"
    )
    login(client, "ops")
    got = client.get(f"{BASE}/api/requests/{rid}").json()["request"]
    assert list(got) == list(m.SHOWN_FIELDS)
    assert "Secr3t!" not in json.dumps(got) and "provisioned_initialpass" not in got
    assert got["parent_email"] == "ann.lee@example.org" and got["child_fname"] == "Amy"


def test_there_is_no_api_docs_page_or_schema_to_reach_without_login(client, school):
    for path in ("/api/docs", "/api/openapi.json", "/api/redoc"):
        assert client.get(f"{BASE}{path}").status_code in (401, 404), path
        login(client, "admin")
        assert client.get(f"{BASE}{path}").status_code == 404, path
        client.cookies.clear()


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
    done = client.post(
        f"{BASE}/requests/{rid}/status", data={"csrf": token, "status": "rejected"}, follow_redirects=True
    )
    assert "Status approved -> rejected; auth row removed: the parent gets no Moodle account from it" in text(done)
    req = school.req(rid)
    assert (req["child2_fname"], req["child2_tg"], req["staff_comment"]) == ("Bo", "9KM", "Checked with the office")
    assert req["status"] == "rejected"
    assert school.wp_rows("SELECT * FROM {auth}") == []


def text(response) -> str:
    """The page as a person reads it: entities such as &#39; and &gt; turned back into characters."""
    return html.unescape(response.text)


def test_rejecting_a_provisioned_parent_from_the_page_asks_first_then_does_it(client, school):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned")
    login(client, "ops")
    page = text(client.get(f"{BASE}/requests/{rid}"))
    assert "This parent has access to Moodle." in page and "the parent loses access to Moodle" in page
    assert 'name="confirm"' not in page
    form = {"csrf": csrf_of(page), "status": "rejected"}
    asked = client.post(f"{BASE}/requests/{rid}/status", data=form, follow_redirects=True)
    assert asked.status_code == 200
    assert (
        f"Request {rid} is provisioned: rejecting it removes its auth row, so the parent loses access to Moodle: the"
        " next provisioning cycle (the nightly run, or 'Provision now') runs Moodle's user sync, which suspends the"
        " parent's account" in text(asked)
    )
    assert "Confirm: Reject</button>" in text(asked) and 'name="confirm" value="yes"' in asked.text
    assert school.req(rid)["status"] == "provisioned" and len(school.wp_rows("SELECT * FROM {auth}")) == 1
    done = client.post(f"{BASE}/requests/{rid}/status", data={**form, "confirm": "yes"}, follow_redirects=True)
    assert (
        f"Request {rid}: Status provisioned -> rejected; auth row removed: the parent's Moodle account is suspended"
        " at the next cycle" in text(done)
    )
    assert "Confirm: " not in text(done)
    assert school.req(rid)["status"] == "rejected" and school.wp_rows("SELECT * FROM {auth}") == []
    # The confirm button is offered only while the request is still provisioned.
    stale = client.get(f"{BASE}/requests/{rid}", params={"confirm_status": "pending"})
    assert "Confirm: " not in text(stale)


def test_correcting_a_child_on_a_provisioned_request_keeps_the_parents_access(client, school):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned")
    login(client, "ops")
    page = text(client.get(f"{BASE}/requests/{rid}"))
    assert "Saving a corrected child sets this request back to approved" in page
    child = {"csrf": csrf_of(page), "position": 1, "first": "Amy", "surname": "Lee", "group": "8CD"}
    done = client.post(f"{BASE}/requests/{rid}/child", data=child, follow_redirects=True)
    assert (
        f"Request {rid}: Child 1 corrected on a provisioned request: back to approved; the parent keeps access and"
        " the next cycle links the corrected child" in text(done)
    )
    assert (school.req(rid)["status"], school.req(rid)["child_tg"]) == ("approved", "8CD")
    assert len(school.wp_rows("SELECT * FROM {auth}")) == 1


def test_the_api_asks_before_taking_a_provisioned_parents_access_away(client, school):
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned")
    login(client, "ops")
    refused = client.post(f"{BASE}/api/requests/{rid}/status", json={"status": "unknown"})
    assert refused.status_code == 409
    answer = refused.json()
    assert answer["confirm_with"] == {"confirm_access_removal": True} and answer["suspends_account"] is True
    assert f"Request {rid} is provisioned: marking it unknown removes its auth row" in answer["error"]
    assert school.req(rid)["status"] == "provisioned" and len(school.wp_rows("SELECT * FROM {auth}")) == 1
    done = client.post(f"{BASE}/api/requests/{rid}/status", json={"status": "unknown", "confirm_access_removal": True})
    assert done.status_code == 200
    assert done.json()["message"] == (
        "Status provisioned -> unknown; auth row removed: the parent's Moodle account is suspended at the next cycle"
    )
    assert school.req(rid)["status"] == "unknown" and school.wp_rows("SELECT * FROM {auth}") == []


def test_the_overview_shows_how_many_accounts_each_cycle_ended(client, fresh, school):
    wp = mariadb.admin_connect(fresh.cfg.wp_db)
    try:
        own_tables.create_own_tables(wp, parse(settings_for(fresh)))
    finally:
        wp.close()
    for run_id, started, summary in (
        ("scheduled__new", "2025-03-02 01:00:00", {"requests_taken": 4, "provisioned": 3, "accounts_suspended": 2}),
        ("scheduled__old", "2025-03-01 01:00:00", {"requests_taken": 1, "provisioned": 1}),  # before the key existed
    ):
        school.wp_exec(
            "INSERT INTO {cycles} (run_id, started_at, finished_at, state, summary) VALUES (%s, %s, %s, %s, %s)",
            (run_id, started, started, "finished", json.dumps(summary)),
        )
    login(client, "viewer")
    page = text(client.get(f"{BASE}/"))
    assert ">Access ended</th>" in page and "When access starts and ends" in page
    assert re.findall(r'<td class="access-ended">([^<]*)</td>', page) == ["2", ""]


def test_the_queue_filters_and_pages_on_the_server(client, school):
    for n in range(60):
        school.request(f"p{n}@example.org", [("Amy", f"Lee{n}", "7RB")], status="pending", auth=False)
    login(client, "ops")
    page = client.get(f"{BASE}/requests", params={"status": "pending", "page": 2})
    assert "60 request(s), page 2 of 2" in page.text and page.text.count('<span class="badge pending">') == 10
    found = client.post(f"{BASE}/api/requests/search", json={"q": "p42@example"}).json()
    assert found["total"] == 1 and found["requests"][0]["parent_email"] == "p42@example.org"
    in_url = client.get(f"{BASE}/api/requests", params={"q": "p42@example"})
    assert in_url.status_code == 400 and "would be written to Airflow's access log" in in_url.json()["detail"]
    assert client.get(f"{BASE}/requests", params={"q": "p42"}).status_code == 400
    form = {"csrf": csrf_of(page.text), "q": "Amy Lee", "status": "pending", "type": "", "sort": "id", "dir": "asc"}
    searched = client.post(f"{BASE}/requests/search", data=form)  # 60 match: two pages, the pager posts again
    assert "60 request(s), page 1 of 2" in searched.text and 'name="q" value="Amy Lee"' in searched.text
    second = client.post(f"{BASE}/requests/search", data={**form, "page": 2})
    assert "60 request(s), page 2 of 2" in second.text and "p59@example.org" in second.text
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


def test_search_finds_every_child_and_the_comments_and_the_queue_sorts_by_surname(client, school):
    from include.parent_provisioning.requests import UPLOADED_REST

    first = school.request("zoe.adams@example.org", [("Amy", "Adams", "7RB"), ("Bo", "Quill", "8CD")], sname="Zeta")
    second = school.request(
        "yan.brook@example.org", [("Cy", "Brook", "7RB"), ("Di", "Brook", "8CD"), ("Ed", "Vantongeren", "9KM")],
        sname="Alpha", request_type=UPLOADED_REST,
    )  # fmt: skip
    login(client, "ops")
    token = csrf_of(client.get(f"{BASE}/requests").text)
    client.post(f"{BASE}/requests/{first}/staff-comment", data={"csrf": token, "comment": "phoned about Marjoribanks"})

    def found(q: str) -> list[int]:
        return [r["id"] for r in client.post(f"{BASE}/api/requests/search", json={"q": q}).json()["requests"]]

    assert found("Bo Quill") == [first]  # child 2
    assert found("Vantongeren") == [second]  # child 3
    assert found("Marjoribanks") == [first]  # the staff comment
    by_surname = client.get(f"{BASE}/api/requests", params={"sort": "parent_sname", "dir": "asc"}).json()
    assert [r["id"] for r in by_surname["requests"]] == [second, first]
    rest = client.get(f"{BASE}/api/requests", params={"type": UPLOADED_REST}).json()["requests"]
    assert [r["id"] for r in rest] == [second]
    assert "Uploaded in a batch via the REST API" in html.unescape(client.get(f"{BASE}/requests").text)


# The WordPress plugin's upload template (its js/upload-users.js grid): "Parent Email Address".
PLUGIN_TEMPLATE = (
    "Parent Title", "Parent First Name", "Parent Surname", "Parent Email Address", "Child 1 First Name",
    "Child 1 Surname", "Child 1 Tutor Group", "Child 2 First Name", "Child 2 Surname", "Child 2 Tutor Group",
    "Child 3 First Name", "Child 3 Surname", "Child 3 Tutor Group",
)  # fmt: skip


@pytest.mark.parametrize(
    "how, text",
    [
        ("the plugin's template as CSV", ",".join(PLUGIN_TEMPLATE) + "\nMrs,Ann,Lee,ann.lee@example.org,Amy,Lee,7RB"
         ",Bo,Lee,9KM,,,\n"),
        ("rows pasted from a spreadsheet (tab-separated)", "\t".join(PLUGIN_TEMPLATE) + "\nMrs\tAnn\tLee\t"
         "ann.lee@example.org\tAmy\tLee\t7RB\tBo\tLee\t9KM\t\t\t\n"),
        ("this project's columns, tab-separated", "\t".join(m.CSV_COLUMNS) + "\nMrs\tAnn\tLee\tann.lee@example.org"
         "\tAmy\tLee\t7RB\tBo\tLee\t9KM\t\t\t\n"),
    ],
)  # fmt: skip
def test_an_upload_takes_the_plugins_template_and_rows_pasted_from_a_spreadsheet(client, school, how, text):
    login(client, "ops")
    api = client.post(f"{BASE}/api/upload", json={"csv": text, "commit": True}).json()
    assert [r["verdict"] for r in api["rows"]] == ["approved"], (how, api)
    [row] = school.wp_rows("SELECT * FROM {req}")
    assert (row["parent_email"], row["child_fname"], row["child2_tg"], row["status"]) == (
        "ann.lee@example.org", "Amy", "9KM", "approved"
    )  # fmt: skip


def test_rows_pasted_into_the_upload_page_are_checked_then_written(client, school):
    pasted = "\t".join(PLUGIN_TEMPLATE) + "\nMrs\tAnn\tLee\tann.lee@example.org\tAmy\tLee\t7RB\t\t\t\t\t\t\n"
    login(client, "ops")
    token = csrf_of(client.get(f"{BASE}/upload").text)
    preview = client.post(f"{BASE}/upload/preview", data={"csrf": token, "pasted": pasted})
    assert preview.status_code == 200 and "ann.lee@example.org" in preview.text
    assert school.wp_rows("SELECT * FROM {req}") == []
    text = html.unescape(re.search(r'name="csv_text" value="([^"]*)"', preview.text).group(1))
    done = client.post(f"{BASE}/upload/commit", data={"csrf": token, "csv_text": text}, follow_redirects=True)
    assert "Uploaded: 1 approved" in done.text
    nothing = client.post(f"{BASE}/upload/preview", data={"csrf": token, "pasted": " "}, follow_redirects=True)
    assert "choose a CSV file to upload, or paste the rows" in html.unescape(nothing.text)


def test_each_request_shows_its_links_as_the_ledger_has_them_and_the_overview_the_leavers(client, fresh, run_cycle):
    from tests.cycle.test_revocation import staff

    use_settings(fresh)
    school = School(fresh)
    amy, ben, bea = (
        school.pupil("Amy", "Lee", "7RB"),
        school.pupil("Ben", "Lee", "9KM"),
        school.pupil("Bea", "Khan", "8CD"),
    )
    first = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    khan = school.request("bo.khan@example.org", [("Bea", "Khan", "8CD")])
    assert run_cycle()[0].state == "success"
    wrong = school.request("ann.lee@example.org", [("Ben", "Lee", "9KM")], auth=False)
    assert run_cycle()[0].state == "success"
    staff(fresh, "set_status", wrong, "bogus", "ops", confirmed=True)
    school._moodle("UPDATE {user} SET suspended=1 WHERE id=%s", (bea,))  # Bea left the school
    dr, states = run_cycle()
    assert dr.state == "success", states

    login(client, "ops")
    page = text(client.get(f"{BASE}/requests/{wrong}"))
    [state] = re.findall(r'<td class="link-state">(.*?)</td>', page)
    assert f"Ben Lee ({ben})" in page and state.startswith("removed by ")
    assert dr.run_id in state and "the request was marked bogus" in state
    page = text(client.get(f"{BASE}/requests/{first}"))
    assert f"Amy Lee ({amy})" in page and re.findall(r'<td class="link-state">(.*?)</td>', page) == ["linked"]

    page = text(client.get(f"{BASE}/"))
    assert re.findall(r'<td class="links-made">([^<]*)</td>', page) == ["0", "1", "2"]  # newest cycle first
    assert re.findall(r'<td class="links-removed">([^<]*)</td>', page) == ["1", "0", "0"]
    assert "kept, as the unlink_leavers setting is off" in page
    parent = school.account("bo.khan@example.org")["id"]
    assert f'<td><a href="{BASE}/requests/{khan}">{khan}</a></td><td>{parent}</td><td>{bea}</td>' in page
    assert "De-provision these parents" in page
    login(client, "viewer")
    assert "De-provision these parents" not in text(client.get(f"{BASE}/"))

    login(client, "ops")  # the bulk form, as the overview fills it in
    page = text(client.get(f"{BASE}/"))
    [ids] = re.findall(r'<label>Request ids <input name="ids" value="([^"]*)"', page)
    assert ids == str(khan)
    form = {"csrf": csrf_of(page), "ids": ids, "status": "rejected"}
    asked = unquote_plus(client.post(f"{BASE}/requests/status", data=form, follow_redirects=False).headers["location"])
    assert "1 of these 1 requests would lose their auth row" in asked and "confirm=1" in asked  # the bulk guard
    assert school.req(khan)["status"] == "provisioned"
    response = client.post(f"{BASE}/requests/status", data={**form, "confirm": "yes"}, follow_redirects=False)
    assert response.status_code == 303 and "1 request(s) set to rejected" in unquote_plus(response.headers["location"])
    assert school.req(khan)["status"] == "rejected"


BAD_UI_INPUT = {
    # case: (path, the status wanted, a phrase of the answer)
    "a page number past any BIGINT": ("/requests?page=99999999999999999999999", 200, "request(s)"),
    "a negative page number": ("/requests?page=-5", 200, "request(s)"),
    "a page number that is not a number": ("/requests?page=two", 422, "page"),
    "an unknown sort column": ("/requests?sort=password", 400, "cannot sort by"),
    "an unknown status filter": ("/requests?status=deleted", 400, "unknown status"),
    "a huge page of the auth rows": ("/auth-users?page=99999999999999999999999", 200, "Auth rows"),
    "a huge page in the API": ("/api/requests?page=99999999999999999999999&per_page=100000", 200, '"requests":[]'),
    "a request id past any BIGINT": ("/requests/99999999999999999999999", 404, "does not exist"),
}


@pytest.mark.parametrize("case", list(BAD_UI_INPUT))
def test_bad_input_to_the_screens_is_answered_with_a_message_never_a_server_error(client, school, case):
    from tests.reliability import record

    path, status, phrase = BAD_UI_INPUT[case]
    school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="pending")
    login(client, "ops")
    answer = client.get(f"{BASE}{path}")
    assert answer.status_code == status and phrase in html.unescape(answer.text), (answer.status_code, answer.text)
    record("bad_ui_input", case, f"GET {BASE}{path}", f"{answer.status_code}: {phrase}")


def test_provision_now_starts_the_run_in_process_as_the_user_whatever_host_the_request_names(client, fresh, run_cycle):
    from urllib.parse import parse_qs, urlparse

    from airflow.models import DagRun
    from airflow.utils.session import create_session

    use_settings(fresh)
    school = School(fresh)
    assert run_cycle(conf={names.DRY_RUN: True})[0].state == "success"  # the DAG as Airflow's database knows it
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    login(client, "ops")
    form = {"csrf": csrf_of(client.get(f"{BASE}/").text), "request_ids": str(rid)}
    # A Host header chosen by the client (or a proxy) must not decide where the user's token goes.
    response = client.post(f"{BASE}/cycle", data=form, headers={"host": "attacker.example:9"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    [run_id] = parse_qs(urlparse(response.headers["location"]).query)["run"]
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == names.DAG_ID, DagRun.run_id == run_id).one()
        assert (run.conf, run.triggering_user_name) == ({"request_ids": [rid], "dry_run": False}, "ops")
        session.delete(run)  # nothing here runs it: leave no queued run for other tests
    login(client, "viewer")
    assert client.post(f"{BASE}/cycle", data=form).status_code == 403


def _upload_rows(n: int, long_field: str = "") -> str:
    head = ",".join(m.CSV_COLUMNS)
    family = "Lee-Montgomery-Fitzwilliam-Ashworth"
    rows = [
        f"Mrs,Annabel{k},{family},annabel{k}.lee@example.org,Amelia{k},{family},7RB,Benedict{k},{family},8CD,"
        f"Clementine{k},{family},9KM" + (long_field if k == 0 else "")
        for k in range(n)
    ]
    return "\n".join([head, *rows]) + "\n"


def test_an_upload_is_read_only_after_login_and_a_large_valid_file_previews_and_commits(client, school):
    text = _upload_rows(20)
    assert client.post(f"{BASE}/upload/preview", files={"file": ("u.csv", text, "text/csv")}).status_code == 401
    login(client, "viewer")
    refused = client.post(f"{BASE}/upload/preview", files={"file": ("u.csv", text, "text/csv")})
    assert refused.status_code == 403  # refused before its body was read
    login(client, "ops")
    token = csrf_of(client.get(f"{BASE}/upload").text)
    assert (
        client.post(f"{BASE}/upload/preview", data={"csrf": "0" * 40}, files={"file": ("u.csv", text)}).status_code
        == 403
    )
    big = _upload_rows(m.MAX_UPLOAD_ROWS)  # over 1 MiB: more than a form field's default limit
    assert len(big.encode()) > 1_100_000
    preview = client.post(f"{BASE}/upload/preview", data={"csrf": token}, files={"file": ("big.csv", big, "text/csv")})
    assert preview.status_code == 200 and f"Write {m.MAX_UPLOAD_ROWS} valid row(s)" in preview.text
    done = client.post(f"{BASE}/upload/commit", data={"csrf": token, "csv_text": big}, follow_redirects=True)
    assert f"Uploaded: {m.MAX_UPLOAD_ROWS} approved" in done.text
    uploaded = school.wp_rows("SELECT id FROM {req} WHERE request_type LIKE 'Uploaded%%'")
    assert len(uploaded) == m.MAX_UPLOAD_ROWS


MALFORMED_UPLOADS = {
    "a field longer than the CSV reader takes": _upload_rows(2, ',"' + "x" * 140_000 + '"'),
    "a NUL byte in a row": _upload_rows(2).replace("Amy1", "Amy\x001"),
    "a file that is not text": "\x89PNG\r\n\x1a\n" + "\x00" * 200,
    "only a header": ",".join(m.CSV_COLUMNS) + "\n",
    "no file at all": None,
}


@pytest.mark.parametrize("case", list(MALFORMED_UPLOADS))
def test_a_malformed_upload_is_answered_with_a_message_and_nothing_is_written(client, school, case):
    from tests.reliability import record

    text = MALFORMED_UPLOADS[case]
    login(client, "ops")
    token = csrf_of(client.get(f"{BASE}/upload").text)
    files = {"file": ("u.csv", text, "text/csv")} if text is not None else None
    answer = client.post(f"{BASE}/upload/preview", data={"csrf": token}, files=files, follow_redirects=True)
    said = re.search(r'<div class="msg error" role="status">([^<]*)', answer.text)
    shown = re.search(r"Write \d+ valid row\(s\)|No valid rows to write", answer.text)
    assert answer.status_code == 200 and (said or shown), answer.text[-1500:]
    message = html.unescape(said.group(1)).strip() if said else f"previewed, nothing written: {shown.group(0)}"
    api = client.post(f"{BASE}/api/upload", json={"csv": text or ""})
    assert api.status_code in (200, 409), api.text
    assert school.wp_rows("SELECT COUNT(*) AS n FROM {req}") == [{"n": 0}]
    record("bad_ui_input", f"upload: {case}", "POST /upload/preview", message[:300])
