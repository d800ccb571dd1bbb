"""The end-to-end Job scenarios on the upstream control plane, run by real Airflow.

``scripts/real-cluster`` runs with the example DAGs' node pools and behaviours (durations cut to
wall-clock seconds) plus a one-node spot pool; Airflow (``airflow dags test``, as a subprocess,
on whichever Airflow this interpreter has) runs as the service account bound to
docs/rbac/airflow-k8s-jobs.yaml, so the real API server enforces that Role on every call.

- the example DAGs: the seed case (``gke_batch_job``), an Indexed fan-out with the logs of every
  pod (``indexed_fanout``), dynamic task mapping (``dynamic_mapping``), waiting for a scale-up
  (``gpu_scale_up``);
- tests/cluster/dags/real_cluster_scenarios.py: capacity timeout, bad image, preemption by the
  real scheduler, a retry, ``execution_timeout`` while deferred, re-attach after a worker crash;
- kill while deferred: the trigger driven as Airflow's triggerer drives it (on_kill on 3.3+,
  the task instance row on 2.11), the Job deleted through the real garbage collector.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import json
import re
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import demo  # scripts/demo.py (pytest's pythonpath)
import pytest
from kubernetes import client

from airflow_k8s_jobs._compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS
from airflow_k8s_jobs.manifests.names import DAG_ID, TASK_ID, TRY_NUMBER

from .airflow_runs import AirflowHome, DagRunResult
from .conftest import (
    ROOT,
    START_TIMEOUT,
    RunningCluster,
    least_privileged_kubeconfig,
    run_cluster_with_nodes,
    wait_for,
)

# Not skipped without KUBECONFIG (see conftest.py): the cluster is started here.
STARTS_OWN_CLUSTER = True

pytestmark = [pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT + 900)]

NAMESPACE = "batch"
LOGICAL_DATE = "2026-11-02"
DAG_RUN_TIMEOUT = 300
EXAMPLES_CONN = "gke_batch"
SCENARIOS_CONN = "real_cluster"
SCENARIOS = Path(__file__).parent / "dags" / "real_cluster_scenarios.py"
NODE_POOL = "cloud.google.com/gke-nodepool"
JOB_NAME = "batch.kubernetes.io/job-name"
INDEX = "batch.kubernetes.io/job-completion-index"
SPOT_TAINT = {"key": NODE_POOL, "value": "spot", "effect": "NoSchedule"}
SECONDS_DIVISOR = 40
"""The examples' behaviours last simulated minutes; here they run this many times faster."""


def cluster_config() -> dict[str, Any]:
    """The example DAGs' cluster (no Kueue, no Argo), on wall-clock time, plus a spot pool."""
    config = copy.deepcopy(
        {k: v for k, v in demo.EXAMPLES_CLUSTER.items() if k not in ("kueue", "argo")}
    )
    config["timeScale"] = 1
    config["autoscalerScanSeconds"] = 1
    for behaviour in config["behaviours"]:
        behaviour["seconds"] = max(1.0, behaviour["seconds"] / SECONDS_DIVISOR)
    for pool in config["nodePools"]:
        if "scaleUpSeconds" in pool:
            pool["scaleUpSeconds"] = max(1.0, pool["scaleUpSeconds"] / SECONDS_DIVISOR)
    config["nodePools"].append(
        {
            "name": "spot",
            "nodes": 1,
            "capacity": {"cpu": "2", "memory": "8Gi"},
            "labels": {NODE_POOL: "spot"},
            "taints": [SPOT_TAINT],
        }
    )
    config["behaviours"] += [
        {"match": {"image": "rc/huge:1"}, "seconds": 1},
        {"match": {"image": "rc/spot:1"}, "seconds": 12, "stdout": "spot work done"},
        {"match": {"image": "rc/urgent:1"}, "seconds": 2, "stdout": "urgent work done"},
        {
            "match": {"image": "rc/flaky:1", "labels": {TRY_NUMBER: "1"}},
            "seconds": 1,
            "exitCode": 1,
            "stdout": "flaky failure",
        },
        {"match": {"image": "rc/flaky:1"}, "seconds": 1, "stdout": "flaky ok"},
        {"match": {"image": "rc/slow:1"}, "seconds": 3600, "stdout": "still going"},
        {"match": {"image": "rc/simple:1"}, "seconds": 2, "stdout": "simple done"},
        {"match": {"image": "rc/long:1"}, "seconds": 3600, "stdout": "working"},
    ]
    return config


# --- the cluster and Airflow --------------------------------------------------------------------


class Scenarios:
    """The running cluster, the Airflow home and the DAG runs done so far."""

    def __init__(self, cluster: RunningCluster, home: AirflowHome, kubeconfig: Path) -> None:
        self.cluster = cluster
        self.home = home
        self.kubeconfig = kubeconfig
        self.runs: dict[str, DagRunResult] = {}
        self.core = client.CoreV1Api(cluster.api)
        self.batch = client.BatchV1Api(cluster.api)

    def run(self, dag_id: str) -> DagRunResult:
        if dag_id not in self.runs:
            self.runs[dag_id] = self.home.dags_test(dag_id, LOGICAL_DATE, DAG_RUN_TIMEOUT)
        return self.runs[dag_id]

    def jobs(self, dag_id: str) -> list[client.V1Job]:
        found = self.batch.list_namespaced_job(NAMESPACE, label_selector=f"{DAG_ID}={dag_id}")
        # creationTimestamp has whole seconds: a retry's Job may share its try 1's second.
        return sorted(
            found.items,
            key=lambda j: (
                j.metadata.creation_timestamp,
                int((j.metadata.labels or {}).get(TRY_NUMBER, 0)),
                j.metadata.name,
            ),
        )

    def pods(self, job: client.V1Job) -> list[client.V1Pod]:
        selector = f"{JOB_NAME}={job.metadata.name}"
        return list(self.core.list_namespaced_pod(NAMESPACE, label_selector=selector).items)

    def events(self, name: str, reason: str | None = None) -> list[client.CoreV1Event]:
        found = self.core.list_namespaced_event(
            NAMESPACE, field_selector=f"involvedObject.name={name}"
        ).items
        return [e for e in found if reason is None or e.reason == reason]


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenarios]:
    with run_cluster_with_nodes(tmp_path_factory, cluster_config()) as cluster:
        base = tmp_path_factory.mktemp("airflow")
        dags_folder = base / "dags"
        shutil.copytree(ROOT / "example_dags", dags_folder)
        shutil.copy(SCENARIOS, dags_folder)
        kubeconfig = least_privileged_kubeconfig(cluster, NAMESPACE, base / "kubeconfig.yaml")
        connection = {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig_path": str(kubeconfig), "namespace": NAMESPACE},
        }
        home = AirflowHome(
            base / "home", dags_folder, EXAMPLES_CONN, connection, {SCENARIOS_CONN: connection}
        )
        yield Scenarios(cluster, home, kubeconfig)


def error_text(run: DagRunResult) -> str:
    """The task failure's exception text as the task log shows it."""
    found = re.search(r"\b\w+Error: .*?(?=\n\S*\d{4}-\d\d-\d\d[ T]\d\d:\d\d|\Z)", run.output, re.S)
    assert found, f"no error in the task log:\n{run.tail()}"
    return found.group(0)


def load_dag(path: Path, dag_id: str) -> Any:
    """Import a DAG file as Airflow's DAG processor would, and return the DAG."""
    spec = importlib.util.spec_from_file_location(f"dag_file_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (dag,) = [v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id]
    return dag


# --- the example DAGs ---------------------------------------------------------------------------


def test_gpu_scale_up_waits_for_the_new_node(scenarios: Scenarios) -> None:
    run = scenarios.run("gpu_scale_up")
    assert run.states() == {"fine_tune": "success", "register_model": "success"}, run.tail()
    (job,) = scenarios.jobs("gpu_scale_up")
    (pod,) = scenarios.pods(job)
    assert scenarios.events(pod.metadata.name, "FailedScheduling")
    (scale_up,) = scenarios.events(pod.metadata.name, "TriggeredScaleUp")
    assert "gpu 0->1" in scale_up.message, scale_up.message
    assert "waiting for capacity: scale-up triggered" in run.output, run.tail()
    checkpoint = f"gs://my-project-models/ranker/{LOGICAL_DATE}/"
    assert run.xcom("register_model") == checkpoint


def test_gke_batch_job(scenarios: Scenarios) -> None:
    run = scenarios.run("gke_batch_job")
    assert run.states() == {"preprocess": "success", "train": "success"}, run.tail()
    assert run.xcom("preprocess") == ["[1, 2, 3]"]
    assert run.xcom("train") == ['{"auc": 0.91}']
    (train,) = [j for j in scenarios.jobs("gke_batch_job") if j.metadata.labels[TASK_ID] == "train"]
    (pod,) = scenarios.pods(train)
    # On the node the GPU pool scaled up to for gpu_scale_up (or one more, if that one is busy).
    node = scenarios.core.read_node(pod.spec.node_name)
    assert node.metadata.labels[NODE_POOL] == "gpu"


def test_indexed_fanout_logs_every_pod(scenarios: Scenarios) -> None:
    run = scenarios.run("indexed_fanout")
    assert run.states() == {"preprocess_shards": "success", "combine": "success"}, run.tail()
    (job,) = scenarios.jobs("indexed_fanout")
    assert (job.status.succeeded, job.status.failed) == (8, 1)
    pods = scenarios.pods(job)
    by_index: dict[str, list[client.V1Pod]] = {}
    for pod in pods:
        by_index.setdefault(pod.metadata.annotations[INDEX], []).append(pod)
    assert sorted(by_index, key=int) == [str(i) for i in range(8)]
    assert [p.status.phase for p in by_index["5"]].count("Failed") == 1
    # One termination message per index, in index order.
    assert [json.loads(m)["shard"] for m in run.xcom("preprocess_shards")] == list(range(8))
    assert run.xcom("combine") == {
        "shards": 8,
        "rows_in": 250_000 + 7 * 125_000,
        "rows_out": 249_310 + 7 * 124_800,
    }
    # The task log has every pod's log, the failed attempt of shard 5 included.
    for pod in pods:
        assert f"---- {pod.metadata.name}[" in run.output, pod.metadata.name
    assert "ConnectionResetError" in run.output
    assert "shard 0: 249310 rows out" in run.output


def test_dynamic_mapping_one_job_per_map_index(scenarios: Scenarios) -> None:
    run = scenarios.run("dynamic_mapping")
    assert run.states() == {
        "list_partitions": "success",
        "export_partition[0]": "success",
        "export_partition[1]": "success",
        "export_partition[2]": "success",
        "report": "success",
    }, run.tail()
    jobs = scenarios.jobs("dynamic_mapping")
    assert sorted(j.metadata.name.split("-t1-")[0] for j in jobs) == [
        f"dynamic-mapping-export-partition-m{i}" for i in range(3)
    ]
    assert run.xcom("report") == {
        "europe-west1": 48210,
        "us-central1": 77002,
        "asia-northeast1": 12954,
    }


# --- scenarios ----------------------------------------------------------------------------------


def test_capacity_timeout_fails_with_the_autoscalers_reason(scenarios: Scenarios) -> None:
    run = scenarios.run("rc_no_capacity")
    assert run.states() == {"huge": "failed"}, run.tail()
    # The task gave up on the Job: deleted with its pending pod, whose Events outlive them.
    assert scenarios.jobs("rc_no_capacity") == []
    name = run.xcom("huge", key="job_name")
    (created,) = scenarios.events(name, "SuccessfulCreate")
    pod_name = created.message.removeprefix("Created pod: ")

    def pod_gone() -> bool:
        try:
            scenarios.core.read_namespaced_pod(pod_name, NAMESPACE)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for("the garbage collector to delete the Job's pod", pod_gone)
    (event,) = scenarios.events(pod_name, "NotTriggerScaleUp")[-1:]
    assert "pod didn't trigger scale-up" in event.message
    error = error_text(run)
    assert "CapacityTimeout" in error and "waited 5s for capacity" in error, error
    assert event.message.split(":", 1)[1].strip() in error, error
    assert f"Deleted Job {NAMESPACE}/{name} on " in error, error
    assert "so that it does not wait for capacity for ever." in error, error


def test_bad_image_fails_fast(scenarios: Scenarios) -> None:
    run = scenarios.run("rc_bad_image")
    assert run.states() == {"bad_image": "failed"}, run.tail()
    error = error_text(run)
    assert "InvalidImageName" in error, error
    assert "Registry.example.com/Team/App:1" in error and "must be lower case" in error, error
    # Refused before anything was created: the kubelet would have refused the reference.
    assert scenarios.jobs("rc_bad_image") == []


def test_a_pod_preempted_by_the_scheduler_is_replaced_without_an_airflow_retry(
    scenarios: Scenarios,
) -> None:
    scheduling = client.SchedulingV1Api(scenarios.cluster.api)
    scheduling.create_priority_class(
        client.V1PriorityClass(metadata=client.V1ObjectMeta(name="urgent"), value=1_000_000)
    )
    preemptor: dict[str, Any] = {}
    failures: list[BaseException] = []

    def preempt() -> None:
        """Once the spot Job's pod runs, a higher-priority pod needs its node."""
        try:
            wait_for(
                "the spot Job's pod to run",
                lambda: any(
                    p.status.phase == "Running"
                    for j in scenarios.jobs("rc_preempted")
                    for p in scenarios.pods(j)
                ),
                timeout=DAG_RUN_TIMEOUT,
            )
            pod = scenarios.core.create_namespaced_pod(
                NAMESPACE,
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "urgent"},
                    "spec": {
                        "priorityClassName": "urgent",
                        "restartPolicy": "Never",
                        "nodeSelector": {NODE_POOL: "spot"},
                        "tolerations": [{**SPOT_TAINT, "operator": "Equal"}],
                        "containers": [
                            {
                                "name": "main",
                                "image": "rc/urgent:1",
                                "resources": {"requests": {"cpu": "1500m"}},
                            }
                        ],
                    },
                },
            )
            preemptor["pod"] = pod
            wait_for(
                "the urgent pod to finish",
                lambda: (
                    scenarios.core.read_namespaced_pod("urgent", NAMESPACE).status.phase
                    == "Succeeded"
                ),
                timeout=120,
            )
            scenarios.core.delete_namespaced_pod("urgent", NAMESPACE)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    thread = threading.Thread(target=preempt, daemon=True)
    thread.start()
    run = scenarios.run("rc_preempted")
    thread.join(60)
    assert not failures, failures
    assert run.states() == {"spot": "success"}, run.tail()
    assert run.try_number("spot") == 1
    (job,) = scenarios.jobs("rc_preempted")
    assert job.spec.backoff_limit == 0
    # The pod failure policy ignores the DisruptionTarget the scheduler set: no failure counted.
    assert not job.status.failed
    assert job.status.succeeded == 1
    assert len(scenarios.events(job.metadata.name, "SuccessfulCreate")) == 2
    preempted = [
        e
        for e in scenarios.core.list_namespaced_event(
            NAMESPACE, field_selector="reason=Preempted"
        ).items
        if e.involved_object.name.startswith(job.metadata.name + "-")
    ]
    assert len(preempted) == 1, [e.message for e in preempted]
    assert f"Preempted by pod {preemptor['pod'].metadata.uid}" in preempted[0].message
    (pod,) = scenarios.pods(job)
    assert pod.status.phase == "Succeeded"
    assert pod.metadata.name != preempted[0].involved_object.name
    assert "spot work done" in run.output


def test_each_try_gets_its_own_job(scenarios: Scenarios) -> None:
    run = scenarios.run("rc_retry")
    assert run.states() == {"flaky": "success"}, run.tail()
    assert run.try_number("flaky") == 2
    jobs = scenarios.jobs("rc_retry")
    assert [j.metadata.labels[TRY_NUMBER] for j in jobs] == ["1", "2"]
    assert (jobs[0].status.failed, jobs[0].status.succeeded) == (1, None)
    assert jobs[1].status.succeeded == 1
    assert "flaky failure" in run.output and "flaky ok" in run.output


def test_execution_timeout_while_deferred_deletes_the_job(scenarios: Scenarios) -> None:
    run = scenarios.run("rc_timeout")
    assert run.states() == {"too_slow": "failed"}, run.tail()
    assert "execution_timeout ran out" in run.output, run.tail()
    gave_up = "so that it does not keep running after the task's execution_timeout."
    assert gave_up in run.output, run.tail()
    wait_for(
        "the timed-out Job and its pod to be deleted",
        lambda: (
            not scenarios.jobs("rc_timeout")
            and not scenarios.core.list_namespaced_pod(
                NAMESPACE, label_selector=f"{DAG_ID}=rc_timeout"
            ).items
        ),
    )


def test_reattaches_to_the_job_a_crashed_worker_created(
    scenarios: Scenarios,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run in-process with ``dag.test()``: the run id must be known before the run starts."""
    from airflow_k8s_jobs import KubeJobOperator

    connection = {
        "conn_type": "k8sjobs",
        "extra": {"kubeconfig_path": str(scenarios.kubeconfig), "namespace": NAMESPACE},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{SCENARIOS_CONN.upper()}", json.dumps(connection))
    logical_date = datetime(2026, 11, 3, 4, 5, 6, tzinfo=timezone.utc)
    dag = load_dag(SCENARIOS, "rc_reattach")
    # What the first worker did before dying: build the manifest of try 1 and create it.
    operator: KubeJobOperator = dag.get_task("simple")
    ti = SimpleNamespace(
        dag_id="rc_reattach",
        task_id="simple",
        run_id=f"manual__{logical_date.isoformat()}",
        map_index=-1,
        try_number=1,
    )
    manifest, namespace = operator.build_manifest({"ti": ti})  # type: ignore[typeddict-item]
    created = scenarios.batch.create_namespaced_job(namespace, manifest)

    capsys.readouterr()
    if "logical_date" in dag.test.__code__.co_varnames:  # Airflow 3
        dag_run = dag.test(logical_date=logical_date, run_after=logical_date)
    else:  # Airflow 2.11
        dag_run = dag.test(execution_date=logical_date)
    captured = capsys.readouterr()
    log = captured.out + captured.err

    assert dag_run.run_id == ti.run_id
    assert str(dag_run.state) == "success", log[-5000:]
    (job,) = scenarios.jobs("rc_reattach")
    assert job.metadata.uid == created.metadata.uid
    assert "Re-attached to Job batch/" in log, log[-5000:]
    (task_instance,) = dag_run.get_task_instances()
    assert task_instance.try_number == 1
    assert task_instance.xcom_pull(task_ids="simple", key="job_name") == created.metadata.name


# --- kill while deferred ------------------------------------------------------------------------


@pytest.fixture
def trigger_conn(scenarios: Scenarios, monkeypatch: pytest.MonkeyPatch) -> str:
    connection = {
        "conn_type": "k8sjobs",
        "extra": {"kubeconfig_path": str(scenarios.kubeconfig), "namespace": NAMESPACE},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{SCENARIOS_CONN.upper()}", json.dumps(connection))
    return SCENARIOS_CONN


async def job_events(scenarios: Scenarios, name: str) -> AsyncIterator[dict[str, Any]]:
    import kubernetes_asyncio

    api = await kubernetes_asyncio.config.new_client_from_config(
        config_file=str(scenarios.cluster.kubeconfig)
    )
    try:
        batch = kubernetes_asyncio.client.BatchV1Api(api)
        watch = kubernetes_asyncio.watch.Watch()
        async for event in watch.stream(
            batch.list_namespaced_job, NAMESPACE, field_selector=f"metadata.name={name}"
        ):
            yield event
    finally:
        await api.close()


@pytest.mark.skipif(
    AIRFLOW_V_3_0_PLUS and not AIRFLOW_V_3_3_PLUS,
    reason="Airflow 3.0-3.2 ask the task supervisor, which does not run in-process here",
)
async def test_kill_while_deferred_deletes_the_job_and_its_pods(
    scenarios: Scenarios, trigger_conn: str, request: pytest.FixtureRequest
) -> None:
    from airflow_k8s_jobs.manifests.jobs import JobSpecRequest, build_job
    from airflow_k8s_jobs.manifests.names import TaskInstanceKey
    from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger
    from airflow_k8s_jobs.watching import WatchHub

    from ..integration.triggering import (
        USER_ACTION,
        cancel,
        deferred_task_instance,
        set_task_state,
        triggerer_run,
        until,
    )

    manifest = build_job(
        JobSpecRequest(image="rc/long:1"),
        TaskInstanceKey("rc_kill", "long", "manual__2026-11-02", -1, 1),
        NAMESPACE,
        "real",
    )
    job = await asyncio.to_thread(scenarios.batch.create_namespaced_job, NAMESPACE, manifest)
    name = job.metadata.name
    await asyncio.to_thread(
        wait_for,
        "the Job's pod to run",
        lambda: any(p.status.phase == "Running" for p in scenarios.pods(job)),
    )
    trigger = KubeJobTrigger(
        cluster_conn_id=trigger_conn,
        cluster_name="real",
        namespace=NAMESPACE,
        job_name=name,
        job_uid=job.metadata.uid,
        capacity_timeout=600.0,
    )
    if not AIRFLOW_V_3_3_PLUS:
        request.getfixturevalue("airflow_db")  # Airflow 2.11 reads the task instance row
        trigger.task_instance = deferred_task_instance()
    task = asyncio.create_task(triggerer_run(trigger))

    def watching() -> bool:
        informers = WatchHub.current().informers.values()
        return bool(informers) and all(i.subscribers and i.resource_version for i in informers)

    await until(watching, timeout=30, what="the trigger's informers")
    seen: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in job_events(scenarios, name):
            seen.append({"type": event["type"], **event["raw_object"]["metadata"]})
            if event["type"] == "DELETED":
                return

    follower = asyncio.create_task(follow())
    await until(lambda: seen, timeout=30, what="the test's own watch")

    if AIRFLOW_V_3_3_PLUS:
        await cancel(task, USER_ACTION)  # mark failed / clear while deferred: on_kill()
    else:
        set_task_state(trigger.task_instance, "failed")  # the UI marks the try failed
        await cancel(task)  # the triggerer cancels the trigger, then cleanup() deletes

    await asyncio.wait_for(follower, 60)
    # Foreground: the Job waited for the garbage collector to delete its pods first.
    assert any(
        e["type"] == "MODIFIED"
        and e.get("deletionTimestamp")
        and "foregroundDeletion" in (e.get("finalizers") or [])
        for e in seen
    ), seen
    pods = await asyncio.to_thread(
        scenarios.core.list_namespaced_pod, NAMESPACE, label_selector=f"{JOB_NAME}={name}"
    )
    assert pods.items == []
