"""The shared watch hub: one watch per (cluster, namespace, resource) for every waiter, or per
(cluster, resource) once waiters wait in several namespaces.

Every trigger in a triggerer process (and the synchronous waiter in a worker) subscribes here
instead of polling. It reads an :class:`Informer`: the indexed cache of one namespace's objects
of one resource. A :class:`Feed` keeps caches current: it reads the current state once, then
watches from its ``resourceVersion`` with bookmarks, resumes from the last version it saw when
a stream ends, reads the state again on ``410 Gone``, refreshes credentials once on ``401``, and
backs off on 429/5xx and broken connections as :class:`~airflow_k8s_jobs.retrying.RetryPolicy`
says (jitter, at least the server's ``Retry-After``), for as long as its caches have
subscribers. A ``403`` right after failed attempts (the API server was unreachable) is retried
a few times too: a kube-apiserver that has just restarted serves before its authorizer has
loaded the RBAC rules, and for a moment forbids what they allow; any other ``403`` fails the
waiters at once.

Where the API server allows it (its ``WatchList`` feature, on by default in Kubernetes 1.32
and from 1.34), the state comes as the first events of the watch itself
(``sendInitialEvents=true``, ended by a bookmark annotated ``k8s.io/initial-events-end``), as
client-go's reflector does: one request instead of a list and a watch, and the objects arrive
one at a time instead of in one large body. A server that refuses it (422) is asked with a list
from then on.

The cache is indexed (like client-go's indexers, see :data:`INDEXERS`): by owner uid, Job
name, Kueue Job uid and an Event's involved object. A subscriber registers the index keys it
follows (:meth:`Subscription.follow`); a change wakes only the subscribers following one of
the changed object's keys (dictionary lookups, whatever the number of subscribers), and
subscribers read through the indexes (:meth:`Subscription.indexed`) instead of scanning.

A feed watches one namespace, or all of them (``WatchKey.namespace == ""``): with the
connection's ``watch_scope`` ``auto``, the second namespace of a cluster that waiters wait in
starts one feed of all namespaces per resource, which takes the first namespace's cache over
once it has read the state (that namespace's feed then stops), and serves every later namespace
without a request. The caches stay per namespace, so waiters in one namespace are never woken
by another's changes. Where the API server forbids watching across namespaces (RoleBindings
only), the feed of all namespaces hands each cache to a feed of its namespace, and the hub does
not ask again while it knows the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import Expired, Forbidden, KubeApiError, TransientError, Unauthorized
from .kube import Resource, WatchScope, request, watch_lines
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
    field_selector: str = ""


Watched = Resource | tuple[Resource, str] | tuple[Resource, str, str]
"""What a subscription watches: a resource, or ``(resource, label selector[, field
selector])``."""


WATCH_RETRY = RetryPolicy(initial=0.5, cap=30.0, forbidden_after_outage=5)
"""How informers back off; they retry for as long as they have subscribers (and five 403s
right after failed attempts: with this backoff, several seconds for a restarted API server's
authorizer to catch up)."""


Interest = Callable[[Resource, Obj], bool]

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
KUEUE_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"

BY_NAME = "name"
"""``metadata.name``."""
BY_OWNER_UID = "owner-uid"
"""The uids of ``metadata.ownerReferences`` and the ``batch.kubernetes.io/controller-uid`` label."""
BY_JOB_NAME = "job-name"
"""The ``batch.kubernetes.io/job-name`` label."""
BY_KUEUE_JOB_UID = "kueue-job-uid"
"""The ``kueue.x-k8s.io/job-uid`` label (a Kueue Workload's Job)."""
BY_INVOLVED_UID = "involved-uid"
"""An Event's ``involvedObject.uid`` (``regarding.uid`` for events.k8s.io/v1)."""
BY_INVOLVED_NAME = "involved-name"
"""An Event's ``involvedObject.name`` (``regarding.name`` for events.k8s.io/v1)."""


def _labels(obj: Obj) -> dict[str, Any]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _involved(obj: Obj) -> dict[str, Any]:
    return obj.get("involvedObject") or obj.get("regarding") or {}


def _owner_uids(obj: Obj) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    uids = [str(r["uid"]) for r in refs if r.get("uid")]
    label = _labels(obj).get(JOB_UID_LABEL)
    if label and label not in uids:
        uids.append(str(label))
    return uids


def _one(value: Any) -> list[str]:
    return [str(value)] if value else []


INDEXERS: dict[str, Callable[[Obj], list[str]]] = {
    BY_NAME: lambda o: _one((o.get("metadata") or {}).get("name")),
    BY_OWNER_UID: _owner_uids,
    BY_JOB_NAME: lambda o: _one(_labels(o).get(JOB_NAME_LABEL)),
    BY_KUEUE_JOB_UID: lambda o: _one(_labels(o).get(KUEUE_JOB_UID_LABEL)),
    BY_INVOLVED_UID: lambda o: _one(_involved(o).get("uid")),
    BY_INVOLVED_NAME: lambda o: _one(_involved(o).get("name")),
}
"""The index functions every informer keeps: index name -> the keys of one object."""


def slim(obj: Obj, resource: Resource) -> Obj:
    """What the cache keeps of an object (client-go informers' "transform"): without what no
    waiter reads and a busy namespace has thousands of.

    ``managedFields`` keep only their times (the cluster's clock, see ``status.newest_time``);
    a Job keeps no pod template (its pods are watched themselves); a pod keeps no volumes,
    tolerations or affinity, and its containers no command, environment, mounts or probes
    (their names, images and the pod's status are what is read).
    """
    meta = obj.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields"):
        meta["managedFields"] = [
            {"time": entry["time"]}
            for entry in meta["managedFields"]
            if isinstance(entry, dict) and entry.get("time")
        ]
    spec = obj.get("spec")
    if resource.kind == "Job" and isinstance(spec, dict):
        spec.pop("template", None)
    elif resource.kind == "Pod" and isinstance(spec, dict):
        for key in _UNREAD_POD_SPEC:
            spec.pop(key, None)
        containers = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
        for container in containers:
            if isinstance(container, dict):
                for key in _UNREAD_CONTAINER_SPEC:
                    container.pop(key, None)
    return obj


_UNREAD_POD_SPEC = ("volumes", "tolerations", "affinity", "topologySpreadConstraints")
_UNREAD_CONTAINER_SPEC = (
    "command",
    "args",
    "env",
    "envFrom",
    "volumeMounts",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "securityContext",
)


IndexKey = tuple[str, str]
"""``(index name, key)``."""


INITIAL_EVENTS_END = "k8s.io/initial-events-end"
"""The annotation of the bookmark that ends a watch's initial state."""


@dataclass
class ServerFeatures:
    """What one cluster's API server was found to support (shared by its informers)."""

    watch_list: bool = True
    """Watches may begin with the current state (``sendInitialEvents``); False once refused."""
    cluster_refused: set[tuple[Resource, str, str]] = field(default_factory=set)
    """The (resource, selectors) these credentials may not watch in all namespaces."""


def refuses_watch_list(exc: KubeApiError) -> bool:
    """Whether ``exc`` is an API server refusing ``sendInitialEvents`` on a watch: its
    ``WatchList`` feature is off (Kubernetes 1.33, before 1.32), or it predates it."""
    message = str(exc)
    return exc.code in (400, 422) and (
        "sendInitialEvents" in message or "resourceVersionMatch" in message
    )


def index_keys(obj: Obj) -> set[IndexKey]:
    """Every ``(index, key)`` pair ``obj`` is filed under."""
    return {(index, key) for index, keys_of in INDEXERS.items() for key in keys_of(obj)}


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


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


@dataclass(eq=False)
class Subscription:
    """One waiter's view of a set of informers; woken when an object it cares about changes.

    Of a resource whose index keys it follows (:meth:`follow`), a subscription is woken only by
    changes to objects filed under one of them. Of a resource it follows no key of, it is woken
    by every change its ``interest`` accepts (every change without one). A list (the first, or
    again after ``410 Gone``) or a permanent error wakes every subscriber.
    """

    informers: dict[Resource, Informer]
    interest: Interest | None = None
    _changed: bool = False
    _waiter: asyncio.Future[None] | None = None
    """What :meth:`changed` awaits: a plain future, not a task (thousands of waiters)."""
    _following: set[tuple[Resource, str, str]] = field(default_factory=set)
    wakeups: int = 0
    """How many times a change woke this subscription (a set flag counts again)."""
    timeout: float | None = None
    """The timeout of the current (or last) :meth:`changed`: None waits for a change only."""

    def notify(self, resource: Resource, obj: Obj | None) -> None:
        if obj is None or self.interest is None or self.interest(resource, obj):
            self.wakeups += 1
            self._changed = True
            _wake(self._waiter)

    def follow(self, resource: Resource, index: str, key: str) -> None:
        """Be woken by changes to ``resource`` objects filed under ``key`` in ``index``."""
        item = (resource, index, key)
        if item not in self._following:
            self._following.add(item)
            self.informers[resource].route(self, index, key)

    def unfollow_all(self) -> None:
        """Stop following every key (when the subscription ends)."""
        for resource, index, key in self._following:
            self.informers[resource].unroute(self, index, key)
        self._following.clear()

    def follows(self, resource: Resource) -> bool:
        """Whether the subscription follows keys of ``resource`` (else it hears every change)."""
        return any(r == resource for r, _, _ in self._following)

    async def wait_synced(self) -> None:
        """Until every informer has listed once (raises a permanent watch error)."""
        for informer in self.informers.values():
            await informer.wait_synced()

    async def changed(self, timeout: float | None = None) -> bool:
        """Wait for a relevant change (True) or the timeout (False; None waits for ever);
        raises permanent errors."""
        for informer in self.informers.values():
            informer.raise_error()
        self.timeout = timeout
        try:
            if not self._changed:
                loop = asyncio.get_running_loop()
                self._waiter = waiter = loop.create_future()
                timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
                try:
                    await waiter
                finally:
                    self._waiter = None
                    if timer is not None:
                        timer.cancel()
            changed = self._changed
        finally:
            self._changed = False
        for informer in self.informers.values():
            informer.raise_error()
        return changed

    @property
    def api_client(self) -> Any:
        """The cluster's shared ApiClient (for requests beside the watches; not to be closed)."""
        return next(iter(self.informers.values())).api_client

    def get(self, resource: Resource, name: str) -> Obj | None:
        return self.informers[resource].objects.get(name)

    def indexed(self, resource: Resource, index: str, key: str) -> list[Obj]:
        """The cached ``resource`` objects filed under ``key`` in ``index`` (a lookup)."""
        return self.informers[resource].by_index(index, key)

    def indexed_any(self, resource: Resource, index: str, keys: Iterable[str]) -> list[Obj]:
        """The cached objects filed under any of ``keys`` in ``index``, in the cache's order."""
        return self.informers[resource].by_index_keys(index, keys)

    def select(self, resource: Resource, predicate: Callable[[Obj], bool]) -> list[Obj]:
        """The cached objects ``predicate`` accepts (a scan: prefer :meth:`indexed`)."""
        return [o for o in self.informers[resource].objects.values() if predicate(o)]


class Informer:
    """The cache of one (cluster, namespace, resource[, selectors]), with its indexes and its
    subscribers, kept current by its :class:`Feed` (a watch of that namespace, or one watch of
    every namespace that the caches of all namespaces share)."""

    def __init__(self, key: WatchKey, api_client: Any = None) -> None:
        self.key = key
        self.api_client = api_client
        self.feed: Feed | None = None
        """What keeps the cache current (None: nothing yet)."""
        self.objects: dict[str, Obj] = {}
        self.subscribers: set[Subscription] = set()
        self._indexes: dict[IndexKey, dict[str, Obj]] = {}
        """(index, key) -> the objects filed there, by name."""
        self._keys: dict[str, set[IndexKey]] = {}
        """name -> the (index, key) pairs its cached object is filed under."""
        self._routes: dict[IndexKey, set[Subscription]] = {}
        """(index, key) -> the subscribers following it."""
        self._hear_all: set[Subscription] = set()
        """Subscribers that follow no key: every change is offered to them."""
        self._order: dict[str, int] = {}
        """name -> when the object entered the cache (the order of :attr:`objects`)."""
        self._next = 0
        self.deliveries = 0
        """Changes offered to subscribers: routed wake-ups plus ``interest`` questions."""
        self._synced = asyncio.Event()
        self._error: Exception | None = None

    @property
    def syncs(self) -> int:
        """Full reads of the state by the feed (a list, or a watch that began with it)."""
        return self.feed.syncs if self.feed is not None else 0

    @property
    def watches(self) -> int:
        """Watch requests of the feed."""
        return self.feed.watches if self.feed is not None else 0

    @property
    def resource_version(self) -> str | None:
        """Where the feed's watch resumes from (None before it has read the state)."""
        return self.feed.resource_version if self.feed is not None else None

    @property
    def what(self) -> str:
        if self.feed is not None:
            return self.feed.what
        k = self.key
        return f"watching {k.resource.plural} in namespace {k.namespace} of cluster {k.cluster}"

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        while not self._synced.is_set():
            self.raise_error()
            await _wait_event(self._synced, 0.5)
        self.raise_error()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def add_subscriber(self, subscriber: Subscription) -> None:
        self.subscribers.add(subscriber)
        if not subscriber.follows(self.key.resource):
            self._hear_all.add(subscriber)

    def remove_subscriber(self, subscriber: Subscription) -> None:
        self.subscribers.discard(subscriber)
        self._hear_all.discard(subscriber)

    def route(self, subscriber: Subscription, index: str, key: str) -> None:
        """Wake ``subscriber`` on changes to objects filed under ``key`` in ``index``."""
        self._routes.setdefault((index, key), set()).add(subscriber)
        self._hear_all.discard(subscriber)

    def unroute(self, subscriber: Subscription, index: str, key: str) -> None:
        routed = self._routes.get((index, key))
        if routed is not None:
            routed.discard(subscriber)
            if not routed:
                del self._routes[(index, key)]

    def by_index(self, index: str, key: str) -> list[Obj]:
        """The cached objects filed under ``key`` in ``index``."""
        if index == BY_NAME:
            obj = self.objects.get(key)
            return [] if obj is None else [obj]
        return list(self._indexes.get((index, key), {}).values())

    def by_index_keys(self, index: str, keys: Iterable[str]) -> list[Obj]:
        """The cached objects filed under any of ``keys`` in ``index``, each once, in the
        cache's order."""
        found: dict[str, Obj] = {}
        for key in keys:
            found.update(self._indexes.get((index, key), {}))
        return sorted(found.values(), key=lambda o: self._order[o["metadata"]["name"]])

    def _store(self, name: str, obj: Obj | None) -> set[IndexKey]:
        """Put (or with None, drop) ``name``'s object; the index keys of its old and new
        versions. Objects keep their place in the cache and in each index while they exist."""
        old = self._keys.pop(name, set())
        new = set() if obj is None else index_keys(obj)
        for index_key in old - new:
            filed = self._indexes.get(index_key)
            if filed is not None:
                filed.pop(name, None)
                if not filed:
                    del self._indexes[index_key]
        if obj is None:
            self.objects.pop(name, None)
            self._order.pop(name, None)
            return old
        if name not in self._order:
            self._order[name] = self._next
            self._next += 1
        self.objects[name] = obj
        for index_key in new:
            self._indexes.setdefault(index_key, {})[name] = obj
        self._keys[name] = new
        return old | new

    def replace(self, objects: Iterable[Obj], slimmed: bool = False) -> None:
        """Cache ``objects`` (the whole state) in place of everything, and wake every
        subscriber."""
        self.objects, self._indexes, self._keys, self._order = {}, {}, {}, {}
        for obj in objects:
            self._store(obj["metadata"]["name"], obj if slimmed else slim(obj, self.key.resource))
        self._error = None
        self._synced.set()
        self._notify(None)

    def apply(self, kind: str, obj: Obj) -> None:
        """Apply one watch event (``ADDED``, ``MODIFIED``, ``DELETED``) to the cache, and wake
        the subscribers following the keys of the object's old or new version."""
        name = obj["metadata"]["name"]
        keys = self._store(name, None if kind == "DELETED" else slim(obj, self.key.resource))
        if kind == "DELETED":
            keys |= index_keys(obj)
        self._notify(obj, keys)

    def fail(self, exc: Exception) -> None:
        """The feed gave up: every subscriber wakes and raises ``exc``."""
        self._error = exc
        self._synced.set()
        self._notify(None)

    def _notify(self, obj: Obj | None, keys: set[IndexKey] | None = None) -> None:
        """Wake the subscribers following one of ``keys`` (and those following none); with
        ``obj`` None (a list, an error) wake every subscriber."""
        resource = self.key.resource
        if obj is None:
            self.deliveries += len(self.subscribers)
            for subscriber in list(self.subscribers):
                subscriber.notify(resource, None)
            return
        woken: set[Subscription] = set()
        for index_key in keys or ():
            routed = self._routes.get(index_key)
            if routed:
                woken |= routed
        self.deliveries += len(woken) + len(self._hear_all)
        for subscriber in woken:
            subscriber.notify(resource, None)  # it follows one of the object's keys
        for subscriber in list(self._hear_all):
            subscriber.notify(resource, obj)


def _namespace_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


class Feed:
    """One watch (list+watch, resumed and retried) that keeps caches current: the cache of
    its one namespace, or with ``key.namespace == ""`` the caches of every namespace.

    A feed of every namespace keeps the objects of namespaces nobody waits in too (they are
    what a later waiter there starts from), and may *adopt* caches that feeds of single
    namespaces keep current until it has read the state itself: then it replaces their content
    and ``on_synced`` is told which feeds it took over from (to stop them). A ``403`` it cannot
    retry goes to ``on_forbidden`` (to watch each namespace instead) instead of failing its
    waiters.
    """

    WATCH_SECONDS = (240, 360)
    """Each watch request asks the server to end it after a random time in this range."""

    def __init__(
        self,
        key: WatchKey,
        clients: ClientSource,
        api_client: Any,
        policy: RetryPolicy = WATCH_RETRY,
        server: ServerFeatures | None = None,
        on_synced: Callable[[Feed, set[Feed]], None] | None = None,
        on_forbidden: Callable[[Feed, Forbidden], None] | None = None,
    ) -> None:
        self.key = key
        self.clients = clients
        self.api_client = api_client
        self.server = server or ServerFeatures()
        self.policy = policy
        self.caches: dict[str, Informer] = {}
        """namespace -> its cache (the one namespace of a namespace's feed)."""
        self.resource_version: str | None = None
        self.syncs = 0
        """Full reads of the state: a list, or a watch that began with the state."""
        self.watches = 0
        self.on_synced = on_synced
        self.on_forbidden = on_forbidden
        self._synced = False
        self._error: Exception | None = None
        self._task: asyncio.Task[None] | None = None
        self._failures = 0  # failed attempts since the last event
        self._refreshed = False  # credentials reloaded since the last success
        self._forbidden = 0  # 403s retried since the last success

    @property
    def every_namespace(self) -> bool:
        """Whether this feed watches all namespaces with one watch."""
        return not self.key.namespace

    @property
    def what(self) -> str:
        k = self.key
        where = f"namespace {k.namespace}" if k.namespace else "all namespaces"
        return f"watching {k.resource.plural} in {where} of cluster {k.cluster}"

    def cache(self, namespace: str) -> Informer:
        """The cache of ``namespace`` this feed keeps current (created when missing: empty and
        current at once when the feed watches every namespace and has read the state)."""
        informer = self.caches.get(namespace)
        if informer is None:
            informer = Informer(dataclasses.replace(self.key, namespace=namespace), self.api_client)
            informer.feed = self
            self.caches[namespace] = informer
            if self._error is not None:
                informer.fail(self._error)
            elif self._synced:
                informer.replace(())  # it has seen every namespace: none of its objects here
        return informer

    def adopt(self, informer: Informer) -> None:
        """Keep ``informer`` current from the state this feed reads next (its own feed keeps
        it current until then)."""
        self.caches[informer.key.namespace] = informer

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.what)

    def cancel(self) -> None:
        """Stop watching (without waiting for the request to end)."""
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def replace(self, objects: Iterable[Obj], slimmed: bool = False) -> None:
        """Make ``objects`` (the whole state) the content of every cache this feed keeps,
        and take over the adopted ones."""
        grouped: dict[str, list[Obj]] = {ns: [] for ns in self.caches}
        if self.every_namespace:
            for obj in objects:
                grouped.setdefault(_namespace_of(obj), []).append(obj)
        else:
            grouped[self.key.namespace] = list(objects)
        previous: set[Feed] = set()
        for namespace, found in grouped.items():
            informer = self.caches.get(namespace)
            if informer is None:
                informer = self.caches[namespace] = Informer(
                    dataclasses.replace(self.key, namespace=namespace), self.api_client
                )
            elif informer.feed is not None and informer.feed is not self:
                previous.add(informer.feed)
            informer.feed = self
            informer.replace(found, slimmed)
        self._synced = True
        if previous and self.on_synced is not None:
            self.on_synced(self, previous)

    def apply(self, kind: str, obj: Obj) -> None:
        namespace = _namespace_of(obj) if self.every_namespace else self.key.namespace
        informer = self.cache(namespace)
        if informer.feed is self:
            informer.apply(kind, obj)

    def _query(self) -> list[tuple[str, Any]]:
        query: list[tuple[str, Any]] = []
        if self.key.label_selector:
            query.append(("labelSelector", self.key.label_selector))
        if self.key.field_selector:
            query.append(("fieldSelector", self.key.field_selector))
        return query

    def _path(self) -> str:
        return self.key.resource.path(self.key.namespace or None)

    async def _list(self) -> None:
        self.syncs += 1
        body = await request(
            self.api_client, "GET", self._path(), query=self._query(), what=self.what
        )
        self.resource_version = body["metadata"]["resourceVersion"]
        self._succeeded()
        self.replace(body.get("items") or [])

    async def _watch(self) -> None:
        """Watch from :attr:`resource_version`; without one, a watch that begins with the
        current state (``sendInitialEvents``), which it caches once the server marks its end."""
        self.watches += 1
        low, high = self.WATCH_SECONDS
        initial: dict[tuple[str, str], Obj] | None = None  # the state while it arrives, slimmed
        if self.resource_version is None:
            self.syncs += 1
            initial = {}
            since = [("sendInitialEvents", "true"), ("resourceVersionMatch", "NotOlderThan")]
        else:
            since = [("resourceVersion", self.resource_version)]
        query = [
            *self._query(),
            *since,
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", self.policy.rng.randint(low, high)),
        ]
        async for event in watch_lines(
            self.api_client, self._path(), query, timeout=high + 30, what=self.what
        ):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 500)
                if code == 410:
                    raise Expired(f"{self.what}: {obj.get('message')}", 410, obj)
                raise TransientError(f"{self.what}: {obj.get('message')} (HTTP {code})")
            metadata = obj.get("metadata") or {}
            if initial is not None:
                # An object's own resourceVersion is no place to resume from until the
                # state has ended: only the bookmark that ends it is.
                if kind != "BOOKMARK":
                    name = (_namespace_of(obj), metadata["name"])
                    if kind == "DELETED":
                        initial.pop(name, None)
                    else:
                        initial[name] = slim(obj, self.key.resource)
                elif (metadata.get("annotations") or {}).get(INITIAL_EVENTS_END) == "true":
                    self.resource_version = metadata["resourceVersion"]
                    self._succeeded()
                    self.replace(initial.values(), slimmed=True)
                    initial = None
                continue
            rv = metadata.get("resourceVersion")
            if rv:
                self.resource_version = rv
            if kind == "BOOKMARK":
                continue
            self._succeeded()
            self.apply(str(kind), obj)
        if initial is not None:
            # The stream ended before the state did: a server (or a proxy) that ignores
            # sendInitialEvents. Read the state with a list from now on.
            log.info("%s: the watch sent no end of its initial state; listing", self.what)
            self.server.watch_list = False
            return
        self._succeeded()  # the server ended the stream: the credentials were good

    async def _run(self) -> None:
        while True:
            try:
                if self.resource_version is None and not self.server.watch_list:
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
                # The error names the watch already.
                log.warning("%s; retrying in %.1fs", exc, delay)
                await self.policy.asleep(delay)
            except Forbidden as exc:
                if not self._failures or self._forbidden >= self.policy.forbidden_after_outage:
                    self._fail(exc)
                    return
                self._forbidden += 1
                self._failures += 1
                delay = self.policy.backoff(self._failures, exc.retry_after)
                log.warning(
                    "%s (HTTP 403) right after the API server was unreachable: a restarted "
                    "API server may not have loaded its RBAC rules yet; retrying in %.1fs",
                    exc,
                    delay,
                )
                await self.policy.asleep(delay)
            except KubeApiError as exc:
                initial = self.resource_version is None and self.server.watch_list
                if initial and refuses_watch_list(exc):
                    log.info("%s: the API server refuses watch lists; listing", self.what)
                    self.server.watch_list = False
                    continue
                self._fail(exc)
                return
            except Exception as exc:  # never let a waiter hang on a dead informer
                log.exception("%s failed", self.what)
                self._fail(exc)
                return

    def _succeeded(self) -> None:
        self._failures = 0
        self._refreshed = False
        self._forbidden = 0

    def _fail(self, exc: Exception) -> None:
        if isinstance(exc, Forbidden) and self.on_forbidden is not None:
            self.on_forbidden(self, exc)
            return
        self._error = exc
        for informer in self.caches.values():
            if informer.feed is self:
                informer.fail(exc)


class WatchHub:
    """All feeds and caches of one event loop, shared by every subscriber in it."""

    _hubs: dict[asyncio.AbstractEventLoop, WatchHub] = {}

    def __init__(self) -> None:
        self.informers: dict[WatchKey, Informer] = {}
        """The caches of (cluster, namespace, resource[, selectors]) that have subscribers."""
        self.feeds: dict[WatchKey, Feed] = {}
        """The running watches; the key of a watch of all namespaces has namespace ``""``."""
        self._clients: dict[str, Any] = {}
        self._client_users: dict[str, int] = {}
        self._servers: dict[str, ServerFeatures] = {}
        self._scopes: dict[str, WatchScope] = {}
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
            scope = getattr(clients, "awatch_scope", None)
            self._scopes[cluster] = "auto" if scope is None else await scope()
        return self._clients[cluster]

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        cluster: str,
        clients: ClientSource,
        namespace: str,
        resources: Iterable[Watched],
        interest: Interest | None = None,
        follow: Iterable[tuple[Resource, str, str]] = (),
    ) -> AsyncIterator[Subscription]:
        """Share (or start) the caches of ``resources`` in one namespace of one cluster.

        A resource may come with a label selector, ``(PODS, "app=x")``, and a field selector,
        ``(EVENTS, "", "type=Warning")``. ``follow`` lists the
        ``(resource, index, key)`` the subscription is woken by from the start (see
        :meth:`Subscription.follow`); with none, ``interest`` decides about every change.
        """
        async with self._lock:
            api_client = await self._client(cluster, clients)
            informers: dict[Resource, Informer] = {}
            for item in resources:
                resource, *selectors = item if isinstance(item, tuple) else (item,)
                key = WatchKey(cluster, namespace, resource, *selectors)
                informer = self.informers.get(key)
                if informer is None:
                    informer = self._informer(key, clients, api_client)
                    self.informers[key] = informer
                informers[resource] = informer
            subscription = Subscription(informers, interest)
            for followed, index, index_key in follow:
                subscription.follow(followed, index, index_key)
            for informer in informers.values():
                informer.add_subscriber(subscription)
            self._client_users[cluster] += 1
        try:
            yield subscription
        finally:
            await self._unsubscribe(cluster, subscription)

    def _informer(self, key: WatchKey, clients: ClientSource, api_client: Any) -> Informer:
        """The cache for ``key``: from the watch of all namespaces where there is one (or
        should be one now), else from a watch of its namespace."""
        everywhere = dataclasses.replace(key, namespace="")
        feed = self.feeds.get(everywhere)
        if feed is None and self._watch_everywhere(key):
            feed = self._start(everywhere, clients, api_client)
            for other in self.informers.values():
                if dataclasses.replace(other.key, namespace="") == everywhere:
                    feed.adopt(other)  # its namespace's watch stops once this one has synced
        if feed is None:
            feed = self._start(key, clients, api_client)
        return feed.cache(key.namespace)

    def _watch_everywhere(self, key: WatchKey) -> bool:
        scope = self._scopes.get(key.cluster, "auto")
        server = self._servers.get(key.cluster)
        if scope == "namespace" or (server is not None and _kind(key) in server.cluster_refused):
            return False
        if scope == "cluster":
            return True
        return any(
            other.namespace and other.namespace != key.namespace and _kind(other) == _kind(key)
            for other in self.feeds
            if other.cluster == key.cluster
        )

    def _start(self, key: WatchKey, clients: ClientSource, api_client: Any) -> Feed:
        feed = Feed(
            key,
            clients,
            api_client,
            server=self._servers.setdefault(key.cluster, ServerFeatures()),
            on_synced=self._took_over,
            on_forbidden=self._refused_everywhere if not key.namespace else None,
        )
        self.feeds[key] = feed
        feed.start()
        return feed

    def _took_over(self, feed: Feed, previous: set[Feed]) -> None:
        """``feed`` has read the state of all namespaces: the watches of single namespaces
        it took the caches of end."""
        for old in previous:
            if self.feeds.get(old.key) is old:
                del self.feeds[old.key]
            old.cancel()
        log.info("%s: %d namespace watch(es) handed over", feed.what, len(previous))

    def _refused_everywhere(self, feed: Feed, exc: Forbidden) -> None:
        """The API server does not let these credentials watch all namespaces: watch each
        namespace waited in instead (and do not ask again while the hub knows the cluster)."""
        # The error names the watch already.
        log.info(
            "%s; watching each namespace instead (a ClusterRole granting list and watch of %s "
            "lets one watch serve all namespaces)",
            exc,
            feed.key.resource.plural,
        )
        feed.server.cluster_refused.add(_kind(feed.key))
        if self.feeds.get(feed.key) is feed:
            del self.feeds[feed.key]
        for informer in feed.caches.values():
            if informer.feed is not feed or self.informers.get(informer.key) is not informer:
                continue  # still kept by its namespace's watch, or nobody waits there
            own = self._start(informer.key, feed.clients, feed.api_client)
            own.adopt(informer)
            informer.feed = own

    async def _unsubscribe(self, cluster: str, subscription: Subscription) -> None:
        async with self._lock:
            subscription.unfollow_all()
            for informer in subscription.informers.values():
                informer.remove_subscriber(subscription)
                if informer.subscribers:
                    continue
                if self.informers.get(informer.key) is informer:
                    del self.informers[informer.key]
                await self._release(informer)
            self._client_users[cluster] -= 1
            if self._client_users[cluster] == 0:
                client = self._clients.pop(cluster)
                del self._client_users[cluster]
                self._servers.pop(cluster, None)
                self._scopes.pop(cluster, None)
                close: Callable[[], Awaitable[None]] | None = getattr(client, "close", None)
                if close is not None:
                    await close()

    async def _release(self, informer: Informer) -> None:
        """Nobody waits on ``informer`` any more: stop the watches that kept it for nobody."""
        everywhere = self.feeds.get(dataclasses.replace(informer.key, namespace=""))
        feed = informer.feed
        if feed is not None and not feed.every_namespace:
            if everywhere is not None and everywhere.caches.get(informer.key.namespace) is informer:
                # Adopted, not yet taken over: a later waiter here starts from the new watch.
                del everywhere.caches[informer.key.namespace]
            if self.feeds.get(feed.key) is feed:
                del self.feeds[feed.key]
            await feed.stop()
        if everywhere is not None and not any(
            i.feed is everywhere or everywhere.caches.get(i.key.namespace) is i
            for i in self.informers.values()
        ):
            # Looked up again: while a feed stopped, this one may have been refused (403).
            if self.feeds.get(everywhere.key) is everywhere:
                del self.feeds[everywhere.key]
            await everywhere.stop()


def _kind(key: WatchKey) -> tuple[Resource, str, str]:
    """What a watch is of, wherever: its resource and selectors."""
    return (key.resource, key.label_selector, key.field_selector)
