"""The Job controller (batch/v1). Placeholder: being implemented."""

from __future__ import annotations

from ..state import ClusterState


class JobController:
    name = "job-controller"

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def reconcile(self) -> float | None:
        return None
