"""A whole demo school through one real cycle: every link the generator expects, and no other."""

from __future__ import annotations

from testbed import demo_data, moodle_site


def test_a_demo_school_ends_with_exactly_the_expected_links(fresh, school, run_cycle):
    # `school` made an empty 'Pupils' cohort; the demo school brings its own.
    school._moodle("DELETE FROM {cohort}")
    demo = demo_data.generate(size=150, seed=11)
    demo_data.load(fresh.cfg, demo)
    dr, states = run_cycle()
    assert dr.state == "success", states
    actual = {
        (r["username"], r["pupil"])
        for r in school.moodle_rows(
            "SELECT u.username, c.instanceid AS pupil FROM {role_assignments} ra JOIN {user} u ON u.id = ra.userid"
            " JOIN {context} c ON c.id = ra.contextid AND c.contextlevel = 30 JOIN {role} r ON r.id = ra.roleid"
            " WHERE r.shortname = 'parent'"
        )
    }
    assert actual == demo_data.expected_links(demo)
    duplicates = school.moodle_rows(
        "SELECT userid, contextid, COUNT(*) n FROM {role_assignments} GROUP BY userid, contextid, roleid HAVING n > 1"
    )
    assert duplicates == []
    for rid, exp in demo.expectations.items():
        if exp["status"] != "approved":
            continue
        all_linked = all(c[0] == demo_data.LINKED for c in exp["children"])
        has_auth = exp["auth_row"] or exp["existing_parent_id"]
        expected_status = "provisioned" if all_linked and has_auth else "approved"
        assert school.req(rid)["status"] == expected_status, (rid, exp["cases"])
    mailed = sorted(m["to"] for m in moodle_site.sent_emails(fresh.cfg))
    expected = sorted(e["username"] for e in demo.expectations.values() if e["new_account"])
    assert mailed == expected
