"""The shared watch hub: one list+watch per (cluster, namespace, resource) for every waiter.

Every trigger in a triggerer process (and the synchronous waiter in a worker) subscribes here
instead of polling. An :class:`Informer` lists once, then watches from the list's
``resourceVersion`` with bookmarks, resumes from the last version it saw when a stream ends,
lists again on ``410 Gone``, refreshes credentials once on ``401``, and backs off on 429/5xx and
broken connections as :class:`~airflow_k8s_jobs.retrying.RetryPolicy` says (jitter, at least the
server's ``Retry-After``), for as long as it has subscribers. Subscribers read its
cache and are woken when an object they care about changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import Expired, KubeApiError, TransientError, Unauthorized
from .kube import Resource, request, watch_lines
from .retrying import RetryPolicy

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class ClientSource(Protocol):
    """Gives the hub an async ApiClient for one cluster, and fresh credentials after a 401."""

    async def async_api_client(self) -> Any: ...

    async def arefresh_credentials(self, api_client: Any) -> None: ...


@dataclass(frozen=True)
class WatchKey:
    cluster: str
    namespace: str
    resource: Resource
    label_selector: str = ""


WATCH_RETRY = RetryPolicy(initial=0.5, cap=30.0)
"""How informers back off; they retry for as long as they have subscribers."""


Interest = Callable[[Resource, Obj], bool]


async def _wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Until ``event`` is set (True) or ``timeout`` seconds passed (False).

    Not ``asyncio.wait_for``: before Python 3.12 it swallows a cancellation that arrives as the
    event is set, and a cancelled trigger would then go on waiting.
    """
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()


@dataclass(eq=False)
class Subscription:
    """One waiter's view of a set of informers; woken when an object it cares about changes."""

    informers: dict[Resource, Informer]
    interest: Interest | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self, resource: Resource, obj: Obj | None) -> None:
        if obj is None or self.interest is None or self.interest(resource, obj):
            self._changed.set()

    async def wait_synced(self) -> None:
        """Until every informer has listed once (raises a permanent watch error)."""
        for informer in self.informers.values():
            await informer.wait_synced()

    async def changed(self, timeout: float | None = None) -> bool:
        """Wait for a relevant change (True) or the timeout (False); raises permanent errors."""
        for informer in self.informers.values():
            informer.raise_error()
        try:
            changed = await _wait_event(self._changed, timeout)
        finally:
            self._changed.clear()
        for informer in self.informers.values():
            informer.raise_error()
        return changed

    @property
    def api_client(self) -> Any:
        """The cluster's shared ApiClient (for requests beside the watches; not to be closed)."""
        return next(iter(self.informers.values())).api_client

    def get(self, resource: Resource, name: str) -> Obj | None:
        return self.informers[resource].objects.get(name)

    def select(self, resource: Resource, predicate: Callable[[Obj], bool]) -> list[Obj]:
        return [o for o in self.informers[resource].objects.values() if predicate(o)]


class Informer:
    """A cache of one (cluster, namespace, resource[, selector]) kept current by a watch."""

    WATCH_SECONDS = (240, 360)
    """Each watch request asks the server to end it after a random time in this range."""

    def __init__(
        self,
        key: WatchKey,
        clients: ClientSource,
        api_client: Any,
        policy: RetryPolicy = WATCH_RETRY,
    ) -> None:
        self.key = key
        self.clients = clients
        self.api_client = api_client
        self.objects: dict[str, Obj] = {}
        self.resource_version: str | None = None
        self.subscribers: set[Subscription] = set()
        self.lists = 0
        self.watches = 0
        self._synced = asyncio.Event()
        self._error: Exception | None = None
        self._task: asyncio.Task[None] | None = None
        self.policy = policy
        self._failures = 0  # failed attempts since the last event
        self._refreshed = False  # credentials reloaded since the last success

    @property
    def what(self) -> str:
        k = self.key
        return f"watching {k.resource.plural} in namespace {k.namespace} of cluster {k.cluster}"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.what)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_synced(self) -> None:
        while not self._synced.is_set():
            self.raise_error()
            await _wait_event(self._synced, 0.5)
        self.raise_error()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _notify(self, obj: Obj | None) -> None:
        for subscriber in list(self.subscribers):
            subscriber.notify(self.key.resource, obj)

    def _query(self) -> list[tuple[str, Any]]:
        query: list[tuple[str, Any]] = []
        if self.key.label_selector:
            query.append(("labelSelector", self.key.label_selector))
        return query

    async def _list(self) -> None:
        self.lists += 1
        path = self.key.resource.path(self.key.namespace)
        body = await request(self.api_client, "GET", path, query=self._query(), what=self.what)
        self.objects = {o["metadata"]["name"]: o for o in body.get("items") or []}
        self.resource_version = body["metadata"]["resourceVersion"]
        self._succeeded()
        self._synced.set()
        self._notify(None)

    async def _watch(self) -> None:
        self.watches += 1
        low, high = self.WATCH_SECONDS
        query = [
            *self._query(),
            ("resourceVersion", self.resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", self.policy.rng.randint(low, high)),
        ]
        path = self.key.resource.path(self.key.namespace)
        async for event in watch_lines(
            self.api_client, path, query, timeout=high + 30, what=self.what
        ):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 500)
                if code == 410:
                    raise Expired(f"{self.what}: {obj.get('message')}", 410, obj)
                raise TransientError(f"{self.what}: {obj.get('message')} (HTTP {code})")
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = rv
            if kind == "BOOKMARK":
                continue
            name = obj["metadata"]["name"]
            if kind == "DELETED":
                self.objects.pop(name, None)
            else:
                self.objects[name] = obj
            self._succeeded()
            self._notify(obj)
        self._succeeded()  # the server ended the stream: the credentials were good

    async def _run(self) -> None:
        while True:
            try:
                if self.resource_version is None:
                    await self._list()
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Expired:
                log.info("%s: resource version expired, listing again", self.what)
                self.resource_version = None
            except Unauthorized as exc:
                if self._refreshed:  # rejected again with fresh credentials: give up
                    self._fail(exc)
                    return
                log.info("%s: credentials rejected (401), refreshing them", self.what)
                self._refreshed = True
                try:
                    await self.clients.arefresh_credentials(self.api_client)
                except Exception as exc:
                    self._fail(exc)
                    return
            except TransientError as exc:
                self._failures += 1
                delay = self.policy.backoff(self._failures, exc.retry_after)
                log.warning("%s: %s; retrying in %.1fs", self.what, exc, delay)
                await self.policy.asleep(delay)
            except KubeApiError as exc:
                self._fail(exc)
                return
            except Exception as exc:  # never let a waiter hang on a dead informer
                log.exception("%s failed", self.what)
                self._fail(exc)
                return

    def _succeeded(self) -> None:
        self._failures = 0
        self._refreshed = False

    def _fail(self, exc: Exception) -> None:
        self._error = exc
        self._synced.set()
        self._notify(None)


class WatchHub:
    """All informers of one event loop, shared by every subscriber in it."""

    _hubs: dict[asyncio.AbstractEventLoop, WatchHub] = {}

    def __init__(self) -> None:
        self.informers: dict[WatchKey, Informer] = {}
        self._clients: dict[str, Any] = {}
        self._client_users: dict[str, int] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def current(cls) -> WatchHub:
        """The hub of the running event loop (one per triggerer process loop)."""
        loop = asyncio.get_running_loop()
        for stale in [lp for lp in cls._hubs if lp.is_closed()]:
            del cls._hubs[stale]
        hub = cls._hubs.get(loop)
        if hub is None:
            hub = cls._hubs[loop] = cls()
        return hub

    async def _client(self, cluster: str, clients: ClientSource) -> Any:
        if cluster not in self._clients:
            self._clients[cluster] = await clients.async_api_client()
            self._client_users[cluster] = 0
        return self._clients[cluster]

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        cluster: str,
        clients: ClientSource,
        namespace: str,
        resources: Iterable[Resource | tuple[Resource, str]],
        interest: Interest | None = None,
    ) -> AsyncIterator[Subscription]:
        """Share (or start) the informers for ``resources`` in one namespace of one cluster.

        A resource may come with a label selector: ``(PODS, "app=x")``.
        """
        async with self._lock:
            api_client = await self._client(cluster, clients)
            informers: dict[Resource, Informer] = {}
            for item in resources:
                resource, selector = item if isinstance(item, tuple) else (item, "")
                key = WatchKey(cluster, namespace, resource, selector)
                informer = self.informers.get(key)
                if informer is None:
                    informer = self.informers[key] = Informer(key, clients, api_client)
                    informer.start()
                informers[resource] = informer
            subscription = Subscription(informers, interest)
            for informer in informers.values():
                informer.subscribers.add(subscription)
            self._client_users[cluster] += 1
        try:
            yield subscription
        finally:
            await self._unsubscribe(cluster, subscription)

    async def _unsubscribe(self, cluster: str, subscription: Subscription) -> None:
        async with self._lock:
            for informer in subscription.informers.values():
                informer.subscribers.discard(subscription)
                if not informer.subscribers:
                    self.informers.pop(informer.key, None)
                    await informer.stop()
            self._client_users[cluster] -= 1
            if self._client_users[cluster] == 0:
                client = self._clients.pop(cluster)
                del self._client_users[cluster]
                close: Callable[[], Awaitable[None]] | None = getattr(client, "close", None)
                if close is not None:
                    await close()
