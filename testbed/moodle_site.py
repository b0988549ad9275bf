"""The Moodle server's files in the test bed: a code root with config.php and the CLI
script, a dataroot, and `bin/php`, which runs the Moodle double instead of PHP.

Production layout is kept: the cycle runs `PHP MOODLE_DIR/admin/cli/scheduled_task.php`
(or `MOODLE_DIR/public/admin/cli/...` on 5.1's layout) over SSH.
"""

from __future__ import annotations

import fcntl
import json
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path

from testbed.config import PROJECT_ROOT, TestBedConfig
from testbed.mariadb import MOODLE_VERSION
from testbed.moodle_double.tasks import EMAILS_FILE, FAULTS_FILE

SYNC_USERS = "\\auth_db\\task\\sync_users"
SEND_PASSWORDS = "\\core\\task\\send_new_user_passwords_task"


def lay_out(cfg: TestBedConfig, layout: str = "classic", lock_wait_s: float = 2) -> Path:
    """Write the code root. layout 'public' is Moodle 5.1's (code under public/)."""
    root = cfg.moodle_dir
    code = root / "public" if layout == "public" else root
    for stale in (root / "admin", root / "public"):
        if stale.exists():
            import shutil

            shutil.rmtree(stale)
    (code / "admin" / "cli").mkdir(parents=True, exist_ok=True)
    cfg.moodledata.mkdir(parents=True, exist_ok=True)
    (code / "admin" / "cli" / "scheduled_task.php").write_text(
        "<?php\n// Test bed: bin/php runs testbed/moodle_double for this script.\n"
    )
    (code / "version.php").write_text(
        f"<?php\ndefined('MOODLE_INTERNAL') || die();\n$version = {MOODLE_VERSION};\n$release = '5.1';\n"
    )
    (root / "config.php").write_text(
        "<?php  // Moodle configuration file (test bed)\n"
        "unset($CFG);\nglobal $CFG;\n$CFG = new stdClass();\n"
        "$CFG->dbtype    = 'mariadb';\n$CFG->dblibrary = 'native';\n"
        f"$CFG->dbhost    = '{cfg.db_host}';\n"
        f"$CFG->dbname    = '{cfg.moodle_db}';\n"
        f"$CFG->dbuser    = '{cfg.moodle_app_user.name}';\n"
        f"$CFG->dbpass    = '{cfg.moodle_app_user.password}';\n"
        f"$CFG->prefix    = '{cfg.moodle_prefix}';\n"
        f"$CFG->dboptions = array('dbpersist' => 0, 'dbport' => '{cfg.db_port}', 'dbsocket' => '');\n"
        "$CFG->wwwroot   = 'https://moodle.school.test';\n"
        f"$CFG->dataroot  = '{cfg.moodledata}';\n"
        "$CFG->admin     = 'admin';\n"
        "$CFG->directorypermissions = 0777;\n"
        "// Test double only: how long to wait for a cron or task lock (Moodle waits 10 s).\n"
        f"$CFG->double_lock_wait = {int(lock_wait_s)};\n"
        "require_once(__DIR__ . '/lib/setup.php');\n"
    )
    php = cfg.php_path
    php.parent.mkdir(parents=True, exist_ok=True)
    php.write_text(
        "#!/bin/sh\n# Test bed stand-in for /usr/bin/php: runs the Moodle double.\n"
        f"PYTHONPATH={shlex.quote(str(PROJECT_ROOT))} exec {shlex.quote(sys.executable)} "
        '-m testbed.moodle_double "$@"\n'
    )
    php.chmod(0o755)
    return code / "admin" / "cli" / "scheduled_task.php"


def command(cfg: TestBedConfig, task: str, layout: str = "classic", extra: str = "") -> str:
    """The command line the cycle sends over SSH (built here from test bed paths only)."""
    code = cfg.moodle_dir / "public" if layout == "public" else cfg.moodle_dir
    script = code / "admin" / "cli" / "scheduled_task.php"
    php, script = shlex.quote(str(cfg.php_path)), shlex.quote(str(script))
    return f"{php} {script} --execute={shlex.quote(task)} {extra}".strip()


def set_fault(cfg: TestBedConfig, task: str, **spec) -> None:
    """Switch on a failure: throw='message', hang=seconds, crash_after=N, email_fail=True,
    not_installed=True (the CLI does not know the task: exit 1); times=N makes it last N runs."""
    path = cfg.moodledata / FAULTS_FILE
    faults = json.loads(path.read_text()) if path.exists() else {}
    faults[task] = spec
    path.write_text(json.dumps(faults))


def clear_faults(cfg: TestBedConfig) -> None:
    (cfg.moodledata / FAULTS_FILE).unlink(missing_ok=True)


def sent_emails(cfg: TestBedConfig) -> list[dict]:
    path = cfg.moodledata / EMAILS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def reset_dataroot(cfg: TestBedConfig) -> None:
    clear_faults(cfg)
    (cfg.moodledata / EMAILS_FILE).unlink(missing_ok=True)


@contextmanager
def hold_lock(cfg: TestBedConfig, name: str):
    """Hold Moodle's cron lock ('core_cron') or a task's lock, as a running cron would."""
    lockdir = cfg.moodledata / "lock"
    lockdir.mkdir(parents=True, exist_ok=True)
    path = lockdir / (name.strip("\\").replace("\\", "_") + ".lock")
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
