"""The SSH key's forced command on the Moodle server lets through exactly the two commands the
project sends, runs them itself, and refuses everything else."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from include.parent_provisioning import moodle_cli
from include.parent_provisioning.settings import parse

SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "moodle-forced-command.sh"
TASKS = (moodle_cli.SYNC_USERS, moodle_cli.SEND_PASSWORDS)


@pytest.fixture
def server(tmp_path):
    """A Moodle code root, and `php` and `sudo` stand-ins that print how they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("php", "sudo"):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*"\n')
        stub.chmod(0o755)
    moodle = tmp_path / "moodle"
    (moodle / "admin" / "cli").mkdir(parents=True)
    (moodle / "admin" / "cli" / "scheduled_task.php").write_text("<?php\n")
    return tmp_path


def forced(server: Path, asked: str | None, *args: str):
    env = {"PATH": f"{server / 'bin'}:{os.environ['PATH']}"}
    if asked is not None:
        env["SSH_ORIGINAL_COMMAND"] = asked
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False)


def sent(server: Path, task: str, sudo_user: str | None = None) -> str:
    """The command line the project really sends over SSH for these settings."""
    raw = {"moodle_dir": str(server / "moodle"), "php_path": str(server / "bin" / "php")}
    if sudo_user:
        raw["sudo_user"] = sudo_user
    return moodle_cli.command(parse(raw), task)


@pytest.mark.parametrize("task", TASKS)
def test_the_projects_commands_run_the_task_through_sudo(server, task):
    result = forced(server, sent(server, task, "www-data"), str(server / "moodle"), str(server / "bin/php"), "www-data")
    assert result.returncode == 0, result.stderr
    script = server / "moodle" / "admin" / "cli" / "scheduled_task.php"
    assert result.stdout.strip() == f"sudo -n -u www-data {server}/bin/php {script} --execute={task}"


def test_without_sudo_and_on_moodle_51s_public_layout(server):
    public = server / "moodle" / "public" / "admin" / "cli"
    public.mkdir(parents=True)
    (public / "scheduled_task.php").write_text("<?php\n")
    result = forced(server, sent(server, moodle_cli.SYNC_USERS), str(server / "moodle") + "/", str(server / "bin/php"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"php {public}/scheduled_task.php --execute={moodle_cli.SYNC_USERS}"


@pytest.mark.parametrize(
    "asked",
    [
        None,  # an interactive login
        "",
        "ls -la",
        "SYNC; rm -rf /",
        "SYNC\nid",
        "SYNC $(id)",
        "OTHER_TASK",
        "OTHER_DIR",
    ],
)
def test_anything_else_is_refused_and_nothing_runs(server, asked):
    sync = sent(server, moodle_cli.SYNC_USERS, "www-data")
    if asked is not None:
        asked = (
            asked.replace("SYNC", sync)
            .replace("OTHER_TASK", sync.replace("auth_db\\task\\sync_users", "core\\task\\backup_cleanup_task"))
            .replace("OTHER_DIR", sync.replace(f"{server}/moodle", "/srv/other"))
        )
    result = forced(server, asked, str(server / "moodle"), str(server / "bin/php"), "www-data")
    assert result.returncode == 126
    assert "refused" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args", [(), ("relative/moodle", "/usr/bin/php"), ("/m", "/usr/bin/php; id"), ("/m", "/usr/bin/php", "root;id")]
)
def test_a_wrong_installation_line_refuses_everything(server, args):
    result = forced(server, sent(server, moodle_cli.SYNC_USERS), *args)
    assert result.returncode == 126 and result.stdout == ""


def test_a_task_is_stopped_on_the_server_after_its_time_even_with_nobody_waiting(server):
    import time

    slow = server / "bin" / "php"
    slow.write_text('#!/bin/sh\nsleep 20\necho "finished"\n')
    started = time.monotonic()
    result = forced(server, sent(server, moodle_cli.SYNC_USERS), "--max-seconds=1", str(server / "moodle"), str(slow))
    assert result.returncode == 124 and "finished" not in result.stdout  # timeout's own status: stopped
    assert time.monotonic() - started < 10
    for bad in ("--max-seconds=0", "--max-seconds=1;id", "--max-seconds="):
        refused = forced(server, sent(server, moodle_cli.SYNC_USERS), bad, str(server / "moodle"), str(slow))
        assert refused.returncode == 126 and refused.stdout == "", bad
