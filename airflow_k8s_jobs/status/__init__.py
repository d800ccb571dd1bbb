"""Pure interpretation of Kubernetes Job status: no I/O, no Airflow.

:func:`interpret_job` turns one snapshot — the Job, its pods, their events and (for Kueue) its
Workload, as plain dicts the API returns — into a :class:`JobState`: the phase, whether the
outcome is decided, why it waits (capacity, quota, image pulls), what fails for good, and a
status line for the task log. :func:`summarize_failure` writes the exception message of a failed
Job from that state and the failing pods' logs.

Decisions, in short (details where they are made):

- ``job is None`` → FAILED ``JobDeleted``; so is an unfinished Job with a ``deletionTimestamp``.
- ``FailureTarget`` / ``SuccessCriteriaMet`` decide the outcome; ``Failed`` / ``Complete``
  also mean the pods are gone.
- A suspended Job is QUEUED; its Kueue Workload says why (quota, admission checks, eviction).
  A missing LocalQueue/ClusterQueue is a permanent problem; an inactive queue, a request over
  the ClusterQueue's maximum or a deactivated Workload only make it hopeless.
- Unschedulable and scheduling-gated pods wait for capacity; the newest autoscaler event says
  how (``TriggeredScaleUp``) or that it cannot help (``NotTriggerScaleUp`` → hopeless).
- ``InvalidImageName`` / ``ErrImageNeverPull`` fail now; ``ErrImagePull`` / ``ImagePullBackOff``
  and ``CreateContainerConfigError`` fail once they lasted ``image_pull_grace_seconds`` on the
  cluster's clock; ``CrashLoopBackOff`` and other start errors are reported, never fatal.
- Phase precedence when not finished: QUEUED, RUNNING (a pod runs), PENDING (a pod starts),
  WAITING_FOR_CAPACITY (only waiting pods), PENDING (no pods yet).

Argo Workflows: :func:`interpret_workflow` reads one Workflow object into a
:class:`WorkflowState` (phase, progress, running and pending Pod nodes, the failed nodes that
explain a failure, output parameters, a status line); :func:`summarize_workflow_failure` writes
the exception message from it and the failed pods' logs. Node status may be compressed
(:func:`decode_nodes`) or offloaded to the Argo Server (then only noted). :func:`pod_name` and
:func:`node_id` derive names the way the Argo controller does. A missing Workflow, or an
unfinished one being deleted, is finished with reason ``WorkflowDeleted``; a stopped or
terminated one has reason ``Stopped`` / ``Terminated``.
"""

from __future__ import annotations

from .jobs import interpret_job, job_outcome, server_now
from .results import by_index, pod_label, termination_messages
from .state import JobState, Phase, PodFailure, PodProblem
from .summary import summarize_failure, summarize_job_verdict
from .workflows import (
    NODE_ID_ANNOTATION,
    NODE_NAME_ANNOTATION,
    POD_NAME_FORMAT_ANNOTATION,
    WORKFLOW_LABEL,
    WorkflowNode,
    WorkflowState,
    decode_nodes,
    interpret_workflow,
    node_id,
    pod_name,
    summarize_workflow_failure,
)

__all__ = [
    "NODE_ID_ANNOTATION",
    "NODE_NAME_ANNOTATION",
    "POD_NAME_FORMAT_ANNOTATION",
    "WORKFLOW_LABEL",
    "JobState",
    "Phase",
    "PodFailure",
    "PodProblem",
    "WorkflowNode",
    "WorkflowState",
    "by_index",
    "decode_nodes",
    "interpret_job",
    "interpret_workflow",
    "job_outcome",
    "node_id",
    "pod_label",
    "pod_name",
    "server_now",
    "summarize_failure",
    "summarize_job_verdict",
    "summarize_workflow_failure",
    "termination_messages",
]
