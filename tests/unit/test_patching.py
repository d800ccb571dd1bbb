"""PATCH semantics: JSON merge patch (RFC 7386), strategic merge patch, JSON patch (RFC 6902)."""

from __future__ import annotations

from typing import Any

import pytest

from simulated_k8s_cluster.patching import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    apply_patch,
    merge_patch,
    strategic_merge_patch,
)
from simulated_k8s_cluster.resources import ApiError

# The examples of RFC 7386, appendix A.
RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "result"), RFC7386)
def test_merge_patch_rfc7386(original: Any, patch: Any, result: Any) -> None:
    assert merge_patch(original, patch) == result


def test_merge_patch_does_not_mutate() -> None:
    original = {"a": {"b": 1}}
    merge_patch(original, {"a": {"b": 2}})
    assert original == {"a": {"b": 1}}


# --- strategic merge patch ----------------------------------------------------------------------


def _pod() -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1",
                    "args": ["a", "b"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                },
                {"name": "side", "image": "envoy:1"},
            ],
            "tolerations": [{"key": "t", "operator": "Exists"}],
        },
    }


def test_smp_merges_containers_by_name() -> None:
    patched = strategic_merge_patch(
        _pod(),
        {
            "spec": {
                "containers": [
                    {"name": "side", "image": "envoy:2"},
                    {"name": "new", "image": "x:1"},
                ]
            }
        },
    )
    containers = patched["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("main", "busybox:1"),
        ("side", "envoy:2"),
        ("new", "x:1"),
    ]
    assert containers[0]["args"] == ["a", "b"]


def test_smp_merges_nested_keyed_lists() -> None:
    patched = strategic_merge_patch(
        _pod(),
        {
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "env": [{"name": "B", "value": "22"}, {"name": "C", "value": "3"}],
                    }
                ]
            }
        },
    )
    env = patched["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "22"},
        {"name": "C", "value": "3"},
    ]


def test_smp_patch_delete_in_keyed_list() -> None:
    patched = strategic_merge_patch(
        _pod(),
        {
            "spec": {
                "containers": [
                    {"name": "side", "$patch": "delete"},
                    {"name": "absent", "$patch": "delete"},
                ]
            }
        },
    )
    assert [c["name"] for c in patched["spec"]["containers"]] == ["main"]


def test_smp_patch_replace_list_and_map() -> None:
    patched = strategic_merge_patch(
        _pod(), {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x:1"}]}}
    )
    assert patched["spec"]["containers"] == [{"name": "only", "image": "x:1"}]
    patched = strategic_merge_patch(
        _pod(), {"metadata": {"labels": {"$patch": "replace", "b": "2"}}}
    )
    assert patched["metadata"]["labels"] == {"b": "2"}


def test_smp_patch_delete_map() -> None:
    patched = strategic_merge_patch(_pod(), {"metadata": {"labels": {"$patch": "delete"}}})
    assert "labels" not in patched["metadata"]


def test_smp_replaces_lists_without_a_merge_key() -> None:
    patched = strategic_merge_patch(
        _pod(),
        {
            "spec": {
                "tolerations": [{"key": "u", "operator": "Exists"}],
                "containers": [{"name": "main", "args": ["c"]}],
            }
        },
    )
    assert patched["spec"]["tolerations"] == [{"key": "u", "operator": "Exists"}]
    assert patched["spec"]["containers"][0]["args"] == ["c"]


def test_smp_null_deletes_and_maps_merge() -> None:
    patched = strategic_merge_patch(_pod(), {"metadata": {"labels": {"a": None, "b": "2"}}})
    assert patched["metadata"]["labels"] == {"b": "2"}


def test_smp_finalizers_merge_as_a_set_and_delete_from_primitive_list() -> None:
    patched = strategic_merge_patch(_pod(), {"metadata": {"finalizers": ["x", "y"]}})
    assert patched["metadata"]["finalizers"] == ["x", "y"]
    patched = strategic_merge_patch(
        patched, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}
    )
    assert patched["metadata"]["finalizers"] == ["y"]


def test_smp_ignores_set_element_order_directives() -> None:
    patched = strategic_merge_patch(
        _pod(),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "main"}],
                "containers": [{"name": "side", "image": "envoy:3"}],
            }
        },
    )
    assert [c["name"] for c in patched["spec"]["containers"]] == ["main", "side"]
    assert not any(k.startswith("$") for k in patched["spec"])


# --- apply_patch: content types and JSON patch --------------------------------------------------


def test_apply_json_patch() -> None:
    obj = {"metadata": {"name": "c"}, "data": {"a": "1"}}
    patched = apply_patch(
        obj,
        [
            {"op": "add", "path": "/data/b", "value": "2"},
            {"op": "replace", "path": "/data/a", "value": "9"},
            {"op": "test", "path": "/metadata/name", "value": "c"},
            {"op": "copy", "from": "/data/a", "path": "/data/c"},
            {"op": "remove", "path": "/data/b"},
        ],
        JSON_PATCH,
        custom_resource=False,
    )
    assert patched["data"] == {"a": "9", "c": "9"}
    assert obj["data"] == {"a": "1"}


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "test", "path": "/data/a", "value": "2"}],
        [{"op": "remove", "path": "/data/missing"}],
        [{"op": "replace", "path": "/nope/x", "value": 1}],
    ],
)
def test_failing_json_patch_is_422(operations: list[dict[str, Any]]) -> None:
    with pytest.raises(ApiError) as err:
        apply_patch({"data": {"a": "1"}}, operations, JSON_PATCH, custom_resource=False)
    assert err.value.code == 422


def test_json_patch_needs_a_list() -> None:
    with pytest.raises(ApiError) as err:
        apply_patch({}, {"op": "add"}, JSON_PATCH, custom_resource=False)
    assert err.value.code == 400


def test_content_types() -> None:
    obj = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}}
    body = {"spec": {"containers": [{"name": "b", "image": "2"}]}}
    merged = apply_patch(obj, body, f"{MERGE_PATCH}; charset=utf-8", custom_resource=False)
    assert merged["spec"]["containers"] == [{"name": "b", "image": "2"}]
    strategic = apply_patch(obj, body, STRATEGIC_MERGE_PATCH, custom_resource=False)
    assert len(strategic["spec"]["containers"]) == 2
    with pytest.raises(ApiError) as err:
        apply_patch(obj, body, STRATEGIC_MERGE_PATCH, custom_resource=True)
    assert err.value.code == 415
    with pytest.raises(ApiError) as err:
        apply_patch(obj, body, "text/plain", custom_resource=False)
    assert err.value.code == 415
    with pytest.raises(ApiError) as err:
        apply_patch(obj, ["not", "a", "map"], MERGE_PATCH, custom_resource=False)
    assert err.value.code == 400
