"""``KubeJobOperator``: run a Kubernetes Job on a separate cluster and wait for it deferrably."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import jinja2

from .._compat import AirflowTaskTimeout, BaseOperator, Context
from ..clusters import KubeClusterHook
from ..errors import JobFailedError, NotFound
from ..kube import JOBS, request_sync
from ..manifests.jobs import JobSpecRequest, build_job, load_manifest
from ..manifests.names import TaskInstanceKey
from ..triggers.jobs import KubeJobTrigger
from ..waiting import JOB_UID_LABEL, QUEUE_LABEL, JobTarget, WaitPolicy, wait_for_job
from ._common import (
    RENDERED_MANIFEST,
    FatalJobFailedError,
    bad_input_is_final,
    create_or_adopt,
    execution_deadline,
    jinja_errors_in,
    list_pods,
    looks_like_manifest_file,
    manifest_yaml,
    no_retry_on_bad_input,
    print_pod_log,
    read_manifest_file,
    read_pod_log,
    seconds,
    task_instance_key,
)
from .links import JOB_LINKS, persist_job_links

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
FAILURE_LOG_LINES = 20


class KubeJobOperator(BaseOperator):
    """Run a ``batch/v1`` Job on a (separate) Kubernetes cluster and wait for it.

    Give either the quick form (``image``, ``cmds``, ``arguments``, ``env``) or a whole ``job``
    manifest (a dict, or a ``.yaml``/``.yml``/``.json`` file, rendered with Jinja). The Job gets a
    deterministic name from dag/task/run/map index/try, labels identifying the task instance, a
    TTL, ``restartPolicy: Never`` and a pod failure policy that ignores preemption, unless the
    manifest says otherwise.

    Only ``job`` is ever read as a file: a templated string such as ``"result.json"`` in
    ``arguments``, ``cmds``, ``env``, ``labels`` or ``annotations`` stays a string. The Job as
    it is submitted (YAML, sensitive env values masked) is the ``rendered_manifest`` template
    field, shown under "Rendered Template".

    Bad input (an invalid manifest, a namespace the connection does not allow ...) and pods that
    cannot run (an invalid image name, an image that cannot be pulled) fail the task without
    Airflow retries; a Job that failed (its containers exited non-zero), a capacity timeout or a
    transient API error is retried as usual.

    :param cluster_conn_id: a ``k8sjobs`` connection (GKE, kubeconfig, in-cluster) or a
        cncf ``kubernetes`` connection.
    :param namespace: where the Job runs (default: the connection's namespace).
    :param image: container image (quick form).
    :param cmds: container entrypoint (quick form).
    :param arguments: container arguments (quick form).
    :param env: environment variables (quick form).
    :param job: a Job manifest (dict or file path) instead of the quick form.
    :param parallelism: pods running at once.
    :param completions: successful pods needed.
    :param indexed: ``completionMode: Indexed`` (each pod gets ``JOB_COMPLETION_INDEX``).
    :param backoff_limit: pod failures tolerated before the Job fails.
    :param backoff_limit_per_index: pod failures tolerated per index (Indexed Jobs).
    :param active_deadline_seconds: the Job's own deadline once it runs.
    :param capacity_timeout: how long pods may wait for nodes or quota before the task fails.
    :param image_pull_grace: how long an image pull may keep failing before the task fails.
    :param queue_name: a Kueue LocalQueue to queue the Job in.
    :param node_pool: a GKE node pool to run on (node affinity + toleration).
    :param ttl_seconds_after_finished: the Job (and its pods) are deleted this long after it
        finished.
    :param ignore_preemption: preempted pods (``DisruptionTarget``) do not count as failures.
    :param container_resources: requests/limits of the quick-form container.
    :param service_account_name: the pods' Kubernetes service account.
    :param labels: extra labels on the Job and its pods.
    :param annotations: extra annotations on the Job and its pods.
    :param delete_on_success: delete the Job as soon as it succeeded.
    :param delete_on_kill: delete the Job when the task is killed (also while deferred).
    :param deferrable: free the worker slot while waiting (the default).
    """

    template_fields: Sequence[str] = (
        "namespace",
        "image",
        "cmds",
        "arguments",
        "env",
        "job",
        "labels",
        "annotations",
        RENDERED_MANIFEST,
    )
    # The Job manifest file is read by this operator, never another templated string.
    template_ext: Sequence[str] = ()
    template_fields_renderers = {
        "job": "yaml",
        "env": "json",
        "labels": "json",
        RENDERED_MANIFEST: "yaml",
    }
    ui_color = "#d6e9ff"
    operator_extra_links = JOB_LINKS

    def __init__(
        self,
        *,
        cluster_conn_id: str = KubeClusterHook.default_conn_name,
        namespace: str | None = None,
        image: str | None = None,
        cmds: list[str] | None = None,
        arguments: list[str] | None = None,
        env: dict[str, str] | None = None,
        job: dict[str, Any] | str | None = None,
        parallelism: int | None = None,
        completions: int | None = None,
        indexed: bool = False,
        backoff_limit: int | None = None,
        backoff_limit_per_index: int | None = None,
        active_deadline_seconds: int | None = None,
        capacity_timeout: timedelta | float | None = timedelta(hours=1),
        image_pull_grace: timedelta | float = timedelta(minutes=5),
        queue_name: str | None = None,
        node_pool: str | None = None,
        ttl_seconds_after_finished: int | None = 86400,
        ignore_preemption: bool = True,
        container_resources: dict[str, Any] | None = None,
        service_account_name: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        delete_on_success: bool = False,
        delete_on_kill: bool = True,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster_conn_id = cluster_conn_id
        self.namespace = namespace
        self.image = image
        self.cmds = cmds
        self.arguments = arguments
        self.env = env
        self.job = job
        self.parallelism = parallelism
        self.completions = completions
        self.indexed = indexed
        self.backoff_limit = backoff_limit
        self.backoff_limit_per_index = backoff_limit_per_index
        self.active_deadline_seconds = active_deadline_seconds
        self.capacity_timeout = seconds(capacity_timeout)
        self.image_pull_grace = seconds(image_pull_grace) or 0.0
        self.queue_name = queue_name
        self.node_pool = node_pool
        self.ttl_seconds_after_finished = ttl_seconds_after_finished
        self.ignore_preemption = ignore_preemption
        self.container_resources = container_resources
        self.service_account_name = service_account_name
        self.labels = labels
        self.annotations = annotations
        self.delete_on_success = delete_on_success
        self.delete_on_kill = delete_on_kill
        self.deferrable = deferrable
        self._target: JobTarget | None = None
        # Rendering replaces the manifest file's name by its contents: the name, for messages.
        self._job_file: str | None = None
        self.rendered_manifest: str | None = None

    # --- rendering ----------------------------------------------------------------------------

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Any,
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        # Airflow renders every template field through here, mapped tasks included.
        fields = [f for f in template_fields if f != RENDERED_MANIFEST]
        super()._do_render_template_fields(parent, fields, context, jinja_env, seen_oids)
        if parent is self:
            with bad_input_is_final():
                self._render_job_file(context, jinja_env)
            self.rendered_manifest = self._preview(context)

    def _render_job_file(self, context: Context, jinja_env: jinja2.Environment) -> None:
        """Replace a ``job`` file name by the file's text, rendered with Jinja."""
        if not looks_like_manifest_file(self.job):
            return
        name = str(self.job).strip()
        where = f"task {self.task_id}, job file {name}"
        text = read_manifest_file(jinja_env, name, where)
        with jinja_errors_in(where):
            self.job = self.render_template(text, context, jinja_env)
        self._job_file = name

    def _preview(self, context: Context) -> str | None:
        """The Job this try submits, as YAML; None while it cannot be built (``execute``
        then reports why)."""
        try:
            manifest, _ = self.build_manifest(context)
        except Exception as exc:
            self.log.debug("The Job manifest cannot be built yet: %s", exc)
            return None
        return manifest_yaml(manifest)

    # --- submit -----------------------------------------------------------------------------

    def _hook(self) -> KubeClusterHook:
        return KubeClusterHook(self.cluster_conn_id)

    def _key(self, context: Context) -> TaskInstanceKey:
        return task_instance_key(context)

    def build_manifest(self, context: Context) -> tuple[dict[str, Any], str]:
        """The Job manifest this task instance submits, and its namespace (no I/O but the
        connection lookup; raises :class:`InvalidInputError` on bad input)."""
        settings = self._hook().settings
        namespace = self.namespace or settings.default_namespace
        settings.check_namespace(namespace)
        manifest = None
        if self.job is not None:
            where = f"task {self.task_id}"
            if self._job_file is not None and self.job != self._job_file:
                where += f", job file {self._job_file}"
            manifest = load_manifest(self.job, where=where)
        spec = JobSpecRequest(
            image=self.image,
            cmds=self.cmds,
            arguments=self.arguments,
            env=self.env,
            job=manifest,
            parallelism=self.parallelism,
            completions=self.completions,
            indexed=self.indexed,
            backoff_limit=self.backoff_limit,
            backoff_limit_per_index=self.backoff_limit_per_index,
            active_deadline_seconds=self.active_deadline_seconds,
            queue_name=self.queue_name,
            node_pool=self.node_pool,
            ttl_seconds_after_finished=self.ttl_seconds_after_finished,
            ignore_preemption=self.ignore_preemption,
            container_resources=self.container_resources,
            service_account_name=self.service_account_name,
            labels=self.labels,
            annotations=self.annotations,
        )
        return build_job(spec, self._key(context), namespace, settings.display_name), namespace

    @no_retry_on_bad_input
    def execute(self, context: Context) -> Any:
        manifest, namespace = self.build_manifest(context)
        hook = self._hook()
        job = self._create_or_adopt(hook, manifest, namespace, self._key(context))
        labels = job["metadata"].get("labels") or {}
        self._target = JobTarget(
            cluster_conn_id=self.cluster_conn_id,
            cluster_name=hook.settings.display_name,
            namespace=namespace,
            name=job["metadata"]["name"],
            uid=job["metadata"]["uid"],
            queued=QUEUE_LABEL in labels,
        )
        context["ti"].xcom_push(key="job_name", value=self._target.name)
        context["ti"].xcom_push(key="namespace", value=namespace)
        persist_job_links(context, hook.settings, namespace, job)
        deadline = self._deadline(context)
        if self.deferrable:
            self.defer(
                trigger=KubeJobTrigger(
                    cluster_conn_id=self.cluster_conn_id,
                    cluster_name=self._target.cluster_name,
                    namespace=namespace,
                    job_name=self._target.name,
                    job_uid=self._target.uid,
                    queued=self._target.queued,
                    capacity_timeout=self.capacity_timeout,
                    image_pull_grace=self.image_pull_grace,
                    delete_on_kill=self.delete_on_kill,
                    deadline=deadline,
                ),
                method_name="execute_complete",
                # A backstop only: the trigger itself fires at the deadline, so that the Job
                # is deleted rather than left running by a trigger timeout.
                timeout=None
                if deadline is None
                else timedelta(seconds=max(0.0, deadline - time.time()) + 60),
            )
        policy = WaitPolicy(self.capacity_timeout, self.image_pull_grace, deadline=deadline)
        event = asyncio.run(wait_for_job(hook, self._target, policy, self.log))
        return self.execute_complete(context, event)

    def _deadline(self, context: Context) -> float | None:
        """Epoch seconds at which ``execution_timeout`` runs out (also while deferred)."""
        return execution_deadline(self.execution_timeout, context)

    def _create_or_adopt(
        self, hook: KubeClusterHook, manifest: dict[str, Any], namespace: str, key: TaskInstanceKey
    ) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        return create_or_adopt(
            hook.api_client(),
            JOBS,
            manifest,
            namespace,
            key,
            where=f"Job {namespace}/{name} on {hook.settings.display_name}",
            timeout=hook.settings.request_timeout,
            log=self.log,
        )

    # --- finish -----------------------------------------------------------------------------

    @no_retry_on_bad_input
    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        hook = self._hook()
        api = hook.api_client()
        namespace, name, uid = event["namespace"], event["name"], event["uid"]
        where = f"Job {namespace}/{name} on {hook.settings.display_name}"
        pods = self._pods(api, namespace, uid, hook.settings.request_timeout)
        logs = {pod["metadata"]["name"]: self._pod_log(api, namespace, pod, where) for pod in pods}
        for pod in pods:
            self._print_log(pod, logs[pod["metadata"]["name"]])
        if event["status"] == "timeout":
            self._target = None  # on_kill() (Airflow 2 calls it on a timeout) has nothing to do
            if self.delete_on_kill:
                self._delete(hook, namespace, name, uid, where)
            raise AirflowTaskTimeout(
                f"{event['message']} The Job was deleted."
                if self.delete_on_kill
                else event["message"]
            )
        if event["status"] != "success":
            message = self._failure_message(event, pods, logs, where)
            if event.get("permanent"):  # the pods cannot run: another try would fail the same
                raise FatalJobFailedError(message)
            raise JobFailedError(message)
        self.log.info("%s succeeded: %s", where, event.get("message") or event.get("status_line"))
        result = self._termination_messages(pods)
        if self.delete_on_success:
            self._delete(hook, namespace, name, uid, where)
        return result

    def _pods(self, api: Any, namespace: str, uid: str, timeout: float) -> list[dict[str, Any]]:
        pods = list_pods(api, namespace, f"{JOB_UID_LABEL}={uid}", timeout, f"Job {namespace}")
        return sorted(pods, key=_index)  # stable: oldest first within an index

    def _pod_log(self, api: Any, namespace: str, pod: dict[str, Any], where: str) -> str:
        return read_pod_log(api, namespace, pod["metadata"]["name"], where)

    def _print_log(self, pod: dict[str, Any], text: str) -> None:
        index = _index(pod)
        prefix = pod["metadata"]["name"] + (f"[{index}]" if index >= 0 else "")
        print_pod_log(self.log, prefix, (pod.get("status") or {}).get("phase"), text)

    @staticmethod
    def _termination_messages(pods: list[dict[str, Any]]) -> Any:
        """Termination messages of the succeeded pods: a list (by index for Indexed Jobs)."""
        messages: dict[int, str] = {}
        plain: list[str] = []
        for pod in pods:
            if (pod.get("status") or {}).get("phase") != "Succeeded":
                continue
            text = ""
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated") or {}
                if terminated.get("message"):
                    text = terminated["message"]
            index = _index(pod)
            if index >= 0:
                messages[index] = text
            else:
                plain.append(text)
        if messages:
            return [messages.get(i, "") for i in range(max(messages) + 1)]
        return plain

    @staticmethod
    def _failure_message(
        event: dict[str, Any], pods: list[dict[str, Any]], logs: dict[str, str], where: str
    ) -> str:
        parts = [f"{where} failed: {event.get('reason')}: {event.get('message')}"]
        failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        for pod in failed[-3:]:
            name = pod["metadata"]["name"]
            index = _index(pod)
            codes = []
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated") or {}
                if terminated:
                    codes.append(
                        f"{status['name']} exit code {terminated.get('exitCode')} "
                        f"({terminated.get('reason')})"
                    )
            label = f"pod {name}" + (f" (index {index})" if index >= 0 else "")
            parts.append(f"{label}: {', '.join(codes) or 'no exit code'}; last log lines:")
            tail = logs.get(name, "").splitlines()[-FAILURE_LOG_LINES:]
            parts.extend(f"  | {line}" for line in tail)
        return "\n".join(parts)

    def _delete(
        self, hook: KubeClusterHook, namespace: str, name: str, uid: str, where: str
    ) -> None:
        body = {"propagationPolicy": "Foreground", "preconditions": {"uid": uid}}
        try:
            request_sync(
                hook.api_client(),
                "DELETE",
                JOBS.path(namespace, name),
                body=body,
                what=f"deleting {where}",
            )
            self.log.info("Deleted %s and its pods.", where)
        except NotFound:
            pass

    def on_kill(self) -> None:
        """Delete the Job when the task is killed while the worker waits (synchronous mode)."""
        target = self._target
        if target is None or not self.delete_on_kill:
            return
        self._delete(self._hook(), target.namespace, target.name, target.uid, target.where)


def _index(pod: dict[str, Any]) -> int:
    value = (pod["metadata"].get("annotations") or {}).get(INDEX_ANNOTATION)
    try:
        return int(value) if value is not None else -1
    except ValueError:
        return -1
