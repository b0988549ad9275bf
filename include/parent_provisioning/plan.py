"""What the cycle decides for each request, as pure functions over plain records: whether its
data lets it be used, whose account the parent has, which pupil each child is, which links to
make. No database and no Airflow: `cycle.link` reads the inputs, calls `plan_requests`, and
applies the plan; the dry run shows the same plan. Fast unit tests (tests/unit/) cover every decision.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from include.parent_provisioning.matching import PupilIndex
from include.parent_provisioning.moodle_db import Account, Link
from include.parent_provisioning.reasons import Reason
from include.parent_provisioning.requests import Request, from_row, normalise_email

# A request with one of these cannot be provisioned whatever its children: they are not matched.
PARENT_UNUSABLE = ("invalid_email", "email_not_a_moodle_username", "no_auth_row", "account_other_auth")
# The email is no username at all: whether an auth row holds it does not matter.
_NOT_A_USERNAME = ("invalid_email", "email_not_a_moodle_username")

# The parent's account, as the plan finds it.
READY = "ready"  # an active account: links are made now
CREATED_BY_SYNC = "created_by_sync"  # dry run: none yet; Moodle's user sync will create it
REVIVED_BY_SYNC = "revived_by_sync"  # dry run: suspended; Moodle's user sync will revive it
MISSING = "missing"  # none, and the sync made none: account_missing
SUSPENDED = "suspended"  # suspended, and the sync left it so: account_suspended
NOT_CHECKED = "not_checked"  # the request's own data stops it first
USABLE = (READY, CREATED_BY_SYNC, REVIVED_BY_SYNC)
_ACCOUNT_REASONS = {MISSING: "account_missing", SUSPENDED: "account_suspended"}


def validate(
    rows: Iterable[dict],
    auth: Collection[str],
    accounts: Mapping[str, Account],
    match_by: str,
    extended_usernames: bool,
) -> list[Request]:
    """The requests as read (requests.from_row), with the problems only the other tables show: an
    email no auth row holds, or the username of an account Moodle authenticates another way."""
    requests = []
    for row in rows:
        request = from_row(row, match_by, extended_usernames)
        if request.email and request.email not in auth and not any(r.code in _NOT_A_USERNAME for r in request.reasons):
            request.reasons.append(Reason("no_auth_row"))
        account = accounts.get(request.email)
        if account is not None and account.auth != "db":
            request.reasons.append(Reason("account_other_auth", auth=account.auth))
        requests.append(request)
    return requests


def by_parent(requests: Iterable[tuple[int, str | None]], size: int) -> list[list[int]]:
    """Request ids (from (id, parent email) pairs) in chunks of at most `size`, or one parent's
    requests when they are more: each parent's requests in one chunk, parents in the order first met.
    Everything plans share across requests is one parent's (the account, its role assignments, the
    accounts Moodle's sync creates), so planning chunk by chunk decides what planning all at once does."""
    parents: dict[str, list[int]] = {}
    for request_id, email in requests:
        parents.setdefault(normalise_email(email), []).append(request_id)
    chunks: list[list[int]] = []
    chunk: list[int] = []
    for ids in parents.values():
        if chunk and len(chunk) + len(ids) > size:
            chunks.append(chunk)
            chunk = []
        chunk += ids
    if chunk:
        chunks.append(chunk)
    return chunks


def parent_unusable(request: Request) -> bool:
    return any(r.code in PARENT_UNUSABLE for r in request.reasons)


class ChildLink(NamedTuple):
    """A child linked (or, in a dry run, to be linked): its position on the form and its pupil.
    A tuple still, as the outcomes table stores it as a JSON pair."""

    position: int
    pupil: int


class WantedAssignment(NamedTuple):
    """A Parent-role assignment a plan needs; context None: a user context still to be made (dry run).
    A tuple still, as moodle_db.ensure_role_assignments and record_links compare it with (context, user) rows."""

    context: int | None
    parent: int


@dataclass(frozen=True, slots=True)
class ChildPlan:
    position: int  # on the form: 1, 2 or 3
    pupil_id: int | None  # the one pupil it is, or None with the reason
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class RequestPlan:
    request_id: int
    account: str  # READY, CREATED_BY_SYNC, ...
    parent_id: int | None  # the parent's account when it exists (None: none yet, or unusable)
    children: tuple[ChildPlan, ...]
    reasons: tuple[Reason, ...]  # every problem, the request's data first
    fingerprint: str = ""
    username: str = ""  # the parent's Moodle username (never in XCom or logs)

    @property
    def provisioned(self) -> bool:
        return self.account in USABLE and not self.reasons

    @property
    def links(self) -> tuple[ChildLink, ...]:
        if self.account not in USABLE:
            return ()
        return tuple(ChildLink(c.position, c.pupil_id) for c in self.children if c.pupil_id is not None)

    @property
    def reason_key(self) -> str:
        return ",".join(sorted({r.code for r in self.reasons}))[:255]


def _account_state(
    request: Request, account: Account | None, will_create: Collection[str], will_revive: Collection[int]
) -> str:
    if request.reasons:
        return NOT_CHECKED
    if account is None:
        return CREATED_BY_SYNC if request.email in will_create else MISSING
    if account.suspended:
        return REVIVED_BY_SYNC if account.id in will_revive else SUSPENDED
    return READY


def plan_request(
    request: Request,
    account: Account | None,
    index: PupilIndex,
    will_create: Collection[str] = (),
    will_revive: Collection[int] = (),
) -> RequestPlan:
    """One request's plan. A request whose parent is unusable is not matched at all; one with an
    incomplete child is, so that staff learn every problem at once, but nothing of it is linked
    until the request is whole. will_create / will_revive: usernames and account ids Moodle's
    user sync is predicted to create or revive (a dry run, which does not run it)."""
    state = _account_state(request, account, will_create, will_revive)
    reasons = list(request.reasons)
    if state in _ACCOUNT_REASONS:
        reasons.append(Reason(_ACCOUNT_REASONS[state]))
    children: list[ChildPlan] = []
    if not parent_unusable(request):
        own = account.id if account is not None else None
        for child in request.children:
            match = index.match(child, parent_id=own)
            children.append(ChildPlan(child.position, match.pupil_id, match.reason))
            if match.reason:
                reasons.append(match.reason)
    return RequestPlan(
        request_id=request.id,
        account=state,
        parent_id=account.id if account is not None and state in USABLE else None,
        children=tuple(children),
        reasons=tuple(reasons),
        fingerprint=request.fingerprint,
        username=request.email,
    )


def plan_requests(
    requests: Iterable[Request],
    accounts: Mapping[str, Account],
    index: PupilIndex,
    will_create: Collection[str] = (),
    will_revive: Collection[int] = (),
) -> list[RequestPlan]:
    return [plan_request(r, accounts.get(r.email), index, will_create, will_revive) for r in requests]


def children_to_link(plans: Iterable[RequestPlan]) -> set[int]:
    """The pupils whose user contexts the links need."""
    return {link.pupil for p in plans if p.parent_id is not None for link in p.links}


def wanted_assignments(
    plans: Iterable[RequestPlan], contexts: Mapping[int, int | None], static_context_ids: Iterable[int]
) -> set[WantedAssignment]:
    """Each Parent-role assignment the plans need, once: each linked child's user context
    (contexts: pupil id -> its user context) and each static context, for each usable parent."""
    statics = tuple(static_context_ids)
    wanted: set[WantedAssignment] = set()
    for p in plans:
        if p.parent_id is None:
            continue
        wanted.update(WantedAssignment(contexts[link.pupil], p.parent_id) for link in p.links)
        wanted.update(WantedAssignment(ctx, p.parent_id) for ctx in statics)
    return wanted


def new_links_for_new_accounts(plans: Iterable[RequestPlan], static_contexts: int) -> int:
    """A dry run's role assignments for accounts the sync will create: every one of them is new."""
    parents: dict[str, set[int]] = {}
    for p in plans:
        if p.account == CREATED_BY_SYNC:
            parents.setdefault(p.username, set()).update(link.pupil for link in p.links)
    return sum(len(kids) + static_contexts for kids in parents.values())


def describe(p: RequestPlan) -> dict:
    """One request's plan for the dry run's XCom and log: ids, codes and counts, no names."""
    return {
        "outcome": "provisioned" if p.provisioned else "not_provisioned",
        "account": p.account,
        "children": {c.position: c.pupil_id if c.pupil_id is not None else c.reason.code for c in p.children},
        "links": len(p.links),
        "reasons": p.reason_key,
    }


def ledger_links(
    plans: Iterable[RequestPlan], contexts: Mapping[int, int | None], static_context_ids: Iterable[int]
) -> list[Link]:
    """Each link a request justifies, for the ledger: its children's user contexts and each
    static context, once per request (a request naming one child twice holds one link)."""
    statics = tuple(static_context_ids)
    links: set[Link] = set()
    for p in plans:
        if p.parent_id is None:
            continue
        links.update(Link(p.request_id, p.parent_id, link.pupil, contexts[link.pupil]) for link in p.links)
        links.update(Link(p.request_id, p.parent_id, None, ctx) for ctx in statics)
    return sorted(links, key=lambda x: (x.request_id, x.context))
