"""One provisioning cycle, step by step. Each function is one DAG task's work: it takes
open database connections and returns small results (ids and counts) for XCom.

Every step can run again at any point and converges: writes check before they insert,
outcomes are upserted per (run, request), and a request's comment line is written in
the same transaction that records it was written.
"""

from __future__ import annotations

import json
import logging
import smtplib
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from include.parent_provisioning import adopt, moodle_db, plan, unlink, user_sync, wordpress
from include.parent_provisioning.matching import PupilIndex
from include.parent_provisioning.moodle_db import Site
from include.parent_provisioning.reasons import Reason
from include.parent_provisioning.requests import Request, from_row
from include.parent_provisioning.settings import Settings
from include.parent_provisioning.wordpress import Outcome

log = logging.getLogger(__name__)


PLAN_REQUESTS = 200  # requests a dry run's plan lists one by one (its counts are whole)


class CheckError(RuntimeError):
    """The cycle cannot start: the message says what to fix."""


def check(wp, mdl, s: Settings, dry_run: bool) -> dict:
    """Settings, both databases, the WordPress tables, the role, the static contexts."""
    missing = wordpress.missing_tables(wp, s)
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
        if missing:
            wordpress.create_own_tables(wp, s)
        try:
            if moodle_db.ensure_links_table(mdl, s):
                log.info("created the ledger of links in Moodle's database")
            for column in wordpress.upgrade_own_tables(wp, s):
                log.info("added column %s (a deployment made by an earlier version)", column)
        except Exception as exc:
            if exc.args and exc.args[0] in (1142, 1143):  # CREATE / ALTER denied: grants of an earlier version
                raise CheckError(
                    f"the database refused to create or upgrade the project's own table ({exc.args[-1]}): "
                    "apply this version's docs/grants.sql (the Moodle user needs CREATE on "
                    f"{s.links_table}, the WordPress user ALTER on {s.outcomes_table})"
                ) from exc
            raise
    return asdict(site)


def validate(rows: list[dict], auth: set[str], s: Settings, site: Site, accounts) -> list[Request]:
    """Read the requests; data problems become reasons on them."""
    requests = []
    for row in rows:
        request = from_row(row, s.match_by, site.extended_usernames)
        if (
            request.email
            and request.email not in auth
            and not any(r.code in ("invalid_email", "email_not_a_moodle_username") for r in request.reasons)
        ):
            request.reasons.append(Reason("no_auth_row"))
        account = accounts.get(request.email)
        if account is not None and account.auth != "db":
            request.reasons.append(Reason("account_other_auth", auth=account.auth))
        requests.append(request)
    return requests


def collect(wp, mdl, s: Settings, site: dict, run_id: str, request_ids: Sequence[int], dry_run: bool) -> dict:
    """The approved requests this cycle takes, and which of them need a new Moodle account."""
    st = Site.from_dict(site)
    batch = wordpress.approved_requests(wp, s, request_ids)
    auth = wordpress.auth_emails(wp, s)
    emails = {from_row(r).email for r in batch.rows}
    accounts = moodle_db.find_accounts(mdl, s, st, emails)
    # A re-run of this run (cleared after Moodle's sync made the accounts) still owes those
    # parents their password mail: what this run found needing an account keeps needing it.
    needed_earlier = (
        set()
        if dry_run
        else {int(o["request_id"]) for o in wordpress.run_outcomes(wp, s, run_id) if o["needs_account"]}
    )
    outcomes = []
    for request in validate(batch.rows, auth, s, st, accounts):
        account = accounts.get(request.email)
        needs_account = not request.reasons and (account is None or account.suspended or request.id in needed_earlier)
        outcomes.append(Outcome(request.id, "collected", needs_account=needs_account, reasons=tuple(request.reasons)))
    if not dry_run:
        wordpress.write_outcomes(wp, s, run_id, outcomes)
    asked_missing = sorted(set(request_ids) - {int(r["id"]) for r in batch.rows}) if request_ids else []
    result = {
        "collected": len(outcomes),
        "invalid": sum(1 for o in outcomes if o.reasons),
        "needs_account": sum(1 for o in outcomes if o.needs_account),
        "deferred": batch.deferred,
        "asked_but_not_approved": asked_missing[:100],
    }
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
    revive as if it had run, so that its plan is what the real run would do."""
    st = Site.from_dict(site)
    will_create: frozenset[str] = frozenset()
    will_revive: frozenset[int] = frozenset()
    gone: list[int] = []
    if dry_run:
        rows = wordpress.approved_requests(wp, s, request_ids).rows
        past: dict[int, list] = {}
        needed_account: set[int] = set()
        simulation, _, _ = user_sync.forecast(wp, mdl, s, site)
        will_create, will_revive = simulation.created, simulation.revived
    else:
        collected = wordpress.run_outcomes(wp, s, run_id)
        rows = wordpress.requests_by_id(wp, s, [o["request_id"] for o in collected])
        approved_ids = {int(r["id"]) for r in rows if r["status"] == "approved"}
        # Not approved any more and not yet marked by this run: staff changed it. (A request this
        # run already marked provisioned is not approved either: a re-run keeps its outcome.)
        gone = [
            int(o["request_id"])
            for o in collected
            if int(o["request_id"]) not in approved_ids and o["marked_outcome"] is None
        ]
        rows = [r for r in rows if int(r["id"]) in approved_ids]
        past = wordpress.history(wp, s, run_id, [int(r["id"]) for r in rows])
        needed_account = {int(o["request_id"]) for o in collected if o["needs_account"]}
    auth = wordpress.auth_emails(wp, s)
    emails = {from_row(r).email for r in rows}
    accounts = moodle_db.find_accounts(mdl, s, st, emails)
    requests = validate(rows, auth, s, st, accounts)

    plans = _plans(mdl, s, st, requests, accounts, will_create, will_revive)

    contexts = moodle_db.ensure_user_contexts(mdl, s, st, plan.children_to_link(plans), dry_run)
    added = moodle_db.ensure_role_assignments(
        mdl, s, st, plan.wanted_assignments(plans, contexts, st.static_context_ids), dry_run
    )
    recorded = 0
    if not dry_run:
        moodle_db.mark_access_dirty(
            mdl, s, st, {p.parent_id for p in plans if p.parent_id and (p.links or st.static_context_ids)}
        )
        # In the links' own transaction: a crash leaves both or neither.
        recorded = moodle_db.record_links(
            mdl, s, st, plan.ledger_links(plans, contexts, st.static_context_ids), added, run_id
        )
        mdl.commit()

    now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    outcomes = [_outcome(p, run_id, now, needed_account, past, len(st.static_context_ids)) for p in plans]
    outcomes += [changed_during_cycle(rid, run_id, now) for rid in gone]
    if not dry_run:
        wordpress.write_outcomes(wp, s, run_id, outcomes)
    result = {
        "provisioned": sum(1 for o in outcomes if o.outcome == "provisioned"),
        "not_provisioned": sum(1 for o in outcomes if o.outcome != "provisioned"),
        "children_linked": sum(len(p.links) for p in plans),
        "role_assignments_added": len(added),
        "links_recorded": recorded,
        "new_accounts": sum(1 for o in outcomes if o.needs_account and o.parent_userid),
    }
    if dry_run:
        result["new_accounts"] = sum(1 for p in plans if p.account in (plan.CREATED_BY_SYNC, plan.REVIVED_BY_SYNC))
        result["role_assignments_added"] += plan.new_links_for_new_accounts(plans, len(st.static_context_ids))
        result["plan"] = {p.request_id: plan.describe(p) for p in plans[:PLAN_REQUESTS]}
        # For the dry run's unlink_children: what the real run's outcomes would tell it.
        relinked = moodle_db.ledger_requests(mdl, s, [p.request_id for p in plans])
        result["replans"] = {
            p.request_id: {"parent": p.parent_id, "pupils": [pupil for _, pupil in p.links]}
            for p in plans
            if p.request_id in relinked
        }
    log.info("linking: %s", {k: v for k, v in result.items() if k not in ("plan", "replans")})
    return result


class UnlinkRefused(RuntimeError):
    """More links would be removed than max_unlinks_per_cycle allows; the message gives the figures."""


LISTED = 200  # leavers and parents without a current child listed one by one (their counts are whole)


def unlink_links(
    wp, mdl, s: Settings, site: dict, run_id: str, dry_run: bool, allowed: bool, dry_replans: dict | None = None
) -> dict:
    """Take away the links whose every justifying request is gone (unlink.py decides), in one
    Moodle transaction with their ledger rows; list the leavers. Refused, having written nothing,
    when it would remove more than max_unlinks_per_cycle links and the run does not allow it.
    A real run reads what link_children planned from this run's outcomes; a dry run gets it
    from link_children's result (dry_replans), as nothing was written."""
    st = Site.from_dict(site)
    rows = moodle_db.active_links(mdl, s, st) if not dry_run or moodle_db.links_table_exists(mdl, s) else []
    states = wordpress.request_states(wp, s, {r.request_id for r in rows})
    if dry_run:
        replans = {
            int(rid): unlink.Replan(p["parent"], frozenset(p["pupils"])) for rid, p in (dry_replans or {}).items()
        }
    else:
        outcomes = [
            {**o, "linked_children": json.loads(o["linked_children"] or "[]")}
            for o in wordpress.run_outcomes(wp, s, run_id)
        ]
        replans = unlink.replans_from_outcomes(outcomes, {rid: digest for rid, (_, digest) in states.items()})
    statuses = {rid: status for rid, (status, _) in states.items()}
    decision = unlink.decide(rows, statuses, replans, st.static_context_ids, s.unlink_leavers)
    doomed = decision.deletions
    result = {
        "links_held": len(rows),
        "unlinked": len(doomed),
        "unlinked_by_reason": decision.counts(),
        "released_hand_made": sum(1 for r in decision.removals if not r.delete and r.reason != unlink.GONE),
        "removed_in_moodle": sum(1 for r in decision.removals if r.reason == unlink.GONE),
        "held_by_another_request": len(decision.held),
        "limit": s.max_unlinks_per_cycle,
        "leaver_links": len(decision.leavers),
        "leavers_unlinked": s.unlink_leavers,
        "leavers": [
            {"request_id": r.request_id, "parent": r.parent, "child": r.child} for r in decision.leavers[:LISTED]
        ],
        "parents_without_child": {str(p): ids for p, ids in list(decision.parents_without_child.items())[:LISTED]},
    }
    if len(doomed) > s.max_unlinks_per_cycle:
        result["over_limit"] = True
        if not allowed and not dry_run:
            reasons = ", ".join(f"{k} {v}" for k, v in result["unlinked_by_reason"].items())
            raise UnlinkRefused(
                f"refused: this cycle would remove {len(doomed)} parent-child links (role assignments) of the "
                f"{len(rows)} in the ledger, more than max_unlinks_per_cycle ({s.max_unlinks_per_cycle}); by reason: "
                f"{reasons}. Nothing was removed. Check the requests' statuses (and, for child_left, the pupils' "
                "accounts); if this is right, trigger a run with allow_mass_unlink (the cycle's record names who)"
            )
    if not dry_run:
        result["unlinked"] = moodle_db.remove_links(mdl, s, st, decision.removals, run_id)
    log.info("unlinking: %s", {k: v for k, v in result.items() if k not in ("leavers", "parents_without_child")})
    return result


def _plans(mdl, s: Settings, st: Site, requests: list[Request], accounts, will_create=(), will_revive=()):
    """Each request's plan (plan.py), with the pupils and namesakes its children's surnames need."""
    return _plans_and_pupils(mdl, s, st, requests, accounts, will_create, will_revive)[0]


def _plans_and_pupils(mdl, s: Settings, st: Site, requests: list[Request], accounts, will_create, will_revive):
    matched = [r for r in requests if not any(x.code in plan.PARENT_UNUSABLE for x in r.reasons)]
    surnames = {c.surname for r in matched for c in r.children}
    pupils = moodle_db.find_pupils(mdl, s, st, surnames)
    namesakes = moodle_db.find_namesakes(mdl, s, surnames, {p.id for p in pupils})
    index = PupilIndex(pupils, s.match_by, namesakes)
    return plan.plan_requests(requests, accounts, index, will_create, will_revive), {p.id: p for p in pupils}


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
    accounts = moodle_db.find_accounts(mdl, s, st, {from_row(r).email for r in rows})
    simulation, _, _ = user_sync.forecast(wp, mdl, s, site)
    # Approving a pending request writes its auth row: Moodle's user sync then creates or revives its account.
    will_create = set(simulation.created) | {e for e in pending if e not in accounts}
    will_revive = set(simulation.revived) | {accounts[e].id for e in pending if e in accounts}
    requests = validate(rows, wordpress.auth_emails(wp, s) | pending, s, st, accounts)
    plans, pupils = _plans_and_pupils(mdl, s, st, requests, accounts, will_create, will_revive)
    named = {r.id: {c.position: c for c in r.children} for r in requests}
    email = {r.id: r.email for r in requests}
    out = {}
    for p in plans:
        children = []
        for c in p.children:
            child, pupil = named[p.request_id][c.position], pupils.get(c.pupil_id)
            children.append(
                {
                    "position": c.position,
                    "first_name": child.first_name,
                    "surname": child.surname,
                    "tutor_group": child.tutor_group,
                    "pupil": (
                        {"id": pupil.id, "first_name": pupil.first_name, "surname": pupil.surname,
                         "tutor_group": pupil.tutor_group} if pupil else None
                    ),
                    "reason": c.reason.text if c.reason else None,
                }
            )  # fmt: skip
        out[p.request_id] = {
            "request_id": p.request_id,
            "would_provision": p.provisioned,
            "account": p.account,
            "account_text": ACCOUNT_WORDS[p.account],
            "existing_account": email[p.request_id] in accounts,
            "reason_key": p.reason_key,
            "reasons": [{"code": r.code, "text": r.text} for r in p.reasons],
            "children": children,
            "links": [list(link) for link in p.links],  # (position, pupil id) the cycle would link
        }
    return out


def adopt_links(wp, mdl, s: Settings, site: dict, run_id: str, dry_run: bool) -> dict:
    """For a school moving from the WordPress plugin: record into the ledger, as adopted, the
    Parent-role assignments (a pupil's user context, or a static context) that no ledger row holds
    and a provisioned request justifies, matched as the cycle matches; list the others for staff to
    review. Never deletes anything. Adopted links are then removed like the ones the cycle made."""
    st = Site.from_dict(site)
    found = moodle_db.unrecorded_parent_links(mdl, s, st)
    rows = wordpress.requests_with_status(wp, s, "provisioned")
    auth = wordpress.auth_emails(wp, s)
    accounts = moodle_db.find_accounts(mdl, s, st, {from_row(r).email for r in rows})
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


# What a parent can put right (the "kept_back" email asks them to): what they wrote about a child.
PARENT_FIXABLE = frozenset({"child_not_found", "child_ambiguous", "child_incomplete", "no_first_child"})


class ParentEmailError(RuntimeError):
    """The mail server refused a parent's email; the message has the request id and the counts, no address."""


def email_parents(wp, s: Settings, run_id: str, templates: dict, send) -> dict:
    """The cycle's own emails to parents, when a template has `send_when` (none has by default): once a
    request is provisioned, or kept back for the first time for a reason the parent can put right (not again
    while the reason stays the same). Each email is recorded on its outcome and as a line on the request once
    sent, so a retry sends only what is left. send(to, subject, body); counts only come back (for XCom)."""
    from include.parent_provisioning import parent_emails
    from include.parent_provisioning.requests import EMAIL_PATTERN, normalise_email

    chosen = {t.send_when: t for t in templates.values() if t.send_when}
    result = {"sent": 0, "provisioned": 0, "kept_back": 0, "refused": 0, "no_usable_address": 0}
    if not chosen:
        return result
    outcomes = [o for o in wordpress.run_outcomes(wp, s, run_id) if o["marked_outcome"] and not o["parent_emailed"]]
    past = wordpress.history(wp, s, run_id, [int(o["request_id"]) for o in outcomes])
    due: list[tuple[int, str]] = []
    for o in outcomes:
        rid = int(o["request_id"])
        before = past.get(rid, [])
        reason_is_new = not before or before[-1][1] != o["reason_key"]
        if o["marked_outcome"] == "provisioned":
            due.append((rid, "provisioned"))
        elif set(o["reason_key"].split(",")) & PARENT_FIXABLE and reason_is_new:
            due.append((rid, "kept_back"))
    due = [(rid, when) for rid, when in due if when in chosen]
    rows = {int(r["id"]): r for r in wordpress.requests_by_id(wp, s, [rid for rid, _ in due])}
    wp.rollback()  # no snapshot held while the mail server answers
    for rid, when in due:
        row, template = rows.get(rid), chosen[when]
        to = normalise_email((row or {}).get("parent_email") or "")
        if not EMAIL_PATTERN.fullmatch(to):
            result["no_usable_address"] += 1
            continue
        subject, body = parent_emails.render(template, row, s.moodle_url)
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        try:
            send(to, subject, body)
        except smtplib.SMTPRecipientsRefused:  # this address only: said on the request, never tried again
            line = f"{now} Email '{template.name}' to the parent refused by the mail server (Airflow run {run_id})"
            wordpress.record_parent_email(wp, s, run_id, rid, f"refused:{template.key}"[:64], line)
            result["refused"] += 1
            continue
        except Exception as exc:  # smtplib's messages carry the address: never into the task log
            raise ParentEmailError(
                f"the mail server did not take the email to request {rid}'s parent ({type(exc).__name__}); "
                f"{result['sent']} sent before it; the retry sends the rest"
            ) from None
        line = f"{now} Email '{template.name}' sent to the parent by Airflow run {run_id}"
        wordpress.record_parent_email(wp, s, run_id, rid, template.key, line)
        result["sent"] += 1
        result[when] += 1
    log.info("emails to parents: %s", result)
    return result


def _outcome(
    p: plan.RequestPlan, run_id: str, now: str, needed_account: set[int], past: dict[int, list], statics: int
) -> Outcome:
    outcome = Outcome(
        p.request_id,
        "provisioned" if p.provisioned else "not_provisioned",
        needs_account=p.request_id in needed_account,
        reasons=p.reasons,
        parent_userid=p.parent_id,
        linked_children=p.links,
        fingerprint=p.fingerprint,
    )
    history = past.get(p.request_id, [])
    outcome.attempt, outcome.needs_attention = (
        (len([x for x in history if x[0] != "provisioned"]) + 1, False)
        if p.provisioned
        else wordpress.attempt_and_attention(history, outcome.reason_key)
    )
    outcome.comment_line = comment_line(now, run_id, outcome, statics)
    return outcome


def changed_during_cycle(request_id: int, run_id: str, now: str) -> Outcome:
    """A request staff changed after the cycle read it: left as staff left it, taken up next cycle."""
    outcome = Outcome(request_id, "not_provisioned", reasons=(Reason("changed_during_cycle"),))
    outcome.comment_line = comment_line(now, run_id, outcome, 0)
    return outcome


def mark(wp, s: Settings, run_id: str) -> int:
    """The outcomes applied to the requests (wordpress.mark); a request staff changed since
    `link_children` read it gets this run's changed_during_cycle line instead."""
    now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return wordpress.mark(wp, s, run_id, changed_during_cycle(0, run_id, now).comment_line)


def comment_line(now: str, run_id: str, o: Outcome, static_contexts: int) -> str:
    where = f"Airflow run {run_id}"
    if o.outcome == "provisioned":
        children = ", ".join(str(pos) for pos, _ in o.linked_children)
        extra = f" and {static_contexts} static context(s)" if static_contexts else ""
        return f"{now} Provisioned by {where}: parent account linked to child(ren) {children}{extra}."
    if o.reason_key == "changed_during_cycle":
        return f"{now} Not marked by {where}: {o.reasons[0].text}."
    linked = ", ".join(str(pos) for pos, _ in o.linked_children)
    partial = f" Linked so far: child(ren) {linked}." if linked else ""
    attention = " NEEDS ATTENTION: failing the same way for several cycles." if o.needs_attention else ""
    reasons = "; ".join(r.text for r in o.reasons)
    return f"{now} Not provisioned by {where} (attempt {o.attempt}): {reasons}.{partial}{attention}"


def summarise(wp, s: Settings, run_id: str, collected: dict, extra: dict) -> dict:
    """Counts per outcome and the failed requests' ids grouped by their reason codes: no names.
    Grouped, because a September queue fails by the hundred for the same few reasons."""
    outcomes = wordpress.run_outcomes(wp, s, run_id)
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
    wordpress.finish_cycle(wp, s, run_id, summary)
    return summary
