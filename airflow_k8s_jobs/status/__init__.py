"""Pure interpretation of Kubernetes Job status: no I/O, no Airflow.

:func:`interpret_job` turns one snapshot — the Job, its pods, their events and (for Kueue) its
Workload, as plain dicts the API returns — into a :class:`JobState`: the phase, whether the
outcome is decided, why it waits (capacity, quota, image pulls), what fails for good, and a
status line for the task log. :func:`summarize_failure` writes the exception message of a failed
Job from that state and the failing pods' logs.
"""

from __future__ import annotations

from .jobs import interpret_job, job_outcome, server_now
from .state import JobState, Phase, PodFailure, PodProblem
from .summary import summarize_failure

__all__ = [
    "JobState",
    "Phase",
    "PodFailure",
    "PodProblem",
    "interpret_job",
    "job_outcome",
    "server_now",
    "summarize_failure",
]
