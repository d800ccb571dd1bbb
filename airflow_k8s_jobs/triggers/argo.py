"""``ArgoWorkflowTrigger``: waits for an Argo Workflow through the shared watch hub."""

from __future__ import annotations

from typing import Any

from ..errors import NotFound
from ..kube import MERGE_PATCH, WORKFLOWS, request
from ..live_logs import DEFAULT_STREAMS
from ..manifests.workflows import shutdown_patch
from ..status.workflows import workflow_finished
from ..waiting import WorkflowTarget, wait_for_workflow
from .base import KillAwareTrigger


class ArgoWorkflowTrigger(KillAwareTrigger):
    """Fires once the Workflow has finished (or was deleted, or the task's deadline passed).

    :param cluster_conn_id: the cluster connection; credentials are resolved here, never stored
        in the trigger's arguments.
    :param cluster_name: how messages name the cluster.
    :param namespace: the Workflow's namespace.
    :param workflow_name: the Workflow's name.
    :param workflow_uid: its uid (a different Workflow of the same name counts as ours deleted).
    :param shutdown_on_kill: ``Terminate`` or ``Stop`` the Workflow when the task is killed while
        deferred; None leaves it running.
    :param deadline: epoch seconds by which the task must end (its ``execution_timeout``); the
        trigger then fires with status ``timeout`` and the operator stops the Workflow.
    :param live_log_streams: pods whose new ``main`` log lines go to the task log at once
        (0: none).
    """

    target_arguments = ("workflow_name", "workflow_uid")

    def __init__(
        self,
        cluster_conn_id: str,
        cluster_name: str,
        namespace: str,
        workflow_name: str,
        workflow_uid: str,
        shutdown_on_kill: str | None = "Terminate",
        deadline: float | None = None,
        live_log_streams: int = DEFAULT_STREAMS,
    ) -> None:
        super().__init__()
        self.target = WorkflowTarget(
            cluster_conn_id, cluster_name, namespace, workflow_name, workflow_uid
        )
        self.shutdown_on_kill = shutdown_on_kill
        self.deadline = deadline
        self.live_log_streams = live_log_streams
        self._fired = False

    @classmethod
    def for_target(
        cls,
        target: WorkflowTarget,
        *,
        shutdown_on_kill: str | None,
        deadline: float | None,
        live_log_streams: int = DEFAULT_STREAMS,
    ) -> ArgoWorkflowTrigger:
        """The trigger waiting for ``target``."""
        return cls(
            **cls.target_kwargs(target),
            shutdown_on_kill=shutdown_on_kill,
            deadline=deadline,
            live_log_streams=live_log_streams,
        )

    def arguments(self) -> dict[str, Any]:
        return {
            **self.target_kwargs(self.target),
            "shutdown_on_kill": self.shutdown_on_kill,
            "deadline": self.deadline,
            "live_log_streams": self.live_log_streams,
        }

    async def wait(self) -> dict[str, Any]:
        return await wait_for_workflow(
            self._hook(),
            self.target,
            self.log,
            self.deadline,
            live_log_streams=self.live_log_streams,
        )

    @property
    def act_on_kill(self) -> bool:
        return self.shutdown_on_kill is not None

    async def on_task_killed(self) -> None:
        await self.shutdown(self.shutdown_on_kill or "Terminate")

    async def shutdown(self, strategy: str) -> None:
        """Set ``spec.shutdown`` on the Workflow, if it is still ours and still running."""
        target = self.target
        path = WORKFLOWS.path(target.namespace, target.name)

        async def stop(client: Any) -> None:
            try:
                current = await request(client, "GET", path, what=f"reading {target.where}")
                if current["metadata"].get("uid") != target.uid or workflow_finished(current):
                    return
                self.log.info(
                    "Stopping %s with strategy %s (task killed while deferred).",
                    target.where,
                    strategy,
                )
                await request(
                    client,
                    "PATCH",
                    path,
                    body=shutdown_patch(strategy),
                    content_type=MERGE_PATCH,
                    what=f"stopping {target.where}",
                )
            except NotFound:
                pass

        await self.on_cluster("stop", stop)
