"""A whole demo school through one real cycle: every link the generator expects, and no other."""

from __future__ import annotations

from testbed import demo_data, moodle_site, verify


def test_a_demo_school_ends_with_exactly_the_expected_links(fresh, school, run_cycle):
    # `school` made an empty 'Pupils' cohort; the demo school brings its own.
    school._moodle("DELETE FROM {cohort}")
    demo = demo_data.generate(size=150, seed=11)
    demo_data.load(fresh.cfg, demo)
    dr, states = run_cycle()
    assert dr.state == "success", states
    state = verify.end_state(fresh.cfg, demo)
    assert state.missing_links == [] and state.unexpected_links == []
    assert state.actual_links == len(demo_data.expected_links(demo)) > 0
    assert state.duplicate_assignments == 0
    assert state.wrong_status == []
    mailed = sorted(m["to"] for m in moodle_site.sent_emails(fresh.cfg))
    expected = sorted(e["username"] for e in demo.expectations.values() if e["new_account"])
    assert mailed == expected
    # Moodle's user sync did what the cycle predicted before running it.
    report = next(ti for ti in dr.get_task_instances() if ti.task_id == "report").xcom_pull(task_ids="report")
    predicted, done = report["sync"]["prediction"], report["sync"]["actual"]
    assert {k: predicted[k] for k in done} == done and done["created"] == len(expected)
    assert report["warnings"] == []
