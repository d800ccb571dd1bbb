"""``KubeCleanupOperator``: delete finished Jobs (and their pods) left behind on a cluster.

Clusters that ran batch Jobs for a long time without ``ttlSecondsAfterFinished`` can carry tens
of thousands of finished Jobs and pods, and every LIST of them weighs on etcd and the API server.
This operator removes them politely: per namespace it first lists the Jobs page by page
(``limit`` + ``continue``; a continue token that expires meanwhile restarts the listing), keeping
only what deciding needs (name, uid, outcome, finish time), then deletes the finished Jobs old
enough, each with a ``uid`` precondition. It never touches a Job that has not finished, and every
request — LIST pages, DELETEs, retries — waits for a token bucket of ``requests_per_second``.

How "now" is chosen
-------------------
A Job's age is ``now - finished``, where *finished* is ``status.completionTime`` (Complete) or
the ``lastTransitionTime`` of the ``Complete`` / ``Failed`` condition. *now* is, per namespace:

1. ``clock()`` when a clock is given to the operator (used as is);
2. otherwise the cluster's clock: the ``Date`` header of the first LIST answer (the API server
   writes it, so the worker's clock skew does not matter);
3. otherwise (no usable ``Date`` header) the worker's local clock.

For 2 and 3, *now* is raised to the newest timestamp the cluster wrote on any Job listed in the
namespace if that is later: the cluster's clock has certainly passed it. This only corrects a
clock that is behind (a worker's clock, or one of several API servers or controller managers
whose clocks disagree), so ages stay lower bounds of the true ages — a Job is never deleted for
being older than it is. Normally the ``Date`` header is already the later of the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from .._compat import BaseOperator, Context
from ..clusters import ClusterSettings, KubeClusterHook
from ..errors import InvalidInputError, KubeApiError, TransientError
from ..kube import JOBS, Unauthorized, request_sync_with_headers
from ..manifests.names import MANAGED_BY_KEY, MANAGED_BY_VALUE

PROPAGATION_POLICIES = ("Background", "Foreground")
"""Deletion propagation policies that also delete the Job's pods (``Orphan`` would keep them)."""

PAGE_SIZE = 500
"""Jobs per LIST request (``limit``); the rest is fetched with the ``continue`` token."""

MAX_NAMES = 100
"""Deleted Job names kept per namespace in the returned summary (the counts are exact)."""

MAX_RETRY_AFTER = 300.0
"""Longest server ``Retry-After`` hint honoured, in seconds."""

MANAGED_SELECTOR = f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}"

_backoff = wait_exponential_jitter(initial=1, max=30)


class RateLimiter:
    """A token bucket: at most ``rate`` requests per second on average, ``burst`` at once.

    With the default ``burst=1`` consecutive requests are at least ``1 / rate`` seconds apart.
    ``monotonic`` and ``sleep`` are injectable so tests can count the waiting instead of doing
    it; ``slept`` is the total time :meth:`acquire` asked to sleep.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = monotonic()
        self.slept = 0.0
        self.acquired = 0

    def acquire(self) -> None:
        """Take one token, sleeping until one is available."""
        now = self._monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            wait = (1.0 - self._tokens) / self.rate
            self.slept += wait
            self._sleep(wait)
            now = self._monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens = max(self._tokens, 1.0)  # the sleep was for exactly this token
        self._tokens -= 1.0
        self.acquired += 1


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as written by the API server, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def finished(job: Mapping[str, Any]) -> tuple[str | None, datetime | None]:
    """``("Complete" | "Failed", when)`` for a finished Job, ``(None, None)`` otherwise.

    Only the terminal conditions count: ``SuccessCriteriaMet`` / ``FailureTarget`` mean the Job
    controller is still terminating pods. ``when`` is None if the cluster recorded no time.
    """
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        kind = condition.get("type")
        if kind in ("Complete", "Failed") and condition.get("status") == "True":
            when = parse_time(condition.get("lastTransitionTime"))
            if kind == "Complete":
                when = parse_time(status.get("completionTime")) or when
            return kind, when
    return None, None


def newest_timestamp(job: Mapping[str, Any]) -> datetime | None:
    """The latest instant the cluster wrote on ``job`` (its clock has passed it)."""
    meta = job.get("metadata") or {}
    status = job.get("status") or {}
    values = [meta.get("creationTimestamp"), status.get("startTime"), status.get("completionTime")]
    for condition in status.get("conditions") or []:
        values += [condition.get("lastTransitionTime"), condition.get("lastProbeTime")]
    times = [t for t in map(parse_time, values) if t is not None]
    return max(times) if times else None


def _controlled(job: Mapping[str, Any]) -> str | None:
    for ref in (job.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return None


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    hint = getattr(exc, "retry_after", None)
    if hint is not None and hint >= 0:
        return min(float(hint), MAX_RETRY_AFTER)
    return float(_backoff(state))


@dataclass(frozen=True)
class _Candidate:
    """A finished Job found by the LIST: what deciding and deleting it needs."""

    name: str
    uid: str
    outcome: str
    when: datetime | None


@dataclass
class NamespaceResult:
    """What happened in one namespace (returned to XCom as a dict)."""

    listed: int = 0
    deleted: int = 0
    already_gone: int = 0
    kept_running: int = 0
    kept_too_young: int = 0
    kept_failed: int = 0
    kept_owned: int = 0
    kept_recreated: int = 0
    kept_max_deletions: int = 0
    already_deleting: int = 0
    pages: int = 0
    now: str = ""
    clock: str = ""
    names: list[str] = field(default_factory=list)
    names_truncated: bool = False

    def add_name(self, name: str) -> None:
        if len(self.names) < MAX_NAMES:
            self.names.append(name)
        else:
            self.names_truncated = True

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in vars(self).items()}


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
    See the module docstring for how the age is measured ("now" is the cluster's clock).

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
        age = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
        where = f"task {kwargs.get('task_id')!r}"
        if not isinstance(age, (int, float)) or age < 0:
            raise InvalidInputError(f"{where}: older_than must be >= 0, got {older_than!r}.")
        if propagation_policy not in PROPAGATION_POLICIES:
            raise InvalidInputError(
                f"{where}: propagation_policy must be one of {', '.join(PROPAGATION_POLICIES)}, "
                f"got {propagation_policy!r}"
                + (
                    " (Orphan would leave the Jobs' pods behind)."
                    if propagation_policy == "Orphan"
                    else "."
                )
            )
        if not (isinstance(requests_per_second, (int, float)) and requests_per_second > 0):
            raise InvalidInputError(
                f"{where}: requests_per_second must be > 0, got {requests_per_second!r}."
            )
        if max_deletions is not None and max_deletions < 0:
            raise InvalidInputError(f"{where}: max_deletions must be >= 0, got {max_deletions}.")
        if max_attempts < 1:
            raise InvalidInputError(f"{where}: max_attempts must be >= 1, got {max_attempts}.")
        if page_size < 1:
            raise InvalidInputError(f"{where}: page_size must be >= 1, got {page_size}.")
        if not only_managed and label_selector is None:
            raise InvalidInputError(
                f"{where}: only_managed=False needs a label_selector saying which Jobs to clean "
                '(label_selector="" for every Job in the namespace).'
            )
        self.cluster_conn_id = cluster_conn_id
        self.namespaces = namespaces
        self.older_than = timedelta(seconds=float(age))
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
        given = (self.label_selector or "").strip()
        if not self.only_managed:
            return given
        extra = [
            part for part in given.split(",") if part.strip() and part.strip() != MANAGED_SELECTOR
        ]
        return ",".join([MANAGED_SELECTOR, *extra])

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

    def execute(self, context: Context) -> dict[str, Any]:
        hook = KubeClusterHook(self.cluster_conn_id)
        settings = hook.settings
        namespaces = self.target_namespaces(settings)
        selector = self.selector()
        limiter = RateLimiter(
            self.requests_per_second, monotonic=self._monotonic, sleep=self._sleep
        )
        cluster = settings.display_name
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
            result = self._clean(hook, limiter, namespace, selector, budget)
            results[namespace] = result
            if budget is not None:
                budget -= result.deleted
            self.log.info(
                "%s on %s: %s %d of %d listed Jobs (%d already gone); kept %d unfinished, "
                "%d too young, %d failed, %d owned by another object, %d recreated, "
                "%d over max_deletions; %d being deleted already (now = %s from the %s).",
                namespace,
                cluster,
                "would delete" if self.dry_run_only else "deleted",
                result.deleted,
                result.listed,
                result.already_gone,
                result.kept_running,
                result.kept_too_young,
                result.kept_failed,
                result.kept_owned,
                result.kept_recreated,
                result.kept_max_deletions,
                result.already_deleting,
                result.now,
                result.clock,
            )
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
        result, candidates, now = self._survey(hook, limiter, namespace, selector)
        for candidate in candidates:
            if candidate.when is None or now - candidate.when < self.older_than:
                result.kept_too_young += 1
                continue
            if budget is not None and result.deleted >= budget:
                result.kept_max_deletions += 1
                continue
            self._delete(hook, limiter, namespace, candidate, now - candidate.when, result)
        return result

    def _survey(
        self, hook: KubeClusterHook, limiter: RateLimiter, namespace: str, selector: str
    ) -> tuple[NamespaceResult, list[_Candidate], datetime]:
        """List every Job of the namespace (page by page) before deleting any: the finished
        ones are the candidates, and "now" is the same for all of them."""
        cluster = hook.settings.display_name
        while True:
            result = NamespaceResult()
            candidates: list[_Candidate] = []
            base: datetime | None = None
            floor: datetime | None = None
            token: str | None = None
            while True:
                query: list[tuple[str, Any]] = [("limit", self.page_size)]
                if selector:
                    query.append(("labelSelector", selector))
                if token:
                    query.append(("continue", token))
                try:
                    body, headers = self._call(
                        hook,
                        limiter,
                        "GET",
                        JOBS.path(namespace),
                        query,
                        None,
                        f"listing the Jobs of namespace {namespace} on {cluster}",
                    )
                except KubeApiError as exc:
                    if exc.code == 410 and token:
                        break  # the continue token expired (etcd compaction): list again
                    raise
                result.pages += 1
                if base is None:
                    base, result.clock = self._now(headers)
                for job in (body or {}).get("items") or []:
                    result.listed += 1
                    newest = newest_timestamp(job)
                    if newest is not None and (floor is None or newest > floor):
                        floor = newest
                    candidate = self._triage(job, namespace, result)
                    if candidate is not None:
                        candidates.append(candidate)
                token = ((body or {}).get("metadata") or {}).get("continue") or None
                if not token:
                    assert base is not None
                    now = base
                    if self.clock is None and floor is not None and floor > base:
                        now = floor
                    result.now = now.strftime("%Y-%m-%dT%H:%M:%SZ")
                    return result, candidates, now
            self.log.info("The list of Jobs in %s expired while paging; listing again.", namespace)

    def _triage(
        self, job: dict[str, Any], namespace: str, result: NamespaceResult
    ) -> _Candidate | None:
        """Count a Job that is kept whatever its age; return the finished ones."""
        meta = job["metadata"]
        if meta.get("deletionTimestamp"):
            result.already_deleting += 1
            return None
        outcome, when = finished(job)
        if outcome is None:
            result.kept_running += 1
            return None
        if outcome == "Failed" and not self.include_failed:
            result.kept_failed += 1
            return None
        owner = _controlled(job)
        if owner is not None:
            self.log.debug("Keeping Job %s/%s: controlled by %s.", namespace, meta["name"], owner)
            result.kept_owned += 1
            return None
        return _Candidate(meta["name"], meta["uid"], outcome, when)

    def _delete(
        self,
        hook: KubeClusterHook,
        limiter: RateLimiter,
        namespace: str,
        job: _Candidate,
        age: timedelta,
        result: NamespaceResult,
    ) -> None:
        name = job.name
        if self.dry_run_only:
            self.log.info("Would delete Job %s/%s (%s %s ago).", namespace, name, job.outcome, age)
            result.deleted += 1
            result.add_name(name)
            return
        cluster = hook.settings.display_name
        try:
            self._call(
                hook,
                limiter,
                "DELETE",
                JOBS.path(namespace, name),
                None,
                {"propagationPolicy": self.propagation_policy, "preconditions": {"uid": job.uid}},
                f"deleting Job {namespace}/{name} on {cluster}",
            )
        except KubeApiError as exc:
            if exc.code == 404:
                result.already_gone += 1
                return
            if exc.code == 409:
                self.log.info(
                    "Not deleting Job %s/%s: it was recreated (no longer uid %s).",
                    namespace,
                    name,
                    job.uid,
                )
                result.kept_recreated += 1
                return
            raise KubeApiError(
                f"Cannot delete Job {namespace}/{name} on {cluster} (connection "
                f"{self.cluster_conn_id!r}): {exc}. The connection's identity needs "
                f"'delete' on batch/v1 jobs in namespace {namespace}.",
                exc.code,
                exc.status,
            ) from exc
        self.log.info("Deleted Job %s/%s (%s %s ago).", namespace, name, job.outcome, age)
        result.deleted += 1
        result.add_name(name)

    def _now(self, headers: Mapping[str, str] | None) -> tuple[datetime, str]:
        if self.clock is not None:
            now = self.clock()
            return (now if now.tzinfo else now.replace(tzinfo=timezone.utc)), "given clock"
        value = headers.get("Date") if headers is not None else None
        if value:
            try:
                parsed = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                parsed = None
            if parsed is not None:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=timezone.utc)
                return parsed, "cluster's Date header"
        return datetime.now(timezone.utc), "local clock"

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
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=_wait,
            stop=stop_after_attempt(self.max_attempts),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                limiter.acquire()
                try:
                    return request_sync_with_headers(
                        api, method, path, query=query, body=body, timeout=timeout, what=what
                    )
                except Unauthorized:
                    hook.refresh_credentials(api)
                    limiter.acquire()
                    return request_sync_with_headers(
                        api, method, path, query=query, body=body, timeout=timeout, what=what
                    )
        raise AssertionError("unreachable")  # pragma: no cover

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log.warning("%s; retrying in %.1f s (attempt %d).", exc, wait, state.attempt_number)
