"""Which pupil a named child is (include/parent_provisioning/matching.py): exactly one candidate
links; none, several, or one with a namesake never does. No database."""

from __future__ import annotations

from include.parent_provisioning.matching import Pupil, PupilIndex, named_as
from include.parent_provisioning.requests import Child

AMY = Pupil(101, "Amy", "Lee", "7RB")


def child(first="Amy", surname="Lee", group="7RB", position=1):
    return Child(position, first, surname, group)


def test_a_child_named_as_exactly_one_pupil_is_that_pupil():
    assert PupilIndex([AMY, Pupil(102, "Bob", "Lee", "7RB")], "name_and_tutor_group").match(child()) == (101, None)


def test_case_spacing_and_accents_do_not_tell_a_child_from_its_pupil():
    index = PupilIndex([Pupil(101, "Zoë", "Lee-Smith", "7RB")], "name_and_tutor_group")
    assert index.match(child(" zoe ", "LEE-SMITH", "7 rb")).pupil_id == 101


def test_a_tutor_group_typo_matches_no_pupil_and_says_which_child():
    match = PupilIndex([AMY], "name_and_tutor_group").match(child(group="7BR", position=2))
    assert match.pupil_id is None
    assert (match.reason.code, match.reason.position, match.reason.tutor_group) == ("child_not_found", 2, "7BR")


def test_under_name_only_a_tutor_group_typo_still_finds_the_pupil():
    assert PupilIndex([AMY], "name_only").match(child(group="7BR")).pupil_id == 101


def test_ambiguous_child_is_never_linked():
    match = PupilIndex([AMY, Pupil(102, "Amy", "Lee", "7RB")], "name_and_tutor_group").match(child())
    assert match.pupil_id is None and (match.reason.code, match.reason.count) == ("child_ambiguous", 2)


def test_two_pupils_differing_only_by_an_accent_make_the_child_ambiguous_not_guessed():
    index = PupilIndex([Pupil(101, "Zoe", "Lee", "7RB"), Pupil(102, "Zoë", "Lee", "7RB")], "name_and_tutor_group")
    assert index.match(child("Zoe")).reason.code == "child_ambiguous"


def test_a_suspended_or_non_pupil_account_of_the_same_name_means_the_child_is_never_linked():
    suspended_pupil, teacher = Pupil(7, "Amy", "Lee", "7RB"), Pupil(8, "Amy", "Lee", "7RB")
    for namesake in (suspended_pupil, teacher):
        match = PupilIndex([AMY], "name_and_tutor_group", [namesake]).match(child())
        assert match.pupil_id is None and (match.reason.code, match.reason.count) == ("child_namesake", 1)


def test_a_child_named_as_no_pupil_is_not_found_even_when_another_account_has_the_name():
    match = PupilIndex([], "name_and_tutor_group", [Pupil(7, "Amy", "Lee", "7RB")]).match(child())
    assert match.reason.code == "child_not_found"


def test_the_accounts_named_as_the_children_are_all_their_matches_look_at():
    """A chunk's surnames bring most of a big school: only the accounts with a child's name are kept."""
    pupils = [AMY, Pupil(102, "Amy", "Lee", "7RB"), Pupil(103, "Bob", "Lee", "7RB"), Pupil(104, "Cy", "Lee", "8X")]
    others = [Pupil(7, "Cy", "Lee", "8X"), Pupil(8, "Dee", "Lee", "9Y"), Pupil(9, "Zed", "Lee", "7RB")]
    children = [child(), child("Bob"), child("CY ", group="8x"), child("Dee", group="9Y"), child("Eve")]
    for match_by in ("name_and_tutor_group", "name_only"):
        keep = named_as(children, match_by)
        whole = PupilIndex(pupils, match_by, others)
        kept = PupilIndex([p for p in pupils if keep(p)], match_by, [p for p in others if keep(p)])
        assert [kept.match(c) for c in children] == [whole.match(c) for c in children]
        assert {p.id for p in pupils + others if keep(p)} == {101, 102, 103, 104, 7, 8}  # not Zed
    assert not named_as([child("Bob")], "name_and_tutor_group")(Pupil(5, "Bob", "Lee", "8X"))
    assert named_as([child("Bob")], "name_only")(Pupil(5, "Bob", "Lee", "8X"))
