"""Clients for the simulated cluster shared by the integration tests (official clients only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import kubernetes
import kubernetes_asyncio
import pytest


@pytest.fixture
def api(simulated_api_client: kubernetes.client.ApiClient) -> kubernetes.client.ApiClient:
    return simulated_api_client


@pytest.fixture
def v1(api: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture
def core(v1: kubernetes.client.CoreV1Api) -> kubernetes.client.CoreV1Api:
    return v1


@pytest.fixture
def batch(api: kubernetes.client.ApiClient) -> kubernetes.client.BatchV1Api:
    return kubernetes.client.BatchV1Api(api)


@pytest.fixture
async def aapi(simulated_kubeconfig: Path) -> AsyncIterator[kubernetes_asyncio.client.ApiClient]:
    client = await kubernetes_asyncio.config.new_client_from_config(
        config_file=str(simulated_kubeconfig)
    )
    yield client
    await client.close()


@pytest.fixture
def av1(aapi: kubernetes_asyncio.client.ApiClient) -> kubernetes_asyncio.client.CoreV1Api:
    return kubernetes_asyncio.client.CoreV1Api(aapi)
