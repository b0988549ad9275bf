"""Force a provisioning cycle in-process, through Airflow's own trigger route function, as the
logged-in user: Airflow's auth manager decides whether that user may trigger the DAG, and Airflow
validates the parameters and records who triggered the run. Nothing is posted over the network, so
no URL is ever built from the request's Host header (which a proxy or a client chooses) and the
user's token never leaves the process."""

from __future__ import annotations

from functools import cache

from fastapi import HTTPException, Request

from include.parent_provisioning.ui.security import UiUser

DAG_ID = "moodle_parent_provisioning"


@cache
def _dag_bag():
    from airflow.api_fastapi.common.dagbag import create_dag_bag

    return create_dag_bag()


def trigger_cycle(request: Request, user: UiUser, request_ids: list[int]) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
    from airflow.api_fastapi.core_api.routes.public.dag_run import trigger_dag_run
    from airflow.utils.session import create_session

    allowed = get_auth_manager().is_authorized_dag(
        method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=DAG_ID), user=user.airflow_user
    )
    if not allowed:
        raise HTTPException(403, f"{user.name} may not trigger {DAG_ID} in Airflow")
    body = TriggerDAGRunPostBody(logical_date=None, conf={"request_ids": request_ids, "dry_run": False})
    try:
        with create_session() as session:
            run = trigger_dag_run(DAG_ID, body, _dag_bag(), user.airflow_user, session, request)
            return str(run.run_id)
    except HTTPException as exc:
        raise HTTPException(exc.status_code, f"Airflow refused to start the cycle: {exc.detail}") from exc
