"""Reading a request's children, and comparing names as the database does."""

from __future__ import annotations

import pytest

from include.parent_provisioning.matching import Pupil, PupilIndex
from include.parent_provisioning.requests import fold, from_row
from testbed import mariadb


def row(**children) -> dict:
    base = {"id": 1, "parent_email": "ann.lee@example.org", "child_fname": "Amy", "child_sname": "Lee"}
    return {**base, "child_tg": "7RB", **children}


def test_a_newline_in_a_tutor_group_cannot_start_a_comment_line():
    [child] = from_row(row(child_tg="7\nProvisioned")).children
    assert child.tutor_group == "7 Provisioned"


def test_runs_of_whitespace_in_a_childs_names_are_one_space():
    [child] = from_row(row(child_fname="\u00a0Mary  Ann\t", child_sname="Van  Dyke\n")).children
    assert (child.first_name, child.surname) == ("Mary Ann", "Van Dyke")


# (a, b, whether they fold together): never where the database's collation holds them apart,
# since the database pre-filters the pupils and fold() has the last word.
PAIRS = [
    ("Zoë", "Zoe", True),
    ("Zoe\u0301", "Zoé", True),
    ("ΝΙΚΌΛΑΟΣ", "Νικόλαος", True),
    ("Алёна", "Алена", True),
    ("فَاطِمَة", "فاطمة", True),
    ("שָׁלוֹם", "שלום", True),
    ("Lee ", "Lee", True),
    ("अनन्या", "अननया", False),  # viramas: another name
    ("शर्मा", "शरमा", False),
    ("\u0301", "", False),  # a mark on nothing is not an empty name (the collation ignores it)
    ("O’Brien", "O'Brien", False),
    ("Ø", "O", False),
    ("Æsa", "Aesa", False),
]


@pytest.mark.parametrize(("a", "b", "folded_together"), PAIRS)
def test_names_fold_together_only_where_the_database_agrees(bed, a, b, folded_together):
    assert (fold(a) == fold(b)) is folded_together
    if folded_together:
        conn = mariadb.admin_connect(None)
        try:
            cur = conn.cursor()
            cur.execute("SELECT %s = %s COLLATE utf8mb4_unicode_ci", (a, b))
            assert cur.fetchone()[0] == 1
        finally:
            conn.close()


def test_another_spelling_of_the_only_candidate_is_not_matched():
    index = PupilIndex([Pupil(7, "अननया", "वर्मा", "9KM"), Pupil(8, "", "Thistlewood", "9KM")], "name_and_tutor_group")
    [ananya] = from_row(row(child_fname="अनन्या", child_sname="वर्मा", child_tg="9KM")).children
    [mark_only] = from_row(row(child_fname="\u0301", child_sname="Thistlewood", child_tg="9KM")).children
    assert index.match(ananya)[0] is None
    assert index.match(mark_only)[0] is None
