"""One real DAG run (`dag.test()`) in a process of its own, which a fault test may kill.

    python -m tests.cycle.runner SPEC.json

SPEC: {"out": path, "conf": {...}, "retries": 0, "retry_delay_s": 1, "logical_date": iso or null,
       "run_after": iso or null (a manual run's id is made from it: give it to re-run that very run),
       "kill_after": "module:function[@N]" or null, "kill_after_sql": "text[@N]" or null,
       "kill_after_task": task_id or null, "env": {AIRFLOW_CONN_*/AIRFLOW_VAR_* of the moment} or null}

- kill_after: SIGKILL this process right after that function returns (its statements sent,
  its transaction not committed unless it commits itself), the way a node dies mid-task.
  `@N`: on its Nth call in the run (collect and link_children both write outcomes, say).
- kill_after_sql: SIGKILL it right after the server answered the Nth statement containing
  this text, before the code that sent it goes on (a batch half-written, not committed).
- kill_after_task: SIGKILL it as soon as that task has succeeded, before the next one starts.
The run's id, logical date and task states are written to `out` as soon as they are known
(before any kill), so the test can clear and re-run the same run afterwards.

Started before its SPEC exists (`Ahead`), a runner does Airflow's start-up first and then waits
for it, so a test's runner need not start from cold.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.listeners import hookimpl

from include.parent_provisioning import names
from testbed.config import PROJECT_ROOT

DAG_ID = names.DAG_ID


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class _Watch:
    """Writes the run's identity when its first task starts; kills after a named task."""

    def __init__(self, out: Path, kill_after_task: str | None):
        self.out, self.kill_after_task = out, kill_after_task

    @hookimpl
    def on_task_instance_running(self, previous_state, task_instance):
        if not self.out.exists():
            self.out.write_text(json.dumps({"run_id": task_instance.run_id, "state": "running"}))

    @hookimpl
    def on_task_instance_success(self, previous_state, task_instance):
        if task_instance.task_id == self.kill_after_task:
            _die()


def _nth(target: str) -> tuple[str, int]:
    what, _, nth = target.rpartition("@") if "@" in target else (target, "", "1")
    return what, int(nth)


def _kill_after(target: str) -> None:
    target, nth = _nth(target)
    module_name, func_name = target.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, func_name)
    calls = itertools.count(1)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        if next(calls) == nth:
            _die()
        return result

    setattr(module, func_name, wrapper)


def _kill_after_sql(target: str) -> None:
    text, nth = _nth(target)
    from MySQLdb.cursors import BaseCursor

    original = BaseCursor._query
    seen = itertools.count(1)

    def query(self, q):
        result = original(self, q)
        if text.encode() in (q if isinstance(q, bytes | bytearray) else q.encode()) and next(seen) == nth:
            _die()
        return result

    BaseCursor._query = query


def migrate(home: Path) -> None:
    """A new, empty Airflow metadata DB: another deployment's."""
    import subprocess

    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env={**os.environ, "AIRFLOW_HOME": str(home)},
        check=True,
        capture_output=True,
    )


def _start(work: Path, name: str, env: dict | None):
    import subprocess

    log = (work / f"{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cycle.runner", str(work / f"{name}.spec.json")],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _write_spec(work: Path, name: str, spec: dict) -> Path:
    out = work / f"{name}.json"
    tmp = work / f"{name}.spec.tmp"
    tmp.write_text(json.dumps({"out": str(out), **spec}, default=str))
    tmp.replace(work / f"{name}.spec.json")  # whole, for a runner waiting for it
    return out


def launch(work: Path, name: str, env: dict | None = None, **spec):
    """Start a runner; returns (process, path of its result file)."""
    out = _write_spec(work, name, spec)
    return _start(work, name, env), out


class Ahead:
    """Runners started before they are needed: each does Airflow's start-up (about 6 s here) while
    the test before it runs, then waits for its spec. `launch` hands one its spec and starts the
    next. The Airflow connections and variables of the moment are passed with the spec."""

    def __init__(self, work: Path):
        self.work, self.count = work, 0
        self._next = self._start_one()

    def _start_one(self):
        self.count += 1
        name = f"run{self.count}"
        return name, _start(self.work, name, None)

    def launch(self, **spec):
        """(process, result file, log file) of a runner now running `spec`."""
        name, proc = self._next
        env = {k: v for k, v in os.environ.items() if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
        out = _write_spec(self.work, name, {**spec, "env": env})
        self._next = self._start_one()
        return proc, out, self.work / f"{name}.log"

    def close(self) -> None:
        _, proc = self._next
        proc.kill()
        proc.wait()


def main(spec_path: str) -> int:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.listener import get_listener_manager

    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags")).get_dag(DAG_ID)
    spec_file = Path(spec_path)
    if not spec_file.exists():  # started ahead: the rest of Airflow's start-up, then wait for the spec
        from airflow.sdk.execution_time.supervisor import in_process_api_server

        _ = in_process_api_server().transport  # the execution API app, built now rather than at the first task
        while not spec_file.exists():
            time.sleep(0.05)
    spec = json.loads(spec_file.read_text())
    os.environ.update(spec.get("env") or {})
    out = Path(spec["out"])
    out.unlink(missing_ok=True)
    get_listener_manager().add_listener(_Watch(out, spec.get("kill_after_task")))
    if spec.get("kill_after"):
        _kill_after(spec["kill_after"])
    if spec.get("kill_after_sql"):
        _kill_after_sql(spec["kill_after_sql"])
    for t in dag.tasks:
        t.retries = spec.get("retries", 0)
        t.retry_delay = timedelta(seconds=spec.get("retry_delay_s", 1))
        t.retry_exponential_backoff = 0
    logical_date = datetime.fromisoformat(spec["logical_date"]) if spec.get("logical_date") else datetime.now(UTC)
    run_after = datetime.fromisoformat(spec["run_after"]) if spec.get("run_after") else None
    dr = dag.test(
        run_conf={names.REQUEST_IDS: [], names.DRY_RUN: False, **spec.get("conf", {})},
        logical_date=logical_date,
        run_after=run_after,
    )
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    out.write_text(
        json.dumps(
            {
                "run_id": dr.run_id,
                "state": str(dr.state),
                "logical_date": dr.logical_date.isoformat(),
                "tasks": states,
            }
        )
    )
    return 0 if str(dr.state) == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
