"""The ledger of links (issue 13, step 1): every Parent-role assignment the cycle makes, or finds
already there, for a request is recorded in the project's own table in Moodle's database, in the
links' own transaction, with the role_assignments row that carries it. Real DAG runs on the test bed."""

from __future__ import annotations

from include.parent_provisioning.requests import CHILDREN_NOT_LINKED
from tests.cycle.school import use_settings

LEDGER = "SELECT * FROM parent_provisioning_{links} ORDER BY request_id, contextid"


def ledger(school) -> list[dict]:
    return school.moodle_rows(LEDGER)


def parent_role(school) -> int:
    return school.moodle_rows("SELECT id FROM {role} WHERE shortname='parent'")[0]["id"]


def assignment(school, parent: int, context: int) -> dict:
    [row] = school.moodle_rows(
        "SELECT * FROM {role_assignments} WHERE userid=%s AND contextid=%s AND roleid=%s",
        (parent, context, parent_role(school)),
    )
    return row


def test_each_link_the_cycle_makes_is_recorded_with_its_role_assignment_and_run(school, fresh, run_cycle):
    use_settings(fresh, static_context_ids=[1])
    amy, ben = school.pupil("Amy", "Lee", "7RB"), school.pupil("Ben", "Lee", "9KM")
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB"), ("Ben", "Lee", "9KM")])
    stray = school.request("no.child@example.org", [("Nobody", "Lee", "7RB")])  # no child linked, the static context is

    dr, states = run_cycle()

    assert dr.state == "success", states
    parent = school.account("ann.lee@example.org")["id"]
    stray_parent = school.account("no.child@example.org")["id"]
    rows = [r for r in ledger(school) if r["request_id"] != stray]
    assert [
        (r["parent_userid"], r["child_userid"], r["contextid"]) for r in ledger(school) if r["request_id"] == stray
    ] == [(stray_parent, None, 1)]
    want = {
        (rid, parent, amy, school.context_of(amy)["id"]),
        (rid, parent, ben, school.context_of(ben)["id"]),
        (rid, parent, None, 1),  # the static context: no child
    }
    assert {(r["request_id"], r["parent_userid"], r["child_userid"], r["contextid"]) for r in rows} == want
    for r in rows:
        assert r["ra_id"] == assignment(school, parent, r["contextid"])["id"]
        assert (r["origin"], r["run_id"], r["roleid"]) == ("made", dr.run_id, parent_role(school))
        assert r["removed_at"] is None and r["removed_reason"] is None
    everything = ledger(school)
    dr2, states = run_cycle(rerun=dr)  # the whole run again: nothing new made, nothing recorded twice
    assert dr2.state == "success", states
    assert ledger(school) == everything


def test_a_link_someone_made_by_hand_is_recorded_as_found_never_as_made(school, fresh, run_cycle):
    amy = school.pupil("Amy", "Lee", "7RB")
    parent = school.parent_account("ann.lee@example.org")
    context = school.context_of(amy)["id"]
    school._moodle(
        "INSERT INTO {role_assignments} (roleid, contextid, userid, timemodified, modifierid, component, itemid,"
        " sortorder) VALUES (%s, %s, %s, 0, 2, '', 0, 0)",
        (parent_role(school), context, parent),
    )
    hand = assignment(school, parent, context)
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])

    dr, states = run_cycle()

    assert dr.state == "success", states
    assert school.req(rid)["status"] == "provisioned"
    [row] = ledger(school)
    assert (row["request_id"], row["ra_id"], row["origin"]) == (rid, hand["id"], "found")
    assert assignment(school, parent, context) == hand  # not made again, not touched


def test_two_requests_of_one_parent_naming_one_child_each_hold_the_one_link(school, fresh, run_cycle):
    amy = school.pupil("Amy", "Lee", "7RB")
    first = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    dr, _ = run_cycle()
    second = school.request(
        "ann.lee@example.org",
        [("Amy", "Lee", "7RB")],
        auth=False,
        request_type=CHILDREN_NOT_LINKED,
    )
    dr2, states = run_cycle()
    assert dr2.state == "success", states
    parent = school.account("ann.lee@example.org")["id"]
    ra = assignment(school, parent, school.context_of(amy)["id"])["id"]
    got = [(r["request_id"], r["ra_id"], r["origin"], r["run_id"]) for r in ledger(school)]
    assert got == [(first, ra, "made", dr.run_id), (second, ra, "found", dr2.run_id)]


def test_a_moodle_user_with_an_earlier_versions_grants_fails_check_with_what_to_apply(school, fresh, run_cycle, capfd):
    from testbed import mariadb

    conn = mariadb.admin_connect()
    try:
        with mariadb.cursor(conn) as cur:
            for host in mariadb._user_hosts():
                cur.execute(
                    f"REVOKE CREATE ON `{fresh.cfg.moodle_db}`.`parent_provisioning_{fresh.cfg.moodle_prefix}links`"
                    " FROM %s@%s",
                    (fresh.cfg.moodle_user.name, host),
                )
    finally:
        conn.close()
    school.pupil("Amy", "Lee", "7RB")
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    dr, states = run_cycle()
    assert states["check"] == "failed" and states["collect"] == "upstream_failed", states
    out = capfd.readouterr().out
    assert "apply this version's docs/grants.sql (the Moodle user needs CREATE on parent_provisioning_" in out
    assert school.req(rid)["status"] == "approved" and school.account("ann.lee@example.org") is None
