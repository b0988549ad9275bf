"""The end state a perfect cycle leaves on a demo school, checked against the databases.

Used by the whole-school test and by the benchmark at every size, so that a fast cycle is
also shown to be a right one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from testbed import demo_data, mariadb
from testbed.config import TestBedConfig


@dataclass
class EndState:
    expected_links: int = 0
    actual_links: int = 0
    missing_links: list[tuple[str, int]] = field(default_factory=list)
    unexpected_links: list[tuple[str, int]] = field(default_factory=list)
    duplicate_assignments: int = 0
    provisioned: int = 0
    wrong_status: list[tuple[int, str, str]] = field(default_factory=list)  # (request, expected, actual)

    @property
    def ok(self) -> bool:
        return not (self.missing_links or self.unexpected_links or self.duplicate_assignments or self.wrong_status)

    def describe(self) -> str:
        if self.ok:
            return f"ok: {self.provisioned} provisioned, {self.actual_links} links, no duplicates"
        return (
            f"WRONG: {len(self.missing_links)} links missing, {len(self.unexpected_links)} unexpected, "
            f"{self.duplicate_assignments} duplicate assignments, {len(self.wrong_status)} requests in the wrong status"
        )


def rows(db: str | None, sql: str) -> list[tuple]:
    conn = mariadb.admin_connect(db)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur.fetchall())
    finally:
        conn.close()


def parent_links(cfg: TestBedConfig) -> set[tuple[str, int]]:
    """(parent username, pupil id) for every Parent role assignment in a user context."""
    p = cfg.moodle_prefix
    return set(
        rows(
            cfg.moodle_db,
            f"SELECT u.username, c.instanceid FROM `{p}role_assignments` ra JOIN `{p}user` u ON u.id = ra.userid"
            f" JOIN `{p}context` c ON c.id = ra.contextid AND c.contextlevel = 30 JOIN `{p}role` r"
            f" ON r.id = ra.roleid WHERE r.shortname = '{mariadb.PARENT_ROLE_SHORTNAME}'",
        )
    )


def duplicate_assignments(cfg: TestBedConfig) -> int:
    """Role assignments held twice (the table has no unique index to refuse them)."""
    p = cfg.moodle_prefix
    found = rows(
        cfg.moodle_db,
        f"SELECT userid, contextid, roleid FROM `{p}role_assignments` GROUP BY userid, contextid, roleid"
        " HAVING COUNT(*) > 1",
    )
    return len(found)


def expected_status(exp: dict) -> str:
    """Provisioned when every named child has exactly one match and the parent can log in."""
    all_linked = all(c[0] == demo_data.LINKED for c in exp["children"])
    has_auth = exp["auth_row"] or exp["existing_parent_id"]
    return "provisioned" if all_linked and has_auth else "approved"


def end_state(cfg: TestBedConfig, school: demo_data.School) -> EndState:
    state = EndState()
    expected = demo_data.expected_links(school)
    actual = parent_links(cfg)
    state.expected_links, state.actual_links = len(expected), len(actual)
    state.missing_links = sorted(expected - actual)
    state.unexpected_links = sorted(actual - expected)
    state.duplicate_assignments = duplicate_assignments(cfg)
    status = dict(rows(cfg.wp_db, f"SELECT id, status FROM `{cfg.wp_requests_table}`"))
    for rid, exp in school.expectations.items():
        if exp["status"] != "approved":
            continue
        want = expected_status(exp)
        state.provisioned += status[rid] == "provisioned"
        if status[rid] != want:
            state.wrong_status.append((rid, want, status[rid]))
    return state
