"""Which earlier try's Job or Workflow a retry adopts instead of running the work again."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_k8s_jobs.manifests.names import TRY_NUMBER
from airflow_k8s_jobs.status.tries import earlier_try_to_adopt, still_running


def job(try_number: int, *conditions: str, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"t{try_number}", "uid": f"u{try_number}"}
    meta["labels"] = {TRY_NUMBER: str(try_number)}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-06T10:00:00Z"
    status = {"conditions": [{"type": c, "status": "True"} for c in conditions]}
    return {"metadata": meta, "status": status}


def workflow(try_number: int, phase: str = "", shutdown: str | None = None) -> dict[str, Any]:
    meta = {"name": f"w{try_number}", "uid": f"u{try_number}"}
    meta["labels"] = {TRY_NUMBER: str(try_number)}  # type: ignore[assignment]
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if phase in ("Succeeded", "Failed", "Error"):
        status["finishedAt"] = "2026-12-06T10:00:00Z"
    spec = {"shutdown": shutdown} if shutdown else {}
    return {"metadata": meta, "spec": spec, "status": status}


@pytest.mark.parametrize("automatic", [True, False])
def test_a_job_still_running_is_adopted_whatever_started_the_try(automatic: bool) -> None:
    adoption = earlier_try_to_adopt("Job", [job(1)], 2, automatic_retry=automatic)
    assert adoption is not None
    assert (adoption.obj["metadata"]["name"], adoption.try_number) == ("t1", 1)
    assert adoption.why == "still running"


def test_a_succeeded_job_is_adopted_by_a_retry_but_not_by_a_cleared_task() -> None:
    for conditions in (("Complete",), ("SuccessCriteriaMet",)):
        adoption = earlier_try_to_adopt("Job", [job(1, *conditions)], 2, automatic_retry=True)
        assert adoption is not None and "succeeded" in adoption.why
        assert earlier_try_to_adopt("Job", [job(1, *conditions)], 2, automatic_retry=False) is None


@pytest.mark.parametrize(
    "earlier",
    [job(1, "Failed"), job(1, "FailureTarget"), job(1, deleting=True)],
    ids=["failed", "failing", "being deleted"],
)
def test_a_failed_or_deleted_job_is_never_adopted(earlier: dict[str, Any]) -> None:
    assert earlier_try_to_adopt("Job", [earlier], 2, automatic_retry=True) is None


def test_only_the_latest_earlier_try_counts_and_never_this_try_or_later() -> None:
    objects = [job(1), job(2, "Failed"), job(3), job(4)]
    assert earlier_try_to_adopt("Job", objects, 3, automatic_retry=True) is None
    adopted = earlier_try_to_adopt("Job", [job(1, "Complete"), job(2)], 3, automatic_retry=True)
    assert adopted is not None and adopted.try_number == 2
    assert earlier_try_to_adopt("Job", [], 2, automatic_retry=True) is None
    unlabelled = {"metadata": {"name": "x", "labels": {}}, "status": {}}
    assert earlier_try_to_adopt("Job", [unlabelled], 2, automatic_retry=True) is None


@pytest.mark.parametrize(
    ("earlier", "adopted"),
    [
        (workflow(1), True),
        (workflow(1, "Pending"), True),
        (workflow(1, "Running"), True),
        (workflow(1, "Succeeded"), True),
        (workflow(1, "Failed"), False),
        (workflow(1, "Error"), False),
        (workflow(1, "Running", shutdown="Terminate"), False),
    ],
)
def test_workflows_follow_their_phase(earlier: dict[str, Any], adopted: bool) -> None:
    found = earlier_try_to_adopt("Workflow", [earlier], 2, automatic_retry=True)
    assert (found is not None) == adopted


def test_a_failing_try_leaves_running_its_own_or_an_earlier_tries_unfinished_objects() -> None:
    objects = [job(1), job(2, "Failed"), job(3, deleting=True), job(4), job(5)]
    assert [o["metadata"]["name"] for o in still_running("Job", objects, 4)] == ["t1", "t4"]
    workflows = [workflow(1, "Running"), workflow(2, "Running", shutdown="Terminate")]
    workflows += [workflow(3, "Succeeded"), workflow(4, "Pending")]
    assert [o["metadata"]["name"] for o in still_running("Workflow", workflows, 4)] == ["w1", "w4"]


def test_a_job_deleted_when_its_try_gave_up_is_never_adopted() -> None:
    # A Background deletion is gone at once; until then it carries a deletionTimestamp.
    assert earlier_try_to_adopt("Job", [job(1, deleting=True)], 2, automatic_retry=True) is None
    assert earlier_try_to_adopt("Job", [], 2, automatic_retry=True) is None
