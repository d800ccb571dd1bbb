"""Everything the API server and the controllers of one simulated cluster share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .clock import SimClock
from .config import ClusterConfig
from .events import EventRecorder
from .faults import FaultPlan, RequestCounters
from .resources import ResourceRegistry, ResourceType
from .store import Store

Obj = dict[str, Any]


class LogSource(Protocol):
    """Where pod logs come from (the kubelet)."""

    def lines(
        self, pod: Obj, container: str | None, previous: bool
    ) -> tuple[list[tuple[float, str]], bool]:
        """``([(instant written, line), …], finished)`` for one container of a pod.

        Raises ``ApiError`` (400) when the container does not exist or has not started, with
        the API server's message.
        """
        ...


@dataclass
class ClusterState:
    config: ClusterConfig
    clock: SimClock
    registry: ResourceRegistry
    store: Store
    events: EventRecorder
    faults: FaultPlan = field(default_factory=FaultPlan)
    counters: RequestCounters = field(default_factory=RequestCounters)
    tokens: set[str] = field(default_factory=set)
    client_counters: dict[str, RequestCounters] = field(default_factory=dict)
    """Further valid tokens, each with the counters of the requests made with it."""
    log_source: LogSource | None = None
    create_mutators: dict[ResourceType, list[Callable[[Obj], None]]] = field(default_factory=dict)
    """Mutating admission on CREATE (what a mutating webhook does), per resource type."""

    def mutate_on_create(self, resource: ResourceType, obj: Obj) -> None:
        """Run the create mutators of ``resource`` on ``obj`` (before defaulting/validation)."""
        for mutate in self.create_mutators.get(resource, ()):
            mutate(obj)
