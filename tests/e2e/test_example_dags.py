"""The example DAGs in ``example_dags/`` run by real Airflow (``dag.test()``, triggers inline)
against the simulated cluster ``make demo`` uses: a CPU pool, an autoscaled GPU pool tainted
like GKE's GPU nodes, and Kueue with a LocalQueue ``team-a-queue`` in ``batch``.

Each test checks the outcome in Airflow (task states, XCom), in the task log (captured from
``dag.test()``'s output with ``capsys``) and on the cluster (Jobs, labels, pods, events, Kueue
Workloads).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import demo  # scripts/demo.py (pytest's pythonpath)
import pytest

from airflow_k8s_jobs.manifests.names import (
    DAG_ID,
    MANAGED_BY,
    MAP_INDEX,
    RUN_ID,
    TASK_ID,
    TRY_NUMBER,
)
from simulated_k8s_cluster import SimulatedCluster

from .conftest import load_dag

pytestmark = pytest.mark.e2e

LOGICAL_DATE = datetime(2026, 11, 2, tzinfo=timezone.utc)
DS = "2026-11-02"
JOB_NAME = "batch.kubernetes.io/job-name"
INDEX = "batch.kubernetes.io/job-completion-index"
QUEUE = "kueue.x-k8s.io/queue-name"
KUEUE_JOB_UID = "kueue.x-k8s.io/job-uid"
NODE_POOL = "cloud.google.com/gke-nodepool"


@pytest.fixture
def examples_cluster(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimulatedCluster]:
    """The demo's simulated cluster behind the ``gke_batch`` connection the DAGs use."""
    with SimulatedCluster(demo.EXAMPLES_CLUSTER) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml")
        conn = {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig_path": str(kubeconfig), "namespace": "batch"},
        }
        monkeypatch.setenv("AIRFLOW_CONN_GKE_BATCH", json.dumps(conn))
        yield cluster


class Run:
    def __init__(self, dag_run: Any, log: str) -> None:
        self.dag_run = dag_run
        self.log = log
        """Everything ``dag.test()`` printed: the task and trigger logs among it."""

    @property
    def states(self) -> dict[str, str]:
        return {
            ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": str(ti.state)
            for ti in self.dag_run.get_task_instances()
        }

    @property
    def interval(self) -> tuple[str, str]:
        """The run's data interval as dates (Airflow infers it from the schedule)."""
        start, end = self.dag_run.data_interval_start, self.dag_run.data_interval_end
        return start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")

    def xcom(self, task_id: str, map_index: int = -1) -> Any:
        ti = next(
            t
            for t in self.dag_run.get_task_instances()
            if t.task_id == task_id and t.map_index == map_index
        )
        if map_index >= 0:
            return ti.xcom_pull(task_ids=task_id, map_indexes=map_index)
        return ti.xcom_pull(task_ids=task_id)


def run_example(
    file_name: str,
    dag_id: str,
    capsys: pytest.CaptureFixture[str],
    logical_date: datetime = LOGICAL_DATE,
) -> Run:
    """``dag.test()`` of an example DAG. A DAG run twice in one session needs another logical
    date: Airflow 2.11's ``dag.test()`` cannot delete an earlier run of the same date."""
    dag = load_dag(file_name, dag_id)
    capsys.readouterr()
    if "logical_date" in dag.test.__code__.co_varnames:  # Airflow 3
        dag_run = dag.test(logical_date=logical_date, run_after=logical_date)
    else:  # Airflow 2.11
        dag_run = dag.test(execution_date=logical_date)
    out = capsys.readouterr()
    run = Run(dag_run, out.out + out.err)
    assert str(dag_run.state) == "success", run.log[-5000:]
    return run


def jobs_of(cluster: SimulatedCluster, dag_id: str) -> list[dict[str, Any]]:
    jobs = cluster.list("jobs", "batch", {DAG_ID: dag_id})
    return sorted(jobs, key=lambda j: int(j["metadata"]["labels"].get(MAP_INDEX, "-1")))


def pods_of(cluster: SimulatedCluster, job: dict[str, Any]) -> list[dict[str, Any]]:
    return cluster.list("pods", "batch", {JOB_NAME: job["metadata"]["name"]})


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in obj["status"].get("conditions") or [] if c["type"] == kind]
    assert found, f"no {kind} condition in {obj['status']}"
    return dict(found[0])


def assert_identity(job: dict[str, Any], dag_id: str, task_id: str, map_index: int = -1) -> None:
    labels = job["metadata"]["labels"]
    assert labels[DAG_ID] == dag_id
    assert labels[TASK_ID] == task_id
    # Only mapped tasks carry a map-index label; the annotation always has the exact value.
    assert labels.get(MAP_INDEX) == (str(map_index) if map_index >= 0 else None)
    assert job["metadata"]["annotations"][MAP_INDEX] == str(map_index)
    assert labels[TRY_NUMBER] == "1"
    assert labels[RUN_ID]
    for key, value in MANAGED_BY.items():
        assert labels[key] == value


# --- indexed_fanout.py ---------------------------------------------------------------------------


def test_indexed_fanout(examples_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]):
    run = run_example("indexed_fanout.py", "indexed_fanout", capsys)
    assert run.states == {"preprocess_shards": "success", "combine": "success"}

    (job,) = jobs_of(examples_cluster, "indexed_fanout")
    assert_identity(job, "indexed_fanout", "preprocess_shards")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert (spec["completions"], spec["parallelism"], spec["backoffLimitPerIndex"]) == (8, 4, 2)
    args = container(job)["args"]
    assert args[:4] == ["--date", DS, "--shards", "8"]
    assert f"gs://my-project-raw/events/dt={DS}/" in args
    assert condition(job, "Complete")["status"] == "True"

    # Shard 5 failed once and was retried on its own; shard 0 ran longest and finished last.
    pods = pods_of(examples_cluster, job)
    by_index: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        by_index.setdefault(pod["metadata"]["annotations"][INDEX], []).append(pod)
    assert sorted(by_index, key=int) == [str(i) for i in range(8)]
    assert [p["status"]["phase"] for p in by_index["5"]].count("Failed") == 1
    assert all(len(by_index[str(i)]) == 1 for i in range(8) if i != 5)
    assert job["status"]["succeeded"] == 8
    assert job["status"]["failed"] == 1

    def finished_at(index: str) -> str:
        pod = next(p for p in by_index[index] if p["status"]["phase"] == "Succeeded")
        return str(pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"])

    # Timestamps have whole seconds, and the shortened run fits in a few: none after shard 0.
    assert finished_at("0") >= max(finished_at(str(i)) for i in range(1, 8))

    # XCom: one termination message per index, in index order (not finishing order).
    messages = run.xcom("preprocess_shards")
    assert [json.loads(m)["shard"] for m in messages] == list(range(8))
    assert run.xcom("combine") == {
        "shards": 8,
        "rows_in": 250_000 + 7 * 125_000,
        "rows_out": 249_310 + 7 * 124_800,
    }
    # The task log has every pod's log, the failed attempt of shard 5 included.
    for pod in pods:
        assert f"---- {pod['metadata']['name']}[" in run.log
    assert "ConnectionResetError" in run.log


# --- dynamic_mapping.py --------------------------------------------------------------------------


def test_dynamic_mapping(examples_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]):
    run = run_example("dynamic_mapping.py", "dynamic_mapping", capsys)
    regions = ["europe-west1", "us-central1", "asia-northeast1"]
    assert run.states == {
        "list_partitions": "success",
        "export_partition[0]": "success",
        "export_partition[1]": "success",
        "export_partition[2]": "success",
        "report": "success",
    }

    day = run.interval[0]  # the partitions of the data interval, not of the logical date
    jobs = jobs_of(examples_cluster, "dynamic_mapping")
    assert len(jobs) == 3
    names = [j["metadata"]["name"] for j in jobs]
    assert len(set(names)) == 3
    for map_index, (job, region) in enumerate(zip(jobs, regions, strict=True)):
        assert_identity(job, "dynamic_mapping", "export_partition", map_index)
        assert job["metadata"]["name"].startswith(
            f"dynamic-mapping-export-partition-m{map_index}-t1-"
        )
        # Each mapped task got its own element of the upstream list as its arguments.
        assert container(job)["args"] == [
            "--region",
            region,
            "--date",
            day,
            "--output",
            f"gs://my-project-exports/{region}/dt={day}/",
        ]
        assert container(job)["command"] == ["python", "-m", "export"]
        assert condition(job, "Complete")["status"] == "True"
        assert json.loads(run.xcom("export_partition", map_index)[0])["region"] == region
        assert f"Created Job batch/{job['metadata']['name']}" in run.log

    assert run.xcom("report") == {
        "europe-west1": 48210,
        "us-central1": 77002,
        "asia-northeast1": 12954,
    }


# --- gpu_scale_up.py -----------------------------------------------------------------------------


def test_gpu_scale_up(examples_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]):
    gpu_nodes = [
        n for n in examples_cluster.list("nodes") if n["metadata"]["labels"][NODE_POOL] == "gpu"
    ]
    assert gpu_nodes == []  # the pool starts at zero

    run = run_example("gpu_scale_up.py", "gpu_scale_up", capsys)
    assert run.states == {"fine_tune": "success", "register_model": "success"}

    (job,) = jobs_of(examples_cluster, "gpu_scale_up")
    assert_identity(job, "gpu_scale_up", "fine_tune")
    pod_spec = job["spec"]["template"]["spec"]
    terms = pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert {"key": NODE_POOL, "operator": "In", "values": ["gpu"]} in terms["nodeSelectorTerms"][0][
        "matchExpressions"
    ]
    tolerated = {t["key"] for t in pod_spec["tolerations"]}
    assert {"nvidia.com/gpu", NODE_POOL} <= tolerated
    assert container(job)["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    start, end = run.interval
    assert container(job)["args"][:4] == ["--train-from", start, "--train-to", end]
    assert {"name": "RUN_DATE", "value": DS} in container(job)["env"]

    # The pod was unschedulable, the autoscaler added a GPU node, the pod ran on it.
    (pod,) = pods_of(examples_cluster, job)
    name = pod["metadata"]["name"]
    assert examples_cluster.events("batch", name, "FailedScheduling")
    (scale_up,) = examples_cluster.events("batch", name, "TriggeredScaleUp")
    assert "gpu 0->1" in scale_up["message"]
    node = examples_cluster.get("nodes", None, pod["spec"]["nodeName"])
    assert node is not None and node["metadata"]["labels"][NODE_POOL] == "gpu"
    assert "waiting for capacity: scale-up triggered" in run.log

    checkpoint = f"gs://my-project-models/ranker/{DS}/"
    assert json.loads(run.xcom("fine_tune")[0]) == {"eval_loss": 0.412, "checkpoint": checkpoint}
    assert run.xcom("register_model") == checkpoint


# --- kueue_queued.py -----------------------------------------------------------------------------


def workload_of(cluster: SimulatedCluster, job: dict[str, Any]) -> dict[str, Any]:
    (workload,) = cluster.list("workloads", "batch", {KUEUE_JOB_UID: job["metadata"]["uid"]})
    return workload


def test_kueue_queued(examples_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]):
    run = run_example("kueue_queued.py", "kueue_queued", capsys)
    assert run.states == {"backfill_features": "success"}

    (job,) = jobs_of(examples_cluster, "kueue_queued")
    assert_identity(job, "kueue_queued", "backfill_features")
    assert job["metadata"]["labels"][QUEUE] == "team-a-queue"
    assert job["spec"]["suspend"] is False  # created suspended, started by Kueue
    name = job["metadata"]["name"]
    assert examples_cluster.events("batch", name, "CreatedWorkload")
    (started,) = examples_cluster.events("batch", name, "Started")
    assert started["message"] == "Admitted by clusterQueue team-a"

    workload = workload_of(examples_cluster, job)
    assert workload["spec"]["queueName"] == "team-a-queue"
    assert condition(workload, "Admitted")["status"] == "True"
    assert workload["status"]["admission"]["clusterQueue"] == "team-a"
    assert condition(workload, "Finished")["reason"] == "Succeeded"
    # Kueue's flavor put the pods on the default pool.
    for pod in pods_of(examples_cluster, job):
        assert pod["spec"]["nodeSelector"][NODE_POOL] == "default"
    assert run.xcom("backfill_features") == ['{"rows": 1250000}'] * 2


def test_kueue_queued_waits_for_quota(
    examples_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
):
    """Another Job holds 6 of the queue's 8 CPUs: the DAG's Job (4 CPUs) waits, deferred, until
    that Job is gone, then Kueue admits it — the wait counts as waiting for capacity."""
    with demo.QuotaHolder(examples_cluster, "kueue_queued", hold=120, timeout=120) as holder:
        run = run_example(
            "kueue_queued.py", "kueue_queued", capsys, datetime(2026, 11, 3, tzinfo=timezone.utc)
        )
    # 120 seconds shortened by the cluster's time scale, in wall seconds.
    assert holder.waited is not None and holder.waited >= examples_cluster.clock.scaled(120)
    assert examples_cluster.get("jobs", "batch", demo.QUOTA_HOLDER) is None
    assert run.states == {"backfill_features": "success"}

    (job,) = jobs_of(examples_cluster, "kueue_queued")
    workload = workload_of(examples_cluster, job)
    (pending,) = examples_cluster.events("batch", workload["metadata"]["name"], "Pending")[:1]
    assert (
        "insufficient unused quota for cpu in flavor default, 2 more needed" in (pending["message"])
    )
    assert condition(workload, "Admitted")["status"] == "True"
    assert "insufficient unused quota for cpu" in run.log
    assert condition(job, "Complete")["status"] == "True"
