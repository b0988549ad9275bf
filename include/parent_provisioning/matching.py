"""Which pupil is a named child. Exactly one candidate links; none or several never do.

Candidates are pupils only (see PupilFilter), active, and never an account this project
created. Names compare without regard to case, accents or spacing, so two pupils who
differ only by an accent are both candidates and the child is ambiguous, not guessed.

The only candidate is still a guess when another account that is not a candidate (a
suspended pupil, a member of staff, a parent, an account outside the pupil filter) has the
same name (and tutor group, under `name_and_tutor_group`): the real child may be that
account, so the child is refused (`child_namesake`) rather than linked to its namesake. The
requesting parent's own account is no namesake of their child (a father and son of one name).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from include.parent_provisioning.reasons import Reason
from include.parent_provisioning.requests import Child, fold, fold_group


@dataclass(frozen=True, slots=True)
class Pupil:
    id: int
    first_name: str
    surname: str
    tutor_group: str


def name_key(match_by: str, first: str, surname: str, group: str, names=fold, groups=fold_group) -> tuple:
    """What matching compares: the folded names, and the tutor group under name_and_tutor_group
    (names, groups: the folding, cached by named_as)."""
    if match_by == "name_only":
        return names(first), names(surname)
    return names(first), names(surname), groups(group)


def named_as(children: Iterable[Child], match_by: str) -> Callable[[Pupil], bool]:
    """Whether an account has the name (and group) of one of these children: the only accounts their
    matches look at, candidates and namesakes alike. A few thousand requests' surnames bring most of a
    big school's accounts (or a trust's); this keeps the few that count. Each name is folded once."""
    wanted = {name_key(match_by, c.first_name, c.surname, c.tutor_group) for c in children}
    names, groups = functools.cache(fold), functools.cache(fold_group)
    return lambda p: name_key(match_by, p.first_name, p.surname, p.tutor_group, names, groups) in wanted


class Match(NamedTuple):
    """The one pupil a child is, or None with the reason it is none."""

    pupil_id: int | None
    reason: Reason | None


class PupilIndex:
    """pupils: the candidates; others: every other not-deleted account with one of their surnames."""

    def __init__(self, pupils: Iterable[Pupil], match_by: str, others: Iterable[Pupil] = ()):
        self.match_by = match_by
        self.pupils = {pupil.id: pupil for pupil in pupils}
        self._index: dict[tuple, set[int]] = defaultdict(set)
        self._others: dict[tuple, set[int]] = defaultdict(set)
        for pupil in self.pupils.values():
            self._index[self._key(pupil.first_name, pupil.surname, pupil.tutor_group)].add(pupil.id)
        for other in others:
            self._others[self._key(other.first_name, other.surname, other.tutor_group)].add(other.id)

    def _key(self, first: str, surname: str, group: str) -> tuple:
        return name_key(self.match_by, first, surname, group)

    def match(self, child: Child, parent_id: int | None = None) -> Match:
        """The pupil for exactly one match and no namesake, else None and the reason.
        parent_id: the requesting parent's own account, which is never the child's namesake."""
        key = self._key(child.first_name, child.surname, child.tutor_group)
        ids = self._index.get(key, set())
        where = {"position": child.position, "tutor_group": child.tutor_group}
        if not ids:
            return Match(None, Reason("child_not_found", **where))
        if len(ids) > 1:
            return Match(None, Reason("child_ambiguous", **where, count=len(ids)))
        namesakes = self._others.get(key, set()) - {parent_id}
        if namesakes:
            return Match(None, Reason("child_namesake", **where, count=len(namesakes)))
        return Match(next(iter(ids)), None)
