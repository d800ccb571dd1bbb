"""Links to where a Job or Workflow can be looked at: the Job's page in the GKE console, its pods'
logs in Cloud Logging, the Workflow in the Argo UI. Pure: built from what the operator stored
(names, namespace, GKE project/location/cluster, the Argo UI's base URL), no I/O, no Airflow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

GOOGLE_CONSOLE = "https://console.cloud.google.com"
POD_JOB_NAME_LABEL = "k8s-pod/job-name"
"""The Job controller's ``job-name`` pod label, as Cloud Logging exposes pod labels."""
GKE_FIELDS = ("project", "location", "cluster")


def _segment(value: Any) -> str:
    return quote(str(value), safe="")


def _has(data: Mapping[str, Any], *keys: str) -> bool:
    return all(isinstance(data.get(k), str) and data[k] for k in keys)


def gke_job_url(data: Mapping[str, Any]) -> str:
    """The Job's page in the GKE console; ``""`` unless the Job runs on a GKE connection."""
    if not _has(data, *GKE_FIELDS, "namespace", "name"):
        return ""
    path = "/".join(_segment(data[k]) for k in ("location", "cluster", "namespace", "name"))
    query = urlencode({"project": data["project"]})
    return f"{GOOGLE_CONSOLE}/kubernetes/job/{path}/details?{query}"


def _logging_string(value: str) -> str:
    """A string literal of the Logging query language."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gke_job_logs_query(data: Mapping[str, Any]) -> str:
    """The Cloud Logging query for the containers of the Job's pods (from its creation on)."""
    if not _has(data, *GKE_FIELDS, "namespace", "name"):
        return ""
    terms = [
        ("resource.type", "k8s_container"),
        ("resource.labels.project_id", data["project"]),
        ("resource.labels.location", data["location"]),
        ("resource.labels.cluster_name", data["cluster"]),
        ("resource.labels.namespace_name", data["namespace"]),
        (f'labels."{POD_JOB_NAME_LABEL}"', data["name"]),
    ]
    lines = [f"{field}={_logging_string(value)}" for field, value in terms]
    if _has(data, "created"):
        # Logs Explorer otherwise shows only the last hour.
        lines.append(f"timestamp>={_logging_string(data['created'])}")
    return "\n".join(lines)


def gke_job_logs_url(data: Mapping[str, Any]) -> str:
    """The Job's pods' logs in the Logs Explorer; ``""`` unless the Job runs on a GKE
    connection."""
    query = gke_job_logs_query(data)
    if not query:
        return ""
    project = urlencode({"project": data["project"]})
    return f"{GOOGLE_CONSOLE}/logs/query;query={quote(query, safe='')}?{project}"


def argo_ui_base(url: str | None) -> str | None:
    """The Argo UI's base URL without credentials, query, fragment or trailing slash; None
    unless it is an http(s) URL."""
    if not isinstance(url, str) or not url.strip():
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.netloc.rpartition("@")[2]  # drop user:password@
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def argo_workflow_url(data: Mapping[str, Any]) -> str:
    """The Workflow's page in the Argo UI; ``""`` without an Argo UI base URL."""
    base = argo_ui_base(data.get("argo_ui_url"))
    if base is None or not _has(data, "namespace", "name"):
        return ""
    return f"{base}/workflows/{_segment(data['namespace'])}/{_segment(data['name'])}"


def workflow_link_data(
    argo_ui_url: str | None, namespace: str, workflow: Mapping[str, Any]
) -> dict[str, str]:
    """What the Workflow's link needs (the Argo UI's base URL without credentials)."""
    data = {"namespace": namespace, "name": str((workflow.get("metadata") or {})["name"])}
    base = argo_ui_base(argo_ui_url)
    if base:
        data["argo_ui_url"] = base
    return data
