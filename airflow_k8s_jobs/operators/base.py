"""What the operators that submit one object and wait for it share: the cached hook, the task
instance key, the rendered manifest, submit-or-re-attach, deferring with a backstop timeout, the
execution timeout and kill handling. Subclasses say what to build, how to wait and how to stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, ClassVar, NoReturn

import jinja2

from .._compat import AirflowTaskTimeout, BaseOperator, BaseTrigger, Context
from ..clusters import KubeClusterHook
from ..kube import Resource, request_sync
from ..manifests.names import TaskInstanceKey
from ..retrying import API_RETRY
from ._common import (
    RENDERED_MANIFEST,
    bad_input_is_final,
    create_or_adopt,
    execution_deadline,
    jinja_errors_in,
    manifest_yaml,
    no_retry_on_bad_input,
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


class SubmitAndWaitOperator(BaseOperator):
    """Submit one object (built by :meth:`build_manifest`) and wait for it, deferrably.

    Subclasses set :attr:`resource` and :attr:`name_xcom_key` and implement
    :meth:`build_manifest`, :meth:`_target_for`, :meth:`_trigger`, :meth:`_wait`,
    :meth:`_stop` (with :attr:`_acts_on_kill`) and ``execute_complete``.
    """

    resource: ClassVar[Resource]
    name_xcom_key: ClassVar[str]
    # The cached hook holds API clients: never deep-copied with the operator.
    shallow_copy_attrs: Any = ("_kube_hook",)

    def __init__(
        self,
        *,
        cluster_conn_id: str = KubeClusterHook.default_conn_name,
        namespace: str | None = None,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster_conn_id = cluster_conn_id
        self.namespace = namespace
        self.deferrable = deferrable
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

    def _target_for(self, namespace: str, obj: dict[str, Any]) -> Any:
        """What the waiter waits for (a ``JobTarget``, a ``WorkflowTarget``)."""
        raise NotImplementedError

    def _trigger(self, target: Any, deadline: float | None) -> BaseTrigger:
        raise NotImplementedError

    def _wait(self, target: Any, deadline: float | None) -> Coroutine[Any, Any, dict[str, Any]]:
        """The synchronous mode's wait (the trigger's, run in the worker)."""
        raise NotImplementedError

    def _persist_links(self, context: Context, namespace: str, obj: dict[str, Any]) -> None:
        """Store what the task's extra links need."""

    @no_retry_on_bad_input
    def execute(self, context: Context) -> Any:
        manifest, namespace = self.build_manifest(context)
        hook = self._hook()
        name = manifest["metadata"]["name"]
        api = hook.api_client()
        obj = create_or_adopt(
            api,
            self.resource,
            manifest,
            namespace,
            self._key(context),
            where=self._where(namespace, name),
            timeout=hook.settings.request_timeout,
            log=self.log,
            refresh=lambda: hook.refresh_credentials(api),
        )
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

    # --- stop ---------------------------------------------------------------------------------

    @property
    def _acts_on_kill(self) -> bool:
        """Whether a kill or a timeout stops the object."""
        raise NotImplementedError

    def _stop(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Stop the object if it is still ours; returns what was done, as a sentence."""
        raise NotImplementedError

    def _timed_out(self, event: dict[str, Any]) -> NoReturn:
        """The trigger fired at the task's deadline: stop the object and fail the task."""
        self._target = None  # on_kill() (Airflow 2 calls it on a timeout) has nothing to do
        done = ""
        if self._acts_on_kill:
            done = " " + self._stop(*self._about(event))
        raise AirflowTaskTimeout(f"{event['message']}{done}")

    def on_kill(self) -> None:
        """Stop the object when the task is killed while the worker waits (synchronous mode)."""
        target = self._target
        if target is None or not self._acts_on_kill:
            return
        self._stop(target.namespace, target.name, target.uid, target.where)
