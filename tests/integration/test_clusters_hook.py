"""KubeClusterHook against the simulated cluster: connections from env vars, sync and async
clients, 401 after a token rotation, and a GKE-style token source on the real clients."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest
from google.oauth2.credentials import Credentials

from airflow_k8s_jobs.clusters import ClusterSettings, KubeClusterHook
from airflow_k8s_jobs.clusters.gke import GkeEndpoint, GoogleTokenSource
from airflow_k8s_jobs.clusters.hook import configure_gke_async, configure_gke_sync
from airflow_k8s_jobs.errors import InvalidInputError
from airflow_k8s_jobs.kube import request, request_sync
from airflow_k8s_jobs.retrying import RetryPolicy
from simulated_k8s_cluster import SimulatedCluster


def set_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, conn_type: str, extra: dict[str, Any]
) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": conn_type, "extra": extra})
    )


@pytest.fixture
def sim_conn(monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path) -> str:
    # Not through $KUBECONFIG: the connection names its file.
    monkeypatch.delenv("KUBECONFIG")
    set_connection(
        monkeypatch,
        "sim_batch",
        "k8sjobs",
        {"kubeconfig_path": str(simulated_kubeconfig), "namespace": "batch"},
    )
    return "sim_batch"


def namespaces(client: kubernetes.client.ApiClient) -> set[str]:
    items = kubernetes.client.CoreV1Api(client).list_namespace().items
    return {ns.metadata.name for ns in items}


async def anamespaces(client: kubernetes_asyncio.client.ApiClient) -> set[str]:
    result = await kubernetes_asyncio.client.CoreV1Api(client).list_namespace()
    return {ns.metadata.name for ns in result.items}


def test_env_var_connection_sync(sim_conn: str, simulated_kubeconfig: Path) -> None:
    hook = KubeClusterHook(cluster_conn_id=sim_conn)
    settings = hook.settings
    assert settings.kind == "kubeconfig"
    assert settings.kubeconfig_path == str(simulated_kubeconfig)
    assert settings.default_namespace == "batch"
    client = hook.api_client()
    assert hook.api_client() is client
    assert "batch" in namespaces(client)
    hook.close()


async def test_env_var_connection_async(sim_conn: str) -> None:
    hook = KubeClusterHook(cluster_conn_id=sim_conn)
    settings = await hook.asettings()
    assert (settings.kind, settings.default_namespace) == ("kubeconfig", "batch")
    client = await hook.async_api_client()
    try:
        assert "batch" in await anamespaces(client)
    finally:
        await client.close()
    other = await hook.async_api_client()
    assert other is not client
    await other.close()


def test_expired_token_then_refresh_credentials(
    sim_conn: str, simulated_cluster: SimulatedCluster
) -> None:
    hook = KubeClusterHook(cluster_conn_id=sim_conn)
    client = hook.api_client()
    assert "batch" in namespaces(client)
    simulated_cluster.expire_token()  # also rewrites the kubeconfig file with a new token
    with pytest.raises(kubernetes.client.ApiException) as info:
        namespaces(client)
    assert info.value.status == 401
    hook.refresh_credentials(client)
    assert "batch" in namespaces(client)
    assert "batch" in namespaces(client)


async def test_expired_token_then_arefresh_credentials(
    sim_conn: str, simulated_cluster: SimulatedCluster
) -> None:
    hook = KubeClusterHook(cluster_conn_id=sim_conn)
    client = await hook.async_api_client()
    try:
        assert "batch" in await anamespaces(client)
        simulated_cluster.expire_token()
        with pytest.raises(kubernetes_asyncio.client.ApiException) as info:
            await anamespaces(client)
        assert info.value.status == 401
        await hook.arefresh_credentials(client)
        assert "batch" in await anamespaces(client)
    finally:
        await client.close()


def namespace_names(body: dict[str, Any]) -> set[str]:
    return {ns["metadata"]["name"] for ns in body["items"]}


def test_retry_policy_reloads_expired_credentials_once(
    sim_conn: str, simulated_cluster: SimulatedCluster
) -> None:
    hook = KubeClusterHook(cluster_conn_id=sim_conn)
    client = hook.api_client()
    namespaces(client)
    new_token = simulated_cluster.expire_token()
    body = RetryPolicy().call(
        lambda: request_sync(client, "GET", "/api/v1/namespaces"),
        refresh=lambda: hook.refresh_credentials(client),
    )
    assert "batch" in namespace_names(body)
    # kubernetes >= 36 keys the token "BearerToken", older releases "authorization".
    assert client.configuration.auth_settings()["BearerToken"]["value"] == f"Bearer {new_token}"


async def test_retry_policy_reloads_expired_credentials_once_async(
    sim_conn: str, simulated_cluster: SimulatedCluster
) -> None:
    hook = KubeClusterHook(cluster_conn_id=sim_conn)
    client = await hook.async_api_client()
    try:
        await anamespaces(client)
        new_token = simulated_cluster.expire_token()
        body = await RetryPolicy().acall(
            lambda: request(client, "GET", "/api/v1/namespaces"),
            refresh=lambda: hook.arefresh_credentials(client),
        )
        assert "batch" in namespace_names(body)
        assert client.configuration.api_key["BearerToken"] == f"Bearer {new_token}"
    finally:
        await client.close()


def test_cncf_kubernetes_connection(
    monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path
) -> None:
    monkeypatch.delenv("KUBECONFIG")
    set_connection(
        monkeypatch,
        "cncf_sim",
        "kubernetes",
        {"kube_config_path": str(simulated_kubeconfig), "namespace": "batch"},
    )
    hook = KubeClusterHook(cluster_conn_id="cncf_sim")
    assert hook.settings.default_namespace == "batch"
    assert "batch" in namespaces(hook.api_client())


async def test_cncf_kubernetes_connection_async(
    monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path
) -> None:
    monkeypatch.delenv("KUBECONFIG")
    set_connection(
        monkeypatch,
        "cncf_sim",
        "kubernetes",
        {"extra__kubernetes__kube_config_path": str(simulated_kubeconfig)},
    )
    client = await KubeClusterHook(cluster_conn_id="cncf_sim").async_api_client()
    try:
        assert "batch" in await anamespaces(client)
    finally:
        await client.close()


def test_cncf_connection_without_config_uses_kubeconfig_env(
    monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path
) -> None:
    # $KUBECONFIG is set by the fixture after the kubernetes library read it at import time.
    set_connection(monkeypatch, "cncf_default", "kubernetes", {})
    assert "batch" in namespaces(KubeClusterHook(cluster_conn_id="cncf_default").api_client())


def test_inline_kubeconfig_connection(
    monkeypatch: pytest.MonkeyPatch, simulated_cluster: SimulatedCluster
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    set_connection(
        monkeypatch,
        "inline",
        "k8sjobs",
        {"kubeconfig": json.dumps(simulated_cluster.kubeconfig(context="sim"))},
    )
    hook = KubeClusterHook(cluster_conn_id="inline")
    assert simulated_cluster.token not in repr(hook.settings)
    assert "batch" in namespaces(hook.api_client())


def test_default_request_timeout_is_applied(sim_conn: str) -> None:
    client = KubeClusterHook(cluster_conn_id=sim_conn).api_client()
    seen: list[Any] = []
    original = client.rest_client.request

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("_request_timeout"))
        return original(*args, **kwargs)

    client.rest_client.request = spy
    namespaces(client)
    kubernetes.client.CoreV1Api(client).list_namespace(_request_timeout=5)
    assert seen == [60.0, 5]


def test_missing_connection(airflow_db: None) -> None:
    with pytest.raises(InvalidInputError, match="'nowhere' is not defined"):
        _ = KubeClusterHook(cluster_conn_id="nowhere").settings


def test_a_failing_secrets_backend_is_named_not_reported_as_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Airflow logs and skips a secrets backend that raises, then says "not defined"; the
    hook names the backend and its error instead (here: a database that was never created)."""
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path}/none.db")
    script = (
        "from airflow_k8s_jobs.clusters.hook import KubeClusterHook\n"
        "try:\n"
        "    KubeClusterHook(cluster_conn_id='nowhere').settings\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    out = result.stdout
    if "is not defined" in out:  # Airflow 3: the task SDK's backends answer "absent" here
        assert "InvalidInputError" in out
        return
    assert "PermanentError Connection 'nowhere' could not be read: MetastoreBackend:" in out, (
        out + result.stderr
    )
    assert "no such table" in out


def test_unknown_context_names_the_connection(
    monkeypatch: pytest.MonkeyPatch, simulated_kubeconfig: Path
) -> None:
    set_connection(
        monkeypatch,
        "badctx",
        "k8sjobs",
        {"kubeconfig_path": str(simulated_kubeconfig), "context": "nope"},
    )
    with pytest.raises(InvalidInputError, match="'badctx'"):
        KubeClusterHook(cluster_conn_id="badctx").api_client()


# -- a GKE-style token source on the real clients ------------------------------------------------


class Issuer:
    """google-auth refresh handler returning the simulated cluster's current token."""

    def __init__(self, cluster: SimulatedCluster, clock: Any) -> None:
        self.cluster = cluster
        self.clock = clock
        self.calls = 0

    def __call__(self, request: Any, scopes: Any) -> tuple[str, dt.datetime]:
        self.calls += 1
        return self.cluster.token, self.clock() + dt.timedelta(hours=1)


def gke_like(cluster: SimulatedCluster) -> tuple[GoogleTokenSource, Issuer, list[dt.datetime]]:
    now = [dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)]
    issuer = Issuer(cluster, lambda: now[0])
    credentials = Credentials(token=None, refresh_handler=issuer)
    source = GoogleTokenSource(credentials, clock=lambda: now[0], request_factory=lambda: None)
    return source, issuer, now


def test_gke_token_source_on_sync_client(simulated_cluster: SimulatedCluster) -> None:
    source, issuer, now = gke_like(simulated_cluster)
    configuration = type.__call__(kubernetes.client.Configuration)
    configure_gke_sync(configuration, GkeEndpoint(simulated_cluster.url, None), source)
    client = kubernetes.client.ApiClient(configuration)
    for _ in range(50):
        assert "batch" in namespaces(client)
    assert issuer.calls == 1
    # The cluster rotates its token; once ours nears expiry the next request gets a new one.
    simulated_cluster.expire_token()
    now[0] += dt.timedelta(minutes=56)
    assert "batch" in namespaces(client)
    assert issuer.calls == 2
    client.close()


async def test_gke_token_source_on_async_client(simulated_cluster: SimulatedCluster) -> None:
    source, issuer, _now = gke_like(simulated_cluster)
    configuration = type.__call__(kubernetes_asyncio.client.Configuration)
    configure_gke_async(configuration, GkeEndpoint(simulated_cluster.url, None), source)
    client = kubernetes_asyncio.client.ApiClient(configuration)
    try:
        for _ in range(50):
            assert "batch" in await anamespaces(client)
        assert issuer.calls == 1
        simulated_cluster.expire_token()
        with pytest.raises(kubernetes_asyncio.client.ApiException) as info:
            await anamespaces(client)
        assert info.value.status == 401
        source.invalidate()  # what arefresh_credentials does for GKE connections
        assert "batch" in await anamespaces(client)
        assert issuer.calls == 2
    finally:
        await client.close()


def test_settings_from_env_connection_match_from_parts(sim_conn: str) -> None:
    hook = KubeClusterHook(cluster_conn_id=sim_conn)
    assert hook.settings == ClusterSettings.from_parts(
        sim_conn,
        "k8sjobs",
        {"kubeconfig_path": hook.settings.kubeconfig_path, "namespace": "batch"},
    )
