"""Writes through the real clients: patches, replace, status subresource, dry runs, field
validation, deletion with propagation policies, ``deletecollection`` and finalizers."""

from __future__ import annotations

import json
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.simulated_cluster(
    {"timeScale": 0, "namespaces": ["batch"], "nodePools": []}
)
MERGE = "application/merge-patch+json"


def _pod(name: str, containers: tuple[str, ...] = ("main",), **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, **meta},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": c, "image": "busybox:1.36"} for c in containers],
        },
    }


def _gone(read: Any, *args: Any) -> bool:
    try:
        read(*args)
    except (ApiException, kubernetes_asyncio.client.ApiException) as exc:
        if exc.status == 404:
            return True
        raise
    return False


# --- patches ------------------------------------------------------------------------------------


def test_merge_patch(v1: kubernetes.client.CoreV1Api) -> None:
    v1.create_namespaced_config_map(
        "batch",
        {
            "metadata": {"name": "m", "labels": {"a": "1", "b": "2"}},
            "data": {"keep": "x", "drop": "y"},
        },
    )
    patched = v1.patch_namespaced_config_map(
        "m",
        "batch",
        {"metadata": {"labels": {"b": None, "c": "3"}}, "data": {"drop": None, "new": "z"}},
        _content_type=MERGE,
    )
    assert patched.metadata.labels == {"a": "1", "c": "3"}
    assert patched.data == {"keep": "x", "new": "z"}


async def test_merge_patch_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    v1 = kubernetes_asyncio.client.CoreV1Api(aapi)
    await v1.create_namespaced_config_map("batch", {"metadata": {"name": "m"}, "data": {"a": "1"}})
    patched = await v1.patch_namespaced_config_map(
        "m", "batch", {"data": {"a": None, "b": "2"}}, _content_type=MERGE
    )
    assert patched.data == {"b": "2"}


def test_strategic_merge_patch_merges_containers_by_name(v1: kubernetes.client.CoreV1Api) -> None:
    v1.create_namespaced_pod("batch", _pod("two", ("a", "b")))
    # A dict body is a strategic merge patch: container "b" is updated in place.
    patched = v1.patch_namespaced_pod(
        "two", "batch", {"spec": {"containers": [{"name": "b", "image": "busybox:1.37"}]}}
    )
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("a", "busybox:1.36"),
        ("b", "busybox:1.37"),
    ]
    # The same body as a merge patch replaces the whole list, which a pod update may not do.
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod(
            "two",
            "batch",
            {"spec": {"containers": [{"name": "b", "image": "busybox:1.37"}]}},
            _content_type=MERGE,
        )
    assert err.value.status == 422
    assert json.loads(err.value.body)["details"]["causes"][0]["field"] == "spec"


async def test_strategic_merge_patch_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    v1 = kubernetes_asyncio.client.CoreV1Api(aapi)
    await v1.create_namespaced_pod("batch", _pod("two", ("a", "b")))
    patched = await v1.patch_namespaced_pod(
        "two", "batch", {"spec": {"containers": [{"name": "a", "image": "busybox:1.37"}]}}
    )
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("a", "busybox:1.37"),
        ("b", "busybox:1.36"),
    ]


def test_json_patch(v1: kubernetes.client.CoreV1Api) -> None:
    v1.create_namespaced_config_map("batch", {"metadata": {"name": "j"}, "data": {"a": "1"}})
    patched = v1.patch_namespaced_config_map(
        "j",
        "batch",
        [
            {"op": "add", "path": "/data/b", "value": "2"},
            {"op": "remove", "path": "/data/a"},
            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        ],
    )
    assert patched.data == {"b": "2"}
    assert patched.metadata.labels == {"x": "y"}
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_config_map(
            "j", "batch", [{"op": "test", "path": "/data/b", "value": "not-2"}]
        )
    assert err.value.status == 422
    assert v1.read_namespaced_config_map("j", "batch").data == {"b": "2"}


async def test_json_patch_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    v1 = kubernetes_asyncio.client.CoreV1Api(aapi)
    await v1.create_namespaced_config_map("batch", {"metadata": {"name": "j"}, "data": {"a": "1"}})
    patched = await v1.patch_namespaced_config_map(
        "j", "batch", [{"op": "replace", "path": "/data/a", "value": "9"}]
    )
    assert patched.data == {"a": "9"}


def test_patch_bumps_resource_version_only_on_change(v1: kubernetes.client.CoreV1Api) -> None:
    created = v1.create_namespaced_config_map(
        "batch", {"metadata": {"name": "n"}, "data": {"a": "1"}}
    )
    same = v1.patch_namespaced_config_map("n", "batch", {"data": {"a": "1"}})
    assert same.metadata.resource_version == created.metadata.resource_version
    changed = v1.patch_namespaced_config_map("n", "batch", {"data": {"a": "2"}})
    assert int(changed.metadata.resource_version) > int(created.metadata.resource_version)


# --- replace ------------------------------------------------------------------------------------


def test_replace_with_stale_resource_version_conflicts(v1: kubernetes.client.CoreV1Api) -> None:
    v1.create_namespaced_config_map("batch", {"metadata": {"name": "r"}, "data": {"a": "1"}})
    stale = v1.read_namespaced_config_map("r", "batch")
    v1.patch_namespaced_config_map("r", "batch", {"data": {"a": "2"}})
    stale.data = {"a": "3"}
    with pytest.raises(ApiException) as err:
        v1.replace_namespaced_config_map("r", "batch", stale)
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"
    assert v1.read_namespaced_config_map("r", "batch").data == {"a": "2"}

    fresh = v1.read_namespaced_config_map("r", "batch")
    fresh.data = {"a": "3"}
    assert v1.replace_namespaced_config_map("r", "batch", fresh).data == {"a": "3"}


async def test_replace_conflict_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    v1 = kubernetes_asyncio.client.CoreV1Api(aapi)
    await v1.create_namespaced_config_map("batch", {"metadata": {"name": "r"}})
    stale = await v1.read_namespaced_config_map("r", "batch")
    await v1.patch_namespaced_config_map("r", "batch", {"data": {"a": "2"}})
    with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
        await v1.replace_namespaced_config_map("r", "batch", stale)
    assert err.value.status == 409


# --- status subresource -------------------------------------------------------------------------


def test_status_subresource(v1: kubernetes.client.CoreV1Api) -> None:
    v1.create_namespaced_pod("batch", _pod("s"))
    pod = v1.read_namespaced_pod("s", "batch")
    pod.metadata.labels = {"changed": "yes"}
    pod.status.phase = "Running"
    replaced = v1.replace_namespaced_pod("s", "batch", pod)
    assert replaced.metadata.labels == {"changed": "yes"}
    assert replaced.status.phase == "Pending"  # the main resource ignores status

    patched = v1.patch_namespaced_pod_status(
        "s",
        "batch",
        {
            "metadata": {"labels": {"via": "status"}},
            "spec": {"activeDeadlineSeconds": 5},
            "status": {"phase": "Running"},
        },
    )
    assert patched.status.phase == "Running"
    assert patched.spec.active_deadline_seconds is None  # /status ignores the rest
    assert patched.metadata.labels == {"changed": "yes"}

    job = kubernetes.client.BatchV1Api(v1.api_client)
    job.create_namespaced_job(
        "batch",
        {
            "metadata": {"name": "j"},
            "spec": {"suspend": True, "template": {"spec": _pod("x")["spec"]}},
        },
    )
    result = job.patch_namespaced_job("j", "batch", {"status": {"active": 3}})
    assert result.status.active is None
    result = job.patch_namespaced_job_status("j", "batch", {"status": {"active": 3}})
    assert result.status.active == 3


async def test_status_subresource_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    v1 = kubernetes_asyncio.client.CoreV1Api(aapi)
    await v1.create_namespaced_pod("batch", _pod("s"))
    pod = await v1.read_namespaced_pod_status("s", "batch")
    pod.status.phase = "Failed"
    pod.spec.active_deadline_seconds = 9
    replaced = await v1.replace_namespaced_pod_status("s", "batch", pod)
    assert replaced.status.phase == "Failed"
    assert replaced.spec.active_deadline_seconds is None


# --- dry run and field validation ---------------------------------------------------------------


# Every namespace has this ConfigMap, as in a real cluster.
ROOT_CA = "kube-root-ca.crt"


def _config_maps(v1: kubernetes.client.CoreV1Api) -> list[str]:
    return [cm.metadata.name for cm in v1.list_namespaced_config_map("batch").items]


def test_dry_run_changes_nothing(simulated_cluster: Any, v1: kubernetes.client.CoreV1Api) -> None:
    before = simulated_cluster.state.store.resource_version
    created = v1.create_namespaced_config_map("batch", {"metadata": {"name": "dry"}}, dry_run="All")
    assert created.metadata.name == "dry"
    assert _config_maps(v1) == [ROOT_CA]

    v1.create_namespaced_config_map("batch", {"metadata": {"name": "real"}, "data": {"a": "1"}})
    after_create = simulated_cluster.state.store.resource_version
    assert after_create == before + 1
    patched = v1.patch_namespaced_config_map("real", "batch", {"data": {"a": "2"}}, dry_run="All")
    assert patched.data == {"a": "2"}
    v1.delete_namespaced_config_map("real", "batch", dry_run="All")
    assert v1.read_namespaced_config_map("real", "batch").data == {"a": "1"}
    assert simulated_cluster.state.store.resource_version == after_create


def test_dry_run_still_validates(v1: kubernetes.client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map("batch", {"metadata": {"name": "BAD"}}, dry_run="All")
    assert err.value.status == 422


def test_field_validation(
    api: kubernetes.client.ApiClient, v1: kubernetes.client.CoreV1Api
) -> None:
    body = {"metadata": {"name": "f", "bogus": 1}, "data": {"a": "1"}, "extra": True}
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map("batch", body, field_validation="Strict")
    assert err.value.status == 400
    message = json.loads(err.value.body)["message"]
    assert 'unknown field "metadata.bogus"' in message
    assert 'unknown field "extra"' in message
    assert _config_maps(v1) == [ROOT_CA]

    _, status, headers = v1.create_namespaced_config_map_with_http_info("batch", body)
    assert status == 201
    assert "unknown field" in headers["Warning"]
    raw = json.loads(v1.read_namespaced_config_map("f", "batch", _preload_content=False).data)
    assert "extra" not in raw
    assert "bogus" not in raw["metadata"]
    assert raw["data"] == {"a": "1"}


async def test_field_validation_strict_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    batch = kubernetes_asyncio.client.BatchV1Api(aapi)
    body = {
        "metadata": {"name": "j"},
        "spec": {"suspend": True, "backoffLimitt": 2, "template": {"spec": _pod("x")["spec"]}},
    }
    with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
        await batch.create_namespaced_job("batch", body, field_validation="Strict")
    assert err.value.status == 400
    assert 'unknown field "spec.backoffLimitt"' in json.loads(err.value.body)["message"]
    job = await batch.create_namespaced_job("batch", body)
    assert job.spec.backoff_limit == 6


# --- deletion -----------------------------------------------------------------------------------


def _family(v1: kubernetes.client.CoreV1Api, owner: str = "owner", hold: bool = False) -> str:
    """A ConfigMap owning a ConfigMap and a Pod; returns the owner's uid."""
    uid: str = v1.create_namespaced_config_map("batch", {"metadata": {"name": owner}}).metadata.uid
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner,
        "uid": uid,
        "blockOwnerDeletion": True,
    }
    meta: dict[str, Any] = {"ownerReferences": [ref]}
    if hold:
        meta["finalizers"] = ["example.com/hold"]
    v1.create_namespaced_config_map("batch", {"metadata": {"name": f"{owner}-cm", **meta}})
    v1.create_namespaced_pod("batch", _pod(f"{owner}-pod", ownerReferences=[ref]))
    return uid


def test_delete_orphan(simulated_cluster: Any, v1: kubernetes.client.CoreV1Api) -> None:
    _family(v1)
    v1.delete_namespaced_config_map("owner", "batch", propagation_policy="Orphan")
    simulated_cluster.wait_for(
        lambda: _gone(v1.read_namespaced_config_map, "owner", "batch"), message="the owner to go"
    )
    cm = v1.read_namespaced_config_map("owner-cm", "batch")
    pod = v1.read_namespaced_pod("owner-pod", "batch")
    assert cm.metadata.owner_references is None
    assert pod.metadata.owner_references is None
    assert cm.metadata.deletion_timestamp is None


def test_delete_background(simulated_cluster: Any, v1: kubernetes.client.CoreV1Api) -> None:
    _family(v1)
    v1.delete_namespaced_config_map("owner", "batch", propagation_policy="Background")
    assert _gone(v1.read_namespaced_config_map, "owner", "batch")
    simulated_cluster.wait_for(
        lambda: (
            _gone(v1.read_namespaced_config_map, "owner-cm", "batch")
            and _gone(v1.read_namespaced_pod, "owner-pod", "batch")
        ),
        message="the dependents to be garbage-collected",
    )


def test_delete_foreground(simulated_cluster: Any, v1: kubernetes.client.CoreV1Api) -> None:
    _family(v1, hold=True)
    v1.delete_namespaced_config_map("owner", "batch", propagation_policy="Foreground")
    # The held dependent keeps the owner around, marked for deletion.
    simulated_cluster.wait_for(
        lambda: v1.read_namespaced_config_map("owner-cm", "batch").metadata.deletion_timestamp,
        message="the dependent to be deleting",
    )
    simulated_cluster.wait_for(
        lambda: _gone(v1.read_namespaced_pod, "owner-pod", "batch"),
        message="the unheld dependent to go",
    )
    owner = v1.read_namespaced_config_map("owner", "batch")
    assert owner.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in owner.metadata.finalizers
    # Release the dependent: then the owner goes too.
    v1.patch_namespaced_config_map(
        "owner-cm", "batch", {"metadata": {"finalizers": None}}, _content_type=MERGE
    )
    simulated_cluster.wait_for(
        lambda: (
            _gone(v1.read_namespaced_config_map, "owner-cm", "batch")
            and _gone(v1.read_namespaced_config_map, "owner", "batch")
        ),
        message="the dependent and then the owner to go",
    )


async def test_delete_foreground_async(
    simulated_cluster: Any,
    aapi: kubernetes_asyncio.client.ApiClient,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    _family(v1, hold=True)
    av1 = kubernetes_asyncio.client.CoreV1Api(aapi)
    # The response is the object itself (the client's V1Status model does not fit it).
    response = await av1.delete_namespaced_config_map(
        "owner", "batch", propagation_policy="Foreground", _preload_content=False
    )
    # 200 as from the API server (202 only for orphanDependents=false).
    assert response.status == 200
    body = json.loads(await response.read())
    assert body["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in body["metadata"]["finalizers"]
    owner = await av1.read_namespaced_config_map("owner", "batch")
    assert "foregroundDeletion" in owner.metadata.finalizers


def test_job_delete_without_policy_orphans(
    simulated_cluster: Any, api: kubernetes.client.ApiClient
) -> None:
    v1 = kubernetes.client.CoreV1Api(api)
    batch = kubernetes.client.BatchV1Api(api)
    job = batch.create_namespaced_job(
        "batch",
        {
            "metadata": {"name": "j"},
            "spec": {"suspend": True, "template": {"spec": _pod("x")["spec"]}},
        },
    )
    ref = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "j",
        "uid": job.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    # A ConfigMap rather than a pod, so that the Job controller leaves it alone.
    v1.create_namespaced_config_map(
        "batch", {"metadata": {"name": "j-data", "ownerReferences": [ref]}}
    )
    batch.delete_namespaced_job("j", "batch")
    simulated_cluster.wait_for(
        lambda: _gone(batch.read_namespaced_job, "j", "batch"), message="the job to go"
    )
    assert v1.read_namespaced_config_map("j-data", "batch").metadata.owner_references is None


def test_delete_collection(v1: kubernetes.client.CoreV1Api) -> None:
    for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
        v1.create_namespaced_config_map(
            "batch", {"metadata": {"name": name, "labels": {"app": app}}}
        )
    v1.create_namespaced_config_map(
        "default", {"metadata": {"name": "d", "labels": {"app": "web"}}}
    )
    v1.delete_collection_namespaced_config_map("batch", label_selector="app=web")
    assert _config_maps(v1) == ["c", ROOT_CA]
    assert v1.read_namespaced_config_map("d", "default").metadata.name == "d"


async def test_delete_collection_async(aapi: kubernetes_asyncio.client.ApiClient) -> None:
    v1 = kubernetes_asyncio.client.CoreV1Api(aapi)
    for name in ("a", "b"):
        await v1.create_namespaced_pod("batch", _pod(name, labels={"run": "1"}))
    await v1.create_namespaced_pod("batch", _pod("c", labels={"run": "2"}))
    await v1.delete_collection_namespaced_pod(
        "batch", label_selector="run=1", grace_period_seconds=0
    )
    pods = await v1.list_namespaced_pod("batch")
    assert [p.metadata.name for p in pods.items] == ["c"]


def test_finalizers_keep_an_object(simulated_cluster: Any, v1: kubernetes.client.CoreV1Api) -> None:
    v1.create_namespaced_config_map(
        "batch", {"metadata": {"name": "kept", "finalizers": ["example.com/a", "example.com/b"]}}
    )
    _, status, _ = v1.delete_namespaced_config_map_with_http_info("kept", "batch")
    assert status == 200
    kept = v1.read_namespaced_config_map("kept", "batch")
    assert kept.metadata.deletion_timestamp is not None
    # Deleting again changes nothing.
    v1.delete_namespaced_config_map("kept", "batch")
    assert (
        v1.read_namespaced_config_map("kept", "batch").metadata.resource_version
        == kept.metadata.resource_version
    )
    v1.patch_namespaced_config_map(
        "kept", "batch", [{"op": "remove", "path": "/metadata/finalizers/0"}]
    )
    assert v1.read_namespaced_config_map("kept", "batch").metadata.finalizers == ["example.com/b"]
    v1.patch_namespaced_config_map(
        "kept", "batch", [{"op": "remove", "path": "/metadata/finalizers"}]
    )
    assert _gone(v1.read_namespaced_config_map, "kept", "batch")


def test_delete_preconditions(v1: kubernetes.client.CoreV1Api) -> None:
    cm = v1.create_namespaced_config_map("batch", {"metadata": {"name": "p"}})
    with pytest.raises(ApiException) as err:
        v1.delete_namespaced_config_map(
            "p", "batch", body={"preconditions": {"uid": "not-the-uid"}}
        )
    assert err.value.status == 409
    v1.delete_namespaced_config_map("p", "batch", body={"preconditions": {"uid": cm.metadata.uid}})
    assert _gone(v1.read_namespaced_config_map, "p", "batch")
