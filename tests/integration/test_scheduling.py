"""Node pools, the scheduler and the cluster autoscaler, seen through the real clients.

Most tests freeze simulated time (``timeScale: 0``) and move it with ``advance()``, so that
"the node appears after the pool's scale-up delay" is checked to the simulated second.
"""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest

from simulated_k8s_cluster import SimulatedCluster
from tests.integration.scheduling_helpers import (
    ACCELERATOR_LABEL,
    GPU_TAINT,
    condition,
    default_pool,
    events,
    gpu_pod,
    gpu_pool,
    pod,
    settle,
)

NS = "batch"
DEADLINE = 10.0


def _bound(v1: kubernetes.client.CoreV1Api, name: str) -> str | None:
    node: str | None = v1.read_namespaced_pod(name, NS).spec.node_name
    return node


def _nodes(v1: kubernetes.client.CoreV1Api, pool: str | None = None) -> list[Any]:
    selector = f"cloud.google.com/gke-nodepool={pool}" if pool else None
    return list(v1.list_node(label_selector=selector).items)


def _wait_event(
    cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api, name: str, reason: str
) -> Any:
    found = cluster.wait_for(
        lambda: events(v1, NS, name, reason), timeout=DEADLINE, message=f"{reason} event for {name}"
    )
    assert len(found) == 1
    return found[0]


# --- node pools ---------------------------------------------------------------------------------


@pytest.mark.simulated_cluster(
    {
        "timeScale": 0,
        "namespaces": [NS],
        "clusterName": "etl",
        "nodePools": [default_pool(nodes=2, labels={"team": "data"}), gpu_pool(nodes=1)],
    }
)
def test_node_pools_create_gke_like_nodes(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    simulated_cluster.wait_for(lambda: len(_nodes(v1)) == 3)
    nodes = _nodes(v1)
    default = _nodes(v1, "default")
    assert len(default) == 2
    for node in default:
        name = node.metadata.name
        assert re.fullmatch(r"gke-etl-default-[0-9a-f]{8}-[a-z0-9]{4}", name), name
        labels = node.metadata.labels
        assert labels["kubernetes.io/hostname"] == name
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["team"] == "data"
        assert node.spec.taints is None
        assert node.status.capacity == {
            "cpu": "4",
            "memory": "16Gi",
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        assert node.status.allocatable == node.status.capacity
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert (ready.status, ready.reason) == ("True", "KubeletReady")
        assert node.status.node_info.kubelet_version.startswith("v1.34.2")
        assert node.status.node_info.operating_system == "linux"
    # Both default nodes come from the same instance group: same hash, different suffix.
    assert len({n.metadata.name.rsplit("-", 1)[0] for n in default}) == 1
    assert len({n.metadata.name for n in default}) == 2

    (gpu,) = _nodes(v1, "gpu")
    assert gpu.metadata.labels[ACCELERATOR_LABEL] == "nvidia-l4"
    assert [t.to_dict() for t in gpu.spec.taints] == [{**GPU_TAINT, "time_added": None}]
    assert gpu.status.allocatable["nvidia.com/gpu"] == "1"
    assert {n.metadata.name for n in nodes} == {n.metadata.name for n in [*default, gpu]}


# --- the scheduler ------------------------------------------------------------------------------


@pytest.mark.simulated_cluster(
    {"timeScale": 0, "namespaces": [NS], "nodePools": [default_pool(nodes=2)]}
)
def test_pod_is_bound_with_condition_and_event(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    v1.create_namespaced_pod(NS, pod("hello", cpu="1"))
    node = simulated_cluster.wait_for(lambda: _bound(v1, "hello"), message="binding")
    assert node in {n.metadata.name for n in _nodes(v1, "default")}
    scheduled = condition(v1.read_namespaced_pod("hello", NS), "PodScheduled")
    assert scheduled.status == "True"
    assert scheduled.reason is None
    event = _wait_event(simulated_cluster, v1, "hello", "Scheduled")
    assert event.type == "Normal"
    assert event.message == f"Successfully assigned {NS}/hello to {node}"
    assert event.source.component == "default-scheduler"
    # Binding again is a no-op: the pod's node never changes.
    settle(simulated_cluster)
    assert _bound(v1, "hello") == node


@pytest.mark.simulated_cluster(
    {"timeScale": 0, "namespaces": [NS], "nodePools": [default_pool(nodes=2)]}
)
def test_pods_fill_nodes_by_requests(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    for name in ("a", "b", "c"):
        v1.create_namespaced_pod(NS, pod(name, cpu="3"))
    simulated_cluster.wait_for(lambda: _bound(v1, "a") and _bound(v1, "b"))
    assert _bound(v1, "a") != _bound(v1, "b")  # 3 + 3 cpu do not fit one 4-cpu node
    message = (
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are "
        "available: 2 No preemption victims found for incoming pod."
    )
    unschedulable = simulated_cluster.wait_for(
        lambda: condition(v1.read_namespaced_pod("c", NS), "PodScheduled")
    )
    assert (unschedulable.status, unschedulable.reason, unschedulable.message) == (
        "False",
        "Unschedulable",
        message,
    )
    event = _wait_event(simulated_cluster, v1, "c", "FailedScheduling")
    assert (event.type, event.message, event.source.component) == (
        "Warning",
        message,
        "default-scheduler",
    )

    # Space frees up when a pod goes away: the waiting pod takes its place.
    freed = _bound(v1, "a")
    v1.delete_namespaced_pod("a", NS, grace_period_seconds=0)
    assert simulated_cluster.wait_for(lambda: _bound(v1, "c"), message="c bound") == freed
    assert condition(v1.read_namespaced_pod("c", NS), "PodScheduled").status == "True"


@pytest.mark.simulated_cluster(
    {
        "timeScale": 0,
        "namespaces": [NS],
        "nodePools": [
            default_pool(labels={"tier": "default"}),
            {
                "name": "highmem",
                "nodes": 2,
                "capacity": {"cpu": "16", "memory": "128Gi"},
                "labels": {"tier": "highmem"},
            },
        ],
    }
)
def test_unschedulable_message_counts_each_reason(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    v1.create_namespaced_pod(NS, pod("too-big", cpu="6", node_selector={"tier": "default"}))
    simulated_cluster.wait_for(lambda: events(v1, NS, "too-big", "FailedScheduling"))
    # 6 cpu > the node's 4 allocatable: preemption cannot help there either.
    assert condition(v1.read_namespaced_pod("too-big", NS), "PodScheduled").message == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node "
        "affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful "
        "for scheduling."
    )


@pytest.mark.simulated_cluster(
    {"timeScale": 0, "namespaces": [NS], "nodePools": [default_pool(nodes=2), gpu_pool(nodes=1)]}
)
def test_taints_tolerations_and_match_fields(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    simulated_cluster.wait_for(lambda: len(_nodes(v1)) == 3)
    (gpu_node,) = _nodes(v1, "gpu")
    gpu_name = gpu_node.metadata.name
    # Pinned to the GPU node by name (as a DaemonSet pod is) without tolerating its taint.
    pinned = pod(
        "pinned",
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [gpu_name]}
                            ]
                        }
                    ]
                }
            }
        },
    )
    v1.create_namespaced_pod(NS, pinned)
    simulated_cluster.wait_for(lambda: events(v1, NS, "pinned", "FailedScheduling"))
    assert condition(v1.read_namespaced_pod("pinned", NS), "PodScheduled").message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't "
        "satisfy plugin(s) [NodeAffinity]. preemption: 0/3 nodes are available: 3 Preemption "
        "is not helpful for scheduling."
    )

    # The GPU pod tolerates the taint and selects the accelerator: it lands on the GPU node.
    v1.create_namespaced_pod(NS, gpu_pod("trainer"))
    assert simulated_cluster.wait_for(lambda: _bound(v1, "trainer")) == gpu_name
    # A pod without requests and tolerations never goes to the tainted node.
    for i in range(4):
        v1.create_namespaced_pod(NS, pod(f"plain-{i}"))
    for i in range(4):
        name = f"plain-{i}"

        def placed(name: str = name) -> str | None:
            return _bound(v1, name)

        assert simulated_cluster.wait_for(placed) != gpu_name


@pytest.mark.simulated_cluster({"timeScale": 0, "namespaces": [NS], "nodePools": [default_pool()]})
def test_scheduling_gates_hold_the_pod(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    v1.create_namespaced_pod(NS, pod("gated", schedulingGates=[{"name": "example.com/quota"}]))
    gated = simulated_cluster.wait_for(
        lambda: condition(v1.read_namespaced_pod("gated", NS), "PodScheduled")
    )
    assert (gated.status, gated.reason, gated.message) == (
        "False",
        "SchedulingGated",
        "Scheduling is blocked due to non-empty scheduling gates",
    )
    settle(simulated_cluster)
    assert _bound(v1, "gated") is None
    v1.patch_namespaced_pod("gated", NS, {"spec": {"schedulingGates": None}})
    simulated_cluster.wait_for(lambda: _bound(v1, "gated"), message="bound after ungating")
    assert condition(v1.read_namespaced_pod("gated", NS), "PodScheduled").status == "True"


@pytest.mark.simulated_cluster({"timeScale": 0, "namespaces": [NS], "nodePools": [default_pool()]})
def test_unschedulable_pod_is_not_rewritten_but_retried(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    v1.create_namespaced_pod(NS, pod("huge", cpu="100"))
    simulated_cluster.wait_for(lambda: events(v1, NS, "huge", "FailedScheduling"))
    settle(simulated_cluster)
    version = v1.read_namespaced_pod("huge", NS).metadata.resource_version
    simulated_cluster.advance(30)
    settle(simulated_cluster)
    assert v1.read_namespaced_pod("huge", NS).metadata.resource_version == version
    assert events(v1, NS, "huge", "FailedScheduling")[0].count == 1
    # The scheduler retries: the event is counted again, the pod stays untouched.
    simulated_cluster.advance(31)
    simulated_cluster.wait_for(lambda: events(v1, NS, "huge", "FailedScheduling")[0].count == 2)
    assert v1.read_namespaced_pod("huge", NS).metadata.resource_version == version


@pytest.mark.simulated_cluster({"timeScale": 0, "namespaces": [NS], "nodePools": []})
def test_no_nodes_at_all(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    v1.create_namespaced_pod(NS, pod("lonely"))
    event = _wait_event(simulated_cluster, v1, "lonely", "FailedScheduling")
    assert event.message == "no nodes available to schedule pods"


# --- the cluster autoscaler ---------------------------------------------------------------------

AUTOSCALED = {
    "timeScale": 0,
    "namespaces": [NS],
    "autoscalerScanSeconds": 10,
    "nodePools": [default_pool(), gpu_pool()],
}


@pytest.mark.simulated_cluster(AUTOSCALED)
async def test_gpu_pod_triggers_scale_up_and_lands_on_the_new_node(
    simulated_cluster: SimulatedCluster,
    v1: kubernetes.client.CoreV1Api,
    av1: kubernetes_asyncio.client.CoreV1Api,
) -> None:
    cluster = simulated_cluster
    seen: asyncio.Queue[Any] = asyncio.Queue()

    async def watch_scale_ups() -> None:
        watch = kubernetes_asyncio.watch.Watch()
        async with watch.stream(
            av1.list_namespaced_event,
            NS,
            field_selector="reason=TriggeredScaleUp",
            timeout_seconds=30,
        ) as stream:
            async for event in stream:
                await seen.put(event["object"])

    watcher = asyncio.create_task(watch_scale_ups())
    try:
        await asyncio.to_thread(v1.create_namespaced_pod, NS, gpu_pod("trainer"))
        await asyncio.to_thread(
            cluster.wait_for, lambda: events(v1, NS, "trainer", "FailedScheduling")
        )
        scheduled = condition(v1.read_namespaced_pod("trainer", NS), "PodScheduled")
        assert (scheduled.reason, scheduled.message) == (
            "Unschedulable",
            (
                "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
                "preemption: 0/1 nodes are available: 1 Preemption is not helpful for "
                "scheduling."
            ),
        )
        started = cluster.now()

        cluster.advance(10)  # the autoscaler's next loop
        event = await asyncio.wait_for(seen.get(), DEADLINE)
        assert event.involved_object.name == "trainer"
        assert event.type == "Normal"
        assert event.message == "pod triggered scale-up: [{gpu 0->1 (max: 2)}]"
        assert event.source.component == "cluster-autoscaler"

        cluster.advance(30)
        await asyncio.to_thread(settle, cluster)
        assert _nodes(v1, "gpu") == []
        assert _bound(v1, "trainer") is None
        cluster.advance(40)  # past the pool's 60 s scale-up delay
        node = await asyncio.to_thread(cluster.wait_for, lambda: _bound(v1, "trainer"))
        (gpu_node,) = _nodes(v1, "gpu")
        assert node == gpu_node.metadata.name
        assert 70 <= cluster.now() - started <= 80
        # The next loops see the pod placed: no second scale-up.
        cluster.advance(30)
        await asyncio.to_thread(settle, cluster)
        assert seen.empty()
        assert len(_nodes(v1, "gpu")) == 1
        assert events(v1, NS, "trainer", "TriggeredScaleUp")[0].count == 1
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


BURST = {
    "timeScale": 0,
    "namespaces": [NS],
    "autoscalerScanSeconds": 10,
    "nodePools": [
        default_pool(),
        {
            "name": "burst",
            "nodes": 0,
            "maxNodes": 3,
            "scaleUpSeconds": 60,
            "capacity": {"cpu": "4", "memory": "16Gi"},
            "labels": {"tier": "burst"},
        },
    ],
}


@pytest.mark.simulated_cluster(BURST)
def test_small_pods_share_one_new_node(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    cluster = simulated_cluster
    burst = {"tier": "burst"}
    for name in ("p1", "p2", "p3"):
        v1.create_namespaced_pod(NS, pod(name, cpu="1", node_selector=burst))
    cluster.wait_for(lambda: all(events(v1, NS, n, "FailedScheduling") for n in ("p1", "p2", "p3")))
    cluster.advance(10)
    for name in ("p1", "p2", "p3"):
        event = _wait_event(cluster, v1, name, "TriggeredScaleUp")
        assert event.message == "pod triggered scale-up: [{burst 0->1 (max: 3)}]"

    # A pod that fits in what is left of the upcoming node does not trigger anything more ...
    v1.create_namespaced_pod(NS, pod("p4", cpu="1", node_selector=burst))
    cluster.wait_for(lambda: events(v1, NS, "p4", "FailedScheduling"))
    cluster.advance(10)
    settle(cluster)
    assert events(v1, NS, "p4", "TriggeredScaleUp") == []
    assert events(v1, NS, "p4", "NotTriggerScaleUp") == []
    # ... one that does not fit there gets a node of its own.
    v1.create_namespaced_pod(NS, pod("p5", cpu="2", node_selector=burst))
    cluster.wait_for(lambda: events(v1, NS, "p5", "FailedScheduling"))
    cluster.advance(10)
    assert _wait_event(cluster, v1, "p5", "TriggeredScaleUp").message == (
        "pod triggered scale-up: [{burst 1->2 (max: 3)}]"
    )

    cluster.advance(40)  # the first node is Ready 60 s after its scale-up
    cluster.wait_for(lambda: all(_bound(v1, n) for n in ("p1", "p2", "p3", "p4")))
    assert len({_bound(v1, n) for n in ("p1", "p2", "p3", "p4")}) == 1
    settle(cluster)
    assert _bound(v1, "p5") is None
    cluster.advance(20)
    cluster.wait_for(lambda: _bound(v1, "p5"))
    assert len(_nodes(v1, "burst")) == 2


@pytest.mark.simulated_cluster(
    {
        "timeScale": 0,
        "namespaces": [NS],
        "autoscalerScanSeconds": 10,
        "nodePools": [
            default_pool(),
            {
                "name": "burst",
                "nodes": 0,
                "maxNodes": 1,
                "scaleUpSeconds": 30,
                "capacity": {"cpu": "4", "memory": "16Gi"},
                "labels": {"tier": "burst"},
            },
            {
                "name": "highmem",
                "nodes": 0,
                "maxNodes": 2,
                "capacity": {"cpu": "16", "memory": "128Gi"},
                "labels": {"tier": "highmem"},
            },
        ],
    }
)
def test_not_trigger_scale_up_names_every_node_group(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    cluster = simulated_cluster
    v1.create_namespaced_pod(NS, pod("first", cpu="3", node_selector={"tier": "burst"}))
    cluster.wait_for(lambda: events(v1, NS, "first", "FailedScheduling"))
    cluster.advance(10)
    _wait_event(cluster, v1, "first", "TriggeredScaleUp")
    # The only burst node (its pool's maximum) is already spoken for.
    v1.create_namespaced_pod(NS, pod("second", cpu="3", node_selector={"tier": "burst"}))
    cluster.wait_for(lambda: events(v1, NS, "second", "FailedScheduling"))
    cluster.advance(10)
    event = _wait_event(cluster, v1, "second", "NotTriggerScaleUp")
    assert event.type == "Normal"
    assert event.source.component == "cluster-autoscaler"
    assert event.message == (
        "pod didn't trigger scale-up: 1 max node group size reached, "
        "1 node(s) didn't match Pod's node affinity/selector"
    )
    # Every loop says it again (the recorder counts the repeats).
    cluster.advance(10)
    cluster.wait_for(lambda: events(v1, NS, "second", "NotTriggerScaleUp")[0].count == 2)
    assert len(_nodes(v1, "burst")) <= 1

    # A GPU-sized pod fits no template at all.
    v1.create_namespaced_pod(NS, pod("gpu-less", gpus=1))
    cluster.wait_for(lambda: events(v1, NS, "gpu-less", "FailedScheduling"))
    cluster.advance(10)
    assert _wait_event(cluster, v1, "gpu-less", "NotTriggerScaleUp").message == (
        "pod didn't trigger scale-up: 1 Insufficient nvidia.com/gpu, 1 max node group size reached"
    )


@pytest.mark.simulated_cluster(
    {
        "timeScale": 0,
        "namespaces": [NS],
        "autoscalerScanSeconds": 10,
        "nodePools": [
            default_pool(),
            {
                "name": "burst",
                "nodes": 0,
                "maxNodes": 1,
                "scaleUpSeconds": 30,
                "labels": {"tier": "burst"},
            },
        ],
    }
)
def test_empty_autoscaled_node_is_removed_after_ten_minutes(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    cluster = simulated_cluster
    v1.create_namespaced_pod(NS, pod("short", cpu="1", node_selector={"tier": "burst"}))
    cluster.wait_for(lambda: events(v1, NS, "short", "FailedScheduling"))
    cluster.advance(10)
    _wait_event(cluster, v1, "short", "TriggeredScaleUp")
    cluster.advance(30)
    node = cluster.wait_for(lambda: _bound(v1, "short"))
    v1.delete_namespaced_pod("short", NS, grace_period_seconds=0)
    cluster.advance(10)  # the unneeded time counts from the first loop that sees it empty
    settle(cluster)
    cluster.advance(580)
    settle(cluster)
    assert [n.metadata.name for n in _nodes(v1, "burst")] == [node]
    cluster.advance(30)
    cluster.wait_for(lambda: _nodes(v1, "burst") == [], message="scale-down")
    (event,) = v1.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={node},reason=ScaleDown"
    ).items
    assert event.message == "marked the node as toBeDeleted/unschedulable"
    assert event.source.component == "cluster-autoscaler"
    assert len(_nodes(v1, "default")) == 1  # pools never shrink below their configured size


# --- losing a node ------------------------------------------------------------------------------


@pytest.mark.simulated_cluster(
    {"timeScale": 0, "namespaces": [NS], "nodePools": [default_pool(nodes=2)]}
)
def test_lost_node_fails_and_deletes_its_pods(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    cluster = simulated_cluster
    v1.create_namespaced_pod(NS, pod("victim", cpu="3"))
    v1.create_namespaced_pod(NS, pod("bystander", cpu="3"))
    node = cluster.wait_for(lambda: _bound(v1, "victim"))
    other = cluster.wait_for(lambda: _bound(v1, "bystander"))
    assert node != other
    assert node is not None
    version = v1.list_namespaced_pod(NS).metadata.resource_version
    seen: list[tuple[str, Any]] = []
    done = threading.Event()

    def watch() -> None:
        for event in kubernetes.watch.Watch().stream(
            v1.list_namespaced_pod,
            NS,
            resource_version=version,
            field_selector="metadata.name=victim",
            timeout_seconds=10,
        ):
            seen.append((event["type"], event["object"]))
            if event["type"] == "DELETED":
                break
        done.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    cluster.lose_node(node)
    assert done.wait(DEADLINE), f"no DELETED event, saw {[t for t, _ in seen]}"
    failed = next(obj for kind, obj in seen if kind == "MODIFIED")
    assert failed.status.phase == "Failed"
    disruption = condition(failed, "DisruptionTarget")
    assert (disruption.status, disruption.reason, disruption.message) == (
        "True",
        "DeletionByPodGC",
        "PodGC: node no longer exists",
    )
    assert seen[-1][0] == "DELETED"
    assert node not in {n.metadata.name for n in _nodes(v1)}
    assert v1.read_namespaced_pod("bystander", NS).status.phase != "Failed"

    with pytest.raises(KeyError, match="no such node"):
        cluster.lose_node("gke-simulated-default-00000000-zzzz")


# --- end to end, with the kubelet running the pods ----------------------------------------------

RUNNING = {
    "timeScale": 0.01,
    "namespaces": [NS],
    "autoscalerScanSeconds": 10,
    "nodePools": [default_pool(nodes=2), gpu_pool()],
}
BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"


@pytest.mark.simulated_cluster(RUNNING)
def test_gpu_pod_waits_for_its_node_then_runs_and_succeeds(
    simulated_cluster: SimulatedCluster, v1: kubernetes.client.CoreV1Api
) -> None:
    cluster = simulated_cluster
    manifest = gpu_pod("trainer")
    manifest["metadata"]["annotations"] = {BEHAVIOUR: '{"seconds": 5, "stdout": "trained"}'}
    v1.create_namespaced_pod(NS, manifest)
    created = cluster.now()
    cluster.wait_for(lambda: events(v1, NS, "trainer", "FailedScheduling"), timeout=DEADLINE)
    assert v1.read_namespaced_pod("trainer", NS).status.phase == "Pending"
    scale_up = _wait_event(cluster, v1, "trainer", "TriggeredScaleUp")
    assert scale_up.message == "pod triggered scale-up: [{gpu 0->1 (max: 2)}]"

    cluster.wait_for(
        lambda: v1.read_namespaced_pod("trainer", NS).status.phase == "Succeeded",
        timeout=30,
        message="the GPU pod to succeed",
    )
    (gpu_node,) = _nodes(v1, "gpu")
    assert _bound(v1, "trainer") == gpu_node.metadata.name
    # The pool's scale-up delay, then the run, both shortened by timeScale.
    assert cluster.now() - created >= cluster.clock.scaled(60 + 5)
    log = v1.read_namespaced_pod_log("trainer", NS, _preload_content=False)
    assert log.data.decode().strip() == "trained"
    by_reason = {e.reason: e for e in events(v1, NS, "trainer")}
    assert {"FailedScheduling", "TriggeredScaleUp", "Scheduled", "Started"} <= set(by_reason)
    # firstTimestamp has whole seconds and the scale-up takes 0.6 s here: the order is weak. The
    # one-off Events' strict order is the order the API server stored them in (resourceVersion;
    # a repeated Event such as FailedScheduling gets a new one on each update).
    first = {reason: e.first_timestamp for reason, e in by_reason.items()}
    assert (
        first["FailedScheduling"]
        <= first["TriggeredScaleUp"]
        <= first["Scheduled"]
        <= first["Started"]
    )
    stored = {reason: int(e.metadata.resource_version) for reason, e in by_reason.items()}
    assert stored["Scheduled"] < stored["Started"]


@pytest.mark.simulated_cluster(RUNNING)
def test_job_replaces_the_pod_of_a_lost_node(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path, v1: kubernetes.client.CoreV1Api
) -> None:
    cluster = simulated_cluster
    client = kubernetes.config.new_client_from_config(config_file=str(simulated_kubeconfig))
    batch = kubernetes.client.BatchV1Api(client)
    template = pod("worker", cpu="3")
    template["metadata"] = {"annotations": {BEHAVIOUR: '{"seconds": 30}'}}
    batch.create_namespaced_job(
        NS,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "etl"},
            "spec": {"backoffLimit": 1, "template": template},
        },
    )

    def pods() -> list[Any]:
        return list(v1.list_namespaced_pod(NS, label_selector="job-name=etl").items)

    first = cluster.wait_for(
        lambda: [p for p in pods() if p.status.phase == "Running"], timeout=DEADLINE
    )[0]
    cluster.lose_node(first.spec.node_name)

    def replacement() -> Any:
        return [p for p in pods() if p.metadata.name != first.metadata.name and p.spec.node_name]

    (second,) = cluster.wait_for(replacement, timeout=DEADLINE, message="a replacement pod")
    assert second.spec.node_name != first.spec.node_name
    cluster.wait_for(
        lambda: (batch.read_namespaced_job_status("etl", NS).status.succeeded or 0) == 1,
        timeout=30,
        message="the Job to succeed",
    )
    job = batch.read_namespaced_job_status("etl", NS)
    assert job.status.failed == 1
    client.close()
