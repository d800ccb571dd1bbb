"""Live pod logs while a trigger waits: each new line reaches the task log before the Job ends.

KubeJobTrigger runs as Airflow's triggerer runs it, against the simulated cluster with its clock
frozen (``timeScale: 0``): a container writes its lines spread over its run, and the clock moves
only by ``advance``, so the Job is provably still running when the first lines are read.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs.clusters import KubeClusterHook
from airflow_k8s_jobs.live_logs import STREAMS_PER_CLIENT, LiveLogs
from airflow_k8s_jobs.manifests.jobs import JobSpecRequest, build_job
from airflow_k8s_jobs.manifests.names import TaskInstanceKey
from airflow_k8s_jobs.retrying import RetryPolicy
from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger
from airflow_k8s_jobs.watching import WatchHub
from simulated_k8s_cluster import SimulatedCluster
from tests.integration.triggering import triggerer_run, until, use_kubeconfig_connection

CONN_ID = "sim_live_logs"
NAMESPACE = "batch"
IMAGE = "live-logs/work:1"
LINES = [f"step {n} of 6" for n in range(6)]  # one every 5 s of a 30 s run


@pytest.fixture
def simulated_cluster_config() -> dict[str, Any]:
    return {
        "timeScale": 0,
        "namespaces": [NAMESPACE],
        "nodePools": [
            {"name": "default", "nodes": 2, "capacity": {"cpu": "64", "memory": "256Gi"}}
        ],
        "behaviours": [{"match": {"image": IMAGE}, "seconds": 30, "stdout": LINES}],
    }


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path) -> str:
    return use_kubeconfig_connection(monkeypatch, CONN_ID, simulated_kubeconfig, NAMESPACE)


class TaskLog:
    """What the trigger logged: stdlib records (Airflow 2.11) or structlog lines (Airflow 3)."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]):
        self.caplog = caplog
        self.capsys = capsys
        self.printed = ""

    def messages(self) -> list[str]:
        self.printed += self.capsys.readouterr().out
        records = [r.getMessage() for r in self.caplog.records]
        # A stdlib record is printed too (Airflow 2.11): read the records when there are any.
        return records if any(" | " in m for m in records) else self.printed.splitlines()


@pytest.fixture
def task_log(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> TaskLog:
    caplog.set_level(logging.INFO)
    return TaskLog(caplog, capsys)


def create_job(cluster: SimulatedCluster, task: str, **request: Any) -> dict[str, Any]:
    manifest = build_job(
        JobSpecRequest(image=IMAGE, **request),
        TaskInstanceKey("live_logs", task, "manual__2026-12-01", -1, 1),
        NAMESPACE,
        "simulated",
    )
    return cluster.call(lambda: cluster.create(manifest))


def trigger_for(job: dict[str, Any], **kwargs: Any) -> KubeJobTrigger:
    return KubeJobTrigger(
        cluster_conn_id=CONN_ID,
        cluster_name="simulated",
        namespace=NAMESPACE,
        job_name=job["metadata"]["name"],
        job_uid=job["metadata"]["uid"],
        **kwargs,
    )


def pod_lines(task_log: TaskLog) -> list[tuple[str, str]]:
    """``(pod, text)`` of every live log line written so far."""
    found = []
    for message in task_log.messages():
        match = re.search(
            r"(?:^|\] |\s)(\S+-[a-z0-9]{5}) \| (.*?)(?: +\[airflow_k8s_jobs\S*\].*)?$", message
        )
        if match:
            found.append((match.group(1), match.group(2)))
    return found


async def advance(cluster: SimulatedCluster, seconds: float) -> None:
    await asyncio.to_thread(cluster.advance, seconds)


def job_finished(cluster: SimulatedCluster, name: str) -> bool:
    job = cluster.get("jobs", NAMESPACE, name) or {}
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


async def test_lines_reach_the_log_while_the_job_runs(
    simulated_cluster: SimulatedCluster, conn: str, task_log: TaskLog
) -> None:
    job = create_job(simulated_cluster, "one-pod")
    name = job["metadata"]["name"]
    waiter = asyncio.create_task(triggerer_run(trigger_for(job)))
    await advance(simulated_cluster, 12)  # lines 0, 1 and 2 are written; the run takes 30 s

    await until(lambda: len(pod_lines(task_log)) >= 3, what="three live lines")
    written = pod_lines(task_log)
    assert not job_finished(simulated_cluster, name)
    assert not waiter.done()
    (pod,) = simulated_cluster.list("pods", NAMESPACE)
    assert written[:3] == [(pod["metadata"]["name"], text) for text in LINES[:3]]

    await advance(simulated_cluster, 25)
    event = await asyncio.wait_for(waiter, 20)
    assert event is not None and event.payload["status"] == "success", event
    # Every line once, in order, and nothing after the trigger fired.
    assert [text for _, text in pod_lines(task_log)] == LINES
    assert not WatchHub.current().informers


async def test_a_stream_broken_by_an_api_server_restart_resumes_without_repeating(
    simulated_cluster: SimulatedCluster, conn: str, task_log: TaskLog
) -> None:
    job = create_job(simulated_cluster, "restart")
    waiter = asyncio.create_task(triggerer_run(trigger_for(job)))
    await advance(simulated_cluster, 7)
    await until(lambda: len(pod_lines(task_log)) >= 2, what="two live lines")

    await asyncio.to_thread(simulated_cluster.restart_api_server, 1.0)
    await advance(simulated_cluster, 10)
    await until(lambda: len(pod_lines(task_log)) >= 4, timeout=30, what="lines after restart")
    await advance(simulated_cluster, 20)
    event = await asyncio.wait_for(waiter, 30)

    assert event is not None and event.payload["status"] == "success", event
    assert [text for _, text in pod_lines(task_log)] == LINES
    printed = task_log.messages() + task_log.printed.splitlines()
    resumed = [m for m in printed if "resuming" in m]
    assert resumed, "the broken stream was not noticed"


async def test_every_pod_of_later_waves_is_followed_within_the_stream_cap(
    simulated_cluster: SimulatedCluster, conn: str, task_log: TaskLog
) -> None:
    job = create_job(simulated_cluster, "waves", parallelism=2, completions=5)
    waiter = asyncio.create_task(triggerer_run(trigger_for(job, live_log_streams=1)))
    for _ in range(3):
        await advance(simulated_cluster, 31)
    await advance(simulated_cluster, 31)
    event = await asyncio.wait_for(waiter, 30)

    assert event is not None and event.payload["status"] == "success", event
    pods = {p["metadata"]["name"] for p in simulated_cluster.list("pods", NAMESPACE)}
    assert len(pods) == 5
    lines = pod_lines(task_log)
    # Each pod's lines, complete and in order (the cap queues pods, it does not drop them)...
    for pod in pods:
        assert [text for name, text in lines if name == pod] == LINES, pod
    # ...and one pod at a time: a pod's lines are never interleaved with another's.
    order = [name for name, _ in lines]
    assert [order[i] for i in range(0, len(order), len(LINES))] == list(dict.fromkeys(order)), order


async def test_closing_does_not_wait_for_streams_to_be_resumed(
    simulated_cluster: SimulatedCluster, conn: str, task_log: TaskLog
) -> None:
    # The container's log ends before the pod watch says the container ended (here: the pod is
    # never shown again), so the stream waits to be resumed, for ever with this policy. Once the
    # outcome is known, closing must not wait for it (a kubelet, too, ends a followed log only
    # seconds after its container exited).
    create_job(simulated_cluster, "closing")
    (pod,) = await until(lambda: simulated_cluster.list("pods", NAMESPACE), what="the pod")

    def running_pod() -> dict[str, Any] | None:
        now = simulated_cluster.get("pods", NAMESPACE, pod["metadata"]["name"]) or {}
        statuses = (now.get("status") or {}).get("containerStatuses") or []
        return now if any("running" in (s.get("state") or {}) for s in statuses) else None

    await advance(simulated_cluster, 1)  # scheduled, pulled, started; no line written yet
    running = await until(running_pod, what="the container running")
    never = RetryPolicy(asleep=lambda _seconds: asyncio.Event().wait())
    client = await KubeClusterHook(conn).async_api_client()
    try:
        live = LiveLogs(client, NAMESPACE, logging.getLogger("live"), policy=never)
        live.update([running])
        await advance(simulated_cluster, 31)  # every line written, the container ended
        await until(lambda: len(pod_lines(task_log)) == len(LINES), what="every line")

        await asyncio.wait_for(live.aclose(grace=120), 20)
    finally:
        await client.close()
    assert [text for _, text in pod_lines(task_log)] == LINES


async def test_live_logs_can_be_turned_off(
    simulated_cluster: SimulatedCluster, conn: str, task_log: TaskLog
) -> None:
    job = create_job(simulated_cluster, "quiet")
    waiter = asyncio.create_task(triggerer_run(trigger_for(job, live_log_streams=0)))
    await advance(simulated_cluster, 31)
    event = await asyncio.wait_for(waiter, 20)

    assert event is not None and event.payload["status"] == "success", event
    assert pod_lines(task_log) == []
    assert simulated_cluster.counters.snapshot().get("get pods/log") is None


def test_the_process_keeps_connections_for_its_watches() -> None:
    # kubernetes_asyncio pools 100 connections per ApiClient; watches and requests need some.
    from kubernetes_asyncio.client import Configuration

    assert Configuration().connection_pool_maxsize // 2 >= STREAMS_PER_CLIENT
