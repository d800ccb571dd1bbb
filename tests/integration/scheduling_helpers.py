"""Helpers for the scheduling tests: pod manifests, conditions, events, settling the loop."""

from __future__ import annotations

from typing import Any

import kubernetes

from simulated_k8s_cluster import SimulatedCluster

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"


def gpu_pool(**overrides: Any) -> dict[str, Any]:
    """The seed case: a GPU pool that starts empty, tainted, labelled with its accelerator."""
    return {
        "name": "gpu",
        "nodes": 0,
        "maxNodes": 2,
        "scaleUpSeconds": 60,
        "capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
        "labels": {ACCELERATOR_LABEL: "nvidia-l4"},
        "taints": [GPU_TAINT],
        **overrides,
    }


def default_pool(**overrides: Any) -> dict[str, Any]:
    return {"name": "default", "nodes": 1, "capacity": {"cpu": "4", "memory": "16Gi"}, **overrides}


def pod(
    name: str,
    cpu: str | None = None,
    gpus: int = 0,
    image: str = "busybox:1.36",
    node_selector: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if cpu:
        resources["requests"] = {"cpu": cpu}
    if gpus:
        resources["limits"] = {"nvidia.com/gpu": str(gpus)}
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": image, "resources": resources}],
            **spec,
        },
    }
    if node_selector:
        body["spec"]["nodeSelector"] = node_selector
    return body


def gpu_pod(name: str) -> dict[str, Any]:
    """Tolerates the GPU taint and selects the accelerator by required node affinity."""
    return pod(
        name,
        gpus=1,
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": ACCELERATOR_LABEL,
                                    "operator": "In",
                                    "values": ["nvidia-l4"],
                                }
                            ]
                        }
                    ]
                }
            }
        },
    )


def condition(pod_obj: Any, kind: str) -> Any:
    for cond in pod_obj.status.conditions or []:
        if cond.type == kind:
            return cond
    return None


def events(
    v1: kubernetes.client.CoreV1Api, namespace: str, name: str, reason: str | None = None
) -> list[Any]:
    selector = f"involvedObject.name={name}"
    if reason:
        selector += f",reason={reason}"
    return list(v1.list_namespaced_event(namespace, field_selector=selector).items)


def settle(cluster: SimulatedCluster) -> None:
    """Run the controllers to a fixed point on the cluster's thread, so that what the test
    checks next reflects the current simulated instant (needed before asserting that
    something has *not* happened)."""
    cluster.settle()
