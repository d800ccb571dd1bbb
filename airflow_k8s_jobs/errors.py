"""The errors this provider raises.

Two families, as in kopf: a :class:`PermanentError` fails the task and is never retried at the API
level (bad input, a Job that failed, a cluster that refuses us); a :class:`TransientError` is
worth retrying with backoff (429, 5xx, dropped connections). Every message names the object, the
namespace and the cluster, and says what to do.

An error answer of the Kubernetes API is a :class:`KubeApiError` carrying the parsed ``Status``
(as lightkube's ``ApiError`` does); its type says what it means and, through its family, whether
it is worth retrying: :func:`api_error` picks the type from the HTTP code.
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


class UnreachableError(TransientError):
    """No connection to the API server could be made (refused, no route, unknown host)."""


class UntrustedCertificateError(InvalidInputError):
    """The API server's TLS certificate is not trusted with the connection's CA: retrying does
    not help; the connection must be fixed."""


# --- error answers of the Kubernetes API -------------------------------------------------------


class KubeApiError(KubeJobsError):
    """A Kubernetes API answer that is an error, with its parsed ``Status``.

    ``status`` is the ``Status`` object (a dict; empty when the server sent none), ``code`` the
    HTTP status code, ``retry_after`` the server's hint in seconds (``Retry-After`` or
    ``details.retryAfterSeconds``). Each concrete type is also a :class:`PermanentError` or a
    :class:`TransientError`.
    """

    def __init__(
        self,
        message: str,
        code: int,
        status: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        KubeJobsError.__init__(self, message)
        self.code = code
        self.status = status or {}
        self.retry_after = retry_after

    @property
    def reason(self) -> str:
        """The ``Status`` reason (``NotFound``, ``AlreadyExists``, ``Conflict`` ...)."""
        return str(self.status.get("reason", ""))

    @property
    def api_message(self) -> str:
        """The ``Status`` message, or this error's own message without one."""
        return str(self.status.get("message") or self)


class PermanentApiError(KubeApiError, PermanentError):
    """An API error that the same request meets again (a 4xx other than 429)."""


class TransientApiError(KubeApiError, TransientError):
    """An API error that may go away (429, 5xx)."""


class BadRequest(PermanentApiError):
    """400: the request is malformed (or, for a dry run, the object is)."""


class Unauthorized(PermanentApiError):
    """401: the credentials expired or were rotated; refresh them once and retry."""


class Forbidden(PermanentApiError):
    """403: the identity may not do this (RBAC), or a quota or admission refused it."""


class NotFound(PermanentApiError):
    """404: the object (or its namespace, or its API) does not exist."""


class Conflict(PermanentApiError):
    """409: the object exists already, or a precondition (uid, resourceVersion) failed."""


class Expired(PermanentApiError):
    """410: the resourceVersion or continue token is too old; list again."""


class Invalid(PermanentApiError):
    """422: the object does not validate."""


class TooManyRequests(TransientApiError):
    """429: the API server (priority and fairness) or a webhook asks us to slow down."""


class ServerError(TransientApiError):
    """5xx: the API server, etcd or a webhook failed, or timed out."""


_BY_CODE: dict[int, type[KubeApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Expired,
    422: Invalid,
    429: TooManyRequests,
}


def api_error(
    code: int,
    message: str,
    status: dict[str, Any] | None = None,
    retry_after: float | None = None,
) -> KubeApiError:
    """The :class:`KubeApiError` for an answer with HTTP ``code`` and ``Status`` ``status``."""
    kind = _BY_CODE.get(code)
    if kind is None:
        kind = ServerError if code >= 500 else PermanentApiError
    return kind(message, code, status, retry_after)


# --- outcomes of what the tasks wait for -------------------------------------------------------


class JobFailedError(PermanentError):
    """The Kubernetes Job (or Argo Workflow) finished unsuccessfully."""


class WorkflowFailedError(JobFailedError):
    """The Argo Workflow finished unsuccessfully (Failed or Error, or it was stopped)."""


class CapacityTimeoutError(PermanentError):
    """Pods waited for nodes or quota longer than ``capacity_timeout``."""


class ObjectGoneError(PermanentError):
    """The object we were waiting for was deleted by someone else."""
