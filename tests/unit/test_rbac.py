"""The simulated cluster's ``rbac`` section: parsing, rule matching and the API server's words."""

from __future__ import annotations

from typing import Any

import pytest

from simulated_k8s_cluster import ClusterConfig, ConfigError
from simulated_k8s_cluster.config import DenyRule, RbacConfig
from simulated_k8s_cluster.rbac import Attributes, Authorizer, forbidden, rule_matches


def test_default_is_allow_everything() -> None:
    config = ClusterConfig.load(None)
    assert config.rbac == RbacConfig()
    authorizer = Authorizer(config.rbac, config.cluster_name)
    assert authorizer.user == "simulated"
    assert authorizer.denial(Attributes("delete", "batch", "jobs", namespace="x")) is None


def test_rules_parse_strings_and_lists() -> None:
    config = ClusterConfig.from_dict(
        {
            "rbac": {
                "user": "alice",
                "deny": [
                    {"verb": "create", "group": "batch", "resource": "jobs", "namespace": "b"},
                    {"verb": ["get", "list"], "group": "", "resource": ["pods/log", "events"]},
                ],
            }
        }
    )
    assert config.rbac == RbacConfig(
        user="alice",
        deny=[
            DenyRule(("create",), ("batch",), ("jobs",), ("b",)),
            DenyRule(("get", "list"), ("",), ("pods/log", "events")),
        ],
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rbac": []}, "rbac must be a mapping with user and/or deny"),
        ({"rbac": {"allow": []}}, "rbac: unknown keys ['allow']"),
        ({"rbac": {"user": ""}}, "rbac.user must be a non-empty string"),
        ({"rbac": {"deny": {"verb": "get"}}}, "rbac.deny must be a list of rules"),
        ({"rbac": {"deny": ["get jobs"]}}, "rbac.deny[0] must be a mapping"),
        (
            {"rbac": {"deny": [{"verb": "get", "resource": "jobs"}]}},
            'rbac.deny[0] needs group (group "" is the core group',
        ),
        (
            {"rbac": {"deny": [{"verb": "creat", "group": "batch", "resource": "jobs"}]}},
            "rbac.deny[0].verb must be one of get, list, watch, create, update, patch, delete, "
            "deletecollection or *, got 'creat'",
        ),
        (
            {"rbac": {"deny": [{"verb": "get", "group": "", "resource": ""}]}},
            "rbac.deny[0].resource must be a non-empty string or a list of them",
        ),
        (
            {"rbac": {"deny": [{"verb": [], "group": "", "resource": "pods"}]}},
            "rbac.deny[0].verb must not be empty",
        ),
        (
            {"rbac": {"deny": [{"verb": "get", "group": "", "resource": "pods", "ns": "a"}]}},
            "rbac.deny[0]: unknown keys ['ns']",
        ),
        (
            {"rbac": {"deny": [{"verb": "get", "group": "", "resource": "p", "scope": "all"}]}},
            "rbac.deny[0].scope must be one of any, cluster, namespace, got 'all'",
        ),
    ],
)
def test_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        ClusterConfig.from_dict(data)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("rule", "attrs", "matches"),
    [
        (DenyRule(("create",), ("batch",), ("jobs",)), Attributes("create", "batch", "jobs"), True),
        (DenyRule(("create",), ("batch",), ("jobs",)), Attributes("get", "batch", "jobs"), False),
        (DenyRule(("create",), ("batch",), ("jobs",)), Attributes("create", "", "jobs"), False),
        (DenyRule(("*",), ("*",), ("*",)), Attributes("watch", "x.io", "things"), True),
        # subresources are their own resources, as in RBAC
        (DenyRule(("get",), ("",), ("pods",)), Attributes("get", "", "pods", "log"), False),
        (DenyRule(("get",), ("",), ("pods/log",)), Attributes("get", "", "pods", "log"), True),
        (DenyRule(("get",), ("",), ("*/log",)), Attributes("get", "", "pods", "log"), True),
        (DenyRule(("get",), ("",), ("pods/log",)), Attributes("get", "", "pods"), False),
        # a namespaced rule: its namespace, and requests across all namespaces
        (
            DenyRule(("list",), ("",), ("pods",), ("a",)),
            Attributes("list", "", "pods", namespace="a"),
            True,
        ),
        (
            DenyRule(("list",), ("",), ("pods",), ("a",)),
            Attributes("list", "", "pods", namespace="b"),
            False,
        ),
        (DenyRule(("list",), ("",), ("pods",), ("a",)), Attributes("list", "", "pods"), True),
        # scope: across all namespaces only (RoleBindings only), or in namespaces only
        (
            DenyRule(("list",), ("",), ("pods",), scope="cluster"),
            Attributes("list", "", "pods"),
            True,
        ),
        (
            DenyRule(("list",), ("",), ("pods",), scope="cluster"),
            Attributes("list", "", "pods", namespace="a"),
            False,
        ),
        (
            DenyRule(("list",), ("",), ("pods",), scope="namespace"),
            Attributes("list", "", "pods", namespace="a"),
            True,
        ),
        (
            DenyRule(("list",), ("",), ("pods",), scope="namespace"),
            Attributes("list", "", "pods"),
            False,
        ),
        # a review asking about "*" overlaps any rule
        (DenyRule(("delete",), ("",), ("pods",)), Attributes("*", "", "pods"), True),
    ],
)
def test_rule_matching(rule: DenyRule, attrs: Attributes, matches: bool) -> None:
    assert rule_matches(rule, attrs) is matches


def test_forbidden_wording() -> None:
    named = forbidden("u", Attributes("get", "", "pods", "log", namespace="ns", name="p"))
    assert named.code == 403
    assert named.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "p" is forbidden: User "u" cannot get resource "pods/log" in API group '
        '"" in the namespace "ns"',
        "reason": "Forbidden",
        "code": 403,
        "details": {"name": "p", "kind": "pods"},
    }
    cluster = forbidden("u", Attributes("list", "batch", "jobs"))
    assert cluster.message == (
        'jobs.batch is forbidden: User "u" cannot list resource "jobs" in API group "batch" at '
        "the cluster scope"
    )
