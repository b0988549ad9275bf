"""Which links the cycle takes away, as pure functions over plain records (no database, no
Airflow): `cycle.unlink` reads the ledger and the requests, calls `decide`, and applies it.

A link is one Parent-role assignment in Moodle. The ledger holds, for each request, the links it
justifies. A ledger row stops justifying its link when
- its request is gone from the approved and provisioned ones (rejected, duplicate, bogus, unknown,
  back to pending, deleted): `request_<status>` / `request_deleted`;
- this cycle planned its request again (staff corrected or re-approved it) and the plan does not
  name that child any more (`child_changed`), or names another parent account (`parent_changed`),
  or can use no parent account at all (`request_unusable`);
- its static context is no longer in the settings (`static_context_unset`);
- its child is no longer a pupil (`child_left`), only when the `unlink_leavers` setting is on.
The link is deleted when no row justifies it any more and the project made it (or adopted it from
the WordPress plugin); a link someone made by hand ("found") is released from the ledger, never
deleted. While another request's row still justifies it, it stays, and so do the other rows.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from include.parent_provisioning.moodle_db import LedgerRow

LIVE = ("approved", "provisioned")
DELETABLE = ("made", "adopted")  # origins whose role assignment this project may delete
GONE = "removed_in_moodle"  # someone (or Moodle's delete_user) removed it: the ledger row is closed

# Why a ledger row's link ended, in words for staff (the request screen) and the runbook.
REASONS = {
    "request_rejected": "the request was rejected",
    "request_duplicate": "the request was marked duplicate",
    "request_bogus": "the request was marked bogus",
    "request_unknown": "the request was marked unknown",
    "request_pending": "the request was sent back to pending",
    "request_deleting": "the request is being deleted",
    "request_deleted": "the request no longer exists",
    "child_changed": "the request, corrected or re-approved, no longer names this child",
    "parent_changed": "the request, corrected, names another parent account",
    "request_unusable": "the request, re-approved, can use no parent account (see its reasons)",
    "static_context_unset": "the context is no longer in the static_context_ids setting",
    "child_left": "the child is no longer a pupil (unlink_leavers is on)",
    GONE: "the role assignment was removed in Moodle",
}


@dataclass(frozen=True, slots=True)
class Replan:
    """What this cycle's link_children planned for a request it took, still as staff left it."""

    parent: int | None  # the parent account it linked (None: none usable)
    pupils: frozenset[int]  # the pupils it names and matched


@dataclass(frozen=True, slots=True)
class Removal:
    ledger_id: int
    ra_id: int
    parent: int
    reason: str
    delete: bool  # True: the role assignment is deleted; False: the ledger row only is closed


@dataclass
class Decision:
    removals: list[Removal] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # ledger rows no longer justifying a link another row holds
    leavers: list[LedgerRow] = field(default_factory=list)  # links to a child no longer a pupil
    parents_without_child: dict[int, list[int]] = field(default_factory=dict)  # parent: live request ids

    @property
    def deletions(self) -> list[int]:
        """The role assignments this decision deletes."""
        return sorted({r.ra_id for r in self.removals if r.delete})

    def counts(self) -> dict[str, int]:
        by_reason: dict[str, int] = {}
        for r in self.removals:
            if r.delete:
                by_reason[r.reason] = by_reason.get(r.reason, 0) + 1
        return dict(sorted(by_reason.items()))


def reason(
    row: LedgerRow,
    statuses: Mapping[int, str],
    replans: Mapping[int, Replan],
    statics: Collection[int],
    unlink_leavers: bool,
) -> str | None:
    """Why this ledger row no longer justifies its link; None while it does."""
    status = statuses.get(row.request_id)
    if status is None:
        return "request_deleted"
    if status not in LIVE:
        return f"request_{status}"
    plan = replans.get(row.request_id)
    if plan is not None and plan.parent != row.parent:
        return "request_unusable" if plan.parent is None else "parent_changed"
    if row.child is None:
        return None if row.context in statics else "static_context_unset"
    if not row.child_is_pupil:
        return "child_left" if unlink_leavers else None
    if plan is not None and row.child not in plan.pupils:
        return "child_changed"
    return None


def decide(
    rows: Iterable[LedgerRow],
    statuses: Mapping[int, str],
    replans: Mapping[int, Replan],
    statics: Collection[int],
    unlink_leavers: bool,
) -> Decision:
    """statuses: each ledger request's status now (absent: deleted). replans: the requests this
    cycle planned. statics: the static_context_ids setting."""
    decision = Decision()
    by_ra: dict[int, list[LedgerRow]] = {}
    for row in rows:
        by_ra.setdefault(row.ra_id, []).append(row)
    kept: list[LedgerRow] = []
    for ra_id, held in sorted(by_ra.items()):
        if not any(r.present for r in held):
            decision.removals += [Removal(r.id, ra_id, r.parent, GONE, False) for r in held]
            continue
        why = {r.id: reason(r, statuses, replans, statics, unlink_leavers) for r in held}
        if any(w is None for w in why.values()):
            decision.held += [r.id for r in held if why[r.id] is not None]
            kept += held
            continue
        delete = any(r.origin in DELETABLE for r in held)
        decision.removals += [Removal(r.id, ra_id, r.parent, str(why[r.id]), delete) for r in held]
    removed = {r.ledger_id for r in decision.removals}
    present = [r for rows_ in by_ra.values() for r in rows_ if r.present]
    decision.leavers = [r for r in present if r.child is not None and not r.child_is_pupil]
    # Parents who had a link to a child who left and have none to a current pupil after this cycle.
    with_leaver = {r.parent for r in decision.leavers}
    current = {r.parent for r in kept if r.child is not None and r.child_is_pupil and r.id not in removed}
    for parent in sorted(with_leaver - current):
        ids = sorted({r.request_id for r in present if r.parent == parent and statuses.get(r.request_id) in LIVE})
        decision.parents_without_child[parent] = ids
    return decision


@dataclass
class Tally:
    """`decide`'s decisions over batches of the ledger, merged into what one decision over the whole
    ledger says, when each batch holds all the rows of its parents (as a role assignment is one
    parent's, so are all its rows): every removal, the counts, and the first `listed` leavers and
    parents without a current child, in decide's order."""

    listed: int
    rows: int = 0  # ledger rows judged
    removals: list[Removal] = field(default_factory=list)
    held: int = 0
    leavers: int = 0
    first_leavers: list[tuple[tuple[int, int], LedgerRow]] = field(default_factory=list)
    parents_without_child: dict[int, list[int]] = field(default_factory=dict)

    def add(self, rows: Sequence[LedgerRow], decision: Decision) -> None:
        self.rows += len(rows)
        self.removals += decision.removals
        self.held += len(decision.held)
        self.leavers += len(decision.leavers)
        # decide lists a leaver by its role assignment's first ledger row, then by its own
        first: dict[int, int] = {}
        for r in rows:
            first[r.ra_id] = min(first.get(r.ra_id, r.id), r.id)
        keyed = [((first[r.ra_id], r.id), r) for r in decision.leavers]
        self.first_leavers = heapq.nsmallest(self.listed, self.first_leavers + keyed, key=lambda x: x[0])
        merged = sorted({**self.parents_without_child, **decision.parents_without_child}.items())
        self.parents_without_child = dict(merged[: self.listed])

    @property
    def listed_leavers(self) -> list[LedgerRow]:
        return [r for _, r in self.first_leavers]

    @property
    def deletions(self) -> list[int]:
        return Decision(removals=self.removals).deletions

    def counts(self) -> dict[str, int]:
        return Decision(removals=self.removals).counts()


def replans_from_outcomes(outcomes: Iterable[Mapping], current: Mapping[int, str]) -> dict[int, Replan]:
    """This run's planned requests from its outcomes: only those link_children planned and
    still as it read them (current: each request's digest now, as `fingerprint_sql` with
    provisioned_as_approved). A request staff changed since is judged on its ledger rows alone."""
    found: dict[int, Replan] = {}
    for o in outcomes:
        rid = int(o["request_id"])
        if o["outcome"] not in ("provisioned", "not_provisioned") or o["reason_key"] == "changed_during_cycle":
            continue
        if not o.get("fingerprint") or current.get(rid) != o["fingerprint"]:
            continue
        parent = o["parent_userid"]
        pupils = frozenset(int(pupil) for _, pupil in o["linked_children"])
        found[rid] = Replan(None if parent is None else int(parent), pupils)
    return found
