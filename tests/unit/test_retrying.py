"""The one retry policy: Retry-After as a floor, one credential refresh on 401, jitter from an
injected random source, and no real waiting (injected sleep and clock)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from airflow_k8s_jobs.errors import (
    Forbidden,
    NotFound,
    ServerError,
    TooManyRequests,
    TransientError,
    Unauthorized,
)
from airflow_k8s_jobs.retrying import RetryPolicy


class FakeTime:
    """A clock that advances only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Fails:
    """A call that raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"

    async def acall(self) -> str:
        return self()


def policy(time: FakeTime, seed: int = 1, **kwargs: Any) -> RetryPolicy:
    return RetryPolicy(
        sleep=time.sleep, asleep=time.asleep, clock=time.clock, rng=random.Random(seed), **kwargs
    )


def busy(retry_after: float | None = None) -> TooManyRequests:
    return TooManyRequests("slow down (HTTP 429)", 429, {"code": 429}, retry_after)


def test_transient_errors_are_retried_with_jitter_from_the_injected_random() -> None:
    time = FakeTime()
    call = Fails(busy(), ServerError("boom", 500), TransientError("reset"))
    assert policy(time, seed=7).call(call) == "ok"
    assert call.calls == 4
    expected = random.Random(7)
    assert time.sleeps == [expected.uniform(c / 2, c) for c in (1.0, 2.0, 4.0)]
    # the same seed waits the same; another seed waits otherwise, within the same bounds
    other = FakeTime()
    policy(other, seed=8).call(Fails(busy(), busy(), busy()))
    assert other.sleeps != time.sleeps
    assert all(c / 2 <= s <= c for s, c in zip(other.sleeps, (1.0, 2.0, 4.0), strict=True))


def test_backoff_is_capped() -> None:
    time = FakeTime()
    p = policy(time, attempts=10, cap=5.0)
    p.call(Fails(*[busy() for _ in range(9)]))
    assert all(s <= 5.0 for s in time.sleeps)
    assert all(s >= 2.5 for s in time.sleeps[3:])


def test_retry_after_is_a_floor_and_is_capped() -> None:
    time = FakeTime()
    p = policy(time, max_retry_after=60.0)
    p.call(Fails(busy(retry_after=12.0), busy(retry_after=0.1), busy(retry_after=3600.0)))
    assert time.sleeps[0] == 12.0  # longer than the backoff: the server's hint
    assert 2.0 / 2 <= time.sleeps[1] <= 2.0  # shorter than the backoff: the backoff
    assert time.sleeps[2] == 60.0  # an hour: capped


def test_gives_up_after_the_attempts() -> None:
    time = FakeTime()
    call = Fails(*[busy() for _ in range(10)])
    with pytest.raises(TooManyRequests):
        policy(time, attempts=3).call(call)
    assert call.calls == 3
    assert len(time.sleeps) == 2


def test_gives_up_once_max_elapsed_passed_on_the_injected_clock() -> None:
    time = FakeTime()
    call = Fails(*[busy(retry_after=10.0) for _ in range(10)])
    with pytest.raises(TooManyRequests):
        policy(time, attempts=100, max_elapsed=25.0).call(call)
    assert time.sleeps == [10.0, 10.0, 10.0]
    assert call.calls == 4


@pytest.mark.parametrize("error", [NotFound("gone", 404), Forbidden("no", 403), ValueError("bug")])
def test_permanent_errors_are_raised_at_once(error: Exception) -> None:
    time = FakeTime()
    call = Fails(error)
    with pytest.raises(type(error)):
        policy(time).call(call)
    assert call.calls == 1
    assert time.sleeps == []


def test_one_credential_refresh_on_401() -> None:
    time = FakeTime()
    refreshes: list[int] = []
    call = Fails(Unauthorized("expired", 401))
    assert policy(time).call(call, refresh=lambda: refreshes.append(1)) == "ok"
    assert (call.calls, refreshes, time.sleeps) == (2, [1], [])


def test_a_second_401_is_raised() -> None:
    time = FakeTime()
    refreshes: list[int] = []
    call = Fails(Unauthorized("expired", 401), busy(), Unauthorized("still", 401))
    with pytest.raises(Unauthorized, match="still"):
        policy(time).call(call, refresh=lambda: refreshes.append(1))
    assert refreshes == [1]  # once per call, even across a transient retry
    assert call.calls == 3


def test_401_without_a_refresh_is_raised() -> None:
    with pytest.raises(Unauthorized):
        policy(FakeTime()).call(Fails(Unauthorized("expired", 401)))


def test_on_retry_is_told_the_error_the_wait_and_the_attempt() -> None:
    time = FakeTime()
    seen: list[tuple[str, float, int]] = []
    policy(time).call(
        Fails(busy(retry_after=5.0)), on_retry=lambda e, w, n: seen.append((str(e), w, n))
    )
    assert seen == [("slow down (HTTP 429)", 5.0, 1)]


async def test_the_async_call_follows_the_same_policy() -> None:
    time = FakeTime()
    refreshes: list[int] = []

    async def refresh() -> None:
        refreshes.append(1)

    call = Fails(Unauthorized("expired", 401), busy(retry_after=4.0), ServerError("x", 502))
    assert await policy(time, seed=3).acall(call.acall, refresh=refresh) == "ok"
    expected = random.Random(3)
    first = max(expected.uniform(0.5, 1.0), 4.0)
    assert time.sleeps == [first, expected.uniform(1.0, 2.0)]
    assert refreshes == [1]
    assert call.calls == 4


def test_a_403_after_a_transient_error_is_retried() -> None:
    """A restarted kube-apiserver serves before its authorizer has loaded the RBAC rules."""
    time = FakeTime()
    call = Fails(TransientError("connection refused"), Forbidden("no", 403), Forbidden("no", 403))
    assert policy(time).call(call) == "ok"
    assert call.calls == 4 and len(time.sleeps) == 3


def test_a_403_after_a_transient_error_is_raised_once_the_allowance_is_spent() -> None:
    time = FakeTime()
    call = Fails(TransientError("refused"), *[Forbidden("no", 403) for _ in range(5)])
    with pytest.raises(Forbidden):
        policy(time, attempts=10, forbidden_after_outage=2).call(call)
    assert call.calls == 4  # the transient error, two 403s retried, the third raised


async def test_the_async_call_retries_a_403_after_a_transient_error_too() -> None:
    time = FakeTime()
    call = Fails(ServerError("boom", 503), Forbidden("no", 403))
    assert await policy(time).acall(call.acall) == "ok"
    assert call.calls == 3
