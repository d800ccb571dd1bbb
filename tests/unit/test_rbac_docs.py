"""The Role in docs/rbac/ grants what the operators need: the rights the connection test checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from airflow_k8s_jobs.clusters import access
from airflow_k8s_jobs.kube import EVENTS, JOBS, PODS, WORKFLOWS, WORKLOADS

RBAC = Path(__file__).parents[2] / "docs" / "rbac"


def granted(path: Path, kind: str) -> dict[tuple[str, str], set[str]]:
    (role,) = [d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == kind]
    rights: dict[tuple[str, str], set[str]] = {}
    rule: dict[str, Any]
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rights.setdefault((group, resource), set()).update(rule["verbs"])
    return rights


def test_the_role_grants_every_right_the_connection_test_checks() -> None:
    rights = granted(RBAC / "airflow-k8s-jobs.yaml", "Role")
    checked = [
        *access._JOB_RIGHTS,
        access._WORKLOAD_RIGHTS,
        access._WORKFLOW_RIGHTS,
        access._TEMPLATE_RIGHTS,
    ]
    for right in checked:
        assert set(right.verbs) <= rights.get((right.group, right.resource), set()), right.shown


def test_the_role_grants_nothing_more_than_the_operators_use() -> None:
    rights = granted(RBAC / "airflow-k8s-jobs.yaml", "Role")
    expected = {
        (r.group, r.resource): set(r.verbs)
        for r in [
            *access._JOB_RIGHTS,
            access._WORKLOAD_RIGHTS,
            access._WORKFLOW_RIGHTS,
            access._TEMPLATE_RIGHTS,
        ]
    }
    assert rights == expected
    assert not any("*" in verbs for verbs in rights.values())


def test_cluster_workflow_templates_take_a_cluster_role_of_their_own() -> None:
    rights = granted(RBAC / "argo-cluster-workflow-templates.yaml", "ClusterRole")
    assert rights == {("argoproj.io", "clusterworkflowtemplates"): {"get", "list"}}
    bindings = [
        d
        for path in RBAC.glob("*.yaml")
        for d in yaml.safe_load_all(path.read_text())
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
    ]
    assert {b["roleRef"]["name"] for b in bindings} == {
        "airflow-k8s-jobs",
        "airflow-k8s-jobs-cluster-workflow-templates",
        "airflow-k8s-jobs-watch-all-namespaces",
    }


def test_watching_all_namespaces_takes_reading_what_the_waiters_watch() -> None:
    rights = granted(RBAC / "watch-all-namespaces.yaml", "ClusterRole")
    watched = [JOBS, PODS, EVENTS, WORKLOADS, WORKFLOWS]
    assert rights == {(r.group, r.plural): {"list", "watch"} for r in watched}
