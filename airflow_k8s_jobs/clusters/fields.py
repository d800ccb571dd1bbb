"""The connection form of the ``k8sjobs`` connection type (pure data).

Airflow 3.2+ reads the form from the provider info (``conn-fields`` / ``ui-field-behaviour``,
see :mod:`airflow_k8s_jobs.get_provider_info`) without importing the hook; Airflow 2 builds it
from :meth:`KubeClusterHook.get_connection_form_widgets`. Both come from this table.
"""

from __future__ import annotations

from typing import Any

# name -> (label, kind, description); kind is "string", "boolean", "number" or "password"
CONNECTION_FIELDS: dict[str, tuple[str, str, str]] = {
    "project": ("GKE project", "string", "Google Cloud project of the GKE cluster."),
    "location": ("GKE location", "string", "Region or zone of the GKE cluster."),
    "cluster": ("GKE cluster", "string", "Name of the GKE cluster."),
    "use_internal_ip": (
        "Use the private endpoint",
        "boolean",
        "Reach the control plane on its private IP (from inside the VPC).",
    ),
    "use_dns_endpoint": (
        "Use the DNS endpoint",
        "boolean",
        "Reach the control plane through its DNS-based endpoint.",
    ),
    "gcp_conn_id": (
        "Google Cloud connection",
        "string",
        "An Airflow Google Cloud connection whose identity reaches the GKE cluster (default: "
        "Application Default Credentials, e.g. Composer's service account).",
    ),
    "impersonation_chain": (
        "Impersonation chain",
        "string",
        "Comma-separated service accounts; the last one is impersonated, through the others.",
    ),
    "kubeconfig_path": ("Kubeconfig path", "string", "Path of a kubeconfig file on the workers."),
    "kubeconfig": ("Kubeconfig (YAML or JSON)", "password", "An inline kubeconfig."),
    "context": ("Kubeconfig context", "string", "Context to use (default: current-context)."),
    "in_cluster": (
        "In-cluster",
        "boolean",
        "Use the service account of the pod Airflow runs in.",
    ),
    "namespace": ("Default namespace", "string", "Namespace used when a task names none."),
    "allowed_namespaces": (
        "Allowed namespaces",
        "string",
        "Comma-separated namespaces tasks may use (empty: any).",
    ),
    "request_timeout": (
        "Request timeout (seconds)",
        "number",
        "Timeout of each Kubernetes API call (default 60).",
    ),
    "verify_ssl": ("Verify TLS", "boolean", "Verify the API server's certificate (default on)."),
    "watch_scope": (
        "Watch scope",
        "string",
        "auto (default): one watch per namespace until tasks wait in a second namespace, then "
        "one for all namespaces where the credentials may list and watch there; namespace: "
        "never across namespaces; cluster: always across namespaces where allowed.",
    ),
}

DEFAULTS: dict[str, Any] = {"verify_ssl": True}
"""Form defaults that differ from "empty" (an unticked box would turn TLS checks off)."""

HIDDEN_FIELDS = ["host", "schema", "login", "password", "port", "extra"]


def conn_fields() -> dict[str, Any]:
    """The ``conn-fields`` entry of the provider info (Airflow 3.2+)."""
    fields: dict[str, Any] = {}
    for name, (label, kind, description) in CONNECTION_FIELDS.items():
        if kind == "password":
            schema: dict[str, Any] = {"type": ["string", "null"], "format": "password"}
        else:
            schema = {"type": [kind, "null"]}
        if name in DEFAULTS:
            schema["default"] = DEFAULTS[name]
        fields[name] = {"label": label, "description": description, "schema": schema}
    return fields


def ui_field_behaviour() -> dict[str, Any]:
    """The ``ui-field-behaviour`` entry of the provider info (Airflow 3.2+)."""
    return {"hidden-fields": list(HIDDEN_FIELDS)}
