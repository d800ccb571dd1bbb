"""Server-side apply's pure pieces (simulated_k8s_cluster.apply): field sets, FieldsV1,
merging by list-map keys, ownership and conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from simulated_k8s_cluster import apply
from simulated_k8s_cluster.resources import ARGO_WORKFLOWS, CONFIGMAPS, JOBS, ApiError

NOW = "2026-01-01T00:00:00Z"


def _job(**container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "labels": {"team": "a"}},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox", **container}],
                }
            }
        },
        "status": {"active": 1},
    }


def test_fields_follow_list_map_keys_and_leave_server_metadata_and_status_out() -> None:
    fields = apply.applied_fields(_job(), custom=False, status=False)
    printed = sorted(apply.format_path(p) for p in fields)
    assert printed == [
        ".metadata.labels.team",
        '.spec.template.spec.containers[name="main"]',
        '.spec.template.spec.containers[name="main"].image',
        '.spec.template.spec.containers[name="main"].name',
        ".spec.template.spec.restartPolicy",
    ]
    encoded = apply.encode_fields(fields)
    containers = encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {'k:{"name":"main"}': {".": {}, "f:image": {}, "f:name": {}}}
    assert apply.decode_fields(encoded) == fields


def test_sets_and_custom_resources() -> None:
    cm = {"metadata": {"finalizers": ["a", "b"]}, "data": {"x": "1"}}
    printed = {apply.format_path(p) for p in apply.applied_fields(cm, False, False)}
    assert printed == {'.metadata.finalizers[="a"]', '.metadata.finalizers[="b"]', ".data.x"}
    wf = {"spec": {"templates": [{"name": "a"}], "entrypoint": "a"}}
    printed = {apply.format_path(p) for p in apply.applied_fields(wf, True, False)}
    assert printed == {".spec.templates", ".spec.entrypoint"}  # lists of a CRD: atomic


def test_merge_by_key() -> None:
    live = {"containers": [{"name": "a", "image": "x", "args": ["1"]}, {"name": "b"}]}
    applied = {"containers": [{"name": "a", "image": "y"}, {"name": "c"}]}
    assert apply.merge(live, applied, None, custom=False) == {
        "containers": [{"name": "a", "image": "y", "args": ["1"]}, {"name": "b"}, {"name": "c"}]
    }
    assert apply.merge({"args": ["1", "2"]}, {"args": ["3"]}, None, False) == {"args": ["3"]}


def test_create_then_conflict_force_and_removal() -> None:
    created = apply.server_side_apply(JOBS, None, _job(), "kubectl", False, NOW)
    assert "status" not in created
    (entry,) = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == (
        "kubectl",
        "Apply",
        "batch/v1",
    )
    other = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"labels": {"team": "b"}}}
    with pytest.raises(apply.Conflict) as refused:
        apply.server_side_apply(JOBS, created, other, "ci", False, NOW)
    assert refused.value.code == 409
    assert refused.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl": .metadata.labels.team'
    )
    # The same value is shared, not a conflict.
    same = {**other, "metadata": {"labels": {"team": "a"}}}
    shared = apply.server_side_apply(JOBS, created, same, "ci", False, NOW)
    assert [e["manager"] for e in shared["metadata"]["managedFields"]] == ["kubectl", "ci"]
    forced = apply.server_side_apply(JOBS, created, other, "ci", True, NOW)
    assert forced["metadata"]["labels"] == {"team": "b"}
    kubectl_fields = forced["metadata"]["managedFields"][0]["fieldsV1"]
    assert "f:metadata" not in kubectl_fields and "f:spec" in kubectl_fields
    # kubectl drops its env var and the label: the env var goes, the label stays with "ci".
    with_env = _job(env=[{"name": "E", "value": "1"}])
    with_env["metadata"]["labels"] = {"team": "b"}
    step = apply.server_side_apply(JOBS, forced, with_env, "kubectl", False, NOW)
    assert step["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "E", "value": "1"}]
    without = _job()
    del without["metadata"]["labels"]
    last = apply.server_side_apply(JOBS, step, without, "kubectl", False, NOW)
    assert "env" not in last["spec"]["template"]["spec"]["containers"][0]
    assert last["metadata"]["labels"] == {"team": "b"}


def test_several_conflicts_are_grouped_by_manager() -> None:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    live = apply.server_side_apply(
        CONFIGMAPS, None, {**base, "data": {"x": "1", "y": "1"}}, "a", False, NOW
    )
    with pytest.raises(apply.Conflict) as refused:
        apply.server_side_apply(
            CONFIGMAPS, live, {**base, "data": {"x": "2", "y": "2"}}, "b", False, NOW
        )
    assert refused.value.message == (
        'Apply failed with 2 conflicts: conflicts with "a":\n- .data.x\n- .data.y'
    )


def test_a_field_manager_is_required_and_the_body_must_name_its_kind() -> None:
    with pytest.raises(ApiError) as missing:
        apply.server_side_apply(ARGO_WORKFLOWS, None, {"kind": "Workflow"}, "", False, NOW)
    assert missing.value.code == 422
    with pytest.raises(ApiError, match="apiVersion must be set"):
        apply.parse("kind: Job\nmetadata: {name: j}\n")
    assert apply.parse("apiVersion: v1\nkind: ConfigMap\n")["kind"] == "ConfigMap"
