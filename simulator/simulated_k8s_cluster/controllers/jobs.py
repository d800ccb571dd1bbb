"""The Job controller (batch/v1), modelled on kube-controller-manager's ``pkg/controller/job``.

What it does, as the upstream controller (v1.31+ behaviour, feature gates at their defaults):

* creates pods from ``spec.template`` (owner reference with ``controller`` and
  ``blockOwnerDeletion``, ``generateName`` ``<job>-`` or ``<job>-<index>-``), at most
  ``parallelism`` active and never more than the remaining completions, after the exponential
  pod-failure back-off (10 s doubling, capped at 10 minutes as ``MaxJobPodFailureBackOff``);
* ``Indexed`` jobs: completion-index annotation and label, ``JOB_COMPLETION_INDEX`` env, hostname
  ``<job>-<index>``, lowest pending indexes first, ``completedIndexes`` / ``failedIndexes`` in the
  compressed interval form, ``backoffLimitPerIndex`` / ``maxFailedIndexes`` and ``successPolicy``;
* counts succeeded and failed pods once (``podReplacementPolicy`` decides whether terminating
  pods count as failed), applies ``podFailurePolicy`` rules in order to pods in phase Failed;
* adds ``FailureTarget`` / ``SuccessCriteriaMet`` first and ``Failed`` / ``Complete`` (same reason
  and message) only once no pod of the Job is terminating;
* ``suspend`` deletes active pods, creates none and clears ``startTime`` (1.36 default);
  resuming sets ``startTime`` again;
* ``activeDeadlineSeconds`` from ``startTime``.

Pods are tracked without the ``batch.kubernetes.io/job-tracking`` finalizer: the controller keeps
in memory which pods it has already counted. A pod that disappears before it was counted (deleted
while Pending, or removed behind the controller's back) counts as failed, as the finalizer makes
it count upstream; with ``podFailurePolicy`` it is matched as a Failed pod with a
``DisruptionTarget`` condition (what PodGC writes on such pods).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..admission import admit_create, generate_name
from ..resources import JOBS, PODS, ApiError, ResourceType
from ..state import ClusterState
from ..store import clone, controller_uid

log = logging.getLogger("simulated_k8s_cluster")

Obj = dict[str, Any]

COMPONENT = "job-controller"
CONTROLLER_NAME = "kubernetes.io/job-controller"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"

DEFAULT_POD_FAILURE_BACKOFF = 10.0
"""``DefaultJobPodFailureBackOff``: the first delay before re-creating pods after a failure."""
MAX_POD_FAILURE_BACKOFF = 600.0
"""``MaxJobPodFailureBackOff`` (10 minutes in the controller; the docs say six)."""
MAX_POD_CREATE_DELETE_PER_SYNC = 500
MAX_GENERATED_NAME_LENGTH = 58

MSG_BACKOFF = "Job has reached the specified backoff limit"
MSG_DEADLINE = "Job was active longer than specified deadline"
MSG_MAX_FAILED_INDEXES = "Job has exceeded the specified maximal number of failed indexes"
MSG_FAILED_INDEXES = "Job has failed indexes"
MSG_COMPLETIONS = "Reached expected number of succeeded pods"


# --- small helpers on pods and jobs -----------------------------------------------------------


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _terminal(pod: Obj) -> bool:
    return _phase(pod) in ("Succeeded", "Failed")


def _deleting(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def completion_index(pod: Obj) -> int | None:
    value = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX)
    try:
        index = int(value) if value is not None else -1
    except (TypeError, ValueError):
        return None
    return index if index >= 0 else None


def _annotation_count(pod: Obj, key: str) -> int:
    value = (pod["metadata"].get("annotations") or {}).get(key)
    try:
        count = int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0
    return count if 0 <= count <= 2**31 - 1 else 0


def format_indexes(indexes: Iterable[int]) -> str:
    """Indexes in the API's compressed form: ``0-2,4`` (two adjacent ones as ``5,6``)."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        first = last = ordered[i]
        while i + 1 < len(ordered) and ordered[i + 1] == last + 1:
            i += 1
            last = ordered[i]
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
        i += 1
    return ",".join(parts)


def parse_indexes(text: str | None, completions: int) -> set[int]:
    """The inverse of :func:`format_indexes`, ignoring corrupt parts and indexes out of range."""
    result: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        bounds = part.split("-")
        try:
            first = int(bounds[0])
            last = int(bounds[1]) if len(bounds) > 1 else first
        except ValueError:
            continue
        if first >= completions:
            break
        result.update(range(first, min(last, completions - 1) + 1))
    return result


def _find_condition(job: Obj, ctype: str) -> Obj | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == ctype:
            return dict(condition)
    return None


def _true_condition(job: Obj, ctype: str) -> Obj | None:
    condition = _find_condition(job, ctype)
    return condition if condition and condition.get("status") == "True" else None


def job_finished(job: Obj) -> bool:
    return bool(_true_condition(job, "Complete") or _true_condition(job, "Failed"))


def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> tuple[str | None, bool, str | None]:
    """``(FailJob message, counts towards backoffLimit, matched action)`` for a failed pod."""
    if not policy:
        return None, True, None
    meta = pod["metadata"]
    status = pod.get("status") or {}
    for index, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            matched = _match_exit_codes(status, rule["onExitCodes"])
            if matched is None:
                continue
            if action == "FailJob":
                code = matched["state"]["terminated"].get("exitCode")
                return (
                    f"Container {matched.get('name')} for pod {meta.get('namespace')}/"
                    f"{meta['name']} failed with exit code {code} matching FailJob rule at "
                    f"index {index}",
                    True,
                    action,
                )
        elif rule.get("onPodConditions") is not None:
            condition = _match_pod_conditions(status, rule["onPodConditions"])
            if condition is None:
                continue
            if action == "FailJob":
                return (
                    f"Pod {meta.get('namespace')}/{meta['name']} has condition "
                    f"{condition.get('type')} matching FailJob rule at index {index}",
                    True,
                    action,
                )
        else:
            continue
        if action == "Ignore":
            return None, False, action
        if action in ("Count", "FailIndex"):
            return None, True, action
        # An action this controller does not know: upstream falls through to the next rule.
    return None, True, None


def _match_exit_codes(status: Obj, requirement: Obj) -> Obj | None:
    name = requirement.get("containerName")
    operator = requirement.get("operator")
    values = requirement.get("values") or []
    for group in ("containerStatuses", "initContainerStatuses"):
        for container in status.get(group) or []:
            terminated = (container.get("state") or {}).get("terminated")
            if not terminated:
                continue
            if name is not None and name != container.get("name"):
                continue
            code = terminated.get("exitCode", 0)
            if code == 0:
                continue
            if (operator == "In" and code in values) or (
                operator == "NotIn" and code not in values
            ):
                return dict(container)
    return None


def _match_pod_conditions(status: Obj, patterns: list[Obj]) -> Obj | None:
    for condition in status.get("conditions") or []:
        for pattern in patterns:
            if condition.get("type") == pattern.get("type") and condition.get(
                "status"
            ) == pattern.get("status", "True"):
                return dict(condition)
    return None


# --- per-Job memory -------------------------------------------------------------------------


@dataclass
class _Tracking:
    """What the upstream controller keeps in finalizers, expectations and its back-off store."""

    counted: set[str] = field(default_factory=set)
    """Pods already reflected in the status (or deliberately never counted)."""
    seen: dict[str, Obj] = field(default_factory=dict)
    """Last seen version of every pod not counted yet (to notice pods that vanish)."""
    failures_after_success: int = 0
    last_failure: float | None = None
    index_last_failed: dict[int, tuple[Obj, float]] = field(default_factory=dict)
    """Per index, the last failed pod and when it finished: the base of the replacement's
    failure-count annotation and of the per-index back-off."""


@dataclass
class _Finished:
    type: str  # FailureTarget | SuccessCriteriaMet
    reason: str
    message: str

    @property
    def failure(self) -> bool:
        return self.type == "FailureTarget"

    @property
    def final_type(self) -> str:
        return "Failed" if self.failure else "Complete"


class JobController:
    """Reconciles every batch/v1 Job of the store (see the module docstring).

    As the upstream controller's work queue, a pass syncs only the Jobs that need it: those
    whose object or pods changed since they were last synced, those whose wake-up instant
    (active deadline, back-off) has come, and those whose last sync failed to write.
    """

    name = "job-controller"

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._tracking: dict[str, _Tracking] = {}
        self._resync_all = True
        self._dirty: set[str] = set()
        """Uids of Jobs whose object or pods changed (may name other owners, or gone Jobs)."""
        self._retry: set[str] = set()
        """Jobs whose last sync failed; synced again on every pass, as before they changed."""
        self._wake: dict[str, float] = {}
        self._timers: list[tuple[float, str]] = []
        """A heap of (instant, uid); an entry counts only while ``_wake[uid]`` equals it."""
        self._write_failed = False
        state.store.add_observer(self._observe)

    def _observe(self, resource: ResourceType, event_type: str, obj: Obj, old: Obj | None) -> None:
        if resource is JOBS:
            self._dirty.add(obj["metadata"].get("uid", ""))
        elif resource is PODS:
            for version in (obj, old):
                if version is not None and (owner := controller_uid(version)) is not None:
                    self._dirty.add(owner)

    # --- the loop ------------------------------------------------------------------------------

    def reconcile(self) -> float | None:
        store = self.state.store
        now = self.state.clock.now()
        due = self._dirty | self._retry
        self._dirty = set()
        self._retry = set()
        if self._resync_all:
            self._resync_all = False
            due.update(job["metadata"]["uid"] for job in store.objects(JOBS))
            due.update(self._tracking)
        while self._timers and self._timers[0][0] <= now:
            at, uid = heapq.heappop(self._timers)
            if self._wake.get(uid) == at:
                del self._wake[uid]
                due.add(uid)
        jobs: list[Obj] = []
        for uid in due:
            job = store.by_uid(uid)
            if job is None or (job.get("apiVersion"), job.get("kind")) != (
                JOBS.api_version,
                JOBS.kind,
            ):
                self._tracking.pop(uid, None)
                self._wake.pop(uid, None)
                continue
            jobs.append(job)
        jobs.sort(key=lambda job: store.creation_order(JOBS, job))
        for job in jobs:
            uid = job["metadata"]["uid"]
            self._write_failed = False
            try:
                wanted = self._sync(job)
            except ApiError as exc:  # e.g. the namespace is being deleted
                log.debug(
                    "job %s/%s: %s", job["metadata"].get("namespace"), job["metadata"]["name"], exc
                )
                wanted = None
                self._write_failed = True
            if self._write_failed:
                self._retry.add(uid)
            if wanted is None:
                self._wake.pop(uid, None)
            elif self._wake.get(uid) != wanted:
                self._wake[uid] = wanted
                heapq.heappush(self._timers, (wanted, uid))
        while self._timers and self._wake.get(self._timers[0][1]) != self._timers[0][0]:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    # --- one Job ---------------------------------------------------------------------------

    def _sync(self, stored: Obj) -> float | None:
        store, clock = self.state.store, self.state.clock
        meta = stored["metadata"]
        uid, namespace = meta["uid"], meta["namespace"]
        spec = stored.get("spec") or {}
        if spec.get("managedBy") not in (None, CONTROLLER_NAME):
            return None
        if job_finished(stored):
            self._tracking.pop(uid, None)
            return None
        if spec.get("completionMode", "NonIndexed") not in ("NonIndexed", "Indexed"):
            return None

        # The stored Job is only read; writes go through a shallow copy with a new status.
        job = dict(stored)
        spec = job["spec"]
        old_status: Obj = stored.get("status") or {}
        status: Obj = clone(old_status)
        t = self._tracking.setdefault(uid, _Tracking())
        now = clock.now()
        wake: list[float] = []

        indexed = spec.get("completionMode") == "Indexed"
        completions: int | None = spec.get("completions")
        backoff_limit = int(spec.get("backoffLimit") if spec.get("backoffLimit") is not None else 6)
        per_index = indexed and spec.get("backoffLimitPerIndex") is not None
        policy = spec.get("podFailurePolicy")
        only_failed = bool(policy) or spec.get("podReplacementPolicy") == "Failed"
        suspended = bool(spec.get("suspend"))

        pods = store.controlled_by(PODS, uid, namespace)
        present = {p["metadata"]["uid"] for p in pods}

        # Pods that vanished before they were counted count as failed (the tracking finalizer
        # would have kept them around until the controller saw them terminate).
        vanished: list[Obj] = []
        for pod_uid, seen_pod in list(t.seen.items()):
            if pod_uid in present:
                continue
            del t.seen[pod_uid]
            if pod_uid in t.counted:
                continue
            vanished.append(self._as_vanished(seen_pod, now))

        def valid(pod: Obj) -> bool:
            if not indexed:
                return True
            ix = completion_index(pod)
            return ix is not None and completions is not None and ix < completions

        def is_failed(pod: Obj) -> bool:
            if _phase(pod) == "Failed":
                return True
            if only_failed:
                return False
            return _deleting(pod) and _phase(pod) != "Succeeded"

        candidates = [p for p in [*pods, *vanished] if p["metadata"]["uid"] not in t.counted]
        for pod in candidates:
            if not valid(pod) and (_terminal(pod) or pod in vanished):
                t.counted.add(pod["metadata"]["uid"])  # never counted, as upstream
        new_succeeded = [p for p in candidates if valid(p) and _phase(p) == "Succeeded"]
        new_failed = [p for p in candidates if valid(p) and is_failed(p)]
        matches = {p["metadata"]["uid"]: match_pod_failure_policy(policy, p) for p in new_failed}

        # --- counters ---
        prev_completed = (
            parse_indexes(status.get("completedIndexes"), completions or 0) if indexed else set()
        )
        completed = set(prev_completed)
        if indexed:
            for pod in new_succeeded:
                ix = completion_index(pod)
                assert ix is not None
                completed.add(ix)
            succeeded = len(completed)
        else:
            succeeded = int(status.get("succeeded") or 0) + len(new_succeeded)
        failed = int(status.get("failed") or 0) + sum(
            1 for p in new_failed if matches[p["metadata"]["uid"]][1]
        )

        if not status.get("startTime") and not suspended:
            status["startTime"] = clock.timestamp(now)

        self._update_backoff(t, new_succeeded, new_failed, now)

        # --- is the outcome decided? ---
        finished: _Finished | None = None
        persisted = False
        criteria = _true_condition(job, "SuccessCriteriaMet")
        target = _true_condition(job, "FailureTarget")
        if criteria:
            finished = _Finished(
                "SuccessCriteriaMet", criteria.get("reason", ""), criteria.get("message", "")
            )
            persisted = True
        elif target:
            finished = _Finished(
                "FailureTarget", target.get("reason", ""), target.get("message", "")
            )
            persisted = True
        elif policy:
            for pod in [*pods, *vanished]:
                if is_failed(pod):
                    message = (
                        matches.get(pod["metadata"]["uid"]) or match_pod_failure_policy(policy, pod)
                    )[0]
                    if message:
                        finished = _Finished("FailureTarget", "PodFailurePolicy", message)
                        break
        if finished is None:
            if failed > backoff_limit or self._past_backoff_on_failure(spec, pods, backoff_limit):
                finished = _Finished("FailureTarget", "BackoffLimitExceeded", MSG_BACKOFF)
            elif spec.get("activeDeadlineSeconds") is not None and not suspended:
                deadline = clock.parse(status["startTime"]) + spec["activeDeadlineSeconds"]
                if now >= deadline:
                    finished = _Finished("FailureTarget", "DeadlineExceeded", MSG_DEADLINE)
                else:
                    wake.append(deadline)

        failed_indexes: set[int] | None = None
        if indexed:
            assert completions is not None
            if per_index:
                failed_indexes = parse_indexes(status.get("failedIndexes"), completions)
                for pod in new_failed:
                    if self._index_failed(spec, pod, matches[pod["metadata"]["uid"]]):
                        ix = completion_index(pod)
                        assert ix is not None
                        failed_indexes.add(ix)
                if finished is None:
                    max_failed = spec.get("maxFailedIndexes")
                    if max_failed is not None and len(failed_indexes) > max_failed:
                        finished = _Finished(
                            "FailureTarget", "MaxFailedIndexesExceeded", MSG_MAX_FAILED_INDEXES
                        )
                    elif failed_indexes and len(failed_indexes | completed) >= completions:
                        finished = _Finished("FailureTarget", "FailedIndexes", MSG_FAILED_INDEXES)
            for pod in new_failed:
                ix = completion_index(pod)
                assert ix is not None
                last = t.index_last_failed.get(ix)
                finished_at = self._finish_time(pod, now)
                if last is None or (
                    self._absolute_failures(last[0]) <= self._absolute_failures(pod)
                    and finished_at >= last[1]
                ):
                    t.index_last_failed[ix] = (pod, finished_at)
            if finished is None:
                message = self._match_success_policy(
                    spec.get("successPolicy"), completions, completed
                )
                if message:
                    finished = _Finished("SuccessCriteriaMet", "SuccessPolicy", message)

        # Everything not yet counted is counted now (and remembered for the next passes).
        for pod in new_succeeded:
            t.counted.add(pod["metadata"]["uid"])
        for pod in new_failed:
            t.counted.add(pod["metadata"]["uid"])

        active_pods = [p for p in pods if not _terminal(p) and not _deleting(p)]
        active = len(active_pods)
        ready = sum(1 for p in active_pods if _ready(p))
        suspend_changed = False
        resumed = False

        # What upstream lists in uncountedTerminatedPods before counting it: new failed pods
        # that count, and new succeeded pods of a NonIndexed Job (an Indexed one counts its
        # completed indexes at once).
        uncounted_succeeded = [] if indexed else [p["metadata"]["uid"] for p in new_succeeded]
        uncounted_failed = [
            p["metadata"]["uid"] for p in new_failed if matches[p["metadata"]["uid"]][1]
        ]
        if finished is not None:
            if finished.failure:
                # When the Job fails, every pod not terminated yet counts as failed.
                for pod in pods:
                    pod_uid = pod["metadata"]["uid"]
                    if _terminal(pod) or pod_uid in t.counted or not valid(pod):
                        continue
                    t.counted.add(pod_uid)
                    if match_pod_failure_policy(policy, pod)[1]:
                        failed += 1
                        uncounted_failed.append(pod_uid)
            # Upstream removes the tracking finalizers of every pod once the outcome is decided:
            # the pods deleted now never count, also after SuccessCriteriaMet (where they are
            # not counted as failed).
            deleted, deleted_ready = self._delete_pods(job, active_pods, counted=True)
            active -= deleted
            ready -= deleted_ready
        else:
            manage_called = False
            if not meta.get("deletionTimestamp"):
                manage_called = True
                active, ready, wake_manage = self._manage(
                    job,
                    t,
                    pods,
                    active_pods,
                    ready,
                    succeeded,
                    completed,
                    failed_indexes,
                    only_failed,
                    now,
                )
                if wake_manage is not None:
                    wake.append(wake_manage)
            if completions is None:
                complete = succeeded > 0 and active == 0
            else:
                complete = succeeded >= completions and active == 0
            if complete:
                finished = _Finished("SuccessCriteriaMet", "CompletionsReached", MSG_COMPLETIONS)
            elif manage_called:
                conditions = status.setdefault("conditions", [])
                if suspended:
                    suspend_changed = _ensure_condition(
                        conditions,
                        "Suspended",
                        "True",
                        "JobSuspended",
                        "Job suspended",
                        clock.timestamp(now),
                    )
                    # Since 1.35 (MutableSchedulingDirectivesForSuspendedJobs, on by default
                    # from 1.36) a suspended Job has no startTime.
                    status.pop("startTime", None)
                else:
                    suspend_changed = _ensure_condition(
                        conditions,
                        "Suspended",
                        "False",
                        "JobResumed",
                        "Job resumed",
                        clock.timestamp(now),
                    )
                    if suspend_changed:
                        resumed = True
                        status["startTime"] = clock.timestamp(now)
                if not conditions:
                    status.pop("conditions", None)

        for pod in pods:  # remember what is still to be counted
            pod_uid = pod["metadata"]["uid"]
            if pod_uid not in t.counted:
                t.seen[pod_uid] = pod

        # --- the new status ---
        terminating = sum(
            1
            for p in store.controlled_by(PODS, uid, namespace)
            if _deleting(p) and not _terminal(p)
        )
        _set_count(status, "active", active)
        status["ready"] = max(ready, 0)
        _set_count(status, "succeeded", succeeded)
        _set_count(status, "failed", failed)
        status["terminating"] = terminating
        status["uncountedTerminatedPods"] = {}
        if indexed:
            if completed:
                status["completedIndexes"] = format_indexes(completed)
            else:
                status.pop("completedIndexes", None)
            if failed_indexes is not None:
                status["failedIndexes"] = format_indexes(failed_indexes)
        enacted = False
        if finished is not None:
            conditions = status.setdefault("conditions", [])
            stamp = clock.timestamp(now)
            if not persisted:
                conditions.append(
                    _condition(finished.type, "True", finished.reason, finished.message, stamp)
                )
            if terminating == 0:
                _ensure_condition(
                    conditions,
                    finished.final_type,
                    "True",
                    finished.reason,
                    finished.message,
                    stamp,
                )
                if not finished.failure:
                    status["completionTime"] = stamp
                enacted = True

        if status != old_status:
            # As upstream, a first update has the new counters of active, ready and terminating
            # pods, the completed and failed indexes, a new FailureTarget / SuccessCriteriaMet
            # and the newly finished pods in uncountedTerminatedPods; a second one counts those
            # and adds Complete / Failed.
            interim = self._uncounted_status(
                status, old_status, indexed, uncounted_succeeded, uncounted_failed
            )
            if interim != old_status:
                job["status"] = interim
                job = store.update(JOBS, job)
        if status != old_status:
            job["status"] = status
            job = store.update(JOBS, job)
        events = self.state.events
        if suspend_changed:
            if suspended:
                events.record(job, "Normal", "Suspended", "Job suspended", component=COMPONENT)
            elif resumed:
                events.record(job, "Normal", "Resumed", "Job resumed", component=COMPONENT)
        if enacted and finished is not None:
            if finished.failure:
                events.record(
                    job, "Warning", finished.reason, finished.message, component=COMPONENT
                )
            else:
                if completions is not None and succeeded > completions:
                    events.record(
                        job,
                        "Warning",
                        "TooManySucceededPods",
                        "Too many succeeded pods running after completion count reached",
                        component=COMPONENT,
                    )
                events.record(job, "Normal", "Completed", "Job completed", component=COMPONENT)
            self._tracking.pop(uid, None)
        return min(wake) if wake else None

    @staticmethod
    def _uncounted_status(
        status: Obj,
        old_status: Obj,
        indexed: bool,
        uncounted_succeeded: list[str],
        uncounted_failed: list[str],
    ) -> Obj:
        """The first of upstream's two status updates (see :meth:`_sync`)."""
        interim = clone(status)
        restored = ("failed", "completionTime") if indexed else ("succeeded", "failed")
        for key in (*restored, "completionTime"):
            if key in old_status:
                interim[key] = old_status[key]
            else:
                interim.pop(key, None)
        interim["uncountedTerminatedPods"] = {
            key: found
            for key, found in (("succeeded", uncounted_succeeded), ("failed", uncounted_failed))
            if found
        }
        old_types = {c.get("type") for c in old_status.get("conditions") or []}
        conditions = [
            c
            for c in interim.get("conditions") or []
            if c.get("type") not in ("Complete", "Failed") or c.get("type") in old_types
        ]
        if conditions:
            interim["conditions"] = conditions
        else:
            interim.pop("conditions", None)
        return interim

    # --- managing pods -------------------------------------------------------------------------

    def _manage(
        self,
        job: Obj,
        t: _Tracking,
        pods: list[Obj],
        active_pods: list[Obj],
        ready: int,
        succeeded: int,
        completed: set[int],
        failed_indexes: set[int] | None,
        only_failed: bool,
        now: float,
    ) -> tuple[int, int, float | None]:
        """``manageJob``: delete or create pods; returns ``(active, ready, wake-up)``."""
        spec = job["spec"]
        active = len(active_pods)
        indexed = spec.get("completionMode") == "Indexed"
        completions: int | None = spec.get("completions")
        parallelism = int(spec.get("parallelism") or 0)

        if spec.get("suspend"):
            deleted, deleted_ready = self._delete_pods(job, active_pods, counted=True)
            return active - deleted, ready - deleted_ready, None

        if completions is None:
            want = active if succeeded > 0 else parallelism
        else:
            want = max(0, min(completions - succeeded, parallelism))

        remove = self._pods_for_removal(job, active_pods, max(0, active - want))
        if remove:
            remove = remove[:MAX_POD_CREATE_DELETE_PER_SYNC]
            deleted, deleted_ready = self._delete_pods(job, remove, counted=True)
            return active - deleted, ready - deleted_ready, None

        terminating_pods = [p for p in pods if _deleting(p) and not _terminal(p)]
        terminating = len(terminating_pods) if only_failed else 0
        diff = want - terminating - active
        if diff <= 0:
            return active, ready, None
        per_index = indexed and spec.get("backoffLimitPerIndex") is not None
        if not per_index:
            remaining = self._remaining_backoff(t.failures_after_success, t.last_failure, now)
            if remaining > 0:
                return active, ready, now + remaining
        diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)

        indexes: list[int | None] = [None] * diff
        if indexed:
            assert completions is not None
            busy = set(completed)
            busy.update(ix for p in active_pods if (ix := completion_index(p)) is not None)
            if only_failed:
                busy.update(ix for p in terminating_pods if (ix := completion_index(p)) is not None)
            if failed_indexes:
                busy.update(failed_indexes)
            pending = [ix for ix in range(completions) if ix not in busy][:diff]
            if per_index:
                ready_now: list[int] = []
                soonest: float | None = None
                for ix in pending:
                    last = t.index_last_failed.get(ix)
                    wait = 0.0
                    if last is not None:
                        wait = self._remaining_backoff(
                            self._absolute_failures(last[0]) + 1, last[1], now
                        )
                    if wait <= 0:
                        ready_now.append(ix)
                    elif soonest is None or now + wait < soonest:
                        soonest = now + wait
                if not ready_now:
                    return active, ready, soonest
                pending = ready_now
            indexes = list(pending)

        created = 0
        for ix in indexes:
            if self._create_pod(job, t, ix):
                created += 1
        return active + created, ready, None

    def _create_pod(self, job: Obj, t: _Tracking, index: int | None) -> bool:
        store = self.state.store
        meta, spec = job["metadata"], job["spec"]
        template = clone(spec.get("template") or {})
        template_meta = template.get("metadata") or {}
        pod_spec = template.get("spec") or {}
        labels = dict(template_meta.get("labels") or {})
        annotations = dict(template_meta.get("annotations") or {})
        prefix = f"{meta['name']}-"
        if index is not None:
            annotations[COMPLETION_INDEX] = str(index)
            labels[COMPLETION_INDEX] = str(index)
            pod_spec["hostname"] = f"{meta['name']}-{index}"
            suffix = f"-{index}-"
            prefix = meta["name"] + suffix
            if len(prefix) > MAX_GENERATED_NAME_LENGTH:
                prefix = prefix[: MAX_GENERATED_NAME_LENGTH - len(suffix)] + suffix
            for group in ("initContainers", "containers"):
                for container in pod_spec.get(group) or []:
                    env = container.setdefault("env", [])
                    if not any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
                        env.append(
                            {
                                "name": COMPLETION_INDEX_ENV,
                                "valueFrom": {
                                    "fieldRef": {
                                        "apiVersion": "v1",
                                        "fieldPath": f"metadata.labels['{COMPLETION_INDEX}']",
                                    }
                                },
                            }
                        )
            if spec.get("backoffLimitPerIndex") is not None:
                last = t.index_last_failed.get(index)
                count, ignored = self._replacement_failure_counts(
                    spec.get("podFailurePolicy"), last[0] if last else None
                )
                annotations[INDEX_FAILURE_COUNT] = str(count)
                if ignored > 0:
                    annotations[INDEX_IGNORED_FAILURE_COUNT] = str(ignored)
        pod_meta: Obj = {
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": JOBS.api_version,
                    "kind": JOBS.kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if annotations:
            pod_meta["annotations"] = annotations
        if template_meta.get("finalizers"):
            pod_meta["finalizers"] = list(template_meta["finalizers"])
        pod_meta["generateName"] = prefix
        for _ in range(10):
            pod_meta["name"] = generate_name(prefix)
            if store.peek(PODS, meta["namespace"], pod_meta["name"]) is None:
                break
        pod: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}
        try:
            created = store.create(PODS, admit_create(PODS, pod))
        except ApiError as exc:
            self._write_failed = True
            self.state.events.record(
                job,
                "Warning",
                "FailedCreate",
                f"Error creating: {exc.message}",
                component=COMPONENT,
            )
            return False
        t.seen[created["metadata"]["uid"]] = created
        self.state.events.record(
            job,
            "Normal",
            "SuccessfulCreate",
            f"Created pod: {created['metadata']['name']}",
            component=COMPONENT,
        )
        return True

    def _delete_pods(self, job: Obj, pods: list[Obj], counted: bool) -> tuple[int, int]:
        """Delete pods; ``counted`` pods never count (upstream drops their finalizer first)."""
        store = self.state.store
        t = self._tracking.get(job["metadata"]["uid"])
        deleted = deleted_ready = 0
        for pod in pods:
            meta = pod["metadata"]
            if counted and t is not None:
                t.counted.add(meta["uid"])
                t.seen.pop(meta["uid"], None)
            try:
                store.delete(PODS, meta["namespace"], meta["name"])
            except ApiError as exc:
                if exc.code != 404:
                    self._write_failed = True
                    self.state.events.record(
                        job,
                        "Warning",
                        "FailedDelete",
                        f"Error deleting: {exc.message}",
                        component=COMPONENT,
                    )
                    continue
            else:
                self.state.events.record(
                    job,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted pod: {meta['name']}",
                    component=COMPONENT,
                )
            deleted += 1
            if _ready(pod):
                deleted_ready += 1
        return deleted, deleted_ready

    @staticmethod
    def _pods_for_removal(job: Obj, active_pods: list[Obj], at_least: int) -> list[Obj]:
        """``activePodsForRemoval``: duplicated or out-of-range indexes first, then the pods in
        the earliest stages (unscheduled < scheduled, pending < running, not ready < ready)."""
        spec = job["spec"]
        remove: list[Obj] = []
        left = list(active_pods)
        if spec.get("completionMode") == "Indexed":
            completions = int(spec.get("completions") or 0)
            by_index: dict[int, list[Obj]] = {}
            left = []
            for pod in active_pods:
                ix = completion_index(pod)
                if ix is None or ix >= completions:
                    remove.append(pod)
                else:
                    by_index.setdefault(ix, []).append(pod)
            for group in by_index.values():
                group.sort(key=_removal_order)
                remove.extend(group[:-1])
                left.append(group[-1])
        if len(remove) < at_least:
            left.sort(key=_removal_order)
            remove.extend(left[: at_least - len(remove)])
        return remove

    # --- failures and back-off ---------------------------------------------------------------

    def _as_vanished(self, last: Obj, now: float) -> Obj:
        pod = clone(last)
        meta = pod["metadata"]
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = self.state.clock.timestamp(now)
            meta["deletionGracePeriodSeconds"] = 0
        status = pod.setdefault("status", {})
        if not _terminal(pod):
            status["phase"] = "Failed"
            conditions = status.setdefault("conditions", [])
            if not any(c.get("type") == "DisruptionTarget" for c in conditions):
                conditions.append(
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "DeletionByPodGC",
                        "message": "PodGC: node no longer exists",
                        "lastTransitionTime": self.state.clock.timestamp(now),
                    }
                )
        return pod

    @staticmethod
    def _past_backoff_on_failure(spec: Obj, pods: list[Obj], backoff_limit: int) -> bool:
        """Container restarts of running pods count against backoffLimit (OnFailure)."""
        template_spec = (spec.get("template") or {}).get("spec") or {}
        if template_spec.get("restartPolicy") != "OnFailure":
            return False
        restarts = 0
        for pod in pods:
            if _phase(pod) in ("Running", "Pending"):
                status = pod.get("status") or {}
                for group in ("initContainerStatuses", "containerStatuses"):
                    restarts += sum(
                        int(c.get("restartCount") or 0) for c in status.get(group) or []
                    )
        if backoff_limit == 0:
            return restarts > 0
        return restarts >= backoff_limit

    def _finish_time(self, pod: Obj, default: float) -> float:
        """``getFinishedTime``: containers' finishedAt, Ready=False, deletion, else ``default``."""
        clock = self.state.clock
        status = pod.get("status") or {}
        latest: float | None = None
        statuses = status.get("containerStatuses") or []
        for container in statuses:
            finished_at = ((container.get("state") or {}).get("terminated") or {}).get("finishedAt")
            if not finished_at:
                latest = None
                break
            try:
                at = clock.parse(finished_at)
            except ValueError:
                latest = None
                break
            latest = at if latest is None else max(latest, at)
        if latest is not None:
            return latest
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "Ready"
                and condition.get("status") == "False"
                and condition.get("lastTransitionTime")
            ):
                try:
                    return clock.parse(condition["lastTransitionTime"])
                except ValueError:
                    break
        deletion = pod["metadata"].get("deletionTimestamp")
        if deletion:
            try:
                return clock.parse(deletion) - float(
                    pod["metadata"].get("deletionGracePeriodSeconds") or 0
                )
            except ValueError:
                pass
        return default

    def _update_backoff(
        self, t: _Tracking, succeeded: list[Obj], failed: list[Obj], now: float
    ) -> None:
        """``newBackoffRecord``: consecutive failures since the last success."""
        failed_times = sorted(self._finish_time(p, now) for p in failed)
        if not succeeded:
            if failed_times:
                t.failures_after_success += len(failed_times)
                t.last_failure = failed_times[-1]
            return
        last_success = max(self._finish_time(p, now) for p in succeeded)
        t.failures_after_success = 0
        t.last_failure = None
        for at in reversed(failed_times):
            if at <= last_success:
                break
            if t.last_failure is None:
                t.last_failure = at
            t.failures_after_success += 1

    def _remaining_backoff(self, failures: int, last_failure: float | None, now: float) -> float:
        if failures <= 0 or last_failure is None:
            return 0.0
        delay = DEFAULT_POD_FAILURE_BACKOFF
        for _ in range(1, failures):
            delay *= 2
            if delay >= MAX_POD_FAILURE_BACKOFF:
                delay = MAX_POD_FAILURE_BACKOFF
                break
        delay = self.state.clock.scaled(delay)
        elapsed = now - last_failure
        return 0.0 if delay < elapsed else delay - elapsed

    @staticmethod
    def _absolute_failures(pod: Obj) -> int:
        return _annotation_count(pod, INDEX_FAILURE_COUNT) + _annotation_count(
            pod, INDEX_IGNORED_FAILURE_COUNT
        )

    @staticmethod
    def _replacement_failure_counts(policy: Obj | None, replaced: Obj | None) -> tuple[int, int]:
        if replaced is None:
            return 0, 0
        count = _annotation_count(replaced, INDEX_FAILURE_COUNT)
        ignored = _annotation_count(replaced, INDEX_IGNORED_FAILURE_COUNT)
        if match_pod_failure_policy(policy, replaced)[1]:
            count += 1
        else:
            ignored += 1
        return count, ignored

    @staticmethod
    def _index_failed(spec: Obj, pod: Obj, match: tuple[str | None, bool, str | None]) -> bool:
        """``isIndexFailed``: a FailIndex rule, or the index's failures reached the limit."""
        _, counts, action = match
        if action == "FailIndex":
            return True
        return counts and _annotation_count(pod, INDEX_FAILURE_COUNT) >= int(
            spec.get("backoffLimitPerIndex") or 0
        )

    @staticmethod
    def _match_success_policy(
        policy: Obj | None, completions: int, succeeded: set[int]
    ) -> str | None:
        if not policy or not succeeded:
            return None
        for index, rule in enumerate(policy.get("rules") or []):
            count = rule.get("succeededCount")
            if rule.get("succeededIndexes") is not None:
                required = parse_indexes(rule["succeededIndexes"], completions)
                if not required:
                    continue
                contains = len(required & succeeded)
                if contains == len(required) or (count is not None and contains >= count):
                    return f"Matched rules at index {index}"
            elif count is not None and len(succeeded) >= count:
                return f"Matched rules at index {index}"
        return None


# --- status helpers -----------------------------------------------------------------------------


def _condition(ctype: str, status: str, reason: str, message: str, stamp: str) -> Obj:
    return {
        "type": ctype,
        "status": status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def _ensure_condition(
    conditions: list[Obj], ctype: str, status: str, reason: str, message: str, stamp: str
) -> bool:
    """``ensureJobConditionStatus``: update or append; a False condition is never added."""
    for i, condition in enumerate(conditions):
        if condition.get("type") == ctype:
            if (condition.get("status"), condition.get("reason"), condition.get("message")) != (
                status,
                reason,
                message,
            ):
                conditions[i] = _condition(ctype, status, reason, message, stamp)
                return True
            return False
    if status != "False":
        conditions.append(_condition(ctype, status, reason, message, stamp))
        return True
    return False


def _set_count(status: Obj, key: str, value: int) -> None:
    if value:
        status[key] = value
    else:
        status.pop(key, None)


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _removal_order(pod: Obj) -> tuple[int, int, int, str]:
    """``controller.ActivePods`` order: the pod earliest in its life comes first."""
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        _PHASE_RANK.get(_phase(pod), 2),
        1 if _ready(pod) else 0,
        # newer pods first: invert the timestamp ordering
        "".join(chr(0x10FFFF - ord(c)) for c in pod["metadata"].get("creationTimestamp", "")),
    )
