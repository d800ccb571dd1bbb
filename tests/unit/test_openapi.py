"""The OpenAPI documents built from the ``kubernetes`` client's models (simulated_k8s_cluster)."""

from __future__ import annotations

from simulated_k8s_cluster import openapi
from simulated_k8s_cluster.resources import (
    ARGO_WORKFLOWS,
    CONFIGMAPS,
    EVENTS,
    JOBS,
    PODS,
    WORKLOADS,
)


def test_models_are_named_as_upstream_names_them() -> None:
    batch = "io.k8s.api.batch.v1"
    assert openapi.definition_name("V1JobSpec", batch) == "io.k8s.api.batch.v1.JobSpec"
    assert (
        openapi.definition_name("V1PodTemplateSpec", batch) == "io.k8s.api.core.v1.PodTemplateSpec"
    )
    assert openapi.definition_name("V1Container", batch) == "io.k8s.api.core.v1.Container"
    assert (
        openapi.definition_name("V1ObjectMeta", batch)
        == "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    assert openapi.definition_name("CoreV1Event", openapi.CORE) == "io.k8s.api.core.v1.Event"
    assert openapi.model_for(EVENTS) == "CoreV1Event"
    assert openapi.model_for(JOBS) == "V1Job"
    assert openapi.model_for(ARGO_WORKFLOWS) is None


def test_document_carries_descriptions_required_and_list_extensions() -> None:
    schemas = openapi.v3_document([JOBS], "v1.33.2")["components"]["schemas"]
    spec = schemas["io.k8s.api.batch.v1.JobSpec"]
    assert spec["required"] == ["template"]
    assert spec["properties"]["backoffLimit"]["type"] == "integer"
    assert spec["properties"]["backoffLimit"]["description"].startswith(
        "Specifies the number of retries before marking this job failed."
    )
    assert "noqa" not in spec["properties"]["backoffLimit"]["description"]
    status = schemas["io.k8s.api.batch.v1.JobStatus"]["properties"]["conditions"]
    assert status["x-kubernetes-list-type"] == "atomic"
    assert status["x-kubernetes-patch-merge-key"] == "type"
    ports = schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    volumes = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]
    assert volumes["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    finalizers = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"][
        "finalizers"
    ]
    assert finalizers["x-kubernetes-list-type"] == "set"
    limits = schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"] == {"$ref": "#/components/schemas/" + openapi.QUANTITY}
    port = schemas["io.k8s.api.core.v1.HTTPGetAction"]["properties"]["port"]
    assert port["allOf"] == [{"$ref": "#/components/schemas/" + openapi.INT_OR_STRING}]
    assert schemas["io.k8s.api.batch.v1.JobList"]["x-kubernetes-group-version-kind"] == [
        {"group": "batch", "version": "v1", "kind": "JobList"}
    ]


def test_patch_operations_offer_field_validation() -> None:
    paths = openapi.v3_document([PODS, CONFIGMAPS], "v1.33.2")["paths"]
    patch = paths["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert {p["name"] for p in patch["parameters"]} >= {"fieldValidation", "dryRun"}


def test_custom_resources_are_named_by_reversed_group() -> None:
    schemas = openapi.v3_document([WORKLOADS], "v1.33.2")["components"]["schemas"]
    workload = schemas["io.x-k8s.kueue.v1beta1.Workload"]
    assert workload["properties"]["status"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert workload["properties"]["metadata"] == {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    }


def test_v2_refers_to_definitions() -> None:
    document = openapi.v2_document([JOBS], "v1.33.2")
    spec = document["definitions"]["io.k8s.api.batch.v1.Job"]["properties"]["spec"]
    assert spec == {"$ref": "#/definitions/io.k8s.api.batch.v1.JobSpec"}
    parameters = document["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs/{name}"]["patch"][
        "parameters"
    ]
    assert {"name": "fieldValidation", "in": "query", "type": "string"} in parameters


def test_cronjobs_are_published_with_their_job_template() -> None:
    from simulated_k8s_cluster.resources import CRONJOBS

    schemas = openapi.v3_document([CRONJOBS, JOBS], "v1.33.2")["components"]["schemas"]
    spec = schemas["io.k8s.api.batch.v1.CronJobSpec"]
    assert set(spec["required"]) == {"schedule", "jobTemplate"}
    assert "io.k8s.api.batch.v1.JobTemplateSpec" in schemas
