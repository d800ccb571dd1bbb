"""Server-side apply over HTTP: the official client's ``application/apply-patch+yaml`` PATCH
and ``kubectl apply --server-side`` against the simulated cluster."""

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
    {"tls": True, "timeScale": 0.01, "namespaces": ["batch"], "argo": {}}
)
KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable))
APPLY = "application/apply-patch+yaml"


def _apply(api: kubernetes.client.ApiClient, path: str, body: str, **query: str) -> tuple[int, Any]:
    try:
        response = api.call_api(
            path,
            "PATCH",
            query_params=list(query.items()),
            header_params={"Content-Type": APPLY, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
        return response.status, json.loads(response.data)
    except kubernetes.client.ApiException as exc:
        return exc.status, json.loads(exc.body)


CM = "/api/v1/namespaces/batch/configmaps/settings"


def test_apply_creates_merges_and_reports_conflicts(
    api: kubernetes.client.ApiClient, v1: kubernetes.client.CoreV1Api
) -> None:
    first = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings"},
        "data": {"a": "1", "b": "2"},
    }
    status, created = _apply(api, CM, first, fieldManager="deployer")
    assert status == 201 and created["data"] == {"a": "1", "b": "2"}
    (entry,) = created["metadata"]["managedFields"]
    assert entry["manager"] == "deployer" and entry["operation"] == "Apply"
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}

    other = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "9", "c": "3"}}
    status, refused = _apply(api, CM, other, fieldManager="tuner")
    assert (status, refused["reason"]) == (409, "Conflict")
    assert refused["message"] == 'Apply failed with 1 conflict: conflict with "deployer": .data.a'
    assert refused["details"]["causes"][0]["field"] == ".data.a"
    assert v1.read_namespaced_config_map("settings", "batch").data == {"a": "1", "b": "2"}

    status, forced = _apply(api, CM, other, fieldManager="tuner", force="true")
    assert status == 200 and forced["data"] == {"a": "9", "b": "2", "c": "3"}
    assert [e["manager"] for e in forced["metadata"]["managedFields"]] == ["deployer", "tuner"]

    # deployer stops applying b: it is removed; a is tuner's now and stays.
    status, shrunk = _apply(
        api, CM, {"apiVersion": "v1", "kind": "ConfigMap", "data": {}}, fieldManager="deployer"
    )
    assert status == 200 and shrunk["data"] == {"a": "9", "c": "3"}
    owners = {e["manager"]: e["fieldsV1"] for e in shrunk["metadata"]["managedFields"]}
    assert owners["tuner"] == {"f:data": {"f:a": {}, "f:c": {}}}
    assert "f:b" not in json.dumps(owners)

    status, missing = _apply(api, CM, first)
    assert status == 422 and "fieldManager: Required value" in missing["message"]
    status, _ = _apply(
        api,
        CM.replace("settings", "dry"),
        {**first, "metadata": {"name": "dry"}},
        fieldManager="x",
        dryRun="All",
    )
    assert status == 201 and not [
        c for c in v1.list_namespaced_config_map("batch").items if c.metadata.name == "dry"
    ]


def test_apply_merges_containers_by_name(
    api: kubernetes.client.ApiClient, batch: kubernetes.client.BatchV1Api
) -> None:
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "merged", "labels": {"team": "a"}},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}],
                }
            },
        },
    }
    path = "/apis/batch/v1/namespaces/batch/jobs/merged"
    assert _apply(api, path, job, fieldManager="ci")[0] == 201
    labels = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"labels": {"extra": "x"}}}
    status, both = _apply(api, path, labels, fieldManager="labeller")
    assert status == 200 and both["metadata"]["labels"] == {"team": "a", "extra": "x"}
    read = batch.read_namespaced_job("merged", "batch")
    assert [c.name for c in read.spec.template.spec.containers] == ["main"]
    assert {e.manager for e in read.metadata.managed_fields} == {"ci", "labeller"}


@pytest.mark.skipif(KUBECTL is None, reason="needs kubectl beside the interpreter")
def test_kubectl_apply_server_side(simulated_kubeconfig: Path) -> None:
    assert KUBECTL is not None

    def kubectl(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(simulated_kubeconfig), "-n", "batch", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    template = "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata:\n  name: t\n"
    spec = "spec:\n  entrypoint: {e}\n  templates: [{{name: {e}, container: {{image: busybox}}}}]\n"
    done = kubectl("apply", "--server-side", "-f", "-", stdin=template + spec.format(e="a"))
    assert (done.returncode, done.stdout.strip()) == (
        0,
        "workflowtemplate.argoproj.io/t serverside-applied",
    ), done.stderr
    done = kubectl(
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        "-",
        stdin=template + spec.format(e="b"),
    )
    assert done.returncode == 1
    assert 'Apply failed with 2 conflicts: conflicts with "kubectl":' in done.stderr
    assert "- .spec.entrypoint" in done.stderr and "- .spec.templates" in done.stderr
