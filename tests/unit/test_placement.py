"""Pure placement logic of the simulated scheduler: requests, taints, affinity, fit messages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from simulated_k8s_cluster.placement import (
    REASON_AFFINITY,
    REASON_AFFINITY_PREFILTER,
    REASON_TAINT,
    REASON_TOO_MANY_PODS,
    REASON_UNSCHEDULABLE_NODE,
    NodeVerdict,
    filter_node,
    fit_error_message,
    match_expression,
    matches_node_affinity,
    pod_requests,
    prefilter_node_names,
    tolerates,
    untolerated_taint,
)

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def node(
    name: str = "n1",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
    ready: bool = True,
    unschedulable: bool = False,
    allocatable: dict[str, str] | None = None,
) -> dict[str, Any]:
    alloc = {"cpu": "4", "memory": "16Gi", "pods": "110", **(allocatable or {})}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
        "status": {
            "allocatable": alloc,
            "capacity": alloc,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def container(
    requests: dict[str, str] | None = None, limits: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return {"name": "c", "image": "x:1", "resources": resources, **extra}


def affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
        }
    }


# --- requests -------------------------------------------------------------------------------


def test_requests_sum_containers_and_default_to_limits() -> None:
    spec = {
        "containers": [
            container({"cpu": "500m"}, {"memory": "1Gi"}),
            container(limits={"cpu": "1", "nvidia.com/gpu": "1"}),
        ]
    }
    assert pod_requests(spec) == {
        "cpu": Decimal("1.5"),
        "memory": Decimal(2**30),
        "nvidia.com/gpu": Decimal(1),
    }


def test_init_containers_take_the_max() -> None:
    spec = {
        "initContainers": [container({"cpu": "3"}), container({"memory": "8Gi"})],
        "containers": [container({"cpu": "1", "memory": "1Gi"})],
    }
    assert pod_requests(spec) == {"cpu": Decimal(3), "memory": Decimal(8 * 2**30)}


def test_sidecars_add_to_the_app_containers_and_overhead_is_added() -> None:
    spec = {
        "initContainers": [
            container({"cpu": "1"}, restartPolicy="Always"),
            container({"cpu": "2"}),
        ],
        "containers": [container({"cpu": "1"})],
        "overhead": {"cpu": "250m"},
    }
    # max(app 1 + sidecar 1, init 2 + sidecar 1) + overhead
    assert pod_requests(spec) == {"cpu": Decimal("3.25")}


def test_no_requests_means_empty() -> None:
    assert pod_requests({"containers": [container()]}) == {}


# --- taints and tolerations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, True),
        ({"key": "nvidia.com/gpu", "operator": "Exists"}, True),
        ({"operator": "Exists"}, True),
        ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "present"}, True),
        ({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}, True),
        ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "absent"}, False),
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_tolerates(toleration: dict[str, Any], expected: bool) -> None:
    assert tolerates(toleration, GPU_TAINT) is expected


def test_prefer_no_schedule_taints_do_not_filter() -> None:
    soft = {"key": "k", "value": "v", "effect": "PreferNoSchedule"}
    assert untolerated_taint([soft], []) is None
    assert untolerated_taint([soft, GPU_TAINT], []) == GPU_TAINT


def test_no_execute_taint_filters() -> None:
    taint = {"key": "k", "effect": "NoExecute"}
    assert untolerated_taint([taint], [{"key": "k", "operator": "Exists"}]) is None
    assert untolerated_taint([taint], []) == taint


# --- node affinity --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"key": "pool", "operator": "In", "values": ["gpu", "tpu"]}, True),
        ({"key": "pool", "operator": "In", "values": ["cpu"]}, False),
        ({"key": "pool", "operator": "NotIn", "values": ["cpu"]}, True),
        ({"key": "pool", "operator": "NotIn", "values": ["gpu"]}, False),
        ({"key": "missing", "operator": "NotIn", "values": ["gpu"]}, True),
        ({"key": "pool", "operator": "Exists"}, True),
        ({"key": "missing", "operator": "Exists"}, False),
        ({"key": "missing", "operator": "DoesNotExist"}, True),
        ({"key": "pool", "operator": "DoesNotExist"}, False),
        ({"key": "gpus", "operator": "Gt", "values": ["3"]}, True),
        ({"key": "gpus", "operator": "Gt", "values": ["4"]}, False),
        ({"key": "gpus", "operator": "Lt", "values": ["5"]}, True),
        ({"key": "gpus", "operator": "Lt", "values": ["4"]}, False),
        ({"key": "pool", "operator": "Gt", "values": ["1"]}, False),  # not an integer
        ({"key": "missing", "operator": "Lt", "values": ["1"]}, False),
    ],
)
def test_match_expression(expression: dict[str, Any], expected: bool) -> None:
    assert match_expression(expression, {"pool": "gpu", "gpus": "4"}) is expected


def test_terms_are_ored_and_expressions_anded() -> None:
    n = node(labels={"pool": "gpu", "zone": "a"})
    both = {
        "matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["gpu"]},
            {"key": "zone", "operator": "In", "values": ["b"]},
        ]
    }
    either = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
    assert not matches_node_affinity({"affinity": affinity(both)}, n)
    assert matches_node_affinity({"affinity": affinity(both, either)}, n)


def test_empty_term_matches_nothing() -> None:
    assert not matches_node_affinity({"affinity": affinity({})}, node())


def test_node_selector_and_affinity_must_both_hold() -> None:
    n = node(labels={"pool": "gpu"})
    term = {"matchExpressions": [{"key": "pool", "operator": "Exists"}]}
    assert matches_node_affinity({"nodeSelector": {"pool": "gpu"}, "affinity": affinity(term)}, n)
    assert not matches_node_affinity(
        {"nodeSelector": {"pool": "cpu"}, "affinity": affinity(term)}, n
    )


def test_match_fields_on_metadata_name() -> None:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
    spec = {"affinity": affinity(term)}
    assert matches_node_affinity(spec, node("n2"))
    assert not matches_node_affinity(spec, node("n1"))
    assert prefilter_node_names(spec) == {"n2"}
    labelled = {"matchExpressions": [{"key": "pool", "operator": "Exists"}]}
    assert prefilter_node_names({"affinity": affinity(term, labelled)}) is None
    assert prefilter_node_names({}) is None


# --- the filter -----------------------------------------------------------------------------


def test_filter_order_reports_only_the_first_failing_filter() -> None:
    spec = {"containers": [container({"cpu": "64"})], "nodeSelector": {"pool": "x"}}
    assert filter_node(spec, node(taints=[GPU_TAINT])).reasons == [REASON_TAINT]
    assert filter_node(spec, node()).reasons == [REASON_AFFINITY]
    spec.pop("nodeSelector")
    assert filter_node(spec, node()).reasons == ["Insufficient cpu"]
    assert filter_node(spec, node(unschedulable=True)).reasons == [REASON_UNSCHEDULABLE_NODE]


def test_not_ready_node_counts_as_tainted() -> None:
    assert filter_node({"containers": [container()]}, node(ready=False)).reasons == [REASON_TAINT]


def test_resources_account_for_what_the_node_already_holds() -> None:
    spec = {"containers": [container({"cpu": "2", "memory": "1Gi"})]}
    used = {"cpu": Decimal(3)}
    verdict = filter_node(spec, node(), used, 1)
    assert verdict.reasons == ["Insufficient cpu"]
    assert verdict.resolvable  # would fit an empty node: preemption could help
    assert filter_node(spec, node(), {"cpu": Decimal(2)}, 1).fits


def test_request_beyond_allocatable_is_unresolvable() -> None:
    spec = {"containers": [container({"cpu": "8", "memory": "64Gi"})]}
    verdict = filter_node(spec, node())
    assert verdict.reasons == ["Insufficient cpu", "Insufficient memory"]
    assert not verdict.resolvable


def test_extended_resource_missing_on_node() -> None:
    spec = {"containers": [container(limits={"nvidia.com/gpu": "1"})]}
    assert filter_node(spec, node()).reasons == ["Insufficient nvidia.com/gpu"]
    assert filter_node(spec, node(allocatable={"nvidia.com/gpu": "1"})).fits


def test_too_many_pods() -> None:
    verdict = filter_node({"containers": [container()]}, node(allocatable={"pods": "2"}), {}, 2)
    assert verdict.reasons == [REASON_TOO_MANY_PODS]


def test_gpu_pool_seed_case() -> None:
    gpu = node(
        "gpu",
        labels={"cloud.google.com/gke-accelerator": "nvidia-l4"},
        taints=[GPU_TAINT],
        allocatable={"nvidia.com/gpu": "1"},
    )
    term = {
        "matchExpressions": [
            {"key": "cloud.google.com/gke-accelerator", "operator": "In", "values": ["nvidia-l4"]}
        ]
    }
    spec = {
        "containers": [container(limits={"nvidia.com/gpu": "1"})],
        "affinity": affinity(term),
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    assert filter_node(spec, gpu).fits
    assert filter_node(spec, node("cpu")).reasons == [REASON_AFFINITY]
    spec.pop("tolerations")
    assert filter_node(spec, gpu).reasons == [REASON_TAINT]


# --- messages -------------------------------------------------------------------------------


def test_fit_error_message_like_kube_scheduler() -> None:
    verdicts = [
        NodeVerdict(["Insufficient cpu"], resolvable=True),
        NodeVerdict([REASON_AFFINITY]),
        NodeVerdict([REASON_AFFINITY]),
    ]
    assert fit_error_message(3, verdicts) == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node "
        "affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims "
        "found for incoming pod, 2 Preemption is not helpful for scheduling."
    )


def test_fit_error_message_sorts_reasons_as_strings_and_counts_each_reason() -> None:
    verdicts = [
        NodeVerdict(["Insufficient cpu", "Insufficient memory"]),
        NodeVerdict([REASON_TAINT]),
        NodeVerdict([REASON_AFFINITY_PREFILTER]),
    ]
    assert fit_error_message(3, verdicts) == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
        "1 node(s) didn't satisfy plugin(s) [NodeAffinity], 1 node(s) had untolerated "
        "taint(s). preemption: 0/3 nodes are available: 3 Preemption is not helpful for "
        "scheduling."
    )


def test_fit_error_message_edge_cases() -> None:
    assert fit_error_message(0, []) == "no nodes available to schedule pods"
    assert fit_error_message(
        1, [NodeVerdict(["Insufficient cpu"], True)], preemption_never=True
    ) == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
        "preemptionPolicy=Never."
    )
