"""The settings Variable: defaults as the WordPress plugin behaved, and errors that name the key."""

from __future__ import annotations

import pytest

from include.parent_provisioning import moodle_cli
from include.parent_provisioning.settings import SettingsError, parse


def test_defaults_follow_the_wordpress_plugin():
    s = parse({"moodle_dir": "/var/www/moodle"})
    assert (s.php_path, s.wp_table_prefix, s.moodle_table_prefix, s.modifier_user_id) == (
        "/usr/bin/php",
        "wp_",
        "mdl_",
        2,
    )
    assert (s.parent_role, s.match_by, s.static_context_ids) == ("parent", "name_and_tutor_group", ())
    assert s.requests_table == "wp_tvs_parent_moodle_provisioning"


def test_the_mass_suspension_limits_default_to_50_accounts_or_5_percent_and_accept_0_and_1():
    s = parse({"moodle_dir": "/var/www/moodle"})
    assert (s.max_suspensions_per_cycle, s.max_suspension_fraction) == (50, 0.05)
    s = parse({"moodle_dir": "/m", "max_suspensions_per_cycle": 0, "max_suspension_fraction": 1})
    assert (s.max_suspensions_per_cycle, s.max_suspension_fraction) == (0, 1.0)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({}, "moodle_dir"),
        ({"moodle_dir": "/m", "moodle_dri": "/x"}, "moodle_dri"),
        ({"moodle_dir": "relative/path"}, "moodle_dir"),
        ({"moodle_dir": "/m; rm -rf /"}, "moodle_dir"),
        ({"moodle_dir": "/m", "php_path": "/usr/bin/php $(id)"}, "php_path"),
        ({"moodle_dir": "/m", "sudo_user": "www-data; id"}, "sudo_user"),
        ({"moodle_dir": "/m", "wp_table_prefix": "wp_`; DROP TABLE x; --"}, "wp_table_prefix"),
        ({"moodle_dir": "/m", "moodle_table_prefix": "mdl_ OR 1=1"}, "moodle_table_prefix"),
        # A trailing newline passes a `^...$` pattern; every pattern must match the whole value.
        ({"moodle_dir": "/var/www/moodle\n"}, "moodle_dir"),
        ({"moodle_dir": "/m", "wp_table_prefix": "wp_\n"}, "wp_table_prefix"),
        ({"moodle_dir": "/m", "sudo_user": "www-data\n"}, "sudo_user"),
        ({"moodle_dir": "/m", "parent_role": "parent\n"}, "parent_role"),
        ({"moodle_dir": "/m", "static_context_ids": "1,2"}, "static_context_ids"),
        ({"moodle_dir": "/m", "static_context_ids": [1, "x"]}, "static_context_ids"),
        ({"moodle_dir": "/m", "modifier_user_id": True}, "modifier_user_id"),
        ({"moodle_dir": "/m", "match_by": "surname"}, "match_by"),
        ({"moodle_dir": "/m", "pupil_filter": {"by": "auth", "value": "db"}}, "pupil_filter"),
        ({"moodle_dir": "/m", "pupil_filter": {"by": "email_domain", "value": "not a domain"}}, "pupil_filter"),
        ({"moodle_dir": "/m", "max_requests_per_cycle": 0}, "max_requests_per_cycle"),
        ({"moodle_dir": "/m", "max_requests_per_cycle": 10**30}, "max_requests_per_cycle"),  # beyond SQL's LIMIT
        ({"moodle_dir": "/m", "modifier_user_id": 2**63}, "modifier_user_id"),  # beyond a BIGINT id
        ({"moodle_dir": "/m", "moodle_task_timeout_s": "600"}, "moodle_task_timeout_s"),
        ({"moodle_dir": "/m", "max_suspensions_per_cycle": -1}, "max_suspensions_per_cycle"),
        ({"moodle_dir": "/m", "max_suspensions_per_cycle": 2.5}, "max_suspensions_per_cycle"),
        ({"moodle_dir": "/m", "max_suspension_fraction": 5}, "max_suspension_fraction"),
        ({"moodle_dir": "/m", "max_suspension_fraction": -0.1}, "max_suspension_fraction"),
        ({"moodle_dir": "/m", "max_suspension_fraction": "5%"}, "max_suspension_fraction"),
        ({"moodle_dir": "/m", "max_suspension_fraction": True}, "max_suspension_fraction"),
    ],
)
def test_a_bad_setting_is_refused_with_its_name(raw, key):
    with pytest.raises(SettingsError, match=f"setting '{key}'"):
        parse(raw)


def test_notify_emails_default_to_nobody_and_are_validated():
    assert parse({"moodle_dir": "/m"}).notify_emails == ()
    s = parse({"moodle_dir": "/m", "notify_emails": [" it@school.example", "ops@school.example", "it@school.example"]})
    assert s.notify_emails == ("it@school.example", "ops@school.example")
    for bad in ("it@school.example", ["not an address"], ["a@b.example; c@d.example"], [1]):
        with pytest.raises(SettingsError, match="setting 'notify_emails'"):
            parse({"moodle_dir": "/m", "notify_emails": bad})


def test_not_json_is_refused_clearly():
    with pytest.raises(SettingsError, match="not valid JSON"):
        parse("{moodle_dir: /m}")


def test_the_ssh_command_is_built_from_settings_only_and_quoted():
    s = parse({"moodle_dir": "/srv/moodle", "php_path": "/usr/bin/php8.3", "sudo_user": "www-data"})
    cmd = moodle_cli.command(s, moodle_cli.SYNC_USERS)
    assert cmd == (
        "if [ -f /srv/moodle/public/admin/cli/scheduled_task.php ]; then s=/srv/moodle/public/admin/cli/"
        "scheduled_task.php; else s=/srv/moodle/admin/cli/scheduled_task.php; fi; "
        "exec sudo -n -u www-data /usr/bin/php8.3 \"$s\" --execute='\\auth_db\\task\\sync_users'"
    )


@pytest.mark.parametrize(
    ("status", "lines", "message", "retryable"),
    [
        (0, ["Scheduled task failed: Synchronise users task (auth_db\\task\\sync_users),boom"], "failed task", True),
        (0, ["auth_db plugin is disabled, synchronisation stopped", "Scheduled task complete: x"], "disabled", False),
        (129, ["Cannot obtain cron lock"], "cron lock", True),
        (130, ["Cannot obtain task lock"], "task lock", True),
        (1, ["Cron is disabled. Use --force to override."], "cron is disabled", False),
        (1, ["Moodle upgrade pending, cannot manage tasks."], "upgrade pending", False),
        (1, ["Task '\\auth_db\\task\\sync_users' not found"], "does not know the task", False),
        (255, ["PHP Fatal error:  Allowed memory size"], "exited with 255", True),
        (0, ["Execute scheduled task: x"], "does not say the task completed", True),
        (-1, ["Execute scheduled task: x"], "SSH session to the Moodle server ended", True),
    ],
)
def test_moodle_output_is_read_not_only_the_exit_code(status, lines, message, retryable):
    run = moodle_cli.TaskRun(task=moodle_cli.SYNC_USERS, exit_status=status, lines=lines)
    with pytest.raises(moodle_cli.MoodleTaskError, match=f"(?i){message}") as exc:
        run.check()
    assert exc.value.retryable is retryable


def test_output_counts_and_redaction_keep_emails_out():
    run = moodle_cli.TaskRun(
        task=moodle_cli.SYNC_USERS,
        exit_status=0,
        lines=["User entries to add: 2", "  Inserted user a@example.org id 5", "  Error inserting user B@example.org"],
    )
    assert run.counts == {"created": 1, "refused": 1}
    assert moodle_cli.redact("Scheduled task failed: x,user a.b+c@example.org broke") == (
        "Scheduled task failed: x,user <email> broke"
    )
