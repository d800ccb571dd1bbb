"""Kueue in the simulated cluster, through the real clients.

Kueue's objects are read and written with ``CustomObjectsApi`` (group ``kueue.x-k8s.io``,
version ``v1beta1``), Jobs with ``BatchV1Api``. Time is frozen (``timeScale: 0``) and moves only
by ``advance``; ``settle`` lets the controllers catch up before asserting that something has
*not* happened.
"""

from __future__ import annotations

import re
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest
from kubernetes.client.rest import ApiException

from simulated_k8s_cluster.cluster import SimulatedCluster
from simulated_k8s_cluster.config import ClusterConfig, ConfigError
from simulated_k8s_cluster.controllers.kueue import quantity_string, workload_name

NS = "batch"
GROUP, VERSION = "kueue.x-k8s.io", "v1beta1"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"

KUEUE = {
    "clusterQueues": [
        {
            "name": "team-a",
            "namespaceSelector": {},
            "resourceGroups": [
                {
                    "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                    "flavors": [
                        {
                            "name": "default",
                            "resources": [
                                {"name": "cpu", "nominalQuota": "8"},
                                {"name": "memory", "nominalQuota": "32Gi"},
                                {"name": "nvidia.com/gpu", "nominalQuota": "1"},
                            ],
                        }
                    ],
                }
            ],
        }
    ],
    "localQueues": [{"namespace": NS, "name": "team-a-queue", "clusterQueue": "team-a"}],
}
CLUSTER = {
    "timeScale": 0,
    "namespaces": [NS],
    "nodePools": [
        {"name": "default", "nodes": 2, "maxNodes": 2, "capacity": {"cpu": "8", "memory": "32Gi"}}
    ],
    "kueue": KUEUE,
}
pytestmark = pytest.mark.simulated_cluster(CLUSTER)


# --- helpers ------------------------------------------------------------------------------------


def job_body(
    name: str,
    queue: str | None = "team-a-queue",
    cpu: str = "2",
    seconds: float = 1,
    parallelism: int | None = None,
) -> dict[str, Any]:
    labels = {QUEUE_LABEL: queue} if queue else {}
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"annotations": {BEHAVIOUR: f'{{"seconds": {seconds}}}'}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox:1.36",
                        "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}},
                    }
                ],
            },
        }
    }
    if parallelism is not None:
        spec["parallelism"] = spec["completions"] = parallelism
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def workloads(custom: kubernetes.client.CustomObjectsApi) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = custom.list_namespaced_custom_object(
        GROUP, VERSION, NS, "workloads"
    )["items"]
    return items


def workload_of(custom: kubernetes.client.CustomObjectsApi, job: Any) -> dict[str, Any] | None:
    found = custom.list_namespaced_custom_object(
        GROUP, VERSION, NS, "workloads", label_selector=f"{JOB_UID_LABEL}={job.metadata.uid}"
    )["items"]
    return found[0] if found else None


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def wait_workload(
    cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    job: Any,
    ctype: str,
    status: str = "True",
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        workload = workload_of(custom, job)
        if workload and conditions(workload).get(ctype, {}).get("status") == status:
            return workload
        return None

    found: dict[str, Any] = cluster.wait_for(
        check, message=f"the Workload of {job.metadata.name} to be {ctype}={status}"
    )
    return found


def job_finished(batch: kubernetes.client.BatchV1Api, name: str) -> bool:
    job = batch.read_namespaced_job(name, NS)
    return any(
        c.type in ("Complete", "Failed") and c.status == "True" for c in job.status.conditions or []
    )


def pods_of(v1: kubernetes.client.CoreV1Api, job: str) -> list[Any]:
    return list(
        v1.list_namespaced_pod(NS, label_selector=f"batch.kubernetes.io/job-name={job}").items
    )


def event_messages(cluster: SimulatedCluster, name: str, reason: str) -> list[str]:
    return [e["message"] for e in cluster.events(NS, involved_name=name, reason=reason)]


@pytest.fixture
def custom(api: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api)


# --- queue objects ------------------------------------------------------------------------------


def test_config_objects_are_served(custom: kubernetes.client.CustomObjectsApi) -> None:
    flavors = custom.list_cluster_custom_object(GROUP, VERSION, "resourceflavors")["items"]
    assert [(f["kind"], f["apiVersion"], f["metadata"]["name"]) for f in flavors] == [
        ("ResourceFlavor", "kueue.x-k8s.io/v1beta1", "default")
    ]
    cq = custom.get_cluster_custom_object(GROUP, VERSION, "clusterqueues", "team-a")
    assert cq["spec"]["namespaceSelector"] == {}
    assert cq["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0] == {
        "name": "cpu",
        "nominalQuota": "8",
    }
    assert conditions(cq)["Active"]["reason"] == "Ready"
    assert cq["status"]["pendingWorkloads"] == 0
    lqs = custom.list_namespaced_custom_object(GROUP, VERSION, NS, "localqueues")["items"]
    assert [(q["kind"], q["metadata"]["name"], q["spec"]) for q in lqs] == [
        ("LocalQueue", "team-a-queue", {"clusterQueue": "team-a"})
    ]
    assert conditions(lqs[0])["Active"]["message"] == "Can submit new workloads to localQueue"


def test_strategic_merge_patch_is_refused_like_a_crd(
    custom: kubernetes.client.CustomObjectsApi, api: kubernetes.client.ApiClient
) -> None:
    with pytest.raises(ApiException) as caught:
        api.call_api(
            f"/apis/{GROUP}/{VERSION}/clusterqueues/team-a",
            "PATCH",
            header_params={"Content-Type": "application/strategic-merge-patch+json"},
            body={"spec": {"queueingStrategy": "StrictFIFO"}},
            auth_settings=["BearerToken"],
        )
    assert caught.value.status == 415
    patched = custom.patch_cluster_custom_object(
        GROUP, VERSION, "clusterqueues", "team-a", {"spec": {"queueingStrategy": "StrictFIFO"}}
    )
    assert patched["spec"]["queueingStrategy"] == "StrictFIFO"


# --- the webhook and the Workload -----------------------------------------------------------------


def test_queued_job_is_suspended_admitted_run_and_finished(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    v1: kubernetes.client.CoreV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    created = batch.create_namespaced_job(NS, job_body("train", seconds=30, parallelism=2))
    assert created.spec.suspend is True  # the webhook's mutation, in the create response

    workload = wait_workload(simulated_cluster, custom, created, "Admitted")
    meta = workload["metadata"]
    assert meta["name"] == workload_name("train", created.metadata.uid)
    assert re.fullmatch(r"job-train-[0-9a-f]{5}", meta["name"])
    assert meta["labels"] == {JOB_UID_LABEL: created.metadata.uid}
    assert meta["finalizers"] == ["kueue.x-k8s.io/resource-in-use"]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "train",
            "uid": created.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert workload["spec"]["queueName"] == "team-a-queue"
    (pod_set,) = workload["spec"]["podSets"]
    assert pod_set["name"] == "main" and pod_set["count"] == 2
    assert pod_set["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"
    found = conditions(workload)
    assert (found["QuotaReserved"]["status"], found["QuotaReserved"]["reason"]) == (
        "True",
        "QuotaReserved",
    )
    assert found["QuotaReserved"]["message"] == "Quota reserved in ClusterQueue team-a"
    assert (found["Admitted"]["reason"], found["Admitted"]["message"]) == (
        "Admitted",
        "The workload is admitted",
    )
    assert workload["status"]["admission"] == {
        "clusterQueue": "team-a",
        "podSetAssignments": [
            {
                "name": "main",
                "flavors": {"cpu": "default", "memory": "default"},
                "resourceUsage": {"cpu": "4", "memory": "2Gi"},
                "count": 2,
            }
        ],
    }

    simulated_cluster.wait_for(lambda: batch.read_namespaced_job("train", NS).spec.suspend is False)
    simulated_cluster.wait_for(lambda: len(pods_of(v1, "train")) == 2, message="two pods")
    assert event_messages(simulated_cluster, "train", "CreatedWorkload") == [
        f"Created Workload: {NS}/{meta['name']}"
    ]
    assert event_messages(simulated_cluster, "train", "Started") == [
        "Admitted by clusterQueue team-a"
    ]
    assert event_messages(simulated_cluster, meta["name"], "Admitted") == [
        "Admitted by ClusterQueue team-a, wait time since reservation was 0s"
    ]
    cq = custom.get_cluster_custom_object(GROUP, VERSION, "clusterqueues", "team-a")
    assert (cq["status"]["reservingWorkloads"], cq["status"]["admittedWorkloads"]) == (1, 1)
    cpu = cq["status"]["flavorsReservation"][0]["resources"][0]
    assert cpu == {"name": "cpu", "total": "4", "borrowed": "0"}

    simulated_cluster.advance(40)
    simulated_cluster.wait_for(lambda: job_finished(batch, "train"), message="the Job to finish")
    finished = wait_workload(simulated_cluster, custom, created, "Finished")
    assert conditions(finished)["Finished"]["reason"] == "Succeeded"
    simulated_cluster.wait_for(
        lambda: not (workload_of(custom, created) or {}).get("metadata", {}).get("finalizers"),
        message="the finalizer to be dropped",
    )
    assert event_messages(simulated_cluster, "train", "FinishedWorkload") == [
        f"Workload '{NS}/{meta['name']}' is declared finished"
    ]
    cq = custom.get_cluster_custom_object(GROUP, VERSION, "clusterqueues", "team-a")
    assert cq["status"]["reservingWorkloads"] == 0
    assert cq["status"]["flavorsReservation"][0]["resources"][0]["total"] == "0"


def test_failed_job_finishes_its_workload_as_failed(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    body = job_body("broken")
    body["spec"]["backoffLimit"] = 0
    body["spec"]["template"]["metadata"]["annotations"][BEHAVIOUR] = '{"exitCode": 3}'
    created = batch.create_namespaced_job(NS, body)
    wait_workload(simulated_cluster, custom, created, "Admitted")
    simulated_cluster.advance(10)
    finished = wait_workload(simulated_cluster, custom, created, "Finished")
    condition = conditions(finished)["Finished"]
    assert condition["reason"] == "Failed"
    assert condition["message"] == "Job has reached the specified backoff limit"


def test_second_job_over_quota_waits_until_the_first_finishes(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    v1: kubernetes.client.CoreV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    first = batch.create_namespaced_job(NS, job_body("first", cpu="6", seconds=30))
    wait_workload(simulated_cluster, custom, first, "Admitted")
    second = batch.create_namespaced_job(NS, job_body("second", cpu="6", seconds=5))

    pending = wait_workload(simulated_cluster, custom, second, "QuotaReserved", "False")
    condition = conditions(pending)["QuotaReserved"]
    assert condition["reason"] == "Pending"
    assert condition["message"] == (
        "couldn't assign flavors to pod set main: "
        "insufficient unused quota for cpu in flavor default, 4 more needed"
    )
    assert "Admitted" not in conditions(pending)
    assert "admission" not in pending["status"]
    assert event_messages(simulated_cluster, pending["metadata"]["name"], "Pending") == [
        condition["message"]
    ]
    lq = custom.get_namespaced_custom_object(GROUP, VERSION, NS, "localqueues", "team-a-queue")
    assert (lq["status"]["pendingWorkloads"], lq["status"]["admittedWorkloads"]) == (1, 1)

    simulated_cluster.advance(20)
    simulated_cluster.settle()
    assert batch.read_namespaced_job("second", NS).spec.suspend is True
    assert pods_of(v1, "second") == []

    simulated_cluster.advance(20)  # the first Job finishes and releases its quota
    admitted = wait_workload(simulated_cluster, custom, second, "Admitted")
    assert admitted["status"]["admission"]["clusterQueue"] == "team-a"
    simulated_cluster.wait_for(lambda: pods_of(v1, "second"), message="the second Job's pod")
    simulated_cluster.advance(10)
    simulated_cluster.wait_for(lambda: job_finished(batch, "second"), message="second to finish")


def test_deleting_a_running_job_releases_its_quota(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    first = batch.create_namespaced_job(NS, job_body("first", cpu="6", seconds=600))
    wait_workload(simulated_cluster, custom, first, "Admitted")
    second = batch.create_namespaced_job(NS, job_body("second", cpu="6"))
    wait_workload(simulated_cluster, custom, second, "QuotaReserved", "False")

    batch.delete_namespaced_job("first", NS)  # batch/v1's default: orphan the dependents
    wait_workload(simulated_cluster, custom, second, "Admitted")
    simulated_cluster.wait_for(lambda: workload_of(custom, first) is None)


@pytest.mark.parametrize(
    ("cpu", "gpu", "message"),
    [
        (
            "10",
            None,
            "insufficient quota for cpu in flavor default, previously considered podsets "
            "requests (0) + current podset request (10) > maximum capacity (8)",
        ),
        (
            "500m",
            "2",
            "insufficient quota for nvidia.com/gpu in flavor default, previously considered "
            "podsets requests (0) + current podset request (2) > maximum capacity (1)",
        ),
    ],
)
def test_request_larger_than_the_quota_stays_pending(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
    cpu: str,
    gpu: str | None,
    message: str,
) -> None:
    body = job_body("huge", cpu=cpu)
    if gpu:
        body["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = {
            "nvidia.com/gpu": gpu
        }
    created = batch.create_namespaced_job(NS, body)
    pending = wait_workload(simulated_cluster, custom, created, "QuotaReserved", "False")
    assert conditions(pending)["QuotaReserved"]["message"] == (
        f"couldn't assign flavors to pod set main: {message}"
    )


def test_resource_not_covered_by_the_cluster_queue(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    body = job_body("scratch")
    body["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"][
        "ephemeral-storage"
    ] = "1Gi"
    created = batch.create_namespaced_job(NS, body)
    pending = wait_workload(simulated_cluster, custom, created, "QuotaReserved", "False")
    assert conditions(pending)["QuotaReserved"]["message"] == (
        "couldn't assign flavors to pod set main: "
        "resource ephemeral-storage unavailable in ClusterQueue"
    )


def test_missing_local_queue_is_inadmissible_until_it_is_created(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    v1: kubernetes.client.CoreV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    created = batch.create_namespaced_job(NS, job_body("lost", queue="no-such-queue"))
    workload = wait_workload(simulated_cluster, custom, created, "QuotaReserved", "False")
    condition = conditions(workload)["QuotaReserved"]
    assert (condition["reason"], condition["message"]) == (
        "Inadmissible",
        "LocalQueue no-such-queue doesn't exist",
    )
    simulated_cluster.advance(3600)
    simulated_cluster.settle()
    assert batch.read_namespaced_job("lost", NS).spec.suspend is True
    assert pods_of(v1, "lost") == []
    assert simulated_cluster.events(NS, reason="Pending") == []

    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        "localqueues",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "LocalQueue",
            "metadata": {"name": "no-such-queue"},
            "spec": {"clusterQueue": "team-a"},
        },
    )
    wait_workload(simulated_cluster, custom, created, "Admitted")
    simulated_cluster.wait_for(lambda: pods_of(v1, "lost"), message="the Job's pod")


def test_local_queue_pointing_to_a_missing_cluster_queue(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        "localqueues",
        {"metadata": {"name": "orphan"}, "spec": {"clusterQueue": "nobody"}},
    )
    created = batch.create_namespaced_job(NS, job_body("astray", queue="orphan"))
    workload = wait_workload(simulated_cluster, custom, created, "QuotaReserved", "False")
    condition = conditions(workload)["QuotaReserved"]
    assert (condition["reason"], condition["message"]) == (
        "Inadmissible",
        "ClusterQueue nobody doesn't exist",
    )
    lq = custom.get_namespaced_custom_object(GROUP, VERSION, NS, "localqueues", "orphan")
    assert conditions(lq)["Active"]["reason"] == "ClusterQueueDoesNotExist"


def test_job_without_the_label_is_untouched(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    created = batch.create_namespaced_job(NS, job_body("plain", queue=None, cpu="20"))
    assert created.spec.suspend is False
    simulated_cluster.advance(5)
    simulated_cluster.settle()
    assert workloads(custom) == []
    assert simulated_cluster.events(NS, involved_name="plain", reason="CreatedWorkload") == []


@pytest.mark.simulated_cluster({"timeScale": 0, "namespaces": [NS]})
def test_without_kueue_nothing_is_mutated_or_served(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    created = batch.create_namespaced_job(NS, job_body("queued"))
    assert created.spec.suspend is False
    with pytest.raises(ApiException) as caught:
        workloads(custom)
    assert caught.value.status == 404


async def test_admission_seen_through_an_async_watch(
    simulated_cluster: SimulatedCluster, aapi: kubernetes_asyncio.client.ApiClient
) -> None:
    abatch = kubernetes_asyncio.client.BatchV1Api(aapi)
    acustom = kubernetes_asyncio.client.CustomObjectsApi(aapi)
    created = await abatch.create_namespaced_job(NS, job_body("watched"))
    assert created.spec.suspend is True
    seen: list[tuple[str, str]] = []
    watch = kubernetes_asyncio.watch.Watch()
    async with watch.stream(
        acustom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        NS,
        "workloads",
        timeout_seconds=10,
    ) as stream:
        async for event in stream:
            obj = event["object"]
            reserved = conditions(obj).get("QuotaReserved", {}).get("status", "")
            seen.append((event["type"], reserved))
            if conditions(obj).get("Admitted", {}).get("status") == "True":
                break
    assert seen[0][0] == "ADDED"  # the initial state, whether or not it was admitted yet
    assert seen[-1][1] == "True"
    job = await abatch.read_namespaced_job("watched", NS)
    assert job.spec.suspend is False


# --- configuration and helpers --------------------------------------------------------------------


def test_kueue_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"kueue.localQueues\[0\] needs a clusterQueue"):
        ClusterConfig.from_dict({"kueue": {"localQueues": [{"name": "q", "namespace": NS}]}})
    with pytest.raises(ConfigError, match=r"nominalQuota must be a quantity"):
        ClusterConfig.from_dict(
            {
                "kueue": {
                    "clusterQueues": [
                        {
                            "name": "cq",
                            "resourceGroups": [
                                {
                                    "coveredResources": ["cpu"],
                                    "flavors": [
                                        {
                                            "name": "f",
                                            "resources": [{"name": "cpu", "nominalQuota": "x"}],
                                        }
                                    ],
                                }
                            ],
                        }
                    ]
                }
            }
        )
    with pytest.raises(ConfigError, match="unknown keys"):
        ClusterConfig.from_dict({"kueue": {"queues": []}})
    bad_limit = cohort_queue("cq", "2", borrowingLimit="lots")
    with pytest.raises(
        ConfigError,
        match=r"clusterQueues\[0\].resourceGroups\[0\].flavors\[0\].resources\[0\]"
        r".borrowingLimit must be a quantity, got 'lots'",
    ):
        ClusterConfig.from_dict({"kueue": {"clusterQueues": [bad_limit]}})
    with pytest.raises(ConfigError, match=r"clusterQueues\[0\].cohort must be a cohort name"):
        ClusterConfig.from_dict(
            {"kueue": {"clusterQueues": [{**cohort_queue("cq", "2"), "cohort": 7}]}}
        )


def test_quantity_strings() -> None:
    assert quantity_string("cpu", 2000) == "2"
    assert quantity_string("cpu", 2500) == "2500m"
    assert quantity_string("memory", 2 * 1024**3) == "2Gi"
    assert quantity_string("memory", 1000) == "1000"
    assert quantity_string("nvidia.com/gpu", 1) == "1"


@pytest.mark.parametrize(
    ("strategy", "third_admitted"), [("BestEffortFIFO", True), ("StrictFIFO", False)]
)
def test_queueing_strategy(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
    strategy: str,
    third_admitted: bool,
) -> None:
    custom.patch_cluster_custom_object(
        GROUP, VERSION, "clusterqueues", "team-a", {"spec": {"queueingStrategy": strategy}}
    )
    first = batch.create_namespaced_job(NS, job_body("first", cpu="6", seconds=60))
    wait_workload(simulated_cluster, custom, first, "Admitted")
    second = batch.create_namespaced_job(NS, job_body("second", cpu="4"))
    wait_workload(simulated_cluster, custom, second, "QuotaReserved", "False")
    third = batch.create_namespaced_job(NS, job_body("third", cpu="1"))
    simulated_cluster.wait_for(lambda: workload_of(custom, third), message="the third Workload")
    simulated_cluster.settle()
    admitted = conditions(workload_of(custom, third) or {}).get("Admitted", {}).get("status")
    assert (admitted == "True") is third_admitted
    simulated_cluster.advance(70)
    wait_workload(simulated_cluster, custom, second, "Admitted")
    wait_workload(simulated_cluster, custom, third, "Admitted")


def test_deleted_workload_stops_the_job_which_gets_a_new_one(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    created = batch.create_namespaced_job(NS, job_body("long", seconds=600))
    workload = wait_workload(simulated_cluster, custom, created, "Admitted")
    name = workload["metadata"]["name"]
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, "workloads", name)
    simulated_cluster.wait_for(
        lambda: event_messages(simulated_cluster, "long", "Stopped") == ["Workload is deleted"],
        message="the Job to be stopped",
    )
    simulated_cluster.wait_for(
        lambda: (
            [
                e["count"]
                for e in simulated_cluster.events(
                    NS, involved_name="long", reason="CreatedWorkload"
                )
            ]
            == [2]
        ),  # the same message twice: one aggregated event
        message="a second Workload",
    )
    again = wait_workload(simulated_cluster, custom, created, "Admitted")
    assert again["metadata"]["name"] == name  # the same deterministic name, a new object
    assert again["metadata"]["uid"] != workload["metadata"]["uid"]
    simulated_cluster.wait_for(lambda: batch.read_namespaced_job("long", NS).spec.suspend is False)


@pytest.mark.simulated_cluster(
    {
        **CLUSTER,
        "kueue": {
            **KUEUE,
            "resourceFlavors": [
                {"name": "default", "nodeLabels": {"cloud.google.com/gke-nodepool": "default"}}
            ],
        },
    }
)
def test_flavor_node_labels_go_to_the_node_selector(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    created = batch.create_namespaced_job(NS, job_body("placed"))
    wait_workload(simulated_cluster, custom, created, "Admitted")

    def selector() -> Any:
        job = batch.read_namespaced_job("placed", NS)
        return not job.spec.suspend and job.spec.template.spec.node_selector

    assert simulated_cluster.wait_for(selector) == {"cloud.google.com/gke-nodepool": "default"}


# --- cohorts -------------------------------------------------------------------------------------


def cohort_queue(
    name: str,
    cpu: str,
    cohort: str = "research",
    flavors: tuple[str, ...] = ("default",),
    **kw: Any,
) -> dict[str, Any]:
    limits = {k: v for k, v in kw.items() if k in ("borrowingLimit", "lendingLimit")}
    spec: dict[str, Any] = {
        "name": name,
        "namespaceSelector": {},
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory"],
                "flavors": [
                    {
                        "name": f,
                        "resources": [
                            {"name": "cpu", "nominalQuota": cpu, **limits},
                            {"name": "memory", "nominalQuota": "64Gi"},
                        ],
                    }
                    for f in flavors
                ],
            }
        ],
    }
    if cohort:
        spec["cohort"] = cohort
    if "whenCanBorrow" in kw:
        spec["flavorFungibility"] = {"whenCanBorrow": kw["whenCanBorrow"]}
    return spec


COHORT_CLUSTER = {
    **CLUSTER,
    "nodePools": [
        {"name": "default", "nodes": 2, "capacity": {"cpu": "16", "memory": "64Gi"}},
    ],
    "kueue": {
        "clusterQueues": [
            cohort_queue("team-b", "2", borrowingLimit="2"),
            cohort_queue("team-c", "4", lendingLimit="3"),
            cohort_queue("loner", "4", cohort=""),
        ],
        "localQueues": [
            {"namespace": NS, "name": f"{q}-queue", "clusterQueue": q}
            for q in ("team-b", "team-c", "loner")
        ],
    },
}


def cpu_reservation(custom: kubernetes.client.CustomObjectsApi, queue: str) -> dict[str, str]:
    status = custom.get_cluster_custom_object(GROUP, VERSION, "clusterqueues", queue)["status"]
    (cpu,) = [r for r in status["flavorsReservation"][0]["resources"] if r["name"] == "cpu"]
    return {"total": cpu["total"], "borrowed": cpu["borrowed"]}


def pending_message(cluster: SimulatedCluster, custom: Any, job: Any) -> str:
    workload = wait_workload(cluster, custom, job, "QuotaReserved", "False")
    return str(conditions(workload)["QuotaReserved"]["message"])


@pytest.mark.simulated_cluster(COHORT_CLUSTER)
def test_a_queue_borrows_unused_quota_from_its_cohort_within_its_limits(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    # team-b (2 CPUs, may borrow 2) takes 3: 1 borrowed from team-c, which lends at most 3 of 4.
    borrower = batch.create_namespaced_job(NS, job_body("borrower", "team-b-queue", "3", 600))
    wait_workload(simulated_cluster, custom, borrower, "Admitted")
    simulated_cluster.wait_for(
        lambda: cpu_reservation(custom, "team-b") == {"total": "3", "borrowed": "1"},
        message="team-b to report 1 CPU borrowed",
    )
    # team-c runs 2 within its own quota; the cohort has 5 CPUs to share (2 + 3), 4 in use now.
    lender = batch.create_namespaced_job(NS, job_body("lender", "team-c-queue", "2", 600))
    wait_workload(simulated_cluster, custom, lender, "Admitted")
    short = batch.create_namespaced_job(NS, job_body("short", "team-b-queue", "2", 600))
    assert pending_message(simulated_cluster, custom, short) == (
        "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor "
        "default, 1 more needed"
    )
    # 5 CPUs is past team-b's nominal 2 plus its borrowing limit 2: never admissible.
    over = batch.create_namespaced_job(NS, job_body("over", "team-b-queue", "5", 600))
    assert pending_message(simulated_cluster, custom, over) == (
        "couldn't assign flavors to pod set main: insufficient quota for cpu in flavor default, "
        "previously considered podsets requests (0) + current podset request (5) > maximum "
        "capacity (4)"
    )
    # A queue outside any cohort reports nothing borrowed and cannot borrow.
    alone = batch.create_namespaced_job(NS, job_body("alone", "loner-queue", "5", 600))
    assert "maximum capacity (4)" in pending_message(simulated_cluster, custom, alone)
    # When the borrower finishes, the cohort's quota comes back and the short Job is admitted.
    batch.delete_namespaced_job("borrower", NS, propagation_policy="Background")
    wait_workload(simulated_cluster, custom, short, "Admitted")
    assert cpu_reservation(custom, "team-b") == {"total": "2", "borrowed": "0"}


@pytest.mark.simulated_cluster(COHORT_CLUSTER)
def test_lending_limit_keeps_part_of_the_quota_for_its_own_queue(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    # team-b may borrow 2, and team-c lends 3: team-b takes 4, team-c still has its own 1 + 1.
    first = batch.create_namespaced_job(NS, job_body("first", "team-b-queue", "4", 600))
    wait_workload(simulated_cluster, custom, first, "Admitted")
    kept = batch.create_namespaced_job(NS, job_body("kept", "team-c-queue", "2", 600))
    wait_workload(simulated_cluster, custom, kept, "Admitted")
    third = batch.create_namespaced_job(NS, job_body("third", "team-c-queue", "1", 600))
    assert pending_message(simulated_cluster, custom, third).endswith(
        "insufficient unused quota for cpu in flavor default, 1 more needed"
    )


@pytest.mark.parametrize(
    ("when_can_borrow", "flavor"), [("MayStopSearch", "a"), ("TryNextFlavor", "b")]
)
def test_flavor_fungibility_decides_between_borrowing_and_the_next_flavor(
    when_can_borrow: str, flavor: str
) -> None:
    config = {
        **COHORT_CLUSTER,
        "kueue": {
            "clusterQueues": [
                cohort_queue("picky", "1", flavors=("a", "b"), whenCanBorrow=when_can_borrow),
                cohort_queue("rich", "4", flavors=("a",)),
            ],
            "localQueues": [{"namespace": NS, "name": "picky-queue", "clusterQueue": "picky"}],
        },
    }
    with SimulatedCluster(config) as cluster:
        api = cluster.sync_api_client()
        try:
            batch, custom = (
                kubernetes.client.BatchV1Api(api),
                kubernetes.client.CustomObjectsApi(api),
            )
            # Once the filler holds flavor a's own CPU, the Job fits flavor a only by borrowing
            # from "rich", and flavor b on picky's own quota.
            filler = batch.create_namespaced_job(NS, job_body("filler", "picky-queue", "1", 600))
            wait_workload(cluster, custom, filler, "Admitted")
            job = batch.create_namespaced_job(NS, job_body("job", "picky-queue", "1", 600))
            workload = wait_workload(cluster, custom, job, "Admitted")
            assignment = workload["status"]["admission"]["podSetAssignments"][0]
            assert assignment["flavors"]["cpu"] == flavor
        finally:
            api.close()
