"""The cycle's settings: one JSON object in the Airflow Variable `moodle_parent_provisioning`,
validated once per task (the airflow_adapter reads it). Every error names the key and says what to put there.

Defaults reproduce the WordPress plugin's behaviour where it was right.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from typing import Any

from include.parent_provisioning.names import SETTINGS_VARIABLE

MATCH_BY = ("name_and_tutor_group", "name_only")
PUPIL_FILTERS = ("cohort", "auth", "email_domain")
_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_PREFIX = re.compile(r"^[A-Za-z0-9_]{0,32}$")
_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SHORTNAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_DOMAIN = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,}$")
_EMAIL = re.compile(r"^[^@\s,;<>]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


class SettingsError(ValueError):
    """A setting is wrong; the message names the key and what to do."""


@dataclass(frozen=True)
class PupilFilter:
    """How to tell a pupil's account from anyone else's (staff, parents, admins)."""

    by: str = "cohort"
    values: tuple[str, ...] = ("pupils",)

    def describe(self) -> str:
        what = {"cohort": "members of cohort", "auth": "accounts with auth", "email_domain": "emails at"}[self.by]
        return f"{what} {', '.join(self.values)}"


@dataclass(frozen=True)
class Settings:
    moodle_dir: str
    php_path: str = "/usr/bin/php"
    sudo_user: str | None = None
    wp_table_prefix: str = "wp_"
    moodle_table_prefix: str = "mdl_"
    parent_role: int | str = "parent"
    static_context_ids: tuple[int, ...] = ()
    modifier_user_id: int = 2
    match_by: str = "name_and_tutor_group"
    pupil_filter: PupilFilter = field(default_factory=PupilFilter)
    max_requests_per_cycle: int = 100_000  # measured: make bench-big, README "A multi-academy trust"
    moodle_task_timeout_s: int = 1800
    max_suspensions_per_cycle: int = 50
    max_suspension_fraction: float = 0.05
    max_unlinks_per_cycle: int = 50
    unlink_leavers: bool = False
    notify_emails: tuple[str, ...] = ()
    pending_warn_days: int = 7  # the Overview counts pending requests older than this
    moodle_url: str = ""  # Moodle's address (https://moodle.school.example): profile links, parents' emails

    @property
    def requests_table(self) -> str:
        return f"{self.wp_table_prefix}tvs_parent_moodle_provisioning"

    @property
    def auth_table(self) -> str:
        return f"{self.wp_table_prefix}tvs_parent_moodle_provisioning_auth"

    @property
    def cycles_table(self) -> str:
        return f"{self.wp_table_prefix}parent_provisioning_cycles"

    @property
    def outcomes_table(self) -> str:
        return f"{self.wp_table_prefix}parent_provisioning_outcomes"

    @property
    def lock_table(self) -> str:
        return f"{self.wp_table_prefix}parent_provisioning_lock"

    @property
    def links_table(self) -> str:
        """The ledger of links, in Moodle's database (so that it is written in the links' own
        transaction) but outside Moodle's prefix, so Moodle's schema check never sees it."""
        return f"parent_provisioning_{self.moodle_table_prefix}links"

    @property
    def settings_view(self) -> str:
        """The six Moodle settings the cycle reads, as the view docs/grants.sql creates: never the
        config tables themselves, which hold Moodle's secrets."""
        return f"parent_provisioning_{self.moodle_table_prefix}settings"

    def mdl(self, table: str) -> str:
        return f"{self.moodle_table_prefix}{table}"


def _fail(key: str, message: str) -> SettingsError:
    return SettingsError(f"setting '{key}' in Variable '{SETTINGS_VARIABLE}': {message}")


_MAX_INT = 2**63 - 1  # the database's BIGINT: ids and LIMIT; JSON numbers have no bound


def _int(key: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _MAX_INT:
        raise _fail(key, f"must be a whole number from {minimum} to {_MAX_INT}, got {value!r}")
    return value


def _fraction(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _fail(key, f"must be a number from 0 to 1 (0.05 is 5 %), got {value!r}")
    return float(value)


def _str(key: str, value: Any, pattern: re.Pattern, hint: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _fail(key, f"{hint}, got {value!r}")
    return value


def _pupil_filter(value: Any) -> PupilFilter:
    key = "pupil_filter"
    if not isinstance(value, dict) or set(value) - {"by", "value"} or "by" not in value or "value" not in value:
        raise _fail(key, 'must be an object like {"by": "cohort", "value": "pupils"}')
    by, raw = value["by"], value["value"]
    if by not in PUPIL_FILTERS:
        raise _fail(key, f"'by' must be one of {', '.join(PUPIL_FILTERS)}, got {by!r}")
    values = tuple(raw) if isinstance(raw, list) else (raw,)
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise _fail(key, "'value' must be a non-empty string or list of strings")
    values = tuple(v.strip() for v in values)
    if by == "auth" and "db" in values:
        raise _fail(key, "'db' accounts are the parents this project creates; they are never pupils")
    if by == "email_domain":
        values = tuple(v.lower().lstrip("@") for v in values)
        for v in values:
            if not _DOMAIN.fullmatch(v):
                raise _fail(key, f"{v!r} is not an email domain")
    return PupilFilter(by=by, values=values)


def parse(raw: Any) -> Settings:
    """Validate the Variable's value (a JSON string or an already decoded object)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"Variable '{SETTINGS_VARIABLE}' is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"Variable '{SETTINGS_VARIABLE}' must be a JSON object")
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _fail(unknown[0], f"unknown setting (known: {', '.join(sorted(known))})")
    if "moodle_dir" not in raw:
        raise _fail("moodle_dir", "required: Moodle's code root on the SSH host, e.g. /var/www/moodle")
    values = {key: check(key, raw[key]) for key, check in _CHECKS.items() if key in raw}
    return Settings(**{key: value for key, value in values.items() if value is not None})


_PATH_HINT = "must be an absolute path of letters, digits and . _ / -"


def _parent_role(key: str, role: Any) -> int | str:
    if isinstance(role, int) and not isinstance(role, bool):
        return _int(key, role, 1)
    return _str(key, role, _SHORTNAME, "must be a role id or shortname")


def _context_ids(key: str, ids: Any) -> tuple[int, ...]:
    if not isinstance(ids, list):
        raise _fail(key, f"must be a list of context ids, got {ids!r}")
    return tuple(dict.fromkeys(_int(key, i, 1) for i in ids))


def _match_by(key: str, value: Any) -> str:
    if value not in MATCH_BY:
        raise _fail(key, f"must be one of {', '.join(MATCH_BY)}, got {value!r}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, f"must be true or false, got {value!r}")
    return value


def _url(key: str, url: Any) -> str:
    if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", url.strip()):
        raise _fail(key, f"must be Moodle's address, such as https://moodle.school.example, got {url!r}")
    return url.strip().rstrip("/")


def _at_least(minimum: int):
    return lambda key, value: _int(key, value, minimum)


# Each setting's check, in the order a wrong Variable's first error is reported. None: the default.
_CHECKS = {
    "moodle_dir": lambda key, value: _str(key, value, _PATH, _PATH_HINT).rstrip("/") or "/",
    "php_path": lambda key, value: _str(key, value, _PATH, _PATH_HINT),
    "sudo_user": lambda key, value: (
        None if value in (None, "") else _str(key, value, _UNIX_USER, "must be a Unix user name")
    ),
    "wp_table_prefix": lambda key, value: _str(key, value, _PREFIX, "must be letters, digits and underscores only"),
    "moodle_table_prefix": lambda key, value: _str(key, value, _PREFIX, "must be letters, digits and underscores only"),
    "parent_role": _parent_role,
    "static_context_ids": _context_ids,
    "modifier_user_id": _at_least(1),
    "match_by": _match_by,
    "pupil_filter": lambda key, value: _pupil_filter(value),
    "max_requests_per_cycle": _at_least(1),
    "moodle_task_timeout_s": _at_least(10),
    "max_suspensions_per_cycle": _at_least(0),
    "max_suspension_fraction": _fraction,
    "max_unlinks_per_cycle": _at_least(0),
    "unlink_leavers": _bool,
    "notify_emails": lambda key, value: parse_emails(value),
    "moodle_url": _url,
    "pending_warn_days": _at_least(1),
}


def parse_emails(value: Any) -> tuple[str, ...]:
    """The `notify_emails` setting: who gets the cycle's summary and alerts (ops, not parents)."""
    if not isinstance(value, list) or not all(isinstance(v, str) and _EMAIL.fullmatch(v.strip()) for v in value):
        raise _fail("notify_emails", f'must be a list of email addresses like ["it@school.example"], got {value!r}')
    return tuple(dict.fromkeys(v.strip() for v in value))
