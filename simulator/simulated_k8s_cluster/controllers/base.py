"""The reconcile loop that drives every controller on the cluster's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from ..clock import SimClock
from ..store import Store

log = logging.getLogger("simulated_k8s_cluster")


class Controller(Protocol):
    """One control loop. ``reconcile`` must be idempotent and write only on real change."""

    name: str

    def reconcile(self) -> float | None:
        """Bring the store closer to the desired state.

        Returns the simulated instant (``clock.now()`` scale) at which it next needs to run
        even if nothing changes — a container finishing, a node becoming Ready — or None.
        """
        ...


class ControllerLoop:
    """Runs all controllers after every change and at the instants they asked for."""

    MAX_PASSES = 200

    def __init__(self, store: Store, clock: SimClock, controllers: list[Controller]) -> None:
        self.store = store
        self.clock = clock
        self.controllers = controllers
        self._kicked = asyncio.Event()
        self._stopped = False
        store.add_listener(self.kick)

    def kick(self) -> None:
        """Ask for a reconcile pass soon (call on the loop thread)."""
        self._kicked.set()

    def stop(self) -> None:
        self._stopped = True
        self._kicked.set()

    def run_once(self) -> float | None:
        """Reconcile until nothing changes; the earliest wake-up any controller asked for."""
        wake_at: float | None = None
        for _ in range(self.MAX_PASSES):
            before = self.store.resource_version
            wake_at = None
            for controller in self.controllers:
                try:
                    wanted = controller.reconcile()
                except Exception:  # a broken controller must not stop the cluster
                    log.exception("controller %s failed", controller.name)
                    wanted = self.clock.now() + 1.0
                if wanted is not None and (wake_at is None or wanted < wake_at):
                    wake_at = wanted
            if self.store.resource_version == before:
                break
        return wake_at

    async def run(self) -> None:
        while not self._stopped:
            self._kicked.clear()
            wake_at = self.run_once()
            timeout = None
            if wake_at is not None:
                timeout = self.clock.wall_delay(max(0.0, wake_at - self.clock.now()))
                if timeout is not None:
                    timeout = max(timeout, 0.001)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._kicked.wait(), timeout=timeout)
