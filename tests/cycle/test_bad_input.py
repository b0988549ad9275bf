"""The bad-input corpus (tests/cycle/bad_input.py). Its requests sit in one approved queue and go
through one real cycle: each ends provisioned or with its precise reasons, none stops another,
none is linked to a child that is not unambiguously its own, and no task log names anyone.
Its values beyond their columns go to staff's tools, which refuse them with the limit."""

from __future__ import annotations

import csv
import io
import json
import os
import re

import pytest

from include.parent_provisioning import management as m
from include.parent_provisioning.requests import normalise_email
from include.parent_provisioning.settings import parse
from testbed import mariadb, verify
from tests.cycle.bad_input import (
    CASES,
    CORRECTIONS,
    GOOD,
    NAME_ONLY,
    PWNED,
    UPLOAD_BASE,
    UPLOADS,
    Case,
    Correction,
    UploadRow,
    of_length,
)
from tests.cycle.school import use_settings
from tests.reliability import record
from tests.testbed.helpers import add_auth_row


def _not_queued(refused: str) -> str:
    return "none: refused before the queue" if refused else "none: a staff tool, not a cycle"


@pytest.fixture
def wp(fresh):
    """The WordPress database as the project's own user, as the request screens use it."""
    conn = mariadb.connect(fresh.cfg, fresh.cfg.wp_user, fresh.cfg.wp_db)
    yield conn
    conn.close()


def _email(case: Case, n: int) -> str:
    return case.email if case.email is not None else f"case{n:03d}.parent@example.org"


def _build(school, cases) -> dict[str, int]:
    """Every case's Moodle people; returns {key: user id}. An active 'db' account has its auth
    row, as a provisioned parent does (else Moodle's sync would suspend it)."""
    ids: dict[str, int] = {}
    for case in cases:
        for p in case.moodle:
            assert p.key not in ids, f"{case.name}: person {p.key} twice"
            extra = dict(p.extra)
            if p.kind == "pupil":
                ids[p.key] = school.pupil(p.first, p.last, p.group, **extra)
            elif p.kind == "parent":
                email = extra.pop("email")
                extra.update(auth="db", email=email, username=email)
                ids[p.key] = school.user(p.first, p.last, **extra)
            else:
                ids[p.key] = school.user(p.first, p.last, p.group, **extra)
            if extra.get("auth") == "db" and not extra.get("suspended"):
                add_auth_row(school.cfg, extra["username"], fname=p.first, sname=p.last, request_id=0)
    return ids


def _texts(case: Case) -> list[str]:
    """Names and emails the corpus holds, to look for in the logs (long enough not to occur by chance)."""
    values = [case.email or "", *(case.request.get(k) or "" for k in ("fname", "sname"))]
    values += [v or "" for child in case.children for v in child[:2]]
    values += [v for p in case.moodle for v in (p.first, p.last)]
    return [v.strip() for v in values if len(v.strip()) >= 5]


def _children(positions) -> str:
    if not positions:
        return "none"
    return ("child " if len(positions) == 1 else "children ") + ", ".join(str(p) for p in sorted(positions))


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


def _run_corpus(school, run_cycle, capfd, cases) -> None:
    """All `cases` approved in one queue, one real cycle; each ends as it expects, and records it."""
    assert len({c.name for c in cases}) == len(cases)
    ids = _build(school, cases)
    emails = {case.name: _email(case, n) for n, case in enumerate(cases)}
    rids = {
        case.name: school.request(emails[case.name], case.children, **case.request)
        for case in cases  # oldest first: the corpus before the plain requests
    }
    if os.path.exists(PWNED):
        os.remove(PWNED)
    previews = _preview(list(rids.values()))
    capfd.readouterr()

    dr, states = run_cycle()

    out = capfd.readouterr()
    logs = out.out + out.err
    assert dr.state == "success", states
    report = next(ti for ti in dr.get_task_instances() if ti.task_id == "report").xcom_pull(task_ids="report")
    assert report["requests_taken"] == len(cases)
    assert report["sync"].get("suspended", 0) == 0  # no parent lost an account to another's request
    assert not os.path.exists(PWNED)

    # One account per parent email; its links are exactly what its requests name.
    by_parent: dict[str, set[int]] = {}
    for case in cases:
        by_parent.setdefault(normalise_email(emails[case.name]), set()).update(ids[k] for k in case.linked)
    wrong: list[str] = []
    for case in cases:
        rid, email = rids[case.name], normalise_email(emails[case.name])
        req = school.req(rid)
        [outcome] = school.wp_rows("SELECT * FROM {out} WHERE run_id=%s AND request_id=%s", (dr.run_id, rid))
        last = req["system_comment"].splitlines()[-1]
        linked = {pupil for _, pupil in json.loads(outcome["linked_children"])}
        expected_ids = {ids[k] for k in case.linked}
        accounts = (
            school.moodle_rows("SELECT id FROM {user} WHERE username=%s AND deleted=0", (email,)) if email else []
        )
        moodle_links = school.links(accounts[0]["id"]) if accounts else set()
        if req["status"] != case.status:
            wrong.append(f"{case.name}: status {req['status']}, expected {case.status}; {last}")
        if outcome["reason_key"] != case.reason_key:
            wrong.append(f"{case.name}: reasons {outcome['reason_key']!r}, expected {case.reason_key!r}")
        if case.reasons and rid not in report["failed"].get(case.reason_key, []):
            wrong.append(f"{case.name}: not under {case.reason_key!r} in the run summary")
        for reason in case.reasons:
            if reason.text not in last:
                wrong.append(f"{case.name}: {reason.text!r} not in the last comment line {last!r}")
        if case.status == "provisioned" and f"Provisioned by Airflow run {dr.run_id}" not in last:
            wrong.append(f"{case.name}: last comment line {last!r}")
        if linked != expected_ids:
            wrong.append(f"{case.name}: recorded as linked to {linked}, expected {expected_ids}")
        seen = previews[rid]
        if (seen["reason_key"], seen["would_provision"]) != (outcome["reason_key"], req["status"] == "provisioned"):
            wrong.append(
                f"{case.name}: the match preview said {seen['reason_key']!r}, the cycle {outcome['reason_key']!r}"
            )
        if {pupil for _, pupil in seen["links"]} != linked:
            wrong.append(f"{case.name}: the match preview would link {seen['links']}, the cycle linked {linked}")
        if moodle_links != by_parent[email]:
            wrong.append(f"{case.name}: the parent's links in Moodle {moodle_links}, expected {by_parent[email]}")
        if len(accounts) > 1:
            wrong.append(f"{case.name}: {len(accounts)} accounts")
    assert not wrong, "\n".join(wrong)
    assert verify.duplicate_assignments(school.cfg) == 0

    assert "sync_users" in logs  # the run's task logs were captured
    leaked = sorted({t for case in cases for t in _texts(case) if t.lower() in logs.lower()})
    assert leaked == []
    assert not re.search(r"[\w.+-]+@example\.org", logs, re.IGNORECASE)

    shared = {e for e in by_parent if sum(normalise_email(v) == e for v in emails.values()) > 1}
    for case in cases:
        if case in GOOD:
            continue
        outcome = school.wp_rows(
            "SELECT linked_children FROM {out} WHERE run_id=%s AND request_id=%s", (dr.run_id, rids[case.name])
        )[0]
        positions = [pos for pos, _ in json.loads(outcome["linked_children"])]
        email = normalise_email(emails[case.name])
        linked = _children(positions)
        if email in shared:
            linked += f"; the parent's one account holds {len(by_parent[email])} link(s) in all"
        ends = (
            "provisioned"
            if not case.reasons
            else f"approved: {case.reason_key} ({'; '.join(r.text for r in case.reasons)})"
        )
        record("bad_input", case.name, case.holds, ends, linked)


def _preview(request_ids: list[int]) -> dict[int, dict]:
    """The request screens' match preview of these requests, read before the cycle runs."""
    from dataclasses import asdict

    from include.parent_provisioning import cycle, moodle_db
    from include.parent_provisioning.airflow_adapter import connections, load_settings

    s = load_settings()
    with connections() as (wp, mdl):
        return cycle.preview(wp, mdl, s, asdict(moodle_db.check_site(mdl, s)), request_ids)


def test_every_bad_request_ends_precisely_and_none_stops_the_others(school, run_cycle, capfd):
    assert len(CASES) >= 60
    _run_corpus(school, run_cycle, capfd, CASES + GOOD)


def test_under_name_only_a_namesake_in_any_group_is_a_guess_too(school, fresh, run_cycle, capfd):
    use_settings(fresh, match_by="name_only")
    _run_corpus(school, run_cycle, capfd, NAME_ONLY + GOOD)


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
    record("bad_input", case.name, case.holds, ends, _not_queued(case.refused))


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
    record("bad_input", case.name, case.holds, ends, _not_queued(case.refused))


def test_approving_a_first_name_at_its_column_length_writes_the_auth_row_as_wordpress_did(school, wp):
    fname = of_length("Maximiliane", 255)
    rid = school.request("long.name@example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False, fname=fname)
    assert m.approve(wp, parse({"moodle_dir": "/m"}), rid, actor="ops").status == "approved"
    [auth] = school.wp_rows("SELECT * FROM {auth}")
    assert auth["parent_fname"] == f"Mrs {fname}"[:255]
