"""Faults, accounting, TLS and time of the simulated cluster, seen through the real clients."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes
import kubernetes_asyncio
import pytest
import urllib3
import yaml
from kubernetes.client.rest import ApiException

# Every namespace has this ConfigMap, as in a real cluster.
ROOT_CA = "kube-root-ca.crt"

QUIET = {"timeScale": 0, "namespaces": ["batch"], "nodePools": []}
pytestmark = pytest.mark.simulated_cluster(QUIET)


def _sync_client(kubeconfig: Path, retries: bool = True) -> kubernetes.client.ApiClient:
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    if not retries:
        # urllib3 retries connection errors and Retry-After answers by itself by default.
        client.configuration.retries = False
        client.rest_client = kubernetes.client.rest.RESTClientObject(client.configuration)
    return client


# --- injected failures --------------------------------------------------------------------------


@pytest.fixture
def v1_no_retries(simulated_kubeconfig: Path) -> Iterator[kubernetes.client.CoreV1Api]:
    """A sync client whose urllib3 pool does not retry by itself (see below)."""
    client = _sync_client(simulated_kubeconfig, retries=False)
    yield kubernetes.client.CoreV1Api(client)
    client.close()


def test_hold_next_carries_the_request_out_but_answers_late(
    simulated_cluster: Any, v1_no_retries: kubernetes.client.CoreV1Api
) -> None:
    """A held create is stored at once (others see it), its answer comes after the hold, and a
    dry run is neither held nor counted against the hold."""
    simulated_cluster.hold_next(30, verb="create", resource="configmaps")
    body = {"metadata": {"name": "held"}, "data": {"a": "1"}}
    v1_no_retries.create_namespaced_config_map("batch", body, dry_run="All")  # not held
    answered = threading.Event()

    def create() -> None:
        v1_no_retries.create_namespaced_config_map("batch", body)
        answered.set()

    creator = threading.Thread(target=create, daemon=True)
    creator.start()
    simulated_cluster.wait_for(
        lambda: simulated_cluster.get("configmaps", "batch", "held") is not None,
        timeout=10,
        message="the held create to be stored",
    )
    assert not answered.is_set()
    creator.join(timeout=0)  # still waiting for its answer
    assert creator.is_alive()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_fail_next(
    simulated_cluster: Any, v1_no_retries: kubernetes.client.CoreV1Api, status: int
) -> None:
    v1 = v1_no_retries
    simulated_cluster.fail_next(2, status=status, retry_after=3)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            v1.list_namespaced_pod("batch")
        assert err.value.status == status
        assert err.value.headers["Retry-After"] == "3"
        body = json.loads(err.value.body)
        assert body["code"] == status
        assert body["details"]["retryAfterSeconds"] == 3
    assert v1.list_namespaced_pod("batch").items == []
    assert simulated_cluster.requests(verb="list", resource="pods") == 3


def test_sync_client_retries_after_retry_after_by_itself(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    # urllib3's default Retry honours Retry-After on 429/503 (up to 3 times): the sync client
    # never sees these failures, but the server does count them.
    simulated_cluster.fail_next(2, status=429, retry_after=0)
    assert v1.list_namespaced_pod("batch").items == []
    assert simulated_cluster.requests(verb="list", resource="pods") == 3


async def test_fail_next_async(
    simulated_cluster: Any, av1: kubernetes_asyncio.client.CoreV1Api
) -> None:
    simulated_cluster.fail_next(1, status=429, retry_after=7)
    with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
        await av1.list_namespaced_config_map("batch")
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "7"
    assert [c.metadata.name for c in (await av1.list_namespaced_config_map("batch")).items] == [
        ROOT_CA
    ]


def test_fail_next_without_retry_after(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    simulated_cluster.fail_next(1, status=500)
    with pytest.raises(ApiException) as err:
        v1.read_namespace("batch")
    assert err.value.status == 500
    assert "Retry-After" not in err.value.headers
    assert v1.read_namespace("batch").metadata.name == "batch"


def test_fail_next_only_matching_requests(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    simulated_cluster.fail_next(1, status=503, verb="create", resource="configmaps")
    # not a create: unaffected
    assert [c.metadata.name for c in v1.list_namespaced_config_map("batch").items] == [ROOT_CA]
    v1.create_namespaced_secret("batch", {"metadata": {"name": "s"}})  # other resource
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map("batch", {"metadata": {"name": "c"}})
    assert err.value.status == 503
    # the failed create did nothing
    assert [c.metadata.name for c in v1.list_namespaced_config_map("batch").items] == [ROOT_CA]
    v1.create_namespaced_config_map("batch", {"metadata": {"name": "c"}})


# --- API server restarts ------------------------------------------------------------------------


def test_restart_with_outage_refuses_connections(
    simulated_cluster: Any, simulated_kubeconfig: Path
) -> None:
    client = _sync_client(simulated_kubeconfig, retries=False)
    v1 = kubernetes.client.CoreV1Api(client)
    v1.create_namespaced_config_map("batch", {"metadata": {"name": "before"}})
    rv = v1.list_namespaced_config_map("batch").metadata.resource_version
    v1.create_namespaced_config_map("batch", {"metadata": {"name": "after"}})

    restart = threading.Thread(
        target=simulated_cluster.restart_api_server, kwargs={"outage_seconds": 0.5}
    )
    restart.start()

    def refused() -> bool:
        try:
            v1.list_namespaced_config_map("batch", _request_timeout=2)
        except urllib3.exceptions.HTTPError:
            return True
        return False

    simulated_cluster.wait_for(refused, timeout=10, message="a refused connection")
    restart.join(timeout=10)
    assert not restart.is_alive()
    # Back up, with the same objects, and the old version is gone.
    names = [cm.metadata.name for cm in v1.list_namespaced_config_map("batch").items]
    assert names == ["after", "before", ROOT_CA]
    with pytest.raises(ApiException) as err:
        list(
            kubernetes.watch.Watch().stream(
                v1.list_namespaced_config_map, "batch", resource_version=rv, timeout_seconds=5
            )
        )
    assert err.value.status == 410
    client.close()


async def test_restart_with_outage_async(
    simulated_cluster: Any, av1: kubernetes_asyncio.client.CoreV1Api
) -> None:
    import asyncio

    restart = asyncio.ensure_future(
        asyncio.to_thread(simulated_cluster.restart_api_server, outage_seconds=0.5)
    )
    refused = False
    deadline = asyncio.get_running_loop().time() + 10
    while not refused and asyncio.get_running_loop().time() < deadline:
        try:
            await av1.list_namespaced_config_map("batch", _request_timeout=2)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
            refused = True  # refused, or cut off by the restart and never answered
        await asyncio.sleep(0.01)
    await asyncio.wait_for(restart, 10)
    assert refused
    assert [c.metadata.name for c in (await av1.list_namespaced_config_map("batch")).items] == [
        ROOT_CA
    ]


# --- tokens -------------------------------------------------------------------------------------


def test_expire_token(simulated_cluster: Any, simulated_kubeconfig: Path) -> None:
    old_client = _sync_client(simulated_kubeconfig)
    old = kubernetes.client.CoreV1Api(old_client)
    assert old.read_namespace("batch").metadata.name == "batch"
    old_token = yaml.safe_load(simulated_kubeconfig.read_text())["users"][0]["user"]["token"]

    new_token = simulated_cluster.expire_token()
    with pytest.raises(ApiException) as err:
        old.read_namespace("batch")
    assert err.value.status == 401
    assert json.loads(err.value.body)["reason"] == "Unauthorized"

    written = yaml.safe_load(simulated_kubeconfig.read_text())["users"][0]["user"]["token"]
    assert written == new_token != old_token
    new_client = _sync_client(simulated_kubeconfig)
    assert kubernetes.client.CoreV1Api(new_client).read_namespace("batch").metadata.name == "batch"
    old_client.close()
    new_client.close()


async def test_expire_token_async(
    simulated_cluster: Any, simulated_kubeconfig: Path, av1: kubernetes_asyncio.client.CoreV1Api
) -> None:
    import asyncio

    await asyncio.to_thread(simulated_cluster.expire_token)
    with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
        await av1.list_namespaced_pod("batch")
    assert err.value.status == 401
    fresh = await kubernetes_asyncio.config.new_client_from_config(
        config_file=str(simulated_kubeconfig)
    )
    try:
        pods = await kubernetes_asyncio.client.CoreV1Api(fresh).list_namespaced_pod("batch")
        assert pods.items == []
    finally:
        await fresh.close()


def test_no_token_is_401_but_version_is_public(simulated_cluster: Any) -> None:
    http = urllib3.PoolManager()
    assert http.request("GET", f"{simulated_cluster.url}/api/v1/namespaces").status == 401
    version = http.request("GET", f"{simulated_cluster.url}/version")
    assert version.status == 200
    assert json.loads(version.data)["major"] == "1"


# --- accounting ---------------------------------------------------------------------------------


def test_a_client_token_counts_its_requests_apart(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api, tmp_path: Path
) -> None:
    simulated_cluster.reset_counters()
    token, counters = simulated_cluster.client_token()
    config = simulated_cluster.kubeconfig(namespace="batch")
    config["users"][0]["user"]["token"] = token
    (tmp_path / "client.yaml").write_text(yaml.safe_dump(config))
    other = kubernetes.client.CoreV1Api(_sync_client(tmp_path / "client.yaml"))
    other.list_namespaced_config_map("batch")
    other.read_namespaced_config_map(ROOT_CA, "batch")
    v1.read_namespaced_config_map(ROOT_CA, "batch")

    assert counters.snapshot() == {"get configmaps": 1, "list configmaps": 1}
    assert simulated_cluster.requests(resource="configmaps") == 3
    assert simulated_cluster.token != token

    simulated_cluster.expire_token()
    with pytest.raises(ApiException) as rejected:
        other.list_namespaced_config_map("batch")
    assert rejected.value.status == 401


def test_request_counters(simulated_cluster: Any, v1: kubernetes.client.CoreV1Api) -> None:
    simulated_cluster.reset_counters()
    v1.create_namespaced_pod(
        "batch",
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "c", "image": "busybox:1.36"}],
                "restartPolicy": "Never",
            },
        },
    )
    v1.read_namespaced_pod("p", "batch")
    v1.read_namespaced_pod("p", "batch")
    v1.list_namespaced_pod("batch")
    v1.patch_namespaced_pod_status("p", "batch", {"status": {"phase": "Running"}})
    pod = v1.read_namespaced_pod("p", "batch")
    v1.replace_namespaced_pod("p", "batch", pod)
    v1.delete_collection_namespaced_config_map("batch")
    v1.delete_namespaced_pod("p", "batch")
    kubernetes.client.VersionApi(v1.api_client).get_code()

    assert simulated_cluster.requests(verb="get", resource="pods") == 3
    assert simulated_cluster.requests(verb="get") == 3
    assert simulated_cluster.requests(resource="pods") == 7
    assert simulated_cluster.requests() == 10
    assert simulated_cluster.counters.snapshot() == {
        "create pods": 1,
        "delete pods": 1,
        "deletecollection configmaps": 1,
        "discovery version": 1,
        "get pods": 3,
        "list pods": 1,
        "patch pods/status": 1,
        "update pods": 1,
    }
    simulated_cluster.reset_counters()
    assert simulated_cluster.counters.snapshot() == {}


# --- TLS ----------------------------------------------------------------------------------------


@pytest.mark.simulated_cluster({**QUIET, "tls": True})
def test_tls_sync(simulated_cluster: Any, simulated_kubeconfig: Path) -> None:
    assert simulated_cluster.url.startswith("https://")
    cluster = yaml.safe_load(simulated_kubeconfig.read_text())["clusters"][0]["cluster"]
    assert cluster["certificate-authority-data"]
    client = _sync_client(simulated_kubeconfig)
    assert client.configuration.verify_ssl
    v1 = kubernetes.client.CoreV1Api(client)
    v1.create_namespaced_config_map("batch", {"metadata": {"name": "secure"}})
    assert [cm.metadata.name for cm in v1.list_namespaced_config_map("batch").items] == [
        ROOT_CA,
        "secure",
    ]
    client.close()
    # Without the CA the certificate does not verify: it really is served over TLS.
    with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
        urllib3.PoolManager(retries=0).request("GET", f"{simulated_cluster.url}/version")
    assert isinstance(err.value.reason, urllib3.exceptions.SSLError)


@pytest.mark.simulated_cluster({**QUIET, "tls": True})
async def test_tls_async(simulated_cluster: Any, simulated_kubeconfig: Path) -> None:
    client = await kubernetes_asyncio.config.new_client_from_config(
        config_file=str(simulated_kubeconfig)
    )
    try:
        assert client.configuration.verify_ssl
        namespaces = await kubernetes_asyncio.client.CoreV1Api(client).list_namespace()
        assert "batch" in {ns.metadata.name for ns in namespaces.items}
    finally:
        await client.close()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"{simulated_cluster.url}/version")
    context = ssl.create_default_context()
    assert context.verify_mode == ssl.CERT_REQUIRED


# --- time ---------------------------------------------------------------------------------------


def test_frozen_time_moves_only_by_advance(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    assert simulated_cluster.now() == 0
    first = v1.create_namespaced_config_map("batch", {"metadata": {"name": "t0"}})
    assert simulated_cluster.now() == 0
    simulated_cluster.advance(90)
    assert simulated_cluster.now() == 90
    second = v1.create_namespaced_config_map("batch", {"metadata": {"name": "t90"}})
    gap = second.metadata.creation_timestamp - first.metadata.creation_timestamp
    assert gap == timedelta(seconds=90)
    with pytest.raises(ValueError):
        simulated_cluster.advance(-1)


# --- connection resets --------------------------------------------------------------------------


def test_reset_connections_cuts_open_watches_and_new_requests_for_a_while(
    simulated_cluster: Any, simulated_kubeconfig: Path
) -> None:
    """An open watch is cut (no clean end of stream), requests during the window get no answer
    at all, and afterwards the server answers again; the resets are counted."""
    client = _sync_client(simulated_kubeconfig, retries=False)
    v1 = kubernetes.client.CoreV1Api(client)
    outcome: dict[str, BaseException | None] = {}
    watching = threading.Event()

    def watch() -> None:
        try:
            for _ in kubernetes.watch.Watch().stream(
                v1.list_namespaced_config_map, "batch", timeout_seconds=30
            ):
                watching.set()
            outcome["watch"] = None
        except BaseException as exc:  # the cut connection surfaces here
            outcome["watch"] = exc

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert watching.wait(10)  # the ConfigMap every namespace has, as ADDED
    simulated_cluster.wait_for(
        lambda: simulated_cluster.open_watches >= 1, timeout=10, message="the watch to be open"
    )
    simulated_cluster.reset_connections(1.5)
    watcher.join(timeout=10)
    assert not watcher.is_alive()
    assert isinstance(outcome["watch"], (urllib3.exceptions.HTTPError, ConnectionError)), outcome
    with pytest.raises((urllib3.exceptions.HTTPError, ConnectionError)):
        v1.list_namespaced_config_map("batch", _request_timeout=5)
    assert simulated_cluster.requests("reset", "connections") >= 1

    def answered() -> bool:
        try:
            v1.list_namespaced_config_map("batch", _request_timeout=5)
        except (urllib3.exceptions.HTTPError, ConnectionError):
            return False
        return True

    simulated_cluster.wait_for(answered, timeout=10, message="answers after the resets")
    assert simulated_cluster.open_watches == 0
    client.close()
