"""The provisioning cycle end to end: real DAG runs on the test bed (MariaDB, OpenSSH, the Moodle double)."""

from __future__ import annotations

from include.parent_provisioning import names
from testbed import moodle_site
from tests.testbed.helpers import add_auth_row

CHILDREN_NOT_LINKED = "One or more of my children is not linked correctly to my account (please provide details below)."


def outcome(school, run_id, rid):
    [row] = school.wp_rows("SELECT * FROM {out} WHERE run_id=%s AND request_id=%s", (run_id, rid))
    return row


def test_one_two_and_three_children_are_linked_and_provisioned(school, run_cycle):
    a = school.pupil("Amy", "Lee", "7RB")
    b1, b2 = school.pupil("Bea", "Khan", "8CD"), school.pupil("Bo", "Khan", "10EF")
    c = [school.pupil("Cal", "Oduya", "7RB"), school.pupil("Cat", "Oduya", "9KM"), school.pupil("Cy", "Oduya", "11AB")]
    r1 = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    r2 = school.request("bilal.khan@example.org", [("Bea", "Khan", "8CD"), ("Bo", "Khan", "10EF")])
    r3 = school.request(
        "chi.oduya@example.org", [("Cal", "Oduya", "7RB"), ("Cat", "Oduya", "9KM"), ("Cy", "Oduya", "11AB")]
    )
    dr, states = run_cycle()
    assert dr.state == "success", states
    for email, rid, kids in (
        ("ann.lee@example.org", r1, {a}),
        ("bilal.khan@example.org", r2, {b1, b2}),
        ("chi.oduya@example.org", r3, set(c)),
    ):
        parent = school.account(email)
        assert parent["auth"] == "db"
        assert school.links(parent["id"]) == kids
        req = school.req(rid)
        assert (req["status"], req["provisioned_username"]) == ("provisioned", email)
        assert req["system_comment"].count(f"Provisioned by Airflow run {dr.run_id}") == 1
    assert sorted(m["to"] for m in moodle_site.sent_emails(school.cfg)) == [
        "ann.lee@example.org",
        "bilal.khan@example.org",
        "chi.oduya@example.org",
    ]


def test_a_parent_who_already_has_an_account_gets_the_extra_child_without_a_second_account(school, run_cycle):
    first, second = school.pupil("Dan", "Hart", "7RB"), school.pupil("Eve", "Hart", "9KM")
    school.request("dee.hart@example.org", [("Dan", "Hart", "7RB")])
    run_cycle()
    parent = school.account("dee.hart@example.org")
    mails_before = len(moodle_site.sent_emails(school.cfg))
    rid = school.request(
        "Dee.Hart@Example.org ", [("Eve", "Hart", "9KM")], auth=False, request_type=CHILDREN_NOT_LINKED
    )
    dr, states = run_cycle()
    assert dr.state == "success", states
    assert states["sync_users"] == "success"
    assert school.links(parent["id"]) == {first, second}
    assert len(school.moodle_rows("SELECT id FROM {user} WHERE username='dee.hart@example.org'")) == 1
    assert len(school.wp_rows("SELECT id FROM {auth} WHERE username='dee.hart@example.org'")) == 1
    assert school.req(rid)["status"] == "provisioned"
    assert len(moodle_site.sent_emails(school.cfg)) == mails_before  # nobody new, no password mail


def test_twins_are_both_linked(school, run_cycle):
    twins = {school.pupil("Finn", "Moss", "8CD"), school.pupil("Flo", "Moss", "8CD")}
    rid = school.request("gus.moss@example.org", [("Finn", "Moss", "8CD"), ("Flo", "Moss", "8CD")])
    run_cycle()
    assert school.links(school.account("gus.moss@example.org")["id"]) == twins
    assert school.req(rid)["status"] == "provisioned"


def test_a_child_matching_only_staff_or_a_parent_is_never_linked(school, run_cycle):
    school.staff("Hal", "Webb")
    school.parent_account("ivy.webb@example.org", first="Ivy", last="Webb")
    school.user("Ivy", "Webb", "7RB", auth="db", email="other@example.org", username="other@example.org")
    school.user("Hal", "Webb", "7RB", auth="manual")  # a teacher whose department is a tutor group: not in the cohort
    for provisioned in ("ivy.webb@example.org", "other@example.org"):  # else the sync would suspend them
        add_auth_row(school.cfg, provisioned)
    rid = school.request("jo.webb@example.org", [("Hal", "Webb", "7RB"), ("Ivy", "Webb", "7RB")])
    dr, _ = run_cycle()
    parent = school.account("jo.webb@example.org")
    assert school.links(parent["id"]) == set()
    req = school.req(rid)
    assert req["status"] == "approved"
    assert "child 1 (7RB) matches no pupil" in req["system_comment"]
    assert "child 2 (7RB) matches no pupil" in req["system_comment"]
    assert outcome(school, dr.run_id, rid)["reason_key"] == "child_not_found"


def test_ambiguous_child_is_never_linked_but_the_clear_one_is(school, run_cycle):
    school.pupil("Kit", "Nash", "9KM")
    school.pupil("Kit", "Nash", "9KM")
    clear = school.pupil("Lou", "Nash", "7RB")
    rid = school.request("max.nash@example.org", [("Kit", "Nash", "9KM"), ("Lou", "Nash", "7RB")])
    dr, states = run_cycle()
    assert dr.state == "success", states  # bad data leaves the run green
    assert school.links(school.account("max.nash@example.org")["id"]) == {clear}
    req = school.req(rid)
    assert req["status"] == "approved"
    assert "child 1 (9KM) matches 2 pupils; correct the tutor group or link by hand" in req["system_comment"]
    assert "Linked so far: child(ren) 2." in req["system_comment"]


def test_a_child_matching_nobody_keeps_the_request_approved_with_the_reason(school, run_cycle):
    rid = school.request("ned.ray@example.org", [("Noa", "Ray", "7RB")])
    dr, _ = run_cycle()
    assert school.req(rid)["status"] == "approved"
    assert "child 1 (7RB) matches no pupil; correct the name or tutor group" in school.req(rid)["system_comment"]
    report = next(ti for ti in dr.get_task_instances() if ti.task_id == "report")
    assert report.state == "success"


def test_an_approved_request_without_an_auth_row_is_not_provisioned(school, run_cycle):
    school.pupil("Oli", "Sim", "7RB")
    rid = school.request("pam.sim@example.org", [("Oli", "Sim", "7RB")], auth=False)
    dr, states = run_cycle()
    assert dr.state == "success"
    assert states["sync_users"] == "success"  # nothing needed a new account: no SSH
    assert school.account("pam.sim@example.org") is None
    req = school.req(rid)
    assert req["status"] == "approved" and "no auth row for this email" in req["system_comment"]
    assert outcome(school, dr.run_id, rid)["reason_key"] == "no_auth_row"


def test_capitals_and_spaces_in_the_email_do_not_matter(school, run_cycle):
    kid = school.pupil("Quin", "Tate", "10EF")
    rid = school.request("  Rae.TATE@Example.ORG ", [("Quin", "Tate", "10EF")])
    run_cycle()
    parent = school.account("rae.tate@example.org")
    assert parent and school.links(parent["id"]) == {kid}
    assert school.req(rid)["provisioned_username"] == "rae.tate@example.org"


def test_an_existing_role_assignment_is_not_duplicated(school, run_cycle):
    kid = school.pupil("Sid", "Vale", "7RB")
    school.request("tam.vale@example.org", [("Sid", "Vale", "7RB")])
    run_cycle()
    parent = school.account("tam.vale@example.org")
    rid = school.request("tam.vale@example.org", [("Sid", "Vale", "7RB")], auth=False, request_type=CHILDREN_NOT_LINKED)
    run_cycle()
    assert school.req(rid)["status"] == "provisioned"
    rows = school.moodle_rows("SELECT id FROM {role_assignments} WHERE userid=%s", (parent["id"],))
    assert len(rows) == 1 and school.links(parent["id"]) == {kid}


def test_a_missing_child_context_is_created_with_path_and_depth(school, run_cycle):
    kid = school.pupil("Uma", "West", "8CD", context=False)
    assert school.context_of(kid) is None
    school.request("vic.west@example.org", [("Uma", "West", "8CD")])
    run_cycle()
    ctx = school.context_of(kid)
    assert (ctx["path"], ctx["depth"]) == (f"/1/{ctx['id']}", 2)
    assert school.links(school.account("vic.west@example.org")["id"]) == {kid}
    flags = school.moodle_rows("SELECT * FROM {cache_flags} WHERE flagtype='accesslib/dirtyusers'")
    assert [f["name"] for f in flags] == [str(school.account("vic.west@example.org")["id"])]


def test_static_contexts_get_the_parent_role_too(school, run_cycle, fresh):
    from tests.cycle.school import use_settings

    use_settings(fresh, static_context_ids=[1])
    school.pupil("Wyn", "Yates", "7RB")
    rid = school.request("xan.yates@example.org", [("Wyn", "Yates", "7RB")])
    run_cycle()
    parent = school.account("xan.yates@example.org")
    rows = school.moodle_rows("SELECT contextid FROM {role_assignments} WHERE userid=%s", (parent["id"],))
    assert 1 in {r["contextid"] for r in rows} and len(rows) == 2
    assert school.req(rid)["status"] == "provisioned"


def test_request_ids_limit_the_cycle_to_those_requests(school, run_cycle):
    school.pupil("Yan", "Zed", "7RB")
    school.pupil("Zoe", "Zed", "8CD")
    chosen = school.request("a.zed@example.org", [("Yan", "Zed", "7RB")])
    other = school.request("b.zed@example.org", [("Zoe", "Zed", "8CD")])
    dr, _ = run_cycle(conf={names.REQUEST_IDS: [chosen]})
    assert school.req(chosen)["status"] == "provisioned"
    assert school.req(other)["status"] == "approved"
    assert school.account("b.zed@example.org") is None or not school.links(school.account("b.zed@example.org")["id"])


def test_the_password_task_mails_each_new_parent_once_and_nobody_when_nothing_is_new(school, run_cycle):
    school.pupil("Abe", "Cole", "7RB")
    school.request("cy.cole@example.org", [("Abe", "Cole", "7RB")])
    _, states = run_cycle()
    assert states["send_passwords"] == "success"
    assert [m["to"] for m in moodle_site.sent_emails(school.cfg)] == ["cy.cole@example.org"]
    _, states = run_cycle()
    assert [m["to"] for m in moodle_site.sent_emails(school.cfg)] == ["cy.cole@example.org"]


def test_a_request_failing_the_same_way_three_cycles_needs_attention(school, run_cycle):
    rid = school.request("uli.vos@example.org", [("Nobody", "Vos", "7RB")])
    for attempt in (1, 2, 3):
        dr, _ = run_cycle()
        row = outcome(school, dr.run_id, rid)
        assert row["attempt"] == attempt
        assert bool(row["needs_attention"]) is (attempt == 3)
    assert "NEEDS ATTENTION" in school.req(rid)["system_comment"].splitlines()[-1]
    report = next(ti for ti in dr.get_task_instances() if ti.task_id == "report").xcom_pull(task_ids="report")
    assert report["needs_attention"] == [rid]
    assert report["failed"] == {"child_not_found": [rid]}
