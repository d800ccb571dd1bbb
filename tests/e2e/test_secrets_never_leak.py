"""Credentials never leak: with connections that hold a bearer token (in the connection itself,
and in a kubeconfig file that also holds a client key), real Airflow (``dag.test()``) runs a Job
and an Argo Workflow that succeed and two that fail, against a TLS simulated cluster; then
everything the runs produced is searched for the token and the key material:

- the task logs (captured stdout/stderr and log records, and any log file under AIRFLOW_HOME);
- every row of every table of the metadata database (task instances, XComs, rendered template
  fields, triggers — their kwargs decrypted too —, serialized DAGs, DAG runs, the audit log ...);
- the DAGs as Airflow serializes them, and the message of every exception that failed a try.

Also: TLS is verified by default (the connections carry the cluster's CA), and a connection that
turns verification off is warned about once in the log.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from simulated_k8s_cluster import SimulatedCluster
from simulated_k8s_cluster.tls import self_signed
from tests.secret_scan import Secrets, database_text, log_files_text, serialized_dag_text

pytestmark = pytest.mark.e2e

DAG_FILE = Path(__file__).parent / "dags" / "secrets_never_leak.py"

CLUSTER: dict[str, Any] = {
    "timeScale": 0.01,
    "tls": True,
    "namespaces": ["batch"],
    "nodePools": [{"name": "default", "nodes": 1, "capacity": {"cpu": "8", "memory": "32Gi"}}],
    "argo": {},
    "behaviours": [
        {"match": {"image": "secrets/ok:1"}, "seconds": 2, "stdout": "ok"},
        {"match": {"image": "secrets/exit-1:1"}, "seconds": 2, "exitCode": 1, "stdout": "boom"},
    ],
}


def load_dags() -> ModuleType:
    spec = importlib.util.spec_from_file_location("secrets_never_leak", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def secret_cluster(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SimulatedCluster, Secrets]]:
    with SimulatedCluster(copy.deepcopy(CLUSTER)) as cluster:
        cert_pem, key_pem = self_signed("airflow-worker")
        inline = cluster.kubeconfig(namespace="batch")
        set_connection(monkeypatch, "secrets_inline_token", {"kubeconfig": inline})
        with_key = cluster.kubeconfig(namespace="batch")
        with_key["users"][0]["user"]["client-certificate-data"] = base64.b64encode(
            cert_pem
        ).decode()
        with_key["users"][0]["user"]["client-key-data"] = base64.b64encode(key_pem).decode()
        path = tmp_path / "kubeconfig-with-key.yaml"
        path.write_text(yaml.safe_dump(with_key))
        secrets = Secrets(cluster.token, key_pem)
        # The search finds every form in the kubeconfig file and the key itself.
        assert len(secrets.found_in(path.read_text() + key_pem.decode())) == len(secrets.forms)
        set_connection(monkeypatch, "secrets_kubeconfig_file", {"kubeconfig_path": str(path)})
        unverified = copy.deepcopy(with_key)
        del unverified["clusters"][0]["cluster"]["certificate-authority-data"]
        path = tmp_path / "kubeconfig-unverified.yaml"
        path.write_text(yaml.safe_dump(unverified))
        set_connection(
            monkeypatch,
            "secrets_unverified",
            {"kubeconfig_path": str(path), "verify_ssl": False},
        )
        yield cluster, secrets


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, extra: dict[str, Any]) -> None:
    conn = {"conn_type": "k8sjobs", "extra": {"namespace": "batch", **extra}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def trigger_kwargs_text() -> tuple[str, int]:
    """The decrypted kwargs of every trigger row."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        triggers = session.query(Trigger).all()
        return "\n".join(repr(t.kwargs) for t in triggers), len(triggers)


def deferred_triggers_text(cluster: SimulatedCluster, conn_ids: tuple[str, ...]) -> str:
    """The triggers the tasks defer with, serialized as the trigger table stores them, for each
    Job and Workflow the runs created (``dag.test()`` may run triggers without storing rows)."""
    from airflow_k8s_jobs.clusters import KubeClusterHook
    from airflow_k8s_jobs.manifests.names import DAG_ID
    from airflow_k8s_jobs.triggers.argo import ArgoWorkflowTrigger
    from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger
    from airflow_k8s_jobs.waiting import JobTarget, WaitPolicy, WorkflowTarget

    parts = []
    for conn_id in conn_ids:
        cluster_name = KubeClusterHook(conn_id).settings.display_name
        selector = {DAG_ID: f"secrets_{conn_id}"}
        for job in cluster.list("jobs", "batch", selector):
            meta = job["metadata"]
            target = JobTarget(conn_id, cluster_name, "batch", meta["name"], meta["uid"])
            trigger = KubeJobTrigger.for_target(target, WaitPolicy(), delete_on_kill=True)
            parts.append(repr(trigger.serialize()))
        for wf in cluster.list("workflows", "batch", selector):
            meta = wf["metadata"]
            target = WorkflowTarget(conn_id, cluster_name, "batch", meta["name"], meta["uid"])
            trigger = ArgoWorkflowTrigger.for_target(
                target, shutdown_on_kill="Terminate", deadline=None
            )
            parts.append(repr(trigger.serialize()))
    assert len(parts) == 4 * len(conn_ids), parts
    return "\n".join(parts)


def test_no_token_or_key_in_anything_a_run_leaves(
    secret_cluster: tuple[SimulatedCluster, Secrets],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster, secrets = secret_cluster
    module = load_dags()
    caplog.set_level(logging.DEBUG)
    capsys.readouterr()
    runs = {}
    for conn_id in module.CONNECTIONS:
        dag = getattr(module, f"secrets_{conn_id}")
        runs[conn_id] = dag.test()
    out = capsys.readouterr()
    logs = out.out + out.err + "\n".join(r.getMessage() for r in caplog.records)

    # The runs did what they should: TLS verified with the CA, so each success succeeded.
    for conn_id, dag_run in runs.items():
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        assert states == {
            "job_ok": "success",
            "argo_ok": "success",
            "job_fails": "failed",
            "argo_fails": "failed",
        }, (conn_id, states, logs[-4000:])
    failures = module.FAILURES
    assert {task for _, task in failures} == {"job_fails", "argo_fails"}
    assert cluster.writes("jobs") >= 6 and cluster.writes("workflows") >= 6

    from airflow import settings

    database, rows = database_text(settings.engine)
    triggers, _ = trigger_kwargs_text()  # dag.test() may run triggers without storing rows
    searched = {
        "task logs": logs,
        "log files": log_files_text(Path(os.environ["AIRFLOW_HOME"])),
        "metadata database": database,
        "trigger rows (decrypted kwargs)": triggers,
        "triggers as deferred": deferred_triggers_text(cluster, module.CONNECTIONS),
        "exception messages": "\n".join(m for ms in failures.values() for m in ms),
        "serialized DAGs": "\n".join(
            serialized_dag_text(getattr(module, f"secrets_{c}")) for c in module.CONNECTIONS
        ),
    }
    leaks = secrets.leaks(searched)
    assert not leaks, leaks
    # What was searched is not empty: the rows the runs left.
    assert rows["xcom"] > 0 and rows["rendered_task_instance_fields"] > 0, rows
    assert rows["task_instance"] >= 12, rows
    assert "job_name" in database and "rendered_manifest" not in secrets.found_in(database)

    # verify_ssl=false: one warning for the connection, however many tasks used it.
    warned = "'secrets_unverified' turns TLS verification off"
    records = [r for r in caplog.records if warned in r.getMessage()]
    printed = (out.out + out.err).count(warned)
    assert (len(records), printed) in ((1, 0), (0, 1), (1, 1)), (records, printed, logs[-3000:])
    assert all(r.levelno == logging.WARNING for r in records)
    assert "turns TLS verification off" not in logs.replace(warned, "")
