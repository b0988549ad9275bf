"""The cycle's decisions (include/parent_provisioning/plan.py) on plain records: no database, no
sshd, no Airflow. Real runs of the same decisions: tests/cycle/."""

from __future__ import annotations

import pytest

from include.parent_provisioning import plan
from include.parent_provisioning.matching import Pupil, PupilIndex
from include.parent_provisioning.moodle_db import Account
from include.parent_provisioning.reasons import Reason
from include.parent_provisioning.requests import from_row

EMAIL = "ann.lee@example.org"
AMY = Pupil(101, "Amy", "Lee", "7RB")


def request(*children, email=EMAIL, rid=1, **columns):
    row = {"id": rid, "parent_email": email, "request_type": "I do not currently have a Moodle Account."}
    for prefix, kid in zip(("child", "child2", "child3"), children, strict=False):
        row.update(zip((f"{prefix}_fname", f"{prefix}_sname", f"{prefix}_tg"), kid, strict=True))
    row.update(columns)
    return from_row(row)


def account(uid=500, suspended=False, username=EMAIL):
    return Account(uid, username, "db", suspended)


def index(pupils=(AMY,), others=(), match_by="name_and_tutor_group"):
    return PupilIndex(pupils, match_by, others)


def codes(p: plan.RequestPlan) -> list[str]:
    return [r.code for r in p.reasons]


def test_an_active_account_and_one_pupil_link_and_provision():
    p = plan.plan_request(request(("Amy", "Lee", "7RB")), account(), index())
    assert (p.account, p.parent_id, p.links, p.provisioned) == (plan.READY, 500, ((1, 101),), True)


@pytest.mark.parametrize(
    ("others", "match_by", "linked"),
    [
        ((Pupil(7, "Amy", "Lee", "7RB"),), "name_and_tutor_group", False),  # a suspended pupil, same group
        ((Pupil(8, "Amy", "Lee", "Staff"),), "name_and_tutor_group", True),  # staff: another 'group'
        ((Pupil(8, "Amy", "Lee", "Staff"),), "name_only", False),  # ...which name_only does not look at
        ((Pupil(9, "AMY", " lée ", "7rb"),), "name_and_tutor_group", False),  # compared as the pupils are
        ((Pupil(10, "Amelia", "Lee", "7RB"),), "name_only", True),  # another name
    ],
)
def test_the_only_pupil_is_a_guess_when_another_account_has_the_name(others, match_by, linked):
    p = plan.plan_request(request(("Amy", "Lee", "7RB")), account(), index(others=others, match_by=match_by))
    if linked:
        assert p.links == ((1, 101),) and p.provisioned
    else:
        assert p.links == () and not p.provisioned
        assert p.reasons == (Reason("child_namesake", position=1, tutor_group="7RB", count=1),)
        assert "would be a guess" in p.reasons[0].text


def test_the_requesting_parent_is_not_their_own_childs_namesake():
    father = account(uid=600)
    same_name = index(others=(Pupil(600, "Amy", "Lee", ""),), match_by="name_only")
    assert plan.plan_request(request(("Amy", "Lee", "7RB")), father, same_name).links == ((1, 101),)
    # ...but another parent of that name is
    assert plan.plan_request(request(("Amy", "Lee", "7RB")), account(uid=601), same_name).links == ()


def test_no_pupil_and_several_pupils_keep_their_own_reasons_whatever_the_namesakes():
    twins = index(pupils=(AMY, Pupil(102, "Amy", "Lee", "7RB")), others=(Pupil(7, "Amy", "Lee", "7RB"),))
    assert codes(plan.plan_request(request(("Amy", "Lee", "7RB")), account(), twins)) == ["child_ambiguous"]
    nobody = index(pupils=(), others=(Pupil(7, "Amy", "Lee", "7RB"),))
    assert codes(plan.plan_request(request(("Amy", "Lee", "7RB")), account(), nobody)) == ["child_not_found"]


def test_one_childs_problem_leaves_the_others_linked_but_the_request_approved():
    bob = Pupil(102, "Bob", "Lee", "9KM")
    p = plan.plan_request(request(("Amy", "Lee", "7RB"), ("Zed", "Lee", "7RB"), ("Bob", "Lee", "9KM")), account(),
                          index(pupils=(AMY, bob)))  # fmt: skip
    assert p.links == ((1, 101), (3, 102)) and codes(p) == ["child_not_found"] and not p.provisioned


def test_an_incomplete_child_is_matched_for_the_record_but_nothing_is_linked():
    p = plan.plan_request(request(("Amy", "Lee", "7RB"), ("Bob", "", "7RB")), account(), index())
    assert codes(p) == ["child_incomplete"] and p.account == plan.NOT_CHECKED
    assert [c.pupil_id for c in p.children] == [101] and p.links == () and p.parent_id is None


def test_an_unusable_parent_is_not_matched_at_all():
    p = plan.plan_request(request(("Amy", "Lee", "7RB"), email="not an email"), None, index())
    assert codes(p) == ["invalid_email"] and p.children == () and p.links == ()


@pytest.mark.parametrize(
    ("acct", "will_create", "will_revive", "state", "reason"),
    [
        (None, (), (), plan.MISSING, "account_missing"),
        (None, (EMAIL,), (), plan.CREATED_BY_SYNC, None),
        (account(suspended=True), (), (), plan.SUSPENDED, "account_suspended"),
        (account(suspended=True), (), (500,), plan.REVIVED_BY_SYNC, None),
        (account(suspended=True), (EMAIL,), (), plan.SUSPENDED, "account_suspended"),  # taken: not created
    ],
)
def test_the_parents_account_as_the_real_run_or_the_sync_would_leave_it(acct, will_create, will_revive, state, reason):
    p = plan.plan_request(request(("Amy", "Lee", "7RB")), acct, index(), will_create, will_revive)
    assert p.account == state
    assert codes(p) == ([reason] if reason else [])
    assert p.provisioned is (reason is None)
    assert p.links == (((1, 101),) if reason is None else ())
    assert p.parent_id == (500 if state == plan.REVIVED_BY_SYNC else None)


def test_the_assignments_wanted_are_each_childs_context_and_each_static_one_per_parent():
    plans = plan.plan_requests(
        [request(("Amy", "Lee", "7RB"), rid=1), request(("Amy", "Lee", "7RB"), rid=2, email="b@example.org")],
        {EMAIL: account(), "b@example.org": account(uid=501, username="b@example.org")},
        index(),
    )
    assert plan.children_to_link(plans) == {101}
    assert plan.wanted_assignments(plans, {101: 9001}, (1, 77)) == {
        (9001, 500), (1, 500), (77, 500), (9001, 501), (1, 501), (77, 501)
    }  # fmt: skip


def test_a_dry_run_counts_every_link_of_an_account_still_to_be_created_once_per_parent():
    plans = plan.plan_requests(
        [request(("Amy", "Lee", "7RB"), rid=1), request(("Amy", "Lee", "7RB"), rid=2)], {}, index(), {EMAIL}
    )
    assert [p.account for p in plans] == [plan.CREATED_BY_SYNC] * 2
    assert plan.wanted_assignments(plans, {101: 9001}, (1,)) == set()  # none yet: no id to assign to
    assert plan.new_links_for_new_accounts(plans, static_contexts=1) == 2


def test_the_dry_runs_description_holds_ids_and_codes_only():
    p = plan.plan_request(request(("Amy", "Lee", "7RB"), ("Zed", "Lee", "7RB")), None, index(), {EMAIL})
    assert plan.describe(p) == {
        "outcome": "not_provisioned",
        "account": plan.CREATED_BY_SYNC,
        "children": {1: 101, 2: "child_not_found"},
        "links": 1,
        "reasons": "child_not_found",
    }
    assert EMAIL not in repr(plan.describe(p)) and "Amy" not in repr(plan.describe(p))


def test_the_ledger_holds_each_link_per_request_with_its_child_or_none_for_a_static_context():
    ben = Pupil(102, "Ben", "Lee", "7RB")
    idx = index(pupils=(AMY, ben))
    first = plan.plan_request(request(("Amy", "Lee", "7RB"), ("Ben", "Lee", "7RB")), account(), idx)
    second = plan.plan_request(request(("Amy", "Lee", "7RB"), ("Amy", "Lee", "7RB"), rid=2), account(), idx)
    unlinked = plan.plan_request(request(("Amy", "Lee", "7RB"), rid=3, email="x@example.org"), None, idx)
    links = plan.ledger_links([first, second, unlinked], {101: 1001, 102: 1002}, [5])
    assert [(x.request_id, x.parent, x.child, x.context) for x in links] == [
        (1, 500, None, 5),
        (1, 500, 101, 1001),
        (1, 500, 102, 1002),
        (2, 500, None, 5),
        (2, 500, 101, 1001),  # the child named twice: one link, justified by this request
    ]  # no link for the parent without an account: nothing was linked


def rows(*emails):
    return [{"id": i, "parent_email": e, "child_fname": "Amy", "child_sname": "Lee", "child_tg": "7RB"}
            for i, e in enumerate(emails, 1)]  # fmt: skip


def validated(*emails, auth=(EMAIL,), accounts=None):
    return plan.validate(rows(*emails), set(auth), accounts or {}, "name_and_tutor_group", False)


def test_an_email_no_auth_row_holds_is_kept_back_and_its_children_not_matched():
    [r] = validated("b@example.org")
    assert [x.code for x in r.reasons] == ["no_auth_row"]
    assert plan.plan_request(r, None, index()).children == ()


def test_an_email_that_is_no_username_is_not_also_told_it_has_no_auth_row():
    [r] = validated("not an email")
    assert [x.code for x in r.reasons] == ["invalid_email"]


def test_an_account_moodle_authenticates_another_way_is_never_linked():
    [r] = validated(EMAIL, accounts={EMAIL: Account(500, EMAIL, "manual", False)})
    assert r.reasons == [Reason("account_other_auth", auth="manual")]
    p = plan.plan_request(r, Account(500, EMAIL, "manual", False), index())
    assert p.links == () and not p.provisioned and p.parent_id is None


def test_a_request_with_an_auth_row_and_a_db_account_has_no_problem():
    assert validated(EMAIL, accounts={EMAIL: account()})[0].reasons == []


def test_no_link_is_wanted_twice_when_two_requests_of_one_parent_name_the_same_child():
    plans = plan.plan_requests([request(("Amy", "Lee", "7RB"), rid=1), request(("Amy", "Lee", "7RB"), rid=2)],
                               {EMAIL: account()}, index())  # fmt: skip
    assert plan.wanted_assignments(plans, {101: 9001}, (1,)) == {(9001, 500), (1, 500)}


def test_a_dry_run_wants_the_user_context_it_would_make():
    plans = plan.plan_requests([request(("Amy", "Lee", "7RB"))], {EMAIL: account()}, index())
    assert plan.wanted_assignments(plans, {101: None}, ()) == {plan.WantedAssignment(None, 500)}


def test_a_parent_kept_back_by_their_account_is_given_no_link():
    plans = plan.plan_requests([request(("Amy", "Lee", "7RB"))], {EMAIL: account(suspended=True)}, index())
    assert plan.children_to_link(plans) == set() and plan.wanted_assignments(plans, {}, (1,)) == set()


def test_requests_go_in_chunks_with_each_parents_requests_together():
    requests = [(1, "a@x.org"), (2, "b@x.org"), (3, " A@X.org"), (4, "c@x.org"), (5, None), (6, "b@x.org"), (7, "")]
    assert plan.by_parent(requests, 3) == [[1, 3], [2, 6, 4], [5, 7]]
    assert plan.by_parent(requests, 1) == [[1, 3], [2, 6], [4], [5, 7]]  # a parent's requests are never split
    assert plan.by_parent(requests, 100) == [[1, 3, 2, 6, 4, 5, 7]]
    assert plan.by_parent([], 5) == []
