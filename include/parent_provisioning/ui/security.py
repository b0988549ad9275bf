"""Who may use the screens. Airflow does not protect plugin apps: every route depends on
`current_user` (the logged-in Airflow user, from Airflow's own token check); every page or
answer with personal data on `require_personal_data`, every state change on `require_actor`
(both: op or admin rights) and, for forms, `check_csrf`. Other users see the Overview only.

"Provision now" starts a cycle in-process, through Airflow's own trigger route function, as the
logged-in user: Airflow's auth manager decides whether that user may trigger the DAG, and Airflow
validates the parameters and records who triggered the run. Nothing is posted over the network, so
no URL is ever built from the request's Host header (which a proxy or a client chooses) and the
user's token never leaves the process."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import cache

from fastapi import Depends, Form, HTTPException, Request

from include.parent_provisioning import names

ACTING_ROLES = ("op", "admin")
TOKEN_COOKIE = "_token"  # noqa: S105 - the name of Airflow's session cookie, not a secret


@dataclass(frozen=True)
class UiUser:
    name: str
    can_act: bool
    airflow_user: object = field(default=None, compare=False, repr=False)  # Airflow's own, for its checks


def _can_act(user) -> bool:
    role = getattr(user, "role", None)
    if role is not None:  # the simple auth manager: viewer, user, op, admin
        return str(getattr(role, "value", role)).lower() in ACTING_ROLES
    from airflow.api_fastapi.app import get_auth_manager

    # Other auth managers: op-level rights are those that may change connections.
    return bool(get_auth_manager().is_authorized_connection(method="PUT", user=user))


def _airflow_user():
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def current_user(user=Depends(_airflow_user())) -> UiUser:  # noqa: B008
    return UiUser(name=str(user.get_name()), can_act=_can_act(user), airflow_user=user)


PERSONAL_DATA = (
    "parents' and children's names and emails are shown only to users who manage requests (op or admin in "
    "Airflow, or a role allowed to edit connections): ask an admin, or use the Overview's counts and cycles"
)


def require_personal_data(user: UiUser = Depends(current_user)) -> UiUser:
    """Pages and API answers with parents' or children's data: the users who manage requests only,
    as the WordPress plugin required its own capability even to view them."""
    if not user.can_act:
        raise HTTPException(403, f"{user.name}: {PERSONAL_DATA}")
    return user


def require_actor(user: UiUser = Depends(current_user)) -> UiUser:
    if not user.can_act:
        raise HTTPException(403, f"{user.name} may read but not act: this needs op or admin rights in Airflow")
    return user


def csrf_token(request: Request) -> str:
    """Tied to the user's Airflow session token, which another site cannot read: a form
    posted from elsewhere carries the cookie but cannot carry this value."""
    token = request.cookies.get(TOKEN_COOKIE) or request.headers.get("authorization", "")
    return hmac.new(token.encode(), b"parent-provisioning-csrf", hashlib.sha256).hexdigest()[:40]


def check_csrf(request: Request, csrf: str = Form("")) -> None:
    check_csrf_value(request, csrf)


def check_csrf_value(request: Request, csrf: object) -> None:
    """check_csrf for a route that reads its own form (after authenticating the user)."""
    if not isinstance(csrf, str) or not csrf or not hmac.compare_digest(csrf, csrf_token(request)):
        raise HTTPException(403, "this form has expired or did not come from these pages: reload and try again")


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
        method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=names.DAG_ID), user=user.airflow_user
    )
    if not allowed:
        raise HTTPException(403, f"{user.name} may not trigger {names.DAG_ID} in Airflow")
    body = TriggerDAGRunPostBody(logical_date=None, conf={names.REQUEST_IDS: request_ids, names.DRY_RUN: False})
    try:
        with create_session() as session:
            run = trigger_dag_run(names.DAG_ID, body, _dag_bag(), user.airflow_user, session, request)
            return str(run.run_id)
    except HTTPException as exc:
        raise HTTPException(exc.status_code, f"Airflow refused to start the cycle: {exc.detail}") from exc
