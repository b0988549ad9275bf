"""
### Adopt the WordPress plugin's links (one-off)

For a school moving from the WordPress plugin: the plugin linked parents to children in Moodle,
and the provisioning cycle's ledger of links does not know those links, so it would never remove
them. This DAG looks at every Parent-role assignment in a user context (and in the
`static_context_ids`) that the ledger does not hold:

- one that a **provisioned** request justifies (the parent's account, and a child the request
  names, matched exactly as the cycle matches) is recorded into the ledger as `adopted`: from then on
  it is removed like a link the cycle made, when its request is de-provisioned or corrected;
- one that no provisioned request justifies is **listed** (role assignment id, parent and child
  user ids) in the task's log and return value for staff to review in Moodle.

It never deletes anything. **Trigger it with `dry_run` on first** (the default): it only lists what
it would adopt. Then trigger it with `dry_run` off. It takes the cycle lock, so it never runs beside
a provisioning cycle; running it again adopts nothing twice.

Connections and settings: those of `moodle_parent_provisioning`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from include.parent_provisioning.airflow_adapter import (
    checked_site,
    connections,
    deployment,
    hold_cycle_lock,
    load_settings,
    release_cycle_lock,
)
from include.parent_provisioning.notify import task_failed


@dag(
    dag_id="moodle_parent_provisioning_adopt_links",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["moodle", "parents", "provisioning", "one-off"],
    default_args={
        "owner": "school-it",
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": [release_cycle_lock, task_failed],
    },
    params={
        "dry_run": Param(
            True,
            type="boolean",
            title="Dry run",
            description="List what would be adopted and what no request justifies; write nothing. Turn off to "
            "record the adopted links into the ledger.",
        ),
    },
    render_template_as_native_obj=True,
)
def moodle_parent_provisioning_adopt_links():
    @task(multiple_outputs=False)
    def adopt_links() -> dict:
        """The plugin's links a provisioned request justifies recorded as adopted; the rest listed."""

        from include.parent_provisioning import cycle, cycle_lock

        s = load_settings()
        context = get_current_context()
        run_id, dry_run = context["run_id"], bool(context["params"].get("dry_run"))
        with connections() as (wp, mdl):
            site = checked_site(wp, mdl, s, dry_run)
            if not dry_run:
                hold_cycle_lock(wp, run_id, first=True)
            try:
                result = cycle.adopt_links(wp, mdl, s, site, run_id, dry_run)
            finally:
                if not dry_run:
                    cycle_lock.release(wp, s, run_id, deployment())
        verb = "would adopt" if dry_run else "adopted"
        print(
            f"{verb} {result['adopted']} link(s) of the {result['assignments_not_in_ledger']} Parent-role assignments "
            f"the ledger did not hold; {result['unjustified']} no provisioned request justifies (role assignment ids: "
            + ", ".join(str(a["ra_id"]) for a in result["unjustified_assignments"])
            + ")"
        )
        return result

    adopt_links()


moodle_parent_provisioning_adopt_links()
