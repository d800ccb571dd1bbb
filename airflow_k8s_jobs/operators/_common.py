"""What the operators share as Airflow glue: the task instance key, the execution deadline, and
which failures are final (Airflow does not retry them).

Manifest templating lives in :mod:`airflow_k8s_jobs.templating`, the worker's requests around a
submission in :mod:`airflow_k8s_jobs.submitting`; their names are importable from here too.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from .._compat import AirflowFailException, Context
from ..errors import InvalidInputError, JobFailedError, WorkflowFailedError
from ..manifests.names import TaskInstanceKey
from ..pod_logs import LOG_HEAD_LINES, LOG_TAIL_LINES, list_pods, print_pod_log, read_pod_log
from ..status.deadlines import deadline_after
from ..submitting import create_or_adopt
from ..templating import (
    MANIFEST_SUFFIXES,
    MASKED,
    RENDERED_MANIFEST,
    argo_safe,
    jinja_errors_in,
    looks_like_manifest_file,
    manifest_yaml,
    mask_sensitive_values,
    read_manifest_file,
    render_workflow_argument,
    search_path,
)

__all__ = [
    "LOG_HEAD_LINES",
    "LOG_TAIL_LINES",
    "MANIFEST_SUFFIXES",
    "MASKED",
    "RENDERED_MANIFEST",
    "FatalInvalidInputError",
    "FatalJobFailedError",
    "FatalWorkflowFailedError",
    "argo_safe",
    "bad_input_is_final",
    "create_or_adopt",
    "execution_deadline",
    "fatal",
    "jinja_errors_in",
    "list_pods",
    "looks_like_manifest_file",
    "manifest_yaml",
    "mask_sensitive_values",
    "no_retry_on_bad_input",
    "print_pod_log",
    "read_manifest_file",
    "read_pod_log",
    "render_workflow_argument",
    "search_path",
    "task_instance_key",
]


class FatalInvalidInputError(InvalidInputError, AirflowFailException):
    """:class:`~airflow_k8s_jobs.errors.InvalidInputError` that fails the task without retries:
    the same input fails the same way on every try."""


class FatalJobFailedError(JobFailedError, AirflowFailException):
    """:class:`~airflow_k8s_jobs.errors.JobFailedError` for a Job whose pods cannot run (an
    invalid image name, an image pull failing past its grace period ...): fails the task
    without retries."""


class FatalWorkflowFailedError(WorkflowFailedError, AirflowFailException):
    """:class:`~airflow_k8s_jobs.errors.WorkflowFailedError` for a Workflow that the Argo
    controller rejected as invalid: fails the task without retries."""


_F = TypeVar("_F", bound=Callable[..., Any])


def fatal(error: InvalidInputError) -> FatalInvalidInputError:
    """``error`` as a :class:`FatalInvalidInputError` (same message, cause and traceback)."""
    if isinstance(error, FatalInvalidInputError):
        return error
    final = FatalInvalidInputError(*error.args)
    final.__cause__ = error.__cause__
    final.__suppress_context__ = True
    for note in getattr(error, "__notes__", ()):
        final.add_note(note)
    return final.with_traceback(error.__traceback__)


@contextlib.contextmanager
def bad_input_is_final() -> Iterator[None]:
    """Re-raise an :class:`InvalidInputError` as a :class:`FatalInvalidInputError`."""
    try:
        yield
    except InvalidInputError as error:
        if isinstance(error, AirflowFailException):
            raise
        raise fatal(error) from error.__cause__


def no_retry_on_bad_input(method: _F) -> _F:
    """Decorate an operator method so that bad input fails the task without retries."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with bad_input_is_final():
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def task_instance_key(context: Context) -> TaskInstanceKey:
    """The try of the task instance that is running."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return TaskInstanceKey(
        ti.dag_id,
        ti.task_id,
        ti.run_id,
        -1 if map_index is None else int(map_index),
        int(ti.try_number),
    )


def execution_deadline(execution_timeout: timedelta | None, context: Context) -> float | None:
    """Epoch seconds at which ``execution_timeout`` runs out (also while deferred)."""
    started = getattr(context["ti"], "start_date", None)
    return deadline_after(execution_timeout, None if started is None else started.timestamp())
