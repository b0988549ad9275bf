"""A request as the WordPress form wrote it, read and checked before anything is done
with it: the parent's email as Moodle will see it, and the children it names."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from include.parent_provisioning.reasons import Reason

NEW_ACCOUNT = "I do not currently have a Moodle Account."
CANNOT_LOG_IN = "I have a Moodle account, but cannot log in."
CHILDREN_NOT_LINKED = "One or more of my children is not linked correctly to my account (please provide details below)."
UPLOADED = "Uploaded in a batch via 'Upload Users'"
# The WordPress plugin's REST intake (a batch posted by another system): an upload by another way in.
UPLOADED_REST = "Uploaded in a batch via the REST API"
REQUEST_TYPES = (NEW_ACCOUNT, CANNOT_LOG_IN, CHILDREN_NOT_LINKED, UPLOADED, UPLOADED_REST)
STATUSES = ("pending", "approved", "provisioned", "rejected", "duplicate", "bogus", "unknown", "deleting")
DEPROVISIONED = ("pending", "rejected", "duplicate", "bogus", "unknown", "deleting")

# The columns a cycle decides on: a change to any of them after the cycle read the request means
# its links were made for data that is no longer the request's (see fingerprint_sql).
DECIDING_COLUMNS = (
    "status", "request_type", "parent_email", "child_fname", "child_sname", "child_tg",
    "child2_fname", "child2_sname", "child2_tg", "child3_fname", "child3_sname", "child3_tg",
)  # fmt: skip


def fingerprint_sql(alias: str = "", provisioned_as_approved: bool = False) -> str:
    """An SQL expression: a digest of the deciding columns as the database holds them. The cycle reads
    it with the request and `mark` recomputes it in its UPDATE, so both sides are the database's own
    bytes: a request staff changed in between (corrected, rejected and re-approved with other data) is
    not marked on what the cycle read. NULL and '' are one: the cycle reads both as empty.
    provisioned_as_approved: the digest of a request `mark` provisioned is the one it had as approved
    (unlinking asks whether the request is still as `link_children` planned it)."""
    status = (
        f"IF({alias}status = 'provisioned', 'approved', COALESCE({alias}status, ''))"
        if provisioned_as_approved
        else None
    )
    cols = ", ".join(status if c == "status" and status else f"COALESCE({alias}{c}, '')" for c in DECIDING_COLUMNS)
    return f"SHA2(CONCAT_WS(CHAR(31 USING utf8mb4), {cols}), 256)"


REQUEST_COLUMNS = (
    "id, parent_title, parent_fname, parent_sname, parent_email, child_fname, child_sname, child_tg,"
    " child2_fname, child2_sname, child2_tg, child3_fname, child3_sname, child3_tg, status, request_type, "
    + fingerprint_sql()
    + " AS fingerprint"
)
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MOODLE_USERNAME = re.compile(r"^[-.@_a-z0-9]{1,100}$")


def normalise_email(value: str | None) -> str:
    """How a parent's email becomes a Moodle username: trimmed and lower-cased."""
    return (value or "").strip().lower()


_ACCENTED_SCRIPTS = ("LATIN ", "GREEK ", "CYRILLIC ", "ARABIC ", "HEBREW ")


def fold(value: str | None) -> str:
    """A name or tutor group as compared when matching: case, spacing and accents ignored,
    never more loosely than MariaDB's utf8mb4_unicode_ci (which pre-filters the pupils).
    Only marks on Latin, Greek, Cyrillic, Arabic and Hebrew letters are accents: elsewhere a
    mark spells another name (a Devanagari virama), and a mark on nothing is not nothing."""
    kept: list[str] = []
    accents_ignored = False
    for ch in unicodedata.normalize("NFKD", (value or "").strip()):
        if not unicodedata.combining(ch):
            accents_ignored = unicodedata.name(ch, "").startswith(_ACCENTED_SCRIPTS)
        elif accents_ignored:
            continue
        kept.append(ch)
    return " ".join("".join(kept).casefold().split())


def fold_group(value: str | None) -> str:
    return "".join(fold(value).split())


def tidy(value: str | None) -> str:
    """A form field as the cycle uses it: every run of whitespace (newlines, tabs, doubled or
    non-breaking spaces) one space, so a value cannot start a new comment line, and the SQL
    pre-filter looks for the name that fold() compares."""
    return " ".join((value or "").split())


@dataclass(frozen=True, slots=True)
class Child:
    position: int
    first_name: str
    surname: str
    tutor_group: str


@dataclass(slots=True)
class Request:
    id: int
    email: str
    request_type: str
    children: list[Child] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    fingerprint: str = ""  # of the row as read (fingerprint_sql)


def from_row(row: dict, match_by: str = "name_and_tutor_group", extended_usernames: bool = False) -> Request:
    """Read one requests-table row; problems become reasons, never exceptions."""
    email = normalise_email(row.get("parent_email"))
    request = Request(
        id=int(row["id"]),
        email=email,
        request_type=row.get("request_type") or "",
        fingerprint=str(row.get("fingerprint") or ""),
    )
    if not EMAIL_PATTERN.fullmatch(email) or len(email) > 255:
        request.reasons.append(Reason("invalid_email"))
    elif len(email) > 100 or (not extended_usernames and not _MOODLE_USERNAME.fullmatch(email)):
        request.reasons.append(Reason("email_not_a_moodle_username"))
    need_group = match_by == "name_and_tutor_group"
    seen: set[tuple[str, str, str]] = set()
    for position, prefix in ((1, "child"), (2, "child2"), (3, "child3")):
        fname, sname, group = (tidy(row.get(f"{prefix}_{col}")) for col in ("fname", "sname", "tg"))
        if not (fname or sname or group):
            if position == 1:
                request.reasons.append(Reason("no_first_child"))
            continue
        if not fname or not sname or (need_group and not group):
            code = "no_first_child" if position == 1 else "child_incomplete"
            request.reasons.append(Reason(code, position=position, tutor_group=group))
            continue
        key = (fold(fname), fold(sname), fold_group(group) if need_group else "")
        if key in seen:  # the same child named twice: linked once
            continue
        seen.add(key)
        request.children.append(Child(position, fname, sname, group))
    return request
