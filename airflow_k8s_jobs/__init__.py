"""Run Kubernetes Jobs and Argo Workflows on a separate cluster from Airflow."""

from __future__ import annotations

from pkgutil import extend_path
from typing import TYPE_CHECKING, Any

# Another distribution may add a subpackage: simulated-k8s-cluster (the `[testing]` extra) ships
# `airflow_k8s_jobs.testing`, the name 0.1 documented. This finds it wherever it is installed.
__path__ = extend_path(__path__, __name__)

__version__ = "0.2.0"

__all__ = ["ArgoWorkflowOperator", "KubeCleanupOperator", "KubeJobOperator", "__version__"]

if TYPE_CHECKING:
    from .operators.argo import ArgoWorkflowOperator
    from .operators.cleanup import KubeCleanupOperator
    from .operators.jobs import KubeJobOperator


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package (its pure modules, its version) does not import Airflow.
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
