"""What this project takes from Airflow, in one place: the providers' database, SSH and SMTP hooks,
the Variables, the run's context (parameters, who triggered it), this deployment's name, the cycle
lock's renewal, the failure and deadline alerts, and the one fix the cycle's DAG class needs. The rest
of the library is plain Python that gets what it needs passed in (the unit tests never import this
module). Airflow's hooks are imported inside the functions that use them: a provider is loaded only
by the process that needs it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import cached_property

from airflow.sdk import DAG

from include.parent_provisioning import names, notify, parent_emails
from include.parent_provisioning import settings as settings_module
from include.parent_provisioning.settings import Settings

log = logging.getLogger(__name__)


# --- Connections, Variables ---------------------------------------------------------------------


def connect(conn_id: str):
    """A DB-API connection through the MySQL provider's hook (host, user, password from the Airflow
    connection); the caller closes it."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    return MySqlHook(mysql_conn_id=conn_id).get_conn()


@contextmanager
def connections(moodle: bool = True):
    """(WordPress, Moodle) connections, closed afterwards. moodle=False: the WordPress database only."""
    with ExitStack() as stack:
        wp = stack.enter_context(_closing(connect(names.WORDPRESS_CONN_ID)))
        mdl = stack.enter_context(_closing(connect(names.MOODLE_CONN_ID))) if moodle else None
        yield wp, mdl


@contextmanager
def _closing(conn):
    try:
        yield conn
    finally:
        conn.close()


def _variable(key: str) -> str | None:
    from airflow.sdk import Variable

    try:
        return Variable.get(key, default=None)
    except Exception:  # the SDK raises its own types when the Variable (or its backend) is missing
        return None


def load_settings() -> Settings:
    """The settings Variable, validated; settings.SettingsError says what to fix."""
    raw = _variable(names.SETTINGS_VARIABLE)
    if raw is None:
        raise settings_module.SettingsError(
            f"Airflow Variable '{names.SETTINGS_VARIABLE}' is missing: create it (Admin > Variables) with at least "
            '{"moodle_dir": "/var/www/moodle"}'
        )
    return settings_module.parse(raw)


def email_templates() -> dict[str, parent_emails.Template]:
    """The parents' email templates: the built-in ones and the Variable's (parent_emails.TemplateError)."""
    return parent_emails.parse(_variable(names.EMAIL_TEMPLATES_VARIABLE))


def deployment() -> str:
    """This Airflow deployment's name in the cycle lock: a random id kept in its own metadata
    database (made by the first run). Run ids are not enough: two deployments on one schedule both
    call tonight's run scheduled__<date>."""
    import uuid

    from airflow.sdk import Variable

    name = _variable(names.DEPLOYMENT_VARIABLE)
    if not name:
        Variable.set(
            names.DEPLOYMENT_VARIABLE, uuid.uuid4().hex[:16], description="Names this Airflow in the cycle lock"
        )
        name = Variable.get(names.DEPLOYMENT_VARIABLE)
    return str(name)


# --- Email --------------------------------------------------------------------------------------


def send_email(to: list[str], subject: str, html: str) -> None:
    """Through the SMTP provider's hook and the smtp_default connection (its from_email extra is the sender)."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=names.SMTP_CONN_ID) as smtp:
        smtp.send_email_smtp(to=to, subject=subject, html_content=html)


def send_parent_email(to: str, subject: str, body: str) -> None:
    """One email to a parent (parent_emails' `send` for the cycle and the request screens)."""
    send_email([to], subject, parent_emails.html(body))


def run_url(run_id: str, dag_id: str = names.DAG_ID) -> str:
    """The run's page in the Airflow UI, from `[api] base_url` (set it to the address ops use)."""
    from airflow.sdk.configuration import conf

    return notify.run_url(conf.get("api", "base_url", fallback=None) or "http://localhost:8080/", run_id, dag_id)


def ops_recipients() -> tuple[str, ...]:
    """`notify_emails`, read from the settings Variable on its own: an alert about a wrong setting
    must still reach ops."""
    return notify.recipients(_variable(names.SETTINGS_VARIABLE))


def send_summary(summary: dict) -> dict:
    """The cycle's summary to ops. Raises if the mail server refuses, so the task retries."""
    to = ops_recipients()
    if not to:
        print("notify_emails is empty: no summary email sent.")
        return {"sent_to": 0}
    email = notify.summary_email(summary, run_url(summary["run_id"]))
    send_email(list(to), email.subject, email.html)
    print(f"Summary email sent to {len(to)} recipient(s).")
    return {"sent_to": len(to)}


def task_failed(context) -> None:
    """on_failure_callback: Airflow calls it once a task has used up its retries (not on each retry),
    and tasks after it become upstream_failed without callbacks, so one alert per failed run."""
    try:
        to = ops_recipients()
        if not to:
            return
        ti = context["ti"]
        url = run_url(ti.run_id, ti.dag_id)
        email = notify.failure_email(ti.dag_id, ti.run_id, ti.task_id, ti.try_number, context.get("exception"), url)
        send_email(list(to), email.subject, email.html)
    except Exception:
        log.exception("The failure alert could not be sent")


def _deadline_missed(context: dict) -> None:
    dag_run, deadline = context.get("dag_run") or {}, context.get("deadline") or {}
    if dag_run.get("state") not in ("queued", "running", None):
        return  # a failed run already alerted through its failed task (Airflow 3.3 fires deadlines after failures)
    to = ops_recipients()
    if not to:
        return
    email = notify.deadline_email(
        dag_run, deadline, run_url(dag_run.get("dag_run_id") or "", dag_run.get("dag_id") or names.DAG_ID)
    )
    send_email(list(to), email.subject, email.html)


async def deadline_missed(context: dict | None = None, **kwargs) -> None:
    """The DAG's Deadline Alert callback, run by the triggerer with a small context: the DAG run
    (as the REST API shows it) and the deadline. The SMTP hook and the Variable are synchronous,
    so they run in a thread rather than blocking the triggerer's event loop."""
    await asyncio.to_thread(_deadline_missed, context or {})


# --- Who may lift a guard -----------------------------------------------------------------------

ACTING_ROLES = ("op", "admin")  # the simple auth manager's roles that manage requests (as the UI's)
OVERRIDE_USERS_ENV = "PARENT_PROVISIONING_OVERRIDE_USERS"


def may_override(username: str) -> tuple[bool, str]:
    """Whether the Airflow user who triggered a run may lift a guard (allow_mass_suspension,
    allow_mass_unlink): only someone who manages requests, not anyone who may trigger the DAG. The
    environment variable PARENT_PROVISIONING_OVERRIDE_USERS (comma-separated Airflow usernames), when
    set, is the list; otherwise, under the simple auth manager, the users whose role is op or admin.
    Returns (allowed, who may), the second for the refusal's message."""
    import os

    from airflow.configuration import conf

    listed = [u.strip() for u in os.environ.get(OVERRIDE_USERS_ENV, "").split(",") if u.strip()]
    if listed:
        return username in listed, f"the users in {OVERRIDE_USERS_ENV} ({', '.join(listed)})"
    manager = conf.get("core", "auth_manager", fallback="")
    if manager.endswith("SimpleAuthManager") or not manager:
        if conf.getboolean("core", "simple_auth_manager_all_admins", fallback=False):
            return bool(username), "every user (simple_auth_manager_all_admins is on)"
        roles = dict(
            (parts[0], parts[1].lower())
            for parts in (u.split(":") for u in conf.getlist("core", "simple_auth_manager_users"))
            if len(parts) >= 2
        )
        return roles.get(username) in ACTING_ROLES, "users with the op or admin role"
    return False, f"the users listed in the environment variable {OVERRIDE_USERS_ENV} (none are)"


# --- One task of a cycle ------------------------------------------------------------------------


def _not_retried(exc: BaseException) -> bool:
    """Errors only a person can fix (a setting, the site, a guard's refusal): failing at once, not
    after three retries of the same answer."""
    from include.parent_provisioning import cycle, moodle_cli, user_sync

    if isinstance(exc, moodle_cli.MoodleTaskError):
        return not exc.retryable
    return isinstance(
        exc,
        settings_module.SettingsError
        | cycle.CheckError
        | cycle.UnlinkRefused
        | user_sync.Refused
        | user_sync.CannotPredict
        | parent_emails.TemplateError,
    )


class CycleTask:
    """What one task of a run gets: the run's parameters and who triggered it, the settings (parsed
    once, when first used), the two databases (connected when first used, closed when the task ends)
    and the cycle lock."""

    def __init__(self, context, stack: ExitStack):
        params = context["params"]
        self._stack = stack
        self.params = params
        self.run_id: str = context["run_id"]
        self.request_ids: list[int] = sorted({int(i) for i in params.get(names.REQUEST_IDS) or []})
        self.dry_run: bool = bool(params.get(names.DRY_RUN))
        self.triggered_by: str = getattr(context["dag_run"], "triggering_user_name", None) or ""
        self.run_type: str = str(getattr(context["dag_run"], "run_type", ""))

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    @cached_property
    def wp(self):
        return self._stack.enter_context(_closing(connect(names.WORDPRESS_CONN_ID)))

    @cached_property
    def mdl(self):
        return self._stack.enter_context(_closing(connect(names.MOODLE_CONN_ID)))

    def allowed(self, override: str, acting: bool = False) -> bool:
        """Whether this run lifts a guard (names.OVERRIDES). acting: the task is about to use it, so
        the user who triggered the run must be one who manages requests, or the task fails saying who may."""
        from airflow.sdk.exceptions import AirflowFailException

        allowed = bool(self.params.get(override))
        if allowed and acting:
            may, who = may_override(self.triggered_by)
            if not may:
                raise AirflowFailException(
                    f"{override} was set by {self.triggered_by or 'an unknown user'}, who does not manage requests: "
                    f"it is honoured only for {who}. Ask one of them to trigger the run; nothing was changed"
                )
        return allowed

    def hold_lock(self, first: bool = False) -> None:
        """Take (first task) or renew the cycle lock: one cycle at a time across manual runs,
        schedulers and Airflow deployments, which max_active_runs cannot see. The first task waits for
        a busy lock by retrying; a later task that finds the lock taken (this run outlived its lease)
        stops, having written nothing."""
        import socket

        from airflow.sdk.exceptions import AirflowFailException

        from include.parent_provisioning import cycle_lock

        try:
            cycle_lock.claim(self.wp, self.settings, self.run_id, deployment(), socket.gethostname())
        except cycle_lock.CycleBusy as exc:
            if first:
                raise
            raise AirflowFailException(f"{exc}. This run lost the lock and stops; clear it to run again.") from exc

    def check_then_take_lock(self) -> dict:
        """A first task's start: the site checked (settings, both databases, Moodle's roles and
        contexts) before anything is written, then the cycle lock taken, waiting for a busy one by
        retrying (not in a dry run). Returns the checked site for the tasks after."""
        from include.parent_provisioning import cycle

        site = cycle.check(self.wp, self.mdl, self.settings, self.dry_run)
        if not self.dry_run:
            self.hold_lock(first=True)
        return site

    def release_lock(self) -> None:
        from include.parent_provisioning import cycle_lock

        cycle_lock.release(self.wp, self.settings, self.run_id, deployment())

    def run_moodle_task(self, moodle_task: str) -> dict:
        """One of Moodle's scheduled tasks over SSH (the SSH provider's hook, host key checked by the
        connection); its output is checked, not only its exit code."""
        from airflow.providers.ssh.hooks.ssh import SSHHook

        from include.parent_provisioning import moodle_cli

        run = moodle_cli.run_task(
            SSHHook(ssh_conn_id=names.MOODLE_SSH_CONN_ID, cmd_timeout=None), self.settings, moodle_task
        )
        result = {"exit_status": run.exit_status, "seconds": round(run.seconds, 1), **run.counts}
        print(f"Moodle {moodle_task}: {result}")
        run.check()
        return result


@contextmanager
def cycle_task(hold_lock: bool = True) -> Iterator[CycleTask]:
    """The body of one cycle task: its run's parameters, settings and connections, the cycle lock
    renewed first (unless a dry run, or hold_lock=False), the connections closed at the end, and an
    error no retry can fix turned into a failure that is not retried."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    with ExitStack() as stack:
        task = CycleTask(get_current_context(), stack)
        try:
            if hold_lock and not task.dry_run:
                task.hold_lock()
            yield task
        except Exception as exc:
            if _not_retried(exc):
                raise AirflowFailException(str(exc)) from exc
            raise


def release_cycle_lock(context) -> None:
    """on_failure_callback: a failed run (retries spent) gives the cycle lock back at once, so the
    next run need not wait for the lease; clearing the failed task takes it again."""
    from include.parent_provisioning import cycle_lock

    try:
        with connections(moodle=False) as (wp, _):
            cycle_lock.release(wp, load_settings(), context["run_id"], deployment())
    except Exception:  # a callback must not fail the failure; the lease ends it anyway
        log.warning("could not release the cycle lock; it expires with its lease")


# --- The cycle's DAG class ----------------------------------------------------------------------


class CycleDAG(DAG):
    """The cycle's DAG, with one fix: `airflow dags test` and `DAG.test()` run it with its Deadline
    Alerts on. Airflow 3.3.2's DAG.test() builds the scheduler's copy of the DAG by serialising it in
    memory, which leaves the alerts as dicts where the scheduler expects the ids the database gives
    them; a successful run then fails in DagRun.update_state (apache/airflow#73428, no release has the
    fix yet). A test run is not watched by a scheduler, so it gets no deadline: the copy is made without
    them. The DAG Airflow stores (dag-processor, and DAG.test()'s own re-parse of the folder) keeps
    them, so the scheduler watches every real run."""

    def test(self, *args, **kwargs):
        alerts, self.deadline = self.deadline, None
        try:
            return super().test(*args, **kwargs)
        finally:
            self.deadline = alerts


def deadline_alerts(deadline, overrun) -> list:
    """Deadline Alerts that email ops (deadline_missed): a run still going `deadline` after it was
    queued, and, once three runs have finished, one going `overrun` past the last ten runs' average.
    A zero interval turns its alert off."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return [
        DeadlineAlert(reference, interval, AsyncCallback(deadline_missed))
        for reference, interval in (
            (DeadlineReference.DAGRUN_QUEUED_AT, deadline),
            (DeadlineReference.AVERAGE_RUNTIME(max_runs=10, min_runs=3), overrun),
        )
        if interval
    ]
