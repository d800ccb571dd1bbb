"""The OpenAPI documents of the simulated API server, read by the official client and kubectl:
``kubectl explain`` of built-in and custom kinds, and kubectl's server-side field validation
(``create -f``, ``apply -f``, ``replace``, ``--dry-run=server``) relying on them."""

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

pytestmark = pytest.mark.simulated_cluster(
    {"tls": True, "timeScale": 0.01, "namespaces": ["batch"], "argo": {}, "kueue": {}}
)
KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable))
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="needs kubectl beside the interpreter")


def _get(api: kubernetes.client.ApiClient, path: str, accept: str = "application/json") -> Any:
    response = api.call_api(
        path,
        "GET",
        header_params={"Accept": accept},
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    return json.loads(response.data)


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "-n", "batch", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr


def _job(name: str, **container: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": "busybox", **container}],
                    }
                }
            },
        }
    )


def test_v3_index_lists_every_group_version(api: kubernetes.client.ApiClient) -> None:
    index = _get(api, "/openapi/v3")["paths"]
    assert {
        "api/v1",
        "apis/batch/v1",
        "apis/argoproj.io/v1alpha1",
        "apis/kueue.x-k8s.io/v1beta1",
    } <= set(index)
    assert index["apis/batch/v1"]["serverRelativeURL"].startswith("/openapi/v3/apis/batch/v1?")


def test_v3_batch_document_has_the_job_schemas(api: kubernetes.client.ApiClient) -> None:
    schemas = _get(api, "/openapi/v3/apis/batch/v1")["components"]["schemas"]
    job = schemas["io.k8s.api.batch.v1.Job"]
    assert job["x-kubernetes-group-version-kind"] == [
        {"group": "batch", "version": "v1", "kind": "Job"}
    ]
    assert job["properties"]["spec"] == {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.batch.v1.JobSpec"}]
    }
    assert schemas["io.k8s.api.batch.v1.JobSpec"]["required"] == ["template"]
    assert (
        "Specifies the number of retries"
        in (schemas["io.k8s.api.batch.v1.JobSpec"]["properties"]["backoffLimit"]["description"])
    )
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    # Every reference resolves inside the document.
    text = json.dumps(schemas)
    for ref in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
        assert ref in schemas, ref


def test_v3_custom_resources_have_a_crd_like_schema(api: kubernetes.client.ApiClient) -> None:
    schemas = _get(api, "/openapi/v3/apis/argoproj.io/v1alpha1")["components"]["schemas"]
    workflow = schemas["io.argoproj.v1alpha1.Workflow"]
    assert workflow["x-kubernetes-group-version-kind"] == [
        {"group": "argoproj.io", "version": "v1alpha1", "kind": "Workflow"}
    ]
    assert workflow["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] is True
    kueue = _get(api, "/openapi/v3/apis/kueue.x-k8s.io/v1beta1")["components"]["schemas"]
    assert "io.x-k8s.kueue.v1beta1.ClusterQueue" in kueue


def test_v2_is_json_for_clients_that_accept_it(api: kubernetes.client.ApiClient) -> None:
    document = _get(api, "/openapi/v2")
    assert document["swagger"] == "2.0"
    job = document["definitions"]["io.k8s.api.batch.v1.Job"]
    assert job["properties"]["spec"] == {"$ref": "#/definitions/io.k8s.api.batch.v1.JobSpec"}
    assert "io.k8s.api.core.v1.Pod" in document["definitions"]
    with pytest.raises(kubernetes.client.ApiException) as protobuf_only:
        _get(
            api, "/openapi/v2", accept="application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        )
    assert protobuf_only.value.status == 406


@needs_kubectl
def test_kubectl_explain_fields(simulated_kubeconfig: Path) -> None:
    rc, out, err = _kubectl(simulated_kubeconfig, "explain", "job.spec.backoffLimit")
    assert rc == 0, err
    assert out.splitlines()[:5] == [
        "GROUP:      batch",
        "KIND:       Job",
        "VERSION:    v1",
        "",
        "FIELD: backoffLimit <integer>",
    ]
    assert "Specifies the number of retries" in out
    rc, out, err = _kubectl(simulated_kubeconfig, "explain", "job.spec.template.spec.containers")
    assert rc == 0, err
    assert "FIELD: containers <[]Container>" in out
    assert "  name\t<string> -required-" in out
    assert "  resources\t<ResourceRequirements>" in out
    rc, out, err = _kubectl(simulated_kubeconfig, "explain", "pod.spec.containers.resources")
    assert "  limits\t<map[string]Quantity>" in out, err
    rc, out, err = _kubectl(simulated_kubeconfig, "explain", "job.spec.nothing")
    assert rc == 1 and 'field "nothing" does not exist' in err


@needs_kubectl
def test_kubectl_explain_custom_resources(simulated_kubeconfig: Path) -> None:
    rc, out, err = _kubectl(simulated_kubeconfig, "explain", "workflow.spec")
    assert rc == 0, err
    assert out.splitlines()[:5] == [
        "GROUP:      argoproj.io",
        "KIND:       Workflow",
        "VERSION:    v1alpha1",
        "",
        "FIELD: spec <Object>",
    ]
    rc, out, err = _kubectl(simulated_kubeconfig, "explain", "clusterqueue")
    assert rc == 0, err
    assert "KIND:       ClusterQueue" in out and "  spec\t<Object>" in out


@needs_kubectl
def test_kubectl_validates_on_the_server(
    simulated_kubeconfig: Path, batch: kubernetes.client.BatchV1Api
) -> None:
    bad = _job("val", bogus=1)
    unknown = 'unknown field "spec.template.spec.containers[0].bogus"'
    rc, _, err = _kubectl(simulated_kubeconfig, "create", "-f", "-", stdin=bad)
    assert rc == 1 and unknown in err
    rc, _, err = _kubectl(simulated_kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=bad)
    assert rc == 1 and unknown in err
    rc, out, err = _kubectl(
        simulated_kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=_job("val")
    )
    assert (rc, out.strip()) == (0, "job.batch/val created (server dry run)"), err
    assert not batch.list_namespaced_job("batch").items
    rc, out, err = _kubectl(simulated_kubeconfig, "apply", "-f", "-", stdin=_job("val"))
    assert (rc, out.strip()) == (0, "job.batch/val created"), err
    rc, _, err = _kubectl(simulated_kubeconfig, "replace", "-f", "-", stdin=bad)
    assert rc == 1 and unknown in err
    rc, out, err = _kubectl(
        simulated_kubeconfig, "create", "--validate=warn", "-f", "-", stdin=_job("warned", x=1)
    )
    assert rc == 0 and 'unknown field "spec.template.spec.containers[0].x"' in err
