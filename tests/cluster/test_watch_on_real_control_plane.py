"""The shared watch (airflow_k8s_jobs/watching.py) against the upstream API server's watch cache.

What a trigger's informer must survive, with the real server's answers: a watch the server ends
(resumed from the last resourceVersion, no new list), bookmarks (the resourceVersion moves on
while nothing the informer watches changes), and a resourceVersion the server no longer keeps
(``410 Gone``: the informer lists again and carries on).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_asyncio
import pytest
import yaml
from kubernetes import client

from airflow_k8s_jobs.kube import EVENTS, Resource
from airflow_k8s_jobs.watching import Feed, Subscription, WatchHub, WatchKey

from .conftest import (
    ROOT,
    START_TIMEOUT,
    RunningCluster,
    fresh_namespace,
    least_privileged_kubeconfig,
    run_real_cluster,
    skip_without_go,
    wait_for,
)

# Not skipped without KUBECONFIG (see conftest.py): the cluster is started here.
STARTS_OWN_CLUSTER = True

pytestmark = [pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT + 600)]

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
EXPIRY_TIMEOUT = 240.0
"""The API server keeps at least 75 s of history in its watch cache (DefaultEventFreshDuration)."""


class KubeconfigClients:
    """What the hook gives the watch hub: clients from a kubeconfig, re-read after a 401."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def async_api_client(self) -> Any:
        return await kubernetes_asyncio.config.new_client_from_config(config_file=str(self.path))

    async def arefresh_credentials(self, api_client: Any) -> None:
        await kubernetes_asyncio.config.load_kube_config(
            config_file=str(self.path), client_configuration=api_client.configuration
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    skip_without_go()
    with run_real_cluster(tmp_path_factory.mktemp("real-cluster-watch")) as running:
        yield running


@pytest.fixture
def namespace(cluster: RunningCluster) -> Iterator[str]:
    yield from fresh_namespace(cluster, "watch")


@pytest.fixture
def other_namespace(cluster: RunningCluster) -> Iterator[str]:
    yield from fresh_namespace(cluster, "watch-other")


def config_map(namespace: str, name: str, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace), data=data
    )


async def until(sub: Subscription, condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await sub.changed(timeout=min(left, 1.0))


async def test_a_watch_the_server_ends_is_resumed_without_listing_again(
    cluster: RunningCluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each watch asks the server to end it after 1 s (instead of 4 to 6 minutes).
    monkeypatch.setattr(Feed, "WATCH_SECONDS", (1, 1))
    core = client.CoreV1Api(cluster.api)
    async with WatchHub.current().subscribe(
        "real", KubeconfigClients(cluster.kubeconfig), namespace, [CONFIGMAPS]
    ) as sub:
        await sub.wait_synced()
        informer = sub.informers[CONFIGMAPS]
        for i in range(4):
            watches = informer.watches
            await asyncio.to_thread(
                core.create_namespaced_config_map, namespace, config_map(namespace, f"cm-{i}")
            )
            await until(sub, lambda i=i: sub.get(CONFIGMAPS, f"cm-{i}") is not None, f"cm-{i}")
            await until(sub, lambda w=watches: informer.watches > w, "the next watch")
        await asyncio.to_thread(core.delete_namespaced_config_map, "cm-0", namespace)
        await until(sub, lambda: sub.get(CONFIGMAPS, "cm-0") is None, "the deletion")
        assert informer.syncs == 1, "every watch resumed from the last resourceVersion"
        assert informer.watches >= 5


async def test_bookmarks_move_the_resource_version_on(
    cluster: RunningCluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server sends a watch's bookmark shortly before the end it was asked for.
    monkeypatch.setattr(Feed, "WATCH_SECONDS", (4, 4))
    core = client.CoreV1Api(cluster.api)
    async with WatchHub.current().subscribe(
        "real", KubeconfigClients(cluster.kubeconfig), namespace, [CONFIGMAPS]
    ) as sub:
        await sub.wait_synced()
        informer = sub.informers[CONFIGMAPS]
        # A change the informer does not watch (a Secret) moves the cluster's resourceVersion.
        secret = await asyncio.to_thread(
            core.create_namespaced_secret,
            namespace,
            client.V1Secret(metadata=client.V1ObjectMeta(name="elsewhere")),
        )
        later = int(secret.metadata.resource_version)
        deadline = time.monotonic() + 30
        while int(informer.resource_version or 0) < later:
            assert time.monotonic() < deadline, "no bookmark carried the resourceVersion on"
            await asyncio.sleep(0.2)
        assert informer.syncs == 1
        assert sub.get(CONFIGMAPS, "elsewhere") is None


def watch_from(cluster: RunningCluster, namespace: str, resource_version: str) -> dict[str, Any]:
    """The first line of a raw watch from ``resource_version`` (or {} if none within 1 s)."""
    core = client.CoreV1Api(cluster.api)
    response = core.list_namespaced_config_map(
        namespace,
        watch=True,
        resource_version=resource_version,
        timeout_seconds=1,
        _preload_content=False,
    )
    try:
        for line in response:
            if line.strip():
                return dict(json.loads(line))
        return {}
    finally:
        response.release_conn()


async def test_an_expired_resource_version_makes_the_informer_list_again(
    cluster: RunningCluster, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    core = client.CoreV1Api(cluster.api)
    await asyncio.to_thread(
        core.create_namespaced_config_map, namespace, config_map(namespace, "churn", n="0")
    )
    async with WatchHub.current().subscribe(
        "real", KubeconfigClients(cluster.kubeconfig), namespace, [CONFIGMAPS]
    ) as sub:
        await sub.wait_synced()
        informer = sub.informers[CONFIGMAPS]
        feed = informer.feed
        assert feed is not None
        # The triggerer loses its watch (network, a paused VM) and keeps its resourceVersion.
        await feed.stop()
        kept = str(informer.resource_version)

        # Meanwhile the namespace changes until the API server's watch cache has let go of that
        # version: a watch from it is answered with 410 Gone.
        def churn_until_expired() -> dict[str, Any]:
            deadline = time.monotonic() + EXPIRY_TIMEOUT
            n = 0
            while True:
                for _ in range(25):
                    n += 1
                    core.patch_namespaced_config_map("churn", namespace, {"data": {"n": str(n)}})
                first = watch_from(cluster, namespace, kept)
                if first.get("type") == "ERROR":
                    return {"n": n, **first}
                assert time.monotonic() < deadline, f"resourceVersion {kept} never expired"

        expired = await asyncio.to_thread(churn_until_expired)
        assert expired["object"]["code"] == 410, expired
        assert expired["object"]["reason"] in ("Expired", "Gone"), expired

        with caplog.at_level(logging.INFO, logger="airflow_k8s_jobs"):
            feed.start()
            await until(
                sub,
                lambda: (
                    (sub.get(CONFIGMAPS, "churn") or {}).get("data", {}).get("n")
                    == str(expired["n"])
                ),
                "the informer to catch up",
            )
        assert informer.syncs == 2, "the expired resourceVersion made it list again"
        assert "resource version expired, listing again" in caplog.text
        # And it watches again from the new list: a later change arrives.
        await asyncio.to_thread(
            core.create_namespaced_config_map, namespace, config_map(namespace, "after")
        )
        await until(sub, lambda: sub.get(CONFIGMAPS, "after") is not None, "a later change")
        assert informer.syncs == 2


WATCH_ALL_NAMESPACES = ROOT / "docs" / "rbac" / "watch-all-namespaces.yaml"


def event(namespace: str, name: str) -> client.CoreV1Event:
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        involved_object=client.V1ObjectReference(kind="Pod", name=name, namespace=namespace),
        reason="Probe",
        message=f"in {namespace}",
        type="Warning",
    )


def may_watch_everywhere(api: client.ApiClient) -> bool:
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    group="", resource="events", verb="watch"
                )
            )
        )
    )
    return bool(review.status.allowed)


async def test_two_namespaces_share_one_watch_where_the_rbac_of_docs_allows_it(
    cluster: RunningCluster,
    namespace: str,
    other_namespace: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As the service account of docs/rbac/: with the Role in two namespaces, the watch of all
    namespaces is refused by the real authorizer and each namespace keeps its own; with
    watch-all-namespaces.yaml applied too, one watch serves both."""
    from kubernetes import config, utils

    caplog.set_level(logging.INFO, logger="airflow_k8s_jobs.watching")
    kubeconfig = least_privileged_kubeconfig(cluster, namespace, tmp_path / "one.json")
    least_privileged_kubeconfig(cluster, other_namespace, tmp_path / "other.json")
    core = client.CoreV1Api(cluster.api)
    for ns in (namespace, other_namespace):
        await asyncio.to_thread(core.create_namespaced_event, ns, event(ns, "same-name"))
    clients = KubeconfigClients(kubeconfig)
    everywhere = WatchKey("real", "", EVENTS)

    async def wait_in_both() -> set[WatchKey]:
        hub = WatchHub.current()
        async with (
            hub.subscribe("real", clients, namespace, [EVENTS]) as one,
            hub.subscribe("real", clients, other_namespace, [EVENTS]) as other,
        ):
            await asyncio.wait_for(one.wait_synced(), 30)
            await asyncio.wait_for(other.wait_synced(), 30)
            deadline = time.monotonic() + 30
            while everywhere in hub.feeds and len(hub.feeds) > 1:
                assert time.monotonic() < deadline, f"no watch took over: {list(hub.feeds)}"
                await asyncio.sleep(0.05)
            for sub, ns in ((one, namespace), (other, other_namespace)):
                cached = sub.get(EVENTS, "same-name")
                assert cached is not None and cached["message"] == f"in {ns}"
            await asyncio.to_thread(
                core.create_namespaced_event, other_namespace, event(other_namespace, "later")
            )
            await until(other, lambda: other.get(EVENTS, "later") is not None, "a later Event")
            assert one.get(EVENTS, "later") is None
            return set(hub.feeds)

    # The Role only: the real API server forbids watching events in all namespaces.
    assert await wait_in_both() == {
        WatchKey("real", namespace, EVENTS),
        WatchKey("real", other_namespace, EVENTS),
    }
    refused = [r.getMessage() for r in caplog.records if "each namespace instead" in r.getMessage()]
    assert len(refused) == 1, refused
    assert 'cannot watch resource "events" in API group "" at the cluster scope' in refused[0]

    documents = list(yaml.safe_load_all(WATCH_ALL_NAMESPACES.read_text()))
    for document in documents:
        await asyncio.to_thread(utils.create_from_dict, cluster.api, document)
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    try:
        restricted = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            await asyncio.to_thread(
                wait_for, "the ClusterRole to take effect", lambda: may_watch_everywhere(restricted)
            )
        finally:
            restricted.close()
        await asyncio.to_thread(core.delete_namespaced_event, "later", other_namespace)
        assert await wait_in_both() == {everywhere}
    finally:
        await asyncio.to_thread(
            rbac.delete_cluster_role_binding, "airflow-k8s-jobs-watch-all-namespaces"
        )
        await asyncio.to_thread(rbac.delete_cluster_role, "airflow-k8s-jobs-watch-all-namespaces")
