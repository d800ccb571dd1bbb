"""Kueue's own manager (sigs.k8s.io/kueue, built by scripts/build-real-cluster) on the upstream
control plane, with the node agent's nodes.

The cluster configuration's ``kueue`` section is the one the simulated cluster takes: a flavor
whose ``nodeLabels`` pick the ``batch`` node pool, a ClusterQueue with 4 CPUs and 16Gi, and the
LocalQueue ``team-a-queue`` in ``batch`` (the queue example_dags/kueue_queued.py uses). The
tests check what real Kueue does with a queued Job, that the product's status code reads real
Kueue's Workloads as it reads the simulated ones, that the simulated Kueue describes the same
queueing as the real one (conditions, messages, events, queue status), and run the example DAG
with ``airflow dags test`` while the quota is taken.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from airflow_k8s_jobs.status import interpret_job
from simulated_k8s_cluster.controllers.kueue import workload_name

from .conftest import (
    BINARY,
    START_TIMEOUT,
    RunningCluster,
    least_privileged_kubeconfig,
    run_cluster_with_nodes,
    skip_without_go,
    wait_for,
)

# Not skipped without KUBECONFIG (see conftest.py): the cluster is started here.
STARTS_OWN_CLUSTER = True

pytestmark = [pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT + 900)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAG = ROOT / "example_dags" / "kueue_queued.py"
KUEUE_BINARY = BINARY.with_name("kueue")

NAMESPACE = "batch"
LOCAL_QUEUE = "team-a-queue"
CLUSTER_QUEUE = "team-a"
FLAVOR = "default"
POOL_LABEL = "cloud.google.com/gke-nodepool"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"
GROUP = "kueue.x-k8s.io"
DAG_ID_LABEL = "airflow-k8s-jobs.io/dag-id"
DAG_RUN_TIMEOUT = 420
COHORT = "research"
# Two ClusterQueues sharing a cohort: team-b may borrow up to 2 CPUs past its 2; team-c lends at
# most 3 of its 4 (it keeps 1 for itself).
COHORT_QUEUES = {"team-b": ("2", {"borrowingLimit": "2"}), "team-c": ("4", {"lendingLimit": "3"})}


def cohort_cluster_queue(name: str, cpu: str, limits: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "cohort": COHORT,
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory"],
                "flavors": [
                    {
                        "name": FLAVOR,
                        "resources": [
                            {"name": "cpu", "nominalQuota": cpu, **limits},
                            {"name": "memory", "nominalQuota": "16Gi"},
                        ],
                    }
                ],
            }
        ],
    }


CONFIG: dict[str, Any] = {
    "timeScale": 1,
    "autoscalerScanSeconds": 1,
    "nodePools": [
        {
            "name": "system",
            "nodes": 1,
            "capacity": {"cpu": "4", "memory": "16Gi"},
            "labels": {POOL_LABEL: "system"},
        },
        {
            "name": "batch",
            "nodes": 2,
            "capacity": {"cpu": "8", "memory": "32Gi"},
            "labels": {POOL_LABEL: "batch"},
        },
    ],
    "kueue": {
        "resourceFlavors": [{"name": FLAVOR, "nodeLabels": {POOL_LABEL: "batch"}}],
        "clusterQueues": [
            {
                "name": CLUSTER_QUEUE,
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", "memory"],
                        "flavors": [
                            {
                                "name": FLAVOR,
                                "resources": [
                                    {"name": "cpu", "nominalQuota": "4"},
                                    {"name": "memory", "nominalQuota": "16Gi"},
                                ],
                            }
                        ],
                    }
                ],
            },
            *(
                cohort_cluster_queue(name, cpu, limits)
                for name, (cpu, limits) in COHORT_QUEUES.items()
            ),
        ],
        "localQueues": [
            {"namespace": NAMESPACE, "name": LOCAL_QUEUE, "clusterQueue": CLUSTER_QUEUE},
            *(
                {"namespace": NAMESPACE, "name": f"{name}-queue", "clusterQueue": name}
                for name in COHORT_QUEUES
            ),
        ],
    },
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    skip_without_go()
    if shutil.which("go") is None and not KUEUE_BINARY.exists():
        pytest.skip(
            "Kueue is built from the Go module sigs.k8s.io/kueue and Go is not installed: "
            "install Go >= 1.26 and put `go` on PATH, then run scripts/build-real-cluster or "
            "these tests again"
        )
    with run_cluster_with_nodes(tmp_path_factory, CONFIG) as running:
        assert "kueue" in running.ready_line, running.ready_line
        yield running


# --- helpers -------------------------------------------------------------------------------------


def job_manifest(
    name: str, requests: dict[str, str], seconds: float, queue: str | None = LOCAL_QUEUE
) -> dict[str, Any]:
    labels = {QUEUE_LABEL: queue} if queue else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {BEHAVIOUR: json.dumps({"seconds": seconds})}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox:1.36",
                            "resources": {"requests": requests},
                        }
                    ],
                },
            },
        },
    }


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def plain(self, obj: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return data

    def create_job(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return self.plain(self.batch.create_namespaced_job(NAMESPACE, manifest))

    def job(self, name: str) -> dict[str, Any]:
        return self.plain(self.batch.read_namespaced_job(name, NAMESPACE))

    def delete_job(self, name: str) -> None:
        try:
            self.batch.delete_namespaced_job(name, NAMESPACE, propagation_policy="Background")
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def pods(self, job_name: str) -> list[dict[str, Any]]:
        selector = f"batch.kubernetes.io/job-name={job_name}"
        pods = self.core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        return [self.plain(p) for p in pods]

    def events(self) -> list[dict[str, Any]]:
        return [self.plain(e) for e in self.core.list_namespaced_event(NAMESPACE).items]

    def workloads(self, job_uid: str, version: str = "v1beta1") -> list[dict[str, Any]]:
        found = self.custom.list_namespaced_custom_object(
            GROUP, version, NAMESPACE, "workloads", label_selector=f"{JOB_UID_LABEL}={job_uid}"
        )
        return list(found["items"])

    def workload(self, job_uid: str, version: str = "v1beta1") -> dict[str, Any] | None:
        items = self.workloads(job_uid, version)
        return items[0] if items else None

    def cluster_queue(self, name: str = CLUSTER_QUEUE) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_cluster_custom_object(
            GROUP, "v1beta1", "clusterqueues", name
        )
        return found

    def local_queue(self) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, "v1beta1", NAMESPACE, "localqueues", LOCAL_QUEUE
        )
        return found


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return {}


def is_true(obj: dict[str, Any] | None, ctype: str) -> bool:
    return condition(obj, ctype).get("status") == "True"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_quota_free(kube: Kube, timeout: float = 60) -> None:
    """No Workload reserves quota in the ClusterQueue (the previous test's Jobs are gone)."""

    def free() -> bool:
        status = kube.cluster_queue().get("status") or {}
        return not status.get("reservingWorkloads") and not status.get("pendingWorkloads")

    wait_for("the ClusterQueue to have no reserving or pending Workloads", free, timeout)


@pytest.fixture
def kube(cluster: RunningCluster) -> Iterator[Kube]:
    api = Kube(cluster.api)
    wait_quota_free(api)
    yield api


@pytest.fixture
def hog(kube: Kube) -> Iterator[dict[str, Any]]:
    """A queued Job that takes 1 of the queue's 4 CPUs and runs until it is deleted."""
    name = unique("hog")
    job = kube.create_job(job_manifest(name, {"cpu": "1"}, seconds=3600))
    uid = job["metadata"]["uid"]
    wait_for(
        "the hog Job to run",
        lambda: (
            is_true(kube.workload(uid), "Admitted")
            and any((p.get("status") or {}).get("phase") == "Running" for p in kube.pods(name))
        ),
        120,
    )
    yield job
    kube.delete_job(name)
    wait_for("the hog's Workload to be gone", lambda: kube.workload(uid) is None, 60)


# --- (a) a queued Job: suspended, a Workload, admitted, runs on the flavor's nodes -------------


def test_a_queued_job_is_admitted_and_completes(kube: Kube) -> None:
    name = unique("first")
    created = kube.create_job(job_manifest(name, {"cpu": "500m", "memory": "1Gi"}, seconds=2))
    # Kueue's mutating webhook: the create response already shows the Job suspended.
    assert created["spec"]["suspend"] is True
    uid = created["metadata"]["uid"]

    workload = wait_for("the Job's Workload", lambda: kube.workload(uid), 60)
    meta = workload["metadata"]
    # The name the simulated Kueue gives it too: job-<name>-<hash of kind, group, name, uid>.
    assert meta["name"] == workload_name(name, uid)
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Job",
        name,
        uid,
        True,
    )
    assert "kueue.x-k8s.io/resource-in-use" in meta["finalizers"]
    assert workload["spec"]["queueName"] == LOCAL_QUEUE
    (pod_set,) = workload["spec"]["podSets"]
    assert (pod_set["name"], pod_set["count"]) == ("main", 1)

    admitted = wait_for(
        "the Workload to be admitted",
        lambda: (w := kube.workload(uid)) is not None and is_true(w, "Admitted") and w,
        60,
    )
    assert is_true(admitted, "QuotaReserved")
    assert condition(admitted, "QuotaReserved")["message"] == (
        f"Quota reserved in ClusterQueue {CLUSTER_QUEUE}"
    )
    admission = admitted["status"]["admission"]
    assert admission["clusterQueue"] == CLUSTER_QUEUE
    (assignment,) = admission["podSetAssignments"]
    assert assignment["flavors"] == {"cpu": FLAVOR, "memory": FLAVOR}
    assert assignment["resourceUsage"] == {"cpu": "500m", "memory": "1Gi"}

    # Un-suspended with the flavor's nodeLabels; the pod runs in the batch pool.
    job = wait_for(
        "the Job to complete",
        lambda: is_true(j := kube.job(name), "Complete") and j,
        120,
    )
    assert job["spec"]["suspend"] is False
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {POOL_LABEL: "batch"}
    (pod,) = kube.pods(name)
    node = kube.core.read_node(pod["spec"]["nodeName"])
    assert node.metadata.labels[POOL_LABEL] == "batch"

    finished = wait_for(
        "the Workload to be Finished",
        lambda: (w := kube.workload(uid)) is not None and is_true(w, "Finished") and w,
        60,
    )
    assert condition(finished, "Finished")["reason"] == "Succeeded"

    reasons = {
        e["reason"]: e["message"] for e in kube.events() if e["involvedObject"].get("uid") == uid
    }
    assert reasons["CreatedWorkload"] == f"Created Workload: {NAMESPACE}/{meta['name']}"
    assert reasons["Started"] == f"Admitted by clusterQueue {CLUSTER_QUEUE}"
    kube.delete_job(name)


# --- (b) over quota: Kueue's reason, as the product's status code reads it ---------------------


def test_a_job_over_the_quota_waits_with_kueues_message(kube: Kube, hog: dict[str, Any]) -> None:
    name = unique("waiter")
    created = kube.create_job(job_manifest(name, {"cpu": "4"}, seconds=1))
    uid = created["metadata"]["uid"]
    expected = (
        f"couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor "
        f"{FLAVOR}, 1 more needed"
    )

    pending = wait_for(
        "the Workload to wait for quota",
        lambda: (
            (w := kube.workload(uid)) is not None
            and condition(w, "QuotaReserved").get("reason") == "Pending"
            and w
        ),
        60,
    )
    quota = condition(pending, "QuotaReserved")
    assert quota["status"] == "False"
    assert quota["message"] == expected
    assert "admission" not in (pending.get("status") or {})

    job = kube.job(name)
    assert job["spec"]["suspend"] is True
    state = interpret_job(
        job, kube.pods(name), kube.events(), pending, name=name, namespace=NAMESPACE
    )
    assert state.waiting_on_capacity, state
    assert state.status_line.endswith(
        f"Kueue: waiting for quota in LocalQueue {LOCAL_QUEUE}: {expected}"
    ), state.status_line
    assert state.permanent_problem is None

    # The ClusterQueue counts it as pending, the hog as admitted.
    wait_for(
        "the ClusterQueue to count 1 pending and 1 admitted Workload",
        lambda: (
            (
                (status := kube.cluster_queue().get("status") or {}).get("pendingWorkloads"),
                status.get("admittedWorkloads"),
            )
            == (1, 1)
        ),
        30,
    )

    # The quota comes back when the hog goes: the waiting Job is admitted and completes.
    kube.delete_job(hog["metadata"]["name"])
    wait_for("the waiting Job to complete", lambda: is_true(kube.job(name), "Complete"), 120)
    kube.delete_job(name)


def test_a_request_over_the_queues_capacity_is_hopeless(kube: Kube) -> None:
    name = unique("too-big")
    created = kube.create_job(job_manifest(name, {"cpu": "6"}, seconds=1))
    uid = created["metadata"]["uid"]
    pending = wait_for(
        "the Workload to wait for quota",
        lambda: (
            (w := kube.workload(uid)) is not None
            and condition(w, "QuotaReserved").get("reason") == "Pending"
            and w
        ),
        60,
    )
    message = condition(pending, "QuotaReserved")["message"]
    assert message == (
        "couldn't assign flavors to pod set main: insufficient quota for cpu in flavor "
        f"{FLAVOR}, previously considered podsets requests (0) + current podset request (6) > "
        "maximum capacity (4)"
    ), message
    state = interpret_job(
        kube.job(name), [], kube.events(), pending, name=name, namespace=NAMESPACE
    )
    assert state.hopeless, state
    kube.delete_job(name)
    wait_for("the Workload to be gone", lambda: kube.workload(uid) is None, 60)


def test_a_job_in_a_missing_local_queue_is_inadmissible(kube: Kube) -> None:
    name = unique("lost")
    created = kube.create_job(job_manifest(name, {"cpu": "1"}, seconds=1, queue="no-such-queue"))
    uid = created["metadata"]["uid"]
    workload = wait_for(
        "the Workload to be inadmissible",
        lambda: (
            (w := kube.workload(uid)) is not None
            and condition(w, "QuotaReserved").get("reason") == "Inadmissible"
            and w
        ),
        60,
    )
    message = condition(workload, "QuotaReserved")["message"]
    assert message == "LocalQueue no-such-queue doesn't exist", message
    state = interpret_job(
        kube.job(name), [], kube.events(), workload, name=name, namespace=NAMESPACE
    )
    assert state.permanent_problem is not None, state
    kube.delete_job(name)
    wait_for("the Workload to be gone", lambda: kube.workload(uid) is None, 60)


def test_v1beta1_and_the_stored_v1beta2_describe_the_same_workload(
    kube: Kube, hog: dict[str, Any]
) -> None:
    """The product reads v1beta1; Kueue stores v1beta2 and converts through its webhook."""
    uid = hog["metadata"]["uid"]
    old = kube.workload(uid, "v1beta1")
    new = kube.workload(uid, "v1beta2")
    assert old is not None and new is not None
    assert old["apiVersion"] == f"{GROUP}/v1beta1" and new["apiVersion"] == f"{GROUP}/v1beta2"
    assert old["metadata"]["name"] == new["metadata"]["name"]
    assert old["spec"]["queueName"] == new["spec"]["queueName"] == LOCAL_QUEUE
    assert old["status"]["admission"]["clusterQueue"] == CLUSTER_QUEUE
    assert new["status"]["admission"]["clusterQueue"] == CLUSTER_QUEUE
    # The conditions the product reads are the same in both versions.
    for ctype in ("QuotaReserved", "Admitted"):
        assert condition(old, ctype) == condition(new, ctype)


# --- (b) through Airflow: example_dags/kueue_queued.py while the quota is taken -------------------


def test_the_example_dag_waits_in_the_queue_then_succeeds(
    cluster: RunningCluster,
    kube: Kube,
    hog: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from .airflow_runs import AirflowHome, DagRunResult

    base = tmp_path_factory.mktemp("airflow-kueue")
    dags_folder = base / "dags"
    dags_folder.mkdir()
    shutil.copy(EXAMPLE_DAG, dags_folder / EXAMPLE_DAG.name)
    # Airflow runs as the service account of docs/rbac/ (it may list and watch Workloads).
    kubeconfig = least_privileged_kubeconfig(cluster, NAMESPACE, base / "kubeconfig.yaml")
    connection = {
        "conn_type": "k8sjobs",
        "extra": {"kubeconfig_path": str(kubeconfig), "namespace": NAMESPACE},
    }
    home = AirflowHome(base / "home", dags_folder, "gke_batch", connection)

    # Two pods of 2 CPUs each need the whole queue; the hog holds 1 CPU.
    expected = (
        "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor "
        f"{FLAVOR}, 1 more needed"
    )
    selector = f"{DAG_ID_LABEL}=kueue_queued"

    def dag_job_pending() -> bool:
        jobs = kube.batch.list_namespaced_job(NAMESPACE, label_selector=selector).items
        if not jobs:
            return False
        workload = kube.workload(jobs[0].metadata.uid)
        return condition(workload, "QuotaReserved").get("message") == expected

    # `airflow dags test` streamed, to release the quota once the task has logged the wait.
    lines: list[str] = []
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", "kueue_queued", "2026-11-02"],
        env=home.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for("the DAG's Job to wait for quota", dag_job_pending, DAG_RUN_TIMEOUT)
        wait_for(
            "the task to log Kueue's reason", lambda: expected in "".join(lines), DAG_RUN_TIMEOUT
        )
        kube.delete_job(hog["metadata"]["name"])
        proc.wait(DAG_RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
    output = "".join(lines)
    (base / "kueue_queued.log").write_text(output)
    result = DagRunResult(
        "kueue_queued", output, home.database, time.monotonic() - started, proc.returncode
    )

    assert result.states() == {"backfill_features": "success"}, result.tail()
    assert f"Kueue: waiting for quota in LocalQueue {LOCAL_QUEUE}: {expected}" in result.output
    (job,) = kube.batch.list_namespaced_job(NAMESPACE, label_selector=selector).items
    assert job.metadata.labels[QUEUE_LABEL] == LOCAL_QUEUE
    assert {c.type for c in job.status.conditions if c.status == "True"} >= {"Complete"}
    assert job.status.succeeded == 2
    kube.delete_job(job.metadata.name)


# --- (c) the simulated Kueue says what the real one says ------------------------------------------

KUEUE_COMPONENTS = {"batch/job-kueue-controller", "kueue-admission"}


def observe_queueing(kube: Kube) -> dict[str, Any]:
    """Queue four Jobs (one admitted and running, one waiting for quota, one over the queue's
    capacity, one in a LocalQueue that does not exist) and describe what Kueue made of them,
    without names, uids and times."""
    jobs = {
        "hog": job_manifest("hog", {"cpu": "1"}, seconds=3600),
        "waiter": job_manifest("waiter", {"cpu": "4"}, seconds=1),
        "too-big": job_manifest("too-big", {"cpu": "6"}, seconds=1),
        "lost": job_manifest("lost", {"cpu": "1"}, seconds=1, queue="no-such-queue"),
    }
    uids: dict[str, str] = {}
    for name, manifest in jobs.items():
        uids[name] = kube.create_job(manifest)["metadata"]["uid"]
        if name == "hog":
            wait_for(
                "the hog to be admitted", lambda: is_true(kube.workload(uids["hog"]), "Admitted")
            )
    try:
        wait_for(
            "every Workload to have a QuotaReserved condition",
            lambda: all(condition(kube.workload(uid), "QuotaReserved") for uid in uids.values()),
            60,
        )
        wait_for(
            "the queues to count two pending Workloads",
            lambda: (
                (kube.cluster_queue().get("status") or {}).get("pendingWorkloads") == 2
                and (kube.local_queue().get("status") or {}).get("pendingWorkloads") == 2
            ),
            60,
        )
        names = {}
        ours = set(uids.values())  # the Jobs and their Workloads (events of earlier tests aside)
        seen: dict[str, Any] = {}
        for name, uid in uids.items():
            workload = kube.workload(uid)
            assert workload is not None
            names[workload["metadata"]["name"]] = f"<workload of {name}>"
            ours.add(workload["metadata"]["uid"])
            status = workload.get("status") or {}
            seen[name] = {
                "name": workload["metadata"]["name"] == workload_name(name, uid),
                "labels": {
                    k: "<job uid>" if v == uid else v
                    for k, v in (workload["metadata"].get("labels") or {}).items()
                },
                "finalizers": workload["metadata"].get("finalizers"),
                "owner": [
                    (r["kind"], r["name"], r.get("controller"), r.get("blockOwnerDeletion"))
                    for r in workload["metadata"].get("ownerReferences") or []
                ],
                "spec": {k: v for k, v in workload["spec"].items() if k != "podSets"},
                "podSets": [
                    (p["name"], p["count"], p.get("topologyRequest"))
                    for p in workload["spec"]["podSets"]
                ],
                "conditions": sorted(
                    (c["type"], c["status"], c["reason"], c["message"])
                    for c in status.get("conditions") or []
                ),
                "admission": status.get("admission"),
                "job suspended": kube.job(name)["spec"]["suspend"],
            }
        events = set()
        for event in kube.events():
            if (event.get("source") or {}).get("component") not in KUEUE_COMPONENTS:
                continue
            if event["involvedObject"].get("uid") not in ours:
                continue
            message = event["message"]
            for real_name, alias in names.items():
                message = message.replace(real_name, alias)
            # "wait time since queued was 1s"
            message = " ".join(
                "Ns" if w[:-1].isdigit() and w.endswith("s") else w for w in message.split()
            )
            events.add((event["involvedObject"]["kind"], event["type"], event["reason"], message))
        seen["events"] = sorted(events)
        for kind, obj in (
            ("ClusterQueue", kube.cluster_queue()),
            ("LocalQueue", kube.local_queue()),
        ):
            status = dict(obj.get("status") or {})
            status["conditions"] = sorted(
                (c["type"], c["status"], c["reason"], c["message"])
                for c in status.get("conditions") or []
            )
            seen[kind] = status
        return seen
    finally:
        for name in uids:
            kube.delete_job(name)
        wait_for(
            "the Workloads to be gone",
            lambda: all(kube.workload(uid) is None for uid in uids.values()),
            60,
        )


def assert_simulated_says_the_same(
    observe: Callable[[Kube], dict[str, Any]], real: dict[str, Any]
) -> None:
    """Run the same observation on the simulated Kueue and compare it with the real one's."""
    from simulated_k8s_cluster import SimulatedCluster

    with SimulatedCluster(CONFIG) as simulated:
        api = simulated.sync_api_client()
        try:
            sim = observe(Kube(api))
        finally:
            api.close()
    differences = {
        key: {"simulated": sim.get(key), "real": value}
        for key, value in real.items()
        if sim.get(key) != value
    }
    assert not differences, json.dumps(differences, indent=1, default=str)


def test_the_simulated_kueue_says_what_the_real_one_says(kube: Kube) -> None:
    real = observe_queueing(kube)
    assert real["hog"]["admission"]["podSetAssignments"][0]["flavors"] == {"cpu": FLAVOR}
    assert real["waiter"]["conditions"][0][2] == "Pending"
    assert ("Job", "Normal", "Started", f"Admitted by clusterQueue {CLUSTER_QUEUE}") in real[
        "events"
    ]
    assert real["ClusterQueue"]["pendingWorkloads"] == 2
    assert_simulated_says_the_same(observe_queueing, real)


# --- (g) a cohort: borrowing and lending limits, judged by Kueue itself -----------------------


def observe_borrowing(kube: Kube) -> dict[str, Any]:
    """In the cohort: team-b borrows 1 CPU for a 3-CPU Job; team-c runs a 2-CPU Job within its
    own quota; then team-b's 2-CPU Job finds only 1 CPU left to borrow, and its 5-CPU Job is
    over what it could ever borrow. What Kueue made of each, and both queues' status."""
    steps = [
        ("borrower", "team-b", "3", True),
        ("lender", "team-c", "2", True),
        ("short", "team-b", "2", False),
        ("over-limit", "team-b", "5", False),
    ]
    uids: dict[str, str] = {}
    try:
        for name, queue, cpu, admitted in steps:
            job = job_manifest(name, {"cpu": cpu}, seconds=3600, queue=f"{queue}-queue")
            uid = uids[name] = kube.create_job(job)["metadata"]["uid"]
            wait_for(
                f"{name}'s Workload to be {'admitted' if admitted else 'pending'}",
                lambda uid=uid, admitted=admitted: (
                    is_true(kube.workload(uid), "Admitted")
                    if admitted
                    else condition(kube.workload(uid), "QuotaReserved").get("reason") == "Pending"
                ),
                60,
            )
        wait_for(
            "team-b to count one admitted and two pending Workloads",
            lambda: (
                (status := kube.cluster_queue("team-b").get("status") or {}).get("pendingWorkloads")
                == 2
                and status.get("admittedWorkloads") == 1
            ),
            60,
        )
        wait_for(  # Kueue updates a ClusterQueue's status some time after its Workloads'
            "team-c to count its admitted Workload",
            lambda: (
                (kube.cluster_queue("team-c").get("status") or {}).get("admittedWorkloads") == 1
            ),
            60,
        )
        seen: dict[str, Any] = {}
        for name, uid in uids.items():
            workload = kube.workload(uid) or {}
            status = workload.get("status") or {}
            seen[name] = {
                "conditions": sorted(
                    (c["type"], c["status"], c["reason"], c["message"])
                    for c in status.get("conditions") or []
                ),
                "admission": status.get("admission"),
            }
        for queue in COHORT_QUEUES:
            status = kube.cluster_queue(queue).get("status") or {}
            seen[queue] = {
                key: status.get(key)
                for key in (
                    "pendingWorkloads",
                    "reservingWorkloads",
                    "admittedWorkloads",
                    "flavorsReservation",
                    "flavorsUsage",
                )
            }
        return seen
    finally:
        for name in uids:
            kube.delete_job(name)
        wait_for(
            "the Workloads to be gone",
            lambda: all(kube.workload(uid) is None for uid in uids.values()),
            60,
        )


def test_cohort_borrowing_in_the_simulated_kueue_is_kueues(kube: Kube) -> None:
    real = observe_borrowing(kube)
    # What Kueue itself says, so that the comparison below compares something.
    cpu = {r["name"]: r for r in real["team-b"]["flavorsReservation"][0]["resources"]}["cpu"]
    assert (cpu["total"], cpu["borrowed"]) == ("3", "1")
    assert ("QuotaReserved", "False", "Pending", "couldn't assign flavors to pod set main: "
            "insufficient unused quota for cpu in flavor default, 1 more needed") in real["short"][
        "conditions"
    ]  # fmt: skip
    assert_simulated_says_the_same(observe_borrowing, real)
