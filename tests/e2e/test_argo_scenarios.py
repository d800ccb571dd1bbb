"""ArgoWorkflowOperator scenarios run by real Airflow (``dag.test()``) against the simulated
cluster's Argo controller.

Each test runs one DAG of ``dags/argo_scenarios.py`` on Airflow 2.11 or 3.x (whichever this
interpreter has) and checks the outcome in Airflow (task states, tries, XCom), in the task log
(``dag.test()`` prints it; read with ``capsys``) and on the cluster (Workflows, their nodes and
pods).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import demo  # scripts/demo.py (pytest's pythonpath)
import kubernetes
import pytest

from airflow_k8s_jobs import ArgoWorkflowOperator
from airflow_k8s_jobs._compat import AirflowTaskTimeout
from airflow_k8s_jobs.manifests.names import DAG_ID, TRY_NUMBER
from simulated_k8s_cluster import SimulatedCluster

from .conftest import E2E_CLUSTER, EXAMPLE_DAGS, load_dag

pytestmark = pytest.mark.e2e

SCENARIOS = Path(__file__).parent / "dags" / "argo_scenarios.py"
NAMESPACE = "batch"
BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"
POSTPONED = "Workflow processing has been postponed"


class Run:
    def __init__(self, dag_run: Any, log: str) -> None:
        self.dag_run = dag_run
        self.log = log

    @property
    def state(self) -> str:
        return str(self.dag_run.state)

    def ti(self, task_id: str) -> Any:
        return next(t for t in self.dag_run.get_task_instances() if t.task_id == task_id)

    def error(self, kind: str) -> str:
        """The message of the first ``kind`` exception in the task log."""
        found = re.search(rf"{kind}: .*?(?=\n\S*\d{{4}}-\d\d-\d\d[ T]\d\d:\d\d|\Z)", self.log, re.S)
        assert found, self.log[-4000:]
        return found.group(0)


def run_dag(
    dag_id: str, capsys: pytest.CaptureFixture[str], logical_date: datetime | None = None
) -> Run:
    dag = load_dag(str(SCENARIOS), dag_id)
    capsys.readouterr()
    kwargs: dict[str, Any] = {}
    if logical_date is not None:
        if "logical_date" in dag.test.__code__.co_varnames:  # Airflow 3
            kwargs = {"logical_date": logical_date, "run_after": logical_date}
        else:
            kwargs = {"execution_date": logical_date}
    dag_run = dag.test(**kwargs)
    out = capsys.readouterr()
    return Run(dag_run, out.out + out.err)


def workflows_of(cluster: SimulatedCluster, dag_id: str) -> list[dict[str, Any]]:
    found = cluster.list("workflows", NAMESPACE, {DAG_ID: dag_id})
    return sorted(found, key=lambda w: w["metadata"]["labels"][TRY_NUMBER])


def nodes_by_display_name(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["displayName"]: n for n in workflow["status"]["nodes"].values()}


@pytest.fixture
def argo_cluster(e2e_cluster: SimulatedCluster) -> SimulatedCluster:
    demo.install_workflow_templates(e2e_cluster, EXAMPLE_DAGS)
    e2e_cluster.add_behaviour({"match": {"image": "scn/argo:1"}, "seconds": 5, "stdout": "ok"})
    e2e_cluster.add_behaviour(
        {"match": {"image": "scn/argo-one:1"}, "seconds": 5, "stdout": "one step"}
    )
    return e2e_cluster


@contextlib.contextmanager
def in_background(action: Callable[[], None]) -> Iterator[list[BaseException]]:
    """Run ``action`` on a thread while the DAG runs; re-raise its failure afterwards."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield errors
    thread.join(timeout=60)
    assert not thread.is_alive(), "the background action did not finish"


# --- failure -----------------------------------------------------------------------------------


def test_failing_step_fails_the_task_with_node_names_and_log_lines(
    argo_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    argo_cluster.add_behaviour(
        {
            "match": {"image": "scn/argo:1", "args": "work b"},
            "seconds": 3,
            "exitCode": 3,
            "stdout": [f"part b line {i}" for i in range(30)],
        }
    )
    run = run_dag("scn_argo_failure", capsys)

    assert run.state == "failed"
    message = run.error("WorkflowFailedError")
    (wf,) = workflows_of(argo_cluster, "scn_argo_failure")
    name = wf["metadata"]["name"]
    assert f"Workflow {NAMESPACE}/{name} on " in message
    assert "work(1:b)" in message
    assert "work(0:a)" not in message and "work(2:c)" not in message
    assert "exit code 3" in message.lower() or "Error (exit code 3)" in message
    # The failed pod's last 20 log lines, not the ones before.
    assert "part b line 29" in message and "part b line 10" in message
    assert "part b line 9\n" not in message
    assert wf["status"]["phase"] == "Failed"
    nodes = nodes_by_display_name(wf)
    assert nodes["work(1:b)"]["phase"] == "Failed"
    assert nodes["work(0:a)"]["phase"] == nodes["work(2:c)"]["phase"] == "Succeeded"
    # Every pod's log is in the task log, prefixed by its pod and node.
    assert re.search(r"\| part b line 0\b", run.log)


# --- waiting ------------------------------------------------------------------------------------


@pytest.fixture
def single_slot_cluster(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimulatedCluster]:
    """The e2e cluster with an Argo controller that runs one Workflow at a time."""
    with SimulatedCluster({**E2E_CLUSTER, "argo": {"parallelism": 1}}) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml")
        conn = {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig_path": str(kubeconfig), "namespace": NAMESPACE},
        }
        monkeypatch.setenv("AIRFLOW_CONN_GKE_BATCH", json.dumps(conn))
        cluster.add_behaviour({"match": {"image": "scn/argo-one:1"}, "seconds": 5})
        yield cluster


def holder_workflow() -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "nightly-reindex", "namespace": NAMESPACE},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "metadata": {"annotations": {BEHAVIOUR: json.dumps({"seconds": 100000})}},
                    "container": {"image": "other-team/reindex:7"},
                }
            ],
        },
    }


def test_a_pending_workflow_keeps_the_task_waiting(
    single_slot_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = single_slot_cluster
    cluster.create(holder_workflow())
    cluster.wait_for(
        lambda: (
            (cluster.get("workflows", NAMESPACE, "nightly-reindex") or {})
            .get("status", {})
            .get("phase")
            == "Running"
        ),
        message="the other team's Workflow to run",
    )
    seen_pending: list[float] = []

    def release_when_ours_waits() -> None:
        def ours_pending() -> bool:
            found = workflows_of(cluster, "scn_argo_one")
            status = found[0].get("status") or {} if found else {}
            return status.get("phase") == "Pending" and POSTPONED in status.get("message", "")

        cluster.wait_for(ours_pending, timeout=30, message="our Workflow to be postponed")
        seen_pending.append(cluster.now())
        # Let a second pass while ours stays Pending, then stop the other Workflow.
        target = cluster.now() + 1
        cluster.wait_for(lambda: cluster.now() >= target, timeout=30, message="a second")
        assert ours_pending()
        api = cluster.sync_api_client()
        try:
            kubernetes.client.CustomObjectsApi(api).patch_namespaced_custom_object(
                "argoproj.io",
                "v1alpha1",
                NAMESPACE,
                "workflows",
                "nightly-reindex",
                {"spec": {"shutdown": "Terminate"}},
            )
        finally:
            api.close()

    with in_background(release_when_ours_waits) as errors:
        run = run_dag("scn_argo_one", capsys)

    assert not errors, errors
    assert seen_pending
    assert run.state == "success", run.log[-4000:]
    assert f"Pending: {POSTPONED}" in run.log
    (ours,) = workflows_of(cluster, "scn_argo_one")
    holder = cluster.get("workflows", NAMESPACE, "nightly-reindex")
    assert holder is not None
    assert holder["status"]["message"] == "Stopped with strategy 'Terminate'"
    assert ours["status"]["startedAt"] >= holder["status"]["finishedAt"]


def test_a_workflow_deleted_behind_our_back_fails_the_task_saying_so(
    argo_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    argo_cluster.add_behaviour({"match": {"image": "scn/argo-one:1"}, "seconds": 100000})

    def delete_when_running() -> None:
        def running() -> list[dict[str, Any]]:
            found = workflows_of(argo_cluster, "scn_argo_one")
            return [w for w in found if (w.get("status") or {}).get("phase") == "Running"]

        (wf,) = argo_cluster.wait_for(running, timeout=30, message="the Workflow to run")
        argo_cluster.delete("workflows", NAMESPACE, wf["metadata"]["name"])

    with in_background(delete_when_running) as errors:
        run = run_dag("scn_argo_one", capsys)

    assert not errors, errors
    assert run.state == "failed"
    message = run.error("ObjectGoneError")
    assert "was deleted while the task waited for it" in message
    assert workflows_of(argo_cluster, "scn_argo_one") == []


def test_synchronous_mode_waits_in_the_worker(
    argo_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_dag("scn_argo_sync", capsys)
    assert run.state == "success", run.log[-4000:]
    result = run.ti("sync").xcom_pull(task_ids="sync")
    assert result["phase"] == "Succeeded"
    (wf,) = workflows_of(argo_cluster, "scn_argo_sync")
    assert result["name"] == wf["metadata"]["name"]
    assert run.ti("sync").xcom_pull(task_ids="sync", key="workflow_name") == result["name"]


def _timed_out_run(
    argo_cluster: SimulatedCluster, dag_id: str, capsys: pytest.CaptureFixture[str]
) -> str:
    """Run ``dag_id``, whose Workflow outlives the task's execution_timeout; the error raised."""
    argo_cluster.add_behaviour({"match": {"image": "scn/argo-one:1"}, "seconds": 100000})
    try:
        run = run_dag(dag_id, capsys)
    except AirflowTaskTimeout as exc:  # Airflow 2.11's dag.test() re-raises a task timeout
        raised = str(exc)
    else:
        assert run.state == "failed"
        raised = run.error("AirflowTaskTimeout")
    assert "was still running when the task's execution_timeout ran out" in raised
    return raised


def test_execution_timeout_stops_the_workflow(
    argo_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    raised = _timed_out_run(argo_cluster, "scn_argo_timeout", capsys)
    assert "Stopped Workflow" in raised and "(Terminate) so that it does not keep running" in raised
    (wf,) = workflows_of(argo_cluster, "scn_argo_timeout")
    assert wf["spec"]["shutdown"] == "Terminate"
    name = wf["metadata"]["name"]
    final = argo_cluster.wait_for(
        lambda: (
            (argo_cluster.get("workflows", NAMESPACE, name) or {})
            .get("status", {})
            .get("finishedAt")
            and argo_cluster.get("workflows", NAMESPACE, name)
        ),
        message="the Workflow to stop",
    )
    assert final["status"]["phase"] == "Failed"
    assert final["status"]["message"] == "Stopped with strategy 'Terminate'"


def test_delete_on_give_up_false_leaves_the_timed_out_workflow_running(
    argo_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    raised = _timed_out_run(argo_cluster, "scn_argo_timeout_kept", capsys)
    assert "Stopped" not in raised
    (wf,) = workflows_of(argo_cluster, "scn_argo_timeout_kept")
    assert "shutdown" not in wf["spec"]
    assert wf["status"]["phase"] == "Running" and not wf["status"].get("finishedAt")
    assert argo_cluster.writes("workflows") == 1  # the create only


# --- retries and re-attach ----------------------------------------------------------------------


def test_each_try_submits_a_fresh_workflow(
    argo_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    argo_cluster.add_behaviour(
        {"match": {"image": "scn/argo-one:1", "args": "try 1"}, "seconds": 2, "exitCode": 1}
    )
    run = run_dag("scn_argo_retry", capsys)

    assert run.state == "success", run.log[-4000:]
    assert run.ti("flaky").try_number == 2
    first, second = workflows_of(argo_cluster, "scn_argo_retry")
    assert [w["metadata"]["labels"][TRY_NUMBER] for w in (first, second)] == ["1", "2"]
    assert first["metadata"]["name"] != second["metadata"]["name"]
    # The failed try's Workflow stays for inspection (until its TTL).
    assert first["status"]["phase"] == "Failed"
    assert second["status"]["phase"] == "Succeeded"
    assert first["spec"]["ttlStrategy"] == second["spec"]["ttlStrategy"]


def test_reattaches_to_the_workflow_a_crashed_worker_submitted(
    argo_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    logical_date = datetime(2026, 11, 3, 4, 5, 6, tzinfo=timezone.utc)
    run_id = f"manual__{logical_date.isoformat()}"
    # What the first worker did before dying: build try 1's Workflow and submit it.
    dag = load_dag(str(SCENARIOS), "scn_argo_one")
    operator: ArgoWorkflowOperator = dag.get_task("one")
    ti = SimpleNamespace(
        dag_id="scn_argo_one", task_id="one", run_id=run_id, map_index=-1, try_number=1
    )
    manifest, namespace = operator.build_manifest({"ti": ti})  # type: ignore[typeddict-item]
    api = argo_cluster.sync_api_client()
    try:
        created = kubernetes.client.CustomObjectsApi(api).create_namespaced_custom_object(
            "argoproj.io", "v1alpha1", namespace, "workflows", manifest
        )
    finally:
        api.close()
    argo_cluster.reset_counters()

    run = run_dag("scn_argo_one", capsys, logical_date=logical_date)

    assert run.dag_run.run_id == run_id
    assert run.state == "success", run.log[-4000:]
    (wf,) = workflows_of(argo_cluster, "scn_argo_one")
    assert wf["metadata"]["uid"] == created["metadata"]["uid"]
    assert "Re-attached to Workflow batch/" in run.log
    # The dry run, then one create (409 AlreadyExists), then one GET to check the labels.
    assert argo_cluster.requests(verb="create", resource="workflows") == 2
    result = run.ti("one").xcom_pull(task_ids="one")
    assert result["uid"] == created["metadata"]["uid"]


# --- bad input ----------------------------------------------------------------------------------

BAD_INPUT = {
    "undeclared parameter": ("scn_argo_undeclared", ["sise", "did you mean size?"]),
    "undeclared template parameter": (
        "scn_argo_undeclared_template",
        ["regoin", "did you mean region?", "daily-report"],
    ),
    "missing template": ("scn_argo_missing_template", ["daily-reprot", "daily-report"]),
    "unknown template reference": ("scn_argo_bad_reference", ["onyl", "only"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_fails_before_anything_is_created(
    case: str, argo_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    dag_id, words = BAD_INPUT[case]
    run = run_dag(dag_id, capsys)

    assert run.state == "failed"
    message = run.error("InvalidInputError")
    for word in words:
        assert word in message, message
    assert "nothing was created" in message
    assert argo_cluster.requests(verb="create", resource="workflows") == 0
    assert argo_cluster.list("workflows", NAMESPACE) == []
