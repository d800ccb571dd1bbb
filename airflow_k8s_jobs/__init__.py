"""Run Kubernetes Jobs and Argo Workflows on a separate cluster from Airflow."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
