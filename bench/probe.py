"""What the benchmark reads from outside the project's code: the servers' own counters.

- SQL statements: MariaDB's per-user statistics (`userstat`), so the count is what the server
  received from each database user, not what the code believes it sent. The project connects
  as one user per database, the Moodle double as two more (Moodle's own and auth_db's).
- SSH sessions: the test bed's sshd log, one `Accepted publickey` line per session.
- Memory: the process's peak resident set (`VmHWM`), reset at each task's start through
  `/proc/self/clear_refs`, so each task's figure is its own peak.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from testbed import mariadb

_STAT_COLUMNS = "SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS"


def enable_user_statistics(on: bool = True) -> bool:
    """Switch MariaDB's per-user statistics on (or back off); returns whether they were on."""
    conn = mariadb.admin_connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT @@GLOBAL.userstat")
        was = bool(cur.fetchone()[0])
        cur.execute(f"SET GLOBAL userstat = {1 if on else 0}")
        return was
    finally:
        conn.close()


@dataclass
class Counters:
    """Statements per database user, and SSH sessions, at one moment."""

    statements: dict[str, int]
    ssh_sessions: int

    def minus(self, earlier: Counters) -> Counters:
        return Counters(
            {k: v - earlier.statements.get(k, 0) for k, v in self.statements.items()},
            self.ssh_sessions - earlier.ssh_sessions,
        )


class ServerCounters:
    """Reads the counters for the named users ({label: MariaDB user}) over one root connection,
    whose own statements are counted under root and so never in the figures."""

    def __init__(self, users: dict[str, str], sshd_log: Path | None):
        self.users = users
        self.sshd_log = sshd_log
        self.conn = mariadb.admin_connect()
        self.conn.autocommit(True)

    def read(self) -> Counters:
        cur = self.conn.cursor()
        names = list(self.users.values())
        cur.execute(
            f"SELECT USER, {_STAT_COLUMNS} FROM information_schema.USER_STATISTICS"
            f" WHERE USER IN ({', '.join(['%s'] * len(names))})",
            names,
        )
        by_user = {u: int(n) for u, n in cur.fetchall()}
        cur.close()
        return Counters({label: by_user.get(user, 0) for label, user in self.users.items()}, self.ssh_sessions())

    def ssh_sessions(self) -> int:
        if self.sshd_log is None or not self.sshd_log.exists():
            return 0
        return len(re.findall(r"Accepted publickey", self.sshd_log.read_text(errors="replace")))

    def close(self) -> None:
        self.conn.close()


def reset_peak_memory() -> None:
    # Not Linux, or not allowed: the figure is then the process's peak so far.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
