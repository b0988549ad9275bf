"""Which outcome each request of a run gets, and the line it writes on the request, as pure
functions over plain records: which requests the link step takes, whether a request needs a new
account, provisioned or kept back (with its attempt and whether it needs attention), changed
during the cycle, and which parents the cycle emails. `cycle` reads the records and writes the
outcomes these return; tests/unit/ covers the decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from include.parent_provisioning.moodle_db import Account
from include.parent_provisioning.plan import RequestPlan
from include.parent_provisioning.reasons import Reason
from include.parent_provisioning.requests import Request

ATTENTION_AFTER = 3  # cycles failing the same way


@dataclass(slots=True)
class Outcome:
    request_id: int
    outcome: str  # collected | provisioned | not_provisioned
    needs_account: bool = False
    reasons: tuple[Reason, ...] = ()
    parent_userid: int | None = None
    linked_children: tuple[tuple[int, int], ...] = ()  # (position on the form, pupil user id)
    attempt: int = 1
    needs_attention: bool = False
    comment_line: str = ""
    fingerprint: str = ""  # of the request as the cycle read it (requests.fingerprint_sql)

    @property
    def reason_key(self) -> str:
        return ",".join(sorted({r.code for r in self.reasons}))[:255]


def attempt_and_attention(past: list[tuple[str, str]], reason_key: str) -> tuple[int, bool]:
    """This is attempt N; flag the request once it has failed the same way ATTENTION_AFTER times."""
    failures = [key for outcome, key in past if outcome != "provisioned"]
    streak = 1
    for key in reversed(failures):
        if key != reason_key:
            break
        streak += 1
    return len(failures) + 1, streak >= ATTENTION_AFTER


# What a parent can put right (the "kept_back" email asks them to): what they wrote about a child.
PARENT_FIXABLE = frozenset({"child_not_found", "child_ambiguous", "child_incomplete", "no_first_child"})


@dataclass(frozen=True)
class Take:
    """The requests a link step takes (rows as they are now) and what it knows of them besides."""

    rows: list[dict]
    changed: list[int] = field(default_factory=list)  # staff changed them after `collect`: changed_during_cycle
    needed_account: frozenset[int] = frozenset()  # `collect` found them needing a new account
    past: Mapping[int, list[tuple[str, str]]] = field(default_factory=dict)  # earlier cycles' (outcome, reason_key)
    will_create: frozenset[str] = frozenset()  # a dry run: usernames Moodle's user sync would create
    will_revive: frozenset[int] = frozenset()  # ...and suspended accounts it would revive


def real_run_take(collected: Iterable[Mapping], rows: Iterable[dict]) -> Take:
    """The requests `collect` took (collected: this run's outcome rows) that are still approved,
    as they are now (rows). One no longer approved and not yet marked by this run was changed by
    staff; one this run already marked provisioned is not approved either, and a re-run keeps it."""
    collected = list(collected)
    approved = [r for r in rows if r["status"] == "approved"]
    approved_ids = {int(r["id"]) for r in approved}
    return Take(
        rows=approved,
        changed=[
            int(o["request_id"])
            for o in collected
            if int(o["request_id"]) not in approved_ids and o["marked_outcome"] is None
        ],
        needed_account=frozenset(int(o["request_id"]) for o in collected if o["needs_account"]),
    )


def asked_but_not_approved(request_ids: Sequence[int], rows: Iterable[dict]) -> list[int]:
    """The ids a run asked for that are not among the approved requests it took."""
    return sorted(set(request_ids) - {int(r["id"]) for r in rows}) if request_ids else []


def collect_outcome(request: Request, account: Account | None, needed_earlier: Iterable[int] = ()) -> Outcome:
    """`collect`'s outcome: a usable request needs a new account when the parent has none or a suspended
    one, or when this run found it needing one before (a re-run after Moodle's sync made the account
    still owes that parent the password mail)."""
    needs_account = not request.reasons and (account is None or account.suspended or request.id in needed_earlier)
    return Outcome(request.id, "collected", needs_account=needs_account, reasons=tuple(request.reasons))


def link_outcome(
    p: RequestPlan, run_id: str, now: str, needed_account: Iterable[int], past: list[tuple[str, str]], statics: int
) -> Outcome:
    """The link step's outcome of a planned request: provisioned, or kept back with its reasons
    and its attempt (flagged for attention after failing the same way several cycles).
    past: earlier cycles' (outcome, reason_key), oldest first; statics: the static contexts linked."""
    outcome = Outcome(
        p.request_id,
        "provisioned" if p.provisioned else "not_provisioned",
        needs_account=p.request_id in needed_account,
        reasons=p.reasons,
        parent_userid=p.parent_id,
        linked_children=p.links,
        fingerprint=p.fingerprint,
    )
    outcome.attempt, outcome.needs_attention = (
        (len([x for x in past if x[0] != "provisioned"]) + 1, False)
        if p.provisioned
        else attempt_and_attention(past, outcome.reason_key)
    )
    outcome.comment_line = comment_line(now, run_id, outcome, statics)
    return outcome


def changed_during_cycle(request_id: int, run_id: str, now: str) -> Outcome:
    """A request staff changed after the cycle read it: left as staff left it, taken up next cycle."""
    outcome = Outcome(request_id, "not_provisioned", reasons=(Reason("changed_during_cycle"),))
    outcome.comment_line = comment_line(now, run_id, outcome, 0)
    return outcome


def comment_line(now: str, run_id: str, o: Outcome, static_contexts: int) -> str:
    """The line this run writes on the request: no names, children by their position on the form."""
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


@dataclass(frozen=True)
class DueEmail:
    request_id: int
    when: str  # provisioned | kept_back: a template's send_when


def email_due(outcome: Mapping, past: list[tuple[str, str]]) -> str | None:
    """Which email a marked outcome row earns its parent, if any: `provisioned` once provisioned;
    `kept_back` when kept back for a reason the parent can put right, and not again while the
    reason stays the one of the request's last cycle (past: earlier cycles' (outcome, reason_key))."""
    if outcome["marked_outcome"] == "provisioned":
        return "provisioned"
    reason_is_new = not past or past[-1][1] != outcome["reason_key"]
    if set(outcome["reason_key"].split(",")) & PARENT_FIXABLE and reason_is_new:
        return "kept_back"
    return None


def awaiting_email(outcomes: Iterable[Mapping]) -> list[Mapping]:
    """This run's outcome rows `mark` applied whose parent this run has not emailed yet."""
    return [o for o in outcomes if o["marked_outcome"] and not o["parent_emailed"]]


def emails_due(
    awaiting: Iterable[Mapping], past: Mapping[int, list[tuple[str, str]]], chosen: Iterable[str]
) -> list[DueEmail]:
    """The emails this run owes parents (awaiting: see awaiting_email), for the templates chosen (send_when)."""
    chosen = set(chosen)
    due = []
    for o in awaiting:
        rid = int(o["request_id"])
        when = email_due(o, past.get(rid, []))
        if when in chosen:
            due.append(DueEmail(rid, when))
    return due
