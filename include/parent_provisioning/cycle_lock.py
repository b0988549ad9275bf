"""The cycle lock: one row in the project's own lock table in the WordPress database, so that only
one provisioning cycle runs at a time across manual runs, schedulers and Airflow deployments (which
`max_active_runs` cannot see). Leased, renewed as each task starts, given back when a run ends or fails."""

from __future__ import annotations

from include.parent_provisioning import sql
from include.parent_provisioning.settings import Settings

LEASE_S = 3 * 3600  # longer than any one task may run; renewed as each task starts


class CycleBusy(RuntimeError):
    """Another cycle holds the cycle lock; the message says which, and until when."""

    def __init__(self, message: str, run_id: str):
        super().__init__(message)
        self.run_id = run_id


def claim(conn, s: Settings, run_id: str, deployment: str, holder: str, lease_s: int = LEASE_S) -> None:
    """Take or renew the one cycle lock for this run, in the WordPress database, so that a
    manual run, a second scheduler or a second Airflow deployment never runs a cycle beside
    this one. A run whose task failed gives it back (the DAG's failure callback); one whose
    process died keeps it until the lease ends; a re-run of the same run ("Clear": the same run id
    in the same deployment) takes it back at once. Two deployments on one schedule give their runs
    the same run id, so the deployment is part of who holds the lock. The database's clock decides, in
    UTC: the session's time zone (and daylight saving) never moves a lease. The deployment name is
    stored and compared at the column's 64 characters."""
    deployment = deployment[:64]
    with sql.cursor(conn) as cur:
        for attempt in (1, 2):
            # One conditional UPDATE takes or renews it; `claims` makes every claim change the row,
            # so the affected-row count says whether this run holds the lock.
            cur.execute(
                f"UPDATE `{s.lock_table}` SET acquired_at = IF(run_id = %s AND deployment = %s, acquired_at,"
                " UTC_TIMESTAMP()), run_id = %s, deployment = %s, holder = %s,"
                " expires_at = UTC_TIMESTAMP() + INTERVAL %s SECOND, claims = claims + 1 WHERE name = 'cycle'"
                " AND (run_id = '' OR (run_id = %s AND deployment = %s) OR expires_at IS NULL"
                " OR expires_at < UTC_TIMESTAMP())",
                (run_id, deployment, run_id, deployment, holder[:255], lease_s, run_id, deployment),
            )
            if cur.rowcount == 1:
                conn.commit()
                return
            cur.execute(
                f"SELECT run_id, deployment, holder, acquired_at, expires_at FROM `{s.lock_table}` WHERE name = 'cycle'"
            )
            row = cur.fetchone()
            if row is None and attempt == 1:  # the row was deleted by hand: put it back
                cur.execute(f"INSERT IGNORE INTO `{s.lock_table}` (name) VALUES ('cycle')")
                continue
            conn.rollback()
            held_by, other, host, since, until = row or ("?", "", "", None, None)
            where = "this Airflow" if other == deployment else f"Airflow deployment {other or 'unknown'}"
            raise CycleBusy(
                f"another provisioning cycle holds the cycle lock: run {held_by} of {where} on "
                f"{host or 'an unknown host'}, since {since} (until {until} at the latest). This run waits for it "
                "by retrying; if that run is dead, clear or mark it failed in its Airflow, or wait for the lock to "
                "expire",
                held_by,
            )


def release(conn, s: Settings, run_id: str, deployment: str) -> None:
    deployment = deployment[:64]
    with sql.cursor(conn) as cur:
        cur.execute(
            f"UPDATE `{s.lock_table}` SET run_id = '', deployment = '', holder = '', acquired_at = NULL,"
            " expires_at = NULL WHERE name = 'cycle' AND run_id = %s AND deployment = %s",
            (run_id, deployment),
        )
        conn.commit()
