"""Why a suspended Job is queued: its Kueue ``Workload`` (``kueue.x-k8s.io/v1beta1``), or a plain
``spec.suspend``.

Workload conditions as Kueue writes them (Kueue docs, "Troubleshooting Jobs"; ``apis/kueue``):

- ``QuotaReserved`` False with reason ``Pending`` ("couldn't assign flavors to pod set main:
  insufficient unused quota for cpu in flavor default, 4 more needed") — waiting for quota;
  "insufficient quota for cpu in flavor default, previously considered podsets requests (0) +
  current podset request (24) > maximum capacity (16)" (Kueue 0.17; older releases wrote
  "request > maximum capacity (24 > 16)") means the request exceeds what the ClusterQueue can
  ever lend, so it will not be admitted as it is (hopeless).
- ``QuotaReserved`` False with reason ``Inadmissible`` ("LocalQueue user-queue doesn't exist") —
  the LocalQueue or ClusterQueue is missing or inactive. A missing queue is a permanent problem;
  an inactive one (stopped, misconfigured) may be fixed by an administrator, so it only makes the
  Job hopeless (fail at the capacity deadline).
- ``QuotaReserved`` True but ``Admitted`` not True — admission checks (ProvisioningRequest,
  MultiKueue) still pending.
- ``Evicted`` True with reason ``Preempted``, ``PodsReadyTimeout``, ``AdmissionCheck``,
  ``ClusterQueueStopped``, ``InactiveWorkload`` ... — the Job is suspended again and requeued.
- ``spec.active: false`` — the Workload is deactivated; it is not admitted until reactivated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._objects import (
    Obj,
    condition,
    events_about,
    is_false,
    is_true,
    meta,
    name_of,
    namespace_of,
    spec,
    status,
)
from .state import PodProblem

QUEUE_NAME_LABEL = "kueue.x-k8s.io/queue-name"
_MISSING = re.compile(r"(doesn't|does not|don't|do not) exist|not found", re.I)
_OVER_MAXIMUM = re.compile(r"> maximum capacity")
_MORE_NEEDED = re.compile(r"more needed")
_CREATED_WORKLOAD = re.compile(r"Created Workload:\s*(\S+)")


@dataclass(frozen=True)
class QueueState:
    """Why a suspended Job waits: a machine reason, a detail for the status line, and whether
    it is hopeless or blocked by a permanent problem."""

    reason: str
    detail: str
    hopeless: bool = False
    problem: PodProblem | None = None


def queue_name(job: Obj | None, workload: Obj | None = None) -> str | None:
    if workload and spec(workload).get("queueName"):
        return str(spec(workload)["queueName"])
    labels = meta(job).get("labels") or {}
    value = labels.get(QUEUE_NAME_LABEL)
    return str(value) if value else None


def _one_line(text: object) -> str:
    return " ".join(str(text or "").split())


def interpret_queue(job: Obj, workload: Obj | None, events: Sequence[Obj]) -> QueueState:
    """Why the suspended ``job`` is not running yet."""
    queue = queue_name(job, workload)
    if workload is None:
        if queue is None:
            return QueueState(
                "Suspended",
                "the Job is suspended (spec.suspend: true); it starts when it is resumed",
            )
        created = None
        for event in events_about(events, job):
            if event.get("reason") == "CreatedWorkload":
                found = _CREATED_WORKLOAD.search(str(event.get("message") or ""))
                created = found.group(1) if found else "a Workload"
        if created:
            return QueueState(
                "Queued", f"Kueue: Workload {created} created in LocalQueue {queue}, not admitted"
            )
        return QueueState("Queued", f"Kueue: waiting for a Workload in LocalQueue {queue}")

    cq = str((status(workload).get("admission") or {}).get("clusterQueue") or "")
    quota = condition(workload, "QuotaReserved")
    admitted = condition(workload, "Admitted")
    evicted = condition(workload, "Evicted")
    where = f"LocalQueue {queue}" if queue else "its LocalQueue"

    if spec(workload).get("active") is False:
        why = _one_line((evicted or {}).get("message"))
        return QueueState(
            "WorkloadDeactivated",
            f"Kueue: Workload {name_of(workload)} is deactivated (spec.active: false)"
            + (f": {why}" if why else "")
            + "; it is not admitted until it is reactivated",
            hopeless=True,
        )

    if is_false(quota) and quota and quota.get("reason") == "Inadmissible":
        message = _one_line(quota.get("message")) or "the Workload is inadmissible"
        if _MISSING.search(message):
            ns = namespace_of(job) or namespace_of(workload)
            text = (
                f"Kueue cannot admit the Job: {message}"
                + (f" (namespace {ns})" if ns else "")
                + ". Create the LocalQueue (and its ClusterQueue) or set the Job's "
                f"{QUEUE_NAME_LABEL} label (queue_name) to an existing LocalQueue."
            )
            problem = PodProblem(
                "", None, "Inadmissible", text, True, quota.get("lastTransitionTime")
            )
            return QueueState("Inadmissible", f"Kueue: {message}", hopeless=True, problem=problem)
        return QueueState("Inadmissible", f"Kueue: inadmissible: {message}", hopeless=True)

    eviction = ""
    if is_true(evicted) and evicted:
        eviction = (
            f"evicted ({evicted.get('reason') or 'Evicted'}: "
            f"{_one_line(evicted.get('message')) or 'no message'})"
        )

    if is_true(admitted):
        return QueueState("Admitted", f"Kueue: admitted in ClusterQueue {cq or '?'}, starting")

    if is_true(quota):
        pending = [
            f"{check.get('name')} ({check.get('state')})"
            for check in status(workload).get("admissionChecks") or []
            if isinstance(check, Mapping) and check.get("state") != "Ready"
        ]
        detail = f"Kueue: quota reserved in ClusterQueue {cq or '?'}"
        detail += (
            f", waiting for admission checks: {', '.join(pending)}"
            if pending
            else ", waiting for admission"
        )
        return QueueState("QuotaReserved", detail)

    if is_false(quota) and quota:
        message = _one_line(quota.get("message"))
        hopeless = bool(_OVER_MAXIMUM.search(message)) and not _MORE_NEEDED.search(message)
        detail = f"Kueue: waiting for quota in {where}"
        if eviction:
            detail = f"Kueue: {eviction}; waiting for quota again in {where}"
        if message:
            detail += f": {message}"
        reason = str(evicted.get("reason")) if eviction and evicted else "Pending"
        return QueueState(reason or "Pending", detail, hopeless=hopeless)

    if eviction and evicted:
        return QueueState(
            str(evicted.get("reason") or "Evicted"),
            f"Kueue: {eviction}; waiting to be admitted again in {where}",
        )
    return QueueState("Queued", f"Kueue: waiting in {where} for an admission attempt")
