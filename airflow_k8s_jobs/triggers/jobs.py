"""``KubeJobTrigger``: waits for a Kubernetes Job through the shared watch hub."""

from __future__ import annotations

from typing import Any

from ..kube import JOBS, request
from ..live_logs import DEFAULT_STREAMS
from ..waiting import JobTarget, WaitPolicy, wait_for_job
from .base import KillAwareTrigger


class KubeJobTrigger(KillAwareTrigger):
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
    :param live_log_streams: containers whose new log lines go to the task log at once (0: none).
    :param delete_on_kill: delete the Job (``Foreground``) when the task is killed while deferred.
    :param deadline: epoch seconds by which the task must end (its ``execution_timeout``); the
        trigger then fires with status ``timeout`` and the operator deletes the Job.
    """

    target_arguments = ("job_name", "job_uid")

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
        live_log_streams: int = DEFAULT_STREAMS,
        delete_on_kill: bool = True,
        deadline: float | None = None,
    ) -> None:
        super().__init__()
        self.target = JobTarget(cluster_conn_id, cluster_name, namespace, job_name, job_uid, queued)
        self.policy = WaitPolicy(
            capacity_timeout, image_pull_grace, deadline=deadline, live_log_streams=live_log_streams
        )
        self.delete_on_kill = delete_on_kill
        self._fired = False

    @classmethod
    def for_target(
        cls, target: JobTarget, policy: WaitPolicy, *, delete_on_kill: bool
    ) -> KubeJobTrigger:
        """The trigger waiting for ``target`` with ``policy``."""
        return cls(**cls._kwargs(target, policy, delete_on_kill))

    @classmethod
    def _kwargs(cls, target: JobTarget, policy: WaitPolicy, delete_on_kill: bool) -> dict[str, Any]:
        return {
            **cls.target_kwargs(target),
            "queued": target.queued,
            "capacity_timeout": policy.capacity_timeout,
            "image_pull_grace": policy.image_pull_grace,
            "live_log_streams": policy.live_log_streams,
            "delete_on_kill": delete_on_kill,
            "deadline": policy.deadline,
        }

    def arguments(self) -> dict[str, Any]:
        return self._kwargs(self.target, self.policy, self.delete_on_kill)

    async def wait(self) -> dict[str, Any]:
        return await wait_for_job(self._hook(), self.target, self.policy, self.log)

    @property
    def act_on_kill(self) -> bool:
        return self.delete_on_kill

    async def on_task_killed(self) -> None:
        await self.delete_job()

    async def delete_job(self) -> None:
        """Delete the Job and its pods (``Foreground``), if it is still ours."""
        target = self.target

        async def delete(client: Any) -> None:
            self.log.info("Deleting %s (task killed while deferred).", target.where)
            await request(
                client,
                "DELETE",
                JOBS.path(target.namespace, target.name),
                body={"propagationPolicy": "Foreground", "preconditions": {"uid": target.uid}},
                what=f"deleting {target.where}",
            )

        await self.on_cluster("delete", delete)
