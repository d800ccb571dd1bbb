"""Every trigger round-trips through ``serialize()``: what the triggerer stores must rebuild it."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from airflow_k8s_jobs.triggers.argo import ArgoWorkflowTrigger
from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger

TRIGGERS: list[Any] = [
    KubeJobTrigger(
        cluster_conn_id="gke_batch",
        cluster_name="GKE cluster p/europe-west1/batch",
        namespace="batch",
        job_name="etl-train-t1-0123abcd",
        job_uid="7d5c0f9e-0000-4000-8000-000000000001",
        queued=True,
        capacity_timeout=1800.0,
        image_pull_grace=120.0,
        delete_on_kill=False,
    ),
    KubeJobTrigger("c", "kubeconfig", "default", "j", "u", capacity_timeout=None),
    ArgoWorkflowTrigger(
        cluster_conn_id="gke_batch",
        cluster_name="GKE cluster p/europe-west1/batch",
        namespace="argo",
        workflow_name="etl-score-t1-0123abcd",
        workflow_uid="7d5c0f9e-0000-4000-8000-000000000002",
        shutdown_on_kill="Stop",
        deadline=1_800_000_000.5,
    ),
    ArgoWorkflowTrigger("c", "kubeconfig", "default", "w", "u", shutdown_on_kill=None),
]


@pytest.mark.parametrize("trigger", TRIGGERS, ids=lambda t: f"{type(t).__name__}-{t.target.name}")
def test_serialize_round_trip(trigger: Any) -> None:
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert all(isinstance(v, (str, int, float, bool, type(None))) for v in kwargs.values())
    assert not any("token" in k or "kubeconfig" in k for k in kwargs)
