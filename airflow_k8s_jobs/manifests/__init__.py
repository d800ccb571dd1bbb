"""Pure manifest logic: names, labels, loading, building, defaulting and validating Jobs.

No I/O except :func:`~.jobs.load_manifest` reading a manifest file, and no Airflow imports, so
everything here is unit-tested without a cluster or an Airflow installation.
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

__all__ = [
    "LABEL_PREFIX",
    "MANAGED_BY",
    "MAX_JOB_NAME",
    "JobSpecRequest",
    "TaskInstanceKey",
    "build_job",
    "job_problems",
    "load_manifest",
    "matches_task",
    "object_name",
    "task_annotations",
    "task_labels",
    "task_selector",
]
