"""``ArgoWorkflowTrigger``: waits for an Argo Workflow through the shared watch hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .._compat import TriggerEvent
from ..clusters import KubeClusterHook
from ..errors import NotFound
from ..kube import MERGE_PATCH, WORKFLOWS, request
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
    """

    def __init__(
        self,
        cluster_conn_id: str,
        cluster_name: str,
        namespace: str,
        workflow_name: str,
        workflow_uid: str,
        shutdown_on_kill: str | None = "Terminate",
        deadline: float | None = None,
    ) -> None:
        super().__init__()
        self.target = WorkflowTarget(
            cluster_conn_id, cluster_name, namespace, workflow_name, workflow_uid
        )
        self.shutdown_on_kill = shutdown_on_kill
        self.deadline = deadline
        self._fired = False

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "cluster_conn_id": self.target.cluster_conn_id,
                "cluster_name": self.target.cluster_name,
                "namespace": self.target.namespace,
                "workflow_name": self.target.name,
                "workflow_uid": self.target.uid,
                "shutdown_on_kill": self.shutdown_on_kill,
                "deadline": self.deadline,
            },
        )

    def _hook(self) -> KubeClusterHook:
        return KubeClusterHook(self.target.cluster_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        result = await wait_for_workflow(self._hook(), self.target, self.log, self.deadline)
        self._fired = True
        yield TriggerEvent(result)

    @property
    def act_on_kill(self) -> bool:
        return self.shutdown_on_kill is not None

    async def on_task_killed(self) -> None:
        await self.shutdown(self.shutdown_on_kill or "Terminate")

    async def shutdown(self, strategy: str) -> None:
        """Set ``spec.shutdown`` on the Workflow, if it is still ours and still running."""
        target = self.target
        client = await self._hook().async_api_client()
        path = WORKFLOWS.path(target.namespace, target.name)
        try:
            current = await request(client, "GET", path, what=f"reading {target.where}")
            if current["metadata"].get("uid") != target.uid or workflow_finished(current):
                return
            self.log.info(
                "Stopping %s with strategy %s (task killed while deferred).", target.where, strategy
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
        except Exception as exc:  # the task is being killed anyway: report, don't raise
            self.log.warning("Could not stop %s: %s", target.where, exc)
        finally:
            await client.close()
