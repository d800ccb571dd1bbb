"""Request accounting and the faults the simulated API server injects on demand."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class FailureRule:
    """Answer the next ``remaining`` matching requests with ``status``."""

    remaining: int
    status: int
    retry_after: int | None = None
    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    label_selector: str | None = None

    def matches(
        self, verb: str, resource: str, namespace: str | None, label_selector: str = ""
    ) -> bool:
        return (
            self.remaining > 0
            and (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
            and (self.namespace is None or self.namespace == namespace)
            and (self.label_selector is None or label_selector.startswith(self.label_selector))
        )


WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass
class RequestCounters:
    """Requests per (verb, resource): ``get``, ``list``, ``watch``, ``create``, ``patch`` …

    ``resource`` is the plural, with a subresource after a slash (``pods/log``, ``jobs/status``).
    Discovery and ``/version`` count under verb ``discovery``.
    """

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    dry_runs: Counter[tuple[str, str]] = field(default_factory=Counter)
    """The requests of ``counts`` made with ``dryRun=All`` (they change nothing)."""
    watches_opened: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, verb: str, resource: str, dry_run: bool = False) -> None:
        with self._lock:
            self.counts[(verb, resource)] += 1
            if dry_run:
                self.dry_runs[(verb, resource)] += 1
            if verb == "watch":
                self.watches_opened += 1

    def count(self, verb: str | None = None, resource: str | None = None) -> int:
        """Requests matching the verb and/or resource (None matches all)."""
        with self._lock:
            return sum(
                n
                for (v, r), n in self.counts.items()
                if (verb is None or v == verb) and (resource is None or r == resource)
            )

    def writes(self, resource: str | None = None) -> int:
        """Requests that may change ``resource`` (create, update, patch, delete,
        deletecollection), dry runs left out."""
        with self._lock:
            return sum(
                n - self.dry_runs[(v, r)]
                for (v, r), n in self.counts.items()
                if v in WRITE_VERBS and (resource is None or r == resource)
            )

    def snapshot(self) -> dict[str, int]:
        """``{"list pods": 3, …}``."""
        with self._lock:
            return {f"{v} {r}": n for (v, r), n in sorted(self.counts.items())}

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.dry_runs.clear()
            self.watches_opened = 0


@dataclass
class HoldRule:
    """Hold the answer to the next ``remaining`` matching requests (never a dry run) for
    ``seconds`` after they were carried out."""

    remaining: int
    seconds: float
    verb: str | None = None
    resource: str | None = None

    def matches(self, verb: str, resource: str, dry_run: bool) -> bool:
        return (
            self.remaining > 0
            and not dry_run
            and (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
        )


@dataclass
class FaultPlan:
    """Injected request failures; thread-safe (tests arm it from their own thread)."""

    rules: list[FailureRule] = field(default_factory=list)
    holds: list[HoldRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hold(self, rule: HoldRule) -> None:
        with self._lock:
            self.holds.append(rule)

    def take_hold(self, verb: str, resource: str, dry_run: bool) -> float | None:
        """Seconds to hold this request's answer, if a hold rule matches (consuming it)."""
        with self._lock:
            for rule in self.holds:
                if rule.matches(verb, resource, dry_run):
                    rule.remaining -= 1
                    self.holds = [r for r in self.holds if r.remaining > 0]
                    return rule.seconds
        return None

    def add(self, rule: FailureRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def take(
        self, verb: str, resource: str, namespace: str | None, label_selector: str = ""
    ) -> FailureRule | None:
        """The rule that fails this request, if any (consuming one of its failures)."""
        with self._lock:
            for rule in self.rules:
                if rule.matches(verb, resource, namespace, label_selector):
                    rule.remaining -= 1
                    return rule
            self.rules = [r for r in self.rules if r.remaining > 0]
        return None

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.holds.clear()
