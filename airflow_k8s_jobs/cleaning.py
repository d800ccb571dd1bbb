"""Cleaning finished Jobs off a cluster: the requests behind ``KubeCleanupOperator``.

Per namespace it first lists the Jobs page by page (``limit`` + ``continue``; a continue token
that expires meanwhile restarts the listing), keeping only what deciding needs, then deletes the
finished Jobs old enough, each with a ``uid`` precondition. What it decides is
:mod:`airflow_k8s_jobs.status.cleanup`; every request — LIST pages, DELETEs, retries — waits for
one token bucket and follows one retry policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from .clusters import KubeClusterHook
from .errors import Conflict, Expired, NotFound, PermanentApiError
from .kube import JOBS, request_sync_with_headers
from .manifests.arguments import delete_options
from .retrying import RateLimiter, RetryPolicy
from .status.cleanup import (
    Candidate,
    CleanupPlan,
    NamespaceResult,
    Survey,
    choose_now,
    raise_to_floor,
    verdict,
)


class JobCleaner:
    """Carries out a :class:`CleanupPlan` on one cluster, at most ``requests_per_second``.

    ``clock`` replaces the cluster's clock for ages; ``monotonic`` and ``sleep`` are the rate
    limiter's and the retries' notion of time (tests count the waiting instead of doing it).
    """

    def __init__(
        self,
        hook: KubeClusterHook,
        plan: CleanupPlan,
        log: logging.Logger | Any,
        *,
        clock: Callable[[], datetime] | None = None,
        max_attempts: int = 6,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.hook = hook
        self.plan = plan
        self.log = log
        self.clock = clock
        self.cluster = hook.settings.display_name
        self.limiter = RateLimiter(plan.requests_per_second, monotonic=monotonic, sleep=sleep)
        self.retry = RetryPolicy(attempts=max_attempts, sleep=sleep, clock=monotonic)

    def run(self, namespaces: Sequence[str]) -> dict[str, NamespaceResult]:
        """Clean ``namespaces`` in order, until ``max_deletions`` Jobs are deleted."""
        results: dict[str, NamespaceResult] = {}
        budget = self.plan.max_deletions
        for namespace in namespaces:
            if budget is not None and budget <= 0:
                break
            result = results[namespace] = self.clean(namespace, budget)
            if budget is not None:
                budget -= result.deleted
            where = f"{namespace} on {self.cluster}"
            self.log.info("%s", result.describe(where, self.plan.dry_run))
        return results

    def clean(self, namespace: str, budget: int | None) -> NamespaceResult:
        """List the namespace's Jobs, then delete the finished ones old enough (at most
        ``budget``; None: no limit)."""
        survey, now = self.survey(namespace)
        result = survey.result
        for job in survey.candidates:
            decided = verdict(job, now, self.plan.older_than, result.deleted, budget)
            if decided == "too_young":
                result.kept_too_young += 1
            elif decided == "over_budget":
                result.kept_max_deletions += 1
            else:
                assert job.when is not None
                self.delete(namespace, job, now - job.when, result)
        return result

    def survey(self, namespace: str) -> tuple[Survey, datetime]:
        """List every Job of the namespace (page by page) before deleting any: the finished
        ones are the candidates, and "now" is the same for all of them."""
        what = f"listing the Jobs of namespace {namespace} on {self.cluster}"
        selector = self.plan.selector
        while True:
            survey = Survey(self.plan.include_failed)
            base: tuple[datetime, str] | None = None
            token: str | None = None
            while True:
                query: list[tuple[str, Any]] = [("limit", self.plan.page_size)]
                query += [("labelSelector", selector)] if selector else []
                query += [("continue", token)] if token else []
                try:
                    body, headers = self.call("GET", JOBS.path(namespace), query, None, what)
                except Expired:
                    if not token:
                        raise
                    break  # the continue token expired (etcd compaction): list again
                survey.result.pages += 1
                if base is None:
                    base = self.now(headers)
                for job in (body or {}).get("items") or []:
                    survey.add(job)
                token = ((body or {}).get("metadata") or {}).get("continue") or None
                if not token:
                    now = raise_to_floor(base[0], base[1], survey.floor)
                    survey.result.now = now.strftime("%Y-%m-%dT%H:%M:%SZ")
                    survey.result.clock = base[1]
                    return survey, now
            self.log.info("The list of Jobs in %s expired while paging; listing again.", namespace)

    def delete(
        self, namespace: str, job: Candidate, age: timedelta, result: NamespaceResult
    ) -> None:
        """Delete one finished Job (unless a dry run) and count it."""
        name, dry_run = job.name, self.plan.dry_run
        if not dry_run:
            body = delete_options(job.uid, self.plan.propagation_policy)
            what = f"deleting Job {namespace}/{name} on {self.cluster}"
            try:
                self.call("DELETE", JOBS.path(namespace, name), None, body, what)
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
                    f"Cannot delete Job {namespace}/{name} on {self.cluster} (connection "
                    f"{self.hook.cluster_conn_id!r}): {exc}. The connection's identity needs "
                    f"'delete' on batch/v1 jobs in namespace {namespace}.",
                    exc.code,
                    exc.status,
                ) from exc
        verb = "Would delete" if dry_run else "Deleted"
        self.log.info("%s Job %s/%s (%s %s ago).", verb, namespace, name, job.outcome, age)
        result.deleted += 1
        result.add_name(name)

    def now(self, headers: Mapping[str, str] | None) -> tuple[datetime, str]:
        """The namespace's "now" and where it came from (before raising it to the floor)."""
        given = self.clock() if self.clock is not None else None
        date = headers.get("Date") if headers is not None else None
        return choose_now(given, date, datetime.now(timezone.utc))

    def call(
        self,
        method: str,
        path: str,
        query: list[tuple[str, Any]] | None,
        body: Any,
        what: str,
    ) -> tuple[Any, Mapping[str, str]]:
        """One rate-limited request, retried on transient errors, re-authenticated once."""
        hook = self.hook
        api = hook.api_client()
        timeout = hook.settings.request_timeout

        def send() -> tuple[Any, Mapping[str, str]]:
            self.limiter.acquire()
            return request_sync_with_headers(
                api, method, path, query=query, body=body, timeout=timeout, what=what
            )

        return self.retry.call(
            send, refresh=lambda: hook.refresh_credentials(api), on_retry=self._log_retry
        )

    def _log_retry(self, exc: BaseException, wait: float, attempt: int) -> None:
        self.log.warning("%s; retrying in %.1f s (attempt %d).", exc, wait, attempt)
