"""``execution_timeout`` is honoured while deferred: the task times out and its Job is deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_k8s_jobs._compat import AirflowTaskTimeout
from simulated_k8s_cluster import SimulatedCluster

from .conftest import load_dag

pytestmark = pytest.mark.e2e
TEST_DAGS = Path(__file__).parent / "dags"


def test_execution_timeout_while_deferred_deletes_the_job(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    # train.py runs 30 simulated seconds; make it much longer than the 3 s execution_timeout.
    e2e_cluster.add_behaviour(
        {"match": {"image": "task-python:1.0", "args": "train.py"}, "seconds": 100_000}
    )
    dag = load_dag(str(TEST_DAGS / "execution_timeout_job.py"), "execution_timeout_job")
    try:
        dag_run = dag.test()
    except AirflowTaskTimeout as exc:  # Airflow 2.11's dag.test() re-raises a task timeout
        raised = str(exc)
    else:
        (ti,) = dag_run.get_task_instances()
        assert str(ti.state) == "failed"
        raised = ""
    out = capsys.readouterr().out
    assert "execution_timeout ran out" in out + raised
    e2e_cluster.wait_for(
        lambda: not e2e_cluster.list("jobs", "batch"), message="the timed-out Job to be deleted"
    )
    assert e2e_cluster.requests(verb="delete", resource="jobs") == 1
