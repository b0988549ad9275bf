"""The parents' email templates: the built-in three, a school's own on top, every placeholder filled in,
and a wrong template refused with the key to fix."""

from __future__ import annotations

import json

import pytest

from include.parent_provisioning import parent_emails as pe

ROW = {"parent_title": "Dr", "parent_fname": "Ann", "parent_sname": "Lee", "parent_email": " Ann.Lee@Example.org ",
       "child_fname": "Amy", "child_sname": "Lee", "child2_fname": "Bo", "child2_sname": "Lee",
       "child3_fname": "", "child3_sname": None}  # fmt: skip


def test_the_three_plugin_templates_are_built_in_and_fill_every_placeholder():
    templates = pe.parse(None)
    assert list(templates) == ["forgotten_password", "details_not_on_file", "generic_fixed"]
    for t in templates.values():
        subject, body = pe.render(t, ROW, "https://moodle.school.test")
        assert "{{" not in subject + body and "Dear Dr Lee" in body
    _, body = pe.render(templates["generic_fixed"], ROW, "https://moodle.school.test")
    assert "Amy Lee and Bo Lee" in body and "ann.lee@example.org" in body and "https://moodle.school.test" in body


def test_a_schools_templates_replace_or_add_and_every_mistake_names_its_key():
    mine = pe.parse(json.dumps({"generic_fixed": {"subject": "Sorted, {{ parent_fname }}"}, "extra": {
        "name": "Extra", "subject": "S", "body": "{{children}}"}}))  # fmt: skip
    assert pe.render(mine["generic_fixed"], ROW, "")[0] == "Sorted, Ann"
    assert mine["generic_fixed"].body == pe.DEFAULTS["generic_fixed"].body and "extra" in mine
    for raw, said in [
        ("[1]", "must be a JSON object"),
        ('{"Bad Key": {}}', "lower-case letters"),
        ('{"x": {"name": "X", "subject": "S"}}', "needs a non-empty body"),
        ('{"x": {"name": "X", "subject": "a\\nb", "body": "b"}}', "must be one line"),
        ('{"x": {"name": "X", "subject": "S", "body": "{{password}}"}}', "{{password}}, which is not a placeholder"),
        ('{"x": {"name": "X", "subject": "S", "body": "b", "html": "<b>"}}', "must be an object with name"),
        ("{", "is not JSON"),
        ('{"generic_fixed": {"send_when": "nightly"}}', "send_when must be one of provisioned, kept_back"),
        (
            '{"generic_fixed": {"send_when": "provisioned"}, "forgotten_password": {"send_when": "provisioned"}}',
            "more than one template has send_when 'provisioned'",
        ),
    ]:
        with pytest.raises(pe.TemplateError, match=None) as info:
            pe.parse(raw)
        assert said in str(info.value), (raw, str(info.value))


def test_the_cycle_sends_nothing_unless_a_template_says_when():
    assert {t.send_when for t in pe.parse(None).values()} == {""}
    mine = pe.parse('{"generic_fixed": {"send_when": "provisioned"}}')
    assert mine["generic_fixed"].send_when == "provisioned"
