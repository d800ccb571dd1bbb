"""Parsing ``k8sjobs`` and cncf ``kubernetes`` connections into ClusterSettings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.models import Connection

from airflow_k8s_jobs.clusters import CONN_TYPE, ClusterSettings
from airflow_k8s_jobs.errors import InvalidInputError

SECRET = "s3cr3t-token-value"
INLINE_KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "dev", "cluster": {"server": "https://10.0.0.1"}}],
    "users": [{"name": "dev", "user": {"token": SECRET}}],
    "contexts": [{"name": "kind-dev", "context": {"cluster": "dev", "user": "dev"}}],
    "current-context": "kind-dev",
}


def conn(extra: dict[str, Any], conn_type: str = CONN_TYPE, conn_id: str = "target") -> Any:
    return Connection(conn_id=conn_id, conn_type=conn_type, extra=json.dumps(extra))


def parse(extra: dict[str, Any], conn_type: str = CONN_TYPE) -> ClusterSettings:
    return ClusterSettings.from_connection(conn(extra, conn_type))


def test_gke_connection() -> None:
    s = parse(
        {
            "project": "my-project",
            "location": "europe-west1",
            "cluster": "batch",
            "use_internal_ip": "true",
            "impersonation_chain": "a@p.iam.gserviceaccount.com, b@p.iam.gserviceaccount.com",
            "namespace": "jobs",
            "allowed_namespaces": ["jobs", "ml"],
            "request_timeout": "30",
            "watch_scope": "Cluster",
        }
    )
    assert s.kind == "gke"
    assert s.watch_scope == "cluster"
    assert (s.project, s.location, s.cluster) == ("my-project", "europe-west1", "batch")
    assert s.use_internal_ip and not s.use_dns_endpoint
    assert s.impersonation_chain == ("a@p.iam.gserviceaccount.com", "b@p.iam.gserviceaccount.com")
    assert s.default_namespace == "jobs"
    assert s.allowed_namespaces == ("jobs", "ml")
    assert s.request_timeout == 30.0
    assert s.verify_ssl is True
    assert s.display_name == "GKE cluster my-project/europe-west1/batch"
    assert s.gke_cluster_name == "projects/my-project/locations/europe-west1/clusters/batch"


def test_kubeconfig_path_and_context() -> None:
    s = parse({"kubeconfig_path": "/etc/kube/config", "context": "kind-dev", "verify_ssl": False})
    assert s.kind == "kubeconfig"
    assert s.watch_scope == "auto"
    assert s.kubeconfig_path == "/etc/kube/config"
    assert s.context == "kind-dev"
    assert s.verify_ssl is False
    assert s.display_name == "kubeconfig context kind-dev"
    assert s.default_namespace == "default"


@pytest.mark.parametrize(
    "inline", [json.dumps(INLINE_KUBECONFIG), INLINE_KUBECONFIG, "apiVersion: v1\nkind: Config\n"]
)
def test_inline_kubeconfig_yaml_json_or_dict_is_hidden(inline: Any) -> None:
    s = parse({"kubeconfig": inline})
    assert s.kind == "kubeconfig"
    assert isinstance(s.kubeconfig, dict)
    assert SECRET not in repr(s)
    assert SECRET not in str(s)


def test_inline_kubeconfig_display_name_uses_current_context() -> None:
    assert parse({"kubeconfig": INLINE_KUBECONFIG}).display_name == "kubeconfig context kind-dev"


def test_in_cluster() -> None:
    s = parse({"in_cluster": True, "namespace": "batch"})
    assert s.kind == "in_cluster"
    assert s.display_name == "in-cluster"
    assert s.default_namespace == "batch"


def test_first_allowed_namespace_is_the_default() -> None:
    assert (
        parse({"in_cluster": True, "allowed_namespaces": "batch,ml"}).default_namespace == "batch"
    )


def test_legacy_prefixed_extras_of_our_type() -> None:
    s = parse({"extra__k8sjobs__kubeconfig_path": "/k", "extra__k8sjobs__namespace": ""})
    assert s.kubeconfig_path == "/k"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "does not say which cluster"),
        ({"project": "p", "cluster": "c"}, "lacks location"),
        (
            {"project": "p", "location": "l", "cluster": "c", "kubeconfig_path": "/k"},
            "more than one",
        ),
        ({"in_cluster": True, "kubeconfig": INLINE_KUBECONFIG}, "more than one"),
        ({"kubeconfig_path": "/k", "use_internal_ip": True}, "only apply to GKE"),
        ({"impersonation_chain": "sa@x"}, "only apply to GKE"),
        (
            {
                "project": "p",
                "location": "l",
                "cluster": "c",
                "use_internal_ip": True,
                "use_dns_endpoint": True,
            },
            "both use_internal_ip and use_dns_endpoint",
        ),
        ({"project": "p", "location": "l", "cluster": "c", "context": "x"}, "'context' only"),
        ({"kubeconfig_path": "/k", "verify_ssl": "maybe"}, "'verify_ssl' must be true or false"),
        (
            {"kubeconfig_path": "/k", "request_timeout": "soon"},
            "'request_timeout' must be a number",
        ),
        ({"kubeconfig_path": "/k", "request_timeout": 0}, "must be positive"),
        (
            {"kubeconfig_path": "/k", "watch_scope": "everywhere"},
            "'watch_scope' must be one of auto, namespace, cluster, not 'everywhere'",
        ),
        ({"kubeconfig": "[unclosed"}, "'kubeconfig' is not valid YAML or JSON"),
        ({"kubeconfig": "- a\n- b"}, "must be a kubeconfig"),
        (
            {"kubeconfig_path": "/k", "namespace": "x", "allowed_namespaces": "a,b"},
            "not in allowed",
        ),
        ({"kubeconfig_path": "/k", "namespaces": "typo"}, "unknown extra(s) 'namespaces'"),
        ({"kubeconfig_path": 3}, "'kubeconfig_path' must be a string"),
    ],
)
def test_bad_connections_name_the_connection(extra: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse(extra)
    message = str(info.value)
    assert "'target'" in message
    assert expected in message


def test_bad_inline_kubeconfig_error_does_not_echo_it() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse({"kubeconfig": f"token: {SECRET}\n  bad: [indent"})
    assert SECRET not in str(info.value)


def test_other_connection_types_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="type 'http'"):
        ClusterSettings.from_connection(conn({}, conn_type="http"))


# -- cncf `kubernetes` connections -------------------------------------------------------------


def test_cncf_kube_config_path() -> None:
    s = parse(
        {"kube_config_path": "/etc/kube", "cluster_context": "ctx", "namespace": "batch"},
        conn_type="kubernetes",
    )
    assert (s.kind, s.kubeconfig_path, s.context, s.default_namespace) == (
        "kubeconfig",
        "/etc/kube",
        "ctx",
        "batch",
    )
    assert s.allowed_namespaces == ()


def test_cncf_inline_kube_config_and_disable_verify_ssl() -> None:
    s = parse(
        {"kube_config": json.dumps(INLINE_KUBECONFIG), "disable_verify_ssl": True},
        conn_type="kubernetes",
    )
    assert s.kubeconfig == INLINE_KUBECONFIG
    assert s.verify_ssl is False
    assert SECRET not in repr(s)


def test_cncf_in_cluster_with_legacy_prefix() -> None:
    s = parse(
        {"extra__kubernetes__in_cluster": True, "extra__kubernetes__namespace": "ml"},
        conn_type="kubernetes",
    )
    assert (s.kind, s.default_namespace) == ("in_cluster", "ml")


def test_cncf_without_config_means_default_kubeconfig() -> None:
    s = parse({}, conn_type="kubernetes")
    assert (s.kind, s.kubeconfig_path, s.kubeconfig) == ("kubeconfig", None, None)
    assert s.display_name == "default kubeconfig"


def test_cncf_conflicting_fields() -> None:
    with pytest.raises(InvalidInputError, match=r"'target'.*in_cluster and kube_config_path"):
        parse({"in_cluster": True, "kube_config_path": "/k"}, conn_type="kubernetes")


# -- namespaces ----------------------------------------------------------------------------------


def test_check_namespace_allow_list() -> None:
    s = parse({"in_cluster": True, "allowed_namespaces": "batch, ml"})
    s.check_namespace("batch")
    s.check_namespace("ml")
    with pytest.raises(InvalidInputError) as info:
        s.check_namespace("kube-system")
    message = str(info.value)
    for part in ("'kube-system'", "'target'", "batch, ml", "allowed_namespaces", "in-cluster"):
        assert part in message


def test_empty_allow_list_allows_any_namespace() -> None:
    parse({"in_cluster": True}).check_namespace("anything")


def test_check_namespace_rejects_empty() -> None:
    with pytest.raises(InvalidInputError, match="No namespace"):
        parse({"in_cluster": True}).check_namespace("")


def test_settings_are_frozen_and_hashable_without_the_inline_kubeconfig() -> None:
    s = parse({"kubeconfig": INLINE_KUBECONFIG})
    with pytest.raises(AttributeError):
        s.context = "other"  # type: ignore[misc]
    assert s == parse({"kubeconfig": dict(INLINE_KUBECONFIG)})
    assert hash(s) == hash(parse({"kubeconfig": dict(INLINE_KUBECONFIG)}))
