"""Kubernetes protobuf on the simulated API server: what kubectl sends by default (``create job``,
``auth can-i``, ``create configmap``/``secret``), answers in protobuf for clients that accept
nothing else, and the ``415`` for kinds without a protobuf form (custom resources)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from simulated_k8s_cluster import k8s_protobuf

CLUSTER: dict[str, Any] = {
    "timeScale": 0.01,
    "tls": True,  # kubectl sends its bearer token over HTTPS only
    "namespaces": ["batch", "locked"],
    "nodePools": [{"name": "default", "nodes": 1, "capacity": {"cpu": "8", "memory": "32Gi"}}],
    "argo": {},
    "rbac": {
        "deny": [{"verb": "create", "group": "batch", "resource": "jobs", "namespace": "locked"}]
    },
}
pytestmark = pytest.mark.simulated_cluster(CLUSTER)
KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable))


def _kubectl(kubeconfig: Path, *args: str, namespace: str = "batch") -> tuple[int, str, str]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed beside the interpreter")
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "-n", namespace, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def _request(
    api: kubernetes.client.ApiClient,
    method: str,
    path: str,
    body: bytes | None = None,
    accept: str = k8s_protobuf.MEDIA_TYPE,
) -> tuple[int, str, bytes]:
    """``(status, content type, body)`` through urllib3 (the client's error path would read a
    protobuf error body as UTF-8 text)."""
    headers = {"Accept": accept}
    if body is not None:
        headers["Content-Type"] = k8s_protobuf.MEDIA_TYPE
    api.update_params_for_auth(headers, [], ["BearerToken"])
    response = api.rest_client.pool_manager.request(
        method, api.configuration.host + path, body=body, headers=headers, timeout=60
    )
    return response.status, response.headers.get("Content-Type", "").split(";")[0], response.data


def test_kubectl_create_job(
    simulated_cluster: Any, simulated_kubeconfig: Path, batch: kubernetes.client.BatchV1Api
) -> None:
    rc, out, err = _kubectl(
        simulated_kubeconfig, "create", "job", "hello", "--image=busybox", "--", "echo", "hi"
    )
    assert (rc, out) == (0, "job.batch/hello created"), err
    job = batch.read_namespaced_job("hello", "batch")
    container = job.spec.template.spec.containers[0]
    assert (container.name, container.image, container.command) == (
        "hello",
        "busybox",
        ["echo", "hi"],
    )
    assert job.spec.template.spec.restart_policy == "Never"
    assert job.spec.backoff_limit == 6  # defaulted by the server, not sent
    rc, _out, err = _kubectl(simulated_kubeconfig, "create", "job", "hello", "--image=busybox")
    assert rc == 1
    assert err == 'error: failed to create job: jobs.batch "hello" already exists'


def test_kubectl_create_cronjob_and_a_job_from_it(
    simulated_cluster: Any, simulated_kubeconfig: Path, batch: kubernetes.client.BatchV1Api
) -> None:
    rc, out, err = _kubectl(
        simulated_kubeconfig,
        "create",
        "cronjob",
        "nightly",
        "--image=busybox",
        "--schedule=0 2 * * *",
        "--",
        "echo",
        "hi",
    )
    assert (rc, out) == (0, "cronjob.batch/nightly created"), err
    cronjob = batch.read_namespaced_cron_job("nightly", "batch")
    assert cronjob.spec.schedule == "0 2 * * *"
    assert cronjob.spec.concurrency_policy == "Allow"  # defaulted by the server
    container = cronjob.spec.job_template.spec.template.spec.containers[0]
    assert (container.image, container.command) == ("busybox", ["echo", "hi"])
    rc, out, err = _kubectl(
        simulated_kubeconfig, "create", "job", "manual", "--from=cronjob/nightly"
    )
    assert (rc, out) == (0, "job.batch/manual created"), err
    job = batch.read_namespaced_job("manual", "batch")
    assert job.spec.template.spec.containers[0].command == ["echo", "hi"]
    assert job.metadata.annotations["cronjob.kubernetes.io/instantiate"] == "manual"


def test_kubectl_auth_can_i(simulated_cluster: Any, simulated_kubeconfig: Path) -> None:
    assert _kubectl(simulated_kubeconfig, "auth", "can-i", "create", "jobs")[:2] == (0, "yes")
    denied = _kubectl(simulated_kubeconfig, "auth", "can-i", "create", "jobs", namespace="locked")
    assert denied[:2] == (1, "no")
    assert _kubectl(simulated_kubeconfig, "auth", "can-i", "get", "jobs", namespace="locked")[
        :2
    ] == (0, "yes")
    rc, _out, err = _kubectl(
        simulated_kubeconfig, "create", "job", "nope", "--image=busybox", namespace="locked"
    )
    assert rc == 1
    assert "forbidden" in err


def test_kubectl_create_configmap_and_secret(
    simulated_cluster: Any, simulated_kubeconfig: Path, v1: kubernetes.client.CoreV1Api
) -> None:
    rc, out, err = _kubectl(
        simulated_kubeconfig,
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
        "--from-literal=empty=",
    )
    assert (rc, out) == (0, "configmap/settings created"), err
    assert v1.read_namespaced_config_map("settings", "batch").data == {"mode": "fast", "empty": ""}
    rc, out, err = _kubectl(
        simulated_kubeconfig, "create", "secret", "generic", "creds", "--from-literal=token=s3cr3t"
    )
    assert (rc, out) == (0, "secret/creds created"), err
    secret = v1.read_namespaced_secret("creds", "batch")
    assert secret.data == {"token": "czNjcjN0"}
    assert secret.type == "Opaque"


def test_kubectl_run_and_delete(
    simulated_cluster: Any, simulated_kubeconfig: Path, v1: kubernetes.client.CoreV1Api
) -> None:
    rc, out, err = _kubectl(
        simulated_kubeconfig, "run", "once", "--image=busybox", "--restart=Never", "--", "true"
    )
    assert (rc, out) == (0, "pod/once created"), err
    pod = v1.read_namespaced_pod("once", "batch")
    assert pod.spec.containers[0].args == ["true"]
    rc, out, err = _kubectl(simulated_kubeconfig, "delete", "pod", "once", "--wait=false")
    assert (rc, out) == (0, 'pod "once" deleted from batch namespace'), err


def test_protobuf_answers_for_clients_that_accept_only_protobuf(
    simulated_cluster: Any,
    simulated_api_client: kubernetes.client.ApiClient,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    v1.create_namespaced_config_map(
        "batch", {"metadata": {"name": "pb", "labels": {"a": "b"}}, "data": {"k": "v"}}
    )
    path = "/api/v1/namespaces/batch/configmaps"
    status, content_type, data = _request(simulated_api_client, "GET", f"{path}/pb")
    assert (status, content_type) == (200, k8s_protobuf.MEDIA_TYPE)
    as_json = json.loads(
        _request(simulated_api_client, "GET", f"{path}/pb", accept="application/json")[2]
    )
    assert k8s_protobuf.decode(data) == as_json

    status, content_type, data = _request(simulated_api_client, "GET", path)
    assert (status, content_type) == (200, k8s_protobuf.MEDIA_TYPE)
    listed = k8s_protobuf.decode(data)
    assert listed["kind"] == "ConfigMapList"
    assert "pb" in [item["metadata"]["name"] for item in listed["items"]]

    # errors too are protobuf (a Status); JSON is the answer when the client prefers it
    status, content_type, data = _request(simulated_api_client, "GET", f"{path}/missing")
    assert (status, content_type) == (404, k8s_protobuf.MEDIA_TYPE)
    assert k8s_protobuf.decode(data)["reason"] == "NotFound"
    accept = f"application/json, {k8s_protobuf.MEDIA_TYPE}"
    status, content_type, _data = _request(simulated_api_client, "GET", f"{path}/pb", None, accept)
    assert (status, content_type) == (200, "application/json")


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    """A protobuf body by hand (``encode`` refuses kinds without a table)."""

    def field(number: int, payload: bytes) -> bytes:
        assert len(payload) < 128
        return bytes([number << 3 | 2, len(payload)]) + payload

    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return k8s_protobuf.MAGIC + field(1, type_meta) + field(2, raw)


def test_protobuf_bodies_of_custom_resources_are_refused(
    simulated_cluster: Any, simulated_api_client: kubernetes.client.ApiClient
) -> None:
    workflow = {"metadata": {"name": "wf"}, "spec": {"entrypoint": "main", "templates": []}}
    body = _envelope("argoproj.io/v1alpha1", "Workflow", json.dumps(workflow).encode())
    workflows = "/apis/argoproj.io/v1alpha1/namespaces/batch/workflows"
    status, content_type, data = _request(
        simulated_api_client, "POST", workflows, body, accept="application/json"
    )
    assert (status, content_type) == (415, "application/json")
    error = json.loads(data)
    assert (error["kind"], error["reason"], error["code"]) == (
        "Status",
        "UnsupportedMediaType",
        415,
    )
    assert error["message"].startswith(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json"
    )
    # ... and custom resources are not answered in protobuf: 406 when JSON is not acceptable
    status, content_type, data = _request(simulated_api_client, "GET", workflows)
    assert (status, content_type) == (406, k8s_protobuf.MEDIA_TYPE)
    assert k8s_protobuf.decode(data)["reason"] == "NotAcceptable"
    accept = f"{k8s_protobuf.MEDIA_TYPE}, application/json"
    status, content_type, _data = _request(simulated_api_client, "GET", workflows, None, accept)
    assert (status, content_type) == (200, "application/json")

    # a kind without a table sent to a built-in resource, or no protobuf at all: 400
    configmaps = "/api/v1/namespaces/batch/configmaps"
    for bad in (body, b'{"metadata": {"name": "x"}}'):
        status, _content_type, data = _request(
            simulated_api_client, "POST", configmaps, bad, accept="application/json"
        )
        assert status == 400
        assert json.loads(data)["reason"] == "BadRequest"


def test_delete_options_in_protobuf(
    simulated_cluster: Any,
    simulated_api_client: kubernetes.client.ApiClient,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    """client-go's typed clients send DeleteOptions as protobuf, typed with the resource's group
    version (``batch/v1``) or ``v1``."""
    v1.create_namespaced_config_map("batch", {"metadata": {"name": "gone", "finalizers": ["x/y"]}})
    options = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}
    path = "/api/v1/namespaces/batch/configmaps/gone"
    status, content_type, data = _request(
        simulated_api_client, "DELETE", path, k8s_protobuf.encode(options)
    )
    assert (status, content_type) == (200, k8s_protobuf.MEDIA_TYPE)
    deleted = k8s_protobuf.decode(data)
    assert sorted(deleted["metadata"]["finalizers"]) == ["foregroundDeletion", "x/y"]
    assert "deletionTimestamp" in deleted["metadata"]
    # the preconditions of the options are checked too
    options = {
        "apiVersion": "batch/v1",  # as a typed batch/v1 client would send it
        "kind": "DeleteOptions",
        "preconditions": {"uid": "not-the-uid"},
    }
    status, _content_type, data = _request(
        simulated_api_client, "DELETE", path, k8s_protobuf.encode(options)
    )
    assert status == 409
    assert k8s_protobuf.decode(data)["reason"] == "Conflict"
