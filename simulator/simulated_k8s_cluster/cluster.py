"""``SimulatedCluster``: start a simulated Kubernetes cluster, point real clients at it, and
steer it (time, faults, behaviours) from Python."""

from __future__ import annotations

import asyncio
import builtins
import copy
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from .admission import admit_create
from .apiserver import ApiServer
from .clock import SimClock
from .config import ClusterConfig
from .controllers.argo import ArgoController
from .controllers.base import Controller, ControllerLoop
from .controllers.cronjobs import CronJobController
from .controllers.gc import GarbageCollector, TtlAfterFinishedController
from .controllers.jobs import JobController
from .controllers.kubelet import Kubelet
from .controllers.kueue import KueueController
from .controllers.namespaces import NamespaceDefaults
from .controllers.scheduler import ClusterAutoscaler, NodePoolManager, Scheduler
from .events import EventRecorder
from .faults import FailureRule, HoldRule, RequestCounters
from .resources import (
    CONFIGMAPS,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    ResourceType,
    default_registry,
)
from .state import ClusterState
from .store import Store

T = TypeVar("T")
Obj = dict[str, Any]

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

CONTROLLER_WATCHES: dict[str, tuple[ResourceType, ...]] = {
    "kubelet": (PODS, NODES, CONFIGMAPS, SECRETS),
    "scheduler": (PODS, NODES),
}
"""The resource types these controllers read: the background loop runs them only after a
change of one of those (or when they asked to be woken)."""


class SimulatedCluster:
    """A Kubernetes API server, Job controller, scheduler, autoscaler and kubelet in one process.

    Use it as a context manager (or ``start()`` / ``stop()``); it serves on a background thread
    so synchronous code and other event loops can talk to it over HTTP::

        with SimulatedCluster({"timeScale": 0.01}) as cluster:
            cluster.write_kubeconfig("kubeconfig.yaml")
            ...  # kubernetes.config.load_kube_config("kubeconfig.yaml")
    """

    def __init__(self, config: ClusterConfig | dict[str, Any] | str | Path | None = None) -> None:
        self.config = ClusterConfig.load(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port = self.config.port
        self._kubeconfigs: list[tuple[Path, str, str | None]] = []
        self._tls_dir: Path | None = None
        self._ca_data: str | None = None
        self._ssl: ssl.SSLContext | None = None
        self._build()

    def _build(self) -> None:
        config = self.config
        self.clock = SimClock(config.time_scale)
        registry = default_registry()
        store = Store(registry, self.clock, config.history_size)
        self.state = ClusterState(
            config=config,
            clock=self.clock,
            registry=registry,
            store=store,
            events=EventRecorder(store, self.clock),
            tokens={config.token},
        )
        self.node_pools = NodePoolManager(self.state)
        self.kubelet = Kubelet(self.state)
        self.state.log_source = self.kubelet
        controllers: list[Controller] = [
            NamespaceDefaults(self.state, self._ca_pem),
            self.node_pools,
            GarbageCollector(self.state),
            CronJobController(self.state),
            JobController(self.state),
            TtlAfterFinishedController(self.state),
            Scheduler(self.state),
            ClusterAutoscaler(self.state, self.node_pools),
            self.kubelet,
        ]
        self.extensions: dict[str, Any] = {}
        if "kueue" in config.extra:
            kueue = KueueController(self.state)
            kueue.install()
            controllers.insert(controllers.index(self.kubelet), kueue)
            self.extensions["kueue"] = kueue
        if "argo" in config.extra:
            argo = ArgoController(self.state, self.kubelet)
            argo.install()
            controllers.insert(controllers.index(self.kubelet), argo)
            self.extensions["argo"] = argo
        self.loop_controllers = controllers
        self.server = ApiServer(self.state)
        self._controller_loop: ControllerLoop | None = None
        for namespace in [*SYSTEM_NAMESPACES, *config.namespaces]:
            if store.peek(NAMESPACES, "", namespace) is None:
                namespace_obj = {"metadata": {"name": namespace}}
                store.create(NAMESPACES, admit_create(NAMESPACES, namespace_obj))
        if "kueue" in self.extensions:
            self.extensions["kueue"].bootstrap(config.extra["kueue"])
        if "argo" in self.extensions:
            self.extensions["argo"].bootstrap(config.extra["argo"])

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> SimulatedCluster:
        """Serve on a background thread; returns once the API answers."""
        if self._thread is not None:
            return self
        started: Future[None] = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
                started.set_result(None)
            except BaseException as exc:  # report start-up failures to the caller
                started.set_exception(exc)
                return
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="simulated-cluster", daemon=True)
        self._thread.start()
        started.result(timeout=30)
        return self

    async def _serve(self) -> None:
        if self.config.tls:
            self._ssl = self._make_tls()
        self._controller_loop = ControllerLoop(
            self.state.store, self.clock, self.loop_controllers, CONTROLLER_WATCHES
        )
        self._controller_task = asyncio.get_running_loop().create_task(self._controller_loop.run())
        await self._start_server()

    async def _start_server(self) -> None:
        self._runner = web.AppRunner(
            self.server.app(), handle_signals=False, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await self._start_site()

    async def _stop_server(self) -> None:
        """Close the listening socket and every open connection (keep-alive ones too)."""
        if self._runner is not None:
            runner, self._runner, self._site = self._runner, None, None
            await runner.cleanup()

    async def _start_site(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(
            self._runner, self.config.host, self._port, ssl_context=self._ssl, reuse_address=True
        )
        await self._site.start()
        if not self._port:
            self._port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        self.state.store.drop_watches()
        if self._controller_loop is not None:
            self._controller_loop.stop()
            await self._controller_task
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> SimulatedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ca_pem(self) -> str | None:
        if self._ca_data is None:
            return None
        import base64

        return base64.b64decode(self._ca_data).decode()

    def _make_tls(self) -> ssl.SSLContext:
        from .tls import self_signed

        cert_pem, key_pem = self_signed(self.config.host)
        import tempfile

        self._tls_dir = Path(tempfile.mkdtemp(prefix="simulated-cluster-tls-"))
        (self._tls_dir / "tls.crt").write_bytes(cert_pem)
        (self._tls_dir / "tls.key").write_bytes(key_pem)
        import base64

        self._ca_data = base64.b64encode(cert_pem).decode()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._tls_dir / "tls.crt", self._tls_dir / "tls.key")
        return context

    # --- running code on the cluster's loop ------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the cluster's thread (where the store lives) and return its result."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return fn(*args, **kwargs)
        try:
            if asyncio.get_running_loop() is loop:
                return fn(*args, **kwargs)
        except RuntimeError:
            pass

        async def run() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=30)

    def _kick(self) -> None:
        if self._controller_loop is not None:
            self.call(self._controller_loop.kick)

    # --- connection details ----------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.config.host}:{self._port}"

    @property
    def token(self) -> str:
        """The bearer token that is currently valid."""
        return next(iter(self.state.tokens))

    def kubeconfig(self, context: str | None = None, namespace: str = "default") -> Obj:
        """A kubeconfig dict for this cluster (bearer token; CA data when TLS is on)."""
        name = context or self.config.cluster_name
        cluster: Obj = {"server": self.url}
        if self._ca_data:
            cluster["certificate-authority-data"] = self._ca_data
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": {"token": self.token}}],
            "contexts": [
                {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
            ],
            "current-context": name,
            "preferences": {},
        }

    def write_kubeconfig(
        self, path: str | Path, context: str | None = None, namespace: str = "default"
    ) -> Path:
        """Write a kubeconfig file; it is rewritten when the token is rotated."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(context, namespace), sort_keys=False))
        path.chmod(0o600)
        if (path, namespace, context) not in [(p, n, c) for p, n, c in self._kubeconfigs]:
            self._kubeconfigs.append((path, namespace, context))
        return path

    def sync_api_client(self) -> Any:
        """A configured ``kubernetes.client.ApiClient``."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config_from_dict(self.kubeconfig(), client_configuration=configuration)
        return client.ApiClient(configuration)

    # --- objects ---------------------------------------------------------------------------

    def resource(self, name: str) -> ResourceType:
        """``pods``, ``jobs``, ``jobs.batch``, ``Job`` … → the resource type."""
        for resource in self.state.registry.types.values():
            if name in (
                resource.plural,
                resource.group_resource,
                resource.kind,
                resource.singular,
                *resource.short_names,
            ):
                return resource
        raise KeyError(f"the simulated cluster has no resource {name!r}")

    def get(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        return self.call(self.state.store.get, self.resource(resource), namespace or "", name)

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: dict[str, str] | None = None,
    ) -> list[Obj]:
        def matches(obj: Obj) -> bool:
            labels = obj["metadata"].get("labels") or {}
            return all(labels.get(k) == v for k, v in (label_selector or {}).items())

        return self.call(self.state.store.list, self.resource(resource), namespace, matches)

    def create(self, obj: Obj) -> Obj:
        """Create an object directly (defaulted and validated like an API create)."""
        resource = self.state.registry.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if resource is None:
            raise KeyError(f"unknown kind {obj.get('apiVersion')}/{obj.get('kind')}")
        obj = copy.deepcopy(obj)

        def create() -> Obj:
            self.state.mutate_on_create(resource, obj)
            return self.state.store.create(resource, admit_create(resource, obj))

        return self.call(create)

    def events(
        self,
        namespace: str | None = None,
        involved_name: str | None = None,
        reason: str | None = None,
    ) -> builtins.list[Obj]:
        return [
            e
            for e in self.list("events", namespace)
            if (involved_name is None or e["involvedObject"].get("name") == involved_name)
            and (reason is None or e.get("reason") == reason)
        ]

    def wait_for(
        self,
        condition: Callable[[], T],
        timeout: float = 10.0,
        interval: float = 0.02,
        message: str = "condition",
    ) -> T:
        """Poll ``condition`` (in the caller's thread) until truthy; ``TimeoutError`` after
        ``timeout`` wall seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
            time.sleep(interval)

    # --- time ------------------------------------------------------------------------------

    def now(self) -> float:
        """Seconds since start on the cluster's clock (wall seconds unless time is manual)."""
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        """Move the manual clock (``timeScale: 0``) forward.

        Returns once the controllers have caught up with the new instant. With time running
        the cluster's clock is the wall clock and cannot be moved: this raises ``ValueError``.
        """
        if not self.clock.manual and seconds > 0:
            self.clock.advance(seconds)  # raises, with the explanation
        loop = self._controller_loop

        def advance() -> None:
            if loop is not None:
                loop.run_due()  # what happened before is handled at the instant it happened
            self.clock.advance(seconds)

        self.call(advance)
        self.settle()

    def settle(self) -> None:
        """Run every controller until nothing changes at the current instant.

        Useful before asserting that something has *not* happened yet (with ``timeScale: 0``).
        """
        loop = self._controller_loop
        if loop is None:
            return
        self.call(loop.run_once)
        self._kick()

    # --- accounting ------------------------------------------------------------------------

    @property
    def counters(self) -> Any:
        """Request counters: ``counters.count(verb="get", resource="jobs")``, ``snapshot()``."""
        return self.state.counters

    def requests(self, verb: str | None = None, resource: str | None = None) -> int:
        return self.state.counters.count(verb, resource)

    def writes(self, resource: str | None = None) -> int:
        """Create/update/patch/delete requests of ``resource`` (all: None), dry runs left out."""
        return int(self.state.counters.writes(resource))

    def reset_counters(self) -> None:
        self.state.counters.reset()

    def client_token(self) -> tuple[str, Any]:
        """A further bearer token for the same identity, and the request counters of the
        requests made with it (they count in :attr:`counters` too), so one client's share of
        the traffic can be told apart. It stops working when the token is rotated."""
        token = secrets.token_urlsafe(24)
        counters = RequestCounters()

        def issue() -> None:
            self.state.client_counters[token] = counters

        self.call(issue)
        return token, counters

    @property
    def open_watches(self) -> int:
        return self.call(lambda: self.state.store.open_watches)

    # --- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        retry_after: int | None = None,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (429/500/503 …);
        ``label_selector`` matches requests whose ``labelSelector`` starts with it."""
        self.state.faults.add(
            FailureRule(count, status, retry_after, verb, resource, namespace, label_selector)
        )

    def hold_next(
        self, seconds: float, count: int = 1, verb: str | None = None, resource: str | None = None
    ) -> None:
        """Carry out the next ``count`` matching requests (never a dry run) but hold their
        answers for ``seconds`` wall seconds: a client killed meanwhile never hears them."""
        self.state.faults.hold(HoldRule(count, seconds, verb, resource))

    def restart_api_server(self, outage_seconds: float = 0.0) -> None:
        """Drop every watch, forget the watch history (old resourceVersions → 410), and refuse
        connections for ``outage_seconds`` wall seconds."""

        async def restart() -> None:
            store = self.state.store
            store.drop_watches()
            store.compact()
            # A restarted API server drops every connection, idle keep-alive ones included.
            await self._stop_server()
            if outage_seconds > 0:
                await asyncio.sleep(outage_seconds)
            await self._start_server()

        loop = self._loop
        assert loop is not None, "the cluster is not running"
        asyncio.run_coroutine_threadsafe(restart(), loop).result(timeout=outage_seconds + 30)

    def reset_connections(self, seconds: float) -> None:
        """Reset (TCP RST) every open watch connection, and every connection that sends a
        request during the next ``seconds`` wall seconds, as a flapping load balancer does."""
        self.call(self.server.reset_connections, seconds)

    def expire_token(self) -> str:
        """Invalidate the current token (requests with it get 401) and issue a new one.

        Kubeconfig files written by :meth:`write_kubeconfig` are rewritten with the new token.
        """
        new_token = secrets.token_urlsafe(24)

        def rotate() -> None:
            self.state.tokens.clear()
            self.state.client_counters.clear()
            self.state.tokens.add(new_token)

        self.call(rotate)
        for path, namespace, context in self._kubeconfigs:
            self.write_kubeconfig(path, context, namespace)
        return new_token

    def delete(
        self, resource: str, namespace: str | None, name: str, propagation: str = "Background"
    ) -> None:
        """Delete an object behind the clients' backs."""
        self.call(
            self.state.store.delete, self.resource(resource), namespace or "", name, propagation, 0
        )

    def preempt_pod(self, namespace: str, name: str) -> None:
        """Preempt a pod: ``DisruptionTarget`` (``PreemptionByScheduler``), then Failed."""
        self.call(self.kubelet.preempt, namespace, name)

    def lose_node(self, name: str) -> None:
        """A node disappears; its pods fail with ``DisruptionTarget`` and are removed."""
        self.call(self.node_pools.lose_node, name)

    def add_behaviour(self, rule: dict[str, Any]) -> None:
        """Add a behaviour rule (checked before the configured ones)."""
        self.call(self.kubelet.add_behaviour, rule)
