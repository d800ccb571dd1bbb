"""What the operators share: the task instance key, deadlines, submit-or-re-attach, pod logs,
manifest files and their Jinja environment, the manifest shown as the rendered template, and
which failures are final."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import jinja2
import jinja2.ext
import yaml

from .._compat import AirflowFailException, Context, is_sensitive_name
from ..clusters.preflight import check_local_queue, refusal
from ..errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    InvalidInputError,
    JobFailedError,
    KubeApiError,
    NotFound,
    TransientError,
    UnreachableError,
    WorkflowFailedError,
)
from ..kube import PODS, Resource, request_sync
from ..manifests.names import TaskInstanceKey, matches_task
from ..manifests.validation import argo_hint, not_utf8
from ..manifests.workflows import load_workflow, protect_argo_expressions
from ..retrying import API_RETRY

LOG_HEAD_LINES = 50
LOG_TAIL_LINES = 200


# --- failures that Airflow must not retry ------------------------------------------------------


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


# --- manifest files and the rendered manifest ---------------------------------------------------

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
RENDERED_MANIFEST = "rendered_manifest"
"""The template field that shows the built manifest under "Rendered Template"."""
MASKED = "***"


def looks_like_manifest_file(value: Any) -> bool:
    """A one-line string ending in ``.yaml``, ``.yml`` or ``.json``: a manifest file's name."""
    return (
        isinstance(value, str)
        and "\n" not in value.strip()
        and value.strip().lower().endswith(MANIFEST_SUFFIXES)
    )


def search_path(env: jinja2.Environment) -> list[str]:
    """The folders the template environment's loader looks in (the DAG's folder first)."""
    found = getattr(env.loader, "searchpath", None) or []
    return [os.fspath(p) for p in found]


def read_manifest_file(env: jinja2.Environment, name: str, where: str) -> str:
    """The text of the manifest file ``name``, found as Airflow finds template files: through
    the template search path (the DAG's folder and its ``template_searchpath``); an absolute
    path, or one relative to the working directory, is read as it is.

    Raises :class:`InvalidInputError` naming the file and the folders searched.
    """
    loader = env.loader
    try:
        if loader is not None:
            try:
                return str(loader.get_source(env, name)[0])
            except jinja2.TemplateNotFound:
                pass
        path = Path(name).expanduser()
        if path.is_file():
            return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(not_utf8(where, exc)) from None
    except OSError as exc:
        raise InvalidInputError(f"{where}: cannot read the file: {exc}") from None
    folders = ", ".join(search_path(env)) or "no template search path"
    raise InvalidInputError(
        f"{where}: file not found (searched {folders}, and {Path(name).expanduser().absolute()}"
        "); put it next to the DAG file, add its folder to the DAG's template_searchpath, or "
        "give an absolute path"
    )


@contextlib.contextmanager
def jinja_errors_in(where: str) -> Iterator[None]:
    """Report a Jinja error of a manifest as bad input naming the manifest (and the line)."""
    try:
        yield
    except jinja2.TemplateSyntaxError as exc:
        line = f" at line {exc.lineno}" if exc.lineno else ""
        raise InvalidInputError(f"{where}: Jinja syntax error{line}: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        raise InvalidInputError(f"{where}: Jinja: {exc.message}{argo_hint(exc.message)}") from exc


class _ArgoExpressions(jinja2.ext.Extension):
    """Leaves Argo's own ``{{…}}`` expressions to Argo when Airflow renders a template."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return protect_argo_expressions(source)


def argo_safe(env: jinja2.Environment) -> jinja2.Environment:
    """An overlay of ``env`` (same loader, macros, undefined) that keeps Argo expressions."""
    if any(isinstance(ext, _ArgoExpressions) for ext in env.extensions.values()):
        return env
    return env.overlay(extensions=[_ArgoExpressions])


def render_workflow_argument(
    source: Any, env: jinja2.Environment, where: str, render: Callable[[Any], Any]
) -> dict[str, Any]:
    """A ``workflow`` argument — a dict, a manifest file's name or YAML text — loaded, then
    rendered by ``render`` (Airflow's Jinja in ``env``, an :func:`argo_safe` environment, so
    Argo's own expressions are left alone) and loaded again.

    Raises :class:`InvalidInputError` naming ``where`` (and the file).
    """
    if looks_like_manifest_file(source):
        name = str(source).strip()
        where += f", file {name}"
        source = read_manifest_file(env, name, where)
    if not isinstance(source, (str, dict)):
        raise InvalidInputError(
            f"{where}: expected a dict, a .yaml/.yml/.json file name or YAML text, got "
            f"{type(source).__name__}"
        )
    if isinstance(source, str):
        source = load_workflow(source, where=where)
    with jinja_errors_in(where):
        rendered = render(source)
    return load_workflow(rendered, where=where)


def mask_sensitive_values(value: Any) -> Any:
    """A copy of ``value`` in which every ``{"name": n, "value": v}`` entry (a container's env
    variable, an Argo parameter) whose name Airflow deems sensitive has its value masked, as
    Airflow masks the keys of a template field's dicts and Kubernetes ``V1EnvVar`` objects."""
    if isinstance(value, dict):
        masked = {k: mask_sensitive_values(v) for k, v in value.items()}
        name = value.get("name")
        if "value" in value and isinstance(name, str) and is_sensitive_name(name):
            masked["value"] = MASKED
        return masked
    if isinstance(value, list):
        return [mask_sensitive_values(v) for v in value]
    return value


def manifest_yaml(manifest: dict[str, Any]) -> str:
    """The manifest as the YAML text shown under "Rendered Template", sensitive values masked."""
    return yaml.safe_dump(
        mask_sensitive_values(manifest), sort_keys=False, default_flow_style=False, width=100
    )


def seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


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
    if execution_timeout is None:
        return None
    started = getattr(context["ti"], "start_date", None)
    start = started.timestamp() if started is not None else time.time()
    return start + execution_timeout.total_seconds()


def create_or_adopt(
    api: Any,
    resource: Resource,
    manifest: dict[str, Any],
    namespace: str,
    key: TaskInstanceKey,
    *,
    where: str,
    timeout: float,
    log: logging.Logger | Any,
    refresh: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Create ``manifest`` after a server-side dry run, or re-attach to the object this same try
    created before (a worker that died between submitting and deferring).

    The dry run (``fieldValidation=Strict``) lets the API server reject bad input before anything
    exists. On ``409 AlreadyExists`` the existing object is adopted only if its labels say it was
    created by exactly this task instance try; anything else is left untouched. Each request
    follows :data:`~airflow_k8s_jobs.retrying.API_RETRY` (``refresh`` reloads the credentials
    after a 401).
    """
    name = manifest["metadata"]["name"]
    kind = resource.kind

    def call(
        method: str, url: str, query: list[tuple[str, Any]] | None = None, body: Any = None
    ) -> Any:
        return API_RETRY.call(
            lambda: request_sync(
                api, method, url, query=query, body=body, timeout=timeout, what=where
            ),
            refresh=refresh,
        )

    path = resource.path(namespace)
    try:  # the API server validates everything first; nothing is created by a dry run
        check_local_queue(call, manifest, namespace, where)
        call("POST", path, [("dryRun", "All"), ("fieldValidation", "Strict")], manifest)
    except Conflict:
        pass  # it exists already: adoption below decides
    except (Forbidden, NotFound, UnreachableError) as exc:
        refusal(exc, kind, resource, namespace, where)
        raise
    except (BadRequest, Invalid) as exc:
        raise InvalidInputError(
            f"The cluster rejected {where}: {exc.api_message}. "
            f"Fix the {kind} manifest or the operator arguments; nothing was created."
        ) from exc
    try:
        created = call("POST", path, None, manifest)
        log.info("Created %s (uid %s).", where, created["metadata"]["uid"])
        return dict(created)
    except Conflict:
        pass
    existing = call("GET", resource.path(namespace, name))
    meta = existing["metadata"]
    if not matches_task(meta.get("labels"), meta.get("annotations"), key):
        raise InvalidInputError(
            f"{where} already exists but was not created by this task instance try "
            f"({key.dag_id}.{key.task_id}, run {key.run_id}, try {key.try_number}). "
            "Delete it or change the task; it was left untouched."
        )
    log.info("Re-attached to %s created earlier by this same try (uid %s).", where, meta["uid"])
    return dict(existing)


def list_pods(request: Callable[..., Any], namespace: str, selector: str, what: str) -> list[Any]:
    """The pods matching a label selector, oldest first (``request``: the operator's API call,
    which follows the retry policy)."""
    body = request(
        "GET",
        PODS.path(namespace),
        query=[("labelSelector", selector)],
        what=f"listing the pods of {what}",
    )
    pods = list(body.get("items") or [])
    return sorted(
        pods, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"])
    )


def read_pod_log(
    request: Callable[..., Any],
    namespace: str,
    pod_name: str,
    where: str,
    container: str | None = None,
) -> str:
    """The log of one pod (at most 4 MiB), or a note saying why there is none."""
    query: list[tuple[str, Any]] = [("limitBytes", 4 * 1024 * 1024)]
    if container:
        query.append(("container", container))
    try:
        text = request(
            "GET",
            PODS.path(namespace, pod_name, "log"),
            query=query,
            what=f"reading the log of pod {pod_name} of {where}",
        )
    except (KubeApiError, TransientError) as exc:
        return f"<no log: {exc}>"
    return text if isinstance(text, str) else json.dumps(text)


def print_pod_log(log: logging.Logger | Any, prefix: str, phase: str | None, text: str) -> None:
    """Write a pod's log to the task log, each line prefixed; long logs keep head and tail."""
    lines = text.splitlines()
    total = len(lines)
    if total > LOG_HEAD_LINES + LOG_TAIL_LINES:
        skipped = total - LOG_HEAD_LINES - LOG_TAIL_LINES
        lines = [
            *lines[:LOG_HEAD_LINES],
            f"... {skipped} lines skipped ...",
            *lines[-LOG_TAIL_LINES:],
        ]
    log.info("---- %s (%s): %d log lines", prefix, phase, total)
    for line in lines:
        log.info("%s | %s", prefix, line)
