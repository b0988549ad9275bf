"""Real DAG runs (dag.test) against MariaDB, OpenSSH and the Moodle double."""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path

import pytest

from include.parent_provisioning import names
from tests.cycle.school import School, use_settings

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def provisioning_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.get_dag(names.DAG_ID)


@pytest.fixture(scope="session")
def adoption_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    return bag.get_dag(names.ADOPT_DAG_ID)


@pytest.fixture
def school(fresh):
    use_settings(fresh)
    return School(fresh)


def run_dag(dag, conf=None, retries=0, retry_delay_s=1, rerun=None):
    """Run the DAG once, for real, with fast retries; returns the run and {task_id: state}.
    rerun: an earlier DagRun to clear and run again (same run id), as 'Clear' does in the UI."""
    for t in dag.tasks:
        t.retries = retries
        t.retry_delay = timedelta(seconds=retry_delay_s)
        t.retry_exponential_backoff = 0
    kwargs = {"logical_date": rerun.logical_date, "run_after": rerun.run_after} if rerun else {}
    # Always the whole conf: dag.test() keeps an earlier run's conf in the in-memory DAG's params.
    dr = dag.test(
        run_conf={
            "request_ids": [],
            "dry_run": False,
            "allow_mass_suspension": False,
            "allow_mass_unlink": False,
            **(conf or {}),
        },
        **kwargs,
    )
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    return dr, states


@pytest.fixture
def run_cycle(provisioning_dag):
    """run_dag on the provisioning DAG."""
    return functools.partial(run_dag, provisioning_dag)
