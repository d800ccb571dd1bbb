"""When a task runs out of time: the execution deadline and the backstop Airflow defers with."""

from __future__ import annotations

import time
from datetime import timedelta

BACKSTOP_SECONDS = 60.0
"""How long after the task's deadline Airflow's own trigger timeout fires (the trigger itself
fires at the deadline, so that the object is stopped rather than left running)."""


def deadline_after(execution_timeout: timedelta | None, started: float | None) -> float | None:
    """Epoch seconds at which ``execution_timeout`` runs out for a try that started at
    ``started`` (epoch seconds; None: now); None without a timeout."""
    if execution_timeout is None:
        return None
    start = time.time() if started is None else started
    return start + execution_timeout.total_seconds()


def backstop(deadline: float | None, now: float | None = None) -> timedelta | None:
    """The ``timeout`` to defer with: a minute past ``deadline`` (None: none)."""
    if deadline is None:
        return None
    now = time.time() if now is None else now
    return timedelta(seconds=max(0.0, deadline - now) + BACKSTOP_SECONDS)
