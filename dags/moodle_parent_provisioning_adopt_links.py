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
from airflow.sdk import Param, dag, task

from include.parent_provisioning import names
from include.parent_provisioning.airflow_adapter import cycle_task, release_cycle_lock, task_failed


@dag(
    dag_id=names.ADOPT_DAG_ID,
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
        names.DRY_RUN: Param(
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
        from include.parent_provisioning import cycle, summary

        with cycle_task(hold_lock=False) as t:
            site = t.check_then_take_lock()
            try:
                result = cycle.adopt_links(t.wp, t.mdl, t.settings, site, t.run_id, t.dry_run)
            finally:
                if not t.dry_run:
                    t.release_lock()
        print(summary.adoption_line(result, t.dry_run))
        return result

    adopt_links()


moodle_parent_provisioning_adopt_links()
