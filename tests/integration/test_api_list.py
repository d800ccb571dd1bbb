"""Listing through the real clients: label and field selectors, ``limit``/``continue`` paging."""

from __future__ import annotations

import json
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.simulated_cluster(
    {"timeScale": 0, "namespaces": ["batch", "other"], "nodePools": []}
)


ROOT_CA = "kube-root-ca.crt"

LABELLED = {
    "a": {"app": "web", "tier": "front"},
    "b": {"app": "web", "tier": "back"},
    "c": {"app": "db"},
    "d": {"app": "cache", "tier": "back"},
    "e": {},
}


@pytest.fixture
def labelled(simulated_cluster: Any) -> None:
    for name, labels in LABELLED.items():
        simulated_cluster.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "batch", "labels": labels},
            }
        )


def _names(result: Any) -> list[str]:
    return sorted(item.metadata.name for item in result.items)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        # Every namespace has the kube-root-ca.crt ConfigMap (without labels).
        ("app!=web", ["c", "d", "e", ROOT_CA]),
        ("app in (db, cache)", ["c", "d"]),
        ("app notin (web,db)", ["d", "e", ROOT_CA]),
        ("tier", ["a", "b", "d"]),
        ("!tier", ["c", "e", ROOT_CA]),
        ("app=web,tier=back", ["b"]),
        ("app,!tier", ["c"]),
        ("app=nothing", []),
    ],
)
def test_label_selectors(
    v1: kubernetes.client.CoreV1Api, labelled: None, selector: str, expected: list[str]
) -> None:
    assert _names(v1.list_namespaced_config_map("batch", label_selector=selector)) == expected


async def test_label_selectors_async(
    av1: kubernetes_asyncio.client.CoreV1Api, labelled: None
) -> None:
    result = await av1.list_namespaced_config_map("batch", label_selector="tier in (back)")
    assert _names(result) == ["b", "d"]
    everywhere = await av1.list_config_map_for_all_namespaces(label_selector="app=db")
    assert _names(everywhere) == ["c"]


def test_malformed_label_selector_is_400(v1: kubernetes.client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_config_map("batch", label_selector="app in web")
    assert err.value.status == 400


def test_field_selector_metadata_name(v1: kubernetes.client.CoreV1Api, labelled: None) -> None:
    assert _names(v1.list_namespaced_config_map("batch", field_selector="metadata.name=c")) == ["c"]
    assert _names(
        v1.list_namespaced_config_map(
            "batch", field_selector="metadata.name!=c", label_selector="app=web"
        )
    ) == ["a", "b"]


def test_field_selector_pod_phase(simulated_cluster: Any, v1: kubernetes.client.CoreV1Api) -> None:
    for name in ("p1", "p2", "p3"):
        v1.create_namespaced_pod(
            "batch",
            {
                "metadata": {"name": name},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                },
            },
        )
    v1.patch_namespaced_pod_status("p2", "batch", {"status": {"phase": "Succeeded"}})
    assert _names(v1.list_namespaced_pod("batch", field_selector="status.phase=Succeeded")) == [
        "p2"
    ]
    assert _names(v1.list_namespaced_pod("batch", field_selector="status.phase!=Succeeded")) == [
        "p1",
        "p3",
    ]
    assert _names(
        v1.list_pod_for_all_namespaces(
            field_selector="status.phase=Pending,metadata.namespace=batch"
        )
    ) == ["p1", "p3"]


def test_field_selector_events(v1: kubernetes.client.CoreV1Api) -> None:
    for i, target in enumerate(["job-a", "job-b", "job-a"]):
        v1.create_namespaced_event(
            "batch",
            {
                "metadata": {"name": f"ev{i}"},
                "involvedObject": {"kind": "Job", "name": target, "namespace": "batch"},
                "reason": "Testing",
                "message": f"event {i}",
                "type": "Normal",
            },
        )
    events = v1.list_namespaced_event("batch", field_selector="involvedObject.name=job-a")
    assert _names(events) == ["ev0", "ev2"]
    events = v1.list_namespaced_event(
        "batch", field_selector="involvedObject.name=job-b,involvedObject.kind=Job"
    )
    assert _names(events) == ["ev1"]


def test_unsupported_field_selector_is_400(v1: kubernetes.client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_config_map("batch", field_selector="data.k=v")
    assert err.value.status == 400
    assert json.loads(err.value.body)["message"] == "field label not supported: data.k"


async def test_unsupported_field_selector_async(av1: kubernetes_asyncio.client.CoreV1Api) -> None:
    with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
        await av1.list_namespaced_pod("batch", field_selector="spec.containers=x")
    assert err.value.status == 400


def test_namespaced_and_cluster_wide_lists(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    for ns in ("batch", "other"):
        v1.create_namespaced_config_map(ns, {"metadata": {"name": f"in-{ns}"}})
    assert _names(v1.list_namespaced_config_map("other")) == ["in-other", ROOT_CA]
    assert {"in-batch", "in-other"} <= set(_names(v1.list_config_map_for_all_namespaces()))


# --- paging -------------------------------------------------------------------------------------


def _make(v1: kubernetes.client.CoreV1Api, count: int) -> list[str]:
    names = [f"cm-{i:02d}" for i in range(count)]
    for name in names:
        v1.create_namespaced_config_map("batch", {"metadata": {"name": name}})
    return names


def test_limit_and_continue(v1: kubernetes.client.CoreV1Api) -> None:
    names = [*_make(v1, 7), ROOT_CA]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = v1.list_namespaced_config_map("batch", limit=3, _continue=token)
        pages += 1
        seen += [cm.metadata.name for cm in page.items]
        assert len(page.items) <= 3
        token = page.metadata._continue
        if not token:
            assert page.metadata.remaining_item_count is None
            break
        assert page.metadata.remaining_item_count == 8 - len(seen)
    assert pages == 3
    assert seen == names


async def test_limit_and_continue_async(
    av1: kubernetes_asyncio.client.CoreV1Api, v1: kubernetes.client.CoreV1Api
) -> None:
    names = [*_make(v1, 5), ROOT_CA]
    first = await av1.list_namespaced_config_map("batch", limit=4)
    assert [cm.metadata.name for cm in first.items] == names[:4]
    second = await av1.list_namespaced_config_map(
        "batch", limit=4, _continue=first.metadata._continue
    )
    assert [cm.metadata.name for cm in second.items] == names[4:]
    assert second.metadata._continue is None


def test_paging_with_selector(v1: kubernetes.client.CoreV1Api, labelled: None) -> None:
    page = v1.list_namespaced_config_map("batch", limit=1, label_selector="tier")
    assert _names(page) == ["a"]
    assert page.metadata.remaining_item_count == 2
    rest = v1.list_namespaced_config_map(
        "batch", label_selector="tier", _continue=page.metadata._continue
    )
    assert _names(rest) == ["b", "d"]


def test_continue_after_compaction_is_410(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    _make(v1, 4)
    page = v1.list_namespaced_config_map("batch", limit=2)
    token = page.metadata._continue
    assert token
    # A write after the list, then a compaction of everything before it.
    v1.create_namespaced_config_map("batch", {"metadata": {"name": "later"}})
    simulated_cluster.restart_api_server()
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_config_map("batch", limit=2, _continue=token)
    assert err.value.status == 410
    assert json.loads(err.value.body)["reason"] == "Expired"


def test_invalid_continue_token_is_400(v1: kubernetes.client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_config_map("batch", limit=2, _continue="not-a-token")
    assert err.value.status == 400


def test_list_resource_version_tracks_writes(v1: kubernetes.client.CoreV1Api) -> None:
    before = int(v1.list_namespaced_config_map("batch").metadata.resource_version)
    created = v1.create_namespaced_config_map("batch", {"metadata": {"name": "x"}})
    after = int(v1.list_namespaced_config_map("batch").metadata.resource_version)
    assert int(created.metadata.resource_version) > before
    assert after >= int(created.metadata.resource_version)
