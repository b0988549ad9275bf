"""Taking links away (issue 13): the next cycle removes exactly the links the project made whose
every justifying request is gone, shown in Moodle's own tables; a link made by hand is never
removed. Real DAG runs on the test bed (MariaDB, OpenSSH, the Moodle double)."""

from __future__ import annotations

import pytest

from include.parent_provisioning import names
from include.parent_provisioning.requests import CHILDREN_NOT_LINKED
from tests.cycle.school import use_settings
from tests.cycle.test_ledger import assignment, ledger, parent_role
from tests.cycle.test_revocation import others_keeping_access, provisioned_family, reject, staff
from tests.cycle.test_suspension_guard import cycle_record, report_of


def ok(run) -> object:
    dr, states = run
    assert dr.state == "success", states
    return dr


def rows_of(school, rid) -> list[dict]:
    return [r for r in ledger(school) if r["request_id"] == rid]


def dirty_flag(school, uid) -> dict | None:
    rows = school.moodle_rows(
        "SELECT * FROM {cache_flags} WHERE flagtype='accesslib/dirtyusers' AND name=%s", (str(uid),)
    )
    return rows[0] if rows else None


def mistaken_request(school, run_cycle, email="ann.lee@example.org", children=(("Ben", "Lee", "9KM"),)):
    """A "children not linked" request approved by mistake (naming someone else's child) and provisioned
    on top of the parent's first request: (request id, the wrong children's pupil ids)."""
    wrong = [school.pupil(*child) for child in children]
    rid = school.request(email, list(children), auth=False, request_type=CHILDREN_NOT_LINKED)
    ok(run_cycle())
    assert school.req(rid)["status"] == "provisioned"
    return rid, wrong


def test_a_mistaken_request_marked_bogus_loses_its_wrong_child_at_the_next_cycle_and_nothing_else(
    school, fresh, run_cycle
):
    first, parent, amy = provisioned_family(school, run_cycle)
    kept = school.request("bo.khan@example.org", [("Bea", "Khan", "8CD")])
    bea = school.pupil("Bea", "Khan", "8CD")
    wrong, [ben] = mistaken_request(school, run_cycle)
    assert school.links(parent) == {amy, ben}
    ben_ra = assignment(school, parent, school.context_of(ben)["id"])["id"]
    auth_before = school.wp_rows("SELECT * FROM {auth} ORDER BY id")
    staff(fresh, "set_status", wrong, "bogus", "ops", confirmed=True)
    before = dirty_flag(school, parent)

    dr = ok(run_cycle())

    assert school.links(parent) == {amy}  # Moodle's own table: the wrong child is gone
    assert school.moodle_rows("SELECT id FROM {role_assignments} WHERE id=%s", (ben_ra,)) == []
    account = school.account("ann.lee@example.org")
    assert (account["id"], account["suspended"]) == (parent, 0)  # the parent's account and other child untouched
    assert school.links(school.account("bo.khan@example.org")["id"]) == {bea}
    assert school.wp_rows("SELECT * FROM {auth} ORDER BY id") == auth_before
    [closed] = rows_of(school, wrong)
    assert (closed["removed_by_run"], closed["removed_reason"], closed["ra_id"]) == (dr.run_id, "request_bogus", ben_ra)
    assert [r["removed_at"] for r in rows_of(school, first)] == [None]
    flag = dirty_flag(school, parent)  # what role_unassign() does: the parent's access re-read
    assert flag["value"] == "1" and (before is None or flag["timemodified"] >= before["timemodified"])
    summary = report_of(dr)
    assert summary["links_removed"] == 1 and summary["unlinks"]["unlinked_by_reason"] == {"request_bogus": 1}
    assert cycle_record(school, dr.run_id)["summary"]["links_removed"] == 1
    assert school.req(kept)["status"] == "provisioned"

    everything = (ledger(school), school.moodle_rows("SELECT * FROM {role_assignments} ORDER BY id"))
    dr2 = ok(run_cycle(rerun=dr))  # the same run again: nothing more removed
    assert report_of(dr2)["links_removed"] == 0
    assert (ledger(school), school.moodle_rows("SELECT * FROM {role_assignments} ORDER BY id")) == everything


def test_a_child_corrected_on_a_provisioned_request_is_unlinked_and_the_right_one_linked_in_one_cycle(
    school, fresh, run_cycle
):
    rid, parent, amy = provisioned_family(school, run_cycle)
    ava = school.pupil("Ava", "Lee", "7RB")
    staff(fresh, "correct_child", rid, 1, "Ava", "Lee", "7RB", "ops")

    dr = ok(run_cycle())

    assert school.links(parent) == {ava}
    assert school.req(rid)["status"] == "provisioned"
    got = {
        (r["child_userid"], r["origin"], r["run_id"] == dr.run_id, r["removed_reason"]) for r in rows_of(school, rid)
    }
    assert got == {(amy, "made", False, "child_changed"), (ava, "made", True, None)}
    assert report_of(dr)["unlinks"]["unlinked_by_reason"] == {"child_changed": 1}


def test_two_requests_naming_one_child_one_rejected_the_link_stays_until_both_are_gone(school, fresh, run_cycle):
    others_keeping_access(school)
    first, parent, amy = provisioned_family(school, run_cycle)
    second = school.request(
        "ann.lee@example.org", [("Amy", "Lee", "7RB")], auth=False, request_type=CHILDREN_NOT_LINKED
    )
    ok(run_cycle())
    ra = assignment(school, parent, school.context_of(amy)["id"])["id"]
    reject(fresh, second)

    dr = ok(run_cycle())

    assert school.links(parent) == {amy} and assignment(school, parent, school.context_of(amy)["id"])["id"] == ra
    assert [r["removed_at"] for r in ledger(school)] == [None, None]  # the first still holds it
    assert report_of(dr)["unlinks"]["held_by_another_request"] == 1 and report_of(dr)["links_removed"] == 0

    reject(fresh, first)  # the parent's last auth row: the account is suspended, and the link goes too
    dr = ok(run_cycle())
    assert school.links(parent) == set()
    assert {r["removed_reason"] for r in ledger(school)} == {"request_rejected"}
    assert school.account("ann.lee@example.org")["suspended"] == 1


def test_a_role_assignment_made_by_hand_in_moodle_is_never_removed(school, fresh, run_cycle):
    amy, cal = school.pupil("Amy", "Lee", "7RB"), school.pupil("Cal", "Lee", "9KM")
    ben = school.pupil("Ben", "Lee", "8CD")
    parent = school.parent_account("ann.lee@example.org")
    by_hand = {}
    for child in (amy, cal):  # Amy: a request will name her too; Cal: no request ever does
        school._moodle(
            "INSERT INTO {role_assignments} (roleid, contextid, userid, timemodified, modifierid, component, itemid,"
            " sortorder) VALUES (%s, %s, %s, 0, 2, '', 0, 0)",
            (parent_role(school), school.context_of(child)["id"], parent),
        )
        by_hand[child] = assignment(school, parent, school.context_of(child)["id"])
    keeps = school.request("ann.lee@example.org", [("Ben", "Lee", "8CD")])
    names_amy = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")], auth=False)
    ok(run_cycle())
    assert {(r["request_id"], r["origin"]) for r in ledger(school)} == {(keeps, "made"), (names_amy, "found")}
    staff(fresh, "set_status", names_amy, "bogus", "ops", confirmed=True)

    dr = ok(run_cycle())

    assert school.links(parent) == {amy, ben, cal}
    for child, row in by_hand.items():
        assert assignment(school, parent, school.context_of(child)["id"]) == row  # untouched
    [released] = rows_of(school, names_amy)  # released from the ledger, the link kept
    assert (released["removed_by_run"], released["removed_reason"]) == (dr.run_id, "request_bogus")
    unlinks = report_of(dr)["unlinks"]
    assert (unlinks["unlinked"], unlinks["released_hand_made"]) == (0, 1)


def test_more_unlinks_than_the_cap_are_refused_with_the_figures_until_an_admin_overrides(
    school, fresh, run_cycle, capfd, monkeypatch
):
    from tests.cycle.test_suspension_guard import AN_OP_TRIGGERS

    monkeypatch.setenv(*AN_OP_TRIGGERS)
    use_settings(fresh, max_unlinks_per_cycle=2)
    first, parent, amy = provisioned_family(school, run_cycle)
    wrong, kids = mistaken_request(
        school, run_cycle, children=(("Ben", "Lee", "9KM"), ("Cy", "Lee", "8CD"), ("Di", "Lee", "10EF"))
    )
    staff(fresh, "set_status", wrong, "bogus", "ops", confirmed=True)
    newcomer = school.request("new.parent@example.org", [("Nia", "Newell", "7RB")])
    nia = school.pupil("Nia", "Newell", "7RB")
    held = ledger(school)
    capfd.readouterr()

    dr, states = run_cycle()

    assert states["unlink_children"] == "failed" and states["report"] == "upstream_failed", states
    assert states["mark"] == "success"  # the refusal holds back no new parent
    assert school.req(newcomer)["status"] == "provisioned"
    assert school.links(school.account("new.parent@example.org")["id"]) == {nia}
    assert school.links(parent) == {amy, *kids}
    assert [r for r in ledger(school) if r["request_id"] != newcomer] == held
    out = capfd.readouterr().out
    assert "would remove 3 parent-child links" in out and "more than max_unlinks_per_cycle (2)" in out
    assert "request_bogus 3" in out and "allow_mass_unlink" in out
    assert "Ann" not in out and "ann.lee@example.org" not in out  # ids and counts only

    dr = ok(run_cycle(conf={names.ALLOW_MASS_UNLINK: True}))

    assert school.links(parent) == {amy}
    record = cycle_record(school, dr.run_id)["summary"]
    assert record["allow_mass_unlink"] is True and record["triggered_by"] == "dag_test"
    assert record["links_removed"] == 3


def _leave(school, kind: str, pupil: int) -> None:
    if kind == "suspended":
        school._moodle("UPDATE {user} SET suspended=1 WHERE id=%s", (pupil,))
    elif kind == "deleted":  # as Moodle's delete_user() leaves the row (it also drops the context's assignments)
        school._moodle("UPDATE {user} SET deleted=1 WHERE id=%s", (pupil,))
    else:  # outside the pupil filter: taken out of the pupils' cohort
        school._moodle("DELETE FROM {cohort_members} WHERE userid=%s", (pupil,))


@pytest.mark.parametrize("kind", ["suspended", "deleted", "left the pupils' cohort"])
def test_a_leaver_is_listed_kept_while_unlink_leavers_is_off_and_unlinked_when_on(school, fresh, run_cycle, kind):
    rid, parent, amy = provisioned_family(school, run_cycle)
    other, other_parent, bea = provisioned_family(school, run_cycle, "bo.khan@example.org", ("Bea", "Khan", "8CD"))
    _leave(school, kind, amy)

    dr = ok(run_cycle())

    assert school.links(parent) == {amy}  # off by default: listed, kept
    unlinks = report_of(dr)["unlinks"]
    assert unlinks["leavers"] == [{"request_id": rid, "parent": parent, "child": amy}]
    assert unlinks["parents_without_child"] == {str(parent): [rid]} and unlinks["unlinked"] == 0
    assert f"Leavers: 1 link(s) to a child no longer a pupil, kept (unlink_leavers is off); requests {rid}" in (
        _summary_text(dr)
    )

    use_settings(fresh, unlink_leavers=True)
    dr = ok(run_cycle())

    assert school.links(parent) == set() and school.links(other_parent) == {bea}
    [row] = rows_of(school, rid)
    assert (row["removed_by_run"], row["removed_reason"]) == (dr.run_id, "child_left")
    unlinks = report_of(dr)["unlinks"]
    assert unlinks["unlinked_by_reason"] == {"child_left": 1}
    assert unlinks["parents_without_child"] == {str(parent): [rid]}  # left with no current child: staff decide
    assert school.account("ann.lee@example.org")["suspended"] == 0  # the account is staff's call, not the cycle's


def _summary_text(dr) -> str:
    from include.parent_provisioning.summary import format_summary

    return format_summary(report_of(dr))


def test_a_dry_run_forecasts_the_unlinking_the_real_run_then_does_and_removes_nothing(school, fresh, run_cycle):
    first, parent, amy = provisioned_family(school, run_cycle)
    wrong, [ben] = mistaken_request(school, run_cycle)
    staff(fresh, "set_status", wrong, "bogus", "ops", confirmed=True)
    ava = school.pupil("Ava", "Lee", "7RB")
    staff(fresh, "correct_child", first, 1, "Ava", "Lee", "7RB", "ops")
    before = (ledger(school), school.moodle_rows("SELECT * FROM {role_assignments} ORDER BY id"))

    dry = ok(run_cycle(conf={names.DRY_RUN: True}))

    forecast = report_of(dry)["unlinks"]
    assert (ledger(school), school.moodle_rows("SELECT * FROM {role_assignments} ORDER BY id")) == before
    real = ok(run_cycle())
    done = report_of(real)["unlinks"]
    assert forecast["unlinked_by_reason"] == done["unlinked_by_reason"] == {"child_changed": 1, "request_bogus": 1}
    assert forecast["unlinked"] == done["unlinked"] == 2
    assert school.links(parent) == {ava}


def test_a_corrected_request_rejected_and_approved_again_brings_back_only_the_child_it_names_now(
    school, fresh, run_cycle
):
    others_keeping_access(school)
    rid, parent, amy = provisioned_family(school, run_cycle)
    ava = school.pupil("Ava", "Lee", "7RB")
    staff(fresh, "correct_child", rid, 1, "Ava", "Lee", "7RB", "ops")
    ok(run_cycle())
    assert school.links(parent) == {ava}
    reject(fresh, rid)
    ok(run_cycle())
    assert school.links(parent) == set() and school.account("ann.lee@example.org")["suspended"] == 1
    staff(fresh, "set_status", rid, "pending", "ops")
    staff(fresh, "approve", rid, "ops")

    dr = ok(run_cycle())

    assert school.account("ann.lee@example.org")["suspended"] == 0  # revived by Moodle's sync
    assert school.links(parent) == {ava}  # never Amy again
    reasons = [(r["child_userid"], r["removed_reason"]) for r in rows_of(school, rid)]
    assert reasons == [(amy, "child_changed"), (ava, "request_rejected"), (ava, None)]
    assert report_of(dr)["links_made"] == 1
