"""What the operators that submit one object and wait for it share: the cached hook, the task
instance key, the rendered manifest, submit-or-re-attach, deferring with a backstop timeout, the
pods' logs, raising what the outcome says, the execution timeout and kill handling. Subclasses
say what to build, how to wait and how to stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar, NoReturn

import jinja2

from .._compat import AirflowTaskTimeout, BaseOperator, BaseTrigger, Context
from ..clusters import KubeClusterHook
from ..errors import JobFailedError, NotFound, WorkflowFailedError
from ..kube import Resource, request_sync
from ..manifests.names import TaskInstanceKey, task_selector
from ..retrying import API_RETRY
from ..status.outcome import GAVE_UP_UNHEARD, Outcome, gave_up_on
from ..status.tries import earlier_try_to_adopt, still_running
from ._common import (
    RENDERED_MANIFEST,
    FatalJobFailedError,
    FatalWorkflowFailedError,
    bad_input_is_final,
    create_or_adopt,
    execution_deadline,
    jinja_errors_in,
    list_pods,
    manifest_yaml,
    no_retry_on_bad_input,
    print_pod_log,
    read_pod_log,
    task_instance_key,
)

BACKSTOP_SECONDS = 60.0
"""How long after the task's deadline Airflow's own trigger timeout fires (the trigger itself
fires at the deadline, so that the object is stopped rather than left running)."""


def backstop(deadline: float | None, now: float | None = None) -> timedelta | None:
    """The ``timeout`` to defer with: a minute past ``deadline`` (None: none)."""
    if deadline is None:
        return None
    now = time.time() if now is None else now
    return timedelta(seconds=max(0.0, deadline - now) + BACKSTOP_SECONDS)


Waiting = Coroutine[Any, Any, dict[str, Any]]
"""The synchronous mode's wait: the waiter's result dict (the trigger event) once it is known."""

FINAL_FAILURES: dict[type[Exception], type[Exception]] = {
    JobFailedError: FatalJobFailedError,
    WorkflowFailedError: FatalWorkflowFailedError,
}
"""The failure raised when another try would fail the same way (Airflow does not retry it)."""


class SubmitAndWaitOperator(BaseOperator):
    """Submit one object (built by :meth:`build_manifest`) and wait for it, deferrably.

    Subclasses set :attr:`resource`, :attr:`name_xcom_key` and :attr:`target_type` and
    implement :meth:`build_manifest`, :meth:`_trigger`, :meth:`_wait`, :meth:`_stop` (with
    :attr:`_acts_on_kill`) and ``execute_complete``.
    """

    resource: ClassVar[Resource]
    name_xcom_key: ClassVar[str]
    target_type: ClassVar[Callable[..., Any]]
    """What the waiter waits for (``JobTarget``, ``WorkflowTarget``)."""
    # The cached hook holds API clients: never deep-copied with the operator.
    shallow_copy_attrs: Any = ("_kube_hook",)

    def __init__(
        self,
        *,
        cluster_conn_id: str = KubeClusterHook.default_conn_name,
        namespace: str | None = None,
        deferrable: bool = True,
        delete_on_give_up: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster_conn_id = cluster_conn_id
        self.namespace = namespace
        self.deferrable = deferrable
        self.delete_on_give_up = delete_on_give_up
        self._target: Any = None
        self.rendered_manifest: str | None = None

    # --- the cluster --------------------------------------------------------------------------

    def _hook(self) -> KubeClusterHook:
        """The connection's hook, made once per operator instance."""
        hook = self.__dict__.get("_kube_hook")
        if hook is None or hook.cluster_conn_id != self.cluster_conn_id:
            hook = KubeClusterHook(self.cluster_conn_id)
            self.__dict__["_kube_hook"] = hook
        return hook

    def _key(self, context: Context) -> TaskInstanceKey:
        return task_instance_key(context)

    def _target_namespace(self) -> str:
        """``namespace`` (or the connection's), checked against the connection's allow-list."""
        settings = self._hook().settings
        namespace = self.namespace or settings.default_namespace
        settings.check_namespace(namespace)
        return namespace

    def _where(self, namespace: str, name: str) -> str:
        return f"{self.resource.kind} {namespace}/{name} on {self._hook().settings.display_name}"

    def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        """One API request of the worker, following the retry policy."""
        hook = self._hook()
        api = hook.api_client()
        kwargs.setdefault("timeout", hook.settings.request_timeout)
        return API_RETRY.call(
            lambda: request_sync(api, method, path, what=what, **kwargs),
            refresh=lambda: hook.refresh_credentials(api),
        )

    def _get(self, path: str, what: str) -> dict[str, Any] | None:
        """The object at ``path``, or None when there is none."""
        try:
            return dict(self._request("GET", path, what=what))
        except NotFound:
            return None

    def _unless_gone(self, method: str, path: str, *, what: str, **kwargs: Any) -> bool:
        """One request (see :meth:`_request`); False when the object is gone (404)."""
        try:
            self._request(method, path, what=what, **kwargs)
        except NotFound:
            return False
        return True

    # --- rendering ----------------------------------------------------------------------------

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Any,
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        # Airflow renders every template field through here, mapped tasks included.
        env = self._template_env(jinja_env)
        for field in [f for f in template_fields if f != RENDERED_MANIFEST]:
            with bad_input_is_final(), jinja_errors_in(f"task {self.task_id}, argument {field}"):
                super()._do_render_template_fields(parent, [field], context, env, seen_oids)
        if parent is self:
            with bad_input_is_final():
                self._render_manifest(context, env)
            self.rendered_manifest = self._preview(context)

    def _template_env(self, env: jinja2.Environment) -> jinja2.Environment:
        return env

    def _render_manifest(self, context: Context, env: jinja2.Environment) -> None:
        """Read and render a manifest argument once the template fields are rendered."""

    def _preview(self, context: Context) -> str | None:
        """The manifest this try submits, as YAML; None while it cannot be built (``execute``
        then reports why)."""
        try:
            manifest = self._preview_manifest(context)
        except Exception as exc:
            self.log.debug("The %s manifest cannot be built yet: %s", self.resource.kind, exc)
            return None
        return manifest_yaml(manifest)

    def _preview_manifest(self, context: Context) -> dict[str, Any]:
        return self.build_manifest(context)[0]

    # --- submit and wait ----------------------------------------------------------------------

    def build_manifest(self, context: Context) -> tuple[dict[str, Any], str]:
        """The manifest this task instance try submits, and its namespace."""
        raise NotImplementedError

    def _earlier_try(
        self, context: Context, namespace: str, key: TaskInstanceKey
    ) -> dict[str, Any] | None:
        """The object of an earlier try to wait for instead of creating one (see
        :mod:`~airflow_k8s_jobs.status.tries`), or None."""
        if key.try_number <= 1:
            return None
        found = self._request(
            "GET",
            self.resource.path(namespace),
            query=[("labelSelector", task_selector(key, include_try=False))],
            what=f"listing the {self.resource.plural} of earlier tries in namespace {namespace}",
        )
        max_tries = getattr(context["ti"], "max_tries", None)
        automatic = not isinstance(max_tries, int) or max_tries <= (self.retries or 0)
        adoption = earlier_try_to_adopt(
            self.resource.kind, found.get("items") or [], key.try_number, automatic_retry=automatic
        )
        if adoption is None:
            return None
        meta = adoption.obj["metadata"]
        self.log.info(
            "Try %d waits for %s of try %d, which %s (uid %s).",
            key.try_number,
            self._where(namespace, meta["name"]),
            adoption.try_number,
            adoption.why,
            meta["uid"],
        )
        return adoption.obj

    def _target_for(self, namespace: str, obj: dict[str, Any]) -> Any:
        """What the waiter waits for: :attr:`target_type` of the created object."""
        return self.target_type(
            cluster_conn_id=self.cluster_conn_id,
            cluster_name=self._hook().settings.display_name,
            namespace=namespace,
            name=obj["metadata"]["name"],
            uid=obj["metadata"]["uid"],
            **self._target_extra(obj),
        )

    def _target_extra(self, obj: dict[str, Any]) -> dict[str, Any]:
        """More of the target, read from the created object."""
        return {}

    def _trigger(self, target: Any, deadline: float | None) -> BaseTrigger:
        raise NotImplementedError

    def _wait(self, target: Any, deadline: float | None) -> Waiting:
        """The synchronous mode's wait (the trigger's, run in the worker)."""
        raise NotImplementedError

    def _persist_links(self, context: Context, namespace: str, obj: dict[str, Any]) -> None:
        """Store what the task's extra links need."""

    @no_retry_on_bad_input
    def execute(self, context: Context) -> Any:
        manifest, namespace = self.build_manifest(context)
        hook = self._hook()
        key = self._key(context)
        api = hook.api_client()
        obj = self._earlier_try(context, namespace, key) or create_or_adopt(
            api,
            self.resource,
            manifest,
            namespace,
            key,
            where=self._where(namespace, manifest["metadata"]["name"]),
            timeout=hook.settings.request_timeout,
            log=self.log,
            refresh=lambda: hook.refresh_credentials(api),
        )
        name = obj["metadata"]["name"]
        target = self._target = self._target_for(namespace, obj)
        context["ti"].xcom_push(key=self.name_xcom_key, value=name)
        context["ti"].xcom_push(key="namespace", value=namespace)
        self._persist_links(context, namespace, obj)
        deadline = execution_deadline(self.execution_timeout, context)
        if self.deferrable:
            self.defer(
                trigger=self._trigger(target, deadline),
                method_name="execute_complete",
                timeout=backstop(deadline),
            )
        event = asyncio.run(self._wait(target, deadline))
        return self.execute_complete(context, event)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _about(self, event: dict[str, Any]) -> tuple[str, str, str, str]:
        """The namespace, name and uid of what the event is about, and how messages name it."""
        namespace, name = event["namespace"], event["name"]
        return namespace, name, event["uid"], self._where(namespace, name)

    def _pods(self, namespace: str, selector: str, what: str) -> list[Any]:
        """The pods matching ``selector``, oldest first (``what``: whose, for messages)."""
        return list_pods(self._request, namespace, selector, what)

    def _read_log(self, namespace: str, pod: str, where: str, container: str | None = None) -> str:
        """One pod's log, or a note saying why there is none."""
        return read_pod_log(self._request, namespace, pod, where, container)

    def _print_logs(
        self,
        namespace: str,
        pods: Sequence[Mapping[str, Any]],
        where: str,
        label: Callable[[Mapping[str, Any]], str],
        container: str | None = None,
        limit: int | None = None,
    ) -> dict[str, str]:
        """Write each pod's log (the last ``limit`` pods' only) to the task log, prefixed by
        ``label(pod)``; returns pod name → log."""
        if limit is not None and len(pods) > limit:
            self.log.info(
                "%s has %d pods; writing the logs of the last %d.", where, len(pods), limit
            )
            pods = pods[-limit:]
        logs: dict[str, str] = {}
        for pod in pods:
            name = pod["metadata"]["name"]
            logs[name] = self._read_log(namespace, name, where, container)
            phase = (pod.get("status") or {}).get("phase")
            print_pod_log(self.log, label(pod), phase, logs[name])
        return logs

    def _finish(self, outcome: Outcome, where: str, event: dict[str, Any] | None = None) -> None:
        """Raise the outcome's failure (giving up on the object of ``event`` first when it has
        not finished), or log the success."""
        if outcome.error is None:
            self.log.info("%s succeeded: %s", where, outcome.message)
            return
        error = FINAL_FAILURES.get(outcome.error, outcome.error) if outcome.final else outcome.error
        done = ""
        if outcome.gave_up and event is not None:
            done = self._give_up(event, outcome.gave_up)
        raise error(outcome.message + done)

    # --- stop ---------------------------------------------------------------------------------

    @property
    def _acts_on_kill(self) -> bool:
        """Whether a kill or a timeout stops the object."""
        raise NotImplementedError

    def _stop(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Stop the object if it is still ours; returns what was done, as a sentence."""
        raise NotImplementedError

    def _timed_out(self, event: dict[str, Any]) -> NoReturn:
        """The trigger fired at the task's deadline: stop the object (unless ``delete_on_kill``
        or ``shutdown_on_kill`` says to leave it) and fail the task."""
        self._target = None  # on_kill() (Airflow 2 calls it on a timeout) has nothing to do
        done = ""
        why = gave_up_on(self.resource.kind, event)
        if self._acts_on_kill and why is not None:
            done = self._give_up(event, why)
        raise AirflowTaskTimeout(f"{event['message']}{done}")

    def _give_up(self, event: dict[str, Any], why: str) -> str:
        """Stop the object of ``event``, which has not finished, as the task fails (unless
        ``delete_on_give_up`` is False); returns what was done, as a sentence to append to the
        error (a leading space; empty when nothing was done)."""
        if not self.delete_on_give_up:
            return ""
        namespace, name, uid, where = self._about(event)
        done = self._abandon(namespace, name, uid, where)
        if not done:
            return ""
        sentence = f"{done} so that it does not {why}."
        self.log.warning("%s", sentence)
        return " " + sentence

    def _abandon(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Stop an object the task gives up on if it is still ours; returns what was done
        (``Deleted Job ns/name on cluster``), empty when it was gone already."""
        raise NotImplementedError

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context
    ) -> Any:
        """When Airflow fails the deferred task without an event (its backstop timeout, a
        trigger that failed), give up on what still runs first, then let Airflow fail it."""
        if next_method == "__fail__" and self.delete_on_give_up and self._acts_on_kill:
            try:
                self._give_up_unheard(context)
            except Exception as exc:  # Airflow's own failure is the one to report
                self.log.warning("Could not stop the %s of this task: %s", self.resource.kind, exc)
        return super().resume_execution(next_method, next_kwargs, context)

    def _give_up_unheard(self, context: Context) -> None:
        """Stop this task instance's objects that still run: this try's, or the earlier try's it
        adopted (no event says which)."""
        key, namespace = self._key(context), self._target_namespace()
        found = self._request(
            "GET",
            self.resource.path(namespace),
            query=[("labelSelector", task_selector(key, include_try=False))],
            what=f"listing the {self.resource.plural} of this task in namespace {namespace}",
        )
        for obj in still_running(self.resource.kind, found.get("items") or [], key.try_number):
            meta = obj["metadata"]
            event = {"namespace": namespace, "name": meta["name"], "uid": meta["uid"]}
            self._give_up(event, GAVE_UP_UNHEARD)

    def on_kill(self) -> None:
        """Stop the object when the task is killed while the worker waits (synchronous mode)."""
        target = self._target
        if target is None or not self._acts_on_kill:
            return
        self._stop(target.namespace, target.name, target.uid, target.where)
