"""One real run of the provisioning DAG (`dag.test()`), measured task by task.

Run as its own process (`python -m bench.dag_run SPEC.json`) so that its memory figures are
those of a process that runs the DAG and nothing else. An Airflow listener takes the
servers' counters when each task starts and ends; the DAG's code is not touched.
SPEC: {"users": {label: MariaDB user}, "sshd_log": path, "conf": {...}, "out": path,
       "private": path of a file of the school's names and emails, one a line, or null}.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from airflow.listeners import hookimpl

from bench.probe import ServerCounters, peak_memory_mb, reset_peak_memory
from include.parent_provisioning import names
from testbed.config import PROJECT_ROOT

DAG_ID = names.DAG_ID


class TaskProbe:
    """An Airflow listener: counters at each task's start and end."""

    def __init__(self, counters: ServerCounters):
        self.counters = counters
        self.started: dict[str, tuple[float, object]] = {}
        self.tasks: dict[str, dict] = {}

    def _begin(self, task_instance) -> None:
        reset_peak_memory()
        self.started[task_instance.task_id] = (time.monotonic(), self.counters.read())

    def _end(self, task_instance, state: str) -> None:
        t0, before = self.started.pop(task_instance.task_id)
        seconds = time.monotonic() - t0
        delta = self.counters.read().minus(before)
        self.tasks[task_instance.task_id] = {
            "state": state,
            "seconds": round(seconds, 3),
            "statements": delta.statements,
            "ssh_sessions": delta.ssh_sessions,
            "peak_rss_mb": round(peak_memory_mb(), 1),
        }

    # The listener hooks, found by name.
    @hookimpl
    def on_task_instance_running(self, previous_state, task_instance):
        self._begin(task_instance)

    @hookimpl
    def on_task_instance_success(self, previous_state, task_instance):
        self._end(task_instance, "success")

    @hookimpl
    def on_task_instance_failed(self, previous_state, task_instance, error):
        self._end(task_instance, "failed")


def xcom_values(run_id: str) -> dict[str, list[str]]:
    """Each task's XComs as the JSON the metadata DB stores."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    values: dict[str, list[str]] = {}
    with create_session() as session:
        for task_id, value in session.query(XComModel.task_id, XComModel.value).filter(
            XComModel.dag_id == DAG_ID, XComModel.run_id == run_id
        ):
            values.setdefault(task_id, []).append(json.dumps(value))
    return values


def private_in(texts, private: set[str]) -> list[str]:
    """The names and emails found among the words of the texts (XCom must carry ids and counts only)."""
    words = {w.lower() for text in texts for w in re.findall(r"[\w.@+'-]+", text)}
    return sorted(words & private)


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.listener import get_listener_manager

    counters = ServerCounters(spec["users"], Path(spec["sshd_log"]) if spec.get("sshd_log") else None)
    probe = TaskProbe(counters)
    get_listener_manager().add_listener(probe)
    dag = DagBag(dag_folder=str(PROJECT_ROOT / "dags")).get_dag(DAG_ID)
    for t in dag.tasks:
        t.retries = 0  # a benchmark reports a failure, it does not wait for retries
    before = counters.read()
    started = time.monotonic()
    dr = dag.test(run_conf=spec["conf"], logical_date=datetime.now(UTC))
    total = time.monotonic() - started
    after = counters.read().minus(before)
    xcoms = xcom_values(dr.run_id)
    private = set(Path(spec["private"]).read_text().splitlines()) if spec.get("private") else set()
    result = {
        "run_id": dr.run_id,
        "state": str(dr.state),
        "seconds": round(total, 3),
        "statements": after.statements,
        "ssh_sessions": after.ssh_sessions,
        "tasks": probe.tasks,
        "xcom_bytes": {task_id: sum(map(len, v)) for task_id, v in xcoms.items()},
        "xcom_private": private_in((t for v in xcoms.values() for t in v), private)[:20],
        "report": _report_value(dr),
    }
    counters.close()
    Path(spec["out"]).write_text(json.dumps(result, indent=1, default=str))
    return 0 if result["state"] == "success" else 1


def _report_value(dr) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel.value)
            .filter(XComModel.dag_id == DAG_ID, XComModel.run_id == dr.run_id, XComModel.task_id == "report")
            .filter(XComModel.key == "return_value")
            .first()
        )
    return row[0] if row is not None else {}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
