"""The docker-compose stack, checked without a Docker engine: the file is valid Compose, has the services
the docs name, builds the image the lock describes, and takes its configuration from the env file,
whose keys are those the DAG reads."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from include.parent_provisioning import names, settings
from testbed import airflow_stack as native
from testbed.airflow_stack import read_env_file as env_file
from testbed.config import TestBedConfig as BedConfig

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "tests" / "schemas" / "compose-spec.json"  # Compose's own JSON schema, copied in
CORE = {"postgres", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
SECRET_WORDS = ("PASSWORD", "SECRET", "FERNET", "SQL_ALCHEMY_CONN", "RESULT_BACKEND")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    return env_file(ROOT / "airflow.env.example")


def locked(name: str) -> str:
    match = re.search(rf"^{re.escape(name)}==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert match, f"{name} is not pinned in requirements.lock"
    return match.group(1)


def dockerfile_arg(name: str) -> str:
    return re.search(rf"^ARG {name}=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M).group(1)


def code(but: str = "") -> str:
    files = [p for d in ("dags", "include") for p in sorted((ROOT / d).rglob("*.py")) if p.name != but]
    return "\n".join(p.read_text() for p in files)


def test_the_compose_file_validates_against_the_compose_schema(compose):
    jsonschema.validate(compose, json.loads(SCHEMA.read_text()))


def test_every_service_the_docs_name_exists_and_the_long_running_ones_have_health_checks(compose):
    services = compose["services"]
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "RUNBOOK.md").read_text()
    named = set(re.findall(r"`((?:airflow|demo)-[a-z-]+|postgres|redis)`", docs))
    assert named >= CORE | {"airflow-init", "airflow-worker", "redis"}, "the docs should name the services"
    assert named <= set(services), named - set(services)
    for name, service in services.items():
        if name in CORE | {"redis", "airflow-worker", "demo-mariadb", "demo-moodle"}:
            assert "healthcheck" in service, name
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"


def test_local_executor_by_default_and_celery_only_in_its_profile(compose, example):
    services = compose["services"]
    assert example["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert services["redis"]["profiles"] == ["celery"] and services["airflow-worker"]["profiles"] == ["celery"]
    assert "redis" not in services["airflow-scheduler"]["depends_on"]
    for name, service in services.items():
        if name.startswith("demo-"):
            assert service["profiles"] == ["demo"], name
    assert {n for n, s in services.items() if not s.get("profiles")} == CORE | {"airflow-init"}


def test_dags_are_unpaused_when_first_parsed(compose):
    common = compose["x-airflow-common"]["environment"]
    assert common["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"


def test_the_image_tags_and_the_dockerfile_follow_the_locked_airflow_and_python():
    airflow = locked("apache-airflow")
    assert airflow == locked("apache-airflow-core") == dockerfile_arg("AIRFLOW_VERSION")
    python = re.search(r"--python-version (\S+)", (ROOT / "Makefile").read_text()).group(1)
    assert dockerfile_arg("PYTHON_VERSION") == python
    assert f">={python}" in (ROOT / "pyproject.toml").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS project" in dockerfile
    images = re.findall(
        r"image: \$\{\w+:-(moodle-parent-provisioning[\w-]*):(\S+)\}", (ROOT / "docker-compose.yaml").read_text()
    )
    assert images and {tag for _, tag in images} == {f"airflow-{airflow}"}


def test_the_dockerfile_installs_the_lock_and_copies_the_project():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY --chown=airflow:0 requirements.lock /opt/airflow/requirements.lock" in dockerfile
    assert "RUN pip install --no-cache-dir -r /opt/airflow/requirements.lock" in dockerfile
    for folder in ("dags", "include", "plugins"):
        assert f"COPY --chown=airflow:0 {folder}/ /opt/airflow/{folder}/" in dockerfile
    lock = (ROOT / "requirements.lock").read_text()
    for pin in re.findall(r"^([\w-]+==\S+)$", (ROOT / "requirements.txt").read_text(), re.M):
        assert f"\n{pin}\n" in lock, f"{pin} from requirements.txt is not in the lock: run make lock"
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :] and "!airflow.env" not in ignore and "!.venv" not in ignore


def test_the_demo_image_holds_every_project_file_the_test_bed_reads():
    """demo-init runs the test bed in the image: what it reads from outside testbed/ must be
    both let into the build context and copied to the same place under /opt/airflow."""
    from testbed import mariadb

    dockerfile = (ROOT / "Dockerfile").read_text()
    demo_stage = dockerfile[dockerfile.index("AS demo") :]
    allowed = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().split() if line.startswith("!")]
    for path in (mariadb.GRANTS_SQL,):
        rel = path.relative_to(ROOT).as_posix()
        assert any(rel == a or rel.startswith(a + "/") for a in allowed), f".dockerignore leaves {rel} out"
        assert f"COPY --chown=airflow:0 {rel} /opt/airflow/{rel}" in demo_stage, f"the demo image lacks {rel}"


def test_the_env_file_has_exactly_the_connections_variable_and_environment_the_dag_reads(example):
    source = code()
    conn_types = names.CONNECTION_TYPES
    for cid in conn_types:  # each connection is named once, in names.py, and read through that name
        assert not re.search(rf"[\"']{cid}[\"']", code(but="names.py")), (
            f"{cid} is spelled out instead of imported from names.py"
        )
    read = {f"AIRFLOW_CONN_{cid.upper()}" for cid in conn_types}
    read |= {f"AIRFLOW_VAR_{names.SETTINGS_VARIABLE.upper()}"}
    read |= set(re.findall(r'os\.environ\.get\("(PARENT_PROVISIONING_\w+)"', source))
    assert {"PARENT_PROVISIONING_SCHEDULE", "PARENT_PROVISIONING_DEADLINE_MINUTES"} <= read
    given = {k for k in example if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "PARENT_PROVISIONING_"))}
    assert given == read
    for cid, kind in conn_types.items():
        assert json.loads(example[f"AIRFLOW_CONN_{cid.upper()}"])["conn_type"] == kind, cid
    settings.parse(example[f"AIRFLOW_VAR_{names.SETTINGS_VARIABLE.upper()}"])
    ssh = json.loads(example["AIRFLOW_CONN_MOODLE_SSH"])["extra"]
    assert ssh["host_key"] and "no_host_key_check" not in ssh


def test_secrets_come_from_the_env_file_never_from_the_compose_file(compose, example):
    text = (ROOT / "docker-compose.yaml").read_text()
    assert "AIRFLOW_CONN_" not in text and "AIRFLOW_VAR_" not in text
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            assert key.endswith("_FILE") or not any(word in key for word in SECRET_WORDS), f"{name}: {key}"
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert example[key] == "change-me", key
    assert compose["x-airflow-common"]["env_file"] == [{"path": "${AIRFLOW_ENV_FILE:-airflow.env}", "required": True}]
    assert "/airflow.env" in (ROOT / ".gitignore").read_text().split()
    tracked = subprocess.run(["git", "ls-files", "airflow.env"], cwd=ROOT, capture_output=True, text=True)
    assert tracked.stdout.strip() == ""


@pytest.mark.parametrize("path", ["airflow.env.example", "deploy/demo/airflow.env"])
def test_the_metadata_database_password_is_the_same_everywhere(path):
    env = env_file(ROOT / path)
    password = env["POSTGRES_PASSWORD"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"postgresql+psycopg2://airflow:{password}@postgres/airflow"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+postgresql://airflow:{password}@postgres/airflow"


def test_the_demo_profile_points_the_test_bed_at_its_own_services(compose):
    from testbed import compose_demo

    demo = env_file(ROOT / "deploy" / "demo" / "airflow.env")
    services = compose["services"]
    assert {demo["TESTBED_DB_HOST"], compose_demo.MOODLE_HOST, compose_demo.MAIL["host"]} <= set(services)
    assert demo["MARIADB_ROOT_PASSWORD"] == demo["TESTBED_DB_ROOT_PASSWORD"] and demo["TESTBED_DB_USER_HOSTS"] == "%"
    assert f"('localhost', {demo['TESTBED_DEMO_SSH_PORT']})" in services["demo-moodle"]["healthcheck"]["test"][-1]
    assert services["demo-moodle"]["volumes"] == [f"demo-ssh:{demo['TESTBED_DEMO_DIR']}/ssh"]
    assert services["demo-init"]["depends_on"]["demo-moodle"]["condition"] == "service_healthy"
    assert "AIRFLOW_CONN_MOODLE_SSH" not in demo, "demo-init writes the connections (the host key is made at start)"


def test_the_runbook_says_what_every_reason_code_means_and_what_to_do():
    from include.parent_provisioning.reasons import TEXTS

    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text()
    table = runbook[runbook.index("## Reason codes") : runbook.index("## 6.")]
    documented = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    assert documented == set(TEXTS), (
        f"in the code only: {set(TEXTS) - documented}; in the runbook only: {documented - set(TEXTS)}"
    )


def test_make_stack_runs_the_compose_files_settings_and_lists_where_it_differs(compose):
    """One source of truth: `make stack` reads the compose file's common environment and the env file; every
    setting it changes for one machine is a key compose sets, listed with its reason in NATIVE."""
    settings_ = native.compose_settings()
    assert set(native.NATIVE) <= set(settings_), set(native.NATIVE) - set(settings_)
    stack = native.AirflowStack(BedConfig.from_env("demo"))
    stack.state = {"ports": {"api": 18080, "redis": 16379, "smtp": 11025}}
    env = stack.environment("worker-1")
    assert {k for k in settings_ if env.get(k) != settings_[k]} == set(native.NATIVE)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://127.0.0.1:16379/")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    # The compose file sets no per-process key: there each container has its own host and ports.
    assert not (set(native.PER_PROCESS) | set(native.ON_ONE_MACHINE)) & set(settings_)
    # Connections and the Variable live in the stack's metadata database, never in a process's environment.
    assert not [k for k in env if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]
    # The Deadline Alerts at the compose stack's own values, not switched off.
    assert (
        env["PARENT_PROVISIONING_DEADLINE_MINUTES"] == env_file(native.ENV_FILE)["PARENT_PROVISIONING_DEADLINE_MINUTES"]
    )


def test_make_stack_starts_each_compose_service_with_its_own_command(compose):
    stack = native.AirflowStack(BedConfig.from_env("demo"))
    stack.state = {"ports": {"api": 18080, "redis": 16379, "smtp": 11025}}
    for process, service in native.SERVICES.items():
        name = f"{process}-1" if process == "worker" else process
        command = str(compose["services"][service]["command"]).split()
        assert stack.argv(name)[1 : 1 + len(command)] == command, (process, service)
    assert native.SERVICES["worker"] == "airflow-worker" and compose["services"]["airflow-worker"]["profiles"] == [
        "celery"
    ]
    assert len(native.WORKERS) == 2


def test_the_runbook_stops_the_plugins_real_cycle_and_maps_every_setting_it_needs():
    """The WordPress plugin's cycle is a system crontab line running its CLI script (it has no WP-Cron
    event), and its force button sets an option that line reads: the migration must name both."""
    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text()
    migration = runbook[runbook.index("## 3. Moving from the WordPress plugin") : runbook.index("## 4.")]
    assert "cli/run-provision-cycle.php" in migration and "crontab" in migration
    assert "tvs-moodle-parent-provisioning-force-provisioning-cycle" in migration
    assert "wp cron event" not in runbook
    for key in ("moodle_dir", "php_path", "sudo_user", "moodle_url", "parent_role", "static_context_ids", "match_by"):
        assert f"`{key}`" in migration, key
        assert key in settings.Settings.__dataclass_fields__, key
