"""ArgoWorkflowTrigger against the simulated cluster's Argo controller, driven as Airflow's
triggerer drives it (``triggering.triggerer_run``).

Time in the simulated cluster is frozen (``timeScale: 0``) and moves only by ``advance``, so a
Workflow is provably still running (or still Pending) while the tests look at it.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs._compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS
from airflow_k8s_jobs.kube import PODS, WORKFLOWS
from airflow_k8s_jobs.manifests.names import TaskInstanceKey
from airflow_k8s_jobs.manifests.workflows import WorkflowRequest, build_workflow
from airflow_k8s_jobs.triggers.argo import ArgoWorkflowTrigger
from airflow_k8s_jobs.watching import WatchHub
from simulated_k8s_cluster import SimulatedCluster
from tests.integration.triggering import (
    USER_ACTION,
    cancel,
    deferred_task_instance,
    migrate_airflow_db,
    set_task_state,
    triggerer_run,
    until,
    use_kubeconfig_connection,
)

CONN_ID = "sim_argo"
NAMESPACE = "batch"
IMAGE = "argo-trigger-test/work:1"
POSTPONED = "Workflow processing has been postponed"
LINES = [f"step {n} of 4" for n in range(4)]


def one_step(seconds: float = 30) -> dict[str, Any]:
    """A Workflow of one container step that runs ``seconds`` simulated seconds."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "work-"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "metadata": {
                        "annotations": {
                            "sim.airflow-k8s-jobs/behaviour": json.dumps(
                                {"seconds": seconds, "files": {"/tmp/answer": "42"}}
                            )
                        }
                    },
                    "outputs": {
                        "parameters": [{"name": "answer", "valueFrom": {"path": "/tmp/answer"}}]
                    },
                    "container": {"image": IMAGE, "args": ["work"]},
                }
            ],
        },
    }


def waits(seconds: str = "30") -> dict[str, Any]:
    """A Workflow that only waits (a suspend template with a duration): no pods."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "wait-"},
        "spec": {
            "entrypoint": "pause",
            "templates": [{"name": "pause", "suspend": {"duration": seconds}}],
        },
    }


def cluster_config(**argo: Any) -> dict[str, Any]:
    return {
        "timeScale": 0,
        "namespaces": [NAMESPACE],
        "nodePools": [
            {"name": "default", "nodes": 2, "capacity": {"cpu": "64", "memory": "256Gi"}}
        ],
        "behaviours": [
            {"match": {"image": IMAGE}, "seconds": 30, "files": {"/tmp/answer": "42"}},
        ],
        "argo": argo,
    }


@pytest.fixture
def simulated_cluster_config() -> dict[str, Any]:
    return cluster_config()


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path) -> str:
    return use_kubeconfig_connection(monkeypatch, CONN_ID, simulated_kubeconfig, NAMESPACE)


def create_workflows(
    cluster: SimulatedCluster, tasks: list[str], manifest: dict[str, Any]
) -> list[dict[str, Any]]:
    """The Workflows ArgoWorkflowOperator would submit for these tasks (created directly)."""
    manifests = [
        build_workflow(
            WorkflowRequest(workflow=manifest),
            TaskInstanceKey("argo_trigger_tests", task, "manual__2026-11-01", -1, 1),
            NAMESPACE,
            "simulated",
        )
        for task in tasks
    ]
    return cluster.call(lambda: [cluster.create(m) for m in manifests])


def trigger_for(workflow: dict[str, Any], **kwargs: Any) -> ArgoWorkflowTrigger:
    return ArgoWorkflowTrigger(
        cluster_conn_id=CONN_ID,
        cluster_name="simulated",
        namespace=NAMESPACE,
        workflow_name=workflow["metadata"]["name"],
        workflow_uid=workflow["metadata"]["uid"],
        **kwargs,
    )


def workflow(cluster: SimulatedCluster, name: str) -> dict[str, Any]:
    found = cluster.get("workflows", NAMESPACE, name)
    assert found is not None, f"Workflow {name} is gone"
    return found


def phase(cluster: SimulatedCluster, name: str) -> str:
    return str((workflow(cluster, name).get("status") or {}).get("phase") or "")


def subscribers() -> int:
    informers = WatchHub.current().informers.values()
    return min((len(i.subscribers) for i in informers), default=0)


async def waiting(cluster: SimulatedCluster, count: int) -> None:
    """Until ``count`` triggers wait on synced informers whose watches the cluster has opened."""

    def ready() -> bool:
        informers = WatchHub.current().informers
        return subscribers() == count and cluster.open_watches >= len(informers)

    await until(ready, what="triggers")
    for informer in WatchHub.current().informers.values():
        await informer.wait_synced()


async def advance(cluster: SimulatedCluster, seconds: float) -> None:
    await asyncio.to_thread(cluster.advance, seconds)


# --- waiting ------------------------------------------------------------------------------------


async def test_fires_once_the_workflow_succeeded_with_its_outputs(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    (wf,) = create_workflows(simulated_cluster, ["ok"], one_step())
    task = asyncio.create_task(triggerer_run(trigger_for(wf)))
    await waiting(simulated_cluster, 1)
    await advance(simulated_cluster, 5)
    assert phase(simulated_cluster, wf["metadata"]["name"]) == "Running"
    assert not task.done()

    await advance(simulated_cluster, 60)
    event = await asyncio.wait_for(task, 10)

    assert event is not None
    payload = event.payload
    assert payload["status"] == "success"
    assert payload["phase"] == "Succeeded"
    assert list(payload["node_outputs"].values()) == [{"answer": "42"}]
    # One watch of Workflows, which began with their state: no list, never a GET.
    assert simulated_cluster.requests(verb="watch", resource="workflows") == 1
    assert simulated_cluster.requests(verb="list", resource="workflows") == 0
    assert simulated_cluster.requests(verb="get", resource="workflows") == 0


@pytest.mark.simulated_cluster(cluster_config(parallelism=1))
async def test_a_pending_workflow_is_not_finished(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    """Controller parallelism 1: the second Workflow stays Pending (postponed) until the first
    ends, and the trigger keeps waiting all that time."""
    holder, ours = create_workflows(simulated_cluster, ["holder", "ours"], one_step(300))
    name = ours["metadata"]["name"]
    task = asyncio.create_task(triggerer_run(trigger_for(ours)))
    await waiting(simulated_cluster, 1)
    for _ in range(3):
        await advance(simulated_cluster, 60)
        assert phase(simulated_cluster, name) == "Pending"
        assert POSTPONED in (workflow(simulated_cluster, name)["status"].get("message") or "")
        assert not task.done()

    await advance(simulated_cluster, 300)  # the holder ends; ours starts, then runs 300 s
    assert phase(simulated_cluster, holder["metadata"]["name"]) == "Succeeded"
    assert phase(simulated_cluster, name) == "Running"
    assert not task.done()
    await advance(simulated_cluster, 310)
    event = await asyncio.wait_for(task, 10)
    assert event is not None and event.payload["status"] == "success"


async def test_a_workflow_deleted_behind_our_back_fails_saying_so(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    (wf,) = create_workflows(simulated_cluster, ["deleted"], one_step())
    task = asyncio.create_task(triggerer_run(trigger_for(wf)))
    await waiting(simulated_cluster, 1)
    await advance(simulated_cluster, 5)
    simulated_cluster.reset_counters()

    simulated_cluster.delete("workflows", NAMESPACE, wf["metadata"]["name"])
    event = await asyncio.wait_for(task, 10)

    assert event is not None
    assert event.payload["status"] == "failed"
    assert event.payload["reason"] == "WorkflowDeleted"
    # The watch said so, and one GET confirmed it (404): a cache can lag, the server cannot.
    assert simulated_cluster.requests(verb="get", resource="workflows") == 1
    assert "was deleted while the task waited for it" in event.payload["message"]
    assert f"Workflow {NAMESPACE}/{wf['metadata']['name']} on simulated" in event.payload["message"]


async def test_a_failed_workflow_fires_failed(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    simulated_cluster.add_behaviour({"match": {"image": IMAGE}, "seconds": 5, "exitCode": 2})
    manifest = one_step()
    del manifest["spec"]["templates"][0]["metadata"]  # the behaviour rule decides
    (wf,) = create_workflows(simulated_cluster, ["fails"], manifest)
    task = asyncio.create_task(triggerer_run(trigger_for(wf)))
    await waiting(simulated_cluster, 1)
    await advance(simulated_cluster, 30)
    event = await asyncio.wait_for(task, 10)
    assert event is not None
    assert event.payload["status"] == "failed"
    assert event.payload["phase"] == "Failed"


async def test_the_deadline_fires_timeout(simulated_cluster: SimulatedCluster, conn: str) -> None:
    import time

    (wf,) = create_workflows(simulated_cluster, ["late"], one_step())
    trigger = trigger_for(wf, deadline=time.time() + 0.5)
    event = await asyncio.wait_for(triggerer_run(trigger), 10)
    assert event is not None
    assert event.payload["status"] == "timeout"
    assert "execution_timeout" in event.payload["message"]


@pytest.mark.simulated_cluster(cluster_config(compressNodes=True))
async def test_compressed_nodes_are_decoded(simulated_cluster: SimulatedCluster, conn: str) -> None:
    (wf,) = create_workflows(simulated_cluster, ["compressed"], one_step(5))
    task = asyncio.create_task(triggerer_run(trigger_for(wf)))
    await waiting(simulated_cluster, 1)
    await advance(simulated_cluster, 30)
    event = await asyncio.wait_for(task, 10)
    status = workflow(simulated_cluster, wf["metadata"]["name"])["status"]
    assert "compressedNodes" in status and not status.get("nodes")
    assert event is not None and event.payload["status"] == "success"
    assert any(params == {"answer": "42"} for params in event.payload["node_outputs"].values())


# --- many triggers, one watch --------------------------------------------------------------------


async def test_200_waiting_triggers_share_two_watches(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    """One watch of the managed Workflows, one of Argo's pods (for their live logs), each
    beginning with the state; nothing else while 200 wait, and nothing more until they end."""
    workflows = create_workflows(simulated_cluster, [f"t{i:03d}" for i in range(200)], waits("60"))
    simulated_cluster.settle()
    simulated_cluster.reset_counters()
    tasks = [asyncio.create_task(triggerer_run(trigger_for(wf))) for wf in workflows]
    await waiting(simulated_cluster, 200)

    informers = list(WatchHub.current().informers.values())
    assert [i.key.resource for i in informers] == [WORKFLOWS, PODS]
    assert [(i.syncs, i.watches) for i in informers] == [(1, 1), (1, 1)]
    mid = dict(simulated_cluster.counters.snapshot())
    await advance(simulated_cluster, 30)  # half way: every Workflow changed, none finished
    assert not any(t.done() for t in tasks)

    await advance(simulated_cluster, 40)
    events = await asyncio.wait_for(asyncio.gather(*tasks), 30)

    assert [e.payload["status"] for e in events if e is not None] == ["success"] * 200
    assert simulated_cluster.counters.snapshot() == mid == {"watch workflows": 1, "watch pods": 1}


async def test_main_container_lines_reach_the_log_while_the_workflow_runs(
    simulated_cluster: SimulatedCluster, conn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    simulated_cluster.add_behaviour(
        {"match": {"image": "argo-trigger-test/talk:1"}, "seconds": 30, "stdout": LINES}
    )
    manifest = one_step()
    manifest["spec"]["templates"][0]["metadata"] = {}
    manifest["spec"]["templates"][0]["container"]["image"] = "argo-trigger-test/talk:1"
    manifest["spec"]["templates"][0].pop("outputs")
    (wf,) = create_workflows(simulated_cluster, ["talks"], manifest)
    printed = ""

    def lines() -> list[str]:
        nonlocal printed
        printed += capsys.readouterr().out
        return re.findall(r"\S \| (step \d of 4)", printed)

    task = asyncio.create_task(triggerer_run(trigger_for(wf)))
    await advance(simulated_cluster, 12)
    await until(lambda: len(lines()) >= 2, what="two live lines")
    assert phase(simulated_cluster, wf["metadata"]["name"]) == "Running"
    await advance(simulated_cluster, 30)
    event = await asyncio.wait_for(task, 20)

    assert event is not None and event.payload["status"] == "success", event
    assert lines() == LINES  # the main container's, once each; not Argo's wait container


# --- kill while deferred ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_db() -> None:
    migrate_airflow_db()


@pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="the triggerer calls on_kill() from Airflow 3.3 on"
)
@pytest.mark.parametrize("strategy", ["Terminate", "Stop"])
async def test_user_kill_shuts_the_workflow_down(
    simulated_cluster: SimulatedCluster, conn: str, strategy: str
) -> None:
    (wf,) = create_workflows(simulated_cluster, [f"killed-{strategy.lower()}"], one_step(300))
    name = wf["metadata"]["name"]
    task = asyncio.create_task(triggerer_run(trigger_for(wf, shutdown_on_kill=strategy)))
    await waiting(simulated_cluster, 1)
    await advance(simulated_cluster, 5)
    assert phase(simulated_cluster, name) == "Running"

    await cancel(task, USER_ACTION)  # mark failed / clear while deferred (Airflow 3.3+)

    assert workflow(simulated_cluster, name)["spec"]["shutdown"] == strategy
    await advance(simulated_cluster, 1)
    status = workflow(simulated_cluster, name)["status"]
    assert status["phase"] == "Failed"
    assert status["message"] == f"Stopped with strategy '{strategy}'"
    assert simulated_cluster.requests(verb="patch", resource="workflows") == 1


async def test_on_kill_after_the_trigger_fired_stops_nothing(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    (wf,) = create_workflows(simulated_cluster, ["finished"], one_step(5))
    trigger = trigger_for(wf)
    task = asyncio.create_task(triggerer_run(trigger))
    await waiting(simulated_cluster, 1)
    await advance(simulated_cluster, 30)
    event = await asyncio.wait_for(task, 10)
    assert event is not None and event.payload["status"] == "success"
    await trigger.on_kill()
    await trigger.cleanup()
    assert simulated_cluster.requests(verb="patch", resource="workflows") == 0


@pytest.mark.skipif(
    AIRFLOW_V_3_0_PLUS,
    reason="Airflow 2.11 path (task instance row in the metadata database); on 3.3 the "
    "triggerer calls on_kill() instead",
)
@pytest.mark.parametrize(
    ("situation", "state", "try_number", "stopped"),
    [
        ("triggerer restart: still deferred", "deferred", 1, False),
        ("fired by another triggerer, resuming", "scheduled", 1, False),
        ("marked failed", "failed", 1, True),
        ("cleared", None, 1, True),
        ("cleared and already scheduled as try 2", "scheduled", 2, True),
    ],
)
async def test_cleanup_on_airflow_2_stops_only_when_the_try_is_over(
    simulated_cluster: SimulatedCluster,
    conn: str,
    airflow_db: None,
    situation: str,
    state: str | None,
    try_number: int,
    stopped: bool,
) -> None:
    (wf,) = create_workflows(simulated_cluster, ["cleanup"], one_step(300))
    name = wf["metadata"]["name"]
    trigger = trigger_for(wf)
    trigger.task_instance = deferred_task_instance()
    task = asyncio.create_task(triggerer_run(trigger))
    await waiting(simulated_cluster, 1)

    set_task_state(trigger.task_instance, state, try_number)
    await cancel(task)  # the triggerer cancels the trigger, then calls cleanup()

    shutdown = workflow(simulated_cluster, name)["spec"].get("shutdown")
    assert shutdown == ("Terminate" if stopped else None), situation
    assert simulated_cluster.requests(verb="patch", resource="workflows") == int(stopped)


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="Airflow 3.3+: on_kill() does the stopping")
async def test_triggerer_restart_on_airflow_3_3_stops_nothing(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    (wf,) = create_workflows(simulated_cluster, ["restart"], one_step(300))
    task = asyncio.create_task(triggerer_run(trigger_for(wf)))
    await waiting(simulated_cluster, 1)
    await cancel(task)  # shutdown: no message, so no on_kill(); cleanup() runs
    assert simulated_cluster.requests(verb="patch", resource="workflows") == 0
    assert "shutdown" not in workflow(simulated_cluster, wf["metadata"]["name"])["spec"]
