"""What ops are told by email: each cycle's summary, a task that failed for good, a cycle still
running long past its deadline. The airflow_adapter sends them with Airflow's SMTP provider through the
`smtp_default` connection (its `from_email` extra is the sender) to the `notify_emails` setting.

An email carries counts, request ids, reason codes and links to the run: never a parent's or a
child's name or email address. Those stay in WordPress and Moodle, not in mailboxes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from include.parent_provisioning.moodle_cli import redact
from include.parent_provisioning.names import DAG_ID
from include.parent_provisioning.summary import moodle_lines, unlink_lines

log = logging.getLogger(__name__)

SUBJECT = "Parent provisioning"
RUNBOOK_REASONS = "docs/RUNBOOK.md#reason-codes"
MAX_IDS_PER_REASON = 500


@dataclass(frozen=True)
class Email:
    subject: str
    html: str


def run_url(base_url: str, run_id: str, dag_id: str = DAG_ID) -> str:
    """The run's page in the Airflow UI under base_url (`[api] base_url`: the address ops use)."""
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:MAX_IDS_PER_REASON])
    more = len(ids) - MAX_IDS_PER_REASON
    return shown + (f" and {more} more (see the run)" if more > 0 else "")


def _page(intro: str, rows: Sequence[tuple[str, object]], sections: Sequence[str], url: str) -> str:
    table = "".join(f"<tr><th align='left'>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return (
        f"<p>{intro}</p><table>{table}</table>{''.join(sections)}"
        f"<p><a href='{escape(url, quote=True)}'>Open the run in Airflow</a></p>"
    )


def summary_email(summary: dict, url: str) -> Email:
    """The cycle's result: the same counts and ids as `report`, with what to look at first."""
    run_id = summary["run_id"]
    attention = summary.get("needs_attention") or []
    subject = (
        f"{SUBJECT}: {summary['provisioned']} provisioned, {summary['not_provisioned']} not provisioned, "
        f"{summary['deferred']} deferred" + (f", {len(attention)} need attention" if attention else "") + f" ({run_id})"
    )
    rows = [
        ("Requests taken", summary["requests_taken"]),
        ("Provisioned", summary["provisioned"]),
        ("Not provisioned (kept approved)", summary["not_provisioned"]),
        ("Deferred to the next cycle", summary["deferred"]),
        ("Needing attention", len(attention)),
        ("Links made", summary.get("links_made", 0)),
        ("Links removed", summary.get("links_removed", 0)),
    ]
    parents = summary.get("parent_emails") or {}
    if parents.get("sent") or parents.get("refused"):  # only when a school turned the cycle's emails on
        rows.append(("Emails to parents (sent / refused)", f"{parents.get('sent', 0)} / {parents.get('refused', 0)}"))
    sections = []
    failed = summary.get("failed") or {}
    if failed:
        items = "".join(
            f"<li><code>{escape(reasons or 'unknown')}</code> ({len(ids)}): requests {_ids(ids)}</li>"
            for reasons, ids in failed.items()
        )
        sections.append(
            f"<h3>Not provisioned, by reason codes</h3><ul>{items}</ul>"
            f"<p>What each code means and what staff do about it: {RUNBOOK_REASONS}.</p>"
        )
    if attention:
        sections.append(
            f"<h3>Needing attention</h3><p>Failing the same way for 3 cycles or more: requests {_ids(attention)}.</p>"
        )
    warnings = summary.get("warnings") or []
    if warnings:
        items = "".join(f"<li>{escape(redact(str(w)))}</li>" for w in warnings)
        sections.append(f"<h3>Warnings</h3><ul>{items}</ul>")
    links = unlink_lines(summary.get("unlinks") or {})
    if links:
        items = "".join(f"<li>{escape(line)}</li>" for line in links)
        sections.append(f"<h3>Links taken away, and leavers</h3><ul>{items}</ul>")
    moodle = moodle_lines(summary)
    if moodle:
        items = "".join(f"<li>{escape(redact(line))}</li>" for line in moodle)
        sections.append(f"<h3>Moodle tasks</h3><ul>{items}</ul>")
    intro = f"Provisioning cycle <code>{escape(run_id)}</code> finished."
    return Email(subject, _page(intro, rows, sections, url))


def _error_line(error: object) -> str:
    """The error's first line, emails masked: a database error can quote a row's values."""
    lines = str(error or "").strip().splitlines()
    text = lines[0] if lines else "no message"
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {text}"
    return redact(text)[:1500]  # whole enough for the guard's refusal and its way out


def failure_email(dag_id: str, run_id: str, task_id: str, try_number: int, error: object, url: str) -> Email:
    """A task failed after its last retry: the run is red and stays so until someone acts."""
    subject = f"{SUBJECT} FAILED at {task_id} ({run_id})"
    rows = [("DAG", dag_id), ("Run", run_id), ("Task", task_id), ("Tries", try_number), ("Error", _error_line(error))]
    intro = (
        f"Task <code>{escape(task_id)}</code> failed after its retries, so this cycle stopped there. "
        "Requests it had not reached stay approved and are taken by the next cycle. Fix what the task's "
        "log says, then clear the failed task to finish the cycle."
    )
    return Email(subject, _page(intro, rows, [], url))


def deadline_email(dag_run: dict, deadline: dict, url: str) -> Email:
    """The cycle is still going long after it was queued: a hung Moodle task, a locked table, a queue."""
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "?"
    subject = f"{SUBJECT} still running past its deadline ({run_id})"
    rows = [
        ("Run", run_id),
        ("Queued at", dag_run.get("queued_at") or "?"),
        ("Deadline", deadline.get("deadline_time") or "?"),
        ("State", dag_run.get("state") or "?"),
    ]
    intro = (
        f"Provisioning cycle <code>{escape(run_id)}</code> has not finished by its deadline. Look at the "
        "running task's log: a Moodle task waiting for its lock, a slow database, or no free worker."
    )
    return Email(subject, _page(intro, rows, [], url))


def recipients(settings_json: str | None) -> tuple[str, ...]:
    """`notify_emails` from the settings Variable's text, read on its own: an alert about a wrong
    setting must still reach ops. () when it cannot be read (said in the log)."""
    from include.parent_provisioning import settings

    try:
        return settings.parse_emails(json.loads(settings_json or "").get("notify_emails", []))
    except Exception as exc:
        log.warning("No email sent: cannot read notify_emails from the settings Variable (%s)", exc)
        return ()
