"""Emails staff send a parent from a request's screen, as the WordPress plugin's "Forgotten password",
"Details not on file" and "Generic fixed" did: templates the school edits without code, filled in from
the request, previewed, sent through Airflow's SMTP connection, and the sending logged on the request
(who, which template, when; never the body).

The templates live in the Airflow Variable `moodle_parent_provisioning_email_templates` (JSON), each key
a template: {"name": ..., "subject": ..., "body": ...}. A key it leaves out keeps the built-in text below;
a key it adds is one more template. Placeholders in double braces are replaced with the request's
values, plainly (no template language: a template cannot run anything).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from include.parent_provisioning.names import EMAIL_TEMPLATES_VARIABLE

PLACEHOLDERS = {
    "parent_title": "the parent's title (Mrs, Mr, Dr ...)",
    "parent_fname": "the parent's first name",
    "parent_sname": "the parent's surname",
    "parent_email": "the parent's email address, which is their Moodle username",
    "children": "the children's first names and surnames, as the request names them (Amy Lee and Bo Lee)",
    "moodle_url": "Moodle's address (the setting moodle_url)",
}
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class TemplateError(ValueError):
    """The templates Variable is not usable: the message says what to fix."""


# When the cycle itself sends a template (off unless a template says so, one template each):
SEND_WHEN = {
    "provisioned": "the cycle provisioned the request: the parent's account is ready",
    "kept_back": "the cycle kept the request back for the first time for what the parent wrote about a child "
    "(no pupil, several, a child only partly filled in): the parent can put it right",
}


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    subject: str
    body: str
    send_when: str = ""  # "" (only by staff), or a key of SEND_WHEN


DEFAULTS = {
    "forgotten_password": Template(
        "forgotten_password",
        "Forgotten password",
        "Your Moodle password",
        "Dear {{parent_title}} {{parent_sname}},\n\n"
        "Your Moodle username is {{parent_email}}. To choose a new password, open {{moodle_url}}/login/"
        "forgot_password.php and enter that username: Moodle emails you a link to set one.\n\n"
        "If no email arrives within an hour, look in your junk mail folder, then reply to this email.\n",
    ),
    "details_not_on_file": Template(
        "details_not_on_file",
        "Details not on file",
        "Your Moodle account request",
        "Dear {{parent_title}} {{parent_sname}},\n\n"
        "Thank you for asking for a Moodle account for {{children}}. We could not match the details you gave "
        "with the school's records: please reply with each child's full name and tutor group, or ask the "
        "school office to check the contact details we hold for you.\n",
    ),
    "generic_fixed": Template(
        "generic_fixed",
        "Fixed",
        "Your Moodle account",
        "Dear {{parent_title}} {{parent_sname}},\n\n"
        "The problem with your Moodle account is now fixed. Log in at {{moodle_url}} with your username "
        "{{parent_email}} to see {{children}}'s work.\n",
    ),
}


def parse(raw: str | None) -> dict[str, Template]:
    """The built-in templates with the Variable's on top; every problem refused with the key to fix."""
    templates = dict(DEFAULTS)
    if not raw or not raw.strip():
        return templates
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise TemplateError(f"Variable {EMAIL_TEMPLATES_VARIABLE} is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"Variable {EMAIL_TEMPLATES_VARIABLE} must be a JSON object of templates")
    for key, value in data.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", key):
            raise TemplateError(f"template key {key!r}: lower-case letters, digits and _ only")
        base = templates.get(key)
        if not isinstance(value, dict) or set(value) - {"name", "subject", "body", "send_when"}:
            raise TemplateError(f"template {key!r} must be an object with name, subject, body (and send_when)")
        send_when = value.get("send_when", base.send_when if base else "") or ""
        if send_when not in ("", *SEND_WHEN):
            raise TemplateError(f"template {key!r}: send_when must be one of {', '.join(SEND_WHEN)}, or left out")
        fields = {f: value.get(f, getattr(base, f) if base else None) for f in ("name", "subject", "body")}
        for field, text in fields.items():
            if not isinstance(text, str) or not text.strip():
                raise TemplateError(f"template {key!r} needs a non-empty {field}")
        if "\n" in fields["subject"] or "\r" in fields["subject"]:
            raise TemplateError(f"template {key!r}: the subject must be one line")
        unknown = sorted(set(_PLACEHOLDER.findall(fields["subject"] + fields["body"])) - set(PLACEHOLDERS))
        if unknown:
            raise TemplateError(
                f"template {key!r} uses {{{{{unknown[0]}}}}}, which is not a placeholder "
                f"(they are: {', '.join(PLACEHOLDERS)})"
            )
        templates[key] = Template(key, fields["name"].strip(), fields["subject"].strip(), fields["body"], send_when)
    twice = [w for w in SEND_WHEN if sum(t.send_when == w for t in templates.values()) > 1]
    if twice:
        raise TemplateError(f"more than one template has send_when {twice[0]!r}: the cycle sends one")
    return templates


def _children(row: Mapping) -> str:
    names = [
        " ".join(x for x in (row.get(f"{pre}_fname") or "", row.get(f"{pre}_sname") or "") if x).strip()
        for pre in ("child", "child2", "child3")
    ]
    names = [n for n in names if n]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else ""


def render(template: Template, row: Mapping, moodle_url: str) -> tuple[str, str]:
    """(subject, body) filled in from the request's row."""
    values = {
        "parent_title": (row.get("parent_title") or "").strip(),
        "parent_fname": (row.get("parent_fname") or "").strip(),
        "parent_sname": (row.get("parent_sname") or "").strip(),
        "parent_email": (row.get("parent_email") or "").strip().lower(),
        "children": _children(row),
        "moodle_url": moodle_url or "Moodle",
    }

    def fill(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

    return " ".join(fill(template.subject).split()), fill(template.body)


def html(body: str) -> str:
    """A plain-text body as the HTML the SMTP hook sends, its lines and spacing kept."""
    from html import escape

    return f'<pre style="font: 14px/1.5 sans-serif; white-space: pre-wrap">{escape(body)}</pre>'
