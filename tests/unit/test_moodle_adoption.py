"""Which Parent-role assignments found in Moodle the cycle adopts (adopt.py): a pure decision."""

from __future__ import annotations

from include.parent_provisioning.adopt import decide
from include.parent_provisioning.moodle_db import Assignment, Link
from include.parent_provisioning.plan import READY, ChildPlan, RequestPlan

PARENT, OTHER_PARENT = 100, 101
AMY, BEN = 10, 11
AMY_CTX, STATIC = 510, 1


def plan(request_id, parent=PARENT, pupils=(AMY,), account=READY):
    children = tuple(ChildPlan(position, pupil) for position, pupil in enumerate(pupils, start=1))
    return RequestPlan(request_id, account, parent, children, ())


def test_a_childs_assignment_is_adopted_once_for_each_request_of_that_parent_naming_the_child():
    found = [Assignment(900, PARENT, AMY_CTX, AMY)]
    links, unjustified = decide(found, [plan(8), plan(7), plan(9, pupils=(BEN,))], ())
    assert links == [Link(7, PARENT, AMY, AMY_CTX), Link(8, PARENT, AMY, AMY_CTX)] and unjustified == []


def test_an_assignment_over_a_child_no_request_of_that_parent_names_is_listed_never_adopted():
    found = [Assignment(900, PARENT, AMY_CTX, AMY)]
    for plans in ([plan(7, pupils=(BEN,))], [plan(7, parent=OTHER_PARENT)], [plan(7, parent=None)], []):
        assert decide(found, plans, ()) == ([], found)


def test_a_static_context_is_adopted_for_each_request_of_that_parent_while_it_is_in_the_settings():
    found = [Assignment(901, PARENT, STATIC, None)]
    assert decide(found, [plan(7, pupils=())], (STATIC,)).links == [Link(7, PARENT, None, STATIC)]
    assert decide(found, [plan(7, pupils=())], ()).unjustified == found
