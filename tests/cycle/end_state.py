"""What cycles leave behind, in a form two runs of the same school can be compared by.

No ids, times, run ids or ports: users are named by username (parents) or by name and tutor
group (pupils), runs by their order, comment lines without their timestamp. A disturbed run
followed by its re-run must leave exactly what an undisturbed run of the same school leaves.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from testbed import mariadb, moodle_site

_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
# What a summary says about the requests; the Moodle task's timings and counts of rows added
# on this try (the sync, the password task, the links) differ between a disturbed run and an
# undisturbed one by design.
_SUMMARY_KEYS = ("requests_taken", "provisioned", "not_provisioned", "deferred")


def _rows(db: str, sql: str) -> list[dict]:
    conn = mariadb.admin_connect(db)
    try:
        cur = conn.cursor(mariadb.MySQLdb.cursors.DictCursor)
        cur.execute(sql)
        return list(cur.fetchall())
    finally:
        conn.close()


def _counted(items) -> list[tuple]:
    """A multiset as a sorted list of (item, how many): a doubled row shows as a 2."""
    return sorted(Counter(items).items(), key=repr)


def capture(cfg) -> dict:
    p, wp = cfg.moodle_prefix, cfg.wp_prefix
    users = _rows(cfg.moodle_db, f"SELECT id, auth, username, firstname, lastname, department FROM `{p}user`")
    who = {
        u["id"]: u["username"] if u["auth"] == "db" else f"{u['firstname']} {u['lastname']} ({u['department']})"
        for u in users
    }
    contexts = _rows(cfg.moodle_db, f"SELECT id, contextlevel, instanceid, path, depth FROM `{p}context`")
    system_path = next(c["path"] for c in contexts if c["contextlevel"] == 10)
    where = {
        c["id"]: "system" if c["contextlevel"] == 10 else f"{c['contextlevel']}:{who.get(c['instanceid'], '?')}"
        for c in contexts
    }
    db_users = {u["id"] for u in users if u["auth"] == "db"}

    cycles = _rows(cfg.wp_db, f"SELECT * FROM `{wp}parent_provisioning_cycles` ORDER BY started_at, run_id")
    run = {c["run_id"]: f"<run {n}>" for n, c in enumerate(cycles, start=1)}
    requests = _rows(cfg.wp_db, f"SELECT * FROM `{cfg.wp_requests_table}`")
    email = {r["id"]: r["parent_email"] for r in requests}
    outcomes = _rows(cfg.wp_db, f"SELECT * FROM `{wp}parent_provisioning_outcomes`")

    assignments = _rows(cfg.moodle_db, f"SELECT * FROM `{p}role_assignments`")
    ra_ids = {a["id"] for a in assignments}
    links_table = f"parent_provisioning_{p}links"
    ledger_exists = bool(
        _rows(
            cfg.moodle_db,
            f"SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{links_table}'",
        )
    )
    ledger = _rows(cfg.moodle_db, f"SELECT * FROM `{links_table}`") if ledger_exists else []

    def comment(line: str) -> str:
        line = _STAMP.sub("", line or "")
        for run_id, name in run.items():
            line = line.replace(run_id, name)
        return line

    def summary(text: str | None) -> dict | None:
        if not text:
            return None
        s = json.loads(text)
        return {
            **{k: s.get(k) for k in _SUMMARY_KEYS},
            "needs_attention": sorted(email[i] for i in s.get("needs_attention", [])),
            "failed": {key: sorted(email[i] for i in ids) for key, ids in s.get("failed", {}).items()},
        }

    return {
        "requests": {
            r["parent_email"]: (
                r["status"],
                r["provisioned_username"],
                [comment(line) for line in (r["system_comment"] or "").split("\n")],
            )
            for r in requests
        },
        "auth_rows": _counted(r["username"] for r in _rows(cfg.wp_db, f"SELECT username FROM `{cfg.wp_auth_table}`")),
        "db_accounts": _counted(
            (u["username"], u["firstname"], u["lastname"], u["email"], u["suspended"], u["deleted"], u["confirmed"])
            for u in _rows(cfg.moodle_db, f"SELECT * FROM `{p}user` WHERE auth = 'db'")
        ),
        "contexts": _counted(
            (where[c["id"]], c["depth"], c["path"] == f"{system_path}/{c['id']}")
            for c in contexts
            if c["contextlevel"] != 10
        ),
        "role_assignments": _counted(
            (who[a["userid"]], where.get(a["contextid"], "?"), a["shortname"], a["component"], a["itemid"])
            for a in _rows(
                cfg.moodle_db,
                f"SELECT ra.*, r.shortname FROM `{p}role_assignments` ra JOIN `{p}role` r ON r.id = ra.roleid",
            )
        ),
        "dirty_flags": _counted(
            (f["flagtype"], who.get(int(f["name"]), "?"), f["value"])
            for f in _rows(cfg.moodle_db, f"SELECT * FROM `{p}cache_flags`")
        ),
        "preferences": _counted(
            (who[f["userid"]], f["name"], f["value"])
            for f in _rows(cfg.moodle_db, f"SELECT * FROM `{p}user_preferences`")
            if f["userid"] in db_users
        ),
        "password_mails": _counted(m["to"] for m in moodle_site.sent_emails(cfg)),
        "cycles": [(c["state"], c["finished_at"] is not None, summary(c["summary"])) for c in cycles],
        "outcomes": _counted(
            (
                run.get(o["run_id"], o["run_id"]),
                email[o["request_id"]],
                o["outcome"],
                o["marked_outcome"],
                o["reason_key"],
                bool(o["needs_account"]),
                o["parent_userid"] is not None,
                tuple((pos, who.get(pupil, "?")) for pos, pupil in json.loads(o["linked_children"] or "[]")),
                o["attempt"],
                bool(o["needs_attention"]),
                comment(o["comment_line"]),
            )
            for o in outcomes
        ),
        "ledger": _counted(
            (
                email[r["request_id"]],
                who[r["parent_userid"]],
                where.get(r["contextid"], "?"),
                r["origin"],
                r["removed_at"] is not None,
                run.get(r["removed_by_run"], r["removed_by_run"]),
                r["removed_reason"],
            )
            for r in ledger
        ),
        # A link without its record, or a record without its link: never, however a run was disturbed.
        "ledger_without_link": sorted(
            email[r["request_id"]] for r in ledger if r["removed_at"] is None and r["ra_id"] not in ra_ids
        ),
        "cycle_lock": [r["run_id"] for r in _rows(cfg.wp_db, f"SELECT run_id FROM `{wp}parent_provisioning_lock`")],
        "comment_lines_wrong": _comment_lines_wrong(requests, outcomes),
    }


def _comment_lines_wrong(requests: list[dict], outcomes: list[dict]) -> list[tuple[int, str, int]]:
    """(request, run, lines naming that run) wherever a run that marked a request does not name
    it exactly once in its system_comment, or a run that did not mark it names it at all."""
    marked = {(o["request_id"], o["run_id"]) for o in outcomes if o["marked_outcome"]}
    runs = {o["run_id"] for o in outcomes}
    wrong = []
    for r in requests:
        lines = (r["system_comment"] or "").split("\n")
        for run_id in runs:
            n = sum(f"Airflow run {run_id}" in line for line in lines)
            if n != ((r["id"], run_id) in marked):
                wrong.append((r["id"], run_id, n))
    return wrong


def differences(disturbed: dict, undisturbed: dict) -> dict:
    """What differs, part by part: {} when the two end states are equal. For a part that is a list
    or a dict, only the entries found on one side and not the other."""
    found = {}
    for key in sorted(undisturbed.keys() | disturbed.keys()):
        a, b = disturbed.get(key), undisturbed.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            a, b = sorted(a.items(), key=repr), sorted(b.items(), key=repr)
        if isinstance(a, list) and isinstance(b, list):
            found[key] = {
                "only after the fault": [x for x in a if x not in b],
                "only undisturbed": [x for x in b if x not in a],
            }
        else:
            found[key] = {"after the fault": a, "undisturbed": b}
    return found
