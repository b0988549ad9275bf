"""One cycle at a time, whoever starts it: a manual run beside the nightly one, a second
scheduler, or a second Airflow deployment pointed at the same databases. max_active_runs only
sees one deployment; the cycle lock lives in the WordPress database and sees them all."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from include.parent_provisioning import names
from testbed import moodle_site, verify
from testbed.moodle_site import SYNC_USERS
from tests.cycle import runner
from tests.cycle.school import snapshot
from tests.reliability import record


def _lock(school):
    rows = school.wp_rows("SELECT * FROM {lock} WHERE name='cycle'")
    return rows[0] if rows else None


def _hold_lock_elsewhere(school, run_id="scheduled__elsewhere", expires_in_s=3600):
    from testbed import mariadb

    conn = mariadb.admin_connect(school.cfg.wp_db)
    try:
        with mariadb.cursor(conn) as cur:
            cur.execute(
                f"INSERT INTO `{school.cfg.wp_prefix}parent_provisioning_lock` (name, run_id, holder, acquired_at,"
                " expires_at) VALUES ('cycle', %s, 'airflow-2.school.test', UTC_TIMESTAMP(),"
                " UTC_TIMESTAMP() + INTERVAL %s SECOND)"
                " ON DUPLICATE KEY UPDATE run_id = VALUES(run_id), holder = VALUES(holder),"
                " acquired_at = VALUES(acquired_at), expires_at = VALUES(expires_at)",
                (run_id, expires_in_s),
            )
    finally:
        conn.close()


def test_a_cycle_held_by_another_deployment_stops_before_writing_and_a_later_run_proceeds(
    school, run_cycle, fresh, capfd
):
    run_cycle(conf={names.REQUEST_IDS: [999999]})  # a real run with nothing to do: the project's tables exist now
    kid = school.pupil("Kit", "Marsh", "7RB")
    rid = school.request("kit.marsh@example.org", [("Kit", "Marsh", "7RB")])
    _hold_lock_elsewhere(school)
    before = snapshot(fresh)
    dr, states = run_cycle()
    assert states["check"] == "failed" and states["collect"] == "upstream_failed", states
    out = capfd.readouterr().out
    assert (
        "another provisioning cycle holds the cycle lock: run scheduled__elsewhere of Airflow deployment unknown"
        " on airflow-2.school.test" in out
    )
    after = snapshot(fresh)
    assert after == before  # not a row written: no cycle record, no outcome, no comment, no account
    assert school.account("kit.marsh@example.org") is None

    _hold_lock_elsewhere(school, expires_in_s=-1)  # that run died and its lease ran out
    dr, states = run_cycle()
    assert dr.state == "success", states
    assert school.links(school.account("kit.marsh@example.org")["id"]) == {kid}
    assert school.req(rid)["status"] == "provisioned"
    assert _lock(school)["run_id"] == ""  # released by report
    record(
        "faults",
        "cycle lock held by another deployment",
        "a lock row held by another run, lease not expired",
        "check fails: 'another provisioning cycle holds the cycle lock'; nothing written",
        "lease expired: the next run takes the lock, provisions, releases it",
    )


@pytest.mark.parametrize(
    "second",
    [
        pytest.param("another deployment", id="another-deployment"),
        pytest.param("a manual run", id="manual-run-beside-the-nightly"),
    ],
)
def test_two_cycles_starting_at_once_run_one_after_the_other(school, fresh, run_cycle, tmp_path, second):
    run_cycle(conf={names.REQUEST_IDS: [999999]})  # nothing to do: the project's tables exist, as after the first night
    kids = {i: school.pupil(f"Nia{i}", "Okafor", "7RB") for i in range(6)}
    for i in range(6):
        school.request(f"parent{i}.okafor@example.org", [(f"Nia{i}", "Okafor", "7RB")])
    school.request("nobody.okafor@example.org", [("Nobody", "Okafor", "7RB")])
    moodle_site.set_fault(fresh.cfg, SYNC_USERS, hang=20)  # the first cycle is in Moodle's sync a while
    first_date = datetime.now(UTC).replace(microsecond=0)
    nightly = {"logical_date": first_date.isoformat(), "run_after": first_date.isoformat()}
    if second == "another deployment":
        # Its own Airflow metadata DB (a separate home), the same WordPress and Moodle, and the same
        # schedule: its run has the very run id the first's has, which alone must not let it in.
        second_home = tmp_path / "airflow-b"
        runner.migrate(second_home)
        b_env, b_run = {"AIRFLOW_HOME": str(second_home)}, nightly
    else:
        # The same Airflow: an admin's manual run while the nightly one is in Moodle's sync. The
        # scheduler's max_active_runs would queue it; the lock stops it even where that is bypassed.
        later = (first_date + timedelta(seconds=5)).isoformat()
        b_env, b_run = None, {"logical_date": later, "run_after": later}
    a, a_out = runner.launch(tmp_path, "a", **nightly)
    deadline = time.monotonic() + 60
    while not a_out.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    while (_lock(school) or {}).get("run_id", "") == "" and time.monotonic() < deadline:
        time.sleep(0.2)
    b, b_out = runner.launch(tmp_path, "b", env=b_env, **b_run)
    assert b.wait(timeout=180) == 1
    assert a.wait(timeout=180) == 0

    a_res, b_res = json.loads(a_out.read_text()), json.loads(b_out.read_text())
    assert (a_res["run_id"] == b_res["run_id"]) == (second == "another deployment")
    assert a_res["state"] == "success", a_res
    assert b_res["tasks"]["check"] == "failed" and b_res["tasks"]["collect"] == "upstream_failed", b_res
    busy = f"holds the cycle lock: run {a_res['run_id']} of " + (
        "Airflow deployment" if second == "another deployment" else "this Airflow"
    )
    assert busy in (tmp_path / "b.log").read_text()
    cycles = {c["run_id"]: c["state"] for c in school.wp_rows("SELECT run_id, state FROM {cycles}")}
    assert cycles[a_res["run_id"]] == "finished"  # A's record, which B did not touch
    assert second == "another deployment" or b_res["run_id"] not in cycles  # B wrote nothing
    for i, kid in kids.items():
        assert school.links(school.account(f"parent{i}.okafor@example.org")["id"]) == {kid}
    assert verify.duplicate_assignments(fresh.cfg) == 0
    # B's run, run again once A has finished, runs normally and finds nothing left to do but the bad one.
    moodle_site.clear_faults(fresh.cfg)
    b2, b2_out = runner.launch(tmp_path, "b2", env=b_env, **b_run)
    assert b2.wait(timeout=180) == 0, (tmp_path / "b2.log").read_text()[-3000:]
    b2_res = json.loads(b2_out.read_text())
    assert b2_res["state"] == "success" and b2_res["run_id"] == b_res["run_id"], b2_res
    assert verify.duplicate_assignments(fresh.cfg) == 0
    assert _lock(school)["run_id"] == ""
    if second == "another deployment":
        record(
            "faults",
            "two deployments start a cycle at once",
            "two Airflow homes run the DAG together, same schedule and run id, against the same databases",
            "its check fails on the cycle lock (held by deployment and run id, not run id alone); nothing written",
            "the second, re-run after the first: success, no duplicate link",
        )
    else:
        record(
            "faults",
            "a manual run during the nightly run",
            "a second run of the same Airflow starts while the first is in Moodle's user sync",
            "its check fails on the cycle lock ('run ... of this Airflow'); nothing written",
            "the manual run, re-run after the nightly: success, no duplicate link",
        )


def _lock_conn(fresh, time_zone: str):
    """A WordPress connection whose session runs in another time zone (as a second Airflow's may)."""
    from include.parent_provisioning import own_tables
    from include.parent_provisioning.settings import parse
    from testbed import mariadb
    from tests.cycle.school import settings_for

    conn = mariadb.connect(fresh.cfg, fresh.cfg.wp_user, fresh.cfg.wp_db)
    with mariadb.cursor(conn) as cur:
        cur.execute("SET time_zone = %s", (time_zone,))
    s = parse(settings_for(fresh))
    own_tables.create_own_tables(conn, s)
    return conn, s


def test_a_lease_is_the_same_length_whatever_the_session_time_zone(fresh):
    from include.parent_provisioning import cycle_lock

    west, s = _lock_conn(fresh, "-10:00")
    east, _ = _lock_conn(fresh, "+10:00")
    try:
        cycle_lock.claim(west, s, "manual__west", "deployment-west", "host-w", lease_s=600)
        with pytest.raises(cycle_lock.CycleBusy):  # 20 hours of clock difference never expire a 10-minute lease
            cycle_lock.claim(east, s, "manual__east", "deployment-east", "host-e", lease_s=600)
        cycle_lock.release(west, s, "manual__west", "deployment-west")
        cycle_lock.claim(east, s, "manual__east", "deployment-east", "host-e", lease_s=600)
    finally:
        west.close()
        east.close()


def test_a_deployment_name_longer_than_its_column_still_renews_and_releases_its_own_lock(fresh):
    from include.parent_provisioning import cycle_lock

    conn, s = _lock_conn(fresh, "+00:00")
    long_name = "d" * 80
    try:
        cycle_lock.claim(conn, s, "manual__x", long_name, "host")
        cycle_lock.claim(conn, s, "manual__x", long_name, "host")  # the renewal of its own lock
        cycle_lock.release(conn, s, "manual__x", long_name)
        cycle_lock.claim(conn, s, "manual__other", "another", "host")  # released: free for others
    finally:
        conn.close()
