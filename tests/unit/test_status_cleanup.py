"""What cleaning finished Jobs and returning a Job's results decide, without a cluster."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_k8s_jobs.errors import InvalidInputError
from airflow_k8s_jobs.status import by_index, pod_label, summarize_job_verdict, termination_messages
from airflow_k8s_jobs.status.cleanup import (
    MANAGED_SELECTOR,
    Candidate,
    CleanupPlan,
    NamespaceResult,
    Survey,
    check_arguments,
    choose_now,
    cleanup_selector,
    job_finished,
    namespaces_to_clean,
    raise_to_floor,
    verdict,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def stamp(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(name: str, *conds: tuple[str, float], owner: bool = False, **status: Any) -> dict:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "creationTimestamp": stamp(0)}
    if owner:
        meta["ownerReferences"] = [{"kind": "CronJob", "name": "nightly", "controller": True}]
    conditions = [{"type": t, "status": "True", "lastTransitionTime": stamp(m)} for t, m in conds]
    return {"metadata": meta, "status": {"conditions": conditions, **status}}


def test_only_terminal_conditions_finish_a_job() -> None:
    assert job_finished(job("a", ("FailureTarget", 5))) == (None, None)
    assert job_finished(job("a", ("SuccessCriteriaMet", 5))) == (None, None)
    assert job_finished(job("a", ("Failed", 5))) == ("Failed", T0 + timedelta(minutes=5))
    done = job("a", ("Complete", 5), completionTime=stamp(4))
    assert job_finished(done) == ("Complete", T0 + timedelta(minutes=4))


def test_survey_counts_what_is_kept_whatever_its_age() -> None:
    survey = Survey(include_failed=False)
    deleting = job("d", ("Complete", 1))
    deleting["metadata"]["deletionTimestamp"] = stamp(90)
    for listed in (
        job("run"),
        job("failed", ("Failed", 2)),
        job("owned", ("Complete", 3), owner=True),
        deleting,
        job("ok", ("Complete", 7)),
    ):
        survey.add(listed)
    r = survey.result
    assert (r.listed, r.kept_running, r.kept_failed, r.kept_owned, r.already_deleting) == (
        5,
        1,
        1,
        1,
        1,
    )
    assert [c.name for c in survey.candidates] == ["ok"]
    assert survey.floor == T0 + timedelta(minutes=7)  # deletionTimestamp is not a clock reading


def test_verdict_age_then_budget() -> None:
    old = Candidate("a", "u", "Complete", T0)
    day = timedelta(days=1)
    assert verdict(old, T0 + timedelta(hours=1), day, 0, None) == "too_young"
    assert verdict(Candidate("a", "u", "Complete", None), T0, timedelta(0), 0, None) == "too_young"
    assert verdict(old, T0 + 2 * day, day, 3, 3) == "over_budget"
    assert verdict(old, T0 + 2 * day, day, 2, 3) == "delete"


def test_now_from_a_given_clock_the_date_header_or_the_local_clock() -> None:
    local = T0 + timedelta(days=9)
    assert choose_now(T0.replace(tzinfo=None), None, local) == (T0, "given clock")
    header = "Thu, 01 Jan 2026 00:10:00 GMT"
    assert choose_now(None, header, local) == (T0 + timedelta(minutes=10), "cluster's Date header")
    assert choose_now(None, "garbage", local) == (local, "local clock")
    floor = T0 + timedelta(hours=1)
    assert raise_to_floor(T0, "cluster's Date header", floor) == floor
    assert raise_to_floor(T0, "given clock", floor) == T0
    assert raise_to_floor(floor, "local clock", T0) == floor


def test_selector_and_arguments() -> None:
    assert cleanup_selector(None, True) == MANAGED_SELECTOR
    assert cleanup_selector(f"team=a,{MANAGED_SELECTOR}", True) == f"{MANAGED_SELECTOR},team=a"
    assert cleanup_selector(" team=a ", False) == "team=a"
    kwargs: dict[str, Any] = {
        "older_than": 60,
        "propagation_policy": "Background",
        "requests_per_second": 5,
        "max_deletions": None,
        "max_attempts": 1,
        "page_size": 1,
        "only_managed": True,
        "label_selector": None,
    }
    assert check_arguments("task 't'", **kwargs) == timedelta(minutes=1)
    with pytest.raises(InvalidInputError, match="page_size must be >= 1, got 0"):
        check_arguments("task 't'", **{**kwargs, "page_size": 0})


def pod(name: str, phase: str, index: int | None = None, message: str = "") -> dict:
    annotations = {} if index is None else {"batch.kubernetes.io/job-completion-index": str(index)}
    terminated = {"exitCode": 0 if phase == "Succeeded" else 3, "reason": "Error"}
    if message:
        terminated["message"] = message
    return {
        "metadata": {"name": name, "annotations": annotations},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "main", "state": {"terminated": terminated}}],
        },
    }


def test_termination_messages_by_completion_index() -> None:
    pods = [pod("p2", "Succeeded", 2, "two"), pod("p0", "Succeeded", 0, "zero")]
    pods.append(pod("p1", "Failed", 1, "no"))
    assert termination_messages(pods) == ["zero", "", "two"]
    assert [pod_label(p) for p in by_index(pods)] == ["p0[0]", "p1[1]", "p2[2]"]
    assert termination_messages([pod("a", "Succeeded", None, "x"), pod("b", "Succeeded")]) == [
        "x",
        "",
    ]


def test_a_job_verdict_is_summarized_with_its_failed_pods_and_logs() -> None:
    text = summarize_job_verdict(
        "Job b/j on c failed: BackoffLimitExceeded: too many failures",
        [pod("j-a", "Failed")],
        {"j-a": "".join(f"line {i}\n" for i in range(30))},
        tail_lines=3,
    )
    assert text.splitlines()[0] == "Job b/j on c failed: BackoffLimitExceeded: too many failures"
    assert "- pod j-a: container main exited with code 3 (Error)" in text
    assert text.rstrip().endswith("    | line 29")
    assert "line 26" not in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ["default"]),
        ("", ["default"]),
        ([], ["default"]),
        ("batch", ["batch"]),
        (" batch , etl,,batch ", ["batch", "etl"]),
        (["etl", " batch", "etl"], ["etl", "batch"]),
    ],
)
def test_the_namespaces_to_clean(value: Any, expected: list[str]) -> None:
    assert namespaces_to_clean(value, "default") == expected


def plan(**kwargs: Any) -> CleanupPlan:
    values: dict[str, Any] = {
        "older_than": timedelta(days=7),
        "selector": MANAGED_SELECTOR,
        "include_failed": True,
        "max_deletions": None,
        "dry_run": False,
        "propagation_policy": "Background",
        "requests_per_second": 5.0,
        "page_size": 500,
    }
    return CleanupPlan(**{**values, **kwargs})


def test_the_plan_as_the_task_log_says_it() -> None:
    assert plan().describe(["batch", "etl"], "prod") == (
        "Deleting finished Jobs older than 7 days, 0:00:00 in batch, etl on prod (selector "
        f"'{MANAGED_SELECTOR}', failed Jobs included, at most 5.0 requests/s)."
    )
    dry = plan(dry_run=True, include_failed=False, max_deletions=3, selector="")
    assert dry.describe(["batch"], "prod") == (
        "Dry run: would delete finished Jobs older than 7 days, 0:00:00 in batch on prod "
        "(selector '', failed Jobs kept, at most 5.0 requests/s, at most 3 deletions)."
    )


def test_the_summary_counts_every_namespace_and_says_which_were_not_visited() -> None:
    batch = NamespaceResult(listed=4, deleted=2, kept_running=2, pages=1)
    batch.add_name("a")
    batch.add_name("b")
    summary = plan(max_deletions=2).summary("prod", ["batch", "etl"], {"batch": batch}, 3)
    assert summary == {
        "cluster": "prod",
        "dry_run": False,
        "label_selector": MANAGED_SELECTOR,
        "older_than_seconds": 604800.0,
        "deleted": 2,
        "max_deletions_reached": True,
        "requests": 3,
        "not_visited": ["etl"],
        "namespaces": {"batch": batch.as_dict()},
    }
    assert summary["namespaces"]["batch"]["names"] == ["a", "b"]
    assert not plan().summary("prod", ["batch"], {"batch": batch}, 3)["max_deletions_reached"]
    assert not plan(max_deletions=3).reached({"batch": batch})
