"""collect and link_children take the requests a chunk at a time (each parent's requests in one chunk),
unlink_children judges the ledger a batch of whole parents at a time, so that a task's memory is a
chunk's whatever the queue. The chunks must decide exactly what one pass does: the same demo school,
run whole and then in chunks of a few requests, ends the same, cycle after cycle, dry run included."""

from __future__ import annotations

import re

from include.parent_provisioning import cycle, moodle_db, plan
from testbed import demo_data, mariadb, moodle_site, verify
from tests.cycle.school import use_settings

WHOLE = {"REQUESTS_PER_CHUNK": 100_000, "LINKS_PER_BATCH": 100_000}
CHUNKED = {"REQUESTS_PER_CHUNK": 7, "LINKS_PER_BATCH": 5}
TASKS = ("collect", "link_children", "unlink_children")
BY_PARENT, ACTIVE_LINKS = plan.by_parent, moodle_db.active_links
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|manual__\S+?(?=[ )\n]|$)")


def _wp(cfg, sql: str) -> list[tuple]:
    out = f"{cfg.wp_prefix}parent_provisioning_outcomes"
    return verify.rows(cfg.wp_db, sql.format(req=cfg.wp_requests_table, out=out))


def _mdl(cfg, sql: str) -> list[tuple]:
    links = f"parent_provisioning_{cfg.moodle_prefix}links"
    return verify.rows(cfg.moodle_db, sql.format(p=cfg.moodle_prefix, links=links))


def _state(cfg) -> dict:
    """Both databases as the cycles left them, without what differs from one run to the next (times,
    run ids, row ids, the order rows were written in)."""
    runs = sorted({r for (r,) in _wp(cfg, "SELECT run_id FROM {out}")})
    return {
        "requests": [
            (*r[:-1], STAMP.sub("T", r[-1] or ""))
            for r in _wp(cfg, "SELECT id, status, provisioned_username, system_comment FROM {req} ORDER BY id")
        ],
        "outcomes": sorted(
            (runs.index(r[0]), *r[1:])
            for r in _wp(
                cfg,
                "SELECT run_id, request_id, outcome, needs_account, reasons, reason_key, parent_userid,"
                " linked_children, attempt, needs_attention, marked_outcome, fingerprint FROM {out}",
            )
        ),
        "ledger": sorted(
            _mdl(
                cfg,
                "SELECT l.request_id, l.parent_userid, l.child_userid, c.contextlevel, c.instanceid, l.origin,"
                " l.removed_reason, ra.id IS NOT NULL FROM {links} l JOIN {p}context c ON c.id = l.contextid"
                " LEFT JOIN {p}role_assignments ra ON ra.id = l.ra_id",
            ),
            key=repr,
        ),
        # context ids differ with the order the contexts were made in: a context is its level and instance
        "assignments": sorted(
            _mdl(
                cfg,
                "SELECT ra.userid, c.contextlevel, c.instanceid, ra.roleid FROM {p}role_assignments ra"
                " JOIN {p}context c ON c.id = ra.contextid",
            )
        ),
        "user_contexts": sorted(
            _mdl(cfg, "SELECT instanceid, depth, path = CONCAT('/1/', id) FROM {p}context WHERE contextlevel = 30")
        ),
        "dirty": sorted(_mdl(cfg, "SELECT name FROM {p}cache_flags WHERE flagtype = 'accesslib/dirtyusers'")),
        "accounts": sorted(_mdl(cfg, "SELECT id, username, suspended FROM {p}user WHERE auth = 'db'")),
    }


def _results(dr) -> dict:
    return {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in dr.get_task_instances() if ti.task_id in TASKS}


def _cycles(bed, run_cycle, monkeypatch, sizes: dict) -> tuple[list, dict, dict]:
    """A dry run and a real cycle, then both again after staff rejected and corrected some provisioned
    requests and some linked pupils left: each cycle's task results, the end state, and the chunks made."""
    for name, value in sizes.items():
        monkeypatch.setattr(cycle, name, value)
    made: dict[str, list[int]] = {"requests": [], "ledger": []}

    def chunks(requests, size):
        found = BY_PARENT(requests, size)
        made["requests"] += [len(c) for c in found]
        return found

    def batches(*args):
        for rows in ACTIVE_LINKS(*args):
            made["ledger"].append(len({r.parent for r in rows}))
            yield rows

    monkeypatch.setattr(plan, "by_parent", chunks)
    monkeypatch.setattr(moodle_db, "active_links", batches)
    use_settings(bed, static_context_ids=[1], max_unlinks_per_cycle=10_000)
    mariadb.create(bed.cfg)
    moodle_site.lay_out(bed.cfg)
    moodle_site.reset_dataroot(bed.cfg)
    demo_data.load(bed.cfg, demo_data.generate(size=150, seed=11, approved=150))
    _parents_asking_twice(bed.cfg)
    results = []
    for conf in ({"dry_run": True}, {}, "changes", {"dry_run": True}, {}):
        if conf == "changes":
            _staff_and_leavers(bed)
            continue
        dr, states = run_cycle(conf)
        assert dr.state == "success", states
        results.append(_results(dr))
    return results, _state(bed.cfg), made


def _parents_asking_twice(cfg) -> None:
    """Some parents' requests again, as later requests (the demo school has none): in chunks of a few
    requests they would fall far apart, and the second would find the first's role assignments and
    record its links as found (never removable) instead of made, were a parent's requests not kept in one chunk."""
    table = cfg.wp_requests_table
    columns = ", ".join(f"`{c}`" for (c, *_) in verify.rows(cfg.wp_db, f"SHOW COLUMNS FROM `{table}`") if c != "id")
    approved = [r for (r,) in _wp(cfg, "SELECT id FROM {req} WHERE status = 'approved' ORDER BY id")]
    again = _ids(approved[::10])
    _run(cfg.wp_db, f"INSERT INTO `{table}` ({columns}) SELECT {columns} FROM `{table}` WHERE id IN ({again})")


def _staff_and_leavers(bed) -> None:
    cfg = bed.cfg
    provisioned = [r for (r,) in _wp(cfg, "SELECT id FROM {req} WHERE status = 'provisioned' ORDER BY id")]
    rejected, corrected = provisioned[:6], provisioned[6:10]
    _run(cfg.wp_db, f"UPDATE `{cfg.wp_requests_table}` SET status = 'rejected' WHERE id IN ({_ids(rejected)})")
    _run(
        cfg.wp_db,
        f"UPDATE `{cfg.wp_requests_table}` SET status = 'approved', child_tg = CONCAT(child_tg, 'X')"
        f" WHERE id IN ({_ids(corrected)})",
    )
    pupils = _mdl(cfg, "SELECT DISTINCT child_userid FROM {links} WHERE child_userid IS NOT NULL ORDER BY 1")
    leavers = [p for (p,) in pupils[::9]]
    _run(cfg.moodle_db, f"UPDATE `{cfg.moodle_prefix}user` SET suspended = 1 WHERE id IN ({_ids(leavers)})")


def _ids(values) -> str:
    return ", ".join(str(int(v)) for v in values)


def _run(db: str, sql: str) -> None:
    conn = mariadb.admin_connect(db)
    try:
        with mariadb.cursor(conn) as cur:
            cur.execute(sql)
    finally:
        conn.close()


def test_requests_in_chunks_and_the_ledger_in_batches_decide_what_one_pass_does(fresh, run_cycle, monkeypatch):
    whole, whole_state, whole_made = _cycles(fresh, run_cycle, monkeypatch, WHOLE)
    chunked, chunked_state, chunked_made = _cycles(fresh, run_cycle, monkeypatch, CHUNKED)
    # The whole run was one chunk per task; the chunked one many, and batches of several parents.
    assert max(whole_made["requests"]) > 100 and len(whole_made["ledger"]) == 3  # no ledger yet at the first dry run
    assert max(chunked_made["requests"]) <= 8 and len(chunked_made["ledger"]) > 50
    real = whole[1]
    assert real["link_children"]["provisioned"] > 100 and real["link_children"]["role_assignments_added"] > 200
    again = whole[3]["unlink_children"]
    assert again["unlinked"] > 3 and again["held_by_another_request"] and again["leaver_links"] > 5
    assert (
        again["parents_without_child"] and {"request_rejected", "child_changed"} <= again["unlinked_by_reason"].keys()
    )
    assert chunked == whole
    assert chunked_state == whole_state
    assert whole_state["ledger"] and any(r[6] for r in whole_state["ledger"])  # some removed
