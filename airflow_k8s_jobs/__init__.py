"""Run Kubernetes Jobs and Argo Workflows on a separate cluster from Airflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

__all__ = ["ArgoWorkflowOperator", "KubeCleanupOperator", "KubeJobOperator", "__version__"]

if TYPE_CHECKING:
    from .operators.argo import ArgoWorkflowOperator
    from .operators.cleanup import KubeCleanupOperator
    from .operators.jobs import KubeJobOperator


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package (e.g. for the simulated cluster) does not import Airflow.
    if name == "KubeJobOperator":
        from .operators.jobs import KubeJobOperator

        return KubeJobOperator
    if name == "KubeCleanupOperator":
        from .operators.cleanup import KubeCleanupOperator

        return KubeCleanupOperator
    if name == "ArgoWorkflowOperator":
        from .operators.argo import ArgoWorkflowOperator

        return ArgoWorkflowOperator
    raise AttributeError(name)
