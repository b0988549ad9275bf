"""Bad settings (tests/cycle/bad_input.py, SETTINGS), each given to a real run: `check` fails,
is not retried (an admin must act), says what to fix, and nothing is written anywhere."""

from __future__ import annotations

import json
import re

import pytest

from include.parent_provisioning.names import SETTINGS_VARIABLE
from tests.cycle.bad_input import PUPILS_CONTEXT, SETTINGS, BadSetting
from tests.cycle.school import snapshot, use_settings
from tests.reliability import record

VARIABLE_ENV = f"AIRFLOW_VAR_{SETTINGS_VARIABLE.upper()}"


def _shown(setting) -> str:
    if setting is None:
        return "(no Variable)"
    return setting if isinstance(setting, str) else json.dumps(setting, ensure_ascii=False)


def _as_anywhere(message: str, cfg) -> str:
    """The message without this test bed's own database and user names, so the record is stable."""
    for name, placeholder in ((cfg.moodle_db, "moodle"), (cfg.wp_db, "wordpress"), (cfg.moodle_user.name, "moodle")):
        message = message.replace(name, placeholder)
    return message


@pytest.mark.parametrize("case", SETTINGS, ids=lambda c: c.name)
def test_a_bad_setting_stops_the_run_in_check_and_nothing_is_written(
    school, fresh, run_cycle, capfd, monkeypatch, case: BadSetting
):
    kid = school.pupil("Di", "Fox", "7RB")
    school.request("di.fox@example.org", [("Di", "Fox", "7RB")])
    if case.setting is None:
        monkeypatch.delenv(VARIABLE_ENV)
    elif isinstance(case.setting, str):
        monkeypatch.setenv(VARIABLE_ENV, case.setting)
    else:
        given = json.loads(
            json.dumps(case.setting).replace(json.dumps(PUPILS_CONTEXT), str(school.context_of(kid)["id"]))
        )
        use_settings(fresh, **given)
    before = snapshot(fresh)
    capfd.readouterr()

    dr, states = run_cycle(retries=1)

    logs = capfd.readouterr().out
    assert (states["check"], states["collect"]) == ("failed", "upstream_failed"), states
    check = next(ti for ti in dr.get_task_instances() if ti.task_id == "check")
    assert check.try_number == 1  # not retried: only an admin can fix it
    message = re.findall(r"AirflowFailException: (.*)", logs)[-1].strip()
    assert case.says in message
    assert snapshot(fresh) == before
    record("bad_settings", case.name, _shown(case.setting), _as_anywhere(message, fresh.cfg))


def test_moodles_user_table_in_another_collation_stops_the_run_in_check_with_what_to_change(
    school, fresh, run_cycle, capfd
):
    school.pupil("Di", "Fox", "7RB")
    school.request("di.fox@example.org", [("Di", "Fox", "7RB")])
    school._moodle(
        "ALTER TABLE {user} MODIFY `lastname` VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        " NOT NULL DEFAULT ''"
    )
    before = snapshot(fresh)
    capfd.readouterr()

    dr, states = run_cycle(retries=1)

    assert (states["check"], states["collect"]) == ("failed", "upstream_failed"), states
    message = re.findall(r"AirflowFailException: (.*)", capfd.readouterr().out)[-1].strip()
    assert "compares lastname (utf8mb4_bin), not as utf8mb4_unicode_ci" in message
    assert "admin/cli/mysql_collation.php --collation=utf8mb4_unicode_ci" in message
    assert snapshot(fresh) == before
    record(
        "bad_settings",
        "Moodle's user table in another collation",
        "(Moodle) mdl_user.lastname COLLATE utf8mb4_bin",
        _as_anywhere(message, fresh.cfg),
    )
