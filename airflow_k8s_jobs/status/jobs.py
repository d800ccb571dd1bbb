"""Interpret a ``batch/v1`` Job, its pods and their events (and its Kueue Workload) into one
:class:`~airflow_k8s_jobs.status.state.JobState`.

Job conditions (``k8s.io/api/batch/v1``; Kubernetes >= 1.31): the controller first adds
``FailureTarget`` (or ``SuccessCriteriaMet``) and only once every pod has terminated adds
``Failed`` (``Complete``) with the same reason and message. The first means the outcome is
decided (:attr:`JobState.finished`), the second that the pods are gone
(:attr:`JobState.pods_gone`). Reasons: ``CompletionsReached``, ``SuccessPolicy``,
``BackoffLimitExceeded``, ``DeadlineExceeded``, ``PodFailurePolicy``, ``FailedIndexes``,
``MaxFailedIndexesExceeded``. Older clusters write ``Complete`` without a reason.

All ages are measured on the cluster's clock (:func:`server_now`), never the local one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ._objects import (
    Obj,
    as_int,
    condition,
    conditions,
    is_true,
    job_name_of_pod,
    meta,
    name_of,
    namespace_of,
    newest_time,
    spec,
    status,
)
from .kueue import interpret_queue
from .pods import PROBLEM_LABELS, PodsView, view_pods
from .state import JobState, Phase, PodFailure, PodProblem

DEFAULT_BACKOFF_LIMIT = 6

_REASON_HINTS = {
    "BackoffLimitExceeded": "Its pods failed more times than backoffLimit ({backoff}) allows.",
    "DeadlineExceeded": (
        "It was active longer than activeDeadlineSeconds ({deadline}s); its pods were stopped."
    ),
    "FailedIndexes": "Failed indexes: {failed_indexes}.",
    "MaxFailedIndexesExceeded": (
        "More indexes failed than maxFailedIndexes ({max_failed}) allows; failed indexes: "
        "{failed_indexes}."
    ),
}


def job_outcome(job: Obj) -> tuple[str, str, str] | None:
    """``("Complete" | "Failed", reason, message)`` once the Job's outcome is decided, else None.

    ``Failed`` / ``Complete`` count, and so do ``FailureTarget`` / ``SuccessCriteriaMet`` (the
    outcome is decided, pods may still be terminating). A failure wins over a success should a
    malformed object carry both.
    """
    found: dict[str, Mapping[str, object]] = {}
    for cond in conditions(job):
        if is_true(cond):
            found[str(cond.get("type"))] = cond
    for kind, outcome, default in (
        ("Failed", "Failed", "Failed"),
        ("Complete", "Complete", "CompletionsReached"),
        ("FailureTarget", "Failed", "Failed"),
        ("SuccessCriteriaMet", "Complete", "CompletionsReached"),
    ):
        if kind in found:
            cond = found[kind]
            return (
                outcome,
                str(cond.get("reason") or default),
                " ".join(str(cond.get("message") or "").split()),
            )
    return None


def server_now(job: Obj | None, pods: Sequence[Obj], events: Sequence[Obj]) -> datetime | None:
    """The newest timestamp the cluster wrote in this snapshot: our estimate of its clock.

    Ages in status lines and the image-pull grace are measured against it, never against the
    local clock, which may differ from the cluster's.
    """
    return newest_time([job, *pods], events)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    return text if text[-1] in ".!?" else text + "."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _job_ref(name: str, namespace: str) -> str:
    if name and namespace:
        return f"Job {namespace}/{name}"
    return f"Job {name}" if name else "The Job"


def _describe_failure(failure: PodFailure) -> str:
    where = f"pod {failure.pod}"
    if failure.index is not None:
        where += f" (index {failure.index})"
    if failure.container:
        where += f" container {failure.container}"
    if failure.exit_code is not None:
        text = f"{where} exited with code {failure.exit_code} ({failure.reason})"
    else:
        text = f"{where} failed ({failure.reason})"
    if failure.disruption:
        text += f" after a disruption ({failure.disruption})"
    if failure.message:
        text += f": {' '.join(failure.message.split())[:300]}"
    return text


def _failure_message(
    job: Obj, ref: str, reason: str, cond_message: str, failures: Sequence[PodFailure]
) -> str:
    st, sp = status(job), spec(job)
    parts = [f"{ref} failed ({reason})" + (f": {cond_message}" if cond_message else "")]
    hint = _REASON_HINTS.get(reason)
    if hint:
        backoff = sp.get("backoffLimit")
        parts.append(
            hint.format(
                backoff=DEFAULT_BACKOFF_LIMIT if backoff is None else backoff,
                deadline=sp.get("activeDeadlineSeconds", "?"),
                failed_indexes=st.get("failedIndexes") or "?",
                max_failed=sp.get("maxFailedIndexes", "?"),
            )
        )
    own = [f for f in failures if not f.disruption] or list(failures)
    if own:
        parts.append("Last failure: " + _describe_failure(own[-1]))
    if any(f.reason == "OOMKilled" for f in failures):
        parts.append("A container was killed for using more memory than its limit (OOMKilled).")
    return " ".join(_sentence(p) for p in parts)


def _deleted_state(
    pods: Sequence[Obj],
    view: PodsView,
    name: str,
    namespace: str,
    being_deleted: bool,
    job: Obj | None = None,
) -> JobState:
    ref = _job_ref(name, namespace)
    if being_deleted:
        first = f"{ref} is being deleted while the task waits for it."
    else:
        first = f"{ref} was deleted while the task was waiting for it."
    message = (
        f"{first} The cluster does not record who deleted it (a user, a cleanup job, or the "
        "garbage collector after ttlSecondsAfterFinished or the deletion of an owner), and its "
        "outcome is unknown. Find out what deletes Jobs in this namespace, then clear the task "
        "to run it again."
    )
    alive = any(status(p).get("phase") not in ("Succeeded", "Failed") for p in pods)
    st = status(job)
    succeeded = as_int(st.get("succeeded")) if job else view.succeeded
    failed = as_int(st.get("failed")) if job else view.failed
    return JobState(
        phase=Phase.FAILED,
        finished=True,
        pods_gone=not alive,
        reason="JobDeleted",
        message=message,
        completions=_completions(job),
        succeeded=succeeded,
        failed=failed,
        active=as_int(st.get("active")) if job else view.running + view.starting,
        ready=as_int(st.get("ready")),
        terminating=as_int(st.get("terminating")) or view.terminating,
        waiting_for_capacity=0,
        capacity_detail="",
        hopeless=False,
        problems=(),
        failed_pods=tuple(view.failed_pods),
        status_line="deleted" + (" (being deleted)" if being_deleted else ""),
        running=view.running,
        failures=tuple(view.failures),
        name=name,
        namespace=namespace,
    )


def _owned_by_another_job(pod: Obj, job: Obj | None) -> bool:
    """True for a pod whose controller is a Job other than ``job`` (an earlier Job of the same
    name, say): its pods must not be mistaken for this Job's."""
    uid = meta(job).get("uid")
    if not uid:
        return False
    for ref in meta(pod).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "Job" and ref.get("uid"):
            return bool(ref.get("uid") != uid)
    return False


def _completions(job: Obj | None) -> int | None:
    value = spec(job).get("completions")
    return None if value is None else as_int(value)


def _problem_parts(problems: Sequence[PodProblem]) -> list[str]:
    counts: dict[str, set[str]] = {}
    for problem in problems:
        if not problem.pod:
            continue  # admission problems are in the queued detail
        label = PROBLEM_LABELS.get(problem.reason, problem.reason)
        counts.setdefault(label, set()).add(problem.pod)
    return [f"{label} on {_plural(len(pods), 'pod')}" for label, pods in counts.items()]


def _idle_part(pods: Sequence[Obj], succeeded: int, failed: int) -> str:
    """What to say when no pod runs, starts or waits: between waves, the Job controller counts
    finished pods a moment after they finished (it removes their tracking finalizers first)."""
    finished = sum(1 for p in pods if status(p).get("phase") in ("Succeeded", "Failed"))
    uncounted = finished - succeeded - failed
    if uncounted > 0:
        return f"{_plural(uncounted, 'finished pod')} not counted yet"
    return "no pods running" if succeeded or pods else "no pods yet"


def interpret_job(
    job: Obj | None,
    pods: Sequence[Obj],
    events: Sequence[Obj],
    workload: Obj | None = None,
    *,
    image_pull_grace_seconds: float = 300,
    now: datetime | None = None,
    name: str | None = None,
    namespace: str | None = None,
) -> JobState:
    """One typed state from a snapshot of the Job, its pods, their events and its Workload.

    ``job`` is None when the Job no longer exists (FAILED, reason ``JobDeleted``). ``pods`` are
    the Job's pods (any the caller still has, including finished ones); ``events`` may be all
    events of the namespace: only those about the Job and its pods are used. ``now`` defaults
    to :func:`server_now` of the snapshot (workload included); ``name`` / ``namespace`` name the
    Job in messages when ``job`` is None.
    """
    pods = [p for p in pods if p and not _owned_by_another_job(p, job)]
    clock = now or newest_time([job, workload, *pods], events)
    view = view_pods(pods, events, clock, image_pull_grace_seconds)
    if job is None:
        guessed = next((n for n in (job_name_of_pod(p) for p in pods) if n), "")
        ns = namespace or next((namespace_of(p) for p in pods if namespace_of(p)), "")
        return _deleted_state(pods, view, name or guessed, ns, False)

    job_name, job_ns = name_of(job), namespace_of(job)
    ref = _job_ref(job_name, job_ns)
    st = status(job)
    completions = _completions(job)
    succeeded, failed = as_int(st.get("succeeded")), as_int(st.get("failed"))
    active, ready = as_int(st.get("active")), as_int(st.get("ready"))
    terminating = as_int(st.get("terminating")) if "terminating" in st else view.terminating
    outcome = job_outcome(job)
    pods_gone = is_true(condition(job, "Complete")) or is_true(condition(job, "Failed"))

    if outcome is None and meta(job).get("deletionTimestamp"):
        return _deleted_state(pods, view, job_name, job_ns, True, job)

    running, starting = view.running, view.starting
    if not pods and active:
        running, starting = min(ready, active), max(active - min(ready, active), 0)
    waiting = len(view.waiting)
    problems = list(view.problems)
    capacity_detail, hopeless = view.capacity_detail, view.hopeless
    suspended = bool(spec(job).get("suspend"))
    queue = None
    if outcome is None and suspended:
        queue = interpret_queue(job, workload, events)
        capacity_detail, hopeless = queue.detail, queue.hopeless
        if queue.problem is not None:
            problems.insert(0, queue.problem)

    # "3/10 succeeded" for parallel Jobs; a one-pod Job needs no counter until it is done.
    progress = ""
    if completions is not None and (completions > 1 or succeeded):
        progress = f"{succeeded}/{completions} succeeded"
    elif completions is None and succeeded:
        progress = f"{succeeded} succeeded"

    permanent = next((p for p in problems if p.permanent), None)
    parts: list[str] = []
    if outcome is not None:
        kind, reason, cond_message = outcome
        finished = True
        if kind == "Complete":
            phase = Phase.SUCCEEDED
            message = _sentence(
                f"{ref} succeeded ({reason})" + (f": {progress}" if progress else "")
            )
            parts.append("succeeded")
        else:
            phase = Phase.FAILED
            message = _failure_message(job, ref, reason, cond_message, view.failures)
            parts.append(f"failed: {reason}")
        if progress and phase is Phase.FAILED:
            parts.append(progress)
        elif progress and completions is not None:
            parts[0] = f"succeeded: {succeeded}/{completions} completions"
        elif progress:
            parts[0] = f"succeeded: {succeeded} pods"
        if phase is Phase.FAILED and failed:
            parts.append(f"{failed} failed")
        if not pods_gone and terminating:
            parts.append(f"{terminating} terminating")
        waiting = 0
        capacity_detail, hopeless = "", False
    else:
        finished = False
        if queue is not None:
            phase = Phase.QUEUED
            reason = queue.reason
            message = _sentence(f"{ref} is queued: {queue.detail}")
            parts.append(f"queued: {queue.detail}")
            if succeeded and progress:
                parts.append(progress)
            waiting = 0
        else:
            if running:
                phase, reason = Phase.RUNNING, "Running"
            elif starting:
                phase, reason = Phase.PENDING, view.starting_reason or "Pending"
            elif waiting:
                phase, reason = Phase.WAITING_FOR_CAPACITY, view.capacity_reason
            else:
                phase, reason = Phase.PENDING, "Pending"
            if progress:
                parts.append(progress)
            if running:
                parts.append(f"{running} running")
            if starting:
                parts.append(f"{starting} starting")
            if failed:
                parts.append(f"{failed} failed")
            parts.extend(_problem_parts(problems))
            if terminating:
                parts.append(f"{terminating} terminating")
            if waiting:
                parts.append(f"{waiting} waiting for capacity: {capacity_detail}")
            if not (running or starting or waiting):
                parts.append(_idle_part(pods, succeeded, failed))
            message = _sentence(f"{ref}: " + ", ".join(p for p in parts if p))
            transient = [p for p in problems if not p.permanent]
            if transient:
                message += " " + _sentence(transient[0].message)
        if permanent is not None:
            reason, message = permanent.reason, permanent.message

    return JobState(
        phase=phase,
        finished=finished,
        pods_gone=pods_gone,
        reason=reason,
        message=message,
        completions=completions,
        succeeded=succeeded,
        failed=failed,
        active=active,
        ready=ready,
        terminating=terminating,
        waiting_for_capacity=waiting,
        capacity_detail=capacity_detail,
        hopeless=hopeless,
        problems=tuple(problems),
        failed_pods=tuple(view.failed_pods),
        status_line=", ".join(p for p in parts if p),
        running=running,
        failures=tuple(view.failures),
        name=job_name,
        namespace=job_ns,
    )
