"""
### Moodle parent provisioning

Gives parents whose account requests staff approved on the school's WordPress site a
Moodle account linked to each of their children. Replaces the WordPress plugin's
provisioning cycle.

| step | what it does |
|---|---|
| `check` | settings valid, both databases reachable, WordPress tables present, Parent role allowed in user contexts, static contexts exist |
| `collect` | the approved requests this cycle takes (oldest first, up to `max_requests_per_cycle`); data problems become reasons |
| `sync_users` | predicts what Moodle's user sync will create, suspend and revive; refuses when it would suspend more parents than the limits; then runs `\\auth_db\\task\\sync_users` over SSH whenever it has work: a new parent's account to create, a de-provisioned parent's to suspend (access ends here), a re-approved one's to revive; a night with nothing to do opens no SSH session; output checked, not only the exit code; what Moodle did compared with the prediction |
| `link_children` | each child matched among pupils only, and never when a suspended or non-pupil account has the same name (a guess); the Parent role assigned in the child's user context and each static context, never twice |
| `send_passwords` | Moodle's `\\core\\task\\send_new_user_passwords_task`, only if new accounts were created |
| `mark` | provisioned requests marked; the others keep `approved` with their reasons; a request staff changed after `link_children` read it is left as staff left it (`changed_during_cycle`); one comment line per request per run |
| `email_parents` | only when a parents' email template has `send_when` (none has by default): the parent of each request just provisioned, or kept back for the first time for what they wrote about a child, gets that template; each sent once |
| `unlink_children` | takes away each parent-child link (and static-context link) the project made whose every justifying request is gone: rejected, duplicate, bogus, unknown, back to pending, or corrected to another child; a link made by hand in Moodle is never removed; refuses more than `max_unlinks_per_cycle` at once; lists the leavers (children no longer pupils), removed only with `unlink_leavers` |
| `report` | the cycle's summary: counts, the failed requests' ids grouped by reason codes |
| `notify` | the summary emailed to the `notify_emails` setting (ids and reason codes, no names) |

A red run means the **system** failed (settings, a database, SSH, a Moodle task), or that
Moodle's user sync would have suspended too many parents (`sync_users` says how many and
why): fix it and clear the failed task. Requests that fail for reasons in their data leave the run
green and are listed in `report`'s log and return value. A task that fails after its retries
emails `notify_emails` once; so does a run still going `PARENT_PROVISIONING_DEADLINE_MINUTES` after
it was queued, or `PARENT_PROVISIONING_OVERRUN_MINUTES` past the recent runs' average (Deadline Alerts).

**Trigger with parameters** to provision only some requests (`request_ids`), to see the
plan without writing anything or running Moodle (`dry_run`), or to let one run through
when Moodle's user sync would suspend more parents than the settings
`max_suspensions_per_cycle` (50) and `max_suspension_fraction` (5 %) allow
(`allow_mass_suspension`: check the auth table first), or to let it remove more links than
`max_unlinks_per_cycle` (50) allows (`allow_mass_unlink`: check the requests first); the
cycle's record names who triggered it.

Connections: `wordpress_db`, `moodle_db` (mysql), `moodle_ssh` (ssh), `smtp_default` (smtp). Settings: the
Variable `moodle_parent_provisioning` (see the project's README).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, Param, get_current_context, task

from include.parent_provisioning.airflow_adapter import (
    checked_site,
    connections,
    deployment,
    hold_cycle_lock,
    load_settings,
    may_override,
    release_cycle_lock,
)
from include.parent_provisioning.notify import deadline_missed, task_failed

SCHEDULE = os.environ.get("PARENT_PROVISIONING_SCHEDULE", "0 2 * * *")
TIMEZONE = os.environ.get("PARENT_PROVISIONING_TIMEZONE", "Europe/London")
DB_TASK_TIMEOUT = timedelta(minutes=30)
# A failed task's first retry waits this long, each next one twice as long (up to 15 minutes).
RETRY_DELAY = timedelta(seconds=int(os.environ.get("PARENT_PROVISIONING_RETRY_DELAY_SECONDS") or "60"))
MOODLE_TASK_TIMEOUT = timedelta(hours=2)  # the SSH command's own limit is the moodle_task_timeout_s setting
# A run still going this long after it was queued emails notify_emails (nightly runs take minutes); 0: no alert.
DEADLINE = timedelta(minutes=int(os.environ.get("PARENT_PROVISIONING_DEADLINE_MINUTES") or "180"))
# ...and, once three runs have finished, one still going this long past the last ten runs' average; 0: off.
OVERRUN = timedelta(minutes=int(os.environ.get("PARENT_PROVISIONING_OVERRUN_MINUTES") or "60"))
DEADLINE_ALERTS = [
    DeadlineAlert(reference, interval, AsyncCallback(deadline_missed))
    for reference, interval in (
        (DeadlineReference.DAGRUN_QUEUED_AT, DEADLINE),
        (DeadlineReference.AVERAGE_RUNTIME(max_runs=10, min_runs=3), OVERRUN),
    )
    if interval
]


class CycleDAG(DAG):
    """The cycle's DAG, with one fix: `airflow dags test` and `DAG.test()` run it with its Deadline Alerts on.

    Airflow 3.3.2's DAG.test() builds the scheduler's copy of the DAG by serialising it in memory, which
    leaves the alerts as dicts where the scheduler expects the ids the database gives them; a successful
    run then fails in DagRun.update_state (apache/airflow#73428, no release has the fix yet). A test run is
    not watched by a scheduler, so it gets no deadline: the copy is made without them. The DAG Airflow
    stores (dag-processor, and DAG.test()'s own re-parse of the folder) keeps them, so the scheduler
    watches every real run."""

    def test(self, *args, **kwargs):
        alerts, self.deadline = self.deadline, None
        try:
            return super().test(*args, **kwargs)
        finally:
            self.deadline = alerts


def _params() -> tuple[str, list[int], bool]:
    context = get_current_context()
    params = context["params"]
    return context["run_id"], sorted({int(i) for i in params.get("request_ids") or []}), bool(params.get("dry_run"))


def _override(param: str = "allow_mass_suspension", acting: bool = False) -> tuple[bool, str]:
    """Whether this run allows what the limits refuse (the param: allow_mass_suspension or
    allow_mass_unlink), and who triggered it. acting: the task is about to use it, so the user who
    triggered the run must be one who manages requests, or the task fails saying who may."""
    from airflow.sdk.exceptions import AirflowFailException

    context = get_current_context()
    triggered_by = getattr(context["dag_run"], "triggering_user_name", None) or ""
    allowed = bool(context["params"].get(param))
    if allowed and acting:
        may, who = may_override(triggered_by)
        if not may:
            raise AirflowFailException(
                f"{param} was set by {triggered_by or 'an unknown user'}, who does not manage requests: it is "
                f"honoured only for {who}. Ask one of them to trigger the run; nothing was changed"
            )
    return allowed, triggered_by


def _run_moodle_task(moodle_task: str, hold_lock: bool = True) -> dict:
    """hold_lock=False: the calling task has renewed the cycle lock already."""
    from airflow.providers.ssh.hooks.ssh import SSHHook
    from airflow.sdk.exceptions import AirflowFailException

    from include.parent_provisioning import moodle_cli

    s = load_settings()
    if hold_lock:
        with connections(moodle=False) as (wp, _):
            hold_cycle_lock(wp, _params()[0])
    run = moodle_cli.run_task(SSHHook(ssh_conn_id="moodle_ssh", cmd_timeout=None), s, moodle_task)
    result = {"exit_status": run.exit_status, "seconds": round(run.seconds, 1), **run.counts}
    print(f"Moodle {moodle_task}: {result}")
    try:
        run.check()
    except moodle_cli.MoodleTaskError as exc:
        if exc.retryable:
            raise
        raise AirflowFailException(str(exc)) from exc
    return result


with CycleDAG(
    dag_id="moodle_parent_provisioning",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["moodle", "parents", "provisioning"],
    default_args={
        "owner": "school-it",
        "retries": 3,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=15),
        "execution_timeout": DB_TASK_TIMEOUT,
        "on_failure_callback": [release_cycle_lock, task_failed],
    },
    deadline=DEADLINE_ALERTS or None,
    params={
        "request_ids": Param(
            [],
            type="array",
            items={"type": "integer", "minimum": 1},
            title="Only these requests",
            description="Ids of approved requests to provision now. Leave empty for every approved request.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Plan only: show what would happen. Nothing is written to either database and Moodle "
            "is not contacted over SSH.",
        ),
        "allow_mass_suspension": Param(
            False,
            type="boolean",
            title="Allow a mass suspension",
            description="Let Moodle's user sync run even when it would suspend more parent accounts than "
            "max_suspensions_per_cycle or max_suspension_fraction allow (their auth rows are missing). Only for "
            "this run, and only once you have checked that the auth table is as it should be.",
        ),
        "allow_mass_unlink": Param(
            False,
            type="boolean",
            title="Allow a mass unlinking",
            description="Let the cycle remove more parent-child links than max_unlinks_per_cycle allows (their "
            "requests were rejected or corrected, or, with unlink_leavers, the children left). Only for this run, "
            "and only once you have checked the requests.",
        ),
    },
    render_template_as_native_obj=True,
):
    # multiple_outputs=False: a task's dict result is one XCom, not one more per key.
    @task(multiple_outputs=False)
    def check() -> dict:
        """Fail early, with what to fix, before anything is written."""
        from include.parent_provisioning import wordpress

        s = load_settings()
        run_id, request_ids, dry_run = _params()
        with connections() as (wp, mdl):
            site = checked_site(wp, mdl, s, dry_run)
            if not dry_run:
                hold_cycle_lock(wp, run_id, first=True)
                _, triggered_by = _override()
                run_type = str(getattr(get_current_context()["dag_run"], "run_type", ""))
                wordpress.start_cycle(wp, s, run_id, triggered_by, run_type, request_ids)
        return site

    @task(multiple_outputs=False)
    def collect(site: dict) -> dict:
        """The approved requests this cycle takes; which need a new Moodle account."""
        from include.parent_provisioning import cycle

        s = load_settings()
        run_id, request_ids, dry_run = _params()
        with connections() as (wp, mdl):
            if not dry_run:
                hold_cycle_lock(wp, run_id)
            return cycle.collect(wp, mdl, s, site, run_id, request_ids, dry_run)

    @task(execution_timeout=MOODLE_TASK_TIMEOUT, multiple_outputs=False)
    def sync_users(site: dict, collected: dict) -> dict:
        """Moodle creates (or revives) the parents' accounts from the auth table; never when its
        predicted suspensions exceed the limits, unless this run allows a mass suspension."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.parent_provisioning import user_sync
        from include.parent_provisioning.moodle_cli import SYNC_USERS

        s = load_settings()
        run_id, _, dry_run = _params()
        allowed, triggered_by = _override(acting=not dry_run)
        with connections() as (wp, mdl):
            if not dry_run:
                hold_cycle_lock(wp, run_id)
            try:
                return user_sync.guarded_sync(
                    wp,
                    mdl,
                    s,
                    site,
                    run_id,
                    needed=collected["needs_account"] > 0,
                    dry_run=dry_run,
                    allowed=allowed,
                    triggered_by=triggered_by,
                    run_sync=lambda: _run_moodle_task(SYNC_USERS, hold_lock=False),
                )
            except (user_sync.Refused, user_sync.CannotPredict) as exc:
                raise AirflowFailException(str(exc)) from exc

    @task(multiple_outputs=False)
    def link_children(site: dict, synced: dict) -> dict:
        """Each parent linked to each of their children (and the static contexts)."""
        from include.parent_provisioning import cycle

        s = load_settings()
        run_id, request_ids, dry_run = _params()
        with connections() as (wp, mdl):
            if not dry_run:
                hold_cycle_lock(wp, run_id)
            return cycle.link(wp, mdl, s, site, run_id, request_ids, dry_run)

    @task(execution_timeout=MOODLE_TASK_TIMEOUT, multiple_outputs=False)
    def send_passwords(linked: dict) -> dict:
        """Moodle emails each new parent a temporary password."""
        from include.parent_provisioning.moodle_cli import SEND_PASSWORDS

        _, _, dry_run = _params()
        if dry_run:
            return {"skipped": "dry run"}
        if not linked["new_accounts"]:
            print("No new accounts this cycle: Moodle's password task is not run.")
            return {"skipped": "no new accounts"}
        return _run_moodle_task(SEND_PASSWORDS)

    @task(multiple_outputs=False)
    def mark(linked: dict, passwords: dict) -> dict:
        """Requests marked provisioned, or kept approved with their reasons."""
        from include.parent_provisioning import cycle

        s = load_settings()
        run_id, _, dry_run = _params()
        if dry_run:
            return {"skipped": "dry run"}
        with connections(moodle=False) as (wp, _):
            hold_cycle_lock(wp, run_id)
            changed = cycle.mark(wp, s, run_id)
        print(f"{changed} request(s) updated in WordPress")
        return {"requests_updated": changed}

    @task(multiple_outputs=False)
    def unlink_children(site: dict, linked: dict) -> dict:
        """Links no request justifies any more taken away; the leavers listed."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.parent_provisioning import cycle

        s = load_settings()
        run_id, _, dry_run = _params()
        allowed, _ = _override("allow_mass_unlink", acting=not dry_run)
        with connections() as (wp, mdl):
            if not dry_run:
                hold_cycle_lock(wp, run_id)
            try:
                return cycle.unlink_links(wp, mdl, s, site, run_id, dry_run, allowed, linked.get("replans"))
            except cycle.UnlinkRefused as exc:
                raise AirflowFailException(str(exc)) from exc

    # Outside the cycle lock (it neither takes nor releases it): it sends only for this run's marked
    # outcomes, and a mail server's trouble must never hold back the rest of the cycle or the next one.
    @task(multiple_outputs=False, on_failure_callback=[task_failed])
    def email_parents(marked: dict) -> dict:
        """Parents told their account is ready, or what to put right, when a template asks for it (off by
        default; README: "Emails to parents"). Counts only in the log."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.parent_provisioning import cycle, parent_emails

        run_id, _, dry_run = _params()
        if dry_run:
            return {"skipped": "dry run"}
        s = load_settings()
        try:
            templates = parent_emails.load()
        except parent_emails.TemplateError as exc:
            raise AirflowFailException(str(exc)) from exc
        if not any(t.send_when for t in templates.values()):
            return {"sent": 0, "off": "no template has send_when"}  # the default: no database, no mail server
        with connections(moodle=False) as (wp, _):
            return cycle.email_parents(wp, s, run_id, templates, parent_emails.send)

    @task(multiple_outputs=False)
    def report(collected: dict, synced: dict, linked: dict, passwords: dict, unlinked: dict) -> dict:
        """The cycle's summary for ops: counts, and the failed requests' ids by reason codes."""
        from include.parent_provisioning import cycle, cycle_lock
        from include.parent_provisioning import summary as summary_text

        s = load_settings()
        run_id, _, dry_run = _params()
        allowed, triggered_by = _override()
        allowed_unlink, _ = _override("allow_mass_unlink")
        linked = {k: v for k, v in linked.items() if k != "replans"}
        if dry_run:
            summary = {"run_id": run_id, "dry_run": True, **collected, **linked, "sync": synced, "unlinks": unlinked}
            print(f"DRY RUN plan: {summary}")
            return summary
        with connections(moodle=False) as (wp, _):
            hold_cycle_lock(wp, run_id)
            extra = {
                "sync": synced,
                "passwords": passwords,
                "links": linked,
                "warnings": synced.get("warnings", []),
                "unlinks": unlinked,
                "allow_mass_suspension": allowed,
                "allow_mass_unlink": allowed_unlink,
                "triggered_by": triggered_by,
            }
            summary = cycle.summarise(wp, s, run_id, collected, extra)
            cycle_lock.release(wp, s, run_id, deployment())
        print(summary_text.format_summary(summary))
        return summary

    @task(multiple_outputs=False)
    def notify(summary: dict, emailed: dict) -> dict:
        """The summary emailed to ops; a mail failure retries here and never touches `report`."""
        from include.parent_provisioning import notify as mail

        if summary.get("dry_run"):
            return {"skipped": "dry run"}
        return mail.send_summary({**summary, "parent_emails": emailed})

    site = check()
    collected = collect(site)
    synced = sync_users(site, collected)
    linked = link_children(site, synced)
    passwords = send_passwords(linked)
    marked = mark(linked, passwords)
    unlinked = unlink_children(site, linked)
    marked >> unlinked  # after the requests are marked: a refused unlinking holds back no new parent
    emailed = email_parents(marked)
    notify(report(collected, synced, linked, passwords, unlinked), emailed)
