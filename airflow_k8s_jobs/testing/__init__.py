"""A simulated Kubernetes cluster for testing DAGs and this provider without a real cluster.

The real ``kubernetes`` and ``kubernetes_asyncio`` clients talk to it over HTTP. See
``docs/testing.md`` for the configuration, behaviours, faults and the pytest fixture.
"""

from __future__ import annotations

from .cluster import SimulatedCluster
from .config import ClusterConfig, ConfigError, NodePoolConfig

__all__ = ["ClusterConfig", "ConfigError", "NodePoolConfig", "SimulatedCluster"]
