"""The operators' contract with Airflow, on Airflow 2.11 and 3.x (whichever this interpreter has),
with the DAGs of ``dags/operator_contract.py`` run by ``dag.test()`` against the simulated
cluster:

- only the manifest argument (``job``, ``workflow``) is read as a template file: ``"result.json"``
  in the arguments, env, labels, annotations or Argo parameters reaches the cluster as written;
- the manifest as submitted is stored with the rendered template fields (what the UI shows under
  "Rendered Template"), sensitive values masked;
- bad input and pods that cannot run fail the task on its first try whatever its ``retries``;
  a Job whose container exits non-zero is retried.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_k8s_jobs.manifests.names import DAG_ID, MAP_INDEX, TASK_ID, TRY_NUMBER
from airflow_k8s_jobs.manifests.workflows import DEFAULT_POD_GC, DEFAULT_TTL_STRATEGY
from simulated_k8s_cluster import SimulatedCluster

from .conftest import load_dag

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).parent / "dags"
CONTRACT = DAGS / "operator_contract.py"
NAMESPACE = "batch"


class Run:
    def __init__(self, dag_run: Any, log: str) -> None:
        self.dag_run = dag_run
        self.log = log

    @property
    def state(self) -> str:
        return str(self.dag_run.state)

    @property
    def ds(self) -> str:
        """The run's ``{{ ds }}``."""
        when = getattr(self.dag_run, "logical_date", None) or self.dag_run.execution_date
        return str(when.strftime("%Y-%m-%d"))

    def tis(self, task_id: str) -> list[Any]:
        found = [t for t in self.dag_run.get_task_instances() if t.task_id == task_id]
        return sorted(found, key=lambda t: t.map_index)

    def ti(self, task_id: str) -> Any:
        (ti,) = self.tis(task_id)
        return ti

    def errors(self, kind: str) -> list[str]:
        """The messages of every ``kind`` exception in the task logs."""
        pattern = rf"{kind}: .*?(?=\n\S*\d{{4}}-\d\d-\d\d[ T]\d\d:\d\d|\Z)"
        return re.findall(pattern, self.log, re.S)

    def error(self, kind: str, *words: str) -> str:
        """The first ``kind`` exception message that holds every one of ``words``."""
        for message in self.errors(kind):
            if all(word in message for word in words):
                return message
        raise AssertionError(f"no {kind} with {words} in the task logs:\n{self.log[-5000:]}")


def run_dag(dag_id: str, capsys: pytest.CaptureFixture[str]) -> Run:
    dag = load_dag(str(CONTRACT), dag_id)
    capsys.readouterr()
    dag_run = dag.test()
    out = capsys.readouterr()
    return Run(dag_run, out.out + out.err)


def rendered_fields(ti: Any) -> dict[str, Any]:
    """What Airflow stored as the task instance's rendered template fields (RTIF)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    fields = RenderedTaskInstanceFields.get_templated_fields(ti)
    assert fields, f"no rendered template fields stored for {ti}"
    return dict(fields)


def rendered_manifest(ti: Any) -> dict[str, Any]:
    text = rendered_fields(ti)["rendered_manifest"]
    assert isinstance(text, str), text
    manifest = yaml.safe_load(text)
    assert isinstance(manifest, dict), text
    return manifest


def objects_of(
    cluster: SimulatedCluster, resource: str, dag_id: str, task_id: str
) -> list[dict[str, Any]]:
    found = cluster.list(resource, NAMESPACE, {DAG_ID: dag_id, TASK_ID: task_id})
    return sorted(
        found,
        key=lambda o: (
            int(o["metadata"]["labels"].get(MAP_INDEX, -1)),
            int(o["metadata"]["labels"][TRY_NUMBER]),
        ),
    )


def container_of(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return dict(container)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env") or []}


def restricted_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """``gke_batch_restricted``: the e2e cluster, with only namespace ``batch`` allowed."""
    import os

    restricted = json.loads(os.environ["AIRFLOW_CONN_GKE_BATCH"])
    restricted["extra"]["allowed_namespaces"] = [NAMESPACE]
    monkeypatch.setenv("AIRFLOW_CONN_GKE_BATCH_RESTRICTED", json.dumps(restricted))


@pytest.fixture
def contract_cluster(e2e_cluster: SimulatedCluster) -> SimulatedCluster:
    e2e_cluster.add_behaviour({"match": {"image": "contract/app:1"}, "seconds": 2, "stdout": "ok"})
    e2e_cluster.add_behaviour({"match": {"image": "contract/argo:1"}, "seconds": 2})
    e2e_cluster.add_behaviour(
        {"match": {"image": "contract/exit-1:1"}, "seconds": 2, "exitCode": 1, "stdout": "boom"}
    )
    e2e_cluster.add_behaviour(
        {"match": {"image": "contract/unpullable:1"}, "imagePull": "ErrImagePull"}
    )
    return e2e_cluster


# --- (a) only the manifest is a template file ---------------------------------------------------


@pytest.fixture
def templating_run(contract_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]) -> Run:
    run = run_dag("contract_templating", capsys)
    assert run.state == "success", run.log[-5000:]
    return run


def test_strings_ending_in_file_suffixes_reach_the_cluster_as_written(
    templating_run: Run, contract_cluster: SimulatedCluster
) -> None:
    (job,) = objects_of(contract_cluster, "jobs", "contract_templating", "quick")
    container = container_of(job)
    assert container["command"] == ["/app/run", "pipeline.yml"]
    assert container["args"] == ["--out", "result.json", "--day", templating_run.ds]
    env = env_of(container)
    assert env["CONFIG"] == "settings.yaml"
    assert env["API_TOKEN"] == "not-for-the-ui"  # the cluster gets the value; the UI does not
    assert job["metadata"]["labels"]["output"] == "result.json"
    assert job["metadata"]["annotations"]["config"] == "settings.yaml"
    # Mapped: each map index's arguments, as written.
    jobs = objects_of(contract_cluster, "jobs", "contract_templating", "mapped")
    assert [container_of(j)["args"] for j in jobs] == [
        ["--out", "part-0.json"],
        ["--out", "part-1.json"],
    ]


def test_the_job_file_is_found_next_to_the_dag_and_rendered(
    templating_run: Run, contract_cluster: SimulatedCluster
) -> None:
    (job,) = objects_of(contract_cluster, "jobs", "contract_templating", "from_file")
    assert job["metadata"]["labels"]["source"] == "manifest-file"
    container = container_of(job)
    assert container["image"] == "contract/app:1"
    assert container["args"] == ["--out", "report.json", "--day", templating_run.ds]
    assert env_of(container) == {"SETTINGS": "settings.yml"}
    # The job field shows the file's rendered text, as for any Airflow template file.
    job_field = rendered_fields(templating_run.ti("from_file"))["job"]
    assert isinstance(job_field, str) and f'"--day", "{templating_run.ds}"' in job_field


def test_argo_parameters_ending_in_file_suffixes_stay_strings(
    templating_run: Run, contract_cluster: SimulatedCluster
) -> None:
    (wf,) = objects_of(contract_cluster, "workflows", "contract_templating", "argo")
    parameters = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert parameters == {"out": "result.json", "db_password": "not-for-the-ui-either"}
    (template,) = wf["spec"]["templates"]
    assert template["container"]["args"] == [
        "--out",
        "{{workflow.parameters.out}}",
        "--day",
        templating_run.ds,
    ]
    assert wf["status"]["phase"] == "Succeeded"
    assert rendered_fields(templating_run.ti("argo"))["parameters"]["out"] == "result.json"


# --- (b) the manifest as submitted is a rendered template field --------------------------------


def test_the_submitted_job_is_a_rendered_template_field(
    templating_run: Run, contract_cluster: SimulatedCluster
) -> None:
    (job,) = objects_of(contract_cluster, "jobs", "contract_templating", "quick")
    shown = rendered_manifest(templating_run.ti("quick"))
    assert shown["metadata"]["name"] == job["metadata"]["name"]
    assert shown["metadata"]["namespace"] == NAMESPACE  # the connection's default namespace
    for key in (DAG_ID, TASK_ID, TRY_NUMBER, "output"):
        assert shown["metadata"]["labels"][key] == job["metadata"]["labels"][key]
    assert shown["spec"]["ttlSecondsAfterFinished"] == 86400
    assert shown["spec"]["podFailurePolicy"] == job["spec"]["podFailurePolicy"]
    shown_container = container_of(shown)
    assert shown_container["args"] == ["--out", "result.json", "--day", templating_run.ds]
    env = env_of(shown_container)
    assert env["CONFIG"] == "settings.yaml"
    assert env["API_TOKEN"] == "***"
    assert "not-for-the-ui" not in rendered_fields(templating_run.ti("quick"))["rendered_manifest"]
    # The pod template as submitted (the Job controller adds its own labels).
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert shown["spec"]["template"]["metadata"]["labels"].items() <= pod_labels.items()
    assert shown["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_each_map_index_shows_its_own_job(
    templating_run: Run, contract_cluster: SimulatedCluster
) -> None:
    jobs = objects_of(contract_cluster, "jobs", "contract_templating", "mapped")
    tis = templating_run.tis("mapped")
    assert [ti.map_index for ti in tis] == [0, 1]
    for ti, job in zip(tis, jobs, strict=True):
        shown = rendered_manifest(ti)
        assert shown["metadata"]["name"] == job["metadata"]["name"]
        assert shown["metadata"]["labels"][MAP_INDEX] == str(ti.map_index)
        assert container_of(shown)["args"] == ["--out", f"part-{ti.map_index}.json"]


def test_the_submitted_workflow_is_a_rendered_template_field(
    templating_run: Run, contract_cluster: SimulatedCluster
) -> None:
    (wf,) = objects_of(contract_cluster, "workflows", "contract_templating", "argo")
    shown = rendered_manifest(templating_run.ti("argo"))
    assert shown["metadata"]["name"] == wf["metadata"]["name"]
    assert shown["metadata"]["labels"][DAG_ID] == "contract_templating"
    assert shown["metadata"]["labels"][TASK_ID] == "argo"
    assert shown["spec"]["ttlStrategy"] == dict(DEFAULT_TTL_STRATEGY)
    assert shown["spec"]["podGC"] == dict(DEFAULT_POD_GC)
    assert shown["spec"]["templates"] == wf["spec"]["templates"]
    parameters = {p["name"]: p["value"] for p in shown["spec"]["arguments"]["parameters"]}
    assert parameters == {"out": "result.json", "db_password": "***"}


# --- (c) what is retried and what is not --------------------------------------------------------


def test_bad_input_and_pods_that_cannot_run_fail_on_the_first_try(
    contract_cluster: SimulatedCluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    restricted_connection(monkeypatch)
    run = run_dag("contract_no_retry", capsys)

    assert run.state == "failed"
    tasks = (
        "forbidden_namespace",
        "missing_file",
        "undeclared_parameter",
        "rejected_by_controller",
        "bad_image",
        "unpullable",
    )
    for task_id in tasks:
        ti = run.ti(task_id)
        assert str(ti.state) == "failed", (task_id, ti.state, run.log[-5000:])
        assert ti.try_number == 1, (task_id, ti.try_number)  # retries=2, yet no retry
    # Bad input: nothing was created.
    for task_id in ("forbidden_namespace", "missing_file", "bad_image"):
        assert objects_of(contract_cluster, "jobs", "contract_no_retry", task_id) == []
    assert (
        objects_of(contract_cluster, "workflows", "contract_no_retry", "undeclared_parameter") == []
    )
    run.error("FatalInvalidInputError", "'team-b'", "allowed_namespaces")
    missing = run.error("FatalInvalidInputError", "no_such_manifest.yaml")
    searched = re.search(r"file not found \(searched ([^,;)]+)", missing)
    assert searched, missing
    assert (Path(searched.group(1)) / CONTRACT.name).is_file()  # the DAG's own folder
    assert "TemplateNotFound" not in run.log
    run.error("FatalInvalidInputError", "outt", "did you mean out?")
    # The Argo controller refused the Workflow: it failed before any step ran.
    (wf,) = objects_of(contract_cluster, "workflows", "contract_no_retry", "rejected_by_controller")
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"].startswith("invalid spec:")
    run.error("FatalWorkflowFailedError", wf["metadata"]["name"], "invalid spec:")
    # An image reference the kubelet would refuse (InvalidImageName): refused before creating.
    run.error("FatalInvalidInputError", "'Team/App' must be lower case", "InvalidImageName")
    # A pod that cannot run: one Job, failed at once, and deleted with its pods.
    assert objects_of(contract_cluster, "jobs", "contract_no_retry", "unpullable") == []
    name = run.ti("unpullable").xcom_pull(task_ids="unpullable", key="job_name")
    run.error(
        "FatalJobFailedError",
        name,
        "The kubelet cannot pull the image",
        f"Deleted Job {NAMESPACE}/{name} on ",
        "so that it does not stay pending for ever.",
    )


def test_a_job_whose_container_exits_1_is_retried(
    contract_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_dag("contract_retry", capsys)

    assert run.state == "failed"
    ti = run.ti("exits_1")
    assert str(ti.state) == "failed"
    assert ti.try_number == 2  # retries=1: a second try
    jobs = objects_of(contract_cluster, "jobs", "contract_retry", "exits_1")
    assert [j["metadata"]["labels"][TRY_NUMBER] for j in jobs] == ["1", "2"]
    assert all(j["status"].get("failed") == 1 for j in jobs)
    for job in jobs:  # each try failed with its own Job, and may be retried
        run.error(
            "JobFailedError", f"Job {NAMESPACE}/{job['metadata']['name']} ", "exited with code 1"
        )
    assert "FatalJobFailedError" not in run.log
