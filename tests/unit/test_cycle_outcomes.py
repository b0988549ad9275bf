"""Which requests a run's link step takes and which outcome each gets (include/parent_provisioning/
outcomes.py), on plain records: no database, no Airflow. Real runs of the same: tests/cycle/."""

from __future__ import annotations

from include.parent_provisioning import outcomes, plan
from include.parent_provisioning.matching import Pupil, PupilIndex
from include.parent_provisioning.moodle_db import Account
from include.parent_provisioning.outcomes import ATTENTION_AFTER
from include.parent_provisioning.requests import from_row

EMAIL = "ann.lee@example.org"
NOW, RUN = "2026-09-07 06:00:00", "manual__1"
INDEX = PupilIndex([Pupil(101, "Amy", "Lee", "7RB"), Pupil(102, "Bob", "Lee", "9KM")], "name_and_tutor_group")


def request(*children, rid=1, email=EMAIL):
    row = {"id": rid, "parent_email": email, "fingerprint": "f1"}
    for prefix, kid in zip(("child", "child2", "child3"), children, strict=False):
        row.update(zip((f"{prefix}_fname", f"{prefix}_sname", f"{prefix}_tg"), kid, strict=True))
    return from_row(row)


def account(suspended=False):
    return Account(500, EMAIL, "db", suspended)


def planned(*children, acct=None):
    return plan.plan_request(request(*children), acct if acct is not None else account(), INDEX)


def collected(rid, needs_account=0, marked=None):
    return {"request_id": rid, "needs_account": needs_account, "marked_outcome": marked}


def test_the_link_step_takes_the_requests_collect_took_that_are_still_approved():
    take = outcomes.real_run_take(
        [collected(1, needs_account=1), collected(2), collected(3, marked="provisioned")],
        [{"id": 1, "status": "approved"}, {"id": 2, "status": "rejected"}, {"id": 3, "status": "provisioned"}],
    )
    assert [r["id"] for r in take.rows] == [1] and take.needed_account == {1}
    # 2: staff rejected it after collect read it; 3: this run marked it already (a re-run keeps its outcome)
    assert take.changed == [2]


def test_a_request_deleted_since_collect_counts_as_changed_during_the_cycle():
    assert outcomes.real_run_take([collected(4)], []).changed == [4]


def test_a_run_for_some_requests_lists_those_asked_for_that_are_not_approved():
    assert outcomes.asked_but_not_approved([5, 3, 9], [{"id": 3}]) == [5, 9]
    assert outcomes.asked_but_not_approved([], [{"id": 3}]) == []


def test_a_usable_request_needs_a_new_account_when_the_parent_has_none_or_a_suspended_one():
    r = request(("Amy", "Lee", "7RB"))
    assert outcomes.collect_outcome(r, None).needs_account
    assert outcomes.collect_outcome(r, account(suspended=True)).needs_account
    assert not outcomes.collect_outcome(r, account()).needs_account
    # a re-run after Moodle's sync made the account still owes the parent the password mail
    assert outcomes.collect_outcome(r, account(), needed_earlier={1}).needs_account


def test_a_request_with_a_data_problem_needs_no_account_and_keeps_its_reasons():
    o = outcomes.collect_outcome(request(), None)
    assert (o.outcome, o.needs_account, o.reason_key) == ("collected", False, "no_first_child")


def test_a_provisioned_request_says_which_children_and_static_contexts_were_linked():
    o = outcomes.link_outcome(planned(("Amy", "Lee", "7RB"), ("Bob", "Lee", "9KM")), RUN, NOW, {1}, [], statics=2)
    assert (o.outcome, o.parent_userid, o.linked_children, o.needs_account, o.fingerprint) == (
        "provisioned", 500, ((1, 101), (2, 102)), True, "f1"
    )  # fmt: skip
    assert o.comment_line == (
        f"{NOW} Provisioned by Airflow run {RUN}: parent account linked to child(ren) 1, 2 and 2 static context(s)."
    )


def test_a_request_kept_back_gives_its_reasons_and_what_was_linked_so_far():
    o = outcomes.link_outcome(planned(("Amy", "Lee", "7RB"), ("Zed", "Lee", "7RB")), RUN, NOW, (), [], statics=0)
    assert (o.outcome, o.reason_key, o.attempt, o.needs_attention) == ("not_provisioned", "child_not_found", 1, False)
    assert o.comment_line.startswith(f"{NOW} Not provisioned by Airflow run {RUN} (attempt 1): child 2 (7RB)")
    assert o.comment_line.endswith(" Linked so far: child(ren) 1.")


def test_a_request_failing_the_same_way_cycle_after_cycle_needs_attention():
    p = planned(("Zed", "Lee", "7RB"))
    same = [("not_provisioned", "child_not_found")] * (ATTENTION_AFTER - 1)
    o = outcomes.link_outcome(p, RUN, NOW, (), same, statics=0)
    assert (o.attempt, o.needs_attention) == (ATTENTION_AFTER, True)
    assert o.comment_line.endswith("NEEDS ATTENTION: failing the same way for several cycles.")
    other = [("not_provisioned", "account_missing")] + same[1:]
    assert not outcomes.link_outcome(p, RUN, NOW, (), other, statics=0).needs_attention


def test_a_provisioned_requests_attempt_counts_its_earlier_failures():
    past = [("not_provisioned", "child_not_found"), ("provisioned", "")]
    o = outcomes.link_outcome(planned(("Amy", "Lee", "7RB")), RUN, NOW, (), past, statics=0)
    assert (o.attempt, o.needs_attention) == (2, False)


def test_a_request_changed_during_the_cycle_is_left_as_staff_left_it():
    o = outcomes.changed_during_cycle(7, RUN, NOW)
    assert (o.request_id, o.outcome, o.reason_key, o.linked_children) == (
        7,
        "not_provisioned",
        "changed_during_cycle",
        (),
    )
    assert o.comment_line.startswith(f"{NOW} Not marked by Airflow run {RUN}: staff changed the request")


def marked(rid, outcome, reason_key="", emailed=None):
    return {"request_id": rid, "marked_outcome": outcome, "reason_key": reason_key, "parent_emailed": emailed}


def test_parents_are_emailed_once_provisioned_or_first_kept_back_for_what_they_can_put_right():
    rows = [
        marked(1, "provisioned"),
        marked(2, "not_provisioned", "child_not_found"),
        marked(3, "not_provisioned", "child_ambiguous"),  # told last cycle, same reason: not again
        marked(4, "not_provisioned", "account_missing"),  # not theirs to put right
        marked(5, "provisioned", emailed="generic_fixed"),  # this run emailed them already
        marked(6, None),  # not marked (yet)
    ]
    awaiting = outcomes.awaiting_email(rows)
    assert [o["request_id"] for o in awaiting] == [1, 2, 3, 4]
    past = {3: [("not_provisioned", "child_ambiguous")], 2: [("not_provisioned", "child_ambiguous")]}
    due = outcomes.emails_due(awaiting, past, {"provisioned", "kept_back"})
    assert due == [outcomes.DueEmail(1, "provisioned"), outcomes.DueEmail(2, "kept_back")]
    assert outcomes.emails_due(awaiting, past, {"kept_back"}) == [outcomes.DueEmail(2, "kept_back")]
