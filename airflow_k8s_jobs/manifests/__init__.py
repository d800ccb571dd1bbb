"""Pure manifest logic: names, labels, loading, building, defaulting and validating Jobs and
Argo Workflows.

No I/O except :func:`~.jobs.load_manifest` (and :func:`~.workflows.load_workflow`) reading a
manifest file, and no Airflow imports, so everything here is unit-tested without a cluster or an
Airflow installation.
"""

from __future__ import annotations

from .jobs import JobSpecRequest, build_job, job_problems, load_manifest
from .names import (
    LABEL_PREFIX,
    MANAGED_BY,
    MAX_JOB_NAME,
    TaskInstanceKey,
    matches_task,
    object_name,
    task_annotations,
    task_labels,
    task_selector,
)
from .workflows import WorkflowRequest, build_workflow, load_workflow, protect_argo_expressions

__all__ = [
    "LABEL_PREFIX",
    "MANAGED_BY",
    "MAX_JOB_NAME",
    "JobSpecRequest",
    "TaskInstanceKey",
    "WorkflowRequest",
    "build_job",
    "build_workflow",
    "job_problems",
    "load_manifest",
    "load_workflow",
    "matches_task",
    "object_name",
    "protect_argo_expressions",
    "task_annotations",
    "task_labels",
    "task_selector",
]
