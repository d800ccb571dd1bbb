"""The simulated cluster under the name airflow-k8s-jobs 0.1 documented.

Shipped by ``simulated-k8s-cluster`` (``pip install 'airflow-k8s-jobs[testing]'``), not by the
provider. New code imports :mod:`simulated_k8s_cluster`; ``python -m airflow_k8s_jobs.testing
serve …`` and ``python -m airflow_k8s_jobs.testing.nodeagent …`` keep working.
"""

from __future__ import annotations

from simulated_k8s_cluster import ClusterConfig, ConfigError, NodePoolConfig, SimulatedCluster

__all__ = ["ClusterConfig", "ConfigError", "NodePoolConfig", "SimulatedCluster"]
