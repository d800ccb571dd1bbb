"""The CronJob controller: batch/v1 CronJobs create Jobs on their schedule.

As the upstream controller does: at each scheduled time after the last one (or the CronJob's
creation) it creates the Job ``<name>-<scheduled minutes since the epoch>`` from
``spec.jobTemplate``, controlled by the CronJob and annotated with the scheduled time; only the
most recent missed time is run, and not when ``startingDeadlineSeconds`` has passed since it;
``suspend`` stops new Jobs; ``concurrencyPolicy`` ``Allow`` runs Jobs side by side, ``Forbid``
skips a time while one is active and ``Replace`` deletes the active ones first;
``status.active``, ``lastScheduleTime`` and ``lastSuccessfulTime`` follow the Jobs, and finished
Jobs beyond ``successfulJobsHistoryLimit`` / ``failedJobsHistoryLimit`` are deleted, oldest
first. Schedules are standard five-field cron expressions (and ``@hourly`` and the like) in UTC,
or in ``spec.timeZone``.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from croniter import croniter

from .. import admission
from ..admission import zone as _zone
from ..resources import CRONJOBS, JOBS
from ..state import ClusterState
from .gc import job_finished_at

Obj = dict[str, Any]
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def _rfc3339(moment: datetime) -> str:
    """As Go's ``time.RFC3339`` prints it: ``Z`` for a zero offset."""
    text = moment.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _succeeded(job: Obj) -> bool:
    return any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


class CronJobController:
    """Creates Jobs for CronJobs when their schedule comes (see the module)."""

    name = "cronjob-controller"
    watches = (CRONJOBS, JOBS)

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def reconcile(self) -> float | None:
        wake: float | None = None
        for cronjob in list(self.state.store.objects(CRONJOBS)):
            if cronjob["metadata"].get("deletionTimestamp"):
                continue
            due = self._sync(cronjob)
            if due is not None and (wake is None or due < wake):
                wake = due
        return wake

    def _times(self, spec: Obj, now: float) -> tuple[float, float] | None:
        """The latest scheduled instant at or before ``now`` and the next one after it."""
        clock = self.state.clock
        try:
            local = clock.datetime_at(now).astimezone(_zone(spec.get("timeZone")))
            expression = str(spec.get("schedule"))
            before = croniter(expression, local + timedelta(microseconds=1)).get_prev(datetime)
            after = croniter(expression, local).get_next(datetime)
        except (ValueError, KeyError, ZoneInfoNotFoundError):
            return None
        epoch = clock.datetime_at(0)
        return (before - epoch).total_seconds(), (after - epoch).total_seconds()

    def _sync(self, cronjob: Obj) -> float | None:
        store, clock = self.state.store, self.state.clock
        meta, spec = cronjob["metadata"], cronjob.get("spec") or {}
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        now = clock.now()
        times = self._times(spec, now)
        if times is None:
            return None
        scheduled_at, next_at = times
        status = copy.deepcopy(cronjob.get("status") or {})
        last = status.get("lastScheduleTime") or meta.get("creationTimestamp")
        since = clock.parse(last) if last else now
        deadline = spec.get("startingDeadlineSeconds")
        if (
            not spec.get("suspend")
            and scheduled_at > since
            and (deadline is None or now - scheduled_at <= deadline)
            and self._run(cronjob, scheduled_at)
        ):
            status["lastScheduleTime"] = clock.timestamp(scheduled_at)
        jobs = store.controlled_by(JOBS, uid, namespace)
        self._clean_history(cronjob, jobs)
        jobs = store.controlled_by(JOBS, uid, namespace)
        active = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": j["metadata"]["name"],
                "namespace": namespace,
                "uid": j["metadata"]["uid"],
                "resourceVersion": j["metadata"]["resourceVersion"],
            }
            for j in jobs
            if job_finished_at(j) is None and not j["metadata"].get("deletionTimestamp")
        ]
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        succeeded = [str(job_finished_at(j)) for j in jobs if _succeeded(j)]
        if succeeded:
            status["lastSuccessfulTime"] = max(succeeded)
        current = store.peek(CRONJOBS, namespace, name)
        if current is not None and (current.get("status") or {}) != status:
            updated = copy.deepcopy(current)
            updated["status"] = status
            store.update(CRONJOBS, updated)
        return None if spec.get("suspend") else next_at

    def _run(self, cronjob: Obj, scheduled_at: float) -> bool:
        """Start the Job for ``scheduled_at``; False when the policy skips it."""
        store, clock, events = self.state.store, self.state.clock, self.state.events
        meta, spec = cronjob["metadata"], cronjob["spec"]
        namespace = meta["namespace"]
        active = [
            j
            for j in store.controlled_by(JOBS, meta["uid"], namespace)
            if job_finished_at(j) is None and not j["metadata"].get("deletionTimestamp")
        ]
        policy = spec.get("concurrencyPolicy", "Allow")
        if active and policy == "Forbid":
            events.record(
                cronjob,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy "
                "is Forbid",
                "cronjob-controller",
            )
            return False
        if active and policy == "Replace":
            for running in active:
                replaced = running["metadata"]["name"]
                store.delete(JOBS, namespace, replaced, propagation="Background")
                events.record(
                    cronjob,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted job {replaced}",
                    "cronjob-controller",
                )
        name = f"{meta['name']}-{int(clock.datetime_at(scheduled_at).timestamp() // 60)}"
        if store.peek(JOBS, namespace, name) is not None:
            return True  # already started for this time
        template = copy.deepcopy(spec.get("jobTemplate") or {})
        job_meta = template.get("metadata") or {}
        job: Obj = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(job_meta.get("labels") or {}),
                "annotations": {
                    **(job_meta.get("annotations") or {}),
                    SCHEDULED_ANNOTATION: _rfc3339(
                        clock.datetime_at(scheduled_at).astimezone(_zone(spec.get("timeZone")))
                    ),
                },
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template.get("spec") or {},
        }
        self.state.mutate_on_create(JOBS, job)
        try:
            admission.admit_create(JOBS, job)
        except Exception as exc:  # an invalid template: the real controller reports it
            events.record(cronjob, "Warning", "FailedCreate", str(exc), "cronjob-controller")
            return False
        store.create(JOBS, job)
        events.record(
            cronjob, "Normal", "SuccessfulCreate", f"Created job {name}", "cronjob-controller"
        )
        return True

    def _clean_history(self, cronjob: Obj, jobs: list[Obj]) -> None:
        spec = cronjob.get("spec") or {}
        finished = [j for j in jobs if job_finished_at(j) is not None]
        for succeeded, limit_key in (
            (True, "successfulJobsHistoryLimit"),
            (False, "failedJobsHistoryLimit"),
        ):
            limit = spec.get(limit_key)
            if limit is None:
                continue
            group = [j for j in finished if _succeeded(j) == succeeded]
            group.sort(key=lambda j: str((j.get("status") or {}).get("startTime") or ""))
            for job in group[: max(0, len(group) - int(limit))]:
                if job["metadata"].get("deletionTimestamp"):
                    continue
                self.state.store.delete(
                    JOBS,
                    job["metadata"]["namespace"],
                    job["metadata"]["name"],
                    propagation="Background",
                )
                self.state.events.record(
                    cronjob,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted job {job['metadata']['name']}",
                    "cronjob-controller",
                )
