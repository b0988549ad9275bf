"""One provisioning cycle, step by step. Each function is one DAG task's work: it takes
open database connections, reads, lets the pure modules decide (plan.py: accounts, children
and links; outcomes.py: each request's outcome; unlink.py, adopt.py), writes, and returns
small results (ids and counts) for XCom.

Every step can run again at any point and converges: writes check before they insert,
outcomes are upserted per (run, request), and a request's comment line is written in
the same transaction that records it was written.
"""

from __future__ import annotations

import json
import logging
import smtplib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from datetime import datetime

from include.parent_provisioning import (
    adopt,
    moodle_db,
    own_tables,
    parent_emails,
    plan,
    sql,
    unlink,
    user_sync,
    wordpress,
)
from include.parent_provisioning.matching import PupilIndex, named_as
from include.parent_provisioning.moodle_db import Site
from include.parent_provisioning.outcomes import (
    Outcome,
    Take,
    asked_but_not_approved,
    awaiting_email,
    changed_during_cycle,
    collect_outcome,
    emails_due,
    link_outcome,
    real_run_take,
)
from include.parent_provisioning.requests import EMAIL_PATTERN, Request, from_row, normalise_email
from include.parent_provisioning.settings import Settings

log = logging.getLogger(__name__)


# Requests collect and link_children read, decide and write at a time: a task's memory is one chunk's
# whatever the queue, for a few dozen statements a chunk. Large, as each chunk of link_children reads
# every account with its children's surnames (in a trust, nearly all of Moodle's) to keep a few.
REQUESTS_PER_CHUNK = 20_000
LINKS_PER_BATCH = 25_000  # ledger rows unlink_children judges at a time (more when one parent's run past it)
PLAN_REQUESTS = 200  # requests a dry run's plan lists one by one (its counts are whole)
LISTED = 200  # leavers, parents without a current child, unjustified links: listed one by one (counts are whole)


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


class CheckError(RuntimeError):
    """The cycle cannot start: the message says what to fix."""


def check(wp, mdl, s: Settings, dry_run: bool) -> dict:
    """Settings, both databases, the WordPress tables, the role, the static contexts."""
    missing = own_tables.missing_tables(wp, s)
    plugin_tables = [t for t in missing if t in (s.requests_table, s.auth_table)]
    if plugin_tables:
        raise CheckError(
            f"WordPress table(s) {', '.join(plugin_tables)} not found: is 'wp_table_prefix' "
            f"({s.wp_table_prefix!r}) right and the wordpress_db connection on the right database?"
        )
    try:
        site = moodle_db.check_site(mdl, s)
    except moodle_db.SiteError as exc:
        raise CheckError(str(exc)) from exc
    if not dry_run:  # only once every check has passed
        _make_own_tables(wp, mdl, s, missing)
    return asdict(site)


def _make_own_tables(wp, mdl, s: Settings, missing: list[str]) -> None:
    if missing:
        own_tables.create_own_tables(wp, s)
    try:
        if moodle_db.ensure_links_table(mdl, s):
            log.info("created the ledger of links in Moodle's database")
        for column in own_tables.upgrade_own_tables(wp, s):
            log.info("added column %s (a deployment made by an earlier version)", column)
    except Exception as exc:
        # CREATE / ALTER denied: the grants of an earlier version
        if sql.error_code(exc) in (sql.ER_TABLEACCESS_DENIED, sql.ER_COLUMNACCESS_DENIED):
            raise CheckError(
                f"the database refused to create or upgrade the project's own table ({exc.args[-1]}): "
                "apply this version's docs/grants.sql (the Moodle user needs CREATE on "
                f"{s.links_table}, the WordPress user ALTER on {s.outcomes_table})"
            ) from exc
        raise


def validate(rows: list[dict], auth: set[str], s: Settings, site: Site, accounts) -> list[Request]:
    """Read the requests; data problems become reasons on them (plan.validate)."""
    return plan.validate(rows, auth, accounts, s.match_by, site.extended_usernames)


def _accounts(mdl, s: Settings, st: Site, rows: list[dict]) -> dict[str, moodle_db.Account]:
    return moodle_db.find_accounts(mdl, s, st, {from_row(r).email for r in rows})


def collect(wp, mdl, s: Settings, site: dict, run_id: str, request_ids: Sequence[int], dry_run: bool) -> dict:
    """The approved requests this cycle takes, and which of them need a new Moodle account: read,
    decided and written REQUESTS_PER_CHUNK at a time (an outcome is its own row, upserted)."""
    st = Site.from_dict(site)
    queue = wordpress.approved_queue(wp, s, request_ids)
    auth = wordpress.auth_emails(wp, s)
    needed_earlier = set() if dry_run else own_tables.needing_account(wp, s, run_id)
    result = {"collected": 0, "invalid": 0, "needs_account": 0}
    for ids in sql.chunks([rid for rid, _ in queue.requests], REQUESTS_PER_CHUNK):
        rows = wordpress.requests_by_id(wp, s, ids)
        accounts = _accounts(mdl, s, st, rows)
        collected = [
            collect_outcome(r, accounts.get(r.email), needed_earlier) for r in validate(rows, auth, s, st, accounts)
        ]
        if not dry_run:
            own_tables.write_outcomes(wp, s, run_id, collected)
        result["collected"] += len(collected)
        result["invalid"] += sum(1 for o in collected if o.reasons)
        result["needs_account"] += sum(1 for o in collected if o.needs_account)
    result["deferred"] = queue.deferred
    taken = ({"id": rid} for rid, _ in queue.requests)
    result["asked_but_not_approved"] = asked_but_not_approved(request_ids, taken)[:100]
    log.info(
        "collected %(collected)s requests: %(invalid)s with data problems, %(needs_account)s need a "
        "new account, %(deferred)s deferred to the next cycle",
        result,
    )
    return result


def link(wp, mdl, s: Settings, site: dict, run_id: str, request_ids: Sequence[int], dry_run: bool) -> dict:
    """Read what the plan needs, plan (plan.py: pure), and apply it: the Parent role in each
    matched child's user context and in each static context, and each request's outcome.

    A real run takes the requests `collect` took that are still approved, as they are now; one
    staff took out of `approved` meanwhile is not linked and gets `changed_during_cycle`. A dry
    run takes the queue as it is and plans the accounts Moodle's user sync would create or
    revive as if it had run, so that its plan is what the real run would do.

    The requests go REQUESTS_PER_CHUNK at a time, each parent's in one chunk (plan.by_parent), so that
    a chunk decides what all of them at once would; a chunk's pupils are every pupil and namesake in
    all of Moodle with one of its children's names. A chunk's links are committed with their ledger
    rows, then its outcomes: a crash leaves whole chunks, and the re-run converges as before."""
    st = Site.from_dict(site)
    auth = wordpress.auth_emails(wp, s)
    statics = len(st.static_context_ids)
    result = dict.fromkeys(LINK_COUNTS, 0)
    dry = _DryRunPlan() if dry_run else None
    takes = _real_run_takes(wp, s, run_id) if dry is None else _dry_run_takes(wp, mdl, s, site, request_ids, dry)
    for take in takes:
        accounts = _accounts(mdl, s, st, take.rows)
        requests = validate(take.rows, auth, s, st, accounts)
        plans = _plans(mdl, s, st, requests, accounts, take.will_create, take.will_revive)
        contexts = moodle_db.ensure_user_contexts(mdl, s, st, plan.children_to_link(plans), dry_run)
        wanted = plan.wanted_assignments(plans, contexts, st.static_context_ids)
        added = moodle_db.ensure_role_assignments(mdl, s, st, wanted, dry_run)
        recorded = 0 if dry_run else _record_links(mdl, s, st, plans, contexts, added, run_id)
        now = _now()
        decided = [
            link_outcome(p, run_id, now, take.needed_account, take.past.get(p.request_id, []), statics) for p in plans
        ]
        decided += [changed_during_cycle(rid, run_id, now) for rid in take.changed]
        if not dry_run:
            own_tables.write_outcomes(wp, s, run_id, decided)
        for key, n in _link_result(plans, decided, added, recorded).items():
            result[key] += n
        if dry is not None:
            dry.add(mdl, s, plans, statics)
    if dry is not None:
        result.update(dry.result(result["role_assignments_added"]))
    log.info("linking: %s", {k: v for k, v in result.items() if k not in ("plan", "replans")})
    return result


def _real_run_takes(wp, s: Settings, run_id: str) -> Iterator[Take]:
    """The requests `collect` took that are still approved, as they are now, and their earlier cycles,
    a chunk at a time."""
    taken = wordpress.run_requests(wp, s, run_id)
    chunks = plan.by_parent(((rid, email) for rid, _, _, email in taken), REQUESTS_PER_CHUNK)
    needed = {rid for rid, needs, _, _ in taken if needs}
    marked = {rid: m for rid, _, m, _ in taken if m is not None}
    del taken
    for ids in chunks:
        collected = [{"request_id": r, "needs_account": r in needed, "marked_outcome": marked.get(r)} for r in ids]
        take = real_run_take(collected, wordpress.requests_by_id(wp, s, ids))
        yield replace(take, past=own_tables.history(wp, s, run_id, [int(r["id"]) for r in take.rows]))


def _dry_run_takes(wp, mdl, s: Settings, site: dict, request_ids: Sequence[int], dry: _DryRunPlan) -> Iterator[Take]:
    """The queue as it is, a chunk at a time, and the accounts Moodle's user sync is predicted to create or revive."""
    queue = wordpress.approved_queue(wp, s, request_ids)
    dry.listed = [rid for rid, _ in queue.requests[:PLAN_REQUESTS]]
    simulation, _, _ = user_sync.forecast(wp, mdl, s, site)
    for ids in plan.by_parent(queue.requests, REQUESTS_PER_CHUNK):
        rows = [r for r in wordpress.requests_by_id(wp, s, ids) if r["status"] == "approved"]
        yield Take(rows, will_create=simulation.created, will_revive=simulation.revived)


def _record_links(mdl, s: Settings, st: Site, plans: list[plan.RequestPlan], contexts, added, run_id: str) -> int:
    """Moodle's access cache told, and the links recorded in the ledger in the transaction that made
    them: a crash leaves both or neither."""
    parents = {p.parent_id for p in plans if p.parent_id and (p.links or st.static_context_ids)}
    moodle_db.mark_access_dirty(mdl, s, st, parents)
    recorded = moodle_db.record_links(
        mdl, s, st, plan.ledger_links(plans, contexts, st.static_context_ids), added, run_id
    )
    mdl.commit()
    return recorded


LINK_COUNTS = (
    "provisioned", "not_provisioned", "children_linked", "role_assignments_added", "links_recorded", "new_accounts",
)  # fmt: skip


def _link_result(plans: list[plan.RequestPlan], decided: list[Outcome], added: list, recorded: int) -> dict:
    return {
        "provisioned": sum(1 for o in decided if o.outcome == "provisioned"),
        "not_provisioned": sum(1 for o in decided if o.outcome != "provisioned"),
        "children_linked": sum(len(p.links) for p in plans),
        "role_assignments_added": len(added),
        "links_recorded": recorded,
        "new_accounts": sum(1 for o in decided if o.needs_account and o.parent_userid),
    }


class _DryRunPlan:
    """What a dry run adds to link's result, gathered chunk by chunk: the accounts and links the sync's
    new accounts bring, the plan of each of the queue's first PLAN_REQUESTS requests, and, for the dry
    run's unlink_children, what the real run's outcomes would tell it."""

    def __init__(self):
        self.listed: list[int] = []  # the queue's first requests, in its order
        self.new_accounts = 0
        self.new_links = 0
        self.plan: dict[int, dict] = {}
        self.replans: dict[int, dict] = {}

    def add(self, mdl, s: Settings, plans: list[plan.RequestPlan], statics: int) -> None:
        relinked = moodle_db.ledger_requests(mdl, s, [p.request_id for p in plans])
        listed = set(self.listed)
        self.new_accounts += sum(1 for p in plans if p.account in (plan.CREATED_BY_SYNC, plan.REVIVED_BY_SYNC))
        self.new_links += plan.new_links_for_new_accounts(plans, statics)
        self.plan.update({p.request_id: plan.describe(p) for p in plans if p.request_id in listed})
        self.replans.update(
            {
                p.request_id: {"parent": p.parent_id, "pupils": [link.pupil for link in p.links]}
                for p in plans
                if p.request_id in relinked
            }
        )

    def result(self, added: int) -> dict:
        return {
            "new_accounts": self.new_accounts,
            "role_assignments_added": added + self.new_links,
            "plan": {rid: self.plan[rid] for rid in self.listed if rid in self.plan},
            "replans": self.replans,
        }


class UnlinkRefused(RuntimeError):
    """More links would be removed than max_unlinks_per_cycle allows; the message gives the figures."""


def unlink_links(
    wp, mdl, s: Settings, site: dict, run_id: str, dry_run: bool, allowed: bool, dry_replans: dict | None = None
) -> dict:
    """Take away the links whose every justifying request is gone (unlink.py decides), in one
    Moodle transaction with their ledger rows; list the leavers. Refused, having written nothing,
    when it would remove more than max_unlinks_per_cycle links and the run does not allow it.
    A real run reads what link_children planned from this run's outcomes; a dry run gets it
    from link_children's result (dry_replans), as nothing was written. The ledger is read as one
    statement, streamed, and judged a batch of whole parents at a time (unlink.Tally)."""
    st = Site.from_dict(site)
    tally = unlink.Tally(LISTED)
    if not dry_run or moodle_db.links_table_exists(mdl, s):
        dry = {int(rid): unlink.Replan(p["parent"], frozenset(p["pupils"])) for rid, p in (dry_replans or {}).items()}
        for rows in moodle_db.active_links(mdl, s, st, LINKS_PER_BATCH):
            states = wordpress.request_states(wp, s, {r.request_id for r in rows})
            replans = dry if dry_run else _replans(wp, s, run_id, {rid: digest for rid, (_, digest) in states.items()})
            statuses = {rid: status for rid, (status, _) in states.items()}
            tally.add(rows, unlink.decide(rows, statuses, replans, st.static_context_ids, s.unlink_leavers))
    result = _unlink_result(tally, s)
    if len(tally.deletions) > s.max_unlinks_per_cycle:
        result["over_limit"] = True
        if not allowed and not dry_run:
            raise UnlinkRefused(_refusal(result, tally.rows, s.max_unlinks_per_cycle))
    if not dry_run:
        result["unlinked"] = moodle_db.remove_links(mdl, s, st, tally.removals, run_id)
    log.info("unlinking: %s", {k: v for k, v in result.items() if k not in ("leavers", "parents_without_child")})
    return result


REPLAN_COLUMNS = "request_id, outcome, reason_key, parent_userid, linked_children, fingerprint"


def _replans(wp, s: Settings, run_id: str, digests: dict[int, str]) -> dict[int, unlink.Replan]:
    """What this run's link_children planned, from its outcomes, for these requests (digests: each one's
    now) still as it read them."""
    outcomes = [
        {**o, "linked_children": json.loads(o["linked_children"] or "[]")}
        for o in own_tables.run_outcomes(wp, s, run_id, digests, REPLAN_COLUMNS)
    ]
    return unlink.replans_from_outcomes(outcomes, digests)


def _unlink_result(tally: unlink.Tally, s: Settings) -> dict:
    return {
        "links_held": tally.rows,
        "unlinked": len(tally.deletions),
        "unlinked_by_reason": tally.counts(),
        "released_hand_made": sum(1 for r in tally.removals if not r.delete and r.reason != unlink.GONE),
        "removed_in_moodle": sum(1 for r in tally.removals if r.reason == unlink.GONE),
        "held_by_another_request": tally.held,
        "limit": s.max_unlinks_per_cycle,
        "leaver_links": tally.leavers,
        "leavers_unlinked": s.unlink_leavers,
        "leavers": [{"request_id": r.request_id, "parent": r.parent, "child": r.child} for r in tally.listed_leavers],
        "parents_without_child": {str(p): ids for p, ids in tally.parents_without_child.items()},
    }


def _refusal(result: dict, held: int, limit: int) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in result["unlinked_by_reason"].items())
    return (
        f"refused: this cycle would remove {result['unlinked']} parent-child links (role assignments) of the "
        f"{held} in the ledger, more than max_unlinks_per_cycle ({limit}); by reason: "
        f"{reasons}. Nothing was removed. Check the requests' statuses (and, for child_left, the pupils' "
        "accounts); if this is right, trigger a run with allow_mass_unlink (the cycle's record names who)"
    )


def _plans(mdl, s: Settings, st: Site, requests: list[Request], accounts, will_create=(), will_revive=()):
    """Each request's plan (plan.py), with the pupils and namesakes its children's surnames need."""
    index = _pupil_index(mdl, s, st, requests)
    return plan.plan_requests(requests, accounts, index, will_create, will_revive)


def _pupil_index(mdl, s: Settings, st: Site, requests: list[Request]) -> PupilIndex:
    """The pupils with the names of the children the requests name, and their namesakes: every one in
    Moodle (the database finds them by surname; only those with a child's whole name are kept)."""
    children = [c for r in requests if not plan.parent_unusable(r) for c in r.children]
    surnames = {c.surname for c in children}
    pupils, namesakes = moodle_db.find_named(mdl, s, st, surnames, named_as(children, s.match_by))
    return PupilIndex(pupils, s.match_by, namesakes)


ACCOUNT_WORDS = {
    plan.READY: "has a Moodle account: the children are linked to it",
    plan.CREATED_BY_SYNC: "has no Moodle account yet: Moodle's user sync creates it at the next cycle",
    plan.REVIVED_BY_SYNC: "has a suspended Moodle account: Moodle's user sync revives it at the next cycle",
    plan.MISSING: "has no Moodle account, and Moodle's user sync would not create one",
    plan.SUSPENDED: "has a suspended Moodle account, which the next cycle would leave suspended",
    plan.NOT_CHECKED: "is not looked for: the request's own data stops it first",
}


def preview(wp, mdl, s: Settings, site: dict, request_ids: Sequence[int]) -> dict[int, dict]:
    """What the next cycle would do with each of these requests, as if staff approved the pending ones
    now: the same reading, validation, user-sync forecast and matching the cycle's dry run uses (so the
    preview and the cycle cannot disagree), for a request's screen. Reads only. Names are in it: it is
    for staff who may see the requests, never for logs or XCom."""
    st = Site.from_dict(site)
    rows = wordpress.requests_by_id(wp, s, request_ids)
    pending = {from_row(r).email for r in rows if r["status"] == "pending"}
    accounts = _accounts(mdl, s, st, rows)
    simulation, _, _ = user_sync.forecast(wp, mdl, s, site)
    # Approving a pending request writes its auth row: Moodle's user sync then creates or revives its account.
    will_create = set(simulation.created) | {e for e in pending if e not in accounts}
    will_revive = set(simulation.revived) | {accounts[e].id for e in pending if e in accounts}
    requests = {r.id: r for r in validate(rows, wordpress.auth_emails(wp, s) | pending, s, st, accounts)}
    index = _pupil_index(mdl, s, st, list(requests.values()))
    plans = plan.plan_requests(requests.values(), accounts, index, will_create, will_revive)
    return {p.request_id: _preview_of(p, requests[p.request_id], index, accounts) for p in plans}


def _preview_of(p: plan.RequestPlan, request: Request, index: PupilIndex, accounts) -> dict:
    return {
        "request_id": p.request_id,
        "would_provision": p.provisioned,
        "account": p.account,
        "account_text": ACCOUNT_WORDS[p.account],
        "existing_account": request.email in accounts,
        "reason_key": p.reason_key,
        "reasons": [{"code": r.code, "text": r.text} for r in p.reasons],
        "children": [_child_preview(c, request, index) for c in p.children],
        "links": [list(link) for link in p.links],  # (position, pupil id) the cycle would link
    }


def _child_preview(c: plan.ChildPlan, request: Request, index: PupilIndex) -> dict:
    child = next(x for x in request.children if x.position == c.position)
    pupil = index.pupils.get(c.pupil_id)
    return {
        "position": c.position,
        "first_name": child.first_name,
        "surname": child.surname,
        "tutor_group": child.tutor_group,
        "pupil": (
            {"id": pupil.id, "first_name": pupil.first_name, "surname": pupil.surname,
             "tutor_group": pupil.tutor_group} if pupil else None
        ),
        "reason": c.reason.text if c.reason else None,
    }  # fmt: skip


def adopt_links(wp, mdl, s: Settings, site: dict, run_id: str, dry_run: bool) -> dict:
    """For a school moving from the WordPress plugin: record into the ledger, as adopted, the
    Parent-role assignments (a pupil's user context, or a static context) that no ledger row holds
    and a provisioned request justifies, matched as the cycle matches; list the others for staff to
    review. Never deletes anything. Adopted links are then removed like the ones the cycle made."""
    st = Site.from_dict(site)
    found = moodle_db.unrecorded_parent_links(mdl, s, st)
    rows = wordpress.requests_with_status(wp, s, "provisioned")
    auth = wordpress.auth_emails(wp, s)
    accounts = _accounts(mdl, s, st, rows)
    plans = _plans(mdl, s, st, validate(rows, auth, s, st, accounts), accounts)
    links, unjustified = adopt.decide(found, plans, st.static_context_ids)
    recorded = 0
    if not dry_run:
        recorded = moodle_db.record_links(mdl, s, st, links, (), run_id, origin="adopted")
        mdl.commit()
    result = {
        "dry_run": dry_run,
        "provisioned_requests": len(rows),
        "assignments_not_in_ledger": len(found),
        "adopted": len({(x.parent, x.context) for x in links}),
        "ledger_rows_written": recorded,
        "unjustified": len(unjustified),
        "unjustified_assignments": [
            {"ra_id": a.ra_id, "parent": a.parent, "child": a.child, "context": a.context} for a in unjustified[:LISTED]
        ],
    }
    log.info("adoption: %s", {k: v for k, v in result.items() if k != "unjustified_assignments"})
    return result


class ParentEmailError(RuntimeError):
    """The mail server refused a parent's email; the message has the request id and the counts, no address."""


def email_parents(wp, s: Settings, run_id: str, templates: dict, send) -> dict:
    """The cycle's own emails to parents, when a template has `send_when` (none has by default): once a
    request is provisioned, or kept back for the first time for a reason the parent can put right (not again
    while the reason stays the same; outcomes.email_due). Each email is recorded on its outcome and as a line
    on the request once sent, so a retry sends only what is left. send(to, subject, body); counts only come
    back (for XCom)."""
    chosen = {t.send_when: t for t in templates.values() if t.send_when}
    result = {"sent": 0, "provisioned": 0, "kept_back": 0, "refused": 0, "no_usable_address": 0}
    if not chosen:
        return result
    awaiting = awaiting_email(own_tables.run_outcomes(wp, s, run_id))
    past = own_tables.history(wp, s, run_id, [int(o["request_id"]) for o in awaiting])
    due = emails_due(awaiting, past, chosen)
    rows = {int(r["id"]): r for r in wordpress.requests_by_id(wp, s, [d.request_id for d in due])}
    wp.rollback()  # no snapshot held while the mail server answers
    for d in due:
        counted = _email_parent(wp, s, run_id, d.request_id, rows.get(d.request_id), chosen[d.when], send, result)
        result[counted] += 1
        if counted == "sent":
            result[d.when] += 1
    log.info("emails to parents: %s", result)
    return result


def _email_parent(wp, s: Settings, run_id: str, rid: int, row: dict | None, template, send, counts: dict) -> str:
    """One parent's email, recorded once sent or refused; which count it adds to."""
    to = normalise_email((row or {}).get("parent_email") or "")
    if not EMAIL_PATTERN.fullmatch(to):
        return "no_usable_address"
    subject, body = parent_emails.render(template, row, s.moodle_url)
    now = _now()
    try:
        send(to, subject, body)
    except smtplib.SMTPRecipientsRefused:  # this address only: said on the request, never tried again
        line = f"{now} Email '{template.name}' to the parent refused by the mail server (Airflow run {run_id})"
        wordpress.record_parent_email(wp, s, run_id, rid, f"refused:{template.key}"[:64], line)
        return "refused"
    except Exception as exc:  # smtplib's messages carry the address: never into the task log
        raise ParentEmailError(
            f"the mail server did not take the email to request {rid}'s parent ({type(exc).__name__}); "
            f"{counts['sent']} sent before it; the retry sends the rest"
        ) from None
    line = f"{now} Email '{template.name}' sent to the parent by Airflow run {run_id}"
    wordpress.record_parent_email(wp, s, run_id, rid, template.key, line)
    return "sent"


def mark(wp, s: Settings, run_id: str) -> int:
    """The outcomes applied to the requests (wordpress.mark); a request staff changed since
    `link_children` read it gets this run's changed_during_cycle line instead."""
    return wordpress.mark(wp, s, run_id, changed_during_cycle(0, run_id, _now()).comment_line)


def summarise(wp, s: Settings, run_id: str, collected: dict, extra: dict) -> dict:
    """Counts per outcome and the failed requests' ids grouped by their reason codes: no names.
    Grouped, because a September queue fails by the hundred for the same few reasons."""
    outcomes = own_tables.run_outcomes(wp, s, run_id)
    failed: dict[str, list[int]] = {}
    for o in outcomes:
        if o["outcome"] not in ("provisioned", "collected"):
            failed.setdefault(o["reason_key"], []).append(int(o["request_id"]))
    done = (extra.get("sync") or {}).get("actual") or {}
    summary = {
        "run_id": run_id,
        "requests_taken": len(outcomes),
        "provisioned": sum(1 for o in outcomes if o["outcome"] == "provisioned"),
        "not_provisioned": sum(len(ids) for ids in failed.values()),
        "needs_attention": sorted(int(o["request_id"]) for o in outcomes if o["needs_attention"]),
        "deferred": collected.get("deferred", 0),
        "failed": dict(sorted(failed.items())),
        # Parents whose access ended this cycle: Moodle's sync suspended (or deleted) their accounts
        # because staff removed their auth rows.
        "accounts_suspended": int(done.get("suspended", 0)),
        # Parent-child links (role assignments) this cycle made and took away.
        "links_made": int((extra.get("links") or {}).get("role_assignments_added", 0)),
        "links_removed": int((extra.get("unlinks") or {}).get("unlinked", 0)),
        **extra,
    }
    own_tables.finish_cycle(wp, s, run_id, summary)
    return summary
