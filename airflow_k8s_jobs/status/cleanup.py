"""What cleaning finished Jobs decides, without I/O: which Jobs are finished and since when, which
are kept whatever their age, which are old enough, and what "now" is.

``KubeCleanupOperator`` lists and deletes; everything it decides is here.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from ..errors import InvalidInputError
from ..manifests.names import MANAGED_BY_KEY, MANAGED_BY_VALUE
from ..manifests.validation import label_selector_problem
from ._objects import conditions, is_true, meta, newest_time, parse_time, status

PROPAGATION_POLICIES = ("Background", "Foreground")
"""Deletion propagation policies that also delete the Job's pods (``Orphan`` would keep them)."""

MANAGED_SELECTOR = f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}"

MAX_NAMES = 100
"""Deleted Job names kept per namespace in the returned summary (the counts are exact)."""

TERMINAL_CONDITIONS = ("Complete", "Failed")


def check_arguments(
    where: str,
    *,
    older_than: Any,
    propagation_policy: str,
    requests_per_second: Any,
    max_deletions: int | None,
    max_attempts: int,
    page_size: int,
    only_managed: bool,
    label_selector: str | None,
) -> timedelta:
    """``older_than`` as a timedelta; raises :class:`InvalidInputError` on a bad argument."""
    age = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
    if not isinstance(age, (int, float)) or age < 0:
        raise InvalidInputError(f"{where}: older_than must be >= 0, got {older_than!r}.")
    if propagation_policy not in PROPAGATION_POLICIES:
        orphan = propagation_policy == "Orphan"
        raise InvalidInputError(
            f"{where}: propagation_policy must be one of {', '.join(PROPAGATION_POLICIES)}, "
            f"got {propagation_policy!r}"
            + (" (Orphan would leave the Jobs' pods behind)." if orphan else ".")
        )
    if not (isinstance(requests_per_second, (int, float)) and requests_per_second > 0):
        raise InvalidInputError(
            f"{where}: requests_per_second must be > 0, got {requests_per_second!r}."
        )
    for name, value, low in (
        ("max_deletions", max_deletions, 0),
        ("max_attempts", max_attempts, 1),
        ("page_size", page_size, 1),
    ):
        if value is not None and value < low:
            raise InvalidInputError(f"{where}: {name} must be >= {low}, got {value}.")
    problem = None
    if isinstance(label_selector, str) and "{{" not in label_selector:
        problem = label_selector_problem(label_selector)
    if problem:
        raise InvalidInputError(f"{where}: label_selector {label_selector!r}: {problem}.")
    if not only_managed and label_selector is None:
        raise InvalidInputError(
            f"{where}: only_managed=False needs a label_selector saying which Jobs to clean "
            '(label_selector="" for every Job in the namespace).'
        )
    return timedelta(seconds=float(age))


def cleanup_selector(label_selector: str | None, only_managed: bool) -> str:
    """The label selector the Jobs are listed with (ours only, unless ``only_managed`` is off)."""
    given = (label_selector or "").strip()
    if not only_managed:
        return given
    extra = [p for p in given.split(",") if p.strip() and p.strip() != MANAGED_SELECTOR]
    return ",".join([MANAGED_SELECTOR, *extra])


def namespaces_to_clean(value: Sequence[str] | str | None, default: str) -> list[str]:
    """The namespaces a ``namespaces`` argument names, in order and once each: a list, a
    comma-separated string, or nothing (``default``, the connection's namespace)."""
    if value is None or value == "" or value == []:
        names = [default]
    elif isinstance(value, str):
        names = [n.strip() for n in value.split(",") if n.strip()]
    else:
        names = [str(n).strip() for n in value]
    return list(dict.fromkeys(names))


def job_finished(job: Mapping[str, Any]) -> tuple[str | None, datetime | None]:
    """``("Complete" | "Failed", when)`` for a finished Job, ``(None, None)`` otherwise.

    Only the terminal conditions count: ``SuccessCriteriaMet`` / ``FailureTarget`` mean the Job
    controller is still terminating pods. ``when`` is ``status.completionTime`` (Complete) or the
    condition's ``lastTransitionTime``; None if the cluster recorded no time.
    """
    for cond in conditions(job):
        kind = cond.get("type")
        if kind in TERMINAL_CONDITIONS and is_true(cond):
            when = parse_time(cond.get("lastTransitionTime"))
            if kind == "Complete":
                when = parse_time(status(job).get("completionTime")) or when
            return str(kind), when
    return None, None


def controller_of(obj: Mapping[str, Any]) -> str | None:
    """``Kind/name`` of the object's controlling owner (a CronJob ...), or None."""
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return None


def http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header as an aware datetime, or None."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Candidate:
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

    def describe(self, where: str, dry_run: bool) -> str:
        """The task log's line about one namespace (``where``: "batch on <cluster>")."""
        return (
            f"{where}: {'would delete' if dry_run else 'deleted'} {self.deleted} of "
            f"{self.listed} listed Jobs ({self.already_gone} already gone); kept "
            f"{self.kept_running} unfinished, {self.kept_too_young} too young, "
            f"{self.kept_failed} failed, {self.kept_owned} owned by another object, "
            f"{self.kept_recreated} recreated, {self.kept_max_deletions} over max_deletions; "
            f"{self.already_deleting} being deleted already (now = {self.now} from the "
            f"{self.clock})."
        )


@dataclass
class Survey:
    """One namespace's listing, page by page: the counts, the candidates and the clock floor."""

    include_failed: bool
    result: NamespaceResult = field(default_factory=NamespaceResult)
    candidates: list[Candidate] = field(default_factory=list)
    floor: datetime | None = None
    """The newest instant the cluster wrote on any listed Job: its clock has passed it."""

    def add(self, job: Mapping[str, Any]) -> None:
        """Count a listed Job; keep it as a candidate if only its age can keep it."""
        result = self.result
        result.listed += 1
        newest = newest_time([job])
        if newest is not None and (self.floor is None or newest > self.floor):
            self.floor = newest
        if meta(job).get("deletionTimestamp"):
            result.already_deleting += 1
            return
        outcome, when = job_finished(job)
        if outcome is None:
            result.kept_running += 1
        elif outcome == "Failed" and not self.include_failed:
            result.kept_failed += 1
        elif controller_of(job) is not None:
            result.kept_owned += 1
        else:
            self.candidates.append(Candidate(meta(job)["name"], meta(job)["uid"], outcome, when))


def choose_now(
    given: datetime | None, date_header: str | None, local: datetime
) -> tuple[datetime, str]:
    """The base "now" of a namespace and where it came from (before :func:`raise_to_floor`)."""
    if given is not None:
        return (given if given.tzinfo else given.replace(tzinfo=timezone.utc)), "given clock"
    server = http_date(date_header)
    if server is not None:
        return server, "cluster's Date header"
    return local, "local clock"


def raise_to_floor(now: datetime, clock: str, floor: datetime | None) -> datetime:
    """``now`` raised to ``floor`` when it is behind (never for a given clock)."""
    if clock != "given clock" and floor is not None and floor > now:
        return floor
    return now


def verdict(
    candidate: Candidate,
    now: datetime,
    older_than: timedelta,
    deleted: int,
    budget: int | None,
) -> str:
    """``"too_young"``, ``"over_budget"`` or ``"delete"`` for a finished Job.

    A Job without a recorded finish time counts as too young; ``deleted`` Jobs were deleted in
    this namespace so far, ``budget`` is how many it may delete (None: no limit).
    """
    if candidate.when is None or now - candidate.when < older_than:
        return "too_young"
    if budget is not None and deleted >= budget:
        return "over_budget"
    return "delete"


@dataclass(frozen=True)
class CleanupPlan:
    """What one cleanup run was asked for, its arguments checked (see the operator)."""

    older_than: timedelta
    selector: str
    include_failed: bool
    max_deletions: int | None
    dry_run: bool
    propagation_policy: str
    requests_per_second: float
    page_size: int

    def describe(self, namespaces: Sequence[str], cluster: str) -> str:
        """The task log's first line: what is about to be deleted, where, how fast."""
        return (
            f"{'Dry run: would delete' if self.dry_run else 'Deleting'} finished Jobs older than "
            f"{self.older_than} in {', '.join(namespaces)} on {cluster} (selector "
            f"{self.selector!r}, failed Jobs {'included' if self.include_failed else 'kept'}, "
            f"at most {self.requests_per_second} requests/s"
            + ("" if self.max_deletions is None else f", at most {self.max_deletions} deletions")
            + ")."
        )

    def reached(self, results: Mapping[str, NamespaceResult]) -> bool:
        """Whether ``max_deletions`` Jobs were deleted (later namespaces are not visited)."""
        total = sum(r.deleted for r in results.values())
        return self.max_deletions is not None and total >= self.max_deletions

    def summary(
        self,
        cluster: str,
        namespaces: Sequence[str],
        results: Mapping[str, NamespaceResult],
        requests: int,
    ) -> dict[str, Any]:
        """The operator's return value (XCom): the run's totals and each namespace's result."""
        return {
            "cluster": cluster,
            "dry_run": self.dry_run,
            "label_selector": self.selector,
            "older_than_seconds": self.older_than.total_seconds(),
            "deleted": sum(r.deleted for r in results.values()),
            "max_deletions_reached": self.reached(results),
            "requests": requests,
            "not_visited": [n for n in namespaces if n not in results],
            "namespaces": {n: r.as_dict() for n, r in results.items()},
        }
