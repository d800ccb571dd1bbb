"""The example DAGs under a real deployment: the scheduler schedules, a LocalExecutor worker
submits and defers, the triggerer process waits, a new worker resumes and finishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulated_k8s_cluster import SimulatedCluster

from .conftest import EXAMPLE_DAGS
from .deployment import PostgresServer, deployment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_gke_batch_job_runs_through_scheduler_worker_and_triggerer(
    tmp_path: Path,
    postgres: PostgresServer,
    cluster_connection: tuple[SimulatedCluster, dict[str, Any]],
) -> None:
    cluster, conn = cluster_connection
    dags = {"gke_batch_job.py": EXAMPLE_DAGS / "gke_batch_job.py"}
    with deployment(tmp_path, postgres, dags, {"gke_batch": conn}) as airflow:
        airflow.unpause("gke_batch_job")
        run_id = airflow.first_run("gke_batch_job")
        state = airflow.wait_for_run("gke_batch_job", run_id, timeout=600)
        tasks = airflow.tasks("gke_batch_job", run_id)
        assert state == "success", (tasks, airflow.component_logs()[-6000:])
        assert {k: t.state for k, t in tasks.items()} == {
            "preprocess": "success",
            "train": "success",
        }
        # Each task deferred to the triggerer and came back: its log has both halves.
        log = airflow.task_log("gke_batch_job", run_id, "train")
        assert "model saved" in log, log[-4000:]
        assert airflow.xcom("gke_batch_job", run_id, "preprocess") is not None
        # One Job per task: resuming on a new worker re-attached, it created nothing twice.
        assert len(cluster.list("jobs", "batch")) == 2
