"""Node pools, the scheduler and the cluster autoscaler of the simulated cluster.

* :class:`NodePoolManager` owns the Node objects: the configured nodes of every pool at start,
  nodes added by a scale-up once the pool's ``scaleUpSeconds`` have passed, and nodes lost
  (``lose_node``), whose pods the pod GC then fails and deletes.
* :class:`Scheduler` is kube-scheduler's default profile reduced to what a batch workload
  notices: it binds pending pods in priority and arrival order to Ready nodes that pass the
  filters of :mod:`..placement`, or marks them ``PodScheduled=False`` / ``Unschedulable`` with
  the ``FailedScheduling`` message kube-scheduler writes.
* :class:`ClusterAutoscaler` runs a loop every ``autoscalerScanSeconds``: unschedulable pods that
  a fresh node of an autoscaled pool would fit trigger a scale-up (``TriggeredScaleUp``), the
  others get ``NotTriggerScaleUp`` with the reasons of every node group, worded as the
  cluster-autoscaler's ``EventingScaleUpStatusProcessor`` words them. Empty nodes above a pool's
  configured size are removed after ``SCALE_DOWN_UNNEEDED_SECONDS``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import logging
import random
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..config import NodePoolConfig
from ..placement import (
    REASON_AFFINITY_PREFILTER,
    NodeVerdict,
    Resources,
    add,
    filter_node,
    fit_error_message,
    node_allocatable,
    node_is_ready,
    pod_requests,
    prefilter_node_names,
)
from ..resources import NODES, PODS
from ..state import ClusterState

log = logging.getLogger("simulated_k8s_cluster")

Obj = dict[str, Any]

SCHEDULER_NAME = "default-scheduler"
NODEPOOL_LABEL = "cloud.google.com/gke-nodepool"
TERMINAL_PHASES = ("Succeeded", "Failed")
SCHEDULING_GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"
REGION = "us-central1"
ZONE = "us-central1-a"


def _condition(obj: Obj, kind: str) -> Obj | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def _set_condition(obj: Obj, condition: Obj, now: str) -> bool:
    """Put ``condition`` on ``obj``; keeps ``lastTransitionTime`` unless the status changes.
    True when something changed."""
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    for i, existing in enumerate(conditions):
        if existing.get("type") == condition["type"]:
            merged = {"lastProbeTime": None, **condition}
            if existing.get("status") == condition["status"]:
                merged["lastTransitionTime"] = existing.get("lastTransitionTime") or now
            else:
                merged["lastTransitionTime"] = now
            if {k: existing.get(k) for k in merged} == merged and set(existing) <= set(merged):
                return False
            conditions[i] = merged
            return True
    conditions.append({"lastProbeTime": None, **condition, "lastTransitionTime": now})
    return True


def _is_bound_and_running(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName")) and (
        (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES
    )


class _RequestCache:
    """Pod uid → its requests (a pod's resources do not change once it exists)."""

    def __init__(self) -> None:
        self._by_uid: dict[str, Resources] = {}

    def of(self, pod: Obj) -> Resources:
        uid = pod["metadata"].get("uid", "")
        requests = self._by_uid.get(uid)
        if requests is None:
            requests = self._by_uid[uid] = pod_requests(pod.get("spec") or {})
        return requests

    def keep_only(self, uids: set[str]) -> None:
        for uid in set(self._by_uid) - uids:
            del self._by_uid[uid]


def _usage(pods: Iterable[Obj], cache: _RequestCache) -> dict[str, tuple[Resources, int]]:
    """Node name → (sum of requests, number of pods) of the non-terminal pods bound to it."""
    usage: dict[str, tuple[Resources, int]] = {}
    for pod in pods:
        if not _is_bound_and_running(pod):
            continue
        node = pod["spec"]["nodeName"]
        requested, count = usage.get(node, ({}, 0))
        usage[node] = (add(requested, cache.of(pod)), count + 1)
    return usage


def _dns_part(text: str, limit: int) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return cleaned[:limit].strip("-") or "x"


# --- node pools ----------------------------------------------------------------------------------


@dataclass
class _PendingNode:
    pool: str
    ready_at: float


class NodePoolManager:
    """The GKE node pools: creates, adds and loses Node objects."""

    name = "node-pools"

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._pools = {pool.name: pool for pool in state.config.node_pools}
        self._pool_of: dict[str, str] = {}
        self._pending: list[_PendingNode] = []
        self._started = False
        self._ip_serial = itertools.count(2)

    # --- reading ---------------------------------------------------------------------------

    @property
    def pools(self) -> list[NodePoolConfig]:
        return list(self._pools.values())

    def pool(self, name: str) -> NodePoolConfig:
        try:
            return self._pools[name]
        except KeyError:
            raise KeyError(f"no node pool {name!r}; pools: {sorted(self._pools)}") from None

    def pool_of(self, node_name: str) -> str | None:
        return self._pool_of.get(node_name)

    def nodes(self, pool: str) -> list[Obj]:
        """The pool's Node objects that exist (read-only)."""
        store = self.state.store
        return [
            node
            for name, owner in sorted(self._pool_of.items())
            if owner == pool
            if (node := store.peek(NODES, "", name)) is not None
        ]

    def current(self, pool: str) -> int:
        return len(self.nodes(pool))

    def upcoming(self, pool: str) -> int:
        """Nodes of a scale-up in progress (not registered yet)."""
        return sum(1 for pending in self._pending if pending.pool == pool)

    def target_size(self, pool: str) -> int:
        return self.current(pool) + self.upcoming(pool)

    def template(self, pool: str) -> Obj:
        """What a fresh node of the pool will look like (the autoscaler's node template)."""
        config = self.pool(pool)
        return self._node_object(config, f"template-node-for-{_dns_part(pool, 40)}")

    # --- changing --------------------------------------------------------------------------

    def scale_up(self, pool: str, count: int = 1) -> None:
        """Ask for ``count`` more nodes; they register after the pool's ``scaleUpSeconds``."""
        config = self.pool(pool)
        if count < 1:
            raise ValueError(f"scale-up needs a positive node count, got {count}")
        target = self.target_size(pool)
        if target + count > config.ceiling:
            raise ValueError(
                f"node pool {pool!r} cannot grow from {target} to {target + count} "
                f"nodes (max: {config.ceiling})"
            )
        clock = self.state.clock
        ready_at = clock.now() + clock.scaled(float(config.scale_up_seconds))
        self._pending.extend(_PendingNode(pool, ready_at) for _ in range(count))

    def remove_node(self, name: str) -> None:
        """Delete a node that has no pods left (scale-down)."""
        if self.state.store.peek(NODES, "", name) is not None:
            self.state.store.delete(NODES, "", name)
        self._pool_of.pop(name, None)

    def lose_node(self, name: str) -> None:
        """The node disappears (preemption of a spot VM, a hardware failure).

        Its pods are orphans then, and the pod GC does what ``gcOrphaned`` does
        (``pkg/controller/podgc/gc_controller.go``): a pod not yet terminal becomes ``Failed``
        with condition ``DisruptionTarget`` (reason ``DeletionByPodGC``, message
        ``PodGC: node no longer exists``), then every pod of the node is deleted with a grace
        period of 0. (The pod GC waits a 40 s quarantine first; here it acts at once.)
        """
        store = self.state.store
        if store.peek(NODES, "", name) is None:
            known = sorted(node["metadata"]["name"] for node in store.objects(NODES))
            raise KeyError(f"cannot lose node {name!r}: no such node; nodes: {known}")
        store.delete(NODES, "", name)
        self._pool_of.pop(name, None)
        now = self.state.clock.timestamp()
        bound = [
            (p["metadata"]["namespace"], p["metadata"]["name"])
            for p in store.objects(PODS)
            if (p.get("spec") or {}).get("nodeName") == name
        ]
        for namespace, pod_name in bound:
            pod = store.get(PODS, namespace, pod_name)
            if pod is None:
                continue
            status = pod.setdefault("status", {})
            if status.get("phase") not in TERMINAL_PHASES:
                status["phase"] = "Failed"
                _set_condition(
                    pod,
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "DeletionByPodGC",
                        "message": "PodGC: node no longer exists",
                    },
                    now,
                )
                store.update(PODS, pod)
            if store.peek(PODS, namespace, pod_name) is not None:
                store.delete(PODS, namespace, pod_name, grace_period_seconds=0)

    # --- the control loop ------------------------------------------------------------------

    def reconcile(self) -> float | None:
        self._start()
        now = self.state.clock.now()
        due = [pending for pending in self._pending if pending.ready_at <= now]
        for pending in due:
            self._pending.remove(pending)
            self._add_node(self.pool(pending.pool))
        if not self._pending:
            return None
        return min(pending.ready_at for pending in self._pending)

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        for pool in self._pools.values():
            for _ in range(pool.nodes):
                self._add_node(pool)

    def _node_name(self, pool: NodePoolConfig) -> str:
        cluster = _dns_part(self.state.config.cluster_name, 20)
        pool_part = _dns_part(pool.name, 20)
        group = hashlib.sha1(f"{cluster}/{pool.name}".encode()).hexdigest()[:8]
        alphabet = string.ascii_lowercase + string.digits
        while True:
            name = f"gke-{cluster}-{pool_part}-{group}-{''.join(random.choices(alphabet, k=4))}"
            if self.state.store.peek(NODES, "", name) is None and name not in self._pool_of:
                return name

    def _node_object(self, pool: NodePoolConfig, name: str) -> Obj:
        config = self.state.config
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "cloud.google.com/gke-os-distribution": "cos",
            "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/region": REGION,
            "topology.kubernetes.io/zone": ZONE,
            **{k: str(v) for k, v in (pool.labels or {}).items()},
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
        }
        labels.setdefault(NODEPOOL_LABEL, pool.name)
        capacity = {
            "ephemeral-storage": "100Gi",
            "pods": "110",
            **{k: str(v) for k, v in (pool.capacity or {}).items()},
        }
        serial = next(self._ip_serial)
        address = f"10.128.{serial // 250}.{serial % 250 + 2}"
        spec: Obj = {
            "podCIDR": f"10.{64 + serial // 256}.{serial % 256}.0/24",
            "providerID": f"gce://simulated-project/{ZONE}/{name}",
        }
        spec["podCIDRs"] = [spec["podCIDR"]]
        if pool.taints:
            spec["taints"] = [
                {k: v for k, v in taint.items() if k in ("key", "value", "effect")}
                for taint in pool.taints
            ]
        now = self.state.clock.timestamp()
        version = config.kubernetes_version.lstrip("v")
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": spec,
            "status": {
                "capacity": dict(capacity),
                "allocatable": dict(capacity),
                "conditions": [
                    {
                        "type": kind,
                        "status": "False",
                        "reason": reason,
                        "message": message,
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                    for kind, reason, message in (
                        (
                            "MemoryPressure",
                            "KubeletHasSufficientMemory",
                            "kubelet has sufficient memory available",
                        ),
                        (
                            "DiskPressure",
                            "KubeletHasNoDiskPressure",
                            "kubelet has no disk pressure",
                        ),
                        (
                            "PIDPressure",
                            "KubeletHasSufficientPID",
                            "kubelet has sufficient PID available",
                        ),
                    )
                ]
                + [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    },
                ],
                "addresses": [
                    {"type": "InternalIP", "address": address},
                    {"type": "Hostname", "address": name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": hashlib.md5(f"boot/{name}".encode()).hexdigest(),
                    "containerRuntimeVersion": "containerd://2.0.4",
                    "kernelVersion": "6.6.87+",
                    "kubeProxyVersion": f"v{version}-gke.1000",
                    "kubeletVersion": f"v{version}-gke.1000",
                    "machineID": hashlib.md5(f"machine/{name}".encode()).hexdigest(),
                    "operatingSystem": "linux",
                    "osImage": "Container-Optimized OS from Google",
                    "systemUUID": hashlib.md5(f"uuid/{name}".encode()).hexdigest(),
                },
            },
        }

    def _add_node(self, pool: NodePoolConfig) -> Obj:
        from ..admission import admit_create

        name = self._node_name(pool)
        node = self._node_object(pool, name)
        created = self.state.store.create(NODES, admit_create(NODES, node))
        self._pool_of[name] = pool.name
        self.state.events.record(
            created,
            "Normal",
            "RegisteredNode",
            f"Node {name} event: Registered Node {name} in Controller",
            component="node-controller",
        )
        return created


# --- the scheduler -------------------------------------------------------------------------------


class Scheduler:
    """kube-scheduler's default profile, without scoring subtleties or preemption."""

    name = "scheduler"

    RETRY_SECONDS = 60.0
    """An unschedulable pod is retried (and its ``FailedScheduling`` event counted again) at
    least this often while nothing else changes; a changed message is written at once."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._arrival: dict[str, int] = {}
        self._serial = itertools.count()
        self._last_event: dict[str, tuple[str, float]] = {}
        self._requests = _RequestCache()
        self._allocatable: dict[tuple[str, str], Resources] = {}

    def _node_allocatable(self, node: Obj) -> Resources:
        meta = node["metadata"]
        key = (meta["name"], meta.get("resourceVersion", ""))
        allocatable = self._allocatable.get(key)
        if allocatable is None:
            if len(self._allocatable) > 1000:
                self._allocatable.clear()
            allocatable = self._allocatable[key] = node_allocatable(node)
        return allocatable

    def reconcile(self) -> float | None:
        store = self.state.store
        pods = list(store.objects(PODS))
        self._requests.keep_only({pod["metadata"].get("uid", "") for pod in pods})
        pending = [pod for pod in pods if self._wants_scheduling(pod)]
        live = {pod["metadata"]["uid"] for pod in pending}
        for uid in set(self._arrival) - live:
            self._arrival.pop(uid, None)
            self._last_event.pop(uid, None)
        for pod in pending:
            uid = pod["metadata"]["uid"]
            if uid not in self._arrival:
                self._arrival[uid] = next(self._serial)
        pending.sort(key=self._queue_order)
        if not pending:
            return None
        nodes = sorted(store.objects(NODES), key=lambda n: n["metadata"]["name"])
        usage = _usage(pods, self._requests)
        wake: float | None = None
        for pod in pending:
            if (pod.get("spec") or {}).get("schedulingGates"):
                self._mark_gated(pod)
                continue
            retry_at = self._schedule_one(pod, nodes, usage)
            if retry_at is not None and (wake is None or retry_at < wake):
                wake = retry_at
        return wake

    @staticmethod
    def _wants_scheduling(pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (
            not spec.get("nodeName")
            and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME
            and not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase", "Pending") == "Pending"
        )

    def _queue_order(self, pod: Obj) -> tuple[int, str, int]:
        """PrioritySort: higher priority first, then the time the pod entered the queue."""
        priority = int((pod.get("spec") or {}).get("priority") or 0)
        return (
            -priority,
            pod["metadata"].get("creationTimestamp") or "",
            self._arrival[pod["metadata"]["uid"]],
        )

    def _mark_gated(self, pod: Obj) -> None:
        updated = copy.deepcopy(pod)
        if _set_condition(
            updated,
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "SchedulingGated",
                "message": SCHEDULING_GATED_MESSAGE,
            },
            self.state.clock.timestamp(),
        ):
            self.state.store.update(PODS, updated)

    def _schedule_one(
        self, pod: Obj, nodes: list[Obj], usage: dict[str, tuple[Resources, int]]
    ) -> float | None:
        spec = pod.get("spec") or {}
        requests = self._requests.of(pod)
        allowed = prefilter_node_names(spec)
        verdicts: list[NodeVerdict] = []
        feasible: list[Obj] = []
        for node in nodes:
            name = node["metadata"]["name"]
            if allowed is not None and name not in allowed:
                verdicts.append(NodeVerdict([REASON_AFFINITY_PREFILTER]))
                continue
            requested, count = usage.get(name, ({}, 0))
            verdict = filter_node(
                spec, node, requested, count, requests, self._node_allocatable(node)
            )
            if verdict.fits:
                feasible.append(node)
            else:
                verdicts.append(verdict)
        if feasible:
            best = max(
                feasible,
                key=lambda n: self._score(
                    self._node_allocatable(n),
                    usage.get(n["metadata"]["name"], ({}, 0))[0],
                    requests,
                ),
            )
            self._bind(pod, best["metadata"]["name"])
            requested, count = usage.get(best["metadata"]["name"], ({}, 0))
            usage[best["metadata"]["name"]] = (add(requested, requests), count + 1)
            return None
        message = fit_error_message(
            len(nodes), verdicts, preemption_never=spec.get("preemptionPolicy") == "Never"
        )
        return self._mark_unschedulable(pod, message)

    @staticmethod
    def _score(allocatable: Resources, requested: Resources, requests: Resources) -> Decimal:
        """NodeResourcesFit's LeastAllocated on cpu and memory (``max`` keeps the first node,
        in name order, of equal scores)."""
        free = Decimal(0)
        for resource in ("cpu", "memory"):
            total = allocatable.get(resource, Decimal(0))
            if total > 0:
                used = requested.get(resource, Decimal(0)) + requests.get(resource, Decimal(0))
                free += (total - used) / total
        return free

    def _bind(self, pod: Obj, node_name: str) -> None:
        """What the ``pods/binding`` subresource does: set the node and ``PodScheduled``."""
        store = self.state.store
        meta = pod["metadata"]
        updated = store.get(PODS, meta["namespace"], meta["name"])
        if updated is None:
            return
        updated["spec"]["nodeName"] = node_name
        # PodTopologyLabels admission on pods/binding: the node's topology labels.
        node = store.peek(NODES, "", node_name)
        topology = {
            key: value
            for key, value in ((node or {}).get("metadata", {}).get("labels") or {}).items()
            if key in ("topology.kubernetes.io/zone", "topology.kubernetes.io/region")
            or key.startswith("topology.k8s.io/")
        }
        if topology:
            updated["metadata"].setdefault("labels", {}).update(topology)
        _set_condition(
            updated, {"type": "PodScheduled", "status": "True"}, self.state.clock.timestamp()
        )
        for key in ("reason", "message"):
            for condition in updated["status"]["conditions"]:
                if condition["type"] == "PodScheduled":
                    condition.pop(key, None)
        stored = store.update(PODS, updated)
        self._last_event.pop(meta["uid"], None)
        self.state.events.record(
            stored,
            "Normal",
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node_name}",
            component=SCHEDULER_NAME,
        )

    def _mark_unschedulable(self, pod: Obj, message: str) -> float:
        store = self.state.store
        clock = self.state.clock
        now = clock.now()
        uid = pod["metadata"]["uid"]
        updated = copy.deepcopy(pod)
        changed = _set_condition(
            updated,
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            },
            clock.timestamp(),
        )
        if changed:
            pod = store.update(PODS, updated)
        last = self._last_event.get(uid)
        retry = clock.scaled(self.RETRY_SECONDS)
        if changed or last is None or last[0] != message or now - last[1] >= retry:
            self.state.events.record(
                pod, "Warning", "FailedScheduling", message, component=SCHEDULER_NAME
            )
            self._last_event[uid] = (message, now)
            last = self._last_event[uid]
        return last[1] + retry


# --- the cluster autoscaler ----------------------------------------------------------------------

MAX_NODE_GROUP_SIZE_REACHED = "max node group size reached"
"""cluster-autoscaler processors/status: ``MaxLimitReachedReason``."""
SCALE_DOWN_UNNEEDED_SECONDS = 600.0
"""``--scale-down-unneeded-time`` default: 10 minutes."""


@dataclass
class _Bin:
    """A node in a simulation: what it can hold and what is already planned on it."""

    node: Obj
    requested: Resources = field(default_factory=dict)
    count: int = 0

    def try_place(self, spec: Obj, requests: Resources) -> bool:
        if filter_node(spec, self.node, self.requested, self.count, requests).fits:
            self.requested = add(self.requested, requests)
            self.count += 1
            return True
        return False


class ClusterAutoscaler:
    """cluster-autoscaler: scale-up for unschedulable pods, scale-down of empty nodes."""

    name = "cluster-autoscaler"
    component = "cluster-autoscaler"

    def __init__(self, state: ClusterState, pools: NodePoolManager) -> None:
        self.state = state
        self.pools = pools
        self._next_scan = 0.0
        self._empty_since: dict[str, float] = {}
        self._requests = _RequestCache()

    def reconcile(self) -> float | None:
        if not any(pool.autoscaled for pool in self.pools.pools):
            return None  # autoscaling is off on every pool: no cluster-autoscaler runs
        now = self.state.clock.now()
        if now + 1e-9 < self._next_scan:
            return self._next_scan
        self._scan()
        scan = float(self.state.config.autoscaler_scan_seconds)
        self._next_scan = now + self.state.clock.scaled(scan)
        return self._next_scan

    # --- one loop --------------------------------------------------------------------------

    def _scan(self) -> None:
        store = self.state.store
        pods = list(store.objects(PODS))
        self._requests.keep_only({pod["metadata"].get("uid", "") for pod in pods})
        nodes = sorted(store.objects(NODES), key=lambda n: n["metadata"]["name"])
        unschedulable = sorted(
            (pod for pod in pods if self._is_unschedulable(pod)),
            key=lambda p: (
                -int((p.get("spec") or {}).get("priority") or 0),
                p["metadata"].get("creationTimestamp") or "",
                p["metadata"]["namespace"],
                p["metadata"]["name"],
            ),
        )
        scaled = False
        if unschedulable:
            scaled = self._scale_up(unschedulable, pods, nodes)
        if not scaled:
            self._scale_down(pods, nodes)

    @staticmethod
    def _is_unschedulable(pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        if spec.get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return False
        if (spec.get("schedulerName") or SCHEDULER_NAME) != SCHEDULER_NAME:
            return False
        condition = _condition(pod, "PodScheduled")
        return bool(
            condition
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        )

    def _scale_up(self, unschedulable: list[Obj], pods: list[Obj], nodes: list[Obj]) -> bool:
        """One scale-up decision; True when a node group was scaled up."""
        usage = _usage(pods, self._requests)
        existing = [
            _Bin(node, *usage.get(node["metadata"]["name"], ({}, 0)))
            for node in nodes
            if node_is_ready(node)
        ]
        upcoming = [
            _Bin(self.pools.template(pool.name))
            for pool in self.pools.pools
            for _ in range(self.pools.upcoming(pool.name))
        ]
        # Pods the scheduler can still place, and pods that will fit on nodes being added,
        # do not trigger anything (filterOutSchedulable / upcoming nodes in the estimator).
        remaining: list[Obj] = []
        for pod in unschedulable:
            spec = pod.get("spec") or {}
            requests = self._requests.of(pod)
            if any(b.try_place(spec, requests) for b in existing):
                continue
            if any(b.try_place(spec, requests) for b in upcoming):
                continue
            remaining.append(pod)
        if not remaining:
            return False

        skipped: dict[str, str] = {}
        rejected: dict[str, dict[str, list[str]]] = {}
        options: list[tuple[int, int, int, NodePoolConfig, int, list[Obj]]] = []
        for index, pool in enumerate(self.pools.pools):
            if not pool.autoscaled:
                continue  # not a node group of the autoscaler
            target = self.pools.target_size(pool.name)
            if target >= pool.ceiling:
                skipped[pool.name] = MAX_NODE_GROUP_SIZE_REACHED
                continue
            template = self.pools.template(pool.name)
            room = pool.ceiling - target
            bins: list[_Bin] = []
            covered: list[Obj] = []
            for pod in remaining:
                spec = pod.get("spec") or {}
                requests = self._requests.of(pod)
                verdict = filter_node(spec, template, {}, 0, requests)
                if not verdict.fits:
                    rejected.setdefault(pod["metadata"]["uid"], {})[pool.name] = verdict.reasons
                    continue
                if any(b.try_place(spec, requests) for b in bins):
                    covered.append(pod)
                elif len(bins) < room:
                    fresh = _Bin(copy.deepcopy(template))
                    fresh.try_place(spec, requests)
                    bins.append(fresh)
                    covered.append(pod)
            if covered:
                options.append((len(covered), -len(bins), -index, pool, len(bins), covered))

        if options:
            _, _, _, pool, count, covered = max(options, key=lambda o: o[:3])
            target = self.pools.target_size(pool.name)
            self.pools.scale_up(pool.name, count)
            info = f"[{{{pool.name} {target}->{target + count} (max: {pool.ceiling})}}]"
            for pod in covered:
                self.state.events.record(
                    pod,
                    "Normal",
                    "TriggeredScaleUp",
                    f"pod triggered scale-up: {info}",
                    component=self.component,
                )
            return True

        for pod in remaining:
            aggregated: dict[str, int] = {}
            for reasons in rejected.get(pod["metadata"]["uid"], {}).values():
                for reason in reasons:
                    aggregated[reason] = aggregated.get(reason, 0) + 1
            for reason in skipped.values():
                aggregated[reason] = aggregated.get(reason, 0) + 1
            reasons_text = ", ".join(sorted(f"{n} {reason}" for reason, n in aggregated.items()))
            self.state.events.record(
                pod,
                "Normal",
                "NotTriggerScaleUp",
                f"pod didn't trigger scale-up: {reasons_text}",
                component=self.component,
            )
        return False

    def _scale_down(self, pods: list[Obj], nodes: list[Obj]) -> None:
        """Remove nodes of autoscaled pools that stayed empty for the unneeded time, down to the
        pool's configured size (its minimum)."""
        now = self.state.clock.now()
        busy = {pod["spec"]["nodeName"] for pod in pods if (pod.get("spec") or {}).get("nodeName")}
        seen: set[str] = set()
        for node in nodes:
            name = node["metadata"]["name"]
            pool_name = self.pools.pool_of(name)
            if pool_name is None or not self.pools.pool(pool_name).autoscaled:
                continue
            if name in busy:
                continue
            seen.add(name)
            since = self._empty_since.setdefault(name, now)
            pool = self.pools.pool(pool_name)
            unneeded = now - since >= self.state.clock.scaled(SCALE_DOWN_UNNEEDED_SECONDS)
            if unneeded and self.pools.current(pool_name) > pool.nodes:
                self.state.events.record(
                    node,
                    "Normal",
                    "ScaleDown",
                    "marked the node as toBeDeleted/unschedulable",
                    component=self.component,
                )
                self.pools.remove_node(name)
                seen.discard(name)
        for name in set(self._empty_since) - seen:
            self._empty_since.pop(name, None)
