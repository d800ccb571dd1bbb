"""``ArgoWorkflowOperator``: submit an Argo Workflow to a (separate) cluster and wait deferrably.

It replaces a Kubernetes CronJob running ``argo submit``: the schedule, catch-up, backfill and
re-runs are Airflow's, each run renders the *current* workflow definition, and the Workflow is
created through the Kubernetes API with the same connection as Jobs (no Argo Server needed).
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2

from .._compat import Context
from ..clusters import KubeClusterHook
from ..errors import (
    InvalidInputError,
    NotFound,
    ObjectGoneError,
    PermanentApiError,
    WorkflowFailedError,
)
from ..kube import CLUSTER_WORKFLOW_TEMPLATES, MERGE_PATCH, WORKFLOW_TEMPLATES, WORKFLOWS
from ..manifests.workflows import (
    DEFAULT_POD_GC,
    DEFAULT_TTL_STRATEGY,
    SHUTDOWN_STRATEGIES,
    WorkflowRequest,
    build_workflow,
    load_workflow,
    shutdown_patch,
)
from ..status.workflows import (
    NODE_ID_ANNOTATION,
    NODE_NAME_ANNOTATION,
    WORKFLOW_LABEL,
    WorkflowState,
    interpret_workflow,
    summarize_workflow_failure,
    workflow_finished,
)
from ..triggers.argo import ArgoWorkflowTrigger
from ..waiting import WorkflowTarget, wait_for_workflow
from ._common import (
    RENDERED_MANIFEST,
    FatalWorkflowFailedError,
    argo_safe,
    jinja_errors_in,
    list_pods,
    looks_like_manifest_file,
    no_retry_on_bad_input,
    print_pod_log,
    read_manifest_file,
    read_pod_log,
)
from .base import SubmitAndWaitOperator
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
    :param get_logs: write the pods' logs to the task log when the Workflow has finished.
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
        argo_ui_url: str | None = None,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            cluster_conn_id=cluster_conn_id, namespace=namespace, deferrable=deferrable, **kwargs
        )
        if shutdown_on_kill is not None and shutdown_on_kill not in SHUTDOWN_STRATEGIES:
            raise InvalidInputError(
                f"task {self.task_id}: shutdown_on_kill must be one of "
                f"{', '.join(SHUTDOWN_STRATEGIES)} or None, got {shutdown_on_kill!r}"
            )
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
        source: Any = self.workflow
        if looks_like_manifest_file(source):
            name = str(source).strip()
            where += f", file {name}"
            source = read_manifest_file(env, name, where)
        if not isinstance(source, (str, dict)):
            raise InvalidInputError(
                f"{where}: expected a dict, a .yaml/.yml/.json file name or YAML text, got "
                f"{type(source).__name__}"
            )
        if isinstance(source, str):
            source = load_workflow(source, where=where)
        with jinja_errors_in(where):
            rendered = self.render_template(source, context, env)
        return load_workflow(rendered, where=where)

    def _preview_manifest(self, context: Context) -> dict[str, Any]:
        """Built without the cluster: a template is not read."""
        namespace = self._target_namespace()
        return self._build(context, namespace, template=None)

    # --- submit -------------------------------------------------------------------------------

    def build_manifest(self, context: Context) -> tuple[dict[str, Any], str]:
        """The Workflow this task instance try submits, and its namespace.

        Reads the connection and, for a template submission, the template (to check the
        parameters); raises :class:`InvalidInputError` on bad input, before anything is created.
        """
        namespace = self._target_namespace()
        template = None
        if self.workflow is None and (self.workflow_template or self.cluster_workflow_template):
            template = self._fetch_template(self._hook(), namespace)
        return self._build(context, namespace, template), namespace

    def _build(
        self, context: Context, namespace: str, template: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The Workflow of this try (no I/O but reading a ``workflow`` file not rendered yet)."""
        manifest = self._rendered_workflow
        if manifest is None and self.workflow is not None:
            manifest = self._render_workflow(context)
        scheduled = next(
            (
                v
                for k in ("data_interval_end", "logical_date")
                if isinstance(v := context.get(k), datetime)
            ),
            None,
        )
        request = WorkflowRequest(
            workflow=manifest,
            workflow_template=self.workflow_template,
            cluster_workflow_template=self.cluster_workflow_template,
            template=template,
            parameters=self.parameters,
            entrypoint=self.entrypoint,
            labels=self.labels,
            annotations=self.annotations,
            service_account_name=self.service_account_name,
            ttl_strategy=self.ttl_strategy,
            pod_gc=self.pod_gc,
            scheduled_time=scheduled,
        )
        cluster = self._hook().settings.display_name
        return build_workflow(request, self._key(context), namespace, cluster)

    def _fetch_template(self, hook: KubeClusterHook, namespace: str) -> dict[str, Any]:
        cluster = hook.settings.display_name
        if self.workflow_template and self.cluster_workflow_template:
            raise InvalidInputError(
                f"task {self.task_id}: give workflow_template or cluster_workflow_template, not "
                "both; nothing was created"
            )
        if self.workflow_template:
            name, resource, ns = self.workflow_template, WORKFLOW_TEMPLATES, namespace
            what = f"WorkflowTemplate {namespace}/{name} on {cluster}"
        else:
            name, resource, ns = (
                str(self.cluster_workflow_template),
                CLUSTER_WORKFLOW_TEMPLATES,
                None,
            )
            what = f"ClusterWorkflowTemplate {name} on {cluster}"

        def get(path: str) -> Any:
            return self._request("GET", path, what=f"reading {what}")

        try:
            return dict(get(resource.path(ns, name)))
        except NotFound:
            pass
        except PermanentApiError as exc:
            raise InvalidInputError(
                f"Cannot read {what} to check the parameters: {exc}. Grant the connection's "
                f"identity 'get' and 'list' on {resource.plural}.argoproj.io; nothing was "
                "created."
            ) from exc
        try:
            existing = sorted(o["metadata"]["name"] for o in get(resource.path(ns))["items"])
        except PermanentApiError:
            existing = []
        known = f"; there are: {', '.join(existing)}" if existing else "; there are none"
        raise InvalidInputError(
            f"{what} not found{known}. Create it (argo template create / kubectl apply) or fix "
            f"the task's {'workflow_template' if ns else 'cluster_workflow_template'}; nothing "
            "was created."
        )

    def _target_for(self, namespace: str, obj: dict[str, Any]) -> WorkflowTarget:
        return WorkflowTarget(
            cluster_conn_id=self.cluster_conn_id,
            cluster_name=self._hook().settings.display_name,
            namespace=namespace,
            name=obj["metadata"]["name"],
            uid=obj["metadata"]["uid"],
        )

    def _persist_links(self, context: Context, namespace: str, obj: dict[str, Any]) -> None:
        ui_link = persist_workflow_link(context, self.argo_ui_url, namespace, obj)
        if ui_link:
            self.log.info("Argo UI: %s", ui_link)

    def _trigger(self, target: WorkflowTarget, deadline: float | None) -> ArgoWorkflowTrigger:
        return ArgoWorkflowTrigger.for_target(
            target, shutdown_on_kill=self.shutdown_on_kill, deadline=deadline
        )

    def _wait(
        self, target: WorkflowTarget, deadline: float | None
    ) -> Coroutine[Any, Any, dict[str, Any]]:
        return wait_for_workflow(self._hook(), target, self.log, deadline)

    # --- finish -------------------------------------------------------------------------------

    @no_retry_on_bad_input
    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        hook, api = self._hook(), self._hook().api_client()
        namespace, name, uid, where = self._about(event)
        self._target = None  # finished: on_kill() has nothing left to stop
        if event["status"] == "timeout":
            self._timed_out(event)
        if event.get("reason") == "WorkflowDeleted":
            raise ObjectGoneError(event["message"])
        workflow = self._read(namespace, name, uid)
        state: WorkflowState | None = interpret_workflow(workflow, name=name, namespace=namespace)
        if state is not None and not state.exists:  # deleted since the event: use the event
            state = None
        timeout = hook.settings.request_timeout
        pods = list_pods(api, namespace, f"{WORKFLOW_LABEL}={name}", timeout, where)
        pod_names: dict[str, str] = {}
        for pod in pods:
            node_id = (pod["metadata"].get("annotations") or {}).get(NODE_ID_ANNOTATION)
            if node_id:
                pod_names[node_id] = pod["metadata"]["name"]
        logs = self._print_logs(namespace, name, pods, where) if self.get_logs else {}
        if event["status"] != "success":
            # A Workflow the controller rejected fails the same way on every try.
            failure = FatalWorkflowFailedError if event.get("permanent") else WorkflowFailedError
            if state is None:
                raise failure(f"{where} {event.get('phase') or 'failed'}: {event.get('message')}")
            for node in state.failed_nodes:
                pod = pod_names.get(node.id) or state.pod_name(node)
                if pod not in logs and node.type == "Pod":
                    logs[pod] = read_pod_log(api, namespace, pod, where, MAIN_CONTAINER)
            raise failure(summarize_workflow_failure(state, where, logs, pod_names=pod_names))
        self.log.info("%s succeeded: %s", where, event.get("status_line") or event.get("message"))
        context["ti"].xcom_push(key="phase", value=event.get("phase"))
        return {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "phase": event.get("phase"),
            "outputs": dict(state.outputs if state else event.get("outputs") or {}),
            "node_outputs": {
                k: dict(v)
                for k, v in (
                    state.node_outputs if state else event.get("node_outputs") or {}
                ).items()
            },
        }

    def _read(self, namespace: str, name: str, uid: str) -> dict[str, Any] | None:
        """The Workflow, or None once it is gone (or another of the same name replaced it)."""
        path = WORKFLOWS.path(namespace, name)
        try:
            workflow = self._request("GET", path, what=f"reading Workflow {namespace}/{name}")
        except NotFound:
            return None
        return dict(workflow) if workflow["metadata"].get("uid") == uid else None

    def _print_logs(
        self, namespace: str, name: str, pods: list[dict[str, Any]], where: str
    ) -> dict[str, str]:
        """Each pod's log in the task log, prefixed by pod and node (``[1].task2-3(0:1)…``)."""
        api = self._hook().api_client()
        if len(pods) > MAX_LOGGED_PODS:
            self.log.info(
                "%s has %d pods; writing the logs of the last %d.",
                where,
                len(pods),
                MAX_LOGGED_PODS,
            )
        logs: dict[str, str] = {}
        for pod in pods[-MAX_LOGGED_PODS:]:
            meta = pod["metadata"]
            logs[meta["name"]] = read_pod_log(api, namespace, meta["name"], where, MAIN_CONTAINER)
            node = (meta.get("annotations") or {}).get(NODE_NAME_ANNOTATION, "")
            label = f"{meta['name']} {node.removeprefix(name)}".strip()
            phase = (pod.get("status") or {}).get("phase")
            print_pod_log(self.log, label, phase, logs[meta["name"]])
        return logs

    @property
    def _acts_on_kill(self) -> bool:
        return self.shutdown_on_kill is not None

    def _stop(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Set ``spec.shutdown`` on the Workflow, if it is still ours and still running."""
        strategy = self.shutdown_on_kill or "Terminate"
        path = WORKFLOWS.path(namespace, name)
        try:
            current = self._request("GET", path, what=f"reading {where}")
            if current["metadata"].get("uid") == uid and not workflow_finished(current):
                patch = shutdown_patch(strategy)
                what = f"stopping {where}"
                self._request("PATCH", path, body=patch, content_type=MERGE_PATCH, what=what)
                self.log.info("Asked the Argo controller to stop %s (%s).", where, strategy)
        except NotFound:
            pass
        return f"It was stopped ({strategy})."
