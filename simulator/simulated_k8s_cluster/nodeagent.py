"""A node agent: the simulated cluster's nodes, kubelet and cluster autoscaler, for any API server.

    python -m simulated_k8s_cluster.nodeagent --kubeconfig KUBECONFIG [--config CLUSTER.yaml]

It is a client of the API server (a kubeconfig with a bearer token or a client certificate) and
does what the kubelets of the configured node pools and the cluster autoscaler would do:

- registers one Node per node of each pool (``nodePools``: ``nodes``, ``capacity``, ``labels``,
  ``taints``), Ready, with address 127.0.0.1 and the port of its kubelet server, and renews its
  Lease in ``kube-node-lease`` every 10 s so the node lifecycle controller keeps it Ready;
- binds nothing: the API server's scheduler does. Pods bound to its nodes run by the same
  behaviour rules as in the simulated cluster (``controllers/kubelet.py``,
  ``behaviours.py``): their status goes to ``pods/{name}/status``, their events to the events
  API. A pod being deleted has its containers stopped, gets a terminal status and is then
  deleted with ``gracePeriodSeconds=0``, as a kubelet does;
- serves the kubelet endpoint the API server proxies ``pods/log`` to
  (``GET /containerLogs/{namespace}/{pod}/{container}`` with ``follow``, ``tailLines``,
  ``timestamps``, ``previous``, ``sinceSeconds``, ``limitBytes``) over HTTPS with a self-signed
  certificate;
- is the cluster autoscaler of the pools with ``maxNodes`` > ``nodes``: for pods the scheduler
  marked ``Unschedulable`` it decides as the simulated autoscaler does (``controllers/
  scheduler.py``), records ``TriggeredScaleUp`` / ``NotTriggerScaleUp`` on the pod and registers
  the new node ``scaleUpSeconds`` later; it removes nodes that stayed empty as that one does.

The simulated controllers run unchanged against a local mirror (a ``Store``) of the API server's
pods, fed by a watch; what they write there (pod statuses, confirmed deletions, events, nodes)
is written back to the API server. The mirror also holds the ConfigMaps and Secrets the
containers' environment may refer to. Time is wall-clock time: ``timeScale`` other than 1 is
ignored with a warning.

It prints ``node agent ready`` once its nodes are registered, and stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import json
import logging
import os
import signal
import ssl
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from .clock import SimClock
from .config import ClusterConfig, NodePoolConfig
from .controllers.base import ControllerLoop
from .controllers.kubelet import Kubelet
from .controllers.scheduler import ClusterAutoscaler, NodePoolManager
from .events import EventRecorder
from .resources import (
    CONFIGMAPS,
    EVENTS,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    ApiError,
    ResourceType,
    default_registry,
)
from .state import ClusterState
from .store import Store
from .tls import self_signed

log = logging.getLogger("simulated_k8s_cluster.nodeagent")

Obj = dict[str, Any]

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
LEASE_RENEW_SECONDS = 10.0
WATCH_TIMEOUT_SECONDS = 300
READY_LINE = "node agent ready"
MIRRORED = {CONFIGMAPS: "/api/v1/configmaps", SECRETS: "/api/v1/secrets", PODS: "/api/v1/pods"}
"""What the mirror holds, and where the API server lists it (all namespaces)."""


# --- the local mirror ----------------------------------------------------------------------------


class MirrorStore(Store):
    """A Store holding copies of the API server's pods, as they are there.

    The simulated kubelet confirms a deletion with :meth:`finish_deletion` and asks for one with
    :meth:`delete` (preemption); both are recorded for the agent to do on the API server, which
    then sends the pod's deletion back through the watch.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.confirmed_deletions: dict[tuple[str, str], str] = {}
        self.requested_deletions: dict[tuple[str, str], str] = {}
        self.our_nodes: Callable[[], set[str]] = set

    def put(self, resource: ResourceType, obj: Obj) -> None:
        """Store ``obj`` as it is (uid, timestamps, deletion fields included)."""
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        obj["apiVersion"] = resource.api_version
        obj["kind"] = resource.kind
        key = (meta.get("namespace", "") if resource.namespaced else "", meta["name"])
        bucket = self._objects.setdefault(resource, {})
        current = bucket.get(key)
        if current is not None and current["metadata"].get("uid") != meta.get("uid"):
            self.drop(resource, *key)
            current = None
        meta["resourceVersion"] = self._next_rv()
        bucket[key] = obj
        self._by_uid[meta["uid"]] = (resource, *key)
        self._record(resource, "ADDED" if current is None else "MODIFIED", obj, current)

    def drop(self, resource: ResourceType, namespace: str, name: str) -> None:
        current = self.peek(resource, namespace, name)
        if current is not None:
            self._remove(resource, current)

    def update(self, resource: ResourceType, obj: Obj, check_version: bool = False) -> Obj:
        if resource is not PODS:
            return super().update(resource, obj, check_version)
        # The kubelet writes pod statuses only; a pod being deleted stays until the agent has
        # written its terminal status and the API server has removed it.
        meta = obj["metadata"]
        current = self.require(resource, meta.get("namespace", ""), meta["name"])
        status = _with_others_conditions(obj.get("status") or {}, current.get("status") or {})
        if status == (current.get("status") or {}):
            return copy.deepcopy(current)
        updated = copy.deepcopy(current)
        updated["status"] = status
        self.put(resource, updated)
        return copy.deepcopy(self.require(resource, meta.get("namespace", ""), meta["name"]))

    def finish_deletion(self, resource: ResourceType, namespace: str, name: str) -> None:
        current = self.peek(resource, namespace, name)
        if current is None:
            return
        if resource is not PODS:
            super().finish_deletion(resource, namespace, name)
            return
        if (current.get("spec") or {}).get("nodeName") in self.our_nodes():
            self.confirmed_deletions.setdefault((namespace, name), current["metadata"]["uid"])

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        propagation: str | None = None,
        grace_period_seconds: int | None = None,
        precondition_uid: str | None = None,
        precondition_rv: str | None = None,
    ) -> Obj:
        if resource is not PODS:
            return super().delete(
                resource,
                namespace,
                name,
                propagation,
                grace_period_seconds,
                precondition_uid,
                precondition_rv,
            )
        current = self.require(resource, namespace, name)
        self.requested_deletions.setdefault((namespace, name), current["metadata"]["uid"])
        return current


KUBELET_CONDITIONS = frozenset(
    {"PodScheduled", "PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"}
)
"""The pod conditions a kubelet owns (``kubetypes.PodConditionsByKubelet``)."""


def _with_others_conditions(status: Obj, current: Obj) -> Obj:
    """``status`` as the kubelet computed it, keeping the conditions others set on the pod.

    A kubelet writes the conditions it owns and carries over the rest, e.g. the
    ``DisruptionTarget`` the scheduler sets on a pod it preempts, which a Job's pod failure
    policy then matches.
    """
    status = copy.deepcopy(status)
    own = {c.get("type") for c in status.get("conditions") or []}
    others = [
        copy.deepcopy(c)
        for c in current.get("conditions") or []
        if c.get("type") not in KUBELET_CONDITIONS and c.get("type") not in own
    ]
    if others:
        status["conditions"] = [*others, *(status.get("conditions") or [])]
    return status


class AgentNodePools(NodePoolManager):
    """The pools' nodes, reachable at 127.0.0.1 on the agent's kubelet port."""

    def __init__(self, state: ClusterState, kubelet_port: int, kubelet_version: str) -> None:
        super().__init__(state)
        self.kubelet_port = kubelet_port
        self.kubelet_version = kubelet_version

    def _node_object(self, pool: NodePoolConfig, name: str) -> Obj:
        node = super()._node_object(pool, name)
        status = node["status"]
        status["addresses"] = [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": name},
        ]
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": self.kubelet_port}}
        status["nodeInfo"]["kubeletVersion"] = self.kubelet_version
        status["nodeInfo"]["kubeProxyVersion"] = self.kubelet_version
        node["spec"].pop("providerID", None)
        return node


# --- talking to the API server -------------------------------------------------------------------


class ApiServerError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body[:500]}")
        self.status = status


class ApiClient:
    """Just enough of a Kubernetes client: JSON requests and watches, from a kubeconfig."""

    def __init__(self, kubeconfig: str) -> None:
        with open(kubeconfig, encoding="utf-8") as f:
            doc: dict[str, Any] = yaml.safe_load(f) or {}
        context_name = str(doc.get("current-context") or "")
        contexts: dict[str, Obj] = {c["name"]: c["context"] for c in doc.get("contexts") or []}
        context: Obj = contexts.get(context_name) or next(iter(contexts.values()), {})
        clusters: dict[str, Obj] = {c["name"]: c["cluster"] for c in doc.get("clusters") or []}
        users: dict[str, Obj] = {u["name"]: u.get("user") or {} for u in doc.get("users") or []}
        cluster = clusters.get(str(context.get("cluster"))) or next(iter(clusters.values()))
        user = users.get(str(context.get("user")), {})
        self.server = str(cluster["server"]).rstrip("/")
        self.ssl: ssl.SSLContext | bool = False
        self._files: list[str] = []
        if self.server.startswith("https"):
            ctx = ssl.create_default_context()
            if cluster.get("insecure-skip-tls-verify"):
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif cluster.get("certificate-authority-data"):
                ctx.load_verify_locations(
                    cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
                )
            elif cluster.get("certificate-authority"):
                ctx.load_verify_locations(cafile=cluster["certificate-authority"])
            cert, key = user.get("client-certificate"), user.get("client-key")
            if user.get("client-certificate-data"):
                cert = self._temp(base64.b64decode(user["client-certificate-data"]))
                key = self._temp(base64.b64decode(user["client-key-data"]))
            if cert:
                ctx.load_cert_chain(cert, key)
            self.ssl = ctx
        token = user.get("token")
        if not token and user.get("tokenFile"):
            token = Path(user["tokenFile"]).read_text().strip()
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.session: aiohttp.ClientSession | None = None

    def _temp(self, data: bytes) -> str:
        fd, path = tempfile.mkstemp(prefix="nodeagent-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self._files.append(path)
        return path

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(
            headers=self.headers,
            connector=aiohttp.TCPConnector(ssl=self.ssl, limit=20),
            read_bufsize=2**22,
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        for path in self._files:
            with contextlib.suppress(OSError):
                os.unlink(path)

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> Any:
        assert self.session is not None
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method,
            self.server + path,
            data=data,
            headers=headers,
            params=params,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise ApiServerError(resp.status, text)
            return json.loads(text) if text else None


def _int_rv(obj: Obj) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


# --- the agent -----------------------------------------------------------------------------------


class NodeAgent:
    def __init__(self, config: ClusterConfig, api: ApiClient) -> None:
        if config.time_scale != 1:
            log.warning(
                "timeScale %s ignored: the node agent runs on wall-clock time", config.time_scale
            )
            config.time_scale = 1.0
        self.config = config
        self.api = api
        self.clock = SimClock(1.0)
        registry = default_registry()
        self.store = MirrorStore(registry, self.clock, 5_000)
        self.state = ClusterState(
            config=config,
            clock=self.clock,
            registry=registry,
            store=self.store,
            events=EventRecorder(self.store, self.clock),
        )
        self.kubelet = Kubelet(self.state)
        self.state.log_source = self.kubelet
        self.stopping = asyncio.Event()
        self.kubelet_port = 0
        self.pools: AgentNodePools | None = None
        self.loop: ControllerLoop | None = None
        # What the API server has, as far as the agent knows.
        self.remote_nodes: dict[str, str] = {}  # name → uid
        self.pushed_status: dict[str, str] = {}  # pod uid → JSON of the status there
        self.remote_rv: dict[str, int] = {}  # pod uid → newest resourceVersion seen
        self.pushed_events: dict[tuple[str, str], str] = {}  # → local resourceVersion
        self.deleted: set[str] = set()  # pod uids deleted with gracePeriodSeconds=0
        self.ready_printed = False
        self._runner: web.AppRunner | None = None
        self._cert_dir = tempfile.mkdtemp(prefix="nodeagent-tls-")
        self._ensure_namespace("default")

    # --- start / stop ------------------------------------------------------------------------

    async def run(self) -> None:
        await self.api.open()
        try:
            version = await self.api.request("GET", "/version")
            git_version = str(version.get("gitVersion") or "v0.0.0")
            await self._serve_kubelet()
            self.pools = AgentNodePools(self.state, self.kubelet_port, git_version)
            self.store.our_nodes = lambda: set(self.remote_nodes)
            self.loop = ControllerLoop(
                self.store,
                self.clock,
                [self.pools, self.kubelet, ClusterAutoscaler(self.state, self.pools)],
            )
            # ConfigMaps and Secrets first: the environment of the pods' containers.
            versions = {resource: await self._relist(resource) for resource in MIRRORED}
            tasks = [
                asyncio.create_task(self._reconcile_loop()),
                asyncio.create_task(self._lease_loop()),
                *(
                    asyncio.create_task(self._watch_loop(resource, rv))
                    for resource, rv in versions.items()
                ),
            ]
            await self.stopping.wait()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        finally:
            if self._runner is not None:
                await self._runner.cleanup()
            await self.api.close()
            for name in os.listdir(self._cert_dir):
                os.unlink(os.path.join(self._cert_dir, name))
            os.rmdir(self._cert_dir)

    def stop(self) -> None:
        self.stopping.set()

    # --- the controllers, and writing back what they did -----------------------------------

    async def _reconcile_loop(self) -> None:
        assert self.loop is not None
        kicked = asyncio.Event()
        self.store.add_listener(kicked.set)
        while True:
            kicked.clear()
            wake_at = self.loop.run_once()
            try:
                await self._flush()
            except (aiohttp.ClientError, asyncio.TimeoutError, ApiServerError) as exc:
                log.warning("writing to the API server failed (%s); retrying", exc)
                wake_at = self.clock.now() + 1.0
            if not self.ready_printed and self._initial_nodes_registered():
                self.ready_printed = True
                print(f"{READY_LINE}: nodes {sorted(self.remote_nodes)}", flush=True)
            timeout = None if wake_at is None else max(0.005, wake_at - self.clock.now())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(kicked.wait(), timeout=timeout)

    def _initial_nodes_registered(self) -> bool:
        assert self.pools is not None
        return all(
            len(
                [
                    n
                    for n in self.pools.nodes(pool.name)
                    if n["metadata"]["name"] in self.remote_nodes
                ]
            )
            >= pool.nodes
            for pool in self.config.node_pools
        )

    async def _flush(self) -> None:
        """Write to the API server what the controllers changed in the mirror."""
        # Nodes: registered, or removed by the autoscaler.
        local_nodes = {n["metadata"]["name"]: n for n in self.store.objects(NODES)}
        for name, node in sorted(local_nodes.items()):
            if name not in self.remote_nodes:
                await self._register_node(copy.deepcopy(node))
        for name in sorted(set(self.remote_nodes) - set(local_nodes)):
            with contextlib.suppress(ApiServerError):
                await self.api.request("DELETE", f"/api/v1/nodes/{name}")
            self.remote_nodes.pop(name, None)

        # Pod statuses the kubelet wrote.
        ours = set(self.remote_nodes)
        for pod in list(self.store.objects(PODS)):
            meta = pod["metadata"]
            uid = meta["uid"]
            if (pod.get("spec") or {}).get("nodeName") not in ours or uid in self.deleted:
                continue
            status = json.dumps(pod.get("status") or {}, sort_keys=True)
            if self.pushed_status.get(uid) == status:
                continue
            await self._write_status(copy.deepcopy(pod), status)

        # Deletions the kubelet confirmed (after the terminal status) or asked for.
        for (namespace, name), uid in list(self.store.confirmed_deletions.items()):
            del self.store.confirmed_deletions[(namespace, name)]
            if uid in self.deleted:
                continue
            self.deleted.add(uid)
            await self._delete_pod(namespace, name, uid, grace=0)
        for (namespace, name), uid in list(self.store.requested_deletions.items()):
            del self.store.requested_deletions[(namespace, name)]
            await self._delete_pod(namespace, name, uid, grace=None)

        # Events about pods (node events are the node controller's).
        for event in list(self.store.objects(EVENTS)):
            meta = event["metadata"]
            key = (meta["namespace"], meta["name"])
            if self.pushed_events.get(key) == meta["resourceVersion"]:
                continue
            self.pushed_events[key] = meta["resourceVersion"]
            if (event.get("involvedObject") or {}).get("kind") != "Pod":
                continue
            await self._write_event(copy.deepcopy(event))

    async def _register_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation"):
            node["metadata"].pop(key, None)
        try:
            created = await self.api.request("POST", "/api/v1/nodes", node)
        except ApiServerError as exc:
            if exc.status != 409:
                raise
            created = await self.api.request("GET", f"/api/v1/nodes/{name}")
        self.remote_nodes[name] = created["metadata"]["uid"]
        # Node status is kept on create by the API server; write it again in case it was not.
        if not (created.get("status") or {}).get("conditions"):
            await self.api.request(
                "PATCH",
                f"/api/v1/nodes/{name}/status",
                {"status": node["status"]},
                content_type="application/merge-patch+json",
            )
        await self._renew_lease(name)
        log.info("registered node %s", name)

    async def _write_status(self, pod: Obj, status_json: str) -> None:
        meta = pod["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        patch = [
            {"op": "test", "path": "/metadata/uid", "value": uid},
            {"op": "add", "path": "/status", "value": pod.get("status") or {}},
        ]
        try:
            updated = await self.api.request(
                "PATCH",
                f"/api/v1/namespaces/{namespace}/pods/{name}/status",
                patch,
                content_type="application/json-patch+json",
            )
        except ApiServerError as exc:
            if exc.status in (404, 409, 422):
                # Gone, replaced, or refused: do not retry this status.
                log.warning("status of pod %s/%s not written: %s", namespace, name, exc)
                self.pushed_status[uid] = status_json
                return
            raise
        self.pushed_status[uid] = status_json
        self.remote_rv[uid] = max(self.remote_rv.get(uid, 0), _int_rv(updated))

    async def _delete_pod(self, namespace: str, name: str, uid: str, grace: int | None) -> None:
        body: Obj = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"uid": uid},
        }
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        try:
            await self.api.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", body)
        except ApiServerError as exc:
            if exc.status not in (404, 409):
                raise

    async def _write_event(self, event: Obj) -> None:
        meta = event["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            **{k: v for k, v in event.items() if k not in ("metadata", "apiVersion", "kind")},
        }
        if not body.get("eventTime"):
            body.pop("eventTime", None)
        if not body.get("reportingInstance"):
            body.pop("reportingInstance", None)
        try:
            await self.api.request("POST", f"/api/v1/namespaces/{namespace}/events", body)
        except ApiServerError as exc:
            if exc.status == 409:
                await self.api.request(
                    "PATCH",
                    f"/api/v1/namespaces/{namespace}/events/{name}",
                    {"count": event.get("count"), "lastTimestamp": event.get("lastTimestamp")},
                    content_type="application/merge-patch+json",
                )
            elif exc.status in (403, 404, 422):
                log.warning("event %s/%s not written: %s", namespace, name, exc)
            else:
                raise

    # --- the node leases ----------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(LEASE_RENEW_SECONDS)
            for name in sorted(self.remote_nodes):
                try:
                    await self._renew_lease(name)
                except (aiohttp.ClientError, asyncio.TimeoutError, ApiServerError) as exc:
                    log.warning("renewing the lease of node %s failed: %s", name, exc)

    async def _renew_lease(self, node: str) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        now = self.clock.micro_timestamp()
        try:
            await self.api.request(
                "PATCH",
                f"{path}/{node}",
                {"spec": {"renewTime": now, "holderIdentity": node}},
                content_type="application/merge-patch+json",
            )
        except ApiServerError as exc:
            if exc.status != 404:
                raise
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": node,
                    "namespace": LEASE_NAMESPACE,
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Node",
                            "name": node,
                            "uid": self.remote_nodes[node],
                        }
                    ],
                },
                "spec": {
                    "holderIdentity": node,
                    "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                    "renewTime": now,
                },
            }
            await self.api.request("POST", path, lease)

    # --- reading the API server's pods --------------------------------------------------------

    def _ensure_namespace(self, name: str) -> None:
        if self.store.peek(NAMESPACES, "", name) is None:
            self.store.put(
                NAMESPACES,
                {"metadata": {"name": name, "uid": f"mirror-namespace-{name}"}, "spec": {}},
            )

    def _apply(self, event_type: str, pod: Obj) -> None:
        meta = pod["metadata"]
        uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
        rv = _int_rv(pod)
        if event_type == "DELETED":
            current = self.store.peek(PODS, namespace, name)
            if current is not None and current["metadata"]["uid"] == uid:
                self.store.drop(PODS, namespace, name)
            for table in (self.pushed_status, self.remote_rv):
                table.pop(uid, None)
            self.deleted.discard(uid)
            return
        if rv and rv <= self.remote_rv.get(uid, 0):
            return  # older than what the agent wrote itself
        self.remote_rv[uid] = rv
        status = pod.get("status") or {}
        self.pushed_status[uid] = json.dumps(status, sort_keys=True)
        current = self.store.peek(PODS, namespace, name)
        mirrored = copy.deepcopy(pod)
        if current is not None and current["metadata"]["uid"] == uid and uid in self._running():
            # The kubelet's own status wins, with the conditions others set (DisruptionTarget).
            mirrored["status"] = _with_others_conditions(current.get("status") or {}, status)
        self._ensure_namespace(namespace)
        self.store.put(PODS, mirrored)

    def _running(self) -> set[str]:
        return set(self.kubelet._pods)

    def _apply_any(self, resource: ResourceType, event_type: str, obj: Obj) -> None:
        if resource is PODS:
            self._apply(event_type, obj)
            return
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        if event_type == "DELETED":
            current = self.store.peek(resource, namespace, name)
            if current is not None and current["metadata"]["uid"] == meta["uid"]:
                self.store.drop(resource, namespace, name)
            return
        self._ensure_namespace(namespace)
        self.store.put(resource, obj)

    async def _relist(self, resource: ResourceType) -> str:
        listed = await self.api.request("GET", MIRRORED[resource])
        seen: set[tuple[str, str]] = set()
        for item in listed.get("items") or []:
            self._apply_any(resource, "MODIFIED", item)
            seen.add((item["metadata"]["namespace"], item["metadata"]["name"]))
        for obj in list(self.store.objects(resource)):
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            if key not in seen:
                self._apply_any(resource, "DELETED", obj)
        return str(listed["metadata"].get("resourceVersion") or "")

    async def _watch_loop(self, resource: ResourceType, rv: str) -> None:
        assert self.api.session is not None
        while True:
            try:
                if not rv:
                    rv = await self._relist(resource)
                params = {
                    "watch": "1",
                    "resourceVersion": rv,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": str(WATCH_TIMEOUT_SECONDS),
                }
                async with self.api.session.get(
                    self.api.server + MIRRORED[resource],
                    params=params,
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=WATCH_TIMEOUT_SECONDS + 30),
                ) as resp:
                    if resp.status >= 400:
                        raise ApiServerError(resp.status, await resp.text())
                    async for line in resp.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            rv = ""  # 410 Gone (or another error): list again
                            break
                        rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
                        if kind in ("ADDED", "MODIFIED", "DELETED"):
                            self._apply_any(resource, kind, obj)
            except (aiohttp.ClientError, asyncio.TimeoutError, ApiServerError, ValueError) as exc:
                log.warning("%s watch ended (%s); watching again", resource.plural, exc)
                rv = ""
                await asyncio.sleep(1.0)

    # --- the kubelet's HTTPS endpoint ---------------------------------------------------------

    async def _serve_kubelet(self) -> None:
        cert, key = self_signed("127.0.0.1")
        cert_file = os.path.join(self._cert_dir, "kubelet.crt")
        key_file = os.path.join(self._cert_dir, "kubelet.key")
        Path(cert_file).write_bytes(cert)
        Path(key_file).write_bytes(key)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert_file, key_file)
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._container_logs)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.kubelet_port = int(sockets[0].getsockname()[1])

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _container_logs(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        name = request.match_info["pod"]
        container = request.match_info["container"]
        query = request.query

        def flag(key: str) -> bool:
            return query.get(key, "").lower() in ("1", "true", "yes")

        previous, follow, timestamps = flag("previous"), flag("follow"), flag("timestamps")
        tail, since, limit_bytes = (
            query.get("tailLines"),
            query.get("sinceSeconds"),
            query.get("limitBytes"),
        )
        clock = self.clock

        def snapshot() -> tuple[list[tuple[float, str]], bool]:
            pod = self.store.peek(PODS, namespace, name)
            if pod is None:
                raise ApiError(404, f'pod "{name}" not found')
            return self.kubelet.lines(pod, container, previous)

        def render(lines: list[tuple[float, str]]) -> str:
            cutoff = clock.log_cutoff(since, query.get("sinceTime"))
            if cutoff is not None:
                lines = [entry for entry in lines if entry[0] >= cutoff]
            out = [
                f"{clock.micro_timestamp(at)} {text}" if timestamps else text for at, text in lines
            ]
            return "".join(f"{line}\n" for line in out)

        try:
            lines, finished = snapshot()
        except ApiError as exc:
            return web.Response(status=exc.code, text=exc.message)
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        if not follow or finished:
            text = render(lines)
            if limit_bytes:
                text = text.encode()[: int(limit_bytes)].decode(errors="ignore")
            return web.Response(text=text, content_type="text/plain")
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = len(lines)
        await response.write(render(lines).encode())
        try:
            while not finished:
                await asyncio.sleep(0.05)
                try:
                    all_lines, finished = snapshot()
                except ApiError:
                    break
                if len(all_lines) > sent:
                    await response.write(render(all_lines[sent:]).encode())
                    sent = len(all_lines)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response


# --- the command ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulated_k8s_cluster.nodeagent",
        description="Register the configured node pools' nodes with an API server and run "
        "their pods by the simulated cluster's behaviour rules.",
    )
    parser.add_argument("--kubeconfig", required=True, help="how to reach the API server")
    parser.add_argument(
        "--config", help="cluster configuration (docs/testing.md); default: one node pool"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = ClusterConfig.load(args.config)
    agent = NodeAgent(config, ApiClient(args.kubeconfig))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, agent.stop)
        await agent.run()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
