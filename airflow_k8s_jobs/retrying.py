"""The one retry policy of every Kubernetes API call: the operators', cleanup's and the watch hub's.

- Only :class:`~airflow_k8s_jobs.errors.TransientError` is retried (429, 5xx, dropped
  connections); a permanent error is raised at once.
- The wait after the n-th failed attempt is drawn from ``[c/2, c]`` with
  ``c = min(cap, initial * 2**(n-1))`` — jitter, so that many waiters do not come back at once —
  and is at least the server's ``Retry-After`` (itself capped at ``max_retry_after``).
- A ``401 Unauthorized`` reloads the credentials once per call (``refresh``) and repeats the
  request; a second 401 is raised.
- A ``403 Forbidden`` after a transient error of the same call (the API server was unreachable
  or failing) is retried too, up to ``forbidden_after_outage`` times: a kube-apiserver that has
  just restarted serves before its authorizer has loaded the RBAC rules. Any other 403 is raised
  at once, and so is the last one.
- Time and chance are injectable: ``sleep`` / ``asleep``, ``clock`` (for ``max_elapsed``) and
  ``rng``, so tests count the waiting instead of doing it.

Retries use ``tenacity``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception_type

from .errors import Forbidden, TransientError, Unauthorized

T = TypeVar("T")

OnRetry = Callable[[BaseException, float, int], None]
"""Called before each wait with the error, the seconds about to be waited and the attempt number."""


class _ForbiddenAfterOutage(TransientError):
    """A 403 met right after a transient error: retried, then raised as the 403 it is."""

    def __init__(self, forbidden: Forbidden) -> None:
        super().__init__(str(forbidden), forbidden.retry_after)
        self.forbidden = forbidden


class _Attempts:
    """What one call's attempts met so far (shared by the sync and the async call)."""

    def __init__(self, forbidden_limit: int) -> None:
        self.transient = False
        self.forbidden = 0
        self.forbidden_limit = forbidden_limit

    def failed(self, exc: Exception) -> Exception:
        """The error to raise for ``exc``: a 403 after a transient error, as retryable."""
        if isinstance(exc, TransientError):
            self.transient = True
        elif (
            isinstance(exc, Forbidden) and self.transient and self.forbidden < self.forbidden_limit
        ):
            self.forbidden += 1
            return _ForbiddenAfterOutage(exc)
        return exc


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient API error (see the module docstring).

    :param attempts: attempts in all (1: no retry).
    :param initial: the first backoff ceiling, in seconds.
    :param cap: the largest backoff ceiling, in seconds.
    :param max_retry_after: the longest server ``Retry-After`` honoured, in seconds.
    :param max_elapsed: give up once this many seconds (on ``clock``) passed since the first
        attempt, whatever ``attempts`` says (None: no such limit).
    :param forbidden_after_outage: how many 403s after a transient error are retried.
    """

    attempts: int = 6
    initial: float = 1.0
    cap: float = 30.0
    max_retry_after: float = 300.0
    max_elapsed: float | None = None
    forbidden_after_outage: int = 3
    sleep: Callable[[float], None] = time.sleep
    asleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        ceiling = min(self.cap, self.initial * 2 ** max(0, attempt - 1))
        delay = self.rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(float(retry_after), self.max_retry_after))
        return delay

    # tenacity (down to its floor, 8.1) passes the call state as the keyword ``retry_state``.
    def _wait(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        return self.backoff(retry_state.attempt_number, getattr(exc, "retry_after", None))

    def _stop(self, started: float) -> Callable[[RetryCallState], bool]:
        def stop(retry_state: RetryCallState) -> bool:
            if retry_state.attempt_number >= self.attempts:
                return True
            return self.max_elapsed is not None and self.clock() - started >= self.max_elapsed

        return stop

    @staticmethod
    def _before_sleep(on_retry: OnRetry | None) -> Callable[[RetryCallState], None] | None:
        if on_retry is None:
            return None

        def before_sleep(retry_state: RetryCallState) -> None:
            exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
            wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
            if exc is not None:
                on_retry(exc, float(wait), retry_state.attempt_number)

        return before_sleep

    def _settings(self, on_retry: OnRetry | None) -> dict[str, Any]:
        """What the sync and the async ``tenacity`` retrying share."""
        return {
            "retry": retry_if_exception_type(TransientError),
            "wait": self._wait,
            "stop": self._stop(self.clock()),
            "before_sleep": self._before_sleep(on_retry),
            "reraise": True,
        }

    def call(
        self,
        fn: Callable[[], T],
        *,
        refresh: Callable[[], None] | None = None,
        on_retry: OnRetry | None = None,
    ) -> T:
        """``fn()``, retried on transient errors; after a 401, ``refresh()`` and once more."""
        refreshed = False
        seen = _Attempts(self.forbidden_after_outage)

        def attempt() -> T:
            nonlocal refreshed
            try:
                try:
                    return fn()
                except Unauthorized:
                    if refresh is None or refreshed:
                        raise
                    refreshed = True
                    refresh()
                    return fn()
            except Exception as exc:
                error = seen.failed(exc)
                if error is exc:
                    raise
                raise error from exc

        retrying = Retrying(sleep=self.sleep, **self._settings(on_retry))
        try:
            return retrying(attempt)
        except _ForbiddenAfterOutage as exc:
            raise exc.forbidden from None

    async def acall(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        refresh: Callable[[], Awaitable[None]] | None = None,
        on_retry: OnRetry | None = None,
    ) -> T:
        """The async :meth:`call`: awaits ``fn()`` and ``refresh()``, waits with ``asleep``."""
        refreshed = False
        seen = _Attempts(self.forbidden_after_outage)

        async def attempt() -> T:
            nonlocal refreshed
            try:
                try:
                    return await fn()
                except Unauthorized:
                    if refresh is None or refreshed:
                        raise
                    refreshed = True
                    await refresh()
                    return await fn()
            except Exception as exc:
                error = seen.failed(exc)
                if error is exc:
                    raise
                raise error from exc

        retrying = AsyncRetrying(sleep=self.asleep, **self._settings(on_retry))
        try:
            return await retrying(attempt)
        except _ForbiddenAfterOutage as exc:
            raise exc.forbidden from None


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


API_RETRY = RetryPolicy()
"""The operators' policy: 6 attempts, waits up to 30 s (a ``Retry-After`` up to 300 s)."""
