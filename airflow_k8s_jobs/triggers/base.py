"""What every trigger of this package shares: acting on the cluster when its task is killed.

A task killed while deferred must not leave its Job or Workflow running. Airflow >= 3.3 calls a
trigger's ``on_kill()`` only when a user kills the task; older versions call only
``cleanup()``, also when the triggerer merely restarts, so there the trigger first reads its task
instance's state and acts only once the try it waits for is over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

from asgiref.sync import sync_to_async

from .._compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS, BaseTrigger, TriggerEvent
from ..clusters import KubeClusterHook

TRY_GOES_ON = frozenset({"deferred", "scheduled", "queued", "running"})
"""States in which the try a trigger waits for is not over (it waits, or resumes)."""


class KillAwareTrigger(BaseTrigger):
    """A trigger that waits for ``self.target`` (a ``JobTarget``, a ``WorkflowTarget``) and
    calls :meth:`on_task_killed` when its task is killed while deferred.

    Subclasses implement :meth:`arguments` (what :meth:`serialize` stores), :meth:`wait` (the
    event's payload), :meth:`on_task_killed` and say whether they want it (:attr:`act_on_kill`).
    """

    target: Any
    target_arguments: ClassVar[tuple[str, str]]
    """The names of the arguments taking the target's name and uid (``job_name``, ...)."""
    _fired: bool = False

    @classmethod
    def target_kwargs(cls, target: Any) -> dict[str, Any]:
        """The arguments naming ``target`` (the connection, the cluster, where, which)."""
        name, uid = cls.target_arguments
        return {
            "cluster_conn_id": target.cluster_conn_id,
            "cluster_name": target.cluster_name,
            "namespace": target.namespace,
            name: target.name,
            uid: target.uid,
        }

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments that make this trigger again."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self.arguments()

    def _hook(self) -> KubeClusterHook:
        return KubeClusterHook(self.target.cluster_conn_id)

    async def wait(self) -> dict[str, Any]:
        """Wait for the target; the result is the event's payload."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        result = await self.wait()
        self._fired = True
        yield TriggerEvent(result)

    async def on_cluster(self, doing: str, action: Callable[[Any], Awaitable[None]]) -> None:
        """Run ``action(api_client)``; the task is being killed anyway: report, don't raise."""
        client = await self._hook().async_api_client()
        try:
            await action(client)
        except Exception as exc:
            self.log.warning("Could not %s %s: %s", doing, self.target.where, exc)
        finally:
            await client.close()

    @property
    def act_on_kill(self) -> bool:
        return True

    async def on_task_killed(self) -> None:
        """Stop or delete what the task was waiting for."""
        raise NotImplementedError

    async def on_kill(self) -> None:
        """Airflow >= 3.3 calls this only when a user kills the task."""
        if self.act_on_kill and not self._fired:
            await self.on_task_killed()

    async def cleanup(self) -> None:
        """Airflow < 3.3: act on a kill, but not when the triggerer merely restarts.

        The triggerer calls this whenever the trigger stops. Nothing is done while the try this
        trigger waits for goes on (still deferred, or resuming from an event another triggerer
        fired); :meth:`on_task_killed` runs once that try is over: marked failed or successful,
        timed out, or cleared (state None, or already scheduled again as the next try).
        """
        if AIRFLOW_V_3_3_PLUS or self._fired or not self.act_on_kill:
            return
        if self.task_instance is None:
            return
        try:
            state, try_number = await self._task_state()
        except Exception as exc:
            self.log.warning("Cannot tell whether the task was killed (%s); leaving it be.", exc)
            return
        same_try = try_number is None or try_number == self.task_instance.try_number
        if same_try and str(state) in TRY_GOES_ON:
            return
        await self.on_task_killed()

    async def _task_state(self) -> tuple[Any, int | None]:
        """The task instance's state in the database, and its try number when known."""
        ti = self.task_instance
        if ti is None:
            raise RuntimeError("the trigger was given no task instance")
        if AIRFLOW_V_3_0_PLUS:
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

            states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
                dag_id=ti.dag_id,
                task_ids=[ti.task_id],
                run_ids=[ti.run_id],
                map_index=ti.map_index,
            )
            key = f"{ti.task_id}_{ti.map_index}" if ti.map_index >= 0 else ti.task_id
            return states[ti.run_id][key], None

        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        def read_state() -> tuple[Any, int | None]:
            with create_session() as session:
                row = (
                    session.query(TaskInstance.state, TaskInstance.try_number)
                    .filter(
                        TaskInstance.dag_id == ti.dag_id,
                        TaskInstance.task_id == ti.task_id,
                        TaskInstance.run_id == ti.run_id,
                        TaskInstance.map_index == ti.map_index,
                    )
                    .one_or_none()
                )
                return (row[0], row[1]) if row else (None, None)

        return await sync_to_async(read_state)()
