"""The kubelet: runs scheduled pods by their behaviours. Placeholder: being implemented."""

from __future__ import annotations

from typing import Any

from ..resources import ApiError
from ..state import ClusterState


class Kubelet:
    name = "kubelet"

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def reconcile(self) -> float | None:
        return None

    def lines(self, pod: dict[str, Any], container: str | None, previous: bool
              ) -> tuple[list[tuple[float, str]], bool]:
        raise ApiError(400, "not implemented")

    def preempt(self, namespace: str, name: str) -> None:
        raise NotImplementedError

    def add_behaviour(self, rule: dict[str, Any]) -> None:
        raise NotImplementedError
