"""What the operators that submit one object and wait for it share: submit-or-re-attach (or wait
for an earlier try's object), deferring with a backstop timeout, the pods' logs, raising what the
outcome says. Subclasses say what to build
(:class:`~airflow_k8s_jobs.operators._cluster.ClusterOperator`), how to wait and how to stop
(:class:`~airflow_k8s_jobs.operators._stopping.StoppingOperator`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from .._compat import BaseTrigger, Context
from ..errors import JobFailedError, WorkflowFailedError
from ..manifests.names import TaskInstanceKey
from ..status.deadlines import BACKSTOP_SECONDS as BACKSTOP_SECONDS
from ..status.deadlines import backstop
from ..status.outcome import Outcome
from ..status.tries import earlier_try_to_adopt, is_automatic_retry
from ..submitting import create_or_adopt, list_tries
from ._common import (
    FatalJobFailedError,
    FatalWorkflowFailedError,
    execution_deadline,
    no_retry_on_bad_input,
)
from ._stopping import StoppingOperator

__all__ = ["BACKSTOP_SECONDS", "FINAL_FAILURES", "SubmitAndWaitOperator", "Waiting", "backstop"]

Waiting = Coroutine[Any, Any, dict[str, Any]]
"""The synchronous mode's wait: the waiter's result dict (the trigger event) once it is known."""

FINAL_FAILURES: dict[type[Exception], type[Exception]] = {
    JobFailedError: FatalJobFailedError,
    WorkflowFailedError: FatalWorkflowFailedError,
}
"""The failure raised when another try would fail the same way (Airflow does not retry it)."""


class SubmitAndWaitOperator(StoppingOperator):
    """Submit one object (built by :meth:`build_manifest`) and wait for it, deferrably.

    Each task instance try submits its own object, with a deterministic name from
    dag/task/run/map index/try and labels identifying the try: a worker that dies after
    submitting re-attaches to it, and a retry waits for an earlier try's object that still runs
    (see :mod:`~airflow_k8s_jobs.status.tries`) or submits a fresh one. The object as it is
    submitted (YAML, sensitive values masked) is the ``rendered_manifest`` template field, shown
    under "Rendered Template". Bad input (an invalid manifest, a namespace the connection does
    not allow ...) fails the task without Airflow retries; a transient API error is retried.

    :param cluster_conn_id: a ``k8sjobs`` connection (GKE, kubeconfig, in-cluster) or a
        cncf ``kubernetes`` connection.
    :param namespace: where the object runs (default: the connection's namespace).
    :param deferrable: free the worker slot while waiting (the default).
    :param delete_on_give_up: when the task fails while its object has not finished (pods
        waited ``capacity_timeout`` for capacity, pods that cannot run, the ``execution_timeout``
        ran out — the last only if a kill stops the object), delete the Job with its pods or stop
        the Workflow, so that nothing stays pending or running; False keeps it for inspection.
        An object that failed on its own is kept until its TTL either way.

    Subclasses set :attr:`resource`, :attr:`name_xcom_key` and :attr:`target_type` and
    implement :meth:`build_manifest`, :meth:`_trigger`, :meth:`_wait`, :meth:`_stop` (with
    :attr:`_acts_on_kill`) and ``execute_complete``.
    """

    name_xcom_key: ClassVar[str]
    target_type: ClassVar[Callable[..., Any]]
    """What the waiter waits for (``JobTarget``, ``WorkflowTarget``)."""

    # --- submit and wait ----------------------------------------------------------------------

    def _earlier_try(
        self, context: Context, namespace: str, key: TaskInstanceKey
    ) -> dict[str, Any] | None:
        """The object of an earlier try to wait for instead of creating one (see
        :mod:`~airflow_k8s_jobs.status.tries`), or None."""
        if key.try_number <= 1:
            return None
        found = list_tries(self._request, self.resource, namespace, key)
        automatic = is_automatic_retry(getattr(context["ti"], "max_tries", None), self.retries)
        adoption = earlier_try_to_adopt(
            self.resource.kind, found, key.try_number, automatic_retry=automatic
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
