"""Why a request was not provisioned: a stable code (for ops, the summary and the runbook)
and a sentence for staff saying what to do. No names or emails: children are named by
their position on the form and their tutor group."""

from __future__ import annotations

from dataclasses import dataclass, fields

TEXTS = {
    "no_auth_row": "no auth row for this email: the approval did not finish or access was revoked; "
    "approve the request again",
    "invalid_email": "the parent email is not a usable address; correct it and approve again",
    "email_not_a_moodle_username": "Moodle cannot use this email as a username "
    "(only a-z, 0-9 and - . _ @ are allowed, at most 100 characters); correct the email",
    "no_first_child": "the first child's first name, surname or tutor group is missing; correct the request",
    "child_incomplete": "child {position} is only partly filled in (first name, surname and tutor group "
    "are all needed); complete or clear it",
    "account_other_auth": "the email is already the username of a Moodle account with another "
    "authentication method ('{auth}'); link that account by hand or use another email",
    "account_missing": "Moodle's user sync did not create the parent account; see the sync task's "
    "log for 'Error inserting user' and check the email",
    "account_suspended": "the parent's Moodle account is suspended; re-approve the request so that "
    "its auth row exists, then run the cycle again",
    "child_not_found": "child {position} ({tutor_group}) matches no pupil; correct the name or tutor group",
    "child_ambiguous": "child {position} ({tutor_group}) matches {count} pupils; correct the tutor group "
    "or link by hand",
    "child_namesake": "child {position} ({tutor_group}) matches one pupil, but {count} suspended or non-pupil "
    "account(s) have the same name: linking would be a guess; check in Moodle which account is the child, "
    "then link by hand or correct the request",
    "changed_during_cycle": "staff changed the request while the cycle was running, so it was not marked on "
    "the data the cycle had read; the next cycle takes it up as it is now",
}


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    position: int = 0
    tutor_group: str = ""
    count: int = 0
    auth: str = ""

    @property
    def text(self) -> str:
        return TEXTS[self.code].format(
            position=self.position,
            tutor_group=self.tutor_group or "no tutor group",
            count=self.count,
            auth=self.auth,
        )

    def to_json(self) -> dict:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) not in ("", 0) or f.name == "code"}

    @classmethod
    def from_json(cls, data: dict) -> Reason:
        return cls(**data)
