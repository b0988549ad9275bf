"""Running Moodle's scheduled tasks over SSH, and reading what they really did.

The CLI's exit code lies: a task that throws still exits 0 after printing
`Scheduled task failed: ...`, and a disabled auth_db plugin "succeeds" having synced
nothing. So success is read from the output. The command line is built from validated
settings only; nothing from a request ever reaches it. Moodle's output names users by
their username (an email), so it is never logged as it is: only counts and redacted lines.
"""

from __future__ import annotations

import re
import shlex
import time
from collections import Counter
from dataclasses import dataclass, field

from include.parent_provisioning.settings import Settings

SYNC_USERS = "\\auth_db\\task\\sync_users"
SEND_PASSWORDS = "\\core\\task\\send_new_user_passwords_task"
NO_EXIT_STATUS = -1  # paramiko's exit status when the channel closed without one
_EMAIL = re.compile(r"[^\s,;'\"()<>]+@[^\s,;'\"()<>]+")


class MoodleTaskError(RuntimeError):
    """The task did not do its work. `retryable` says whether trying again can help."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def redact(line: str) -> str:
    return _EMAIL.sub("<email>", line)


def command(s: Settings, task: str) -> str:
    """One shell command: finds the CLI script in either layout (5.1 keeps it under public/)."""
    base = s.moodle_dir.rstrip("/")
    classic = shlex.quote(f"{base}/admin/cli/scheduled_task.php")
    public = shlex.quote(f"{base}/public/admin/cli/scheduled_task.php")
    runner = shlex.quote(s.php_path)
    if s.sudo_user:
        runner = f"sudo -n -u {shlex.quote(s.sudo_user)} {runner}"
    return (
        f'if [ -f {public} ]; then s={public}; else s={classic}; fi; exec {runner} "$s" --execute={shlex.quote(task)}'
    )


@dataclass
class TaskRun:
    task: str
    exit_status: int
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        kinds = Counter()
        for line in self.lines:
            text = line.strip()
            for prefix, kind in (
                ("Inserted user ", "created"),
                ("Suspended user ", "suspended"),
                ("Revived user ", "revived"),
                ("Deleted user ", "deleted"),
                ("Error inserting user ", "refused"),
                ("Could not create and mail new user password", "mail_failed"),
            ):
                if text.startswith(prefix):
                    kinds[kind] += 1
        return dict(kinds)

    def check(self) -> None:
        """Raise MoodleTaskError unless the output shows the task completed and did its work."""
        last = next((ln for ln in reversed(self.lines) if ln.startswith("Scheduled task ")), "")
        joined = "\n".join(self.lines)
        if self.exit_status == NO_EXIT_STATUS:
            raise MoodleTaskError(
                f"the SSH session to the Moodle server ended before Moodle's task did (no exit status): the "
                f"connection was lost or sshd stopped; {self.task} may still be running there and hold its lock; "
                "retrying",
                retryable=True,
            )
        if self.exit_status in (129, 130):
            which = "cron" if self.exit_status == 129 else "task"
            raise MoodleTaskError(
                f"Moodle could not obtain the {which} lock (exit {self.exit_status}): another cron run holds it;"
                " retrying",
                retryable=True,
            )
        if self.exit_status == 1 and "Cron is disabled" in joined:
            raise MoodleTaskError(
                "Moodle's cron is disabled (Site administration > Server > Tasks): enable it, then re-run",
                retryable=False,
            )
        if self.exit_status == 1 and "upgrade pending" in joined:
            raise MoodleTaskError("Moodle has an upgrade pending: finish the upgrade, then re-run", retryable=False)
        if self.exit_status == 1 and "not found" in joined:
            raise MoodleTaskError(
                f"Moodle does not know the task {self.task}: is 'moodle_dir' right and the plugin installed?",
                retryable=False,
            )
        if self.exit_status != 0:
            tail = redact(self.lines[-1]) if self.lines else "no output"
            raise MoodleTaskError(f"Moodle CLI exited with {self.exit_status}: {tail}", retryable=True)
        if "auth_db plugin is disabled" in joined:
            raise MoodleTaskError(
                "Moodle's External database authentication (auth_db) is disabled, so the sync "
                "created nobody: enable it under Site administration > Plugins > "
                "Authentication",
                retryable=False,
            )
        if last.startswith("Scheduled task failed:"):
            raise MoodleTaskError(f"Moodle reported a failed task (exit status 0): {redact(last)}", retryable=True)
        if not last.startswith("Scheduled task complete:"):
            raise MoodleTaskError("Moodle's output does not say the task completed", retryable=True)


def run_task(hook, s: Settings, task: str) -> TaskRun:
    """Run one Moodle task over one SSH session, with a wall-clock limit."""
    started = time.monotonic()
    deadline = started + s.moodle_task_timeout_s
    out = bytearray()
    with hook.get_conn() as client:
        transport = client.get_transport()
        channel = transport.open_session()
        try:
            channel.set_combine_stderr(True)
            channel.exec_command(command(s, task))
            while True:
                # On every turn, also while output keeps coming: a task flooding its output is stopped too.
                if time.monotonic() > deadline:
                    raise MoodleTaskError(
                        f"Moodle task {task} ran longer than moodle_task_timeout_s={s.moodle_task_timeout_s}s; it may "
                        "still be running on the Moodle server (until the forced command's --max-seconds) and hold "
                        "its lock",
                        retryable=True,
                    )
                if channel.recv_ready():
                    out.extend(channel.recv(65536))
                    continue
                if channel.exit_status_ready():
                    while channel.recv_ready():
                        out.extend(channel.recv(65536))
                    break
                time.sleep(0.05)
            status = channel.recv_exit_status()
        finally:
            channel.close()
    lines = out.decode("utf-8", errors="replace").splitlines()
    return TaskRun(task=task, exit_status=status, lines=lines, seconds=time.monotonic() - started)
