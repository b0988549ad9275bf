"""What makes a row of an uploaded file invalid (management.row_problems): a pure check of its values,
before any database is asked whether the email already has an auth row."""

from __future__ import annotations

from include.parent_provisioning.management import CSV_COLUMNS, row_problems


def values(**given: str) -> dict[str, str]:
    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update({"Parent Title": "Mrs", "Parent First Name": "Ann", "Parent Surname": "Lee"})
    row.update({"Parent Email": "Ann.Lee@Example.org", "Child 1 First Name": "Amy", "Child 1 Surname": "Lee"})
    row["Child 1 Tutor Group"] = "7RB"
    return row | {k.replace("_", " "): v for k, v in given.items()}


def test_a_complete_row_with_a_usable_email_has_no_problem():
    assert row_problems(values()) == []


def test_the_email_must_be_a_usable_address_of_at_most_255_characters():
    assert row_problems(values(Parent_Email="ann.lee")) == ["Parent Email is not a usable address"]
    long = "a" * 250 + "@example.org"
    assert row_problems(values(Parent_Email=long)) == ["Parent Email is longer than 255 characters"]


def test_the_parent_needs_a_title_first_name_and_surname_each_within_its_column():
    assert row_problems(values(Parent_Title="")) == ["Parent Title is empty"]
    assert row_problems(values(Parent_Title="Professor Emeritus")) == ["Parent Title is longer than 12 characters"]


def test_the_first_child_is_needed_whole_and_a_later_child_whole_or_not_at_all():
    assert row_problems(values(Child_1_Tutor_Group="")) == ["Child 1 needs a first name, surname and tutor group"]
    assert row_problems(values(Child_2_First_Name="Ben")) == ["Child 2 is only partly filled in"]
    assert row_problems(values(Child_3_First_Name="Cy", Child_3_Surname="Lee", Child_3_Tutor_Group="9XY")) == []
    assert row_problems(values(Child_1_Tutor_Group="7" * 17)) == ["Child 1 Tutor Group is longer than 16 characters"]
