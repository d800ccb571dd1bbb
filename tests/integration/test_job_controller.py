"""The simulated Job controller through the real clients.

The cluster has no nodes, so pods stay Pending and nothing but the test moves them on: each test
reports pod outcomes through the pod ``status`` subresource, as a kubelet does, and moves
simulated time with ``advance`` (time is frozen otherwise), then checks what the Job controller
made of it — pods, Job status, conditions and events — as a client sees them.
"""

from __future__ import annotations

from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest

from simulated_k8s_cluster.cluster import SimulatedCluster
from simulated_k8s_cluster.controllers.jobs import format_indexes, parse_indexes
from simulated_k8s_cluster.resources import PODS

NS = "batch"
NO_NODES = {"timeScale": 0, "namespaces": [NS], "nodePools": [{"name": "default", "nodes": 0}]}
pytestmark = pytest.mark.simulated_cluster(NO_NODES)

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-failure-count"
HOLD = "example.com/hold"


# --- helpers ------------------------------------------------------------------------------------


def job_body(name: str, **spec: Any) -> dict[str, Any]:
    template_spec = {
        "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}],
        "restartPolicy": spec.pop("restart_policy", "Never"),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": template_spec}, **spec},
    }


def create_job(batch: kubernetes.client.BatchV1Api, name: str, **spec: Any) -> Any:
    return batch.create_namespaced_job(NS, job_body(name, **spec))


def job_status(batch: kubernetes.client.BatchV1Api, name: str) -> dict[str, Any]:
    raw = batch.read_namespaced_job_status(name, NS, _preload_content=False)
    import json

    status: dict[str, Any] = json.loads(raw.data).get("status") or {}
    return status


def conditions(batch: kubernetes.client.BatchV1Api, name: str) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in job_status(batch, name).get("conditions") or []}


def condition_types(batch: kubernetes.client.BatchV1Api, name: str) -> list[str]:
    return [
        c["type"] for c in job_status(batch, name).get("conditions") or [] if c["status"] == "True"
    ]


def pods_of(core: kubernetes.client.CoreV1Api, job: str, active_only: bool = True) -> list[Any]:
    pods = core.list_namespaced_pod(NS, label_selector=f"{JOB_NAME_LABEL}={job}").items
    if active_only:
        pods = [
            p
            for p in pods
            if p.status.phase not in ("Succeeded", "Failed")
            and p.metadata.deletion_timestamp is None
        ]
    return sorted(pods, key=lambda p: p.metadata.creation_timestamp or 0)


def wait_pods(
    cluster: SimulatedCluster,
    core: kubernetes.client.CoreV1Api,
    job: str,
    count: int,
    message: str = "",
) -> list[Any]:
    result: list[Any] = []

    def check() -> bool:
        result[:] = pods_of(core, job)
        return len(result) == count

    cluster.wait_for(check, timeout=10, message=message or f"{count} active pods of {job}")
    return result


def finish(
    core: kubernetes.client.CoreV1Api,
    pod: str,
    phase: str = "Succeeded",
    exit_code: int | None = None,
    conditions: list[dict[str, Any]] | None = None,
    container: str = "main",
) -> None:
    """Report a pod outcome the way a kubelet does: through the status subresource."""
    code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
    status: dict[str, Any] = {
        "phase": phase,
        "containerStatuses": [
            {
                "name": container,
                "image": "busybox:1.36",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Completed" if code == 0 else "Error",
                    }
                },
            }
        ],
    }
    if conditions:
        status["conditions"] = conditions
    core.patch_namespaced_pod_status(pod, NS, {"status": status})


def events(cluster: SimulatedCluster, job: str, reason: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in cluster.events(NS, involved_name=job, reason=reason)
        if e["involvedObject"].get("kind") == "Job"
    ]


def wait_condition(
    cluster: SimulatedCluster, batch: kubernetes.client.BatchV1Api, job: str, ctype: str
) -> dict[str, Any]:
    return cluster.wait_for(
        lambda: conditions(batch, job).get(ctype), timeout=10, message=f"condition {ctype} on {job}"
    )


# --- unit-level checks of the index notation --------------------------------------------------


@pytest.mark.parametrize(
    ("indexes", "text"),
    [
        ([], ""),
        ([0], "0"),
        ([0, 1], "0,1"),
        ([0, 1, 2, 4], "0-2,4"),
        ([1, 3, 4, 5, 7, 8], "1,3-5,7,8"),
    ],
)
def test_index_notation(indexes: list[int], text: str) -> None:
    assert format_indexes(indexes) == text
    assert parse_indexes(text, 100) == set(indexes)


# --- pod creation ---------------------------------------------------------------------------


def test_creates_pods_owned_by_the_job(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    job = create_job(batch, "owned", completions=3, parallelism=2)
    pods = wait_pods(simulated_cluster, core, "owned", 2)

    for pod in pods:
        assert pod.metadata.generate_name == "owned-"
        assert pod.metadata.name.startswith("owned-")
        (ref,) = pod.metadata.owner_references
        assert (ref.kind, ref.name, ref.uid) == ("Job", "owned", job.metadata.uid)
        assert ref.api_version == "batch/v1"
        assert ref.controller is True and ref.block_owner_deletion is True
        labels = pod.metadata.labels
        assert labels["batch.kubernetes.io/controller-uid"] == job.metadata.uid
        assert labels["controller-uid"] == job.metadata.uid
        assert labels["batch.kubernetes.io/job-name"] == "owned"
        assert labels["job-name"] == "owned"
        assert pod.spec.restart_policy == "Never"
        assert pod.status.phase == "Pending"

    created = events(simulated_cluster, "owned", "SuccessfulCreate")
    assert sorted(e["message"] for e in created) == sorted(
        f"Created pod: {p.metadata.name}" for p in pods
    )
    assert all(
        e["type"] == "Normal" and e["source"]["component"] == "job-controller" for e in created
    )

    status = simulated_cluster.wait_for(
        lambda: job_status(batch, "owned").get("active") == 2 and job_status(batch, "owned")
    )
    assert status["startTime"]
    assert status["ready"] == 0
    assert status["terminating"] == 0
    assert status["uncountedTerminatedPods"] == {}
    assert "succeeded" not in status and "failed" not in status
    assert "conditions" not in status


def test_never_more_pods_than_remaining_completions(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(batch, "three", completions=3, parallelism=2)
    first, second = wait_pods(simulated_cluster, core, "three", 2)
    finish(core, first.metadata.name)
    third = next(
        p
        for p in wait_pods(simulated_cluster, core, "three", 2)
        if p.metadata.name != second.metadata.name
    )
    finish(core, second.metadata.name)
    # Two completions left to reach, one pod running: no new pod.
    simulated_cluster.wait_for(lambda: job_status(batch, "three").get("succeeded") == 2)
    assert [p.metadata.name for p in pods_of(core, "three")] == [third.metadata.name]
    assert len(pods_of(core, "three", active_only=False)) == 3


def test_ready_pods_are_reported(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(batch, "ready", completions=2, parallelism=2)
    first, _ = wait_pods(simulated_cluster, core, "ready", 2)
    core.patch_namespaced_pod_status(
        first.metadata.name,
        NS,
        {
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
    )
    simulated_cluster.wait_for(lambda: job_status(batch, "ready").get("ready") == 1)
    assert job_status(batch, "ready")["active"] == 2


# --- success --------------------------------------------------------------------------------


def test_job_completes_after_all_completions(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(batch, "done", completions=3, parallelism=2)
    for _ in range(3):
        pod = wait_pods(simulated_cluster, core, "done", 1 if _ == 2 else 2)[0]
        finish(core, pod.metadata.name)
        simulated_cluster.wait_for(lambda n=_ + 1: job_status(batch, "done").get("succeeded") == n)

    complete = wait_condition(simulated_cluster, batch, "done", "Complete")
    status = job_status(batch, "done")
    assert condition_types(batch, "done") == ["SuccessCriteriaMet", "Complete"]
    criteria = conditions(batch, "done")["SuccessCriteriaMet"]
    for condition in (criteria, complete):
        assert condition["status"] == "True"
        assert condition["reason"] == "CompletionsReached"
        assert condition["message"] == "Reached expected number of succeeded pods"
        assert condition["lastProbeTime"] and condition["lastTransitionTime"]
    assert status["succeeded"] == 3
    assert "active" not in status and "failed" not in status
    assert status["completionTime"] == complete["lastTransitionTime"]
    (completed,) = events(simulated_cluster, "done", "Completed")
    assert (completed["type"], completed["message"]) == ("Normal", "Job completed")
    assert not pods_of(core, "done")


def test_work_queue_job_completes_when_one_pod_succeeded_and_none_active(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(batch, "queue", parallelism=2, completions=None)
    first, second = wait_pods(simulated_cluster, core, "queue", 2)
    finish(core, first.metadata.name)
    simulated_cluster.wait_for(lambda: job_status(batch, "queue").get("succeeded") == 1)
    # The other worker keeps running, no replacement is created, the Job is not done yet.
    simulated_cluster.advance(60)
    assert [p.metadata.name for p in pods_of(core, "queue")] == [second.metadata.name]
    assert "Complete" not in conditions(batch, "queue")
    finish(core, second.metadata.name)
    wait_condition(simulated_cluster, batch, "queue", "Complete")
    assert job_status(batch, "queue")["succeeded"] == 2


# --- Indexed jobs ---------------------------------------------------------------------------


def test_indexed_job_pods_and_completed_indexes(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(batch, "idx", completions=5, parallelism=3, completionMode="Indexed")
    pods = wait_pods(simulated_cluster, core, "idx", 3)
    by_index = {int(p.metadata.annotations[INDEX_KEY]): p for p in pods}
    assert sorted(by_index) == [0, 1, 2]
    for index, pod in by_index.items():
        assert pod.metadata.labels[INDEX_KEY] == str(index)
        assert pod.metadata.generate_name == f"idx-{index}-"
        assert pod.metadata.name.startswith(f"idx-{index}-")
        assert pod.spec.hostname == f"idx-{index}"
        (env,) = [e for e in pod.spec.containers[0].env if e.name == "JOB_COMPLETION_INDEX"]
        assert env.value_from.field_ref.field_path == f"metadata.labels['{INDEX_KEY}']"

    finish(core, by_index[0].metadata.name)
    finish(core, by_index[2].metadata.name)
    simulated_cluster.wait_for(lambda: job_status(batch, "idx").get("completedIndexes") == "0,2")
    # The lowest pending indexes come next.
    new = wait_pods(simulated_cluster, core, "idx", 3)
    assert sorted(int(p.metadata.annotations[INDEX_KEY]) for p in new) == [1, 3, 4]
    for pod in new:
        if pod.metadata.annotations[INDEX_KEY] != "4":
            finish(core, pod.metadata.name)
    simulated_cluster.wait_for(lambda: job_status(batch, "idx").get("completedIndexes") == "0-3")
    assert job_status(batch, "idx")["succeeded"] == 4
    (last,) = pods_of(core, "idx")
    finish(core, last.metadata.name)
    wait_condition(simulated_cluster, batch, "idx", "Complete")
    assert job_status(batch, "idx")["completedIndexes"] == "0-4"


# --- failures and backoffLimit ----------------------------------------------------------------


def test_backoff_limit_exceeded(simulated_cluster: SimulatedCluster, batch: Any, core: Any) -> None:
    create_job(batch, "flaky", backoffLimit=1)
    (first,) = wait_pods(simulated_cluster, core, "flaky", 1)
    finish(core, first.metadata.name, "Failed", exit_code=3)
    simulated_cluster.wait_for(lambda: job_status(batch, "flaky").get("failed") == 1)
    assert "FailureTarget" not in conditions(batch, "flaky")

    # The replacement waits for the pod-failure back-off: 10 s after the first failure.
    simulated_cluster.advance(9)
    assert not pods_of(core, "flaky")
    simulated_cluster.advance(1)
    (second,) = wait_pods(simulated_cluster, core, "flaky", 1)
    finish(core, second.metadata.name, "Failed", exit_code=3)

    failed = wait_condition(simulated_cluster, batch, "flaky", "Failed")
    target = conditions(batch, "flaky")["FailureTarget"]
    for condition in (target, failed):
        assert condition["reason"] == "BackoffLimitExceeded"
        assert condition["message"] == "Job has reached the specified backoff limit"
    assert condition_types(batch, "flaky") == ["FailureTarget", "Failed"]
    status = job_status(batch, "flaky")
    assert status["failed"] == 2
    assert "completionTime" not in status
    (event,) = events(simulated_cluster, "flaky", "BackoffLimitExceeded")
    assert (event["type"], event["message"]) == (
        "Warning",
        "Job has reached the specified backoff limit",
    )
    # No more pods once failed.
    simulated_cluster.advance(600)
    assert not pods_of(core, "flaky")


def test_pod_failure_backoff_doubles(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(batch, "doubling", backoffLimit=10)
    for delay in (10, 20, 40):
        (pod,) = wait_pods(simulated_cluster, core, "doubling", 1)
        finish(core, pod.metadata.name, "Failed")
        simulated_cluster.wait_for(lambda: not pods_of(core, "doubling"))
        simulated_cluster.advance(delay - 1)
        assert not pods_of(core, "doubling"), f"replacement before {delay}s"
        simulated_cluster.advance(1)
    wait_pods(simulated_cluster, core, "doubling", 1)
    assert job_status(batch, "doubling")["failed"] == 3


def test_active_pods_are_deleted_when_the_job_fails(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(batch, "wide", completions=3, parallelism=3, backoffLimit=0)
    first, _, _ = wait_pods(simulated_cluster, core, "wide", 3)
    finish(core, first.metadata.name, "Failed")
    wait_condition(simulated_cluster, batch, "wide", "Failed")
    assert not pods_of(core, "wide", active_only=False)[1:]
    # The two pods deleted because the Job failed count as failed too, as upstream.
    assert job_status(batch, "wide")["failed"] == 3
    assert "active" not in job_status(batch, "wide")
    assert len(events(simulated_cluster, "wide", "SuccessfulDelete")) == 2


def test_pod_deleted_behind_the_controllers_back_is_replaced(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(batch, "orphaned")
    (pod,) = wait_pods(simulated_cluster, core, "orphaned", 1)
    core.delete_namespaced_pod(pod.metadata.name, NS)
    # Counted as a failure (podReplacementPolicy TerminatingOrFailed), replaced after back-off.
    simulated_cluster.wait_for(lambda: job_status(batch, "orphaned").get("failed") == 1)
    simulated_cluster.advance(10)
    (replacement,) = wait_pods(simulated_cluster, core, "orphaned", 1)
    assert replacement.metadata.name != pod.metadata.name


# --- terminating pods delay the terminal condition ------------------------------------------


def held_job(name: str, **spec: Any) -> dict[str, Any]:
    """A Job whose pods carry a finalizer: deleted, they stay terminating until released."""
    body = job_body(name, **spec)
    body["spec"]["template"]["metadata"] = {"finalizers": [HOLD]}
    return body


def release(core: kubernetes.client.CoreV1Api, pod: str) -> None:
    core.patch_namespaced_pod(pod, NS, {"metadata": {"finalizers": None}})


def test_failed_condition_waits_for_terminating_pods(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    batch.create_namespaced_job(
        NS, held_job("slow-stop", completions=2, parallelism=2, backoffLimit=0)
    )
    first, second = wait_pods(simulated_cluster, core, "slow-stop", 2)
    assert second.metadata.finalizers == [HOLD]
    finish(core, first.metadata.name, "Failed")

    wait_condition(simulated_cluster, batch, "slow-stop", "FailureTarget")
    simulated_cluster.wait_for(lambda: job_status(batch, "slow-stop").get("terminating") == 1)
    simulated_cluster.advance(5)
    assert "Failed" not in conditions(batch, "slow-stop")
    assert core.read_namespaced_pod(second.metadata.name, NS).metadata.deletion_timestamp
    assert not events(simulated_cluster, "slow-stop", "BackoffLimitExceeded")
    # The pod deleted because the Job failed counts as failed at once.
    assert job_status(batch, "slow-stop")["failed"] == 2

    release(core, second.metadata.name)
    failed = wait_condition(simulated_cluster, batch, "slow-stop", "Failed")
    target = conditions(batch, "slow-stop")["FailureTarget"]
    assert failed["reason"] == target["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == target["message"]
    assert failed["lastTransitionTime"] > target["lastTransitionTime"]
    status = job_status(batch, "slow-stop")
    assert status["terminating"] == 0
    assert status["failed"] == 2
    assert len(events(simulated_cluster, "slow-stop", "BackoffLimitExceeded")) == 1


def test_replacement_waits_for_nothing_with_terminating_or_failed(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    """The default podReplacementPolicy replaces a terminating pod (after the back-off) and
    counts it as failed without waiting for it to go."""
    batch.create_namespaced_job(NS, held_job("replace-early"))
    (pod,) = wait_pods(simulated_cluster, core, "replace-early", 1)
    core.delete_namespaced_pod(pod.metadata.name, NS)
    simulated_cluster.wait_for(lambda: job_status(batch, "replace-early").get("failed") == 1)
    assert job_status(batch, "replace-early")["terminating"] == 1
    simulated_cluster.advance(10)
    wait_pods(simulated_cluster, core, "replace-early", 1)
    release(core, pod.metadata.name)
    simulated_cluster.wait_for(lambda: job_status(batch, "replace-early").get("terminating") == 0)
    assert job_status(batch, "replace-early")["failed"] == 1


def test_replacement_waits_for_terminating_pods_with_policy_failed(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    """With a podFailurePolicy (podReplacementPolicy Failed) a terminating pod is neither a
    failure nor replaced until it reaches phase Failed."""
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    batch.create_namespaced_job(NS, held_job("graceful", podFailurePolicy=policy))
    (pod,) = wait_pods(simulated_cluster, core, "graceful", 1)
    core.delete_namespaced_pod(pod.metadata.name, NS)
    simulated_cluster.wait_for(lambda: job_status(batch, "graceful").get("terminating") == 1)
    simulated_cluster.advance(60)
    assert not pods_of(core, "graceful")
    assert "failed" not in job_status(batch, "graceful")
    finish(
        core,
        pod.metadata.name,
        "Failed",
        exit_code=137,
        conditions=[
            {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"}
        ],
    )
    release(core, pod.metadata.name)
    simulated_cluster.advance(10)
    wait_pods(simulated_cluster, core, "graceful", 1)
    assert "failed" not in job_status(batch, "graceful")


# --- podFailurePolicy -----------------------------------------------------------------------


def test_pod_failure_policy_fail_job(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    policy = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
            },
        ]
    }
    create_job(batch, "fatal", completions=2, parallelism=2, podFailurePolicy=policy)
    first, _ = wait_pods(simulated_cluster, core, "fatal", 2)
    finish(core, first.metadata.name, "Failed", exit_code=42)

    failed = wait_condition(simulated_cluster, batch, "fatal", "Failed")
    message = (
        f"Container main for pod {NS}/{first.metadata.name} failed with exit code 42 "
        "matching FailJob rule at index 0"
    )
    assert (failed["reason"], failed["message"]) == ("PodFailurePolicy", message)
    assert conditions(batch, "fatal")["FailureTarget"]["message"] == message
    assert not pods_of(core, "fatal")
    (event,) = events(simulated_cluster, "fatal", "PodFailurePolicy")
    assert (event["type"], event["message"]) == ("Warning", message)


def test_pod_failure_policy_fail_job_on_pod_condition(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    policy = {"rules": [{"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue"}]}]}
    create_job(batch, "config", podFailurePolicy=policy)
    (pod,) = wait_pods(simulated_cluster, core, "config", 1)
    finish(
        core, pod.metadata.name, "Failed", conditions=[{"type": "ConfigIssue", "status": "True"}]
    )
    failed = wait_condition(simulated_cluster, batch, "config", "Failed")
    assert failed["message"] == (
        f"Pod {NS}/{pod.metadata.name} has condition ConfigIssue matching FailJob rule at index 0"
    )


def test_pod_failure_policy_rules_apply_in_order(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    policy = {
        "rules": [
            {"action": "Count", "onExitCodes": {"operator": "In", "values": [1]}},
            {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [5]}},
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [5]}},
        ]
    }
    create_job(batch, "ordered", backoffLimit=3, podFailurePolicy=policy)
    (pod,) = wait_pods(simulated_cluster, core, "ordered", 1)
    # Exit code 1: the Count rule comes first, the FailJob rule (NotIn [5]) is never reached.
    finish(core, pod.metadata.name, "Failed", exit_code=1)
    simulated_cluster.wait_for(lambda: job_status(batch, "ordered").get("failed") == 1)
    simulated_cluster.advance(10)
    (pod,) = wait_pods(simulated_cluster, core, "ordered", 1)
    # Exit code 5: ignored, does not count.
    finish(core, pod.metadata.name, "Failed", exit_code=5)
    simulated_cluster.advance(20)
    (pod,) = wait_pods(simulated_cluster, core, "ordered", 1)
    assert job_status(batch, "ordered")["failed"] == 1
    # A Failed pod whose exit code is 0 matches no onExitCodes rule: counted.
    finish(core, pod.metadata.name, "Failed", exit_code=0)
    simulated_cluster.wait_for(lambda: job_status(batch, "ordered").get("failed") == 2)
    assert "FailureTarget" not in conditions(batch, "ordered")


def test_ignored_disruption_does_not_count(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    create_job(batch, "preemptible", backoffLimit=0, podFailurePolicy=policy)
    (pod,) = wait_pods(simulated_cluster, core, "preemptible", 1)
    disruption = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": "preempted",
    }
    finish(core, pod.metadata.name, "Failed", exit_code=137, conditions=[disruption])
    simulated_cluster.advance(10)
    (replacement,) = wait_pods(simulated_cluster, core, "preemptible", 1)
    assert replacement.metadata.name != pod.metadata.name
    assert "failed" not in job_status(batch, "preemptible")
    assert "FailureTarget" not in conditions(batch, "preemptible")


def test_disruption_counts_without_a_policy(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(batch, "disrupted", backoffLimit=0)
    (pod,) = wait_pods(simulated_cluster, core, "disrupted", 1)
    disruption = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": "preempted",
    }
    finish(core, pod.metadata.name, "Failed", exit_code=137, conditions=[disruption])
    failed = wait_condition(simulated_cluster, batch, "disrupted", "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert job_status(batch, "disrupted")["failed"] == 1


# --- backoffLimitPerIndex -------------------------------------------------------------------


def test_backoff_limit_per_index(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(
        batch,
        "per-index",
        completions=3,
        parallelism=3,
        completionMode="Indexed",
        backoffLimitPerIndex=1,
    )
    pods = {
        int(p.metadata.annotations[INDEX_KEY]): p
        for p in wait_pods(simulated_cluster, core, "per-index", 3)
    }
    assert all(p.metadata.annotations[FAILURE_COUNT_KEY] == "0" for p in pods.values())
    finish(core, pods[1].metadata.name, "Failed")
    simulated_cluster.advance(10)
    retry = simulated_cluster.wait_for(
        lambda: next(
            (p for p in pods_of(core, "per-index") if p.metadata.annotations[INDEX_KEY] == "1"),
            None,
        )
    )
    assert retry.metadata.annotations[FAILURE_COUNT_KEY] == "1"
    finish(core, retry.metadata.name, "Failed")
    simulated_cluster.wait_for(lambda: job_status(batch, "per-index").get("failedIndexes") == "1")
    # The other indexes still run to the end; the Job then fails for its failed index.
    assert "FailureTarget" not in conditions(batch, "per-index")
    finish(core, pods[0].metadata.name)
    finish(core, pods[2].metadata.name)
    failed = wait_condition(simulated_cluster, batch, "per-index", "Failed")
    assert (failed["reason"], failed["message"]) == ("FailedIndexes", "Job has failed indexes")
    status = job_status(batch, "per-index")
    assert status["completedIndexes"] == "0,2"
    assert status["failedIndexes"] == "1"
    assert status["failed"] == 2 and status["succeeded"] == 2
    assert job_status(batch, "per-index").get("completionTime") is None


def test_max_failed_indexes_exceeded(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(
        batch,
        "max-idx",
        completions=4,
        parallelism=2,
        completionMode="Indexed",
        backoffLimitPerIndex=0,
        maxFailedIndexes=1,
    )
    first, second = wait_pods(simulated_cluster, core, "max-idx", 2)
    finish(core, first.metadata.name, "Failed")
    simulated_cluster.wait_for(lambda: job_status(batch, "max-idx").get("failedIndexes") == "0")
    assert "FailureTarget" not in conditions(batch, "max-idx")
    # Index 0 failed for good: index 2 takes its place without back-off.
    running = wait_pods(simulated_cluster, core, "max-idx", 2)
    assert sorted(p.metadata.annotations[INDEX_KEY] for p in running) == ["1", "2"]
    finish(core, second.metadata.name, "Failed")
    failed = wait_condition(simulated_cluster, batch, "max-idx", "Failed")
    assert failed["reason"] == "MaxFailedIndexesExceeded"
    assert failed["message"] == "Job has exceeded the specified maximal number of failed indexes"
    assert job_status(batch, "max-idx")["failedIndexes"] == "0,1"


def test_fail_index_action(simulated_cluster: SimulatedCluster, batch: Any, core: Any) -> None:
    policy = {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [7]}}]}
    create_job(
        batch,
        "fail-idx",
        completions=2,
        parallelism=2,
        completionMode="Indexed",
        backoffLimitPerIndex=5,
        podFailurePolicy=policy,
    )
    pods = {
        int(p.metadata.annotations[INDEX_KEY]): p
        for p in wait_pods(simulated_cluster, core, "fail-idx", 2)
    }
    finish(core, pods[0].metadata.name, "Failed", exit_code=7)
    simulated_cluster.wait_for(lambda: job_status(batch, "fail-idx").get("failedIndexes") == "0")
    simulated_cluster.advance(60)
    assert [p.metadata.annotations[INDEX_KEY] for p in pods_of(core, "fail-idx")] == ["1"]
    finish(core, pods[1].metadata.name)
    failed = wait_condition(simulated_cluster, batch, "fail-idx", "Failed")
    assert failed["reason"] == "FailedIndexes"


def test_success_policy(simulated_cluster: SimulatedCluster, batch: Any, core: Any) -> None:
    create_job(
        batch,
        "leader",
        completions=3,
        parallelism=3,
        completionMode="Indexed",
        successPolicy={"rules": [{"succeededIndexes": "0"}]},
    )
    pods = {
        int(p.metadata.annotations[INDEX_KEY]): p
        for p in wait_pods(simulated_cluster, core, "leader", 3)
    }
    finish(core, pods[0].metadata.name)
    complete = wait_condition(simulated_cluster, batch, "leader", "Complete")
    assert (complete["reason"], complete["message"]) == (
        "SuccessPolicy",
        "Matched rules at index 0",
    )
    assert conditions(batch, "leader")["SuccessCriteriaMet"]["reason"] == "SuccessPolicy"
    assert not pods_of(core, "leader")


def test_success_policy_stops_the_other_pods_without_counting_them(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    """``SuccessCriteriaMet`` first, the remaining pods deleted, and ``Complete`` (same reason
    and message) only once they are gone; the deleted pods never count as failed."""
    batch.create_namespaced_job(
        NS,
        held_job(
            "lead",
            completions=4,
            parallelism=4,
            completionMode="Indexed",
            successPolicy={
                "rules": [
                    {"succeededIndexes": "0,2-3"},
                    {"succeededIndexes": "1-3", "succeededCount": 2},
                ]
            },
        ),
    )
    pods = {
        int(p.metadata.annotations[INDEX_KEY]): p
        for p in wait_pods(simulated_cluster, core, "lead", 4)
    }
    finish(core, pods[2].metadata.name)
    simulated_cluster.wait_for(lambda: job_status(batch, "lead").get("completedIndexes") == "2")
    assert "SuccessCriteriaMet" not in conditions(batch, "lead")
    finish(core, pods[3].metadata.name)
    met = wait_condition(simulated_cluster, batch, "lead", "SuccessCriteriaMet")
    assert (met["reason"], met["message"]) == ("SuccessPolicy", "Matched rules at index 1")
    simulated_cluster.wait_for(lambda: job_status(batch, "lead").get("terminating") == 2)
    assert "Complete" not in conditions(batch, "lead")
    assert len(events(simulated_cluster, "lead", "SuccessfulDelete")) == 2
    for index in (0, 1):
        release(core, pods[index].metadata.name)
    complete = wait_condition(simulated_cluster, batch, "lead", "Complete")
    assert (complete["reason"], complete["message"]) == (met["reason"], met["message"])
    status = job_status(batch, "lead")
    assert (status["succeeded"], status.get("failed"), status["terminating"]) == (2, None, 0)
    assert status["completedIndexes"] == "2,3" and status["completionTime"]
    assert condition_types(batch, "lead") == ["SuccessCriteriaMet", "Complete"]
    for index in (2, 3):
        release(core, pods[index].metadata.name)


def test_failure_wins_over_a_success_policy_met_in_the_same_sync(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    """Failure criteria are checked before the success policy: with both met at once the Job
    fails (here a failed index over ``maxFailedIndexes``)."""
    create_job(
        batch,
        "both",
        completions=3,
        parallelism=3,
        completionMode="Indexed",
        backoffLimitPerIndex=0,
        maxFailedIndexes=0,
        successPolicy={"rules": [{"succeededIndexes": "1"}]},
    )
    pods = {
        int(p.metadata.annotations[INDEX_KEY]): p
        for p in wait_pods(simulated_cluster, core, "both", 3)
    }
    # Both outcomes land between two passes of the controller (as one kubelet sync would).
    outcomes = {pods[0].metadata.name: ("Failed", 1), pods[1].metadata.name: ("Succeeded", 0)}

    def report() -> None:
        store = simulated_cluster.state.store
        for name, (phase, code) in outcomes.items():
            pod = store.get(PODS, NS, name)
            assert pod is not None
            terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
            pod["status"] = {
                "phase": phase,
                "containerStatuses": [
                    {"name": "main", "ready": False, "state": {"terminated": terminated}}
                ],
            }
            store.update(PODS, pod)

    simulated_cluster.call(report)
    failed = wait_condition(simulated_cluster, batch, "both", "Failed")
    assert failed["reason"] == "MaxFailedIndexesExceeded"
    assert "SuccessCriteriaMet" not in conditions(batch, "both")


# --- activeDeadlineSeconds and suspend ------------------------------------------------------


def test_active_deadline(simulated_cluster: SimulatedCluster, batch: Any, core: Any) -> None:
    create_job(batch, "deadline", activeDeadlineSeconds=30)
    wait_pods(simulated_cluster, core, "deadline", 1)
    simulated_cluster.advance(29)
    assert "FailureTarget" not in conditions(batch, "deadline")
    simulated_cluster.advance(1)
    failed = wait_condition(simulated_cluster, batch, "deadline", "Failed")
    assert (failed["reason"], failed["message"]) == (
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    )
    assert not pods_of(core, "deadline")
    (event,) = events(simulated_cluster, "deadline", "DeadlineExceeded")
    assert event["type"] == "Warning"


def test_suspend_and_resume(simulated_cluster: SimulatedCluster, batch: Any, core: Any) -> None:
    create_job(
        batch, "queued", suspend=True, completions=2, parallelism=2, activeDeadlineSeconds=100
    )
    suspended = wait_condition(simulated_cluster, batch, "queued", "Suspended")
    assert (suspended["status"], suspended["reason"], suspended["message"]) == (
        "True",
        "JobSuspended",
        "Job suspended",
    )
    assert "startTime" not in job_status(batch, "queued")
    simulated_cluster.advance(500)  # the deadline clock does not run while suspended
    assert not pods_of(core, "queued", active_only=False)
    assert events(simulated_cluster, "queued", "Suspended")[0]["message"] == "Job suspended"

    batch.patch_namespaced_job("queued", NS, {"spec": {"suspend": False}})
    wait_pods(simulated_cluster, core, "queued", 2)
    resumed = conditions(batch, "queued")["Suspended"]
    assert (resumed["status"], resumed["reason"], resumed["message"]) == (
        "False",
        "JobResumed",
        "Job resumed",
    )
    started = job_status(batch, "queued")["startTime"]
    assert started == resumed["lastTransitionTime"]
    assert events(simulated_cluster, "queued", "Resumed")[0]["message"] == "Job resumed"

    # Suspending again deletes the active pods; they do not count as failures.
    simulated_cluster.advance(50)
    batch.patch_namespaced_job("queued", NS, {"spec": {"suspend": True}})
    simulated_cluster.wait_for(lambda: conditions(batch, "queued")["Suspended"]["status"] == "True")
    simulated_cluster.wait_for(lambda: not pods_of(core, "queued", active_only=False))
    status = job_status(batch, "queued")
    assert "failed" not in status and "active" not in status
    assert len(events(simulated_cluster, "queued", "SuccessfulDelete")) == 2

    # Resuming restarts the activeDeadlineSeconds clock.
    simulated_cluster.advance(80)
    batch.patch_namespaced_job("queued", NS, {"spec": {"suspend": False}})
    wait_pods(simulated_cluster, core, "queued", 2)
    assert job_status(batch, "queued")["startTime"] > started
    simulated_cluster.advance(99)
    assert "FailureTarget" not in conditions(batch, "queued")
    simulated_cluster.advance(1)
    assert wait_condition(simulated_cluster, batch, "queued", "Failed")["reason"] == (
        "DeadlineExceeded"
    )


# --- kubernetes_asyncio ----------------------------------------------------------------------


async def test_async_client_sees_the_job_complete(
    simulated_cluster: SimulatedCluster, aapi: kubernetes_asyncio.client.ApiClient
) -> None:
    abatch = kubernetes_asyncio.client.BatchV1Api(aapi)
    acore = kubernetes_asyncio.client.CoreV1Api(aapi)
    await abatch.create_namespaced_job(NS, job_body("async-job", completions=2, parallelism=2))
    watch = kubernetes_asyncio.watch.Watch()
    created: list[str] = []
    async for event in watch.stream(
        acore.list_namespaced_pod,
        NS,
        label_selector=f"{JOB_NAME_LABEL}=async-job",
        timeout_seconds=10,
    ):
        if event["type"] == "ADDED":
            created.append(event["object"].metadata.name)
        if len(created) == 2:
            break
    await watch.close()
    for name in created:
        await acore.patch_namespaced_pod_status(
            name,
            NS,
            {
                "status": {
                    "phase": "Succeeded",
                    "containerStatuses": [
                        {
                            "name": "main",
                            "image": "busybox:1.36",
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                        }
                    ],
                }
            },
        )
    watch = kubernetes_asyncio.watch.Watch()
    job = None
    async for event in watch.stream(
        abatch.list_namespaced_job, NS, field_selector="metadata.name=async-job", timeout_seconds=10
    ):
        job = event["object"]
        if any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or []):
            break
    await watch.close()
    assert job is not None
    assert job.status.succeeded == 2
    assert job.status.completion_time is not None
    assert [c.type for c in job.status.conditions] == ["SuccessCriteriaMet", "Complete"]


# --- end to end with the scheduler and the kubelet ----------------------------------------------

WITH_NODES = {
    "timeScale": 0.01,
    "namespaces": [NS],
    "nodePools": [{"name": "default", "nodes": 2, "capacity": {"cpu": "8", "memory": "32Gi"}}],
}


@pytest.mark.simulated_cluster(WITH_NODES)
def test_e2e_parallel_job_succeeds(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    create_job(batch, "e2e-ok", completions=3, parallelism=2)
    complete = wait_condition(simulated_cluster, batch, "e2e-ok", "Complete")
    assert complete["reason"] == "CompletionsReached"
    status = job_status(batch, "e2e-ok")
    assert status["succeeded"] == 3
    assert "failed" not in status and "active" not in status
    assert condition_types(batch, "e2e-ok") == ["SuccessCriteriaMet", "Complete"]
    pods = pods_of(core, "e2e-ok", active_only=False)
    assert [p.status.phase for p in pods] == ["Succeeded"] * 3
    assert all(p.spec.node_name for p in pods)
    assert len(events(simulated_cluster, "e2e-ok", "SuccessfulCreate")) == 3
    assert len(events(simulated_cluster, "e2e-ok", "Completed")) == 1


@pytest.mark.simulated_cluster(WITH_NODES)
def test_e2e_indexed_job_with_a_failing_index(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    simulated_cluster.add_behaviour(
        {"match": {"env": {"JOB_COMPLETION_INDEX": "1"}}, "exitCode": 3, "seconds": 2}
    )
    create_job(
        batch,
        "e2e-idx",
        completions=3,
        parallelism=3,
        completionMode="Indexed",
        backoffLimitPerIndex=1,
    )
    failed = wait_condition(simulated_cluster, batch, "e2e-idx", "Failed")
    assert (failed["reason"], failed["message"]) == ("FailedIndexes", "Job has failed indexes")
    status = job_status(batch, "e2e-idx")
    assert status["completedIndexes"] == "0,2"
    assert status["failedIndexes"] == "1"
    assert (status["succeeded"], status["failed"]) == (2, 2)
    attempts = sorted(  # both attempts may carry the same (second-precision) creationTimestamp
        (
            p
            for p in pods_of(core, "e2e-idx", active_only=False)
            if p.metadata.annotations[INDEX_KEY] == "1"
        ),
        key=lambda p: int(p.metadata.annotations[FAILURE_COUNT_KEY]),
    )
    assert [p.metadata.annotations[FAILURE_COUNT_KEY] for p in attempts] == ["0", "1"]
    assert all(p.status.phase == "Failed" for p in attempts)
    exit_codes = [p.status.container_statuses[0].state.terminated.exit_code for p in attempts]
    assert exit_codes == [3, 3]


@pytest.mark.simulated_cluster(WITH_NODES)
def test_e2e_fail_job_rule_reports_failure_target_before_failed(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any
) -> None:
    simulated_cluster.add_behaviour(
        {"match": {"env": {"JOB_COMPLETION_INDEX": "0"}}, "exitCode": 42, "seconds": 1}
    )
    simulated_cluster.add_behaviour(
        {"match": {"env": {"JOB_COMPLETION_INDEX": "1"}}, "seconds": 1000}
    )
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    start_rv = batch.list_namespaced_job(NS).metadata.resource_version
    create_job(
        batch,
        "e2e-fatal",
        completions=2,
        parallelism=2,
        completionMode="Indexed",
        podFailurePolicy=policy,
    )
    failed = wait_condition(simulated_cluster, batch, "e2e-fatal", "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert "failed with exit code 42 matching FailJob rule at index 0" in failed["message"]

    # Through a watch: the Job had FailureTarget while its other pod was still terminating.
    seen: list[dict[str, Any]] = []
    watch = kubernetes.watch.Watch()
    for event in watch.stream(
        batch.list_namespaced_job,
        NS,
        field_selector="metadata.name=e2e-fatal",
        resource_version=start_rv,
        timeout_seconds=5,
    ):
        status = event["object"].status
        types = [c.type for c in status.conditions or [] if c.status == "True"]
        seen.append({"types": types, "terminating": status.terminating})
        if "Failed" in types:
            watch.stop()
    assert {"types": ["FailureTarget"], "terminating": 1} in seen
    assert seen[-1] == {"types": ["FailureTarget", "Failed"], "terminating": 0}
    assert job_status(batch, "e2e-fatal")["failed"] == 2
    assert not pods_of(core, "e2e-fatal")


@pytest.mark.simulated_cluster(WITH_NODES)
@pytest.mark.parametrize("ignore_disruptions", [True, False])
def test_e2e_preempted_pod_is_replaced(
    simulated_cluster: SimulatedCluster, batch: Any, core: Any, ignore_disruptions: bool
) -> None:
    simulated_cluster.add_behaviour(
        {"match": {"labels": {"job-name": "e2e-preempt"}}, "preemptAfterSeconds": 1, "seconds": 5}
    )
    spec: dict[str, Any] = {"backoffLimit": 1}
    if ignore_disruptions:
        spec["podFailurePolicy"] = {
            "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
        }
    create_job(batch, "e2e-preempt", **spec)
    wait_condition(simulated_cluster, batch, "e2e-preempt", "Complete")
    status = job_status(batch, "e2e-preempt")
    assert status["succeeded"] == 1
    assert status.get("failed", 0) == (0 if ignore_disruptions else 1)


@pytest.mark.simulated_cluster(WITH_NODES)
def test_e2e_native_sidecar_job(simulated_cluster: SimulatedCluster, batch: Any, core: Any) -> None:
    """A Job whose pods have a native sidecar completes by its main container: the sidecar
    runs beside it, is stopped once it is done, and does not make the pod fail."""
    body = job_body("e2e-sidecar", backoffLimit=0)
    template = body["spec"]["template"]
    template["metadata"] = {
        "annotations": {
            "sim.airflow-k8s-jobs/behaviour": (
                '{"main": {"seconds": 3, "terminationMessage": "wrote 3 lines"},'
                ' "logshipper": {"seconds": "forever", "stdout": "shipping"}}'
            )
        }
    }
    template["spec"]["initContainers"] = [
        {
            "name": "logshipper",
            "image": "busybox:1.36",
            "restartPolicy": "Always",
            "command": ["sh", "-c", "tail -F /opt/logs.txt"],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }
    ]
    # A grace period is written in the object, so it elapses on the wall clock: keep it short.
    template["spec"]["terminationGracePeriodSeconds"] = 1
    batch.create_namespaced_job(NS, body)
    simulated_cluster.wait_for(
        lambda: job_status(batch, "e2e-sidecar").get("ready") == 1, message="a ready pod"
    )
    (running,) = pods_of(core, "e2e-sidecar")
    assert running.status.phase == "Running"
    sidecar = running.status.init_container_statuses[0]
    assert (sidecar.started, sidecar.ready, sidecar.state.running is not None) == (
        True,
        True,
        True,
    )
    complete = wait_condition(simulated_cluster, batch, "e2e-sidecar", "Complete")
    assert complete["reason"] == "CompletionsReached"
    status = job_status(batch, "e2e-sidecar")
    assert (status["succeeded"], status.get("failed"), status["ready"]) == (1, None, 0)
    (pod,) = pods_of(core, "e2e-sidecar", active_only=False)
    assert pod.status.phase == "Succeeded"
    main = pod.status.container_statuses[0].state.terminated
    assert (main.exit_code, main.reason, main.message) == (0, "Completed", "wrote 3 lines")
    stopped = pod.status.init_container_statuses[0]
    assert (stopped.ready, stopped.started, stopped.restart_count) == (False, False, 0)
    terminated = stopped.state.terminated
    # `tail` ignores SIGTERM: killed after the grace period (137), and its log tail as message
    # (FallbackToLogsOnError).
    assert (terminated.exit_code, terminated.reason, terminated.message) == (
        137,
        "Error",
        "shipping\n",
    )
