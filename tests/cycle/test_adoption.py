"""Adopting the WordPress plugin's links (issue 13): on a school the plugin provisioned, the
one-off DAG records into the ledger the Parent-role assignments a provisioned request justifies,
lists the others, and never deletes; the adopted links are then removed like the cycle's own.
Real DAG runs on the test bed."""

from __future__ import annotations

from include.parent_provisioning import names
from tests.cycle.school import use_settings
from tests.cycle.test_ledger import ledger, parent_role
from tests.cycle.test_revocation import staff
from tests.cycle.test_suspension_guard import report_of


def plugin_link(school, parent: int, context: int) -> int:
    """A role assignment as the WordPress plugin wrote it."""
    return school._moodle(
        "INSERT INTO {role_assignments} (roleid, contextid, userid, timemodified, modifierid, component, itemid,"
        " sortorder) VALUES (%s, %s, %s, 1700000000, 2, '', 0, 0)",
        (parent_role(school), context, parent),
    )


def plugin_school(school) -> dict:
    """Two parents the plugin provisioned (accounts, auth rows, provisioned requests, links to their
    children and to the static context 1), and one link no request justifies (Ann over a stranger)."""
    amy, ben = school.pupil("Amy", "Lee", "7RB"), school.pupil("Ben", "Lee", "9KM")
    bea, stranger = school.pupil("Bea", "Khan", "8CD"), school.pupil("Zed", "Ray", "7RB")
    ann, bo = school.parent_account("ann.lee@example.org"), school.parent_account("bo.khan@example.org")
    first = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB"), ("Ben", "Lee", "9KM")], status="provisioned")
    khan = school.request("bo.khan@example.org", [("Bea", "Khan", "8CD")], status="provisioned")
    links = {
        "ann-amy": plugin_link(school, ann, school.context_of(amy)["id"]),
        "ann-ben": plugin_link(school, ann, school.context_of(ben)["id"]),
        "ann-static": plugin_link(school, ann, 1),
        "bo-bea": plugin_link(school, bo, school.context_of(bea)["id"]),
        "bo-static": plugin_link(school, bo, 1),
        "ann-stranger": plugin_link(school, ann, school.context_of(stranger)["id"]),
    }
    return {"first": first, "khan": khan, "ann": ann, "bo": bo, "ben": ben, "links": links}


def adopt(adoption_dag, dry_run: bool):
    dr = adoption_dag.test(run_conf={names.DRY_RUN: dry_run})
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert dr.state == "success", states
    return next(ti for ti in dr.get_task_instances()).xcom_pull(task_ids="adopt_links"), dr


def assignments(school) -> list[dict]:
    return school.moodle_rows("SELECT * FROM {role_assignments} ORDER BY id")


def test_adoption_dry_then_real_records_what_requests_justify_lists_the_rest_and_deletes_nothing(
    school, fresh, adoption_dag, run_cycle
):
    use_settings(fresh, static_context_ids=[1])
    plugin = plugin_school(school)
    links = plugin["links"]
    before = assignments(school)

    dry, _ = adopt(adoption_dag, dry_run=True)

    assert (dry["adopted"], dry["unjustified"], dry["ledger_rows_written"]) == (5, 1, 0)
    assert [a["ra_id"] for a in dry["unjustified_assignments"]] == [links["ann-stranger"]]
    assert school.moodle_rows(  # a dry run writes nothing, not even the ledger's table
        "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE()"
        " AND table_name = 'parent_provisioning_{links}'"
    ) == [{"n": 0}]
    assert assignments(school) == before

    real, dr = adopt(adoption_dag, dry_run=False)

    assert (real["adopted"], real["unjustified"], real["ledger_rows_written"]) == (5, 1, 5)
    got = {(r["request_id"], r["ra_id"], r["origin"], r["run_id"]) for r in ledger(school)}
    want = {(plugin["first"], links[k], "adopted", dr.run_id) for k in ("ann-amy", "ann-ben", "ann-static")} | {
        (plugin["khan"], links[k], "adopted", dr.run_id) for k in ("bo-bea", "bo-static")
    }
    assert got == want
    assert assignments(school) == before  # nothing deleted, nothing changed
    again, _ = adopt(adoption_dag, dry_run=False)
    assert (again["adopted"], again["ledger_rows_written"], again["unjustified"]) == (0, 0, 1)

    # Adopted links are the cycle's to remove: Ben named by mistake, corrected away.
    staff(fresh, "correct_child", plugin["first"], 2, "", "", "", "ops")
    dr, states = run_cycle()
    assert dr.state == "success", states
    assert report_of(dr)["unlinks"]["unlinked_by_reason"] == {"child_changed": 1}
    left = {a["id"] for a in assignments(school)}
    assert links["ann-ben"] not in left
    assert left == {v for k, v in links.items() if k != "ann-ben"}  # the unjustified one untouched
