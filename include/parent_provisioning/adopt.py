"""Adopting the WordPress plugin's links, as a pure decision: which Parent-role assignments found
in Moodle a provisioned request justifies (recorded into the ledger as adopted, and so removable
like the links the cycle makes) and which none does (listed for staff; never deleted)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import NamedTuple

from include.parent_provisioning.moodle_db import Assignment, Link
from include.parent_provisioning.plan import RequestPlan


class Adoption(NamedTuple):
    links: list[Link]  # the ledger rows to write, as adopted
    unjustified: list[Assignment]  # the assignments no provisioned request justifies


def decide(found: Iterable[Assignment], plans: Iterable[RequestPlan], statics: Collection[int]) -> Adoption:
    """A child's assignment is justified by each request of that parent whose plan matches the child;
    a static context's by each request of that parent the plan can use, while the context is in the settings."""
    by_child: dict[tuple[int, int], set[int]] = {}
    by_parent: dict[int, set[int]] = {}
    for p in plans:
        if p.parent_id is None:
            continue
        by_parent.setdefault(p.parent_id, set()).add(p.request_id)
        for _, pupil in p.links:
            by_child.setdefault((p.parent_id, pupil), set()).add(p.request_id)
    links: list[Link] = []
    unjustified: list[Assignment] = []
    for a in found:
        if a.child is not None:
            requests = by_child.get((a.parent, a.child), set())
        else:
            requests = by_parent.get(a.parent, set()) if a.context in statics else set()
        if requests:
            links += [Link(rid, a.parent, a.child, a.context) for rid in sorted(requests)]
        else:
            unjustified.append(a)
    return Adoption(links, unjustified)
