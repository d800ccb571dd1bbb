"""The Argo example DAGs in ``example_dags/`` run by real Airflow (``dag.test()``, triggers
inline) against the cluster ``make demo`` uses, with its Argo controller and the example
WorkflowTemplates of ``example_dags/workflows/`` applied.

Each test checks the outcome in Airflow (task states, XCom), in the task log and on the cluster
(the Workflow as submitted, its nodes and its pods).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import demo  # scripts/demo.py (pytest's pythonpath)
import kubernetes
import pytest
import yaml

from airflow_k8s_jobs.manifests.names import DAG_ID, MANAGED_BY, RUN_ID, TASK_ID, TRY_NUMBER
from simulated_k8s_cluster import SimulatedCluster

from .conftest import EXAMPLE_DAGS, load_dag

pytestmark = pytest.mark.e2e

NAMESPACE = "batch"
LOGICAL_DATE = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
SCHEDULED_TIME = "workflows.argoproj.io/scheduled-time"


@pytest.fixture
def argo_examples_cluster(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimulatedCluster]:
    with SimulatedCluster(demo.EXAMPLES_CLUSTER) as cluster:
        demo.install_workflow_templates(cluster, EXAMPLE_DAGS)
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml")
        conn = {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig_path": str(kubeconfig), "namespace": NAMESPACE},
        }
        monkeypatch.setenv("AIRFLOW_CONN_GKE_BATCH", json.dumps(conn))
        yield cluster


class Run:
    def __init__(self, dag_run: Any, log: str) -> None:
        self.dag_run = dag_run
        self.log = log

    @property
    def states(self) -> dict[str, str]:
        return {ti.task_id: str(ti.state) for ti in self.dag_run.get_task_instances()}

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        ti = next(t for t in self.dag_run.get_task_instances() if t.task_id == task_id)
        return ti.xcom_pull(task_ids=task_id, key=key)


def run_example(
    file_name: str,
    dag_id: str,
    capsys: pytest.CaptureFixture[str],
    logical_date: datetime = LOGICAL_DATE,
    conf: dict[str, Any] | None = None,
) -> Run:
    dag = load_dag(file_name, dag_id)
    capsys.readouterr()
    kwargs: dict[str, Any] = {"run_conf": conf} if conf else {}
    if "logical_date" in dag.test.__code__.co_varnames:  # Airflow 3
        dag_run = dag.test(logical_date=logical_date, run_after=logical_date, **kwargs)
    else:  # Airflow 2.11
        dag_run = dag.test(execution_date=logical_date, **kwargs)
    out = capsys.readouterr()
    run = Run(dag_run, out.out + out.err)
    assert str(dag_run.state) == "success", run.log[-5000:]
    return run


def workflows_of(cluster: SimulatedCluster, dag_id: str) -> list[dict[str, Any]]:
    found = cluster.list("workflows", NAMESPACE, {DAG_ID: dag_id})
    return sorted(found, key=lambda w: w["metadata"]["creationTimestamp"])


def nodes(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Nodes by name relative to the Workflow (``[0].task1``)."""
    name = workflow["metadata"]["name"]
    return {n["name"].removeprefix(name): n for n in workflow["status"]["nodes"].values()}


@contextlib.contextmanager
def recorded_pods(cluster: SimulatedCluster) -> Iterator[dict[str, dict[str, Any]]]:
    """Every Workflow pod the cluster had while the block ran, as last seen through a watch
    (the example Workflows' pod GC deletes pods a few wall seconds after they succeed)."""
    pods: dict[str, dict[str, Any]] = {}
    stop = threading.Event()
    api = cluster.sync_api_client()
    watch = kubernetes.watch.Watch()

    def record() -> None:
        core = kubernetes.client.CoreV1Api(api)
        while not stop.is_set():
            try:
                for event in watch.stream(
                    core.list_namespaced_pod,
                    NAMESPACE,
                    label_selector=WORKFLOW_LABEL,
                    timeout_seconds=1,
                ):
                    pods[event["raw_object"]["metadata"]["name"]] = event["raw_object"]
            except Exception:  # the stream broke, or was stopped: watch again from a list
                continue

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    try:
        yield pods
    finally:
        stop.set()
        watch.stop()
        thread.join(timeout=10)
        api.close()


def pod_args(pods: dict[str, dict[str, Any]], workflow: dict[str, Any]) -> dict[str, str]:
    """Each pod's command line, by its node's relative name."""
    name = workflow["metadata"]["name"]
    found = {}
    for pod in pods.values():
        if pod["metadata"]["labels"].get(WORKFLOW_LABEL) != name:
            continue
        node = pod["metadata"]["annotations"]["workflows.argoproj.io/node-name"]
        main = pod["spec"]["containers"][0]
        found[node.removeprefix(name)] = " ".join([*main.get("command", []), *main["args"]])
    return found


# --- argo_seed_workflow.py -----------------------------------------------------------------------


def test_seed_workflow_unmodified_with_max_from_the_dag_params(
    argo_examples_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with recorded_pods(argo_examples_cluster) as pods:
        run = run_example("argo_seed_workflow.py", "argo_seed_workflow", capsys)
    assert run.states == {"workflow_sample": "success", "report": "success"}

    (wf,) = workflows_of(argo_examples_cluster, "argo_seed_workflow")
    source = yaml.safe_load((EXAMPLE_DAGS / "workflows" / "workflow.yml").read_text())
    spec = wf["spec"]
    # The seed's templates reach the cluster exactly as written, Argo expressions included.
    assert spec["templates"] == source["spec"]["templates"]
    assert spec["entrypoint"] == source["spec"]["entrypoint"]
    # -p max=3 (the DAG's params default), replacing the file's 5.
    assert spec["arguments"]["parameters"] == [{"name": "max", "value": "3"}]
    # Identity, schedule and cleanup defaults.
    meta = wf["metadata"]
    assert "generateName" not in meta
    labels = meta["labels"]
    assert labels[TASK_ID] == "workflow_sample" and labels[TRY_NUMBER] == "1"
    assert labels[RUN_ID]
    assert all(labels[k] == v for k, v in MANAGED_BY.items())
    assert meta["annotations"][SCHEDULED_TIME].endswith("Z")
    assert spec["ttlStrategy"] == {"secondsAfterCompletion": 86400}
    assert spec["podGC"] == {"strategy": "OnWorkflowSuccess", "deleteDelayDuration": "5m"}

    # The fan-out: three branches, each nested steps task2 (R) then task3 (Python).
    assert wf["status"]["phase"] == "Succeeded"
    by_name = nodes(wf)
    branches = sorted(n for n in by_name if re.fullmatch(r"\[1\]\.task2-3\(\d+:\d+\)", n))
    assert branches == ["[1].task2-3(0:1)", "[1].task2-3(1:2)", "[1].task2-3(2:3)"]
    for branch in branches:
        assert by_name[branch]["type"] == "Steps"
        assert by_name[f"{branch}[0].task2"]["type"] == "Pod"
        assert by_name[f"{branch}[1].task3"]["phase"] == "Succeeded"
    args = pod_args(pods, wf)
    assert args["[0].task1"] == "sh -c python pre-task.py 3  > /tmp/results"
    for i, item in enumerate((1, 2, 3)):
        branch = f"[1].task2-3({i}:{item})"
        assert args[f"{branch}[0].task2"] == f"sh -c Rscript task.R {item} > /tmp/result"
        assert args[f"{branch}[1].task3"] == f"sh -c python post-task.py {item * item}"

    # XCom: the output parameters, and what the downstream task made of them.
    result = run.xcom("workflow_sample")
    assert result["name"] == meta["name"] and result["phase"] == "Succeeded"
    assert result["node_outputs"]["[0].task1"] == {"results": "[1, 2, 3]"}
    assert result["node_outputs"]["[1].task2-3(1:2)[0].task2"] == {"result": "4"}
    assert run.xcom("report") == {
        "workflow": meta["name"],
        "fan_out": 3,
        "task2": {
            "[1].task2-3(0:1)[0].task2": "1",
            "[1].task2-3(1:2)[0].task2": "4",
            "[1].task2-3(2:3)[0].task2": "9",
        },
    }
    # The task log: a status line while running, then every pod's log.
    assert f"Workflow {NAMESPACE}/{meta['name']} on " in run.log
    assert "Running" in run.log
    assert "[1] 9" in run.log  # task2's R output for item 3


def test_seed_workflow_fan_out_follows_a_run_conf(
    argo_examples_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_example(
        "argo_seed_workflow.py",
        "argo_seed_workflow",
        capsys,
        logical_date=LOGICAL_DATE + timedelta(hours=1),
        conf={"max": 5},
    )
    (wf,) = workflows_of(argo_examples_cluster, "argo_seed_workflow")
    assert wf["spec"]["arguments"]["parameters"] == [{"name": "max", "value": "5"}]
    assert run.xcom("report")["fan_out"] == 5


# --- argo_workflow_templates.py ------------------------------------------------------------------


def test_submits_from_workflow_template_and_cluster_workflow_template(
    argo_examples_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with recorded_pods(argo_examples_cluster) as pods:
        run = run_example("argo_workflow_templates.py", "argo_workflow_templates", capsys)
    assert run.states == {"daily_report": "success", "cleanup_scratch": "success"}

    report, cleanup = workflows_of(argo_examples_cluster, "argo_workflow_templates")
    ds = run.dag_run.logical_date.strftime("%Y-%m-%d")
    assert report["spec"]["workflowTemplateRef"] == {"name": "daily-report"}
    assert report["metadata"]["labels"]["workflows.argoproj.io/workflow-template"] == (
        "daily-report"
    )
    assert report["spec"]["arguments"]["parameters"] == [
        {"name": "date", "value": ds},
        {"name": "region", "value": "europe-west1"},
    ]
    assert report["status"]["phase"] == "Succeeded"
    assert cleanup["spec"]["workflowTemplateRef"] == {"name": "gcs-cleanup", "clusterScope": True}
    params = {p["name"]: p["value"] for p in cleanup["spec"]["arguments"]["parameters"]}
    assert params["prefix"] == f"gs://my-project-scratch/daily-report/{ds}/"
    assert cleanup["status"]["phase"] == "Succeeded"
    args = pod_args(pods, report)
    assert any(f"--date {ds} --region europe-west1" in a for a in args.values())

    # The template's global output parameter, and the node outputs, in XCom.
    result = run.xcom("daily_report")
    assert json.loads(result["outputs"]["summary"]) == {"rows": 48210, "top_region": "europe-west1"}
    assert {"rows": "48210"} in result["node_outputs"].values()


# --- argo_backfill.py ----------------------------------------------------------------------------


def test_backfill_submits_one_workflow_per_day(
    argo_examples_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    days = [datetime(2026, 11, d, tzinfo=timezone.utc) for d in (1, 2, 3)]
    with recorded_pods(argo_examples_cluster) as pods:
        runs = [run_example("argo_backfill.py", "argo_backfill", capsys, day) for day in days]

    workflows = workflows_of(argo_examples_cluster, "argo_backfill")
    assert len(workflows) == 3
    assert len({w["metadata"]["name"] for w in workflows}) == 3
    for day, run, wf in zip(days, runs, workflows, strict=True):
        ds = day.strftime("%Y-%m-%d")
        params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
        assert params == {"day": ds, "next-day": (day + timedelta(days=1)).strftime("%Y-%m-%d")}
        assert wf["status"]["phase"] == "Succeeded"
        scheduled = wf["metadata"]["annotations"][SCHEDULED_TIME]
        end = run.dag_run.data_interval_end.astimezone(timezone.utc)
        assert scheduled == end.strftime("%Y-%m-%dT%H:%M:%SZ")
        # Airflow rendered {{ run_id }}; Argo substituted {{item}} and {{workflow.name}}.
        args = pod_args(pods, wf)
        loads = sorted(a for n, a in args.items() if ".load(" in n)
        assert len(loads) == 3
        for table, line in zip(("clicks", "orders", "views"), loads, strict=True):
            assert f"--table {table} --from {ds}" in line
            assert f"--run {wf['metadata']['name']}" in line
            assert f"--airflow-run {run.dag_run.run_id}" in line
