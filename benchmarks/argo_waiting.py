"""Waiting for many Argo Workflows: shared watches against per-workflow polling, side by side.

Both run on the same simulated cluster, in one process, against Workflows that finish at
staggered simulated instants:

* **airflow-k8s-jobs**: ``ArgoWorkflowTrigger``s in one event loop, as in a triggerer;
* **polling** (what Hera's ``Workflow.wait()`` does, and the cncf Job trigger for Jobs): one
  ``GET`` of each Workflow every ``--poll-seconds`` simulated seconds (Hera polls every 5 s)
  until it has finished.

It reports API requests per waiting task per simulated minute, how long after a Workflow's
``finishedAt`` the waiter noticed (in simulated seconds; ``finishedAt`` has a resolution of one
second, so this is an upper bound), and the waiter's CPU time, with the ratio between the two.
The time scale is slow enough (0.1 wall seconds per simulated second) that the poller keeps
its interval. Run ``python benchmarks/argo_waiting.py --help``; ``make bench`` runs it
with the defaults and writes ``benchmarks/results/argo_waiting.md``.
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

from airflow_k8s_jobs.clusters import KubeClusterHook
from airflow_k8s_jobs.kube import WORKFLOWS, request
from airflow_k8s_jobs.manifests.names import TaskInstanceKey
from airflow_k8s_jobs.manifests.workflows import WorkflowRequest, build_workflow
from airflow_k8s_jobs.triggers.argo import ArgoWorkflowTrigger
from simulated_k8s_cluster import SimulatedCluster

NAMESPACE = "batch"
CONN_ID = "bench_argo"


def workflow(seconds: int) -> dict[str, Any]:
    """A Workflow that runs ``seconds`` simulated seconds (a suspend step: no pods)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "bench-"},
        "spec": {
            "entrypoint": "pause",
            "templates": [{"name": "pause", "suspend": {"duration": str(seconds)}}],
        },
    }


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
    """Simulated minutes the tasks waited, added up."""
    latencies: list[float]
    cpu_seconds: float

    @property
    def per_task_minute(self) -> float:
        return self.requests / self.task_minutes


def finished_at(cluster: SimulatedCluster, name: str) -> float:
    """When the Workflow finished, in simulated seconds (``finishedAt`` has 1 s resolution)."""
    status = (cluster.get("workflows", NAMESPACE, name) or {}).get("status") or {}
    return cluster.clock.parse(status["finishedAt"])


async def wait_with_triggers(cluster: SimulatedCluster, workflows: list[Any]) -> Result:
    noticed: dict[str, float] = {}

    async def one(wf: Any) -> None:
        trigger = ArgoWorkflowTrigger(
            CONN_ID, "simulated", NAMESPACE, wf["metadata"]["name"], wf["metadata"]["uid"]
        )
        async for event in trigger.run():
            noticed[event.payload["name"]] = cluster.clock.now()
            return

    cluster.reset_counters()
    started, cpu = cluster.clock.now(), time.process_time()
    await asyncio.gather(*(one(wf) for wf in workflows))
    return _result(cluster, "airflow-k8s-jobs (shared watch)", workflows, noticed, started, cpu)


async def wait_by_polling(
    cluster: SimulatedCluster, workflows: list[Any], poll_seconds: float
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
                noticed[name] = cluster.clock.now()
                return
            await asyncio.sleep(cluster.clock.wall_delay(poll_seconds) or 0.001)

    cluster.reset_counters()
    started, cpu = cluster.clock.now(), time.process_time()
    try:
        await asyncio.gather(*(one(wf) for wf in workflows))
    finally:
        await client.close()
    return _result(cluster, f"polling every {poll_seconds:g}s", workflows, noticed, started, cpu)


def _result(
    cluster: SimulatedCluster,
    name: str,
    workflows: list[Any],
    noticed: dict[str, float],
    started: float,
    cpu: float,
) -> Result:
    cpu_seconds = time.process_time() - cpu
    counters = cluster.counters.snapshot()
    requests = sum(n for key, n in counters.items() if key.endswith(" workflows"))
    latencies = []
    for wf in workflows:
        wf_name = wf["metadata"]["name"]
        latencies.append(max(0.0, noticed[wf_name] - finished_at(cluster, wf_name)))
    waited = sum(noticed[wf["metadata"]["name"]] - started for wf in workflows)
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
            "median notice latency (simulated s)",
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
        "nodePools": [{"name": "default", "nodes": 1}],
        "argo": {},
    }
    with SimulatedCluster(config) as cluster, tempfile.TemporaryDirectory() as tmp:
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig.yaml")
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
            {"conn_type": "k8sjobs", "extra": {"kubeconfig_path": str(kubeconfig)}}
        )
        first = submit(cluster, args.workflows, args.seconds, args.spread, "watch")
        ours = await wait_with_triggers(cluster, first)
        second = submit(cluster, args.workflows, args.seconds, args.spread, "poll")
        theirs = await wait_by_polling(cluster, second, args.poll_seconds)
    return table(ours, theirs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=200, help="waiting tasks (200)")
    parser.add_argument("--seconds", type=int, default=60, help="shortest run, simulated s")
    parser.add_argument("--spread", type=int, default=120, help="longest minus shortest run")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="polling interval")
    parser.add_argument("--time-scale", type=float, default=0.1, help="wall s per simulated s")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    text = asyncio.run(main_async(args))
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
