"""Bad input through real cycles: each request ends provisioned or with its precise reasons,
none stops another, and none is linked to a child that is not unambiguously its own."""

from __future__ import annotations

import json

from tests.testbed.helpers import add_auth_row


def test_a_request_that_cannot_be_provisioned_is_told_every_problem_and_claims_no_link(school, run_cycle):
    school.pupil("Ottilie", "Pemberton", "9KM")
    school.pupil("Rupert", "Quennell", "7RB")
    incomplete = school.request(
        "opal.pemberton@example.org", [("Ottilie", "Pemberton", "9KM"), ("Percival", "", "9KM")]
    )
    # The auth row names another username: the sync creates that account, not this parent's.
    missing = school.request("rosa.quennell@example.org", [("Rupert", "Quennell", "7RB")], auth=False)
    add_auth_row(school.cfg, "rosa.quennell@example.org", username="someone.else@example.org", request_id=missing)
    dr, states = run_cycle()
    assert dr.state == "success", states
    for rid, reason in (
        (incomplete, "child 2 is only partly filled in"),
        (missing, "did not create the parent account"),
    ):
        last = school.req(rid)["system_comment"].splitlines()[-1]
        assert reason in last
        assert "matches no pupil" not in last and "Linked so far" not in last, last  # child 1 is a pupil
        [outcome] = school.wp_rows("SELECT * FROM {out} WHERE run_id=%s AND request_id=%s", (dr.run_id, rid))
        assert json.loads(outcome["linked_children"]) == []
    assert school.moodle_rows("SELECT id FROM {role_assignments}") == []
