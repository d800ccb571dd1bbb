"""The errors this provider raises.

Two families, as in kopf: a :class:`PermanentError` fails the task and is never retried at the API
level (bad input, a Job that failed, a cluster that refuses us); a :class:`TransientError` is
worth retrying with backoff (429, 5xx, dropped connections). Every message names the object, the
namespace and the cluster, and says what to do.
"""

from __future__ import annotations

from typing import Any


class KubeJobsError(Exception):
    """Base class of every error raised by airflow_k8s_jobs."""


class PermanentError(KubeJobsError):
    """Retrying the same call will not help."""


class TransientError(KubeJobsError):
    """The same call may succeed later; ``retry_after`` is the server's hint, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidInputError(PermanentError):
    """The task's input is wrong; nothing was created on the cluster."""


class KubeApiError(KubeJobsError):
    """A Kubernetes API answer that is an error, with its parsed ``Status``.

    ``status`` is the ``Status`` object (a dict) when the server sent one.
    """

    def __init__(self, message: str, code: int, status: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or {}

    @property
    def reason(self) -> str:
        return str(self.status.get("reason", ""))


class JobFailedError(PermanentError):
    """The Kubernetes Job (or Argo Workflow) finished unsuccessfully."""


class WorkflowFailedError(JobFailedError):
    """The Argo Workflow finished unsuccessfully (Failed or Error, or it was stopped)."""


class CapacityTimeoutError(PermanentError):
    """Pods waited for nodes or quota longer than ``capacity_timeout``."""


class ObjectGoneError(PermanentError):
    """The object we were waiting for was deleted by someone else."""
