"""The production topology, for real: `make stack`'s processes (PostgreSQL metadata database, Redis,
CeleryExecutor, scheduler, dag-processor, triggerer, api-server, two Celery workers) started once for
these tests, on the session's test bed. Runs are triggered and read through Airflow's REST API; each
task runs on a Celery worker; the effects are read in MariaDB, as in every other cycle test."""

from __future__ import annotations

import json
import time

import pytest

from include.parent_provisioning import names
from testbed.airflow_stack import WORKERS, AirflowStack, _session
from tests.cycle.school import School, settings_for

# How this stack differs from `make stack`, and why: each is a setting a school could set too.
TEST_STACK_ENV = {
    # No nightly run in the middle of a test: the scheduled-run test sets a schedule of every minute.
    "PARENT_PROVISIONING_SCHEDULE": "0 3 29 2 *",
    # A retry 5 s after a failure rather than 60 s: the fault tests wait for retries.
    "PARENT_PROVISIONING_RETRY_DELAY_SECONDS": "5",
    # A task whose worker died is failed (and retried) after 20 s without a heartbeat, not 300 s, looked for
    # every 5 s, not 10 s.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
}
DAG_ID = names.DAG_ID


class StackSchool(School):
    """A School whose cycles run on the stack."""

    def __init__(self, bed, stack: AirflowStack):
        super().__init__(bed)
        self.bed, self.stack = bed, stack

    def use(self, smtp_port: int | None = None, **settings) -> None:
        """The stack's connections (to this test bed) and settings Variable, as an admin sets them in the UI."""
        connections = self.bed.airflow_connections()
        if smtp_port:
            extra = {"from_email": "airflow@school.example", "disable_ssl": True, "disable_tls": True}
            connections[names.SMTP_CONN_ID] = {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                "extra": extra,
            }
        variables = {names.SETTINGS_VARIABLE: json.dumps(settings_for(self.bed, **settings))}
        self.stack.register(connections, variables)

    def cycle(self, conf: dict | None = None, timeout_s: float = 600) -> tuple[dict, dict[str, dict]]:
        """Trigger a run through the REST API and wait for it: (the run, {task_id: task instance})."""
        run_id = self.stack.trigger(conf)
        run = self.stack.wait_for_run(run_id, timeout_s)
        return run, self.stack.task_instances(run_id)


@pytest.fixture(scope="session")
def stack(bed):
    s = AirflowStack(bed.cfg, extra_env=dict(TEST_STACK_ENV))
    s.up()
    yield s
    started = dict(s.state.get("pids", {}))
    s.down()
    left = {name: pid for name, pid in started.items() if _session(pid)}
    assert not left, f"still running after the stack was stopped: {left}"


@pytest.fixture
def on_stack(stack, fresh):
    """A fresh test bed, the stack pointed at it, every worker up and no run left going."""
    for worker in WORKERS:
        if not stack.pid(worker):
            stack.start_airflow(worker)
    stack.wait_until_ready()
    for run in stack.runs():
        if run["state"] in ("queued", "running"):
            stack.wait_for_run(run["dag_run_id"])
    school = StackSchool(fresh, stack)
    school.use()
    return school


def wait_for(what, timeout_s: float = 120, every_s: float = 0.2):
    """Poll `what()` until it returns something true; that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(every_s)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {getattr(what, '__name__', what)}")


def running_on(stack: AirflowStack, run_id: str, task_id: str) -> str | None:
    """The worker a task is running on, once it runs."""
    ti = stack.task_instances(run_id).get(task_id) or {}
    return ti.get("hostname") if ti.get("state") == "running" else None


def successful_tries(stack: AirflowStack, run_id: str) -> dict[str, int]:
    """How many times each task succeeded in the run: 1 each, or something ran twice."""
    out = {}
    for task_id in stack.task_instances(run_id):
        out[task_id] = sum(t["state"] == "success" for t in stack.tries(run_id, task_id))
    return out
