"""The simulated API server through the real clients: discovery, namespaces, create/get, errors.

Every test talks HTTP to a running :class:`SimulatedCluster` through the kubeconfig the
``simulated_kubeconfig`` fixture writes, with the sync ``kubernetes`` client and, where the
client code differs, ``kubernetes_asyncio``.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest
from kubernetes.client.rest import ApiException

# No nodes: pods stay Pending, so nothing but the test changes the objects it looks at.
QUIET = {"timeScale": 0, "namespaces": ["batch"], "nodePools": []}
pytestmark = pytest.mark.simulated_cluster(QUIET)


def _status(exc: ApiException | kubernetes_asyncio.client.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def _configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def _pod(name: str | None = None, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox:1.36", "command": ["true"]}
    body: dict[str, Any] = {
        "metadata": {"name": name} if name else {"generateName": "p-"},
        "spec": {"containers": [container], "restartPolicy": "Never", **spec},
    }
    return body


def _job(name: str, restart_policy: str = "Never") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": restart_policy,
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                }
            },
        },
    }


# --- discovery ----------------------------------------------------------------------------------


def test_discovery_sync(api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreApi(api).get_api_versions()
    assert core.versions == ["v1"]

    groups = kubernetes.client.ApisApi(api).get_api_versions()
    batch = next(g for g in groups.groups if g.name == "batch")
    assert batch.preferred_version.group_version == "batch/v1"

    resources = kubernetes.client.BatchV1Api(api).get_api_resources()
    assert resources.group_version == "batch/v1"
    by_name = {r.name: r for r in resources.resources}
    assert by_name["jobs"].namespaced is True
    assert by_name["jobs"].kind == "Job"
    assert "watch" in by_name["jobs"].verbs
    assert "jobs/status" in by_name

    core_resources = kubernetes.client.CoreV1Api(api).get_api_resources()
    names = {r.name for r in core_resources.resources}
    assert {
        "pods",
        "pods/log",
        "pods/status",
        "configmaps",
        "secrets",
        "namespaces",
        "events",
        "nodes",
    } <= names

    version = kubernetes.client.VersionApi(api).get_code()
    assert version.major == "1"
    assert version.git_version.startswith("v1.")


async def test_discovery_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    core = await kubernetes_asyncio.client.CoreApi(aapi).get_api_versions()
    assert core.versions == ["v1"]
    groups = await kubernetes_asyncio.client.ApisApi(aapi).get_api_versions()
    assert "batch" in {g.name for g in groups.groups}
    resources = await kubernetes_asyncio.client.BatchV1Api(aapi).get_api_resources()
    assert "jobs" in {r.name for r in resources.resources}
    version = await kubernetes_asyncio.client.VersionApi(aapi).get_code()
    assert version.minor


def test_unknown_paths_are_404(api: kubernetes.client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        api.call_api(
            "/apis/nothing.example.com/v1/widgets",
            "GET",
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
    assert err.value.status == 404


# --- namespaces and CRUD ------------------------------------------------------------------------


def test_namespaces(api: kubernetes.client.ApiClient) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    names = {ns.metadata.name for ns in v1.list_namespace().items}
    assert {"default", "kube-system", "batch"} <= names

    created = v1.create_namespace({"metadata": {"name": "team-a"}})
    assert created.status.phase == "Active"
    assert created.metadata.labels["kubernetes.io/metadata.name"] == "team-a"
    v1.create_namespaced_config_map("team-a", _configmap("inside"))

    v1.delete_namespace("team-a")
    # Deleting a namespace removes its content; the namespace itself goes with it.
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_config_map("inside", "team-a")
    assert err.value.status == 404


def test_configmap_and_secret_crud(api: kubernetes.client.ApiClient) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    cm = v1.create_namespaced_config_map("batch", _configmap("settings"))
    assert cm.metadata.uid
    assert cm.metadata.resource_version
    assert cm.metadata.creation_timestamp is not None

    got = v1.read_namespaced_config_map("settings", "batch")
    assert got.data == {"k": "v"}
    assert got.metadata.uid == cm.metadata.uid

    secret = v1.create_namespaced_secret(
        "batch",
        {"metadata": {"name": "creds"}, "stringData": {"password": "hunter2"}, "type": "Opaque"},
    )
    assert secret.metadata.name == "creds"
    assert v1.read_namespaced_secret("creds", "batch").type == "Opaque"

    v1.delete_namespaced_config_map("settings", "batch")
    v1.delete_namespaced_secret("creds", "batch")
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_config_map("settings", "batch")
    assert err.value.status == 404
    assert _status(err.value)["reason"] == "NotFound"
    assert _status(err.value)["message"] == 'configmaps "settings" not found'


async def test_crud_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    v1 = kubernetes_asyncio.client.CoreV1Api(aapi)
    await v1.create_namespaced_config_map("batch", _configmap("async-cm"))
    got = await v1.read_namespaced_config_map("async-cm", "batch")
    assert got.data == {"k": "v"}
    await v1.delete_namespaced_config_map("async-cm", "batch")
    with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
        await v1.read_namespaced_config_map("async-cm", "batch")
    assert err.value.status == 404


def test_pod_defaults_and_job_crud(api: kubernetes.client.ApiClient) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    pod = v1.create_namespaced_pod("batch", _pod("defaults"))
    assert pod.status.phase == "Pending"
    assert pod.spec.service_account_name == "default"
    assert pod.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert pod.spec.termination_grace_period_seconds == 30

    batch = kubernetes.client.BatchV1Api(api)
    job = batch.create_namespaced_job("batch", _job("crud-job"))
    assert job.spec.backoff_limit == 6
    assert job.spec.completions == 1
    labels = job.spec.template.metadata.labels
    assert labels["batch.kubernetes.io/job-name"] == "crud-job"
    assert labels["batch.kubernetes.io/controller-uid"] == job.metadata.uid
    assert job.spec.selector.match_labels == {
        "batch.kubernetes.io/controller-uid": job.metadata.uid
    }
    assert batch.read_namespaced_job("crud-job", "batch").metadata.uid == job.metadata.uid
    assert [j.metadata.name for j in batch.list_namespaced_job("batch").items] == ["crud-job"]


def test_generate_name(api: kubernetes.client.ApiClient) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    names = set()
    for _ in range(5):
        created = v1.create_namespaced_config_map(
            "batch", {"metadata": {"generateName": "run-"}, "data": {}}
        )
        assert created.metadata.name.startswith("run-")
        assert len(created.metadata.name) == len("run-") + 5
        assert created.metadata.generate_name == "run-"
        names.add(created.metadata.name)
    assert len(names) == 5
    listed = {cm.metadata.name for cm in v1.list_namespaced_config_map("batch").items}
    assert names <= listed


async def test_generate_name_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    v1 = kubernetes_asyncio.client.CoreV1Api(aapi)
    pod = await v1.create_namespaced_pod("batch", _pod())
    assert pod.metadata.name.startswith("p-")
    assert (
        await v1.read_namespaced_pod(pod.metadata.name, "batch")
    ).metadata.uid == pod.metadata.uid


# --- errors -------------------------------------------------------------------------------------


def test_already_exists(api: kubernetes.client.ApiClient) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    v1.create_namespaced_config_map("batch", _configmap("twice"))
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map("batch", _configmap("twice"))
    assert err.value.status == 409
    status = _status(err.value)
    assert status["reason"] == "AlreadyExists"
    assert status["details"] == {"name": "twice", "group": "", "kind": "configmaps"}


async def test_already_exists_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    batch = kubernetes_asyncio.client.BatchV1Api(aapi)
    await batch.create_namespaced_job("batch", _job("dup"))
    with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
        await batch.create_namespaced_job("batch", _job("dup"))
    assert err.value.status == 409
    assert _status(err.value)["message"] == 'jobs.batch "dup" already exists'


def _causes(exc: Any) -> dict[str, dict[str, str]]:
    status = _status(exc)
    assert status["reason"] == "Invalid"
    return {c["field"]: c for c in status["details"]["causes"]}


def test_invalid_name(api: kubernetes.client.ApiClient) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map("batch", _configmap("Not_Valid"))
    assert err.value.status == 422
    cause = _causes(err.value)["metadata.name"]
    assert cause["reason"] == "FieldValueInvalid"
    assert 'Invalid value: "Not_Valid"' in cause["message"]
    assert _status(err.value)["message"].startswith('ConfigMap "Not_Valid" is invalid: ')
    # Nothing was created: only the namespace's kube-root-ca.crt is there.
    assert [c.metadata.name for c in v1.list_namespaced_config_map("batch").items] == [
        "kube-root-ca.crt"
    ]


def test_missing_image(api: kubernetes.client.ApiClient) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    body = _pod("no-image")
    del body["spec"]["containers"][0]["image"]
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod("batch", body)
    assert err.value.status == 422
    cause = _causes(err.value)["spec.containers[0].image"]
    assert cause["reason"] == "FieldValueRequired"


async def test_job_restart_policy_always(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    batch = kubernetes_asyncio.client.BatchV1Api(aapi)
    with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
        await batch.create_namespaced_job("batch", _job("always", restart_policy="Always"))
    assert err.value.status == 422
    cause = _causes(err.value)["spec.template.spec.restartPolicy"]
    # The API server says Required (not NotSupported) for a Job's restartPolicy.
    assert cause["reason"] == "FieldValueRequired"
    assert cause["message"] == 'Required value: valid values: "OnFailure", "Never"'


def test_job_name_too_long(api: kubernetes.client.ApiClient) -> None:
    batch = kubernetes.client.BatchV1Api(api)
    name = "j" * 64
    with pytest.raises(ApiException) as err:
        batch.create_namespaced_job("batch", _job(name))
    assert err.value.status == 422
    cause = _causes(err.value)["spec.template.labels"]
    assert "must be no more than 63 characters" in cause["message"]
    # 63 characters is fine.
    assert batch.create_namespaced_job("batch", _job("j" * 63)).metadata.name == "j" * 63


def test_missing_namespace(api: kubernetes.client.ApiClient) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map("nowhere", _configmap("x"))
    assert err.value.status == 404
    assert _status(err.value)["message"] == 'namespaces "nowhere" not found'
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_config_map("x", "nowhere")
    assert err.value.status == 404


def test_namespace_mismatch_is_400(api: kubernetes.client.ApiClient) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    body = _configmap("mismatch")
    body["metadata"]["namespace"] = "default"
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map("batch", body)
    assert err.value.status == 400


def test_get_reads_what_was_written(
    simulated_cluster: Any, api: kubernetes.client.ApiClient
) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    simulated_cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "direct", "namespace": "batch"},
            "data": {"a": "1"},
        }
    )
    got = v1.read_namespaced_config_map("direct", "batch")
    assert got.data == {"a": "1"}
    assert (
        simulated_cluster.get("configmaps", "batch", "direct")["metadata"]["uid"]
        == got.metadata.uid
    )
