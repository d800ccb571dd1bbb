"""Waiters in several namespaces of one cluster, against the simulated cluster: one watch of all
namespaces per resource once they wait in a second namespace (``watch_scope`` ``auto``), a
watch per namespace where the credentials may not watch across namespaces or the connection
says ``namespace``, and one watch of all namespaces from the first waiter with ``cluster``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kubernetes_asyncio
import pytest

from airflow_k8s_jobs.kube import Resource, WatchScope
from airflow_k8s_jobs.watching import Subscription, WatchHub, WatchKey
from simulated_k8s_cluster import SimulatedCluster

A, B, C = "team-a", "team-b", "team-c"
CLUSTER = {
    "timeScale": 0.01,
    "namespaces": [A, B, C],
    "nodePools": [{"name": "default", "nodes": 0}],
}
NO_RIGHTS_ACROSS_NAMESPACES = {
    **CLUSTER,
    "rbac": {
        "user": "system:serviceaccount:airflow:airflow",
        "deny": [{"verb": ["list", "watch"], "group": "*", "resource": "*", "scope": "cluster"}],
    },
}
pytestmark = pytest.mark.simulated_cluster(CLUSTER)

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
EVERYWHERE = WatchKey("sim", "", CONFIGMAPS)


def in_namespace(namespace: str) -> WatchKey:
    return WatchKey("sim", namespace, CONFIGMAPS)


class Clients:
    """Clients from a kubeconfig file, and the connection's ``watch_scope``."""

    def __init__(self, path: Path, scope: WatchScope = "auto") -> None:
        self.path = path
        self.scope = scope

    async def async_api_client(self) -> Any:
        return await kubernetes_asyncio.config.new_client_from_config(config_file=str(self.path))

    async def arefresh_credentials(self, api_client: Any) -> None:
        await kubernetes_asyncio.config.load_kube_config(
            config_file=str(self.path), client_configuration=api_client.configuration
        )

    async def awatch_scope(self) -> WatchScope:
        return self.scope


def config_map(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


async def until(sub: Subscription, condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("condition not met through the watch")
        await sub.changed(timeout=left)


async def eventually(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def waiting_in_a_and_b(
    hub: WatchHub, clients: Clients
) -> AsyncIterator[tuple[Subscription, Subscription]]:
    """Waiters in A and in B, once both caches are current."""
    async with (
        hub.subscribe("sim", clients, A, [CONFIGMAPS]) as in_a,
        hub.subscribe("sim", clients, B, [CONFIGMAPS]) as in_b,
    ):
        await asyncio.wait_for(in_a.wait_synced(), 10)
        await asyncio.wait_for(in_b.wait_synced(), 10)
        yield in_a, in_b


def data(sub: Subscription, name: str) -> dict[str, Any] | None:
    obj = sub.get(CONFIGMAPS, name)
    return None if obj is None else obj.get("data")


async def test_a_second_namespace_moves_every_waiter_to_one_watch_of_all_namespaces(
    simulated_cluster: SimulatedCluster,
    simulated_kubeconfig: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_k8s_jobs.watching")
    for namespace in (A, B):  # the same name in two namespaces
        simulated_cluster.create(config_map(namespace, "settings", team=namespace))
    simulated_cluster.reset_counters()
    hub = WatchHub.current()
    clients = Clients(simulated_kubeconfig)
    async with hub.subscribe("sim", clients, A, [CONFIGMAPS]) as in_a:
        await asyncio.wait_for(in_a.wait_synced(), 10)
        assert list(hub.feeds) == [in_namespace(A)]  # one namespace: its own watch
        async with hub.subscribe("sim", clients, B, [CONFIGMAPS]) as in_b:
            await asyncio.wait_for(in_b.wait_synced(), 10)
            await eventually(lambda: list(hub.feeds) == [EVERYWHERE], "A's watch handed over")
            assert in_a.informers[CONFIGMAPS].feed is in_b.informers[CONFIGMAPS].feed
            async with hub.subscribe("sim", clients, C, [CONFIGMAPS]) as in_c:
                # The watch of all namespaces knows C already: no request, nothing to wait for.
                assert in_c.informers[CONFIGMAPS].synced
                assert data(in_a, "settings") == {"team": A}
                assert data(in_b, "settings") == {"team": B}
                assert data(in_c, "settings") is None

                simulated_cluster.create(config_map(C, "settings", team=C))
                await until(in_c, lambda: data(in_c, "settings") is not None)
                assert data(in_c, "settings") == {"team": C}
                woken_b = in_b.wakeups
                simulated_cluster.create(config_map(A, "later", team=A))
                await until(in_a, lambda: data(in_a, "later") is not None)
                assert in_b.wakeups == woken_b, "a change in A woke a waiter in B"
                assert data(in_b, "later") is None and data(in_c, "later") is None

                simulated_cluster.delete("configmaps", B, "settings")
                await until(in_b, lambda: data(in_b, "settings") is None)
                assert data(in_a, "settings") == {"team": A}
                await asyncio.to_thread(
                    simulated_cluster.wait_for, lambda: simulated_cluster.open_watches == 1
                )
    # A's watch, then the one of all namespaces (each beginning with the state: no list).
    assert simulated_cluster.counters.snapshot() == {"watch configmaps": 2}
    assert not hub.feeds and not hub.informers
    handed = [r.getMessage() for r in caplog.records if "handed over" in r.getMessage()]
    assert handed == [
        "watching configmaps in all namespaces of cluster sim: 1 namespace watch(es) handed over"
    ]
    simulated_cluster.wait_for(lambda: simulated_cluster.open_watches == 0)


@pytest.mark.simulated_cluster(NO_RIGHTS_ACROSS_NAMESPACES)
async def test_without_rights_across_namespaces_each_namespace_is_watched(
    simulated_cluster: SimulatedCluster,
    simulated_kubeconfig: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_k8s_jobs.watching")
    for namespace in (A, B):
        simulated_cluster.create(config_map(namespace, "settings", team=namespace))
    simulated_cluster.reset_counters()
    hub = WatchHub.current()
    clients = Clients(simulated_kubeconfig)
    async with waiting_in_a_and_b(hub, clients) as (in_a, in_b):
        assert set(hub.feeds) == {in_namespace(A), in_namespace(B)}
        assert data(in_a, "settings") == {"team": A}
        assert data(in_b, "settings") == {"team": B}
        async with hub.subscribe("sim", clients, C, [CONFIGMAPS]) as in_c:
            await asyncio.wait_for(in_c.wait_synced(), 10)
            assert set(hub.feeds) == {in_namespace(A), in_namespace(B), in_namespace(C)}
            simulated_cluster.create(config_map(C, "settings", team=C))
            await until(in_c, lambda: data(in_c, "settings") is not None)
    # One refused watch of all namespaces (403), asked once; then one watch per namespace.
    assert simulated_cluster.counters.snapshot() == {"watch configmaps": 4}
    refused = [r.getMessage() for r in caplog.records if "each namespace instead" in r.getMessage()]
    assert refused == [
        "watching configmaps in all namespaces of cluster sim: configmaps is forbidden: User "
        '"system:serviceaccount:airflow:airflow" cannot watch resource "configmaps" in API group '
        '"" at the cluster scope (HTTP 403); watching each namespace instead (a ClusterRole '
        "granting list and watch of configmaps lets one watch serve all namespaces)"
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_scope_namespace_never_watches_across_namespaces(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path
) -> None:
    simulated_cluster.reset_counters()
    hub = WatchHub.current()
    clients = Clients(simulated_kubeconfig, scope="namespace")
    async with waiting_in_a_and_b(hub, clients) as (in_a, in_b):
        assert set(hub.feeds) == {in_namespace(A), in_namespace(B)}
        assert in_a.informers[CONFIGMAPS].feed is not in_b.informers[CONFIGMAPS].feed
    assert simulated_cluster.counters.snapshot() == {"watch configmaps": 2}


async def test_scope_cluster_watches_all_namespaces_from_the_first_waiter(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path
) -> None:
    simulated_cluster.create(config_map(B, "settings", team=B))
    simulated_cluster.reset_counters()
    hub = WatchHub.current()
    clients = Clients(simulated_kubeconfig, scope="cluster")
    async with hub.subscribe("sim", clients, A, [CONFIGMAPS]) as in_a:
        await asyncio.wait_for(in_a.wait_synced(), 10)
        assert list(hub.feeds) == [EVERYWHERE]
        async with hub.subscribe("sim", clients, B, [CONFIGMAPS]) as in_b:
            assert in_b.informers[CONFIGMAPS].synced
            assert data(in_b, "settings") == {"team": B}
    assert simulated_cluster.counters.snapshot() == {"watch configmaps": 1}
