"""Force a provisioning cycle through Airflow's own public REST API, as the logged-in user:
Airflow checks that user's right to trigger the DAG and validates the parameters."""

from __future__ import annotations

import httpx
from fastapi import HTTPException, Request

from include.parent_provisioning.ui.security import TOKEN_COOKIE, UiUser

DAG_ID = "moodle_parent_provisioning"


def trigger_cycle(request: Request, user: UiUser, request_ids: list[int]) -> str:
    token = request.cookies.get(TOKEN_COOKIE) or request.headers.get("authorization", "").removeprefix("Bearer ")
    base = f"{request.url.scheme}://{request.url.netloc}"
    response = httpx.post(
        f"{base}/api/v2/dags/{DAG_ID}/dagRuns",
        json={"logical_date": None, "conf": {"request_ids": request_ids, "dry_run": False}},
        headers={"Authorization": f"Bearer {token}", "Referer": str(request.url)},
        timeout=30,
    )
    if response.status_code >= 400:
        detail = response.json().get("detail", response.text) if response.content else response.reason_phrase
        raise HTTPException(response.status_code, f"Airflow refused to start the cycle: {detail}")
    return response.json()["dag_run_id"]
