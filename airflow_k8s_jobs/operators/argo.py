"""``ArgoWorkflowOperator``: submit an Argo Workflow to a (separate) cluster and wait deferrably.

It replaces a Kubernetes CronJob running ``argo submit``: the schedule, catch-up, backfill and
re-runs are Airflow's, each run renders the *current* workflow definition, and the Workflow is
created through the Kubernetes API with the same connection as Jobs (no Argo Server needed).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2

from .._compat import Context
from ..clusters import KubeClusterHook
from ..errors import ObjectGoneError, PermanentApiError
from ..kube import CLUSTER_WORKFLOW_TEMPLATES, MERGE_PATCH, WORKFLOW_TEMPLATES, WORKFLOWS
from ..live_logs import DEFAULT_STREAMS
from ..manifests.arguments import (
    check_shutdown_on_kill,
    request_from,
    scheduled_time,
    template_ref,
)
from ..manifests.workflows import (
    DEFAULT_POD_GC,
    DEFAULT_TTL_STRATEGY,
    WorkflowRequest,
    build_workflow,
    shutdown_patch,
)
from ..status.outcome import (
    failed_pods_without_log,
    pods_by_node,
    same_object,
    workflow_after_event,
    workflow_pod_label,
    workflow_result,
    workflow_task_outcome,
)
from ..status.workflows import WORKFLOW_LABEL, workflow_finished
from ..triggers.argo import ArgoWorkflowTrigger
from ..waiting import WorkflowTarget, wait_for_workflow
from ._common import (
    RENDERED_MANIFEST,
    argo_safe,
    no_retry_on_bad_input,
    render_workflow_argument,
)
from .base import SubmitAndWaitOperator, Waiting
from .links import WORKFLOW_LINKS, persist_workflow_link

MAIN_CONTAINER = "main"
MAX_LOGGED_PODS = 100


class ArgoWorkflowOperator(SubmitAndWaitOperator):
    """Submit an Argo Workflow through the Kubernetes API and wait for it (deferrable).

    Give exactly one of ``workflow`` (a manifest), ``workflow_template`` or
    ``cluster_workflow_template``. The manifest is rendered with Airflow's Jinja when the task
    runs, but Argo's own expressions (``{{inputs.parameters.x}}``, ``{{item}}``,
    ``{{workflow.name}}``, ``{{steps.x.outputs…}}``, ``{{=…}}``) reach the cluster untouched.

    Each task instance try submits its own Workflow, with a deterministic name from
    dag/task/run/map index/try and labels identifying the try: a worker that dies after
    submitting re-attaches to it, and an Airflow retry submits a fresh one (the previous one is
    kept for inspection until its TTL). Unless the manifest or template sets them, the Workflow
    gets a ``ttlStrategy`` (deleted a day after it finished), a ``podGC`` (pods deleted 5 minutes
    after the Workflow succeeded; a failed Workflow keeps them) and the
    ``workflows.argoproj.io/scheduled-time`` annotation from the run's data interval, which feeds
    ``{{workflow.scheduledTime}}``.

    Returns (XCom ``return_value``) ``{"name", "namespace", "uid", "phase", "outputs",
    "node_outputs"}``: ``outputs`` are the Workflow's global output parameters, ``node_outputs``
    each node's output parameters keyed by its name relative to the Workflow (for example
    ``"[0].task1"``). XCom keys ``workflow_name`` and ``namespace`` are pushed at submit time.

    Only ``workflow`` is ever read as a file: a templated string such as ``"result.json"`` in
    ``parameters``, ``labels`` or ``annotations`` stays a string. The Workflow as it is
    submitted (YAML, sensitive parameter values masked) is the ``rendered_manifest`` template
    field, shown under "Rendered Template". For a ``workflow_template`` or
    ``cluster_workflow_template`` it is built without reading the template from the cluster, so
    a ``ttlStrategy``, ``podGC`` or ``serviceAccountName`` the template sets itself replaces the
    default shown there.

    Bad input (an invalid manifest, an undeclared parameter, a missing template, a namespace the
    connection does not allow ...) and a Workflow the Argo controller rejects as invalid fail the
    task without Airflow retries; a Workflow whose steps failed, or a transient API error, is
    retried as usual.

    :param cluster_conn_id: a ``k8sjobs`` connection (GKE, kubeconfig, in-cluster) or a
        cncf ``kubernetes`` connection — the same as for ``KubeJobOperator``.
    :param namespace: where the Workflow runs (default: the connection's namespace).
    :param workflow: a Workflow manifest: a dict, a ``.yaml``/``.yml``/``.json`` file (looked up
        like Airflow template files: the DAG's folder and ``template_searchpath``), or YAML text.
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
    :param delete_on_give_up: stop the Workflow (as ``shutdown_on_kill`` says) when the task's
        ``execution_timeout`` runs out while it runs, so that it does not stay behind running
        or pending; False keeps it running for inspection.
    :param get_logs: write the pods' logs to the task log when the Workflow has finished.
    :param live_log_streams: while the Workflow runs, the new log lines of this many pods'
        ``main`` containers at once reach the task log as they are written (later pods take
        their turn); 0 turns live logs off.
    :param argo_ui_url: the Argo UI's base URL, to log a link to the Workflow and show it as the
        task's "Argo Workflow" link.
    :param deferrable: free the worker slot while waiting (the default).
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
        cluster_conn_id: str = KubeClusterHook.default_conn_name,
        namespace: str | None = None,
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
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            cluster_conn_id=cluster_conn_id, namespace=namespace, deferrable=deferrable, **kwargs
        )
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
        self._rendered_workflow = None
        if self.workflow is not None:
            self._rendered_workflow = self._render_workflow(context, env)

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
        namespace = self._target_namespace()
        template = self._fetch_template(namespace) if self.workflow is None else None
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

    def _fetch_template(self, namespace: str) -> dict[str, Any] | None:
        """The template named by the arguments, read to check the parameters (None: none)."""
        cluster = self._hook().settings.display_name
        wt, cwt = self.workflow_template, self.cluster_workflow_template
        ref = template_ref(f"task {self.task_id}", wt, cwt, namespace, cluster)
        if ref is None:
            return None
        resource = WORKFLOW_TEMPLATES if ref.namespace else CLUSTER_WORKFLOW_TEMPLATES
        what = f"reading {ref.what}"
        try:
            template = self._get(resource.path(ref.namespace, ref.name), what)
        except PermanentApiError as exc:
            raise ref.unreadable(exc, resource.plural) from exc
        if template is not None:
            return template
        try:
            items = self._request("GET", resource.path(ref.namespace), what=what)["items"]
        except PermanentApiError:
            items = []
        raise ref.not_found([o["metadata"]["name"] for o in items])

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
        pods = self._pods(namespace, f"{WORKFLOW_LABEL}={name}", where)
        pod_names = pods_by_node(pods)
        logs: dict[str, str] = {}
        if self.get_logs:
            label = functools.partial(workflow_pod_label, workflow_name=name)
            logs = self._print_logs(namespace, pods, where, label, MAIN_CONTAINER, MAX_LOGGED_PODS)
        if event["status"] != "success" and state is not None:
            for pod in failed_pods_without_log(state, pod_names, logs):
                logs[pod] = self._read_log(namespace, pod, where, MAIN_CONTAINER)
        self._finish(workflow_task_outcome(event, where, state, logs, pod_names), where)
        context["ti"].xcom_push(key="phase", value=event.get("phase"))
        return workflow_result(name, namespace, uid, event, state)

    @property
    def _acts_on_kill(self) -> bool:
        return self.shutdown_on_kill is not None

    def _stop(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Set ``spec.shutdown`` on the Workflow, if it is still ours and still running."""
        strategy = self.shutdown_on_kill or "Terminate"
        if self._shutdown(namespace, name, uid, where, strategy):
            self.log.info("Asked the Argo controller to stop %s (%s).", where, strategy)
        return f"It was stopped ({strategy})."

    def _abandon(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Stop the Workflow the task gives up on, as a kill would."""
        strategy = self.shutdown_on_kill or "Terminate"
        if self._shutdown(namespace, name, uid, where, strategy):
            return f"Stopped {where} ({strategy})"
        return ""

    def _shutdown(self, namespace: str, name: str, uid: str, where: str, strategy: str) -> bool:
        """Set ``spec.shutdown``; False when the Workflow is gone, replaced or finished."""
        path = WORKFLOWS.path(namespace, name)
        current = same_object(self._get(path, f"reading {where}"), uid)
        if current is None or workflow_finished(current):
            return False
        patch, what = shutdown_patch(strategy), f"stopping {where}"
        return self._unless_gone("PATCH", path, what=what, body=patch, content_type=MERGE_PATCH)
