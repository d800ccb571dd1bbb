"""`make demo` runs `python scripts/demo.py`: every example DAG through
`airflow dags test` against the simulated cluster. It must keep working.

The demo runs as `make demo` does: a subprocess from the repository root, without the
`AIRFLOW_*` variables this test session sets for itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import demo  # scripts/demo.py (pytest's pythonpath)
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo.py"
EXAMPLE_DAGS = REPO / "example_dags"


def run_demo(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return subprocess.run(
        [sys.executable, str(DEMO), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def summary_rows(out: str) -> dict[str, str]:
    """``{dag_id: outcome}`` from the summary table."""
    table = out.split("=" * 100)[1]
    return dict(re.findall(r"^(\w+)\s+(success|FAILED)\s", table, re.MULTILINE))


def test_demo_runs_every_example_dag(tmp_path: Path) -> None:
    result = run_demo("--workdir", str(tmp_path))
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    expected = {d.dag_id for d in demo.find_dags(EXAMPLE_DAGS)}
    assert {"gke_batch_job", "indexed_fanout", "dynamic_mapping", "gpu_scale_up"} <= expected
    assert "kueue_queued" in expected
    assert summary_rows(out) == dict.fromkeys(expected, "success")
    assert f"demo succeeded: {len(expected)}/{len(expected)} DAGs succeeded" in out
    for dag_id in expected:
        assert f"airflow dags test {dag_id} " in out
        log = (tmp_path / "logs" / f"{dag_id}.log").read_text()
        assert log.startswith(f"$ airflow dags test {dag_id} ")

    # What the DAGs did, as the summary tells it.
    assert re.search(r"fine_tune: waited \d+(m\d*)?s? for a node: pod triggered", out)
    assert "Indexed Job, 8/8 indexes succeeded, 4 at a time, 9 pods" in out
    assert '"shards": 8, "rows_in": 1125000' in out
    assert "dynamic-mapping-export-partition-m2-t1-" in out
    assert 'XCom report: {"europe-west1": 48210, "us-central1": 77002' in out
    assert re.search(r"in team-a-queue admitted by ClusterQueue team-a after \d+s", out)
    assert "insufficient unused quota for cpu" in out
    # The Argo DAGs: the seed fan-out, template submissions, one Workflow per backfilled day.
    assert re.search(
        r"\(inline manifest; max=3\): Succeeded 7/7, 7 pods, fan-out task2-3\(0:1\)", out
    )
    assert "(WorkflowTemplate daily-report; date=" in out
    assert "(ClusterWorkflowTemplate gcs-cleanup; prefix=gs://my-project-scratch/" in out
    assert len(re.findall(r"load_partition: Workflow argo-backfill-load-partition-t1-", out)) == 3
    assert 'XCom report: {"workflow": "argo-seed-workflow-workflow-sample-t1-' in out
    # Waiting was done with watches: the only GETs are the pods' logs, the two templates (to
    # check the parameters), the LocalQueue (checked before its Job is created) and each
    # finished Workflow once.
    assert re.search(r"^  watch\s+\d+", out, re.MULTILINE)
    gets = re.search(r"^  get\s+\d+\s+\((.*)\)$", out, re.MULTILINE)
    assert gets, out
    counts = dict(item.rsplit(" ", 1) for item in gets.group(1).split(", "))
    assert set(counts) == {
        "pods/log",
        "workflows",
        "workflowtemplates",
        "clusterworkflowtemplates",
        "localqueues",
    }
    assert counts["workflows"] == "6"  # six Workflows, each read once when it had finished
    assert "no GET of a Job, pod or Workflow while waiting;" in out

    assert (tmp_path / "kubeconfig.yaml").exists()
    assert (tmp_path / "cluster.yaml").exists()
    assert (tmp_path / "airflow" / "airflow.cfg").exists()


def test_demo_runs_a_job_dag_and_an_argo_dag(tmp_path: Path) -> None:
    """The fast lane's end-to-end check on every environment: `airflow dags test` of a
    deferrable Job DAG and of the Argo seed DAG, with a fernet key set, both succeed."""
    result = run_demo(
        "--workdir", str(tmp_path), "--dag", "gke_batch_job", "--dag", "argo_seed_workflow"
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert summary_rows(out) == {"gke_batch_job": "success", "argo_seed_workflow": "success"}
    assert "demo succeeded: 2/2 DAGs succeeded" in out
    # The Job task deferred (its trigger waited), and the Argo fan-out ran as the seed says.
    job_log = (tmp_path / "logs" / "gke_batch_job.log").read_text()
    assert "[DAG TEST] running trigger in line" in job_log, job_log[-3000:]
    assert re.search(r"Succeeded 7/7, 7 pods, fan-out task2-3\(0:1\)", out)
    assert (tmp_path / "airflow" / "fernet.key").read_text().strip()
    assert "is not defined" not in job_log
    # An ordinary run logs no warnings (Airflow 2.11 warned on every connection read while our
    # connection type had a "_" in it): neither Airflow 2's "} WARNING -" nor 3's "[warning".
    for dag_id in ("gke_batch_job", "argo_seed_workflow"):
        log = (tmp_path / "logs" / f"{dag_id}.log").read_text()
        warnings = re.findall(r"^.*(?:\} WARNING - |\[warning\s*\]).*$", log, re.MULTILINE)
        assert not warnings, "\n".join(warnings)


def test_demo_fails_without_a_dags_folder(tmp_path: Path) -> None:
    result = run_demo("--workdir", str(tmp_path), "--dags-folder", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "run from the repository root or pass --dags-folder" in result.stderr


def test_demo_exits_non_zero_when_a_dag_fails(tmp_path: Path) -> None:
    """A DAG whose Job fails makes the demo fail, and the summary says which and why."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "broken_job.py").write_text(
        "from datetime import datetime\n"
        "from airflow import DAG\n"
        "from airflow_k8s_jobs import KubeJobOperator\n"
        "with DAG(dag_id='broken_job', schedule=None, start_date=datetime(2026, 11, 1)):\n"
        "    KubeJobOperator(\n"
        "        task_id='fail', cluster_conn_id='gke_batch', namespace='batch',\n"
        "        image='busybox:1.36', cmds=['false'], backoff_limit=0,\n"
        "        annotations={'sim.airflow-k8s-jobs/behaviour': '{\"exitCode\": 3}'},\n"
        "    )\n"
    )
    result = run_demo("--workdir", str(tmp_path / "work"), "--dags-folder", str(dags))
    assert result.returncode == 1, result.stdout + result.stderr
    assert summary_rows(result.stdout) == {"broken_job": "FAILED"}
    assert "demo FAILED: 0/1 DAGs succeeded" in result.stdout
    assert "tasks {'fail': 'failed'}" in result.stdout


@pytest.mark.parametrize(
    ("source", "ids"),
    [
        ("with DAG(dag_id='a', schedule=None):\n    pass\n", ["a"]),
        ("@dag(dag_id='b')\ndef f():\n    pass\n", ["b"]),
        ("x = models.DAG(dag_id='c')\n", ["c"]),
        ("DAG(dag_id=name)\n", []),
        ("this is not python(\n", []),
    ],
)
def test_dag_ids_in(tmp_path: Path, source: str, ids: list[str]) -> None:
    path = tmp_path / "dag.py"
    path.write_text(source)
    assert demo.dag_ids_in(path) == ids


def test_cleanup_dags_run_last(tmp_path: Path) -> None:
    for name in ("cleanup_jobs", "zeta", "gke_batch_job", "gpu_scale_up"):
        (tmp_path / f"{name}.py").write_text(f"DAG(dag_id={name!r})\n")
    assert [d.dag_id for d in demo.find_dags(tmp_path)] == [
        "gpu_scale_up",
        "gke_batch_job",
        "zeta",
        "cleanup_jobs",
    ]
