"""Airflow's own api-server app (auth manager, plugins and all) with known test passwords."""

from __future__ import annotations

import json
import os

import pytest

from tests.cycle.conftest import provisioning_dag, run_cycle  # noqa: F401 (UI tests after real DAG runs)

PASSWORDS = {"admin": "admin-test-pass", "ops": "ops-test-pass", "viewer": "viewer-test-pass"}


@pytest.fixture(scope="session")
def passwords_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "passwords.json"
    path.write_text(json.dumps(PASSWORDS))
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(path)
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin,ops:op,viewer:viewer"
    return path


@pytest.fixture(scope="session")
def airflow_app(passwords_file, bed):
    from airflow.api_fastapi.app import create_app

    return create_app()


@pytest.fixture
def client(airflow_app):
    from fastapi.testclient import TestClient

    with TestClient(airflow_app, base_url="http://testserver") as c:
        yield c


def login(client, user: str) -> str:
    response = client.post("/auth/token", json={"username": user, "password": PASSWORDS[user]})
    assert response.status_code == 201, response.text
    token = response.json()["access_token"]
    client.cookies.set("_token", token)
    return token
