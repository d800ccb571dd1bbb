"""How a task reaches its target cluster: GKE, a kubeconfig, in-cluster or a cncf connection.

``ClusterSettings`` (pure) is parsed from an Airflow connection; ``KubeClusterHook`` turns it
into configured ``kubernetes`` / ``kubernetes_asyncio`` clients. The hook is imported lazily so
that reading the provider info does not import the Kubernetes clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import CNCF_CONN_TYPE, CONN_TYPE, ClusterSettings

if TYPE_CHECKING:
    from .hook import KubeClusterHook

__all__ = ["CNCF_CONN_TYPE", "CONN_TYPE", "ClusterSettings", "KubeClusterHook"]


def __getattr__(name: str) -> Any:
    if name == "KubeClusterHook":
        from .hook import KubeClusterHook

        return KubeClusterHook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
