"""Waiting for many Argo Workflows: shared watches against per-workflow polling, side by side.

Both run on the same simulated cluster, in one process, against Workflows that finish at
staggered instants (one container step each, whose run time the cluster's behaviour decides,
shortened by the time scale):

* **airflow-k8s-jobs**: ``ArgoWorkflowTrigger``s in one event loop, as in a triggerer;
* **polling** (what Hera's ``Workflow.wait()`` does, and the cncf Job trigger for Jobs): one
  ``GET`` of each Workflow every ``--poll-seconds`` scenario seconds (Hera polls every 5 s)
  until it has finished.

Scenario seconds are wall seconds divided by the time scale (0.1 by default: a 60 s step runs
for 6 wall seconds, and the poller's 5 s interval is 0.5 wall seconds). It reports API
requests per waiting task per scenario minute, how long after a Workflow finished the waiter
noticed (in scenario seconds, from the instant the cluster wrote the Workflow's
``finishedAt``), and the waiter's CPU time, with the ratio between the two. Run
``python benchmarks/argo_waiting.py --help``; ``make bench`` runs it with the defaults and
writes ``benchmarks/results/argo_waiting.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import publish

from airflow_k8s_jobs.clusters import KubeClusterHook
from airflow_k8s_jobs.kube import WORKFLOWS, request
from airflow_k8s_jobs.manifests.names import TaskInstanceKey
from airflow_k8s_jobs.manifests.workflows import WorkflowRequest, build_workflow
from airflow_k8s_jobs.triggers.argo import ArgoWorkflowTrigger
from simulated_k8s_cluster import SimulatedCluster
from simulated_k8s_cluster.behaviours import BEHAVIOUR_ANNOTATION

NAMESPACE = "batch"
CONN_ID = "bench_argo"


def workflow(seconds: int) -> dict[str, Any]:
    """A Workflow whose one container step runs ``seconds`` scenario seconds."""
    behaviour = json.dumps({"seconds": seconds})
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "bench-"},
        "spec": {
            "entrypoint": "work",
            "templates": [
                {
                    "name": "work",
                    "metadata": {"annotations": {BEHAVIOUR_ANNOTATION: behaviour}},
                    "container": {"image": "busybox:1.36", "command": ["true"]},
                }
            ],
        },
    }


class FinishRecorder:
    """Wall instant (``time.monotonic()``) at which the cluster wrote each Workflow's
    ``finishedAt`` (the timestamp itself has a resolution of one wall second)."""

    def __init__(self, cluster: SimulatedCluster) -> None:
        self.at: dict[str, float] = {}
        cluster.state.store.add_observer(self._observe)

    def _observe(self, resource: Any, event_type: str, obj: Any, old: Any) -> None:
        if resource.plural != "workflows" or event_type == "DELETED":
            return
        name = obj["metadata"]["name"]
        if name not in self.at and (obj.get("status") or {}).get("finishedAt"):
            self.at[name] = time.monotonic()


def submit(cluster: SimulatedCluster, count: int, base: int, spread: int, tag: str) -> list[Any]:
    manifests = [
        build_workflow(
            WorkflowRequest(workflow=workflow(base + (i * spread) // max(1, count - 1))),
            TaskInstanceKey("bench", f"{tag}-{i}", "manual__bench", -1, 1),
            NAMESPACE,
            "simulated",
        )
        for i in range(count)
    ]
    return cluster.call(lambda: [cluster.create(m) for m in manifests])


@dataclass
class Result:
    name: str
    tasks: int
    requests: int
    task_minutes: float
    """Scenario minutes the tasks waited, added up."""
    latencies: list[float]
    cpu_seconds: float

    @property
    def per_task_minute(self) -> float:
        return self.requests / self.task_minutes


async def wait_with_triggers(
    cluster: SimulatedCluster, finished: FinishRecorder, workflows: list[Any]
) -> Result:
    noticed: dict[str, float] = {}

    async def one(wf: Any) -> None:
        trigger = ArgoWorkflowTrigger(
            CONN_ID, "simulated", NAMESPACE, wf["metadata"]["name"], wf["metadata"]["uid"]
        )
        async for event in trigger.run():
            noticed[event.payload["name"]] = time.monotonic()
            return

    cluster.reset_counters()
    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(one(wf) for wf in workflows))
    name = "airflow-k8s-jobs (shared watch)"
    return _result(cluster, finished, name, workflows, noticed, started, cpu)


async def wait_by_polling(
    cluster: SimulatedCluster, finished: FinishRecorder, workflows: list[Any], poll_seconds: float
) -> Result:
    noticed: dict[str, float] = {}
    hook = KubeClusterHook(CONN_ID)
    client = await hook.async_api_client()

    async def one(wf: Any) -> None:
        name = wf["metadata"]["name"]
        while True:
            body = await request(client, "GET", WORKFLOWS.path(NAMESPACE, name))
            status = body.get("status") or {}
            if status.get("finishedAt"):
                noticed[name] = time.monotonic()
                return
            await asyncio.sleep(max(cluster.clock.scaled(poll_seconds), 0.001))

    cluster.reset_counters()
    started, cpu = time.monotonic(), time.process_time()
    try:
        await asyncio.gather(*(one(wf) for wf in workflows))
    finally:
        await client.close()
    name = f"polling every {poll_seconds:g}s"
    return _result(cluster, finished, name, workflows, noticed, started, cpu)


def _result(
    cluster: SimulatedCluster,
    finished: FinishRecorder,
    name: str,
    workflows: list[Any],
    noticed: dict[str, float],
    started: float,
    cpu: float,
) -> Result:
    cpu_seconds = time.process_time() - cpu
    counters = cluster.counters.snapshot()
    requests = sum(n for key, n in counters.items() if key.endswith(" workflows"))
    scale = cluster.clock.time_scale or 1.0  # wall seconds per scenario second
    latencies = []
    for wf in workflows:
        wf_name = wf["metadata"]["name"]
        latencies.append(max(0.0, noticed[wf_name] - finished.at[wf_name]) / scale)
    waited = sum(noticed[wf["metadata"]["name"]] - started for wf in workflows) / scale
    return Result(name, len(workflows), requests, max(1e-9, waited / 60), latencies, cpu_seconds)


def table(ours: Result, theirs: Result) -> str:
    def row(label: str, a: float, b: float, fmt: str) -> str:
        ratio = f"{b / a:.0f}x" if a > 0 else "∞"
        return f"| {label} | {a:{fmt}} | {b:{fmt}} | {ratio} |"

    lines = [
        f"| {ours.tasks} waiting Workflows | {ours.name} | {theirs.name} | polling / ours |",
        "| --- | --- | --- | --- |",
        row("API requests in all", ours.requests, theirs.requests, ".0f"),
        row(
            "requests per waiting task per minute",
            ours.per_task_minute,
            theirs.per_task_minute,
            ".3f",
        ),
        row(
            "median notice latency (scenario s)",
            statistics.median(ours.latencies),
            statistics.median(theirs.latencies),
            ".2f",
        ),
        row("waiter CPU seconds", ours.cpu_seconds, theirs.cpu_seconds, ".2f"),
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> str:
    config = {
        "timeScale": args.time_scale,
        "namespaces": [NAMESPACE],
        "nodePools": [{"name": "default", "nodes": 4}],
        "argo": {},
    }
    with SimulatedCluster(config) as cluster, tempfile.TemporaryDirectory() as tmp:
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig.yaml")
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
            {"conn_type": "k8sjobs", "extra": {"kubeconfig_path": str(kubeconfig)}}
        )
        finished = FinishRecorder(cluster)
        first = submit(cluster, args.workflows, args.seconds, args.spread, "watch")
        ours = await wait_with_triggers(cluster, finished, first)
        second = submit(cluster, args.workflows, args.seconds, args.spread, "poll")
        theirs = await wait_by_polling(cluster, finished, second, args.poll_seconds)
    return table(ours, theirs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=200, help="waiting tasks (200)")
    parser.add_argument("--seconds", type=int, default=60, help="shortest run, scenario s")
    parser.add_argument("--spread", type=int, default=120, help="longest minus shortest run")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="polling interval")
    parser.add_argument("--time-scale", type=float, default=0.1, help="wall s per scenario s")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    text = asyncio.run(main_async(args))
    publish(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
