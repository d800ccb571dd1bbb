"""``KubeJobOperator``: run a Kubernetes Job on a separate cluster and wait for it deferrably."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import jinja2

from .._compat import Context
from ..kube import JOBS
from ..live_logs import DEFAULT_STREAMS
from ..manifests.arguments import delete_options, request_from
from ..manifests.jobs import JobSpecRequest, build_job, load_manifest, wait_durations
from ..pod_logs import job_pod_logs
from ..status import termination_messages
from ..status.outcome import FAILURE_LOG_LINES as FAILURE_LOG_LINES
from ..status.outcome import job_task_outcome
from ..templating import looks_like_manifest_file, render_manifest_file
from ..triggers.jobs import KubeJobTrigger
from ..waiting import QUEUE_LABEL, JobTarget, WaitPolicy, wait_for_job
from ._common import RENDERED_MANIFEST, no_retry_on_bad_input
from .base import SubmitAndWaitOperator, Waiting
from .links import JOB_LINKS, persist_job_links


class KubeJobOperator(SubmitAndWaitOperator):
    """Run a ``batch/v1`` Job on a (separate) Kubernetes cluster and wait for it.

    Give either the quick form (``image``, ``cmds``, ``arguments``, ``env``) or a whole ``job``
    manifest (a dict, or a ``.yaml``/``.yml``/``.json`` file, rendered with Jinja; only ``job``
    is ever read as a file, never another templated string). Unless the manifest says
    otherwise, the Job gets a TTL, ``restartPolicy: Never`` and a pod failure policy that ignores
    preemption. Submission, re-attaching, ``rendered_manifest`` (sensitive env values masked)
    and bad input are as for every
    :class:`~airflow_k8s_jobs.operators.base.SubmitAndWaitOperator`: pods that cannot run (an
    invalid image name, an image that cannot be pulled) also fail without Airflow retries; a Job
    that failed (its containers exited non-zero) or a capacity timeout is retried as usual.

    ``cluster_conn_id``, ``namespace`` (where the Job runs) and ``deferrable``: see
    :class:`~airflow_k8s_jobs.operators.base.SubmitAndWaitOperator`.

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
    :param live_log_streams: while the Job runs, the new log lines of this many containers at
        once reach the task log as they are written (later pods take their turn); 0 turns
        live logs off. The full log of every pod is written once more when the Job has finished.
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

    resource = JOBS
    name_xcom_key = "job_name"
    target_type = JobTarget

    def __init__(
        self,
        *,
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
        live_log_streams: int = DEFAULT_STREAMS,
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
        self.capacity_timeout, self.image_pull_grace = wait_durations(
            capacity_timeout, image_pull_grace, f"task {self.task_id}"
        )
        self.live_log_streams = live_log_streams
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
        # Rendering replaces the manifest file's name by its contents: the name, for messages.
        self._job_file: str | None = None

    def _render_manifest(self, context: Context, env: jinja2.Environment) -> None:
        """Replace a ``job`` file name by the file's text, rendered with Jinja."""
        if not looks_like_manifest_file(self.job):
            return
        name = str(self.job).strip()
        where = f"task {self.task_id}, job file {name}"
        self.job = render_manifest_file(
            env, name, where, lambda text: self.render_template(text, context, env)
        )
        self._job_file = name

    # --- submit -----------------------------------------------------------------------------

    def build_manifest(self, context: Context) -> tuple[dict[str, Any], str]:
        """The Job manifest this task instance submits, and its namespace (no I/O but the
        connection lookup; raises :class:`InvalidInputError` on bad input)."""
        namespace = self._target_namespace()
        manifest = None
        if self.job is not None:
            where = f"task {self.task_id}"
            if self._job_file is not None and self.job != self._job_file:
                where += f", job file {self._job_file}"
            manifest = load_manifest(self.job, where=where)
        cluster = self._hook().settings.display_name
        spec = request_from(JobSpecRequest, self, job=manifest)
        return build_job(spec, self._key(context), namespace, cluster), namespace

    def _target_extra(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"queued": QUEUE_LABEL in (obj["metadata"].get("labels") or {})}

    def _persist_links(self, context: Context, namespace: str, obj: dict[str, Any]) -> None:
        persist_job_links(context, self._hook().settings, namespace, obj)

    def _policy(self, deadline: float | None) -> WaitPolicy:
        return WaitPolicy(
            self.capacity_timeout,
            self.image_pull_grace,
            deadline=deadline,
            live_log_streams=self.live_log_streams,
        )

    def _trigger(self, target: JobTarget, deadline: float | None) -> KubeJobTrigger:
        policy = self._policy(deadline)
        return KubeJobTrigger.for_target(target, policy, delete_on_kill=self.delete_on_kill)

    def _wait(self, target: JobTarget, deadline: float | None) -> Waiting:
        return wait_for_job(self._hook(), target, self._policy(deadline), self.log)

    # --- finish -----------------------------------------------------------------------------

    @no_retry_on_bad_input
    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        namespace, name, uid, where = self._about(event)
        pods, logs = job_pod_logs(self._request, self.log, namespace, uid, where)
        if event["status"] == "timeout":
            self._timed_out(event)
        self._finish(job_task_outcome(event, where, pods, logs), where, event)
        if self.delete_on_success:
            self._stop(namespace, name, uid, where)
        return termination_messages(pods)

    @property
    def _acts_on_kill(self) -> bool:
        return self.delete_on_kill

    def _stop(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Delete the Job and its pods (``Foreground``), if it is still ours."""
        body = delete_options(uid, "Foreground")
        path, what = JOBS.path(namespace, name), f"deleting {where}"
        if self._unless_gone("DELETE", path, what=what, body=body):
            self.log.info("Deleted %s and its pods.", where)
        return "The Job was deleted."

    def _abandon(self, namespace: str, name: str, uid: str, where: str) -> str:
        """Delete the Job the task gives up on, and its pods (``Background``: gone at once)."""
        body = delete_options(uid, "Background")
        path, what = JOBS.path(namespace, name), f"deleting {where}"
        if self._unless_gone("DELETE", path, what=what, body=body):
            return f"Deleted {where} and its pods"
        return ""
