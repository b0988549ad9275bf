"""Which pupil is a named child. Exactly one candidate links; none or several never do.

Candidates are pupils only (see PupilFilter), active, and never an account this project
created. Names compare without regard to case, accents or spacing, so two pupils who
differ only by an accent are both candidates and the child is ambiguous, not guessed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from include.parent_provisioning.reasons import Reason
from include.parent_provisioning.requests import Child, fold, fold_group


@dataclass(frozen=True)
class Pupil:
    id: int
    first_name: str
    surname: str
    tutor_group: str


class PupilIndex:
    def __init__(self, pupils: Iterable[Pupil], match_by: str):
        self.match_by = match_by
        self._index: dict[tuple, set[int]] = defaultdict(set)
        for pupil in pupils:
            self._index[self._key(pupil.first_name, pupil.surname, pupil.tutor_group)].add(pupil.id)

    def _key(self, first: str, surname: str, group: str) -> tuple:
        if self.match_by == "name_only":
            return fold(first), fold(surname)
        return fold(first), fold(surname), fold_group(group)

    def match(self, child: Child) -> tuple[int | None, Reason | None]:
        """(pupil id, None) for exactly one match, else (None, the reason)."""
        ids = self._index.get(self._key(child.first_name, child.surname, child.tutor_group), set())
        if len(ids) == 1:
            return next(iter(ids)), None
        if not ids:
            return None, Reason("child_not_found", position=child.position, tutor_group=child.tutor_group)
        return None, Reason("child_ambiguous", position=child.position, tutor_group=child.tutor_group, count=len(ids))
