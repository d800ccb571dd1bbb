"""Many Jobs at once, and the bookkeeping that keeps the controllers' passes short.

The Job controller syncs only Jobs whose object or pods changed (found through the store's
index of pods by controlling owner) or whose wake-up instant came; the controller loop runs a
controller that declares ``watches`` only after changes of those resource types. These tests
check that nothing is missed on the way: every Job of many gets its own pods and completes,
a pod that loses its ownerReference is noticed, and back-off timers fire with nothing else
changing. Speed is measured in ``benchmarks/simulated_cluster_scale.py``, not here.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes
import pytest

from simulated_k8s_cluster.clock import SimClock
from simulated_k8s_cluster.cluster import SimulatedCluster
from simulated_k8s_cluster.controllers.base import ControllerLoop
from simulated_k8s_cluster.resources import CONFIGMAPS, NAMESPACES, SECRETS, default_registry
from simulated_k8s_cluster.store import Store, controller_uid

NS = "batch"
FROZEN = {
    "timeScale": 0,
    "namespaces": [NS],
    "nodePools": [
        {
            "name": "default",
            "nodes": 1,
            "capacity": {"cpu": "100", "memory": "400Gi", "pods": "500"},
        }
    ],
}
pytestmark = pytest.mark.simulated_cluster(FROZEN)

Obj = dict[str, Any]


def job_body(name: str, seconds: float = 1.0, **spec: Any) -> Obj:
    behaviour = json.dumps({"seconds": seconds})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"annotations": {"sim.airflow-k8s-jobs/behaviour": behaviour}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36", "args": ["true"]}],
                },
            },
            **spec,
        },
    }


def pods_of(cluster: SimulatedCluster, job: Obj) -> list[Obj]:
    uid = job["metadata"]["uid"]
    return [p for p in cluster.list("pods", NS) if controller_uid(p) == uid]


def job(cluster: SimulatedCluster, name: str) -> Obj:
    found = cluster.get("jobs", NS, name)
    assert found is not None
    return found


def test_many_jobs_each_get_their_own_pods_and_complete(
    simulated_cluster: SimulatedCluster, batch: kubernetes.client.BatchV1Api
) -> None:
    cluster = simulated_cluster
    names = [f"many-{i:02d}" for i in range(40)]
    for name in names:
        batch.create_namespaced_job(NS, job_body(name, parallelism=2, completions=2))
    cluster.settle()
    seen_pods: set[str] = set()
    for name in names:
        current = job(cluster, name)
        pods = pods_of(cluster, current)
        assert len(pods) == 2, name
        assert all(p["metadata"]["labels"]["job-name"] == name for p in pods)
        assert current["status"]["active"] == 2
        seen_pods.update(p["metadata"]["name"] for p in pods)
    assert len(seen_pods) == 80 == len(cluster.list("pods", NS))

    cluster.advance(1)  # pull
    cluster.advance(1)  # the containers' one second
    for name in names:
        status = job(cluster, name)["status"]
        assert status.get("succeeded") == 2, name
        assert {c["type"] for c in status.get("conditions") or []} >= {"Complete"}


def test_a_pod_that_loses_its_owner_counts_as_failed_and_is_replaced_after_back_off(
    simulated_cluster: SimulatedCluster,
    batch: kubernetes.client.BatchV1Api,
    core: kubernetes.client.CoreV1Api,
) -> None:
    cluster = simulated_cluster
    batch.create_namespaced_job(NS, job_body("orphaned", seconds=3600))
    batch.create_namespaced_job(NS, job_body("bystander", seconds=3600))
    cluster.settle()
    first = pods_of(cluster, job(cluster, "orphaned"))
    assert len(first) == 1
    bystander_pods = pods_of(cluster, job(cluster, "bystander"))

    core.patch_namespaced_pod(
        first[0]["metadata"]["name"], NS, {"metadata": {"ownerReferences": None}}
    )
    cluster.settle()
    orphaned = job(cluster, "orphaned")
    assert orphaned["status"].get("failed") == 1
    assert pods_of(cluster, orphaned) == []  # the 10 s back-off
    assert cluster.get("pods", NS, first[0]["metadata"]["name"]) is not None

    cluster.advance(9)
    assert pods_of(cluster, job(cluster, "orphaned")) == []
    cluster.advance(2)  # the back-off is over: only the clock moved
    replacement = pods_of(cluster, job(cluster, "orphaned"))
    assert len(replacement) == 1
    assert replacement[0]["metadata"]["name"] != first[0]["metadata"]["name"]
    assert [p["metadata"]["name"] for p in pods_of(cluster, job(cluster, "bystander"))] == [
        p["metadata"]["name"] for p in bystander_pods
    ]
    assert (job(cluster, "bystander")["status"].get("failed") or 0) == 0


def test_active_deadline_fires_with_nothing_else_changing(
    simulated_cluster: SimulatedCluster, batch: kubernetes.client.BatchV1Api
) -> None:
    cluster = simulated_cluster
    batch.create_namespaced_job(
        NS, job_body("deadline", seconds=3600, parallelism=2, activeDeadlineSeconds=30)
    )
    cluster.settle()
    cluster.advance(5)
    assert job(cluster, "deadline")["status"]["active"] == 2
    cluster.advance(26)
    status = job(cluster, "deadline")["status"]
    failed = [c for c in status.get("conditions") or [] if c["type"] == "FailureTarget"]
    assert failed and failed[0]["reason"] == "DeadlineExceeded"


# --- the controller loop ------------------------------------------------------------------------


class Recorder:
    """A controller that counts its passes and asks to be woken at ``wake``."""

    def __init__(self, name: str, watches: tuple[Any, ...] | None = None) -> None:
        self.name = name
        if watches is not None:
            self.watches = watches
        self.runs = 0
        self.wake: float | None = None

    def reconcile(self) -> float | None:
        self.runs += 1
        return self.wake


def _configmap(store: Store, name: str) -> None:
    store.create(CONFIGMAPS, {"metadata": {"name": name, "namespace": "default"}})


def test_the_background_loop_runs_controllers_only_when_due() -> None:
    clock = SimClock(0)
    store = Store(default_registry(), clock)
    store.create(NAMESPACES, {"metadata": {"name": "default"}})
    everything = Recorder("everything")
    configmaps = Recorder("configmaps", watches=(CONFIGMAPS,))
    overridden = Recorder("overridden")
    loop = ControllerLoop(store, clock, [everything, configmaps, overridden], {"overridden": ()})

    loop.run_due()
    assert (everything.runs, configmaps.runs, overridden.runs) == (1, 1, 1)
    loop.run_due()  # nothing changed
    assert (everything.runs, configmaps.runs, overridden.runs) == (1, 1, 1)

    store.create(SECRETS, {"metadata": {"name": "s", "namespace": "default"}})
    loop.run_due()
    assert (everything.runs, configmaps.runs, overridden.runs) == (2, 1, 1)

    _configmap(store, "c")
    loop.run_due()
    assert (everything.runs, configmaps.runs, overridden.runs) == (3, 2, 1)

    overridden.wake = 5.0
    assert loop.run_once() == 5.0  # every controller, changes or not
    assert (everything.runs, configmaps.runs, overridden.runs) == (4, 3, 2)
    clock.advance(4)
    loop.run_due()
    assert overridden.runs == 2
    clock.advance(1)
    overridden.wake = None
    assert loop.run_due() is None
    assert (everything.runs, configmaps.runs, overridden.runs) == (4, 3, 3)
