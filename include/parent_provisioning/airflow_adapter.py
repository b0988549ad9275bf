"""What the DAGs need from Airflow, in one place: the providers' database connections, the
settings Variable, this deployment's name and the cycle lock. Airflow is imported inside each
function, so that parsing a DAG file stays cheap."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def connections(moodle: bool = True):
    """(WordPress, Moodle) DB-API connections from the providers' hooks, closed afterwards.
    moodle=False: the task only needs WordPress, so Moodle's database is not connected to."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    wp = MySqlHook(mysql_conn_id="wordpress_db").get_conn()
    try:
        mdl = MySqlHook(mysql_conn_id="moodle_db").get_conn() if moodle else None
        try:
            yield wp, mdl
        finally:
            if mdl is not None:
                mdl.close()
    finally:
        wp.close()


def load_settings():
    from airflow.sdk.exceptions import AirflowFailException

    from include.parent_provisioning import settings

    try:
        return settings.load()
    except settings.SettingsError as exc:
        raise AirflowFailException(str(exc)) from exc


DEPLOYMENT_VARIABLE = "moodle_parent_provisioning_deployment"


def deployment() -> str:
    """This Airflow deployment's name in the cycle lock: a random id kept in its own metadata
    database (the Variable moodle_parent_provisioning_deployment, made by the first run). Run ids
    are not enough: two deployments on one schedule both call tonight's run scheduled__<date>."""
    import uuid

    from airflow.sdk import Variable

    name = Variable.get(DEPLOYMENT_VARIABLE, default=None)
    if not name:
        Variable.set(DEPLOYMENT_VARIABLE, uuid.uuid4().hex[:16], description="Names this Airflow in the cycle lock")
        name = Variable.get(DEPLOYMENT_VARIABLE)
    return str(name)


def hold_cycle_lock(wp, run_id: str, first: bool = False) -> None:
    """Take (first task) or renew the cycle lock in the WordPress database: one cycle at a time
    across manual runs, schedulers and Airflow deployments, which max_active_runs cannot see.
    The first task waits for a busy lock by retrying; a later task that finds the lock taken
    (this run outlived its lease) stops, having written nothing."""
    import socket

    from airflow.sdk.exceptions import AirflowFailException

    from include.parent_provisioning import cycle_lock

    try:
        cycle_lock.claim(wp, load_settings(), run_id, deployment(), socket.gethostname())
    except cycle_lock.CycleBusy as exc:
        if first:
            raise
        raise AirflowFailException(f"{exc}. This run lost the lock and stops; clear it to run again.") from exc


def release_cycle_lock(context) -> None:
    """on_failure_callback: a failed run (retries spent) gives the cycle lock back at once, so the
    next run need not wait for the lease; clearing the failed task takes it again."""
    import logging

    from include.parent_provisioning import cycle_lock

    try:
        with connections(moodle=False) as (wp, _):
            cycle_lock.release(wp, load_settings(), context["run_id"], deployment())
    except Exception:  # a callback must not fail the failure; the lease ends it anyway
        logging.getLogger(__name__).warning("could not release the cycle lock; it expires with its lease")


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


def checked_site(wp, mdl, s, dry_run: bool) -> dict:
    """cycle.check, its refusal a task failure that is not retried (only an admin can fix it)."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.parent_provisioning import cycle

    try:
        return cycle.check(wp, mdl, s, dry_run)
    except cycle.CheckError as exc:
        raise AirflowFailException(str(exc)) from exc
