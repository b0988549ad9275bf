"""Which pupil a named child is (include/parent_provisioning/matching.py): exactly one candidate
links; none, several, or one with a namesake never does. No database."""

from __future__ import annotations

from include.parent_provisioning.matching import Pupil, PupilIndex
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
