"""Does a pod fit a node? The filter logic of kube-scheduler, as pure functions.

Shared by the scheduler (real nodes) and the cluster autoscaler (node templates built from a
pool's configuration). Reasons are worded as the upstream filter plugins word them, and the
``FailedScheduling`` message is assembled as ``FitError.Error()`` assembles it
(``pkg/scheduler/framework/types.go``), including the ``preemption:`` part that the
``DefaultPreemption`` post-filter adds (``pkg/scheduler/framework/preemption/preemption.go``):

    0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node
    affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found for
    incoming pod, 2 Preemption is not helpful for scheduling.

Filters run in the default profile's order (NodeUnschedulable, TaintToleration, NodeAffinity,
NodeResourcesFit) and a node reports only the first filter that rejects it, as the framework
stops at the first failing filter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

Obj = Mapping[str, Any]
Resources = dict[str, Decimal]

# Reasons, as the upstream plugins word them.
REASON_UNSCHEDULABLE_NODE = "node(s) were unschedulable"
"""nodeunschedulable.ErrReasonUnschedulable"""
REASON_TAINT = "node(s) had untolerated taint(s)"
"""tainttoleration: since kubernetes#134740 (backported to 1.34) the message no longer names the
taint; older schedulers said ``node(s) had untolerated taint {key: value}``."""
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
"""nodeaffinity.ErrReasonPod"""
REASON_AFFINITY_PREFILTER = "node(s) didn't satisfy plugin(s) [NodeAffinity]"
"""Nodes left out by NodeAffinity's PreFilter (``matchFields`` on ``metadata.name``)."""
REASON_TOO_MANY_PODS = "Too many pods"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
PREEMPTION_NO_VICTIMS = "No preemption victims found for incoming pod"
PREEMPTION_NEVER = "not eligible due to preemptionPolicy=Never."

NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
"""What the node lifecycle controller puts on a node whose Ready condition is not True."""
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}

_SCHEDULING_EFFECTS = ("NoSchedule", "NoExecute")


# --- quantities ------------------------------------------------------------------------------


def quantity(value: Any) -> Decimal:
    """A Kubernetes quantity (``"500m"``, ``"16Gi"``, ``2``) as a Decimal."""
    return Decimal(parse_quantity(value))


def resource_list(values: Mapping[str, Any] | None) -> Resources:
    return {name: quantity(v) for name, v in (values or {}).items()}


def add(total: Resources, more: Mapping[str, Decimal]) -> Resources:
    out = dict(total)
    for name, value in more.items():
        out[name] = out.get(name, Decimal(0)) + value
    return out


def _max(total: Resources, other: Mapping[str, Decimal]) -> Resources:
    out = dict(total)
    for name, value in other.items():
        out[name] = max(out.get(name, Decimal(0)), value)
    return out


def container_requests(container: Obj) -> Resources:
    """A container's requests; a resource with only a limit requests its limit (API defaulting)."""
    resources = container.get("resources") or {}
    requests = resource_list(resources.get("requests"))
    for name, limit in resource_list(resources.get("limits")).items():
        requests.setdefault(name, limit)
    return requests


def pod_requests(spec: Obj) -> Resources:
    """What the scheduler reserves for a pod (``resourcehelper.PodRequests``).

    The sum over app containers and restartable (sidecar) init containers, or the largest
    regular init container plus the sidecars started before it, whichever is larger; then the
    pod ``overhead``. Pod-level ``resources`` replace cpu/memory when set.
    """
    total: Resources = {}
    for container in spec.get("containers") or []:
        total = add(total, container_requests(container))
    sidecars: Resources = {}
    init_max: Resources = {}
    for container in spec.get("initContainers") or []:
        requests = container_requests(container)
        if container.get("restartPolicy") == "Always":
            sidecars = add(sidecars, requests)
            init_max = _max(init_max, sidecars)
        else:
            init_max = _max(init_max, add(requests, sidecars))
    total = _max(add(total, sidecars), init_max)
    pod_level = container_requests(spec)  # pod-level ``resources``, same defaulting
    for name in ("cpu", "memory"):
        if name in pod_level:
            total[name] = pod_level[name]
    total = add(total, resource_list(spec.get("overhead")))
    return {name: value for name, value in total.items() if value != 0}


def node_allocatable(node: Obj) -> Resources:
    status = node.get("status") or {}
    return resource_list(status.get("allocatable") or status.get("capacity"))


# --- taints and tolerations ------------------------------------------------------------------


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """``Toleration.ToleratesTaint`` (k8s.io/api/core/v1/toleration.go)."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def untolerated_taint(
    taints: Iterable[Obj],
    tolerations: Iterable[Obj] | None,
    effects: tuple[str, ...] = _SCHEDULING_EFFECTS,
) -> Obj | None:
    """The first taint with one of ``effects`` that no toleration tolerates, or None."""
    tolerations = list(tolerations or [])
    for taint in taints:
        if taint.get("effect") not in effects:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


# --- node selectors and required node affinity -----------------------------------------------


def _as_int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def match_expression(expression: Obj, values_by_key: Mapping[str, str]) -> bool:
    """One ``NodeSelectorRequirement``: In, NotIn, Exists, DoesNotExist, Gt, Lt."""
    key = expression.get("key", "")
    operator = expression.get("operator")
    values = [str(v) for v in expression.get("values") or []]
    present = key in values_by_key
    value = values_by_key.get(key)
    if operator == "In":
        return present and value in values
    if operator == "NotIn":
        return not present or value not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        have, bound = _as_int(value), _as_int(values[0])
        if have is None or bound is None:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def node_fields(node: Obj) -> dict[str, str]:
    """The fields a ``matchFields`` requirement can use (only ``metadata.name``)."""
    return {"metadata.name": node.get("metadata", {}).get("name", "")}


def matches_term(term: Obj, node: Obj) -> bool:
    """A ``NodeSelectorTerm``: every matchExpression and matchField holds. An empty term
    matches nothing (``nodeaffinity.NodeSelectorRequirementsAsSelector`` semantics)."""
    expressions = term.get("matchExpressions") or []
    fields_ = term.get("matchFields") or []
    if not expressions and not fields_:
        return False
    labels = node.get("metadata", {}).get("labels") or {}
    return all(match_expression(e, labels) for e in expressions) and all(
        match_expression(f, node_fields(node)) for f in fields_
    )


def required_terms(spec: Obj) -> list[Obj] | None:
    """The pod's required node affinity terms, or None when it has none."""
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return None
    return list(required.get("nodeSelectorTerms") or [])


def matches_node_affinity(spec: Obj, node: Obj) -> bool:
    """``nodeSelector`` (all labels equal) and required node affinity (any term matches)."""
    labels = node.get("metadata", {}).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    terms = required_terms(spec)
    if terms is None:
        return True
    return any(matches_term(term, node) for term in terms)


def prefilter_node_names(spec: Obj) -> set[str] | None:
    """NodeAffinity's PreFilter: when every required term pins ``metadata.name`` with ``In``,
    only those nodes are evaluated; None means every node is."""
    terms = required_terms(spec)
    if not terms:
        return None
    names: set[str] = set()
    for term in terms:
        term_names: set[str] | None = None
        for requirement in term.get("matchFields") or []:
            if requirement.get("key") == "metadata.name" and requirement.get("operator") == "In":
                values = {str(v) for v in requirement.get("values") or []}
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None
        names |= term_names
    return names


# --- the filter ------------------------------------------------------------------------------


@dataclass
class NodeVerdict:
    """Why a node cannot take the pod; no reasons means it fits."""

    reasons: list[str] = field(default_factory=list)
    resolvable: bool = False
    """True when preemption could help (Unschedulable rather than UnschedulableAndUnresolvable)."""

    @property
    def fits(self) -> bool:
        return not self.reasons


def node_is_ready(node: Obj) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def effective_taints(node: Obj) -> list[Obj]:
    """The node's taints plus the ones the node lifecycle controller would add."""
    taints = list((node.get("spec") or {}).get("taints") or [])
    keys = {t.get("key") for t in taints}
    if not node_is_ready(node) and NOT_READY_TAINT["key"] not in keys:
        taints.append(dict(NOT_READY_TAINT))
    return taints


def filter_node(
    pod_spec: Obj,
    node: Obj,
    requested: Mapping[str, Decimal] | None = None,
    pod_count: int = 0,
    requests: Mapping[str, Decimal] | None = None,
    allocatable: Mapping[str, Decimal] | None = None,
) -> NodeVerdict:
    """Run the filters for one pod on one node already holding ``requested`` / ``pod_count``.

    ``requests`` is the pod's own (``pod_requests(pod_spec)`` when not given), ``allocatable``
    the node's (``node_allocatable(node)`` when not given).
    """
    node_spec = node.get("spec") or {}
    tolerations = pod_spec.get("tolerations") or []
    if node_spec.get("unschedulable") and not any(
        tolerates(t, UNSCHEDULABLE_TAINT) for t in tolerations
    ):
        return NodeVerdict([REASON_UNSCHEDULABLE_NODE])
    if untolerated_taint(effective_taints(node), tolerations) is not None:
        return NodeVerdict([REASON_TAINT])
    if not matches_node_affinity(pod_spec, node):
        return NodeVerdict([REASON_AFFINITY])
    return fit_resources(
        requests if requests is not None else pod_requests(pod_spec),
        allocatable if allocatable is not None else node_allocatable(node),
        requested or {},
        pod_count,
    )


def fit_resources(
    requests: Mapping[str, Decimal],
    allocatable: Mapping[str, Decimal],
    requested: Mapping[str, Decimal],
    pod_count: int,
) -> NodeVerdict:
    """NodeResourcesFit's ``fitsRequest``: pods count, then cpu, memory, storage, extended."""
    verdict = NodeVerdict(resolvable=True)
    unresolvable = False
    allowed_pods = allocatable.get("pods")
    if allowed_pods is not None and pod_count + 1 > allowed_pods:
        verdict.reasons.append(REASON_TOO_MANY_PODS)
    ordered = [n for n in ("cpu", "memory", "ephemeral-storage") if n in requests]
    ordered += sorted(
        n for n in requests if n not in ("cpu", "memory", "ephemeral-storage", "pods")
    )
    for name in ordered:
        want = requests[name]
        if want <= 0:
            continue
        have = allocatable.get(name, Decimal(0))
        if want > have - requested.get(name, Decimal(0)):
            verdict.reasons.append(f"Insufficient {name}")
            unresolvable = unresolvable or want > have
    verdict.resolvable = bool(verdict.reasons) and not unresolvable
    return verdict


def fit_error_message(
    num_nodes: int, verdicts: Iterable[NodeVerdict], preemption_never: bool = False
) -> str:
    """``FitError.Error()`` plus the DefaultPreemption post-filter message."""
    if num_nodes == 0:
        return "no nodes available to schedule pods"  # schedule_one.go ErrNoNodesAvailable
    verdicts = list(verdicts)
    reasons: dict[str, int] = {}
    for verdict in verdicts:
        for reason in verdict.reasons:
            reasons[reason] = reasons.get(reason, 0) + 1
    message = f"0/{num_nodes} nodes are available:"
    histogram = sorted(f"{count} {reason}" for reason, count in reasons.items())
    if histogram:
        message += " " + ", ".join(histogram) + "."
    if preemption_never:
        return f"{message} preemption: {PREEMPTION_NEVER}"
    outcome: dict[str, int] = {}
    for verdict in verdicts:
        key = PREEMPTION_NO_VICTIMS if verdict.resolvable else PREEMPTION_NOT_HELPFUL
        outcome[key] = outcome.get(key, 0) + 1
    preemption = ", ".join(sorted(f"{count} {reason}" for reason, count in outcome.items()))
    return f"{message} preemption: 0/{num_nodes} nodes are available: {preemption}."
