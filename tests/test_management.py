"""Staff actions on requests, against MariaDB as the project's WordPress user (not root)."""

from __future__ import annotations

import pytest

from include.parent_provisioning import management as m
from include.parent_provisioning.requests import CHILDREN_NOT_LINKED, UPLOADED
from include.parent_provisioning.settings import parse
from testbed import mariadb
from tests.cycle.school import School

HEADER = ",".join(m.CSV_COLUMNS)


@pytest.fixture
def wp(fresh):
    conn = mariadb.connect(fresh.cfg, fresh.cfg.wp_user, fresh.cfg.wp_db)
    yield conn
    conn.close()


@pytest.fixture
def s(fresh):
    return parse({"moodle_dir": "/m"})


def auth_rows(school, email):
    return school.wp_rows("SELECT * FROM {auth} WHERE LOWER(TRIM(username)) = %s", (email,))


def test_approving_a_pending_request_writes_the_auth_row_as_wordpress_did(fresh, wp, s):
    school = School(fresh)
    rid = school.request(" Ann.Lee@Example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False, title="Dr")
    result = m.approve(wp, s, rid, actor="ops")
    assert (result.status, school.req(rid)["status"]) == ("approved", "approved")
    assert school.req(rid)["date_approved"] is not None
    [row] = auth_rows(school, "ann.lee@example.org")
    assert (row["username"], row["parent_email"], row["parent_fname"], row["parent_sname"]) == (
        "ann.lee@example.org",
        "ann.lee@example.org",
        "Dr Ann",
        "Lee",
    )
    assert (row["description"], row["request_id"]) == ("Parent Moodle Account", rid)
    assert school.req(rid)["system_comment"].splitlines()[-1].endswith("Approved (by ops in Airflow)")


def test_a_second_new_account_request_for_the_same_email_becomes_duplicate(fresh, wp, s):
    school = School(fresh)
    school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    rid = school.request("ANN.LEE@example.org ", [("Amy", "Lee", "7RB")], status="pending", auth=False)
    assert m.approve(wp, s, rid, actor="ops").status == "duplicate"
    assert school.req(rid)["status"] == "duplicate"
    assert len(auth_rows(school, "ann.lee@example.org")) == 1


def test_a_children_not_linked_request_is_approved_without_a_second_auth_row(fresh, wp, s):
    school = School(fresh)
    school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    rid = school.request(
        "ann.lee@example.org", [("Bo", "Lee", "9KM")], status="pending", auth=False, request_type=CHILDREN_NOT_LINKED
    )
    assert m.approve(wp, s, rid, actor="ops").status == "approved"
    assert len(auth_rows(school, "ann.lee@example.org")) == 1


@pytest.mark.parametrize("status", ["approved", "provisioned", "rejected"])
def test_only_pending_requests_can_be_approved(fresh, wp, s, status):
    school = School(fresh)
    rid = school.request("x@example.org", [("A", "B", "7RB")], status=status, auth=False)
    before = school.req(rid)
    with pytest.raises(m.ActionRefused, match="only pending"):
        m.approve(wp, s, rid, actor="ops")
    assert school.req(rid) == before


def test_an_unusable_email_is_refused_and_nothing_changes(fresh, wp, s):
    school = School(fresh)
    rid = school.request("not an email", [("A", "B", "7RB")], status="pending", auth=False)
    with pytest.raises(m.ActionRefused, match="not a usable address"):
        m.approve(wp, s, rid, actor="ops")
    assert school.req(rid)["status"] == "pending" and school.wp_rows("SELECT * FROM {auth}") == []


@pytest.mark.parametrize("status", ["rejected", "duplicate", "bogus", "unknown", "pending"])
def test_deprovisioning_removes_only_this_requests_auth_row(fresh, wp, s, status):
    school = School(fresh)
    first = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned")
    extra = school.request("ann.lee@example.org", [("Bo", "Lee", "9KM")], auth=False, request_type=CHILDREN_NOT_LINKED)
    m.set_status(wp, s, extra, status, actor="ops")  # approved, no auth row of its own: nothing to confirm
    assert len(auth_rows(school, "ann.lee@example.org")) == 1  # the parent keeps their account
    result = m.set_status(wp, s, first, status, actor="ops", confirmed=True)
    assert auth_rows(school, "ann.lee@example.org") == []
    assert school.req(first)["status"] == status
    assert result.message.endswith("auth row removed: the parent's Moodle account is suspended at the next cycle")
    assert school.req(first)["system_comment"].count("(by ops in Airflow)") == 1


def last_line(school, rid) -> str:
    return school.req(rid)["system_comment"].splitlines()[-1]


@pytest.mark.parametrize(
    ("status", "doing"),
    [
        ("rejected", "rejecting it"),
        ("duplicate", "marking it duplicate"),
        ("bogus", "marking it bogus"),
        ("unknown", "marking it unknown"),
        ("pending", "sending it back to pending"),
    ],
)
def test_taking_a_provisioned_parents_access_away_asks_first_and_says_what_happens(fresh, wp, s, status, doing):
    school = School(fresh)
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned")
    before, auth_before = school.req(rid), auth_rows(school, "ann.lee@example.org")
    with pytest.raises(m.AccessRemovalNeedsConfirmation) as asked:
        m.set_status(wp, s, rid, status, actor="ops")
    assert str(asked.value).startswith(
        f"Request {rid} is provisioned: {doing} removes its auth row, so the parent loses access to Moodle: the next"
        " provisioning cycle (the nightly run, or 'Provision now') runs Moodle's user sync, which suspends the"
        " parent's account (its data is kept)."
    )
    assert str(asked.value).endswith("Confirm to go ahead.")
    assert (asked.value.status, asked.value.suspends_account) == (status, True)
    assert school.req(rid) == before and auth_rows(school, "ann.lee@example.org") == auth_before
    result = m.set_status(wp, s, rid, status, actor="ops", confirmed=True)
    said = (
        f"Status provisioned -> {status}; auth row removed: the parent's Moodle account is suspended at the next cycle"
    )
    assert (result.status, result.message) == (status, said)
    assert school.req(rid)["status"] == status and auth_rows(school, "ann.lee@example.org") == []
    assert last_line(school, rid).endswith(f"{said} (by ops in Airflow)")


def test_sending_back_to_pending_points_to_correcting_the_child_instead(fresh, wp, s):
    school = School(fresh)
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned")
    with pytest.raises(m.AccessRemovalNeedsConfirmation, match="correct the child instead: the parent keeps access"):
        m.set_status(wp, s, rid, "pending", actor="ops")


def test_a_parent_with_another_auth_row_is_told_they_keep_the_account(fresh, wp, s):
    school = School(fresh)
    keeper = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned")
    rid = school.request(" Ann.Lee@Example.org", [("Bo", "Lee", "9KM")], status="provisioned", request_type=UPLOADED)
    with pytest.raises(m.AccessRemovalNeedsConfirmation) as asked:
        m.set_status(wp, s, rid, "rejected", actor="ops")
    assert asked.value.suspends_account is False
    assert (
        f"rejecting it removes its auth row, but the parent keeps the Moodle account through request {keeper}'s auth"
        " row for the same email, so the account is not suspended" in str(asked.value)
    )
    assert "loses access" not in str(asked.value)
    result = m.set_status(wp, s, rid, "rejected", actor="ops", confirmed=True)
    said = (
        f"Status provisioned -> rejected; auth row removed; the parent keeps access through another auth row"
        f" (request {keeper}); the next cycle unlinks the children only it linked"
    )
    assert result.message == said and last_line(school, rid).endswith(f"{said} (by ops in Airflow)")
    assert [r["request_id"] for r in auth_rows(school, "ann.lee@example.org")] == [keeper]


def test_a_provisioned_request_without_an_auth_row_of_its_own_suspends_nobody(fresh, wp, s):
    school = School(fresh)
    school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned")
    rid = school.request(
        "ann.lee@example.org",
        [("Bo", "Lee", "9KM")],
        status="provisioned",
        auth=False,
        request_type=CHILDREN_NOT_LINKED,
    )
    result = m.set_status(wp, s, rid, "rejected", actor="ops")  # nothing to confirm: no access is taken away
    said = (
        "Status provisioned -> rejected; it had no auth row of its own, so no account is suspended;"
        " the next cycle unlinks the children only it linked"
    )
    assert result.message == said and last_line(school, rid).endswith(f"{said} (by ops in Airflow)")
    assert school.req(rid)["status"] == "rejected" and len(auth_rows(school, "ann.lee@example.org")) == 1


def test_an_approved_request_loses_its_auth_row_without_asking_and_says_what_that_means(fresh, wp, s):
    school = School(fresh)
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="approved")
    result = m.set_status(wp, s, rid, "bogus", actor="ops")
    assert result.message == (
        "Status approved -> bogus; auth row removed: the parent gets no Moodle account from it (one Moodle's user"
        " sync already created is suspended at the next cycle)"
    )
    assert auth_rows(school, "ann.lee@example.org") == []


def test_correcting_a_provisioned_request_keeps_access_and_sends_it_back_to_approved(fresh, wp, s):
    school = School(fresh)
    rid = school.request(
        "ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned", date_approved="2024-09-02 08:00:00"
    )
    [row_before] = auth_rows(school, "ann.lee@example.org")
    result = m.correct_child(wp, s, rid, 1, "Amy", " Lee", "8CD ", actor="admin")
    said = (
        "Child 1 corrected on a provisioned request: back to approved; the parent keeps access and the next cycle"
        " links the corrected child (and unlinks the child it no longer names)"
    )
    assert (result.status, result.message) == ("approved", said)
    req = school.req(rid)
    assert (req["status"], req["child_fname"], req["child_sname"], req["child_tg"]) == ("approved", "Amy", "Lee", "8CD")
    assert str(req["date_approved"]) == "2024-09-02 08:00:00"
    assert last_line(school, rid).endswith(f"{said} (by admin in Airflow)")
    assert auth_rows(school, "ann.lee@example.org") == [row_before]  # the very same row: never removed


def test_a_correction_that_changes_nothing_leaves_a_provisioned_request_provisioned(fresh, wp, s):
    school = School(fresh)
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], status="provisioned")
    before = school.req(rid)
    result = m.correct_child(wp, s, rid, 1, " Amy", "Lee ", "7RB", actor="admin")
    assert (result.status, result.message) == ("provisioned", "child 1: nothing changed; still provisioned")
    assert m.correct_child(wp, s, rid, 3, "", "", "", actor="admin").status == "provisioned"  # no child 3 before
    assert school.req(rid) == before


def test_correcting_a_child_and_the_staff_comment(fresh, wp, s):
    school = School(fresh)
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    m.correct_child(wp, s, rid, 2, "  Bo ", "Lee", "9KM", actor="admin")
    m.set_staff_comment(wp, s, rid, "Phoned the parent", actor="admin")
    req = school.req(rid)
    assert (req["child2_fname"], req["child2_sname"], req["child2_tg"]) == ("Bo", "Lee", "9KM")
    assert req["staff_comment"] == "Phoned the parent"
    with pytest.raises(m.ActionRefused, match="first name, a surname and a tutor group"):
        m.correct_child(wp, s, rid, 3, "Cy", "", "", actor="admin")
    with pytest.raises(m.ActionRefused, match="longer than 16"):
        m.correct_child(wp, s, rid, 1, "Amy", "Lee", "X" * 17, actor="admin")


def test_upload_shows_every_verdict_then_writes_valid_rows_in_one_go(fresh, wp, s):
    school = School(fresh)
    school.request("known@example.org", [("A", "B", "7RB")])
    text = "\n".join([
        HEADER,
        "Mrs,Ann,Lee,Ann.Lee@Example.org,Amy,Lee,7RB,,,,,,",
        "Mr,Bob,Ray,known@example.org,Bo,Ray,8CD,,,,,,",
        "Mr,Cy,Day,not-an-email,Cal,Day,9KM,,,,,,",
        "Ms,Di,Fox,di.fox@example.org,Dan,Fox,7RB,Eve,,,,,",
        "Ms,Di,Fox,ann.lee@example.org,Dan,Fox,7RB,,,,,,",
    ])  # fmt: skip
    before = school.wp_rows("SELECT COUNT(*) n FROM {req}")[0]["n"]
    rows = m.validate_upload(wp, s, text)
    assert [(r.line, r.verdict) for r in rows] == [
        (2, "approved"),
        (3, "duplicate"),
        (4, "invalid"),
        (5, "invalid"),
        (6, "duplicate"),
    ]
    assert "Child 2 is only partly filled in" in rows[3].problems
    assert school.wp_rows("SELECT COUNT(*) n FROM {req}")[0]["n"] == before  # nothing written yet
    assert m.upload(wp, s, rows, actor="admin") == {"approved": 1, "duplicate": 2}
    new = school.wp_rows("SELECT * FROM {req} WHERE request_type = %s ORDER BY id", (UPLOADED,))
    assert [(r["parent_email"], r["status"]) for r in new] == [
        ("ann.lee@example.org", "approved"),
        ("known@example.org", "duplicate"),
        ("ann.lee@example.org", "duplicate"),
    ]
    assert len(auth_rows(school, "ann.lee@example.org")) == 1


def test_an_upload_without_the_plugins_columns_is_refused(fresh, wp, s):
    with pytest.raises(m.ActionRefused, match="no column 'Parent Title'"):
        m.validate_upload(wp, s, "Email,Name\na@example.org,A")


def test_listing_filters_searches_and_pages_in_the_database(fresh, wp, s):
    school = School(fresh)
    ids = [
        school.request(f"p{n}@example.org", [("Amy", f"Surname{n}", "7RB")], status="pending", auth=False)
        for n in range(12)
    ]
    school.request("zed@example.org", [("Zed", "Zulu", "7RB")])
    rows, total = m.list_requests(wp, s, status="pending", per_page=5, page=3, sort="id", descending=False)
    assert total == 12 and [r["id"] for r in rows] == ids[10:]
    assert m.list_requests(wp, s, search="ZED@example")[1] == 1
    assert m.list_requests(wp, s, search="Surname1")[1] == 3  # Surname1, Surname10, Surname11
    assert m.list_requests(wp, s, search=str(ids[0]))[0][0]["id"] == ids[0]
    assert m.list_requests(wp, s, search="%")[1] == 0  # a wildcard is text, not a pattern
    assert m.status_counts(wp, s)["pending"] == 12
    with pytest.raises(m.ActionRefused):
        m.list_requests(wp, s, sort="id; DROP TABLE x")
