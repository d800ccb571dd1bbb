"""Extra links of the operators: the Job in the GKE console, its pods' logs in Cloud Logging,
and the Workflow in the Argo UI.

As soon as the Job or Workflow exists (created or re-attached), before the task defers, the
operator stores what its links need in an XCom (``k8s_job_link`` / ``argo_workflow_link``: names,
namespace, GKE project/location/cluster, the Argo UI's base URL; never a credential). The links
are built from that XCom, so every try and every mapped task instance links to its own Job or
Workflow, also while it is deferred. The URLs are built by :mod:`airflow_k8s_jobs.consoles`.

Airflow 2's webserver calls ``get_link``. Airflow 3's UI reads each link's URL from the XCom
named by its ``xcom_key``: the operator stores the URLs there too, and the task runner refreshes
them (through ``get_link``) when the task defers or ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .._compat import AIRFLOW_V_3_0_PLUS, BaseOperatorLink, Context, XCom
from ..consoles import (
    GKE_FIELDS,
    GOOGLE_CONSOLE,
    POD_JOB_NAME_LABEL,
    argo_ui_base,
    argo_workflow_url,
    gke_job_logs_query,
    gke_job_logs_url,
    gke_job_url,
    workflow_link_data,
)

if TYPE_CHECKING:
    from ..clusters import ClusterSettings

__all__ = [
    "GOOGLE_CONSOLE",
    "JOB_LINKS",
    "JOB_LINK_KEY",
    "POD_JOB_NAME_LABEL",
    "WORKFLOW_LINKS",
    "WORKFLOW_LINK_KEY",
    "ArgoWorkflowLink",
    "GkeJobLink",
    "GkeJobLogsLink",
    "argo_ui_base",
    "argo_workflow_url",
    "gke_job_logs_query",
    "gke_job_logs_url",
    "gke_job_url",
    "job_link_data",
    "persist_job_links",
    "persist_workflow_link",
    "workflow_link_data",
]

JOB_LINK_KEY = "k8s_job_link"
"""XCom with what the Job's links need: ``namespace``, ``name``, ``created`` and, for a GKE
connection, ``project``, ``location`` and ``cluster``."""
WORKFLOW_LINK_KEY = "argo_workflow_link"
"""XCom with what the Workflow's link needs: ``namespace``, ``name`` and ``argo_ui_url``."""


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
        data.update({k: str(getattr(settings, k)) for k in GKE_FIELDS if getattr(settings, k)})
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
