"""Bad input through real cycles: each request ends provisioned or with its precise reasons,
none stops another, and none is linked to a child that is not unambiguously its own."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from include.parent_provisioning import management as m
from include.parent_provisioning.settings import parse
from testbed import mariadb
from tests.cycle.bad_input import CORRECTIONS, UPLOAD_BASE, UPLOADS, Correction, UploadRow, _n
from tests.reliability import record
from tests.testbed.helpers import add_auth_row

NOT_QUEUED = "none: refused before the queue"


@pytest.fixture
def wp(fresh):
    """The WordPress database as the project's own user, as the request screens use it."""
    conn = mariadb.connect(fresh.cfg, fresh.cfg.wp_user, fresh.cfg.wp_db)
    yield conn
    conn.close()


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


@pytest.mark.parametrize("case", CORRECTIONS, ids=lambda c: c.name)
def test_staff_correcting_a_child_beyond_its_column_are_told_the_limit(school, wp, case: Correction):
    rid = school.request("nadia.okafor@example.org", [("Obiageli", "Okafor", "7RB")], status="pending", auth=False)
    before = school.req(rid)
    s = parse({"moodle_dir": "/m"})
    if case.refused:
        with pytest.raises(m.ActionRefused, match=re.escape(case.refused)):
            m.correct_child(wp, s, rid, *case.child, actor="ops")
        assert school.req(rid) == before
        ends = f"refused: {case.refused}"
    else:
        m.correct_child(wp, s, rid, *case.child, actor="ops")
        stored = school.req(rid)["child_tg"]
        assert stored == case.child[3].strip()
        ends = f"corrected; stored as `{stored}`"
    record("bad_input", case.name, case.holds, ends, NOT_QUEUED)


def _csv(columns: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=m.CSV_COLUMNS)
    writer.writeheader()
    writer.writerow({c: "" for c in m.CSV_COLUMNS} | UPLOAD_BASE | columns)
    return out.getvalue()


@pytest.mark.parametrize("case", UPLOADS, ids=lambda c: c.name)
def test_an_upload_row_beyond_a_column_is_refused_with_the_limit_and_nothing_written(school, wp, case: UploadRow):
    s = parse({"moodle_dir": "/m"})
    rows = m.validate_upload(wp, s, _csv(case.columns))
    [row] = rows
    if case.refused:
        assert (row.verdict, row.problems) == ("invalid", [case.refused])
        assert m.upload(wp, s, rows, actor="ops") == {"approved": 0, "duplicate": 0}
        assert school.wp_rows("SELECT id FROM {req}") == [] and school.wp_rows("SELECT id FROM {auth}") == []
        ends = f"refused: {case.refused}"
    else:
        assert m.upload(wp, s, rows, actor="ops") == {"approved": 1, "duplicate": 0}
        [auth] = school.wp_rows("SELECT * FROM {auth}")
        assert auth["parent_fname"] == f"{case.columns['Parent Title']} {case.columns['Parent First Name']}"[:255]
        ends = "written as approved; its auth row's name cut to 255 characters, as WordPress stores it"
    record("bad_input", case.name, case.holds, ends, NOT_QUEUED)


def test_approving_a_first_name_at_its_column_length_writes_the_auth_row_as_wordpress_did(school, wp):
    fname = _n("Maximiliane", 255)
    rid = school.request("long.name@example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False, fname=fname)
    assert m.approve(wp, parse({"moodle_dir": "/m"}), rid, actor="ops").status == "approved"
    [auth] = school.wp_rows("SELECT * FROM {auth}")
    assert auth["parent_fname"] == f"Mrs {fname}"[:255]
