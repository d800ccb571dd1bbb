"""The reconcile loop that drives every controller on the cluster's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Iterator, Mapping
from typing import Protocol

from ..clock import SimClock
from ..resources import ResourceType
from ..store import Store

log = logging.getLogger("simulated_k8s_cluster")


class Controller(Protocol):
    """One control loop. ``reconcile`` must be idempotent and write only on real change."""

    name: str
    # Optionally, ``watches``: the resource types whose changes the controller reads; it then
    # runs in the background loop only after changes of those (or at its wake-up instant).

    def reconcile(self) -> float | None:
        """Bring the store closer to the desired state.

        Returns the simulated instant (``clock.now()`` scale) at which it next needs to run
        even if nothing changes — a container finishing, a node becoming Ready — or None.
        """
        ...


class ControllerLoop:
    """Runs all controllers after every change and at the instants they asked for.

    :meth:`run_once` runs every controller until nothing changes (what ``settle()`` needs).
    The background loop (:meth:`run`) is lighter on the API server, which shares its event
    loop: it runs a controller only when something it reads changed (its ``watches``, by
    default every resource type) or its wake-up instant has come, and after a long pass it
    serves requests about as long before the next one (unless time is frozen). With time
    running, it lets the event loop serve watches and requests after each controller that
    wrote, as a real control plane's independent controllers do not wait for each other. With
    time frozen (``timeScale: 0``) a pass is never interrupted: a request is answered either
    before or after all controllers saw the state it found.
    """

    MAX_PASSES = 200
    REST_SHARE = 1.0
    """After a pass that took ``t`` wall seconds, wait ``REST_SHARE * t`` before the next."""
    MAX_REST = 0.5
    """... but never longer than this many wall seconds."""
    REST_AFTER = 0.1
    """Passes shorter than this many wall seconds need no rest."""

    def __init__(
        self,
        store: Store,
        clock: SimClock,
        controllers: list[Controller],
        watches: Mapping[str, Collection[ResourceType]] | None = None,
    ) -> None:
        """``watches`` names, per controller name, the resource types whose changes it reads
        (overriding a controller's own ``watches`` attribute)."""
        self.store = store
        self.clock = clock
        self.controllers = controllers
        self._kicked = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped = False
        self._watches: list[frozenset[ResourceType] | None] = []
        for controller in controllers:
            declared = (watches or {}).get(controller.name, getattr(controller, "watches", None))
            self._watches.append(None if declared is None else frozenset(declared))
        # Per controller: the store's resourceVersion when it last started, and its wake-up.
        self._ran_at: list[int | None] = [None] * len(controllers)
        self._wake: list[float | None] = [None] * len(controllers)
        store.add_listener(self.kick)

    def kick(self) -> None:
        """Ask for a reconcile pass soon (call on the loop thread)."""
        self._kicked.set()

    def stop(self) -> None:
        self._stopped = True
        self._stopping.set()
        self._kicked.set()

    def _reconcile(self, index: int) -> float | None:
        controller = self.controllers[index]
        self._ran_at[index] = self.store.resource_version
        try:
            wanted = controller.reconcile()
        except Exception:  # a broken controller must not stop the cluster
            log.exception("controller %s failed", controller.name)
            wanted = self.clock.now() + self.clock.scaled(1.0)
        self._wake[index] = wanted
        return wanted

    def _due(self, index: int, now: float) -> bool:
        """Whether something the controller reads changed since it last ran, or it asked to
        run by now."""
        ran_at = self._ran_at[index]
        if ran_at is None:
            return True
        wake = self._wake[index]
        if wake is not None and wake <= now:
            return True
        watches = self._watches[index]
        if watches is None:
            return self.store.resource_version > ran_at
        return any(self.store.last_write(resource) > ran_at for resource in watches)

    def _earliest_wake(self) -> float | None:
        wakes = [wake for wake in self._wake if wake is not None]
        return min(wakes) if wakes else None

    def run_once(self) -> float | None:
        """Reconcile until nothing changes; the earliest wake-up any controller asked for."""
        for _ in range(self.MAX_PASSES):
            before = self.store.resource_version
            for index in range(len(self.controllers)):
                self._reconcile(index)
            if self.store.resource_version == before:
                break
        return self._earliest_wake()

    def _due_steps(self) -> Iterator[None]:
        """Run the due controllers until nothing changes, pausing (a ``yield``) after each
        controller that wrote."""
        for _ in range(self.MAX_PASSES):
            before = self.store.resource_version
            for index in range(len(self.controllers)):
                if self._due(index, self.clock.now()):
                    written = self.store.resource_version
                    self._reconcile(index)
                    if self.store.resource_version != written:
                        yield
            if self.store.resource_version == before:
                break

    def run_due(self) -> float | None:
        """Like :meth:`run_once`, but only the controllers that are due."""
        for _ in self._due_steps():
            pass
        return self._earliest_wake()

    async def run_due_yielding(self) -> float | None:
        """Like :meth:`run_due`, but after each controller that wrote, let the event loop send
        the watch events and answer the requests that are waiting."""
        for _ in self._due_steps():
            await asyncio.sleep(0)
            if self._stopped:
                break
        return self._earliest_wake()

    async def run(self) -> None:
        while not self._stopped:
            self._kicked.clear()
            started = time.monotonic()
            if self.clock.time_scale > 0:
                wake_at = await self.run_due_yielding()
            else:
                wake_at = self.run_due()
            busy = time.monotonic() - started
            # With frozen time every pass follows its write at once, as tests rely on.
            if busy > self.REST_AFTER and self.clock.time_scale > 0 and not self._stopped:
                rest = min(busy * self.REST_SHARE, self.MAX_REST)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=rest)
            timeout = None
            if wake_at is not None:
                timeout = self.clock.wall_delay(max(0.0, wake_at - self.clock.now()))
                if timeout is not None:
                    timeout = max(timeout, 0.001)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._kicked.wait(), timeout=timeout)
