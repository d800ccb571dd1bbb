"""Node pools, the scheduler and the cluster autoscaler. Placeholder: being implemented."""

from __future__ import annotations

from ..state import ClusterState


class NodePoolManager:
    name = "node-pools"

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def reconcile(self) -> float | None:
        return None

    def lose_node(self, name: str) -> None:
        raise NotImplementedError


class Scheduler:
    name = "scheduler"

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def reconcile(self) -> float | None:
        return None


class ClusterAutoscaler:
    name = "cluster-autoscaler"

    def __init__(self, state: ClusterState, pools: NodePoolManager) -> None:
        self.state = state
        self.pools = pools

    def reconcile(self) -> float | None:
        return None
