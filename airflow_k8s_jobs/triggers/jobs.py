"""``KubeJobTrigger``: waits for a Kubernetes Job through the shared watch hub."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async

from .._compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS, BaseTrigger, TriggerEvent
from ..clusters import KubeClusterHook
from ..kube import JOBS, request
from ..waiting import JobTarget, WaitPolicy, wait_for_job

log = logging.getLogger(__name__)


class KubeJobTrigger(BaseTrigger):
    """Fires once the Job's outcome is known (or it cannot run, or it waited too long).

    :param cluster_conn_id: the cluster connection; credentials are resolved here, never stored
        in the trigger's arguments.
    :param cluster_name: how messages name the cluster.
    :param namespace: the Job's namespace.
    :param job_name: the Job's name.
    :param job_uid: the Job's uid (a different Job of the same name counts as ours deleted).
    :param queued: the Job waits in a Kueue LocalQueue (also watch its Workload).
    :param capacity_timeout: seconds pods may wait for nodes or quota (None: for ever).
    :param image_pull_grace: seconds an image pull may keep failing.
    :param delete_on_kill: delete the Job (``Foreground``) when the task is killed while deferred.
    :param deadline: epoch seconds by which the task must end (its ``execution_timeout``); the
        trigger then fires with status ``timeout`` and the operator deletes the Job.
    """

    def __init__(
        self,
        cluster_conn_id: str,
        cluster_name: str,
        namespace: str,
        job_name: str,
        job_uid: str,
        queued: bool = False,
        capacity_timeout: float | None = 3600.0,
        image_pull_grace: float = 300.0,
        delete_on_kill: bool = True,
        deadline: float | None = None,
    ) -> None:
        super().__init__()
        self.target = JobTarget(cluster_conn_id, cluster_name, namespace, job_name, job_uid, queued)
        self.policy = WaitPolicy(capacity_timeout, image_pull_grace, deadline=deadline)
        self.delete_on_kill = delete_on_kill
        self._fired = False

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "cluster_conn_id": self.target.cluster_conn_id,
                "cluster_name": self.target.cluster_name,
                "namespace": self.target.namespace,
                "job_name": self.target.name,
                "job_uid": self.target.uid,
                "queued": self.target.queued,
                "capacity_timeout": self.policy.capacity_timeout,
                "image_pull_grace": self.policy.image_pull_grace,
                "delete_on_kill": self.delete_on_kill,
                "deadline": self.policy.deadline,
            },
        )

    def _hook(self) -> KubeClusterHook:
        return KubeClusterHook(self.target.cluster_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        result = await wait_for_job(self._hook(), self.target, self.policy, self.log)
        self._fired = True
        yield TriggerEvent(result)

    async def delete_job(self) -> None:
        """Delete the Job and its pods (``Foreground``), if it is still ours."""
        hook = self._hook()
        client = await hook.async_api_client()
        try:
            body = {"propagationPolicy": "Foreground", "preconditions": {"uid": self.target.uid}}
            self.log.info("Deleting %s (task killed while deferred).", self.target.where)
            await request(
                client,
                "DELETE",
                JOBS.path(self.target.namespace, self.target.name),
                body=body,
                what=f"deleting {self.target.where}",
            )
        except Exception as exc:  # the task is being killed anyway: report, don't raise
            self.log.warning("Could not delete %s: %s", self.target.where, exc)
        finally:
            await client.close()

    async def on_kill(self) -> None:
        """Airflow >= 3.3 calls this only when a user kills the task."""
        if self.delete_on_kill and not self._fired:
            await self.delete_job()

    async def cleanup(self) -> None:
        """Airflow < 3.3: delete on a kill, but not when the triggerer merely restarts.

        The triggerer calls this whenever the trigger stops. The Job is kept while the try this
        trigger waits for goes on (still deferred, or resuming from an event another triggerer
        fired); it is deleted once that try is over: marked failed or successful, timed out,
        or cleared (state None, or already scheduled again as the next try).
        """
        if AIRFLOW_V_3_3_PLUS or self._fired or not self.delete_on_kill:
            return
        if self.task_instance is None:
            return
        try:
            state, try_number = await self._task_state()
        except Exception as exc:
            self.log.warning("Cannot tell whether the task was killed (%s); keeping the Job.", exc)
            return
        same_try = try_number is None or try_number == self.task_instance.try_number
        if same_try and str(state) in _TRY_GOES_ON:
            return
        await self.delete_job()

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


_TRY_GOES_ON = frozenset({"deferred", "scheduled", "queued", "running"})
"""States in which the try a trigger waits for is not over (it waits, or resumes)."""
