"""KubeJobOperator.execute against the simulated cluster, outside a DAG run.

The end-to-end tests (tests/e2e/test_job_scenarios.py) run the same cases through real Airflow;
these call the operator directly to look at what it sends: nothing at all for bad input, and
for a Job of the same name that another task created, a refusal that leaves it untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs import KubeJobOperator
from airflow_k8s_jobs.errors import InvalidInputError
from simulated_k8s_cluster import SimulatedCluster

CONN_ID = "sim_operator"
RUN_ID = "manual__2026-11-01T00:00:00+00:00"


class FakeTaskInstance:
    """The parts of a task instance the operator reads, and the XComs it pushes."""

    def __init__(self, task_id: str, try_number: int = 1) -> None:
        self.dag_id = "operator_tests"
        self.task_id = task_id
        self.run_id = RUN_ID
        self.map_index = -1
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path) -> str:
    extra = {
        "kubeconfig_path": str(simulated_kubeconfig),
        "namespace": "batch",
        "allowed_namespaces": ["batch"],
    }
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "k8sjobs", "extra": extra}),
    )
    return CONN_ID


BAD_INPUT: dict[str, tuple[dict[str, Any], list[str]]] = {
    "malformed YAML text": (
        {"job": "apiVersion: batch/v1\nkind: Job\nspec: [unclosed\n"},
        ["malformed YAML", "line"],
    ),
    "missing manifest file": ({"job": "no/such/job.yaml"}, ["no/such/job.yaml", "not found"]),
    "not a Job": (
        {"job": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}},
        ["Deployment", "batch/v1 Job"],
    ),
    "missing image": ({"cmds": ["python"]}, ["image"]),
    "image with spaces": ({"image": "bad image!!"}, ["bad image!!", "image reference"]),
    "namespace outside the allow-list": (
        {"image": "app:1", "namespace": "kube-system"},
        ["'kube-system'", "allowed_namespaces"],
    ),
    "invalid label key": ({"image": "app:1", "labels": {"team name!": "x"}}, ["team name!"]),
    "invalid label value": ({"image": "app:1", "labels": {"team": "-bad-"}}, ["-bad-"]),
    "bad env name": ({"image": "app:1", "env": {"A=B": "x"}}, ["A=B"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_sends_nothing(case: str, simulated_cluster: SimulatedCluster, conn: str) -> None:
    kwargs, words = BAD_INPUT[case]
    operator = KubeJobOperator(task_id="bad", cluster_conn_id=conn, **kwargs)
    ti = FakeTaskInstance("bad")
    simulated_cluster.reset_counters()

    with pytest.raises(InvalidInputError) as caught:
        operator.execute({"ti": ti})  # type: ignore[typeddict-item]

    for word in words:
        assert word in str(caught.value), str(caught.value)
    assert simulated_cluster.counters.snapshot() == {}  # not even a dry run
    assert ti.xcom == {}


def test_a_job_of_the_same_name_from_elsewhere_is_left_alone(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    operator = KubeJobOperator(task_id="clash", cluster_conn_id=conn, image="app:1")
    ti = FakeTaskInstance("clash")
    manifest, _ = operator.build_manifest({"ti": ti})  # type: ignore[typeddict-item]
    manifest["metadata"]["labels"] = {"owner": "someone-else"}
    manifest["spec"]["template"]["metadata"]["labels"] = {"owner": "someone-else"}
    foreign = simulated_cluster.create(manifest)
    simulated_cluster.reset_counters()

    with pytest.raises(InvalidInputError, match="already exists but was not created by this"):
        operator.execute({"ti": ti})  # type: ignore[typeddict-item]

    job = simulated_cluster.get("jobs", "batch", foreign["metadata"]["name"])
    assert job is not None and job["metadata"]["uid"] == foreign["metadata"]["uid"]
    assert simulated_cluster.requests(verb="delete") == 0
    assert simulated_cluster.requests(verb="update") == 0
    assert simulated_cluster.requests(verb="patch") == 0


def test_defers_with_no_credentials_in_the_trigger(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    from airflow.exceptions import TaskDeferred

    operator = KubeJobOperator(task_id="defer", cluster_conn_id=conn, image="app:1")
    ti = FakeTaskInstance("defer")
    with pytest.raises(TaskDeferred) as caught:
        operator.execute({"ti": ti})  # type: ignore[typeddict-item]

    classpath, kwargs = caught.value.trigger.serialize()
    assert classpath == "airflow_k8s_jobs.triggers.jobs.KubeJobTrigger"
    text = json.dumps(kwargs)
    assert simulated_cluster.token not in text
    assert "kubeconfig" not in json.dumps({k: v for k, v in kwargs.items() if k != "cluster_name"})
    (job,) = simulated_cluster.list("jobs", "batch")
    assert kwargs["job_uid"] == job["metadata"]["uid"]
    assert {k: ti.xcom[k] for k in ("job_name", "namespace")} == {
        "job_name": job["metadata"]["name"],
        "namespace": "batch",
    }
    # The extra links' data (and on Airflow 3 their URLs): a kubeconfig connection has no GKE
    # console, so no URLs.
    links = {k: v for k, v in ti.xcom.items() if k not in ("job_name", "namespace")}
    assert links["k8s_job_link"]["name"] == job["metadata"]["name"]
    assert all(v == "" for k, v in links.items() if k != "k8s_job_link")
    assert simulated_cluster.token not in json.dumps(ti.xcom)
    assert simulated_cluster.requests(verb="get", resource="jobs") == 0
