"""Reading a request's children, and comparing names as the database does."""

from __future__ import annotations

from include.parent_provisioning.requests import from_row


def row(**children) -> dict:
    base = {"id": 1, "parent_email": "ann.lee@example.org", "child_fname": "Amy", "child_sname": "Lee"}
    return {**base, "child_tg": "7RB", **children}


def test_a_newline_in_a_tutor_group_cannot_start_a_comment_line():
    [child] = from_row(row(child_tg="7\nProvisioned")).children
    assert child.tutor_group == "7 Provisioned"


def test_runs_of_whitespace_in_a_childs_names_are_one_space():
    [child] = from_row(row(child_fname="\u00a0Mary  Ann\t", child_sname="Van  Dyke\n")).children
    assert (child.first_name, child.surname) == ("Mary Ann", "Van Dyke")
