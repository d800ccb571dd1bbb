"""Against a real cluster with Argo Workflows installed: submit, wait through the watch, stop.

Skipped unless the cluster serves ``argoproj.io/v1alpha1`` ``workflows``. The namespace is
``ARGO_TEST_NAMESPACE`` (default ``argo``); the workflow's image is ``ARGO_TEST_IMAGE``
(default ``busybox:1.36``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from typing import Any

import pytest
from kubernetes import client, config

from airflow_k8s_jobs.manifests.names import TaskInstanceKey
from airflow_k8s_jobs.manifests.workflows import WorkflowRequest, build_workflow
from airflow_k8s_jobs.waiting import WorkflowTarget, wait_for_workflow

NAMESPACE = os.environ.get("ARGO_TEST_NAMESPACE", "argo")
IMAGE = os.environ.get("ARGO_TEST_IMAGE", "busybox:1.36")
CONN_ID = "real_cluster_argo"


@pytest.fixture(scope="module")
def custom() -> client.CustomObjectsApi:
    config.load_kube_config()
    resources = client.CustomObjectsApi().get_api_resources("argoproj.io", "v1alpha1")
    if not any(r.name == "workflows" for r in resources.resources):
        pytest.skip("the cluster does not serve argoproj.io/v1alpha1 workflows")
    return client.CustomObjectsApi()


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> str:
    extra = {"kubeconfig_path": os.environ["KUBECONFIG"], "namespace": NAMESPACE}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "k8sjobs", "extra": extra}),
    )
    return CONN_ID


def fan_out() -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "smoke-"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "count", "value": "2"}]},
            "templates": [
                {
                    "name": "main",
                    "steps": [
                        [{"name": "gen", "template": "gen"}],
                        [
                            {
                                "name": "echo",
                                "template": "echo",
                                "arguments": {"parameters": [{"name": "n", "value": "{{item}}"}]},
                                "withParam": "{{steps.gen.outputs.parameters.items}}",
                            }
                        ],
                    ],
                },
                {
                    "name": "gen",
                    "container": {
                        "image": IMAGE,
                        "command": ["sh", "-c"],
                        "args": [
                            "seq -s, 1 {{workflow.parameters.count}} | sed 's/.*/[&]/' > /tmp/items"
                        ],
                    },
                    "outputs": {
                        "parameters": [{"name": "items", "valueFrom": {"path": "/tmp/items"}}]
                    },
                },
                {
                    "name": "echo",
                    "inputs": {"parameters": [{"name": "n"}]},
                    "container": {"image": IMAGE, "command": ["echo", "{{inputs.parameters.n}}"]},
                },
            ],
        },
    }


def test_submit_and_wait(custom: client.CustomObjectsApi, conn: str) -> None:
    key = TaskInstanceKey("cluster_tests", "argo_smoke", f"manual__{uuid.uuid4().hex}", -1, 1)
    manifest = build_workflow(
        WorkflowRequest(workflow=fan_out(), parameters={"count": 3}), key, NAMESPACE, "real"
    )
    created = custom.create_namespaced_custom_object(
        "argoproj.io", "v1alpha1", NAMESPACE, "workflows", manifest
    )
    try:
        target = WorkflowTarget(
            CONN_ID, "real", NAMESPACE, created["metadata"]["name"], created["metadata"]["uid"]
        )
        log = logging.getLogger("tests.cluster.argo")
        result = asyncio.run(asyncio.wait_for(wait_for_workflow(_hook(), target, log), 600))
        assert result["status"] == "success", result
        assert result["node_outputs"]["[0].gen"] == {"items": "[1,2,3]"}
    finally:
        custom.delete_namespaced_custom_object(
            "argoproj.io", "v1alpha1", NAMESPACE, "workflows", created["metadata"]["name"]
        )


def _hook() -> Any:
    from airflow_k8s_jobs.clusters import KubeClusterHook

    return KubeClusterHook(CONN_ID)
