"""The Argo workflow controller of the simulated cluster: which Workflows run (controller
parallelism), one pass per changed Workflow, the status it writes (plain, compressed or
offloaded nodes), pod labels and pod GC, and the TTL of finished Workflows."""

from __future__ import annotations

import base64
import contextlib
import copy
import gzip
import json
import logging
from collections.abc import Callable
from typing import Any

from ...admission import admit_create
from ...resources import (
    ARGO_CLUSTER_WORKFLOW_TEMPLATES,
    ARGO_RESOURCES,
    ARGO_WORKFLOW_TEMPLATES,
    ARGO_WORKFLOWS,
    NAMESPACES,
    PODS,
    ApiError,
)
from ...selectors import labels_match, selector_from_dict
from ...state import ClusterState
from .config import ArgoSettings, check_config
from .engine import Operation, pod_node_id
from .expressions import TemplateError, parse_duration
from .names import COMPLETED_LABEL, PHASE_LABEL, fnv32a
from .nodes import Nodes, fulfilled, update_progress
from .workflow import FINISHED, mark_phase, operate

log = logging.getLogger("simulated_k8s_cluster")

Obj = dict[str, Any]

POSTPONED = "Workflow processing has been postponed because too many workflows are already running"


def merge_spec(template_spec: Obj, workflow_spec: Obj) -> Obj:
    """``JoinWorkflowSpec``: the Workflow's fields win; arguments merge by parameter name."""
    merged = copy.deepcopy(template_spec)
    for key, value in workflow_spec.items():
        if key != "arguments":
            merged[key] = copy.deepcopy(value)
    params = list((merged.get("arguments") or {}).get("parameters") or [])
    for param in (workflow_spec.get("arguments") or {}).get("parameters") or []:
        for i, existing in enumerate(params):
            if existing.get("name") == param.get("name"):
                params[i] = {**existing, **copy.deepcopy(param)}
                break
        else:
            params.append(copy.deepcopy(param))
    if params:
        merged.setdefault("arguments", {})["parameters"] = params
    return merged


class ArgoController:
    """Argo Workflows' controller for ``argoproj.io/v1alpha1`` Workflows (see the package)."""

    name = "argo-workflow-controller"

    def __init__(self, state: ClusterState, kubelet: Any = None) -> None:
        self.state = state
        self.kubelet = kubelet
        self.settings: ArgoSettings = check_config(state.config.extra.get("argo"))
        self._seen: dict[str, tuple[Any, float | None]] = {}
        """Workflow uid → (what the last pass saw, when it wants to run again)."""
        self._nodes: dict[str, tuple[str, dict[str, Obj]]] = {}
        """Workflow uid → (compressed form or version written, the nodes)."""
        self._pod_templates: dict[str, dict[str, Obj]] = {}
        self.resource_objects: dict[str, tuple[str, str, str, str, str]] = {}
        """Node id → (apiVersion, kind, namespace, name, error) a resource template acted on."""

    # --- installation ----------------------------------------------------------------------------

    def install(self) -> None:
        """Serve the Workflow, WorkflowTemplate and ClusterWorkflowTemplate resources."""
        for resource in ARGO_RESOURCES:
            self.state.registry.add(resource)

    def bootstrap(self, section: Any) -> None:
        """Create the templates of the ``argo`` config section (and missing namespaces)."""
        settings = check_config(section)
        store = self.state.store
        for resource, items in (
            (ARGO_WORKFLOW_TEMPLATES, settings.workflow_templates),
            (ARGO_CLUSTER_WORKFLOW_TEMPLATES, settings.cluster_workflow_templates),
        ):
            for item in items:
                obj = copy.deepcopy(item)
                obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
                meta = obj["metadata"]
                namespace = ""
                if resource.namespaced:
                    namespace = meta.setdefault("namespace", "default")
                    if store.peek(NAMESPACES, "", namespace) is None:
                        store.create(
                            NAMESPACES, admit_create(NAMESPACES, {"metadata": {"name": namespace}})
                        )
                if store.peek(resource, namespace, meta["name"]) is None:
                    store.create(resource, admit_create(resource, obj))

    # --- host services for an operation ----------------------------------------------------------

    def files(self, pod: Obj) -> dict[str, str]:
        kubelet = self.kubelet or self.state.log_source
        reader = getattr(kubelet, "files", None)
        return dict(reader(pod, "main")) if reader else {}

    def stdout(self, pod: Obj) -> str:
        """What the pod's ``main`` container printed (its logs), as one string."""
        source = self.state.log_source
        if source is None:
            return ""
        try:
            lines, _ = source.lines(pod, "main", False)
        except ApiError:
            return ""
        return "".join(f"{line}\n" for _, line in lines)

    def find_template(self, namespace: str, name: str, cluster: bool) -> Obj | None:
        if cluster:
            return self.state.store.peek(ARGO_CLUSTER_WORKFLOW_TEMPLATES, "", name)
        return self.state.store.peek(ARGO_WORKFLOW_TEMPLATES, namespace, name)

    # --- the loop --------------------------------------------------------------------------------

    def reconcile(self) -> float | None:
        store, now = self.state.store, self.state.clock.now()
        wake: list[float] = []
        workflows = list(store.objects(ARGO_WORKFLOWS))
        live = {wf["metadata"]["uid"] for wf in workflows}
        for cache in (self._seen, self._nodes, self._pod_templates):
            for uid in [u for u in cache if u not in live]:
                del cache[uid]
        limit = self.settings.parallelism
        running = sum(1 for wf in workflows if (wf.get("status") or {}).get("phase") == "Running")
        for stored in workflows:
            meta = stored["metadata"]
            status = stored.get("status") or {}
            phase = status.get("phase") or ""
            try:
                if phase in FINISHED and status.get("finishedAt"):
                    wanted = self._finished_cached(stored, now)
                elif meta.get("deletionTimestamp"):
                    continue
                elif phase in ("", "Pending") and limit is not None and running >= limit:
                    self._postpone(stored)
                    continue
                else:
                    if phase in ("", "Pending"):
                        running += 1
                    wanted = self._sync(stored, now)
            except ApiError as exc:  # e.g. the namespace is being deleted
                log.debug("argo: workflow %s/%s: %s", meta.get("namespace"), meta["name"], exc)
                continue
            if wanted is not None:
                wake.append(wanted)
        return min(wake) if wake else None

    def _postpone(self, stored: Obj) -> None:
        status = stored.get("status") or {}
        if status.get("phase") == "Pending" and status.get("message") == POSTPONED:
            return
        wf = copy.deepcopy(stored)
        labels = wf["metadata"].setdefault("labels", {})
        labels[PHASE_LABEL] = "Pending"
        labels.setdefault(COMPLETED_LABEL, "false")
        wf["status"] = {
            **(wf.get("status") or {}),
            "phase": "Pending",
            "startedAt": None,
            "finishedAt": None,
            "message": POSTPONED,
        }
        self.state.store.update(ARGO_WORKFLOWS, wf)

    # --- one Workflow ----------------------------------------------------------------------------

    def _pods(self, stored: Obj) -> dict[str, Obj]:
        name = stored["metadata"]["name"]
        return {
            pod_node_id(name, obj): obj
            for resource, obj in self.state.store.dependents(stored["metadata"]["uid"])
            if resource is PODS
        }

    def _read_nodes(self, uid: str, status: Obj) -> dict[str, Obj]:
        if status.get("nodes"):
            return copy.deepcopy(status["nodes"])
        cached = self._nodes.get(uid)
        marker = status.get("compressedNodes") or status.get("offloadNodeStatusVersion") or ""
        if cached is not None and cached[0] == marker:
            return copy.deepcopy(cached[1])
        if status.get("compressedNodes"):
            raw = gzip.decompress(base64.b64decode(status["compressedNodes"]))
            return dict(json.loads(raw))
        return copy.deepcopy(cached[1]) if cached is not None else {}

    def _sync(self, stored: Obj, now: float) -> float | None:
        meta = stored["metadata"]
        uid = meta["uid"]
        pods = self._pods(stored)
        signature = (
            meta["resourceVersion"],
            tuple(
                sorted(
                    (p["metadata"]["name"], p["metadata"]["resourceVersion"]) for p in pods.values()
                )
            ),
        )
        seen = self._seen.get(uid)
        if seen is not None and seen[0] == signature and (seen[1] is None or now < seen[1]):
            return seen[1]
        # Copy everything but the nodes, which _read_nodes copies once.
        wf = {k: copy.deepcopy(v) for k, v in stored.items() if k != "status"}
        stored_status = stored.get("status") or {}
        status = {k: copy.deepcopy(v) for k, v in stored_status.items() if k != "nodes"}
        wf["status"] = status
        spec = wf.get("spec") or {}
        exec_spec, error = spec, None
        ref = spec.get("workflowTemplateRef")
        if ref:
            stored_spec = status.get("storedWorkflowTemplateSpec")
            if stored_spec is None:
                cluster = bool(ref.get("clusterScope"))
                found = self.find_template(meta["namespace"], str(ref.get("name")), cluster)
                if found is None:
                    kind = "clusterworkflowtemplates" if cluster else "workflowtemplates"
                    error = f'{kind}.argoproj.io "{ref.get("name")}" not found'
                else:
                    stored_spec = merge_spec(found.get("spec") or {}, spec)
                    status["storedWorkflowTemplateSpec"] = stored_spec
            if stored_spec is not None:
                exec_spec = copy.deepcopy(stored_spec)
        nodes = Nodes(
            meta["name"],
            self._read_nodes(uid, stored_status),
            lambda: self.state.clock.timestamp(now),
        )
        op = Operation(
            self, wf, exec_spec, nodes, pods, now, self._pod_templates.setdefault(uid, {})
        )
        if error is not None:
            mark_phase(op, "Error", error)
        else:
            operate(op, lambda name, cluster: self.find_template(meta["namespace"], name, cluster))
        return self._write(stored, op, signature)

    def _write(self, stored: Obj, op: Operation, signature: Any) -> float | None:
        wf, status, uid = op.workflow, op.status, op.uid
        status["progress"] = update_progress(op.nodes)
        nodes = op.nodes.by_id
        status.pop("nodes", None)
        status.pop("compressedNodes", None)
        status.pop("offloadNodeStatusVersion", None)
        text = json.dumps(nodes, separators=(",", ":"))
        if nodes and self.settings.compress_nodes:
            compressed = base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()
            status["compressedNodes"] = compressed
            self._nodes[uid] = (compressed, copy.deepcopy(nodes))
        elif nodes and self.settings.offload_nodes:
            version = f"fnv:{fnv32a(text)}"
            status["offloadNodeStatusVersion"] = version
            self._nodes[uid] = (version, copy.deepcopy(nodes))
        elif nodes:
            status["nodes"] = nodes
        self._label_pods(op)
        written = stored
        if wf != stored:
            written = self.state.store.update(ARGO_WORKFLOWS, wf)
        wake = op.wake_at
        if status.get("phase") in FINISHED and status.get("finishedAt"):
            finished = self._finished(written, op.now)
            wake = finished if wake is None or finished is None else min(wake, finished)
        else:
            gc_wake = self._pod_gc(op.spec, status, lambda: op.nodes.by_id, op.pods, op.now)
            if gc_wake is not None:
                wake = gc_wake if wake is None else min(wake, gc_wake)
        self._seen[uid] = ((written["metadata"]["resourceVersion"], signature[1]), wake)
        return wake

    def _label_pods(self, op: Operation) -> None:
        """``labelPodCompleted``: pods of fulfilled nodes get ``completed=true``."""
        store = self.state.store
        for nid, pod in list(op.pods.items()):
            node = op.nodes.by_id.get(nid)
            labels = pod["metadata"].get("labels") or {}
            if fulfilled(node) and labels.get(COMPLETED_LABEL) != "true":
                current = store.get(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
                if current is None or current["metadata"].get("deletionTimestamp"):
                    continue
                current["metadata"].setdefault("labels", {})[COMPLETED_LABEL] = "true"
                op.pods[nid] = store.update(PODS, current)

    # --- finished Workflows: pod GC and TTL ------------------------------------------------------

    def _finished_cached(self, stored: Obj, now: float) -> float | None:
        """``_finished``, skipped while neither the Workflow nor its pods changed."""
        meta = stored["metadata"]
        signature = (
            meta["resourceVersion"],
            tuple(sorted(p["metadata"]["resourceVersion"] for p in self._pods(stored).values())),
        )
        seen = self._seen.get(meta["uid"])
        if seen is not None and seen[0] == signature and (seen[1] is None or now < seen[1]):
            return seen[1]
        wake = self._finished(stored, now)
        if self.state.store.peek(ARGO_WORKFLOWS, meta["namespace"], meta["name"]) is stored:
            pods = self._pods(stored).values()
            signature = (
                meta["resourceVersion"],
                tuple(sorted(p["metadata"]["resourceVersion"] for p in pods)),
            )
            self._seen[meta["uid"]] = (signature, wake)
        return wake

    def _finished(self, stored: Obj, now: float) -> float | None:
        meta, spec = stored["metadata"], stored.get("spec") or {}
        status = stored.get("status") or {}
        if meta.get("deletionTimestamp"):
            return None
        clock, store = self.state.clock, self.state.store
        wake: list[float] = []
        finished_at = clock.parse(status["finishedAt"])
        phase = status.get("phase")
        exec_spec = status.get("storedWorkflowTemplateSpec") or spec
        gc_wake = self._pod_gc(
            exec_spec,
            status,
            lambda: self._read_nodes(meta["uid"], status),
            self._pods(stored),
            now,
        )
        if gc_wake is not None:
            wake.append(gc_wake)
        ttl = exec_spec.get("ttlStrategy") or {}
        seconds = ttl.get("secondsAfterCompletion")
        if phase == "Succeeded" and ttl.get("secondsAfterSuccess") is not None:
            seconds = ttl["secondsAfterSuccess"]
        if phase in ("Failed", "Error") and ttl.get("secondsAfterFailure") is not None:
            seconds = ttl["secondsAfterFailure"]
        if seconds is not None:
            expires = finished_at + float(seconds)
            if now >= expires:
                store.delete(ARGO_WORKFLOWS, meta["namespace"], meta["name"], "Background")
                return None
            wake.append(expires)
        return min(wake) if wake else None

    def _pod_gc(
        self,
        spec: Obj,
        status: Obj,
        read_nodes: Callable[[], dict[str, Obj]],
        pods: dict[str, Obj],
        now: float,
    ) -> float | None:
        """``podGC``: delete the pods the strategy allows (after ``deleteDelayDuration``)."""
        gc = spec.get("podGC") or {}
        strategy = gc.get("strategy")
        if not strategy or not pods:
            return None
        try:
            delay = parse_duration(gc.get("deleteDelayDuration") or "0")
        except TemplateError:
            delay = 0.0
        finished = status.get("finishedAt") if status.get("phase") in FINISHED else None
        finished_at = self.state.clock.parse(finished) if finished else None
        selector = selector_from_dict(gc.get("labelSelector"))
        nodes = read_nodes()
        wake: float | None = None
        for nid, pod in list(pods.items()):
            meta = pod["metadata"]
            if meta.get("deletionTimestamp") or not labels_match(selector, meta.get("labels")):
                continue
            at = self._gc_time(strategy, status.get("phase"), nodes.get(nid) or {}, finished_at)
            if at is None:
                continue
            if now >= at + delay:
                with contextlib.suppress(ApiError):
                    self.state.store.delete(PODS, meta["namespace"], meta["name"], "Background")
            elif wake is None or at + delay < wake:
                wake = at + delay
        return wake

    def _gc_time(
        self, strategy: str, phase: Any, node: Obj, finished_at: float | None
    ) -> float | None:
        """When a pod becomes eligible for deletion under a ``podGC`` strategy (or None)."""
        if strategy in ("OnPodCompletion", "OnPodSuccess"):
            if not fulfilled(node) or (
                strategy == "OnPodSuccess" and node.get("phase") != "Succeeded"
            ):
                return None
            return self.state.clock.parse(node["finishedAt"]) if node.get("finishedAt") else 0.0
        if finished_at is None:
            return None
        if strategy == "OnWorkflowSuccess" and phase != "Succeeded":
            return None
        if strategy in ("OnWorkflowCompletion", "OnWorkflowSuccess"):
            return finished_at
        return None
