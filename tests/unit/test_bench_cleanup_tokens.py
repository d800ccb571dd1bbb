"""The pure parts of the cleanup-at-scale and token-refresh benchmarks."""

from __future__ import annotations

import cleanup_scale as cleanup
import pytest
import token_refreshes as tokens


def test_seed_plan_spreads_the_leftovers_and_keeps_some_in_every_namespace() -> None:
    namespaces = cleanup.namespace_names(3)
    plan = cleanup.seed_plan(1001, namespaces)
    deletable = [j for j in plan if j.kind in cleanup.DELETABLE]
    assert len(deletable) == 1001
    per_namespace = {n: sum(j.namespace == n for j in deletable) for n in namespaces}
    assert sorted(per_namespace.values()) == [333, 334, 334]
    failed = sum(n // cleanup.FAILED_SHARE for n in per_namespace.values())
    assert sum(j.kind == "old-failed" for j in deletable) == failed == 48
    kept = len(plan) - len(deletable)
    assert kept == 3 * (cleanup.RUNNING + cleanup.YOUNG + cleanup.OTHER_LABEL)
    assert len({(j.namespace, j.name) for j in plan}) == len(plan)


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([], 0),
        ([0.0], 1),
        ([0.0, 0.5, 0.99, 1.0], 3),  # [t, t + 1 s) holds 0, 0.5 and 0.99
        ([0.0, 1.0, 2.0, 3.0], 1),
        ([3.0, 0.2, 0.1, 2.5, 0.3], 3),  # order does not matter
    ],
)
def test_max_in_window(times: list[float], expected: int) -> None:
    assert cleanup.max_in_window(times) == expected


def test_wrongly_deleted_names_kept_jobs_that_went_and_jobs_left_behind() -> None:
    plan = cleanup.seed_plan(4, ["a"])
    remaining = {(j.namespace, j.name) for j in plan if j.kind not in cleanup.DELETABLE}
    assert cleanup.wrongly_deleted(plan, remaining) == {
        "running": 0,
        "young": 0,
        "other-label": 0,
        "missed": 0,
    }
    young = next(j for j in plan if j.kind == "young")
    first = next(j for j in plan if j.kind in cleanup.DELETABLE)
    remaining = (remaining - {(young.namespace, young.name)}) | {(first.namespace, first.name)}
    outcome = cleanup.wrongly_deleted(plan, remaining)
    assert outcome["young"] == 1 and outcome["missed"] == 1


def test_per_thousand() -> None:
    assert cleanup.per_thousand(102, 51000) == pytest.approx(2.0)
    assert cleanup.per_thousand(5, 0) == 0.0


def test_finished_status_is_what_the_job_controller_leaves() -> None:
    done = cleanup.finished_status("old-complete", "2026-01-01T00:00:00Z")
    failed = cleanup.finished_status("old-failed", "2026-01-01T00:00:00Z")
    assert [c["type"] for c in done["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert done["succeeded"] == 1 and done["completionTime"] == "2026-01-01T00:00:00Z"
    assert [c["type"] for c in failed["conditions"]] == ["FailureTarget", "Failed"]
    assert failed["failed"] == 1 and "completionTime" not in failed


def test_expected_refreshes_and_lifetimes() -> None:
    # Refreshing 5 minutes early: a new token every 55 minutes, the first at once.
    assert tokens.expected_refreshes(8 * 3600, 300) == 9
    assert tokens.expected_refreshes(3299, 300) == 1
    assert tokens.expected_refreshes(3300, 300) == 2
    assert tokens.lifetimes(8 * 3600) == 8
    assert tokens.lifetimes(8 * 3600 + 600) == 9  # a started lifetime needs a token
    assert tokens.lifetimes(0) == 1
