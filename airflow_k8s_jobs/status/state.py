"""The typed result of interpreting a Job: :class:`JobState` and its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Phase(str, Enum):
    """Where a Job is, as the task sees it.

    ``QUEUED``: the Job is suspended (``spec.suspend``), typically a Kueue Workload that has no
    quota yet; no pods exist. ``PENDING``: pods are being created, scheduled onto a node that has
    room, or are pulling images. ``WAITING_FOR_CAPACITY``: no pod runs and at least one waits for a
    node (unschedulable, scale-up) or is held by scheduling gates. ``RUNNING``: at least one pod
    runs. ``SUCCEEDED`` / ``FAILED``: the outcome is decided (pods may still be terminating, see
    :attr:`JobState.pods_gone`).
    """

    QUEUED = "QUEUED"
    PENDING = "PENDING"
    WAITING_FOR_CAPACITY = "WAITING_FOR_CAPACITY"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class PodProblem:
    """Something that keeps a pod (or the Job's admission) from making progress.

    ``permanent`` problems do not fix themselves: the task should fail now. ``since`` is when the
    problem was first seen, an RFC 3339 timestamp from the cluster. Problems about the Job's
    admission rather than a pod (a missing Kueue LocalQueue) have ``pod == ""``.
    """

    pod: str
    container: str | None
    reason: str
    message: str
    permanent: bool
    since: str | None


@dataclass(frozen=True)
class PodFailure:
    """Why one pod failed (phase ``Failed``) or one container crashed and was restarted.

    ``index`` is the completion index of Indexed Jobs. ``disruption`` is the reason of a
    ``DisruptionTarget`` condition (``PreemptionByScheduler``, ``TerminationByKubelet``,
    ``DeletionByPodGC`` ...): the pod was preempted or evicted rather than failing by itself.
    """

    pod: str
    index: int | None
    container: str | None
    exit_code: int | None
    reason: str
    message: str
    disruption: str | None = None
    finished_at: str | None = None
    restarts: int = 0


@dataclass(frozen=True)
class JobState:
    """Everything the waiting code needs to decide and to tell the user, from one snapshot.

    - ``finished``: the outcome is decided (``Complete``/``Failed``, or already
      ``SuccessCriteriaMet``/``FailureTarget``); ``pods_gone``: ``Complete``/``Failed`` is
      there, so every pod has terminated (logs are final).
    - ``reason`` / ``message``: the condition's reason and a full sentence for a finished Job;
      the problem's reason and message when a permanent problem exists (fail now); otherwise
      what the Job is doing (``Running``, ``TriggeredScaleUp``, ``Pending`` ...).
    - ``succeeded``, ``failed``, ``active``, ``ready``, ``terminating`` come from the Job's
      status; ``running`` and ``waiting_for_capacity`` from its pods.
    - ``capacity_detail``: why pods (or the queued Job) wait: "scale-up triggered 2m ago", "no
      node pool can fit the pod: 1 max node group size reached", the scheduler's message, or
      the Kueue verdict.
    - ``hopeless``: the last word of the cluster autoscaler (or Kueue) is that it cannot help.
      It can change its mind (back-off after failed scale-ups, quota freed elsewhere), so this
      only tells the capacity deadline what to say; it is no reason to fail earlier.
    - ``problems``: what keeps pods from starting; ``permanent`` ones mean fail now.
    - ``failures`` / ``failed_pods``: pods in phase ``Failed`` and containers restarted after
      a failure, oldest first (newest last); preempted pods carry ``disruption``.
    - ``status_line``: one line for the task log that changes only when something meaningful
      changes (the kubelet's ErrImagePull / ImagePullBackOff flips and scheduler retries do
      not change it).
    """

    phase: Phase
    finished: bool
    pods_gone: bool
    reason: str
    message: str
    completions: int | None
    succeeded: int
    failed: int
    active: int
    ready: int
    terminating: int
    waiting_for_capacity: int
    capacity_detail: str
    hopeless: bool
    problems: tuple[PodProblem, ...]
    failed_pods: tuple[str, ...]
    status_line: str
    running: int = 0
    failures: tuple[PodFailure, ...] = field(default=())
    name: str = ""
    namespace: str = ""

    @property
    def permanent_problem(self) -> PodProblem | None:
        """The first problem that does not fix itself (fail the task now), if any."""
        for problem in self.problems:
            if problem.permanent:
                return problem
        return None

    @property
    def waiting_on_capacity(self) -> bool:
        """True while nothing can progress until nodes or quota arrive.

        That is phase ``QUEUED`` or ``WAITING_FOR_CAPACITY``: no pod runs or starts. A fan-out
        with some pods running and others waiting for a node is making progress, so this is
        False for it. The capacity deadline should run while this is True.
        """
        return self.phase in (Phase.QUEUED, Phase.WAITING_FOR_CAPACITY)
