"""What the API server does besides storing objects, as the real one does it (each point was a
difference found by tests/cluster/test_differential.py): namespace defaults, server-side
tables, ``/openapi/v3``, DELETE answers, Job status updates."""

from __future__ import annotations

import json
from typing import Any

import kubernetes
import pytest

pytestmark = pytest.mark.simulated_cluster(
    {
        "timeScale": 0.01,
        "namespaces": ["batch"],
        "nodePools": [{"name": "default", "nodes": 1, "labels": {}}],
    }
)

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _raw(
    api: kubernetes.client.ApiClient, method: str, path: str, accept: str = "application/json"
) -> tuple[int, Any]:
    response = api.call_api(
        path,
        method,
        header_params={"Accept": accept},
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    return response.status, json.loads(response.data)


def _job(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}],
                }
            },
            **spec,
        },
    }


def test_a_namespace_gets_its_service_account_and_root_ca(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    v1.create_namespace({"metadata": {"name": "fresh"}})

    def defaults() -> bool:
        accounts = [sa.metadata.name for sa in v1.list_namespaced_service_account("fresh").items]
        maps = [cm.metadata.name for cm in v1.list_namespaced_config_map("fresh").items]
        return accounts == ["default"] and maps == ["kube-root-ca.crt"]

    simulated_cluster.wait_for(defaults, message="the namespace's defaults")
    assert (
        "BEGIN CERTIFICATE"
        in v1.read_namespaced_config_map("kube-root-ca.crt", "fresh").data["ca.crt"]
    )
    v1.delete_namespaced_config_map("kube-root-ca.crt", "fresh")
    simulated_cluster.wait_for(defaults, message="the ConfigMap made again")


def test_pod_defaults(v1: kubernetes.client.CoreV1Api) -> None:
    pod = v1.create_namespaced_pod(
        "batch",
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "main", "image": "busybox", "resources": {"limits": {"cpu": "1"}}}
                ]
            },
        },
    )
    (volume,) = pod.spec.volumes
    assert volume.name.startswith("kube-api-access-")
    assert [s.config_map.name for s in volume.projected.sources if s.config_map] == [
        "kube-root-ca.crt"
    ]
    mount = pod.spec.containers[0].volume_mounts[0]
    assert (mount.name, mount.mount_path, mount.read_only) == (
        volume.name,
        "/var/run/secrets/kubernetes.io/serviceaccount",
        True,
    )
    assert pod.spec.containers[0].resources.requests == {"cpu": "1"}
    assert pod.status.qos_class == "Burstable"
    quiet = v1.create_namespaced_pod(
        "batch",
        {
            "metadata": {"name": "q"},
            "spec": {
                "automountServiceAccountToken": False,
                "containers": [{"name": "main", "image": "busybox"}],
            },
        },
    )
    assert quiet.spec.volumes is None


def test_a_job_takes_its_template_labels(batch: kubernetes.client.BatchV1Api) -> None:
    job = batch.create_namespaced_job("batch", _job("labelled"))
    assert job.metadata.labels == job.spec.template.metadata.labels
    assert job.metadata.labels["batch.kubernetes.io/job-name"] == "labelled"
    assert job.spec.manual_selector is False
    own = _job("own")
    own["metadata"]["labels"] = {"team": "a"}
    assert batch.create_namespaced_job("batch", own).metadata.labels == {"team": "a"}


def test_tables_for_kubectl_get(
    simulated_cluster: Any, api: kubernetes.client.ApiClient, batch: kubernetes.client.BatchV1Api
) -> None:
    batch.create_namespaced_job("batch", _job("tbl", completions=2, parallelism=2))
    simulated_cluster.wait_for(
        lambda: any(
            c.type == "Complete"
            for c in batch.read_namespaced_job("tbl", "batch").status.conditions or []
        ),
        message="the Job to complete",
    )
    status, table = _raw(api, "GET", "/apis/batch/v1/namespaces/batch/jobs", TABLE)
    assert (status, table["kind"], table["apiVersion"]) == (200, "Table", "meta.k8s.io/v1")
    columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns[:5] == [
        ("Name", 0),
        ("Status", 0),
        ("Completions", 0),
        ("Duration", 0),
        ("Age", 0),
    ]
    assert {name for name, priority in columns if priority == 1} == {
        "Containers",
        "Images",
        "Selector",
    }
    (row,) = table["rows"]
    assert row["cells"][:3] == ["tbl", "Complete", "2/2"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    _, one = _raw(api, "GET", "/apis/batch/v1/namespaces/batch/jobs/tbl", TABLE)
    assert [r["cells"][0] for r in one["rows"]] == ["tbl"]
    _, pods = _raw(api, "GET", "/api/v1/namespaces/batch/pods", TABLE)
    assert [c["name"] for c in pods["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert sorted(r["cells"][1:4] for r in pods["rows"]) == [["0/1", "Completed", "0"]] * 2
    # Without the Table media type: the ordinary list.
    assert _raw(api, "GET", "/apis/batch/v1/namespaces/batch/jobs")[1]["kind"] == "JobList"


def test_openapi_v3_tells_kubectl_about_field_validation(api: kubernetes.client.ApiClient) -> None:
    status, index = _raw(api, "GET", "/openapi/v3")
    assert status == 200
    assert {"api/v1", "apis/batch/v1"} <= set(index["paths"])
    _, document = _raw(api, "GET", index["paths"]["apis/batch/v1"]["serverRelativeURL"])
    patch = document["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "batch",
        "version": "v1",
        "kind": "Job",
    }
    assert "fieldValidation" in {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    with pytest.raises(kubernetes.client.ApiException) as missing:
        _raw(api, "GET", "/openapi/v3/apis/nothing/v1")
    assert missing.value.status == 404


def test_delete_answers(
    simulated_cluster: Any, api: kubernetes.client.ApiClient, v1: kubernetes.client.CoreV1Api
) -> None:
    v1.create_namespaced_config_map("batch", {"metadata": {"name": "gone"}})
    status, body = _raw(api, "DELETE", "/api/v1/namespaces/batch/configmaps/gone")
    assert (status, body["kind"], body["status"]) == (200, "Status", "Success")
    assert body["details"]["name"] == "gone" and body["details"]["kind"] == "configmaps"

    v1.create_namespaced_config_map("batch", {"metadata": {"name": "owner"}})
    status, body = _raw(
        api, "DELETE", "/api/v1/namespaces/batch/configmaps/owner?propagationPolicy=Orphan"
    )
    assert (status, body["kind"], body["metadata"]["finalizers"]) == (200, "ConfigMap", ["orphan"])
    simulated_cluster.wait_for(
        lambda: (
            not any(
                cm.metadata.name == "owner" for cm in v1.list_namespaced_config_map("batch").items
            )
        ),
        message="the garbage collector to release the owner",
    )

    v1.create_namespaced_pod(
        "batch",
        {
            "metadata": {"name": "nowhere"},
            "spec": {
                "nodeSelector": {"no": "such-node"},
                "containers": [{"name": "main", "image": "busybox"}],
            },
        },
    )
    status, body = _raw(api, "DELETE", "/api/v1/namespaces/batch/pods/nowhere")
    assert (status, body["kind"]) == (200, "Pod")
    assert body["metadata"]["deletionTimestamp"]
    assert body["metadata"]["deletionGracePeriodSeconds"] == 0


def test_finished_pods_are_uncounted_before_they_are_counted(
    simulated_cluster: Any, api: kubernetes.client.ApiClient, batch: kubernetes.client.BatchV1Api
) -> None:
    watch = kubernetes.watch.Watch()
    statuses: list[dict[str, Any]] = []
    batch.create_namespaced_job("batch", _job("counted"))
    for event in watch.stream(
        batch.list_namespaced_job,
        "batch",
        field_selector="metadata.name=counted",
        timeout_seconds=30,
    ):
        status = event["raw_object"].get("status") or {}
        statuses.append(status)
        if any(c["type"] == "Complete" for c in status.get("conditions") or []):
            watch.stop()
    interim = next(
        s
        for s in statuses
        if any(c["type"] == "SuccessCriteriaMet" for c in s.get("conditions") or [])
    )
    assert len(interim["uncountedTerminatedPods"]["succeeded"]) == 1
    assert "succeeded" not in interim
    assert [c["type"] for c in interim["conditions"]] == ["SuccessCriteriaMet"]
    final = statuses[-1]
    assert final["succeeded"] == 1 and final["uncountedTerminatedPods"] == {}
    assert [c["type"] for c in final["conditions"]] == ["SuccessCriteriaMet", "Complete"]
