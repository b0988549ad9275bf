"""Taking access away as reliably as giving it: real DAG runs on the test bed (MariaDB, OpenSSH,
the Moodle double). A de-provisioned parent is suspended by the next cycle even when nobody new
is waiting; a night with nothing to do opens no SSH session; a staff edit that lands while a cycle
runs is never overridden; a dry run's plan is what the real run then does."""

from __future__ import annotations

import json

import pytest

from include.parent_provisioning import management, names
from include.parent_provisioning.settings import parse
from testbed import mariadb
from tests.cycle.school import settings_for, use_settings
from tests.cycle.test_faults import at_task_start
from tests.cycle.test_suspension_guard import cycle_record, parents_with_accounts, report_of, ssh_logins
from tests.reliability import record


def staff(fresh, action, *args, **kwargs):
    """A staff action on the request screens' code, as the UI runs it (management.py)."""
    conn = mariadb.admin_connect(fresh.cfg.wp_db)
    try:
        return getattr(management, action)(conn, parse(settings_for(fresh)), *args, **kwargs)
    finally:
        conn.close()


def reject(fresh, rid) -> None:
    """Reject a request as staff do; a provisioned one needs the confirmation its screen asks for."""
    staff(fresh, "set_status", rid, "rejected", "ops", confirmed=True)


def others_keeping_access(school) -> None:
    """30 parents provisioned earlier: suspending one parent of 31 is inside the mass-suspension
    guard's 5 % (one of one would be 100 %, and refused)."""
    parents_with_accounts(school, 30)


def provisioned_family(school, run_cycle, email="ann.lee@example.org", child=("Amy", "Lee", "7RB")):
    """A parent provisioned by a first cycle: (request id, parent user id, pupil id)."""
    kid = school.pupil(*child)
    rid = school.request(email, [child])
    dr, states = run_cycle()
    assert dr.state == "success", states
    assert school.req(rid)["status"] == "provisioned"
    parent = school.account(email)
    assert school.links(parent["id"]) == {kid} and parent["suspended"] == 0
    return rid, parent["id"], kid


def test_a_parent_deprovisioned_on_a_night_with_nothing_new_is_suspended_by_that_cycle(school, fresh, run_cycle):
    others_keeping_access(school)
    rid, parent, _ = provisioned_family(school, run_cycle)
    keeps, _, _ = provisioned_family(school, run_cycle, "bo.khan@example.org", ("Bea", "Khan", "8CD"))
    reject(fresh, rid)
    assert school.wp_rows("SELECT id FROM {auth} WHERE request_id=%s", (rid,)) == []
    logins = ssh_logins(fresh)

    dr, states = run_cycle()  # no approved request at all

    assert dr.state == "success", states
    assert school.account("ann.lee@example.org")["suspended"] == 1  # access ended tonight
    assert school.account("bo.khan@example.org")["suspended"] == 0
    assert ssh_logins(fresh) == logins + 1  # the sync, and no password task: nobody is new
    summary = report_of(dr)
    assert summary["accounts_suspended"] == 1 and summary["sync"]["actual"]["suspended"] == 1
    assert summary["sync"]["prediction"]["suspended"] == 1 and summary["requests_taken"] == 0
    assert cycle_record(school, dr.run_id)["summary"]["accounts_suspended"] == 1
    assert school.req(rid)["status"] == "rejected" and school.req(keeps)["status"] == "provisioned"
    record(
        "faults",
        "a provisioned parent rejected, no new approvals",
        "staff reject a provisioned request (its auth row removed); the next night has nothing to approve",
        "that cycle runs Moodle's user sync for the suspension alone: the parent's account suspended, the "
        "summary and the cycle record say 1 account suspended; the other parent untouched",
        "nothing left to do: a further cycle opens no SSH session",
    )
    logins = ssh_logins(fresh)
    dr, _ = run_cycle()
    assert ssh_logins(fresh) == logins and report_of(dr)["accounts_suspended"] == 0


def test_an_empty_night_opens_no_ssh_session(school, fresh, run_cycle):
    provisioned_family(school, run_cycle)
    logins = ssh_logins(fresh)
    dr, states = run_cycle()
    assert dr.state == "success", states
    assert ssh_logins(fresh) == logins
    sync = report_of(dr)["sync"]
    assert sync["skipped"].startswith("nothing to do") and "actual" not in sync


def test_a_reapproved_parent_is_revived_without_any_new_parent(school, fresh, run_cycle):
    others_keeping_access(school)
    rid, parent, kid = provisioned_family(school, run_cycle)
    reject(fresh, rid)
    run_cycle()
    assert school.account("ann.lee@example.org")["suspended"] == 1
    staff(fresh, "set_status", rid, "pending", "ops")
    staff(fresh, "approve", rid, "ops")
    dr, states = run_cycle()
    assert dr.state == "success", states
    assert school.account("ann.lee@example.org")["suspended"] == 0
    assert school.req(rid)["status"] == "provisioned" and school.links(parent) == {kid}
    assert report_of(dr)["sync"]["actual"]["revived"] == 1


def _edit_before_mark(school, fresh, run_cycle, edit):
    """A first cycle with `edit` done by staff as `mark` starts (after link_children read and linked)."""
    with at_task_start("mark", edit):
        dr, states = run_cycle()
    assert dr.state == "success", states
    return dr


def test_a_correction_landing_between_linking_and_marking_is_not_marked_on_stale_data(school, fresh, run_cycle):
    wrong, right = school.pupil("Amy", "Lee", "7RB"), school.pupil("Amy", "Lee", "8CD")
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])

    dr = _edit_before_mark(school, fresh, run_cycle, lambda: staff(fresh, "correct_child", rid, 1, "Amy", "Lee",
                                                                    "8CD", "ops"))  # fmt: skip

    req = school.req(rid)
    assert req["status"] == "approved" and req["child_tg"] == "8CD"  # as staff left it
    last = req["system_comment"].splitlines()[-1]
    assert f"Not marked by Airflow run {dr.run_id}: staff changed the request while the cycle" in last
    report = report_of(dr)
    assert report["failed"] == {"changed_during_cycle": [rid]} and report["provisioned"] == 0
    [outcome] = school.wp_rows("SELECT * FROM {out} WHERE run_id=%s", (dr.run_id,))
    assert (outcome["outcome"], outcome["reason_key"]) == ("not_provisioned", "changed_during_cycle")
    parent = school.account("ann.lee@example.org")["id"]
    assert school.links(parent) == {wrong}  # linked on the data link_children read, before the edit

    dr2, _ = run_cycle()  # the next cycle takes it up, as staff left it
    assert school.req(rid)["status"] == "provisioned"
    assert right in school.links(parent)
    assert f"Provisioned by Airflow run {dr2.run_id}" in school.req(rid)["system_comment"].splitlines()[-1]
    record(
        "faults",
        "a child corrected between link_children and mark",
        "staff correct child 1's tutor group as `mark` starts",
        "the request is not marked provisioned: it stays approved, as corrected, with changed_during_cycle "
        "(the link made before the edit is to the child the request then named)",
        "the next cycle links the corrected child and marks it provisioned",
    )


def test_a_rejection_landing_between_linking_and_marking_is_never_overridden(school, fresh, run_cycle):
    others_keeping_access(school)
    school.pupil("Amy", "Lee", "7RB")
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])

    dr = _edit_before_mark(school, fresh, run_cycle, lambda: reject(fresh, rid))

    req = school.req(rid)
    assert req["status"] == "rejected" and req["provisioned_username"] in (None, "")
    assert "staff changed the request while the cycle" in req["system_comment"].splitlines()[-1]
    assert report_of(dr)["failed"] == {"changed_during_cycle": [rid]}
    dr2, _ = run_cycle()  # its auth row is gone: the next cycle suspends the account the first one made
    assert school.req(rid)["status"] == "rejected"
    assert school.account("ann.lee@example.org")["suspended"] == 1
    assert report_of(dr2)["accounts_suspended"] == 1
    record(
        "faults",
        "a request rejected between link_children and mark",
        "staff reject the request (its auth row removed) as `mark` starts",
        "the request stays rejected, with changed_during_cycle on its comment; never marked provisioned",
        "the next cycle suspends the account the first one created",
    )


@pytest.mark.parametrize("match_by", ["name_and_tutor_group", "name_only"])
def test_a_suspended_or_staff_namesake_makes_the_only_pupil_a_guess_never_linked(school, fresh, run_cycle, match_by):
    use_settings(fresh, match_by=match_by)
    school.pupil("Esme", "Fontaine", "8CD", suspended=1)
    school.pupil("Esme", "Fontaine", "8CD")  # the only active pupil of that name: not necessarily the child
    school.user("Aoife", "Brannigan", "9KM")  # a member of staff whose department is a tutor group
    school.pupil("Aoife", "Brannigan", "9KM")
    school.staff("Cal", "Oduya")  # department 'Staff': a namesake only when tutor groups are not compared
    cal = school.pupil("Cal", "Oduya", "7RB")
    rids = {
        "suspended": school.request("a.fontaine@example.org", [("Esme", "Fontaine", "8CD")]),
        "staff": school.request("b.brannigan@example.org", [("Aoife", "Brannigan", "9KM")]),
        "staff other group": school.request("c.oduya@example.org", [("Cal", "Oduya", "7RB")]),
    }
    dr, states = run_cycle()
    assert dr.state == "success", states
    guessed = {"suspended", "staff"} | ({"staff other group"} if match_by == "name_only" else set())
    for case, rid in rids.items():
        parent = school.account(school.req(rid)["parent_email"])["id"]
        if case in guessed:
            assert school.links(parent) == set(), case
            assert school.req(rid)["status"] == "approved"
            assert "linking would be a guess" in school.req(rid)["system_comment"].splitlines()[-1]
        else:
            assert school.links(parent) == {cal} and school.req(rid)["status"] == "provisioned"
    assert report_of(dr)["failed"] == {"child_namesake": sorted(rids[c] for c in guessed)}


def test_a_dry_run_plans_exactly_what_the_following_real_run_does(school, fresh, run_cycle):
    from tests.testbed.helpers import add_auth_row

    provisioned_family(school, run_cycle, "old.parent@example.org", ("Olly", "Parr", "7RB"))
    kids = {n: school.pupil(n, "Quinn", "9KM") for n in ("Ada", "Ben", "Cy")}
    school.pupil("Dot", "Quinn", "9KM")
    school.pupil("Dot", "Quinn", "9KM")  # two of them: ambiguous
    school.pupil("Eli", "Quinn", "9KM", suspended=1)
    school.pupil("Eli", "Quinn", "9KM")  # a namesake: a guess
    returning = "back.again@example.org"  # suspended earlier, re-approved since: the sync revives it
    school.user("Bea", "Back", auth="db", email=returning, username=returning, suspended=1)
    rids = [
        school.request("new.one@example.org", [("Ada", "Quinn", "9KM"), ("Ben", "Quinn", "9KM")]),
        school.request("new.two@example.org", [("Cy", "Quinn", "9KM"), ("Dot", "Quinn", "9KM")]),
        school.request("new.three@example.org", [("Eli", "Quinn", "9KM")]),
        school.request("new.four@example.org", [("Zak", "Quinn", "9KM")]),
        school.request("no.auth@example.org", [("Ada", "Quinn", "9KM")], auth=False),
        school.request("Bad Email", [("Ada", "Quinn", "9KM")]),
        school.request(returning, [("Cy", "Quinn", "9KM")], auth=False),
        school.request(
            "old.parent@example.org",
            [("Ben", "Quinn", "9KM")],
            auth=False,
            request_type="One or more of my children is not linked correctly to my account (please provide "
            "details below).",
        ),  # fmt: skip
    ]
    add_auth_row(school.cfg, returning, request_id=rids[6])

    dr, states = run_cycle(conf={names.DRY_RUN: True})
    assert dr.state == "success", states
    dry = report_of(dr)
    plan = {int(rid): p for rid, p in dry["plan"].items()}
    assert dry["sync"]["would_run"] is True and dry["sync"]["would_revive"] == [school.account(returning)["id"]]
    # new.one to four (four's child is unknown: its account is made all the same); Bad Email's is refused
    assert (dry["sync"]["prediction"]["created"], dry["sync"]["prediction"]["refused"]) == (4, 1)

    dr, states = run_cycle()
    assert dr.state == "success", states
    done = {}
    for rid in rids:
        [o] = school.wp_rows("SELECT * FROM {out} WHERE run_id=%s AND request_id=%s", (dr.run_id, rid))
        done[rid] = {
            "outcome": o["outcome"],
            "reasons": o["reason_key"],
            "linked": {str(pos): pupil for pos, pupil in json.loads(o["linked_children"])},
        }
    planned = {
        rid: {
            "outcome": plan[rid]["outcome"],
            "reasons": plan[rid]["reasons"],
            "linked": {pos: c for pos, c in plan[rid]["children"].items() if isinstance(c, int)}
            if plan[rid]["account"] in ("ready", "created_by_sync", "revived_by_sync")
            else {},
        }
        for rid in rids
    }
    assert planned == done
    assert done[rids[0]]["linked"] == {"1": kids["Ada"], "2": kids["Ben"]}  # the plan is not empty
    report = report_of(dr)
    assert dry["new_accounts"] == report["links"]["new_accounts"] == 5  # four created, one revived
    assert dry["role_assignments_added"] == report["links"]["role_assignments_added"]
    assert dry["sync"]["prediction"] == {k: v for k, v in report["sync"]["prediction"].items()}
