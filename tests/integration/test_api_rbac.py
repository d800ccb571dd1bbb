"""Authorization in the simulated API server through the real clients: SelfSubjectAccessReview
answers, and 403 Forbidden for what the ``rbac`` section denies, agreeing with each other."""

from __future__ import annotations

import json
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest
from kubernetes.client import (
    AuthorizationV1Api,
    V1ResourceAttributes,
    V1SelfSubjectAccessReview,
    V1SelfSubjectAccessReviewSpec,
)
from kubernetes.client.rest import ApiException

from simulated_k8s_cluster import SimulatedCluster

# Every namespace has this ConfigMap, as in a real cluster.
ROOT_CA = "kube-root-ca.crt"

USER = "system:serviceaccount:airflow:worker"
DENYING = {
    "timeScale": 0,
    "namespaces": ["batch", "other"],
    "nodePools": [],
    "rbac": {
        "user": USER,
        "deny": [
            {"verb": "create", "group": "batch", "resource": "jobs", "namespace": "batch"},
            {"verb": "get", "group": "", "resource": "pods/log"},
            {"verb": ["watch", "delete"], "group": "", "resource": "configmaps"},
        ],
    },
}


def _status(exc: ApiException | kubernetes_asyncio.client.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def _review(api: kubernetes.client.ApiClient, **attributes: str) -> V1SelfSubjectAccessReview:
    body = V1SelfSubjectAccessReview(
        spec=V1SelfSubjectAccessReviewSpec(resource_attributes=V1ResourceAttributes(**attributes))
    )
    return AuthorizationV1Api(api).create_self_subject_access_review(body)


def _job(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                }
            },
        },
    }


def test_everything_is_allowed_by_default(api: kubernetes.client.ApiClient) -> None:
    review = _review(api, namespace="batch", verb="create", group="batch", resource="jobs")
    assert review.status.allowed is True
    assert review.status.denied is None
    assert review.status.reason.startswith("RBAC: allowed by ClusterRoleBinding")
    # The answer echoes the question, as the API server does.
    assert review.kind == "SelfSubjectAccessReview"
    assert review.api_version == "authorization.k8s.io/v1"
    assert review.spec.resource_attributes.resource == "jobs"
    assert review.spec.resource_attributes.namespace == "batch"


def test_review_is_created_with_201(api: kubernetes.client.ApiClient) -> None:
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}},
    }
    response = api.call_api(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "POST",
        body=body,
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
    )
    assert response.status == 201
    answer = json.loads(response.data)
    assert answer["status"]["allowed"] is True
    assert answer["metadata"] == {"creationTimestamp": None}


def test_discovery_lists_the_review(api: kubernetes.client.ApiClient) -> None:
    groups = kubernetes.client.ApisApi(api).get_api_versions()
    authorization = next(g for g in groups.groups if g.name == "authorization.k8s.io")
    assert authorization.preferred_version.group_version == "authorization.k8s.io/v1"
    resources = AuthorizationV1Api(api).get_api_resources()
    assert resources.group_version == "authorization.k8s.io/v1"
    (review,) = [r for r in resources.resources if r.name == "selfsubjectaccessreviews"]
    assert (review.kind, review.namespaced, review.verbs) == (
        "SelfSubjectAccessReview",
        False,
        ["create"],
    )
    assert review.singular_name == "selfsubjectaccessreview"


def test_reviews_are_only_created(api: kubernetes.client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        api.call_api(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "GET",
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
    assert err.value.status == 405
    assert _status(err.value)["reason"] == "MethodNotAllowed"


def test_review_needs_exactly_one_kind_of_attributes(api: kubernetes.client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        AuthorizationV1Api(api).create_self_subject_access_review(
            V1SelfSubjectAccessReview(spec=V1SelfSubjectAccessReviewSpec())
        )
    assert err.value.status == 422
    status = _status(err.value)
    assert status["reason"] == "Invalid"
    assert status["message"] == (
        '.authorization.k8s.io "" is invalid: spec: Invalid value: null: exactly one of '
        "nonResourceAttributes or resourceAttributes must be specified"
    )
    assert status["details"]["causes"][0]["field"] == "spec"


@pytest.mark.simulated_cluster(DENYING)
def test_review_reports_denied_verbs(api: kubernetes.client.ApiClient) -> None:
    denied = _review(api, namespace="batch", verb="create", group="batch", resource="jobs")
    assert denied.status.allowed is False
    assert denied.status.reason is None  # RBAC has no opinion: no reason, not "denied"
    assert denied.status.denied is None
    # The rule names one namespace: elsewhere the same verb is allowed ...
    other = _review(api, namespace="other", verb="create", group="batch", resource="jobs")
    assert other.status.allowed is True
    # ... but not across all namespaces, which include the denied one.
    everywhere = _review(api, verb="create", group="batch", resource="jobs")
    assert everywhere.status.allowed is False
    reading = _review(api, namespace="batch", verb="get", group="batch", resource="jobs")
    assert reading.status.allowed is True
    logs = _review(api, namespace="other", verb="get", resource="pods", subresource="log")
    assert logs.status.allowed is False
    assert _review(api, namespace="other", verb="get", resource="pods").status.allowed is True
    assert _review(api, namespace="batch", verb="*", resource="configmaps").status.allowed is False


@pytest.mark.simulated_cluster(DENYING)
def test_denied_create_is_forbidden(
    api: kubernetes.client.ApiClient, simulated_cluster: SimulatedCluster
) -> None:
    batch = kubernetes.client.BatchV1Api(api)
    with pytest.raises(ApiException) as err:
        batch.create_namespaced_job("batch", _job("nope"))
    assert err.value.status == 403
    assert _status(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'jobs.batch is forbidden: User "system:serviceaccount:airflow:worker" cannot '
        'create resource "jobs" in API group "batch" in the namespace "batch"',
        "reason": "Forbidden",
        "details": {"group": "batch", "kind": "jobs"},
        "code": 403,
    }
    assert simulated_cluster.list("jobs", "batch") == []
    # A dry run is a create too; other namespaces and other verbs are untouched.
    with pytest.raises(ApiException) as err:
        batch.create_namespaced_job("batch", _job("dry"), dry_run="All")
    assert err.value.status == 403
    batch.create_namespaced_job("other", _job("fine"))
    assert batch.list_namespaced_job("batch").items == []
    assert simulated_cluster.requests(verb="create", resource="jobs") == 3


@pytest.mark.simulated_cluster(DENYING)
def test_denied_reads_name_the_object(
    api: kubernetes.client.ApiClient, simulated_cluster: SimulatedCluster
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    simulated_cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "other"},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
        }
    )
    assert core.read_namespaced_pod("p", "other").metadata.name == "p"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("p", "other")
    assert err.value.status == 403
    assert _status(err.value)["message"] == (
        'pods "p" is forbidden: User "system:serviceaccount:airflow:worker" cannot get resource '
        '"pods/log" in API group "" in the namespace "other"'
    )
    assert _status(err.value)["details"] == {"name": "p", "kind": "pods"}

    core.create_namespaced_config_map("other", {"metadata": {"name": "cm"}})
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map("cm", "other")
    assert err.value.status == 403
    # A watch narrowed to one name is authorized as that name, like the API server does.
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(
            "other", watch=True, field_selector="metadata.name=cm", _preload_content=False
        )
    assert err.value.status == 403
    assert _status(err.value)["message"].startswith('configmaps "cm" is forbidden: ')
    with pytest.raises(ApiException) as err:
        core.list_config_map_for_all_namespaces(watch=True, _preload_content=False)
    assert _status(err.value)["message"].endswith(
        'cannot watch resource "configmaps" in API group "" at the cluster scope'
    )
    assert [c.metadata.name for c in core.list_namespaced_config_map("other").items] == [
        "cm",
        ROOT_CA,
    ]


@pytest.mark.simulated_cluster(DENYING)
async def test_async_client_gets_the_same_answers(
    aapi: kubernetes_asyncio.client.ApiClient,
) -> None:
    client = kubernetes_asyncio.client
    review = await client.AuthorizationV1Api(aapi).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    namespace="batch", verb="create", group="batch", resource="jobs"
                )
            )
        )
    )
    assert review.status.allowed is False
    with pytest.raises(client.ApiException) as err:
        await client.BatchV1Api(aapi).create_namespaced_job("batch", _job("nope"))
    assert err.value.status == 403
    assert _status(err.value)["reason"] == "Forbidden"


@pytest.mark.simulated_cluster(
    {
        "timeScale": 0,
        "nodePools": [],
        "rbac": {
            "deny": [
                {
                    "verb": "create",
                    "group": "authorization.k8s.io",
                    "resource": "selfsubjectaccessreviews",
                }
            ]
        },
    }
)
def test_reviews_themselves_can_be_denied(api: kubernetes.client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        _review(api, verb="get", resource="pods")
    assert err.value.status == 403
    # No user configured: the token authenticates as the cluster's name.
    assert _status(err.value)["message"] == (
        'selfsubjectaccessreviews.authorization.k8s.io is forbidden: User "simulated" cannot '
        'create resource "selfsubjectaccessreviews" in API group "authorization.k8s.io" at the '
        "cluster scope"
    )
