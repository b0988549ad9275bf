"""Staff correcting a provisioned parent's child, and taking a provisioned parent's access away,
as they do it in the UI (management.py), then the cycle: real DAG runs on the test bed. A
correction never locks the parent out; a confirmed rejection ends the access at the next cycle."""

from __future__ import annotations

import json

import pytest

from include.parent_provisioning import management
from include.parent_provisioning.settings import parse
from testbed import mariadb, moodle_site
from tests.cycle.school import settings_for
from tests.cycle.test_suspension_guard import parents_with_accounts

EMAIL = "ann.lee@example.org"


def as_staff(fresh, action):
    """action(conn, settings) on the WordPress database, as a staff action in the UI runs it."""
    conn = mariadb.admin_connect(fresh.cfg.wp_db)
    try:
        return action(conn, parse(settings_for(fresh)))
    finally:
        conn.close()


def parent_role_assignments(school, parent_id: int, pupil_id: int) -> list[int]:
    """The ids of the role_assignments rows giving this parent a role in this pupil's user context."""
    rows = school.moodle_rows(
        "SELECT ra.id FROM {role_assignments} ra JOIN {context} c ON c.id=ra.contextid"
        " WHERE ra.userid=%s AND c.contextlevel=30 AND c.instanceid=%s ORDER BY ra.id",
        (parent_id, pupil_id),
    )
    return [r["id"] for r in rows]


def auth_rows(school) -> list[dict]:
    return school.wp_rows("SELECT * FROM {auth} WHERE username=%s", (EMAIL,))


def provisioned_parent(school, run_cycle, children) -> tuple[int, dict]:
    """A parent provisioned by a first cycle: (the request id, the Moodle account)."""
    rid = school.request(EMAIL, children)
    dr, states = run_cycle()
    assert dr.state == "success", states
    assert school.req(rid)["status"] == "provisioned"
    return rid, school.account(EMAIL)


def test_correcting_the_wrong_child_keeps_access_and_the_next_cycle_links_the_right_one(school, run_cycle, fresh):
    wrong, right = school.pupil("Amy", "Lee", "7RB"), school.pupil("Amy", "Lee", "8CD")
    rid, parent = provisioned_parent(school, run_cycle, [("Amy", "Lee", "7RB")])  # the parent gave the wrong group
    assert school.links(parent["id"]) == {wrong}
    wrong_link = parent_role_assignments(school, parent["id"], wrong)
    auth_before, mails_before = auth_rows(school), len(moodle_site.sent_emails(school.cfg))

    result = as_staff(fresh, lambda conn, s: management.correct_child(conn, s, rid, 1, "Amy", "Lee", "8CD", "ops"))
    assert result.status == "approved" and "the parent keeps access" in result.message
    assert school.req(rid)["status"] == "approved"
    assert auth_rows(school) == auth_before  # the very same auth row: Moodle's sync has no reason to suspend
    assert school.account(EMAIL)["suspended"] == 0

    dr, states = run_cycle()
    assert dr.state == "success", states
    account = school.account(EMAIL)
    assert (account["id"], account["suspended"]) == (parent["id"], 0)  # never suspended, never a second account
    assert school.links(parent["id"]) == {right}  # the wrong child unlinked in the same cycle
    assert wrong_link and parent_role_assignments(school, parent["id"], wrong) == []
    req = school.req(rid)
    assert (
        req["status"] == "provisioned" and req["system_comment"].count(f"Provisioned by Airflow run {dr.run_id}") == 1
    )
    assert auth_rows(school) == auth_before
    assert len(moodle_site.sent_emails(school.cfg)) == mails_before  # no new password for a parent who has one


def test_a_confirmed_rejection_suspends_the_parents_account_at_the_next_cycle(school, run_cycle, fresh):
    school.pupil("Amy", "Lee", "7RB")
    others = parents_with_accounts(school, 30)  # one of 31 is inside the guard's 5 %
    rid, parent = provisioned_parent(school, run_cycle, [("Amy", "Lee", "7RB")])

    def reject(confirmed):
        return lambda conn, s: management.set_status(conn, s, rid, "rejected", "ops", confirmed=confirmed)

    with pytest.raises(management.AccessRemovalNeedsConfirmation, match="the parent loses access to Moodle"):
        as_staff(fresh, reject(False))
    assert school.req(rid)["status"] == "provisioned" and len(auth_rows(school)) == 1
    as_staff(fresh, reject(True))
    assert auth_rows(school) == [] and school.account(EMAIL)["suspended"] == 0  # not until the cycle

    dr, states = run_cycle()
    assert dr.state == "success", states
    account = school.account(EMAIL)
    assert (account["id"], account["suspended"]) == (parent["id"], 1)  # suspended, not deleted: its data is kept
    assert all(school.account(email)["suspended"] == 0 for email in others)
    assert school.req(rid)["status"] == "rejected"
    [record] = school.wp_rows("SELECT summary FROM {cycles} WHERE run_id=%s", (dr.run_id,))
    assert json.loads(record["summary"])["accounts_suspended"] == 1  # the overview's "Access ended"
