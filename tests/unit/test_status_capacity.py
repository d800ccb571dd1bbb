"""Waiting for capacity: unschedulable pods, autoscaler verdicts, scheduling gates, ages."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs.status import Phase, interpret_job
from airflow_k8s_jobs.status._objects import format_age, format_duration, parse_time
from airflow_k8s_jobs.status.pods import not_triggered_reasons, scheduling_message

FIXTURES = Path(__file__).parent / "fixtures_status"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def only_pending(data: dict[str, Any]) -> dict[str, Any]:
    """The snapshot with only its Pending pods (as if nothing had been scheduled)."""
    data = copy.deepcopy(data)
    data["pods"] = [p for p in data["pods"] if p["status"].get("phase") == "Pending"]
    data["job"]["status"]["ready"] = 0
    return data


def event_time(data: dict[str, Any], reason: str) -> datetime:
    stamps = [e["lastTimestamp"] for e in data["events"] if e["reason"] == reason]
    return max(parse_time(s) for s in stamps)  # type: ignore[type-var]


# --- formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "age"),
    [
        (-5, "0s"),
        (0, "0s"),
        (45.9, "45s"),
        (60, "1m"),
        (150, "2m"),
        (3599, "59m"),
        (3600, "1h"),
        (3900, "1h5m"),
        (86400 + 7200, "1d2h"),
        (2 * 86400, "2d"),
    ],
)
def test_format_age(seconds, age):
    assert format_age(seconds) == age


def test_format_duration_keeps_seconds_under_an_hour():
    assert format_duration(312) == "5m12s"
    assert format_duration(300) == "5m"
    assert format_duration(3900) == "1h5m"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T05:39:22Z", datetime(2026, 11, 22, 5, 39, 22, tzinfo=timezone.utc)),
        (
            "2026-11-22T05:39:22.123456Z",
            datetime(2026, 11, 22, 5, 39, 22, 123456, tzinfo=timezone.utc),
        ),
        ("2026-11-22T07:39:22+02:00", datetime(2026, 11, 22, 5, 39, 22, tzinfo=timezone.utc)),
        (None, None),
        ("", None),
        ("yesterday", None),
        ("2026-13-40T00:00:00Z", None),
    ],
)
def test_parse_time(text, expected):
    assert parse_time(text) == expected


# --- autoscaler and scheduler messages -------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reasons"),
    [
        (
            "pod didn't trigger scale-up: 1 max node group size reached",
            "1 max node group size reached",
        ),
        (
            "pod didn't trigger scale-up (it wouldn't fit if a new node is added): "
            "2 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node affinity/selector",
            "2 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node affinity/selector",
        ),
        ("pod didn't trigger scale-up (it wouldn't fit if a new node is added)", ""),
        ("pod didn't trigger scale-up:", ""),
    ],
)
def test_not_triggered_reasons(message, reasons):
    assert not_triggered_reasons(message) == reasons


def test_scheduling_message_drops_the_preemption_tail():
    message = (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod."
    )
    assert scheduling_message(message) == "0/3 nodes are available: 3 Insufficient cpu."


# --- captured situations ---------------------------------------------------------------------


def test_unschedulable_before_the_autoscaler_scans():
    data = load("fanout_unschedulable")
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.phase is Phase.RUNNING  # four pods run while six wait
    assert (state.running, state.waiting_for_capacity) == (4, 6)
    assert state.capacity_detail == "0/1 nodes are available: 1 Insufficient cpu."
    assert not state.hopeless
    assert not state.waiting_on_capacity  # the Job makes progress
    assert state.status_line == (
        "0/10 succeeded, 4 running, 6 waiting for capacity: "
        "0/1 nodes are available: 1 Insufficient cpu."
    )


def test_only_unschedulable_pods_wait_for_capacity():
    data = only_pending(load("fanout_unschedulable"))
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.phase is Phase.WAITING_FOR_CAPACITY
    assert state.reason == "Unschedulable"
    assert state.waiting_on_capacity


def test_scale_up_triggered_with_age_on_the_cluster_clock():
    data = only_pending(load("fanout_scale_up"))
    triggered = event_time(data, "TriggeredScaleUp")
    state = interpret_job(
        data["job"], data["pods"], data["events"], now=triggered + timedelta(seconds=150)
    )
    assert state.phase is Phase.WAITING_FOR_CAPACITY
    assert state.reason == "TriggeredScaleUp"
    assert state.capacity_detail == "scale-up triggered 2m ago"
    assert not state.hopeless
    assert state.status_line == "0/10 succeeded, 6 waiting for capacity: scale-up triggered 2m ago"


def test_scale_up_age_defaults_to_the_snapshot_clock():
    data = load("fanout_partly_done")
    triggered = event_time(data, "TriggeredScaleUp")
    newest = max(
        parse_time(e["lastTimestamp"])  # type: ignore[type-var]
        for e in data["events"]
    )
    state = interpret_job(data["job"], data["pods"], data["events"])
    age = format_age((newest - triggered).total_seconds())
    assert state.capacity_detail == f"scale-up triggered {age} ago"
    assert state.status_line.startswith("4/10 succeeded, ")
    assert state.status_line.endswith(f"waiting for capacity: scale-up triggered {age} ago")


def test_event_clock_ahead_of_now_gives_zero_age():
    data = only_pending(load("fanout_scale_up"))
    triggered = event_time(data, "TriggeredScaleUp")
    state = interpret_job(
        data["job"], data["pods"], data["events"], now=triggered - timedelta(seconds=30)
    )
    assert state.capacity_detail == "scale-up triggered 0s ago"


def test_not_trigger_scale_up_is_hopeless():
    data = load("not_trigger_scale_up")
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.phase is Phase.WAITING_FOR_CAPACITY
    assert state.reason == "NotTriggerScaleUp"
    assert state.hopeless
    assert state.capacity_detail == "no node pool can fit the pod: 1 Insufficient cpu"
    assert state.problems == ()  # hopeless, not permanent: fail at the capacity deadline
    assert not state.finished


def test_max_node_group_size_reached():
    data = load("max_node_group_size_reached")
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.hopeless
    assert state.capacity_detail == "no node pool can fit the pod: 1 max node group size reached"
    assert state.running == 6 and state.waiting_for_capacity == 14


def _with_event(data: dict[str, Any], reason: str, message: str, seconds: float) -> None:
    """Add an autoscaler event about every waiting pod, ``seconds`` after the newest event."""
    newest = max(parse_time(e["lastTimestamp"]) for e in data["events"])  # type: ignore[type-var]
    when = (newest + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for pod in data["pods"]:
        if pod["status"].get("phase") != "Pending":
            continue
        data["events"].append(
            {
                "kind": "Event",
                "apiVersion": "v1",
                "metadata": {"name": f"{pod['metadata']['name']}.{reason}", "namespace": "batch"},
                "involvedObject": {
                    "kind": "Pod",
                    "name": pod["metadata"]["name"],
                    "namespace": "batch",
                    "uid": pod["metadata"]["uid"],
                },
                "reason": reason,
                "message": message,
                "type": "Normal",
                "count": 1,
                "firstTimestamp": when,
                "lastTimestamp": when,
                "source": {"component": "cluster-autoscaler"},
            }
        )


def test_newest_autoscaler_verdict_wins():
    data = load("not_trigger_scale_up")
    _with_event(data, "TriggeredScaleUp", "pod triggered scale-up: [{gpu 0->1 (max: 2)}]", 60)
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert not state.hopeless and state.capacity_detail == "scale-up triggered 0s ago"

    data = only_pending(load("fanout_scale_up"))
    _with_event(
        data,
        "NotTriggerScaleUp",
        "pod didn't trigger scale-up: 1 in backoff after failed scale-up",
        60,
    )
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.hopeless
    assert state.capacity_detail == (
        "no node pool can fit the pod: 1 in backoff after failed scale-up"
    )


def test_events_of_an_older_pod_with_the_same_name_are_ignored():
    data = load("not_trigger_scale_up")
    for event in data["events"]:
        if event["reason"] == "NotTriggerScaleUp":
            event["involvedObject"]["uid"] = "another-uid"
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert not state.hopeless
    assert state.capacity_detail == "0/1 nodes are available: 1 Insufficient cpu."


def test_unschedulable_without_events_uses_the_pod_condition():
    data = load("not_trigger_scale_up")
    state = interpret_job(data["job"], data["pods"], [])
    assert state.capacity_detail == "0/1 nodes are available: 1 Insufficient cpu."
    assert state.reason == "Unschedulable"


def test_scheduling_gates_wait_for_capacity():
    data = load("scheduling_gated")
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.phase is Phase.WAITING_FOR_CAPACITY
    assert state.reason == "SchedulingGated"
    assert state.capacity_detail == "held by scheduling gates: example.com/wait"
    assert state.status_line == "1 waiting for capacity: held by scheduling gates: example.com/wait"


def test_kueue_admission_gate_before_the_scheduler_saw_the_pod():
    data = load("scheduling_gated")
    pod = data["pods"][0]
    pod["spec"]["schedulingGates"] = [{"name": "kueue.x-k8s.io/admission"}]
    pod["status"] = {"phase": "Pending", "qosClass": "Burstable"}
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.phase is Phase.WAITING_FOR_CAPACITY
    assert state.capacity_detail == "held by scheduling gates: kueue.x-k8s.io/admission"


def test_unschedulable_detail_wins_over_gates():
    gated = load("scheduling_gated")["pods"][0]
    data = load("not_trigger_scale_up")
    gated["metadata"]["ownerReferences"][0]["uid"] = data["job"]["metadata"]["uid"]
    data["pods"].append(gated)
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.waiting_for_capacity == 2
    assert state.capacity_detail.startswith("no node pool can fit the pod")


def test_scheduler_error_is_a_transient_problem():
    data = load("not_trigger_scale_up")
    cond = data["pods"][0]["status"]["conditions"][0]
    cond.update(reason="SchedulerError", message="binding rejected: timeout")
    state = interpret_job(data["job"], data["pods"], [])
    assert state.phase is Phase.PENDING
    [problem] = state.problems
    assert problem.reason == "SchedulerError" and not problem.permanent
    assert "binding rejected: timeout" in problem.message


def test_status_line_is_stable_while_the_scheduler_retries():
    data = load("fanout_unschedulable")
    before = interpret_job(data["job"], data["pods"], data["events"]).status_line
    for event in data["events"]:
        if event["reason"] == "FailedScheduling":
            event["count"] += 3
            event["lastTimestamp"] = (
                parse_time(event["lastTimestamp"]) + timedelta(seconds=40)  # type: ignore[operator]
            ).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert interpret_job(data["job"], data["pods"], data["events"]).status_line == before


def test_terminating_pods_are_only_counted():
    data = load("success_running")
    data["pods"][0]["metadata"]["deletionTimestamp"] = "2100-01-01T00:00:00Z"
    del data["job"]["status"]["terminating"]
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.running == 1 and state.terminating == 1
    assert state.status_line == "0/2 succeeded, 1 running, 1 terminating"
