"""Extra links of the operators: the Job in the GKE console, its pods' logs in Cloud Logging,
and the Workflow in the Argo UI.

As soon as the Job or Workflow exists (created or re-attached), before the task defers, the
operator stores what its links need in an XCom (``k8s_job_link`` / ``argo_workflow_link``: names,
namespace, GKE project/location/cluster, the Argo UI's base URL; never a credential). The links
are built from that XCom, so every try and every mapped task instance links to its own Job or
Workflow, also while it is deferred.

Airflow 2's webserver calls ``get_link``. Airflow 3's UI reads each link's URL from the XCom
named by its ``xcom_key``: the operator stores the URLs there too, and the task runner refreshes
them (through ``get_link``) when the task defers or ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from .._compat import AIRFLOW_V_3_0_PLUS, BaseOperatorLink, Context, XCom

if TYPE_CHECKING:
    from ..clusters import ClusterSettings

GOOGLE_CONSOLE = "https://console.cloud.google.com"
JOB_LINK_KEY = "k8s_job_link"
"""XCom with what the Job's links need: ``namespace``, ``name``, ``created`` and, for a GKE
connection, ``project``, ``location`` and ``cluster``."""
WORKFLOW_LINK_KEY = "argo_workflow_link"
"""XCom with what the Workflow's link needs: ``namespace``, ``name`` and ``argo_ui_url``."""
POD_JOB_NAME_LABEL = "k8s-pod/job-name"
"""The Job controller's ``job-name`` pod label, as Cloud Logging exposes pod labels."""

_GKE_FIELDS = ("project", "location", "cluster")


# --- URLs (pure) --------------------------------------------------------------------------------


def _segment(value: Any) -> str:
    return quote(str(value), safe="")


def _has(data: Mapping[str, Any], *keys: str) -> bool:
    return all(isinstance(data.get(k), str) and data[k] for k in keys)


def gke_job_url(data: Mapping[str, Any]) -> str:
    """The Job's page in the GKE console; ``""`` unless the Job runs on a GKE connection."""
    if not _has(data, *_GKE_FIELDS, "namespace", "name"):
        return ""
    path = "/".join(_segment(data[k]) for k in ("location", "cluster", "namespace", "name"))
    query = urlencode({"project": data["project"]})
    return f"{GOOGLE_CONSOLE}/kubernetes/job/{path}/details?{query}"


def _logging_string(value: str) -> str:
    """A string literal of the Logging query language."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gke_job_logs_query(data: Mapping[str, Any]) -> str:
    """The Cloud Logging query for the containers of the Job's pods (from its creation on)."""
    if not _has(data, *_GKE_FIELDS, "namespace", "name"):
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


# --- what the operators store -------------------------------------------------------------------


def job_link_data(
    settings: ClusterSettings, namespace: str, job: Mapping[str, Any]
) -> dict[str, str]:
    """What the Job's links need, from the connection and the Job as the cluster returned it."""
    meta = job.get("metadata") or {}
    data = {"namespace": namespace, "name": str(meta["name"])}
    if meta.get("creationTimestamp"):
        data["created"] = str(meta["creationTimestamp"])
    if settings.kind == "gke":
        data.update({k: str(getattr(settings, k)) for k in _GKE_FIELDS if getattr(settings, k)})
    return data


def workflow_link_data(
    argo_ui_url: str | None, namespace: str, workflow: Mapping[str, Any]
) -> dict[str, str]:
    """What the Workflow's link needs (the Argo UI's base URL without credentials)."""
    data = {"namespace": namespace, "name": str((workflow.get("metadata") or {})["name"])}
    base = argo_ui_base(argo_ui_url)
    if base:
        data["argo_ui_url"] = base
    return data


def _persist(context: Context, key: str, data: dict[str, str], links: tuple[Any, ...]) -> None:
    ti = context["ti"]
    ti.xcom_push(key=key, value=data)
    if AIRFLOW_V_3_0_PLUS:  # what the UI reads, available at once (also without deferring)
        for link in links:
            ti.xcom_push(key=link.xcom_key, value=link.url(data))


def persist_job_links(
    context: Context, settings: ClusterSettings, namespace: str, job: Mapping[str, Any]
) -> None:
    """Store what the Job's links need (call once the Job exists, before deferring)."""
    _persist(context, JOB_LINK_KEY, job_link_data(settings, namespace, job), JOB_LINKS)


def persist_workflow_link(
    context: Context, argo_ui_url: str | None, namespace: str, workflow: Mapping[str, Any]
) -> str:
    """Store what the Workflow's link needs (call once it exists, before deferring); return the
    link (``""`` without an Argo UI base URL)."""
    data = workflow_link_data(argo_ui_url, namespace, workflow)
    _persist(context, WORKFLOW_LINK_KEY, data, WORKFLOW_LINKS)
    return argo_workflow_url(data)


# --- the links ----------------------------------------------------------------------------------


class _StoredLink(BaseOperatorLink):
    """A link built from the XCom ``data_key`` the operator stored; ``""`` (no link) without."""

    name: ClassVar[str]
    data_key: ClassVar[str]
    url_key: ClassVar[str]

    @property
    def xcom_key(self) -> str:
        """Where Airflow 3 keeps this link's URL for the UI."""
        return self.url_key

    @staticmethod
    def build(data: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def url(self, data: Any) -> str:
        return self.build(data) if isinstance(data, Mapping) else ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return self.url(XCom.get_value(ti_key=ti_key, key=self.data_key))


class GkeJobLink(_StoredLink):
    """The Job in the GKE console (GKE connections only)."""

    name = "Kubernetes Job (GKE console)"
    data_key = JOB_LINK_KEY
    url_key = "k8s_job_gke_console_url"
    build = staticmethod(gke_job_url)


class GkeJobLogsLink(_StoredLink):
    """The Job's pods' logs in Cloud Logging (GKE connections only)."""

    name = "Pod logs (Cloud Logging)"
    data_key = JOB_LINK_KEY
    url_key = "k8s_job_cloud_logging_url"
    build = staticmethod(gke_job_logs_url)


class ArgoWorkflowLink(_StoredLink):
    """The Workflow in the Argo UI (when the operator has ``argo_ui_url``)."""

    name = "Argo Workflow"
    data_key = WORKFLOW_LINK_KEY
    url_key = "argo_workflow_url"
    build = staticmethod(argo_workflow_url)


JOB_LINKS: tuple[_StoredLink, ...] = (GkeJobLink(), GkeJobLogsLink())
WORKFLOW_LINKS: tuple[_StoredLink, ...] = (ArgoWorkflowLink(),)
