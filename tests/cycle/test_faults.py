"""The fault matrix: each fault injected into a real component during a real DAG run, then the
run is carried through (the task's own retry) or cleared and run again; the end state must equal
that of an undisturbed run of the same school. Each case records itself in RELIABILITY.md."""

from __future__ import annotations

import pprint

import pytest

from tests.cycle import end_state
from tests.cycle.conftest import run_dag
from tests.cycle.proxy import proxied
from tests.cycle.school import School, use_settings
from tests.reliability import record

SETTINGS = {"static_context_ids": [1]}
CHILDREN_NOT_LINKED = "One or more of my children is not linked correctly to my account (please provide details below)."
LIKE_UNDISTURBED = "equal to an undisturbed run"


def build(school: School) -> School:
    """Seven requests: one, two and three children; a parent who has an account already; a child
    found nowhere; an ambiguous child beside a clear one; no auth row. Some pupils have no user
    context yet, so linking creates contexts too."""
    school.pupil("Amy", "Lee", "7RB")
    school.pupil("Bea", "Khan", "8CD")
    school.pupil("Bo", "Khan", "10EF", context=False)
    school.pupil("Cal", "Oduya", "7RB")
    school.pupil("Cat", "Oduya", "9KM")
    school.pupil("Cy", "Oduya", "11AB", context=False)
    school.pupil("Dan", "Hart", "7RB")
    school.pupil("Kit", "Nash", "9KM")
    school.pupil("Kit", "Nash", "9KM")
    school.pupil("Lou", "Nash", "7RB", context=False)
    school.pupil("Oli", "Sim", "7RB")
    school.parent_account("dee.hart@example.org", first="Dee", last="Hart")
    school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    school.request("bilal.khan@example.org", [("Bea", "Khan", "8CD"), ("Bo", "Khan", "10EF")])
    school.request("chi.oduya@example.org", [("Cal", "Oduya", "7RB"), ("Cat", "Oduya", "9KM"), ("Cy", "Oduya", "11AB")])
    school.request("dee.hart@example.org", [("Dan", "Hart", "7RB")], request_type=CHILDREN_NOT_LINKED)
    school.request("ned.ray@example.org", [("Noa", "Ray", "7RB")])
    school.request("max.nash@example.org", [("Kit", "Nash", "9KM"), ("Lou", "Nash", "7RB")])
    school.request("pam.sim@example.org", [("Oli", "Sim", "7RB")], auth=False)
    return school


NEW_ACCOUNTS = 5  # ann, bilal, chi, ned, max


@pytest.fixture(scope="module")
def undisturbed(bed, provisioning_dag):
    """The end state one undisturbed run leaves on a fresh test bed."""
    use_settings(bed.reset(), **SETTINGS)
    build(School(bed))
    dr, states = run_dag(provisioning_dag)
    assert dr.state == "success", states
    state = end_state.capture(bed.cfg)
    assert state["comment_lines_wrong"] == []
    assert [c[:2] for c in state["cycles"]] == [("finished", True)]
    return state


@pytest.fixture
def school(fresh):
    use_settings(fresh, **SETTINGS)
    return build(School(fresh))


def assert_like_undisturbed(school: School, undisturbed: dict) -> None:
    state = end_state.capture(school.cfg)
    assert state["comment_lines_wrong"] == []
    diff = end_state.differences(state, undisturbed)
    assert diff == {}, pprint.pformat(diff, width=150)


def task(dr, task_id: str):
    return next(ti for ti in dr.get_task_instances() if ti.task_id == task_id)


def nothing_marked(school: School) -> bool:
    """No request changed: all approved, each with only the line it was received with."""
    return all(
        r["status"] == "approved" and "\n" not in r["system_comment"] for r in school.wp_rows("SELECT * FROM {req}")
    )


def links(school: School) -> int:
    return len(school.moodle_rows("SELECT id FROM {role_assignments}"))


# --- a database connection cut in the middle of a task ------------------------------------------------------

RA_INSERT = "INSERT INTO `{m}role_assignments`"
MARK_UPDATE = "UPDATE `{w}tvs_parent_moodle_provisioning` r JOIN"
CUTS = {
    # case: (connection, statements the cut waits for, delivered?, the task, what that statement is)
    "Moodle DB cut in linking, before the role assignment INSERT": (
        "moodle_db",
        (RA_INSERT,),
        False,
        "link_children",
        "the role_assignments INSERT",
    ),
    "Moodle DB cut in linking, after the role assignment INSERT": (
        "moodle_db",
        (RA_INSERT,),
        True,
        "link_children",
        "the role_assignments INSERT",
    ),
    "Moodle DB cut in linking, after its COMMIT": (
        "moodle_db",
        (RA_INSERT, "COMMIT"),
        True,
        "link_children",
        "linking's COMMIT",
    ),
    "WordPress DB cut in marking, before the requests UPDATE": (
        "wordpress_db",
        (MARK_UPDATE,),
        False,
        "mark",
        "the requests UPDATE",
    ),
    "WordPress DB cut in marking, after the requests UPDATE": (
        "wordpress_db",
        (MARK_UPDATE,),
        True,
        "mark",
        "the requests UPDATE",
    ),
    "WordPress DB cut in marking, after its COMMIT": (
        "wordpress_db",
        (MARK_UPDATE, "COMMIT"),
        True,
        "mark",
        "marking's COMMIT",
    ),
}


@pytest.mark.parametrize("case", list(CUTS))
def test_a_database_connection_cut_mid_task_leaves_nothing_half_written(school, fresh, run_cycle, undisturbed, case):
    conn_id, patterns, delivered, task_id, statement = CUTS[case]
    committed = patterns[-1] == "COMMIT"
    stream = [p.format(m=school.cfg.moodle_prefix, w=school.cfg.wp_prefix).encode() for p in patterns]
    with proxied(fresh, conn_id) as proxies:
        proxies[conn_id].cut_on(*stream, after=delivered)
        dr, states = run_cycle()
        assert proxies[conn_id].cuts == 1
        assert states[task_id] == "failed" and dr.state == "failed", states
        if task_id == "link_children":  # all of linking's rows rolled back with the connection, or all committed
            assert links(school) == (sum(n for _, n in undisturbed["role_assignments"]) if committed else 0)
        assert nothing_marked(school) == (task_id != "mark" or not committed)
        dr2, states = run_cycle(rerun=dr)
    assert dr2.state == "success", states
    assert_like_undisturbed(school, undisturbed)
    record(
        "faults",
        case,
        f"a TCP proxy on {conn_id} cuts the connection at {statement} "
        f"({'delivered, answer held back' if delivered else 'not delivered'}), once",
        f"{task_id} fails: lost connection; "
        + ("the COMMIT took effect" if committed else "nothing of its transaction stays"),
        f"re-run: {LIKE_UNDISTURBED}",
    )
