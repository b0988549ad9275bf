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
    report = next(ti for ti in dr.get_task_instances() if ti.task_id == "report").xcom_pull(task_ids="report")
    predicted, done = report["sync"]["prediction"], report["sync"]["actual"]
    assert {k: predicted[k] for k in done} == done and report["warnings"] == []  # the prediction held
    return {**delta.statements, "ssh": delta.ssh_sessions}


def test_statements_per_cycle_do_not_grow_with_the_number_of_requests(fresh, run_cycle):
    enable_user_statistics()
    small = _cycle_statements(fresh, run_cycle, approved=40)
    large = _cycle_statements(fresh, run_cycle, approved=400)
    # Ten times the requests, children, accounts and links: the same statements, give or take
    # the few that depend on what exists already (a missing context, a cache flag to update).
    for db in ("wordpress", "moodle"):
        assert abs(large[db] - small[db]) <= 6, (small, large)
    assert large["wordpress"] + large["moodle"] < 120, large  # nine steps, about a dozen each (connect, lock, work)
    assert small["ssh"] == large["ssh"] == 2  # the user sync and the password task, once each


def test_the_benchmark_measures_every_task_of_a_real_run(fresh, tmp_path, provisioning_dag):
    """`make bench` reads its figures through an Airflow listener in a run of its own; if an
    Airflow upgrade broke that, the benchmark would print nothing useful. One small run shows it."""
    import json
    import os
    import subprocess
    import sys

    from testbed.config import PROJECT_ROOT

    enable_user_statistics()
    use_settings(fresh)
    school = demo_data.generate(size=60, approved=20)
    demo_data.load(fresh.cfg, school)
    out = tmp_path / "dag.json"
    spec = tmp_path / "spec.json"
    users = {"wordpress": fresh.cfg.wp_user.name, "moodle": fresh.cfg.moodle_user.name}
    conf = {"request_ids": [], "dry_run": False}
    spec.write_text(json.dumps({"users": users, "sshd_log": str(fresh.ssh.log), "conf": conf, "out": str(out)}))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.dag_run", str(spec)], cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    result = json.loads(out.read_text())
    tasks = result["tasks"]
    assert set(tasks) == {t.task_id for t in provisioning_dag.tasks}
    assert tasks["sync_users"]["ssh_sessions"] == tasks["send_passwords"]["ssh_sessions"] == 1
    assert tasks["link_children"]["statements"]["moodle"] > 0 and tasks["mark"]["statements"]["moodle"] == 0
    assert sum(t["statements"]["wordpress"] for t in tasks.values()) == result["statements"]["wordpress"]
    assert all(t["peak_rss_mb"] > 50 for t in tasks.values())
    assert result["xcom_bytes"]["report"] > 0 and result["report"]["provisioned"] > 0
    assert verify.end_state(fresh.cfg, school).ok
