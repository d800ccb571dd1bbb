"""``python -m airflow_k8s_jobs.demo`` (what ``make demo`` runs).

Starts a simulated cluster (a GKE-like cluster with a CPU pool and an autoscaled, tainted GPU
pool), submits Jobs to it through the official ``kubernetes`` client exactly as a real cluster
would be driven, follows them with a watch and prints what happened: pod waves, capacity
waits and scale-ups, logs from every pod, and the API requests it took.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from .testing import SimulatedCluster

NAMESPACE = "batch"

DEMO_CLUSTER: dict[str, Any] = {
    "timeScale": 0.02,
    "namespaces": [NAMESPACE],
    "nodePools": [
        {
            "name": "default",
            "nodes": 2,
            "maxNodes": 2,
            "capacity": {"cpu": "4", "memory": "16Gi"},
            "labels": {"cloud.google.com/gke-nodepool": "default"},
        },
        {
            "name": "gpu",
            "nodes": 0,
            "maxNodes": 2,
            "scaleUpSeconds": 90,
            "capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
            "labels": {
                "cloud.google.com/gke-nodepool": "gpu",
                "cloud.google.com/gke-accelerator": "nvidia-tesla-t4",
            },
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
    ],
    "behaviours": [
        {
            "match": {"image": "task-python:1.0", "args": "shard.py"},
            "seconds": 20,
            "stdout": "loading shard $(JOB_COMPLETION_INDEX)\nshard $(JOB_COMPLETION_INDEX) done",
            "terminationMessage": '{"shard": $(JOB_COMPLETION_INDEX), "rows": 1000}',
        },
        {
            "match": {"image": "task-python:1.0", "args": "broken.py"},
            "seconds": 5,
            "exitCode": 2,
            "stdout": "reading input\nValueError: column 'ts' missing",
        },
        {
            "match": {"image": "task-python:1.0", "args": "train.py"},
            "seconds": 120,
            "stdout": "epoch 1/2\nepoch 2/2\nmodel saved",
        },
    ],
}


def demo_job(
    name: str,
    script: str,
    resources: dict[str, Any] | None = None,
    pod_spec: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Job running ``python <script>`` in the demo image, with a TTL so it cleans up."""
    container: dict[str, Any] = {
        "name": "main",
        "image": "task-python:1.0",
        "command": ["python"],
        "args": [script],
    }
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "demo"}},
        "spec": {
            "ttlSecondsAfterFinished": 3600,
            **spec,
            "template": {
                "spec": {"restartPolicy": "Never", **(pod_spec or {}), "containers": [container]}
            },
        },
    }


def indexed_job() -> dict[str, Any]:
    return demo_job(
        "shards",
        "shard.py",
        resources={"requests": {"cpu": "1", "memory": "1Gi"}},
        completions=4,
        parallelism=2,
        completionMode="Indexed",
        backoffLimit=2,
    )


def gpu_job() -> dict[str, Any]:
    pool_is_gpu = {"key": "cloud.google.com/gke-nodepool", "operator": "In", "values": ["gpu"]}
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [pool_is_gpu]}]
            }
        }
    }
    toleration = {
        "key": "nvidia.com/gpu",
        "operator": "Equal",
        "value": "present",
        "effect": "NoSchedule",
    }
    return demo_job(
        "train-gpu",
        "train.py",
        resources={"limits": {"nvidia.com/gpu": "1"}},
        pod_spec={"affinity": affinity, "tolerations": [toleration]},
        backoffLimit=1,
    )


def failing_job() -> dict[str, Any]:
    return demo_job("broken", "broken.py", backoffLimit=1)


EXPECTED = {"shards": "Complete", "train-gpu": "Complete", "broken": "Failed"}


def _finished(job: Any) -> str | None:
    for condition in job.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


SHOWN_EVENTS = (
    "FailedScheduling",
    "TriggeredScaleUp",
    "NotTriggerScaleUp",
    "Scheduled",
    "SuccessfulCreate",
    "Completed",
    "BackoffLimitExceeded",
    "DeadlineExceeded",
)


def follow(
    batch: client.BatchV1Api,
    core: client.CoreV1Api,
    name: str,
    resource_version: str,
    started: float,
    deadline_seconds: float = 60.0,
) -> str:
    """Follow one Job by watching the namespace's events until the Job finishes."""
    last_line = ""
    deadline = time.monotonic() + deadline_seconds
    outcome = None
    stream = watch.Watch()
    while outcome is None and time.monotonic() < deadline:
        for event in stream.stream(
            core.list_namespaced_event,
            NAMESPACE,
            resource_version=resource_version,
            timeout_seconds=5,
        ):
            ev = event["object"]
            resource_version = ev.metadata.resource_version
            involved = ev.involved_object.name or ""
            if not involved.startswith(name):
                continue
            if ev.reason in SHOWN_EVENTS and event["type"] == "ADDED":
                print(
                    f"  [{time.monotonic() - started:5.1f}s] {ev.reason}: {involved}: {ev.message}"
                )
            status = batch.read_namespaced_job_status(name, NAMESPACE).status
            line = (
                f"active={status.active or 0} succeeded={status.succeeded or 0} "
                f"failed={status.failed or 0}"
            )
            if line != last_line:
                print(f"  [{time.monotonic() - started:5.1f}s] job/{name}: {line}")
                last_line = line
            outcome = _finished(batch.read_namespaced_job_status(name, NAMESPACE))
            if outcome or time.monotonic() > deadline:
                stream.stop()
                break
    for condition in batch.read_namespaced_job_status(name, NAMESPACE).status.conditions or []:
        if condition.status == "True":
            print(f"  condition {condition.type}: {condition.reason}: {condition.message}")
    return outcome or "still running"


def print_logs(core: client.CoreV1Api, job_name: str) -> None:
    pods = core.list_namespaced_pod(
        NAMESPACE, label_selector=f"batch.kubernetes.io/job-name={job_name}"
    ).items
    for pod in sorted(pods, key=lambda p: p.metadata.name):
        index = (pod.metadata.annotations or {}).get("batch.kubernetes.io/job-completion-index")
        prefix = f"{pod.metadata.name}" + (f" [index {index}]" if index is not None else "")
        # Read raw bytes: kubernetes 36.0.x returns a bytes repr from read_namespaced_pod_log
        # (kubernetes-client/python#2596).
        response = core.read_namespaced_pod_log(
            pod.metadata.name, NAMESPACE, _preload_content=False
        )
        text = response.data.decode()
        message = ""
        for status in pod.status.container_statuses or []:
            if status.state.terminated and status.state.terminated.message:
                message = f"  (termination message: {status.state.terminated.message})"
        print(f"  {prefix}: {pod.status.phase}{message}")
        for line in text.splitlines():
            print(f"    | {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workdir", default=".demo", help="where the kubeconfig is written")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with SimulatedCluster(DEMO_CLUSTER) as cluster:
        kubeconfig = cluster.write_kubeconfig(Path(args.workdir) / "kubeconfig.yaml")
        print(
            f"simulated cluster at {cluster.url} (kubeconfig: {kubeconfig}); "
            f"1 simulated minute = {60 * cluster.config.time_scale:.1f}s"
        )
        config.load_kube_config(str(kubeconfig))
        core, batch = client.CoreV1Api(), client.BatchV1Api()
        nodes = core.list_node().items
        print(f"nodes: {', '.join(n.metadata.name for n in nodes)}")
        results = {}
        for manifest in (indexed_job(), gpu_job(), failing_job()):
            name = manifest["metadata"]["name"]
            print(f"\n== job/{name}: submitting to namespace {NAMESPACE}")
            since = core.list_namespaced_event(NAMESPACE, limit=1).metadata.resource_version
            batch.create_namespaced_job(NAMESPACE, manifest)
            results[name] = follow(batch, core, name, since, started)
            print(f"  outcome: {results[name]}")
            print_logs(core, name)
        print("\nnodes now:", ", ".join(n.metadata.name for n in core.list_node().items))
        print(
            "API requests:", ", ".join(f"{k}={v}" for k, v in cluster.counters.snapshot().items())
        )
    ok = results == EXPECTED
    print(
        f"\ndemo {'succeeded' if ok else 'FAILED'} (expected {EXPECTED}): "
        + ", ".join(f"{k}={v}" for k, v in results.items())
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
