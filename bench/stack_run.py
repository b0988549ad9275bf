"""The cycle on the production topology (testbed/airflow_stack.py: PostgreSQL, Redis, CeleryExecutor,
scheduler, dag-processor, triggerer, api-server, two Celery workers), triggered through the REST API,
on the same school `dag.test()` ran. What the scheduler and the executor add shows as the wait before
each task: from the moment its last upstream task ended to the moment the task started on a worker."""

from __future__ import annotations

import json
import statistics
import time
from datetime import datetime

from bench.report import MOODLE_TASKS
from include.parent_provisioning import names
from testbed import verify
from testbed.airflow_stack import DAG_ID, AirflowStack
from testbed.stack import TestBed


def _t(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def measure(bed: TestBed, sizes: list[int], prepare) -> list[dict]:
    """One cycle per size on one stack; prepare(size) loads a fresh school and returns (school, settings)."""
    stack = AirflowStack(bed.cfg)
    started = time.monotonic()
    stack.up()
    up_s = time.monotonic() - started
    results = []
    try:
        upstream: dict[str, list[str]] = {}
        for t in stack.api("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]:
            upstream.setdefault(t["task_id"], [])
            for down in t["downstream_task_ids"]:
                upstream.setdefault(down, []).append(t["task_id"])
        for size in sizes:
            school, settings = prepare(size)
            stack.register(bed.airflow_connections(), {names.SETTINGS_VARIABLE: json.dumps(settings)})
            run_id = stack.trigger()
            run = stack.wait_for_run(run_id, timeout_s=3600)
            state = verify.end_state(bed.cfg, school)
            ended = {"ok": state.ok and run["state"] == "success", "text": state.describe()}
            measured = figures(run, stack.task_instances(run_id), upstream)
            results.append({**measured, "size": size, "up_s": round(up_s, 1), "end_state": ended})
    finally:
        stack.down()
    return results


def figures(run: dict, tis: dict[str, dict], upstream: dict[str, list[str]]) -> dict:
    """A run's figures from its and its task instances' times as Airflow's REST API gives them."""
    run_start, run_end = _t(run["start_date"]), _t(run["end_date"])
    tasks = {}
    for task_id, ti in tis.items():
        start, end = _t(ti["start_date"]), _t(ti["end_date"])
        ready = max((_t(tis[u]["end_date"]) for u in upstream[task_id]), default=run_start)
        tasks[task_id] = {
            "seconds": (end - start).total_seconds(),
            "wait_s": (start - ready).total_seconds(),
            "worker": ti["hostname"],
            "state": ti["state"],
        }
    wall = (run_end - run_start).total_seconds()
    moodle_s = sum(tasks[t]["seconds"] for t in MOODLE_TASKS if t in tasks)
    waits = [t["wait_s"] for t in tasks.values()]
    last_end = max(_t(ti["end_date"]) for ti in tis.values())
    return {
        "state": run["state"],
        "queued_s": (run_start - _t(run["queued_at"])).total_seconds(),
        "wall_s": wall,
        "moodle_s": moodle_s,
        "own_s": wall - moodle_s,
        "inside_s": sum(t["seconds"] for name, t in tasks.items() if name not in MOODLE_TASKS),
        "waits_s": sum(waits),
        "wait_median_s": statistics.median(waits),
        "wait_max_s": max(waits),
        "tail_s": (run_end - last_end).total_seconds(),
        "workers": sorted({t["worker"] for t in tasks.values()}),
        "tasks": tasks,
    }
