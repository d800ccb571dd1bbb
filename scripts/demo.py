"""``python scripts/demo.py`` (what ``make demo`` runs): the example DAGs, for real.

Starts a simulated GKE-like cluster (a CPU pool, a GPU pool that scales from zero and is
tainted like GKE's GPU nodes, Kueue with a LocalQueue ``team-a-queue`` in ``batch``), points an
Airflow connection ``gke_batch`` at it, migrates a scratch Airflow database and runs every
example DAG with ``airflow dags test <dag_id> <date>`` — the command you would run yourself —
each in its own process, with its output in a log file. Then it prints what happened: the
outcome of every DAG, the Jobs it created, what they waited for, their XComs, and the API
requests the cluster served (watches versus GETs).

Run from the root of the repository (``make demo``), or pass ``--dags-folder``.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from airflow_k8s_jobs.manifests.names import DAG_ID, MAP_INDEX, TASK_ID, label_value
from simulated_k8s_cluster import SimulatedCluster

NAMESPACE = "batch"
CONN_ID = "gke_batch"
TEAM_QUEUE = "team-a-queue"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
REGISTRY = "europe-west1-docker.pkg.dev/my-project"
"""Where the example DAGs' images come from (their behaviours match on it)."""

EXAMPLES_CLUSTER: dict[str, Any] = {
    "timeScale": 0.01,
    "namespaces": [NAMESPACE],
    "nodePools": [
        {
            "name": "default",
            "nodes": 3,
            "capacity": {"cpu": "8", "memory": "32Gi"},
            "labels": {"cloud.google.com/gke-nodepool": "default"},
        },
        {
            "name": "gpu",
            "nodes": 0,
            "maxNodes": 2,
            "scaleUpSeconds": 120,
            "capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
            "labels": {
                "cloud.google.com/gke-nodepool": "gpu",
                "cloud.google.com/gke-accelerator": "nvidia-l4",
            },
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
    ],
    "kueue": {
        "resourceFlavors": [
            {"name": "default", "nodeLabels": {"cloud.google.com/gke-nodepool": "default"}}
        ],
        "clusterQueues": [
            {
                "name": "team-a",
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", "memory"],
                        "flavors": [
                            {
                                "name": "default",
                                "resources": [
                                    {"name": "cpu", "nominalQuota": "8"},
                                    {"name": "memory", "nominalQuota": "32Gi"},
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
        "localQueues": [{"namespace": NAMESPACE, "name": TEAM_QUEUE, "clusterQueue": "team-a"}],
    },
    "argo": {},
    "behaviours": [
        # argo_seed_workflow.py: the seed workflow.yml. task1 writes the JSON list 1..max (its
        # args carry the max the DAG passed); each task2 (R) writes the square of its item.
        *(
            {
                "match": {"image": "task-python:1.0", "args": f"pre-task.py {n} "},
                "seconds": 20,
                "stdout": f"reading the day's events\n{n} values",
                "files": {"/tmp/results": json.dumps(list(range(1, n + 1)))},
            }
            for n in range(1, 31)
        ),
        *(
            {
                "match": {"image": "task-r:1.0", "args": f"task.R {n} "},
                "seconds": 45,
                "stdout": f"[1] {n * n}",
                "files": {"/tmp/result": str(n * n)},
            }
            for n in range(1, 31)
        ),
        {
            "match": {"image": "task-python:1.0", "args": "post-task.py"},
            "seconds": 10,
            "stdout": "stored 1 row",
        },
        # argo_workflow_templates.py
        {
            "match": {"image": f"{REGISTRY}/batch/report-extract:*"},
            "seconds": 60,
            "stdout": "extracting europe-west1\n48210 rows",
            "files": {"/tmp/rows": "48210"},
        },
        {
            "match": {"image": f"{REGISTRY}/batch/report-summarize:*"},
            "seconds": 30,
            "stdout": "summarizing 48210 rows",
            "files": {"/tmp/summary.json": '{"rows": 48210, "top_region": "europe-west1"}'},
        },
        {
            "match": {"image": "gcr.io/google.com/cloudsdktool/google-cloud-cli:slim"},
            "seconds": 15,
            "stdout": "Removing objects:\nCompleted 132 objects",
        },
        # argo_backfill.py
        {
            "match": {"image": f"{REGISTRY}/batch/events-load:*"},
            "seconds": 40,
            "stdout": "loading partition\ndone",
        },
        # gke_batch_job.py (the seed case)
        {
            "match": {"image": "task-python:1.0", "args": "pre-task.py"},
            "seconds": 30,
            "stdout": "preprocessing\n[1, 2, 3]",
            "terminationMessage": "[1, 2, 3]",
        },
        {
            "match": {"image": "task-python:1.0", "args": "train.py"},
            "seconds": 300,
            "stdout": "epoch 1/2\nepoch 2/2\nmodel saved",
            "terminationMessage": '{"auc": 0.91}',
        },
        # indexed_fanout.py: shard 0 is the biggest, shard 5 hits a network error once.
        {
            "match": {
                "image": f"{REGISTRY}/batch/events-preprocess:*",
                "env": {"JOB_COMPLETION_INDEX": "5"},
            },
            "times": 1,
            "seconds": 20,
            "exitCode": 1,
            "stdout": "shard 5: reading gs://my-project-raw/events\n"
            "ConnectionResetError: [Errno 104] Connection reset by peer",
        },
        {
            "match": {
                "image": f"{REGISTRY}/batch/events-preprocess:*",
                "env": {"JOB_COMPLETION_INDEX": "0"},
            },
            "seconds": 240,
            "stdout": "shard 0: 250000 rows in\nshard 0: 249310 rows out",
            "terminationMessage": '{"shard": 0, "rows_in": 250000, "rows_out": 249310}',
        },
        {
            "match": {"image": f"{REGISTRY}/batch/events-preprocess:*"},
            "seconds": 60,
            "stdout": "shard $(JOB_COMPLETION_INDEX): 125000 rows in\n"
            "shard $(JOB_COMPLETION_INDEX): 124800 rows out",
            "terminationMessage": '{"shard": $(JOB_COMPLETION_INDEX), "rows_in": 125000, '
            '"rows_out": 124800}',
        },
        # dynamic_mapping.py: one export per region.
        *(
            {
                "match": {
                    "image": f"{REGISTRY}/batch/region-export:*",
                    "args": f"--region {region}",
                },
                "seconds": seconds,
                "stdout": f"exporting {region}\n{rows} rows written",
                "terminationMessage": json.dumps({"region": region, "rows": rows}),
            }
            for region, seconds, rows in (
                ("europe-west1", 90, 48210),
                ("us-central1", 150, 77002),
                ("asia-northeast1", 45, 12954),
            )
        ),
        # gpu_scale_up.py
        {
            "match": {"image": f"{REGISTRY}/ml/ranker-train:*"},
            "seconds": 600,
            "stdout": "loading features\nepoch 1/3 loss=0.61\nepoch 2/3 loss=0.47\n"
            "epoch 3/3 loss=0.41\ncheckpoint written",
            "terminationMessage": '{"eval_loss": 0.412, '
            '"checkpoint": "$(CHECKPOINT_BUCKET)/$(RUN_DATE)/"}',
        },
        # kueue_queued.py
        {
            "match": {"image": f"{REGISTRY}/batch/feature-backfill:*"},
            "seconds": 180,
            "stdout": "backfilling user_daily\ndone",
            "terminationMessage": '{"rows": 1250000}',
        },
    ],
}
"""The simulated cluster the example DAGs run against (the e2e tests use it too)."""

TEMPLATE_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate")


def install_workflow_templates(cluster: SimulatedCluster, dags_folder: Path) -> list[str]:
    """Create the WorkflowTemplates and ClusterWorkflowTemplates of ``<dags>/workflows/*.yaml``
    on the cluster (what ``kubectl apply`` of those files does); returns their names."""
    created = []
    for path in sorted((dags_folder / "workflows").glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        if isinstance(manifest, dict) and manifest.get("kind") in TEMPLATE_KINDS:
            cluster.create(manifest)
            created.append(f"{manifest['kind']} {manifest['metadata']['name']}")
    return created


DAG_TIMEOUT = 300.0
"""Wall seconds one ``airflow dags test`` may take before the demo stops it."""

_print_lock = threading.Lock()


def say(*parts: Any) -> None:
    with _print_lock:
        print(*parts, flush=True)


# --- which DAGs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleDag:
    dag_id: str
    file: Path

    @property
    def cleans_up(self) -> bool:
        """Cleanup DAGs run last, once the other DAGs' Jobs have finished."""
        return "cleanup" in self.dag_id


def dag_ids_in(path: Path) -> list[str]:
    """The literal ``dag_id=`` values of ``DAG(...)`` / ``@dag(...)`` in a DAG file."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError):
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name not in ("DAG", "dag"):
            continue
        for keyword in node.keywords:
            if (
                keyword.arg == "dag_id"
                and isinstance(keyword.value, ast.Constant)
                and isinstance(keyword.value.value, str)
            ):
                found.append(keyword.value.value)
    return found


FIRST = (
    "gpu_scale_up",
    "argo_backfill",
    "indexed_fanout",
    "kueue_queued",
    "dynamic_mapping",
    "gke_batch_job",
)
"""Run order: ``gpu_scale_up`` first, so that it is the one that finds the GPU pool at 0 nodes;
``argo_backfill`` (three runs in a row) early, so that the other DAGs run meanwhile."""


def find_dags(folder: Path) -> list[ExampleDag]:
    dags = [
        ExampleDag(dag_id, path)
        for path in sorted(folder.glob("*.py"))
        for dag_id in dag_ids_in(path)
    ]
    order = {dag_id: i for i, dag_id in enumerate(FIRST)}
    return sorted(dags, key=lambda d: (d.cleans_up, order.get(d.dag_id, len(FIRST)), d.dag_id))


# --- Airflow ---------------------------------------------------------------------------------


def airflow_env(home: Path, dags_folder: Path, kubeconfig: Path) -> dict[str, str]:
    """The environment of the ``airflow`` commands: a scratch home, none of the caller's
    ``AIRFLOW*`` settings, and the ``gke_batch`` connection to the simulated cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    connection = {
        "conn_type": "k8sjobs",
        "description": "the demo's simulated GKE cluster",
        "extra": {"kubeconfig_path": str(kubeconfig), "namespace": NAMESPACE},
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            # As in every real deployment, connections are read through a fernet key.
            "AIRFLOW__CORE__FERNET_KEY": fernet_key(home),
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection),
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def fernet_key(home: Path) -> str:
    """The fernet key of this Airflow home, made on first use and kept beside its database."""
    path = home / "fernet.key"
    if not path.exists():
        from cryptography.fernet import Fernet

        home.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return path.read_text().strip()


def airflow_command(*args: str) -> list[str]:
    """``airflow <args>`` with this interpreter (the same virtualenv as the demo)."""
    return [sys.executable, "-m", "airflow", *args]


def run_logged(command: list[str], env: dict[str, str], log: Path, timeout: float) -> int:
    with log.open("w") as out:
        out.write("$ " + " ".join(command[2:] if command[1:2] == ["-m"] else command) + "\n")
        out.flush()
        try:
            return subprocess.run(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\n(stopped by the demo after {timeout:.0f}s)\n")
            return -1


def _decode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    for _ in range(2):  # Airflow 3 may store a JSON document as a JSON string
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


def read_run(database: Path, dag_id: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The DAG run's state, its task states and its ``return_value`` XComs, from the database."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT state FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchall()
        states = [str(row[0]) for row in rows]
        failed = [s for s in states if s != "success"]
        state = (failed or states or ["no run"])[-1]
        tasks: dict[str, str] = {}
        for task_id, map_index, ti_state in db.execute(
            "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? "
            "ORDER BY task_id, map_index",
            (dag_id,),
        ):
            tasks[task_id if map_index < 0 else f"{task_id}[{map_index}]"] = str(ti_state)
        xcoms: dict[str, Any] = {}
        for task_id, map_index, value in db.execute(
            "SELECT task_id, map_index, value FROM xcom WHERE dag_id = ? AND key = ? "
            "ORDER BY task_id, map_index",
            (dag_id, "return_value"),
        ):
            xcoms[task_id if map_index < 0 else f"{task_id}[{map_index}]"] = _decode(value)
    return state, tasks, xcoms


# --- what the cluster saw --------------------------------------------------------------------


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"


def _short(value: Any, limit: int = 150) -> str:
    """A value for one line: long lists show their first and last items."""
    text = json.dumps(value)
    if len(text) > limit and isinstance(value, dict):  # the numbers, flags and short words
        text = json.dumps(
            {
                k: v
                for k, v in value.items()
                if isinstance(v, int | float) or (isinstance(v, str) and len(v) <= 60)
                if k != "uid"
            }
        )
    if len(text) > limit and isinstance(value, list) and len(value) > 2:
        first, last = json.dumps(value[0]), json.dumps(value[-1])
        text = f"[{first}, ... {len(value) - 2} more ..., {last}]"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def jobs_of(cluster: SimulatedCluster, dag_id: str) -> list[dict[str, Any]]:
    jobs = cluster.list("jobs", NAMESPACE, {DAG_ID: label_value(dag_id)})
    return sorted(
        jobs,
        key=lambda j: (
            j["metadata"]["labels"].get(TASK_ID, ""),
            int(j["metadata"]["labels"].get(MAP_INDEX, "-1")),
            j["metadata"]["name"],
        ),
    )


def job_facts(cluster: SimulatedCluster, job: dict[str, Any]) -> list[str]:
    """What is worth telling about one Job: pods, retries, capacity waits, Kueue admission."""
    meta, spec, status = job["metadata"], job["spec"], job.get("status") or {}
    labels = meta.get("labels") or {}
    task = labels.get(TASK_ID, meta["name"])
    if labels.get(MAP_INDEX, "-1") != "-1":
        task += f"[{labels[MAP_INDEX]}]"
    pods = cluster.list("pods", NAMESPACE, {JOB_NAME_LABEL: meta["name"]})
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    facts = []
    shape = f"{len(pods)} pod(s)"
    if spec.get("completionMode") == "Indexed":
        shape = (
            f"Indexed Job, {status.get('succeeded', 0)}/{spec.get('completions')} indexes "
            f"succeeded, {spec.get('parallelism')} at a time, {len(pods)} pods"
        )
    if failed:
        indexes = sorted(
            (p["metadata"].get("annotations") or {}).get(
                "batch.kubernetes.io/job-completion-index", "?"
            )
            for p in failed
        )
        where = f" (index {', '.join(indexes)})" if spec.get("completionMode") == "Indexed" else ""
        shape += f"; {len(failed)} failed pod(s) retried by Kubernetes{where}"
    if len(pods) != 1 or failed or spec.get("completionMode") == "Indexed":
        facts.append(f"{task}: {shape}")
    for pod in pods:  # the first pod that had to wait for a node tells the story
        name = pod["metadata"]["name"]
        unschedulable = cluster.events(NAMESPACE, name, "FailedScheduling")
        if not unschedulable:
            continue
        scale_ups = cluster.events(NAMESPACE, name, "TriggeredScaleUp")
        created = _parse_time(pod["metadata"].get("creationTimestamp"))
        started = _parse_time((pod.get("status") or {}).get("startTime"))
        waited = _duration((started - created).total_seconds()) if created and started else "?"
        why = (scale_ups or unschedulable)[0].get("message")
        node = (pod.get("spec") or {}).get("nodeName") or "no node"
        facts.append(f"{task}: waited {waited} for a node: {why}; ran on {node}")
        break
    if labels.get(QUEUE_LABEL):
        workloads = cluster.list("workloads", NAMESPACE, {KUEUE_JOB_UID_LABEL: meta["uid"]})
        for workload in workloads:
            admitted = _condition(workload, "Admitted")
            reserved = _condition(workload, "QuotaReserved")
            if admitted and admitted.get("status") == "True":
                created = _parse_time(workload["metadata"].get("creationTimestamp"))
                at = _parse_time((reserved or admitted).get("lastTransitionTime"))
                queue = ((workload.get("status") or {}).get("admission") or {}).get(
                    "clusterQueue", "?"
                )
                waited = _duration((at - created).total_seconds()) if created and at else "?"
                pending = cluster.events(NAMESPACE, workload["metadata"]["name"], "Pending")
                why = f" ({pending[0].get('message')})" if pending else ""
                facts.append(
                    f"{task}: Kueue Workload {workload['metadata']['name']} in "
                    f"{labels[QUEUE_LABEL]} admitted by ClusterQueue {queue} after "
                    f"{waited}{why}"
                )
            else:
                facts.append(
                    f"{task}: Kueue Workload {workload['metadata']['name']} not admitted: "
                    f"{(reserved or {}).get('message')}"
                )
    return facts


BACKFILLED = {"argo_backfill": 3}
"""DAGs the demo runs for a range of days ending on the demo's date, not for that day only."""


def backfill_dates(last: str, days: int) -> list[str]:
    end = date.fromisoformat(last)
    return [(end - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]


def workflows_of(cluster: SimulatedCluster, dag_id: str) -> list[dict[str, Any]]:
    workflows = cluster.list("workflows", NAMESPACE, {DAG_ID: label_value(dag_id)})
    return sorted(workflows, key=lambda w: w["metadata"].get("creationTimestamp", ""))


def workflow_facts(workflow: dict[str, Any]) -> list[str]:
    """What is worth telling about one Argo Workflow: its source, parameters, shape, outcome."""
    meta, spec, status = workflow["metadata"], workflow["spec"], workflow.get("status") or {}
    labels = meta.get("labels") or {}
    task = labels.get(TASK_ID, meta["name"])
    source = "inline manifest"
    if spec.get("workflowTemplateRef"):
        ref = spec["workflowTemplateRef"]
        kind = "ClusterWorkflowTemplate" if ref.get("clusterScope") else "WorkflowTemplate"
        source = f"{kind} {ref.get('name')}"
    params = ", ".join(
        f"{p.get('name')}={p.get('value')}"
        for p in (spec.get("arguments") or {}).get("parameters") or []
    )
    nodes = (status.get("nodes") or {}).values()
    pods = [n for n in nodes if n.get("type") == "Pod"]
    fan_out = sorted({n.get("displayName", "") for n in nodes if "(" in n.get("displayName", "")})
    facts = [
        f"{task}: Workflow {meta['name']} ({source}; {params or 'no parameters'}): "
        f"{status.get('phase') or 'Pending'} {status.get('progress', '')}, {len(pods)} pods"
        + (f", fan-out {', '.join(fan_out)}" if fan_out else "")
    ]
    scheduled = (meta.get("annotations") or {}).get("workflows.argoproj.io/scheduled-time")
    ttl = spec.get("ttlStrategy")
    facts.append(
        f"{task}: scheduled-time {scheduled}, ttlStrategy {ttl}, podGC {spec.get('podGC')}"
    )
    return facts


# --- a queue that is full ------------------------------------------------------------------

QUOTA_HOLDER = "team-a-nightly-reindex"
BEHAVIOUR_ANNOTATION = "sim.airflow-k8s-jobs/behaviour"


def quota_holder_job(cpu: str = "6") -> dict[str, Any]:
    """Another Job of team A, queued in the same LocalQueue, that runs until it is deleted."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": QUOTA_HOLDER,
            "namespace": NAMESPACE,
            "labels": {QUEUE_LABEL: TEAM_QUEUE, "app": "nightly-reindex"},
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "annotations": {BEHAVIOUR_ANNOTATION: json.dumps({"seconds": 30 * 86400})}
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": f"{REGISTRY}/batch/reindex:1.0",
                            "resources": {"requests": {"cpu": cpu, "memory": "8Gi"}},
                        }
                    ],
                },
            },
        },
    }


class QuotaHolder:
    """Fills most of team A's CPU quota with another Job before a DAG runs, so that the DAG's
    queued Job waits in the LocalQueue; deletes that Job once the DAG's Workload has been
    pending for ``hold`` seconds (times the time scale), which frees the quota and lets Kueue
    admit it.

    Use as a context manager around the DAG run; leaving it always frees the quota.
    """

    def __init__(
        self,
        cluster: SimulatedCluster,
        dag_id: str,
        hold: float = 180.0,
        timeout: float = DAG_TIMEOUT,
    ) -> None:
        self.cluster = cluster
        self.dag_id = dag_id
        self.hold = hold
        self.timeout = timeout
        self.waited: float | None = None
        """Simulated seconds the DAG's Workload was seen pending before the quota was freed."""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._released = False
        self._thread = threading.Thread(target=self._run, name="quota-holder", daemon=True)

    def __enter__(self) -> QuotaHolder:
        self.cluster.create(quota_holder_job())
        self.cluster.wait_for(
            lambda: any(
                (_condition(w, "Admitted") or {}).get("status") == "True"
                for w in self.cluster.list("workloads", NAMESPACE)
            ),
            timeout=30,
            message=f"Kueue to admit {QUOTA_HOLDER}",
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.release()

    def pending_workload(self) -> dict[str, Any] | None:
        """The DAG's Workload while Kueue keeps it waiting for quota."""
        for job in jobs_of(self.cluster, self.dag_id):
            uid = job["metadata"]["uid"]
            for workload in self.cluster.list("workloads", NAMESPACE, {KUEUE_JOB_UID_LABEL: uid}):
                reserved = _condition(workload, "QuotaReserved") or {}
                if reserved.get("status") == "False" and reserved.get("reason") == "Pending":
                    return workload
        return None

    def _run(self) -> None:
        try:
            self.cluster.wait_for(
                lambda: self._stop.is_set() or self.pending_workload(),
                timeout=self.timeout,
                interval=0.05,
                message=f"a pending Workload of {self.dag_id}",
            )
            since, hold = self.cluster.now(), self.cluster.clock.scaled(self.hold)
            self.cluster.wait_for(
                lambda: self._stop.is_set() or self.cluster.now() >= since + hold,
                timeout=hold + 30,
                interval=0.05,
                message=f"{self.hold:.0f} seconds shortened by the time scale",
            )
            if not self._stop.is_set():
                self.waited = self.cluster.now() - since
        except TimeoutError:
            pass
        finally:
            self.release()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        if self.cluster.get("jobs", NAMESPACE, QUOTA_HOLDER) is not None:
            self.cluster.delete("jobs", NAMESPACE, QUOTA_HOLDER, propagation="Background")


# --- one DAG ---------------------------------------------------------------------------------


@dataclass
class DagResult:
    dag: ExampleDag
    returncode: int
    seconds: float
    log: Path
    state: str = "unknown"
    tasks: dict[str, str] = field(default_factory=dict)
    xcoms: dict[str, Any] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)
    workflows: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return (
            self.returncode == 0
            and self.state == "success"
            and all(state in ("success", "skipped") for state in self.tasks.values())
        )


def run_dag(
    dag: ExampleDag,
    cluster: SimulatedCluster,
    home: Path,
    env: dict[str, str],
    logical_date: str,
    timeout: float,
) -> DagResult:
    """``airflow dags test <dag_id> <date>`` with a database of its own, so DAGs run at once."""
    database = home / "databases" / f"{dag.dag_id}.db"
    shutil.copyfile(home / "airflow.db", database)
    env = {**env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}"}
    log = home.parent / "logs" / f"{dag.dag_id}.log"
    jobs_before = {j["metadata"]["uid"] for j in cluster.list("jobs", NAMESPACE)}
    say(f"  started  airflow dags test {dag.dag_id} {logical_date}")
    started = time.monotonic()
    command = airflow_command("dags", "test", dag.dag_id, logical_date)
    holder = None
    if dag.dag_id == "kueue_queued":  # show it waiting in a full queue
        with QuotaHolder(cluster, dag.dag_id, timeout=timeout) as holder:
            code = run_logged(command, env, log, timeout)
    elif dag.dag_id in BACKFILLED:  # a run per day of a date range, oldest first
        code = 0
        for day in backfill_dates(logical_date, BACKFILLED[dag.dag_id]):
            day_log = log.with_name(f"{dag.dag_id}-{day}.log")
            say(f"           airflow dags test {dag.dag_id} {day}  (log: {day_log})")
            day_code = run_logged(
                airflow_command("dags", "test", dag.dag_id, day), env, day_log, timeout
            )
            code = code or day_code
        log.write_text(
            "".join(
                log.with_name(f"{dag.dag_id}-{day}.log").read_text()
                for day in backfill_dates(logical_date, BACKFILLED[dag.dag_id])
            )
        )
    else:
        code = run_logged(command, env, log, timeout)
    result = DagResult(dag, code, time.monotonic() - started, log)
    try:
        result.state, result.tasks, result.xcoms = read_run(database, dag.dag_id)
    except sqlite3.Error as exc:
        result.state = f"unreadable database: {exc}"
    jobs = jobs_of(cluster, dag.dag_id)
    result.jobs = [j["metadata"]["name"] for j in jobs]
    for job in jobs:
        result.facts += job_facts(cluster, job)
    workflows = workflows_of(cluster, dag.dag_id)
    result.workflows = [w["metadata"]["name"] for w in workflows]
    for workflow in workflows:
        result.facts += workflow_facts(workflow)
    if holder is not None and holder.waited is not None:
        result.facts.append(
            f"another Job of team A ({QUOTA_HOLDER}, 6 CPUs) held the queue's quota; the demo "
            f"deleted it after the DAG's Job had queued for {_duration(holder.waited)}"
        )
    if dag.cleans_up:
        jobs_after = {j["metadata"]["uid"] for j in cluster.list("jobs", NAMESPACE)}
        result.facts.append(
            f"Jobs in namespace {NAMESPACE}: {len(jobs_before)} before, {len(jobs_after)} after "
            f"({len(jobs_before - jobs_after)} deleted)"
        )
    for task, value in result.xcoms.items():
        result.facts.append(f"XCom {task}: {_short(value)}")
    mark = "ok    " if result.succeeded else "FAILED"
    say(f"  {mark}   {dag.dag_id}: {result.state} in {result.seconds:.1f}s (log: {log})")
    return result


# --- summary ---------------------------------------------------------------------------------


def request_summary(counters: dict[str, int]) -> list[str]:
    by_verb: dict[str, Counter[str]] = {}
    for key, count in counters.items():
        verb, _, resource = key.partition(" ")
        by_verb.setdefault(verb, Counter())[resource] += count
    lines = []
    for verb in ("watch", "get", "list", "create", "delete", "patch", "update"):
        resources = by_verb.get(verb)
        if not resources:
            continue
        detail = ", ".join(f"{r} {n}" for r, n in sorted(resources.items()))
        lines.append(f"  {verb:<7} {sum(resources.values()):>4}  ({detail})")
    return lines


def print_summary(results: list[DagResult], counters: dict[str, int], seconds: float) -> None:
    width = max([len(r.dag.dag_id) for r in results] + [3])
    say()
    say("=" * 100)
    say(f"{'DAG':<{width}}  {'OUTCOME':<8}  {'TIME':>6}  JOBS / WORKFLOWS")
    for r in results:
        outcome = "success" if r.succeeded else "FAILED"
        objects = r.jobs + r.workflows
        names = ", ".join(objects) if objects else "-"
        kind = "workflow(s)" if r.workflows and not r.jobs else "job(s)"
        say(
            f"{r.dag.dag_id:<{width}}  {outcome:<8}  {r.seconds:>5.1f}s  "
            f"{len(objects)} {kind}: {names}"
        )
        if not r.succeeded:
            failed = {t: s for t, s in r.tasks.items() if s != "success"}
            say(f"    run {r.state}, exit code {r.returncode}; tasks {failed}; see {r.log}")
        for fact in r.facts:
            say(f"    - {fact}")
    say("=" * 100)
    total = sum(len(r.jobs) for r in results)
    workflows = sum(len(r.workflows) for r in results)
    say(
        f"API requests the simulated cluster served for {total} Jobs and {workflows} Workflows "
        "(by verb):"
    )
    for line in request_summary(counters):
        say(line)
    gets = {k: n for k, n in counters.items() if k.startswith("get ")}
    at_the_end = {
        "get pods/log",
        "get workflowtemplates",
        "get clusterworkflowtemplates",
        "get localqueues",  # checked before a queued Job is created
    }
    polling = ""
    if not set(gets) <= at_the_end | {"get workflows"} or gets.get("get workflows", 0) > workflows:
        polling = f" (but: {gets})"
    say(
        f"  Tasks waited on watches: no GET of a Job, pod or Workflow while waiting{polling};\n"
        "  each pod's log, and each finished Workflow, is read once at the end (a template once\n"
        "  at submit, to check the parameters). `airflow dags test` runs each trigger in an\n"
        "  event loop of its own, so every waiting task opened its own watches; in a triggerer,\n"
        "  all triggers share one watch per (cluster, namespace, kind). Each Job and Workflow is\n"
        "  created twice: a dry run validates it first."
    )
    ok = all(r.succeeded for r in results)
    passed = sum(r.succeeded for r in results)
    say(
        f"\ndemo {'succeeded' if ok else 'FAILED'}: {passed}/{len(results)} DAGs succeeded "
        f"in {seconds:.0f}s"
    )


# --- main ------------------------------------------------------------------------------------


def default_dags_folder() -> Path:
    return Path.cwd() / "example_dags"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/demo.py",
        description="Run the example DAGs with real Airflow against a simulated GKE cluster.",
    )
    parser.add_argument(
        "--workdir",
        default=".demo",
        help="scratch folder: AIRFLOW_HOME, kubeconfig, one log per DAG (default: .demo)",
    )
    parser.add_argument(
        "--dags-folder",
        type=Path,
        help="the DAGs to run (default: ./example_dags, i.e. run from the repository root)",
    )
    parser.add_argument(
        "--dag", action="append", dest="dags", metavar="DAG_ID", help="run only these DAGs"
    )
    parser.add_argument(
        "--date",
        # Not before the example DAGs' start_date, which Airflow 2.11 enforces.
        default=max(
            datetime.now(timezone.utc).date() - timedelta(days=1), date(2026, 11, 1)
        ).isoformat(),
        help="logical date of the runs (default: yesterday)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=3,
        help="DAGs run at the same time, each an airflow process of about one CPU (default: 3)",
    )
    parser.add_argument("--timeout", type=float, default=DAG_TIMEOUT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    started = time.monotonic()

    dags_folder = (args.dags_folder or default_dags_folder()).resolve()
    if not dags_folder.is_dir():
        print(
            f"error: no DAGs folder {dags_folder}; run from the repository root or pass "
            "--dags-folder",
            file=sys.stderr,
        )
        return 2
    dags = find_dags(dags_folder)
    if args.dags:
        unknown = set(args.dags) - {d.dag_id for d in dags}
        if unknown:
            print(f"error: no DAG {sorted(unknown)} in {dags_folder}", file=sys.stderr)
            return 2
        dags = [d for d in dags if d.dag_id in args.dags]
    if not dags:
        print(f"error: no DAGs in {dags_folder}", file=sys.stderr)
        return 2
    try:
        date.fromisoformat(args.date)
    except ValueError:
        parser.error(f"--date must be YYYY-MM-DD, got {args.date!r}")

    workdir = Path(args.workdir).resolve()
    home = workdir / "airflow"
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(workdir / "logs", ignore_errors=True)
    (home / "databases").mkdir(parents=True)
    (workdir / "logs").mkdir(parents=True)
    (workdir / "cluster.yaml").write_text(yaml.safe_dump(EXAMPLES_CLUSTER, sort_keys=False))

    # The cluster's own warnings (e.g. a client that went away mid-answer) go to a file.
    cluster_log = logging.FileHandler(workdir / "logs" / "cluster.log")
    cluster_log.setLevel(logging.WARNING)
    logging.getLogger().addHandler(cluster_log)
    try:
        return run_all(args, dags, dags_folder, workdir, home, started)
    finally:
        logging.getLogger().removeHandler(cluster_log)
        cluster_log.close()


def run_all(
    args: argparse.Namespace,
    dags: list[ExampleDag],
    dags_folder: Path,
    workdir: Path,
    home: Path,
    started: float,
) -> int:
    with SimulatedCluster(EXAMPLES_CLUSTER) as cluster:
        kubeconfig = cluster.write_kubeconfig(workdir / "kubeconfig.yaml", namespace=NAMESPACE)
        templates = install_workflow_templates(cluster, dags_folder)
        scale = cluster.config.time_scale
        say(
            f"simulated cluster at {cluster.url}: pools default (3 nodes) and gpu (0-2 nodes, "
            f"tainted nvidia.com/gpu), Kueue queue {NAMESPACE}/{TEAM_QUEUE}; "
            f"a container that runs for a minute takes {60 * scale:.1f}s"
        )
        say(f"  kubeconfig {kubeconfig}, configuration {workdir / 'cluster.yaml'}")
        if templates:
            say(f"  Argo controller, with {', '.join(templates)} from {dags_folder / 'workflows'}")
        env = airflow_env(home, dags_folder, kubeconfig)
        say(f"AIRFLOW_HOME={home}  AIRFLOW__CORE__DAGS_FOLDER={dags_folder}")
        say(f"AIRFLOW_CONN_{CONN_ID.upper()}={env[f'AIRFLOW_CONN_{CONN_ID.upper()}']}")
        say("airflow db migrate")
        migrate_log = workdir / "logs" / "db-migrate.log"
        if run_logged(airflow_command("db", "migrate"), env, migrate_log, 300) != 0:
            print(f"error: airflow db migrate failed; see {migrate_log}", file=sys.stderr)
            return 1
        say(f"running {len(dags)} DAGs ({', '.join(d.dag_id for d in dags)}):")
        results: list[DagResult] = []
        first = [d for d in dags if not d.cleans_up]
        last = [d for d in dags if d.cleans_up]
        with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
            results += pool.map(
                lambda d: run_dag(d, cluster, home, env, args.date, args.timeout), first
            )
        for dag in last:  # after the others: their Jobs are finished by now
            results.append(run_dag(dag, cluster, home, env, args.date, args.timeout))
        counters = cluster.counters.snapshot()
    print_summary(results, counters, time.monotonic() - started)
    return 0 if all(r.succeeded for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
