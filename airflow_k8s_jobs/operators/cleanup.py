"""``KubeCleanupOperator``: delete finished Jobs (and their pods) left behind on a cluster.

Clusters that ran batch Jobs for a long time without ``ttlSecondsAfterFinished`` can carry tens
of thousands of finished Jobs and pods, and every LIST of them weighs on etcd and the API server.
This operator removes them politely: per namespace it first lists the Jobs page by page, keeping
only what deciding needs, then deletes the finished Jobs old enough, each with a ``uid``
precondition (:mod:`airflow_k8s_jobs.cleaning`). What it decides (finished or not, kept or not,
how old, what "now" is) is :mod:`airflow_k8s_jobs.status.cleanup`; every request — LIST pages,
DELETEs, retries — waits for a token bucket of ``requests_per_second`` and follows the one retry
policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from .._compat import BaseOperator, Context
from ..cleaning import JobCleaner
from ..clusters import ClusterSettings, KubeClusterHook
from ..retrying import RateLimiter
from ..status.cleanup import (
    MAX_NAMES,
    PROPAGATION_POLICIES,
    CleanupPlan,
    check_arguments,
    cleanup_selector,
    namespaces_to_clean,
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
        names = namespaces_to_clean(self.namespaces, settings.default_namespace)
        for name in names:
            settings.check_namespace(name)
        return names

    def plan(self) -> CleanupPlan:
        """What this run is asked to do."""
        return CleanupPlan(
            older_than=self.older_than,
            selector=self.selector(),
            include_failed=self.include_failed,
            max_deletions=self.max_deletions,
            dry_run=self.dry_run_only,
            propagation_policy=self.propagation_policy,
            requests_per_second=self.requests_per_second,
            page_size=self.page_size,
        )

    # --- run --------------------------------------------------------------------------------

    @no_retry_on_bad_input
    def execute(self, context: Context) -> dict[str, Any]:
        hook = KubeClusterHook(self.cluster_conn_id)
        namespaces = self.target_namespaces(hook.settings)
        plan, cluster = self.plan(), hook.settings.display_name
        cleaner = JobCleaner(
            hook,
            plan,
            self.log,
            clock=self.clock,
            max_attempts=self.max_attempts,
            monotonic=self._monotonic,
            sleep=self._sleep,
        )
        self.log.info("%s", plan.describe(namespaces, cluster))
        results = cleaner.run(namespaces)
        summary = plan.summary(cluster, namespaces, results, cleaner.limiter.acquired)
        if summary["max_deletions_reached"]:
            self.log.info("Stopped after %d deletions (max_deletions).", summary["deleted"])
        return summary
