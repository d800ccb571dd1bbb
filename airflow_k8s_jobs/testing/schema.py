"""Moved to :mod:`airflow_k8s_jobs.manifests.schema`; re-exported for the simulated cluster."""

from ..manifests.schema import UnknownField, model_for_kind, prune_unknown, unknown_fields

__all__ = ["UnknownField", "model_for_kind", "prune_unknown", "unknown_fields"]
