"""Which object of an earlier try a retry waits for instead of creating its own.

A try that ends without knowing its object's outcome (its worker killed after the create, the
API unreachable while it read the results) leaves a Job or Workflow that may still run, or may
have succeeded. The next try then takes that object over rather than running the work a second
time: the latest earlier try's object is adopted while it runs, and once it has succeeded when
the try is an automatic retry. A failed, stopped or deleted object is never adopted: the retry
runs the work again in an object of its own. A cleared task (someone asked for the work to run
again) adopts only an object still running, so that the work never runs twice at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..manifests.names import TRY_NUMBER
from .jobs import job_outcome
from .workflows import FINISHED_PHASES

Obj = dict[str, Any]


@dataclass(frozen=True)
class Adoption:
    """An earlier try's object to wait for, and why (for the task log)."""

    obj: Obj
    try_number: int
    why: str


def _try_of(obj: Obj) -> int | None:
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(TRY_NUMBER)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _state(kind: str, obj: Obj) -> str:
    """``running``, ``succeeded`` or ``over`` (failed, being stopped or deleted)."""
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "over"
    if kind == "Workflow":
        if (obj.get("spec") or {}).get("shutdown"):
            return "over"
        status = obj.get("status") or {}
        phase = status.get("phase") or ""
        if phase in FINISHED_PHASES or status.get("finishedAt"):
            return "succeeded" if phase == "Succeeded" else "over"
        return "running"
    outcome = job_outcome(obj)
    if outcome is None:
        return "running"
    return "succeeded" if outcome[0] == "Complete" else "over"


def earlier_try_to_adopt(
    kind: str, objects: Iterable[Obj], current_try: int, *, automatic_retry: bool
) -> Adoption | None:
    """The object of the latest earlier try to adopt (see the module docstring), or None.

    :param kind: ``Job`` or ``Workflow``.
    :param objects: the task instance's objects, every try (labels say which).
    :param current_try: this try's number.
    :param automatic_retry: this try is Airflow's retry of a failed try, not a cleared task.
    """
    earlier = [(n, o) for o in objects if (n := _try_of(o)) is not None and n < current_try]
    if not earlier:
        return None
    number, obj = max(earlier, key=lambda item: item[0])
    state = _state(kind, obj)
    if state == "running":
        return Adoption(obj, number, "still running")
    if state == "succeeded" and automatic_retry:
        return Adoption(obj, number, "succeeded; its work is not run again")
    return None


def is_automatic_retry(max_tries: object, retries: int | None) -> bool:
    """Whether this try is Airflow's retry of a failed try rather than a cleared task: clearing
    a task raises its ``max_tries`` above the operator's ``retries`` (an unknown ``max_tries``
    counts as a retry)."""
    return not isinstance(max_tries, int) or max_tries <= (retries or 0)


def still_running(kind: str, objects: Iterable[Obj], current_try: int) -> list[Obj]:
    """The objects of this try or an earlier one that have not finished and are not being
    stopped or deleted: what a try that fails without knowing its object's outcome leaves
    running (its own, or the earlier try's it adopted)."""
    return [
        obj
        for obj in objects
        if (n := _try_of(obj)) is not None and n <= current_try and _state(kind, obj) == "running"
    ]
