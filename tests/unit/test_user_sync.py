"""The prediction of Moodle's user sync, on hand-made inputs: each rule of sync_users() it follows,
and the guard's limits. (Real runs against the Moodle double: tests/cycle/test_suspension_guard.py.)"""

from __future__ import annotations

from include.parent_provisioning.moodle_db import Account, AuthDbConfig
from include.parent_provisioning.settings import parse
from include.parent_provisioning.user_sync import config_warnings, differences, predict, what_moodle_did

KEEP, SUSPEND, DELETE = 0, 1, 2


def accounts(*names: str, suspended: tuple[str, ...] = ()) -> list[Account]:
    return [Account(i, n, "db", n in suspended) for i, n in enumerate(names, start=10)]


def counts(p) -> tuple[int, int, int, int]:
    return p.created, p.suspended, p.revived, p.refused


def test_missing_auth_rows_suspend_new_ones_create_and_returning_ones_revive():
    have = accounts("a@x.org", "b@x.org", "c@x.org", suspended=("c@x.org",))
    p = predict(["a@x.org", "c@x.org", "new@x.org"], have, SUSPEND, False)
    assert counts(p) == (1, 1, 1, 0)
    assert (p.accounts, p.auth_rows, p.removeuser) == (2, 3, "suspend")


def test_an_empty_auth_table_suspends_every_active_account_and_creates_nobody():
    have = accounts("a@x.org", "b@x.org", "c@x.org", suspended=("c@x.org",))
    assert counts(predict([], have, SUSPEND, False)) == (0, 2, 0, 0)


def test_with_keep_nothing_is_suspended_or_revived():
    have = accounts("a@x.org", "b@x.org", suspended=("b@x.org",))
    assert counts(predict(["b@x.org", "new@x.org"], have, KEEP, False)) == (1, 0, 0, 0)


def test_with_full_delete_every_missing_account_counts_even_a_suspended_one():
    have = accounts("a@x.org", "b@x.org", "c@x.org", suspended=("c@x.org",))
    p = predict(["a@x.org"], have, DELETE, False)
    assert counts(p) == (0, 2, 0, 0) and p.accounts == 3


def test_usernames_moodle_refuses_are_not_created():
    p = predict(["Capital@x.org", "plus+tag@x.org", " space@x.org", "ok@x.org"], [], SUSPEND, False)
    assert counts(p) == (1, 0, 0, 3)
    assert predict(["plus+tag@x.org"], [], SUSPEND, True).created == 1  # extendedusernamechars


def test_a_username_taken_by_another_auth_or_a_deleted_account_is_refused():
    p = predict(["teacher@x.org", "gone@x.org"], [], SUSPEND, False, taken=["Teacher@x.org", "gone@x.org"])
    assert counts(p) == (0, 0, 0, 2)


def test_a_username_twice_in_the_auth_table_makes_one_account():
    assert counts(predict(["a@x.org", "a@x.org"], [], SUSPEND, False)) == (1, 0, 0, 1)


def test_an_auth_row_differing_only_in_case_suspends_and_revives_the_same_account_net_nothing():
    # Moodle removes by exact comparison but revives by the database's: suspended, then revived.
    have = accounts("a@x.org")
    assert counts(predict(["A@x.org"], have, SUSPEND, False)) == (0, 0, 0, 0)
    # A suspended account comes back the same way, capitals or not.
    have = accounts("b@x.org", suspended=("b@x.org",))
    assert counts(predict(["B@x.org "], have, SUSPEND, False)) == (0, 0, 1, 0)


def test_the_limits_are_50_accounts_or_5_percent_whichever_is_smaller():
    s = parse({"moodle_dir": "/m"})
    many = accounts(*(f"p{n}@x.org" for n in range(2000)))
    keep = [a.username for a in many]
    assert predict(keep[:-50], many, SUSPEND, False).refusal(s) is None
    refusal = predict(keep[:-51], many, SUSPEND, False).refusal(s)
    assert "would suspend 51 of 2000 active parent accounts (3 %; limits: 50 accounts or 5 %)" in refusal
    assert "allow_mass_suspension=true" in refusal and "wp_tvs_parent_moodle_provisioning_auth" in refusal
    few = accounts(*(f"p{n}@x.org" for n in range(40)))
    assert predict([a.username for a in few][:-2], few, SUSPEND, False).refusal(s) is None  # 5 %: not over
    assert "3 of 40" in predict([a.username for a in few][:-3], few, SUSPEND, False).refusal(s)


def test_what_moodle_did_is_read_from_two_snapshots_and_differences_are_named():
    before = accounts("a@x.org", "b@x.org", "c@x.org", suspended=("c@x.org",))
    after = [Account(10, "a@x.org", "db", True), Account(12, "c@x.org", "db", False), Account(99, "n", "db", False)]
    done = what_moodle_did(before, after)
    assert done == {"created": 1, "suspended": 2, "revived": 1}  # b was deleted: it counts as suspended
    p = predict(["c@x.org", "n@x.org"], before, SUSPEND, False)
    assert counts(p) == (1, 2, 1, 0) and differences(p, done) == []
    [warning] = differences(p, {**done, "suspended": 5})
    assert "suspended 5 account(s) where 2 were predicted" in warning


def test_the_sync_has_work_when_it_would_create_suspend_or_revive_anything():
    none = predict(["a@x.org"], accounts("a@x.org"), SUSPEND, False)
    assert not none.has_work
    for usernames, accts in (
        (["a@x.org", "b@x.org"], accounts("a@x.org")),  # b created
        ([], accounts("a@x.org")),  # a suspended: de-provisioned, access ends
        (["a@x.org"], accounts("a@x.org", suspended=("a@x.org",))),  # a revived
    ):
        assert predict(usernames, accts, SUSPEND, False).has_work
    assert not predict([], accounts("a@x.org"), KEEP, False).has_work  # keep: nothing to do to a


def test_with_full_delete_a_suspended_account_whose_auth_row_is_there_stays_as_it_is():
    have = accounts("a@x.org", suspended=("a@x.org",))
    assert counts(predict(["a@x.org"], have, DELETE, False)) == (0, 0, 0, 0)


def test_an_auth_row_differing_only_in_accents_is_the_same_account_to_the_database():
    have = accounts("jose@x.org")
    assert counts(predict(["josé@x.org"], have, SUSPEND, False)) == (0, 0, 0, 0)  # suspended, then revived
    assert counts(predict(["josé@x.org"], have, KEEP, False)) == (0, 0, 0, 1)  # taken: not created
    # Two new auth rows the database finds equal make one account, even with extendedusernamechars.
    assert counts(predict(["josé@x.org", "jose@x.org"], [], SUSPEND, True)) == (1, 0, 0, 1)


def test_one_auth_row_revives_one_suspended_account_even_when_the_database_finds_two_equal():
    have = accounts("a@x.org", "A@x.org", suspended=("a@x.org", "A@x.org"))
    assert counts(predict(["a@x.org"], have, SUSPEND, False)) == (0, 0, 1, 0)


def test_auth_db_settings_unset_or_unreadable_mean_keep_and_values_are_trimmed():
    assert AuthDbConfig.from_settings({}) == AuthDbConfig(removeuser=0, fielduser="", table="")
    assert AuthDbConfig.from_settings({"removeuser": " 1 ", "fielduser": " email ", "table": None}) == AuthDbConfig(
        removeuser=1, fielduser="email", table=""
    )
    assert AuthDbConfig.from_settings({"removeuser": "suspend"}).removeuser == KEEP


def test_auth_db_reading_another_table_or_keeping_removed_parents_is_warned_about():
    table = "wp_tvs_parent_moodle_provisioning_auth"
    assert config_warnings(AuthDbConfig(SUSPEND, "email", f"`wordpress`.`{table.upper()}`"), table) == []
    assert config_warnings(AuthDbConfig(DELETE, "email", table), table) == []
    other, keep = config_warnings(AuthDbConfig(KEEP, "email", "wp_users"), table)
    assert "reads table 'wp_users', not `wp_tvs_parent_moodle_provisioning_auth`" in other
    assert "'removeuser' is 'keep'" in keep and "'Suspend internal'" in keep
