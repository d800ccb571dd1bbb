"""A simulated Kubernetes cluster: an API server, the controllers that matter to batch work
(Jobs, scheduling, nodes and a kubelet, Kueue, Argo Workflows), in one process.

Real clients (``kubernetes``, ``kubernetes_asyncio``, kubectl) talk to it over HTTP. See the
README for the configuration, behaviours, faults, the command line and the pytest fixtures.
"""

from __future__ import annotations

from .cluster import SimulatedCluster
from .config import ClusterConfig, ConfigError, NodePoolConfig

__version__ = "0.2.0"

__all__ = ["ClusterConfig", "ConfigError", "NodePoolConfig", "SimulatedCluster", "__version__"]
