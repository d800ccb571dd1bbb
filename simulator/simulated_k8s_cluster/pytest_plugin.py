"""pytest plugin: a ``simulated_cluster`` fixture for testing DAGs without a real cluster.

Registered through the ``pytest11`` entry point, so it is active wherever this package is
installed. Configure the cluster per test with a marker, or for a whole module/directory by
overriding the ``simulated_cluster_config`` fixture::

    @pytest.mark.simulated_cluster({"timeScale": 0.01, "namespaces": ["batch"]})
    def test_my_dag(simulated_cluster, simulated_kubeconfig):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .cluster import SimulatedCluster

DEFAULT_TEST_CONFIG: dict[str, Any] = {
    "timeScale": 0.01,
    "namespaces": ["batch"],
    "nodePools": [
        {
            "name": "default",
            "nodes": 2,
            "maxNodes": 2,
            "capacity": {"cpu": "8", "memory": "32Gi"},
            "labels": {"cloud.google.com/gke-nodepool": "default"},
        },
    ],
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "simulated_cluster(config): configuration (dict, YAML path or ClusterConfig) for the "
        "simulated_cluster fixture",
    )


@pytest.fixture
def simulated_cluster_config() -> dict[str, Any]:
    """The configuration the ``simulated_cluster`` fixture starts with (override it)."""
    return dict(DEFAULT_TEST_CONFIG)


@pytest.fixture
def simulated_cluster(
    request: pytest.FixtureRequest, simulated_cluster_config: Any
) -> Iterator[SimulatedCluster]:
    """A running simulated cluster, stopped after the test."""
    from .cluster import SimulatedCluster

    marker = request.node.get_closest_marker("simulated_cluster")
    config = marker.args[0] if marker and marker.args else simulated_cluster_config
    with SimulatedCluster(config) as cluster:
        yield cluster


@pytest.fixture
def simulated_kubeconfig(
    simulated_cluster: SimulatedCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A kubeconfig file for the simulated cluster, also exported as ``KUBECONFIG``."""
    path = simulated_cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def simulated_api_client(simulated_kubeconfig: Path) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` configured for the simulated cluster."""
    import kubernetes

    client = kubernetes.config.new_client_from_config(config_file=str(simulated_kubeconfig))
    yield client
    client.close()
