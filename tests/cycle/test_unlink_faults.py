"""The fault matrix for taking links away: the unlinking cycle's process SIGKILLed between the
deletion and the ledger update, and its Moodle connection cut around the deletion and at the
commit. The re-run must leave what an undisturbed unlinking cycle leaves: never a link deleted
without its ledger row closed, nor a row closed with its link still there. Real DAG runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from include.parent_provisioning import names
from include.parent_provisioning.requests import CHILDREN_NOT_LINKED
from testbed import moodle_site
from tests.cycle import end_state, runner
from tests.cycle.conftest import run_dag
from tests.cycle.proxy import proxied
from tests.cycle.school import School, use_settings
from tests.cycle.test_faults import assert_like_undisturbed, left_behind, links
from tests.cycle.test_revocation import staff

SETTINGS = {"static_context_ids": [1]}


def provisioned(run) -> None:
    dr, states = run()
    assert dr.state == "success", states


def build(bed, run) -> School:
    """Two families provisioned by two cycles (the second adds a mistaken "children not linked"
    request with two wrong children), then staff mark that request bogus and correct a child on
    the other family's request: the next cycle has three links to take away and one to make."""
    school = School(bed)
    school.pupil("Amy", "Lee", "7RB")
    school.pupil("Ben", "Lee", "9KM")
    school.pupil("Cy", "Lee", "8CD")
    school.pupil("Bea", "Khan", "8CD")
    school.pupil("Bob", "Khan", "10EF")
    school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    khan = school.request("bilal.khan@example.org", [("Bea", "Khan", "8CD")])
    provisioned(run)
    wrong = school.request(
        "ann.lee@example.org",
        [("Ben", "Lee", "9KM"), ("Cy", "Lee", "8CD")],
        auth=False,
        request_type=CHILDREN_NOT_LINKED,
    )
    provisioned(run)
    staff(bed, "set_status", wrong, "bogus", "ops", confirmed=True)
    staff(bed, "correct_child", khan, 1, "Bob", "Khan", "10EF", "ops")
    return school


@pytest.fixture(scope="module")
def undisturbed(bed, provisioning_dag):
    """The end state an undisturbed unlinking cycle leaves."""
    use_settings(bed.reset(), **SETTINGS)
    build(bed, lambda: run_dag(provisioning_dag))
    dr, states = run_dag(provisioning_dag)
    assert dr.state == "success", states
    state = end_state.capture(bed.cfg)
    removed = [row for row, _ in state["ledger"] if row[4]]
    assert len(removed) == 3 and {row[6] for row in removed} == {"request_bogus", "child_changed"}
    assert state["ledger_without_link"] == []
    return state


@pytest.fixture
def school(undisturbed, fresh, run_cycle):
    use_settings(fresh, **SETTINGS)
    moodle_site.lay_out(fresh.cfg, fresh.layout, lock_wait_s=1)
    return build(fresh, run_cycle)


@pytest.fixture(scope="module")
def runners(tmp_path_factory):
    ahead = runner.Ahead(tmp_path_factory.mktemp("unlink-runners"))
    yield ahead
    ahead.close()


DELETE = "DELETE ra FROM `{m}role_assignments`"


def test_sigkill_between_the_deletion_and_the_ledger_update_converges_on_rerun(school, undisturbed, runners, run_cycle):
    spec = {"kill_after_sql": DELETE.format(m=school.cfg.moodle_prefix)}
    before = links(school)
    logical_date = datetime.now(UTC).replace(microsecond=0)
    when = logical_date.isoformat()
    proc, out, log = runners.launch(logical_date=when, run_after=when, **spec)
    assert proc.wait(timeout=120) == -9, log.read_text()[-3000:]
    left = left_behind(school)
    assert links(school) == before + 1  # the deletion died uncommitted: rolled back, the new link committed
    dr, states = run_cycle(rerun=SimpleNamespace(logical_date=logical_date, run_after=logical_date))
    assert dr.state == "success", states
    assert dr.run_id == json.loads(out.read_text())["run_id"]
    assert_like_undisturbed(
        school,
        undisturbed,
        "SIGKILL in unlink_children: links deleted, ledger not yet updated",
        f"the run's process SIGKILLed (kill_after_sql={spec['kill_after_sql']})",
        f"left: {left}",
        "re-run",
    )


CUTS = {
    "Moodle DB cut in unlinking, after the DELETE": ((DELETE,), "the role_assignments DELETE"),
    "Moodle DB cut in unlinking, at its COMMIT": ((DELETE, "COMMIT"), "unlinking's COMMIT"),
}


@pytest.mark.parametrize("case", list(CUTS))
def test_a_moodle_connection_cut_while_unlinking_leaves_nothing_half_done(school, fresh, run_cycle, undisturbed, case):
    patterns, statement = CUTS[case]
    committed = patterns[-1] == "COMMIT"
    before = links(school)
    with proxied(fresh, names.MOODLE_CONN_ID) as proxies:
        proxies[names.MOODLE_CONN_ID].cut_on(
            *(p.format(m=school.cfg.moodle_prefix).encode() for p in patterns), after=True
        )
        dr, states = run_cycle()
        assert proxies[names.MOODLE_CONN_ID].cuts == 1
        assert states["unlink_children"] == "failed" and dr.state == "failed", states
        # all of unlinking's deletions and ledger updates, or none: the new link of the correction stays
        assert links(school) == before + 1 - (3 if committed else 0)
        dr2, states = run_cycle(rerun=dr)
    assert dr2.state == "success", states
    assert_like_undisturbed(
        school,
        undisturbed,
        case,
        f"a TCP proxy on moodle_db cuts the connection at {statement} (delivered, answer held back), once",
        "unlink_children fails: lost connection; "
        + ("the COMMIT took effect" if committed else "nothing of its transaction stays"),
        "re-run",
    )
