"""The cycle's cost must not grow with the queue: a handful of batched statements whether 40
or 400 requests wait. Counted by MariaDB itself (its per-user statistics), because a batch the
driver silently splits into one statement per row looks the same from the code."""

from __future__ import annotations

from bench.probe import ServerCounters, enable_user_statistics
from testbed import demo_data, mariadb, moodle_site, verify
from tests.cycle.school import use_settings


def _cycle_statements(bed, run_cycle, approved: int) -> dict[str, int]:
    use_settings(bed)  # its own settings, not whatever an earlier test left in the environment
    mariadb.create(bed.cfg)
    moodle_site.lay_out(bed.cfg)
    moodle_site.reset_dataroot(bed.cfg)
    school = demo_data.generate(size=120, approved=approved)
    demo_data.load(bed.cfg, school)
    counters = ServerCounters({"wordpress": bed.cfg.wp_user.name, "moodle": bed.cfg.moodle_user.name}, bed.ssh.log)
    try:
        before = counters.read()
        dr, states = run_cycle()
        delta = counters.read().minus(before)
    finally:
        counters.close()
    assert dr.state == "success", states
    assert verify.end_state(bed.cfg, school).ok
    return {**delta.statements, "ssh": delta.ssh_sessions}


def test_statements_per_cycle_do_not_grow_with_the_number_of_requests(fresh, run_cycle):
    enable_user_statistics()
    small = _cycle_statements(fresh, run_cycle, approved=40)
    large = _cycle_statements(fresh, run_cycle, approved=400)
    # Ten times the requests, children, accounts and links: the same statements, give or take
    # the few that depend on what exists already (a missing context, a cache flag to update).
    for db in ("wordpress", "moodle"):
        assert abs(large[db] - small[db]) <= 6, (small, large)
    assert large["wordpress"] + large["moodle"] < 100, large
    assert small["ssh"] == large["ssh"] == 2  # the user sync and the password task, once each
