"""``deferrable=False`` runs the same waiting code in the worker (real Airflow, both versions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulated_k8s_cluster import SimulatedCluster

from .conftest import load_dag

pytestmark = pytest.mark.e2e
TEST_DAGS = Path(__file__).parent / "dags"


def test_synchronous_mode_waits_in_the_worker(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = load_dag(str(TEST_DAGS / "sync_mode_job.py"), "sync_mode_job")
    capsys.readouterr()
    dag_run = dag.test()
    out = capsys.readouterr()
    log = out.out + out.err
    (ti,) = dag_run.get_task_instances()
    assert str(ti.state) == "success"
    assert ti.xcom_pull(task_ids="preprocess") == ["[1, 2, 3]"]
    # It waited through the watch hub (a watch that begins with the Jobs' state), never by
    # reading the Job.
    assert e2e_cluster.requests(verb="watch", resource="jobs") >= 1
    assert e2e_cluster.requests(verb="get", resource="jobs") == 0
    # The pod's lines came live, while the worker waited, before the full logs at the end.
    live = log.find("| preprocessing")
    final = log.find(" log lines")
    assert 0 <= live < final, log[-4000:]
