"""``ArgoWorkflowOperator``: submit an Argo Workflow to a (separate) cluster and wait deferrably.

It replaces a Kubernetes CronJob running ``argo submit``: the schedule, catch-up, backfill and
re-runs are Airflow's, each run renders the *current* workflow definition, and the Workflow is
created through the Kubernetes API with the same connection as Jobs (no Argo Server needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jinja2

from .._compat import Context
from ..errors import ObjectGoneError
from ..kube import WORKFLOWS
from ..live_logs import DEFAULT_STREAMS
from ..manifests.arguments import check_shutdown_on_kill, request_from, scheduled_time, template_ref
from ..manifests.workflows import (
    DEFAULT_POD_GC,
    DEFAULT_TTL_STRATEGY,
    WorkflowRequest,
    build_workflow,
)
from ..pod_logs import MAIN_CONTAINER as MAIN_CONTAINER
from ..pod_logs import MAX_LOGGED_PODS as MAX_LOGGED_PODS
from ..pod_logs import workflow_pod_logs
from ..status.outcome import (
    workflow_after_event,
    workflow_result,
    workflow_task_outcome,
)
from ..submitting import read_workflow_template, stop_workflow
from ..templating import argo_safe, render_workflow_argument
from ..triggers.argo import ArgoWorkflowTrigger
from ..waiting import WorkflowTarget, wait_for_workflow
from ._common import RENDERED_MANIFEST, no_retry_on_bad_input
from .base import SubmitAndWaitOperator, Waiting
from .links import WORKFLOW_LINKS, persist_workflow_link


class ArgoWorkflowOperator(SubmitAndWaitOperator):
    """Submit an Argo Workflow through the Kubernetes API and wait for it (deferrable).

    Give exactly one of ``workflow`` (a manifest), ``workflow_template`` or
    ``cluster_workflow_template``. The manifest is rendered with Airflow's Jinja when the task
    runs, but Argo's own expressions (``{{inputs.parameters.x}}``, ``{{item}}``,
    ``{{workflow.name}}``, ``{{steps.x.outputs…}}``, ``{{=…}}``) reach the cluster untouched.

    Submission, re-attaching, ``rendered_manifest`` (sensitive parameter values masked) and bad
    input are as for every :class:`~airflow_k8s_jobs.operators.base.SubmitAndWaitOperator`; a
    Workflow the Argo controller rejects as invalid also fails without retries, one whose steps
    failed is retried as usual. Unless the manifest or template sets them, the Workflow gets a
    ``ttlStrategy`` (deleted a day after it finished), a ``podGC`` (pods deleted 5 minutes after
    it succeeded; a failed Workflow keeps them) and the ``workflows.argoproj.io/scheduled-time``
    annotation from the run's data interval (``{{workflow.scheduledTime}}``). For a template
    submission ``rendered_manifest`` is built without reading the template, so a ``ttlStrategy``,
    ``podGC`` or ``serviceAccountName`` the template sets replaces the default shown there.

    Returns (XCom ``return_value``) ``{"name", "namespace", "uid", "phase", "outputs",
    "node_outputs"}``: ``outputs`` are the Workflow's global output parameters, ``node_outputs``
    each node's output parameters keyed by its name relative to the Workflow (for example
    ``"[0].task1"``). XCom keys ``workflow_name`` and ``namespace`` are pushed at submit time.

    ``cluster_conn_id``, ``namespace`` (where the Workflow runs) and ``deferrable``: see
    :class:`~airflow_k8s_jobs.operators.base.SubmitAndWaitOperator`.

    :param workflow: a Workflow manifest: a dict, a ``.yaml``/``.yml``/``.json`` file (looked up
        like Airflow template files: the DAG's folder and ``template_searchpath``), or YAML text.
        Only ``workflow`` is ever read as a file, never another templated string.
    :param workflow_template: submit from this WorkflowTemplate (in ``namespace``).
    :param cluster_workflow_template: submit from this ClusterWorkflowTemplate.
    :param parameters: Workflow parameters, like ``argo submit -p name=value`` (templated).
        Values become strings (lists and dicts JSON). A name the Workflow or template does not
        declare fails the task before anything is created.
    :param entrypoint: override the entrypoint template, like ``argo submit --entrypoint``.
    :param labels: extra labels on the Workflow.
    :param annotations: extra annotations on the Workflow.
    :param service_account_name: the Workflow's pods' service account, unless the manifest sets one.
    :param ttl_strategy: the Workflow's ``ttlStrategy`` unless it sets one (None: none).
    :param pod_gc: the Workflow's ``podGC`` unless it sets one (None: keep every pod).
    :param shutdown_on_kill: ``Terminate`` (the default) or ``Stop`` (exit handlers still run)
        the Workflow when the task is killed, also while deferred, or times out; None leaves it
        running.
    :param get_logs: write the pods' logs to the task log when the Workflow has finished.
    :param live_log_streams: while the Workflow runs, the new log lines of this many pods'
        ``main`` containers at once reach the task log as they are written (later pods take
        their turn); 0 turns live logs off.
    :param argo_ui_url: the Argo UI's base URL, to log a link to the Workflow and show it as the
        task's "Argo Workflow" link.
    """

    template_fields: Sequence[str] = (
        "namespace",
        "workflow_template",
        "cluster_workflow_template",
        "parameters",
        "entrypoint",
        "labels",
        "annotations",
        RENDERED_MANIFEST,
    )
    template_fields_renderers = {
        "parameters": "json",
        "labels": "json",
        "annotations": "json",
        RENDERED_MANIFEST: "yaml",
    }
    ui_color = "#ffe7cc"
    operator_extra_links = WORKFLOW_LINKS

    resource = WORKFLOWS
    name_xcom_key = "workflow_name"
    target_type = WorkflowTarget

    def __init__(
        self,
        *,
        workflow: dict[str, Any] | str | None = None,
        workflow_template: str | None = None,
        cluster_workflow_template: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        entrypoint: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        service_account_name: str | None = None,
        ttl_strategy: Mapping[str, Any] | None = DEFAULT_TTL_STRATEGY,
        pod_gc: Mapping[str, Any] | None = DEFAULT_POD_GC,
        shutdown_on_kill: str | None = "Terminate",
        get_logs: bool = True,
        live_log_streams: int = DEFAULT_STREAMS,
        argo_ui_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_shutdown_on_kill(shutdown_on_kill, f"task {self.task_id}")
        self.workflow = workflow
        self.workflow_template = workflow_template
        self.cluster_workflow_template = cluster_workflow_template
        self.parameters = parameters
        self.entrypoint = entrypoint
        self.labels = labels
        self.annotations = annotations
        self.service_account_name = service_account_name
        self.ttl_strategy = ttl_strategy
        self.pod_gc = pod_gc
        self.shutdown_on_kill = shutdown_on_kill
        self.get_logs = get_logs
        self.live_log_streams = live_log_streams
        self.argo_ui_url = argo_ui_url
        self._rendered_workflow: dict[str, Any] | None = None

    # --- rendering ----------------------------------------------------------------------------

    def _template_env(self, env: jinja2.Environment) -> jinja2.Environment:
        return argo_safe(env)

    def _render_manifest(self, context: Context, env: jinja2.Environment) -> None:
        rendered = None if self.workflow is None else self._render_workflow(context, env)
        self._rendered_workflow = rendered

    def _render_workflow(
        self, context: Context, env: jinja2.Environment | None = None
    ) -> dict[str, Any]:
        """The ``workflow`` argument loaded and rendered (Argo expressions left alone)."""
        env = argo_safe(env if env is not None else self.get_template_env())
        where = f"task {self.task_id}, argument workflow"
        return render_workflow_argument(
            self.workflow, env, where, lambda source: self.render_template(source, context, env)
        )

    def _preview_manifest(self, context: Context) -> dict[str, Any]:
        """Built without the cluster: a template is not read."""
        return self._build(context, self._target_namespace(), template=None)

    # --- submit -------------------------------------------------------------------------------

    def build_manifest(self, context: Context) -> tuple[dict[str, Any], str]:
        """The Workflow this task instance try submits, and its namespace.

        Reads the connection and, for a template submission, the template (to check the
        parameters); raises :class:`InvalidInputError` on bad input, before anything is created.
        """
        namespace, template = self._target_namespace(), None
        if self.workflow is None:
            cluster = self._hook().settings.display_name
            wt, cwt = self.workflow_template, self.cluster_workflow_template
            ref = template_ref(f"task {self.task_id}", wt, cwt, namespace, cluster)
            template = None if ref is None else read_workflow_template(self._request, ref)
        return self._build(context, namespace, template), namespace

    def _build(
        self, context: Context, namespace: str, template: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The Workflow of this try (no I/O but reading a ``workflow`` file not rendered yet)."""
        manifest = self._rendered_workflow
        if manifest is None and self.workflow is not None:
            manifest = self._render_workflow(context)
        request = request_from(
            WorkflowRequest,
            self,
            workflow=manifest,
            template=template,
            scheduled_time=scheduled_time(context),
        )
        cluster = self._hook().settings.display_name
        return build_workflow(request, self._key(context), namespace, cluster)

    def _persist_links(self, context: Context, namespace: str, obj: dict[str, Any]) -> None:
        ui_link = persist_workflow_link(context, self.argo_ui_url, namespace, obj)
        if ui_link:
            self.log.info("Argo UI: %s", ui_link)

    def _trigger(self, target: WorkflowTarget, deadline: float | None) -> ArgoWorkflowTrigger:
        return ArgoWorkflowTrigger.for_target(
            target,
            shutdown_on_kill=self.shutdown_on_kill,
            deadline=deadline,
            live_log_streams=self.live_log_streams,
        )

    def _wait(self, target: WorkflowTarget, deadline: float | None) -> Waiting:
        return wait_for_workflow(
            self._hook(), target, self.log, deadline, live_log_streams=self.live_log_streams
        )

    # --- finish -------------------------------------------------------------------------------

    @no_retry_on_bad_input
    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        namespace, name, uid, where = self._about(event)
        self._target = None  # finished: on_kill() has nothing left to stop
        if event["status"] == "timeout":
            self._timed_out(event)
        if event.get("reason") == "WorkflowDeleted":
            raise ObjectGoneError(event["message"])
        path, what = WORKFLOWS.path(namespace, name), f"reading Workflow {namespace}/{name}"
        state = workflow_after_event(self._get(path, what), uid, name, namespace)
        failed = state if event["status"] != "success" else None
        pod_names, logs = workflow_pod_logs(
            self._request, self.log, namespace, name, where, write=self.get_logs, failed=failed
        )
        self._finish(workflow_task_outcome(event, where, state, logs, pod_names), where)
        context["ti"].xcom_push(key="phase", value=event.get("phase"))
        return workflow_result(name, namespace, uid, event, state)

    @property
    def _acts_on_kill(self) -> bool:
        return self.shutdown_on_kill is not None

    def _stop(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Set ``spec.shutdown`` on the Workflow, if it is still ours and still running."""
        strategy = self.shutdown_on_kill or "Terminate"
        stop_workflow(self._request, self.log, namespace, name, uid, where, strategy)
        return f"It was stopped ({strategy})."

    def _abandon(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Stop the Workflow the task gives up on, as a kill would."""
        strategy = self.shutdown_on_kill or "Terminate"
        if stop_workflow(self._request, self.log, namespace, name, uid, where, strategy):
            return f"Stopped {where} ({strategy})"
        return ""
