"""``KubeClusterHook.test_connection`` (Airflow's "Test connection") against the simulated
cluster, through the real clients: what it reports when everything is allowed, when rights are
missing, and when the cluster cannot be reached or rejects the credentials."""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_k8s_jobs.clusters import KubeClusterHook
from airflow_k8s_jobs.errors import KubeApiError
from airflow_k8s_jobs.kube import JOBS, request_sync
from simulated_k8s_cluster import SimulatedCluster

VERSION = "Kubernetes v1.34.2-sim"
AIRFLOW_MAJOR = int(importlib.metadata.version("apache-airflow").split(".")[0])
WITH_ARGO = {"timeScale": 0, "namespaces": ["batch"], "nodePools": [], "argo": {}}


def with_argo(*deny: dict[str, Any], namespaces: tuple[str, ...] = ("batch",)) -> dict[str, Any]:
    return {**WITH_ARGO, "namespaces": list(namespaces), "rbac": {"deny": list(deny)}}


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, extra: dict[str, Any]) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "k8sjobs", "extra": extra})
    )


@pytest.fixture
def conn_id(monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path) -> str:
    monkeypatch.delenv("KUBECONFIG")
    set_connection(
        monkeypatch,
        "sim_test",
        {"kubeconfig_path": str(simulated_kubeconfig), "namespace": "batch"},
    )
    return "sim_test"


def run_test(conn_id: str) -> tuple[bool, str]:
    hook = KubeClusterHook(cluster_conn_id=conn_id)
    try:
        return hook.test_connection()
    finally:
        hook.close()


def kubeconfig_variant(
    cluster: SimulatedCluster, path: Path, *, server: str | None = None, token: str | None = None
) -> Path:
    config = cluster.kubeconfig()
    if server is not None:
        config["clusters"][0]["cluster"]["server"] = server
    if token is not None:
        config["users"][0]["user"]["token"] = token
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.simulated_cluster(WITH_ARGO)
def test_everything_allowed(
    conn_id: str, simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path
) -> None:
    ok, message = run_test(conn_id)
    assert ok is True, message
    assert message == (
        f"Connected to kubeconfig {simulated_kubeconfig} ({VERSION}); in namespace batch this "
        "identity can run Jobs and Argo Workflows"
    )
    assert simulated_cluster.token not in message
    # 11 Jobs rights and 7 Argo rights, each asked once
    assert simulated_cluster.requests(verb="create", resource="selfsubjectaccessreviews") == 18


@pytest.mark.simulated_cluster({"timeScale": 0, "namespaces": ["batch"], "nodePools": []})
def test_without_argo_installed(conn_id: str, simulated_cluster: SimulatedCluster) -> None:
    ok, message = run_test(conn_id)
    assert ok is True, message
    assert message.endswith(
        "in namespace batch this identity can run Jobs; Argo Workflows is not installed "
        "(no argoproj.io/v1alpha1 API)"
    )
    assert simulated_cluster.requests(verb="create", resource="selfsubjectaccessreviews") == 11


@pytest.mark.simulated_cluster(
    with_argo(
        {"verb": "create", "group": "argoproj.io", "resource": "workflows"},
        {"verb": "list", "group": "argoproj.io", "resource": "workflowtemplates"},
    )
)
def test_missing_argo_rights_are_reported(conn_id: str) -> None:
    ok, message = run_test(conn_id)
    assert ok is True, message  # Jobs can run; ArgoWorkflowOperator would fail cleanly (403)
    assert message.endswith(
        f"({VERSION}); in namespace batch this identity can run Jobs; cannot create "
        "workflows.argoproj.io (needed by ArgoWorkflowOperator); cannot list "
        "workflowtemplates.argoproj.io (needed by ArgoWorkflowOperator(workflow_template=...))"
    )


WITH_KUEUE = {
    "timeScale": 0,
    "namespaces": ["batch"],
    "nodePools": [],
    "kueue": {"clusterQueues": [], "localQueues": []},
}


@pytest.mark.simulated_cluster(WITH_KUEUE)
def test_with_kueue_installed_workloads_are_checked(
    conn_id: str, simulated_cluster: SimulatedCluster
) -> None:
    ok, message = run_test(conn_id)
    assert ok is True, message
    assert message.endswith(
        "in namespace batch this identity can run Jobs; Argo Workflows is not installed "
        "(no argoproj.io/v1alpha1 API)"
    )
    # 11 Jobs rights and list and watch of Kueue's Workloads
    assert simulated_cluster.requests(verb="create", resource="selfsubjectaccessreviews") == 13


@pytest.mark.simulated_cluster(
    {
        **WITH_KUEUE,
        "rbac": {"deny": [{"verb": "watch", "group": "kueue.x-k8s.io", "resource": "workloads"}]},
    }
)
def test_missing_kueue_rights_are_reported(conn_id: str) -> None:
    ok, message = run_test(conn_id)
    assert ok is True, message  # only Jobs with queue_name need them
    assert (
        "in namespace batch this identity can run Jobs; cannot watch workloads.kueue.x-k8s.io "
        "(needed to say why a Job sent to a Kueue queue waits); Argo Workflows is not installed"
    ) in message


@pytest.mark.simulated_cluster(
    with_argo({"verb": ["watch", "patch"], "group": "argoproj.io", "resource": "workflows"})
)
def test_submitting_workflows_that_cannot_be_followed_fails(conn_id: str) -> None:
    ok, message = run_test(conn_id)
    assert ok is False
    assert (
        "in namespace batch this identity can run Jobs; cannot watch and patch "
        "workflows.argoproj.io (needed by ArgoWorkflowOperator), so ArgoWorkflowOperator would "
        "submit Workflows it cannot wait for or stop. Grant the missing rights"
    ) in message


@pytest.mark.simulated_cluster(
    with_argo({"verb": "create", "group": "batch", "resource": "jobs", "namespace": "batch"})
)
def test_jobs_that_cannot_be_created_fail_the_test(conn_id: str) -> None:
    ok, message = run_test(conn_id)
    assert ok is False
    assert (
        f"({VERSION}); in namespace batch this identity cannot run Jobs: cannot create "
        "jobs.batch (needed by KubeJobOperator); can run Argo Workflows. Grant the missing "
        "rights to this identity"
    ) in message
    # What the review said is what happens: creating a Job really is forbidden.
    hook = KubeClusterHook(cluster_conn_id=conn_id)
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "probe"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "x"}]}
            }
        },
    }
    with pytest.raises(KubeApiError) as err:
        request_sync(hook.api_client(), "POST", JOBS.path("batch"), body=manifest)
    assert err.value.code == 403
    assert err.value.reason == "Forbidden"
    assert 'cannot create resource "jobs" in API group "batch"' in str(err.value)
    hook.close()


@pytest.mark.simulated_cluster(
    with_argo(
        {"verb": "get", "group": "", "resource": "pods/log", "namespace": "team-b"},
        {"verb": "*", "group": "argoproj.io", "resource": "*", "namespace": "team-b"},
        namespaces=("team-a", "team-b"),
    )
)
def test_each_allowed_namespace_is_checked(
    monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path
) -> None:
    set_connection(
        monkeypatch,
        "teams",
        {"kubeconfig_path": str(simulated_kubeconfig), "allowed_namespaces": "team-a,team-b"},
    )
    ok, message = run_test("teams")
    assert ok is False
    assert (
        "in namespace team-a this identity can run Jobs and Argo Workflows; in namespace team-b "
        "this identity cannot run Jobs: cannot get pods/log (needed to copy pod logs into the "
        "task log); cannot create, get, list, watch and patch workflows.argoproj.io (needed by "
        "ArgoWorkflowOperator); cannot get and list workflowtemplates.argoproj.io"
    ) in message


def test_unreachable_server(
    monkeypatch: pytest.MonkeyPatch, simulated_cluster: SimulatedCluster, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = kubeconfig_variant(
        simulated_cluster, tmp_path / "closed.yaml", server=f"http://127.0.0.1:{port}"
    )
    set_connection(monkeypatch, "closed", {"kubeconfig_path": str(path)})
    ok, message = run_test("closed")
    assert ok is False
    assert message.startswith(f"Cannot reach kubeconfig {path} at http://127.0.0.1:{port}: ")
    assert "Connection refused" in message
    assert simulated_cluster.token not in message


def test_wrong_token(
    monkeypatch: pytest.MonkeyPatch, simulated_cluster: SimulatedCluster, tmp_path: Path
) -> None:
    path = kubeconfig_variant(simulated_cluster, tmp_path / "wrong.yaml", token="not-the-token")
    set_connection(monkeypatch, "wrong", {"kubeconfig_path": str(path), "namespace": "batch"})
    ok, message = run_test("wrong")
    assert ok is False
    assert message == (
        f"Connected to kubeconfig {path} ({VERSION}), but it rejected this identity's "
        "credentials (401 Unauthorized): check the connection's kubeconfig user, the service "
        "account's token or the Google credentials."
    )
    assert "not-the-token" not in message


def test_bad_kubeconfig_is_described_without_its_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("users:\n- name: u\n  user: {token: s3cr3t-token: x}\n")
    set_connection(monkeypatch, "broken", {"kubeconfig_path": str(path)})
    ok, message = run_test("broken")
    assert ok is False
    assert message.startswith(f"Cannot load kubeconfig {path} for connection 'broken': ")
    assert "the kubeconfig is not valid YAML" in message
    assert "s3cr3t" not in message


def test_kubeconfig_without_the_context(
    monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path
) -> None:
    set_connection(
        monkeypatch, "nocontext", {"kubeconfig_path": str(simulated_kubeconfig), "context": "x"}
    )
    ok, message = run_test("nocontext")
    assert ok is False
    assert "Cannot load kubeconfig context x for connection 'nocontext'" in message


def test_connection_with_bad_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "extras", {"kubeconfig_path": "/k", "cluster": "c"})
    ok, message = run_test("extras")
    assert ok is False
    assert message.startswith("Connection 'extras' sets more than one way to reach a cluster")


@pytest.mark.simulated_cluster(
    {
        "timeScale": 0,
        "namespaces": ["batch"],
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
def test_without_access_reviews_jobs_are_listed_instead(conn_id: str) -> None:
    ok, message = run_test(conn_id)
    assert ok is True, message
    assert "the API server would not say what this identity may do" in message
    assert message.endswith("so only listing Jobs was tried; in namespace batch it can list Jobs")


# -- `airflow connections test`, as a user runs it ------------------------------------------------


def _airflow_connections_test(home: Path, conn_id: str, extra: dict[str, Any]) -> Any:
    # A fresh AIRFLOW_HOME and no unit-test mode: a plain user setup (Airflow makes its config,
    # fernet key included). Both Airflow lines refuse to test connections unless enabled.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.pop("KUBECONFIG", None)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        **{f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps({"conn_type": "k8sjobs", "extra": extra})},
    )
    return subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "test", conn_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.simulated_cluster(
    {
        "timeScale": 0,
        "namespaces": ["batch", "locked"],
        "nodePools": [],
        "rbac": {
            "deny": [
                {"verb": "create", "group": "batch", "resource": "jobs", "namespace": "locked"}
            ]
        },
    }
)
def test_airflow_connections_test_cli(simulated_kubeconfig: Path, tmp_path: Path) -> None:
    good = _airflow_connections_test(
        tmp_path / "home",
        "sim",
        {"kubeconfig_path": str(simulated_kubeconfig), "namespace": "batch"},
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Connection success!" in good.stdout

    locked = _airflow_connections_test(
        tmp_path / "home",
        "locked",
        {"kubeconfig_path": str(simulated_kubeconfig), "namespace": "locked"},
    )
    # Airflow 2 exits with 0 even when the test fails; Airflow 3 with 1.
    failed_exit = 1 if AIRFLOW_MAJOR >= 3 else 0
    assert locked.returncode == failed_exit, locked.stdout + locked.stderr
    assert "Connection failed!" in locked.stdout
    assert "in namespace locked this identity cannot run Jobs: cannot create jobs.batch" in (
        " ".join(locked.stdout.split())  # the console wraps long lines
    )
