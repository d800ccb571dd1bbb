"""The shared watch hub against the simulated cluster: one watch per (namespace, resource) for
any number of waiters, resumed and re-listed across API server restarts, 401s and 5xx."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import kubernetes_asyncio
import pytest

from airflow_k8s_jobs.errors import Forbidden
from airflow_k8s_jobs.kube import EVENTS, JOBS, PODS, Resource
from airflow_k8s_jobs.watching import Subscription, WatchHub
from simulated_k8s_cluster import SimulatedCluster

NS = "batch"
pytestmark = pytest.mark.simulated_cluster(
    {"timeScale": 0.01, "namespaces": [NS], "nodePools": [{"name": "default", "nodes": 0}]}
)
BIG_POOL = {
    "timeScale": 0.01,
    "namespaces": [NS],
    "nodePools": [{"name": "default", "nodes": 4, "capacity": {"cpu": "64"}}],
}


class KubeconfigClients:
    """Clients from a kubeconfig file, re-read after a 401 (the file holds the current token)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.refreshes = 0

    async def async_api_client(self) -> Any:
        return await kubernetes_asyncio.config.new_client_from_config(config_file=str(self.path))

    async def arefresh_credentials(self, api_client: Any) -> None:
        self.refreshes += 1
        await kubernetes_asyncio.config.load_kube_config(
            config_file=str(self.path), client_configuration=api_client.configuration
        )


def config_map(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS},
        "data": data,
    }


def job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1"}],
                }
            }
        },
    }


CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")


async def until(sub: Subscription, condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise TimeoutError("condition not met through the watch")
        await sub.changed(timeout=left)


@pytest.mark.simulated_cluster(BIG_POOL)
async def test_many_waiters_share_one_watch_per_resource(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path
) -> None:
    clients = KubeconfigClients(simulated_kubeconfig)
    hub = WatchHub.current()
    names = [f"job-{i}" for i in range(200)]
    seen: dict[str, bool] = {}
    synced = 0
    all_synced = asyncio.Event()

    async def waiter(name: str) -> None:
        def interest(resource: Resource, obj: dict[str, Any]) -> bool:
            return obj["metadata"]["name"].startswith(name)

        async with hub.subscribe("sim", clients, NS, [JOBS, PODS, EVENTS], interest) as sub:
            await sub.wait_synced()
            nonlocal synced
            synced += 1
            if synced == len(names):
                all_synced.set()
            await until(
                sub,
                lambda: (
                    sub.get(JOBS, name) is not None
                    and bool(
                        sub.select(PODS, lambda p: p["metadata"]["name"].startswith(f"{name}-"))
                    )
                ),
                timeout=60,
            )
            seen[name] = True

    waiters = asyncio.gather(*(waiter(n) for n in names))
    await asyncio.wait_for(all_synced.wait(), 30)
    # The Jobs appear only now: every waiter learns of its Job and pods through the watches.
    await asyncio.to_thread(lambda: [simulated_cluster.create(job(n)) for n in names])
    await asyncio.wait_for(waiters, 90)
    assert len(seen) == 200
    # One watch per resource (beginning with the state), whatever the number of waiters; no
    # list, no per-Job GETs.
    assert simulated_cluster.requests(verb="list") == 0
    assert simulated_cluster.requests(verb="watch", resource="jobs") == 1
    assert simulated_cluster.requests(verb="watch", resource="pods") == 1
    assert simulated_cluster.requests(verb="watch", resource="events") == 1
    assert simulated_cluster.requests(verb="get") == 0
    assert not hub.informers, "informers stop when their last waiter leaves"
    simulated_cluster.wait_for(lambda: simulated_cluster.open_watches == 0)


async def test_restart_resumes_and_relists_on_410(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path
) -> None:
    hub = WatchHub.current()
    async with hub.subscribe(
        "sim", KubeconfigClients(simulated_kubeconfig), NS, [CONFIGMAPS]
    ) as sub:
        await sub.wait_synced()
        simulated_cluster.create(config_map("before"))
        await until(sub, lambda: sub.get(CONFIGMAPS, "before") is not None)
        informer = sub.informers[CONFIGMAPS]
        assert informer.syncs == 1

        # Writes to other resources move the cluster's resourceVersion past the informer's.
        simulated_cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "unrelated", "namespace": NS},
            }
        )
        simulated_cluster.restart_api_server()  # drops the watch and forgets old versions
        simulated_cluster.create(config_map("after"))
        await until(sub, lambda: sub.get(CONFIGMAPS, "after") is not None)
        assert informer.syncs == 2, "the expired resourceVersion made it list again"
        simulated_cluster.delete("configmaps", NS, "before")
        await until(sub, lambda: sub.get(CONFIGMAPS, "before") is None)


async def test_expired_token_is_refreshed(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path
) -> None:
    clients = KubeconfigClients(simulated_kubeconfig)
    hub = WatchHub.current()
    async with hub.subscribe("sim", clients, NS, [CONFIGMAPS]) as sub:
        await sub.wait_synced()
        simulated_cluster.expire_token()  # rewrites the kubeconfig with the new token
        simulated_cluster.restart_api_server()  # the open watch ends; reconnecting gets a 401
        simulated_cluster.create(config_map("fresh"))
        await until(sub, lambda: sub.get(CONFIGMAPS, "fresh") is not None)
    assert clients.refreshes == 1


async def test_server_errors_are_retried_with_retry_after(
    simulated_cluster: SimulatedCluster,
    simulated_kubeconfig: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="airflow_k8s_jobs.watching")
    simulated_cluster.fail_next(2, status=503, retry_after=0, verb="watch", resource="configmaps")
    simulated_cluster.fail_next(1, status=429, retry_after=0, verb="watch", resource="configmaps")
    hub = WatchHub.current()
    async with hub.subscribe(
        "sim", KubeconfigClients(simulated_kubeconfig), NS, [CONFIGMAPS]
    ) as sub:
        await asyncio.wait_for(sub.wait_synced(), 20)
        simulated_cluster.create(config_map("after-faults"))
        await until(sub, lambda: sub.get(CONFIGMAPS, "after-faults") is not None, timeout=20)
    assert simulated_cluster.requests(verb="watch", resource="configmaps") >= 4
    assert simulated_cluster.requests(verb="list", resource="configmaps") == 0
    # Each retry is logged, naming the watch once.
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 3, retries
    assert all(m.count("watching configmaps in namespace") == 1 for m in retries), retries


async def test_forbidden_right_after_an_outage_is_retried(
    simulated_cluster: SimulatedCluster,
    simulated_kubeconfig: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A restarted kube-apiserver serves before its authorizer has loaded the RBAC rules: the
    first requests after the outage get 403; the informer retries them and watches on."""
    caplog.set_level(logging.WARNING, logger="airflow_k8s_jobs.watching")
    hub = WatchHub.current()
    async with hub.subscribe(
        "sim", KubeconfigClients(simulated_kubeconfig), NS, [CONFIGMAPS]
    ) as sub:
        await sub.wait_synced()
        # The connections break (the informer's attempts fail), then the first answers are 403.
        simulated_cluster.fail_next(2, status=403, resource="configmaps")
        simulated_cluster.reset_connections(1)
        simulated_cluster.create(config_map("after-restart"))
        await until(sub, lambda: sub.get(CONFIGMAPS, "after-restart") is not None, timeout=30)
        sub.informers[CONFIGMAPS].raise_error()
    retried = [r.getMessage() for r in caplog.records if "(HTTP 403) right after" in r.getMessage()]
    assert len(retried) == 2, retried


async def test_forbidden_without_an_outage_fails_the_waiters_at_once(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path
) -> None:
    simulated_cluster.fail_next(1, status=403, resource="configmaps")
    hub = WatchHub.current()
    async with hub.subscribe(
        "sim", KubeconfigClients(simulated_kubeconfig), NS, [CONFIGMAPS]
    ) as sub:
        with pytest.raises(Forbidden):
            await asyncio.wait_for(sub.wait_synced(), 10)
    assert simulated_cluster.counters.snapshot() == {"watch configmaps": 1}


# --- the state as a watch's first events (WatchList) ----------------------------------------------


async def test_the_state_arrives_as_the_watch_begins(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path
) -> None:
    """One request: the objects that exist, a bookmark marking their end, then the changes."""
    for name in ("one", "two", "three"):
        simulated_cluster.create(config_map(name))
    simulated_cluster.delete("configmaps", NS, "two")
    simulated_cluster.reset_counters()
    hub = WatchHub.current()
    async with hub.subscribe(
        "sim", KubeconfigClients(simulated_kubeconfig), NS, [CONFIGMAPS]
    ) as sub:
        await asyncio.wait_for(sub.wait_synced(), 10)
        informer = sub.informers[CONFIGMAPS]
        assert sorted(informer.objects) == ["kube-root-ca.crt", "one", "three"]
        # Resumes from the bookmark's version (after the delete), not from an object's.
        three = sub.get(CONFIGMAPS, "three")
        assert three is not None and informer.resource_version is not None
        assert int(informer.resource_version) > int(three["metadata"]["resourceVersion"])
        simulated_cluster.create(config_map("four"))
        await until(sub, lambda: sub.get(CONFIGMAPS, "four") is not None)
        assert (informer.syncs, informer.watches) == (1, 1)
    assert simulated_cluster.counters.snapshot() == {"watch configmaps": 1}


@pytest.mark.simulated_cluster(
    {"timeScale": 0.01, "namespaces": [NS], "kubernetesVersion": "1.33.4"}
)
async def test_an_api_server_without_watch_lists_is_listed_once_refused(
    simulated_cluster: SimulatedCluster,
    simulated_kubeconfig: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Kubernetes 1.33 has the WatchList feature off: its 422 makes every informer of that
    cluster list then watch, and only the first one asks."""
    caplog.set_level(logging.INFO, logger="airflow_k8s_jobs.watching")
    simulated_cluster.create(config_map("before"))
    simulated_cluster.reset_counters()
    hub = WatchHub.current()
    clients = KubeconfigClients(simulated_kubeconfig)
    async with hub.subscribe("sim", clients, NS, [CONFIGMAPS]) as sub:
        await asyncio.wait_for(sub.wait_synced(), 10)
        assert sub.get(CONFIGMAPS, "before") is not None
        async with hub.subscribe("sim", clients, NS, [JOBS]) as jobs:
            await asyncio.wait_for(jobs.wait_synced(), 10)
            await asyncio.to_thread(
                simulated_cluster.wait_for,
                lambda: simulated_cluster.requests(verb="watch", resource="jobs") == 1,
            )
        simulated_cluster.create(config_map("after"))
        await until(sub, lambda: sub.get(CONFIGMAPS, "after") is not None)
    assert simulated_cluster.counters.snapshot() == {
        "watch configmaps": 2,  # refused (422), then from the list's resourceVersion
        "list configmaps": 1,
        "list jobs": 1,
        "watch jobs": 1,
    }
    refused = [r.getMessage() for r in caplog.records if "refuses watch lists" in r.getMessage()]
    assert len(refused) == 1, refused
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
