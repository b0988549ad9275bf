"""Which links a cycle takes away (unlink.py): pure decisions over plain records."""

from __future__ import annotations

from include.parent_provisioning.moodle_db import LedgerRow
from include.parent_provisioning.unlink import GONE, Replan, decide, reason, replans_from_outcomes

PARENT, OTHER_PARENT = 100, 101
AMY, BEN = 10, 11
AMY_CTX, BEN_CTX, STATIC = 510, 511, 1


def row(id_, request_id, child=AMY, context=AMY_CTX, ra=900, origin="made", present=True, pupil=True, parent=PARENT):
    return LedgerRow(id_, request_id, parent, child, context, ra, origin, present, pupil)


def test_a_live_request_keeps_its_links_and_each_status_that_is_not_live_ends_them():
    link = row(1, 7)
    assert reason(link, {7: "provisioned"}, {}, (), False) is None
    assert reason(link, {7: "approved"}, {}, (), False) is None
    for status in ("rejected", "duplicate", "bogus", "unknown", "pending", "deleting"):
        assert reason(link, {7: status}, {}, (), False) == f"request_{status}"
    assert reason(link, {}, {}, (), False) == "request_deleted"


def test_a_replanned_request_keeps_only_the_children_and_parent_it_names_now():
    link = row(1, 7)
    assert reason(link, {7: "approved"}, {7: Replan(PARENT, frozenset({AMY}))}, (), False) is None
    assert reason(link, {7: "approved"}, {7: Replan(PARENT, frozenset({BEN}))}, (), False) == "child_changed"
    assert reason(link, {7: "approved"}, {7: Replan(OTHER_PARENT, frozenset({AMY}))}, (), False) == "parent_changed"
    assert reason(link, {7: "approved"}, {7: Replan(None, frozenset())}, (), False) == "request_unusable"


def test_a_static_context_link_lasts_while_its_request_is_live_and_the_context_is_set():
    static = row(1, 7, child=None, context=STATIC)
    assert reason(static, {7: "provisioned"}, {}, (STATIC,), False) is None
    assert reason(static, {7: "provisioned"}, {}, (), False) == "static_context_unset"
    assert reason(static, {7: "rejected"}, {}, (STATIC,), False) == "request_rejected"
    # A replanned request whose children changed keeps its static link.
    assert reason(static, {7: "approved"}, {7: Replan(PARENT, frozenset({BEN}))}, (STATIC,), False) is None


def test_a_leaver_is_unlinked_only_when_the_setting_says_so_even_when_the_request_no_longer_matches_them():
    leaver = row(1, 7, pupil=False)
    assert reason(leaver, {7: "provisioned"}, {}, (), False) is None
    assert reason(leaver, {7: "provisioned"}, {}, (), True) == "child_left"
    assert reason(leaver, {7: "approved"}, {7: Replan(PARENT, frozenset())}, (), False) is None
    assert reason(leaver, {7: "rejected"}, {}, (), False) == "request_rejected"


def test_a_link_another_live_request_holds_stays_and_both_rows_stay_open():
    rows = [row(1, 7, ra=900), row(2, 8, ra=900, origin="found")]
    d = decide(rows, {7: "rejected", 8: "provisioned"}, {}, (), False)
    assert d.removals == [] and d.held == [1] and d.deletions == []
    d = decide(rows, {7: "rejected", 8: "bogus"}, {}, (), False)
    assert d.deletions == [900]
    assert [(r.ledger_id, r.reason, r.delete) for r in d.removals] == [
        (1, "request_rejected", True),
        (2, "request_bogus", True),
    ]
    assert d.counts() == {"request_bogus": 1, "request_rejected": 1}


def test_a_link_made_by_hand_is_released_from_the_ledger_never_deleted():
    d = decide([row(1, 7, origin="found")], {7: "rejected"}, {}, (), False)
    assert d.deletions == [] and [(r.ledger_id, r.reason, r.delete) for r in d.removals] == [
        (1, "request_rejected", False)
    ]


def test_an_adopted_link_is_deleted_like_a_made_one():
    assert decide([row(1, 7, origin="adopted")], {7: "rejected"}, {}, (), False).deletions == [900]


def test_a_link_already_gone_from_moodle_closes_its_rows_and_deletes_nothing():
    d = decide([row(1, 7, present=False), row(2, 8, present=False)], {7: "provisioned", 8: "rejected"}, {}, (), False)
    assert d.deletions == [] and {(r.ledger_id, r.reason) for r in d.removals} == {(1, GONE), (2, GONE)}


def test_leavers_are_listed_and_parents_with_no_current_child_named_with_their_live_requests():
    rows = [
        row(1, 7, child=AMY, ra=900, pupil=False),
        row(2, 7, child=None, context=STATIC, ra=901),
        row(3, 9, child=AMY, ra=902, pupil=False, parent=OTHER_PARENT),
        row(4, 9, child=BEN, context=BEN_CTX, ra=903, parent=OTHER_PARENT),
    ]
    statuses = {7: "provisioned", 9: "provisioned"}
    off = decide(rows, statuses, {}, (STATIC,), False)
    assert [r.id for r in off.leavers] == [1, 3] and off.deletions == []
    assert off.parents_without_child == {PARENT: [7]}  # the other parent still has Ben
    on = decide(rows, statuses, {}, (STATIC,), True)
    assert on.deletions == [900, 902] and on.counts() == {"child_left": 2}
    assert on.parents_without_child == {PARENT: [7]}


def test_only_outcomes_this_run_planned_and_still_as_it_read_them_are_replans():
    outcomes = [
        {"request_id": 7, "outcome": "provisioned", "reason_key": "", "fingerprint": "a", "parent_userid": PARENT,
         "linked_children": [[1, AMY]]},
        {"request_id": 8, "outcome": "provisioned", "reason_key": "", "fingerprint": "b", "parent_userid": PARENT,
         "linked_children": [[1, BEN]]},  # corrected again after link_children read it
        {"request_id": 9, "outcome": "not_provisioned", "reason_key": "changed_during_cycle", "fingerprint": "c",
         "parent_userid": None, "linked_children": []},
        {"request_id": 10, "outcome": "collected", "reason_key": "", "fingerprint": "d", "parent_userid": None,
         "linked_children": []},
        {"request_id": 11, "outcome": "not_provisioned", "reason_key": "account_suspended", "fingerprint": "e",
         "parent_userid": None, "linked_children": []},
    ]  # fmt: skip
    got = replans_from_outcomes(outcomes, {7: "a", 8: "changed", 9: "c", 10: "d", 11: "e"})
    assert got == {7: Replan(PARENT, frozenset({AMY})), 11: Replan(None, frozenset())}


def test_a_ledger_judged_in_batches_of_whole_parents_decides_what_one_pass_would():
    """unlink_children streams the ledger by parent and merges each batch's decision (Tally): the
    same removals, counts, and first leavers and parents without a child, in the same order."""
    import random

    from include.parent_provisioning.unlink import Tally

    rng = random.Random(5)
    rows, ras = [], {}
    for id_ in range(1, 400):
        parent = rng.randrange(100, 200)
        child = rng.choice([None, *range(10, 30)])
        context = STATIC if child is None else 500 + child
        ra = ras.setdefault((parent, context), 1000 + len(ras))  # one role assignment per (parent, context)
        rows.append(
            row(id_, rng.randrange(1, 60), child=child, context=context, ra=ra, origin=rng.choice(["made", "found"]),
                present=rng.random() > 0.1, pupil=rng.random() > 0.5, parent=parent)
        )  # fmt: skip
    statuses = {rid: rng.choice(["approved", "provisioned", "provisioned", "rejected"]) for rid in range(1, 55)}
    replans = {rid: Replan(rng.choice([None, 100, 101]), frozenset({10, 11, 12})) for rid in range(1, 60, 7)}
    whole = decide(rows, statuses, replans, (STATIC,), False)
    for listed in (3, 1000):
        for size in (1, 7, 50, 1000):
            tally, batch = Tally(listed), []
            for r in sorted(rows, key=lambda r: (r.parent, r.id)):  # as moodle_db.active_links streams them
                if len(batch) >= size and r.parent != batch[-1].parent:
                    tally.add(batch, decide(batch, statuses, replans, (STATIC,), False))
                    batch = []
                batch.append(r)
            tally.add(batch, decide(batch, statuses, replans, (STATIC,), False))
            assert tally.rows == len(rows)
            assert sorted(tally.removals, key=lambda r: r.ledger_id) == sorted(
                whole.removals, key=lambda r: r.ledger_id
            )
            assert tally.deletions == whole.deletions and tally.counts() == whole.counts()
            assert tally.held == len(whole.held) and tally.leavers == len(whole.leavers)
            assert tally.listed_leavers == whole.leavers[:listed]
            assert list(tally.parents_without_child.items()) == list(whole.parents_without_child.items())[:listed]
    assert whole.removals and whole.held and len(whole.leavers) > 3 and len(whole.parents_without_child) > 3
