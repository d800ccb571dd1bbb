"""Pods of a Job: which run, which start, which wait for capacity, what is wrong with them.

Reasons and messages are the ones kube-scheduler, cluster-autoscaler and the kubelet write:

- ``PodScheduled=False`` with reason ``Unschedulable`` (no node fits now) or ``SchedulingGated``
  (``spec.schedulingGates`` hold the pod, e.g. Kueue's ``kueue.x-k8s.io/admission``); the
  scheduler's ``FailedScheduling`` event ("0/3 nodes are available: ...").
- cluster-autoscaler events on the pod: ``TriggeredScaleUp`` ("pod triggered scale-up: [...]")
  and ``NotTriggerScaleUp`` ("pod didn't trigger scale-up: 1 max node group size reached", or
  in older versions "pod didn't trigger scale-up (it wouldn't fit if a new node is added): ...").
- container ``waiting`` reasons: ``InvalidImageName`` and ``ErrImageNeverPull`` never recover;
  ``ErrImagePull`` / ``ImagePullBackOff`` and ``CreateContainerConfigError`` are retried by the
  kubelet and become permanent once they have lasted ``grace`` seconds (cluster clock); the
  kubelet's ``Failed`` / ``BackOff`` events date the first failure.

``CreateContainerConfigError`` (a Secret or ConfigMap, or a key of one, that the pod references
does not exist) gets the same grace as image pulls rather than failing at once: the kubelet
retries, and a common pattern creates the Secret next to the Job (another task, an external
secrets operator syncing it), which then fixes it within seconds. Past the grace it rarely
fixes itself, and waiting longer only hides the mistake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ._objects import (
    Obj,
    as_int,
    completion_index,
    condition,
    event_container,
    event_first,
    event_last,
    events_about,
    format_age,
    format_duration,
    is_false,
    is_true,
    meta,
    name_of,
    namespace_of,
    parse_time,
    rfc3339,
    spec,
    status,
)
from .state import PodFailure, PodProblem

PERMANENT_WAITING = frozenset({"InvalidImageName", "ErrImageNeverPull"})
ROUTINE_EVENT_REASONS = (
    "Scheduled",
    "Pulling",
    "Pulled",
    "Created",
    "Started",
    "Killing",
    "Completed",
    "SuccessfulCreate",
    "SuccessfulDelete",
)
"""Reasons of the Events every healthy pod and Job gets (scheduler, kubelet, Job controller)
and no decision here reads; waiters ask the API server to leave them out."""
IMAGE_PULL_WAITING = frozenset({"ErrImagePull", "ImagePullBackOff"})
CONFIG_WAITING = frozenset({"CreateContainerConfigError"})
TRANSIENT_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "CreateContainerError",
        "RunContainerError",
        "PreCreateHookError",
        "PreStartHookError",
        "PostStartHookError",
        "ImageInspectError",
        "RegistryUnavailable",
    }
)

# Labels for the status line: stable across the kubelet's ErrImagePull <-> ImagePullBackOff flips.
PROBLEM_LABELS = {
    "InvalidImageName": "invalid image name",
    "ErrImageNeverPull": "image not on node (pull policy Never)",
    "ErrImagePull": "image pull failing",
    "ImagePullBackOff": "image pull failing",
    "CreateContainerConfigError": "container config error",
    "CrashLoopBackOff": "crash loop",
    "SchedulerError": "scheduler error",
}

_NOT_TRIGGERED = re.compile(r"^pod didn't trigger scale-up(?: \([^)]*\))?:?\s*(.*)$", re.S)
_PREEMPTION_SUFFIX = re.compile(r"\s*preemption: .*$", re.S)

_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


@dataclass
class PodsView:
    """What the pods of one Job are doing (pods being deleted are only counted)."""

    running: int = 0
    starting: int = 0
    succeeded: int = 0
    failed: int = 0
    terminating: int = 0
    waiting: list[Obj] = field(default_factory=list)
    capacity_reason: str = ""
    capacity_detail: str = ""
    hopeless: bool = False
    problems: list[PodProblem] = field(default_factory=list)
    failures: list[PodFailure] = field(default_factory=list)
    failed_pods: list[str] = field(default_factory=list)
    starting_reason: str = ""


def not_triggered_reasons(message: str) -> str:
    """The reasons of a ``NotTriggerScaleUp`` message ("1 max node group size reached")."""
    found = _NOT_TRIGGERED.match(message.strip())
    return (found.group(1) if found else message).strip()


def scheduling_message(message: str) -> str:
    """A ``FailedScheduling`` message without its "preemption: ..." tail."""
    return _PREEMPTION_SUFFIX.sub("", message.strip()).strip()


def _container_statuses(pod: Obj) -> list[tuple[Mapping[str, object], bool]]:
    st = status(pod)
    out = [(cs, True) for cs in st.get("initContainerStatuses") or [] if isinstance(cs, Mapping)]
    out += [(cs, False) for cs in st.get("containerStatuses") or [] if isinstance(cs, Mapping)]
    return out


def _waiting(cs: Mapping[str, object]) -> Mapping[str, object] | None:
    state = cs.get("state")
    if isinstance(state, Mapping):
        waiting = state.get("waiting")
        if isinstance(waiting, Mapping):
            return waiting
    return None


def _terminated(cs: Mapping[str, object], key: str = "state") -> Mapping[str, object] | None:
    state = cs.get(key)
    if isinstance(state, Mapping):
        terminated = state.get("terminated")
        if isinstance(terminated, Mapping):
            return terminated
    return None


def _is_pull_event(event: Obj) -> bool:
    text = f"{event.get('reason', '')} {event.get('message', '')}"
    return bool(re.search(r"pull|ErrImagePull|ImagePullBackOff", text, re.I))


def _problem_start(
    pod: Obj, pod_events: Sequence[Obj], container: str, pull: bool
) -> tuple[datetime | None, str]:
    """When a retried container problem started, and the most telling message about it.

    For image pulls: the first kubelet ``Failed``/``BackOff`` pull event, and the newest
    "Failed to pull image ..." message (it carries the registry's answer). For container config
    errors: the first ``Failed`` event that is not about pulls. Without events: the pod's
    ``startTime`` (the kubelet accepted the pod just before it tried).
    """
    first: datetime | None = None
    best_message = ""
    for event in pod_events:
        if event.get("reason") not in ("Failed", "BackOff", "ErrImagePull"):
            continue
        owner = event_container(event)
        if owner is not None and owner != container:
            continue
        if _is_pull_event(event) != pull:
            continue
        when = event_first(event)
        if when is not None and (first is None or when < first):
            first = when
        message = str(event.get("message") or "")
        if pull and message.startswith("Failed to pull image"):
            best_message = message
        elif not pull and message.startswith("Error: "):
            best_message = message[len("Error: ") :]
    if first is None:
        scheduled = condition(pod, "PodScheduled")
        first = (
            parse_time(status(pod).get("startTime"))
            or parse_time((scheduled or {}).get("lastTransitionTime"))
            or parse_time(meta(pod).get("creationTimestamp"))
        )
    return first, best_message


def _container_problem(
    pod: Obj,
    pod_events: Sequence[Obj],
    cs: Mapping[str, object],
    now: datetime | None,
    grace: float,
) -> PodProblem | None:
    waiting = _waiting(cs)
    if waiting is None:
        return None
    reason = str(waiting.get("reason") or "")
    raw = str(waiting.get("message") or "").strip()
    pod_name, container = name_of(pod), str(cs.get("name") or "")
    ns = namespace_of(pod)
    where = f"pod {pod_name}" + (f" (container {container})" if container else "")
    if reason == "InvalidImageName":
        first, _ = _problem_start(pod, pod_events, container, pull=True)
        message = (
            f"The image of {where} is not a valid image reference"
            + (f": {raw}" if raw else "")
            + ". This never fixes itself: correct the image name in the Job's pod template."
        )
        return PodProblem(pod_name, container, reason, message, True, rfc3339(first))
    if reason == "ErrImageNeverPull":
        first, _ = _problem_start(pod, pod_events, container, pull=True)
        message = (
            f"The image of {where} is not on the node and its imagePullPolicy is Never"
            + (f" ({raw})" if raw else "")
            + ". Use imagePullPolicy IfNotPresent or Always, or pre-load the image on the nodes."
        )
        return PodProblem(pod_name, container, reason, message, True, rfc3339(first))
    if reason in IMAGE_PULL_WAITING or reason in CONFIG_WAITING:
        pull = reason in IMAGE_PULL_WAITING
        first, best = _problem_start(pod, pod_events, container, pull=pull)
        lasted = (now - first).total_seconds() if (now and first) else None
        permanent = lasted is not None and lasted >= grace
        detail = best or raw
        for_how_long = f" for {format_duration(lasted)}" if lasted is not None else ""
        if pull:
            message = (
                f"The kubelet cannot pull the image of {where}{for_how_long}"
                + (f": {detail}" if detail else "")
                + "."
            )
            if permanent:
                message += (
                    " Check that the image and tag exist and that the cluster's nodes may read "
                    "the registry (imagePullSecrets, or the node service account's access to "
                    "Artifact Registry)."
                )
        else:
            message = (
                f"The kubelet cannot create the container of {where}{for_how_long}"
                + (f": {detail}" if detail else "")
                + "."
            )
            if permanent:
                message += (
                    " A Secret or ConfigMap (or a key in it) that the pod references is missing:"
                    f" create it in namespace {ns or 'of the Job'} or fix the reference."
                )
        return PodProblem(pod_name, container, reason, message, permanent, rfc3339(first))
    if reason in TRANSIENT_WAITING:
        restarts = as_int(cs.get("restartCount"))
        last = _terminated(cs, "lastState")
        if reason == "CrashLoopBackOff":
            exit_part = f", last exit code {last.get('exitCode')}" if last else ""
            message = (
                f"The container of {where} keeps failing (restarted {restarts} times"
                f"{exit_part}); the kubelet restarts it with a back-off."
            )
        else:
            message = f"The kubelet cannot start {where}: {reason}" + (f": {raw}." if raw else ".")
        since = (last or {}).get("finishedAt") if last else None
        return PodProblem(
            pod_name, container, reason, message, False, str(since) if since else None
        )
    return None


def _failure_of_pod(pod: Obj) -> list[PodFailure]:
    """Failures of a pod in phase Failed: each container that ended badly, or the pod's reason."""
    name, index = name_of(pod), completion_index(pod)
    disrupted = condition(pod, "DisruptionTarget")
    disruption = (
        str(disrupted.get("reason") or "DisruptionTarget")
        if disrupted is not None and is_true(disrupted)
        else None
    )
    out: list[PodFailure] = []
    for cs, _init in _container_statuses(pod):
        term = _terminated(cs)
        if term is None:
            continue
        code = term.get("exitCode")
        exit_code = as_int(code) if code is not None else None
        term_reason = str(term.get("reason") or "")
        if exit_code == 0 and term_reason in ("", "Completed"):
            continue
        out.append(
            PodFailure(
                pod=name,
                index=index,
                container=str(cs.get("name") or "") or None,
                exit_code=exit_code,
                reason=term_reason or "Error",
                message=str(term.get("message") or "").strip(),
                disruption=disruption,
                finished_at=str(term.get("finishedAt")) if term.get("finishedAt") else None,
                restarts=as_int(cs.get("restartCount")),
            )
        )
    if not out:
        st = status(pod)
        reason = str(st.get("reason") or (disruption or "Failed"))
        message = str(st.get("message") or ((disrupted or {}).get("message") or "")).strip()
        finished = (disrupted or {}).get("lastTransitionTime") or _latest_condition_time(pod)
        out.append(
            PodFailure(
                pod=name,
                index=index,
                container=None,
                exit_code=None,
                reason=reason,
                message=message,
                disruption=disruption,
                finished_at=str(finished) if finished else None,
            )
        )
    return out


def _crash_failures(pod: Obj) -> list[PodFailure]:
    """Restarted containers (``restartPolicy: OnFailure``) whose last run failed."""
    out = []
    for cs, _init in _container_statuses(pod):
        last = _terminated(cs, "lastState")
        if last is None or as_int(last.get("exitCode")) == 0:
            continue
        out.append(
            PodFailure(
                pod=name_of(pod),
                index=completion_index(pod),
                container=str(cs.get("name") or "") or None,
                exit_code=as_int(last.get("exitCode")),
                reason=str(last.get("reason") or "Error"),
                message=str(last.get("message") or "").strip(),
                finished_at=str(last.get("finishedAt")) if last.get("finishedAt") else None,
                restarts=as_int(cs.get("restartCount")),
            )
        )
    return out


def _latest_condition_time(pod: Obj) -> str | None:
    times = [
        (parse_time(c.get("lastTransitionTime")), c.get("lastTransitionTime"))
        for c in status(pod).get("conditions") or []
        if isinstance(c, Mapping)
    ]
    dated = [(t, raw) for t, raw in times if t is not None]
    return str(max(dated)[1]) if dated else None


def _capacity_verdict(
    waiting: Sequence[Obj], events_by_pod: Mapping[str, list[Obj]], now: datetime | None
) -> tuple[str, str, bool]:
    """(reason, detail, hopeless) for the pods that wait for capacity."""
    autoscaler: list[tuple[datetime, Obj]] = []
    scheduling: list[tuple[datetime, Obj]] = []
    gated: list[Obj] = []
    unschedulable: list[Obj] = []
    for pod in waiting:
        cond = condition(pod, "PodScheduled")
        if (cond or {}).get("reason") == "SchedulingGated" or (
            cond is None and spec(pod).get("schedulingGates")
        ):
            gated.append(pod)
            continue
        unschedulable.append(pod)
        for event in events_by_pod.get(name_of(pod), []):
            when = event_last(event) or _EPOCH
            if event.get("reason") in ("TriggeredScaleUp", "NotTriggerScaleUp"):
                autoscaler.append((when, event))
            elif event.get("reason") == "FailedScheduling":
                scheduling.append((when, event))
    if unschedulable:
        if autoscaler:
            when, event = max(autoscaler, key=lambda item: item[0])
            if event.get("reason") == "TriggeredScaleUp":
                age = ""
                if now is not None and when is not _EPOCH:
                    age = f" {format_age((now - when).total_seconds())} ago"
                return "TriggeredScaleUp", f"scale-up triggered{age}", False
            reasons = not_triggered_reasons(str(event.get("message") or ""))
            detail = "no node pool can fit the pod" + (f": {reasons}" if reasons else "")
            return "NotTriggerScaleUp", detail, True
        if scheduling:
            _, event = max(scheduling, key=lambda item: item[0])
            return "Unschedulable", scheduling_message(str(event.get("message") or "")), False
        for pod in unschedulable:
            message = str((condition(pod, "PodScheduled") or {}).get("message") or "")
            if message:
                return "Unschedulable", scheduling_message(message), False
        return "Unschedulable", "no node has room for the pod yet", False
    gates = sorted(
        {
            str(gate.get("name"))
            for pod in gated
            for gate in spec(pod).get("schedulingGates") or []
            if isinstance(gate, Mapping) and gate.get("name")
        }
    )
    detail = "held by scheduling gates" + (f": {', '.join(gates)}" if gates else "")
    return "SchedulingGated", detail, False


def view_pods(
    pods: Sequence[Obj], events: Sequence[Obj], now: datetime | None, grace: float
) -> PodsView:
    view = PodsView()
    # One pass over the events, not one per pod: a 1,500-pod Job has thousands of each.
    by_name: dict[str, list[Obj]] = {}
    for event in events:
        ref = event.get("involvedObject") or event.get("regarding") or {}
        by_name.setdefault(str(ref.get("name") or ""), []).append(event)
    events_by_pod = {name_of(pod): events_about(by_name.get(name_of(pod), []), pod) for pod in pods}
    failures: list[PodFailure] = []
    for pod in pods:
        phase = status(pod).get("phase") or "Pending"
        pod_events = events_by_pod.get(name_of(pod), [])
        if phase == "Succeeded":
            view.succeeded += 1
            continue
        if phase == "Failed":
            view.failed += 1
            failures.extend(_failure_of_pod(pod))
            continue
        if meta(pod).get("deletionTimestamp"):
            view.terminating += 1
            continue
        crashes = _crash_failures(pod)
        failures.extend(crashes)
        problems = [
            p
            for cs, _init in _container_statuses(pod)
            if (p := _container_problem(pod, pod_events, cs, now, grace)) is not None
        ]
        view.problems.extend(problems)
        if phase == "Running":
            view.running += 1
            continue
        scheduled = condition(pod, "PodScheduled")
        if is_false(scheduled) and (scheduled or {}).get("reason") in (
            "Unschedulable",
            "SchedulingGated",
        ):
            view.waiting.append(pod)
            continue
        if scheduled is None and not spec(pod).get("nodeName") and spec(pod).get("schedulingGates"):
            view.waiting.append(pod)
            continue
        if is_false(scheduled) and (scheduled or {}).get("reason") == "SchedulerError":
            view.problems.append(
                PodProblem(
                    name_of(pod),
                    None,
                    "SchedulerError",
                    f"The scheduler failed on pod {name_of(pod)}: "
                    f"{(scheduled or {}).get('message') or 'no message'}.",
                    False,
                    (scheduled or {}).get("lastTransitionTime"),
                )
            )
        view.starting += 1
        if not view.starting_reason:
            for cs, _init in _container_statuses(pod):
                waiting = _waiting(cs)
                if waiting and waiting.get("reason"):
                    view.starting_reason = str(waiting["reason"])
                    break
    if view.waiting:
        view.capacity_reason, view.capacity_detail, view.hopeless = _capacity_verdict(
            view.waiting, events_by_pod, now
        )
    failures.sort(key=lambda f: parse_time(f.finished_at) or _EPOCH)
    view.failures = failures
    seen: dict[str, None] = {}
    for failure in failures:
        seen.pop(failure.pod, None)
        seen[failure.pod] = None
    view.failed_pods = list(seen)
    return view


__all__ = ["PROBLEM_LABELS", "PodsView", "not_triggered_reasons", "scheduling_message", "view_pods"]
