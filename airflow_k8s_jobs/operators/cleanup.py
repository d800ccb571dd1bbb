"""``KubeCleanupOperator``: delete finished Jobs (and their pods) left behind on a cluster.

Clusters that ran batch Jobs for a long time without ``ttlSecondsAfterFinished`` can carry tens
of thousands of finished Jobs and pods, and every LIST of them weighs on etcd and the API server.
This operator removes them politely: per namespace it first lists the Jobs page by page
(``limit`` + ``continue``; a continue token that expires meanwhile restarts the listing), keeping
only what deciding needs, then deletes the finished Jobs old enough, each with a ``uid``
precondition. What it decides (finished or not, kept or not, how old, what "now" is) is
:mod:`airflow_k8s_jobs.status.cleanup`; every request — LIST pages, DELETEs, retries — waits for
a token bucket of ``requests_per_second`` and follows the one retry policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from .._compat import BaseOperator, Context
from ..clusters import ClusterSettings, KubeClusterHook
from ..errors import Conflict, Expired, NotFound, PermanentApiError
from ..kube import JOBS, request_sync_with_headers
from ..retrying import RateLimiter, RetryPolicy
from ..status.cleanup import (
    MAX_NAMES,
    PROPAGATION_POLICIES,
    Candidate,
    NamespaceResult,
    Survey,
    check_arguments,
    choose_now,
    cleanup_selector,
    raise_to_floor,
    verdict,
)
from ._common import no_retry_on_bad_input

__all__ = ["MAX_NAMES", "PROPAGATION_POLICIES", "KubeCleanupOperator", "RateLimiter"]

PAGE_SIZE = 500
"""Jobs per LIST request (``limit``); the rest is fetched with the ``continue`` token."""


class KubeCleanupOperator(BaseOperator):
    """Delete finished Jobs (and, through the garbage collector, their pods) older than an age.

    Only Jobs that have finished — a ``Complete`` or ``Failed`` condition — are ever deleted;
    running, suspended or queued Jobs are kept. Jobs controlled by another object (a CronJob
    keeps its own history) and Jobs already being deleted are left alone. Each deletion carries
    a ``uid`` precondition, so a Job deleted and recreated under the same name meanwhile is not
    touched. Every API request (LIST pages and DELETEs, retries included) goes through one token
    bucket of ``requests_per_second``.

    Returns a summary (pushed to XCom)::

        {"cluster": ..., "dry_run": False, "label_selector": ..., "older_than_seconds": ...,
         "deleted": <total>, "max_deletions_reached": False, "requests": ..., "not_visited": [],
         "namespaces": {"batch": {"listed": ..., "deleted": ..., "already_gone": ...,
                                  "kept_running": ..., "kept_too_young": ..., "kept_failed": ...,
                                  "kept_owned": ..., "kept_recreated": ...,
                                  "kept_max_deletions": ...,
                                  "already_deleting": ..., "pages": ..., "now": ..., "clock": ...,
                                  "names": [...], "names_truncated": False}}}

    With ``dry_run`` the ``deleted`` counts and ``names`` are what *would* be deleted.
    See :mod:`airflow_k8s_jobs.status.cleanup` for how the age is measured ("now" is the
    cluster's clock).

    :param cluster_conn_id: a ``k8sjobs`` connection (GKE, kubeconfig, in-cluster) or a
        cncf ``kubernetes`` connection.
    :param namespaces: a namespace, a comma-separated string or a list of namespaces to clean
        (default: the connection's namespace). Each must be allowed by the connection's
        ``allowed_namespaces``; all are checked before anything is deleted. Templated.
    :param older_than: delete Jobs that finished longer ago than this (a ``timedelta`` or
        seconds; default one day). A finished Job without a recorded finish time is kept (it
        counts as too young).
    :param label_selector: an extra label selector for the Jobs. With ``only_managed`` (the
        default) it narrows the Jobs this provider created; with ``only_managed=False`` it is
        the whole selection (``""`` selects every Job of the namespace). Templated.
    :param only_managed: only Jobs labelled ``app.kubernetes.io/managed-by=airflow-k8s-jobs``
        (created by this provider). Set it to False, with a ``label_selector``, to clean Jobs
        made otherwise (for example by an old ``BashOperator`` + ``kubectl`` pattern).
    :param include_failed: also delete failed Jobs (otherwise they are kept for inspection).
    :param max_deletions: delete at most this many Jobs in total (None: no limit); the Jobs
        left over are counted as ``kept_max_deletions`` and later namespaces are not visited.
    :param requests_per_second: the request rate limit towards the API server (> 0).
    :param dry_run: only log and return what would be deleted; nothing is deleted.
    :param propagation_policy: ``Background`` (the Job goes at once, the garbage collector
        deletes its pods after) or ``Foreground`` (the Job stays until its pods are gone).
        ``Orphan`` is refused: it would leave the pods behind.
    :param clock: a callable returning the current time (timezone-aware) used to measure ages
        instead of the cluster's clock; mainly for tests.
    :param max_attempts: attempts per request on transient errors (429, 5xx, dropped
        connections), with exponential backoff or the server's ``Retry-After``.
    :param page_size: Jobs per LIST request (``limit``); the rest comes page by page with the
        ``continue`` token, so a namespace with tens of thousands of Jobs is never read at once.
    """

    template_fields: Sequence[str] = ("namespaces", "label_selector")
    ui_color = "#ffe8d6"

    def __init__(
        self,
        *,
        cluster_conn_id: str = KubeClusterHook.default_conn_name,
        namespaces: list[str] | str | None = None,
        older_than: timedelta | float = timedelta(days=1),
        label_selector: str | None = None,
        only_managed: bool = True,
        include_failed: bool = True,
        max_deletions: int | None = None,
        requests_per_second: float = 5.0,
        dry_run: bool = False,
        propagation_policy: str = "Background",
        clock: Callable[[], datetime] | None = None,
        max_attempts: int = 6,
        page_size: int = PAGE_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.older_than = check_arguments(
            f"task {kwargs.get('task_id')!r}",
            older_than=older_than,
            propagation_policy=propagation_policy,
            requests_per_second=requests_per_second,
            max_deletions=max_deletions,
            max_attempts=max_attempts,
            page_size=page_size,
            only_managed=only_managed,
            label_selector=label_selector,
        )
        self.cluster_conn_id = cluster_conn_id
        self.namespaces = namespaces
        self.label_selector = label_selector
        self.only_managed = only_managed
        self.include_failed = include_failed
        self.max_deletions = max_deletions
        self.requests_per_second = float(requests_per_second)
        self.dry_run_only = dry_run  # not `dry_run`: BaseOperator.dry_run() is a method
        self.propagation_policy = propagation_policy
        self.clock = clock
        self.max_attempts = max_attempts
        self.page_size = page_size
        # Test seams: the rate limiter's and the retries' notion of time.
        self._monotonic: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], None] = time.sleep

    # --- inputs -----------------------------------------------------------------------------

    def selector(self) -> str:
        """The label selector the Jobs are listed with."""
        return cleanup_selector(self.label_selector, self.only_managed)

    def target_namespaces(self, settings: ClusterSettings) -> list[str]:
        """The namespaces to clean, each checked against the connection's allow-list."""
        value = self.namespaces
        if value is None or value == "" or value == []:
            names = [settings.default_namespace]
        elif isinstance(value, str):
            names = [n.strip() for n in value.split(",") if n.strip()]
        else:
            names = [str(n).strip() for n in value]
        result: list[str] = []
        for name in names:
            settings.check_namespace(name)
            if name not in result:
                result.append(name)
        return result

    # --- run --------------------------------------------------------------------------------

    @no_retry_on_bad_input
    def execute(self, context: Context) -> dict[str, Any]:
        hook = KubeClusterHook(self.cluster_conn_id)
        namespaces = self.target_namespaces(hook.settings)
        selector = self.selector()
        limiter = RateLimiter(
            self.requests_per_second, monotonic=self._monotonic, sleep=self._sleep
        )
        cluster = hook.settings.display_name
        self.log.info(
            "%s finished Jobs older than %s in %s on %s (selector %r, failed Jobs %s, "
            "at most %s requests/s%s).",
            "Dry run: would delete" if self.dry_run_only else "Deleting",
            self.older_than,
            ", ".join(namespaces),
            cluster,
            selector,
            "included" if self.include_failed else "kept",
            self.requests_per_second,
            "" if self.max_deletions is None else f", at most {self.max_deletions} deletions",
        )
        results: dict[str, NamespaceResult] = {}
        budget = self.max_deletions
        for namespace in namespaces:
            if budget is not None and budget <= 0:
                break
            result = results[namespace] = self._clean(hook, limiter, namespace, selector, budget)
            if budget is not None:
                budget -= result.deleted
            self.log.info("%s", result.describe(f"{namespace} on {cluster}", self.dry_run_only))
        total = sum(r.deleted for r in results.values())
        reached = self.max_deletions is not None and total >= self.max_deletions
        if reached:
            self.log.info("Stopped after %d deletions (max_deletions).", total)
        return {
            "cluster": cluster,
            "dry_run": self.dry_run_only,
            "label_selector": selector,
            "older_than_seconds": self.older_than.total_seconds(),
            "deleted": total,
            "max_deletions_reached": reached,
            "requests": limiter.acquired,
            "not_visited": [n for n in namespaces if n not in results],
            "namespaces": {n: r.as_dict() for n, r in results.items()},
        }

    def _clean(
        self,
        hook: KubeClusterHook,
        limiter: RateLimiter,
        namespace: str,
        selector: str,
        budget: int | None,
    ) -> NamespaceResult:
        survey, now = self._survey(hook, limiter, namespace, selector)
        result = survey.result
        for job in survey.candidates:
            decided = verdict(job, now, self.older_than, result.deleted, budget)
            if decided == "too_young":
                result.kept_too_young += 1
            elif decided == "over_budget":
                result.kept_max_deletions += 1
            else:
                assert job.when is not None
                self._delete(hook, limiter, namespace, job, now - job.when, result)
        return result

    def _survey(
        self, hook: KubeClusterHook, limiter: RateLimiter, namespace: str, selector: str
    ) -> tuple[Survey, datetime]:
        """List every Job of the namespace (page by page) before deleting any: the finished
        ones are the candidates, and "now" is the same for all of them."""
        what = f"listing the Jobs of namespace {namespace} on {hook.settings.display_name}"
        while True:
            survey = Survey(self.include_failed)
            base: tuple[datetime, str] | None = None
            token: str | None = None
            while True:
                query: list[tuple[str, Any]] = [("limit", self.page_size)]
                query += [("labelSelector", selector)] if selector else []
                query += [("continue", token)] if token else []
                try:
                    body, headers = self._call(
                        hook, limiter, "GET", JOBS.path(namespace), query, None, what
                    )
                except Expired:
                    if not token:
                        raise
                    break  # the continue token expired (etcd compaction): list again
                survey.result.pages += 1
                if base is None:
                    base = self._now(headers)
                for job in (body or {}).get("items") or []:
                    survey.add(job)
                token = ((body or {}).get("metadata") or {}).get("continue") or None
                if not token:
                    now = raise_to_floor(base[0], base[1], survey.floor)
                    survey.result.now = now.strftime("%Y-%m-%dT%H:%M:%SZ")
                    survey.result.clock = base[1]
                    return survey, now
            self.log.info("The list of Jobs in %s expired while paging; listing again.", namespace)

    def _delete(
        self,
        hook: KubeClusterHook,
        limiter: RateLimiter,
        namespace: str,
        job: Candidate,
        age: timedelta,
        result: NamespaceResult,
    ) -> None:
        name, cluster = job.name, hook.settings.display_name
        if not self.dry_run_only:
            body = {"propagationPolicy": self.propagation_policy, "preconditions": {"uid": job.uid}}
            what = f"deleting Job {namespace}/{name} on {cluster}"
            try:
                self._call(hook, limiter, "DELETE", JOBS.path(namespace, name), None, body, what)
            except NotFound:
                result.already_gone += 1
                return
            except Conflict:
                self.log.info(
                    "Not deleting Job %s/%s: it was recreated (no longer uid %s).",
                    namespace,
                    name,
                    job.uid,
                )
                result.kept_recreated += 1
                return
            except PermanentApiError as exc:
                raise type(exc)(
                    f"Cannot delete Job {namespace}/{name} on {cluster} (connection "
                    f"{self.cluster_conn_id!r}): {exc}. The connection's identity needs "
                    f"'delete' on batch/v1 jobs in namespace {namespace}.",
                    exc.code,
                    exc.status,
                ) from exc
        verb = "Would delete" if self.dry_run_only else "Deleted"
        self.log.info("%s Job %s/%s (%s %s ago).", verb, namespace, name, job.outcome, age)
        result.deleted += 1
        result.add_name(name)

    def _now(self, headers: Mapping[str, str] | None) -> tuple[datetime, str]:
        given = self.clock() if self.clock is not None else None
        date = headers.get("Date") if headers is not None else None
        return choose_now(given, date, datetime.now(timezone.utc))

    def _call(
        self,
        hook: KubeClusterHook,
        limiter: RateLimiter,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None,
        body: Any,
        what: str,
    ) -> tuple[Any, Mapping[str, str]]:
        """One rate-limited request, retried on transient errors, re-authenticated once."""
        api = hook.api_client()
        timeout = hook.settings.request_timeout
        policy = RetryPolicy(attempts=self.max_attempts, sleep=self._sleep, clock=self._monotonic)

        def send() -> tuple[Any, Mapping[str, str]]:
            limiter.acquire()
            return request_sync_with_headers(
                api, method, path, query=query, body=body, timeout=timeout, what=what
            )

        return policy.call(
            send, refresh=lambda: hook.refresh_credentials(api), on_retry=self._log_retry
        )

    def _log_retry(self, exc: BaseException, wait: float, attempt: int) -> None:
        self.log.warning("%s; retrying in %.1f s (attempt %d).", exc, wait, attempt)
