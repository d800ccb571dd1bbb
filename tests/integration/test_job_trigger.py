"""KubeJobTrigger against the simulated cluster, driven as Airflow's triggerer drives it.

``triggerer_run`` (in ``triggering.py``) does what ``TriggerRunner.run_trigger`` does around a
trigger (Airflow 2.11 and 3.3): on a user action it calls ``on_kill()`` (3.3+), and always
``cleanup()`` at the end.

Time in the simulated cluster is frozen (``timeScale: 0``) and moves only by ``advance``, so a
Job is provably still running while the tests look at it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import kubernetes_asyncio
import pytest

from airflow_k8s_jobs._compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS, TriggerEvent
from airflow_k8s_jobs.manifests.jobs import JobSpecRequest, build_job
from airflow_k8s_jobs.manifests.names import TaskInstanceKey
from airflow_k8s_jobs.status.pods import ROUTINE_EVENT_REASONS
from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger
from airflow_k8s_jobs.watching import Subscription, WatchHub
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

CONN_ID = "sim_jobs"
NAMESPACE = "batch"
IMAGE = "trigger-test/work:1"
START = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture
def simulated_cluster_config() -> dict[str, Any]:
    return {
        "timeScale": 0,
        "namespaces": [NAMESPACE],
        "nodePools": [
            {
                "name": "default",
                "nodes": 4,
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "110"},
            }
        ],
        "behaviours": [{"match": {"image": IMAGE}, "seconds": 30, "stdout": "working"}],
    }


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path) -> str:
    return use_kubeconfig_connection(monkeypatch, CONN_ID, simulated_kubeconfig, NAMESPACE)


def create_job(cluster: SimulatedCluster, task: str) -> dict[str, Any]:
    """The Job KubeJobOperator would create for a task instance try (created behind the API)."""
    return create_jobs(cluster, [task])[0]


def create_jobs(
    cluster: SimulatedCluster, tasks: list[str], namespace: str = NAMESPACE, **request: Any
) -> list[dict[str, Any]]:
    manifests = [
        build_job(
            JobSpecRequest(image=IMAGE, **request),
            TaskInstanceKey("trigger_tests", task, "manual__2026-11-01", -1, 1),
            namespace,
            "simulated",
        )
        for task in tasks
    ]
    # One hop to the cluster's thread: the controllers catch up once, not after every Job.
    return cluster.call(lambda: [cluster.create(m) for m in manifests])


def trigger_for(job: dict[str, Any]) -> KubeJobTrigger:
    return KubeJobTrigger(
        cluster_conn_id=CONN_ID,
        cluster_name="simulated",
        namespace=job["metadata"]["namespace"],
        job_name=job["metadata"]["name"],
        job_uid=job["metadata"]["uid"],
        capacity_timeout=600.0,
    )


def subscribers() -> int:
    """Subscriptions of the running loop's watch hub (the waiting triggers)."""
    informers = WatchHub.current().informers.values()
    return min((len(i.subscribers) for i in informers), default=0)


async def waiting(cluster: SimulatedCluster, count: int) -> None:
    """Until ``count`` triggers wait on three synced informers (jobs, pods, events)."""
    await until(lambda: subscribers() == count and cluster.open_watches >= 3, what="triggers")
    for informer in WatchHub.current().informers.values():
        await informer.wait_synced()


async def advance(cluster: SimulatedCluster, seconds: float) -> None:
    await asyncio.to_thread(cluster.advance, seconds)


# --- the Airflow 2.11 task instance in the metadata database ------------------------------------


@pytest.fixture(scope="module")
def airflow_db() -> None:
    migrate_airflow_db()


# --- kill while deferred ------------------------------------------------------------------------


@pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="the triggerer calls on_kill() from Airflow 3.3 on"
)
async def test_user_kill_deletes_the_job_foreground(
    simulated_cluster: SimulatedCluster, conn: str, aapi: Any
) -> None:
    job = create_job(simulated_cluster, "killed")
    name = job["metadata"]["name"]
    await advance(simulated_cluster, 1)
    assert len(simulated_cluster.list("pods", NAMESPACE)) == 1
    seen: list[tuple[str, dict[str, Any]]] = []

    async def watch_job() -> None:
        batch = kubernetes_asyncio.client.BatchV1Api(aapi)
        w = kubernetes_asyncio.watch.Watch()
        async for event in w.stream(
            batch.list_namespaced_job, NAMESPACE, field_selector=f"metadata.name={name}"
        ):
            seen.append((event["type"], event["raw_object"]["metadata"]))
            if event["type"] == "DELETED":
                return

    trigger = trigger_for(job)
    task = asyncio.create_task(triggerer_run(trigger))
    await waiting(simulated_cluster, 1)
    watcher = asyncio.create_task(watch_job())
    await until(lambda: simulated_cluster.open_watches >= 4, what="the test's own watch")

    await cancel(task, USER_ACTION)  # mark failed / clear while deferred (Airflow 3.3+)

    await asyncio.wait_for(watcher, 10)
    assert simulated_cluster.get("jobs", NAMESPACE, name) is None
    assert simulated_cluster.list("pods", NAMESPACE) == []
    # Foreground: the Job first waited for its pods, with the foregroundDeletion finalizer.
    assert any(
        kind == "MODIFIED"
        and meta.get("deletionTimestamp")
        and "foregroundDeletion" in (meta.get("finalizers") or [])
        for kind, meta in seen
    ), seen
    assert simulated_cluster.requests(verb="delete", resource="jobs") == 1


async def test_on_kill_after_the_trigger_fired_deletes_nothing(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    job = create_job(simulated_cluster, "finished")
    trigger = trigger_for(job)
    task = asyncio.create_task(triggerer_run(trigger))
    await waiting(simulated_cluster, 1)
    await advance(simulated_cluster, 40)
    event = await asyncio.wait_for(task, 10)
    assert event is not None and event.payload["status"] == "success"
    await trigger.on_kill()
    await trigger.cleanup()
    assert simulated_cluster.requests(verb="delete", resource="jobs") == 0
    assert simulated_cluster.get("jobs", NAMESPACE, job["metadata"]["name"]) is not None


@pytest.mark.skipif(
    AIRFLOW_V_3_0_PLUS,
    reason="Airflow 2.11 path (task instance row in the metadata database); on 3.3 the "
    "triggerer calls on_kill() instead, and the 3.0-3.2 path asks the task supervisor "
    "(RuntimeTaskInstance.get_task_states), which does not run in-process",
)
@pytest.mark.parametrize(
    ("situation", "state", "try_number", "deleted"),
    [
        ("triggerer restart: still deferred", "deferred", 1, False),
        ("fired by another triggerer, resuming", "scheduled", 1, False),
        ("marked failed", "failed", 1, True),
        ("marked success", "success", 1, True),
        ("cleared", None, 1, True),
        ("cleared and already scheduled as try 2", "scheduled", 2, True),
    ],
)
async def test_cleanup_on_airflow_2_deletes_only_when_the_try_is_over(
    simulated_cluster: SimulatedCluster,
    conn: str,
    airflow_db: None,
    situation: str,
    state: str | None,
    try_number: int,
    deleted: bool,
) -> None:
    job = create_job(simulated_cluster, "cleanup")
    name = job["metadata"]["name"]
    trigger = trigger_for(job)
    trigger.task_instance = deferred_task_instance()
    task = asyncio.create_task(triggerer_run(trigger))
    await waiting(simulated_cluster, 1)

    set_task_state(trigger.task_instance, state, try_number)
    await cancel(task)  # the triggerer cancels the trigger, then calls cleanup()

    if deleted:
        await until(lambda: simulated_cluster.get("jobs", NAMESPACE, name) is None, what=name)
        assert simulated_cluster.list("pods", NAMESPACE) == []
    else:
        assert simulated_cluster.get("jobs", NAMESPACE, name) is not None
    expected = 1 if deleted else 0
    assert simulated_cluster.requests(verb="delete", resource="jobs") == expected, situation


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="Airflow 3.3+: on_kill() does the deleting")
async def test_cleanup_on_airflow_3_3_never_deletes(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    job = create_job(simulated_cluster, "no-cleanup")
    task = asyncio.create_task(triggerer_run(trigger_for(job)))
    await waiting(simulated_cluster, 1)
    await cancel(task)  # shutdown: no message, so no on_kill(); cleanup() runs
    assert simulated_cluster.requests(verb="delete", resource="jobs") == 0
    assert simulated_cluster.get("jobs", NAMESPACE, job["metadata"]["name"]) is not None


async def test_a_cancellation_arriving_with_a_change_is_not_lost() -> None:
    """The triggerer cancels a trigger just as its Job changes: the trigger must stop.

    (``asyncio.wait_for`` before Python 3.12 returns the result instead, and the cancelled
    trigger would go on waiting; the restart test above hung that way now and then.)
    """
    for steps in (0, 1, 2):  # the loop's steps between the change and the cancellation
        for _ in range(10):
            subscription = Subscription(informers={})
            waiter = asyncio.create_task(subscription.changed(timeout=60))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            subscription.notify(None, None)  # type: ignore[arg-type]
            for _ in range(steps):
                await asyncio.sleep(0)
            if waiter.done():
                assert waiter.result() is True  # the change came first: nothing to lose
                continue
            await cancel(waiter)


# --- triggerer restart ----------------------------------------------------------------------------


def test_triggerer_restart_resumes_without_side_effects(
    simulated_cluster: SimulatedCluster, conn: str, request: pytest.FixtureRequest
) -> None:
    job = create_job(simulated_cluster, "restarted")
    name = job["metadata"]["name"]
    first = trigger_for(job)
    if not AIRFLOW_V_3_0_PLUS:
        request.getfixturevalue("airflow_db")
        first.task_instance = deferred_task_instance()

    async def old_triggerer() -> None:
        task = asyncio.create_task(triggerer_run(first))
        await waiting(simulated_cluster, 1)
        await advance(simulated_cluster, 10)  # a third of the way
        await cancel(task)  # shutdown
        assert not WatchHub.current().informers  # its watches were closed

    asyncio.run(old_triggerer())
    assert (
        simulated_cluster.get("jobs", NAMESPACE, name)["metadata"]["uid"]
        == (job["metadata"]["uid"])
    )
    classpath, kwargs = first.serialize()
    assert classpath == "airflow_k8s_jobs.triggers.jobs.KubeJobTrigger"
    json.dumps(kwargs)  # stored in the database: plain JSON, no credentials
    assert set(kwargs) >= {"cluster_conn_id", "namespace", "job_name", "job_uid"}

    async def new_triggerer() -> TriggerEvent | None:
        second = KubeJobTrigger(**kwargs)
        task = asyncio.create_task(triggerer_run(second))
        await waiting(simulated_cluster, 1)
        await advance(simulated_cluster, 30)
        return await asyncio.wait_for(task, 10)

    event = asyncio.run(new_triggerer())

    assert event is not None and event.payload["status"] == "success", event
    assert event.payload["uid"] == job["metadata"]["uid"]
    assert simulated_cluster.requests(verb="create", resource="jobs") == 0
    assert simulated_cluster.requests(verb="delete", resource="jobs") == 0
    assert simulated_cluster.requests(verb="get", resource="jobs") == 0
    assert len(simulated_cluster.list("jobs", NAMESPACE)) == 1
    assert len(simulated_cluster.list("pods", NAMESPACE)) == 1


# --- many triggers, one event loop ----------------------------------------------------------------


async def test_200_waiting_triggers_share_three_watches(
    simulated_cluster: SimulatedCluster, conn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = create_jobs(simulated_cluster, [f"task-{n:03d}" for n in range(200)])
    await advance(simulated_cluster, 1)
    simulated_cluster.reset_counters()
    started = time.monotonic()

    tasks = [asyncio.create_task(triggerer_run(trigger_for(job))) for job in jobs]
    await waiting(simulated_cluster, 200)
    subscribed = time.monotonic() - started
    at_start = simulated_cluster.counters.snapshot()
    await advance(simulated_cluster, 10)  # running, not finished
    await asyncio.sleep(0)
    assert not any(t.done() for t in tasks)
    mid_wait = simulated_cluster.counters.snapshot()
    await advance(simulated_cluster, 25)  # every pod finishes
    events = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    total = time.monotonic() - started
    at_end = simulated_cluster.counters.snapshot()

    assert [e.payload["status"] for e in events] == ["success"] * 200
    assert {e.payload["name"] for e in events} == {j["metadata"]["name"] for j in jobs}
    for counters in (at_start, mid_wait, at_end):
        for resource in ("jobs", "pods", "events"):
            assert counters.get(f"watch {resource}") == 1, counters  # beginning with the state
            assert not counters.get(f"list {resource}"), counters
        assert not counters.get("get jobs"), counters
        assert not counters.get("get pods"), counters
    with capsys.disabled():
        print(
            f"\n200 triggers: subscribed in {subscribed:.2f}s, all fired {total:.2f}s after "
            f"start; requests at start {at_start}, while waiting {mid_wait}, at the end {at_end}"
        )


async def test_a_waiting_trigger_is_woken_only_by_its_own_jobs_changes(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    mine = create_job(simulated_cluster, "mine")
    await advance(simulated_cluster, 1)  # its pod runs: nothing more happens for 30 s
    trigger = KubeJobTrigger(  # no deadline at all
        CONN_ID,
        "simulated",
        NAMESPACE,
        mine["metadata"]["name"],
        mine["metadata"]["uid"],
        capacity_timeout=None,
    )
    task = asyncio.create_task(triggerer_run(trigger))
    await waiting(simulated_cluster, 1)
    hub = WatchHub.current()
    (subscription,) = {s for i in hub.informers.values() for s in i.subscribers}
    pods = next(i for i in hub.informers.values() if i.key.resource.plural == "pods")
    events = next(i for i in hub.informers.values() if i.key.resource.plural == "events")
    await until(lambda: len(pods.objects) == 1, what="its pod in the cache")
    settled = subscription.wakeups

    # Twenty other Jobs start: their pods and Events pass through the same watches. Ten run;
    # ten wait for a node that can fit them (FailedScheduling Events).
    create_jobs(simulated_cluster, [f"other-{n:02d}" for n in range(10)])
    create_jobs(
        simulated_cluster,
        [f"unschedulable-{n:02d}" for n in range(10)],
        container_resources={"requests": {"cpu": "100"}},
    )
    await advance(simulated_cluster, 1)
    await until(
        lambda: (
            len(pods.objects) == 21
            and all((p.get("status") or {}).get("phase") for p in pods.objects.values())
            and sum(e["reason"] == "FailedScheduling" for e in events.objects.values()) >= 10
        ),
        what="the other Jobs' pods and events in the cache",
    )
    assert subscription.wakeups == settled, "no other Job's change woke it"
    # The routine Events of healthy pods (scheduled, pulled, started...) are not even sent.
    reasons = {e["reason"] for e in events.objects.values()}
    assert reasons.isdisjoint(ROUTINE_EVENT_REASONS), reasons
    every_reason = {e["reason"] for e in simulated_cluster.list("events", NAMESPACE)}
    assert {"Scheduled", "Started", "SuccessfulCreate"} <= every_reason
    assert not task.done()
    assert subscription.timeout is None, "without a deadline it waits for a change only"

    await advance(simulated_cluster, 30)  # its pod finishes (and the others')
    event = await asyncio.wait_for(task, 10)
    assert event is not None and event.payload["status"] == "success"
    assert subscription.wakeups > settled


# --- expired credentials ------------------------------------------------------------------------


async def test_token_expired_mid_wait_is_reloaded(
    simulated_cluster: SimulatedCluster, conn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_k8s_jobs.watching")
    jobs = create_jobs(simulated_cluster, [f"token-{n}" for n in range(5)])
    tasks = [asyncio.create_task(triggerer_run(trigger_for(job))) for job in jobs]
    await waiting(simulated_cluster, 5)
    await advance(simulated_cluster, 10)
    simulated_cluster.reset_counters()

    new_token = simulated_cluster.expire_token()  # the old one gets 401; kubeconfig rewritten
    simulated_cluster.restart_api_server()  # drops every watch: they reconnect, get 401
    await until(lambda: simulated_cluster.open_watches == 3, what="the watches to reconnect")
    informers = list(WatchHub.current().informers.values())
    for informer in informers:
        await informer.wait_synced()
        assert informer.api_client.configuration.api_key["BearerToken"] in (
            new_token,
            f"Bearer {new_token}",
        )
    await advance(simulated_cluster, 25)
    events = await asyncio.wait_for(asyncio.gather(*tasks), 30)

    assert [e.payload["status"] for e in events] == ["success"] * 5
    # The watches were refused (401) with the old token and reconnected with the new one. With
    # older kubernetes_asyncio releases a reload can reach the other informers' clients before
    # their own 401, so fewer than three may be refused there.
    rejected = [r for r in caplog.records if "credentials rejected (401)" in r.getMessage()]
    assert 1 <= len(rejected) <= 3, [r.getMessage() for r in caplog.records]
    for resource in ("jobs", "pods", "events"):
        assert simulated_cluster.requests(verb="watch", resource=resource) >= 1


async def test_triggers_in_three_namespaces_share_one_watch_per_resource(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    """Triggers in a second and third namespace move every trigger to one watch of all
    namespaces per resource, while they wait; each still hears only its own Job."""
    others = ["batch-2", "batch-3"]
    for name in others:
        simulated_cluster.create(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
    first = create_jobs(simulated_cluster, ["ns-1-a", "ns-1-b"])
    tasks = [asyncio.create_task(triggerer_run(trigger_for(job))) for job in first]
    await waiting(simulated_cluster, 2)
    hub = WatchHub.current()
    assert {key.namespace for key in hub.feeds} == {NAMESPACE}
    later = [
        *create_jobs(simulated_cluster, ["ns-2-a", "ns-2-b"], namespace=others[0]),
        *create_jobs(simulated_cluster, ["ns-3"], namespace=others[1]),
    ]
    tasks += [asyncio.create_task(triggerer_run(trigger_for(job))) for job in later]
    await until(
        lambda: (
            len(hub.informers) == 9
            and {key.namespace for key in hub.feeds} == {""}
            and simulated_cluster.open_watches == 3
        ),
        timeout=30,
        what="one watch of all namespaces per resource",
    )
    await advance(simulated_cluster, 10)  # running, not finished
    await asyncio.sleep(0)
    assert not any(t.done() for t in tasks)
    await advance(simulated_cluster, 25)  # every pod finishes
    events = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert [(e.payload["namespace"], e.payload["status"]) for e in events] == [
        (NAMESPACE, "success"),
        (NAMESPACE, "success"),
        (others[0], "success"),
        (others[0], "success"),
        (others[1], "success"),
    ]
    assert [e.payload["name"] for e in events] == [j["metadata"]["name"] for j in first + later]
    for resource in ("jobs", "pods", "events"):
        # The first namespace's watch, then the one of all namespaces.
        assert simulated_cluster.requests(verb="watch", resource=resource) == 2
    assert not simulated_cluster.requests(verb="get", resource="jobs")


async def test_a_job_the_watch_has_not_brought_yet_is_read_not_taken_as_deleted(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    """A trigger that starts while the shared Jobs watch is reconnecting finds its cache without
    its Job: one GET shows the Job exists, and the trigger waits for it as usual."""
    first = create_job(simulated_cluster, "lag-first")
    tasks = [asyncio.create_task(triggerer_run(trigger_for(first)))]
    await waiting(simulated_cluster, 1)
    # The watches drop; the Jobs watch's next attempts are refused for a few seconds.
    simulated_cluster.fail_next(3, status=503, retry_after=1, verb="watch", resource="jobs")
    simulated_cluster.restart_api_server()
    simulated_cluster.reset_counters()
    second = create_job(simulated_cluster, "lag-second")
    tasks.append(asyncio.create_task(triggerer_run(trigger_for(second))))
    await until(lambda: simulated_cluster.requests(verb="get", resource="jobs"), what="a GET")
    assert simulated_cluster.requests(verb="watch", resource="jobs") <= 3, "the watch is still down"
    assert not tasks[1].done(), "the Job the cache lacked was taken as deleted"
    await until(lambda: simulated_cluster.open_watches == 3, timeout=30, what="the watches back")
    await advance(simulated_cluster, 35)
    events = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert [e.payload["status"] for e in events] == ["success", "success"]
    # A GET each time the trigger woke while its Job was missing from the cache (its pods
    # and Events woke it), none once the watch was back.
    assert 1 <= simulated_cluster.requests(verb="get", resource="jobs") <= 5


async def test_a_job_deleted_behind_the_trigger_is_confirmed_with_one_get(
    simulated_cluster: SimulatedCluster, conn: str
) -> None:
    job = create_job(simulated_cluster, "deleted")
    task = asyncio.create_task(triggerer_run(trigger_for(job)))
    await waiting(simulated_cluster, 1)
    simulated_cluster.reset_counters()
    simulated_cluster.delete("jobs", NAMESPACE, job["metadata"]["name"])
    event = await asyncio.wait_for(task, 30)
    assert (event.payload["status"], event.payload["reason"]) == ("failed", "JobDeleted")
    assert simulated_cluster.requests(verb="get", resource="jobs") == 1  # the 404


@pytest.fixture(autouse=True)
def _no_leftover_hubs() -> Iterator[None]:
    yield
    assert all(not hub.informers for hub in WatchHub._hubs.values())
