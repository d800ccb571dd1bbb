"""Cleaning up Jobs in the simulated cluster: ``ttlSecondsAfterFinished`` and deletion
propagation to the Job's pods, through the real clients (time frozen, moved by ``advance``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest

from simulated_k8s_cluster.cluster import SimulatedCluster

NS = "batch"
pytestmark = pytest.mark.simulated_cluster({"timeScale": 0, "namespaces": [NS]})
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def job(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                }
            },
            **spec,
        },
    }


def condition(batch: kubernetes.client.BatchV1Api, name: str, kind: str) -> bool:
    try:
        status = batch.read_namespaced_job_status(name, NS).status
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return any(c.type == kind and c.status == "True" for c in status.conditions or [])


def pods_of(core: kubernetes.client.CoreV1Api, name: str) -> list[Any]:
    return list(core.list_namespaced_pod(NS, label_selector=f"{JOB_NAME_LABEL}={name}").items)


def test_finished_job_and_its_pods_are_deleted_after_the_ttl(
    simulated_cluster: SimulatedCluster, api: kubernetes.client.ApiClient
) -> None:
    batch, core = kubernetes.client.BatchV1Api(api), kubernetes.client.CoreV1Api(api)
    batch.create_namespaced_job(NS, job("short-lived", ttlSecondsAfterFinished=30))
    simulated_cluster.advance(5)
    simulated_cluster.wait_for(lambda: condition(batch, "short-lived", "Complete"))
    assert len(pods_of(core, "short-lived")) == 1

    simulated_cluster.advance(25)  # 30 s after start, but not yet 30 s after finishing
    assert condition(batch, "short-lived", "Complete")

    simulated_cluster.advance(10)
    simulated_cluster.wait_for(
        lambda: not batch.list_namespaced_job(NS).items and not pods_of(core, "short-lived"),
        message="the Job and its pod to be deleted",
    )


def test_ttl_set_on_a_finished_job_later_deletes_it(
    simulated_cluster: SimulatedCluster, api: kubernetes.client.ApiClient
) -> None:
    """A TTL patched onto a Job that already finished counts from its finish time."""
    batch = kubernetes.client.BatchV1Api(api)
    batch.create_namespaced_job(NS, job("patched"))
    batch.create_namespaced_job(NS, job("untouched"))
    simulated_cluster.advance(5)
    simulated_cluster.wait_for(lambda: condition(batch, "patched", "Complete"))
    simulated_cluster.advance(100)
    batch.patch_namespaced_job("patched", NS, {"spec": {"ttlSecondsAfterFinished": 60}})
    simulated_cluster.advance(1)
    simulated_cluster.wait_for(
        lambda: [j.metadata.name for j in batch.list_namespaced_job(NS).items] == ["untouched"],
        message="the patched Job to be deleted",
    )


def test_job_without_ttl_stays(
    simulated_cluster: SimulatedCluster, api: kubernetes.client.ApiClient
) -> None:
    batch = kubernetes.client.BatchV1Api(api)
    batch.create_namespaced_job(NS, job("kept"))
    simulated_cluster.advance(5)
    simulated_cluster.wait_for(lambda: condition(batch, "kept", "Complete"))
    simulated_cluster.advance(24 * 3600)
    assert condition(batch, "kept", "Complete")


@pytest.mark.parametrize(
    ("policy", "pods_left"),
    [("Foreground", 0), ("Background", 0), ("Orphan", 1), (None, 1)],
)
def test_deleting_a_running_job_propagates_to_its_pods(
    simulated_cluster: SimulatedCluster,
    api: kubernetes.client.ApiClient,
    policy: str | None,
    pods_left: int,
) -> None:
    batch, core = kubernetes.client.BatchV1Api(api), kubernetes.client.CoreV1Api(api)
    simulated_cluster.add_behaviour({"match": {"image": "busybox:1.36"}, "seconds": 3600})
    batch.create_namespaced_job(NS, job("running"))
    simulated_cluster.advance(2)
    simulated_cluster.wait_for(
        lambda: [p for p in pods_of(core, "running") if p.status.phase == "Running"]
    )
    if policy is None:  # batch/v1 default through the API: orphan the pods
        batch.delete_namespaced_job("running", NS)
    else:
        batch.delete_namespaced_job("running", NS, propagation_policy=policy)
    simulated_cluster.advance(1)
    simulated_cluster.wait_for(lambda: not batch.list_namespaced_job(NS).items)
    simulated_cluster.wait_for(lambda: len(pods_of(core, "running")) == pods_left)
    for pod in pods_of(core, "running"):
        assert not pod.metadata.owner_references, "orphaned pods lose their ownerReference"
        assert pod.status.phase == "Running"


async def test_ttl_deletion_is_seen_by_an_async_watch(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path
) -> None:
    client = await kubernetes_asyncio.config.new_client_from_config(
        config_file=str(simulated_kubeconfig)
    )
    async with client:
        batch = kubernetes_asyncio.client.BatchV1Api(client)
        await batch.create_namespaced_job(NS, job("watched", ttlSecondsAfterFinished=0))
        listed = await batch.list_namespaced_job(NS)
        seen: list[tuple[str, bool]] = []
        simulated_cluster.advance(5)
        watch = kubernetes_asyncio.watch.Watch()
        async for event in watch.stream(
            batch.list_namespaced_job,
            NS,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=10,
        ):
            conditions = event["object"].status.conditions or []
            complete = any(c.type == "Complete" and c.status == "True" for c in conditions)
            seen.append((event["type"], complete))
            if event["type"] == "DELETED":
                break
        watch.stop()
    assert ("MODIFIED", True) in seen
    assert seen[-1][0] == "DELETED"
