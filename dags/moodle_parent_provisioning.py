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
from airflow.sdk import Param, task

from include.parent_provisioning import names
from include.parent_provisioning.airflow_adapter import (
    CycleDAG,
    cycle_task,
    deadline_alerts,
    release_cycle_lock,
    send_summary,
    task_failed,
)

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

with CycleDAG(
    dag_id=names.DAG_ID,
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
    deadline=deadline_alerts(DEADLINE, OVERRUN) or None,
    params={
        names.REQUEST_IDS: Param(
            [],
            type="array",
            items={"type": "integer", "minimum": 1},
            title="Only these requests",
            description="Ids of approved requests to provision now. Leave empty for every approved request.",
        ),
        names.DRY_RUN: Param(
            False,
            type="boolean",
            title="Dry run",
            description="Plan only: show what would happen. Nothing is written to either database and Moodle "
            "is not contacted over SSH.",
        ),
        names.ALLOW_MASS_SUSPENSION: Param(
            False,
            type="boolean",
            title="Allow a mass suspension",
            description="Let Moodle's user sync run even when it would suspend more parent accounts than "
            "max_suspensions_per_cycle or max_suspension_fraction allow (their auth rows are missing). Only for "
            "this run, and only once you have checked that the auth table is as it should be.",
        ),
        names.ALLOW_MASS_UNLINK: Param(
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
        """Fail early, with what to fix, before anything is written; then take the cycle lock."""
        from include.parent_provisioning import own_tables

        with cycle_task(hold_lock=False) as t:
            site = t.check_then_take_lock()
            if not t.dry_run:
                own_tables.start_cycle(t.wp, t.settings, t.run_id, t.triggered_by, t.run_type, t.request_ids)
            return site

    @task(multiple_outputs=False)
    def collect(site: dict) -> dict:
        """The approved requests this cycle takes; which need a new Moodle account."""
        from include.parent_provisioning import cycle

        with cycle_task() as t:
            return cycle.collect(t.wp, t.mdl, t.settings, site, t.run_id, t.request_ids, t.dry_run)

    @task(execution_timeout=MOODLE_TASK_TIMEOUT, multiple_outputs=False)
    def sync_users(site: dict, collected: dict) -> dict:
        """Moodle creates (or revives) the parents' accounts from the auth table; never when its
        predicted suspensions exceed the limits, unless this run allows a mass suspension."""
        from include.parent_provisioning import user_sync
        from include.parent_provisioning.moodle_cli import SYNC_USERS

        with cycle_task() as t:
            allowed = t.allowed(names.ALLOW_MASS_SUSPENSION, acting=not t.dry_run)
            needed = collected["needs_account"] > 0
            return user_sync.guarded_sync(
                t.wp, t.mdl, t.settings, site, t.run_id, needed=needed, dry_run=t.dry_run, allowed=allowed,
                triggered_by=t.triggered_by, run_sync=lambda: t.run_moodle_task(SYNC_USERS),
            )  # fmt: skip

    @task(multiple_outputs=False)
    def link_children(site: dict) -> dict:
        """Each parent linked to each of their children (and the static contexts)."""
        from include.parent_provisioning import cycle

        with cycle_task() as t:
            return cycle.link(t.wp, t.mdl, t.settings, site, t.run_id, t.request_ids, t.dry_run)

    @task(execution_timeout=MOODLE_TASK_TIMEOUT, multiple_outputs=False)
    def send_passwords(linked: dict) -> dict:
        """Moodle emails each new parent a temporary password, when this cycle made new accounts."""
        from include.parent_provisioning.moodle_cli import SEND_PASSWORDS

        with cycle_task(hold_lock=False) as t:
            if t.dry_run:
                return {"skipped": "dry run"}
            if not linked["new_accounts"]:
                print("No new accounts this cycle: Moodle's password task is not run.")
                return {"skipped": "no new accounts"}
            t.hold_lock()
            return t.run_moodle_task(SEND_PASSWORDS)

    @task(multiple_outputs=False)
    def mark() -> dict:
        """Requests marked provisioned, or kept approved with their reasons."""
        from include.parent_provisioning import cycle

        with cycle_task() as t:
            if t.dry_run:
                return {"skipped": "dry run"}
            changed = cycle.mark(t.wp, t.settings, t.run_id)
            print(f"{changed} request(s) updated in WordPress")
            return {"requests_updated": changed}

    @task(multiple_outputs=False)
    def unlink_children(site: dict, linked: dict) -> dict:
        """Links no request justifies any more taken away; the leavers listed."""
        from include.parent_provisioning import cycle

        with cycle_task() as t:
            allowed = t.allowed(names.ALLOW_MASS_UNLINK, acting=not t.dry_run)
            return cycle.unlink_links(
                t.wp, t.mdl, t.settings, site, t.run_id, t.dry_run, allowed, linked.get("replans")
            )

    # Outside the cycle lock (it neither takes nor releases it): it sends only for this run's marked
    # outcomes, and a mail server's trouble must never hold back the rest of the cycle or the next one.
    @task(multiple_outputs=False, on_failure_callback=[task_failed])
    def email_parents() -> dict:
        """Parents told their account is ready, or what to put right, when a template asks for it (off by
        default; README: "Emails to parents"). Counts only in the log."""
        from include.parent_provisioning import cycle
        from include.parent_provisioning.airflow_adapter import email_templates, send_parent_email

        with cycle_task(hold_lock=False) as t:
            if t.dry_run:
                return {"skipped": "dry run"}
            templates = email_templates()
            if not any(template.send_when for template in templates.values()):
                return {"sent": 0, "off": "no template has send_when"}  # the default: no database, no mail server
            return cycle.email_parents(t.wp, t.settings, t.run_id, templates, send_parent_email)

    @task(multiple_outputs=False)
    def report(collected: dict, synced: dict, linked: dict, passwords: dict, unlinked: dict) -> dict:
        """The cycle's summary for ops: counts, and the failed requests' ids by reason codes; the lock given back."""
        from include.parent_provisioning import cycle, summary

        with cycle_task() as t:
            if t.dry_run:
                plan = summary.dry_run_plan(t.run_id, collected, synced, linked, unlinked)
                print(f"DRY RUN plan: {plan}")
                return plan
            overrides = {name: t.allowed(name) for name in names.OVERRIDES}
            results = summary.task_results(synced, passwords, linked, unlinked, overrides, t.triggered_by)
            result = cycle.summarise(t.wp, t.settings, t.run_id, collected, results)
            t.release_lock()
        print(summary.format_summary(result))
        return result

    @task(multiple_outputs=False)
    def notify(summary: dict, emailed: dict) -> dict:
        """The summary emailed to ops; a mail failure retries here and never touches `report`."""
        if summary.get("dry_run"):
            return {"skipped": "dry run"}
        return send_summary({**summary, "parent_emails": emailed})

    site = check()
    collected = collect(site)
    synced = sync_users(site, collected)
    linked = link_children(site)
    passwords = send_passwords(linked)
    marked = mark()
    unlinked = unlink_children(site, linked)
    emailed = email_parents()
    summarised = report(collected, synced, linked, passwords, unlinked)
    synced >> linked  # the parents' accounts exist before they are linked
    [linked, passwords] >> marked >> [unlinked, emailed]  # marked first: a refused unlinking holds back no new parent
    notify(summarised, emailed)
